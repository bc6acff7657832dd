//! Reading tickets: one ticket with its thread and events, and the filtered, keyset-paged
//! ticket list (with its `EXPLAIN` for the benchmark).
//!
//! **The list at scale (migration 0009).** [`list_tickets`] builds its statement from the
//! filters that are set (no `$n IS NULL OR …` terms), so every filter combination is its own
//! prepared statement with its own plan, newest first, keyset-paged by `t.id < cursor`; it
//! never counts the table. Each query shape has an index that yields rows already in
//! `id DESC` order, so a page reads about `limit` index entries at any table size:
//!
//! | index | serves |
//! |---|---|
//! | `tickets` primary key | first page, deep cursor pages |
//! | `tickets_status (status, id)` | `status=` |
//! | `tickets_opd (opd, id)` | `opd=` (an official's list) |
//! | `tickets_opd_status (opd, status, id)` | an official's list with a status |
//! | `tickets_channel (channel, id)` | `channel=` |
//! | `tickets_category (category, id)` | `category=` / Open311 `service_code` |
//! | `tickets_open (id, paused_at, …) WHERE status IN (open statuses)` | `overdue=true`, the deadline watcher's scan |
//! | the unique index on `code` | `q=` that is a ticket code (a lookup, not a text search) |
//! | `tickets_dispose (id) WHERE dispose_pending` | `Store::undisposed` |
//! | `tickets_route (route_pending, id)` | `Store::route_claim` |
//!
//! A query meant for a partial index repeats the index's `WHERE` word for word
//! (`overdue_sql!`, `deadline_scan_sql`): SQLite uses a partial index only then. SQLite plans
//! without statistics (the daemon never runs `ANALYZE`), so the two walks it would get wrong
//! say `INDEXED BY tickets_open` (`OPEN_SELECT`, SQLite only). Known cost: a `q=` that is not
//! a ticket code scans the messages (`LOWER(text) LIKE`); a full-text index is the way out.

use aduan_core::{
    Actor, AttachmentRef, Direction, EventKind, Identity, Purpose, Status, TicketCode,
};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

use super::common::{
    OPEN_SELECT, TICKET_SELECT, explain, load_ticket, location, overdue_sql, parse, ticket_row,
};
use crate::db::{Db, Value, args};
use crate::types::{
    Cursor, EventView, MessageView, Page, ReporterView, TicketFilter, TicketSummary, TicketView,
};
use crate::{Result, Store, now};

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
         m.lat, m.lon, m.revision_of, o.state, o.purpose, \
         o.receipt, o.receipt_at, o.sent_at AS out_sent_at, o.last_error FROM messages m \
         LEFT JOIN outbox o ON o.id = (SELECT MAX(l.id) FROM outbox l WHERE l.message_id = m.id) \
         WHERE m.ticket_id = $1 ORDER BY m.id",
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
        let receipt = match &state {
            Some(state) => Some(aduan_core::DeliveryView::of(
                parse(state, "outbox state")?,
                row.get::<Option<String>>("receipt")?.map(|r| parse(&r, "receipt")).transpose()?,
                row.get("receipt_at")?,
                row.get("out_sent_at")?,
                row.get("last_error")?,
            )),
            None => None,
        };
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
            receipt,
            deliveries: Vec::new(),
            delivery_note: None,
        });
    }
    super::outbox::fill_deliveries(c, t.id, &mut messages).await?;
    // The key of a confirmation link is the resident's alone: an official (or anyone who
    // reads the ticket) holding it could close the ticket in the resident's name.
    for m in messages.iter_mut().filter(|m| m.purpose == Some(Purpose::ConfirmRequest)) {
        m.text = hide_confirm_key(&m.text);
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
    Ok(Some(TicketView {
        summary: t.summary,
        reporter,
        messages,
        events,
        incident: None,
        incident_suggestions: Vec::new(),
        resident: None,
    }))
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

/// The plan of the ticket list for `f` (the benchmark prints it).
pub(crate) async fn explain_list<D: Db>(
    c: &mut D,
    f: &TicketFilter,
    now: DateTime<Utc>,
) -> Result<Vec<String>> {
    let (sql, params) = list_sql::<D>(f, f.limit.clamp(1, 500), now);
    explain(c, &sql, params).await
}

impl Store {
    pub async fn ticket(&self, code: TicketCode) -> Result<Option<TicketView>> {
        let now = now();
        let policy = self.inner.opts.incidents.clone();
        read!(self, |c| async move {
            let mut view = ticket_view(c, code, now).await?;
            if let Some(v) = view.as_mut() {
                super::incidents::fill_view(c, &policy, v, now).await?;
                super::incidents::fill_resident(c, v).await?;
            }
            Ok(view)
        })
    }

    pub async fn tickets(&self, filter: &TicketFilter) -> Result<Page<TicketSummary>> {
        let now = now();
        let filter = filter.clone();
        read!(self, |c| list_tickets(c, &filter, now))
    }

    /// The database's plan for [`Store::tickets`] with `filter` (`EXPLAIN QUERY PLAN` on
    /// SQLite, `EXPLAIN` on PostgreSQL), one line per step: `cargo xtask bench` prints it.
    pub async fn explain_tickets(&self, filter: &TicketFilter) -> Result<Vec<String>> {
        let now = now();
        let filter = filter.clone();
        read!(self, |c| explain_list(c, &filter, now))
    }
}

// --- robust: status answer ---

/// The ticket `code` names, or the one it was merged into (through `follow_merges`), in
/// one read: what a "CEK" answer is about. `None` when no ticket has that code.
pub(crate) async fn live_summary<D: Db>(
    c: &mut D,
    code: TicketCode,
    now: DateTime<Utc>,
) -> Result<Option<TicketSummary>> {
    let Some(t) = load_ticket(c, code, now).await? else { return Ok(None) };
    Ok(Some(super::common::follow_merges(c, t, now).await?.summary))
}

/// `…/lacak/ADU-…?k=<key>` → `…/lacak/ADU-…?k=…`: the view of a confirmation question never
/// shows the key that answers it (the resident got it in the message itself).
pub(crate) fn hide_confirm_key(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("?k=") {
        out.push_str(&rest[..i + 3]);
        out.push('…');
        rest = rest[i + 3..].trim_start_matches(|c: char| c.is_ascii_alphanumeric());
    }
    out.push_str(rest);
    out
}
