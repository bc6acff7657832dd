//! Configuration: built-in defaults, then a TOML file, then `ADUAN__SECTION__KEY`
//! environment variables. Every section is a typed struct; unknown keys are errors, so a
//! typo never silently falls back to a default.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

pub use aduan_connector::config::{Problem, Secret};
use aduan_connector::config::{Section, one_of, url};

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
    pub inbox: Inbox,
    pub incidents: Incidents,
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
    /// Attachment bytes one client address may upload through `/lapor` per hour, and one
    /// sender may store per hour on every other channel (media fetched for SMS/MMS, Meta,
    /// Telegram; email attachments): more is not stored, and the ticket says so.
    pub upload_bytes_per_hour: u64,
    /// When set (at least 16 bytes), `GET /metrics` needs `Authorization: Bearer <token>`.
    pub metrics_token: Option<Secret>,
    /// The key officials' one-click action links are signed with (HMAC-SHA256, at least 16
    /// bytes). Unset: derived from the email reply-token key (`[channels.email]
    /// reply_token_secret` or its generated file) under its own label.
    pub action_link_key: Option<Secret>,
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
            action_link_key: None,
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
        Database { url: Secret::new("sqlite://data/aduan.db"), max_connections: 8, max_batch: 256 }
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
    /// Working days a resident has to confirm a resolved ticket (1 fixed, 2 not fixed);
    /// without an answer it is closed.
    pub confirm_working_days: u32,
    /// Days an official's action link in a notification stays valid.
    pub action_link_days: u32,
    /// The local hour (0–23) of the daily digest to each OPD head, on working days; unset:
    /// no digest.
    pub digest_hour: Option<u32>,
}

impl Default for Sla {
    fn default() -> Self {
        Sla {
            timezone: "Asia/Jakarta".into(),
            first_response_hours: 24,
            resolution: "5d".into(),
            warn_fraction: 0.75,
            calendar_file: None,
            confirm_working_days: 3,
            action_link_days: 7,
            digest_hour: None,
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
    /// Route a complaint whose keywords all point at one OPD even below `threshold`, unless
    /// the learned router names another OPD (issue 18).
    pub lone_keyword_routes: bool,
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
            lone_keyword_routes: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Outbound {
    pub poll_ms: u64,
    pub max_attempts: i64,
    pub backoff_secs: u64,
    /// Where an answer its channel can't deliver is tried next (issue 17).
    pub fallback_order: Vec<aduan_core::Channel>,
}

impl Default for Outbound {
    fn default() -> Self {
        Outbound {
            poll_ms: 500,
            max_attempts: 8,
            backoff_secs: 30,
            fallback_order: aduan_core::DEFAULT_FALLBACK_ORDER.to_vec(),
        }
    }
}

/// `[incidents]` (issue 20): many reports of one problem. See `aduan_core::incident`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Incidents {
    /// How far back (and forward) candidate tickets are looked for.
    pub window_days: u32,
    /// Reports of one problem lie within this many metres (at most 490).
    pub radius_m: f64,
    /// A category's own radius (category code → metres), e.g. floods span more.
    pub radius_by_category: std::collections::BTreeMap<String, f64>,
    /// From this score on (0–1) the operator sees "kemungkinan sama dengan ADU-…".
    pub suggest_score: f64,
    /// From this score on a ticket joins the incident by itself, when `auto_join` is on.
    pub auto_join_score: f64,
    /// Join automatically (off: an operator decides every join).
    pub auto_join: bool,
}

impl Default for Incidents {
    fn default() -> Self {
        let p = aduan_core::incident::IncidentPolicy::default();
        Incidents {
            window_days: p.window_days,
            radius_m: p.radius_m,
            radius_by_category: p.radius_by_category,
            suggest_score: p.suggest_score,
            auto_join_score: p.auto_join_score,
            auto_join: p.auto_join,
        }
    }
}

impl Incidents {
    pub fn policy(&self) -> aduan_core::incident::IncidentPolicy {
        aduan_core::incident::IncidentPolicy {
            window_days: self.window_days,
            radius_m: self.radius_m,
            radius_by_category: self.radius_by_category.clone(),
            suggest_score: self.suggest_score,
            auto_join_score: self.auto_join_score,
            auto_join: self.auto_join,
        }
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

/// `[inbox]`: the operators' desk (issue 19.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Inbox {
    /// Hand new triage tickets nobody took to the operators on duty, in turn.
    pub round_robin: bool,
    /// How often the round-robin looks for new triage tickets.
    pub round_robin_interval_secs: u64,
}

impl Default for Inbox {
    fn default() -> Self {
        Inbox { round_robin: false, round_robin_interval_secs: 5 }
    }
}

/// The `[channels.*]` sections, each owned by its channel crate (see
/// `aduan_connector::config`). A new channel is one line here and one in `sections`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Channels {
    pub email: aduan_email::EmailSection,
    pub telegram: aduan_telegram::TelegramSection,
    pub meta: aduan_social::MetaSection,
    pub x: aduan_social::XSection,
    pub kannel: aduan_sms::KannelSection,
    pub twilio: aduan_sms::TwilioSection,
    pub android_sms: aduan_sms::AndroidSmsSection,
}

impl Channels {
    /// Every section, in the order their problems are reported.
    pub fn sections(&self) -> [&dyn Section; 7] {
        [
            &self.email,
            &self.telegram,
            &self.meta,
            &self.x,
            &self.kannel,
            &self.twilio,
            &self.android_sms,
        ]
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
        if !(1..=3600).contains(&self.inbox.round_robin_interval_secs) {
            p.push(Problem {
                path: "inbox.round_robin_interval_secs".into(),
                message: "must be from 1 to 3600".into(),
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
        if let Some(k) = &self.server.action_link_key
            && k.expose().trim().len() < aduan_core::action_link::MIN_KEY_BYTES
        {
            p.push(Problem {
                path: "server.action_link_key".into(),
                message: "must be at least 16 bytes when set".into(),
            });
        }
        if !(1..=60).contains(&self.sla.action_link_days) {
            p.push(Problem {
                path: "sla.action_link_days".into(),
                message: "must be between 1 and 60 days".into(),
            });
        }
        if self.sla.digest_hour.is_some_and(|h| h > 23) {
            p.push(Problem {
                path: "sla.digest_hour".into(),
                message: "must be a local hour from 0 to 23".into(),
            });
        }
        if !(1..=30).contains(&self.sla.confirm_working_days) {
            p.push(Problem {
                path: "sla.confirm_working_days".into(),
                message: "must be between 1 and 30 working days".into(),
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
        self.validate_fallback_order(&mut p);
        self.validate_channels(&mut p);
        for message in self.incidents.policy().problems() {
            p.push(Problem { path: "incidents".into(), message });
        }
        p
    }

    /// `[outbound] fallback_order`: channels aduan can send on, each once.
    fn validate_fallback_order(&self, p: &mut Vec<Problem>) {
        use aduan_core::Channel;
        let order = &self.outbound.fallback_order;
        for (i, ch) in order.iter().enumerate() {
            let message = if matches!(ch, Channel::Web | Channel::Open311) {
                format!("{ch} can't carry an answer: list sending channels only")
            } else if order[..i].contains(ch) {
                format!("{ch} is listed twice")
            } else {
                continue;
            };
            p.push(Problem { path: format!("outbound.fallback_order[{i}]"), message });
        }
    }

    fn validate_channels(&self, p: &mut Vec<Problem>) {
        for section in self.channels.sections() {
            p.extend(section.problems());
        }
    }

    /// The channel tables with `enabled = true`.
    pub fn enabled_channels(&self) -> Vec<&'static str> {
        self.channels.sections().into_iter().filter(|s| s.enabled()).map(|s| s.key()).collect()
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
    use aduan_connector::BuildContext;
    use aduan_connector::config::ChannelConfig;
    use aduan_sms::{
        AndroidSmsSection as AndroidSms, KannelSection as Kannel, TwilioSection as Twilio,
    };
    use aduan_social::{MetaSection as Meta, XSection as X};
    use aduan_telegram::TelegramSection as Telegram;

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
    fn every_channel_section_is_listed_under_its_own_key() {
        let mut c = Config::default();
        let table = toml::Value::try_from(&c.channels).unwrap();
        let mut tables: Vec<&str> = table.as_table().unwrap().keys().map(String::as_str).collect();
        let mut keys: Vec<&str> = c.channels.sections().iter().map(|s| s.key()).collect();
        tables.sort_unstable();
        keys.sort_unstable();
        assert_eq!(tables, keys);
        c.channels.twilio.enabled = true;
        c.channels.telegram.enabled = true;
        assert_eq!(c.enabled_channels(), ["telegram", "twilio"]);
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
        c.database.url = Secret::new("mysql://x");
        c.sla.timezone = "Mars/Olympus".into();
        c.channels.email.enabled = true;
        c.channels.email.imap_tls = Some("ssl".into());
        c.channels.telegram.token = Some(Secret::new("a"));
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
        c.channels.telegram.token = Some(Secret::new("123:very-secret"));
        c.database.url = Secret::new("postgres://aduan:hunter2@db/aduan");
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
            verify_token: Some(Secret::new("verify-token-0123456789")),
            whatsapp_token: Some(Secret::new("w")),
            ..Meta::default()
        };
        let paths: Vec<String> = c.validate().into_iter().map(|p| p.path).collect();
        assert_eq!(paths, ["channels.meta.whatsapp_phone_number_id"]);
        c.channels.meta.whatsapp_phone_number_id = Some("106540352242922".into());
        assert_eq!(c.validate(), vec![]);
        let cx = BuildContext {
            attachments_dir: PathBuf::from("data/attachments"),
            public_url: c.server.public_url.clone(),
        };
        let meta = c.channels.meta.settings(&cx).unwrap();
        assert_eq!(meta.app_secret.expose(), "s3cret-0123456789abcdef");
        assert_eq!(meta.media_hosts, aduan_social::META_MEDIA_HOSTS);
        assert_eq!(meta.graph_api_url, "https://graph.facebook.com/v21.0");
        assert_eq!(meta.page_access_token, None);
        c.channels.x.consumer_secret = Some(Secret::new("cs"));
        let x = c.channels.x.settings(&cx).unwrap();
        assert_eq!((x.consumer_secret.expose(), x.api_url.as_str()), ("cs", "https://api.x.com"));
        assert!(X::default().settings(&cx).is_err());
    }

    /// Every webhook secret of an enabled channel, set to `value` inline.
    fn with_webhook_secrets(value: &str) -> Config {
        let s = || Some(Secret::new(value));
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
            token: Some(Secret::new("123:abc")),
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
        c.channels.kannel.secret = Some(Secret::new("987654321"));
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

    // --- windows: provider windows and the fallback chain ---

    #[test]
    fn the_fallback_order_and_the_whatsapp_template_are_checked() {
        use aduan_core::Channel;
        let c: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string(
                r#"
                [outbound]
                fallback_order = ["sms", "web", "email", "sms"]
                [channels.meta]
                human_agent_tag = true
                whatsapp_template = { name = "status aduan", language = "id" }
                "#,
            ))
            .extract()
            .unwrap();
        assert_eq!(
            c.outbound.fallback_order,
            [Channel::Sms, Channel::Web, Channel::Email, Channel::Sms]
        );
        assert!(c.channels.meta.human_agent_tag);
        let t = c.channels.meta.whatsapp_template.as_ref().unwrap();
        assert_eq!(t.params.len(), 3, "code, status and link by default");
        let paths: Vec<String> = c.validate().into_iter().map(|p| p.path).collect();
        assert_eq!(
            paths,
            [
                "outbound.fallback_order[1]",
                "outbound.fallback_order[3]",
                "channels.meta.whatsapp_template.name"
            ]
        );
        assert_eq!(Config::default().outbound.fallback_order, aduan_core::DEFAULT_FALLBACK_ORDER);
        assert!(!Config::default().channels.meta.human_agent_tag);
    }
}
