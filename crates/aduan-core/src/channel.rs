use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A channel a resident can reach us on. The string values are part of the public API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    Sms,
    Telegram,
    Whatsapp,
    Messenger,
    Instagram,
    X,
    /// The intake API and the public web form.
    Web,
    Open311,
}

impl Channel {
    pub const ALL: [Channel; 9] = [
        Channel::Email,
        Channel::Sms,
        Channel::Telegram,
        Channel::Whatsapp,
        Channel::Messenger,
        Channel::Instagram,
        Channel::X,
        Channel::Web,
        Channel::Open311,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Telegram => "telegram",
            Channel::Whatsapp => "whatsapp",
            Channel::Messenger => "messenger",
            Channel::Instagram => "instagram",
            Channel::X => "x",
            Channel::Web => "web",
            Channel::Open311 => "open311",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown channel {0:?}")]
pub struct UnknownChannel(pub String);

impl FromStr for Channel {
    type Err = UnknownChannel;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Channel::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownChannel(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_channel() {
        for c in Channel::ALL {
            assert_eq!(c.as_str().parse::<Channel>(), Ok(c));
            assert_eq!(serde_json::to_string(&c).unwrap(), format!("\"{}\"", c.as_str()));
        }
        assert!("fax".parse::<Channel>().is_err());
    }
}
