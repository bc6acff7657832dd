//! Configuration: built-in defaults, then a TOML file, then `ADUAN__SECTION__KEY`
//! environment variables. Every section is a typed struct; unknown keys are errors, so a
//! typo never silently falls back to a default.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// A secret value: never printed, not even by `Debug` or in a configuration error.
///
/// A secret is text, but one written without quotes in TOML (`secret = 987654321`) or given
/// as `ADUAN__…=987654321` arrives as a number or a boolean: it is taken as the text it was
/// written as (see [`EnvProvider`] for the environment, where the text is kept exactly).
/// A float or anything else is refused with a message that names the key, never the value.
#[derive(Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Secret(String);

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        use serde::de::Error;
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = Secret;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a secret written as a string")
            }
            fn visit_str<E: Error>(self, v: &str) -> Result<Secret, E> {
                Ok(Secret(v.to_owned()))
            }
            fn visit_string<E: Error>(self, v: String) -> Result<Secret, E> {
                Ok(Secret(v))
            }
            fn visit_char<E: Error>(self, v: char) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_bool<E: Error>(self, v: bool) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_u64<E: Error>(self, v: u64) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_i64<E: Error>(self, v: i64) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_u128<E: Error>(self, v: u128) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_i128<E: Error>(self, v: i128) -> Result<Secret, E> {
                Ok(Secret(v.to_string()))
            }
            fn visit_f64<E: Error>(self, _: f64) -> Result<Secret, E> {
                // Its text is already lost (`1.50` reads as 1.5): refuse, without the value.
                Err(E::custom(
                    "a secret must be written as a string (in quotes); the value is not shown",
                ))
            }
            fn visit_bytes<E: Error>(self, _: &[u8]) -> Result<Secret, E> {
                Err(E::custom("a secret must be text; the value is not shown"))
            }
        }
        d.deserialize_any(Text)
    }
}

/// Whether a key path (`channels.kannel.secret`) holds a secret: an environment value for
/// it is kept as written, never parsed into a number or a boolean.
fn is_secret_key(path: &str) -> bool {
    let leaf = path.rsplit('.').next().unwrap_or(path).to_ascii_lowercase();
    !leaf.ends_with("_file")
        && (leaf.ends_with("secret")
            || leaf.ends_with("token")
            || leaf.ends_with("password")
            || leaf.ends_with("_key")
            || leaf == "smtp_url"
            || path.eq_ignore_ascii_case("database.url"))
}

/// The `ADUAN__SECTION__KEY` variables, read as figment's `Env` reads them (a value is
/// parsed: `10` is a number, `[a, b]` a list), except that a secret's value that does not
/// read as a string (`987654321`, `true`, `0123`) is kept exactly as written.
struct EnvProvider(Env);

impl figment::Provider for EnvProvider {
    fn metadata(&self) -> figment::Metadata {
        self.0.metadata()
    }

    fn data(
        &self,
    ) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        use figment::value::{Dict, Value};
        fn merge(into: &mut Dict, from: Dict) {
            for (k, v) in from {
                match (into.get_mut(&k), v) {
                    (Some(Value::Dict(_, a)), Value::Dict(_, b)) => merge(a, b),
                    (_, v) => {
                        into.insert(k, v);
                    }
                }
            }
        }
        let mut dict = Dict::new();
        for (key, raw) in self.0.iter() {
            let parsed: Value =
                raw.parse().unwrap_or_else(|e: std::convert::Infallible| match e {});
            let value = match parsed {
                Value::String(..) => parsed,
                _ if is_secret_key(key.as_str()) => Value::from(raw),
                _ => parsed,
            };
            if let Value::Dict(_, nested) = figment::util::nest(key.as_str(), value) {
                merge(&mut dict, nested);
            }
        }
        Ok(self.0.profile.collect(dict))
    }
}

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[derive(Default)]
pub struct Config {
    pub server: Server,
    pub database: Database,
    pub storage: Storage,
    pub log: Log,
    pub sla: Sla,
    pub threading: Threading,
    pub routing: Routing,
    pub outbound: Outbound,
    pub intake: Intake,
    pub channels: Channels,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Server {
    pub listen: String,
    pub public_url: String,
    pub max_json_bytes: usize,
    pub max_multipart_bytes: usize,
    pub shutdown_grace_secs: u64,
    /// How long an inbox session lasts.
    pub session_hours: i64,
    /// Sign-in attempts per minute per account (four times as many per client address).
    pub login_attempts_per_minute: u32,
    /// Requests per minute per client address to the public pages and API.
    pub public_requests_per_minute: u32,
    /// A request head (and an idle keep-alive connection's next one) must arrive within
    /// this; slower connections are closed.
    pub header_read_timeout_secs: u64,
    /// A request body must arrive whole within this of its head.
    pub body_read_timeout_secs: u64,
    /// Open HTTP connections at most (keep it well under the file-descriptor limit).
    pub max_connections: usize,
    /// Request body bytes held at once by all requests together (503 beyond).
    pub max_inflight_body_bytes: u64,
    /// Attachment bytes one client address may upload through `/lapor` per hour.
    pub upload_bytes_per_hour: u64,
    /// When set (at least 16 bytes), `GET /metrics` needs `Authorization: Bearer <token>`.
    pub metrics_token: Option<Secret>,
}

impl Default for Server {
    fn default() -> Self {
        Server {
            listen: "127.0.0.1:8080".into(),
            public_url: "http://127.0.0.1:8080".into(),
            max_json_bytes: 10 * 1024 * 1024,
            max_multipart_bytes: 25 * 1024 * 1024,
            shutdown_grace_secs: 30,
            session_hours: 12,
            login_attempts_per_minute: 5,
            public_requests_per_minute: 60,
            header_read_timeout_secs: 10,
            body_read_timeout_secs: 60,
            max_connections: 512,
            max_inflight_body_bytes: 64 * 1024 * 1024,
            upload_bytes_per_hour: 100 * 1024 * 1024,
            metrics_token: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Database {
    pub url: Secret,
    pub max_connections: u32,
    pub max_batch: usize,
}

impl Default for Database {
    fn default() -> Self {
        Database {
            url: Secret("sqlite://data/aduan.db".into()),
            max_connections: 8,
            max_batch: 256,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Storage {
    pub dir: PathBuf,
    /// Free bytes the attachment store's file system keeps: a write that would leave less
    /// is refused with 507 (on every channel).
    pub min_free_bytes: u64,
    /// The floor is at most this share of the volume, so a small volume stays usable.
    pub min_free_max_percent: u8,
}

impl Default for Storage {
    fn default() -> Self {
        Storage {
            dir: PathBuf::from("data/attachments"),
            min_free_bytes: 256 * 1024 * 1024,
            min_free_max_percent: 5,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    /// A tracing filter (`info`, `aduan=debug,info`); `RUST_LOG` wins when set.
    pub level: String,
    /// `text` or `json`.
    pub format: String,
}

impl Default for Log {
    fn default() -> Self {
        Log { level: "info".into(), format: "text".into() }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sla {
    pub timezone: String,
    pub first_response_hours: i64,
    /// Default time to resolution: `"5d"` (working days) or `"72h"`; categories and OPDs
    /// of the registry may set their own.
    pub resolution: String,
    /// The fraction of a deadline after which the OPD's officials are warned.
    pub warn_fraction: f64,
    /// Holidays and *cuti bersama*, for working-day deadlines. Default: `config/libur.toml`
    /// when it exists.
    pub calendar_file: Option<PathBuf>,
}

impl Default for Sla {
    fn default() -> Self {
        Sla {
            timezone: "Asia/Jakarta".into(),
            first_response_hours: 24,
            resolution: "5d".into(),
            warn_fraction: 0.75,
            calendar_file: None,
        }
    }
}

/// The holiday file read when `[sla] calendar_file` is not set, if it exists.
pub const DEFAULT_CALENDAR_FILE: &str = "config/libur.toml";

impl Sla {
    /// The calendar file in effect.
    pub fn calendar_path(&self) -> Option<PathBuf> {
        self.calendar_file.clone().or_else(|| {
            let p = PathBuf::from(DEFAULT_CALENDAR_FILE);
            p.is_file().then_some(p)
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Threading {
    /// How long a chat conversation joins the sender's open ticket.
    pub window_secs: i64,
    /// Per-channel windows; 0 = every message without a code or reply is a new ticket.
    pub channel_window_secs: BTreeMap<String, i64>,
}

impl Default for Threading {
    fn default() -> Self {
        let policy = aduan_core::ThreadingPolicy::default();
        Threading {
            window_secs: policy.default_window.num_seconds(),
            channel_window_secs: policy
                .per_channel
                .iter()
                .map(|(c, w)| (c.as_str().to_owned(), w.num_seconds()))
                .collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Routing {
    pub opd_file: PathBuf,
    /// Run the routing worker and the deadline watcher in `serve`.
    pub enabled: bool,
    /// The kabupaten whose gazetteer recognises places (`33.02` Banyumas, `33.03`
    /// Purbalingga).
    pub kabupaten: String,
    /// Least confidence to dispose a ticket without an operator; below it the ticket stays
    /// in triage with the top three suggestions.
    pub threshold: f64,
    /// Share of the learned router in the combined score, once trained.
    pub learned_weight: f64,
    /// Operator dispositions needed before the learned router is used.
    pub min_examples: usize,
    /// How often the learned router is retrained from the dispositions.
    pub retrain_secs: u64,
    /// Pause between routing rounds when idle.
    pub poll_ms: u64,
    /// Pause between deadline rounds.
    pub watch_secs: u64,
    /// Receive escalations, and warnings for tickets still in triage.
    pub admin_emails: Vec<String>,
    /// Ask residents without a usable identity for it before routing.
    pub ask_identity: bool,
    pub require_name: bool,
    pub require_contact: bool,
    pub require_address: bool,
}

impl Default for Routing {
    fn default() -> Self {
        Routing {
            opd_file: PathBuf::from("config/opd.toml"),
            enabled: true,
            kabupaten: "33.02".into(),
            threshold: 0.6,
            learned_weight: 0.5,
            min_examples: 200,
            retrain_secs: 3600,
            poll_ms: 2000,
            watch_secs: 60,
            admin_emails: Vec::new(),
            ask_identity: true,
            require_name: true,
            require_contact: true,
            require_address: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Outbound {
    pub poll_ms: u64,
    pub max_attempts: i64,
    pub backoff_secs: u64,
}

impl Default for Outbound {
    fn default() -> Self {
        Outbound { poll_ms: 500, max_attempts: 8, backoff_secs: 30 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Intake {
    /// Send the receipt with the tracking code when a message opens a ticket.
    pub acknowledge: bool,
    /// The receipt; `{code}` and `{hours}` (the first-response deadline) are filled in.
    pub ack_text: String,
    /// The country calling code (`+62`) a contact phone given on the web form or Open311
    /// must have: nobody verified such a number, so no SMS goes abroad on a stranger's word.
    pub sms_country_prefix: String,
    /// Automatic messages (receipts, identity requests, status answers) one contact gets in
    /// 24 hours; more are kept on the ticket but not sent.
    pub auto_messages_per_recipient_per_day: u32,
    /// Automatic messages to all residents together in one hour.
    pub auto_messages_per_hour: u32,
}

impl Default for Intake {
    fn default() -> Self {
        let limits = aduan_store::AutoLimits::default();
        Intake {
            acknowledge: true,
            ack_text: aduan_core::DEFAULT_ACK_TEMPLATE.to_owned(),
            sms_country_prefix: aduan_core::DEFAULT_SMS_COUNTRY_PREFIX.to_owned(),
            auto_messages_per_recipient_per_day: limits.per_recipient_per_day,
            auto_messages_per_hour: limits.per_hour,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Channels {
    pub email: Email,
    pub telegram: Telegram,
    pub meta: Meta,
    pub x: X,
    pub kannel: Kannel,
    pub twilio: Twilio,
    pub android_sms: AndroidSms,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Email {
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

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Telegram {
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

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Meta {
    pub enabled: bool,
    pub app_secret: Option<Secret>,
    pub app_secret_file: Option<PathBuf>,
    pub verify_token: Option<Secret>,
    pub verify_token_file: Option<PathBuf>,
    pub page_access_token: Option<Secret>,
    pub page_access_token_file: Option<PathBuf>,
    pub whatsapp_token: Option<Secret>,
    pub whatsapp_token_file: Option<PathBuf>,
    pub whatsapp_phone_number_id: Option<String>,
    pub graph_api_url: Option<String>,
    /// Hosts media may be fetched from over https besides `graph_api_url`'s origin (names
    /// or `*.suffix`). Default: Meta's CDNs (`aduan_social::META_MEDIA_HOSTS`).
    pub media_hosts: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct X {
    pub enabled: bool,
    pub consumer_secret: Option<Secret>,
    pub consumer_secret_file: Option<PathBuf>,
    pub bearer_token: Option<Secret>,
    pub bearer_token_file: Option<PathBuf>,
    pub api_url: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Kannel {
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
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Twilio {
    pub enabled: bool,
    pub account_sid: Option<String>,
    pub auth_token: Option<Secret>,
    pub auth_token_file: Option<PathBuf>,
    pub from: Option<String>,
    pub api_url: Option<String>,
    /// Hosts MMS media may be fetched from over https besides `api_url`'s origin (names or
    /// `*.suffix`). Default: Twilio's (`aduan_sms::TWILIO_MEDIA_HOSTS`).
    pub media_hosts: Option<Vec<String>>,
    /// Segments per second (default 1, a long code's rate).
    pub segments_per_second: Option<u32>,
    /// The most segments one answer may take (default 4).
    pub max_parts: Option<usize>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AndroidSms {
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

impl Channels {
    /// The SMS connector's settings when any SMS gateway is enabled (Kannel, Twilio, SMS
    /// Gateway for Android), secrets resolved.
    pub fn sms_settings(
        &self,
        attachments_dir: &Path,
    ) -> anyhow::Result<Option<aduan_sms::SmsConfig>> {
        let required = |path: &str, v: Option<String>| {
            v.ok_or_else(|| anyhow::anyhow!("{path} is required when the channel is enabled"))
        };
        let max_parts = |v: Option<usize>| v.unwrap_or(aduan_sms::DEFAULT_MAX_PARTS);
        let k = &self.kannel;
        let kannel = if k.enabled {
            Some(aduan_sms::KannelConfig {
                secret: required(
                    "channels.kannel.secret",
                    secret_value("channels.kannel.secret", &k.secret, &k.secret_file)?,
                )?,
                sendsms_url: required("channels.kannel.sendsms_url", k.sendsms_url.clone())?,
                username: k.username.clone().unwrap_or_default(),
                password: secret_value("channels.kannel.password", &k.password, &k.password_file)?
                    .unwrap_or_default(),
                from: k.from.clone(),
                per_second: k.per_second.unwrap_or(10),
                max_parts: max_parts(k.max_parts),
            })
        } else {
            None
        };
        let t = &self.twilio;
        let twilio = if t.enabled {
            Some(aduan_sms::TwilioConfig {
                account_sid: required("channels.twilio.account_sid", t.account_sid.clone())?,
                auth_token: required(
                    "channels.twilio.auth_token",
                    secret_value("channels.twilio.auth_token", &t.auth_token, &t.auth_token_file)?,
                )?,
                from: t.from.clone(),
                api_url: t.api_url.clone().unwrap_or_else(|| "https://api.twilio.com".into()),
                segments_per_second: t.segments_per_second.unwrap_or(1),
                max_parts: max_parts(t.max_parts),
                media_hosts: t.media_hosts.clone().unwrap_or_else(|| {
                    aduan_sms::TWILIO_MEDIA_HOSTS.iter().map(|h| (*h).to_owned()).collect()
                }),
            })
        } else {
            None
        };
        let a = &self.android_sms;
        let android = if a.enabled {
            Some(aduan_sms::AndroidConfig {
                signing_key: required(
                    "channels.android_sms.signing_key",
                    secret_value(
                        "channels.android_sms.signing_key",
                        &a.signing_key,
                        &a.signing_key_file,
                    )?,
                )?,
                api_url: a.api_url.clone(),
                username: a.username.clone().unwrap_or_default(),
                password: secret_value(
                    "channels.android_sms.password",
                    &a.password,
                    &a.password_file,
                )?
                .unwrap_or_default(),
                per_minute: a.per_minute.unwrap_or(20),
                max_parts: max_parts(a.max_parts),
            })
        } else {
            None
        };
        if kannel.is_none() && twilio.is_none() && android.is_none() {
            return Ok(None);
        }
        Ok(Some(aduan_sms::SmsConfig {
            kannel,
            twilio,
            android,
            attachments_dir: attachments_dir.to_path_buf(),
        }))
    }
}

/// A secret's value, inline or read from its `*_file` (problems were reported by
/// `validate()` already; this fails only if the file changed since).
pub fn secret_value(
    path: &str,
    inline: &Option<Secret>,
    file: &Option<PathBuf>,
) -> anyhow::Result<Option<String>> {
    let mut problems = Vec::new();
    let value = secret(&mut problems, path, inline, file);
    match problems.first() {
        Some(p) => anyhow::bail!("{p}"),
        None => Ok(value.map(|s| s.0)),
    }
}

impl Meta {
    /// What the Meta connector runs with; `attachments_dir` is `[storage] dir`.
    pub fn settings(&self, attachments_dir: &Path) -> anyhow::Result<aduan_social::MetaConfig> {
        let p = "channels.meta";
        let required = |name: &str, v: Option<String>| {
            v.ok_or_else(|| anyhow::anyhow!("{p}.{name} is required when the channel is enabled"))
        };
        Ok(aduan_social::MetaConfig {
            app_secret: required(
                "app_secret",
                secret_value(&format!("{p}.app_secret"), &self.app_secret, &self.app_secret_file)?,
            )?,
            verify_token: required(
                "verify_token",
                secret_value(
                    &format!("{p}.verify_token"),
                    &self.verify_token,
                    &self.verify_token_file,
                )?,
            )?,
            page_access_token: secret_value(
                &format!("{p}.page_access_token"),
                &self.page_access_token,
                &self.page_access_token_file,
            )?,
            whatsapp_token: secret_value(
                &format!("{p}.whatsapp_token"),
                &self.whatsapp_token,
                &self.whatsapp_token_file,
            )?,
            whatsapp_phone_number_id: self.whatsapp_phone_number_id.clone(),
            graph_api_url: self
                .graph_api_url
                .clone()
                .unwrap_or_else(|| "https://graph.facebook.com/v21.0".into()),
            attachments_dir: attachments_dir.to_owned(),
            media_hosts: self.media_hosts.clone().unwrap_or_else(|| {
                aduan_social::META_MEDIA_HOSTS.iter().map(|h| (*h).to_owned()).collect()
            }),
        })
    }
}

impl X {
    /// What the X connector runs with.
    pub fn settings(&self) -> anyhow::Result<aduan_social::XConfig> {
        let consumer_secret = secret_value(
            "channels.x.consumer_secret",
            &self.consumer_secret,
            &self.consumer_secret_file,
        )?
        .ok_or_else(|| {
            anyhow::anyhow!("channels.x.consumer_secret is required when the channel is enabled")
        })?;
        Ok(aduan_social::XConfig {
            consumer_secret,
            bearer_token: secret_value(
                "channels.x.bearer_token",
                &self.bearer_token,
                &self.bearer_token_file,
            )?,
            api_url: self.api_url.clone().unwrap_or_else(|| "https://api.x.com".into()),
        })
    }
}

impl Email {
    /// The connector's settings: secrets read (also from `*_file`), defaults applied
    /// (`INBOX`, `Processed`, `Quarantine`, port 143 or 993, 300 s between IDLE renewals).
    pub fn connector_config(
        &self,
        attachments_dir: &Path,
        officials: aduan_email::Officials,
    ) -> Result<aduan_email::EmailConfig, Vec<Problem>> {
        let mut p = Vec::new();
        let password = secret(
            &mut p,
            "channels.email.imap_password",
            &self.imap_password,
            &self.imap_password_file,
        );
        let smtp = secret(&mut p, "channels.email.smtp_url", &self.smtp_url, &self.smtp_url_file);
        let tls = match self.imap_tls.as_deref().unwrap_or("none").parse::<aduan_email::ImapTls>() {
            Ok(t) => t,
            Err(e) => {
                p.push(Problem { path: "channels.email.imap_tls".into(), message: e.to_string() });
                aduan_email::ImapTls::None
            }
        };
        let required = |p: &mut Vec<Problem>, key: &str, v: Option<String>| {
            v.unwrap_or_else(|| {
                p.push(Problem {
                    path: format!("channels.email.{key}"),
                    message: "is required when the channel is enabled".into(),
                });
                String::new()
            })
        };
        let host = required(&mut p, "imap_host", self.imap_host.clone());
        let user = required(&mut p, "imap_user", self.imap_user.clone());
        let password = required(&mut p, "imap_password", password.map(|s| s.0));
        let smtp_url = required(&mut p, "smtp_url", smtp.map(|s| s.0));
        let from = required(&mut p, "from", self.from.clone());
        let reply_token_secret = secret(
            &mut p,
            "channels.email.reply_token_secret",
            &self.reply_token_secret,
            &self.reply_token_secret_file,
        );
        if !p.is_empty() {
            return Err(p);
        }
        let default_port = if tls == aduan_email::ImapTls::Tls { 993 } else { 143 };
        Ok(aduan_email::EmailConfig {
            account: aduan_email::ImapAccount {
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
            smtp_url: aduan_email::Secret(smtp_url),
            from,
            attachments_dir: attachments_dir.to_owned(),
            officials,
            poll: std::time::Duration::from_secs(self.poll_secs.unwrap_or(300)),
            reply_token_secret: reply_token_secret.map(|s| aduan_email::Secret(s.0)),
            trusted_authserv_id: self.trusted_authserv_id.clone().filter(|a| !a.trim().is_empty()),
            max_message_bytes: self
                .max_message_bytes
                .unwrap_or(aduan_email::DEFAULT_MAX_MESSAGE_BYTES),
        })
    }
}

/// One thing wrong with the configuration, at a key path like `channels.email.imap_host`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Where the configuration came from, for the start-up log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Defaults,
    File(PathBuf),
}

/// The file read when `--config` is not given, if it exists.
pub const DEFAULT_FILE: &str = "config/aduan.toml";

/// Loads defaults → file → environment. `explicit` must exist; the default file may not.
pub fn load(explicit: Option<&Path>) -> Result<(Config, Source), Vec<Problem>> {
    load_from(explicit, Env::prefixed("ADUAN__").split("__"))
}

fn load_from(explicit: Option<&Path>, env: Env) -> Result<(Config, Source), Vec<Problem>> {
    let mut figment = Figment::from(Serialized::defaults(Config::default()));
    let source = match explicit {
        Some(path) => {
            if !path.is_file() {
                return Err(vec![Problem {
                    path: "--config".into(),
                    message: format!("{} does not exist or is not a file", path.display()),
                }]);
            }
            Source::File(path.to_owned())
        }
        None if Path::new(DEFAULT_FILE).is_file() => Source::File(PathBuf::from(DEFAULT_FILE)),
        None => Source::Defaults,
    };
    if let Source::File(path) = &source {
        figment = figment.merge(Toml::file_exact(path));
    }
    figment = figment.merge(EnvProvider(env));
    match figment.extract::<Config>() {
        Ok(config) => Ok((config, source)),
        Err(errors) => Err(errors
            .into_iter()
            .map(|e| Problem {
                path: if e.path.is_empty() { "(top level)".into() } else { e.path.join(".") },
                message: e.kind.to_string(),
            })
            .collect()),
    }
}

/// Resolves a secret given inline or as `*_file`; records a problem for both or a bad file.
fn secret(
    problems: &mut Vec<Problem>,
    path: &str,
    inline: &Option<Secret>,
    file: &Option<PathBuf>,
) -> Option<Secret> {
    match (inline, file) {
        (Some(_), Some(_)) => {
            problems.push(Problem {
                path: format!("{path}_file"),
                message: format!("give {path} or {path}_file, not both"),
            });
            None
        }
        (Some(s), None) => Some(s.clone()),
        (None, Some(f)) => match std::fs::read_to_string(f) {
            Ok(s) => Some(Secret(s.trim_end_matches(['\n', '\r']).to_owned())),
            Err(e) => {
                problems.push(Problem {
                    path: format!("{path}_file"),
                    message: format!("{}: {e}", f.display()),
                });
                None
            }
        },
        (None, None) => None,
    }
}

/// The fewest bytes a secret that authenticates webhooks may have (Kannel's `secret`,
/// Twilio's `auth_token`, the Android gateway's `signing_key`, Meta's `app_secret` and
/// `verify_token`, Telegram's `secret_token`, X's `consumer_secret`): an empty or short
/// one lets anyone sign requests.
pub const MIN_WEBHOOK_SECRET_BYTES: usize = 16;

/// The key a resolved secret came from: `path`, or `path_file` when it was read from a file.
fn secret_key(path: &str, file: &Option<PathBuf>) -> String {
    if file.is_some() { format!("{path}_file") } else { path.to_owned() }
}

/// A webhook secret must have at least [`MIN_WEBHOOK_SECRET_BYTES`]. The message names the
/// key, never the value.
fn strong(problems: &mut Vec<Problem>, path: &str, file: &Option<PathBuf>, value: &Option<Secret>) {
    let Some(v) = value else { return };
    let n = v.0.len();
    if n < MIN_WEBHOOK_SECRET_BYTES {
        let what = if n == 0 { "is empty" } else { "is too short" };
        let from = if file.is_some() { " (the file's contents)" } else { "" };
        problems.push(Problem {
            path: secret_key(path, file),
            message: format!(
                "{what}{from}: a secret that authenticates webhooks needs at least \
                 {MIN_WEBHOOK_SECRET_BYTES} bytes (e.g. `openssl rand -hex 32`)"
            ),
        });
    }
}

/// A token or password that is given must not be empty.
fn not_empty(
    problems: &mut Vec<Problem>,
    path: &str,
    file: &Option<PathBuf>,
    value: &Option<Secret>,
) {
    if value.as_ref().is_some_and(|v| v.0.trim().is_empty()) {
        let from = if file.is_some() { " (the file's contents)" } else { "" };
        problems.push(Problem { path: secret_key(path, file), message: format!("is empty{from}") });
    }
}

/// `media_hosts`: host names (`lookaside.fbsbx.com`) or `*.` and a name (`*.fbcdn.net`),
/// no scheme, port or path.
fn media_hosts(problems: &mut Vec<Problem>, path: &str, hosts: &Option<Vec<String>>) {
    for (i, h) in hosts.iter().flatten().enumerate() {
        let name = h.strip_prefix("*.").unwrap_or(h);
        let ok = !name.is_empty()
            && name.split('.').all(|label| {
                !label.is_empty() && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !ok {
            problems.push(Problem {
                path: format!("{path}[{i}]"),
                message: format!("{h:?} is not a host name or *.domain (no scheme, port or path)"),
            });
        }
    }
}

fn require<T>(problems: &mut Vec<Problem>, path: &str, value: &Option<T>) {
    if value.is_none() {
        problems.push(Problem {
            path: path.into(),
            message: "is required when the channel is enabled".into(),
        });
    }
}

fn one_of(problems: &mut Vec<Problem>, path: &str, value: &Option<String>, allowed: &[&str]) {
    if let Some(v) = value
        && !allowed.contains(&v.as_str())
    {
        problems.push(Problem {
            path: path.into(),
            message: format!("{v:?} is not one of {}", allowed.join(", ")),
        });
    }
}

fn url(problems: &mut Vec<Problem>, path: &str, value: Option<&str>, schemes: &[&str]) {
    if let Some(v) = value {
        let ok = v.split_once("://").is_some_and(|(scheme, rest)| {
            schemes.contains(&scheme) && !rest.is_empty() && !rest.contains(char::is_whitespace)
        });
        if !ok {
            problems.push(Problem {
                path: path.into(),
                message: format!("must be a {} URL", schemes.join("/")),
            });
        }
    }
}

impl Config {
    /// Every semantic problem of the configuration (types were checked while loading).
    /// Secrets given as `*_file` are read here.
    pub fn validate(&self) -> Vec<Problem> {
        let mut p = Vec::new();
        if self.server.listen.parse::<SocketAddr>().is_err() {
            p.push(Problem {
                path: "server.listen".into(),
                message: format!("{:?} is not an address like 127.0.0.1:8080", self.server.listen),
            });
        }
        url(&mut p, "server.public_url", Some(&self.server.public_url), &["http", "https"]);
        if self.server.public_url.ends_with('/') {
            p.push(Problem {
                path: "server.public_url".into(),
                message: "must not end with /".into(),
            });
        }
        for (key, ok) in [
            ("server.session_hours", (1..=24 * 30).contains(&self.server.session_hours)),
            ("server.login_attempts_per_minute", self.server.login_attempts_per_minute >= 1),
            ("server.public_requests_per_minute", self.server.public_requests_per_minute >= 1),
        ] {
            if !ok {
                let message = if key == "server.session_hours" {
                    "must be from 1 to 720"
                } else {
                    "must be at least 1"
                };
                p.push(Problem { path: key.into(), message: message.into() });
            }
        }
        let srv = &self.server;
        for (key, ok, message) in [
            (
                "server.header_read_timeout_secs",
                (1..=300).contains(&srv.header_read_timeout_secs),
                "must be from 1 to 300",
            ),
            (
                "server.body_read_timeout_secs",
                (1..=3600).contains(&srv.body_read_timeout_secs),
                "must be from 1 to 3600",
            ),
            ("server.max_connections", srv.max_connections >= 1, "must be at least 1"),
            (
                "server.upload_bytes_per_hour",
                srv.upload_bytes_per_hour >= 1024,
                "must be at least 1024",
            ),
            (
                "storage.min_free_max_percent",
                self.storage.min_free_max_percent <= 100,
                "must be from 0 to 100",
            ),
        ] {
            if !ok {
                p.push(Problem { path: key.into(), message: message.into() });
            }
        }
        let largest = (srv.max_json_bytes as u64).max(srv.max_multipart_bytes as u64);
        if srv.max_inflight_body_bytes < largest {
            p.push(Problem {
                path: "server.max_inflight_body_bytes".into(),
                message: format!(
                    "must be at least the largest body accepted ({largest} bytes, from \
                     max_json_bytes and max_multipart_bytes)"
                ),
            });
        }
        if let Some(t) = &srv.metrics_token
            && t.expose().trim().len() < 16
        {
            p.push(Problem {
                path: "server.metrics_token".into(),
                message: "must be at least 16 bytes when set".into(),
            });
        }
        if self.server.max_json_bytes < 1024 {
            p.push(Problem {
                path: "server.max_json_bytes".into(),
                message: "must be at least 1024".into(),
            });
        }
        let db = self.database.url.expose();
        if !(db.starts_with("sqlite://")
            || db.starts_with("postgres://")
            || db.starts_with("postgresql://"))
        {
            p.push(Problem {
                path: "database.url".into(),
                message: "must start with sqlite:// or postgres://".into(),
            });
        } else if db == "sqlite://" {
            p.push(Problem {
                path: "database.url".into(),
                message: "sqlite:// needs a file path".into(),
            });
        }
        if self.database.max_batch == 0 {
            p.push(Problem {
                path: "database.max_batch".into(),
                message: "must be at least 1".into(),
            });
        }
        one_of(&mut p, "log.format", &Some(self.log.format.clone()), &["text", "json"]);
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            p.push(Problem {
                path: "log.level".into(),
                message: format!("{:?} is not a tracing filter", self.log.level),
            });
        }
        if aduan_core::time::parse_timezone(&self.sla.timezone).is_none() {
            p.push(Problem { path: "sla.timezone".into(), message: format!("{:?} is not a known zone (Asia/Jakarta, Asia/Makassar, Asia/Jayapura or +07:00)", self.sla.timezone) });
        }
        if !(1..=24 * 90).contains(&self.sla.first_response_hours) {
            p.push(Problem {
                path: "sla.first_response_hours".into(),
                message: "must be from 1 to 2160".into(),
            });
        }
        if let Some(f) = &self.sla.calendar_file
            && !f.is_file()
        {
            p.push(Problem {
                path: "sla.calendar_file".into(),
                message: format!("{} does not exist", f.display()),
            });
        }
        if let Err(e) = self.sla.resolution.parse::<aduan_core::Budget>() {
            p.push(Problem { path: "sla.resolution".into(), message: e.to_string() });
        }
        if !(self.sla.warn_fraction > 0.0 && self.sla.warn_fraction < 1.0) {
            p.push(Problem {
                path: "sla.warn_fraction".into(),
                message: "must be between 0 and 1 (e.g. 0.75)".into(),
            });
        }
        let r = &self.routing;
        for (key, v) in [("threshold", r.threshold), ("learned_weight", r.learned_weight)] {
            if !(0.0..=1.0).contains(&v) {
                p.push(Problem {
                    path: format!("routing.{key}"),
                    message: "must be from 0 to 1".into(),
                });
            }
        }
        if aduan_routing::Gazetteer::for_kabupaten(&r.kabupaten).is_none() {
            p.push(Problem {
                path: "routing.kabupaten".into(),
                message: format!(
                    "{:?} is not in the bundled gazetteer (33.02 Banyumas, 33.03 Purbalingga)",
                    r.kabupaten
                ),
            });
        }
        for (i, e) in r.admin_emails.iter().enumerate() {
            if aduan_core::Identity::email(e).is_err() {
                p.push(Problem {
                    path: format!("routing.admin_emails[{i}]"),
                    message: format!("{e:?} is not an email address"),
                });
            }
        }
        if r.poll_ms == 0 || r.watch_secs == 0 || r.retrain_secs == 0 {
            p.push(Problem {
                path: "routing".into(),
                message: "poll_ms, watch_secs and retrain_secs must be at least 1".into(),
            });
        }
        if self.threading.window_secs < 0 {
            p.push(Problem {
                path: "threading.window_secs".into(),
                message: "must not be negative".into(),
            });
        }
        for (channel, secs) in &self.threading.channel_window_secs {
            if channel.parse::<aduan_core::Channel>().is_err() {
                p.push(Problem {
                    path: format!("threading.channel_window_secs.{channel}"),
                    message: "is not a channel".into(),
                });
            }
            if *secs < 0 {
                p.push(Problem {
                    path: format!("threading.channel_window_secs.{channel}"),
                    message: "must not be negative".into(),
                });
            }
        }
        if self.intake.acknowledge && !self.intake.ack_text.contains("{code}") {
            p.push(Problem {
                path: "intake.ack_text".into(),
                message: "must contain {code}: the receipt exists to give the tracking code".into(),
            });
        }
        if !aduan_core::valid_country_prefix(&self.intake.sms_country_prefix) {
            p.push(Problem {
                path: "intake.sms_country_prefix".into(),
                message: "must be a country calling code like \"+62\"".into(),
            });
        }
        for (key, value) in [
            (
                "auto_messages_per_recipient_per_day",
                self.intake.auto_messages_per_recipient_per_day,
            ),
            ("auto_messages_per_hour", self.intake.auto_messages_per_hour),
        ] {
            if value == 0 {
                p.push(Problem {
                    path: format!("intake.{key}"),
                    message: "must be at least 1 (receipts would never be sent)".into(),
                });
            }
        }
        if self.outbound.max_attempts < 1 {
            p.push(Problem {
                path: "outbound.max_attempts".into(),
                message: "must be at least 1".into(),
            });
        }
        self.validate_channels(&mut p);
        p
    }

    fn validate_channels(&self, p: &mut Vec<Problem>) {
        let c = &self.channels;
        let e = &c.email;
        let password =
            secret(p, "channels.email.imap_password", &e.imap_password, &e.imap_password_file);
        let smtp = secret(p, "channels.email.smtp_url", &e.smtp_url, &e.smtp_url_file);
        one_of(p, "channels.email.imap_tls", &e.imap_tls, &["none", "starttls", "tls"]);
        url(p, "channels.email.smtp_url", smtp.as_ref().map(Secret::expose), &["smtp", "smtps"]);
        if let Some(f) = &e.imap_ca_file
            && !f.is_file()
        {
            p.push(Problem {
                path: "channels.email.imap_ca_file".into(),
                message: format!("{} does not exist", f.display()),
            });
        }
        let reply_secret = secret(
            p,
            "channels.email.reply_token_secret",
            &e.reply_token_secret,
            &e.reply_token_secret_file,
        );
        if reply_secret
            .as_ref()
            .is_some_and(|s| s.expose().len() < aduan_email::token::MIN_SECRET_BYTES)
        {
            p.push(Problem {
                path: "channels.email.reply_token_secret".into(),
                message: format!(
                    "must be at least {} bytes (leave it unset to have one generated)",
                    aduan_email::token::MIN_SECRET_BYTES
                ),
            });
        }
        if e.max_message_bytes
            .is_some_and(|m| !(1024..=aduan_email::parse::MAX_MAIL_BYTES as u64).contains(&m))
        {
            p.push(Problem {
                path: "channels.email.max_message_bytes".into(),
                message: format!(
                    "must be from 1024 to {} (the parser's limit)",
                    aduan_email::parse::MAX_MAIL_BYTES
                ),
            });
        }
        if e.poll_secs.is_some_and(|s| !(5..=1500).contains(&s)) {
            p.push(Problem {
                path: "channels.email.poll_secs".into(),
                message: "must be from 5 to 1500 (IDLE must be renewed within 29 minutes)".into(),
            });
        }
        if let Some(from) = &e.from
            && !from.contains('@')
        {
            p.push(Problem {
                path: "channels.email.from".into(),
                message: format!(
                    "{from:?} is not an address like \"Lapak Aduan <aduan@example.go.id>\""
                ),
            });
        }
        if e.enabled {
            require(p, "channels.email.imap_host", &e.imap_host);
            require(p, "channels.email.imap_user", &e.imap_user);
            require(p, "channels.email.imap_password", &password);
            require(p, "channels.email.smtp_url", &smtp);
            require(p, "channels.email.from", &e.from);
            not_empty(p, "channels.email.imap_password", &e.imap_password_file, &password);
        }

        let t = &c.telegram;
        let token = secret(p, "channels.telegram.token", &t.token, &t.token_file);
        let webhook_secret =
            secret(p, "channels.telegram.secret_token", &t.secret_token, &t.secret_token_file);
        one_of(p, "channels.telegram.mode", &t.mode, &["polling", "webhook"]);
        url(p, "channels.telegram.api_url", t.api_url.as_deref(), &["http", "https"]);
        if t.enabled {
            require(p, "channels.telegram.token", &token);
            not_empty(p, "channels.telegram.token", &t.token_file, &token);
            if t.mode.as_deref() == Some("webhook") {
                require(p, "channels.telegram.secret_token", &webhook_secret);
                strong(p, "channels.telegram.secret_token", &t.secret_token_file, &webhook_secret);
            }
        }
        if let Some(s) = &webhook_secret {
            let s = s.expose();
            if !((1..=256).contains(&s.len())
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
            {
                p.push(Problem {
                    path: "channels.telegram.secret_token".into(),
                    message: "must be 1-256 characters of A-Z, a-z, 0-9, _ and - (Telegram's rule)"
                        .into(),
                });
            }
        }
        if let Some(secs) = t.poll_timeout_secs
            && !(1..=120).contains(&secs)
        {
            p.push(Problem {
                path: "channels.telegram.poll_timeout_secs".into(),
                message: "must be from 1 to 120".into(),
            });
        }

        let m = &c.meta;
        let app_secret = secret(p, "channels.meta.app_secret", &m.app_secret, &m.app_secret_file);
        let verify = secret(p, "channels.meta.verify_token", &m.verify_token, &m.verify_token_file);
        let page = secret(
            p,
            "channels.meta.page_access_token",
            &m.page_access_token,
            &m.page_access_token_file,
        );
        let wa =
            secret(p, "channels.meta.whatsapp_token", &m.whatsapp_token, &m.whatsapp_token_file);
        url(p, "channels.meta.graph_api_url", m.graph_api_url.as_deref(), &["http", "https"]);
        media_hosts(p, "channels.meta.media_hosts", &m.media_hosts);
        if m.enabled {
            require(p, "channels.meta.app_secret", &app_secret);
            require(p, "channels.meta.verify_token", &verify);
            strong(p, "channels.meta.app_secret", &m.app_secret_file, &app_secret);
            strong(p, "channels.meta.verify_token", &m.verify_token_file, &verify);
            not_empty(p, "channels.meta.page_access_token", &m.page_access_token_file, &page);
            not_empty(p, "channels.meta.whatsapp_token", &m.whatsapp_token_file, &wa);
            if (m.whatsapp_token.is_some() || m.whatsapp_token_file.is_some())
                && m.whatsapp_phone_number_id.is_none()
            {
                p.push(Problem {
                    path: "channels.meta.whatsapp_phone_number_id".into(),
                    message: "is required to answer on WhatsApp (with whatsapp_token)".into(),
                });
            }
        }

        let x = &c.x;
        let consumer =
            secret(p, "channels.x.consumer_secret", &x.consumer_secret, &x.consumer_secret_file);
        let bearer = secret(p, "channels.x.bearer_token", &x.bearer_token, &x.bearer_token_file);
        url(p, "channels.x.api_url", x.api_url.as_deref(), &["http", "https"]);
        if x.enabled {
            require(p, "channels.x.consumer_secret", &consumer);
            strong(p, "channels.x.consumer_secret", &x.consumer_secret_file, &consumer);
            not_empty(p, "channels.x.bearer_token", &x.bearer_token_file, &bearer);
        }

        let k = &c.kannel;
        let ksecret = secret(p, "channels.kannel.secret", &k.secret, &k.secret_file);
        let kpassword = secret(p, "channels.kannel.password", &k.password, &k.password_file);
        url(p, "channels.kannel.sendsms_url", k.sendsms_url.as_deref(), &["http", "https"]);
        if k.enabled {
            require(p, "channels.kannel.secret", &ksecret);
            require(p, "channels.kannel.sendsms_url", &k.sendsms_url);
            strong(p, "channels.kannel.secret", &k.secret_file, &ksecret);
            not_empty(p, "channels.kannel.password", &k.password_file, &kpassword);
        }

        let tw = &c.twilio;
        let auth = secret(p, "channels.twilio.auth_token", &tw.auth_token, &tw.auth_token_file);
        url(p, "channels.twilio.api_url", tw.api_url.as_deref(), &["http", "https"]);
        media_hosts(p, "channels.twilio.media_hosts", &tw.media_hosts);
        if tw.enabled {
            require(p, "channels.twilio.account_sid", &tw.account_sid);
            require(p, "channels.twilio.auth_token", &auth);
            strong(p, "channels.twilio.auth_token", &tw.auth_token_file, &auth);
        }

        let a = &c.android_sms;
        let key =
            secret(p, "channels.android_sms.signing_key", &a.signing_key, &a.signing_key_file);
        let apassword = secret(p, "channels.android_sms.password", &a.password, &a.password_file);
        url(p, "channels.android_sms.api_url", a.api_url.as_deref(), &["http", "https"]);
        if a.enabled {
            require(p, "channels.android_sms.signing_key", &key);
            strong(p, "channels.android_sms.signing_key", &a.signing_key_file, &key);
            not_empty(p, "channels.android_sms.password", &a.password_file, &apassword);
        }
        for (path, parts) in [
            ("channels.kannel.max_parts", k.max_parts),
            ("channels.twilio.max_parts", tw.max_parts),
            ("channels.android_sms.max_parts", a.max_parts),
        ] {
            if parts.is_some_and(|n| !(1..=10).contains(&n)) {
                p.push(Problem { path: path.into(), message: "must be from 1 to 10".into() });
            }
        }
        for (path, rate) in [
            ("channels.kannel.per_second", k.per_second),
            ("channels.twilio.segments_per_second", tw.segments_per_second),
            ("channels.android_sms.per_minute", a.per_minute),
        ] {
            if rate == Some(0) {
                p.push(Problem { path: path.into(), message: "must be at least 1".into() });
            }
        }
    }

    /// The channel tables with `enabled = true`.
    pub fn enabled_channels(&self) -> Vec<&'static str> {
        let c = &self.channels;
        [
            ("email", c.email.enabled),
            ("telegram", c.telegram.enabled),
            ("meta", c.meta.enabled),
            ("x", c.x.enabled),
            ("kannel", c.kannel.enabled),
            ("twilio", c.twilio.enabled),
            ("android_sms", c.android_sms.enabled),
        ]
        .into_iter()
        .filter_map(|(name, on)| on.then_some(name))
        .collect()
    }

    pub fn threading_policy(&self) -> aduan_core::ThreadingPolicy {
        aduan_core::ThreadingPolicy {
            default_window: chrono::Duration::seconds(self.threading.window_secs.max(0)),
            per_channel: self
                .threading
                .channel_window_secs
                .iter()
                .filter_map(|(c, s)| {
                    Some((c.parse().ok()?, chrono::Duration::seconds((*s).max(0))))
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/aduan.example.toml")
    }

    fn no_env() -> Env {
        Env::prefixed("ADUAN_TEST_NOTHING__").split("__")
    }

    #[test]
    fn the_example_documents_every_key_and_parses() {
        let (config, _) = load_from(Some(&example()), no_env()).unwrap();
        // Every key of the full structure appears in the example.
        let text = std::fs::read_to_string(example()).unwrap();
        let full = toml::Value::try_from(Config::default()).unwrap();
        fn keys(prefix: &str, v: &toml::Value, out: &mut Vec<String>) {
            if let toml::Value::Table(t) = v {
                for (k, v) in t {
                    let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    keys(&path, v, out);
                    out.push(path);
                }
            }
        }
        let mut all = Vec::new();
        keys("", &full, &mut all);
        for key in all {
            let leaf = key.rsplit('.').next().unwrap();
            assert!(text.contains(leaf), "config/aduan.example.toml does not mention {key}");
        }
        // Optional keys, absent from Default, are documented too.
        for leaf in [
            "imap_password_file",
            "imap_ca_file",
            "token_file",
            "app_secret_file",
            "calendar_file",
            "signing_key",
        ] {
            assert!(text.contains(leaf), "example lacks {leaf}");
        }
        assert_eq!(config.server.listen, "127.0.0.1:8080");
        assert!(config.channels.email.imap_host.is_some());
    }

    #[test]
    fn defaults_need_no_file() {
        let config = Config::default();
        assert_eq!(config.database.url.expose(), "sqlite://data/aduan.db");
        assert_eq!(config.server.listen, "127.0.0.1:8080");
        assert!(config.enabled_channels().is_empty());
        assert_eq!(config.validate(), vec![]);
    }

    #[test]
    #[allow(clippy::result_large_err, reason = "figment's Jail API")]
    fn environment_overrides_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.toml");
        std::fs::write(
            &file,
            "[server]\nlisten = \"127.0.0.1:9000\"\n[database]\nurl = \"sqlite://x.db\"\n",
        )
        .unwrap();
        figment::Jail::expect_with(|jail| {
            jail.set_env("ADUAN__SERVER__LISTEN", "127.0.0.1:9100");
            jail.set_env("ADUAN__CHANNELS__ANDROID_SMS__SIGNING_KEY", "k");
            let (config, source) = load(Some(&file)).map_err(|p| format!("{p:?}"))?;
            assert_eq!(source, Source::File(file.clone()));
            assert_eq!(config.server.listen, "127.0.0.1:9100");
            assert_eq!(config.database.url.expose(), "sqlite://x.db");
            assert_eq!(
                config.channels.android_sms.signing_key.as_ref().map(Secret::expose),
                Some("k")
            );
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_and_wrong_types_name_their_path() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.toml");
        std::fs::write(&file, "[server]\nlisen = \"x\"\n").unwrap();
        let problems = load_from(Some(&file), no_env()).unwrap_err();
        assert!(problems[0].to_string().contains("lisen"), "{problems:?}");
        std::fs::write(&file, "[database]\nmax_batch = \"many\"\n").unwrap();
        let problems = load_from(Some(&file), no_env()).unwrap_err();
        assert_eq!(problems[0].path, "database.max_batch", "{problems:?}");
        let problems = load_from(Some(&dir.path().join("missing.toml")), no_env()).unwrap_err();
        assert_eq!(problems[0].path, "--config");
    }

    #[test]
    fn validation_reports_every_problem() {
        let mut c = Config::default();
        c.server.listen = "everywhere".into();
        c.database.url = Secret("mysql://x".into());
        c.sla.timezone = "Mars/Olympus".into();
        c.channels.email.enabled = true;
        c.channels.email.imap_tls = Some("ssl".into());
        c.channels.telegram.token = Some(Secret("a".into()));
        c.channels.telegram.token_file = Some("/nonexistent".into());
        let paths: Vec<String> = c.validate().into_iter().map(|p| p.path).collect();
        assert_eq!(
            paths,
            [
                "server.listen",
                "database.url",
                "sla.timezone",
                "channels.email.imap_tls",
                "channels.email.imap_host",
                "channels.email.imap_user",
                "channels.email.imap_password",
                "channels.email.smtp_url",
                "channels.email.from",
                "channels.telegram.token_file",
            ]
        );
    }

    #[test]
    fn secrets_are_never_printed() {
        let mut c = Config::default();
        c.channels.telegram.token = Some(Secret("123:very-secret".into()));
        c.database.url = Secret("postgres://aduan:hunter2@db/aduan".into());
        let debug = format!("{c:?}");
        assert!(!debug.contains("very-secret") && !debug.contains("hunter2"), "{debug}");
    }

    #[test]
    fn social_settings_read_secret_files_and_default_urls() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("app_secret");
        std::fs::write(&f, "s3cret-0123456789abcdef\n").unwrap();
        let mut c = Config::default();
        c.channels.meta = Meta {
            enabled: true,
            app_secret_file: Some(f),
            verify_token: Some(Secret("verify-token-0123456789".into())),
            whatsapp_token: Some(Secret("w".into())),
            ..Meta::default()
        };
        let paths: Vec<String> = c.validate().into_iter().map(|p| p.path).collect();
        assert_eq!(paths, ["channels.meta.whatsapp_phone_number_id"]);
        c.channels.meta.whatsapp_phone_number_id = Some("106540352242922".into());
        assert_eq!(c.validate(), vec![]);
        let meta = c.channels.meta.settings(Path::new("data/attachments")).unwrap();
        assert_eq!(meta.app_secret, "s3cret-0123456789abcdef");
        assert_eq!(meta.media_hosts, aduan_social::META_MEDIA_HOSTS);
        assert_eq!(meta.graph_api_url, "https://graph.facebook.com/v21.0");
        assert_eq!(meta.page_access_token, None);
        c.channels.x.consumer_secret = Some(Secret("cs".into()));
        let x = c.channels.x.settings().unwrap();
        assert_eq!((x.consumer_secret.as_str(), x.api_url.as_str()), ("cs", "https://api.x.com"));
        assert!(X::default().settings().is_err());
    }

    #[test]
    fn secret_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("token");
        std::fs::write(&f, "123:abc\n").unwrap();
        let mut p = Vec::new();
        let s = secret(&mut p, "channels.telegram.token", &None, &Some(f));
        assert_eq!(s.as_ref().map(Secret::expose), Some("123:abc"));
        assert!(p.is_empty());
    }

    /// Every webhook secret of an enabled channel, set to `value` inline.
    fn with_webhook_secrets(value: &str) -> Config {
        let s = || Some(Secret(value.into()));
        let mut c = Config::default();
        let ch = &mut c.channels;
        ch.kannel = Kannel {
            enabled: true,
            secret: s(),
            sendsms_url: Some("http://127.0.0.1:13013/cgi-bin/sendsms".into()),
            ..Kannel::default()
        };
        ch.twilio = Twilio {
            enabled: true,
            account_sid: Some("AC1".into()),
            auth_token: s(),
            ..Twilio::default()
        };
        ch.android_sms = AndroidSms { enabled: true, signing_key: s(), ..AndroidSms::default() };
        ch.meta = Meta { enabled: true, app_secret: s(), verify_token: s(), ..Meta::default() };
        ch.x = X { enabled: true, consumer_secret: s(), ..X::default() };
        ch.telegram = Telegram {
            enabled: true,
            token: Some(Secret("123:abc".into())),
            mode: Some("webhook".into()),
            secret_token: s(),
            ..Telegram::default()
        };
        c
    }

    const WEBHOOK_SECRETS: [&str; 7] = [
        "channels.telegram.secret_token",
        "channels.meta.app_secret",
        "channels.meta.verify_token",
        "channels.x.consumer_secret",
        "channels.kannel.secret",
        "channels.twilio.auth_token",
        "channels.android_sms.signing_key",
    ];

    #[test]
    fn empty_and_short_webhook_secrets_are_refused_by_name_never_by_value() {
        for value in ["", "short-secret-15"] {
            let problems = with_webhook_secrets(value).validate();
            let mut paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
            paths.retain(|p| WEBHOOK_SECRETS.contains(p));
            paths.dedup(); // an empty Telegram secret_token also breaks Telegram's charset rule
            assert_eq!(paths, WEBHOOK_SECRETS, "{value:?}: {problems:?}");
            for p in &problems {
                assert!(p.message.contains("16 bytes") || p.path.contains("telegram"), "{p}");
                assert!(value.is_empty() || !p.to_string().contains(value), "{p}");
            }
        }
        // Telegram's own charset rule still applies; 16 bytes of it pass everywhere.
        assert_eq!(with_webhook_secrets("sixteen-bytes-ok").validate(), vec![]);
    }

    #[test]
    fn empty_secret_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let mut c = with_webhook_secrets("sixteen-bytes-ok");
        c.channels.kannel.secret = None;
        c.channels.kannel.secret_file = Some(empty.clone());
        c.channels.x.bearer_token_file = Some(empty);
        let problems = c.validate();
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["channels.x.bearer_token_file", "channels.kannel.secret_file"]);
        assert!(problems[1].message.contains("empty"), "{problems:?}");
    }

    #[test]
    fn numeric_and_boolean_secrets_are_taken_as_written_and_never_printed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.toml");
        // Unquoted in TOML: a number and a boolean.
        std::fs::write(
            &file,
            "[channels.kannel]\nsecret = 987654321\npassword = true\n[channels.x]\n\
             consumer_secret = 1234567890123456789\n",
        )
        .unwrap();
        let (c, _) = load_from(Some(&file), no_env()).unwrap();
        assert_eq!(c.channels.kannel.secret.as_ref().map(Secret::expose), Some("987654321"));
        assert_eq!(c.channels.kannel.password.as_ref().map(Secret::expose), Some("true"));
        assert_eq!(
            c.channels.x.consumer_secret.as_ref().map(Secret::expose),
            Some("1234567890123456789")
        );
        // A float's text is lost on reading: refused, without the value.
        std::fs::write(&file, "[channels.kannel]\nsecret = 98765.4321\n").unwrap();
        let problems = load_from(Some(&file), no_env()).unwrap_err();
        assert_eq!(problems[0].path, "channels.kannel.secret", "{problems:?}");
        assert!(!format!("{problems:?}").contains("98765"), "{problems:?}");
        // A short numeric secret of an enabled channel: named, never shown.
        let mut c = with_webhook_secrets("sixteen-bytes-ok");
        c.channels.kannel.secret = Some(Secret("987654321".into()));
        let problems = c.validate();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].path, "channels.kannel.secret");
        assert!(!problems[0].to_string().contains("987654321"), "{}", problems[0]);
    }

    #[test]
    #[allow(clippy::result_large_err, reason = "figment's Jail API")]
    fn secrets_from_the_environment_are_kept_exactly() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("ADUAN__CHANNELS__KANNEL__SECRET", "0123456789012345678");
            jail.set_env("ADUAN__CHANNELS__TWILIO__AUTH_TOKEN", "987654321");
            jail.set_env("ADUAN__CHANNELS__ANDROID_SMS__SIGNING_KEY", "true");
            jail.set_env("ADUAN__CHANNELS__X__CONSUMER_SECRET", "\"quoted-as-before\"");
            jail.set_env("ADUAN__CHANNELS__META__APP_SECRET", "1.50");
            jail.set_env("ADUAN__CHANNELS__KANNEL__PER_SECOND", "12");
            jail.set_env("ADUAN__ROUTING__ADMIN_EMAILS", "[a@example.go.id, b@example.go.id]");
            let (c, _) = load(None).map_err(|p| format!("{p:?}"))?;
            let ch = &c.channels;
            let got = |s: &Option<Secret>| s.as_ref().map(|s| s.expose().to_owned());
            assert_eq!(got(&ch.kannel.secret).as_deref(), Some("0123456789012345678"));
            assert_eq!(got(&ch.twilio.auth_token).as_deref(), Some("987654321"));
            assert_eq!(got(&ch.android_sms.signing_key).as_deref(), Some("true"));
            assert_eq!(got(&ch.x.consumer_secret).as_deref(), Some("quoted-as-before"));
            assert_eq!(got(&ch.meta.app_secret).as_deref(), Some("1.50"));
            // Other keys are parsed as before.
            assert_eq!(ch.kannel.per_second, Some(12));
            assert_eq!(c.routing.admin_emails.len(), 2);
            Ok(())
        });
    }

    #[test]
    fn media_hosts_are_names_or_wildcards() {
        let mut c = Config::default();
        c.channels.twilio.media_hosts =
            Some(vec!["api.twilio.com".into(), "*.twiliocdn.com".into()]);
        assert_eq!(c.validate(), vec![]);
        c.channels.meta.media_hosts =
            Some(vec!["https://lookaside.fbsbx.com".into(), "a.b:443".into(), "".into()]);
        let paths: Vec<String> = c.validate().into_iter().map(|p| p.path).collect();
        assert_eq!(
            paths,
            [
                "channels.meta.media_hosts[0]",
                "channels.meta.media_hosts[1]",
                "channels.meta.media_hosts[2]"
            ]
        );
    }
}
