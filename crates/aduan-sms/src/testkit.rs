//! Helpers for tests against the real Kannel that `cargo xtask test` starts (bearerbox +
//! smsbox with a fake SMSC, and fakesmsc as the phone network; see `xtask/src/kannel.rs`):
//! where it is, typing an SMS into fakesmsc, and reading what fakesmsc received.

use std::io::Write;

/// Whether this is the full suite, where a missing peer is a failure: the one reading of
/// `ADUAN_TEST_FULL`, `aduan_store::testing`'s.
pub use aduan_store::testing::{full_suite, missing_peer};

/// The running Kannel peer, from the `ADUAN_TEST_KANNEL_*` variables.
#[derive(Debug, Clone)]
pub struct KannelPeer {
    /// smsbox's `sendsms` (for `[channels.kannel] sendsms_url`).
    pub sendsms_url: String,
    pub user: String,
    pub password: String,
    /// What smsbox puts in `secret=` of its calls to `/hooks/kannel`.
    pub secret: String,
    /// Where smsbox sends inbound SMS: the address the server under test must listen on.
    pub mo_addr: String,
    /// fakesmsc's input FIFO: one line per SMS from a phone.
    pub fifo: String,
    /// fakesmsc's output log: the SMS the phones received.
    pub out: String,
}

impl KannelPeer {
    /// `None` after a skip notice when there is no peer; a panic under `ADUAN_TEST_FULL`.
    pub fn from_env() -> Option<KannelPeer> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let Some(sendsms_url) = var("ADUAN_TEST_KANNEL_SENDSMS_URL") else {
            missing_peer(
                "there is no Kannel peer (ADUAN_TEST_KANNEL_SENDSMS_URL; `cargo xtask sms-peer` \
                 starts one)",
            );
            return None;
        };
        let need = |k: &str| var(k).unwrap_or_else(|| panic!("{k} is not set"));
        Some(KannelPeer {
            sendsms_url,
            user: need("ADUAN_TEST_KANNEL_USER"),
            password: need("ADUAN_TEST_KANNEL_PASSWORD"),
            secret: need("ADUAN_TEST_KANNEL_SECRET"),
            mo_addr: need("ADUAN_TEST_KANNEL_MO_ADDR"),
            fifo: need("ADUAN_TEST_KANNEL_FAKESMSC_IN"),
            out: need("ADUAN_TEST_KANNEL_FAKESMSC_OUT"),
        })
    }

    /// A phone (`from`) sends `text` to the short number 1708.
    pub fn inject(&self, from: &str, text: &str) {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&self.fifo)
            .unwrap_or_else(|e| panic!("fakesmsc FIFO {}: {e}", self.fifo));
        // One line per SMS, under fakesmsc's 255-character line buffer.
        let line = format!("{from} 1708 text {text}\n");
        assert!(line.len() < 255, "an SMS line longer than fakesmsc reads");
        f.write_all(line.as_bytes()).expect("write to the fakesmsc FIFO");
    }

    /// Every SMS the phones received so far, in order.
    pub fn received(&self) -> Vec<Mt> {
        parse_received(&std::fs::read_to_string(&self.out).unwrap_or_default())
    }
}

/// One SMS fakesmsc received: `Got message N: <FROM TO text MSG>` or, for a part of a long
/// SMS, `<FROM TO udh UDH data MSG>` with UDH and MSG URL-encoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Mt {
    pub from: String,
    pub to: String,
    /// (reference, total, sequence) of a concatenated part.
    pub part: Option<(u8, u8, u8)>,
    /// The payload as received (UTF-16BE for UCS-2 SMS).
    pub data: Vec<u8>,
    /// The payload read as UTF-8.
    pub text: String,
}

fn url_decode(s: &str) -> Vec<u8> {
    percent_encoding::percent_decode_str(&s.replace('+', " ")).collect()
}

/// The SMS in fakesmsc's output log.
pub fn parse_received(log: &str) -> Vec<Mt> {
    let mut mts = Vec::new();
    for line in log.lines() {
        let Some((_, rest)) = line.split_once("Got message ") else { continue };
        let Some((_, body)) = rest.split_once(": <") else { continue };
        let body = body.strip_suffix('>').unwrap_or(body);
        let mut it = body.splitn(4, ' ');
        let (Some(from), Some(to), Some(kind), rest) = (it.next(), it.next(), it.next(), it.next())
        else {
            continue;
        };
        let rest = rest.unwrap_or("");
        let (part, data) = match kind {
            "text" => (None, rest.as_bytes().to_vec()),
            "udh" => {
                let (udh, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                let (_, data) = tail.split_once(' ').unwrap_or(("", tail));
                let udh = url_decode(udh);
                let part = (udh.len() == 6 && udh[1] == 0).then(|| (udh[3], udh[4], udh[5]));
                (part, url_decode(data))
            }
            // "ucs-2" and "data": URL-encoded bytes.
            _ => (None, url_decode(rest)),
        };
        let text = String::from_utf8_lossy(&data).into_owned();
        mts.push(Mt { from: from.into(), to: to.into(), part, data, text });
    }
    mts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fakesmsc_lines_are_read_with_their_parts() {
        let log = "2026-11-29 10:00:00 Got message 1: <1708 +628123 text Kode ADU-1234ABCD>\n\
                   noise\n\
                   Got message 2: <1708 +628123 udh %05%00%03%07%02%01 data Halo+dunia>\n";
        let mts = parse_received(log);
        assert_eq!(mts.len(), 2);
        assert_eq!((mts[0].to.as_str(), mts[0].text.as_str()), ("+628123", "Kode ADU-1234ABCD"));
        assert_eq!(mts[1].part, Some((7, 2, 1)));
        assert_eq!(mts[1].text, "Halo dunia");
    }
}
