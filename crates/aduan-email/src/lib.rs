//! The email channel: complaints read from an IMAP mailbox, answers sent over SMTP, replies
//! threaded into their tickets, and OPD officials answering tickets by replying to mail.
//!
//! - **Pure parts** (no IO, tested on real mails): [`parse`] (RFC 5322 bytes →
//!   `InboundMessage`), [`classify`] (bounces, auto-replies, lists, our own mail),
//!   [`text`] (quoted history and signatures cut), [`compose`] (outbound mails),
//!   [`official`] (which mails are an official's answer).
//! - **IO shell**: [`imap`] (connections and commands), `poll` (the poller behind
//!   [`Connector::run`]), `send` (SMTP behind [`Connector::send`]).
//! - [`testkit`]: helpers for tests against a real Dovecot + Postfix (`cargo xtask test`).

pub mod classify;
pub mod compose;
pub mod imap;
mod message_id;
pub mod official;
pub mod parse;
mod poll;
pub mod section;
mod send;
pub mod spam;
pub mod testkit;
pub mod text;
pub mod token;

use std::path::PathBuf;
use std::time::Duration;

use aduan_connector::{Connector, ConnectorContext, ConnectorError, SendError};
use aduan_core::Channel;
use aduan_store::OutboxItem;
use lettre::message::Mailbox;

pub use classify::Automated;
pub use imap::{ImapAccount, ImapTls};
pub use official::Officials;
pub use parse::{Blob, ParseError, ParseOptions, ParsedMail, parse_mail};
pub use poll::{Checkpoint, checkpoint_key};
pub use section::EmailSection;

/// Everything that goes wrong in the email channel.
#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("IMAP: {0}")]
    Imap(String),
    #[error("IMAP login failed: {0}")]
    Login(String),
    #[error("{0} timed out")]
    Timeout(&'static str),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("store: {0}")]
    Store(#[from] aduan_store::StoreError),
}

impl From<async_imap::error::Error> for EmailError {
    fn from(e: async_imap::error::Error) -> Self {
        match e {
            async_imap::error::Error::Io(io) => EmailError::Io(io),
            other => EmailError::Imap(other.to_string()),
        }
    }
}

/// The `[channels.email]` settings, resolved (secrets read, defaults applied).
#[derive(Debug, Clone)]
pub struct EmailConfig {
    pub account: ImapAccount,
    /// The mailbox complaints arrive in (`INBOX`).
    pub mailbox: String,
    /// Where processed mail is moved (`Processed`); created when missing.
    pub processed_mailbox: String,
    /// Where unreadable mail is moved (`Quarantine`); created when missing.
    pub quarantine_mailbox: String,
    /// Where automated mail is moved (`Automated`); created when missing. See
    /// [`classify`]: bounces, auto-replies, reports, list mail never open a ticket and are
    /// never answered, and are kept here rather than deleted.
    pub automated_mailbox: String,
    /// lettre URL syntax (`smtp://host:port`, `smtps://user:pass@host`, `?tls=required`).
    pub smtp_url: Secret,
    /// The `From` of our mails (`Lapak Aduan <intake@aduan.test>`); replies come back to it.
    pub from: String,
    /// Where attachments (and the raw mails) are written, by content hash.
    pub attachments_dir: PathBuf,
    /// The officials' addresses of the OPD registry.
    pub officials: Officials,
    /// How often IDLE is renewed, or the mailbox polled without IDLE.
    pub poll: Duration,
    /// The key of the reply tokens in the `Reply-To` of mails to officials (at least 16
    /// bytes); `None`: a key generated once and kept in `attachments_dir` (see [`token`]).
    pub reply_token_secret: Option<Secret>,
    /// The `authserv-id` of our own MTA's `Authentication-Results`; when set, an
    /// official's answer also needs a DMARC, DKIM or SPF pass for its From domain there.
    pub trusted_authserv_id: Option<String>,
    /// Mails larger than this (`RFC822.SIZE`) are not fetched: quarantined, and a human
    /// sender told so.
    pub max_message_bytes: u64,
}

/// The default of `max_message_bytes`: 25 MiB.
pub const DEFAULT_MAX_MESSAGE_BYTES: u64 = 25 * 1024 * 1024;

/// A string that is never printed (the one secret type of all channels).
pub use aduan_connector::Secret;

/// The email connector: poller and sender.
pub struct EmailConnector {
    config: EmailConfig,
    tls: tokio_rustls::TlsConnector,
    parse_options: ParseOptions,
    smtp: send::Smtp,
    reply_key: token::ReplyKey,
    /// One "your mail is too large" answer per sender per hour.
    too_large_answers: governor::DefaultKeyedRateLimiter<String>,
}

impl EmailConnector {
    /// Checks the configuration and prepares TLS and the SMTP pool (nothing connects yet).
    pub fn new(config: EmailConfig) -> Result<EmailConnector, EmailError> {
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|_| EmailError::Config(format!("from {:?} is not an address", config.from)))?;
        let tls = imap::tls_connector(config.account.ca_file.as_deref())?;
        let mut own = vec![from.email.to_string().to_lowercase()];
        if config.account.user.contains('@') {
            own.push(config.account.user.to_lowercase());
        }
        let parse_options = ParseOptions {
            own_addresses: own,
            own_id_domain: from.email.domain().to_lowercase(),
            received_at: chrono::DateTime::UNIX_EPOCH,
        };
        let reply_key = match &config.reply_token_secret {
            Some(secret) => token::ReplyKey::new(secret.expose().as_bytes())?,
            None => token::ReplyKey::load_or_create(&config.attachments_dir)?,
        };
        let composer = compose::Composer { from, reply_key: Some(reply_key.clone()) };
        let smtp = send::Smtp::new(config.smtp_url.expose(), composer)?;
        let too_large_answers =
            governor::RateLimiter::keyed(governor::Quota::per_hour(std::num::NonZeroU32::MIN));
        Ok(EmailConnector { config, tls, parse_options, smtp, reply_key, too_large_answers })
    }

    pub fn config(&self) -> &EmailConfig {
        &self.config
    }

    /// Writes blobs to the attachment store (each durably, several at once).
    async fn write_blobs(
        &self,
        store: &aduan_connector::BlobStore,
        blobs: Vec<Blob>,
    ) -> Result<(), EmailError> {
        let mut tasks = tokio::task::JoinSet::new();
        let mut seen = std::collections::HashSet::new();
        for blob in blobs {
            if !seen.insert(blob.sha256.clone()) {
                continue;
            }
            let store = store.clone();
            tasks.spawn_blocking(move || store.put_blocking(&blob.data).map(|_| ()));
            while tasks.len() >= 8 {
                if let Some(r) = tasks.join_next().await {
                    r.map_err(|e| EmailError::Io(std::io::Error::other(e)))??;
                }
            }
        }
        while let Some(r) = tasks.join_next().await {
            r.map_err(|e| EmailError::Io(std::io::Error::other(e)))??;
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Connector for EmailConnector {
    fn name(&self) -> &'static str {
        "email"
    }

    fn channels(&self) -> Vec<Channel> {
        vec![Channel::Email]
    }

    /// One IMAP poller per mailbox across all instances: two would fetch, store and move
    /// the same mails concurrently.
    fn exclusive(&self) -> Option<String> {
        let account = &self.config.account;
        Some(format!("email:{}@{}/{}", account.user, account.host, self.config.mailbox))
    }

    async fn run(&self, cx: ConnectorContext) -> Result<(), ConnectorError> {
        poll::run(self, cx).await
    }

    async fn send(&self, item: &OutboxItem) -> Result<Option<String>, SendError> {
        self.smtp.send(item).await
    }
}
