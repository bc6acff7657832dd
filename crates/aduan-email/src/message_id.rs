//! Message-IDs: what makes one usable, the prefix of ours, and the thread references of a
//! mail. Shared by parsing, classification and composing (so none of them imports
//! another for it).

use mail_parser::{HeaderValue, Message};

/// The local part prefix of the Message-IDs we generate (`aduan.<code>.<random>@domain`).
pub const OWN_ID_PREFIX: &str = "aduan.";

/// Whether `id` is usable as a provider id or in a `References` header.
pub(crate) fn valid_id(id: &str) -> bool {
    (3..=250).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>')
}

/// The ids of a header that mail-parser read as a list of message ids.
fn ids_of(value: &HeaderValue<'_>) -> Vec<String> {
    let raw: Vec<&str> = match value {
        HeaderValue::Text(t) => vec![t.as_ref()],
        HeaderValue::TextList(list) => list.iter().map(|t| t.as_ref()).collect(),
        _ => Vec::new(),
    };
    raw.into_iter()
        .map(|id| id.trim().trim_matches(['<', '>']).trim().to_owned())
        .filter(|id| valid_id(id))
        .collect()
}

/// `In-Reply-To` first, then `References` from the parent backwards, without repeats.
pub(crate) fn thread_references(msg: &Message<'_>) -> Vec<String> {
    let mut older = ids_of(msg.references());
    older.reverse();
    let mut refs: Vec<String> = Vec::new();
    for id in ids_of(msg.in_reply_to()).into_iter().chain(older) {
        if !refs.contains(&id) {
            refs.push(id);
        }
    }
    refs.truncate(50);
    refs
}

/// The plus-tag of our return paths (VERP): the mail with our Message-ID
/// `aduan.<code>.<random>@<domain>` is sent with the envelope sender
/// `<from local part>+b.<code>.<random>@<from domain>`, so a bounce comes back to an
/// address that names the mail, whatever the bounce quotes of it. The domain is the
/// `From`'s: SPF checks the envelope sender's domain and DMARC aligns it with the
/// `From`'s, so the plus-tag changes neither. It needs what the reply tokens already need:
/// the mail server delivers `local+anything@` to `local@`.
pub(crate) const VERP_TAG: &str = "b.";

/// The envelope sender of the mail with our Message-ID `id`, sent from `local@domain`;
/// `None` for an id that isn't ours or an address over the 64 characters of a local part.
pub(crate) fn verp_sender(local: &str, domain: &str, id: &str) -> Option<String> {
    let unique = id.strip_prefix(OWN_ID_PREFIX)?.rsplit_once('@')?.0;
    let local = format!("{local}+{VERP_TAG}{unique}");
    (local.len() <= 64 && !unique.contains('+')).then(|| format!("{local}@{domain}"))
}

/// Our Message-IDs (of `own_domain`) that VERP return paths among `addresses` name.
pub(crate) fn verp_ids<'a>(
    addresses: impl IntoIterator<Item = &'a str>,
    own_domain: &str,
) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    if own_domain.is_empty() {
        return ids;
    }
    for a in addresses {
        let a = a.trim().trim_matches(['<', '>']);
        let local = a.rsplit_once('@').map_or(a, |(l, _)| l);
        for part in local.split('+').skip(1) {
            let Some(unique) = part
                .get(..VERP_TAG.len())
                .filter(|t| t.eq_ignore_ascii_case(VERP_TAG))
                .map(|_| &part[VERP_TAG.len()..])
            else {
                continue;
            };
            let id = format!("{OWN_ID_PREFIX}{}@{own_domain}", unique.to_ascii_lowercase());
            if !unique.is_empty() && valid_id(&id) && !ids.contains(&id) && ids.len() < 16 {
                ids.push(id);
            }
        }
    }
    ids
}

/// An `xtext` (RFC 3461: `+XX` for a byte) decoded; ENVIDs and original recipients are
/// written so.
pub(crate) fn xtext_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'+'
            && let Some(v) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_return_path_names_its_mail() {
        let id = "aduan.adu-7k3m9qxp.0a1b2c3d4e5f6a7b@aduan.test";
        let sender = verp_sender("intake", "aduan.test", id).unwrap();
        assert_eq!(sender, "intake+b.adu-7k3m9qxp.0a1b2c3d4e5f6a7b@aduan.test");
        // Mail servers may change the case of what they return.
        let upper = sender.to_ascii_uppercase();
        assert_eq!(verp_ids([upper.as_str()], "aduan.test"), vec![id.to_owned()]);
        assert_eq!(verp_ids([format!("<{sender}>").as_str()], "aduan.test"), vec![id.to_owned()]);
        // Not ours, or no tag: nothing.
        assert_eq!(verp_sender("intake", "aduan.test", "abc@example.id"), None);
        assert!(
            verp_ids(["intake+ADU-7K3M9QXP@aduan.test", "intake@aduan.test"], "aduan.test")
                .is_empty()
        );
        assert!(verp_ids([sender.as_str()], "").is_empty());
        // Too long for a local part: no VERP.
        assert_eq!(verp_sender(&"x".repeat(40), "aduan.test", id), None);
    }

    #[test]
    fn xtext_is_decoded() {
        assert_eq!(xtext_decode("aduan.x+2By@aduan.test"), "aduan.x+y@aduan.test");
        assert_eq!(xtext_decode("plain"), "plain");
        assert_eq!(xtext_decode("bad+zz"), "bad+zz");
    }
}
