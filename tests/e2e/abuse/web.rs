//! Abuse scenarios: web.
