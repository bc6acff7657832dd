//! The MIME intake path: `aduan_email::parse_mail`, exactly as the IMAP poller calls it on
//! each fetched mail (raw RFC 5322 bytes in, a message or a quarantine reason out).
#![no_main]

use aduan_email::{ParseOptions, parse_mail};
use chrono::{TimeZone, Utc};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|raw: &[u8]| {
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
