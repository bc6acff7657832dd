//! Working days and deadline arithmetic.
//!
//! A deadline is a [`Budget`]: wall-clock hours ("1x24 jam") or working days ("5 hari
//! kerja"). Working time counts whole local days (at the office's fixed UTC offset; Indonesia
//! keeps no daylight saving) that are neither Saturday, Sunday nor in the holiday calendar
//! (national holidays and *cuti bersama*). A complaint received on a Saturday has its first
//! working day on Monday: one working day from Saturday 10:00 ends Tuesday 00:00.
//!
//! Clocks can be paused (waiting for the resident): the time a clock was paused does not
//! count, in the clock's own measure ([`Calendar::resume`]).

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Days, Duration, FixedOffset, NaiveDate, Utc, Weekday};

const DAY_MS: i64 = 86_400_000;

/// How long a clock runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Budget {
    /// Wall-clock hours, nights and holidays included.
    Hours(i64),
    /// Whole working days.
    WorkingDays(i64),
}

/// How a clock measures elapsed time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Measure {
    Wall,
    Working,
}

impl Budget {
    pub fn measure(self) -> Measure {
        match self {
            Budget::Hours(_) => Measure::Wall,
            Budget::WorkingDays(_) => Measure::Working,
        }
    }

    /// The budget in milliseconds of its measure.
    pub fn millis(self) -> i64 {
        match self {
            Budget::Hours(h) => h.saturating_mul(3_600_000),
            Budget::WorkingDays(d) => d.saturating_mul(DAY_MS),
        }
    }

    /// As residents and officials read it.
    pub fn label_id(self) -> String {
        match self {
            Budget::Hours(h) => format!("{h} jam"),
            Budget::WorkingDays(d) => format!("{d} hari kerja"),
        }
    }
}

impl fmt::Display for Budget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Budget::Hours(h) => write!(f, "{h}h"),
            Budget::WorkingDays(d) => write!(f, "{d}d"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a deadline: write hours as \"24h\" or working days as \"5d\" (1 to 365 days)"
)]
pub struct BadBudget(pub String);

impl FromStr for Budget {
    type Err = BadBudget;
    /// `"24h"` (wall-clock hours) or `"5d"` (working days).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadBudget(s.to_owned());
        let t = s.trim();
        let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?);
        let n: i64 = num.parse().map_err(|_| bad())?;
        let budget = match unit.trim() {
            "h" => Budget::Hours(n),
            "d" => Budget::WorkingDays(n),
            _ => return Err(bad()),
        };
        let days = match budget {
            Budget::Hours(h) => h as f64 / 24.0,
            Budget::WorkingDays(d) => d as f64,
        };
        if n < 1 || days > 365.0 {
            return Err(bad());
        }
        Ok(budget)
    }
}

/// The office's working days: Monday to Friday at a fixed offset, minus holidays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Calendar {
    offset: FixedOffset,
    holidays: BTreeSet<NaiveDate>,
}

impl Default for Calendar {
    /// Asia/Jakarta (UTC+7) without holidays.
    fn default() -> Self {
        Calendar { offset: crate::time::wib(), holidays: BTreeSet::new() }
    }
}

impl Calendar {
    pub fn new(offset: FixedOffset, holidays: impl IntoIterator<Item = NaiveDate>) -> Calendar {
        Calendar { offset, holidays: holidays.into_iter().collect() }
    }

    pub fn offset(&self) -> FixedOffset {
        self.offset
    }

    pub fn holidays(&self) -> &BTreeSet<NaiveDate> {
        &self.holidays
    }

    pub fn is_working_day(&self, d: NaiveDate) -> bool {
        !matches!(d.weekday(), Weekday::Sat | Weekday::Sun) && !self.holidays.contains(&d)
    }

    /// The local date of an instant.
    pub fn local_date(&self, t: DateTime<Utc>) -> NaiveDate {
        t.with_timezone(&self.offset).date_naive()
    }

    /// Local midnight at the start of `d`, as an instant.
    fn day_start(&self, d: NaiveDate) -> DateTime<Utc> {
        let midnight = d.and_hms_opt(0, 0, 0).unwrap_or_default();
        DateTime::<Utc>::from_naive_utc_and_offset(midnight, Utc)
            - Duration::seconds(i64::from(self.offset.local_minus_utc()))
    }

    fn next_day(d: NaiveDate) -> NaiveDate {
        d.checked_add_days(Days::new(1)).unwrap_or(d)
    }

    /// Milliseconds of working time in `[a, b)`; 0 when `b <= a`.
    pub fn working_ms_between(&self, a: DateTime<Utc>, b: DateTime<Utc>) -> i64 {
        if b <= a {
            return 0;
        }
        let mut total = 0;
        let mut d = self.local_date(a);
        let last = self.local_date(b);
        while d <= last {
            let next = Calendar::next_day(d);
            if next == d {
                break;
            }
            if self.is_working_day(d) {
                let from = self.day_start(d).max(a);
                let to = self.day_start(next).min(b);
                if to > from {
                    total += (to - from).num_milliseconds();
                }
            }
            d = next;
        }
        total
    }

    /// The instant after `ms` milliseconds of working time from `t`.
    pub fn advance_working(&self, t: DateTime<Utc>, ms: i64) -> DateTime<Utc> {
        let mut t = t;
        let mut left = ms.max(0);
        if left == 0 {
            return t;
        }
        // Bounded: a budget is at most a year, plus the weekends and holidays around it.
        for _ in 0..(3 * 366 + 10) {
            let d = self.local_date(t);
            let next = Calendar::next_day(d);
            let end = self.day_start(next);
            if self.is_working_day(d) {
                let avail = (end - t).num_milliseconds();
                if left <= avail {
                    return t + Duration::milliseconds(left);
                }
                left -= avail;
            }
            t = end;
        }
        t + Duration::milliseconds(left)
    }

    /// Elapsed time between two instants in a clock's measure.
    pub fn measure(&self, m: Measure, a: DateTime<Utc>, b: DateTime<Utc>) -> i64 {
        match m {
            Measure::Wall => (b - a).num_milliseconds().max(0),
            Measure::Working => self.working_ms_between(a, b),
        }
    }

    /// `ms` of the measure after `t`.
    pub fn advance(&self, m: Measure, t: DateTime<Utc>, ms: i64) -> DateTime<Utc> {
        match m {
            Measure::Wall => t + Duration::milliseconds(ms.max(0)),
            Measure::Working => self.advance_working(t, ms),
        }
    }

    /// When a clock started at `start` with `budget` runs out.
    pub fn due(&self, start: DateTime<Utc>, budget: Budget) -> DateTime<Utc> {
        self.advance(budget.measure(), start, budget.millis())
    }

    /// The instant at which `fraction` (0..1) of the clock from `start` to `due` has run.
    pub fn fraction_point(
        &self,
        m: Measure,
        start: DateTime<Utc>,
        due: DateTime<Utc>,
        fraction: f64,
    ) -> DateTime<Utc> {
        let total = self.measure(m, start, due);
        let part = (total as f64 * fraction.clamp(0.0, 1.0)).round() as i64;
        self.advance(m, start, part)
    }

    /// The deadline after a pause from `paused_at` to `resumed_at`: what was left of the
    /// clock when it paused, counted again from the resumption. A clock paused after its
    /// deadline stays breached.
    pub fn resume(
        &self,
        m: Measure,
        due: DateTime<Utc>,
        paused_at: DateTime<Utc>,
        resumed_at: DateTime<Utc>,
    ) -> DateTime<Utc> {
        if paused_at >= due || resumed_at <= paused_at {
            return due;
        }
        let left = self.measure(m, paused_at, due);
        self.advance(m, resumed_at, left).max(due)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wib(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&format!("{s}+07:00")).unwrap().to_utc()
    }

    fn show(t: DateTime<Utc>) -> String {
        t.with_timezone(&crate::time::wib()).format("%a %Y-%m-%d %H:%M").to_string()
    }

    fn cal2026() -> Calendar {
        let days = ["2026-03-18", "2026-03-19", "2026-03-20", "2026-03-23", "2026-03-24"];
        Calendar::new(crate::time::wib(), days.iter().map(|d| d.parse().unwrap()))
    }

    #[test]
    fn budgets_parse_and_print() {
        assert_eq!("24h".parse(), Ok(Budget::Hours(24)));
        assert_eq!(" 5d ".parse(), Ok(Budget::WorkingDays(5)));
        assert_eq!(Budget::WorkingDays(5).to_string(), "5d");
        for bad in ["", "d", "5", "5w", "0d", "-3h", "400d", "9000h"] {
            assert!(bad.parse::<Budget>().is_err(), "{bad}");
        }
        assert_eq!(Budget::WorkingDays(3).label_id(), "3 hari kerja");
    }

    #[test]
    fn working_days_skip_weekends_and_holidays() {
        let c = cal2026();
        let d = Budget::WorkingDays(1);
        // Friday morning + 1 working day = Monday morning.
        assert_eq!(show(c.due(wib("2026-03-06T10:00:00"), d)), "Mon 2026-03-09 10:00");
        // Saturday: the first working day is Monday, whole.
        assert_eq!(show(c.due(wib("2026-03-07T10:00:00"), d)), "Tue 2026-03-10 00:00");
        // Idul Fitri 2026: Nyepi and cuti bersama from 18 to 24 March.
        assert_eq!(
            show(c.due(wib("2026-03-17T09:00:00"), Budget::WorkingDays(2))),
            "Thu 2026-03-26 09:00"
        );
        assert_eq!(
            show(c.due(wib("2026-03-17T09:00:00"), Budget::Hours(24))),
            "Wed 2026-03-18 09:00"
        );
    }

    #[test]
    fn warnings_fall_at_a_fraction_of_working_time() {
        let c = cal2026();
        let start = wib("2026-03-06T08:00:00");
        let due = c.due(start, Budget::WorkingDays(2));
        assert_eq!(show(due), "Tue 2026-03-10 08:00");
        assert_eq!(
            show(c.fraction_point(Measure::Working, start, due, 0.75)),
            "Mon 2026-03-09 20:00"
        );
    }

    #[test]
    fn a_pause_gives_back_what_was_left() {
        let c = cal2026();
        let due = wib("2026-03-10T08:00:00");
        // Paused on Monday 08:00 with one working day left; resumed on Wednesday 12:00.
        let resumed =
            c.resume(Measure::Working, due, wib("2026-03-09T08:00:00"), wib("2026-03-11T12:00:00"));
        assert_eq!(show(resumed), "Thu 2026-03-12 12:00");
        let wall =
            c.resume(Measure::Wall, due, wib("2026-03-09T08:00:00"), wib("2026-03-09T20:00:00"));
        assert_eq!(show(wall), "Tue 2026-03-10 20:00");
        // Paused after the breach: stays breached.
        assert_eq!(
            c.resume(Measure::Wall, due, wib("2026-03-11T08:00:00"), wib("2026-03-12T08:00:00")),
            due
        );
    }
}
