//! Helpers for tests against the real mail peer that `cargo xtask test` starts (Dovecot +
//! Postfix, see `xtask/src/mail.rs`): where it is, IMAP sessions for its users, delivery
//! over SMTP, APPEND, and waiting for mail to arrive.
//!
//! The peer has the users `intake`, `warga`, `kepala.dpu`, `kepala.dlh` and `outbox` at
//! `aduan.test`, and delivers `user+tag@aduan.test` into the folder `tag` of `user`: every
//! test picks its own tag ([`unique_tag`]) and so its own folders.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::TryStreamExt;

use crate::imap::{self, ImapAccount, ImapTls, Session};

/// Whether this is the full suite, where a missing peer is a failure: the one reading of
/// `ADUAN_TEST_FULL`, `aduan_store::testing`'s.
pub use aduan_store::testing::{full_suite, missing_peer};

/// The running mail peer.
#[derive(Debug, Clone)]
pub struct MailPeer {
    pub smtp: SocketAddr,
    pub imap: SocketAddr,
    pub imaps: SocketAddr,
    /// The CA that signed the server certificate (for `imap_ca_file`).
    pub ca: PathBuf,
    pub domain: String,
    pub password: String,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl MailPeer {
    /// The peer of `ADUAN_TEST_SMTP`, `ADUAN_TEST_IMAP`, … . Without them: `None` after a
    /// skip notice, or a panic under `ADUAN_TEST_FULL`.
    pub fn from_env() -> Option<MailPeer> {
        let found = (|| {
            Some(MailPeer {
                smtp: var("ADUAN_TEST_SMTP")?.parse().ok()?,
                imap: var("ADUAN_TEST_IMAP")?.parse().ok()?,
                imaps: var("ADUAN_TEST_IMAPS")?.parse().ok()?,
                ca: var("ADUAN_TEST_MAIL_CA")?.into(),
                domain: var("ADUAN_TEST_MAIL_DOMAIN").unwrap_or_else(|| "aduan.test".into()),
                password: var("ADUAN_TEST_MAIL_PASSWORD").unwrap_or_else(|| "secret".into()),
            })
        })();
        if found.is_none() {
            missing_peer(
                "the mail peer is not: ADUAN_TEST_SMTP, ADUAN_TEST_IMAP, ADUAN_TEST_IMAPS and \
                 ADUAN_TEST_MAIL_CA are needed (`cargo xtask mail-peer` prints them)",
            );
        }
        found
    }

    /// `user@domain`, or `user+tag@domain`.
    pub fn address(&self, user: &str, tag: Option<&str>) -> String {
        match tag {
            Some(t) => format!("{user}+{t}@{}", self.domain),
            None => format!("{user}@{}", self.domain),
        }
    }

    /// The IMAP login of `user` over plain TCP.
    pub fn account(&self, user: &str) -> ImapAccount {
        ImapAccount {
            host: self.imap.ip().to_string(),
            port: self.imap.port(),
            tls: ImapTls::None,
            ca_file: None,
            user: self.address(user, None),
            password: crate::Secret::new(self.password.clone()),
        }
    }

    /// A logged-in session of `user`.
    pub async fn session(&self, user: &str) -> Session {
        let tls = imap::tls_connector(None).expect("TLS connector");
        imap::connect(&self.account(user), &tls)
            .await
            .unwrap_or_else(|e| panic!("IMAP login of {user} failed: {e}"))
    }

    /// Creates `folder` of `user` unless it exists.
    pub async fn create_folder(&self, user: &str, folder: &str) {
        let mut s = self.session(user).await;
        imap::ensure_mailbox(&mut s, folder).await.expect("create folder");
        let _ = s.logout().await;
    }

    /// Puts `raw` into `folder` of `user` (creating the folder).
    pub async fn append(&self, user: &str, folder: &str, raw: &[u8]) {
        let mut s = self.session(user).await;
        imap::ensure_mailbox(&mut s, folder).await.expect("create folder");
        s.append(folder, None, None, raw).await.unwrap_or_else(|e| panic!("APPEND: {e}"));
        let _ = s.logout().await;
    }

    /// Puts every mail of `raws` into `folder` of `user` over one session.
    pub async fn append_all(&self, user: &str, folder: &str, raws: &[Vec<u8>]) {
        let mut s = self.session(user).await;
        imap::ensure_mailbox(&mut s, folder).await.expect("create folder");
        for raw in raws {
            s.append(folder, None, None, raw).await.unwrap_or_else(|e| panic!("APPEND: {e}"));
        }
        let _ = s.logout().await;
    }

    /// Hands `raw` to Postfix over SMTP for `to`, from the envelope sender `from`.
    pub async fn smtp_send(&self, from: &str, to: &[&str], raw: &[u8]) {
        use lettre::AsyncTransport;
        let transport = lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::builder_dangerous(
            self.smtp.ip().to_string(),
        )
        .port(self.smtp.port())
        .build();
        let envelope = lettre::address::Envelope::new(
            Some(from.parse().expect("envelope sender")),
            to.iter().map(|t| t.parse().expect("envelope recipient")).collect(),
        )
        .expect("envelope");
        transport.send_raw(&envelope, raw).await.unwrap_or_else(|e| panic!("SMTP: {e}"));
    }

    /// The raw mails in `folder` of `user` (none when the folder does not exist).
    pub async fn messages(&self, user: &str, folder: &str) -> Vec<Vec<u8>> {
        let mut s = self.session(user).await;
        let out = match s.select(folder).await {
            Ok(m) if m.exists > 0 => {
                let stream = s.fetch("1:*", "BODY.PEEK[]").await.expect("FETCH");
                let fetches: Vec<_> = stream.try_collect().await.expect("FETCH");
                fetches.iter().filter_map(|f| f.body().map(<[u8]>::to_vec)).collect()
            }
            _ => Vec::new(),
        };
        let _ = s.logout().await;
        out
    }

    /// How many mails `folder` of `user` holds.
    pub async fn count(&self, user: &str, folder: &str) -> u32 {
        let mut s = self.session(user).await;
        let n = s.select(folder).await.map(|m| m.exists).unwrap_or(0);
        let _ = s.logout().await;
        n
    }

    /// Waits (up to `timeout`) until `folder` of `user` holds at least `n` mails, and
    /// returns them.
    pub async fn wait_for(
        &self,
        user: &str,
        folder: &str,
        n: usize,
        timeout: Duration,
    ) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        loop {
            let mails = self.messages(user, folder).await;
            if mails.len() >= n {
                return mails;
            }
            assert!(
                Instant::now() < deadline,
                "{user}/{folder} holds {} mails, not {n}, after {timeout:?}",
                mails.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A tag unique to this call: a test's own folders (`intake+<tag>@…`).
pub fn unique_tag(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("{prefix}{}x{nanos:x}x{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// A plain RFC 5322 mail.
pub fn plain_mail(from: &str, to: &str, subject: &str, message_id: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{message_id}>\r\n\
         Date: Mon, 20 Apr 2026 10:00:00 +0700\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{}\r\n",
        body.replace('\n', "\r\n")
    )
    .into_bytes()
}
