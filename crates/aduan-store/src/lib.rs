//! The ticket store: one API over two backends.
//!
//! `Store` is an enum over an embedded SQLite database and a PostgreSQL server. Every query
//! is written once (in `ops.rs`) and compiled for both backends. Writes differ in how they
//! reach the database:
//!
//! - **SQLite** has one writer connection owned by a task. Concurrent writes queue up and the
//!   writer commits whatever is queued as one transaction (*group commit*), each write in its
//!   own savepoint, and answers every caller only after that commit. With `synchronous=FULL`
//!   a whole batch costs one fsync.
//! - **PostgreSQL** runs each write in its own transaction from a pool; concurrent intake of
//!   the same provider message or the same sender is serialised by advisory locks, so several
//!   `aduan` instances can share one database.

mod db;
mod leases;
mod ops;
mod postgres;
mod routing;
mod sqlite;
mod types;

use std::path::PathBuf;
use std::sync::Arc;

use aduan_core::{
    Actor, Channel, Identity, InboundMessage, SlaPolicy, Status, ThreadingPolicy, TicketCode,
    TransitionError,
};
use chrono::{DateTime, Duration, Utc};

pub use ops::DeadNotification;
pub use routing::{
    ReporterInfo, ReporterUpdate, RouteAction, RouteJob, RouteResult, WatchedTicket,
};
pub use types::*;

/// Everything that can go wrong in the store. The web layer maps each variant to a status.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("ticket {0} does not exist")]
    TicketNotFound(TicketCode),
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error("{0}")]
    Conflict(String),
    /// The request can't be carried out as asked (the caller's mistake).
    #[error("{0}")]
    Invalid(String),
    /// Something in the database or the store itself is not as it must be.
    #[error("internal: {0}")]
    Internal(String),
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    #[error("the store is shutting down")]
    Closed,
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("sqlite: {0}")]
    Sqlite(String),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Tunables of the store, from the `[database]`, `[threading]` and `[sla]` config.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub threading: ThreadingPolicy,
    pub sla: SlaPolicy,
    /// Connections in the read pool (SQLite) or the whole pool (PostgreSQL).
    pub max_connections: u32,
    /// Most writes one SQLite group commit takes.
    pub max_batch: usize,
    /// The receipt sent when a message opens a ticket (`{code}`, `{hours}`); `None` sends
    /// none.
    pub ack_template: Option<String>,
    /// OPD code → name, for the answers to "CEK ADU-…".
    pub opd_names: std::collections::HashMap<String, String>,
    /// Caps on the automatic messages to residents (receipts, identity requests, status
    /// answers), counted over the outbox so they hold across instances.
    pub auto_limits: AutoLimits,
}

/// How many automatic messages to residents the store queues (`[intake]
/// auto_messages_per_recipient_per_day`, `auto_messages_per_hour`). An automatic message
/// over a cap is kept on the ticket (outbox state `published`, reason `refused:…`) but not
/// sent: nobody can make the desk pump SMS to one number or to many.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutoLimits {
    /// To one contact in the last 24 hours.
    pub per_recipient_per_day: u32,
    /// To everyone together in the last hour.
    pub per_hour: u32,
}

impl Default for AutoLimits {
    fn default() -> Self {
        AutoLimits { per_recipient_per_day: 10, per_hour: 1000 }
    }
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            threading: ThreadingPolicy::default(),
            sla: SlaPolicy::default(),
            max_connections: 8,
            max_batch: 256,
            ack_template: Some(aduan_core::DEFAULT_ACK_TEMPLATE.to_owned()),
            opd_names: std::collections::HashMap::new(),
            auto_limits: AutoLimits::default(),
        }
    }
}

#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Backend,
    opts: StoreOptions,
}

enum Backend {
    Sqlite(sqlite::SqliteStore),
    Postgres(postgres::PgStore),
}

/// Runs a write on the right backend: `write!(self, |c| ops::f(c, args))`. The body is a
/// query future generic over the connection; it is compiled once per backend.
macro_rules! write {
    ($self:expr, |$c:ident| $body:expr) => {
        match &$self.inner.backend {
            Backend::Sqlite(s) => s.write(move |$c| sqlite::run_now($body)).await,
            Backend::Postgres(p) => p.write(move |$c| Box::pin(async move { $body.await })).await,
        }
    };
}

/// Runs a read: `read!(self, |c| ops::f(c, args))`; captured values must be owned.
macro_rules! read {
    ($self:expr, |$c:ident| $body:expr) => {
        match &$self.inner.backend {
            Backend::Sqlite(s) => s.read(move |$c| sqlite::run_now($body)).await,
            Backend::Postgres(p) => p.read(move |$c| Box::pin(async move { $body.await })).await,
        }
    };
}

/// The clock of the store: UTC, truncated to milliseconds so that SQLite's text timestamps
/// sort in time order and both backends hold the same values.
pub fn now() -> DateTime<Utc> {
    truncate_ms(Utc::now())
}

pub(crate) fn truncate_ms(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

impl Store {
    /// Opens `sqlite://PATH` (creating the file and its directory) or `postgres://…`.
    /// Does not migrate; call [`Store::migrate`].
    pub async fn open(url: &str, opts: StoreOptions) -> Result<Store> {
        let backend = if let Some(path) = url.strip_prefix("sqlite://") {
            let path = PathBuf::from(path.split('?').next().unwrap_or(path));
            Backend::Sqlite(sqlite::SqliteStore::open(&path, &opts).await?)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres(postgres::PgStore::open(url, &opts).await?)
        } else {
            return Err(StoreError::UnsupportedUrl(redact_url(url)));
        };
        Ok(Store { inner: Arc::new(Inner { backend, opts }) })
    }

    /// Applies the migrations embedded in the binary that the database lacks.
    pub async fn migrate(&self) -> Result<()> {
        match &self.inner.backend {
            Backend::Sqlite(s) => s.migrate().await,
            Backend::Postgres(p) => p.migrate().await,
        }
    }

    pub fn backend_name(&self) -> &'static str {
        match &self.inner.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Answers when the database does.
    pub async fn ping(&self) -> Result<()> {
        read!(self, |c| ops::ping(c))
    }

    /// Finishes queued writes and closes every connection.
    pub async fn close(&self) {
        match &self.inner.backend {
            Backend::Sqlite(s) => s.close().await,
            Backend::Postgres(p) => p.close().await,
        }
    }

    /// Stores an inbound message durably: deduplicated on `(channel, provider_id)`, attached
    /// to its reporter, threaded into a ticket (a new one if needed). Returns once committed.
    pub async fn ingest(&self, mut msg: InboundMessage) -> Result<Ingested> {
        // Every channel's text passes the one sanitiser here (NUL and control characters).
        aduan_core::clean_message(&mut msg);
        let opts = self.inner.opts.clone();
        let now = now();
        write!(self, |c| ops::ingest(c, &opts, msg, now))
    }

    /// Stores a provider's batch of messages in one transaction: all of them or none.
    pub async fn ingest_all(&self, mut msgs: Vec<InboundMessage>) -> Result<Vec<Ingested>> {
        msgs.iter_mut().for_each(aduan_core::clean_message);
        let opts = self.inner.opts.clone();
        let now = now();
        write!(self, |c| ops::ingest_all(c, &opts, msgs, now))
    }

    pub async fn ticket(&self, code: TicketCode) -> Result<Option<TicketView>> {
        let now = now();
        read!(self, |c| ops::ticket_view(c, code, now))
    }

    pub async fn tickets(&self, filter: &TicketFilter) -> Result<Page<TicketSummary>> {
        let now = now();
        let filter = filter.clone();
        read!(self, |c| ops::list_tickets(c, &filter, now))
    }

    /// The database's plan for [`Store::tickets`] with `filter` (`EXPLAIN QUERY PLAN` on
    /// SQLite, `EXPLAIN` on PostgreSQL), one line per step: `cargo xtask bench` prints it.
    pub async fn explain_tickets(&self, filter: &TicketFilter) -> Result<Vec<String>> {
        let now = now();
        let filter = filter.clone();
        read!(self, |c| ops::explain_list(c, &filter, now))
    }

    /// The plans of the routing worker's and deadline watcher's scans (`route_claim`,
    /// `undisposed`, `deadline_scan`), by name: `cargo xtask bench` prints them.
    pub async fn explain_worker_scans(&self) -> Result<Vec<(&'static str, Vec<String>)>> {
        let now = now();
        read!(self, |c| ops::explain_workers(c, now))
    }

    /// Disposes a ticket to an OPD (or moves it to another one).
    pub async fn assign(
        &self,
        code: TicketCode,
        opd: String,
        actor: Actor,
        note: Option<String>,
    ) -> Result<()> {
        let note = note.map(clean);
        let now = now();
        write!(self, |c| ops::assign(c, code, opd, actor, note, now))
    }

    pub async fn set_status(
        &self,
        code: TicketCode,
        to: Status,
        actor: Actor,
        note: Option<String>,
    ) -> Result<()> {
        let note = note.map(clean);
        let now = now();
        write!(self, |c| ops::set_status(c, code, to, actor, note, now))
    }

    /// Records an answer to the resident and queues it in the outbox for their channel.
    pub async fn reply(&self, code: TicketCode, text: String, actor: Actor) -> Result<Replied> {
        let text = clean(text);
        let now = now();
        write!(self, |c| ops::reply(c, code, text, actor, now))
    }

    /// Asks the resident to identify themselves (queued on their channel like a reply,
    /// purpose `identity_request`) and moves the ticket to `awaiting_identity`.
    pub async fn request_identity(
        &self,
        code: TicketCode,
        text: String,
        actor: Actor,
    ) -> Result<Replied> {
        let text = clean(text);
        let limits = self.inner.opts.auto_limits;
        let now = now();
        write!(self, |c| ops::request_identity(c, code, text, actor, limits, now))
    }

    /// Records an answer that arrived as a message (an OPD official replying by email) and
    /// queues it for the resident like [`Store::reply`], once per `origin` (e.g.
    /// `email:<Message-ID>`): `None` when that message was relayed before.
    pub async fn relay_reply(
        &self,
        code: TicketCode,
        text: String,
        actor: Actor,
        origin: String,
    ) -> Result<Option<Replied>> {
        let (text, origin) = (clean(text), clean(origin));
        let now = now();
        write!(self, |c| ops::relay_reply(c, code, text, actor, origin, now))
    }

    /// The ticket holding a message of `channel` with one of `provider_ids` (tried in
    /// order), followed through merges.
    pub async fn ticket_of_message(
        &self,
        channel: Channel,
        provider_ids: Vec<String>,
    ) -> Result<Option<TicketCode>> {
        let now = now();
        read!(self, |c| ops::ticket_of_message(c, channel, provider_ids, now))
    }

    /// Marks sent messages that came back undeliverable (bounces): their outbox rows end
    /// `dead` with `reason`. Returns the tickets concerned.
    pub async fn outbox_bounced(
        &self,
        channel: Channel,
        provider_ids: Vec<String>,
        reason: String,
    ) -> Result<Vec<TicketCode>> {
        let reason = clean(reason);
        write!(self, |c| ops::outbox_bounced(c, channel, provider_ids, reason))
    }

    /// Merges ticket `code` into `into`: its messages move over, later messages quoting
    /// `code` land in `into`.
    pub async fn merge(&self, code: TicketCode, into: TicketCode, actor: Actor) -> Result<()> {
        let now = now();
        write!(self, |c| ops::merge(c, code, into, actor, now))
    }

    /// Claims up to `limit` due outbox rows of the given channels for one sender, for
    /// `lease`. A claimed row is not handed out again until its lease runs out.
    pub async fn outbox_claim(
        &self,
        channels: Vec<Channel>,
        limit: i64,
        lease: Duration,
    ) -> Result<Vec<OutboxItem>> {
        let now = now();
        write!(self, |c| ops::outbox_claim(c, channels, limit, lease, now))
    }

    /// Marks a claimed row sent; `provider_id` is the provider's id of what went out.
    pub async fn outbox_sent(&self, id: i64, provider_id: Option<String>) -> Result<()> {
        let now = now();
        write!(self, |c| ops::outbox_sent(c, id, provider_id, now))
    }

    /// Records a failed attempt: retried at `retry_at`, or given up (`dead`) when `None`.
    pub async fn outbox_failed(
        &self,
        id: i64,
        error: String,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<()> {
        let now = now();
        write!(self, |c| ops::outbox_failed(c, id, error, retry_at, now))
    }

    /// Outbox rows per channel and state (for metrics and the health view).
    /// Automatic messages refused by [`AutoLimits`], by reason (`recipient_day`, `hour`),
    /// over the whole outbox: the same figures on every instance.
    pub async fn auto_refused_counts(&self) -> Result<Vec<(String, i64)>> {
        read!(self, |c| ops::auto_refused_counts(c))
    }

    pub async fn outbox_counts(&self) -> Result<Vec<(Channel, aduan_core::OutboxState, i64)>> {
        read!(self, |c| ops::outbox_counts(c))
    }

    /// Open tickets past their first-response deadline, per OPD (`None` = not yet assigned).
    pub async fn overdue_by_opd(&self) -> Result<Vec<(Option<String>, i64)>> {
        let now = now();
        read!(self, |c| ops::overdue_by_opd(c, now))
    }

    /// Claims up to `limit` tickets the router has to look at, for `lease`. Several
    /// workers may claim at once (PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite: one
    /// writer); a claim not finished by [`Store::route_done`] expires with its lease.
    pub async fn route_claim(
        &self,
        limit: i64,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<RouteJob>> {
        let now = truncate_ms(now);
        write!(self, |c| routing::route_claim(c, limit, lease, now))
    }

    /// Records the router's decision; `false` when an operator acted on the ticket first.
    pub async fn route_done(
        &self,
        code: TicketCode,
        result: RouteResult,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let opts = self.inner.opts.clone();
        let now = truncate_ms(now);
        write!(self, |c| routing::route_done(c, &opts, code, result, now))
    }

    /// Queues one notification (a message per recipient, on email or SMS) unless one with
    /// the same key was queued for the ticket before. `true` when it was queued now.
    pub async fn notify_once(
        &self,
        code: TicketCode,
        key: String,
        purpose: aduan_core::Purpose,
        recipients: Vec<aduan_core::Identity>,
        text: String,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let text = clean(text);
        let now = truncate_ms(now);
        write!(self, |c| routing::notify_once(c, code, key, purpose, recipients, text, now))
    }

    /// Open tickets with a running clock that has not been escalated.
    pub async fn deadline_scan(
        &self,
        limit: i64,
        now: DateTime<Utc>,
    ) -> Result<Vec<WatchedTicket>> {
        let now = truncate_ms(now);
        read!(self, |c| routing::deadline_scan(c, limit, now))
    }

    /// One ticket with the resident's texts and the reporter, for a notification about it.
    pub async fn watched_ticket(
        &self,
        code: TicketCode,
        now: DateTime<Utc>,
    ) -> Result<WatchedTicket> {
        let now = truncate_ms(now);
        read!(self, |c| routing::watched_ticket(c, code, now))
    }

    /// Tickets disposed to an OPD whose officials were not sent them yet.
    pub async fn undisposed(&self, limit: i64, now: DateTime<Utc>) -> Result<Vec<WatchedTicket>> {
        let now = truncate_ms(now);
        read!(self, |c| routing::undisposed(c, limit, now))
    }

    /// `(text, opd)` of the latest `limit` tickets disposed by people.
    pub async fn training_examples(&self, limit: i64) -> Result<Vec<(String, String)>> {
        read!(self, |c| routing::training_examples(c, limit))
    }

    /// Stops a ticket's clocks while it waits for the resident.
    pub async fn pause(&self, code: TicketCode, reason: String, actor: Actor) -> Result<()> {
        let reason = clean(reason);
        let now = now();
        write!(self, |c| routing::pause(c, code, reason, actor, now))
    }

    /// Starts the clocks again; the deadlines move by the time paused.
    pub async fn resume(&self, code: TicketCode, actor: Actor) -> Result<()> {
        let opts = self.inner.opts.clone();
        let now = now();
        write!(self, |c| routing::resume(c, &opts, code, actor, now))
    }

    /// When `identity` last wrote on `channel` (provider time), for the 24-hour customer
    /// window of Meta's channels.
    pub async fn last_inbound_at(
        &self,
        channel: Channel,
        identity: &Identity,
    ) -> Result<Option<DateTime<Utc>>> {
        let identity = identity.clone();
        read!(self, |c| ops::last_inbound_at(c, channel, &identity))
    }

    /// Applies a provider's delivery receipt to the outbox row of that message; `false`
    /// when no row has that provider id (yet).
    pub async fn outbox_receipt(&self, receipt: DeliveryReceipt) -> Result<bool> {
        write!(self, |c| ops::outbox_receipt(c, receipt))
    }

    /// One outbox row with its delivery state.
    pub async fn outbox_row(&self, id: i64) -> Result<Option<OutboxRow>> {
        read!(self, |c| ops::outbox_row(c, id))
    }

    /// Attachments of `channels` known only by a provider handle, due for a fetch.
    pub async fn attachments_unfetched(
        &self,
        channels: Vec<Channel>,
        max_attempts: i64,
        limit: i64,
    ) -> Result<Vec<UnfetchedAttachment>> {
        let now = now();
        read!(self, |c| ops::attachments_unfetched(c, channels, max_attempts, limit, now))
    }

    /// Records a fetched attachment: its content now lives under `[storage] dir` by hash.
    pub async fn attachment_fetched(
        &self,
        id: i64,
        sha256: String,
        size: u64,
        content_type: String,
    ) -> Result<()> {
        write!(self, |c| ops::attachment_fetched(c, id, sha256, size, content_type))
    }

    /// Records a failed fetch: retried at `retry_at`, or given up when `None`.
    pub async fn attachment_fetch_failed(
        &self,
        id: i64,
        error: String,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<()> {
        write!(self, |c| ops::attachment_fetch_failed(c, id, error, retry_at))
    }

    pub async fn checkpoint(&self, connector: &str, key: &str) -> Result<Option<String>> {
        let (connector, key) = (connector.to_owned(), key.to_owned());
        read!(self, |c| ops::checkpoint(c, &connector, &key))
    }

    pub async fn set_checkpoint(
        &self,
        connector: String,
        key: String,
        value: String,
    ) -> Result<()> {
        let now = now();
        write!(self, |c| ops::set_checkpoint(c, connector, key, value, now))
    }

    /// Takes or renews the lease `name` for `holder` until `ttl` from now. `false`: another
    /// holder has it and it has not expired.
    pub async fn lease_acquire(
        &self,
        name: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<bool> {
        let now = now();
        let ttl = chrono::Duration::from_std(ttl)
            .map_err(|e| StoreError::Internal(format!("lease time: {e}")))?;
        let (name, holder) = (name.to_owned(), holder.to_owned());
        write!(self, |c| leases::acquire(c, name, holder, now, now + ttl))
    }

    /// Gives the lease up at once (a clean stop), if `holder` still has it.
    pub async fn lease_release(&self, name: &str, holder: &str) -> Result<()> {
        let (name, holder) = (name.to_owned(), holder.to_owned());
        write!(self, |c| leases::release(c, name, holder))
    }

    /// Who holds the lease `name` now, if anyone.
    pub async fn lease_holder(&self, name: &str) -> Result<Option<String>> {
        let (name, now) = (name.to_owned(), now());
        read!(self, |c| leases::holder(c, &name, now))
    }

    pub async fn add_user(&self, user: NewUser) -> Result<i64> {
        let now = now();
        write!(self, |c| ops::add_user(c, user, now))
    }

    /// Stores a new API key by the SHA-256 of its token.
    pub async fn add_api_key(&self, name: String, scope: Scope, token_hash: String) -> Result<i64> {
        let now = now();
        write!(self, |c| ops::add_api_key(c, name, scope, token_hash, now))
    }

    pub async fn api_key_by_hash(&self, token_hash: &str) -> Result<Option<ApiKey>> {
        let token_hash = token_hash.to_owned();
        read!(self, |c| ops::api_key_by_hash(c, &token_hash))
    }

    /// Revokes API key `id` on behalf of `actor`, with an audit entry; `None` when there is
    /// no such key.
    pub async fn revoke_api_key(&self, id: i64, actor: Actor) -> Result<Option<ApiKey>> {
        let now = now();
        write!(self, |c| ops::revoke_api_key(c, id, actor, now))
    }

    /// The user signing in with `email` (case-insensitive) and their argon2id hash.
    pub async fn user_for_login(&self, email: &str) -> Result<Option<(User, String)>> {
        let email = email.to_owned();
        read!(self, |c| ops::user_for_login(c, &email))
    }

    pub async fn users(&self) -> Result<Vec<User>> {
        read!(self, |c| ops::users(c))
    }

    /// Adds a user on behalf of `actor` (an admin in the inbox), with an audit entry.
    pub async fn add_user_by(&self, user: NewUser, actor: Actor) -> Result<i64> {
        let now = now();
        write!(self, |c| ops::add_user_by(c, user, actor, now))
    }

    /// Disables (ending their sessions) or re-enables a user, with an audit entry.
    pub async fn set_user_disabled(&self, id: i64, disabled: bool, actor: Actor) -> Result<()> {
        let now = now();
        write!(self, |c| ops::set_user_disabled(c, id, disabled, actor, now))
    }

    /// Starts a session for a user whose password the caller verified; records the sign-in.
    pub async fn create_session(
        &self,
        token_hash: String,
        user_id: i64,
        csrf_token: String,
        ttl: Duration,
    ) -> Result<()> {
        let now = now();
        let expires_at = now + ttl;
        write!(self, |c| ops::create_session(c, token_hash, user_id, csrf_token, expires_at, now))
    }

    /// The live session with this token hash (of a user still enabled).
    pub async fn session(&self, token_hash: &str) -> Result<Option<Session>> {
        let now = now();
        let token_hash = token_hash.to_owned();
        read!(self, |c| ops::session(c, &token_hash, now))
    }

    /// Ends a session and records the sign-out; `false` when there was none.
    pub async fn delete_session(&self, token_hash: String) -> Result<bool> {
        let now = now();
        write!(self, |c| ops::delete_session(c, token_hash, now))
    }

    /// Records an action that is not about one ticket (ticket actions have their events).
    pub async fn audit(
        &self,
        actor: Actor,
        action: String,
        target: Option<String>,
        note: Option<String>,
    ) -> Result<()> {
        let note = note.map(clean);
        let now = now();
        write!(self, |c| ops::audit(c, &actor, &action, target.as_deref(), note.as_deref(), now))
    }

    /// The newest `limit` entries of the audit log.
    pub async fn audit_log(&self, limit: i64) -> Result<Vec<AuditEntry>> {
        read!(self, |c| ops::audit_log(c, limit))
    }

    /// Sets a ticket's category unless it has one.
    pub async fn set_category_if_unset(&self, code: TicketCode, category: String) -> Result<bool> {
        write!(self, |c| ops::set_category_if_unset(c, code, category))
    }

    /// Anonymous counts and deadline compliance, grouped as asked.
    pub async fn stats(&self, q: StatsQuery) -> Result<Vec<StatsRow>> {
        let now = now();
        read!(self, |c| ops::stats(c, &q, now))
    }

    /// Tickets opened per office day and channel since `from`.
    pub async fn per_day_by_channel(
        &self,
        from: DateTime<Utc>,
        offset_secs: i32,
    ) -> Result<Vec<DayChannelCount>> {
        read!(self, |c| ops::per_day_by_channel(c, from, offset_secs))
    }

    // --- robust: dead notifications to officials are retried, then escalated ---

    /// Notifications to officials or admins that are `dead` since before `dead_before` and
    /// not escalated yet, oldest first (see `ops::dead_notifications`).
    pub async fn dead_notifications(
        &self,
        dead_before: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<DeadNotification>> {
        let dead_before = truncate_ms(dead_before);
        read!(self, |c| ops::dead_notifications(c, dead_before, limit))
    }

    /// Puts dead notification row `id` back to `pending` (revival `n` of `of`), with an
    /// event on its ticket; `false` when it is not dead any more or was revived already.
    pub async fn outbox_revive(
        &self,
        id: i64,
        n: i64,
        of: i64,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let now = truncate_ms(now);
        match write!(self, |c| ops::outbox_revive(c, id, n, of, now)) {
            Err(StoreError::Conflict(_)) => Ok(false),
            other => other,
        }
    }

    /// Gives dead notification row `id` up: `text` is queued once to each of `to` (the
    /// admins) and the ticket records it. `false` when that happened before.
    pub async fn outbox_escalate_dead(
        &self,
        id: i64,
        to: Vec<Identity>,
        text: String,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let text = clean(text);
        let now = truncate_ms(now);
        write!(self, |c| ops::outbox_escalate_dead(c, id, to, text, now))
    }
}

/// Hides a password in a database URL before it is shown anywhere.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}://{user}:***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// Outside text on its way into the store, through the one sanitiser of `aduan_core`.
fn clean(text: String) -> String {
    match aduan_core::clean_text(&text) {
        std::borrow::Cow::Borrowed(_) => text,
        std::borrow::Cow::Owned(clean) => clean,
    }
}
