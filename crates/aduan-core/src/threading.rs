//! Which ticket a new message belongs to.
//!
//! The store looks up the candidates (the ticket the message names or answers, and the
//! sender's latest ticket on the same channel) and whether the sender is one of the named
//! ticket's reporter identities, and this module decides, for every channel alike. A ticket
//! code is not a key: it is printed on receipts, tracking pages and notifications, so
//! quoting it proves nothing. The rules, in order:
//!
//! 1. A message that names a ticket (an explicit `ticket`, a quoted `ADU-` code, or a reply
//!    to one of the ticket's messages) *from the ticket's reporter* joins that ticket. A
//!    resolved ticket reopens; a status question (`CEK ADU-…`) joins without reopening.
//! 2. A stranger naming a ticket does not join it: a status question gets the status answer
//!    (and nothing else: the message is kept without a ticket); an automated message (a
//!    bounce, an auto-reply, a note the email path keeps for operators) is recorded on the
//!    ticket but never reopens it, is never routed and never becomes the answer address;
//!    anything else is treated as if it named nothing (rules 3 and 4), so it opens the
//!    stranger's own ticket.
//! 3. Otherwise a message joins the sender's *open* ticket on the same channel if that
//!    ticket heard from anyone within the channel's window.
//! 4. Otherwise it opens a new ticket — unless it is automated (a bounce, an auto-reply),
//!    which is kept without a ticket.

use chrono::{DateTime, Duration, Utc};

use crate::{Channel, Status, TicketCode};

/// How long a conversation stays joinable by sender alone, per channel.
#[derive(Debug, Clone, PartialEq)]
pub struct ThreadingPolicy {
    pub default_window: Duration,
    pub per_channel: Vec<(Channel, Duration)>,
}

impl Default for ThreadingPolicy {
    /// Chats join for 24 hours. Each web-form or Open311 submission is its own report, and
    /// email threads by its headers and quoted codes, so those channels don't join by sender.
    fn default() -> Self {
        ThreadingPolicy {
            default_window: Duration::hours(24),
            per_channel: vec![
                (Channel::Web, Duration::zero()),
                (Channel::Open311, Duration::zero()),
                (Channel::Email, Duration::zero()),
            ],
        }
    }
}

impl ThreadingPolicy {
    pub fn window_for(&self, channel: Channel) -> Duration {
        self.per_channel
            .iter()
            .find(|(c, _)| *c == channel)
            .map_or(self.default_window, |(_, w)| *w)
    }
}

/// A ticket the store found for a message.
#[derive(Debug, Clone, PartialEq)]
pub struct ThreadCandidate {
    pub id: i64,
    pub code: TicketCode,
    pub status: Status,
    pub has_opd: bool,
    pub last_message_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ThreadDecision {
    /// Add the message to ticket `id`, moving it to `reopen_to` if set.
    Join {
        id: i64,
        reopen_to: Option<Status>,
    },
    NewTicket,
    /// Keep the message without a ticket (automated mail that answers nothing we know).
    Orphan,
    /// A stranger asked for the status of ticket `id`: answer it, keep the message without
    /// a ticket.
    AnswerStatus {
        id: i64,
    },
}

/// What the store knows about the sender of a message and what the message asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderFacts {
    /// Set by connectors for bounces, auto-replies and notes: never reopens, never opens.
    pub automated: bool,
    /// The sender is one of the named ticket's reporter identities (or the message edits
    /// one of their own earlier messages).
    pub is_reporter: bool,
    /// The message is a status question (`CEK ADU-…`) about the named ticket.
    pub asks_status: bool,
}

/// Decides where a message goes. `named` is the ticket the message explicitly refers to,
/// already followed through merges; `latest_of_sender` is the sender's most recent ticket on
/// the message's channel; `sender` says whether the sender is `named`'s reporter.
pub fn decide_thread(
    policy: &ThreadingPolicy,
    channel: Channel,
    sender: SenderFacts,
    now: DateTime<Utc>,
    named: Option<&ThreadCandidate>,
    latest_of_sender: Option<&ThreadCandidate>,
) -> ThreadDecision {
    let automated = sender.automated;
    if let Some(t) = named {
        if sender.is_reporter {
            let reopen_to =
                if automated || sender.asks_status { None } else { t.status.reopened(t.has_opd) };
            return ThreadDecision::Join { id: t.id, reopen_to };
        }
        if automated {
            return ThreadDecision::Join { id: t.id, reopen_to: None };
        }
        if sender.asks_status {
            return ThreadDecision::AnswerStatus { id: t.id };
        }
        // A stranger quoting a code: as if the message named nothing.
    }
    if let Some(t) = latest_of_sender {
        let window = policy.window_for(channel);
        if t.status.is_open() && window > Duration::zero() && now - t.last_message_at <= window {
            return ThreadDecision::Join { id: t.id, reopen_to: None };
        }
    }
    if automated { ThreadDecision::Orphan } else { ThreadDecision::NewTicket }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORTER: SenderFacts =
        SenderFacts { automated: false, is_reporter: true, asks_status: false };
    const AUTO_REPORTER: SenderFacts =
        SenderFacts { automated: true, is_reporter: true, asks_status: false };
    const AUTOMATED: SenderFacts =
        SenderFacts { automated: true, is_reporter: false, asks_status: false };
    const STRANGER: SenderFacts =
        SenderFacts { automated: false, is_reporter: false, asks_status: false };

    fn at(h: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000 + h * 3600, 0).unwrap()
    }

    fn cand(status: Status, last_h: i64) -> ThreadCandidate {
        ThreadCandidate {
            id: 7,
            code: TicketCode::from_entropy([1, 2, 3, 4, 5]),
            status,
            has_opd: true,
            last_message_at: at(last_h),
        }
    }

    #[test]
    fn a_named_ticket_wins_and_reopens_when_resolved() {
        let p = ThreadingPolicy::default();
        let other = cand(Status::New, 0);
        let named = cand(Status::Resolved, -1000);
        assert_eq!(
            decide_thread(&p, Channel::Telegram, REPORTER, at(0), Some(&named), Some(&other)),
            ThreadDecision::Join { id: 7, reopen_to: Some(Status::Assigned) }
        );
        // An auto-reply quoting the code is recorded but does not reopen.
        assert_eq!(
            decide_thread(&p, Channel::Email, AUTO_REPORTER, at(0), Some(&named), None),
            ThreadDecision::Join { id: 7, reopen_to: None }
        );
        // Rejected tickets stay rejected.
        assert_eq!(
            decide_thread(
                &p,
                Channel::Sms,
                REPORTER,
                at(0),
                Some(&cand(Status::Rejected, 0)),
                None
            ),
            ThreadDecision::Join { id: 7, reopen_to: None }
        );
    }

    #[test]
    fn the_senders_open_ticket_joins_within_the_window() {
        let p = ThreadingPolicy::default();
        let open = cand(Status::InProgress, 0);
        assert_eq!(
            decide_thread(&p, Channel::Telegram, REPORTER, at(24), None, Some(&open)),
            ThreadDecision::Join { id: 7, reopen_to: None }
        );
        assert_eq!(
            decide_thread(&p, Channel::Telegram, REPORTER, at(25), None, Some(&open)),
            ThreadDecision::NewTicket
        );
    }

    #[test]
    fn closed_tickets_and_zero_windows_do_not_join_by_sender() {
        let p = ThreadingPolicy::default();
        assert_eq!(
            decide_thread(
                &p,
                Channel::Sms,
                REPORTER,
                at(1),
                None,
                Some(&cand(Status::Resolved, 0))
            ),
            ThreadDecision::NewTicket
        );
        assert_eq!(
            decide_thread(&p, Channel::Web, REPORTER, at(0), None, Some(&cand(Status::New, 0))),
            ThreadDecision::NewTicket
        );
    }

    #[test]
    fn automated_mail_never_opens_a_ticket() {
        let p = ThreadingPolicy::default();
        assert_eq!(
            decide_thread(&p, Channel::Email, AUTOMATED, at(0), None, None),
            ThreadDecision::Orphan
        );
    }

    #[test]
    fn a_stranger_quoting_a_code_does_not_join_it() {
        let p = ThreadingPolicy::default();
        let named = cand(Status::Resolved, -1000);
        // Not even a resolved ticket reopens: the stranger gets their own ticket.
        assert_eq!(
            decide_thread(&p, Channel::Sms, STRANGER, at(0), Some(&named), None),
            ThreadDecision::NewTicket
        );
        // …or joins their own open conversation.
        let own = ThreadCandidate { id: 9, ..cand(Status::New, 0) };
        assert_eq!(
            decide_thread(&p, Channel::Telegram, STRANGER, at(1), Some(&named), Some(&own)),
            ThreadDecision::Join { id: 9, reopen_to: None }
        );
        // While the ticket waits for its reporter's name and address, a stranger's answer
        // does not land on it either.
        let waiting = cand(Status::AwaitingIdentity, 0);
        assert_eq!(
            decide_thread(&p, Channel::X, STRANGER, at(0), Some(&waiting), None),
            ThreadDecision::NewTicket
        );
    }

    #[test]
    fn a_strangers_status_question_is_answered_without_joining() {
        let p = ThreadingPolicy::default();
        let named = cand(Status::Resolved, 0);
        let asks = SenderFacts { asks_status: true, ..STRANGER };
        assert_eq!(
            decide_thread(&p, Channel::Sms, asks, at(0), Some(&named), None),
            ThreadDecision::AnswerStatus { id: 7 }
        );
        // The reporter's own question joins, without reopening.
        let own = SenderFacts { asks_status: true, ..REPORTER };
        assert_eq!(
            decide_thread(&p, Channel::Sms, own, at(0), Some(&named), None),
            ThreadDecision::Join { id: 7, reopen_to: None }
        );
    }

    #[test]
    fn a_strangers_automated_mail_is_only_recorded() {
        let p = ThreadingPolicy::default();
        assert_eq!(
            decide_thread(
                &p,
                Channel::Email,
                AUTOMATED,
                at(0),
                Some(&cand(Status::Resolved, 0)),
                None
            ),
            ThreadDecision::Join { id: 7, reopen_to: None }
        );
    }
}
