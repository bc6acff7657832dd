//! Helpers every feature's queries share: the ticket `SELECT`, loading and locking tickets,
//! writing an event, advisory locks, `EXPLAIN`. Imports nothing from the feature modules.

use aduan_core::{Actor, Budget, EventKind, Location, Status, ThreadCandidate, TicketCode};
use chrono::{DateTime, Utc};

use crate::db::{Db, Row, Value, args};
use crate::types::TicketSummary;
use crate::{Result, StoreError};

/// The ticket columns every ticket query selects, with the code of the ticket it was merged
/// into.
macro_rules! ticket_select {
    ($($rest:literal)*) => {
        concat!(
            "SELECT t.id, t.code, t.status, t.channel, t.reporter_id, t.opd, t.category, ",
            "t.lat, t.lon, mt.code AS merged_code, t.created_at, t.updated_at, ",
            "t.last_message_at, t.first_response_due_at, t.first_responded_at, t.resolved_at, ",
            "t.place, t.kecamatan, t.resolution_due_at, t.paused_at, t.suggestions, ",
            "t.first_response_budget, t.resolution_budget, t.assignee ",
            "FROM tickets t LEFT JOIN tickets mt ON mt.id = t.merged_into ",
            $($rest),*
        )
    };
}
pub(crate) use ticket_select;

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
pub(crate) use overdue_sql;

/// The parameters of a statement, numbered as they are bound: a piece of SQL binds its own
/// values and writes the placeholders it gets back (`$1`, `$2`, …), so it reads the same in
/// every statement that uses it (the intake statements' pieces, a list's `WHERE` clause).
#[derive(Default)]
pub(crate) struct Params(pub(crate) Vec<Value>);

impl Params {
    /// Adds a parameter; returns its placeholder.
    pub(crate) fn bind(&mut self, v: impl Into<Value>) -> String {
        self.0.push(v.into());
        format!("${}", self.0.len())
    }
}

pub(crate) fn parse<T: std::str::FromStr>(value: &str, what: &str) -> Result<T> {
    value.parse().map_err(|_| StoreError::Internal(format!("stored {what} {value:?} is not valid")))
}

pub(crate) fn location(lat: Option<f64>, lon: Option<f64>) -> Option<Location> {
    Some(Location { lat: lat?, lon: lon? })
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
    pub(crate) fn candidate(&self) -> ThreadCandidate {
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
            assignee: row.get("assignee")?,
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

/// Locks ticket `code` ([`lock_tickets`]) and loads it as it is once locked.
pub(crate) async fn lock_ticket<D: Db>(
    c: &mut D,
    code: TicketCode,
    now: DateTime<Utc>,
) -> Result<TicketRow> {
    lock_tickets(c, &[code]).await?;
    require_ticket(c, code, now).await
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
pub(crate) async fn follow_merges<D: Db>(
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

/// Appends the `status_changed` event of ticket `ticket_id`: from status `from` to `to`.
pub(crate) async fn status_event<D: Db>(
    c: &mut D,
    ticket_id: i64,
    at: DateTime<Utc>,
    actor: &Actor,
    (from, to): (Status, Status),
    note: Option<&str>,
) -> Result<()> {
    let (from, to) = (Some(from.as_str()), Some(to.as_str()));
    event(c, ticket_id, at, actor, EventKind::StatusChanged, from, to, note).await
}

/// Moves ticket `t` from the status it was loaded with to `to` (the row's `updated_at` too)
/// and appends the status event.
pub(crate) async fn move_status<D: Db>(
    c: &mut D,
    t: &TicketRow,
    to: Status,
    actor: &Actor,
    at: DateTime<Utc>,
) -> Result<()> {
    c.execute(
        "UPDATE tickets SET status = $2, updated_at = $3 WHERE id = $1",
        args![t.id, to.as_str(), at],
    )
    .await?;
    status_event(c, t.id, at, actor, (t.summary.status, to), None).await
}

/// Appends a row to the audit log (who did what to which account, key or resident).
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

/// Transaction-scoped advisory lock on a string key (PostgreSQL only).
pub(crate) async fn lock<D: Db>(c: &mut D, key: &str) -> Result<()> {
    c.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", args![key]).await?;
    Ok(())
}

pub(crate) async fn load_ticket_by_id<D: Db>(
    c: &mut D,
    id: i64,
    now: DateTime<Utc>,
) -> Result<Option<TicketRow>> {
    let row = c.fetch_optional(ticket_select!("WHERE t.id = $1"), args![id]).await?;
    row.map(|r| ticket_row(&r, now)).transpose()
}

/// The plan the database chose for a statement: `EXPLAIN QUERY PLAN` on SQLite, `EXPLAIN`
/// on PostgreSQL, one line per step.
pub(crate) async fn explain<D: Db>(
    c: &mut D,
    sql: &str,
    params: Vec<Value>,
) -> Result<Vec<String>> {
    if D::IS_PG {
        c.fetch_all_scalar(&format!("EXPLAIN {sql}"), params).await
    } else {
        let rows = c.fetch_all(&format!("EXPLAIN QUERY PLAN {sql}"), params).await?;
        rows.iter().map(|r| r.get::<String>("detail")).collect()
    }
}

/// Records notification key `key` on the ticket (`notifications` is unique on
/// `(ticket_id, key)`); `false` when it was recorded before, so each keyed step happens once.
pub(crate) async fn claim_key<D: Db>(
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
