//! The normalised inbound message: what every connector turns its provider's payload into.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Channel, Identity};

/// Whether a message came from the resident or went to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    In,
    Out,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }
}

/// One message from a resident, as a connector hands it to the store.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundMessage {
    pub channel: Channel,
    /// The provider's id for this message (`update_id`, `wamid`, `MessageSid`, Message-ID,
    /// the intake API's `external_id`, …). `(channel, provider_id)` is unique: the same
    /// message delivered twice is stored once.
    pub provider_id: String,
    pub sender: Sender,
    pub text: String,
    pub attachments: Vec<AttachmentRef>,
    pub location: Option<Location>,
    /// When the provider says the message was sent, or when we received it.
    pub received_at: DateTime<Utc>,
    pub thread: ThreadHints,
}

/// Who sent the message.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sender {
    /// The address the message came from; replies go back to it. `None` for anonymous web
    /// forms.
    pub identity: Option<Identity>,
    pub display_name: Option<String>,
    /// Further ways to reach the sender that they gave us (an app user's phone and email).
    pub contacts: Vec<Identity>,
}

/// Clues that tie a message to an earlier conversation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ThreadHints {
    /// Provider ids of earlier messages on the same channel this one answers (email
    /// `In-Reply-To`/`References`, a WhatsApp `context.id`, a Telegram `reply_to_message`).
    pub references: Vec<String>,
    /// An explicit ticket the sender addresses (the intake API's `ticket` field).
    pub ticket: Option<crate::TicketCode>,
    /// Set by connectors for bounces, auto-replies and our own echoes: the message is
    /// recorded but gets no acknowledgement and never opens a ticket on its own.
    pub automated: bool,
    /// The provider id of an earlier message on the same channel that this one edits (a
    /// Telegram `edited_message`). The store keeps it as a revision of that message, on
    /// that message's ticket, and never reopens or opens a ticket for it.
    pub revision_of: Option<String>,
}

/// An attachment already written to content-addressed storage (or still at the provider).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentRef {
    pub filename: Option<String>,
    pub content_type: String,
    pub size: u64,
    /// Hex SHA-256 of the content: its address under `[storage] dir`. Empty while the file
    /// is only known at the provider.
    pub sha256: String,
    /// The provider's handle for content not fetched yet (a Telegram `file_id`, a media id).
    pub provider_ref: Option<String>,
}

/// A point on the map, WGS 84.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Location {
    pub lat: f64,
    pub lon: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocationError {
    #[error("lat must be a number from -90 to 90")]
    Lat,
    #[error("lon must be a number from -180 to 180")]
    Lon,
}

impl Location {
    pub fn new(lat: f64, lon: f64) -> Result<Location, LocationError> {
        if !(lat.is_finite() && (-90.0..=90.0).contains(&lat)) {
            return Err(LocationError::Lat);
        }
        if !(lon.is_finite() && (-180.0..=180.0).contains(&lon)) {
            return Err(LocationError::Lon);
        }
        Ok(Location { lat, lon })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_range_checked() {
        assert!(Location::new(-7.4246, 109.2396).is_ok());
        assert_eq!(Location::new(91.0, 0.0), Err(LocationError::Lat));
        assert_eq!(Location::new(f64::NAN, 0.0), Err(LocationError::Lat));
        assert_eq!(Location::new(0.0, -180.5), Err(LocationError::Lon));
    }
}
