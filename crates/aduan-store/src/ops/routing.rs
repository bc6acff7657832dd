//! Queries of the routing worker and the deadline watcher: claiming unrouted tickets,
//! recording a routing decision, finding tickets whose officials must hear of them, and
//! queueing each automatic notification exactly once.

use aduan_core::{
    Actor, Budget, Channel, EventKind, Identity, Purpose, ReplyRoute, Status, TicketCode,
};
use chrono::{DateTime, Duration, Utc};

use super::actions::{pause_clocks, resident_route, resume_clocks};
use super::common::{
    REFRESH_DISPOSE_PENDING, TICKET_SELECT, TicketRow, claim_key, event, explain,
    load_ticket_by_id, move_status, require_ticket, status_event, ticket_row,
};
use super::outbox::queue_outbound;
use crate::db::{Db, Value, args};
use crate::types::TicketSummary;
use crate::{Result, Store, StoreError, StoreOptions, clean, now, truncate_ms};

/// A ticket the routing worker claimed.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteJob {
    pub code: TicketCode,
    pub status: Status,
    pub channel: Channel,
    pub created_at: DateTime<Utc>,
    /// The resident's messages, oldest first.
    pub texts: Vec<String>,
    pub reporter: ReporterInfo,
    /// We can write to the resident (not only publish on the tracking page).
    pub reachable: bool,
    /// The identity request went out already.
    pub identity_requested: bool,
}

/// What the store knows about a reporter, for routing and notifications.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReporterInfo {
    pub name: Option<String>,
    pub address: Option<String>,
    pub confidential: bool,
}

/// New facts about the reporter, from their answer to an identity request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReporterUpdate {
    pub name: Option<String>,
    pub address: Option<String>,
    /// They asked for *rahasia*.
    pub confidential: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RouteAction {
    /// Dispose to an OPD (`note` goes into the audit log).
    Assign { opd: String, note: String },
    /// Leave in the triage queue for an operator, with the suggestions.
    Triage { note: String },
    /// Ask the resident for their identity; the ticket waits in `awaiting_identity` with its
    /// clocks paused.
    RequestIdentity { text: String, reason: String },
    /// Keep waiting for the identity.
    Wait,
}

/// What the routing worker decided for a ticket.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteResult {
    pub action: RouteAction,
    pub category: Option<String>,
    pub place: Option<String>,
    pub kecamatan: Option<String>,
    pub suggestions: Option<serde_json::Value>,
    pub reporter: Option<ReporterUpdate>,
    /// The deadlines of the ticket's category or OPD, when they set their own.
    pub first_response: Option<Budget>,
    pub resolution: Option<Budget>,
}

impl RouteResult {
    pub fn new(action: RouteAction) -> RouteResult {
        RouteResult {
            action,
            category: None,
            place: None,
            kecamatan: None,
            suggestions: None,
            reporter: None,
            first_response: None,
            resolution: None,
        }
    }
}

/// A ticket whose officials or admins may have to hear of it.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchedTicket {
    pub summary: TicketSummary,
    pub first_response_budget: Option<Budget>,
    pub resolution_budget: Option<Budget>,
    /// The resident's messages, oldest first (empty from [`crate::Store::deadline_scan`]:
    /// [`crate::Store::watched_ticket`] loads them for a ticket with an alert due).
    pub texts: Vec<String>,
    /// As `texts`.
    pub reporter: ReporterInfo,
    /// Keys of the notifications already queued.
    pub sent: Vec<String>,
    /// The id of the newest message in `texts` (0: none, or not loaded): a disposition
    /// records it as what its officials have read ([`crate::Store::notify_disposition`]).
    pub last_message_id: i64,
}

async fn texts<D: Db>(c: &mut D, ticket_id: i64) -> Result<Vec<String>> {
    c.fetch_all_scalar(
        "SELECT text FROM messages WHERE ticket_id = $1 AND direction = 'in' AND automated = $2 \
         ORDER BY id",
        args![ticket_id, false],
    )
    .await
}

async fn reporter<D: Db>(c: &mut D, reporter_id: Option<i64>) -> Result<ReporterInfo> {
    let Some(rid) = reporter_id else { return Ok(ReporterInfo::default()) };
    let r = c
        .fetch_one("SELECT name, address, confidential FROM reporters WHERE id = $1", args![rid])
        .await?;
    // A linked reporter's identity answers count for them too (issue 20).
    let (name, address, confidential) = super::incidents::linked_identity(c, rid).await?;
    Ok(ReporterInfo {
        name: r.get::<Option<String>>("name")?.or(name),
        address: r.get::<Option<String>>("address")?.or(address),
        confidential: r.get::<bool>("confidential")? || confidential,
    })
}

async fn sent_keys<D: Db>(c: &mut D, ticket_id: i64) -> Result<Vec<String>> {
    c.fetch_all_scalar(
        "SELECT key FROM notifications WHERE ticket_id = $1 ORDER BY id",
        args![ticket_id],
    )
    .await
}

fn route_claim_sql<D: Db>(limit: i64, lease: Duration, now: DateTime<Utc>) -> (String, Vec<Value>) {
    let sql = format!(
        "UPDATE tickets SET route_lease_until = $1 WHERE id IN (SELECT id FROM tickets \
         WHERE route_pending = $3 AND status IN ('new', 'awaiting_identity') \
         AND merged_into IS NULL AND (route_lease_until IS NULL OR route_lease_until < $2) \
         ORDER BY id LIMIT $4 {}) RETURNING id",
        if D::IS_PG { "FOR UPDATE SKIP LOCKED" } else { "" }
    );
    (sql, args![truncate_ms(now + lease), now, true, limit])
}

/// The scans of the routing worker and the deadline watcher, for `EXPLAIN`: the claim of
/// tickets to route, the dispositions owed, the running clocks.
pub(crate) fn worker_scans<D: Db>(now: DateTime<Utc>) -> Vec<(&'static str, String, Vec<Value>)> {
    let (claim, claim_args) = route_claim_sql::<D>(20, Duration::seconds(60), now);
    vec![
        ("route_claim", claim, claim_args),
        ("undisposed", undisposed_sql(), args![100i64]),
        ("deadline_scan", deadline_scan_sql::<D>(), args![1000i64, now]),
    ]
}

/// Claims (leases) up to `limit` tickets to route: the write half of `Store::route_claim`.
pub(crate) async fn route_claim<D: Db>(
    c: &mut D,
    limit: i64,
    lease: Duration,
    now: DateTime<Utc>,
) -> Result<Vec<i64>> {
    let (sql, params) = route_claim_sql::<D>(limit, lease, now);
    let mut ids: Vec<i64> = c.fetch_all_scalar(&sql, params).await?;
    ids.sort_unstable();
    Ok(ids)
}

/// What the router needs of each claimed ticket: the read half of `Store::route_claim`,
/// run on a reader once the claim is committed, so the single SQLite writer spends only
/// the `UPDATE` on a routing round (loading 20 tickets with their texts held it ~1 ms,
/// during which intake waited: issue 22 item 3).
pub(crate) async fn route_jobs<D: Db>(
    c: &mut D,
    ids: Vec<i64>,
    now: DateTime<Utc>,
) -> Result<Vec<RouteJob>> {
    let mut jobs = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(t) = load_ticket_by_id(c, id, now).await? else { continue };
        let route = resident_route(c, &t).await?;
        let requested: Option<i64> = c
            .fetch_optional_scalar(
                "SELECT id FROM notifications WHERE ticket_id = $1 AND key = 'identity_request'",
                args![id],
            )
            .await?;
        jobs.push(RouteJob {
            code: t.summary.code,
            status: t.summary.status,
            channel: t.summary.channel,
            created_at: t.summary.created_at,
            texts: texts(c, id).await?,
            reporter: reporter(c, t.reporter_id).await?,
            reachable: route != ReplyRoute::Publish,
            identity_requested: requested.is_some(),
        });
    }
    Ok(jobs)
}

/// A deadline recomputed for a new budget, keeping the credit earlier pauses gave.
fn rebudget(
    opts: &StoreOptions,
    created: DateTime<Utc>,
    due: DateTime<Utc>,
    old: Budget,
    new: Budget,
) -> DateTime<Utc> {
    let cal = &opts.sla.calendar;
    let fresh = cal.due(created, new);
    if old.measure() == new.measure() {
        let credit = cal.measure(old.measure(), cal.due(created, old), due);
        cal.advance(new.measure(), fresh, credit)
    } else {
        fresh
    }
}

pub(crate) async fn route_done<D: Db>(
    c: &mut D,
    opts: &StoreOptions,
    code: TicketCode,
    result: RouteResult,
    now: DateTime<Utc>,
) -> Result<bool> {
    let t = require_ticket(c, code, now).await?;
    let finish = "UPDATE tickets SET route_pending = $2, route_lease_until = NULL WHERE id = $1";
    let from = t.summary.status;
    if !matches!(from, Status::New | Status::AwaitingIdentity) || t.summary.merged_into.is_some() {
        // An operator acted first.
        super::incidents::index_ticket(c, t.id).await?;
        c.execute(finish, args![t.id, false]).await?;
        return Ok(false);
    }
    let system = Actor::System;
    if let (Some(r), Some(rid)) = (&result.reporter, t.reporter_id) {
        c.execute(
            "UPDATE reporters SET name = COALESCE($2, name), address = COALESCE($3, address), \
             confidential = (confidential OR $4) WHERE id = $1",
            args![rid, &r.name, &r.address, r.confidential],
        )
        .await?;
        let mut fields = Vec::new();
        if r.name.is_some() {
            fields.push("name");
        }
        if r.address.is_some() {
            fields.push("address");
        }
        if r.confidential {
            fields.push("confidential");
        }
        if !fields.is_empty() {
            let to = fields.join(",");
            event(
                c,
                t.id,
                now,
                &Actor::Resident,
                EventKind::ReporterUpdated,
                None,
                Some(&to),
                None,
            )
            .await?;
        }
    }
    let suggestions = result.suggestions.as_ref().map(|s| s.to_string());
    c.execute(
        "UPDATE tickets SET category = COALESCE($2, category), place = COALESCE($3, place), \
         kecamatan = COALESCE($4, kecamatan), suggestions = COALESCE($5, suggestions), \
         updated_at = $6 WHERE id = $1",
        args![t.id, &result.category, &result.place, &result.kecamatan, suggestions, now],
    )
    .await?;
    let waiting = matches!(result.action, RouteAction::RequestIdentity { .. } | RouteAction::Wait);
    if from == Status::AwaitingIdentity && !waiting {
        // The identity is complete: the clocks run again and the ticket goes on.
        resume_clocks(c, opts, &t, &system, now).await?;
        // (`updated_at` is `now` already: the update above set it.)
        move_status(c, &t, Status::New, &system, now).await?;
    }
    // The category's or OPD's own deadlines.
    if result.first_response.is_some() || result.resolution.is_some() {
        let t = load_ticket_by_id(c, t.id, now)
            .await?
            .ok_or_else(|| StoreError::Internal("routed ticket vanished".into()))?;
        let s = &t.summary;
        let old_fr = t.first_response_budget.unwrap_or(opts.sla.first_response_budget());
        let old_res = t.resolution_budget.unwrap_or(opts.sla.resolution);
        let fr = result.first_response.filter(|b| *b != old_fr);
        let res = result.resolution.filter(|b| *b != old_res);
        let fr_due = fr.map(|b| rebudget(opts, s.created_at, s.first_response_due_at, old_fr, b));
        let res_due = match (res, s.resolution_due_at) {
            (Some(b), Some(due)) => Some(rebudget(opts, s.created_at, due, old_res, b)),
            (Some(b), None) => Some(opts.sla.calendar.due(s.created_at, b)),
            _ => None,
        };
        c.execute(
            "UPDATE tickets SET first_response_due_at = COALESCE($2, first_response_due_at), \
             first_response_budget = COALESCE($3, first_response_budget), \
             resolution_due_at = COALESCE($4, resolution_due_at), \
             resolution_budget = COALESCE($5, resolution_budget) WHERE id = $1",
            args![
                t.id,
                fr_due.map(truncate_ms),
                fr.map(|b| b.to_string()),
                res_due.map(truncate_ms),
                res.map(|b| b.to_string())
            ],
        )
        .await?;
    }
    match result.action {
        RouteAction::Assign { opd, note } => {
            super::actions::assign(c, code, opd.clone(), system.clone(), Some(note.clone()), now)
                .await?;
            event(c, t.id, now, &system, EventKind::Routed, None, Some(&opd), Some(&note)).await?;
        }
        RouteAction::Triage { note } => {
            event(c, t.id, now, &system, EventKind::Routed, None, Some("triage"), Some(&note))
                .await?;
        }
        RouteAction::RequestIdentity { text, reason } => {
            if claim_key(c, t.id, "identity_request", now).await? {
                let route = resident_route(c, &t).await?;
                queue_outbound(
                    c,
                    t.id,
                    t.summary.channel,
                    route,
                    &text,
                    &system,
                    Purpose::IdentityRequest,
                    Some(&opts.auto_limits),
                    now,
                )
                .await?;
            }
            if from != Status::AwaitingIdentity {
                move_status(c, &t, Status::AwaitingIdentity, &system, now).await?;
            }
            pause_clocks(c, &t, &reason, &system, now).await?;
        }
        RouteAction::Wait => {}
    }
    super::incidents::after_route(c, &opts.incidents, t.id, now).await?;
    c.execute(finish, args![t.id, false]).await?;
    Ok(true)
}

pub(crate) async fn notify_once<D: Db>(
    c: &mut D,
    code: TicketCode,
    key: String,
    purpose: Purpose,
    recipients: Vec<Identity>,
    text: String,
    now: DateTime<Utc>,
) -> Result<bool> {
    let mails = recipients.into_iter().map(|to| (to, text.clone())).collect();
    notify_once_each(c, code, key, purpose, mails, now).await
}

async fn watched<D: Db>(c: &mut D, t: TicketRow) -> Result<WatchedTicket> {
    let rows = c
        .fetch_all(
            "SELECT id, text FROM messages WHERE ticket_id = $1 AND direction = 'in' \
             AND automated = $2 ORDER BY id",
            args![t.id, false],
        )
        .await?;
    let mut texts = Vec::with_capacity(rows.len());
    let mut last_message_id = 0;
    for r in rows {
        last_message_id = r.get("id")?;
        texts.push(r.get("text")?);
    }
    Ok(WatchedTicket {
        texts,
        last_message_id,
        reporter: reporter(c, t.reporter_id).await?,
        sent: sent_keys(c, t.id).await?,
        first_response_budget: t.first_response_budget,
        resolution_budget: t.resolution_budget,
        summary: t.summary,
    })
}

/// The tickets whose next alert is due (migration 0022): a walk of the `tickets_alert`
/// partial index up to now, earliest first. `alert_at` is '' (SQLite) or '-infinity'
/// (PostgreSQL) for a ticket whose clocks changed since the watcher last looked, so those
/// come first. `$1` is the limit, `$2` now.
fn deadline_scan_sql<D: Db>() -> String {
    format!(
        "{TICKET_SELECT} WHERE t.alert_at IS NOT NULL AND t.alert_at <= $2 \
         ORDER BY t.alert_at LIMIT $1"
    )
}

/// The tickets whose next alert is due at `now` (or whose clocks changed since the watcher
/// last looked), at most `limit`.
pub(crate) async fn deadline_scan<D: Db>(
    c: &mut D,
    limit: i64,
    now: DateTime<Utc>,
) -> Result<Vec<WatchedTicket>> {
    let sql = deadline_scan_sql::<D>();
    let rows = c.fetch_all(&sql, args![limit, now]).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        // Only what decides whether an alert is due; the texts wait for `watched_ticket`.
        let t = ticket_row(&row, now)?;
        out.push(WatchedTicket {
            texts: Vec::new(),
            last_message_id: 0,
            reporter: ReporterInfo::default(),
            sent: sent_keys(c, t.id).await?,
            first_response_budget: t.first_response_budget,
            resolution_budget: t.resolution_budget,
            summary: t.summary,
        });
    }
    Ok(out)
}

/// One ticket with everything a notification about it needs.
pub(crate) async fn watched_ticket<D: Db>(
    c: &mut D,
    code: TicketCode,
    now: DateTime<Utc>,
) -> Result<WatchedTicket> {
    let t = require_ticket(c, code, now).await?;
    watched(c, t).await
}

fn undisposed_sql() -> String {
    format!(
        "{TICKET_SELECT} WHERE t.dispose_pending = TRUE AND t.opd IS NOT NULL AND NOT EXISTS (SELECT 1 FROM notifications n WHERE n.ticket_id = t.id \
         AND n.key = 'disposition:' || t.opd) ORDER BY t.id LIMIT $1"
    )
}

/// Tickets disposed to an OPD whose officials have not been sent them yet: the few flagged
/// `dispose_pending` (partial index `tickets_dispose`), not every assigned ticket.
pub(crate) async fn undisposed<D: Db>(
    c: &mut D,
    limit: i64,
    now: DateTime<Utc>,
) -> Result<Vec<WatchedTicket>> {
    let sql = undisposed_sql();
    let rows = c.fetch_all(&sql, args![limit]).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        out.push(watched(c, ticket_row(&row, now)?).await?);
    }
    Ok(out)
}

/// Past dispositions by people (every operator assignment is a label): the resident's text
/// and the OPD, newest tickets first.
pub(crate) async fn training_examples<D: Db>(
    c: &mut D,
    limit: i64,
) -> Result<Vec<(String, String)>> {
    let dated = training_examples_dated(c, limit).await?;
    Ok(dated.into_iter().map(|(text, opd, _)| (text, opd)).collect())
}

pub(crate) async fn pause<D: Db>(
    c: &mut D,
    code: TicketCode,
    reason: String,
    actor: Actor,
    now: DateTime<Utc>,
) -> Result<()> {
    let t = require_ticket(c, code, now).await?;
    if !t.summary.status.is_open() {
        return Err(StoreError::Conflict(format!(
            "{code} is {}; nothing to pause",
            t.summary.status
        )));
    }
    if t.paused_at.is_some() {
        return Err(StoreError::Conflict(format!("{code} is paused already")));
    }
    if reason.trim().is_empty() {
        return Err(StoreError::Invalid("a pause needs a reason".into()));
    }
    pause_clocks(c, &t, &reason, &actor, now).await
}

pub(crate) async fn resume<D: Db>(
    c: &mut D,
    opts: &StoreOptions,
    code: TicketCode,
    actor: Actor,
    now: DateTime<Utc>,
) -> Result<()> {
    let t = require_ticket(c, code, now).await?;
    if t.paused_at.is_none() {
        return Err(StoreError::Conflict(format!("{code} is not paused")));
    }
    resume_clocks(c, opts, &t, &actor, now).await
}

/// The plans of the routing workers' scans (the benchmark prints them).
pub(crate) async fn explain_workers<D: Db>(
    c: &mut D,
    now: DateTime<Utc>,
) -> Result<Vec<(&'static str, Vec<String>)>> {
    let mut out = Vec::new();
    for (name, sql, params) in worker_scans::<D>(now) {
        out.push((name, explain(c, &sql, params).await?));
    }
    Ok(out)
}

impl Store {
    /// The plans of the routing worker's and deadline watcher's scans (`route_claim`,
    /// `undisposed`, `deadline_scan`), by name: `cargo xtask bench` prints them.
    pub async fn explain_worker_scans(&self) -> Result<Vec<(&'static str, Vec<String>)>> {
        let now = now();
        read!(self, |c| explain_workers(c, now))
    }

    /// Claims up to `limit` tickets the router has to look at, for `lease`. Several
    /// workers may claim at once (PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite: one
    /// writer); a claim not finished by [`Store::route_done`] expires with its lease.
    pub async fn route_claim(
        &self,
        limit: i64,
        lease: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<RouteJob>> {
        let now = truncate_ms(now);
        let ids = write!(self, |c| route_claim(c, limit, lease, now))?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        read!(self, |c| route_jobs(c, ids, now))
    }

    /// Records the router's decision; `false` when an operator acted on the ticket first.
    pub async fn route_done(
        &self,
        code: TicketCode,
        result: RouteResult,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let opts = self.inner.opts.clone();
        let now = truncate_ms(now);
        write!(self, |c| route_done(c, &opts, code, result, now))
    }

    /// Queues one notification (a message per recipient, on email or SMS) unless one with
    /// the same key was queued for the ticket before. `true` when it was queued now.
    pub async fn notify_once(
        &self,
        code: TicketCode,
        key: String,
        purpose: aduan_core::Purpose,
        recipients: Vec<aduan_core::Identity>,
        text: String,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let text = clean(text);
        let now = truncate_ms(now);
        write!(self, |c| notify_once(c, code, key, purpose, recipients, text, now))
    }

    /// The tickets whose next alert is due at `now`, or whose clocks changed since the
    /// watcher last looked (migration 0022); the watcher answers with
    /// [`Store::alert_reschedule`].
    pub async fn deadline_scan(
        &self,
        limit: i64,
        now: DateTime<Utc>,
    ) -> Result<Vec<WatchedTicket>> {
        let now = truncate_ms(now);
        read!(self, |c| deadline_scan(c, limit, now))
    }

    /// One ticket with the resident's texts and the reporter, for a notification about it.
    pub async fn watched_ticket(
        &self,
        code: TicketCode,
        now: DateTime<Utc>,
    ) -> Result<WatchedTicket> {
        let now = truncate_ms(now);
        read!(self, |c| watched_ticket(c, code, now))
    }

    /// Tickets disposed to an OPD whose officials were not sent them yet.
    pub async fn undisposed(&self, limit: i64, now: DateTime<Utc>) -> Result<Vec<WatchedTicket>> {
        let now = truncate_ms(now);
        read!(self, |c| undisposed(c, limit, now))
    }

    /// `(text, opd)` of the latest `limit` tickets disposed by people.
    pub async fn training_examples(&self, limit: i64) -> Result<Vec<(String, String)>> {
        read!(self, |c| training_examples(c, limit))
    }

    /// Stops a ticket's clocks while it waits for the resident.
    pub async fn pause(&self, code: TicketCode, reason: String, actor: Actor) -> Result<()> {
        let reason = clean(reason);
        let now = now();
        write!(self, |c| pause(c, code, reason, actor, now))
    }

    /// Starts the clocks again; the deadlines move by the time paused.
    pub async fn resume(&self, code: TicketCode, actor: Actor) -> Result<()> {
        let opts = self.inner.opts.clone();
        let now = now();
        write!(self, |c| resume(c, &opts, code, actor, now))
    }
}

// --- confirm: closing tickets nobody confirmed in time ---

/// Closes up to `limit` resolved tickets whose confirmation deadline passed without an
/// answer (issue 17 item 4): the confirmation becomes `expired`, the ticket `closed`, with a
/// `confirmation`/`expired` and a status event by the system. No message goes to the
/// resident (the question told them silence closes it). A pending confirmation whose ticket
/// is no longer `resolved` (an operator reopened or closed it) is marked `superseded`.
/// Returns the closed tickets.
pub(crate) async fn expire_confirmations<D: Db>(
    c: &mut D,
    limit: i64,
    now: DateTime<Utc>,
) -> Result<Vec<TicketCode>> {
    let rows = c
        .fetch_all(
            "SELECT k.id, k.ticket_id, t.code, t.status FROM confirmations k \
             JOIN tickets t ON t.id = k.ticket_id \
             WHERE k.outcome IS NULL AND k.due_at < $1 ORDER BY k.due_at LIMIT $2",
            args![now, limit],
        )
        .await?;
    let mut closed = Vec::new();
    for r in rows {
        let (id, ticket_id): (i64, i64) = (r.get("id")?, r.get("ticket_id")?);
        let code: TicketCode = super::common::parse(&r.get::<String>("code")?, "ticket code")?;
        super::common::lock_tickets(c, &[code]).await?;
        let status: Option<String> = c
            .fetch_optional_scalar("SELECT status FROM tickets WHERE id = $1", args![ticket_id])
            .await?;
        // Claimed by outcome: of two watchers, one changes the row, the other skips it.
        let outcome = if status.as_deref() == Some("resolved") { "expired" } else { "superseded" };
        let changed: Option<i64> = c
            .fetch_optional_scalar(
                "UPDATE confirmations SET outcome = $2 WHERE id = $1 AND outcome IS NULL \
                 RETURNING id",
                args![id, outcome],
            )
            .await?;
        if changed.is_none() || outcome == "superseded" {
            continue;
        }
        c.execute(
            "UPDATE tickets SET status = 'closed', updated_at = $2 WHERE id = $1",
            args![ticket_id, now],
        )
        .await?;
        c.execute(REFRESH_DISPOSE_PENDING, args![ticket_id]).await?;
        let system = &Actor::System;
        event(c, ticket_id, now, system, EventKind::Confirmation, None, Some("expired"), None)
            .await?;
        status_event(
            c,
            ticket_id,
            now,
            system,
            (Status::Resolved, Status::Closed),
            Some("tanpa konfirmasi pelapor"),
        )
        .await?;
        closed.push(code);
    }
    Ok(closed)
}

impl Store {
    /// Closes resolved tickets whose resident did not confirm by the deadline (at most
    /// `limit`); the deadline watcher calls it on every pass.
    pub async fn expire_confirmations(
        &self,
        limit: i64,
        now: DateTime<Utc>,
    ) -> Result<Vec<TicketCode>> {
        let now = truncate_ms(now);
        write!(self, |c| expire_confirmations(c, limit, now))
    }
}

// --- search: the deadline watcher's index ---

/// When the watcher must next look at a ticket, decided from the clocks it saw: the CAS
/// fields are the ticket's clock state at the scan; if any changed since, the write is
/// skipped (the change already asked for another look).
#[derive(Debug, Clone, PartialEq)]
pub struct AlertSchedule {
    pub code: TicketCode,
    pub status: Status,
    pub paused: bool,
    pub first_responded_at: Option<DateTime<Utc>>,
    pub first_response_due_at: DateTime<Utc>,
    pub resolution_due_at: Option<DateTime<Utc>>,
    /// The next warning or escalation; `None`: none can fall due unless the clocks change.
    pub next: Option<DateTime<Utc>>,
}

impl AlertSchedule {
    /// The schedule `next` for the ticket as `t` shows it.
    pub fn of(t: &TicketSummary, next: Option<DateTime<Utc>>) -> AlertSchedule {
        AlertSchedule {
            code: t.code,
            status: t.status,
            paused: t.paused,
            first_responded_at: t.first_responded_at,
            first_response_due_at: t.first_response_due_at,
            resolution_due_at: t.resolution_due_at,
            next,
        }
    }
}

/// Tickets per write of [`Store::alert_reschedule`] (~8 µs each on the SQLite writer).
pub(crate) const ALERT_RESCHEDULE_CHUNK: usize = 64;

/// Writes each ticket's next alert time unless its clocks changed since the scan; returns
/// how many were written.
pub(crate) async fn alert_reschedule<D: Db>(c: &mut D, items: Vec<AlertSchedule>) -> Result<u64> {
    let mut written = 0;
    for a in items {
        written += c
            .execute(
                "UPDATE tickets SET alert_at = $2 WHERE code = $1 AND alert_at IS NOT NULL \
                 AND status = $3 AND (paused_at IS NOT NULL) = $4 \
                 AND first_response_due_at = $5 \
                 AND (first_responded_at = $6 OR (first_responded_at IS NULL AND $6 IS NULL)) \
                 AND (resolution_due_at = $7 OR (resolution_due_at IS NULL AND $7 IS NULL))",
                args![
                    a.code.to_string(),
                    a.next.map(truncate_ms),
                    a.status.as_str(),
                    a.paused,
                    a.first_response_due_at,
                    a.first_responded_at,
                    a.resolution_due_at
                ],
            )
            .await?;
    }
    Ok(written)
}

impl Store {
    /// Records when the watcher must next look at each ticket it just looked at (see
    /// [`AlertSchedule`]), in writes of at most `ALERT_RESCHEDULE_CHUNK` (64) tickets: each
    /// item is guarded by the clock state it was computed from, so the items need no common
    /// transaction, and a round's thousand updates (~8 ms on the SQLite writer) no longer
    /// hold every intake write queued behind them (issue 22 item 3).
    pub async fn alert_reschedule(&self, mut items: Vec<AlertSchedule>) -> Result<u64> {
        let mut written = 0;
        while !items.is_empty() {
            let rest = items.split_off(items.len().min(ALERT_RESCHEDULE_CHUNK));
            let chunk = std::mem::replace(&mut items, rest);
            written += write!(self, |c| alert_reschedule(c, chunk))?;
        }
        Ok(written)
    }
}

// --- officials: per-recipient notifications and the daily digest (issue 19 item 5) ---

/// One mail per recipient, each with its own text (the officials' action links are signed
/// for the official they go to).
pub type PersonalMails = Vec<(Identity, String)>;

async fn queue_personal<D: Db>(
    c: &mut D,
    t: &TicketRow,
    purpose: Purpose,
    mails: &PersonalMails,
    now: DateTime<Utc>,
) -> Result<()> {
    for (to, text) in mails {
        let channel = match to.kind {
            aduan_core::IdentityKind::Email => Channel::Email,
            aduan_core::IdentityKind::Phone => Channel::Sms,
            _ => {
                return Err(StoreError::Invalid(format!(
                    "notifications go to email or phone, not {}",
                    to.kind
                )));
            }
        };
        let route = ReplyRoute::Send { channel, to: to.clone() };
        let (system, text) = (&Actor::System, clean(text.clone()));
        queue_outbound(c, t.id, t.summary.channel, route, &text, system, purpose, None, now)
            .await?;
    }
    Ok(())
}

/// [`notify_once`] with a text of its own for each recipient.
pub(crate) async fn notify_once_each<D: Db>(
    c: &mut D,
    code: TicketCode,
    key: String,
    purpose: Purpose,
    mails: PersonalMails,
    now: DateTime<Utc>,
) -> Result<bool> {
    let t = require_ticket(c, code, now).await?;
    let claimed = claim_key(c, t.id, &key, now).await?;
    if key.starts_with("disposition:") {
        c.execute(REFRESH_DISPOSE_PENDING, args![t.id]).await?;
    }
    if !claimed {
        return Ok(false);
    }
    // One mail per incident, as in `notify_once` (issue 20).
    if key.starts_with("disposition:") && super::incidents::disposition_done(c, t.id, &key).await? {
        let note = "incident notified already";
        event(c, t.id, now, &Actor::System, EventKind::Notified, None, Some(&key), Some(note))
            .await?;
        return Ok(false);
    }
    let mails = match super::incidents::incident_note(c, t.id).await? {
        Some(n) => mails.into_iter().map(|(to, text)| (to, format!("{text}\n\n{n}"))).collect(),
        None => mails,
    };
    queue_personal(c, &t, purpose, &mails, now).await?;
    let note = format!("{} recipient(s)", mails.len());
    event(c, t.id, now, &Actor::System, EventKind::Notified, None, Some(&key), Some(&note)).await?;
    Ok(true)
}

/// An open ticket of an OPD, for its daily digest.
#[derive(Debug, Clone, PartialEq)]
pub struct DigestTicket {
    pub summary: TicketSummary,
    /// When the OPD's officials were sent it (its `disposition:<opd>` notification).
    pub disposed_at: Option<DateTime<Utc>>,
}

/// The OPD's tickets still with it (`assigned`, `in_progress`), oldest first, at most
/// `limit`.
pub(crate) async fn digest_tickets<D: Db>(
    c: &mut D,
    opd: &str,
    limit: i64,
    now: DateTime<Utc>,
) -> Result<Vec<DigestTicket>> {
    let sql = format!(
        "{TICKET_SELECT} WHERE t.opd = $1 AND t.status IN ('assigned', 'in_progress') \
         AND t.merged_into IS NULL ORDER BY t.id LIMIT $2"
    );
    let rows = c.fetch_all(&sql, args![opd, limit]).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let t = ticket_row(&row, now)?;
        let disposed_at: Option<DateTime<Utc>> = c
            .fetch_optional_scalar(
                "SELECT created_at FROM notifications WHERE ticket_id = $1 AND key = $2",
                args![t.id, format!("disposition:{opd}")],
            )
            .await?;
        out.push(DigestTicket { summary: t.summary, disposed_at });
    }
    Ok(out)
}

/// When the OPD's last digest before `day` (`YYYY-MM-DD`, local) was sent.
pub(crate) async fn last_digest<D: Db>(
    c: &mut D,
    opd: &str,
    day: &str,
) -> Result<Option<DateTime<Utc>>> {
    let rows = c
        .fetch_all(
            "SELECT claimed_at FROM digests WHERE opd = $1 AND day < $2 ORDER BY day DESC LIMIT 1",
            args![opd, day],
        )
        .await?;
    rows.first().map(|r| r.get("claimed_at")).transpose()
}

/// Claims the OPD's digest of `day` and queues its mails on the anchor ticket (the first it
/// lists) in one transaction: `false`, nothing queued, when an instance claimed that day
/// before (`digests` is keyed on `(opd, day)`; the outbox key `digest:<opd>:<day>` on the
/// anchor is a second guard).
pub(crate) async fn digest_once<D: Db>(
    c: &mut D,
    opd: &str,
    day: &str,
    anchor: TicketCode,
    mails: PersonalMails,
    now: DateTime<Utc>,
) -> Result<bool> {
    let claimed: Option<String> = c
        .fetch_optional_scalar(
            "INSERT INTO digests (opd, day, claimed_at) VALUES ($1, $2, $3) \
             ON CONFLICT (opd, day) DO NOTHING RETURNING opd",
            args![opd, day, now],
        )
        .await?;
    if claimed.is_none() {
        return Ok(false);
    }
    let t = require_ticket(c, anchor, now).await?;
    let key = format!("digest:{opd}:{day}");
    if !claim_key(c, t.id, &key, now).await? {
        return Ok(false);
    }
    queue_personal(c, &t, Purpose::Digest, &mails, now).await?;
    let note = format!("{} recipient(s)", mails.len());
    event(c, t.id, now, &Actor::System, EventKind::Notified, None, Some(&key), Some(&note)).await?;
    Ok(true)
}

impl Store {
    /// Queues one notification with a text per recipient unless one with the same key was
    /// queued for the ticket before ([`Store::notify_once`] with personal texts).
    pub async fn notify_once_each(
        &self,
        code: TicketCode,
        key: String,
        purpose: Purpose,
        mails: PersonalMails,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let now = truncate_ms(now);
        write!(self, |c| notify_once_each(c, code, key, purpose, mails, now))
    }

    /// The OPD's open tickets for its digest (at most `limit`).
    pub async fn digest_tickets(
        &self,
        opd: String,
        limit: i64,
        now: DateTime<Utc>,
    ) -> Result<Vec<DigestTicket>> {
        let now = truncate_ms(now);
        read!(self, |c| async move { digest_tickets(c, &opd, limit, now).await })
    }

    /// When the OPD's previous digest (before local day `day`, `YYYY-MM-DD`) was claimed.
    pub async fn last_digest(&self, opd: String, day: String) -> Result<Option<DateTime<Utc>>> {
        read!(self, |c| async move { last_digest(c, &opd, &day).await })
    }

    /// Claims and queues the OPD's digest of `day` once across instances
    /// ([`digest_once`]); `true` when this call queued it.
    pub async fn digest_once(
        &self,
        opd: String,
        day: String,
        anchor: TicketCode,
        mails: PersonalMails,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let now = truncate_ms(now);
        write!(self, |c| digest_once(c, &opd, &day, anchor, mails, now))
    }
}

// --- model: routing history and stored models (issue 18 item 3) ---

/// A learned-router model as stored by `aduan routing train` or the worker.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredModel {
    /// Grows with every model stored: the newest model has the largest id.
    pub id: i64,
    /// The serialised model's own format version.
    pub format: i64,
    pub examples: i64,
    pub labels: i64,
    pub bytes: Vec<u8>,
    pub trained_at: DateTime<Utc>,
}

fn history_hash(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

/// Inserts `(text, opd)` rows not stored yet; returns how many were new.
pub(crate) async fn routing_history_import<D: Db>(
    c: &mut D,
    rows: Vec<(String, String)>,
    source: Option<String>,
    now: DateTime<Utc>,
) -> Result<u64> {
    let mut added = 0;
    for (text, opd) in rows {
        added += c
            .execute(
                "INSERT INTO routing_history (text_hash, text, opd, source, imported_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (text_hash, opd) DO NOTHING",
                args![history_hash(&text), text, opd, source.clone(), now],
            )
            .await?;
    }
    Ok(added)
}

/// `(text, opd)` of the imported history, oldest first, at most `limit` (the newest).
pub(crate) async fn routing_history<D: Db>(c: &mut D, limit: i64) -> Result<Vec<(String, String)>> {
    let rows = c
        .fetch_all(
            "SELECT text, opd FROM (SELECT id, text, opd FROM routing_history \
             ORDER BY id DESC LIMIT $1) h ORDER BY id",
            args![limit],
        )
        .await?;
    rows.iter().map(|r| Ok((r.get("text")?, r.get("opd")?))).collect()
}

/// `(text, opd, when the ticket came in)` of the latest `limit` tickets disposed by
/// people ([`training_examples`] without the time): each ticket's inbound texts joined by
/// newlines.
pub(crate) async fn training_examples_dated<D: Db>(
    c: &mut D,
    limit: i64,
) -> Result<Vec<(String, String, DateTime<Utc>)>> {
    let rows = c
        .fetch_all(
            "SELECT t.id, t.opd, t.created_at, m.text FROM tickets t \
             JOIN messages m ON m.ticket_id = t.id \
             WHERE t.id IN (SELECT t2.id FROM tickets t2 WHERE t2.opd IS NOT NULL AND EXISTS \
             (SELECT 1 FROM events e WHERE e.ticket_id = t2.id AND e.kind = 'assigned' \
             AND e.actor <> 'system') ORDER BY t2.id DESC LIMIT $1) \
             AND m.direction = 'in' AND m.automated = $2 ORDER BY t.id, m.id",
            args![limit, false],
        )
        .await?;
    let mut out: Vec<(i64, String, String, DateTime<Utc>)> = Vec::new();
    for r in rows {
        let id: i64 = r.get("id")?;
        let text: String = r.get("text")?;
        match out.last_mut() {
            Some((last, _, t, _)) if *last == id => {
                t.push('\n');
                t.push_str(&text);
            }
            _ => out.push((id, r.get("opd")?, text, r.get("created_at")?)),
        }
    }
    Ok(out.into_iter().map(|(_, opd, text, at)| (text, opd, at)).collect())
}

pub(crate) async fn routing_model_save<D: Db>(
    c: &mut D,
    format: i64,
    examples: i64,
    labels: i64,
    model: String,
    now: DateTime<Utc>,
) -> Result<i64> {
    c.fetch_one_scalar(
        "INSERT INTO routing_models (format, examples, labels, model, trained_at) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
        args![format, examples, labels, model, now],
    )
    .await
}

pub(crate) async fn routing_model_latest_id<D: Db>(c: &mut D) -> Result<Option<i64>> {
    c.fetch_optional_scalar("SELECT id FROM routing_models ORDER BY id DESC LIMIT 1", args![]).await
}

pub(crate) async fn routing_model_latest<D: Db>(c: &mut D) -> Result<Option<StoredModel>> {
    let rows = c
        .fetch_all(
            "SELECT id, format, examples, labels, model, trained_at FROM routing_models \
             ORDER BY id DESC LIMIT 1",
            args![],
        )
        .await?;
    let Some(r) = rows.first() else { return Ok(None) };
    use base64::Engine;
    let text: String = r.get("model")?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.as_bytes())
        .map_err(|e| StoreError::Internal(format!("stored routing model: {e}")))?;
    Ok(Some(StoredModel {
        id: r.get("id")?,
        format: r.get("format")?,
        examples: r.get("examples")?,
        labels: r.get("labels")?,
        bytes,
        trained_at: r.get("trained_at")?,
    }))
}

impl Store {
    /// Stores past complaints with their OPD code (`aduan routing import`); rows already
    /// stored (same text, same OPD) are skipped. Returns how many were new.
    pub async fn routing_history_import(
        &self,
        rows: Vec<(String, String)>,
        source: Option<String>,
    ) -> Result<u64> {
        let rows: Vec<(String, String)> =
            rows.into_iter().map(|(t, o)| (clean(t), clean(o))).collect();
        let source = source.map(clean);
        let now = now();
        write!(self, |c| routing_history_import(c, rows, source, now))
    }

    /// The imported history, oldest first (the newest `limit` rows).
    pub async fn routing_history(&self, limit: i64) -> Result<Vec<(String, String)>> {
        read!(self, |c| routing_history(c, limit))
    }

    /// As [`Store::training_examples`], with when each ticket came in.
    pub async fn training_examples_dated(
        &self,
        limit: i64,
    ) -> Result<Vec<(String, String, DateTime<Utc>)>> {
        read!(self, |c| training_examples_dated(c, limit))
    }

    /// Stores a fitted model; returns its id (larger than every earlier one).
    pub async fn routing_model_save(
        &self,
        format: i64,
        examples: i64,
        labels: i64,
        bytes: &[u8],
    ) -> Result<i64> {
        use base64::Engine;
        let model = base64::engine::general_purpose::STANDARD.encode(bytes);
        let now = now();
        write!(self, |c| routing_model_save(c, format, examples, labels, model, now))
    }

    /// The id of the newest stored model (cheap: the worker polls it).
    pub async fn routing_model_latest_id(&self) -> Result<Option<i64>> {
        read!(self, |c| routing_model_latest_id(c))
    }

    /// The newest stored model.
    pub async fn routing_model_latest(&self) -> Result<Option<StoredModel>> {
        read!(self, |c| routing_model_latest(c))
    }
}

// --- follow-ups: what the resident says after the disposition reaches the OPD ---

/// A ticket with an OPD whose resident wrote again ([`Store::follow_ups`]).
#[derive(Debug, Clone)]
pub struct FollowUp {
    pub ticket: WatchedTicket,
    /// The resident's messages its officials were not sent yet, oldest first: those after
    /// the last `followup:<id>` key (a disposition records the newest message it carried
    /// as one). Empty when the disposition to the ticket's OPD is still owed: it will carry
    /// them.
    pub texts: Vec<String>,
}

/// The key of the follow-up relaying the resident's messages up to `upto`.
fn follow_up_key(upto: i64) -> String {
    format!("followup:{upto}")
}

pub(crate) async fn follow_ups<D: Db>(
    c: &mut D,
    limit: i64,
    now: DateTime<Utc>,
) -> Result<Vec<FollowUp>> {
    let sql = format!("{TICKET_SELECT} WHERE t.follow_up_pending = TRUE ORDER BY t.id LIMIT $1");
    let rows = c.fetch_all(&sql, args![limit]).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let t = watched(c, ticket_row(&row, now)?).await?;
        let id: i64 = row.get("id")?;
        // The newest message looked at: `follow_up_sent` clears the flag only when
        // nothing newer arrived since.
        let upto = t.last_message_id;
        let disposed = match &t.summary.opd {
            Some(opd) => t.sent.iter().any(|k| k.strip_prefix("disposition:") == Some(opd)),
            None => false,
        };
        let relayed = (t.sent.iter())
            .filter_map(|k| k.strip_prefix("followup:")?.parse::<i64>().ok())
            .max()
            .unwrap_or(0);
        let texts = if disposed && relayed < upto {
            c.fetch_all_scalar(
                "SELECT text FROM messages WHERE ticket_id = $1 AND direction = 'in' \
                 AND automated = $2 AND id > $3 AND id <= $4 ORDER BY id",
                args![id, false, relayed, upto],
            )
            .await?
        } else {
            Vec::new()
        };
        out.push(FollowUp { ticket: t, texts });
    }
    Ok(out)
}

/// Queues the follow-up `mails` (none: nothing to relay) once per `upto`, and clears the
/// ticket's flag unless the resident wrote again after `upto`. On PostgreSQL the ticket
/// row is locked first, so the check sees a message whose intake (which updates that row)
/// committed meanwhile.
pub(crate) async fn follow_up_sent<D: Db>(
    c: &mut D,
    code: TicketCode,
    upto: i64,
    mails: PersonalMails,
    now: DateTime<Utc>,
) -> Result<bool> {
    let t = super::common::lock_ticket(c, code, now).await?;
    let queued = if mails.is_empty() {
        false
    } else {
        notify_once_each(c, code, follow_up_key(upto), Purpose::FollowUp, mails, now).await?
    };
    c.execute(
        "UPDATE tickets SET follow_up_pending = $3 WHERE id = $1 AND NOT EXISTS \
         (SELECT 1 FROM messages m WHERE m.ticket_id = $1 AND m.direction = 'in' \
         AND m.automated = $3 AND m.id > $2)",
        args![t.id, upto, false],
    )
    .await?;
    Ok(queued)
}

/// The disposition of `code` ([`notify_once_each`] with its `disposition:<opd>` key),
/// recording in the same transaction that its officials have read the resident's messages
/// up to `upto`, so a later follow-up relays only what is newer.
pub(crate) async fn notify_disposition<D: Db>(
    c: &mut D,
    code: TicketCode,
    key: String,
    mails: PersonalMails,
    upto: i64,
    now: DateTime<Utc>,
) -> Result<bool> {
    let queued = notify_once_each(c, code, key, Purpose::Disposition, mails, now).await?;
    if queued {
        let t = require_ticket(c, code, now).await?;
        claim_key(c, t.id, &follow_up_key(upto), now).await?;
    }
    Ok(queued)
}

impl Store {
    /// A disposition ([`Store::notify_once_each`]) that also records the newest resident
    /// message it carried (`upto`, [`WatchedTicket::last_message_id`]).
    pub async fn notify_disposition(
        &self,
        code: TicketCode,
        key: String,
        mails: PersonalMails,
        upto: i64,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let now = truncate_ms(now);
        write!(self, |c| notify_disposition(c, code, key, mails, upto, now))
    }

    /// Tickets with an OPD whose resident wrote again since it was sent them (flagged at
    /// intake, migration 0029), with the messages to relay; at most `limit`.
    pub async fn follow_ups(&self, limit: i64, now: DateTime<Utc>) -> Result<Vec<FollowUp>> {
        read!(self, |c| follow_ups(c, limit, now))
    }

    /// Queues a follow-up to the OPD's officials (once per ticket and `upto`; `mails`
    /// empty: nothing to relay) and clears the ticket's flag unless a newer message
    /// arrived. `true` when mails were queued now.
    pub async fn follow_up_sent(
        &self,
        code: TicketCode,
        upto: i64,
        mails: PersonalMails,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let now = truncate_ms(now);
        write!(self, |c| follow_up_sent(c, code, upto, mails, now))
    }
}

// --- intake: the watcher's and the router's writes keep the SQLite writer's jobs short ---

#[cfg(test)]
mod intake_tests {
    use super::*;

    #[tokio::test]
    async fn a_long_reschedule_is_written_in_short_writes() {
        // 150 items: three writes of at most 64, not one long job that every intake write
        // queued behind it waits for.
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Store::open(&url, StoreOptions::default()).await.unwrap();
        store.migrate().await.unwrap();
        let items: Vec<AlertSchedule> = (0..150u8)
            .map(|i| AlertSchedule {
                code: TicketCode::from_entropy([i, 1, 2, 3, 4]),
                status: Status::New,
                paused: false,
                first_responded_at: None,
                first_response_due_at: Utc::now(),
                resolution_due_at: None,
                next: None,
            })
            .collect();
        let crate::Backend::Sqlite(sqlite) = &store.inner.backend else {
            panic!("a SQLite store");
        };
        let before = sqlite.writes();
        // Unknown tickets: nothing is written, but each chunk is one write.
        assert_eq!(store.alert_reschedule(items).await.unwrap(), 0);
        assert_eq!(sqlite.writes() - before, 3);
        store.close().await;
    }
}
