//! Social channels: Meta's Messenger, Instagram and WhatsApp Cloud API on one webhook
//! (`/hooks/meta`), and X's Account Activity API (`/hooks/x`).
//!
//! The crate has a pure core and a thin IO shell:
//!
//! - [`sig`]: the signature schemes (HMAC-SHA256 over raw bytes, constant-time checks);
//! - [`meta`] and [`x`]: payload parsers and the [`aduan_connector::Webhook`]s (handshakes,
//!   signature checks, parsing; no IO);
//! - [`send`]: the outbound requests (URL, token, JSON body) for every channel and the
//!   reading of the providers' answers into a message id or a [`aduan_connector::SendError`];
//!   the 24-hour customer window rule;
//! - [`connector`]: [`MetaConnector`] and [`XConnector`], which send over HTTP with per-page,
//!   per-number and per-account rate limits, apply delivery receipts to the outbox and fetch
//!   provider media into the attachment store.

pub mod connector;
mod json;
pub mod meta;
pub mod section;
pub mod send;
pub mod sig;
pub mod x;

use aduan_connector::Rejection;
use aduan_core::InboundMessage;
use aduan_store::DeliveryReceipt;

pub use connector::{META_MEDIA_HOSTS, MetaConfig, MetaConnector, XConfig, XConnector};
pub use section::{MetaSection, XSection};

/// The text stored for a message of a kind aduan can't read (a poll, an order, a sticker
/// pack…), so operators see that the resident wrote.
pub const UNSUPPORTED_TEXT: &str = "[jenis pesan tidak didukung]";

/// What one verified webhook body holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    pub messages: Vec<InboundMessage>,
    pub receipts: Vec<DeliveryReceipt>,
}

/// Everything that goes wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum SocialError {
    #[error("the body is not JSON: {0}")]
    Json(String),
    #[error("unexpected payload: {0}")]
    Shape(String),
    #[error("http: {0}")]
    Http(String),
    #[error("store: {0}")]
    Store(#[from] aduan_store::StoreError),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

impl From<SocialError> for Rejection {
    fn from(e: SocialError) -> Rejection {
        match e {
            SocialError::Json(m) => Rejection::Malformed(m),
            other => Rejection::Invalid(other.to_string()),
        }
    }
}
