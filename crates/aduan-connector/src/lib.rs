//! The one trait every channel implements, and what the daemon gives it to run.
//!
//! A channel crate turns its provider's traffic into [`InboundMessage`]s and sends answers:
//!
//! - **webhooks**: [`Webhook::handle`] gets the raw request (method, query, headers, body) and
//!   returns messages or a rejection. It never opens a server: `aduan-web` mounts it under
//!   `/hooks/…`, stores the messages, and only then answers the provider.
//! - **pollers** (IMAP, Telegram long polling): [`Connector::run`] loops until shutdown,
//!   storing through [`ConnectorContext::store`] before it advances its checkpoint.
//! - **replies**: [`Connector::send`] delivers one claimed outbox row; the outbound worker
//!   ([`outbound`]) claims rows, retries with backoff and records the result.
//!
//! It is also the connectors' toolkit, so a channel crate needs nothing above it (never
//! `aduan-web`):
//!
//! - [`blob`]: the content-addressed attachment store ([`BlobStore`], handed in the context),
//! - [`media`]: the one media-fetch queue (claim, fetch through the channel, store, retry),
//! - [`backoff`]: the one backoff policy, [`pace`]: token-bucket pacing and `Retry-After`,
//!   [`body`]: reading a provider's answer up to a limit, [`egress`]: the SSRF guard.

pub mod backoff;
pub mod blob;
pub mod body;
pub mod compliance;
pub mod config;
pub mod egress;
pub mod media;
pub mod outbound;
pub mod pace;
mod supervise;
mod telemetry;

use std::sync::Arc;
use std::time::Duration;

use aduan_core::{Channel, InboundMessage};
use aduan_store::{OutboxItem, Store};
use bytes::Bytes;
use tokio_util::sync::CancellationToken;

pub use backoff::Backoff;
pub use blob::{BlobStore, StorageFloor};
pub use config::{BuildContext, ChannelConfig, Problem, Secret};
pub use media::{FetchedMedia, MediaError, MediaQueue, MediaSource};
pub use pace::{KeyedPacer, Pacer, retry_after};
pub use supervise::{LEASE_RENEW, LEASE_TTL, instance_id, supervise};
pub use telemetry::{HTTP_REFUSALS, Telemetry};

/// A provider's HTTP request, as the shared server received it.
#[derive(Debug, Clone)]
pub struct WebhookRequest {
    pub method: http::Method,
    /// The raw query string, without `?`.
    pub query: Option<String>,
    pub headers: http::HeaderMap,
    /// The raw body; signatures are checked over exactly these bytes.
    pub body: Bytes,
    /// The URL the provider called, as configured in `[server] public_url` (Twilio signs it).
    pub url: String,
}

/// What to do with a webhook request that passed verification.
#[derive(Debug, Clone, PartialEq)]
pub enum WebhookReply {
    /// Store these messages (possibly none: delivery receipts, echoes), then answer 200 with
    /// `body` (or an empty body).
    Store { messages: Vec<InboundMessage>, body: Option<ReplyBody> },
    /// Answer at once without storing anything (verification handshakes).
    Respond { status: u16, body: ReplyBody },
    /// Delivery receipts for messages we sent (Twilio status callbacks, Kannel delivery
    /// reports): applied to the outbox in one transaction, then answered 200 with `body`.
    Receipts { receipts: Vec<aduan_core::CallbackReceipt>, body: Option<ReplyBody> },
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReplyBody {
    pub content_type: &'static str,
    pub bytes: Bytes,
}

/// Why a webhook request was refused. Nothing of it is stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Missing credentials (answered 401).
    #[error("missing {0}")]
    Unauthenticated(&'static str),
    /// Wrong secret or signature (answered 403).
    #[error("bad {0}")]
    Forbidden(&'static str),
    /// Not parseable at all (answered 400).
    #[error("malformed request: {0}")]
    Malformed(String),
    /// Parseable but not a valid message (answered 422).
    #[error("invalid request: {0}")]
    Invalid(String),
}

impl Rejection {
    /// The `reason` label of `aduan_webhook_rejected_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::Unauthenticated(_) => "unauthenticated",
            Rejection::Forbidden(_) => "forbidden",
            Rejection::Malformed(_) => "malformed",
            Rejection::Invalid(_) => "invalid",
        }
    }
}

/// The provider-facing half of a webhook channel: pure, no IO.
pub trait Webhook: Send + Sync + 'static {
    /// Mounted at `/hooks/{path}`.
    fn path(&self) -> &'static str;
    /// The channel reported in metrics for rejected requests.
    fn channel(&self) -> Channel;
    fn handle(&self, req: &WebhookRequest) -> Result<WebhookReply, Rejection>;
    /// Checks what can be checked before the body is read (a secret in the query string or
    /// a header), on `req` with an empty body: a forged request is refused without its body
    /// being read. `handle` checks again. Signatures over the body can't be checked here.
    fn precheck(&self, req: &WebhookRequest) -> Result<(), Rejection> {
        let _ = req;
        Ok(())
    }
}

/// What a connector gets to run with.
#[derive(Clone)]
pub struct ConnectorContext {
    pub store: Store,
    pub telemetry: Arc<Telemetry>,
    /// The attachment store (`[storage] dir`); fetched media is written here.
    pub blobs: BlobStore,
    pub shutdown: CancellationToken,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    #[error("{0}")]
    Transient(String),
    #[error("{0}")]
    Fatal(String),
}

/// The outcome of a failed send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Try again later (network error, 429, 5xx); `after` honours the provider's
    /// `Retry-After`.
    #[error("temporary failure: {reason}")]
    Retry { reason: String, after: Option<Duration> },
    /// Will never succeed (blocked user, invalid recipient).
    #[error("permanent failure: {0}")]
    Permanent(String),
    /// Can't be delivered there now, for a known reason: the worker tries the reporter's
    /// other identities (`[outbound] fallback_order`), then keeps the answer
    /// `waiting_for_resident`.
    #[error("undeliverable: {0}")]
    Undeliverable(aduan_core::UndeliverableReason),
    /// Only a short notice could go (a WhatsApp template outside the 24-hour window, its
    /// provider id in `notice`): the full answer waits until the resident writes again.
    #[error("notice sent; the answer waits for the resident ({reason})")]
    NoticeSent { reason: aduan_core::UndeliverableReason, notice: Option<String> },
}

/// A channel family: its webhooks, its poller and its sender.
#[async_trait::async_trait]
pub trait Connector: Send + Sync + 'static {
    /// A stable name for logs, metrics and checkpoints (`email`, `telegram`, `meta`, …).
    fn name(&self) -> &'static str;

    /// The channels this connector sends on.
    fn channels(&self) -> Vec<Channel>;

    fn webhooks(&self) -> Vec<Arc<dyn Webhook>> {
        Vec::new()
    }

    /// The name of the lease `run` needs when it must run on one instance at a time (a
    /// poller of a mailbox or of Telegram's getUpdates): with several instances on one
    /// database, only the holder runs it, and another takes over when the holder dies.
    /// `None` (the default): every instance runs it.
    fn exclusive(&self) -> Option<String> {
        None
    }

    /// Runs until `cx.shutdown` fires. Webhook-only connectors keep the default.
    async fn run(&self, cx: ConnectorContext) -> Result<(), ConnectorError> {
        cx.shutdown.cancelled().await;
        Ok(())
    }

    /// Delivers one answer. Returns the provider's id of the sent message, if it has one.
    async fn send(&self, item: &OutboxItem) -> Result<Option<String>, SendError>;
}
