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

// --- receipts: receipts by outbox row, the delivery shown per outbound message ---
//
// Twilio's `StatusCallback` and Kannel's `dlr-url` are URLs we hand the provider with each
// send, so they name the outbox row (`?row=ID`): a receipt that outruns the send call's
// answer (Kannel's "accepted by SMSC" report often does) still finds its row. Every
// outbound message shows one [`DeliveryView`]: the newest receipt when there is one, else
// what the outbox knows (`pending`, `sending`, `sent`, `failed` for a row given up,
// `published` for an answer on the tracking page only).

/// A receipt as a provider's callback delivered it, with the outbox row its URL named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackReceipt {
    /// The outbox row named by the callback URL; `None`: matched by provider id only.
    pub outbox_id: Option<i64>,
    pub receipt: DeliveryReceipt,
}

/// How an outbound message fared, as the ticket JSON and page show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryView {
    /// `sent`, `delivered`, `read`, `failed` (a receipt or a given-up row), or the outbox
    /// state while there is no receipt (`pending`, `sending`, `published`, …).
    pub status: &'static str,
    /// When that status was reported (the receipt's time, else the time it was sent).
    #[serde(serialize_with = "crate::time::serialize_opt")]
    pub at: Option<DateTime<Utc>>,
    /// Why it failed (the provider's code and title, a bounce's reason); only on `failed`.
    pub error: Option<String>,
}

impl DeliveryView {
    /// The view of an outbox row: `receipt` wins over `state` (receipts only move forward,
    /// `failed` is final); a row given up (`dead`) is `failed` with its last error.
    pub fn of(
        state: crate::OutboxState,
        receipt: Option<ReceiptStatus>,
        receipt_at: Option<DateTime<Utc>>,
        sent_at: Option<DateTime<Utc>>,
        last_error: Option<String>,
    ) -> DeliveryView {
        let status = match (receipt, state) {
            (Some(r), _) => r.as_str(),
            (None, crate::OutboxState::Dead) => ReceiptStatus::Failed.as_str(),
            (None, s) => s.as_str(),
        };
        let failed = status == ReceiptStatus::Failed.as_str();
        let at = match receipt {
            Some(_) => receipt_at.or(sent_at),
            None => sent_at.filter(|_| status == ReceiptStatus::Sent.as_str()),
        };
        DeliveryView { status, at, error: last_error.filter(|_| failed) }
    }
}

#[cfg(test)]
mod receipt_tests {
    use super::*;
    use crate::OutboxState;

    #[test]
    fn a_receipt_wins_over_the_outbox_state_and_failures_carry_their_reason() {
        let t = Utc::now();
        let v = DeliveryView::of(OutboxState::Sent, Some(ReceiptStatus::Read), Some(t), None, None);
        assert_eq!((v.status, v.at, v.error), ("read", Some(t), None));
        let v = DeliveryView::of(OutboxState::Sent, None, None, Some(t), None);
        assert_eq!((v.status, v.at), ("sent", Some(t)));
        let v = DeliveryView::of(OutboxState::Pending, None, None, None, Some("HTTP 502".into()));
        assert_eq!((v.status, v.at, v.error), ("pending", None, None));
        // A bounce: receipt failed without a time; the reason is shown.
        let v = DeliveryView::of(
            OutboxState::Dead,
            Some(ReceiptStatus::Failed),
            None,
            Some(t),
            Some("550 5.1.1 user unknown".into()),
        );
        assert_eq!(
            (v.status, v.at, v.error.as_deref()),
            ("failed", Some(t), Some("550 5.1.1 user unknown"))
        );
        let v = DeliveryView::of(OutboxState::Dead, None, None, None, Some("HTTP 400".into()));
        assert_eq!((v.status, v.error.as_deref()), ("failed", Some("HTTP 400")));
        let v = DeliveryView::of(OutboxState::Published, None, None, None, None);
        assert_eq!(v.status, "published");
    }
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
