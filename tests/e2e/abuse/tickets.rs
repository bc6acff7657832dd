//! Abuse scenarios: tickets.
