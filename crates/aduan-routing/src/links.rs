//! The officials' one-click action links in every mail to an OPD (issue 19 item 5), and the
//! daily digest's schedule and sections. Pure apart from the random nonces.
//!
//! Links go only to the OPD's own officials (its `emails` and `head_email`), each signed for
//! the address it goes to ([`aduan_core::action_link`]); admins copied on an escalation get
//! the mail without links. The digest is due on a working day of
//! [`aduan_core::calendar::Calendar`] once the office's local hour reaches `[sla]
//! digest_hour` ([`digest_day`]); it lists the OPD's tickets disposed since its last digest,
//! the overdue ones and the ones due by the end of the local day ([`digest_sections`]).

use aduan_core::action_link::{ActionClaim, ActionKey, OfficialAction};
use aduan_core::texts::action_links_block;
use aduan_core::{Calendar, TicketCode};
use aduan_store::DigestTicket;
use base64::Engine;
use chrono::{DateTime, Duration, NaiveDate, Timelike, Utc};

/// Signs the links of mails to officials.
#[derive(Debug, Clone)]
pub struct LinkSigner {
    pub key: ActionKey,
    /// The web address (no trailing slash): links are `{public_url}/aksi/{token}`.
    pub public_url: String,
    /// How long a link is valid (`[sla] action_link_days`).
    pub valid_for: Duration,
}

impl LinkSigner {
    /// The four links for `official` about `ticket` at OPD `opd`, and their expiry.
    pub fn links(
        &self,
        ticket: TicketCode,
        opd: &str,
        official: &str,
        now: DateTime<Utc>,
    ) -> (Vec<(OfficialAction, String)>, DateTime<Utc>) {
        let expires_at = now + self.valid_for;
        let links = OfficialAction::ALL
            .into_iter()
            .filter_map(|action| {
                let nonce = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(rand::random::<[u8; 12]>());
                let claim = ActionClaim {
                    ticket,
                    opd: opd.to_owned(),
                    action,
                    official: official.to_owned(),
                    expires_at,
                    nonce,
                };
                let token = self.key.sign(&claim)?;
                Some((action, format!("{}/aksi/{token}", self.public_url)))
            })
            .collect();
        (links, expires_at)
    }

    /// The links as the block at the end of a mail.
    pub fn block(
        &self,
        ticket: TicketCode,
        opd: &str,
        official: &str,
        now: DateTime<Utc>,
    ) -> String {
        let (links, until) = self.links(ticket, opd, official, now);
        action_links_block(&links, until)
    }
}

/// The local day whose digests are due at `now`: `Some` on a working day once the local
/// hour is `hour` or later; `None` without an hour (digests off), before it, and on
/// weekends and holidays.
pub fn digest_day(cal: &Calendar, hour: Option<u32>, now: DateTime<Utc>) -> Option<NaiveDate> {
    let hour = hour?;
    let local = now.with_timezone(&cal.offset());
    let day = local.date_naive();
    (cal.is_working_day(day) && local.hour() >= hour).then_some(day)
}

/// A digest's three lists: new since `since` (every ticket without an earlier digest),
/// overdue, and due by the end of the local day at `now` (not overdue yet).
pub fn digest_sections<'a>(
    tickets: &'a [DigestTicket],
    since: Option<DateTime<Utc>>,
    cal: &Calendar,
    now: DateTime<Utc>,
) -> (Vec<&'a DigestTicket>, Vec<&'a DigestTicket>, Vec<&'a DigestTicket>) {
    let offset = Duration::seconds(i64::from(cal.offset().local_minus_utc()));
    let tomorrow = cal
        .local_date(now)
        .succ_opt()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|m| DateTime::<Utc>::from_naive_utc_and_offset(m, Utc) - offset);
    let is_new = |t: &&DigestTicket| match (since, t.disposed_at) {
        (None, _) => true,
        (Some(s), Some(d)) => d >= s,
        (Some(_), None) => false,
    };
    let new = tickets.iter().filter(is_new).collect();
    let overdue = tickets.iter().filter(|t| t.summary.overdue).collect();
    let due_today = tickets
        .iter()
        .filter(|t| !t.summary.overdue && !t.summary.paused)
        .filter(|t| next_due(t).zip(tomorrow).is_some_and(|(d, end)| d < end))
        .collect();
    (new, overdue, due_today)
}

/// The next deadline of a ticket's running clocks.
pub fn next_due(t: &DigestTicket) -> Option<DateTime<Utc>> {
    let s = &t.summary;
    let fr = s.first_responded_at.is_none().then_some(s.first_response_due_at);
    match (fr, s.resolution_due_at) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
