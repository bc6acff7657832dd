//! The MIME intake path: `aduan_email::parse_mail`, exactly as the IMAP poller calls it on
//! each fetched mail (raw RFC 5322 bytes in, a message or a quarantine reason out).
//!
//! Fuzz builds turn debug assertions on in every crate. mail-parser has `debug_assert!`s
//! that fire on some malformed mails (compiled out of release builds, and `parse_mail`
//! guards the parser with `catch_unwind` anyway): [`KNOWN_UPSTREAM`] lists the ones already
//! found, each kept as a test in aduan-email (tests/fuzz_regressions.rs). Any other panic,
//! in mail-parser or in aduan's own code, still aborts and is a finding.
#![no_main]

use std::sync::Once;

use aduan_email::{ParseOptions, parse_mail};
use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;

/// (source file suffix, panic message) of mail-parser's debug assertions already reported.
const KNOWN_UPSTREAM: &[(&str, &str)] =
    &[("src/parsers/message.rs", "Invalid part ID, could not find multipart.")];

/// Lets the known mail-parser debug assertions unwind into `parse_mail`'s guard; every
/// other panic goes to libFuzzer's hook (which aborts: a crash).
fn tolerate_known_upstream_assertions() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let libfuzzer_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let message = info
                .payload()
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str))
                .unwrap_or("");
            let known = info.location().is_some_and(|l| {
                l.file().contains("/mail-parser-")
                    && KNOWN_UPSTREAM
                        .iter()
                        .any(|(file, msg)| l.file().ends_with(file) && message == *msg)
            });
            if !known {
                libfuzzer_hook(info);
            }
        }));
    });
}

fuzz_target!(|raw: &[u8]| {
    tolerate_known_upstream_assertions();
    let opts = ParseOptions {
        own_addresses: vec!["aduan@banyumaskab.go.id".into()],
        own_id_domain: "banyumaskab.go.id".into(),
        received_at: Utc.with_ymd_and_hms(2026, 5, 4, 3, 2, 1).single().unwrap_or_default(),
    };
    match parse_mail(raw, &opts) {
        Ok(mail) => {
            // `message.attachments[i]` is `blobs[i]`: the poller writes the blobs first.
            assert_eq!(mail.message.attachments.len(), mail.blobs.len());
            for (a, b) in mail.message.attachments.iter().zip(&mail.blobs) {
                assert_eq!(a.sha256, b.sha256);
            }
            assert!(!mail.message.provider_id.is_empty());
            // A `Date` may never claim a time after the mail was received.
            assert!(mail.message.received_at <= opts.received_at);
            std::hint::black_box(format!("{mail:?}"));
        }
        Err(e) => {
            std::hint::black_box(e.to_string());
        }
    }
});
