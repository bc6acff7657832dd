//! What the store takes and returns.

use std::fmt;
use std::str::FromStr;

use aduan_core::{
    Actor, AttachmentRef, Channel, Direction, EventKind, Identity, Location, OutboxState, Purpose,
    Status, TicketCode,
};
use chrono::{DateTime, Utc};
use serde::Serialize;

// Plain data the connectors' pure modules share, kept in `aduan_core` so they need no
// database crate; re-exported so `aduan_store::OutboxItem` etc. still work.
pub use aduan_core::{CallbackReceipt, DeliveryView};
pub use aduan_core::{DeliveryReceipt, OutboxItem, ReceiptStatus, UnfetchedAttachment};

/// The result of storing an inbound message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ingested {
    /// The ticket the message belongs to; `None` for automated mail kept without a ticket.
    pub ticket: Option<TicketCode>,
    pub message_id: i64,
    /// The message was stored before (same channel and provider id); nothing changed.
    pub duplicate: bool,
    /// This message opened its ticket.
    pub ticket_created: bool,
    /// This message reopened a resolved ticket.
    pub reopened: bool,
}

/// One row of the ticket list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TicketSummary {
    pub code: TicketCode,
    pub status: Status,
    pub channel: Channel,
    pub opd: Option<String>,
    pub category: Option<String>,
    #[serde(serialize_with = "aduan_core::time::serialize")]
    pub created_at: DateTime<Utc>,
    #[serde(serialize_with = "aduan_core::time::serialize")]
    pub updated_at: DateTime<Utc>,
    #[serde(serialize_with = "aduan_core::time::serialize")]
    pub first_response_due_at: DateTime<Utc>,
    #[serde(serialize_with = "aduan_core::time::serialize_opt")]
    pub first_responded_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "aduan_core::time::serialize_opt")]
    pub resolved_at: Option<DateTime<Utc>>,
    pub overdue: bool,
    pub location: Option<Location>,
    pub merged_into: Option<TicketCode>,
    /// The desa/kelurahan recognised in the complaint.
    pub place: Option<String>,
    pub kecamatan: Option<String>,
    #[serde(serialize_with = "aduan_core::time::serialize_opt")]
    pub resolution_due_at: Option<DateTime<Utc>>,
    /// The clocks stand still (waiting for the resident).
    pub paused: bool,
    /// The router's best OPDs for the operator, `[{"opd": …, "score": …}]`.
    pub suggestions: Option<serde_json::Value>,
    /// The operator handling the ticket (their email; "saya tangani" in the inbox).
    pub assignee: Option<String>,
}

/// A ticket with its reporter, whole thread and audit log.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TicketView {
    #[serde(flatten)]
    pub summary: TicketSummary,
    pub reporter: Option<ReporterView>,
    pub messages: Vec<MessageView>,
    pub events: Vec<EventView>,
    /// The incident the ticket belongs to (issue 20), absent when none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incident: Option<IncidentRef>,
    /// Open tickets that may report the same problem, best first (dismissed ones never).
    pub incident_suggestions: Vec<IncidentSuggestion>,
    /// The reporter's resident profile: their tickets on every channel (issue 20); absent
    /// for anonymous tickets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resident: Option<ResidentView>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReporterView {
    pub name: Option<String>,
    pub address: Option<String>,
    pub confidential: bool,
    pub identities: Vec<Identity>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MessageView {
    pub id: i64,
    pub direction: Direction,
    pub channel: Channel,
    pub text: String,
    #[serde(serialize_with = "aduan_core::time::serialize")]
    pub at: DateTime<Utc>,
    /// Who wrote an outbound message (`user:…`, `apikey:…`); the sender's display name for
    /// inbound ones.
    pub author: Option<String>,
    pub attachments: Vec<AttachmentRef>,
    pub location: Option<Location>,
    /// For outbound messages: where the answer is in the outbox.
    pub delivery: Option<OutboxState>,
    /// For outbound messages: why it was sent (`reply`, `ack`, …).
    pub purpose: Option<Purpose>,
    /// For an edited chat message: the id of the message it revises.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision_of: Option<i64>,
    /// For outbound messages: how it fared (`{status, at, error}`; receipts, bounces).
    pub receipt: Option<DeliveryView>,
    /// For an outbound message that did not simply go where it was sent: every outbox row
    /// of it in order (channel, state, why it was undeliverable there).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deliveries: Vec<aduan_core::DeliveryHop>,
    /// The operator's line for those (`terkirim via SMS: jendela WhatsApp 24 jam tertutup`,
    /// `menunggu warga menulis lagi (…)`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_note: Option<String>,
    /// The ids of `attachments`, in the same order (`GET /attachments/{id}`; the web layer
    /// adds each one's `url` to the ticket JSON).
    #[serde(skip)]
    pub attachment_ids: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventView {
    #[serde(serialize_with = "aduan_core::time::serialize")]
    pub at: DateTime<Utc>,
    pub actor: Actor,
    pub kind: EventKind,
    pub from: Option<String>,
    pub to: Option<String>,
    pub note: Option<String>,
}

/// Filters of `GET /api/v1/tickets`. All are optional and combine with AND.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TicketFilter {
    pub status: Option<Status>,
    pub opd: Option<String>,
    pub channel: Option<Channel>,
    pub overdue: Option<bool>,
    pub category: Option<String>,
    /// Whether the reporter asked for *rahasia* (`Some(false)`: only tickets whose reporter
    /// did not, or that have none; the public Open311 list).
    pub confidential: Option<bool>,
    /// A ticket code (that ticket), a phone number (its reporter's tickets), or words
    /// searched in the full-text index of the tickets (code, place, reporter's name, the
    /// resident's messages): ranked, see `ops/view.rs`.
    pub q: Option<String>,
    /// Tickets older than this cursor (from a previous page's `next_cursor`).
    pub cursor: Option<Cursor>,
    pub limit: i64,
    /// Only tickets this operator (an email) handles (`assignee=me` in the inbox).
    pub assignee: Option<String>,
}

/// A position in the ticket list (newest first): the last ticket id shown, and for a
/// ranked text search also its score (the bits of an `f64`; see `ops/view.rs`). Opaque to
/// clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor(pub(crate) i64, pub(crate) Option<u64>);

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use base64::Engine;
        let raw = match self.1 {
            None => format!("t{}", self.0),
            Some(score) => format!("s{score:x}.{}", self.0),
        };
        f.write_str(&base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a cursor this server handed out")]
pub struct BadCursor;

impl FromStr for Cursor {
    type Err = BadCursor;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        use base64::Engine;
        let raw =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).map_err(|_| BadCursor)?;
        let raw = std::str::from_utf8(&raw).map_err(|_| BadCursor)?;
        if let Some(ranked) = raw.strip_prefix('s') {
            let (score, id) = ranked.split_once('.').ok_or(BadCursor)?;
            let score = u64::from_str_radix(score, 16).map_err(|_| BadCursor)?;
            return Ok(Cursor(id.parse().map_err(|_| BadCursor)?, Some(score)));
        }
        let id = raw.strip_prefix('t').ok_or(BadCursor)?.parse().map_err(|_| BadCursor)?;
        Ok(Cursor(id, None))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// What `reply` queued.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Replied {
    pub message_id: i64,
    pub outbox_id: i64,
    /// The channel the answer goes out on; `None` when it is only published on the
    /// tracking page.
    pub channel: Option<Channel>,
    pub delivery: OutboxState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Operator,
    Official,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Official => "official",
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Role::Admin),
            "operator" => Ok(Role::Operator),
            "official" => Ok(Role::Official),
            _ => Err(format!("unknown role {s:?}: use admin, operator or official")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub email: String,
    pub name: Option<String>,
    pub role: Role,
    pub opd: Option<String>,
    /// An argon2id PHC string.
    pub password_hash: String,
}

/// A web user as the inbox sees it (never with the password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub name: Option<String>,
    pub role: Role,
    /// The OPD an official belongs to.
    pub opd: Option<String>,
    pub disabled: bool,
    #[serde(serialize_with = "aduan_core::time::serialize")]
    pub created_at: DateTime<Utc>,
}

/// A signed-in user's session, found by the hash of its cookie token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user: User,
    /// The token every form of this session must carry.
    pub csrf_token: String,
    pub expires_at: DateTime<Utc>,
}

/// One entry of the audit log of actions that are not about a ticket (sign-ins, users).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    #[serde(serialize_with = "aduan_core::time::serialize")]
    pub at: DateTime<Utc>,
    pub actor: Actor,
    pub action: String,
    pub target: Option<String>,
    pub note: Option<String>,
}

/// What `GET /api/v1/stats` counts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatsGroup {
    Opd,
    Channel,
    Category,
    Kecamatan,
    Day,
}

impl StatsGroup {
    pub const ALL: [StatsGroup; 5] = [
        StatsGroup::Opd,
        StatsGroup::Channel,
        StatsGroup::Category,
        StatsGroup::Kecamatan,
        StatsGroup::Day,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StatsGroup::Opd => "opd",
            StatsGroup::Channel => "channel",
            StatsGroup::Category => "category",
            StatsGroup::Kecamatan => "kecamatan",
            StatsGroup::Day => "day",
        }
    }
}

impl FromStr for StatsGroup {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StatsGroup::ALL.into_iter().find(|g| g.as_str() == s).ok_or_else(|| {
            format!("unknown grouping {s:?}: use opd, channel, category, kecamatan or day")
        })
    }
}

/// Tickets created in `[from, to)` counted by `group_by`; days are the office's (at
/// `offset_secs` east of UTC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsQuery {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub group_by: StatsGroup,
    pub offset_secs: i32,
}

/// Counts of one group: anonymous by construction (no ticket, no person).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatsRow {
    /// The OPD code, channel, category, kecamatan or `YYYY-MM-DD`; `None` for tickets
    /// without one (not yet disposed, not categorised).
    pub key: Option<String>,
    pub total: i64,
    /// Still waiting on our side (new, awaiting identity, assigned, in progress).
    pub open: i64,
    pub resolved: i64,
    pub rejected: i64,
    /// Open and past the first-response deadline without an answer.
    pub overdue: i64,
    /// First answered by the deadline.
    pub responded_on_time: i64,
    /// First answered after the deadline, or not answered and past it.
    pub responded_late: i64,
    /// `responded_on_time / (responded_on_time + responded_late)`; `None` when nothing is
    /// due yet.
    pub compliance: Option<f64>,
    /// Closed: confirmed by the resident, or not answered in time (issue 17).
    pub closed: i64,
}

/// Tickets opened on one office day through one channel (the dashboard's first chart).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayChannelCount {
    pub day: String,
    pub channel: Channel,
    pub count: i64,
}

/// What an API key may do. `admin` may do everything; `read` reads tickets; `intake` posts
/// messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Intake,
    Read,
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Intake => "intake",
            Scope::Read => "read",
            Scope::Admin => "admin",
        }
    }

    /// Whether a key of this scope may act where `needed` is required.
    pub fn allows(self, needed: Scope) -> bool {
        self == Scope::Admin || self == needed
    }
}

impl FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "intake" => Ok(Scope::Intake),
            "read" => Ok(Scope::Read),
            "admin" => Ok(Scope::Admin),
            _ => Err(format!("unknown scope {s:?}: use intake, read or admin")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: i64,
    pub name: String,
    pub scope: Scope,
    pub revoked: bool,
}

/// An outbox row as operators (and tests) see it.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRow {
    pub id: i64,
    pub channel: Channel,
    pub state: OutboxState,
    pub purpose: Purpose,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub provider_id: Option<String>,
    /// The latest delivery receipt (`sent`, `delivered`, `read`, `failed`).
    pub receipt: Option<ReceiptStatus>,
    pub receipt_at: Option<DateTime<Utc>>,
}

// --- confirm: satisfaction statistics ---

/// Fewer ratings than this in a group show no mean rating (one rating would be one
/// resident's answer).
pub const MIN_RATINGS: i64 = 3;

/// Resident satisfaction of one group (OPD, channel, category, …): the confirmations asked
/// when its tickets were resolved, what came of them, the ratings, and how long first
/// answers took. Anonymous: counts, shares and quantiles only.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SatisfactionRow {
    pub key: Option<String>,
    /// Confirmation questions asked (one per resolution; superseded ones not counted).
    pub asked: i64,
    /// The resident said fixed.
    pub confirmed: i64,
    /// The resident said not fixed: the ticket was reopened.
    pub reopened: i64,
    /// No answer in time: closed by the deadline watcher.
    pub expired: i64,
    /// Still waiting for the resident.
    pub pending: i64,
    /// `confirmed / (confirmed + reopened + expired)`; `None` when nothing was decided.
    pub confirmed_share: Option<f64>,
    /// `reopened / (confirmed + reopened + expired)`.
    pub reopened_share: Option<f64>,
    pub ratings: i64,
    /// The mean of the ratings (1–5); `None` under [`MIN_RATINGS`] ratings.
    pub mean_rating: Option<f64>,
    /// Tickets with a first answer, and the hours it took: median and 90th percentile.
    pub responded: i64,
    pub response_p50_hours: Option<f64>,
    pub response_p90_hours: Option<f64>,
    /// First answers within 1 hour, 1–24 hours, 1–3 days, over 3 days.
    pub response_buckets: [i64; 4],
}

// --- incidents: one incident, many reports ---

/// A ticket's incident: its id and how many (unmerged) tickets report it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncidentRef {
    pub id: i64,
    pub reports: i64,
}

/// A candidate incident for a ticket: the code of its best-matching member, the score
/// (0.0–1.0) and the operator's sentence ("kemungkinan sama dengan ADU-… (3 laporan, 180 m,
/// 2 hari)").
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncidentSuggestion {
    pub code: TicketCode,
    pub score: f64,
    pub why: String,
}

/// What `POST /api/v1/tickets/{code}/incident` asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IncidentAction {
    /// Join the incident of this ticket (one is made when it has none).
    Join(TicketCode),
    /// Leave the incident.
    Leave,
    /// "Not the same problem": never suggest this ticket (or its incident) again.
    Dismiss(TicketCode),
}

// --- residents: one resident across channels ---

/// The reporter's resident profile as the ticket view shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResidentView {
    /// The profile, when the reporter is linked to another.
    pub id: Option<i64>,
    /// The other tickets of the linked reporters, newest first (at most 50).
    pub tickets: Vec<ResidentTicket>,
    /// Tickets of reporters with the same name in the same desa: a possible link an
    /// operator may make, never made automatically.
    pub suggested: Vec<ResidentTicket>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResidentTicket {
    pub code: TicketCode,
    pub channel: Channel,
    pub status: Status,
    #[serde(serialize_with = "aduan_core::time::serialize")]
    pub created_at: DateTime<Utc>,
}

/// What `POST /api/v1/tickets/{code}/resident` asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResidentAction {
    /// Link this ticket's reporter with that ticket's reporter.
    Link(TicketCode),
    /// Take this ticket's reporter out of their profile; never linked automatically again.
    Unlink,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = Cursor(12345, None);
        assert_eq!(c.to_string().parse::<Cursor>(), Ok(c));
        let ranked = Cursor(12345, Some((-3.25f64).to_bits()));
        assert_eq!(ranked.to_string().parse::<Cursor>(), Ok(ranked));
        assert_eq!("garbage!".parse::<Cursor>(), Err(BadCursor));
        assert_eq!("eDEy".parse::<Cursor>(), Err(BadCursor));
    }

    #[test]
    fn admin_scope_allows_everything() {
        assert!(Scope::Admin.allows(Scope::Intake));
        assert!(Scope::Intake.allows(Scope::Intake));
        assert!(!Scope::Intake.allows(Scope::Read));
        assert!(!Scope::Read.allows(Scope::Admin));
    }
}

// --- rules: routing quality ---

/// Routing quality of one OPD, or of all tickets (`opd: None`), over the tickets created in
/// a period (issue 18 item 6). A ticket counts for the OPD of its first disposition.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoutingQualityRow {
    /// The OPD of the first disposition; `None` for the overall row.
    pub opd: Option<String>,
    /// Tickets first disposed to this OPD; overall: every ticket created (those still in
    /// triage included; merged ones not).
    pub tickets: i64,
    /// Of `tickets`, those disposed at all (overall: fewer than `tickets` while some wait).
    pub disposed: i64,
    /// First disposed by the router, without a person.
    pub auto_routed: i64,
    /// Of `auto_routed`, those a person later disposed to another OPD.
    pub redisposed: i64,
    /// `auto_routed / tickets`.
    pub auto_share: Option<f64>,
    /// `redisposed / auto_routed`: the router's real error rate.
    pub redisposed_share: Option<f64>,
    /// Median time from receipt to the first disposition, in hours.
    pub median_disposition_hours: Option<f64>,
}

/// The routing counters of one OPD since the start (kept on write; `/metrics`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoutingCount {
    pub opd: String,
    /// First dispositions by the router.
    pub auto: i64,
    /// First dispositions by a person.
    pub manual: i64,
    /// Of `auto`, re-disposed by a person to another OPD.
    pub redisposed: i64,
}
