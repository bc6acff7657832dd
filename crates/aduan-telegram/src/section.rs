//! `[channels.telegram]`: the section as written in the configuration, its checks, and the
//! [`TelegramConfig`] it resolves to (the webhook URL is `{public_url}/hooks/telegram`).

use std::path::PathBuf;
use std::time::Duration;

use aduan_connector::Secret;
use aduan_connector::config::{BuildContext, ChannelConfig, Check, Problem, Resolve};
use serde::{Deserialize, Serialize};

use crate::{Mode, TelegramConfig};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelegramSection {
    pub enabled: bool,
    pub token: Option<Secret>,
    pub token_file: Option<PathBuf>,
    pub api_url: Option<String>,
    /// `polling` or `webhook`.
    pub mode: Option<String>,
    pub secret_token: Option<Secret>,
    pub secret_token_file: Option<PathBuf>,
    /// Take messages from groups and supergroups too (default: private chats only).
    pub allow_groups: bool,
    /// How long one `getUpdates` long poll waits (default 25).
    pub poll_timeout_secs: Option<u64>,
}

impl ChannelConfig for TelegramSection {
    const KEY: &'static str = "telegram";
    type Settings = TelegramConfig;

    fn enabled(&self) -> bool {
        self.enabled
    }

    fn problems(&self) -> Vec<Problem> {
        let t = self;
        let mut c = Check::channel(Self::KEY);
        let token = c.secret("token", &t.token, &t.token_file);
        let webhook_secret = c.secret("secret_token", &t.secret_token, &t.secret_token_file);
        c.one_of("mode", &t.mode, &["polling", "webhook"]);
        c.url("api_url", t.api_url.as_deref(), &["http", "https"]);
        if t.enabled {
            c.require("token", &token);
            c.not_empty("token", &t.token_file, &token);
            if t.mode.as_deref() == Some("webhook") {
                c.require("secret_token", &webhook_secret);
                c.strong("secret_token", &t.secret_token_file, &webhook_secret);
            }
        }
        if let Some(s) = &webhook_secret {
            let s = s.expose();
            if !((1..=256).contains(&s.len())
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
            {
                c.push(
                    "secret_token",
                    "must be 1-256 characters of A-Z, a-z, 0-9, _ and - (Telegram's rule)",
                );
            }
        }
        if let Some(secs) = t.poll_timeout_secs
            && !(1..=120).contains(&secs)
        {
            c.push("poll_timeout_secs", "must be from 1 to 120");
        }
        c.finish()
    }

    fn settings(&self, cx: &BuildContext) -> Result<TelegramConfig, Vec<Problem>> {
        let mut r = Resolve::channel(Self::KEY);
        let token = r.secret("token", &self.token, &self.token_file);
        let token = r.required("token", token);
        let secret_token = r.secret("secret_token", &self.secret_token, &self.secret_token_file);
        let mut tg = TelegramConfig::new(token);
        if let Some(url) = &self.api_url {
            tg.api_url = url.clone();
        }
        if self.mode.as_deref() == Some("webhook") {
            tg.mode = Mode::Webhook;
        }
        tg.secret_token = secret_token;
        tg.webhook_url = format!("{}/hooks/telegram", cx.public_url);
        tg.allow_groups = self.allow_groups;
        if let Some(secs) = self.poll_timeout_secs {
            tg.poll_timeout = Duration::from_secs(secs);
        }
        r.done(tg)
    }
}
