//! `[channels.kannel]`, `[channels.twilio]` and `[channels.android_sms]`: the sections as
//! written in the configuration, their checks, and the gateway settings they resolve to.
//! The three gateways make one connector ([`SmsConfig::from_sections`]).

use std::path::PathBuf;

use aduan_connector::Secret;
use aduan_connector::config::{BuildContext, ChannelConfig, Check, Problem, Resolve};
use serde::{Deserialize, Serialize};

use crate::{
    AndroidConfig, DEFAULT_MAX_PARTS, KannelConfig, SmsConfig, TWILIO_MEDIA_HOSTS, TwilioConfig,
};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KannelSection {
    pub enabled: bool,
    pub secret: Option<Secret>,
    pub secret_file: Option<PathBuf>,
    pub sendsms_url: Option<String>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub password_file: Option<PathBuf>,
    pub from: Option<String>,
    /// Messages per second handed to smsbox (default 10).
    pub per_second: Option<u32>,
    /// The most SMS parts one answer may take (default 4).
    pub max_parts: Option<usize>,
    /// Ask smsbox for delivery reports of every answer (default true).
    pub delivery_reports: Option<bool>,
    /// The URL smsbox calls with them (default `{public_url}/hooks/kannel-dlr`; smsbox must
    /// reach it, so a daemon behind a proxy may give its internal address here).
    pub dlr_url: Option<String>,
}

impl ChannelConfig for KannelSection {
    const KEY: &'static str = "kannel";
    type Settings = KannelConfig;

    fn enabled(&self) -> bool {
        self.enabled
    }

    fn problems(&self) -> Vec<Problem> {
        let k = self;
        let mut c = Check::channel(Self::KEY);
        let secret = c.secret("secret", &k.secret, &k.secret_file);
        let password = c.secret("password", &k.password, &k.password_file);
        c.url("sendsms_url", k.sendsms_url.as_deref(), &["http", "https"]);
        c.url("dlr_url", k.dlr_url.as_deref(), &["http", "https"]);
        if k.enabled {
            c.require("secret", &secret);
            c.require("sendsms_url", &k.sendsms_url);
            c.strong("secret", &k.secret_file, &secret);
            c.not_empty("password", &k.password_file, &password);
        }
        c.max_parts("max_parts", k.max_parts);
        c.rate("per_second", k.per_second);
        c.finish()
    }

    fn settings(&self, cx: &BuildContext) -> Result<KannelConfig, Vec<Problem>> {
        let mut r = Resolve::channel(Self::KEY);
        let secret = r.secret("secret", &self.secret, &self.secret_file);
        let secret = r.required("secret", secret);
        let sendsms_url = r.required("sendsms_url", self.sendsms_url.clone());
        let password = r.secret("password", &self.password, &self.password_file);
        r.done(KannelConfig {
            secret,
            sendsms_url,
            username: self.username.clone().unwrap_or_default(),
            password: password.unwrap_or_default(),
            from: self.from.clone(),
            per_second: self.per_second.unwrap_or(10),
            max_parts: self.max_parts.unwrap_or(DEFAULT_MAX_PARTS),
            dlr_url: self.delivery_reports.unwrap_or(true).then(|| {
                self.dlr_url
                    .clone()
                    .unwrap_or_else(|| format!("{}/hooks/kannel-dlr", cx.public_url))
            }),
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TwilioSection {
    pub enabled: bool,
    pub account_sid: Option<String>,
    pub auth_token: Option<Secret>,
    pub auth_token_file: Option<PathBuf>,
    pub from: Option<String>,
    pub api_url: Option<String>,
    /// Hosts MMS media may be fetched from over https besides `api_url`'s origin (names or
    /// `*.suffix`). Default: Twilio's ([`TWILIO_MEDIA_HOSTS`]).
    pub media_hosts: Option<Vec<String>>,
    /// Segments per second (default 1, a long code's rate).
    pub segments_per_second: Option<u32>,
    /// The most segments one answer may take (default 4).
    pub max_parts: Option<usize>,
    /// Send every answer with a `StatusCallback` to `{public_url}/hooks/twilio-status`
    /// (default true).
    pub status_callbacks: Option<bool>,
}

impl ChannelConfig for TwilioSection {
    const KEY: &'static str = "twilio";
    type Settings = TwilioConfig;

    fn enabled(&self) -> bool {
        self.enabled
    }

    fn problems(&self) -> Vec<Problem> {
        let t = self;
        let mut c = Check::channel(Self::KEY);
        let auth = c.secret("auth_token", &t.auth_token, &t.auth_token_file);
        c.url("api_url", t.api_url.as_deref(), &["http", "https"]);
        c.media_hosts("media_hosts", &t.media_hosts);
        if t.enabled {
            c.require("account_sid", &t.account_sid);
            c.require("auth_token", &auth);
            c.strong("auth_token", &t.auth_token_file, &auth);
        }
        c.max_parts("max_parts", t.max_parts);
        c.rate("segments_per_second", t.segments_per_second);
        c.finish()
    }

    fn settings(&self, cx: &BuildContext) -> Result<TwilioConfig, Vec<Problem>> {
        let mut r = Resolve::channel(Self::KEY);
        let account_sid = r.required("account_sid", self.account_sid.clone());
        let auth = r.secret("auth_token", &self.auth_token, &self.auth_token_file);
        let auth_token = r.required("auth_token", auth);
        r.done(TwilioConfig {
            account_sid,
            auth_token,
            from: self.from.clone(),
            api_url: self.api_url.clone().unwrap_or_else(|| "https://api.twilio.com".into()),
            segments_per_second: self.segments_per_second.unwrap_or(1),
            max_parts: self.max_parts.unwrap_or(DEFAULT_MAX_PARTS),
            media_hosts: self
                .media_hosts
                .clone()
                .unwrap_or_else(|| TWILIO_MEDIA_HOSTS.iter().map(|h| (*h).to_owned()).collect()),
            status_callback: self
                .status_callbacks
                .unwrap_or(true)
                .then(|| format!("{}/hooks/twilio-status", cx.public_url)),
        })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AndroidSmsSection {
    pub enabled: bool,
    pub signing_key: Option<Secret>,
    pub signing_key_file: Option<PathBuf>,
    pub api_url: Option<String>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub password_file: Option<PathBuf>,
    /// Messages per minute through the phone (default 20).
    pub per_minute: Option<u32>,
    /// The most SMS parts one answer may take (default 4).
    pub max_parts: Option<usize>,
}

impl ChannelConfig for AndroidSmsSection {
    const KEY: &'static str = "android_sms";
    type Settings = AndroidConfig;

    fn enabled(&self) -> bool {
        self.enabled
    }

    fn problems(&self) -> Vec<Problem> {
        let a = self;
        let mut c = Check::channel(Self::KEY);
        let key = c.secret("signing_key", &a.signing_key, &a.signing_key_file);
        let password = c.secret("password", &a.password, &a.password_file);
        c.url("api_url", a.api_url.as_deref(), &["http", "https"]);
        if a.enabled {
            c.require("signing_key", &key);
            c.strong("signing_key", &a.signing_key_file, &key);
            c.not_empty("password", &a.password_file, &password);
        }
        c.max_parts("max_parts", a.max_parts);
        c.rate("per_minute", a.per_minute);
        c.finish()
    }

    fn settings(&self, _cx: &BuildContext) -> Result<AndroidConfig, Vec<Problem>> {
        let mut r = Resolve::channel(Self::KEY);
        let key = r.secret("signing_key", &self.signing_key, &self.signing_key_file);
        let signing_key = r.required("signing_key", key);
        let password = r.secret("password", &self.password, &self.password_file);
        r.done(AndroidConfig {
            signing_key,
            api_url: self.api_url.clone(),
            username: self.username.clone().unwrap_or_default(),
            password: password.unwrap_or_default(),
            per_minute: self.per_minute.unwrap_or(20),
            max_parts: self.max_parts.unwrap_or(DEFAULT_MAX_PARTS),
        })
    }
}

/// The settings of one section when it is enabled.
fn when_enabled<C: ChannelConfig>(
    section: &C,
    cx: &BuildContext,
) -> Result<Option<C::Settings>, Vec<Problem>> {
    if section.enabled() { section.settings(cx).map(Some) } else { Ok(None) }
}

impl SmsConfig {
    /// The SMS connector's settings when any gateway is enabled (Kannel, Twilio, SMS
    /// Gateway for Android), secrets resolved.
    pub fn from_sections(
        kannel: &KannelSection,
        twilio: &TwilioSection,
        android: &AndroidSmsSection,
        cx: &BuildContext,
    ) -> Result<Option<SmsConfig>, Vec<Problem>> {
        let kannel = when_enabled(kannel, cx)?;
        let twilio = when_enabled(twilio, cx)?;
        let android = when_enabled(android, cx)?;
        if kannel.is_none() && twilio.is_none() && android.is_none() {
            return Ok(None);
        }
        Ok(Some(SmsConfig { kannel, twilio, android }))
    }
}
