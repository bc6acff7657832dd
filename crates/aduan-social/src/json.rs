//! Small lenient readers over `serde_json::Value`: providers send ids as strings or numbers
//! and times as Unix seconds, milliseconds or (in some SDK fixtures) ISO strings.

use chrono::{DateTime, Utc};
use serde_json::Value;

/// A string field, or a number written as its decimal digits (ids).
pub(crate) fn id(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub(crate) fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

pub(crate) fn nonempty(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

pub(crate) fn is_true(v: Option<&Value>) -> bool {
    matches!(v, Some(Value::Bool(true)))
}

/// Unix seconds or milliseconds (as a number or a string of digits; values past year 5138
/// in seconds are taken as milliseconds), or an RFC 3339 / ISO 8601 time with an offset.
pub(crate) fn time(v: Option<&Value>) -> Option<DateTime<Utc>> {
    let from_int = |n: i64| {
        if n.abs() >= 100_000_000_000 {
            DateTime::from_timestamp_millis(n)
        } else {
            DateTime::from_timestamp(n, 0)
        }
    };
    match v? {
        Value::Number(n) => from_int(n.as_i64()?),
        Value::String(s) => {
            let s = s.trim();
            if let Ok(n) = s.parse::<i64>() {
                return from_int(n);
            }
            DateTime::parse_from_rfc3339(s)
                .or_else(|_| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%z"))
                .or_else(|_| DateTime::parse_from_str(s, "%a %b %d %H:%M:%S %z %Y"))
                .ok()
                .map(|t| t.to_utc())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn times_in_every_provider_form() {
        let at = |v: Value| time(Some(&v)).map(|t| t.to_rfc3339());
        let want = Some("2023-10-11T16:53:43+00:00".to_owned());
        assert_eq!(at(json!("1697043223")), want);
        assert_eq!(at(json!(1697043223)), want);
        assert_eq!(at(json!(1697043223000_i64)), want);
        assert_eq!(at(json!("2023-10-11T16:53:43+0000")), want);
        assert_eq!(at(json!("2023-10-11T16:53:43Z")), want);
        assert_eq!(at(json!("Wed Oct 11 16:53:43 +0000 2023")), want);
        assert_eq!(at(json!("soon")), None);
        assert_eq!(at(json!(null)), None);
        assert_eq!(
            id(Some(&json!(1332557345071644672_u64))).as_deref(),
            Some("1332557345071644672")
        );
        assert_eq!(id(Some(&json!(" "))), None);
    }
}
