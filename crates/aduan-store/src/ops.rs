//! Every query of the store, written once and compiled for each backend by `backend_ops!`.
//!
//! The SQL is the common dialect of SQLite and PostgreSQL (`$n` parameters, `RETURNING`,
//! `ON CONFLICT`); the few differences are switched on `IS_PG`. Each function takes a
//! connection that is already inside a transaction (writes) or a pooled one (reads).

use std::collections::HashMap;

use aduan_core::{
    Actor, AttachmentRef, Budget, Channel, Direction, EventKind, Identity, InboundMessage,
    Location, Measure, OutboxState, Purpose, ReplyRoute, Sender, SenderFacts, Status,
    ThreadCandidate, ThreadDecision, TicketCode, ack_text, choose_reply_route, decide_thread,
    status_query, status_text,
};
use chrono::{DateTime, Duration, Utc};

use crate::db::{Db, Row, Value, args};
use crate::types::*;
use crate::{AutoLimits, Result, StoreError, StoreOptions, truncate_ms};

/// The ticket columns every ticket query selects, with the code of the ticket it was merged
/// into.
macro_rules! ticket_select {
    ($($rest:literal)*) => {
        concat!(
            "SELECT t.id, t.code, t.status, t.channel, t.reporter_id, t.opd, t.category, ",
            "t.lat, t.lon, mt.code AS merged_code, t.created_at, t.updated_at, ",
            "t.last_message_at, t.first_response_due_at, t.first_responded_at, t.resolved_at, ",
            "t.place, t.kecamatan, t.resolution_due_at, t.paused_at, t.suggestions, ",
            "t.first_response_budget, t.resolution_budget ",
            "FROM tickets t LEFT JOIN tickets mt ON mt.id = t.merged_into ",
            $($rest),*
        )
    };
}

/// Every ticket column, for queries that add their own `WHERE`.
pub(crate) const TICKET_SELECT: &str = ticket_select!();

/// [`TICKET_SELECT`] that walks the `tickets_open` partial index (SQLite only; the query
/// must repeat the index's condition, as [`overdue_sql!`] does).
pub(crate) static OPEN_SELECT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    TICKET_SELECT.replace("FROM tickets t ", "FROM tickets t INDEXED BY tickets_open ")
});

/// Recomputes `tickets.dispose_pending` (migration 0009) of ticket `$1`: whether it is
/// assigned or in progress and its OPD was not sent it yet. Every statement that changes a
/// ticket's status or OPD, and every disposition notification, runs it, so the deadline
/// watcher finds the tickets it owes a disposition in a small partial index.
pub(crate) const REFRESH_DISPOSE_PENDING: &str = "UPDATE tickets SET dispose_pending = \
     (status IN ('assigned', 'in_progress') AND opd IS NOT NULL AND NOT EXISTS \
     (SELECT 1 FROM notifications n WHERE n.ticket_id = tickets.id \
     AND n.key = 'disposition:' || tickets.opd)) WHERE id = $1";

/// A ticket past a running deadline: open, not paused, and either unanswered past its
/// first-response deadline or unresolved past its resolution deadline. `$1` is now.
macro_rules! overdue_sql {
    () => {
        "(t.status IN ('new', 'awaiting_identity', 'assigned', 'in_progress') \
         AND t.paused_at IS NULL AND ((t.first_responded_at IS NULL AND t.first_response_due_at < $1) \
         OR (t.resolution_due_at IS NOT NULL AND t.resolution_due_at < $1)))"
    };
}

pub(crate) fn parse<T: std::str::FromStr>(value: &str, what: &str) -> Result<T> {
    value.parse().map_err(|_| StoreError::Internal(format!("stored {what} {value:?} is not valid")))
}

fn location(lat: Option<f64>, lon: Option<f64>) -> Option<Location> {
    Some(Location { lat: lat?, lon: lon? })
}

/// Escapes `%`, `_` and `\` for a `LIKE … ESCAPE '\'` pattern.
fn like_pattern(q: &str) -> String {
    let mut p = String::with_capacity(q.len() + 2);
    p.push('%');
    for ch in q.to_lowercase().chars() {
        if matches!(ch, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(ch);
    }
    p.push('%');
    p
}

/// A ticket as loaded for a decision.
pub(crate) struct TicketRow {
    pub(crate) id: i64,
    pub(crate) reporter_id: Option<i64>,
    pub(crate) last_message_at: DateTime<Utc>,
    pub(crate) paused_at: Option<DateTime<Utc>>,
    pub(crate) first_response_budget: Option<Budget>,
    pub(crate) resolution_budget: Option<Budget>,
    pub(crate) summary: TicketSummary,
}

impl TicketRow {
    fn candidate(&self) -> ThreadCandidate {
        ThreadCandidate {
            id: self.id,
            code: self.summary.code,
            status: self.summary.status,
            has_opd: self.summary.opd.is_some(),
            last_message_at: self.last_message_at,
        }
    }
}

pub(crate) async fn ping<D: Db>(c: &mut D) -> Result<()> {
    let one: i64 = c.fetch_one_scalar("SELECT 1", args![]).await?;
    if one == 1 { Ok(()) } else { Err(StoreError::Internal("SELECT 1 did not answer 1".into())) }
}

pub(crate) fn ticket_row(row: &Row, now: DateTime<Utc>) -> Result<TicketRow> {
    let status: Status = parse(&row.get::<String>("status")?, "status")?;
    let first_responded_at: Option<DateTime<Utc>> = row.get("first_responded_at")?;
    let due: DateTime<Utc> = row.get("first_response_due_at")?;
    let merged: Option<String> = row.get("merged_code")?;
    let paused_at: Option<DateTime<Utc>> = row.get("paused_at")?;
    let resolution_due_at: Option<DateTime<Utc>> = row.get("resolution_due_at")?;
    let overdue = status.is_open()
        && paused_at.is_none()
        && ((first_responded_at.is_none() && due < now)
            || resolution_due_at.is_some_and(|r| r < now));
    let budget = |col: &str| -> Result<Option<Budget>> {
        Ok(row.get::<Option<String>>(col)?.and_then(|b| b.parse().ok()))
    };
    let suggestions: Option<String> = row.get("suggestions")?;
    Ok(TicketRow {
        id: row.get("id")?,
        reporter_id: row.get("reporter_id")?,
        last_message_at: row.get("last_message_at")?,
        paused_at,
        first_response_budget: budget("first_response_budget")?,
        resolution_budget: budget("resolution_budget")?,
        summary: TicketSummary {
            code: parse(&row.get::<String>("code")?, "ticket code")?,
            status,
            channel: parse(&row.get::<String>("channel")?, "channel")?,
            opd: row.get("opd")?,
            category: row.get("category")?,
            created_at: row.get("created_at")?,
            updated_at: row.get("updated_at")?,
            first_response_due_at: due,
            first_responded_at,
            resolved_at: row.get("resolved_at")?,
            overdue,
            location: location(row.get("lat")?, row.get("lon")?),
            merged_into: merged.map(|m| parse(&m, "ticket code")).transpose()?,
            place: row.get("place")?,
            kecamatan: row.get("kecamatan")?,
            resolution_due_at,
            paused: paused_at.is_some(),
            suggestions: suggestions.and_then(|s| serde_json::from_str(&s).ok()),
        },
    })
}

pub(crate) async fn load_ticket<D: Db>(
    c: &mut D,
    code: TicketCode,
    now: DateTime<Utc>,
) -> Result<Option<TicketRow>> {
    let row =
        c.fetch_optional(ticket_select!("WHERE t.code = $1"), args![code.to_string()]).await?;
    row.map(|r| ticket_row(&r, now)).transpose()
}

pub(crate) async fn require_ticket<D: Db>(
    c: &mut D,
    code: TicketCode,
    now: DateTime<Utc>,
) -> Result<TicketRow> {
    load_ticket(c, code, now).await?.ok_or(StoreError::TicketNotFound(code))
}

/// Locks the rows of the tickets `codes` until the transaction ends, in id order, before
/// anything about them is read for a decision (PostgreSQL, `SELECT … FOR UPDATE`): two
/// operators acting at once (opposite merges, conflicting status changes) are serialised,
/// and the second sees the first's outcome and is refused (409) instead of overwriting it.
/// The id order is the same for every caller, so two writers locking the same pair never
/// wait for each other in a cycle. SQLite needs nothing: its one writer thread already runs
/// the writes one after the other.
pub(crate) async fn lock_tickets<D: Db>(c: &mut D, codes: &[TicketCode]) -> Result<()> {
    if !D::IS_PG || codes.is_empty() {
        return Ok(());
    }
    let placeholders: Vec<String> = (1..=codes.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT id FROM tickets WHERE code IN ({}) ORDER BY id FOR UPDATE",
        placeholders.join(", ")
    );
    let params = codes.iter().map(|c| Value::from(c.to_string())).collect();
    c.fetch_all_scalar::<i64>(&sql, params).await?;
    Ok(())
}

/// Follows `merged_into` to the ticket that lives on (at most a few hops).
async fn follow_merges<D: Db>(
    c: &mut D,
    mut t: TicketRow,
    now: DateTime<Utc>,
) -> Result<TicketRow> {
    for _ in 0..8 {
        match t.summary.merged_into {
            Some(next) => match load_ticket(c, next, now).await? {
                Some(n) => t = n,
                None => break,
            },
            None => break,
        }
    }
    Ok(t)
}

#[allow(clippy::too_many_arguments, reason = "one column each of the event row")]
pub(crate) async fn event<D: Db>(
    c: &mut D,
    ticket_id: i64,
    at: DateTime<Utc>,
    actor: &Actor,
    kind: EventKind,
    from: Option<&str>,
    to: Option<&str>,
    note: Option<&str>,
) -> Result<()> {
    c.execute(
        "INSERT INTO events (ticket_id, at, actor, kind, from_value, to_value, note) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        args![ticket_id, at, actor.to_string(), kind.as_str(), from, to, note],
    )
    .await?;
    Ok(())
}

/// Transaction-scoped advisory lock on a string key (PostgreSQL only).
async fn lock<D: Db>(c: &mut D, key: &str) -> Result<()> {
    c.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", args![key]).await?;
    Ok(())
}

/// The identity row, its reporter, and whether that reporter still lacks a name.
async fn identity_owner<D: Db>(c: &mut D, id: &Identity) -> Result<Option<(i64, i64, bool)>> {
    let row = c
        .fetch_optional(
            "SELECT i.id, i.reporter_id, r.name IS NULL AS unnamed FROM identities i \
             JOIN reporters r ON r.id = i.reporter_id WHERE i.kind = $1 AND i.value = $2",
            args![id.kind.as_str(), &id.value],
        )
        .await?;
    Ok(match row {
        Some(r) => Some((r.get("id")?, r.get("reporter_id")?, r.get("unnamed")?)),
        None => None,
    })
}

/// Finds or creates the reporter behind a sender. Returns the reporter and the
/// identity the message came from. Extra contacts are attached when nobody owns
/// them yet; a contact already owned by another reporter is left with its owner.
async fn resolve_reporter<D: Db>(
    c: &mut D,
    sender: &Sender,
    now: DateTime<Utc>,
) -> Result<(Option<i64>, Option<i64>)> {
    let Some(primary) = sender.identity.as_ref().or(sender.contacts.first()) else {
        return Ok((None, None));
    };
    let (reporter_id, identity_id) = match identity_owner(c, primary).await? {
        Some((identity_id, reporter_id, unnamed)) => {
            if let (true, Some(name)) = (unnamed, &sender.display_name) {
                c.execute("UPDATE reporters SET name = $2 WHERE id = $1", args![reporter_id, name])
                    .await?;
            }
            (reporter_id, identity_id)
        }
        None => {
            let reporter_id: i64 = c
                .fetch_one_scalar(
                    "INSERT INTO reporters (name, created_at) VALUES ($1, $2) RETURNING id",
                    args![&sender.display_name, now],
                )
                .await?;
            let identity_id: i64 = c
                .fetch_one_scalar(
                    "INSERT INTO identities (reporter_id, kind, value, created_at) \
                 VALUES ($1, $2, $3, $4) RETURNING id",
                    args![reporter_id, primary.kind.as_str(), &primary.value, now],
                )
                .await?;
            (reporter_id, identity_id)
        }
    };
    for contact in sender.contacts.iter().filter(|k| *k != primary) {
        c.execute(
            "INSERT INTO identities (reporter_id, kind, value, created_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (kind, value) DO NOTHING",
            args![reporter_id, contact.kind.as_str(), &contact.value, now],
        )
        .await?;
    }
    Ok((Some(reporter_id), Some(identity_id)))
}

/// The ticket a message names: its explicit `ticket`, a quoted code, or the
/// ticket of a message it replies to; followed through merges. Also whether `reporter_id`
/// (the sender's reporter) is the reporter of that ticket, of the ticket the message named
/// before following merges, or of a ticket merged into it.
async fn named_ticket<D: Db>(
    c: &mut D,
    msg: &InboundMessage,
    reporter_id: Option<i64>,
    now: DateTime<Utc>,
) -> Result<Option<(TicketRow, bool)>> {
    let mut found = None;
    let codes = msg.thread.ticket.into_iter().chain(TicketCode::find_all(&msg.text));
    for code in codes {
        if let Some(t) = load_ticket(c, code, now).await? {
            found = Some(t);
            break;
        }
    }
    if found.is_none() {
        for reference in &msg.thread.references {
            let row = c.fetch_optional(ticket_select!(
                "JOIN messages m ON m.ticket_id = t.id WHERE m.channel = $1 AND m.provider_id = $2"
            ), args![msg.channel.as_str(), reference])
            .await?;
            if let Some(row) = row {
                found = Some(ticket_row(&row, now)?);
                break;
            }
        }
    }
    let Some(first) = found else { return Ok(None) };
    let first_reporter = first.reporter_id;
    let t = follow_merges(c, first, now).await?;
    let is_reporter = match reporter_id {
        None => false,
        Some(r) if first_reporter == Some(r) || t.reporter_id == Some(r) => true,
        Some(r) => c
            .fetch_optional_scalar::<i64>(
                "SELECT id FROM tickets WHERE merged_into = $1 AND reporter_id = $2 LIMIT 1",
                args![t.id, r],
            )
            .await?
            .is_some(),
    };
    Ok(Some((t, is_reporter)))
}

/// The message a revision edits (by its provider id on the same channel) and its ticket,
/// followed through merges; `None` when we never stored it or it has no ticket.
async fn revised_message<D: Db>(
    c: &mut D,
    channel: Channel,
    provider_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<(i64, TicketRow)>> {
    let row = c
        .fetch_optional(
            "SELECT m.id, t.code FROM messages m JOIN tickets t ON t.id = m.ticket_id \
             WHERE m.channel = $1 AND m.provider_id = $2",
            args![channel.as_str(), provider_id],
        )
        .await?;
    let Some(row) = row else { return Ok(None) };
    let code: TicketCode = parse(&row.get::<String>("code")?, "ticket code")?;
    let Some(t) = load_ticket(c, code, now).await? else { return Ok(None) };
    Ok(Some((row.get("id")?, follow_merges(c, t, now).await?)))
}

async fn latest_ticket_of<D: Db>(
    c: &mut D,
    reporter_id: i64,
    channel: Channel,
    now: DateTime<Utc>,
) -> Result<Option<TicketRow>> {
    let row = c
        .fetch_optional(
            ticket_select!(
                "WHERE t.reporter_id = $1 AND t.channel = $2 ORDER BY t.id DESC LIMIT 1"
            ),
            args![reporter_id, channel.as_str()],
        )
        .await?;
    match row {
        Some(r) => Ok(Some(follow_merges(c, ticket_row(&r, now)?, now).await?)),
        None => Ok(None),
    }
}

async fn create_ticket<D: Db>(
    c: &mut D,
    opts: &StoreOptions,
    msg: &InboundMessage,
    reporter_id: Option<i64>,
    now: DateTime<Utc>,
) -> Result<(i64, TicketCode)> {
    let due = truncate_ms(opts.sla.first_response_due(now));
    let resolution_due = truncate_ms(opts.sla.calendar.due(now, opts.sla.resolution));
    for _ in 0..8 {
        let code = TicketCode::from_entropy(rand::random());
        // New tickets wait for the routing worker (route_pending).
        let id: Option<i64> = c
            .fetch_optional_scalar(
                "INSERT INTO tickets (code, status, channel, reporter_id, lat, lon, created_at, \
             updated_at, last_message_at, first_response_due_at, resolution_due_at, \
             first_response_budget, resolution_budget, route_pending) \
             VALUES ($1, 'new', $2, $3, $4, $5, $6, $6, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (code) DO NOTHING RETURNING id",
                args![
                    code.to_string(),
                    msg.channel.as_str(),
                    reporter_id,
                    msg.location.map(|l| l.lat),
                    msg.location.map(|l| l.lon),
                    now,
                    due,
                    resolution_due,
                    opts.sla.first_response_budget().to_string(),
                    opts.sla.resolution.to_string(),
                    true
                ],
            )
            .await?;
        if let Some(id) = id {
            // The ticket row records its own creation; the audit log holds what changed after.
            return Ok((id, code));
        }
    }
    Err(StoreError::Conflict("no free tracking code found".into()))
}

/// The advisory-lock keys intake takes on PostgreSQL for a message: concurrent deliveries of
/// one message, and concurrent messages of one sender, wait for each other.
fn intake_locks(msg: &InboundMessage) -> Vec<String> {
    let mut keys = vec![format!("message:{}:{}", msg.channel, msg.provider_id)];
    if let Some(id) = msg.sender.identity.as_ref().or(msg.sender.contacts.first()) {
        keys.push(format!("identity:{}:{}", id.kind, id.value));
    }
    keys
}

/// Stores several messages in one transaction (a provider's batch: all or nothing). Locks
/// are taken in sorted order first, so two batches sharing messages can't deadlock.
pub(crate) async fn ingest_all<D: Db>(
    c: &mut D,
    opts: &StoreOptions,
    msgs: Vec<InboundMessage>,
    now: DateTime<Utc>,
) -> Result<Vec<Ingested>> {
    if D::IS_PG {
        let mut keys: Vec<String> = msgs.iter().flat_map(intake_locks).collect();
        keys.sort();
        keys.dedup();
        for key in keys {
            lock(c, &key).await?;
        }
    }
    let mut out = Vec::with_capacity(msgs.len());
    for msg in msgs {
        out.push(ingest_locked(c, opts, msg, now).await?);
    }
    Ok(out)
}

pub(crate) async fn ingest<D: Db>(
    c: &mut D,
    opts: &StoreOptions,
    msg: InboundMessage,
    now: DateTime<Utc>,
) -> Result<Ingested> {
    if D::IS_PG {
        for key in intake_locks(&msg) {
            lock(c, &key).await?;
        }
    }
    ingest_locked(c, opts, msg, now).await
}

async fn ingest_locked<D: Db>(
    c: &mut D,
    opts: &StoreOptions,
    msg: InboundMessage,
    now: DateTime<Utc>,
) -> Result<Ingested> {
    let existing = c
        .fetch_optional(
            "SELECT m.id, t.code FROM messages m LEFT JOIN tickets t ON t.id = m.ticket_id \
         WHERE m.channel = $1 AND m.provider_id = $2",
            args![msg.channel.as_str(), &msg.provider_id],
        )
        .await?;
    if let Some(row) = existing {
        let code: Option<String> = row.get("code")?;
        return Ok(Ingested {
            ticket: code.map(|c| parse(&c, "ticket code")).transpose()?,
            message_id: row.get("id")?,
            duplicate: true,
            ticket_created: false,
            reopened: false,
        });
    }

    let (reporter_id, identity_id) = resolve_reporter(c, &msg.sender, now).await?;
    // An edit is a revision of the message it edits and stays on that message's ticket.
    let original = match &msg.thread.revision_of {
        Some(pid) => revised_message(c, msg.channel, pid, now).await?,
        None => None,
    };
    let revision_of = original.as_ref().map(|(id, _)| *id);
    // An edit comes from the author of the message it edits (the provider says so).
    let (named, is_reporter) = match original {
        Some((_, ticket)) => (Some(ticket), true),
        None => match named_ticket(c, &msg, reporter_id, now).await? {
            Some((t, is_reporter)) => (Some(t), is_reporter),
            None => (None, false),
        },
    };
    let window_open = opts.threading.window_for(msg.channel) > Duration::zero();
    let latest = match reporter_id {
        Some(r) if (named.is_none() || !is_reporter) && window_open => {
            latest_ticket_of(c, r, msg.channel, now).await?
        }
        _ => None,
    };
    // "CEK ADU-…" asks for the status of the ticket it names: its reporter's question joins
    // that ticket without reopening it, a stranger's is only answered (below).
    let asks_status = status_query(&msg.text).is_some() && named.is_some();
    // A revision neither reopens a ticket nor is acknowledged: it is not a new message.
    let facts = SenderFacts {
        automated: msg.thread.automated || revision_of.is_some(),
        is_reporter,
        asks_status: asks_status && !msg.thread.automated,
    };
    let decision = decide_thread(
        &opts.threading,
        msg.channel,
        facts,
        now,
        named.as_ref().map(TicketRow::candidate).as_ref(),
        latest.as_ref().map(TicketRow::candidate).as_ref(),
    );
    let status_question = match decision {
        ThreadDecision::AnswerStatus { id } => Some(id),
        ThreadDecision::Join { id, .. }
            if facts.asks_status && named.as_ref().is_some_and(|t| t.id == id) =>
        {
            Some(id)
        }
        _ => None,
    };

    let mut outcome = Ingested {
        ticket: None,
        message_id: 0,
        duplicate: false,
        ticket_created: false,
        reopened: false,
    };
    let ticket_id = match decision {
        ThreadDecision::NewTicket => {
            let (id, code) = create_ticket(c, opts, &msg, reporter_id, now).await?;
            outcome.ticket = Some(code);
            outcome.ticket_created = true;
            Some(id)
        }
        ThreadDecision::Join { id, reopen_to } => {
            let joined = [named.as_ref(), latest.as_ref()]
                .into_iter()
                .flatten()
                .find(|t| t.id == id)
                .ok_or_else(|| StoreError::Internal("joined an unknown ticket".into()))?;
            outcome.ticket = Some(joined.summary.code);
            // A stranger's automated mail recorded on the ticket does not place it.
            let stranger = !is_reporter && named.as_ref().is_some_and(|t| t.id == id);
            let location = msg.location.filter(|_| !stranger);
            c.execute(
                "UPDATE tickets SET last_message_at = $2, updated_at = $2, \
                 status = COALESCE($3, status), \
                 resolved_at = CASE WHEN $3 IS NULL THEN resolved_at ELSE NULL END, \
                 lat = COALESCE(lat, $4), lon = COALESCE(lon, $5) WHERE id = $1",
                args![
                    id,
                    now,
                    reopen_to.map(Status::as_str),
                    location.map(|l| l.lat),
                    location.map(|l| l.lon)
                ],
            )
            .await?;
            // Only the reporter joins by speaking (a stranger's message joins only when it is
            // automated, which neither answers the identity request nor resumes the clocks).
            let resident_speaks = !msg.thread.automated && status_question != Some(id);
            if resident_speaks && joined.summary.status == Status::AwaitingIdentity {
                // The answer to an identity request: the router reads it.
                c.execute(
                    "UPDATE tickets SET route_pending = $2, route_lease_until = NULL WHERE id = $1",
                    args![id, true],
                )
                .await?;
            } else if resident_speaks && joined.paused_at.is_some() && reopen_to.is_none() {
                resume_clocks(c, opts, joined, &Actor::Resident, now).await?;
            }
            if let Some(to) = reopen_to {
                outcome.reopened = true;
                let from = joined.summary.status.as_str();
                event(
                    c,
                    id,
                    now,
                    &Actor::Resident,
                    EventKind::StatusChanged,
                    Some(from),
                    Some(to.as_str()),
                    None,
                )
                .await?;
            }
            Some(id)
        }
        ThreadDecision::Orphan | ThreadDecision::AnswerStatus { .. } => None,
    };

    let message_id: i64 = c
        .fetch_one_scalar(
            "INSERT INTO messages (ticket_id, direction, channel, provider_id, identity_id, \
         display_name, text, lat, lon, automated, sent_at, stored_at, revision_of) \
         VALUES ($1, 'in', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
            args![
                ticket_id,
                msg.channel.as_str(),
                &msg.provider_id,
                identity_id,
                &msg.sender.display_name,
                &msg.text,
                msg.location.map(|l| l.lat),
                msg.location.map(|l| l.lon),
                msg.thread.automated,
                truncate_ms(msg.received_at),
                now,
                revision_of
            ],
        )
        .await?;
    outcome.message_id = message_id;

    for a in &msg.attachments {
        c.execute(
            "INSERT INTO attachments (message_id, filename, content_type, size, sha256, provider_ref) \
             VALUES ($1, $2, $3, $4, $5, $6)", args![message_id, &a.filename, &a.content_type, i64::try_from(a.size).unwrap_or(i64::MAX), &a.sha256, &a.provider_ref])
        .await?;
    }
    if let (Some(id), false) = (ticket_id, outcome.ticket_created) {
        let mid = message_id.to_string();
        event(c, id, now, &Actor::Resident, EventKind::MessageReceived, None, Some(&mid), None)
            .await?;
    }
    // The answer to "CEK ADU-…", on the channel the question came from (to the one who
    // asked: a status answer carries no personal data).
    if let Some(id) = status_question
        && ticket_id.is_none_or(|t| t == id)
    {
        let asker = msg.sender.identity.as_slice();
        let route = choose_reply_route(msg.channel, msg.sender.identity.as_ref(), asker);
        if matches!(&route, ReplyRoute::Send { channel, .. } if *channel == msg.channel)
            && let Some(t) = load_ticket_by_id(c, id, now).await?
        {
            let s = &t.summary;
            let due = if s.first_responded_at.is_none() {
                Some(s.first_response_due_at)
            } else {
                s.resolution_due_at
            };
            let opd_name = s.opd.as_ref().map(|o| opts.opd_names.get(o).unwrap_or(o).as_str());
            let text = status_text(s.code, s.status, opd_name, due, s.overdue);
            let limits = Some(&opts.auto_limits);
            let (system, purpose) = (&Actor::System, Purpose::Status);
            queue_outbound(c, id, msg.channel, route, &text, system, purpose, limits, now).await?;
        }
    }
    // The receipt with the code, on the channel the resident wrote from. Web and Open311
    // callers get the code in their HTTP answer instead.
    if let (Some(id), Some(code), Some(template), false) =
        (ticket_id, outcome.ticket, &opts.ack_template, msg.thread.automated)
    {
        let own = msg.sender.identity.as_slice();
        let route = choose_reply_route(msg.channel, msg.sender.identity.as_ref(), own);
        let same_channel =
            matches!(&route, ReplyRoute::Send { channel, .. } if *channel == msg.channel);
        if outcome.ticket_created && same_channel {
            let text = ack_text(template, code, opts.sla.first_response.num_hours());
            let limits = Some(&opts.auto_limits);
            let (system, purpose) = (&Actor::System, Purpose::Ack);
            queue_outbound(c, id, msg.channel, route, &text, system, purpose, limits, now).await?;
        }
    }
    Ok(outcome)
}

pub(crate) async fn load_ticket_by_id<D: Db>(
    c: &mut D,
    id: i64,
    now: DateTime<Utc>,
) -> Result<Option<TicketRow>> {
    let row = c.fetch_optional(ticket_select!("WHERE t.id = $1"), args![id]).await?;
    row.map(|r| ticket_row(&r, now)).transpose()
}

/// Starts the clocks again after a pause: each deadline gets back what was left of it when
/// the pause began, in its own measure (wall-clock hours or working days).
pub(crate) async fn resume_clocks<D: Db>(
    c: &mut D,
    opts: &StoreOptions,
    t: &TicketRow,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<()> {
    let Some(paused_at) = t.paused_at else { return Ok(()) };
    let cal = &opts.sla.calendar;
    let fr_measure = t.first_response_budget.map_or(Measure::Wall, Budget::measure);
    let res_measure = t.resolution_budget.unwrap_or(opts.sla.resolution).measure();
    let s = &t.summary;
    let fr_due = cal.resume(fr_measure, s.first_response_due_at, paused_at, now);
    let res_due = s.resolution_due_at.map(|d| cal.resume(res_measure, d, paused_at, now));
    c.execute(
        "UPDATE tickets SET paused_at = NULL, first_response_due_at = $2, resolution_due_at = $3, \
         updated_at = $4 WHERE id = $1",
        args![t.id, truncate_ms(fr_due), res_due.map(truncate_ms), now],
    )
    .await?;
    event(c, t.id, now, actor, EventKind::Resumed, None, None, None).await
}

/// Stops the clocks (waiting for the resident); `reason` goes into the audit log.
pub(crate) async fn pause_clocks<D: Db>(
    c: &mut D,
    t: &TicketRow,
    reason: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<()> {
    if t.paused_at.is_some() {
        return Ok(());
    }
    c.execute("UPDATE tickets SET paused_at = $2, updated_at = $2 WHERE id = $1", args![t.id, now])
        .await?;
    event(c, t.id, now, actor, EventKind::Paused, None, None, Some(reason)).await
}

/// The purposes [`AutoLimits`] count: automatic messages to residents.
const AUTO_REPLY_PURPOSES: &str = "('ack', 'identity_request', 'status')";

/// Why an automatic message to `to` may not be sent now, if it may not: its recipient had
/// [`AutoLimits::per_recipient_per_day`] in the last 24 hours, or everyone together had
/// [`AutoLimits::per_hour`] in the last hour. Counted over the outbox (rows queued to be
/// sent, not the refused ones), so every instance sharing the database sees the same
/// figures; on PostgreSQL a lock per recipient keeps two intakes from both taking the last
/// one.
async fn auto_refusal<D: Db>(
    c: &mut D,
    limits: &AutoLimits,
    to: &Identity,
    now: DateTime<Utc>,
) -> Result<Option<&'static str>> {
    if D::IS_PG {
        lock(c, &format!("auto-message:{}:{}", to.kind, to.value)).await?;
    }
    let to_one: i64 = c
        .fetch_one_scalar(
            &format!(
                "SELECT COUNT(*) FROM outbox WHERE recipient = $1 AND recipient_kind = $2 \
                 AND created_at > $3 AND state <> 'published' AND purpose IN {AUTO_REPLY_PURPOSES}"
            ),
            args![&to.value, to.kind.as_str(), truncate_ms(now - Duration::days(1))],
        )
        .await?;
    if to_one >= i64::from(limits.per_recipient_per_day) {
        return Ok(Some("recipient_day"));
    }
    let to_all: i64 = c
        .fetch_one_scalar(
            &format!(
                "SELECT COUNT(*) FROM outbox WHERE created_at > $1 AND state <> 'published' \
                 AND purpose IN {AUTO_REPLY_PURPOSES}"
            ),
            args![truncate_ms(now - Duration::hours(1))],
        )
        .await?;
    if to_all >= i64::from(limits.per_hour) {
        return Ok(Some("hour"));
    }
    Ok(None)
}

/// Refused automatic messages by reason (see [`auto_refusal`]).
pub(crate) async fn auto_refused_counts<D: Db>(c: &mut D) -> Result<Vec<(String, i64)>> {
    let rows = c
        .fetch_all(
            "SELECT last_error, COUNT(*) AS n FROM outbox WHERE state = 'published' \
             AND last_error LIKE 'refused:%' GROUP BY last_error ORDER BY last_error",
            args![],
        )
        .await?;
    rows.iter()
        .map(|r| {
            let reason: String = r.get("last_error")?;
            let reason = reason.strip_prefix("refused:").unwrap_or(&reason).to_owned();
            Ok((reason, r.get("n")?))
        })
        .collect()
}

/// A message to the resident: stored in the thread and queued in the outbox (or only
/// published on the tracking page when there is no way to write to them).
///
/// An automatic message to a resident (written by aduan itself: receipt, identity request,
/// status answer) is capped by `limits` (the defaults when `None`): over a cap it is kept on
/// the ticket, published only, with the reason `refused:…` in the outbox row.
#[allow(clippy::too_many_arguments, reason = "the columns of the message and its outbox row")]
pub(crate) async fn queue_outbound<D: Db>(
    c: &mut D,
    ticket_id: i64,
    ticket_channel: Channel,
    route: ReplyRoute,
    text: &str,
    author: &Actor,
    purpose: Purpose,
    limits: Option<&AutoLimits>,
    now: DateTime<Utc>,
) -> Result<Replied> {
    let mut refused = None;
    if let ReplyRoute::Send { to, .. } = &route
        && purpose.is_auto_reply()
        && *author == Actor::System
    {
        refused = auto_refusal(c, limits.unwrap_or(&AutoLimits::default()), to, now).await?;
        if let Some(reason) = refused {
            tracing::warn!(
                ticket_id,
                purpose = purpose.as_str(),
                reason,
                "Automatic message over its limit; kept on the ticket, not sent."
            );
        }
    }
    let (channel, recipient, state) = match route {
        ReplyRoute::Send { channel, to } if refused.is_none() => {
            (Some(channel), Some(to), OutboxState::Pending)
        }
        ReplyRoute::Send { channel, to } => (Some(channel), Some(to), OutboxState::Published),
        ReplyRoute::Publish => (None, None, OutboxState::Published),
    };
    let message_channel = channel.unwrap_or(ticket_channel);
    let message_id: i64 = c
        .fetch_one_scalar(
            "INSERT INTO messages (ticket_id, direction, channel, author, text, sent_at, stored_at) \
             VALUES ($1, 'out', $2, $3, $4, $5, $5) RETURNING id",
            args![ticket_id, message_channel.as_str(), author.to_string(), text, now],
        )
        .await?;
    let outbox_id: i64 = c
        .fetch_one_scalar(
            "INSERT INTO outbox (ticket_id, message_id, channel, recipient_kind, recipient, state, \
             purpose, next_attempt_at, created_at, last_error) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9) RETURNING id",
            args![
                ticket_id,
                message_id,
                message_channel.as_str(),
                recipient.as_ref().map(|r| r.kind.as_str()),
                recipient.as_ref().map(|r| r.value.as_str()),
                state.as_str(),
                purpose.as_str(),
                now,
                refused.map(|r| format!("refused:{r}"))
            ],
        )
        .await?;
    Ok(Replied { message_id, outbox_id, channel, delivery: state })
}

pub(crate) async fn ticket_view<D: Db>(
    c: &mut D,
    code: TicketCode,
    now: DateTime<Utc>,
) -> Result<Option<TicketView>> {
    let Some(t) = load_ticket(c, code, now).await? else {
        return Ok(None);
    };
    let reporter = match t.reporter_id {
        Some(rid) => {
            let r = c
                .fetch_one(
                    "SELECT name, address, confidential FROM reporters WHERE id = $1",
                    args![rid],
                )
                .await?;
            let ids = c
                .fetch_all(
                    "SELECT kind, value FROM identities WHERE reporter_id = $1 ORDER BY id",
                    args![rid],
                )
                .await?;
            let identities = ids
                .iter()
                .map(|row| {
                    Ok(Identity {
                        kind: parse(&row.get::<String>("kind")?, "identity kind")?,
                        value: row.get("value")?,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            Some(ReporterView {
                name: r.get("name")?,
                address: r.get("address")?,
                confidential: r.get("confidential")?,
                identities,
            })
        }
        None => None,
    };

    let mut attachments: HashMap<i64, Vec<AttachmentRef>> = HashMap::new();
    let rows = c.fetch_all(
        "SELECT a.message_id, a.filename, a.content_type, a.size, a.sha256, a.provider_ref \
         FROM attachments a JOIN messages m ON m.id = a.message_id WHERE m.ticket_id = $1 ORDER BY a.id", args![t.id])
    .await?;
    for row in rows {
        let size: i64 = row.get("size")?;
        attachments.entry(row.get("message_id")?).or_default().push(AttachmentRef {
            filename: row.get("filename")?,
            content_type: row.get("content_type")?,
            size: u64::try_from(size).unwrap_or(0),
            sha256: row.get("sha256")?,
            provider_ref: row.get("provider_ref")?,
        });
    }

    let rows = c
        .fetch_all(
            "SELECT m.id, m.direction, m.channel, m.text, m.sent_at, m.author, m.display_name, \
         m.lat, m.lon, m.revision_of, o.state, o.purpose FROM messages m \
         LEFT JOIN outbox o ON o.message_id = m.id WHERE m.ticket_id = $1 ORDER BY m.id",
            args![t.id],
        )
        .await?;
    let mut messages = Vec::with_capacity(rows.len());
    for row in rows {
        let id: i64 = row.get("id")?;
        let direction = match row.get::<String>("direction")?.as_str() {
            "out" => Direction::Out,
            _ => Direction::In,
        };
        let author: Option<String> = match direction {
            Direction::Out => row.get("author")?,
            Direction::In => row.get("display_name")?,
        };
        let state: Option<String> = row.get("state")?;
        messages.push(MessageView {
            id,
            direction,
            channel: parse(&row.get::<String>("channel")?, "channel")?,
            text: row.get("text")?,
            at: row.get("sent_at")?,
            author,
            attachments: attachments.remove(&id).unwrap_or_default(),
            location: location(row.get("lat")?, row.get("lon")?),
            delivery: state.map(|s| parse(&s, "outbox state")).transpose()?,
            purpose: row
                .get::<Option<String>>("purpose")?
                .map(|p| parse(&p, "outbox purpose"))
                .transpose()?,
            revision_of: row.get("revision_of")?,
        });
    }

    let rows = c.fetch_all(
        "SELECT at, actor, kind, from_value, to_value, note FROM events WHERE ticket_id = $1 ORDER BY id", args![t.id])
    .await?;
    // Creation is the ticket row itself (`created_at`); the log shows it first.
    let created = EventView {
        at: t.summary.created_at,
        actor: Actor::System,
        kind: EventKind::Created,
        from: None,
        to: Some(Status::New.as_str().to_owned()),
        note: None,
    };
    let events = std::iter::once(Ok(created))
        .chain(rows.iter().map(|row| {
            Ok(EventView {
                at: row.get("at")?,
                actor: parse(&row.get::<String>("actor")?, "actor")?,
                kind: parse(&row.get::<String>("kind")?, "event kind")?,
                from: row.get("from_value")?,
                to: row.get("to_value")?,
                note: row.get("note")?,
            })
        }))
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(TicketView { summary: t.summary, reporter, messages, events }))
}

/// A `WHERE` clause built from the filters that are set, with its parameters numbered in
/// order.
#[derive(Default)]
struct Conditions {
    sql: String,
    params: Vec<Value>,
}

impl Conditions {
    /// Adds a parameter; returns its placeholder.
    fn param(&mut self, v: impl Into<Value>) -> String {
        self.params.push(v.into());
        format!("${}", self.params.len())
    }

    fn and(&mut self, cond: &str) {
        self.sql.push_str(if self.sql.is_empty() { "WHERE " } else { " AND " });
        self.sql.push_str(cond);
    }
}

/// The ticket list, newest first, paged by a keyset cursor (`t.id < cursor`).
///
/// The statement holds only the filters that are set, so each combination is its own
/// prepared statement with its own plan: a filter meets the `(column, id)` index that
/// serves it (migrations 0001 and 0009), walked backwards from the cursor, and a page reads
/// about `limit` index entries whatever the table's size. The overdue filter repeats the
/// `tickets_open` partial index's condition word for word (SQLite uses a partial index only
/// then). A `q` that is a ticket code looks that code up; any other `q` searches the
/// messages' text, which is a scan.
pub(crate) async fn list_tickets<D: Db>(
    c: &mut D,
    f: &TicketFilter,
    now: DateTime<Utc>,
) -> Result<Page<TicketSummary>> {
    let limit = f.limit.clamp(1, 500);
    let (sql, params) = list_sql::<D>(f, limit, now);
    let rows = c.fetch_all(&sql, params).await?;
    let mut items = Vec::with_capacity(rows.len());
    let mut last_id = None;
    for row in rows.iter().take(limit as usize) {
        let t = ticket_row(row, now)?;
        last_id = Some(t.id);
        items.push(t.summary);
    }
    let next_cursor =
        if rows.len() as i64 > limit { last_id.map(|id| Cursor(id).to_string()) } else { None };
    Ok(Page { items, next_cursor })
}

/// The statement of [`list_tickets`] and its parameters; it asks for `limit + 1` rows to
/// know whether there is a next page.
fn list_sql<D: Db>(f: &TicketFilter, limit: i64, now: DateTime<Utc>) -> (String, Vec<Value>) {
    let q = f.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    let mut w = Conditions::default();
    if let Some(s) = f.status {
        let p = w.param(s.as_str());
        w.and(&format!("t.status = {p}"));
    }
    if let Some(o) = f.opd.as_deref() {
        let p = w.param(o);
        w.and(&format!("t.opd = {p}"));
    }
    if let Some(ch) = f.channel {
        let p = w.param(ch.as_str());
        w.and(&format!("t.channel = {p}"));
    }
    if let Some(cat) = f.category.as_deref() {
        let p = w.param(cat);
        w.and(&format!("t.category = {p}"));
    }
    if let Some(confidential) = f.confidential {
        let p = w.param(true);
        let cond = format!(
            "EXISTS (SELECT 1 FROM reporters r WHERE r.id = t.reporter_id AND r.confidential = {p})"
        );
        w.and(&if confidential { cond } else { format!("NOT {cond}") });
    }
    if let Some(cursor) = f.cursor {
        let p = w.param(cursor.0);
        w.and(&format!("t.id < {p}"));
    }
    if let Some(overdue) = f.overdue {
        let p = w.param(now);
        let cond = overdue_sql!().replace("$1", &p);
        w.and(&if overdue { cond } else { format!("NOT {cond}") });
    }
    if let Some(q) = q {
        match q.parse::<TicketCode>() {
            Ok(code) => {
                let p = w.param(code.to_string());
                w.and(&format!("t.code = {p}"));
            }
            Err(_) => {
                let p = w.param(like_pattern(q));
                w.and(&format!(
                    "EXISTS (SELECT 1 FROM messages m WHERE m.ticket_id = t.id \
                     AND LOWER(m.text) LIKE {p} ESCAPE '\\')"
                ));
            }
        }
    }
    let p = w.param(limit + 1);
    // SQLite plans without statistics (the daemon never runs ANALYZE) and would rather
    // look the open statuses up in `tickets_status` and sort them all; the overdue list
    // alone walks `tickets_open` newest first instead. With a column filter, that
    // column's index is the better walk and SQLite picks it.
    let overdue_alone = f.overdue == Some(true)
        && f.status.is_none()
        && f.opd.is_none()
        && f.channel.is_none()
        && f.category.is_none()
        && f.confidential.is_none()
        && q.is_none();
    let select = if overdue_alone && !D::IS_PG { &*OPEN_SELECT } else { TICKET_SELECT };
    (format!("{select}{} ORDER BY t.id DESC LIMIT {p}", w.sql), w.params)
}

/// The plan the database chose for a statement: `EXPLAIN QUERY PLAN` on SQLite, `EXPLAIN`
/// on PostgreSQL, one line per step.
async fn explain<D: Db>(c: &mut D, sql: &str, params: Vec<Value>) -> Result<Vec<String>> {
    if D::IS_PG {
        c.fetch_all_scalar(&format!("EXPLAIN {sql}"), params).await
    } else {
        let rows = c.fetch_all(&format!("EXPLAIN QUERY PLAN {sql}"), params).await?;
        rows.iter().map(|r| r.get::<String>("detail")).collect()
    }
}

/// The plan of the ticket list for `f` (the benchmark prints it).
pub(crate) async fn explain_list<D: Db>(
    c: &mut D,
    f: &TicketFilter,
    now: DateTime<Utc>,
) -> Result<Vec<String>> {
    let (sql, params) = list_sql::<D>(f, f.limit.clamp(1, 500), now);
    explain(c, &sql, params).await
}

/// The plans of the routing workers' scans (the benchmark prints them).
pub(crate) async fn explain_workers<D: Db>(
    c: &mut D,
    now: DateTime<Utc>,
) -> Result<Vec<(&'static str, Vec<String>)>> {
    let mut out = Vec::new();
    for (name, sql, params) in crate::routing::worker_scans::<D>(now) {
        out.push((name, explain(c, &sql, params).await?));
    }
    Ok(out)
}

pub(crate) async fn assign<D: Db>(
    c: &mut D,
    code: TicketCode,
    opd: String,
    actor: Actor,
    note: Option<String>,
    now: DateTime<Utc>,
) -> Result<()> {
    lock_tickets(c, &[code]).await?;
    let t = require_ticket(c, code, now).await?;
    let from = t.summary.status;
    if from == Status::Assigned && t.summary.opd.as_deref() == Some(opd.as_str()) {
        return Err(StoreError::Conflict(format!("{code} is already assigned to {opd}")));
    }
    if from != Status::Assigned {
        from.can_become(Status::Assigned)?;
    }
    c.execute(
        "UPDATE tickets SET status = 'assigned', opd = $2, updated_at = $3, resolved_at = NULL, \
         route_pending = $4, route_lease_until = NULL WHERE id = $1",
        args![t.id, &opd, now, false],
    )
    .await?;
    c.execute(REFRESH_DISPOSE_PENDING, args![t.id]).await?;
    event(
        c,
        t.id,
        now,
        &actor,
        EventKind::Assigned,
        t.summary.opd.as_deref(),
        Some(&opd),
        note.as_deref(),
    )
    .await?;
    if from != Status::Assigned {
        event(
            c,
            t.id,
            now,
            &actor,
            EventKind::StatusChanged,
            Some(from.as_str()),
            Some("assigned"),
            None,
        )
        .await?;
    }
    Ok(())
}

pub(crate) async fn set_status<D: Db>(
    c: &mut D,
    code: TicketCode,
    to: Status,
    actor: Actor,
    note: Option<String>,
    now: DateTime<Utc>,
) -> Result<()> {
    lock_tickets(c, &[code]).await?;
    let t = require_ticket(c, code, now).await?;
    let from = t.summary.status;
    from.check_status_action(to, note.as_deref())?;
    // Acting on a ticket answers it for the response clock.
    let responds = matches!(to, Status::InProgress | Status::Resolved | Status::Rejected);
    // Back to triage: no OPD holds it any more.
    let clears_opd = to == Status::New && t.summary.opd.is_some();
    c.execute(
        "UPDATE tickets SET status = $2, updated_at = $3, \
         first_responded_at = CASE WHEN $4 THEN COALESCE(first_responded_at, $3) ELSE first_responded_at END, \
         resolved_at = CASE WHEN $2 = 'resolved' THEN $3 ELSE NULL END, \
         opd = CASE WHEN $5 THEN NULL ELSE opd END WHERE id = $1", args![t.id, to.as_str(), now, responds, clears_opd])
    .await?;
    c.execute(REFRESH_DISPOSE_PENDING, args![t.id]).await?;
    event(
        c,
        t.id,
        now,
        &actor,
        EventKind::StatusChanged,
        Some(from.as_str()),
        Some(to.as_str()),
        note.as_deref(),
    )
    .await?;
    if clears_opd {
        event(c, t.id, now, &actor, EventKind::Assigned, t.summary.opd.as_deref(), None, None)
            .await?;
    }
    Ok(())
}

pub(crate) async fn reply<D: Db>(
    c: &mut D,
    code: TicketCode,
    text: String,
    actor: Actor,
    now: DateTime<Utc>,
) -> Result<Replied> {
    answer(c, code, text, actor, Purpose::Reply, None, now).await
}

/// Asks the resident who they are (an answer with purpose `identity_request` on their
/// channel) and moves the ticket to `awaiting_identity`; refused where that move is not
/// allowed.
pub(crate) async fn request_identity<D: Db>(
    c: &mut D,
    code: TicketCode,
    text: String,
    actor: Actor,
    limits: AutoLimits,
    now: DateTime<Utc>,
) -> Result<Replied> {
    set_status(c, code, Status::AwaitingIdentity, actor.clone(), None, now).await?;
    // Waiting for the resident stops the clocks, as when the router asks.
    let t = require_ticket(c, code, now).await?;
    if t.paused_at.is_none() {
        pause_clocks(c, &t, "menunggu identitas pelapor", &actor, now).await?;
    }
    answer(c, code, text, actor, Purpose::IdentityRequest, Some(&limits), now).await
}

/// An answer to the resident, queued on their channel; the first one stops the clock.
async fn answer<D: Db>(
    c: &mut D,
    code: TicketCode,
    text: String,
    actor: Actor,
    purpose: Purpose,
    limits: Option<&AutoLimits>,
    now: DateTime<Utc>,
) -> Result<Replied> {
    lock_tickets(c, &[code]).await?;
    let t = require_ticket(c, code, now).await?;
    if let Some(into) = t.summary.merged_into {
        return Err(StoreError::Conflict(format!("{code} is merged into {into}; answer there")));
    }
    let route = resident_route(c, &t).await?;
    let replied =
        queue_outbound(c, t.id, t.summary.channel, route, &text, &actor, purpose, limits, now)
            .await?;
    c.execute(
        "UPDATE tickets SET first_responded_at = COALESCE(first_responded_at, $2), updated_at = $2 WHERE id = $1", args![t.id, now])
    .await?;
    let mid = replied.message_id.to_string();
    event(c, t.id, now, &actor, EventKind::Replied, None, Some(&mid), None).await?;
    Ok(replied)
}

/// Where a message to the ticket's resident goes: back on the channel they last wrote
/// from, else their email or phone, else only the public tracking page.
pub(crate) async fn resident_route<D: Db>(c: &mut D, t: &TicketRow) -> Result<ReplyRoute> {
    // The reporter's identity they last wrote from: never another sender's.
    let last = c
        .fetch_optional(
            "SELECT i.kind, i.value FROM messages m JOIN identities i ON i.id = m.identity_id \
         WHERE m.ticket_id = $1 AND m.direction = 'in' AND i.reporter_id = $2 \
         ORDER BY m.id DESC LIMIT 1",
            args![t.id, t.reporter_id],
        )
        .await?;
    let last = match last {
        Some(r) => Some(Identity {
            kind: parse(&r.get::<String>("kind")?, "identity kind")?,
            value: r.get("value")?,
        }),
        None => None,
    };
    let mut contacts = Vec::new();
    if let Some(rid) = t.reporter_id {
        let rows = c
            .fetch_all(
                "SELECT kind, value FROM identities WHERE reporter_id = $1 ORDER BY id",
                args![rid],
            )
            .await?;
        for r in rows {
            contacts.push(Identity {
                kind: parse(&r.get::<String>("kind")?, "identity kind")?,
                value: r.get("value")?,
            });
        }
    }
    Ok(choose_reply_route(t.summary.channel, last.as_ref(), &contacts))
}

/// An answer that arrived as a message on a channel (an official replying by email):
/// recorded and queued like [`reply`], at most once per `origin` (the channel and provider
/// id of the message it came from). `None` when that message was relayed before.
pub(crate) async fn relay_reply<D: Db>(
    c: &mut D,
    code: TicketCode,
    text: String,
    actor: Actor,
    origin: String,
    now: DateTime<Utc>,
) -> Result<Option<Replied>> {
    if D::IS_PG {
        lock(c, &format!("origin:{origin}")).await?;
    }
    let seen: Option<i64> = c
        .fetch_optional_scalar("SELECT id FROM messages WHERE origin = $1", args![&origin])
        .await?;
    if seen.is_some() {
        return Ok(None);
    }
    let replied = reply(c, code, text, actor.clone(), now).await?;
    c.execute("UPDATE messages SET origin = $2 WHERE id = $1", args![replied.message_id, &origin])
        .await?;
    // The OPD answering a ticket disposed to it takes it up: `assigned` → `in_progress`.
    let t = require_ticket(c, code, now).await?;
    if t.summary.status == Status::Assigned {
        set_status(c, code, Status::InProgress, actor, None, now).await?;
    }
    Ok(Some(replied))
}

/// The ticket (followed through merges) holding a message of `channel` with one of the
/// provider ids, trying them in order.
pub(crate) async fn ticket_of_message<D: Db>(
    c: &mut D,
    channel: Channel,
    provider_ids: Vec<String>,
    now: DateTime<Utc>,
) -> Result<Option<TicketCode>> {
    for id in &provider_ids {
        let row = c
            .fetch_optional(
                ticket_select!(
                    "JOIN messages m ON m.ticket_id = t.id WHERE m.channel = $1 AND m.provider_id = $2"
                ),
                args![channel.as_str(), id],
            )
            .await?;
        if let Some(row) = row {
            let t = follow_merges(c, ticket_row(&row, now)?, now).await?;
            return Ok(Some(t.summary.code));
        }
    }
    Ok(None)
}

/// A sent message came back undeliverable (an email bounce): its outbox row becomes `dead`
/// with `reason`, which the ticket shows. Returns the tickets of the rows changed.
pub(crate) async fn outbox_bounced<D: Db>(
    c: &mut D,
    channel: Channel,
    provider_ids: Vec<String>,
    reason: String,
) -> Result<Vec<TicketCode>> {
    let mut codes = Vec::new();
    for id in &provider_ids {
        let tickets: Vec<i64> = c
            .fetch_all_scalar(
                "UPDATE outbox SET state = 'dead', last_error = $3, lease_until = NULL \
                 WHERE state = 'sent' AND message_id IN \
                 (SELECT id FROM messages WHERE channel = $1 AND provider_id = $2 AND direction = 'out') \
                 RETURNING ticket_id",
                args![channel.as_str(), id, &reason],
            )
            .await?;
        for ticket_id in tickets {
            let code: String = c
                .fetch_one_scalar("SELECT code FROM tickets WHERE id = $1", args![ticket_id])
                .await?;
            let code = parse(&code, "ticket code")?;
            if !codes.contains(&code) {
                codes.push(code);
            }
        }
    }
    Ok(codes)
}

pub(crate) async fn merge<D: Db>(
    c: &mut D,
    code: TicketCode,
    into: TicketCode,
    actor: Actor,
    now: DateTime<Utc>,
) -> Result<()> {
    if code == into {
        return Err(StoreError::Invalid("a ticket can't be merged into itself".into()));
    }
    // Both rows locked (in id order) before either is read: A → B and B → A at once
    // would otherwise each see the other still open and merge the pair into each other.
    lock_tickets(c, &[code, into]).await?;
    let src = require_ticket(c, code, now).await?;
    let dst = require_ticket(c, into, now).await?;
    if let Some(further) = dst.summary.merged_into {
        return Err(StoreError::Conflict(format!("{into} is itself merged into {further}")));
    }
    src.summary.status.can_become(Status::Merged)?;
    c.execute("UPDATE messages SET ticket_id = $2 WHERE ticket_id = $1", args![src.id, dst.id])
        .await?;
    c.execute(
        "UPDATE tickets SET status = 'merged', merged_into = $2, updated_at = $3 WHERE id = $1",
        args![src.id, dst.id, now],
    )
    .await?;
    c.execute(REFRESH_DISPOSE_PENDING, args![src.id]).await?;
    c.execute(
        "UPDATE tickets SET updated_at = $2, \
         last_message_at = CASE WHEN last_message_at < $3 THEN $3 ELSE last_message_at END WHERE id = $1", args![dst.id, now, src.last_message_at])
    .await?;
    let (src_code, dst_code) = (code.to_string(), into.to_string());
    event(
        c,
        src.id,
        now,
        &actor,
        EventKind::Merged,
        Some(src.summary.status.as_str()),
        Some(&dst_code),
        None,
    )
    .await?;
    event(c, dst.id, now, &actor, EventKind::Absorbed, Some(&src_code), None, None).await?;
    Ok(())
}

pub(crate) async fn outbox_claim<D: Db>(
    c: &mut D,
    channels: Vec<Channel>,
    limit: i64,
    lease: Duration,
    now: DateTime<Utc>,
) -> Result<Vec<OutboxItem>> {
    if channels.is_empty() || limit <= 0 {
        return Ok(Vec::new());
    }
    let placeholders: Vec<String> = (0..channels.len()).map(|i| format!("${}", i + 4)).collect();
    let sql = format!(
        "UPDATE outbox SET state = 'sending', attempts = attempts + 1, lease_until = $1 \
         WHERE id IN (SELECT id FROM outbox WHERE \
         ((state = 'pending' AND next_attempt_at <= $2) OR (state = 'sending' AND lease_until < $2)) \
         AND channel IN ({}) ORDER BY id LIMIT $3 {}) RETURNING id",
        placeholders.join(", "),
        if D::IS_PG { "FOR UPDATE SKIP LOCKED" } else { "" },
    );
    let mut args = args![truncate_ms(now + lease), now, limit];
    args.extend(channels.iter().map(|ch| Value::from(ch.as_str())));
    let mut ids: Vec<i64> = c.fetch_all_scalar(&sql, args).await?;
    ids.sort_unstable();
    let mut items = Vec::with_capacity(ids.len());
    for id in ids {
        let row = c
            .fetch_one(
                "SELECT o.id, o.channel, o.recipient_kind, o.recipient, o.attempts, o.ticket_id, o.purpose, \
             t.code, m.text FROM outbox o JOIN tickets t ON t.id = o.ticket_id \
             JOIN messages m ON m.id = o.message_id WHERE o.id = $1",
                args![id],
            )
            .await?;
        let ticket_id: i64 = row.get("ticket_id")?;
        let thread_refs: Vec<String> = c
            .fetch_all_scalar(
                "SELECT provider_id FROM messages WHERE ticket_id = $1 AND channel = $2 \
             AND provider_id IS NOT NULL ORDER BY id DESC LIMIT 20",
                args![ticket_id, row.get::<String>("channel")?],
            )
            .await?;
        let kind: Option<String> = row.get("recipient_kind")?;
        let value: Option<String> = row.get("recipient")?;
        let (Some(kind), Some(value)) = (kind, value) else {
            return Err(StoreError::Internal(format!("outbox row {id} has no recipient")));
        };
        items.push(OutboxItem {
            id,
            ticket: parse(&row.get::<String>("code")?, "ticket code")?,
            channel: parse(&row.get::<String>("channel")?, "channel")?,
            recipient: Identity { kind: parse(&kind, "identity kind")?, value },
            text: row.get("text")?,
            purpose: parse(&row.get::<String>("purpose")?, "outbox purpose")?,
            attempts: row.get("attempts")?,
            thread_refs,
        });
    }
    Ok(items)
}

pub(crate) async fn outbox_sent<D: Db>(
    c: &mut D,
    id: i64,
    provider_id: Option<String>,
    now: DateTime<Utc>,
) -> Result<()> {
    let message_id: Option<i64> = c
        .fetch_optional_scalar(
            "UPDATE outbox SET state = 'sent', sent_at = $2, provider_id = $3, lease_until = NULL \
         WHERE id = $1 AND state = 'sending' RETURNING message_id",
            args![id, now, &provider_id],
        )
        .await?;
    let Some(message_id) = message_id else {
        return Err(StoreError::Conflict(format!("outbox row {id} is not being sent")));
    };
    if provider_id.is_some() {
        // Replies to what we sent thread by this id.
        c.execute(
            "UPDATE messages SET provider_id = $2 WHERE id = $1",
            args![message_id, &provider_id],
        )
        .await?;
    }
    Ok(())
}

pub(crate) async fn outbox_failed<D: Db>(
    c: &mut D,
    id: i64,
    error: String,
    retry_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<()> {
    let done = c
        .execute(
            "UPDATE outbox SET state = CASE WHEN $2 IS NULL THEN 'dead' ELSE 'pending' END, \
         next_attempt_at = COALESCE($2, $4), last_error = $3, lease_until = NULL \
         WHERE id = $1 AND state = 'sending'",
            args![id, retry_at.map(truncate_ms), &error, now],
        )
        .await?;
    if done == 0 {
        return Err(StoreError::Conflict(format!("outbox row {id} is not being sent")));
    }
    Ok(())
}

pub(crate) async fn outbox_counts<D: Db>(c: &mut D) -> Result<Vec<(Channel, OutboxState, i64)>> {
    let rows = c.fetch_all("SELECT channel, state, COUNT(*) AS n FROM outbox GROUP BY channel, state ORDER BY channel, state", args![])
        .await?;
    rows.iter()
        .map(|r| {
            Ok((
                parse(&r.get::<String>("channel")?, "channel")?,
                parse(&r.get::<String>("state")?, "outbox state")?,
                r.get("n")?,
            ))
        })
        .collect()
}

pub(crate) async fn overdue_by_opd<D: Db>(
    c: &mut D,
    now: DateTime<Utc>,
) -> Result<Vec<(Option<String>, i64)>> {
    let sql = concat!(
        "SELECT t.opd, COUNT(*) AS n FROM tickets t WHERE ",
        overdue_sql!(),
        " GROUP BY t.opd"
    );
    let rows = c.fetch_all(sql, args![now]).await?;
    let mut out = rows
        .iter()
        .map(|r| Ok((r.get("opd")?, r.get("n")?)))
        .collect::<Result<Vec<(Option<String>, i64)>>>()?;
    // Backends order NULL differently; unassigned first.
    out.sort();
    Ok(out)
}

pub(crate) async fn checkpoint<D: Db>(
    c: &mut D,
    connector: &str,
    key: &str,
) -> Result<Option<String>> {
    c.fetch_optional_scalar(
        "SELECT value FROM checkpoints WHERE connector = $1 AND key = $2",
        args![connector, key],
    )
    .await
}

pub(crate) async fn set_checkpoint<D: Db>(
    c: &mut D,
    connector: String,
    key: String,
    value: String,
    now: DateTime<Utc>,
) -> Result<()> {
    c.execute(
        "INSERT INTO checkpoints (connector, key, value, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (connector, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at", args![connector, key, value, now])
    .await?;
    Ok(())
}

pub(crate) async fn add_user<D: Db>(c: &mut D, user: NewUser, now: DateTime<Utc>) -> Result<i64> {
    let email = user.email.trim().to_lowercase();
    let exists: Option<i64> =
        c.fetch_optional_scalar("SELECT id FROM users WHERE email = $1", args![&email]).await?;
    if exists.is_some() {
        return Err(StoreError::Conflict(format!("a user with email {email} exists")));
    }
    c.fetch_one_scalar(
        "INSERT INTO users (email, name, role, opd, password_hash, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        args![&email, &user.name, user.role.as_str(), &user.opd, &user.password_hash, now],
    )
    .await
}

pub(crate) async fn add_api_key<D: Db>(
    c: &mut D,
    name: String,
    scope: Scope,
    token_hash: String,
    now: DateTime<Utc>,
) -> Result<i64> {
    c.fetch_one_scalar(
        "INSERT INTO api_keys (name, scope, token_hash, created_at) VALUES ($1, $2, $3, $4) RETURNING id", args![name, scope.as_str(), token_hash, now])
    .await
}

pub(crate) async fn api_key_by_hash<D: Db>(c: &mut D, token_hash: &str) -> Result<Option<ApiKey>> {
    let row = c
        .fetch_optional(
            "SELECT id, name, scope, revoked_at FROM api_keys WHERE token_hash = $1",
            args![token_hash],
        )
        .await?;
    let Some(row) = row else { return Ok(None) };
    let revoked_at: Option<DateTime<Utc>> = row.get("revoked_at")?;
    Ok(Some(ApiKey {
        id: row.get("id")?,
        name: row.get("name")?,
        scope: parse(&row.get::<String>("scope")?, "scope")?,
        revoked: revoked_at.is_some(),
    }))
}

/// Revokes API key `id` (with an audit entry); the key as it is now, `None` when there is
/// no such key. Revoking a revoked key keeps its first revocation time.
pub(crate) async fn revoke_api_key<D: Db>(
    c: &mut D,
    id: i64,
    actor: Actor,
    now: DateTime<Utc>,
) -> Result<Option<ApiKey>> {
    let row = c
        .fetch_optional(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1 \
             RETURNING id, name, scope",
            args![id, now],
        )
        .await?;
    let Some(row) = row else { return Ok(None) };
    let key = ApiKey {
        id: row.get("id")?,
        name: row.get("name")?,
        scope: parse(&row.get::<String>("scope")?, "scope")?,
        revoked: true,
    };
    audit(c, &actor, "api_key_revoked", Some(&format!("{} ({})", key.name, key.id)), None, now)
        .await?;
    Ok(Some(key))
}

/// When `identity` last wrote to us on `channel`, by the provider's time of the message
/// (what the 24-hour customer window of Messenger, Instagram and WhatsApp is measured from).
pub(crate) async fn last_inbound_at<D: Db>(
    c: &mut D,
    channel: Channel,
    identity: &Identity,
) -> Result<Option<DateTime<Utc>>> {
    let row = c
        .fetch_one(
            "SELECT MAX(m.sent_at) AS at FROM messages m JOIN identities i ON i.id = m.identity_id \
             WHERE i.kind = $1 AND i.value = $2 AND m.direction = 'in' AND m.channel = $3",
            args![identity.kind.as_str(), &identity.value, channel.as_str()],
        )
        .await?;
    row.get("at")
}

/// Applies a delivery receipt to the outbox row that sent the message. Receipts only move
/// forward; `failed` makes the row `dead` with the provider's reason, so operators see it.
/// Returns whether a row matched.
pub(crate) async fn outbox_receipt<D: Db>(c: &mut D, receipt: DeliveryReceipt) -> Result<bool> {
    let row = c
        .fetch_optional(
            "SELECT id, receipt FROM outbox WHERE channel = $1 AND provider_id = $2",
            args![receipt.channel.as_str(), &receipt.provider_id],
        )
        .await?;
    let Some(row) = row else {
        return Ok(false);
    };
    let id: i64 = row.get("id")?;
    let old: Option<ReceiptStatus> =
        row.get::<Option<String>>("receipt")?.map(|r| parse(&r, "receipt")).transpose()?;
    if old.is_some_and(|old| old == ReceiptStatus::Failed || old >= receipt.status) {
        return Ok(true);
    }
    if receipt.status == ReceiptStatus::Failed {
        let error = receipt.error.unwrap_or_else(|| "the provider reported a failure".into());
        c.execute(
            "UPDATE outbox SET state = 'dead', last_error = $2, receipt = 'failed', receipt_at = $3, \
             lease_until = NULL WHERE id = $1",
            args![id, format!("delivery failed: {error}"), receipt.at],
        )
        .await?;
    } else {
        c.execute(
            "UPDATE outbox SET receipt = $2, receipt_at = $3 WHERE id = $1",
            args![id, receipt.status.as_str(), receipt.at],
        )
        .await?;
    }
    Ok(true)
}

pub(crate) async fn outbox_row<D: Db>(c: &mut D, id: i64) -> Result<Option<OutboxRow>> {
    let Some(row) = c
        .fetch_optional(
            "SELECT id, channel, state, purpose, attempts, last_error, provider_id, receipt, \
             receipt_at FROM outbox WHERE id = $1",
            args![id],
        )
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(OutboxRow {
        id: row.get("id")?,
        channel: parse(&row.get::<String>("channel")?, "channel")?,
        state: parse(&row.get::<String>("state")?, "outbox state")?,
        purpose: parse(&row.get::<String>("purpose")?, "outbox purpose")?,
        attempts: row.get("attempts")?,
        last_error: row.get("last_error")?,
        provider_id: row.get("provider_id")?,
        receipt: row.get::<Option<String>>("receipt")?.map(|r| parse(&r, "receipt")).transpose()?,
        receipt_at: row.get("receipt_at")?,
    }))
}

/// Attachments of the given channels still only at the provider, oldest first, that have
/// had fewer than `max_attempts` failed fetches and whose retry time has come.
pub(crate) async fn attachments_unfetched<D: Db>(
    c: &mut D,
    channels: Vec<Channel>,
    max_attempts: i64,
    limit: i64,
    now: DateTime<Utc>,
) -> Result<Vec<UnfetchedAttachment>> {
    if channels.is_empty() || limit <= 0 {
        return Ok(Vec::new());
    }
    let placeholders: Vec<String> = (0..channels.len()).map(|i| format!("${}", i + 4)).collect();
    let sql = format!(
        "SELECT a.id, m.channel, a.provider_ref, a.content_type, a.fetch_attempts \
         FROM attachments a JOIN messages m ON m.id = a.message_id \
         WHERE a.sha256 = '' AND a.provider_ref IS NOT NULL AND a.fetch_attempts >= 0 \
         AND a.fetch_attempts < $1 AND (a.fetch_after IS NULL OR a.fetch_after <= $2) \
         AND m.channel IN ({}) ORDER BY a.id LIMIT $3",
        placeholders.join(", ")
    );
    let mut args = args![max_attempts, now, limit];
    args.extend(channels.iter().map(|ch| Value::from(ch.as_str())));
    let rows = c.fetch_all(&sql, args).await?;
    rows.iter()
        .map(|r| {
            Ok(UnfetchedAttachment {
                id: r.get("id")?,
                channel: parse(&r.get::<String>("channel")?, "channel")?,
                provider_ref: r.get("provider_ref")?,
                content_type: r.get("content_type")?,
                attempts: r.get("fetch_attempts")?,
            })
        })
        .collect()
}

pub(crate) async fn attachment_fetched<D: Db>(
    c: &mut D,
    id: i64,
    sha256: String,
    size: u64,
    content_type: String,
) -> Result<()> {
    c.execute(
        "UPDATE attachments SET sha256 = $2, size = $3, content_type = $4, fetch_error = NULL, \
         fetch_after = NULL WHERE id = $1 AND sha256 = ''",
        args![id, sha256, i64::try_from(size).unwrap_or(i64::MAX), content_type],
    )
    .await?;
    Ok(())
}

pub(crate) async fn attachment_fetch_failed<D: Db>(
    c: &mut D,
    id: i64,
    error: String,
    retry_at: Option<DateTime<Utc>>,
) -> Result<()> {
    c.execute(
        "UPDATE attachments SET fetch_error = $2, fetch_after = $3, \
         fetch_attempts = CASE WHEN $3 IS NULL THEN -1 ELSE fetch_attempts + 1 END \
         WHERE id = $1 AND sha256 = ''",
        args![id, error, retry_at],
    )
    .await?;
    Ok(())
}

// ---- Web users, sessions and the audit log (aduan-web) ----

fn user_row(row: &Row) -> Result<User> {
    Ok(User {
        id: row.get("id")?,
        email: row.get("email")?,
        name: row.get("name")?,
        role: parse(&row.get::<String>("role")?, "role")?,
        opd: row.get("opd")?,
        disabled: row.get("disabled")?,
        created_at: row.get("created_at")?,
    })
}

const USER_COLUMNS: &str = "u.id, u.email, u.name, u.role, u.opd, u.disabled, u.created_at";

/// The user with this email (lower-cased) and their password hash, disabled or not.
pub(crate) async fn user_for_login<D: Db>(
    c: &mut D,
    email: &str,
) -> Result<Option<(User, String)>> {
    let sql = format!("SELECT {USER_COLUMNS}, u.password_hash FROM users u WHERE u.email = $1");
    let Some(row) = c.fetch_optional(&sql, args![email.trim().to_lowercase()]).await? else {
        return Ok(None);
    };
    Ok(Some((user_row(&row)?, row.get("password_hash")?)))
}

pub(crate) async fn users<D: Db>(c: &mut D) -> Result<Vec<User>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users u ORDER BY u.email");
    c.fetch_all(&sql, args![]).await?.iter().map(user_row).collect()
}

pub(crate) async fn audit<D: Db>(
    c: &mut D,
    actor: &Actor,
    action: &str,
    target: Option<&str>,
    note: Option<&str>,
    now: DateTime<Utc>,
) -> Result<()> {
    c.execute(
        "INSERT INTO audit (at, actor, action, target, note) VALUES ($1, $2, $3, $4, $5)",
        args![now, actor.to_string(), action, target, note],
    )
    .await?;
    Ok(())
}

pub(crate) async fn audit_log<D: Db>(c: &mut D, limit: i64) -> Result<Vec<AuditEntry>> {
    let rows = c
        .fetch_all(
            "SELECT at, actor, action, target, note FROM audit ORDER BY id DESC LIMIT $1",
            args![limit],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(AuditEntry {
                at: r.get("at")?,
                actor: parse(&r.get::<String>("actor")?, "actor")?,
                action: r.get("action")?,
                target: r.get("target")?,
                note: r.get("note")?,
            })
        })
        .collect()
}

/// A user added through the inbox, with its audit entry.
pub(crate) async fn add_user_by<D: Db>(
    c: &mut D,
    user: NewUser,
    actor: Actor,
    now: DateTime<Utc>,
) -> Result<i64> {
    let email = user.email.trim().to_lowercase();
    let note = format!("role {}", user.role.as_str());
    let id = add_user(c, user, now).await?;
    audit(c, &actor, "user_added", Some(&email), Some(&note), now).await?;
    Ok(id)
}

/// Disables or enables a user; disabling ends every session of theirs.
pub(crate) async fn set_user_disabled<D: Db>(
    c: &mut D,
    id: i64,
    disabled: bool,
    actor: Actor,
    now: DateTime<Utc>,
) -> Result<()> {
    let email: Option<String> = c
        .fetch_optional_scalar(
            "UPDATE users SET disabled = $2 WHERE id = $1 RETURNING email",
            args![id, disabled],
        )
        .await?;
    let Some(email) = email else {
        return Err(StoreError::Invalid(format!("there is no user {id}")));
    };
    if disabled {
        c.execute("DELETE FROM sessions WHERE user_id = $1", args![id]).await?;
    }
    let action = if disabled { "user_disabled" } else { "user_enabled" };
    audit(c, &actor, action, Some(&email), None, now).await
}

/// Starts a session (the caller verified the password) and records the sign-in. Expired
/// sessions of everyone are swept on the way.
pub(crate) async fn create_session<D: Db>(
    c: &mut D,
    token_hash: String,
    user_id: i64,
    csrf_token: String,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<()> {
    c.execute("DELETE FROM sessions WHERE expires_at < $1", args![now]).await?;
    let email: Option<String> = c
        .fetch_optional_scalar(
            "SELECT email FROM users WHERE id = $1 AND NOT disabled",
            args![user_id],
        )
        .await?;
    let Some(email) = email else {
        return Err(StoreError::Invalid(format!("user {user_id} can't sign in")));
    };
    c.execute(
        "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
        args![token_hash, user_id, csrf_token, now, expires_at],
    )
    .await?;
    audit(c, &Actor::User(email), "login", None, None, now).await
}

/// The live session with this token hash, of a user who is not disabled.
pub(crate) async fn session<D: Db>(
    c: &mut D,
    token_hash: &str,
    now: DateTime<Utc>,
) -> Result<Option<Session>> {
    let sql = format!(
        "SELECT {USER_COLUMNS}, s.csrf_token, s.expires_at FROM sessions s \
         JOIN users u ON u.id = s.user_id \
         WHERE s.token_hash = $1 AND s.expires_at > $2 AND NOT u.disabled"
    );
    let Some(row) = c.fetch_optional(&sql, args![token_hash, now]).await? else {
        return Ok(None);
    };
    Ok(Some(Session {
        user: user_row(&row)?,
        csrf_token: row.get("csrf_token")?,
        expires_at: row.get("expires_at")?,
    }))
}

/// Ends a session and records the sign-out; `false` when there was none.
pub(crate) async fn delete_session<D: Db>(
    c: &mut D,
    token_hash: String,
    now: DateTime<Utc>,
) -> Result<bool> {
    let email: Option<String> = c
        .fetch_optional_scalar(
            "DELETE FROM sessions WHERE token_hash = $1 \
             RETURNING (SELECT email FROM users WHERE users.id = sessions.user_id)",
            args![token_hash],
        )
        .await?;
    match email {
        Some(email) => {
            audit(c, &Actor::User(email), "logout", None, None, now).await?;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// Sets a ticket's category unless it has one (a report that named its service, e.g.
/// Open311's `service_code`).
pub(crate) async fn set_category_if_unset<D: Db>(
    c: &mut D,
    code: TicketCode,
    category: String,
) -> Result<bool> {
    let n = c
        .execute(
            "UPDATE tickets SET category = $2 WHERE code = $1 AND category IS NULL",
            args![code.to_string(), category],
        )
        .await?;
    Ok(n > 0)
}

/// The office day of a ticket's creation, as `YYYY-MM-DD` text.
fn day_expr<D: Db>(offset_secs: i32) -> String {
    if D::IS_PG {
        format!(
            "to_char((t.created_at AT TIME ZONE 'UTC') + make_interval(secs => {offset_secs}), 'YYYY-MM-DD')"
        )
    } else {
        format!("substr(datetime(t.created_at, '{offset_secs:+} seconds'), 1, 10)")
    }
}

/// The statuses of a ticket someone still has to act on.
const OPEN_STATUSES_SQL: &str = "('new', 'awaiting_identity', 'assigned', 'in_progress')";

pub(crate) async fn stats<D: Db>(
    c: &mut D,
    q: &StatsQuery,
    now: DateTime<Utc>,
) -> Result<Vec<StatsRow>> {
    let key = match q.group_by {
        StatsGroup::Opd => "t.opd".to_owned(),
        StatsGroup::Channel => "t.channel".to_owned(),
        StatsGroup::Category => "t.category".to_owned(),
        // Recorded by the router from the place named in the complaint.
        StatsGroup::Kecamatan => "t.kecamatan".to_owned(),
        StatsGroup::Day => day_expr::<D>(q.offset_secs),
    };
    let sql = format!(
        "SELECT {key} AS k, COUNT(*) AS total, \
         SUM(CASE WHEN t.status IN {OPEN_STATUSES_SQL} THEN 1 ELSE 0 END) AS open_n, \
         SUM(CASE WHEN t.status = 'resolved' THEN 1 ELSE 0 END) AS resolved_n, \
         SUM(CASE WHEN t.status = 'rejected' THEN 1 ELSE 0 END) AS rejected_n, \
         SUM(CASE WHEN t.status IN {OPEN_STATUSES_SQL} AND t.paused_at IS NULL \
             AND ((t.first_responded_at IS NULL AND t.first_response_due_at < $3) \
             OR (t.resolution_due_at IS NOT NULL AND t.resolution_due_at < $3)) \
             THEN 1 ELSE 0 END) AS overdue_n, \
         SUM(CASE WHEN t.first_responded_at IS NOT NULL \
             AND t.first_responded_at <= t.first_response_due_at THEN 1 ELSE 0 END) AS on_time_n, \
         SUM(CASE WHEN (t.first_responded_at IS NOT NULL AND t.first_responded_at > t.first_response_due_at) \
             OR (t.first_responded_at IS NULL AND t.first_response_due_at < $3 \
                 AND t.status NOT IN ('merged')) THEN 1 ELSE 0 END) AS late_n \
         FROM tickets t WHERE t.status <> 'merged' \
         AND ($1 IS NULL OR t.created_at >= $1) AND ($2 IS NULL OR t.created_at < $2) \
         GROUP BY {key} ORDER BY {key}"
    );
    let rows = c.fetch_all(&sql, args![q.from, q.to, now]).await?;
    let mut out = rows
        .iter()
        .map(|r| {
            let on_time: i64 = r.get("on_time_n")?;
            let late: i64 = r.get("late_n")?;
            Ok(StatsRow {
                key: r.get("k")?,
                total: r.get("total")?,
                open: r.get("open_n")?,
                resolved: r.get("resolved_n")?,
                rejected: r.get("rejected_n")?,
                overdue: r.get("overdue_n")?,
                responded_on_time: on_time,
                responded_late: late,
                compliance: (on_time + late > 0).then(|| on_time as f64 / (on_time + late) as f64),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    // Backends order NULL differently: the ungrouped first.
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

pub(crate) async fn per_day_by_channel<D: Db>(
    c: &mut D,
    from: DateTime<Utc>,
    offset_secs: i32,
) -> Result<Vec<DayChannelCount>> {
    let day = day_expr::<D>(offset_secs);
    let sql = format!(
        "SELECT {day} AS d, t.channel, COUNT(*) AS n FROM tickets t \
         WHERE t.created_at >= $1 AND t.status <> 'merged' GROUP BY {day}, t.channel ORDER BY {day}, t.channel"
    );
    let rows = c.fetch_all(&sql, args![from]).await?;
    rows.iter()
        .map(|r| {
            Ok(DayChannelCount {
                day: r.get("d")?,
                channel: parse(&r.get::<String>("channel")?, "channel")?,
                count: r.get("n")?,
            })
        })
        .collect()
}

// --- robust: dead notifications to officials are retried, then escalated (issue 21.3) ---
//
// A notification to officials or admins (`Purpose::is_internal`: disposition, warning,
// escalation) that went `dead` is never dropped silently. The routing worker's deadline
// round lists the ones dead for a while ([`dead_notifications`]) and either puts one back to
// `pending` for another attempt ([`outbox_revive`], at most a bounded number of times), or,
// once those are spent, queues one alert to the admins ([`outbox_escalate_dead`]). Both are
// keyed in the `notifications` table (`revived:{row}:{n}`, `undelivered:{row}`), so several
// workers do each once, and both leave a `notified` event on the ticket. The admins' alert
// rows are keyed `alert:{row}` at birth: they are retried like any notification, but when
// spent they are only marked `undelivered:` (an event on the ticket), never alerted about in
// turn (no chain of alerts about alerts).

/// An outbox row to officials or admins that is `dead` and not escalated yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadNotification {
    /// The outbox row.
    pub id: i64,
    pub ticket: TicketCode,
    pub purpose: Purpose,
    pub recipient: Identity,
    /// Why the last attempt failed (provider codes, never message text).
    pub last_error: Option<String>,
    /// How many times the row was put back to `pending` already.
    pub revivals: i64,
}

/// Notifications dead since before `dead_before` (a row's `next_attempt_at` is the time
/// it was given up), oldest first, at most `limit`.
pub(crate) async fn dead_notifications<D: Db>(
    c: &mut D,
    dead_before: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<DeadNotification>> {
    let internal: Vec<&str> =
        Purpose::ALL.into_iter().filter(|p| p.is_internal()).map(Purpose::as_str).collect();
    let sql = format!(
        "SELECT o.id, t.code, o.purpose, o.recipient_kind, o.recipient, o.last_error, \
         (SELECT COUNT(*) FROM notifications n WHERE n.ticket_id = o.ticket_id \
          AND n.key LIKE 'revived:' || CAST(o.id AS TEXT) || ':%') AS revivals \
         FROM outbox o JOIN tickets t ON t.id = o.ticket_id \
         WHERE o.state = 'dead' AND o.next_attempt_at <= $1 AND o.purpose IN ('{}') \
         AND o.recipient IS NOT NULL AND NOT EXISTS (SELECT 1 FROM notifications n \
         WHERE n.ticket_id = o.ticket_id AND n.key = 'undelivered:' || CAST(o.id AS TEXT)) \
         ORDER BY o.id LIMIT $2",
        internal.join("', '")
    );
    let rows = c.fetch_all(&sql, args![dead_before, limit]).await?;
    rows.iter()
        .map(|r| {
            let kind: String = r.get("recipient_kind")?;
            Ok(DeadNotification {
                id: r.get("id")?,
                ticket: parse(&r.get::<String>("code")?, "ticket code")?,
                purpose: parse(&r.get::<String>("purpose")?, "outbox purpose")?,
                recipient: Identity {
                    kind: parse(&kind, "identity kind")?,
                    value: r.get("recipient")?,
                },
                last_error: r.get("last_error")?,
                revivals: r.get("revivals")?,
            })
        })
        .collect()
}

/// Claims notification key `key` on the ticket; `false` when it was claimed before.
async fn robust_claim_key<D: Db>(
    c: &mut D,
    ticket_id: i64,
    key: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let id: Option<i64> = c
        .fetch_optional_scalar(
            "INSERT INTO notifications (ticket_id, key, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (ticket_id, key) DO NOTHING RETURNING id",
            args![ticket_id, key, now],
        )
        .await?;
    Ok(id.is_some())
}

/// Puts dead notification row `id` back to `pending` for revival number `n` (1-based):
/// `false` when the row is no longer dead or revival `n` happened already.
pub(crate) async fn outbox_revive<D: Db>(
    c: &mut D,
    id: i64,
    n: i64,
    of: i64,
    now: DateTime<Utc>,
) -> Result<bool> {
    let ticket_id: Option<i64> = c
        .fetch_optional_scalar(
            // `next_attempt_at` (the time it died) stays: the row is due at once.
            "UPDATE outbox SET state = 'pending', lease_until = NULL \
             WHERE id = $1 AND state = 'dead' RETURNING ticket_id",
            args![id],
        )
        .await?;
    let Some(ticket_id) = ticket_id else { return Ok(false) };
    let key = format!("revived:{id}:{n}");
    if !robust_claim_key(c, ticket_id, &key, now).await? {
        // Another worker revived it first: undo ours (the transaction rolls back).
        return Err(StoreError::Conflict(format!("outbox row {id} was revived already")));
    }
    let note = format!("undelivered notification retried ({n} of {of})");
    event(c, ticket_id, now, &Actor::System, EventKind::Notified, None, Some(&key), Some(&note))
        .await?;
    Ok(true)
}

/// Gives dead notification row `id` up for good: queues `text` to each of `to` (the
/// admins) once, and records it on the ticket. `false` when nothing was queued: it was
/// escalated before, the row is not dead, or it is itself an alert to the admins (then it
/// is only marked given up).
pub(crate) async fn outbox_escalate_dead<D: Db>(
    c: &mut D,
    id: i64,
    to: Vec<Identity>,
    text: String,
    now: DateTime<Utc>,
) -> Result<bool> {
    let row = c
        .fetch_optional(
            "SELECT o.ticket_id, t.channel FROM outbox o JOIN tickets t ON t.id = o.ticket_id \
             WHERE o.id = $1 AND o.state = 'dead'",
            args![id],
        )
        .await?;
    let Some(row) = row else { return Ok(false) };
    let ticket_id: i64 = row.get("ticket_id")?;
    let ticket_channel: Channel = parse(&row.get::<String>("channel")?, "channel")?;
    let key = format!("undelivered:{id}");
    if !robust_claim_key(c, ticket_id, &key, now).await? {
        return Ok(false);
    }
    let is_alert: Option<i64> = c
        .fetch_optional_scalar(
            "SELECT id FROM notifications WHERE ticket_id = $1 AND key = $2",
            args![ticket_id, format!("alert:{id}")],
        )
        .await?;
    if is_alert.is_some() {
        let note = "alert to the admins given up; not alerted about";
        event(c, ticket_id, now, &Actor::System, EventKind::Notified, None, Some(&key), Some(note))
            .await?;
        return Ok(false);
    }
    let mut alerted = 0;
    for admin in &to {
        let channel = match admin.kind {
            aduan_core::IdentityKind::Email => Channel::Email,
            aduan_core::IdentityKind::Phone => Channel::Sms,
            _ => continue,
        };
        let route = ReplyRoute::Send { channel, to: admin.clone() };
        let system = &Actor::System;
        let q = queue_outbound(
            c,
            ticket_id,
            ticket_channel,
            route,
            &text,
            system,
            Purpose::Escalation,
            None,
            now,
        )
        .await?;
        // The alert is retried when it dies, but never escalated itself.
        robust_claim_key(c, ticket_id, &format!("alert:{}", q.outbox_id), now).await?;
        alerted += 1;
    }
    let note = format!("notification given up; {alerted} admin(s) alerted");
    event(c, ticket_id, now, &Actor::System, EventKind::Notified, None, Some(&key), Some(&note))
        .await?;
    Ok(true)
}
