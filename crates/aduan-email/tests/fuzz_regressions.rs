//! Inputs the `mime` fuzz target crashed on (tests/fuzz-inputs/SOURCE.txt, outside
//! tests/fixtures, whose mail count the fixture tests check), kept as tests so `cargo test`
//! covers them without the fuzzer.

use aduan_email::{ParseError, ParseOptions, parse_mail};
use chrono::DateTime;

fn opts() -> ParseOptions {
    ParseOptions {
        own_addresses: vec!["intake@aduan.test".into()],
        own_id_domain: "aduan.test".into(),
        received_at: DateTime::from_timestamp(1_776_700_000, 0).unwrap_or_default(),
    }
}

/// mail-parser's `debug_assert!` on a multipart of empty message/rfc822 parts: with debug
/// assertions on (as here) it panics inside the parser, and `parse_mail`'s guard turns that
/// into `ParserFailed` (the poller quarantines the mail and goes on); in a release build the
/// assertion is compiled out and the parser does not panic at all.
#[test]
fn a_panic_inside_mail_parser_costs_one_mail_not_the_poller() {
    let raw = include_bytes!("fuzz-inputs/nested-rfc822-part-id.eml");
    let got = parse_mail(raw, &opts());
    if cfg!(debug_assertions) {
        assert_eq!(got.err(), Some(ParseError::ParserFailed));
    } else {
        assert_ne!(got.err(), Some(ParseError::ParserFailed));
    }
}
