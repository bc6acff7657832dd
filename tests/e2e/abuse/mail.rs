//! Abuse scenarios: mail.
