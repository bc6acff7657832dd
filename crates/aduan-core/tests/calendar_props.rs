//! Properties of working-day arithmetic: weekends, holidays, the year boundary, and the
//! fixed UTC+7 offset of WIB (no daylight saving: whole working days keep the clock time).

use aduan_core::{Budget, Calendar, Measure};
use chrono::{DateTime, Datelike, Duration, NaiveDate, Timelike, Utc, Weekday};
use proptest::prelude::*;

/// The 2026 national holidays and cuti bersama (SKB 3 Menteri 1497/2/5 Tahun 2025) and
/// New Year 2027, as in config/libur.toml.
fn calendar() -> Calendar {
    let days = [
        "2026-01-01",
        "2026-01-16",
        "2026-02-16",
        "2026-02-17",
        "2026-03-18",
        "2026-03-19",
        "2026-03-20",
        "2026-03-21",
        "2026-03-22",
        "2026-03-23",
        "2026-03-24",
        "2026-04-03",
        "2026-04-05",
        "2026-05-01",
        "2026-05-14",
        "2026-05-15",
        "2026-05-27",
        "2026-05-28",
        "2026-05-31",
        "2026-06-01",
        "2026-06-16",
        "2026-08-17",
        "2026-08-25",
        "2026-12-24",
        "2026-12-25",
        "2027-01-01",
    ];
    Calendar::new(aduan_core::time::wib(), days.iter().map(|d| d.parse::<NaiveDate>().unwrap()))
}

/// Any instant from December 2025 to January 2027, to the second.
fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    let from = DateTime::parse_from_rfc3339("2025-12-01T00:00:00+07:00").unwrap().timestamp();
    let to = DateTime::parse_from_rfc3339("2027-01-31T00:00:00+07:00").unwrap().timestamp();
    (from..to).prop_map(|s| DateTime::from_timestamp(s, 0).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn a_due_date_holds_exactly_its_working_time(t in instant(), n in 1i64..30) {
        let cal = calendar();
        let due = cal.due(t, Budget::WorkingDays(n));
        prop_assert!(due > t);
        prop_assert_eq!(cal.working_ms_between(t, due), n * 86_400_000);
    }

    #[test]
    fn deadlines_never_end_inside_a_day_off(t in instant(), n in 1i64..30) {
        let cal = calendar();
        let due = cal.due(t, Budget::WorkingDays(n));
        // The last millisecond counted was on a working day.
        let last = cal.local_date(due - Duration::milliseconds(1));
        prop_assert!(cal.is_working_day(last), "{due} ends on {last}");
        prop_assert!(!matches!(last.weekday(), Weekday::Sat | Weekday::Sun));
    }

    #[test]
    fn whole_working_days_keep_the_wall_clock_time(t in instant(), n in 1i64..30) {
        let cal = calendar();
        prop_assume!(cal.is_working_day(cal.local_date(t)));
        let due = cal.due(t, Budget::WorkingDays(n));
        let (a, b) = (t.with_timezone(&cal.offset()), due.with_timezone(&cal.offset()));
        prop_assert_eq!((a.hour(), a.minute(), a.second()), (b.hour(), b.minute(), b.second()));
        // WIB has no daylight saving: the same local time is the same UTC time of day.
        prop_assert_eq!((due - t).num_seconds() % 86_400, 0);
    }

    #[test]
    fn more_budget_or_a_later_start_never_ends_earlier(
        t in instant(), n in 1i64..20, extra in 0i64..5, later in 0i64..(3 * 86_400)
    ) {
        let cal = calendar();
        let d1 = cal.due(t, Budget::WorkingDays(n));
        prop_assert!(cal.due(t, Budget::WorkingDays(n + extra)) >= d1);
        prop_assert!(cal.due(t + Duration::seconds(later), Budget::WorkingDays(n)) >= d1);
    }

    #[test]
    fn hours_are_wall_clock(t in instant(), h in 1i64..200) {
        let cal = calendar();
        prop_assert_eq!(cal.due(t, Budget::Hours(h)), t + Duration::hours(h));
    }

    #[test]
    fn a_pause_gives_back_exactly_what_was_left(
        t in instant(), n in 1i64..10, pause_at in 0i64..(20 * 86_400), pause_len in 1i64..(10 * 86_400)
    ) {
        let cal = calendar();
        let due = cal.due(t, Budget::WorkingDays(n));
        let paused = t + Duration::seconds(pause_at);
        let resumed = paused + Duration::seconds(pause_len);
        let new_due = cal.resume(Measure::Working, due, paused, resumed);
        if paused < due {
            prop_assert_eq!(
                cal.working_ms_between(resumed, new_due),
                cal.working_ms_between(paused, due)
            );
            prop_assert!(new_due >= due);
        } else {
            prop_assert_eq!(new_due, due);
        }
    }
}

#[test]
fn the_year_boundary_skips_christmas_and_new_year() {
    let cal = calendar();
    let t = DateTime::parse_from_rfc3339("2026-12-23T10:00:00+07:00").unwrap().to_utc();
    // Wed 23 Dec → Thu 24 (cuti bersama), Fri 25 (Natal), weekend, Mon 28 … Thu 31, Fri 1
    // Jan 2027 (New Year), weekend, Mon 4 Jan.
    let due = cal.due(t, Budget::WorkingDays(5));
    assert_eq!(due, DateTime::parse_from_rfc3339("2027-01-04T10:00:00+07:00").unwrap().to_utc());
    assert_eq!(cal.local_date(due).year(), 2027);
}
