//! Abuse scenarios: channels.
