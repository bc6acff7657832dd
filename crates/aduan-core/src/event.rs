//! The append-only audit log: who did what to a ticket, when, from what to what, and why.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Who caused an event.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Actor {
    /// aduan itself: intake, the router, the deadline watcher.
    System,
    /// The resident, by writing on their channel.
    Resident,
    /// A signed-in person, by email address.
    User(String),
    /// A program using an API key, by the key's name.
    ApiKey(String),
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::System => f.write_str("system"),
            Actor::Resident => f.write_str("resident"),
            Actor::User(email) => write!(f, "user:{email}"),
            Actor::ApiKey(name) => write!(f, "apikey:{name}"),
        }
    }
}

impl FromStr for Actor {
    type Err = std::convert::Infallible;
    /// Reads what `Display` wrote; anything unrecognised is kept as a user name.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "system" => Actor::System,
            "resident" => Actor::Resident,
            _ => match s.split_once(':') {
                Some(("apikey", name)) => Actor::ApiKey(name.to_owned()),
                Some(("user", email)) => Actor::User(email.to_owned()),
                _ => Actor::User(s.to_owned()),
            },
        })
    }
}

impl Serialize for Actor {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Actor {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(s.parse().unwrap_or(Actor::System))
    }
}

/// What happened. `from`/`to` on the stored event carry the changed values (statuses, OPD
/// codes, ticket codes) as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The ticket was opened by a message (`to` = its status).
    Created,
    /// A resident's message joined the ticket (`to` = the message id).
    MessageReceived,
    /// An answer was queued for the resident (`to` = the message id).
    Replied,
    /// `from` → `to` status.
    StatusChanged,
    /// `from` → `to` OPD code.
    Assigned,
    /// This ticket was merged into `to`.
    Merged,
    /// Ticket `from` was merged into this one.
    Absorbed,
    /// The clocks stopped (waiting for the resident); `note` is the reason.
    Paused,
    /// The clocks run again.
    Resumed,
    /// The router looked at the ticket: `to` = the OPD it chose, or `triage`; `note` has
    /// the category, place, confidence and suggestions.
    Routed,
    /// The reporter's name, address or confidentiality changed (`to` = the fields).
    ReporterUpdated,
    /// Officials or admins were notified (`to` = `disposition`, `warning:…`, `escalation:…`).
    Notified,
    /// A category was set on a ticket that had none (`to` = the category), e.g. from an
    /// Open311 report's `service_code`.
    Categorized,
    /// An attachment was not stored (`to` = the attachment id; `note` = why, e.g. over
    /// the sender's attachment budget).
    AttachmentRefused,
    /// The resident's confirmation of a resolved ticket: `to` = `asked`, `fixed`,
    /// `not_fixed`, `unclear` or `expired` (no answer in time); `note` = the rating.
    Confirmation,
    /// An operator took the ticket ("saya tangani") or let it go: `from` → `to` = the
    /// operator's email, `None` when nobody handles it.
    Handler,
    /// The ticket's incident (issue 20): `to` = `joined`, `auto_joined`, `left` or
    /// `dismissed`; `from` = the other ticket's code; `note` = the score or the incident.
    Incident,
}

impl EventKind {
    pub const ALL: [EventKind; 17] = [
        EventKind::Created,
        EventKind::MessageReceived,
        EventKind::Replied,
        EventKind::StatusChanged,
        EventKind::Assigned,
        EventKind::Merged,
        EventKind::Absorbed,
        EventKind::Paused,
        EventKind::Resumed,
        EventKind::Routed,
        EventKind::ReporterUpdated,
        EventKind::Notified,
        EventKind::Categorized,
        EventKind::AttachmentRefused,
        EventKind::Confirmation,
        EventKind::Handler,
        EventKind::Incident,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Created => "created",
            EventKind::MessageReceived => "message_received",
            EventKind::Replied => "replied",
            EventKind::StatusChanged => "status_changed",
            EventKind::Assigned => "assigned",
            EventKind::Merged => "merged",
            EventKind::Absorbed => "absorbed",
            EventKind::Paused => "paused",
            EventKind::Resumed => "resumed",
            EventKind::Routed => "routed",
            EventKind::ReporterUpdated => "reporter_updated",
            EventKind::Notified => "notified",
            EventKind::Categorized => "categorized",
            EventKind::AttachmentRefused => "attachment_refused",
            EventKind::Confirmation => "confirmation",
            EventKind::Handler => "handler",
            EventKind::Incident => "incident",
        }
    }
}

impl FromStr for EventKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("unknown event kind {s:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actors_round_trip_through_text() {
        for a in [
            Actor::System,
            Actor::Resident,
            Actor::User("op@banyumaskab.go.id".into()),
            Actor::ApiKey("lapor-app".into()),
        ] {
            assert_eq!(a.to_string().parse::<Actor>().unwrap(), a);
        }
    }

    #[test]
    fn event_kinds_round_trip() {
        for k in EventKind::ALL {
            assert_eq!(k.as_str().parse::<EventKind>(), Ok(k));
        }
    }
}
