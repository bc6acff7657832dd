//! Plain data exchanged between the store and the connectors: an outbox row claimed by a
//! sender, a provider's delivery receipt, an attachment still at the provider. They live here,
//! not in `aduan-store`, so pure modules (parsers, composers) and fuzz targets can use them
//! without pulling in a database crate; `aduan_store` re-exports them.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{Channel, Identity, Purpose, TicketCode};

/// An outbox row claimed by a sender.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxItem {
    pub id: i64,
    pub ticket: TicketCode,
    pub channel: Channel,
    pub recipient: Identity,
    pub text: String,
    pub purpose: Purpose,
    /// Attempts including this one.
    pub attempts: i64,
    /// Provider ids of the ticket's messages, newest first, for threading the answer.
    pub thread_refs: Vec<String>,
}

/// What a provider reports about a message we sent (WhatsApp `statuses[]`, Messenger
/// `delivery`). Receipts only move forward: `sent` → `delivered` → `read`; `failed` is final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptStatus {
    Sent,
    Delivered,
    Read,
    Failed,
}

impl ReceiptStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReceiptStatus::Sent => "sent",
            ReceiptStatus::Delivered => "delivered",
            ReceiptStatus::Read => "read",
            ReceiptStatus::Failed => "failed",
        }
    }
}

impl FromStr for ReceiptStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sent" => Ok(ReceiptStatus::Sent),
            "delivered" => Ok(ReceiptStatus::Delivered),
            "read" => Ok(ReceiptStatus::Read),
            "failed" => Ok(ReceiptStatus::Failed),
            _ => Err(format!("unknown receipt status {s:?}")),
        }
    }
}

/// A delivery receipt for one outbound message, identified by the provider's message id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReceipt {
    pub channel: Channel,
    pub provider_id: String,
    pub status: ReceiptStatus,
    pub at: DateTime<Utc>,
    /// The provider's reason for a failure (error code and title; never message text).
    pub error: Option<String>,
}

/// An attachment known only by a provider handle (a media id, a CDN URL), waiting to be
/// fetched into the attachment store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnfetchedAttachment {
    pub id: i64,
    pub channel: Channel,
    pub provider_ref: String,
    pub content_type: String,
    /// Failed attempts so far.
    pub attempts: i64,
}
