//! Response deadlines. The foundation knows one clock, the first response ("1x24 jam");
//! working-day calendars and the further clocks build on this.

use chrono::{DateTime, Duration, Utc};

#[derive(Debug, Clone, PartialEq)]
pub struct SlaPolicy {
    /// Time from a ticket's creation to its first answer.
    pub first_response: Duration,
}

impl Default for SlaPolicy {
    fn default() -> Self {
        SlaPolicy { first_response: Duration::hours(24) }
    }
}

impl SlaPolicy {
    pub fn first_response_due(&self, created_at: DateTime<Utc>) -> DateTime<Utc> {
        created_at + self.first_response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_response_is_due_a_day_later_by_default() {
        let created = DateTime::parse_from_rfc3339("2026-11-29T23:30:00+07:00").unwrap().to_utc();
        let due = SlaPolicy::default().first_response_due(created);
        assert_eq!(due.to_rfc3339(), "2026-11-30T16:30:00+00:00");
    }
}
