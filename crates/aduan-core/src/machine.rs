//! Addresses that can't be a resident: mailer daemons, `no-reply` senders, bounce
//! handlers, the system senders of mail and cloud providers. Mail from them is never a
//! complaint, and nothing automatic (receipt, identity request, status answer) is ever
//! sent to them: that would be backscatter or a mail loop (RFC 3834 §2).
//!
//! One table, used twice: by the email classifier (a sender signal) and by the store's
//! outbound guard (`refused:automated_recipient`), so the two can't disagree.

/// Local parts (lower case, with `.`, `-` and `_` removed) that never read replies.
const EXACT: &[&str] = &[
    "mailerdaemon",
    "postmaster",
    "postmast",
    "noreply",
    "noreplies",
    "donotreply",
    "dontreply",
    "donotrespond",
    "noresponse",
    "autoreply",
    "autoresponder",
    "autorespond",
    "mailerdeamon",
    "maildaemon",
    "mailadmin",
    "mmdf",
    "smtpgateway",
    "nobody",
    "listserv",
    "majordomo",
    "mailman",
    "fetchmaildaemon",
    "bounce",
    "bounces",
];

/// Local-part prefixes (same normalisation) of the same, followed by a separator or
/// digits: `noreply-…`, `no-reply.alerts`, `bounce-…` and `bounce123` (VERP),
/// `mailer-daemon-…`; but not `bouncer.joe`.
const PREFIXES: &[&str] =
    &["mailerdaemon", "noreply", "donotreply", "bounce", "bounces", "postmaster", "autoreply"];

/// Whole addresses of well-known notification senders (feedback loops, cloud providers).
const ADDRESSES: &[&str] = &[
    "staff@hotmail.com",
    "complaints@email-abuse.amazonses.com",
    "complaints@us-east-1.email-abuse.amazonses.com",
    "feedbackloop@comcast.net",
    "scomp@aol.net",
    "fbl@yahoo.com",
];

/// Domains (and their subdomains) whose every address is a provider's machine.
const DOMAINS: &[&str] = &["amazonses.com", "sns.amazonaws.com", "email-abuse.amazonses.com"];

/// Which rule says `address` is a machine's, if one does. `address` is `local@domain`;
/// case and a `+tag` don't matter.
pub fn machine_address(address: &str) -> Option<&'static str> {
    let address = address.trim().trim_matches(['<', '>']).to_ascii_lowercase();
    let (local, domain) = address.rsplit_once('@').unwrap_or((address.as_str(), ""));
    let base = local.split('+').next().unwrap_or(local);
    let normal: String = base.chars().filter(|c| !matches!(c, '.' | '-' | '_')).collect();
    if EXACT.contains(&normal.as_str()) {
        return Some("local_part");
    }
    if PREFIXES.iter().any(|p| has_prefix(base, p)) {
        return Some("local_part");
    }
    if ADDRESSES.contains(&address.as_str()) {
        return Some("notification_sender");
    }
    if DOMAINS
        .iter()
        .any(|d| domain == *d || domain.strip_suffix(d).is_some_and(|rest| rest.ends_with('.')))
    {
        return Some("notification_sender");
    }
    None
}

/// Whether the words of `local` (split at `.`, `-`, `_`, `=`) start with `prefix` written
/// as one or more whole words, or its first word is `prefix` and digits.
fn has_prefix(local: &str, prefix: &str) -> bool {
    let words: Vec<&str> = local.split(['.', '-', '_', '=']).filter(|w| !w.is_empty()).collect();
    let mut joined = String::new();
    for word in &words {
        joined.push_str(word);
        if joined == prefix {
            return true;
        }
        if !prefix.starts_with(joined.as_str()) {
            break;
        }
    }
    words
        .first()
        .and_then(|w| w.strip_prefix(prefix))
        .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether `address` can't be a resident's (see [`machine_address`]).
pub fn is_machine_address(address: &str) -> bool {
    machine_address(address).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_addresses_are_told_from_people() {
        for (address, rule) in [
            ("MAILER-DAEMON@mx.example.org", Some("local_part")),
            ("mailer-daemon", Some("local_part")),
            ("postmaster@example.org", Some("local_part")),
            ("post_master@example.jp", Some("local_part")),
            ("no-reply@example.com", Some("local_part")),
            ("noreply@github.com", Some("local_part")),
            ("no_reply+x@example.com", Some("local_part")),
            ("do-not-reply@bank.example", Some("local_part")),
            ("DoNotReply@bank.example", Some("local_part")),
            ("noreply-alerts@example.com", Some("local_part")),
            ("bounce+abc=warga.example.id@lists.example.org", Some("local_part")),
            ("bounces-123@example.org", Some("local_part")),
            ("<Mailer-Daemon@example.org>", Some("local_part")),
            ("staff@hotmail.com", Some("notification_sender")),
            ("MAILER_DAEMON@amazonses.com", Some("local_part")),
            ("0100abc@us-west-2.amazonses.com", Some("notification_sender")),
            ("no-reply@sns.amazonaws.com", Some("local_part")),
            // People.
            ("warga@example.id", None),
            ("staff@example.go.id", None),
            ("noraini@example.id", None),
            ("bouncer.joe@example.id", None),
            ("bounce123@example.org", Some("local_part")),
            ("no-reply.alerts@example.org", Some("local_part")),
            ("noreplyalerts@example.org", None),
            ("postman.pat@example.id", None),
            ("admin@example.id", None),
            ("budi.bounce@example.id", None),
            ("someone@notamazonses.com", None),
        ] {
            assert_eq!(machine_address(address), rule, "{address}");
        }
    }
}
