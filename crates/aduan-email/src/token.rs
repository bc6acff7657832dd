//! Reply tokens: what makes an official's emailed answer the OPD's answer.
//!
//! The `From:` of a mail proves nothing: anyone can write `From: kepala.dpu@…`. So every
//! mail to officials carries a `Reply-To` of its own, the intake address with a token in
//! its plus-part (`intake+<token>@domain`, or `intake+tag+<token>@` when the intake
//! address has a tag already). The token is HMAC-SHA256 under a secret only this desk
//! knows ([`ReplyKey`]) over a version, the ticket code and who the mail went to (the
//! official's address for a mail to one official, `opd:<code>` for one mail to an OPD's
//! officials together), truncated to 128 bits and written as 32 lower-case hex digits (mail
//! systems may lower-case local parts). An answer counts only when a recipient of the mail
//! (`Delivered-To`, `X-Original-To`, `To`, `Cc`) carries the token of the ticket it answers
//! and of the official it claims to come from; compared in constant time.
//!
//! The key is `[channels.email] reply_token_secret` (at least 16 bytes) or, when that is
//! not set, 32 random bytes generated once and kept in `<storage.dir>/email-reply-token.key`
//! (mode 0600, created atomically, so instances sharing the storage volume share it).
//! Changing the key invalidates the tokens of mails already sent: their answers become
//! notes for an operator until the official answers a newer mail.

use std::io::Write;
use std::path::{Path, PathBuf};

use aduan_connector::config::Redacted;
use aduan_core::TicketCode;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::EmailError;

/// The shortest secret accepted.
pub const MIN_SECRET_BYTES: usize = 16;
/// The file the generated key is kept in, under the storage directory.
pub const KEY_FILE: &str = "email-reply-token.key";
/// Bytes of the MAC kept in a token.
const TOKEN_BYTES: usize = 16;
/// The version bound into every token.
const VERSION: &str = "aduan-reply-v1";

/// Who a mail with a token went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recipient<'a> {
    /// One official's address (compared lower case).
    Official(&'a str),
    /// All officials of one OPD, by its registry code.
    Opd(&'a str),
}

/// The secret reply tokens are made with (`Debug` shows `Redacted(***)`).
#[derive(Debug, Clone)]
pub struct ReplyKey(Redacted<Vec<u8>>);

impl ReplyKey {
    /// A key from a configured secret of at least [`MIN_SECRET_BYTES`] bytes.
    pub fn new(secret: &[u8]) -> Result<ReplyKey, EmailError> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(EmailError::Config(format!(
                "reply_token_secret must be at least {MIN_SECRET_BYTES} bytes"
            )));
        }
        Ok(ReplyKey(Redacted(secret.to_vec())))
    }

    /// The key kept in `dir/`[`KEY_FILE`], generated (32 random bytes, hex) on first use.
    pub fn load_or_create(dir: &Path) -> Result<ReplyKey, EmailError> {
        let path = dir.join(KEY_FILE);
        if let Some(key) = read_key(&path)? {
            return Ok(key);
        }
        std::fs::create_dir_all(dir)?;
        let bytes: [u8; 32] = rand::random();
        let tmp = dir.join(format!(".{KEY_FILE}.{}", hex::encode(&bytes[..4])));
        {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut f = options.open(&tmp)?;
            f.write_all(hex::encode(bytes).as_bytes())?;
            f.sync_all()?;
        }
        // A hard link never replaces: when another instance won the race, its key stays
        // and is the one used.
        let linked = std::fs::hard_link(&tmp, &path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => {
                tracing::info!(
                    channel = "email",
                    file = %path.display(),
                    "Generated the reply token key (set [channels.email] reply_token_secret to choose one)."
                );
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e.into()),
        }
        read_key(&path)?.ok_or_else(|| key_file_error(&path))
    }

    fn mac(&self, ticket: TicketCode, to: Recipient<'_>) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        let (kind, who) = match to {
            Recipient::Official(a) => ("official", a.trim().to_lowercase()),
            Recipient::Opd(o) => ("opd", o.trim().to_owned()),
        };
        for part in [VERSION, &ticket.to_string(), kind, &who] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac
    }

    /// The token for a mail about `ticket` to `to`: 32 lower-case hex digits.
    pub fn token(&self, ticket: TicketCode, to: Recipient<'_>) -> String {
        let full = self.mac(ticket, to).finalize().into_bytes();
        hex::encode(&full[..TOKEN_BYTES])
    }

    /// The key of the officials' action links derived from this one
    /// ([`aduan_core::action_link::ActionKey::derive`]: its own label, so an action token
    /// is never a reply token).
    pub fn action_key(
        &self,
    ) -> Result<aduan_core::action_link::ActionKey, aduan_core::action_link::LinkError> {
        aduan_core::action_link::ActionKey::derive(&self.0.0)
    }

    /// Whether `token` is the token for `ticket` and `to` (constant time).
    pub fn verify(&self, token: &str, ticket: TicketCode, to: Recipient<'_>) -> bool {
        let Ok(bytes) = hex::decode(token.trim().to_ascii_lowercase()) else { return false };
        bytes.len() == TOKEN_BYTES && self.mac(ticket, to).verify_truncated_left(&bytes).is_ok()
    }
}

fn key_file_error(path: &Path) -> EmailError {
    EmailError::Config(format!(
        "{} does not hold a reply token key (64 hex digits); remove it to make a new one",
        path.display()
    ))
}

fn read_key(path: &PathBuf) -> Result<Option<ReplyKey>, EmailError> {
    match std::fs::read_to_string(path) {
        Ok(s) => match hex::decode(s.trim()) {
            Ok(bytes) if bytes.len() >= MIN_SECRET_BYTES => Ok(Some(ReplyKey(Redacted(bytes)))),
            _ => Err(key_file_error(path)),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The reply address carrying `token`: the plus-part appended to `address`'s local part
/// (`intake@d` → `intake+<token>@d`, `intake+t1@d` → `intake+t1+<token>@d`).
pub fn reply_address(address: &str, token: &str) -> String {
    match address.rsplit_once('@') {
        Some((local, domain)) => format!("{local}+{token}@{domain}"),
        None => format!("{address}+{token}"),
    }
}

/// The token candidates in recipient addresses: every plus-part of 32 hex digits.
pub fn tokens_in<'a>(addresses: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for a in addresses {
        let a = a.trim().trim_matches(['<', '>']);
        let local = a.rsplit_once('@').map_or(a, |(l, _)| l);
        for part in local.split('+').skip(1) {
            let part = part.to_ascii_lowercase();
            if part.len() == TOKEN_BYTES * 2
                && part.bytes().all(|b| b.is_ascii_hexdigit())
                && !out.contains(&part)
                && out.len() < 16
            {
                out.push(part);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(n: u8) -> TicketCode {
        TicketCode::from_entropy([n, 2, 3, 4, 5])
    }

    #[test]
    fn a_token_is_bound_to_its_ticket_and_recipient() {
        let key = ReplyKey::new(b"0123456789abcdef-secret").unwrap();
        let official = Recipient::Official("Kepala.DPU@example.go.id");
        let t = key.token(code(1), official);
        assert_eq!(t.len(), 32);
        assert!(key.verify(&t, code(1), Recipient::Official("kepala.dpu@example.go.id")));
        assert!(key.verify(&t.to_uppercase(), code(1), official));
        assert!(!key.verify(&t, code(2), official), "another ticket");
        assert!(!key.verify(&t, code(1), Recipient::Official("kepala.dlh@example.go.id")));
        assert!(!key.verify(&t, code(1), Recipient::Opd("DPU")));
        let opd = key.token(code(1), Recipient::Opd("DPU"));
        assert!(key.verify(&opd, code(1), Recipient::Opd("DPU")));
        assert!(!key.verify(&opd, code(1), Recipient::Opd("DLH")), "another OPD");
        // Another key, a cut token, garbage.
        let other = ReplyKey::new(b"another secret of 16+").unwrap();
        assert!(!other.verify(&t, code(1), official));
        assert!(!key.verify(&t[..30], code(1), official));
        assert!(!key.verify("zz", code(1), official));
        assert!(ReplyKey::new(b"short").is_err());
    }

    #[test]
    fn tokens_travel_in_the_plus_part() {
        let t = "0123456789abcdef0123456789ABCDEF";
        assert_eq!(reply_address("intake@aduan.test", "x"), "intake+x@aduan.test");
        assert_eq!(reply_address("intake+t1@aduan.test", "x"), "intake+t1+x@aduan.test");
        let found = tokens_in([
            format!("<intake+t1+{t}@aduan.test>").as_str(),
            "intake+ADU-7K3M9QXP@aduan.test",
            "warga@example.id",
        ]);
        assert_eq!(found, vec![t.to_ascii_lowercase()]);
    }

    #[test]
    fn the_generated_key_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let a = ReplyKey::load_or_create(dir.path()).unwrap();
        let b = ReplyKey::load_or_create(dir.path()).unwrap();
        assert_eq!(a.0, b.0);
        assert_eq!(a.0.0.len(), 32);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "{mode:o}");
        }
        std::fs::write(dir.path().join(KEY_FILE), "nonsense").unwrap();
        assert!(ReplyKey::load_or_create(dir.path()).is_err());
    }

    #[test]
    fn debug_never_shows_the_key() {
        let key = ReplyKey::new(b"zq-reply-key-secret-77").unwrap();
        let shown = format!("{key:?} {key:#?}");
        assert!(!shown.contains("zq-reply"), "{shown}");
        // Nor the bytes as numbers (`[122, 113, …]`).
        assert!(!shown.contains("122"), "{shown}");
        assert!(shown.contains("***"), "{shown}");
    }
}
