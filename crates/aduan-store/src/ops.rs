//! Every query of the store, written once and compiled for each backend by `backend_ops!`.
//!
//! The SQL is the common dialect of SQLite and PostgreSQL (`$n` parameters, `RETURNING`,
//! `ON CONFLICT`); the few differences are switched on `IS_PG`. Each function takes a
//! connection that is already inside a transaction (writes) or a pooled one (reads).

use std::collections::HashMap;

use aduan_core::{
    Actor, AttachmentRef, Channel, Direction, EventKind, Identity, InboundMessage, Location,
    OutboxState, ReplyRoute, Sender, Status, ThreadCandidate, ThreadDecision, TicketCode,
    choose_reply_route, decide_thread,
};
use chrono::{DateTime, Duration, Utc};
use sqlx::Row;

use crate::types::*;
use crate::{Result, StoreError, StoreOptions, truncate_ms};

/// The ticket columns every ticket query selects, with the code of the ticket it was merged
/// into.
macro_rules! ticket_select {
    ($($rest:literal)*) => {
        concat!(
            "SELECT t.id, t.code, t.status, t.channel, t.reporter_id, t.opd, t.category, ",
            "t.lat, t.lon, mt.code AS merged_code, t.created_at, t.updated_at, ",
            "t.last_message_at, t.first_response_due_at, t.first_responded_at, t.resolved_at ",
            "FROM tickets t LEFT JOIN tickets mt ON mt.id = t.merged_into ",
            $($rest),*
        )
    };
}

const OPEN_STATUSES_SQL: &str = "('new', 'awaiting_identity', 'assigned', 'in_progress')";

fn parse<T: std::str::FromStr>(value: &str, what: &str) -> Result<T> {
    value
        .parse()
        .map_err(|_| StoreError::Invalid(format!("stored {what} {value:?} is not valid")))
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
struct TicketRow {
    id: i64,
    reporter_id: Option<i64>,
    last_message_at: DateTime<Utc>,
    summary: TicketSummary,
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

macro_rules! backend_ops {
    ($module:ident, $db:ty, $conn:ty, $is_pg:expr) => {
        pub(crate) mod $module {
            use super::*;

            type Conn = $conn;
            type DbRow = <$db as sqlx::Database>::Row;
            const IS_PG: bool = $is_pg;

            pub(crate) async fn ping(c: &mut Conn) -> Result<()> {
                sqlx::query("SELECT 1").execute(&mut *c).await?;
                Ok(())
            }

            fn ticket_row(row: &DbRow, now: DateTime<Utc>) -> Result<TicketRow> {
                let status: Status = parse(&row.try_get::<String, _>("status")?, "status")?;
                let first_responded_at: Option<DateTime<Utc>> = row.try_get("first_responded_at")?;
                let due: DateTime<Utc> = row.try_get("first_response_due_at")?;
                let merged: Option<String> = row.try_get("merged_code")?;
                Ok(TicketRow {
                    id: row.try_get("id")?,
                    reporter_id: row.try_get("reporter_id")?,
                    last_message_at: row.try_get("last_message_at")?,
                    summary: TicketSummary {
                        code: parse(&row.try_get::<String, _>("code")?, "ticket code")?,
                        status,
                        channel: parse(&row.try_get::<String, _>("channel")?, "channel")?,
                        opd: row.try_get("opd")?,
                        category: row.try_get("category")?,
                        created_at: row.try_get("created_at")?,
                        updated_at: row.try_get("updated_at")?,
                        first_response_due_at: due,
                        first_responded_at,
                        resolved_at: row.try_get("resolved_at")?,
                        overdue: status.is_open() && first_responded_at.is_none() && due < now,
                        location: location(row.try_get("lat")?, row.try_get("lon")?),
                        merged_into: merged.map(|m| parse(&m, "ticket code")).transpose()?,
                    },
                })
            }

            async fn load_ticket(c: &mut Conn, code: TicketCode, now: DateTime<Utc>) -> Result<Option<TicketRow>> {
                let row = sqlx::query(ticket_select!("WHERE t.code = $1"))
                    .bind(code.to_string())
                    .fetch_optional(&mut *c)
                    .await?;
                row.map(|r| ticket_row(&r, now)).transpose()
            }

            async fn require_ticket(c: &mut Conn, code: TicketCode, now: DateTime<Utc>) -> Result<TicketRow> {
                load_ticket(c, code, now).await?.ok_or(StoreError::TicketNotFound(code))
            }

            /// Follows `merged_into` to the ticket that lives on (at most a few hops).
            async fn follow_merges(c: &mut Conn, mut t: TicketRow, now: DateTime<Utc>) -> Result<TicketRow> {
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

            async fn event(
                c: &mut Conn,
                ticket_id: i64,
                at: DateTime<Utc>,
                actor: &Actor,
                kind: EventKind,
                from: Option<&str>,
                to: Option<&str>,
                note: Option<&str>,
            ) -> Result<()> {
                sqlx::query(
                    "INSERT INTO events (ticket_id, at, actor, kind, from_value, to_value, note) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(ticket_id)
                .bind(at)
                .bind(actor.to_string())
                .bind(kind.as_str())
                .bind(from)
                .bind(to)
                .bind(note)
                .execute(&mut *c)
                .await?;
                Ok(())
            }

            /// Transaction-scoped advisory lock on a string key (PostgreSQL only).
            async fn lock(c: &mut Conn, key: &str) -> Result<()> {
                sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                    .bind(key)
                    .execute(&mut *c)
                    .await?;
                Ok(())
            }

            async fn identity_owner(c: &mut Conn, id: &Identity) -> Result<Option<(i64, i64)>> {
                let row = sqlx::query("SELECT id, reporter_id FROM identities WHERE kind = $1 AND value = $2")
                    .bind(id.kind.as_str())
                    .bind(&id.value)
                    .fetch_optional(&mut *c)
                    .await?;
                Ok(match row {
                    Some(r) => Some((r.try_get("id")?, r.try_get("reporter_id")?)),
                    None => None,
                })
            }

            /// Finds or creates the reporter behind a sender. Returns the reporter and the
            /// identity the message came from. Extra contacts are attached when nobody owns
            /// them yet; a contact already owned by another reporter is left with its owner.
            async fn resolve_reporter(
                c: &mut Conn,
                sender: &Sender,
                now: DateTime<Utc>,
            ) -> Result<(Option<i64>, Option<i64>)> {
                let Some(primary) = sender.identity.as_ref().or(sender.contacts.first()) else {
                    return Ok((None, None));
                };
                let (reporter_id, identity_id) = match identity_owner(c, primary).await? {
                    Some((identity_id, reporter_id)) => {
                        if let Some(name) = &sender.display_name {
                            sqlx::query("UPDATE reporters SET name = $2 WHERE id = $1 AND name IS NULL")
                                .bind(reporter_id)
                                .bind(name)
                                .execute(&mut *c)
                                .await?;
                        }
                        (reporter_id, identity_id)
                    }
                    None => {
                        let reporter_id: i64 = sqlx::query_scalar(
                            "INSERT INTO reporters (name, created_at) VALUES ($1, $2) RETURNING id",
                        )
                        .bind(&sender.display_name)
                        .bind(now)
                        .fetch_one(&mut *c)
                        .await?;
                        let identity_id: i64 = sqlx::query_scalar(
                            "INSERT INTO identities (reporter_id, kind, value, created_at) \
                             VALUES ($1, $2, $3, $4) RETURNING id",
                        )
                        .bind(reporter_id)
                        .bind(primary.kind.as_str())
                        .bind(&primary.value)
                        .bind(now)
                        .fetch_one(&mut *c)
                        .await?;
                        (reporter_id, identity_id)
                    }
                };
                for contact in sender.contacts.iter().filter(|k| *k != primary) {
                    sqlx::query(
                        "INSERT INTO identities (reporter_id, kind, value, created_at) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT (kind, value) DO NOTHING",
                    )
                    .bind(reporter_id)
                    .bind(contact.kind.as_str())
                    .bind(&contact.value)
                    .bind(now)
                    .execute(&mut *c)
                    .await?;
                }
                Ok((Some(reporter_id), Some(identity_id)))
            }

            /// The ticket a message names: its explicit `ticket`, a quoted code, or the
            /// ticket of a message it replies to; followed through merges.
            async fn named_ticket(c: &mut Conn, msg: &InboundMessage, now: DateTime<Utc>) -> Result<Option<TicketRow>> {
                let codes = msg.thread.ticket.into_iter().chain(TicketCode::find_all(&msg.text));
                for code in codes {
                    if let Some(t) = load_ticket(c, code, now).await? {
                        return Ok(Some(follow_merges(c, t, now).await?));
                    }
                }
                for reference in &msg.thread.references {
                    let row = sqlx::query(ticket_select!(
                        "JOIN messages m ON m.ticket_id = t.id WHERE m.channel = $1 AND m.provider_id = $2"
                    ))
                    .bind(msg.channel.as_str())
                    .bind(reference)
                    .fetch_optional(&mut *c)
                    .await?;
                    if let Some(row) = row {
                        let t = ticket_row(&row, now)?;
                        return Ok(Some(follow_merges(c, t, now).await?));
                    }
                }
                Ok(None)
            }

            async fn latest_ticket_of(c: &mut Conn, reporter_id: i64, channel: Channel, now: DateTime<Utc>) -> Result<Option<TicketRow>> {
                let row = sqlx::query(ticket_select!(
                    "WHERE t.reporter_id = $1 AND t.channel = $2 ORDER BY t.id DESC LIMIT 1"
                ))
                .bind(reporter_id)
                .bind(channel.as_str())
                .fetch_optional(&mut *c)
                .await?;
                match row {
                    Some(r) => Ok(Some(follow_merges(c, ticket_row(&r, now)?, now).await?)),
                    None => Ok(None),
                }
            }

            async fn create_ticket(
                c: &mut Conn,
                opts: &StoreOptions,
                msg: &InboundMessage,
                reporter_id: Option<i64>,
                now: DateTime<Utc>,
            ) -> Result<(i64, TicketCode)> {
                let due = truncate_ms(opts.sla.first_response_due(now));
                for _ in 0..8 {
                    let code = TicketCode::from_entropy(rand::random());
                    let id: Option<i64> = sqlx::query_scalar(
                        "INSERT INTO tickets (code, status, channel, reporter_id, lat, lon, created_at, \
                         updated_at, last_message_at, first_response_due_at) \
                         VALUES ($1, 'new', $2, $3, $4, $5, $6, $6, $6, $7) \
                         ON CONFLICT (code) DO NOTHING RETURNING id",
                    )
                    .bind(code.to_string())
                    .bind(msg.channel.as_str())
                    .bind(reporter_id)
                    .bind(msg.location.map(|l| l.lat))
                    .bind(msg.location.map(|l| l.lon))
                    .bind(now)
                    .bind(due)
                    .fetch_optional(&mut *c)
                    .await?;
                    if let Some(id) = id {
                        event(c, id, now, &Actor::System, EventKind::Created, None, Some("new"), None).await?;
                        return Ok((id, code));
                    }
                }
                Err(StoreError::Conflict("no free tracking code found".into()))
            }

            pub(crate) async fn ingest(
                c: &mut Conn,
                opts: &StoreOptions,
                msg: InboundMessage,
                now: DateTime<Utc>,
            ) -> Result<Ingested> {
                if IS_PG {
                    // Concurrent deliveries of one message, and concurrent messages of one
                    // sender, wait for each other: one stores, the others see it.
                    lock(c, &format!("message:{}:{}", msg.channel, msg.provider_id)).await?;
                    if let Some(id) = msg.sender.identity.as_ref().or(msg.sender.contacts.first()) {
                        lock(c, &format!("identity:{}:{}", id.kind, id.value)).await?;
                    }
                }
                let existing = sqlx::query(
                    "SELECT m.id, t.code FROM messages m LEFT JOIN tickets t ON t.id = m.ticket_id \
                     WHERE m.channel = $1 AND m.provider_id = $2",
                )
                .bind(msg.channel.as_str())
                .bind(&msg.provider_id)
                .fetch_optional(&mut *c)
                .await?;
                if let Some(row) = existing {
                    let code: Option<String> = row.try_get("code")?;
                    return Ok(Ingested {
                        ticket: code.map(|c| parse(&c, "ticket code")).transpose()?,
                        message_id: row.try_get("id")?,
                        duplicate: true,
                        ticket_created: false,
                        reopened: false,
                    });
                }

                let (reporter_id, identity_id) = resolve_reporter(c, &msg.sender, now).await?;
                let named = named_ticket(c, &msg, now).await?;
                let window_open = opts.threading.window_for(msg.channel) > Duration::zero();
                let latest = match reporter_id {
                    Some(r) if named.is_none() && window_open => latest_ticket_of(c, r, msg.channel, now).await?,
                    _ => None,
                };
                let decision = decide_thread(
                    &opts.threading,
                    msg.channel,
                    msg.thread.automated,
                    now,
                    named.as_ref().map(TicketRow::candidate).as_ref(),
                    latest.as_ref().map(TicketRow::candidate).as_ref(),
                );

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
                            .ok_or_else(|| StoreError::Invalid("joined an unknown ticket".into()))?;
                        outcome.ticket = Some(joined.summary.code);
                        sqlx::query(
                            "UPDATE tickets SET last_message_at = $2, updated_at = $2, \
                             status = COALESCE($3, status), \
                             resolved_at = CASE WHEN $3 IS NULL THEN resolved_at ELSE NULL END, \
                             lat = COALESCE(lat, $4), lon = COALESCE(lon, $5) WHERE id = $1",
                        )
                        .bind(id)
                        .bind(now)
                        .bind(reopen_to.map(Status::as_str))
                        .bind(msg.location.map(|l| l.lat))
                        .bind(msg.location.map(|l| l.lon))
                        .execute(&mut *c)
                        .await?;
                        if let Some(to) = reopen_to {
                            outcome.reopened = true;
                            let from = joined.summary.status.as_str();
                            event(c, id, now, &Actor::Resident, EventKind::StatusChanged, Some(from), Some(to.as_str()), None).await?;
                        }
                        Some(id)
                    }
                    ThreadDecision::Orphan => None,
                };

                let message_id: i64 = sqlx::query_scalar(
                    "INSERT INTO messages (ticket_id, direction, channel, provider_id, identity_id, \
                     display_name, text, lat, lon, automated, sent_at, stored_at) \
                     VALUES ($1, 'in', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
                )
                .bind(ticket_id)
                .bind(msg.channel.as_str())
                .bind(&msg.provider_id)
                .bind(identity_id)
                .bind(&msg.sender.display_name)
                .bind(&msg.text)
                .bind(msg.location.map(|l| l.lat))
                .bind(msg.location.map(|l| l.lon))
                .bind(msg.thread.automated)
                .bind(truncate_ms(msg.received_at))
                .bind(now)
                .fetch_one(&mut *c)
                .await?;
                outcome.message_id = message_id;

                for a in &msg.attachments {
                    sqlx::query(
                        "INSERT INTO attachments (message_id, filename, content_type, size, sha256, provider_ref) \
                         VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(message_id)
                    .bind(&a.filename)
                    .bind(&a.content_type)
                    .bind(i64::try_from(a.size).unwrap_or(i64::MAX))
                    .bind(&a.sha256)
                    .bind(&a.provider_ref)
                    .execute(&mut *c)
                    .await?;
                }
                if let (Some(id), false) = (ticket_id, outcome.ticket_created) {
                    let mid = message_id.to_string();
                    event(c, id, now, &Actor::Resident, EventKind::MessageReceived, None, Some(&mid), None).await?;
                }
                Ok(outcome)
            }

            pub(crate) async fn ticket_view(c: &mut Conn, code: TicketCode, now: DateTime<Utc>) -> Result<Option<TicketView>> {
                let Some(t) = load_ticket(c, code, now).await? else {
                    return Ok(None);
                };
                let reporter = match t.reporter_id {
                    Some(rid) => {
                        let r = sqlx::query("SELECT name, confidential FROM reporters WHERE id = $1")
                            .bind(rid)
                            .fetch_one(&mut *c)
                            .await?;
                        let ids = sqlx::query("SELECT kind, value FROM identities WHERE reporter_id = $1 ORDER BY id")
                            .bind(rid)
                            .fetch_all(&mut *c)
                            .await?;
                        let identities = ids
                            .iter()
                            .map(|row| {
                                Ok(Identity {
                                    kind: parse(&row.try_get::<String, _>("kind")?, "identity kind")?,
                                    value: row.try_get("value")?,
                                })
                            })
                            .collect::<Result<Vec<_>>>()?;
                        Some(ReporterView {
                            name: r.try_get("name")?,
                            confidential: r.try_get("confidential")?,
                            identities,
                        })
                    }
                    None => None,
                };

                let mut attachments: HashMap<i64, Vec<AttachmentRef>> = HashMap::new();
                let rows = sqlx::query(
                    "SELECT a.message_id, a.filename, a.content_type, a.size, a.sha256, a.provider_ref \
                     FROM attachments a JOIN messages m ON m.id = a.message_id WHERE m.ticket_id = $1 ORDER BY a.id",
                )
                .bind(t.id)
                .fetch_all(&mut *c)
                .await?;
                for row in rows {
                    let size: i64 = row.try_get("size")?;
                    attachments.entry(row.try_get("message_id")?).or_default().push(AttachmentRef {
                        filename: row.try_get("filename")?,
                        content_type: row.try_get("content_type")?,
                        size: u64::try_from(size).unwrap_or(0),
                        sha256: row.try_get("sha256")?,
                        provider_ref: row.try_get("provider_ref")?,
                    });
                }

                let rows = sqlx::query(
                    "SELECT m.id, m.direction, m.channel, m.text, m.sent_at, m.author, m.display_name, \
                     m.lat, m.lon, o.state FROM messages m LEFT JOIN outbox o ON o.message_id = m.id \
                     WHERE m.ticket_id = $1 ORDER BY m.id",
                )
                .bind(t.id)
                .fetch_all(&mut *c)
                .await?;
                let mut messages = Vec::with_capacity(rows.len());
                for row in rows {
                    let id: i64 = row.try_get("id")?;
                    let direction = match row.try_get::<String, _>("direction")?.as_str() {
                        "out" => Direction::Out,
                        _ => Direction::In,
                    };
                    let author: Option<String> = match direction {
                        Direction::Out => row.try_get("author")?,
                        Direction::In => row.try_get("display_name")?,
                    };
                    let state: Option<String> = row.try_get("state")?;
                    messages.push(MessageView {
                        id,
                        direction,
                        channel: parse(&row.try_get::<String, _>("channel")?, "channel")?,
                        text: row.try_get("text")?,
                        at: row.try_get("sent_at")?,
                        author,
                        attachments: attachments.remove(&id).unwrap_or_default(),
                        location: location(row.try_get("lat")?, row.try_get("lon")?),
                        delivery: state.map(|s| parse(&s, "outbox state")).transpose()?,
                    });
                }

                let rows = sqlx::query(
                    "SELECT at, actor, kind, from_value, to_value, note FROM events WHERE ticket_id = $1 ORDER BY id",
                )
                .bind(t.id)
                .fetch_all(&mut *c)
                .await?;
                let events = rows
                    .iter()
                    .map(|row| {
                        Ok(EventView {
                            at: row.try_get("at")?,
                            actor: parse(&row.try_get::<String, _>("actor")?, "actor")?,
                            kind: parse(&row.try_get::<String, _>("kind")?, "event kind")?,
                            from: row.try_get("from_value")?,
                            to: row.try_get("to_value")?,
                            note: row.try_get("note")?,
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok(Some(TicketView { summary: t.summary, reporter, messages, events }))
            }

            pub(crate) async fn list_tickets(c: &mut Conn, f: &TicketFilter, now: DateTime<Utc>) -> Result<Page<TicketSummary>> {
                let limit = f.limit.clamp(1, 500);
                let q = f.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
                let q_code = q.and_then(|q| q.parse::<TicketCode>().ok()).map(|c| c.to_string());
                let sql = format!(
                    concat!(
                        ticket_select!(),
                        "WHERE ($1 IS NULL OR t.status = $1) AND ($2 IS NULL OR t.opd = $2) ",
                        "AND ($3 IS NULL OR t.channel = $3) AND ($4 IS NULL OR t.id < $4) ",
                        "AND ($5 IS NULL OR $5 = (t.first_responded_at IS NULL AND t.first_response_due_at < $6 ",
                        "AND t.status IN {open})) ",
                        "AND ($7 IS NULL OR t.code = $8 OR EXISTS (SELECT 1 FROM messages m ",
                        "WHERE m.ticket_id = t.id AND LOWER(m.text) LIKE $7 ESCAPE '\\')) ",
                        "ORDER BY t.id DESC LIMIT $9"
                    ),
                    open = OPEN_STATUSES_SQL
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(f.status.map(Status::as_str))
                    .bind(f.opd.as_deref())
                    .bind(f.channel.map(Channel::as_str))
                    .bind(f.cursor.map(|c| c.0))
                    .bind(f.overdue)
                    .bind(now)
                    .bind(q.map(like_pattern))
                    .bind(q_code.unwrap_or_default())
                    .bind(limit + 1)
                    .fetch_all(&mut *c)
                    .await?;
                let mut items = Vec::with_capacity(rows.len());
                let mut last_id = None;
                for row in rows.iter().take(limit as usize) {
                    let t = ticket_row(row, now)?;
                    last_id = Some(t.id);
                    items.push(t.summary);
                }
                let next_cursor = if rows.len() as i64 > limit { last_id.map(|id| Cursor(id).to_string()) } else { None };
                Ok(Page { items, next_cursor })
            }

            pub(crate) async fn assign(
                c: &mut Conn,
                code: TicketCode,
                opd: String,
                actor: Actor,
                note: Option<String>,
                now: DateTime<Utc>,
            ) -> Result<()> {
                let t = require_ticket(c, code, now).await?;
                let from = t.summary.status;
                if from == Status::Assigned && t.summary.opd.as_deref() == Some(opd.as_str()) {
                    return Err(StoreError::Conflict(format!("{code} is already assigned to {opd}")));
                }
                if from != Status::Assigned {
                    from.can_become(Status::Assigned)?;
                }
                sqlx::query(
                    "UPDATE tickets SET status = 'assigned', opd = $2, updated_at = $3, resolved_at = NULL WHERE id = $1",
                )
                .bind(t.id)
                .bind(&opd)
                .bind(now)
                .execute(&mut *c)
                .await?;
                event(c, t.id, now, &actor, EventKind::Assigned, t.summary.opd.as_deref(), Some(&opd), note.as_deref()).await?;
                if from != Status::Assigned {
                    event(c, t.id, now, &actor, EventKind::StatusChanged, Some(from.as_str()), Some("assigned"), None).await?;
                }
                Ok(())
            }

            pub(crate) async fn set_status(
                c: &mut Conn,
                code: TicketCode,
                to: Status,
                actor: Actor,
                note: Option<String>,
                now: DateTime<Utc>,
            ) -> Result<()> {
                let t = require_ticket(c, code, now).await?;
                let from = t.summary.status;
                from.check_status_action(to, note.as_deref())?;
                // Acting on a ticket answers it for the response clock.
                let responds = matches!(to, Status::InProgress | Status::Resolved | Status::Rejected);
                // Back to triage: no OPD holds it any more.
                let clears_opd = to == Status::New && t.summary.opd.is_some();
                sqlx::query(
                    "UPDATE tickets SET status = $2, updated_at = $3, \
                     first_responded_at = CASE WHEN $4 THEN COALESCE(first_responded_at, $3) ELSE first_responded_at END, \
                     resolved_at = CASE WHEN $2 = 'resolved' THEN $3 ELSE NULL END, \
                     opd = CASE WHEN $5 THEN NULL ELSE opd END WHERE id = $1",
                )
                .bind(t.id)
                .bind(to.as_str())
                .bind(now)
                .bind(responds)
                .bind(clears_opd)
                .execute(&mut *c)
                .await?;
                event(c, t.id, now, &actor, EventKind::StatusChanged, Some(from.as_str()), Some(to.as_str()), note.as_deref()).await?;
                if clears_opd {
                    event(c, t.id, now, &actor, EventKind::Assigned, t.summary.opd.as_deref(), None, None).await?;
                }
                Ok(())
            }

            pub(crate) async fn reply(
                c: &mut Conn,
                code: TicketCode,
                text: String,
                actor: Actor,
                now: DateTime<Utc>,
            ) -> Result<Replied> {
                let t = require_ticket(c, code, now).await?;
                if let Some(into) = t.summary.merged_into {
                    return Err(StoreError::Conflict(format!("{code} is merged into {into}; answer there")));
                }
                let last = sqlx::query(
                    "SELECT i.kind, i.value FROM messages m JOIN identities i ON i.id = m.identity_id \
                     WHERE m.ticket_id = $1 AND m.direction = 'in' ORDER BY m.id DESC LIMIT 1",
                )
                .bind(t.id)
                .fetch_optional(&mut *c)
                .await?;
                let last = match last {
                    Some(r) => Some(Identity {
                        kind: parse(&r.try_get::<String, _>("kind")?, "identity kind")?,
                        value: r.try_get("value")?,
                    }),
                    None => None,
                };
                let mut contacts = Vec::new();
                if let Some(rid) = t.reporter_id {
                    let rows = sqlx::query("SELECT kind, value FROM identities WHERE reporter_id = $1 ORDER BY id")
                        .bind(rid)
                        .fetch_all(&mut *c)
                        .await?;
                    for r in rows {
                        contacts.push(Identity {
                            kind: parse(&r.try_get::<String, _>("kind")?, "identity kind")?,
                            value: r.try_get("value")?,
                        });
                    }
                }
                let (channel, recipient, state) = match choose_reply_route(t.summary.channel, last.as_ref(), &contacts) {
                    ReplyRoute::Send { channel, to } => (Some(channel), Some(to), OutboxState::Pending),
                    ReplyRoute::Publish => (None, None, OutboxState::Published),
                };
                let message_channel = channel.unwrap_or(t.summary.channel);
                let message_id: i64 = sqlx::query_scalar(
                    "INSERT INTO messages (ticket_id, direction, channel, author, text, sent_at, stored_at) \
                     VALUES ($1, 'out', $2, $3, $4, $5, $5) RETURNING id",
                )
                .bind(t.id)
                .bind(message_channel.as_str())
                .bind(actor.to_string())
                .bind(&text)
                .bind(now)
                .fetch_one(&mut *c)
                .await?;
                let outbox_id: i64 = sqlx::query_scalar(
                    "INSERT INTO outbox (ticket_id, message_id, channel, recipient_kind, recipient, state, \
                     next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id",
                )
                .bind(t.id)
                .bind(message_id)
                .bind(message_channel.as_str())
                .bind(recipient.as_ref().map(|r| r.kind.as_str()))
                .bind(recipient.as_ref().map(|r| r.value.as_str()))
                .bind(state.as_str())
                .bind(now)
                .fetch_one(&mut *c)
                .await?;
                sqlx::query(
                    "UPDATE tickets SET first_responded_at = COALESCE(first_responded_at, $2), updated_at = $2 WHERE id = $1",
                )
                .bind(t.id)
                .bind(now)
                .execute(&mut *c)
                .await?;
                let mid = message_id.to_string();
                event(c, t.id, now, &actor, EventKind::Replied, None, Some(&mid), None).await?;
                Ok(Replied { message_id, outbox_id, channel, delivery: state })
            }

            pub(crate) async fn merge(
                c: &mut Conn,
                code: TicketCode,
                into: TicketCode,
                actor: Actor,
                now: DateTime<Utc>,
            ) -> Result<()> {
                if code == into {
                    return Err(StoreError::Invalid("a ticket can't be merged into itself".into()));
                }
                let src = require_ticket(c, code, now).await?;
                let dst = require_ticket(c, into, now).await?;
                if let Some(further) = dst.summary.merged_into {
                    return Err(StoreError::Conflict(format!("{into} is itself merged into {further}")));
                }
                src.summary.status.can_become(Status::Merged)?;
                sqlx::query("UPDATE messages SET ticket_id = $2 WHERE ticket_id = $1")
                    .bind(src.id)
                    .bind(dst.id)
                    .execute(&mut *c)
                    .await?;
                sqlx::query("UPDATE tickets SET status = 'merged', merged_into = $2, updated_at = $3 WHERE id = $1")
                    .bind(src.id)
                    .bind(dst.id)
                    .bind(now)
                    .execute(&mut *c)
                    .await?;
                sqlx::query(
                    "UPDATE tickets SET updated_at = $2, \
                     last_message_at = CASE WHEN last_message_at < $3 THEN $3 ELSE last_message_at END WHERE id = $1",
                )
                .bind(dst.id)
                .bind(now)
                .bind(src.last_message_at)
                .execute(&mut *c)
                .await?;
                let (src_code, dst_code) = (code.to_string(), into.to_string());
                event(c, src.id, now, &actor, EventKind::Merged, Some(src.summary.status.as_str()), Some(&dst_code), None).await?;
                event(c, dst.id, now, &actor, EventKind::Absorbed, Some(&src_code), None, None).await?;
                Ok(())
            }

            pub(crate) async fn outbox_claim(
                c: &mut Conn,
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
                    if IS_PG { "FOR UPDATE SKIP LOCKED" } else { "" },
                );
                let mut query = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql))
                    .bind(truncate_ms(now + lease))
                    .bind(now)
                    .bind(limit);
                for ch in &channels {
                    query = query.bind(ch.as_str());
                }
                let mut ids = query.fetch_all(&mut *c).await?;
                ids.sort_unstable();
                let mut items = Vec::with_capacity(ids.len());
                for id in ids {
                    let row = sqlx::query(
                        "SELECT o.id, o.channel, o.recipient_kind, o.recipient, o.attempts, o.ticket_id, \
                         t.code, m.text FROM outbox o JOIN tickets t ON t.id = o.ticket_id \
                         JOIN messages m ON m.id = o.message_id WHERE o.id = $1",
                    )
                    .bind(id)
                    .fetch_one(&mut *c)
                    .await?;
                    let ticket_id: i64 = row.try_get("ticket_id")?;
                    let thread_refs: Vec<String> = sqlx::query_scalar(
                        "SELECT provider_id FROM messages WHERE ticket_id = $1 AND channel = $2 \
                         AND provider_id IS NOT NULL ORDER BY id DESC LIMIT 20",
                    )
                    .bind(ticket_id)
                    .bind(row.try_get::<String, _>("channel")?)
                    .fetch_all(&mut *c)
                    .await?;
                    let kind: Option<String> = row.try_get("recipient_kind")?;
                    let value: Option<String> = row.try_get("recipient")?;
                    let (Some(kind), Some(value)) = (kind, value) else {
                        return Err(StoreError::Invalid(format!("outbox row {id} has no recipient")));
                    };
                    items.push(OutboxItem {
                        id,
                        ticket: parse(&row.try_get::<String, _>("code")?, "ticket code")?,
                        channel: parse(&row.try_get::<String, _>("channel")?, "channel")?,
                        recipient: Identity { kind: parse(&kind, "identity kind")?, value },
                        text: row.try_get("text")?,
                        attempts: row.try_get("attempts")?,
                        thread_refs,
                    });
                }
                Ok(items)
            }

            pub(crate) async fn outbox_sent(c: &mut Conn, id: i64, provider_id: Option<String>, now: DateTime<Utc>) -> Result<()> {
                let message_id: Option<i64> = sqlx::query_scalar(
                    "UPDATE outbox SET state = 'sent', sent_at = $2, provider_id = $3, lease_until = NULL \
                     WHERE id = $1 AND state = 'sending' RETURNING message_id",
                )
                .bind(id)
                .bind(now)
                .bind(&provider_id)
                .fetch_optional(&mut *c)
                .await?;
                let Some(message_id) = message_id else {
                    return Err(StoreError::Conflict(format!("outbox row {id} is not being sent")));
                };
                if provider_id.is_some() {
                    // Replies to what we sent thread by this id.
                    sqlx::query("UPDATE messages SET provider_id = $2 WHERE id = $1")
                        .bind(message_id)
                        .bind(&provider_id)
                        .execute(&mut *c)
                        .await?;
                }
                Ok(())
            }

            pub(crate) async fn outbox_failed(
                c: &mut Conn,
                id: i64,
                error: String,
                retry_at: Option<DateTime<Utc>>,
                now: DateTime<Utc>,
            ) -> Result<()> {
                let done = sqlx::query(
                    "UPDATE outbox SET state = CASE WHEN $2 IS NULL THEN 'dead' ELSE 'pending' END, \
                     next_attempt_at = COALESCE($2, $4), last_error = $3, lease_until = NULL \
                     WHERE id = $1 AND state = 'sending'",
                )
                .bind(id)
                .bind(retry_at.map(truncate_ms))
                .bind(&error)
                .bind(now)
                .execute(&mut *c)
                .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::Conflict(format!("outbox row {id} is not being sent")));
                }
                Ok(())
            }

            pub(crate) async fn outbox_counts(c: &mut Conn) -> Result<Vec<(Channel, OutboxState, i64)>> {
                let rows = sqlx::query("SELECT channel, state, COUNT(*) AS n FROM outbox GROUP BY channel, state ORDER BY channel, state")
                    .fetch_all(&mut *c)
                    .await?;
                rows.iter()
                    .map(|r| {
                        Ok((
                            parse(&r.try_get::<String, _>("channel")?, "channel")?,
                            parse(&r.try_get::<String, _>("state")?, "outbox state")?,
                            r.try_get("n")?,
                        ))
                    })
                    .collect()
            }

            pub(crate) async fn overdue_by_opd(c: &mut Conn, now: DateTime<Utc>) -> Result<Vec<(Option<String>, i64)>> {
                let sql = format!(
                    "SELECT opd, COUNT(*) AS n FROM tickets WHERE first_responded_at IS NULL \
                     AND first_response_due_at < $1 AND status IN {OPEN_STATUSES_SQL} GROUP BY opd"
                );
                let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now).fetch_all(&mut *c).await?;
                let mut out = rows
                    .iter()
                    .map(|r| Ok((r.try_get("opd")?, r.try_get("n")?)))
                    .collect::<Result<Vec<(Option<String>, i64)>>>()?;
                // Backends order NULL differently; unassigned first.
                out.sort();
                Ok(out)
            }

            pub(crate) async fn checkpoint(c: &mut Conn, connector: &str, key: &str) -> Result<Option<String>> {
                Ok(sqlx::query_scalar("SELECT value FROM checkpoints WHERE connector = $1 AND key = $2")
                    .bind(connector)
                    .bind(key)
                    .fetch_optional(&mut *c)
                    .await?)
            }

            pub(crate) async fn set_checkpoint(c: &mut Conn, connector: String, key: String, value: String, now: DateTime<Utc>) -> Result<()> {
                sqlx::query(
                    "INSERT INTO checkpoints (connector, key, value, updated_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (connector, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                )
                .bind(connector)
                .bind(key)
                .bind(value)
                .bind(now)
                .execute(&mut *c)
                .await?;
                Ok(())
            }

            pub(crate) async fn add_user(c: &mut Conn, user: NewUser, now: DateTime<Utc>) -> Result<i64> {
                let email = user.email.trim().to_lowercase();
                let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
                    .bind(&email)
                    .fetch_optional(&mut *c)
                    .await?;
                if exists.is_some() {
                    return Err(StoreError::Conflict(format!("a user with email {email} exists")));
                }
                Ok(sqlx::query_scalar(
                    "INSERT INTO users (email, name, role, opd, password_hash, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                )
                .bind(&email)
                .bind(&user.name)
                .bind(user.role.as_str())
                .bind(&user.opd)
                .bind(&user.password_hash)
                .bind(now)
                .fetch_one(&mut *c)
                .await?)
            }

            pub(crate) async fn add_api_key(c: &mut Conn, name: String, scope: Scope, token_hash: String, now: DateTime<Utc>) -> Result<i64> {
                Ok(sqlx::query_scalar(
                    "INSERT INTO api_keys (name, scope, token_hash, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
                )
                .bind(name)
                .bind(scope.as_str())
                .bind(token_hash)
                .bind(now)
                .fetch_one(&mut *c)
                .await?)
            }

            pub(crate) async fn api_key_by_hash(c: &mut Conn, token_hash: &str) -> Result<Option<ApiKey>> {
                let row = sqlx::query("SELECT id, name, scope, revoked_at FROM api_keys WHERE token_hash = $1")
                    .bind(token_hash)
                    .fetch_optional(&mut *c)
                    .await?;
                let Some(row) = row else { return Ok(None) };
                let revoked_at: Option<DateTime<Utc>> = row.try_get("revoked_at")?;
                Ok(Some(ApiKey {
                    id: row.try_get("id")?,
                    name: row.try_get("name")?,
                    scope: parse(&row.try_get::<String, _>("scope")?, "scope")?,
                    revoked: revoked_at.is_some(),
                }))
            }
        }
    };
}

backend_ops!(sqlite, sqlx::Sqlite, sqlx::SqliteConnection, false);
backend_ops!(postgres, sqlx::Postgres, sqlx::PgConnection, true);
