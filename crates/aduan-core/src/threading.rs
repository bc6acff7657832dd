//! Which ticket a new message belongs to.
//!
//! The store looks up the candidates (the ticket the message names or answers, and the
//! sender's latest ticket on the same channel) and this module decides. The rules, in order:
//!
//! 1. A message that names a ticket (an explicit `ticket`, a quoted `ADU-` code, or a reply
//!    to one of the ticket's messages) joins that ticket. A resolved ticket reopens.
//! 2. Otherwise a message joins the sender's *open* ticket on the same channel if that
//!    ticket heard from anyone within the channel's window.
//! 3. Otherwise it opens a new ticket — unless it is automated (a bounce, an auto-reply),
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
}

/// Decides where a message goes. `named` is the ticket the message explicitly refers to,
/// already followed through merges; `latest_of_sender` is the sender's most recent ticket on
/// the message's channel.
pub fn decide_thread(
    policy: &ThreadingPolicy,
    channel: Channel,
    automated: bool,
    now: DateTime<Utc>,
    named: Option<&ThreadCandidate>,
    latest_of_sender: Option<&ThreadCandidate>,
) -> ThreadDecision {
    if let Some(t) = named {
        let reopen_to = if automated { None } else { t.status.reopened(t.has_opd) };
        return ThreadDecision::Join { id: t.id, reopen_to };
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
            decide_thread(&p, Channel::Telegram, false, at(0), Some(&named), Some(&other)),
            ThreadDecision::Join { id: 7, reopen_to: Some(Status::Assigned) }
        );
        // An auto-reply quoting the code is recorded but does not reopen.
        assert_eq!(
            decide_thread(&p, Channel::Email, true, at(0), Some(&named), None),
            ThreadDecision::Join { id: 7, reopen_to: None }
        );
        // Rejected tickets stay rejected.
        assert_eq!(
            decide_thread(&p, Channel::Sms, false, at(0), Some(&cand(Status::Rejected, 0)), None),
            ThreadDecision::Join { id: 7, reopen_to: None }
        );
    }

    #[test]
    fn the_senders_open_ticket_joins_within_the_window() {
        let p = ThreadingPolicy::default();
        let open = cand(Status::InProgress, 0);
        assert_eq!(
            decide_thread(&p, Channel::Telegram, false, at(24), None, Some(&open)),
            ThreadDecision::Join { id: 7, reopen_to: None }
        );
        assert_eq!(
            decide_thread(&p, Channel::Telegram, false, at(25), None, Some(&open)),
            ThreadDecision::NewTicket
        );
    }

    #[test]
    fn closed_tickets_and_zero_windows_do_not_join_by_sender() {
        let p = ThreadingPolicy::default();
        assert_eq!(
            decide_thread(&p, Channel::Sms, false, at(1), None, Some(&cand(Status::Resolved, 0))),
            ThreadDecision::NewTicket
        );
        assert_eq!(
            decide_thread(&p, Channel::Web, false, at(0), None, Some(&cand(Status::New, 0))),
            ThreadDecision::NewTicket
        );
    }

    #[test]
    fn automated_mail_never_opens_a_ticket() {
        let p = ThreadingPolicy::default();
        assert_eq!(
            decide_thread(&p, Channel::Email, true, at(0), None, None),
            ThreadDecision::Orphan
        );
    }
}
