//! Times as people read them: the API and pages show instants at the office's UTC offset
//! (Indonesia keeps no daylight saving, so a zone is a fixed offset).

use std::sync::OnceLock;

use chrono::{DateTime, FixedOffset, SecondsFormat, Utc};
use serde::Serializer;

static DISPLAY_OFFSET: OnceLock<FixedOffset> = OnceLock::new();

/// Western Indonesian Time (UTC+7), the zone of Java and Sumatra.
pub fn wib() -> FixedOffset {
    const WIB: FixedOffset = match FixedOffset::east_opt(7 * 3600) {
        Some(o) => o,
        None => panic!("UTC+7 is a valid offset"),
    };
    WIB
}

/// Reads a zone name (`Asia/Jakarta`, `Asia/Makassar`, `Asia/Jayapura`, `UTC`) or an
/// offset (`+07:00`).
pub fn parse_timezone(name: &str) -> Option<FixedOffset> {
    let hours = match name.trim() {
        "Asia/Jakarta" | "Asia/Pontianak" | "WIB" => 7,
        "Asia/Makassar" | "WITA" => 8,
        "Asia/Jayapura" | "WIT" => 9,
        "UTC" | "Etc/UTC" | "Z" => 0,
        other => {
            let probe = format!("2000-01-01T00:00:00{other}");
            return DateTime::parse_from_rfc3339(&probe).ok().map(|t| *t.offset());
        }
    };
    FixedOffset::east_opt(hours * 3600)
}

/// Sets the offset times are shown at (once, at start-up; later calls are ignored).
pub fn set_display_offset(offset: FixedOffset) {
    let _ = DISPLAY_OFFSET.set(offset);
}

pub fn display_offset() -> FixedOffset {
    *DISPLAY_OFFSET.get_or_init(wib)
}

/// RFC 3339 with the display offset, milliseconds when there are any.
pub fn format_rfc3339(t: &DateTime<Utc>) -> String {
    t.with_timezone(&display_offset()).to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

/// `#[serde(serialize_with = "aduan_core::time::serialize")]`
pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_rfc3339(t))
}

/// `#[serde(serialize_with = "aduan_core::time::serialize_opt")]`
pub fn serialize_opt<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => serialize(t, s),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_and_offsets() {
        assert_eq!(parse_timezone("Asia/Jakarta"), FixedOffset::east_opt(7 * 3600));
        assert_eq!(parse_timezone("Asia/Makassar"), FixedOffset::east_opt(8 * 3600));
        assert_eq!(parse_timezone("+09:00"), FixedOffset::east_opt(9 * 3600));
        assert_eq!(parse_timezone("Mars/Olympus"), None);
    }

    #[test]
    fn formats_at_wib_by_default() {
        let t = DateTime::parse_from_rfc3339("2026-11-29T14:00:00.250Z").unwrap().to_utc();
        assert_eq!(format_rfc3339(&t), "2026-11-29T21:00:00.250+07:00");
    }
}
