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

// --- windows: undeliverable reasons and the fallback chain ---

/// Why a provider can't deliver an answer now, read from its answer (Meta error codes,
/// Telegram 403, Twilio 21610/21614, an SMTP 55x on the recipient). Not a blind failure:
/// the outbound worker tries the reporter's other identities, then keeps the answer
/// `waiting_for_resident` (see [`next_fallback`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UndeliverableReason {
    /// Meta's customer service window closed (WhatsApp 131047, Messenger/Instagram 10 with
    /// subcode 2018278, or our own check of the resident's last message).
    WindowClosed,
    /// The resident blocked us or unsubscribed (Telegram 403 "bot was blocked", Messenger
    /// 551 and 200/1545041, Twilio 21610 after STOP).
    Blocked,
    /// The address exists but not on this channel (WhatsApp 131026, Twilio 21614: not a
    /// mobile number, Telegram: deactivated user or a chat we may not start).
    NotOnChannel,
    /// The address itself is wrong (Messenger 100/2018001, Telegram chat not found, Twilio
    /// 21211, an SMTP 550/551/553 for the mailbox).
    RecipientInvalid,
}

impl UndeliverableReason {
    pub const ALL: [UndeliverableReason; 4] = [
        UndeliverableReason::WindowClosed,
        UndeliverableReason::Blocked,
        UndeliverableReason::NotOnChannel,
        UndeliverableReason::RecipientInvalid,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            UndeliverableReason::WindowClosed => "window_closed",
            UndeliverableReason::Blocked => "blocked",
            UndeliverableReason::NotOnChannel => "not_on_channel",
            UndeliverableReason::RecipientInvalid => "recipient_invalid",
        }
    }
}

impl std::fmt::Display for UndeliverableReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for UndeliverableReason {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        UndeliverableReason::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown undeliverable reason {s:?}"))
    }
}

/// The default of `[outbound] fallback_order`: the channels tried, in order, when an answer
/// can't reach the resident where it was sent.
pub const DEFAULT_FALLBACK_ORDER: [Channel; 7] = [
    Channel::Whatsapp,
    Channel::Sms,
    Channel::Email,
    Channel::Telegram,
    Channel::Messenger,
    Channel::Instagram,
    Channel::X,
];

/// The address to use on `channel` for one of the reporter's identities, if that identity
/// can be reached there: a phone number also on WhatsApp and a WhatsApp number also by SMS;
/// every other kind only on its own channel. Machine email addresses never.
pub fn address_on(channel: Channel, identity: &Identity) -> Option<Identity> {
    use crate::IdentityKind as K;
    let same = |kind: K| (identity.kind == kind).then(|| identity.clone());
    match channel {
        Channel::Whatsapp => match identity.kind {
            K::Whatsapp => Some(identity.clone()),
            K::Phone => Identity::new(K::Whatsapp, &identity.value).ok(),
            _ => None,
        },
        Channel::Sms => match identity.kind {
            K::Phone => Some(identity.clone()),
            K::Whatsapp => Identity::new(K::Phone, &format!("+{}", identity.value)).ok(),
            _ => None,
        },
        Channel::Email => same(K::Email).filter(|i| !crate::machine::is_machine_address(&i.value)),
        Channel::Telegram => same(K::Telegram),
        Channel::Messenger => same(K::MessengerPsid),
        Channel::Instagram => same(K::InstagramId),
        Channel::X => same(K::XUser),
        Channel::Web | Channel::Open311 => None,
    }
}

/// The next place to try an answer that could not be delivered: the first channel of
/// `order` that this instance can send on (`sendable`) where one of the reporter's
/// `identities` is reachable and that `(channel, address)` was not `tried` for this answer.
/// `None`: every way is spent, the answer waits for the resident to write again.
pub fn next_fallback(
    order: &[Channel],
    sendable: &[Channel],
    identities: &[Identity],
    tried: &[(Channel, Identity)],
) -> Option<(Channel, Identity)> {
    for &channel in order.iter().filter(|c| sendable.contains(c)) {
        for identity in identities {
            if let Some(to) = address_on(channel, identity)
                && !tried.iter().any(|(c, i)| *c == channel && *i == to)
            {
                return Some((channel, to));
            }
        }
    }
    None
}

/// One outbox row of an answer, for the operator: where it went, how that ended, and why it
/// could not be delivered there (rows in id order; the first is where the answer was sent,
/// the others its fallbacks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryHop {
    pub channel: Channel,
    pub state: crate::OutboxState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub undeliverable: Option<UndeliverableReason>,
    /// A short notice (a WhatsApp template) went out instead of the answer.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub notice: bool,
}

#[cfg(test)]
mod fallback_tests {
    use super::*;
    use crate::IdentityKind;

    #[test]
    fn reasons_round_trip() {
        for r in UndeliverableReason::ALL {
            assert_eq!(r.as_str().parse::<UndeliverableReason>(), Ok(r));
        }
    }

    #[test]
    fn fallbacks_follow_the_order_skip_what_was_tried_and_machine_addresses() {
        let wa = Identity::new(IdentityKind::Whatsapp, "6281234567890").unwrap();
        let bot = Identity::email("noreply@example.id").unwrap();
        let mail = Identity::email("siti@example.id").unwrap();
        let ids = [wa.clone(), bot, mail.clone()];
        let order = DEFAULT_FALLBACK_ORDER;
        let all = Channel::ALL;
        let sms = Identity::phone("+6281234567890").unwrap();
        let tried = vec![(Channel::Whatsapp, wa.clone())];
        assert_eq!(next_fallback(&order, &all, &ids, &tried), Some((Channel::Sms, sms.clone())));
        let tried = vec![(Channel::Whatsapp, wa.clone()), (Channel::Sms, sms.clone())];
        assert_eq!(next_fallback(&order, &all, &ids, &tried), Some((Channel::Email, mail.clone())));
        // Only channels this instance sends on.
        let tried = vec![(Channel::Whatsapp, wa.clone())];
        assert_eq!(
            next_fallback(&order, &[Channel::Whatsapp, Channel::Email], &ids, &tried),
            Some((Channel::Email, mail.clone()))
        );
        let tried = vec![(Channel::Whatsapp, wa), (Channel::Sms, sms), (Channel::Email, mail)];
        assert_eq!(next_fallback(&order, &all, &ids, &tried), None);
    }
}
