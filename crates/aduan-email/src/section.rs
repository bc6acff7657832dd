//! `[channels.email]`: the section as written in the configuration, its checks, and the
//! [`EmailConfig`] it resolves to (the binary adds the officials of the OPD registry).

use std::path::PathBuf;

use aduan_connector::Secret;
use aduan_connector::config::{BuildContext, ChannelConfig, Check, Problem, Resolve};
use serde::{Deserialize, Serialize};

use crate::{EmailConfig, ImapAccount, ImapTls, Officials};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailSection {
    pub enabled: bool,
    pub imap_host: Option<String>,
    pub imap_port: Option<u16>,
    /// `none`, `starttls` or `tls`.
    pub imap_tls: Option<String>,
    /// PEM file of the CA(s) that signed the IMAP server's certificate, instead of the
    /// public web roots (a private or test server).
    pub imap_ca_file: Option<PathBuf>,
    pub imap_user: Option<String>,
    pub imap_password: Option<Secret>,
    pub imap_password_file: Option<PathBuf>,
    pub mailbox: Option<String>,
    pub processed_mailbox: Option<String>,
    pub quarantine_mailbox: Option<String>,
    /// Where automated mail (bounces, auto-replies, reports, list mail) is moved
    /// (`Automated`); created when missing.
    pub automated_mailbox: Option<String>,
    pub smtp_url: Option<Secret>,
    pub smtp_url_file: Option<PathBuf>,
    pub from: Option<String>,
    /// Seconds between IDLE renewals (or polls, when the server has no IDLE).
    pub poll_secs: Option<u64>,
    /// The key of the reply tokens in the `Reply-To` of mails to officials (at least 16
    /// bytes). Unset: generated once into `<storage.dir>/email-reply-token.key`.
    pub reply_token_secret: Option<Secret>,
    pub reply_token_secret_file: Option<PathBuf>,
    /// The `authserv-id` of our own MTA's `Authentication-Results`; when set, officials'
    /// answers also need a DMARC, DKIM or SPF pass for their From domain there.
    pub trusted_authserv_id: Option<String>,
    /// Mails larger than this are not fetched (quarantined; a human sender is told). 25 MiB.
    pub max_message_bytes: Option<u64>,
}

impl ChannelConfig for EmailSection {
    const KEY: &'static str = "email";
    type Settings = EmailConfig;

    fn enabled(&self) -> bool {
        self.enabled
    }

    fn problems(&self) -> Vec<Problem> {
        let e = self;
        let mut c = Check::channel(Self::KEY);
        let password = c.secret("imap_password", &e.imap_password, &e.imap_password_file);
        let smtp = c.secret("smtp_url", &e.smtp_url, &e.smtp_url_file);
        c.one_of("imap_tls", &e.imap_tls, &["none", "starttls", "tls"]);
        c.url("smtp_url", smtp.as_ref().map(Secret::expose), &["smtp", "smtps"]);
        if let Some(f) = &e.imap_ca_file
            && !f.is_file()
        {
            c.push("imap_ca_file", format!("{} does not exist", f.display()));
        }
        let reply_secret =
            c.secret("reply_token_secret", &e.reply_token_secret, &e.reply_token_secret_file);
        if reply_secret.as_ref().is_some_and(|s| s.expose().len() < crate::token::MIN_SECRET_BYTES)
        {
            c.push(
                "reply_token_secret",
                format!(
                    "must be at least {} bytes (leave it unset to have one generated)",
                    crate::token::MIN_SECRET_BYTES
                ),
            );
        }
        if e.max_message_bytes
            .is_some_and(|m| !(1024..=crate::parse::MAX_MAIL_BYTES as u64).contains(&m))
        {
            c.push(
                "max_message_bytes",
                format!(
                    "must be from 1024 to {} (the parser's limit)",
                    crate::parse::MAX_MAIL_BYTES
                ),
            );
        }
        if e.poll_secs.is_some_and(|s| !(5..=1500).contains(&s)) {
            c.push("poll_secs", "must be from 5 to 1500 (IDLE must be renewed within 29 minutes)");
        }
        if let Some(from) = &e.from
            && !from.contains('@')
        {
            c.push(
                "from",
                format!("{from:?} is not an address like \"Lapak Aduan <aduan@example.go.id>\""),
            );
        }
        if e.enabled {
            c.require("imap_host", &e.imap_host);
            c.require("imap_user", &e.imap_user);
            c.require("imap_password", &password);
            c.require("smtp_url", &smtp);
            c.require("from", &e.from);
            c.not_empty("imap_password", &e.imap_password_file, &password);
        }
        c.finish()
    }

    /// Secrets read (also from `*_file`), defaults applied (`INBOX`, `Processed`,
    /// `Quarantine`, port 143 or 993, 300 s between IDLE renewals); no officials yet.
    fn settings(&self, cx: &BuildContext) -> Result<EmailConfig, Vec<Problem>> {
        let mut r = Resolve::channel(Self::KEY);
        let password = r.secret("imap_password", &self.imap_password, &self.imap_password_file);
        let smtp = r.secret("smtp_url", &self.smtp_url, &self.smtp_url_file);
        let tls = match self.imap_tls.as_deref().unwrap_or("none").parse::<ImapTls>() {
            Ok(t) => t,
            Err(e) => {
                r.push("imap_tls", e.to_string());
                ImapTls::None
            }
        };
        let host = r.required("imap_host", self.imap_host.clone());
        let user = r.required("imap_user", self.imap_user.clone());
        let password = r.required("imap_password", password);
        let smtp_url = r.required("smtp_url", smtp);
        let from = r.required("from", self.from.clone());
        let reply_token_secret =
            r.secret("reply_token_secret", &self.reply_token_secret, &self.reply_token_secret_file);
        let default_port = if tls == ImapTls::Tls { 993 } else { 143 };
        r.done(EmailConfig {
            account: ImapAccount {
                host,
                port: self.imap_port.unwrap_or(default_port),
                tls,
                ca_file: self.imap_ca_file.clone(),
                user,
                password,
            },
            mailbox: self.mailbox.clone().unwrap_or_else(|| "INBOX".into()),
            processed_mailbox: self.processed_mailbox.clone().unwrap_or_else(|| "Processed".into()),
            quarantine_mailbox: self
                .quarantine_mailbox
                .clone()
                .unwrap_or_else(|| "Quarantine".into()),
            automated_mailbox: self.automated_mailbox.clone().unwrap_or_else(|| "Automated".into()),
            smtp_url,
            from,
            attachments_dir: cx.attachments_dir.clone(),
            officials: Officials::default(),
            poll: std::time::Duration::from_secs(self.poll_secs.unwrap_or(300)),
            reply_token_secret,
            trusted_authserv_id: self.trusted_authserv_id.clone().filter(|a| !a.trim().is_empty()),
            max_message_bytes: self.max_message_bytes.unwrap_or(crate::DEFAULT_MAX_MESSAGE_BYTES),
        })
    }
}
