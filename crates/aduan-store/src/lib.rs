//! The ticket store: one API over two backends.
//!
//! `Store` is an enum over an embedded SQLite database and a PostgreSQL server. Every query
//! is written once (in `ops/`, one file per feature) and compiled for both backends. Writes differ in how they
//! reach the database:
//!
//! - **SQLite** has one writer connection owned by a task. Concurrent writes queue up and the
//!   writer commits whatever is queued as one transaction (*group commit*), each write in its
//!   own savepoint, and answers every caller only after that commit. With `synchronous=FULL`
//!   a whole batch costs one fsync.
//! - **PostgreSQL** runs each write in its own transaction from a pool; concurrent intake of
//!   the same provider message or the same sender is serialised by advisory locks, so several
//!   `aduan` instances can share one database.

// The macros come before the modules so that `ops/*.rs` (each feature's `impl Store`) can
// use them.
/// Runs a write on the right backend: `write!(self, |c| f(c, args))`. The body is a
/// query future generic over the connection; it is compiled once per backend.
macro_rules! write {
    ($self:expr, |$c:ident| $body:expr) => {
        match &$self.inner.backend {
            $crate::Backend::Sqlite(s) => s.write(move |$c| $crate::sqlite::run_now($body)).await,
            $crate::Backend::Postgres(p) => {
                p.write(move |$c| Box::pin(async move { $body.await })).await
            }
        }
    };
}

/// Runs a read: `read!(self, |c| f(c, args))`; captured values must be owned.
macro_rules! read {
    ($self:expr, |$c:ident| $body:expr) => {
        match &$self.inner.backend {
            $crate::Backend::Sqlite(s) => s.read(move |$c| $crate::sqlite::run_now($body)).await,
            $crate::Backend::Postgres(p) => {
                p.read(move |$c| Box::pin(async move { $body.await })).await
            }
        }
    };
}

mod answers;
mod db;
mod leases;
mod ops;
mod postgres;
mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;
mod types;

use std::path::PathBuf;
use std::sync::Arc;

use aduan_core::{SlaPolicy, ThreadingPolicy, TicketCode, TransitionError};
use chrono::{DateTime, Utc};

pub use ops::accounts::CannedAnswer;
pub use ops::actions::{LinkOutcome, official_action_allowed};
pub use ops::media::StoredAttachment;
pub use ops::outbox::DeadNotification;
pub use ops::outbox::Undelivered;
pub use ops::routing::StoredModel;
pub use ops::routing::{
    AlertSchedule, ReporterInfo, ReporterUpdate, RouteAction, RouteJob, RouteResult, WatchedTicket,
};
pub use ops::routing::{DigestTicket, FollowUp, PersonalMails};
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
    /// Attachment bytes one sender may store per hour on any channel (`[server]
    /// upload_bytes_per_hour`, the `/lapor` budget); `None`: no limit. See `ops::media`.
    pub attachment_bytes_per_hour: Option<u64>,
    /// `[server] public_url`, for the resident's confirmation link (`/lacak/{code}?k=…`);
    /// `None` leaves the link out.
    pub public_url: Option<String>,
    /// `[incidents]`: finding, suggesting and joining incidents (`ops::incidents`).
    pub incidents: aduan_core::incident::IncidentPolicy,
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
            attachment_bytes_per_hour: None,
            public_url: None,
            incidents: aduan_core::incident::IncidentPolicy::default(),
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
    /// PostgreSQL's word statistics for choosing a search's mode (`ops::view::WordStats`).
    word_stats: Arc<ops::view::WordStats>,
}

enum Backend {
    Sqlite(sqlite::SqliteStore),
    Postgres(postgres::PgStore),
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
        Ok(Store { inner: Arc::new(Inner { backend, opts, word_stats: Arc::default() }) })
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
        read!(self, |c| ops::common::ping(c))
    }

    /// Finishes queued writes and closes every connection.
    pub async fn close(&self) {
        match &self.inner.backend {
            Backend::Sqlite(s) => s.close().await,
            Backend::Postgres(p) => p.close().await,
        }
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

    /// The answer to "CEK {asked}" (the chat bot's `/cek`), in the same words as the one
    /// queued at intake: about the ticket `asked` names, or the ticket it was merged into.
    /// `None` when no ticket has that code.
    pub async fn status_answer(&self, asked: TicketCode) -> Result<Option<String>> {
        let now = now();
        let Some(live) = read!(self, |c| ops::view::live_summary(c, asked, now))? else {
            return Ok(None);
        };
        Ok(Some(answers::status_answer(asked, &live, &self.inner.opts.opd_names)))
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
