//! Response and resolution deadlines, and when the deadline watcher speaks up.
//!
//! Every ticket has two clocks, both started at receipt:
//! - **first response** ("1x24 jam"): stops at the first answer or action;
//! - **resolution**: stops when the ticket is resolved (or rejected, or merged).
//!
//! A clock is *paused* while the ticket waits for the resident (e.g. for their identity);
//! the paused time does not count ([`Calendar::resume`]). Before a running clock runs out,
//! at a configurable fraction of it, the OPD's officials get a **warning**; when it runs out,
//! the OPD head and the admins get an **escalation**. Each is sent once per clock.

use chrono::{DateTime, Duration, Utc};

use crate::calendar::{Budget, Calendar, Measure};

#[derive(Debug, Clone, PartialEq)]
pub struct SlaPolicy {
    /// Time from a ticket's creation to its first answer.
    pub first_response: Duration,
    /// Default time from creation to resolution, for tickets whose category and OPD set
    /// none.
    pub resolution: Budget,
    /// Working days and holidays.
    pub calendar: Calendar,
    /// The fraction of a clock after which the warning goes out.
    pub warn_fraction: f64,
    /// Working days a resident has to answer the confirmation question after their ticket
    /// was resolved; silence then closes it (`[sla] confirm_working_days`).
    pub confirm_working_days: u32,
}

impl Default for SlaPolicy {
    fn default() -> Self {
        SlaPolicy {
            first_response: Duration::hours(24),
            resolution: Budget::WorkingDays(5),
            calendar: Calendar::default(),
            warn_fraction: 0.75,
            confirm_working_days: 3,
        }
    }
}

impl SlaPolicy {
    pub fn first_response_due(&self, created_at: DateTime<Utc>) -> DateTime<Utc> {
        created_at + self.first_response
    }

    pub fn first_response_budget(&self) -> Budget {
        Budget::Hours(self.first_response.num_hours().max(1))
    }
}

/// The two clocks of a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClockKind {
    FirstResponse,
    Resolution,
}

impl ClockKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ClockKind::FirstResponse => "first_response",
            ClockKind::Resolution => "resolution",
        }
    }

    /// As officials read it.
    pub fn label_id(self) -> &'static str {
        match self {
            ClockKind::FirstResponse => "tanggapan pertama",
            ClockKind::Resolution => "penyelesaian",
        }
    }
}

/// What the deadline watcher sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alert {
    Warning,
    Escalation,
}

impl Alert {
    pub fn as_str(self) -> &'static str {
        match self {
            Alert::Warning => "warning",
            Alert::Escalation => "escalation",
        }
    }

    /// The key that makes a notification unique per ticket: one warning and one escalation
    /// per clock.
    pub fn key(self, clock: ClockKind) -> String {
        format!("{}:{}", self.as_str(), clock.as_str())
    }
}

/// One clock of one ticket, as the watcher sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClockState {
    pub kind: ClockKind,
    pub start: DateTime<Utc>,
    pub due: DateTime<Utc>,
    pub measure: Measure,
    /// Answered (first response) or closed (resolution).
    pub stopped: bool,
    /// Waiting for the resident.
    pub paused: bool,
}

/// The alert a clock calls for at `now`, if any. Past the deadline only the escalation is
/// due (a warning that was never sent is not sent late).
pub fn alert_due(
    cal: &Calendar,
    clock: &ClockState,
    now: DateTime<Utc>,
    warn_fraction: f64,
) -> Option<Alert> {
    if clock.stopped || clock.paused {
        return None;
    }
    if now >= clock.due {
        return Some(Alert::Escalation);
    }
    let warn_at = cal.fraction_point(clock.measure, clock.start, clock.due, warn_fraction);
    (now >= warn_at).then_some(Alert::Warning)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn first_response_is_due_a_day_later_by_default() {
        let created = t("2026-11-29T23:30:00+07:00");
        let due = SlaPolicy::default().first_response_due(created);
        assert_eq!(due.to_rfc3339(), "2026-11-30T16:30:00+00:00");
    }

    #[test]
    fn warning_then_escalation_and_silence_when_stopped_or_paused() {
        let cal = Calendar::default();
        let start = t("2026-11-30T08:00:00+07:00");
        let clock = ClockState {
            kind: ClockKind::FirstResponse,
            start,
            due: start + Duration::hours(24),
            measure: Measure::Wall,
            stopped: false,
            paused: false,
        };
        let at = |h: i64| start + Duration::hours(h);
        assert_eq!(alert_due(&cal, &clock, at(17), 0.75), None);
        assert_eq!(alert_due(&cal, &clock, at(18), 0.75), Some(Alert::Warning));
        assert_eq!(alert_due(&cal, &clock, at(24), 0.75), Some(Alert::Escalation));
        assert_eq!(alert_due(&cal, &ClockState { stopped: true, ..clock }, at(30), 0.75), None);
        assert_eq!(alert_due(&cal, &ClockState { paused: true, ..clock }, at(30), 0.75), None);
        assert_eq!(Alert::Warning.key(ClockKind::Resolution), "warning:resolution");
    }
}
