//! Where an answer to a resident goes, and the states of an outbox row.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Channel, Identity, IdentityKind};

/// The life of one outbound message. A row is claimed (`sending`) by one sender at a time;
/// failures go back to `pending` with a later attempt time until the attempts run out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxState {
    /// Waiting for its channel's sender (or for its next attempt).
    Pending,
    /// Claimed by a sender; the claim expires if the sender dies.
    Sending,
    Sent,
    /// Gave up after the last attempt; an operator has to act.
    Dead,
    /// Nothing to send: the answer is published on the resident's tracking page only.
    Published,
    /// The provider could not deliver it there (window closed, blocked, not on the channel):
    /// the reason is in `undeliverable`; a fallback row (`fallback_of`) carries it on.
    Undeliverable,
    /// Every way to the resident is spent (or only a WhatsApp template could go): kept,
    /// shown on the tracking page, and sent where the resident next writes.
    WaitingForResident,
}

impl OutboxState {
    pub const ALL: [OutboxState; 7] = [
        OutboxState::Pending,
        OutboxState::Sending,
        OutboxState::Sent,
        OutboxState::Dead,
        OutboxState::Published,
        OutboxState::Undeliverable,
        OutboxState::WaitingForResident,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OutboxState::Pending => "pending",
            OutboxState::Sending => "sending",
            OutboxState::Sent => "sent",
            OutboxState::Dead => "dead",
            OutboxState::Published => "published",
            OutboxState::Undeliverable => "undeliverable",
            OutboxState::WaitingForResident => "waiting_for_resident",
        }
    }
}

impl fmt::Display for OutboxState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OutboxState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OutboxState::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown outbox state {s:?}"))
    }
}

/// Why a message goes out; connectors mark automatic ones (`Auto-Submitted` in email) and
/// operators see it in the thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// An answer written by a person (operator, official).
    Reply,
    /// The automatic receipt with the tracking code.
    Ack,
    /// The automatic request for name and address.
    IdentityRequest,
    /// The automatic answer to "CEK ADU-…".
    Status,
    /// A routed ticket sent to its OPD's officials (by email).
    Disposition,
    /// A deadline is near: to the OPD's officials (or the admins for triage).
    Warning,
    /// A deadline passed: to the OPD head and the admins.
    Escalation,
    /// The automatic question to the resident whether their resolved ticket is really fixed
    /// (1/2 and a rating).
    ConfirmRequest,
    /// The daily digest to an OPD head (issue 19 item 5): queued on the first ticket it
    /// lists, never answered as that ticket.
    Digest,
    /// The resident wrote again on a ticket that is with an OPD (an answer to *minta info*,
    /// a reopening, a photo): the new messages, relayed to the OPD's officials.
    FollowUp,
}

impl Purpose {
    pub const ALL: [Purpose; 10] = [
        Purpose::Reply,
        Purpose::Ack,
        Purpose::IdentityRequest,
        Purpose::Status,
        Purpose::Disposition,
        Purpose::Warning,
        Purpose::Escalation,
        Purpose::ConfirmRequest,
        Purpose::Digest,
        Purpose::FollowUp,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Reply => "reply",
            Purpose::Ack => "ack",
            Purpose::IdentityRequest => "identity_request",
            Purpose::Status => "status",
            Purpose::Disposition => "disposition",
            Purpose::Warning => "warning",
            Purpose::Escalation => "escalation",
            Purpose::ConfirmRequest => "confirm_request",
            Purpose::Digest => "digest",
            Purpose::FollowUp => "follow_up",
        }
    }

    /// Written by aduan itself rather than by a person.
    pub fn is_automatic(self) -> bool {
        self != Purpose::Reply
    }

    /// An automatic message to a resident (receipt, identity request, status answer): what
    /// RFC 3834 calls an auto-reply, limited per recipient. Notifications to officials and
    /// admins are automatic but not auto-replies, and never limited that way.
    pub fn is_auto_reply(self) -> bool {
        matches!(
            self,
            Purpose::Ack | Purpose::IdentityRequest | Purpose::Status | Purpose::ConfirmRequest
        )
    }

    /// Goes to officials or admins, not to the resident (never shown on the public page).
    pub fn is_internal(self) -> bool {
        matches!(
            self,
            Purpose::Disposition
                | Purpose::Warning
                | Purpose::Escalation
                | Purpose::Digest
                | Purpose::FollowUp
        )
    }
}

impl FromStr for Purpose {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Purpose::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| format!("unknown outbound purpose {s:?}"))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyRoute {
    Send {
        channel: Channel,
        to: Identity,
    },
    /// No way to write to the resident: the answer shows on `/lacak/{code}` only.
    Publish,
}

fn channel_of(kind: IdentityKind) -> Option<Channel> {
    Some(match kind {
        IdentityKind::Email => Channel::Email,
        IdentityKind::Phone => Channel::Sms,
        IdentityKind::Telegram => Channel::Telegram,
        IdentityKind::MessengerPsid => Channel::Messenger,
        IdentityKind::InstagramId => Channel::Instagram,
        IdentityKind::Whatsapp => Channel::Whatsapp,
        IdentityKind::XUser => Channel::X,
        IdentityKind::AppUser => return None,
    })
}

/// Answers go back where the resident wrote from. Web-form and Open311 residents have no
/// inbox of ours, so they are answered by email if they left one, else by SMS, else on the
/// public tracking page.
///
/// `contacts` are the reporter's own identities and `last_sender` the identity they last
/// wrote from; a `last_sender` that is not one of `contacts` is ignored: answers go to the
/// reporter, never to whoever wrote last (a ticket code is no key).
pub fn choose_reply_route(
    ticket_channel: Channel,
    last_sender: Option<&Identity>,
    contacts: &[Identity],
) -> ReplyRoute {
    let last_sender = last_sender.filter(|l| contacts.contains(l));
    if let Some(to) = last_sender
        && let Some(channel) = channel_of(to.kind)
        && channel == ticket_channel
    {
        return ReplyRoute::Send { channel, to: to.clone() };
    }
    if let Some(to) = contacts.iter().find(|i| channel_of(i.kind) == Some(ticket_channel)) {
        return ReplyRoute::Send { channel: ticket_channel, to: to.clone() };
    }
    for kind in [IdentityKind::Email, IdentityKind::Phone] {
        if let Some(to) = contacts.iter().find(|i| i.kind == kind)
            && let Some(channel) = channel_of(kind)
        {
            return ReplyRoute::Send { channel, to: to.clone() };
        }
    }
    ReplyRoute::Publish
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_receipt_names_the_code_and_the_deadline() {
        let code = crate::TicketCode::from_entropy([1, 2, 3, 4, 5]);
        let text = crate::ack_text(crate::DEFAULT_ACK_TEMPLATE, code, 24);
        assert!(text.contains(&code.to_string()) && text.contains("24 jam"), "{text}");
        assert!(text.ends_with(&format!("CEK {code}")));
        for p in Purpose::ALL {
            assert_eq!(p.as_str().parse::<Purpose>(), Ok(p));
        }
    }

    #[test]
    fn chats_are_answered_on_the_same_chat() {
        let tg = Identity::new(IdentityKind::Telegram, "42").unwrap();
        let email = Identity::email("siti@example.id").unwrap();
        assert_eq!(
            choose_reply_route(Channel::Telegram, Some(&tg), &[email.clone(), tg.clone()]),
            ReplyRoute::Send { channel: Channel::Telegram, to: tg }
        );
    }

    #[test]
    fn a_last_sender_who_is_not_the_reporter_is_never_answered() {
        let stranger = Identity::new(IdentityKind::Telegram, "666").unwrap();
        let reporter = Identity::new(IdentityKind::Telegram, "42").unwrap();
        let phone = Identity::phone("081234567890").unwrap();
        assert_eq!(
            choose_reply_route(Channel::Telegram, Some(&stranger), &[phone, reporter.clone()]),
            ReplyRoute::Send { channel: Channel::Telegram, to: reporter }
        );
        assert_eq!(
            choose_reply_route(Channel::Sms, Some(&Identity::phone("+447700900123").unwrap()), &[]),
            ReplyRoute::Publish
        );
    }

    #[test]
    fn web_residents_are_answered_by_email_then_sms_then_the_tracking_page() {
        let app = Identity::new(IdentityKind::AppUser, "u-77").unwrap();
        let email = Identity::email("siti@example.id").unwrap();
        let phone = Identity::phone("081234567890").unwrap();
        assert_eq!(
            choose_reply_route(Channel::Web, Some(&app), &[phone.clone(), email.clone()]),
            ReplyRoute::Send { channel: Channel::Email, to: email }
        );
        assert_eq!(
            choose_reply_route(Channel::Web, Some(&app), std::slice::from_ref(&phone)),
            ReplyRoute::Send { channel: Channel::Sms, to: phone }
        );
        assert_eq!(choose_reply_route(Channel::Web, Some(&app), &[]), ReplyRoute::Publish);
        assert_eq!(choose_reply_route(Channel::Web, None, &[]), ReplyRoute::Publish);
    }
}
