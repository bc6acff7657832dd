//! Intake: an inbound message becomes a stored message on a ticket ([`ingest`]): dedup on
//! `(channel, provider_id)`, the reporter behind the sender, threading (`decide_thread`), the
//! receipt and the answer to "CEK ADU-…"; also the lookups connectors need (the ticket of a
//! provider message, the last inbound time) and their checkpoints.

use aduan_core::{
    Actor, Channel, EventKind, Identity, InboundMessage, Purpose, ReplyRoute, Sender, SenderFacts,
    Status, ThreadDecision, TicketCode, choose_reply_route, decide_thread, status_query,
};
use chrono::{DateTime, Duration, Utc};

use super::actions::resume_clocks;
use super::common::{
    Params, REFRESH_DISPOSE_PENDING, TicketRow, event, follow_merges, load_ticket,
    load_ticket_by_id, lock, parse, status_event, ticket_row, ticket_select,
};
use super::outbox::queue_outbound;
use crate::db::{Db, Value, args};
use crate::types::Ingested;
use crate::{Result, Store, StoreError, StoreOptions, now, truncate_ms};

/// What intake has to look at for a reporter besides threading: whether a confirmation of
/// one of their resolved tickets is pending (their message may be its answer) and whether
/// answers wait for them to write (`waiting_for_resident`). Both false for a reporter the
/// message creates, and read in the same statement as the sender's identity otherwise, so
/// the common message skips both lookups (issue 22: two reads per message before).
#[derive(Debug, Clone, Copy, Default)]
struct Pending {
    /// The reporter existed before this message (a new one has no tickets yet).
    known: bool,
    confirmation: bool,
    waiting: bool,
    /// `link_on_intake` has something to do for this known sender: one of the message's
    /// verified keys is not recorded for the reporter yet, or another unlinked reporter holds
    /// one (see [`intake_read`]). Always run for a reporter the message creates.
    link: bool,
}

/// The identity a sender is known by: the address the message came from, else its first
/// contact.
fn primary(sender: &Sender) -> Option<&Identity> {
    sender.identity.as_ref().or(sender.contacts.first())
}

/// The same, where a new sender's rows are written (a sender without one has no rows).
fn primary_of(sender: &Sender) -> Result<&Identity> {
    primary(sender).ok_or_else(|| StoreError::Internal("a new sender without identity".into()))
}

/// The sender's other contacts, each once and without `primary`: those a new reporter gets
/// when nobody owns them yet.
fn other_contacts<'s>(sender: &'s Sender, primary: &Identity) -> Vec<&'s Identity> {
    let mut out: Vec<&Identity> = Vec::new();
    for k in &sender.contacts {
        if k != primary && !out.contains(&k) {
            out.push(k);
        }
    }
    out
}

/// The two clocks of a ticket opened at `now` (first response and resolution) and the
/// budgets they were set from, as stored.
fn new_ticket_clocks(
    opts: &StoreOptions,
    now: DateTime<Utc>,
) -> (DateTime<Utc>, DateTime<Utc>, String, String) {
    (
        truncate_ms(opts.sla.first_response_due(now)),
        truncate_ms(opts.sla.calendar.due(now, opts.sla.resolution)),
        opts.sla.first_response_budget().to_string(),
        opts.sla.resolution.to_string(),
    )
}

/// Finds or creates the reporter behind a sender. Returns the reporter, the
/// identity the message came from, and what is pending for the reporter. Extra contacts
/// are attached when nobody owns them yet; a contact already owned by another reporter is
/// left with its owner.
async fn resolve_reporter<D: Db>(
    c: &mut D,
    sender: &Sender,
    owner: Option<(i64, i64, bool, Pending)>,
    now: DateTime<Utc>,
) -> Result<(Option<i64>, Option<i64>, Pending)> {
    let Some(primary) = primary(sender) else {
        return Ok((None, None, Pending::default()));
    };
    let mut contacts_done = false;
    let (reporter_id, identity_id, pending) = match owner {
        Some((identity_id, reporter_id, unnamed, pending)) => {
            if let (true, Some(name)) = (unnamed, &sender.display_name) {
                c.execute("UPDATE reporters SET name = $2 WHERE id = $1", args![reporter_id, name])
                    .await?;
            }
            (reporter_id, identity_id, pending)
        }
        None if D::IS_PG => {
            // One round trip for all rows (issue 22 item 4); SQLite has no INSERT in WITH.
            contacts_done = true;
            let (reporter_id, identity_id) = new_reporter_pg(c, sender, primary, now).await?;
            (reporter_id, identity_id, Pending::default())
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
            (reporter_id, identity_id, Pending::default())
        }
    };
    for contact in sender.contacts.iter().filter(|k| *k != primary && !contacts_done) {
        c.execute(
            "INSERT INTO identities (reporter_id, kind, value, created_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (kind, value) DO NOTHING",
            args![reporter_id, contact.kind.as_str(), &contact.value, now],
        )
        .await?;
    }
    Ok((Some(reporter_id), Some(identity_id), pending))
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

/// A row a piece of an intake statement refers to: one that exists (its id; `None` for no
/// row), or the new sender's reporter and identity the same statement writes (the CTE `i`
/// of [`new_reporter_ctes`], PostgreSQL).
#[derive(Debug, Clone, Copy)]
enum RowRef {
    Id(Option<i64>),
    NewSender,
}

/// The `INSERT` of a new ticket with the code, the message's channel and place, the
/// reporter, the time and the two SLA clocks, returning its id, or nothing when the random
/// code is taken; also the placeholder of `now`. New tickets wait for the routing worker
/// (`route_pending`).
fn new_ticket_insert(
    p: &mut Params,
    code: TicketCode,
    opts: &StoreOptions,
    msg: &InboundMessage,
    reporter: RowRef,
    now: DateTime<Utc>,
) -> (String, String) {
    let code = p.bind(code.to_string());
    let channel = p.bind(msg.channel.as_str());
    let reporter = match reporter {
        RowRef::Id(id) => p.bind(id),
        RowRef::NewSender => "(SELECT reporter_id FROM i)".to_owned(),
    };
    let lat = p.bind(msg.location.map(|l| l.lat));
    let lon = p.bind(msg.location.map(|l| l.lon));
    let at = p.bind(now);
    let (first_due, due, first_budget, budget) = new_ticket_clocks(opts, now);
    let (first_due, due) = (p.bind(first_due), p.bind(due));
    let (first_budget, budget) = (p.bind(first_budget), p.bind(budget));
    let pending = p.bind(true);
    let sql = format!(
        "INSERT INTO tickets (code, status, channel, reporter_id, lat, lon, created_at, \
         updated_at, last_message_at, first_response_due_at, resolution_due_at, \
         first_response_budget, resolution_budget, route_pending) \
         VALUES ({code}, 'new', {channel}, {reporter}, {lat}, {lon}, {at}, {at}, {at}, \
         {first_due}, {due}, {first_budget}, {budget}, {pending}) \
         ON CONFLICT (code) DO NOTHING RETURNING id"
    );
    (sql, at)
}

async fn create_ticket<D: Db>(
    c: &mut D,
    opts: &StoreOptions,
    msg: &InboundMessage,
    reporter_id: Option<i64>,
    now: DateTime<Utc>,
) -> Result<(i64, TicketCode)> {
    for _ in 0..8 {
        let code = TicketCode::from_entropy(rand::random());
        let mut p = Params::default();
        let (sql, _) = new_ticket_insert(&mut p, code, opts, msg, RowRef::Id(reporter_id), now);
        let id: Option<i64> = c.fetch_optional_scalar(&sql, p.0).await?;
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
    if let Some(id) = primary(&msg.sender) {
        keys.push(format!("identity:{}:{}", id.kind, id.value));
    }
    // Two new reporters of one verified key (a WhatsApp and an SMS sender of one number)
    // must not both miss the other's uncommitted key: intake skips linking once a key is
    // recorded (`Pending::link`), so this race would never be mended by a later message.
    keys.extend(link_keys(msg).into_iter().map(|k| format!("key:{k}")));
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
    // The repeat check and the sender's identity in one statement (issue 22).
    let read = intake_read(c, &msg).await?;
    if let Some(duplicate) = read.duplicate {
        return Ok(duplicate);
    }

    // A new sender whose message names no ticket: the reporter is written with the ticket,
    // in one statement (`new_sender_ticket_pg`), unless threading decides otherwise.
    let fused = D::IS_PG && read.owner.is_none() && new_sender_fusable(&msg);
    let (mut reporter_id, mut identity_id, pending) = if fused {
        (None, None, Pending::default())
    } else {
        resolve_reporter(c, &msg.sender, read.owner, now).await?
    };
    // One resident across channels (issue 20): provider-verified phones and emails link.
    // A known sender whose keys are recorded and linked has nothing to link (issue 22).
    if !pending.known || pending.link {
        super::incidents::link_on_intake(c, reporter_id, &msg, now).await?;
    }
    let answered = if pending.confirmation {
        confirmation_answer(c, opts, &msg, reporter_id, identity_id, now).await?
    } else {
        None
    };
    if let Some(done) = answered {
        // The resident wrote: their waiting answers go out here too.
        if pending.waiting {
            requeue_for(c, reporter_id, &msg, now).await?;
        }
        return Ok(done);
    }
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
        Some(r) if (named.is_none() || !is_reporter) && window_open && pending.known => {
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
    if fused && !matches!(decision, ThreadDecision::NewTicket) {
        (reporter_id, identity_id, _) = resolve_reporter(c, &msg.sender, None, now).await?;
    }
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
    let mut stored_with_ticket = None;
    let ticket_id = match decision {
        ThreadDecision::NewTicket if D::IS_PG => {
            let mut done = None;
            if fused {
                let (r, i, created) = new_sender_ticket_pg(c, opts, &msg, now).await?;
                (reporter_id, identity_id, done) = (Some(r), Some(i), created);
            }
            let ids = (reporter_id, identity_id, revision_of);
            let (id, code, message_id) = match done {
                Some(done) => done,
                None => create_ticket_with_message(c, opts, &msg, ids, now).await?,
            };
            stored_with_ticket = Some(message_id);
            outcome.ticket = Some(code);
            outcome.ticket_created = true;
            Some(id)
        }
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
            // Only the reporter joins by speaking (a stranger's message joins only when it is
            // automated, which neither answers the identity request nor resumes the clocks).
            let resident_speaks = !msg.thread.automated && status_question != Some(id);
            // What the resident says on a ticket that is with an OPD is relayed to its
            // officials (migration 0029, `Store::follow_ups`).
            c.execute(
                "UPDATE tickets SET last_message_at = $2, updated_at = $2, \
                 status = COALESCE($3, status), \
                 resolved_at = CASE WHEN $3 IS NULL THEN resolved_at ELSE NULL END, \
                 lat = COALESCE(lat, $4), lon = COALESCE(lon, $5), \
                 follow_up_pending = CASE WHEN $6 AND opd IS NOT NULL \
                 AND COALESCE($3, status) IN ('assigned', 'in_progress') \
                 THEN TRUE ELSE follow_up_pending END WHERE id = $1",
                args![
                    id,
                    now,
                    reopen_to.map(Status::as_str),
                    location.map(|l| l.lat),
                    location.map(|l| l.lon),
                    resident_speaks
                ],
            )
            .await?;
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
                let from = joined.summary.status;
                status_event(c, id, now, &Actor::Resident, (from, to), None).await?;
                // Reopened to `assigned`: if it was resolved before its OPD was sent it, the
                // disposition is owed again.
                c.execute(REFRESH_DISPOSE_PENDING, args![id]).await?;
            }
            Some(id)
        }
        ThreadDecision::Orphan | ThreadDecision::AnswerStatus { .. } => None,
    };

    let message_id: i64 = match stored_with_ticket {
        Some(id) => id,
        None => insert_inbound(c, ticket_id, &msg, identity_id, revision_of, now).await?,
    };
    outcome.message_id = message_id;
    if pending.waiting {
        requeue_for(c, reporter_id, &msg, now).await?;
    }

    insert_attachments(c, message_id, &msg).await?;
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
            let asked = status_query(&msg.text).unwrap_or(t.summary.code);
            let text = crate::answers::status_answer(asked, &t.summary, &opts.opd_names);
            let limits = Some(&opts.auto_limits);
            let (system, purpose) = (&Actor::System, Purpose::Status);
            queue_outbound(c, id, msg.channel, route, &text, system, purpose, limits, now).await?;
        }
    }
    if let (Some(id), Some(code), true) = (ticket_id, outcome.ticket, outcome.ticket_created) {
        queue_receipt(c, opts, &msg, id, code, now).await?;
    }
    Ok(outcome)
}

/// The receipt with the code of the ticket `msg` just opened, on the channel the resident
/// wrote from (none for an automated message). Web and Open311 callers get the code in
/// their HTTP answer instead.
async fn queue_receipt<D: Db>(
    c: &mut D,
    opts: &StoreOptions,
    msg: &InboundMessage,
    ticket_id: i64,
    code: TicketCode,
    now: DateTime<Utc>,
) -> Result<()> {
    let Some(template) = &opts.ack_template else { return Ok(()) };
    if msg.thread.automated {
        return Ok(());
    }
    let own = msg.sender.identity.as_slice();
    let route = choose_reply_route(msg.channel, msg.sender.identity.as_ref(), own);
    if matches!(&route, ReplyRoute::Send { channel, .. } if *channel == msg.channel) {
        let hours = opts.sla.first_response.num_hours();
        let text = aduan_core::texts::receipt_on(msg.channel, template, code, hours);
        let limits = Some(&opts.auto_limits);
        let (system, purpose) = (&Actor::System, Purpose::Ack);
        queue_outbound(c, ticket_id, msg.channel, route, &text, system, purpose, limits, now)
            .await?;
    }
    Ok(())
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

impl Store {
    /// Stores an inbound message durably: deduplicated on `(channel, provider_id)`, attached
    /// to its reporter, threaded into a ticket (a new one if needed). Returns once committed.
    pub async fn ingest(&self, mut msg: InboundMessage) -> Result<Ingested> {
        // Every channel's text passes the one sanitiser here (NUL and control characters).
        aduan_core::clean_message(&mut msg);
        let opts = self.inner.opts.clone();
        let now = now();
        if let crate::Backend::Postgres(p) = &self.inner.backend {
            let mut stored = ingest_grouped(p, opts, vec![msg], now).await?;
            return stored.pop().ok_or_else(|| StoreError::Internal("nothing stored".into()));
        }
        write!(self, |c| ingest(c, &opts, msg, now))
    }

    /// Stores a provider's batch of messages in one transaction: all of them or none.
    pub async fn ingest_all(&self, mut msgs: Vec<InboundMessage>) -> Result<Vec<Ingested>> {
        msgs.iter_mut().for_each(aduan_core::clean_message);
        let opts = self.inner.opts.clone();
        let now = now();
        if let crate::Backend::Postgres(p) = &self.inner.backend {
            return ingest_grouped(p, opts, msgs, now).await;
        }
        write!(self, |c| ingest_all(c, &opts, msgs, now))
    }

    /// The ticket holding a message of `channel` with one of `provider_ids` (tried in
    /// order), followed through merges.
    pub async fn ticket_of_message(
        &self,
        channel: Channel,
        provider_ids: Vec<String>,
    ) -> Result<Option<TicketCode>> {
        let now = now();
        read!(self, |c| ticket_of_message(c, channel, provider_ids, now))
    }

    /// When `identity` last wrote on `channel` (provider time), for the 24-hour customer
    /// window of Meta's channels.
    pub async fn last_inbound_at(
        &self,
        channel: Channel,
        identity: &Identity,
    ) -> Result<Option<DateTime<Utc>>> {
        let identity = identity.clone();
        read!(self, |c| last_inbound_at(c, channel, &identity))
    }

    pub async fn checkpoint(&self, connector: &str, key: &str) -> Result<Option<String>> {
        let (connector, key) = (connector.to_owned(), key.to_owned());
        read!(self, |c| checkpoint(c, &connector, &key))
    }

    pub async fn set_checkpoint(
        &self,
        connector: String,
        key: String,
        value: String,
    ) -> Result<()> {
        let now = now();
        write!(self, |c| set_checkpoint(c, connector, key, value, now))
    }
}

/// Stores inbound message `msg` on ticket `ticket_id` (`None`: on no ticket), sent from
/// identity `identity_id`, an edit of message `revision_of`; returns its id.
async fn insert_inbound<D: Db>(
    c: &mut D,
    ticket_id: Option<i64>,
    msg: &InboundMessage,
    identity_id: Option<i64>,
    revision_of: Option<i64>,
    now: DateTime<Utc>,
) -> Result<i64> {
    c.fetch_one_scalar(
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
    .await
}

/// The attachment rows of `msg`, stored as message `message_id`.
async fn insert_attachments<D: Db>(c: &mut D, message_id: i64, msg: &InboundMessage) -> Result<()> {
    for a in &msg.attachments {
        c.execute(
            "INSERT INTO attachments (message_id, filename, content_type, size, sha256, \
             provider_ref) VALUES ($1, $2, $3, $4, $5, $6)",
            args![
                message_id,
                &a.filename,
                &a.content_type,
                i64::try_from(a.size).unwrap_or(i64::MAX),
                &a.sha256,
                &a.provider_ref
            ],
        )
        .await?;
    }
    Ok(())
}

// --- windows: answers waiting for the resident go where they write ---

/// The resident wrote (a message of their own, not an automated one or an edit): their
/// answers kept `waiting_for_resident` are queued to this identity on this channel, ahead of
/// whatever this message itself makes us send.
async fn requeue_for<D: Db>(
    c: &mut D,
    reporter_id: Option<i64>,
    msg: &InboundMessage,
    now: DateTime<Utc>,
) -> Result<()> {
    if msg.thread.automated || msg.thread.revision_of.is_some() {
        return Ok(());
    }
    let from = msg.sender.identity.as_ref();
    super::outbox::requeue_waiting(c, reporter_id, msg.channel, from, now).await?;
    Ok(())
}

// --- confirm: the resident's answer to "is it fixed?" ---

/// While a confirmation of one of the sender's resolved tickets is pending on this channel
/// (issue 17 item 4), their next message is the answer to it, not a new complaint: it is
/// stored on that ticket and applied ([`aduan_core::confirm::read_confirmation`], then
/// `apply_confirmation`): fixed → closed with the rating, not fixed → reopened to the same
/// OPD with these words, unclear → kept on the ticket, still pending. `None` (intake goes on
/// as usual) for automated messages, edits, status questions, messages naming another
/// ticket, and senders with nothing pending.
async fn confirmation_answer<D: Db>(
    c: &mut D,
    opts: &StoreOptions,
    msg: &InboundMessage,
    reporter_id: Option<i64>,
    identity_id: Option<i64>,
    now: DateTime<Utc>,
) -> Result<Option<Ingested>> {
    let Some(reporter_id) = reporter_id else { return Ok(None) };
    if msg.thread.automated || msg.thread.revision_of.is_some() || status_query(&msg.text).is_some()
    {
        return Ok(None);
    }
    let row = c
        .fetch_optional(
            "SELECT k.id, t.code FROM confirmations k JOIN tickets t ON t.id = k.ticket_id \
             WHERE k.outcome IS NULL AND t.reporter_id = $1 AND k.channel = $2 \
             AND t.status = 'resolved' ORDER BY k.id DESC LIMIT 1",
            args![reporter_id, msg.channel.as_str()],
        )
        .await?;
    let Some(row) = row else { return Ok(None) };
    let confirmation_id: i64 = row.get("id")?;
    let code: TicketCode = parse(&row.get::<String>("code")?, "ticket code")?;
    let names_other =
        msg.thread.ticket.into_iter().chain(TicketCode::find_all(&msg.text)).any(|n| n != code);
    if names_other {
        return Ok(None);
    }
    let t = super::common::lock_ticket(c, code, now).await?;
    if t.summary.status != Status::Resolved {
        return Ok(None);
    }
    c.execute(
        "UPDATE tickets SET last_message_at = $2, updated_at = $2 WHERE id = $1",
        args![t.id, now],
    )
    .await?;
    // Not automated and not an edit: `confirmation_answer` returned early for those.
    let message_id = insert_inbound(c, Some(t.id), msg, identity_id, None, now).await?;
    insert_attachments(c, message_id, msg).await?;
    let mid = message_id.to_string();
    event(c, t.id, now, &Actor::Resident, EventKind::MessageReceived, None, Some(&mid), None)
        .await?;
    let answer = aduan_core::confirm::read_confirmation(&msg.text);
    super::actions::apply_confirmation(c, opts, code, confirmation_id, answer, now).await?;
    Ok(Some(Ingested {
        ticket: Some(code),
        message_id,
        duplicate: false,
        ticket_created: false,
        reopened: answer.verdict == aduan_core::confirm::Verdict::NotFixed,
    }))
}

// --- intake: PostgreSQL group commit ---

/// Stores `msgs` (all or none) through the PostgreSQL group writer: in a transaction shared
/// with the other messages queued meanwhile, under the advisory locks of [`intake_locks`]
/// taken once for the whole group (see `postgres.rs`).
async fn ingest_grouped(
    p: &crate::postgres::PgStore,
    opts: StoreOptions,
    msgs: Vec<InboundMessage>,
    now: DateTime<Utc>,
) -> Result<Vec<Ingested>> {
    let locks = msgs.iter().flat_map(intake_locks).collect();
    p.ingest_grouped(GroupWrite { opts, msgs, now }, locks).await
}

/// One caller's part of a PostgreSQL group: its messages, stored all or none with the rest
/// of the group, with its options and its time.
pub(crate) struct GroupWrite {
    pub(crate) opts: StoreOptions,
    pub(crate) msgs: Vec<InboundMessage>,
    pub(crate) now: DateTime<Utc>,
}

/// Stores a group's messages in the open transaction, the group's locks held: the new
/// senders' first messages that nothing else in the group touches together in one statement
/// ([`batch_insert`]), every other message one by one as [`ingest`] does. Returns each
/// write's answers in its order.
pub(crate) async fn ingest_group<D: Db>(
    c: &mut D,
    writes: &[&GroupWrite],
) -> Result<Vec<Vec<Ingested>>> {
    let mut out: Vec<Vec<Option<Ingested>>> =
        writes.iter().map(|w| vec![None; w.msgs.len()]).collect();
    let candidates = batch_candidates(writes);
    if !candidates.is_empty() {
        for ((w, i), stored) in batch_insert(c, writes, &candidates).await? {
            out[w][i] = Some(stored);
        }
    }
    for (w, write) in writes.iter().enumerate() {
        for (i, msg) in write.msgs.iter().enumerate() {
            if out[w][i].is_none() {
                out[w][i] = Some(ingest_locked(c, &write.opts, msg.clone(), write.now).await?);
            }
        }
    }
    Ok(out.into_iter().map(|w| w.into_iter().flatten().collect()).collect())
}

// --- pgintake: intake in fewer statements (issue 22 items 2-4) ---
//
// Per new-sender message the PostgreSQL intake ran about seven statements, each a round trip
// inside the group's transaction. Now: one read ([`intake_read`]: the repeat check, the
// sender's identity, what is pending for them and whether linking has anything to do), one
// write for a new reporter with all its identities ([`new_reporter_pg`]), one for a new
// ticket with its first message ([`create_ticket_with_message`]). SQLite runs the same read;
// its writes stay one statement each (no INSERT in WITH, and a statement costs microseconds
// on its writer thread).

/// The provider-verified keys `link_on_intake` records for a message (none for automated
/// messages, which link nothing).
fn link_keys(msg: &InboundMessage) -> Vec<String> {
    if msg.thread.automated {
        return Vec::new();
    }
    aduan_core::profile::verified_keys(msg.channel, &msg.sender)
}

/// What intake reads before it writes.
struct IntakeRead {
    /// The answer for a message stored before (`duplicate: true`).
    duplicate: Option<Ingested>,
    /// The sender's identity row, its reporter, whether the reporter lacks a name, and what
    /// is pending for them; `None` for a new sender.
    owner: Option<(i64, i64, bool, Pending)>,
}

/// One statement: the stored message with the same `(channel, provider_id)` if any, and the
/// sender's identity with its reporter's pending confirmation, waiting answers and
/// `Pending::link` — whether one of the message's verified keys is not yet recorded for the
/// reporter, or (the reporter not locked by an operator's unlink) another unlocked reporter
/// holding one of them is not in the same resident. Exactly when `link_on_intake` would
/// change something; otherwise it is skipped.
async fn intake_read<D: Db>(c: &mut D, msg: &InboundMessage) -> Result<IntakeRead> {
    let primary = primary(&msg.sender);
    let keys = link_keys(msg);
    let link = if keys.is_empty() {
        "(1 = 0)".to_owned()
    } else {
        let list = (0..keys.len()).map(|i| format!("${}", i + 6)).collect::<Vec<_>>().join(", ");
        format!(
            "((SELECT COUNT(*) FROM reporter_keys k WHERE k.reporter_id = i.reporter_id \
             AND k.key IN ({list})) < {n} OR (r.resident_locked = $5 AND EXISTS (SELECT 1 \
             FROM reporter_keys k JOIN reporters x ON x.id = k.reporter_id \
             WHERE k.key IN ({list}) AND k.reporter_id <> i.reporter_id \
             AND x.resident_locked = $5 AND (r.resident_id IS NULL OR x.resident_id IS NULL \
             OR x.resident_id <> r.resident_id))))",
            n = keys.len()
        )
    };
    let sql = format!(
        "SELECT d.id AS dup_id, d.code AS dup_code, o.id AS identity_id, o.reporter_id, \
         o.unnamed, o.confirmation_pending, o.answers_waiting, o.must_link \
         FROM (SELECT 1 AS one) AS base \
         LEFT JOIN (SELECT m.id, t.code FROM messages m LEFT JOIN tickets t ON t.id = m.ticket_id \
                    WHERE m.channel = $1 AND m.provider_id = $2) AS d ON 1 = 1 \
         LEFT JOIN (SELECT i.id, i.reporter_id, r.name IS NULL AS unnamed, \
             EXISTS (SELECT 1 FROM tickets t JOIN confirmations k ON k.ticket_id = t.id \
                     WHERE t.reporter_id = i.reporter_id AND t.status = 'resolved' \
                     AND k.outcome IS NULL) AS confirmation_pending, \
             EXISTS (SELECT 1 FROM tickets t JOIN outbox o ON o.ticket_id = t.id \
                     WHERE t.reporter_id = i.reporter_id \
                     AND o.state = 'waiting_for_resident') AS answers_waiting, \
             {link} AS must_link \
             FROM identities i JOIN reporters r ON r.id = i.reporter_id \
             WHERE i.kind = $3 AND i.value = $4) AS o ON 1 = 1"
    );
    let mut params = args![
        msg.channel.as_str(),
        &msg.provider_id,
        primary.map(|p| p.kind.as_str()),
        primary.map(|p| p.value.as_str())
    ];
    if !keys.is_empty() {
        // Every parameter must appear in the statement (SQLite counts them).
        params.push(Value::from(false));
        params.extend(keys.iter().map(crate::db::Value::from));
    }
    let row = c.fetch_one(&sql, params).await?;
    if let Some(message_id) = row.get::<Option<i64>>("dup_id")? {
        let code: Option<String> = row.get("dup_code")?;
        let duplicate = Ingested {
            ticket: code.map(|c| parse(&c, "ticket code")).transpose()?,
            message_id,
            duplicate: true,
            ticket_created: false,
            reopened: false,
        };
        return Ok(IntakeRead { duplicate: Some(duplicate), owner: None });
    }
    let owner = match row.get::<Option<i64>>("identity_id")? {
        Some(identity_id) => Some((
            identity_id,
            row.get("reporter_id")?,
            row.get("unnamed")?,
            Pending {
                known: true,
                confirmation: row.get("confirmation_pending")?,
                waiting: row.get("answers_waiting")?,
                link: row.get("must_link")?,
            },
        )),
        None => None,
    };
    Ok(IntakeRead { duplicate: None, owner })
}

/// The CTEs of a new sender's rows (PostgreSQL): `r`, the reporter; `i`, its identity
/// `primary` (`reporter_id, id`); and `k`, when the sender has other contacts, those of them
/// nobody owns yet (each once: one equal to `primary` or repeated is written once). `now` is
/// the placeholder of the time; the rest is bound to `p`.
fn new_reporter_ctes(p: &mut Params, sender: &Sender, primary: &Identity, now: &str) -> String {
    let name = p.bind(&sender.display_name);
    let (kind, value) = (p.bind(primary.kind.as_str()), p.bind(&primary.value));
    let mut sql = format!(
        "r AS (INSERT INTO reporters (name, created_at) VALUES ({name}, {now}) RETURNING id), \
         i AS (INSERT INTO identities (reporter_id, kind, value, created_at) \
         SELECT r.id, {kind}, {value}, {now} FROM r RETURNING reporter_id, id)"
    );
    let contacts = other_contacts(sender, primary);
    if !contacts.is_empty() {
        let rows: Vec<String> = contacts
            .into_iter()
            .map(|k| format!("({}, {})", p.bind(k.kind.as_str()), p.bind(&k.value)))
            .collect();
        sql.push_str(&format!(
            ", k AS (INSERT INTO identities (reporter_id, kind, value, created_at) \
             SELECT r.id, v.kind, v.value, {now} FROM r, (VALUES {}) AS v (kind, value) \
             ON CONFLICT (kind, value) DO NOTHING)",
            rows.join(", ")
        ));
    }
    sql
}

/// The `INSERT` of a new ticket's first message, from the ticket the CTE `t` writes
/// ([`new_ticket_insert`]), sent by `identity` (a row, or the new sender's identity `i`);
/// `now` is the placeholder of the time. Returns the ticket and the message (PostgreSQL).
fn new_message_insert(
    p: &mut Params,
    msg: &InboundMessage,
    identity: RowRef,
    revision_of: Option<i64>,
    now: &str,
) -> String {
    let channel = p.bind(msg.channel.as_str());
    let provider_id = p.bind(&msg.provider_id);
    let identity = match identity {
        RowRef::Id(id) => p.bind(id),
        RowRef::NewSender => "(SELECT id FROM i)".to_owned(),
    };
    let name = p.bind(&msg.sender.display_name);
    let text = p.bind(&msg.text);
    let lat = p.bind(msg.location.map(|l| l.lat));
    let lon = p.bind(msg.location.map(|l| l.lon));
    let automated = p.bind(msg.thread.automated);
    let sent_at = p.bind(truncate_ms(msg.received_at));
    let revision_of = p.bind(revision_of);
    format!(
        "INSERT INTO messages (ticket_id, direction, channel, provider_id, identity_id, \
         display_name, text, lat, lon, automated, sent_at, stored_at, revision_of) \
         SELECT t.id, 'in', {channel}, {provider_id}, {identity}, {name}, {text}, {lat}, {lon}, \
         {automated}, {sent_at}, {now}, {revision_of} FROM t RETURNING ticket_id, id"
    )
}

/// A new reporter, its identity and the sender's other contacts (those nobody owns yet) in
/// one statement (PostgreSQL). Returns the reporter and the identity.
async fn new_reporter_pg<D: Db>(
    c: &mut D,
    sender: &Sender,
    primary: &Identity,
    now: DateTime<Utc>,
) -> Result<(i64, i64)> {
    let mut p = Params::default();
    let at = p.bind(now);
    let reporter = new_reporter_ctes(&mut p, sender, primary, &at);
    let sql = format!("WITH {reporter} SELECT reporter_id, id FROM i");
    let row = c.fetch_one(&sql, p.0).await?;
    Ok((row.get("reporter_id")?, row.get("id")?))
}

/// A new ticket and its first message in one statement (PostgreSQL): `create_ticket`'s
/// insert and intake's message insert. `ids` are the reporter, the sender's identity and the
/// message this one revises. Returns the ticket, its code and the message.
async fn create_ticket_with_message<D: Db>(
    c: &mut D,
    opts: &StoreOptions,
    msg: &InboundMessage,
    ids: (Option<i64>, Option<i64>, Option<i64>),
    now: DateTime<Utc>,
) -> Result<(i64, TicketCode, i64)> {
    let (reporter_id, identity_id, revision_of) = ids;
    for _ in 0..8 {
        let code = TicketCode::from_entropy(rand::random());
        // A taken code inserts neither row; another code is tried.
        let mut p = Params::default();
        let (ticket, at) = new_ticket_insert(&mut p, code, opts, msg, RowRef::Id(reporter_id), now);
        let message = new_message_insert(&mut p, msg, RowRef::Id(identity_id), revision_of, &at);
        let sql = format!("WITH t AS ({ticket}) {message}");
        if let Some(row) = c.fetch_optional(&sql, p.0).await? {
            return Ok((row.get("ticket_id")?, code, row.get("id")?));
        }
    }
    Err(StoreError::Conflict("no free tracking code found".into()))
}

// --- pgintake: a new sender's message in one statement (issue 22 item 4) ---
//
// The common message of an intake burst comes from a new sender and names no ticket: it
// became a reporter with its identities (`new_reporter_pg`), then a ticket with its first
// message (`create_ticket_with_message`), two statements and two round trips inside the
// group's transaction. [`new_sender_ticket_pg`] writes all of it in one. Only when nothing
// between those two statements needs the reporter: no provider-verified key to link (that
// reads and writes `reporter_keys` with the reporter's id), no ticket named by the message
// (code, reference, edit), so threading has no candidate and decides on the message alone;
// when it decides anything but a new ticket, the reporter is written as before.

/// Whether a new sender's message can take [`new_sender_ticket_pg`]: it has a sender, links
/// nothing and names no ticket.
fn new_sender_fusable(msg: &InboundMessage) -> bool {
    primary(&msg.sender).is_some()
        && link_keys(msg).is_empty()
        && msg.thread.revision_of.is_none()
        && msg.thread.ticket.is_none()
        && msg.thread.references.is_empty()
        && TicketCode::find_all(&msg.text).is_empty()
}

/// A new reporter with its identities (the sender's other contacts only where nobody owns
/// them), a new ticket and its first message, in one statement (PostgreSQL). Returns the
/// reporter, the identity and `(ticket, code, message)`; the last is `None` when the random
/// code was taken (the reporter is written; the caller makes the ticket as usual).
async fn new_sender_ticket_pg<D: Db>(
    c: &mut D,
    opts: &StoreOptions,
    msg: &InboundMessage,
    now: DateTime<Utc>,
) -> Result<(i64, i64, Option<(i64, TicketCode, i64)>)> {
    let sender = &msg.sender;
    let primary = primary_of(sender)?;
    let code = TicketCode::from_entropy(rand::random());
    let mut p = Params::default();
    let (ticket, at) = new_ticket_insert(&mut p, code, opts, msg, RowRef::NewSender, now);
    let reporter = new_reporter_ctes(&mut p, sender, primary, &at);
    let message = new_message_insert(&mut p, msg, RowRef::NewSender, None, &at);
    let sql = format!(
        "WITH {reporter}, t AS ({ticket}), m AS ({message}) \
         SELECT i.reporter_id, i.id AS identity_id, m.ticket_id, m.id AS message_id \
         FROM i LEFT JOIN m ON TRUE"
    );
    let row = c.fetch_one(&sql, p.0).await?;
    let created = match row.get::<Option<i64>>("ticket_id")? {
        Some(ticket_id) => Some((ticket_id, code, row.get("message_id")?)),
        None => None,
    };
    Ok((row.get("reporter_id")?, row.get("identity_id")?, created))
}

// --- pgbatch: a group's new senders in one statement (issue 22 item 4) ---
//
// Under load a PostgreSQL group holds dozens of messages, and one by one each costs a read
// and a write, each a round trip and a statement whose fixed cost (locking and opening the
// tables and their indexes, starting the executor) is most of its time: the group's writer
// waited on about 1 ms per message. The group's new senders' first messages, whose rows
// nothing else in the group touches, are checked and written together in one statement;
// the rest of the group goes one by one as before.

/// What two messages of one group must not share to be stored together.
#[derive(PartialEq, Eq, Hash)]
enum BatchKey<'m> {
    Message(Channel, &'m str),
    Contact(&'m str, &'m str),
}

/// The provider message and each of the sender's contacts.
fn batch_keys(msg: &InboundMessage) -> Vec<BatchKey<'_>> {
    let mut keys = vec![BatchKey::Message(msg.channel, msg.provider_id.as_str())];
    for id in msg.sender.identity.iter().chain(&msg.sender.contacts) {
        let key = BatchKey::Contact(id.kind.as_str(), id.value.as_str());
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys
}

/// The messages of a group that may be stored together, as `(write, message)`: each names no
/// ticket and links nothing ([`new_sender_fusable`]), threading opens a ticket for it when
/// its sender is new, and no other message of the group carries its provider id or one of
/// its sender's contacts (so the order of the group's messages can't matter). Whether the
/// message and the sender are new is for [`batch_insert`] to see. Empty below two: one
/// message goes the usual way, in as many statements.
fn batch_candidates(writes: &[&GroupWrite]) -> Vec<(usize, usize)> {
    let keys: Vec<Vec<Vec<BatchKey<'_>>>> =
        writes.iter().map(|w| w.msgs.iter().map(batch_keys).collect()).collect();
    let mut seen: std::collections::HashMap<&BatchKey<'_>, usize> = Default::default();
    for key in keys.iter().flatten().flatten() {
        *seen.entry(key).or_default() += 1;
    }
    let mut out = Vec::new();
    for (w, write) in writes.iter().enumerate() {
        for (i, msg) in write.msgs.iter().enumerate() {
            let facts = SenderFacts {
                automated: msg.thread.automated,
                is_reporter: false,
                asks_status: false,
            };
            let policy = &write.opts.threading;
            let opens = decide_thread(policy, msg.channel, facts, write.now, None, None)
                == ThreadDecision::NewTicket;
            let alone = keys[w][i].iter().all(|k| seen.get(k) == Some(&1));
            if opens && alone && new_sender_fusable(msg) {
                out.push((w, i));
            }
        }
    }
    if out.len() < 2 { Vec::new() } else { out }
}

/// A time as PostgreSQL reads it from JSON, to the millisecond the store keeps.
fn json_time(t: DateTime<Utc>) -> String {
    truncate_ms(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// One statement for the candidates whose provider message is not stored and whose sender
/// is not known (its snapshot is taken after the group's locks, so it sees every committed
/// row they guard): each sender's reporter, identity and other contacts (those nobody owns
/// yet), its new ticket and the message, as [`new_sender_ticket_pg`] writes one; then each
/// message's attachments and receipt. Returns those stored; the rest go one by one. When a
/// ticket's random code is taken (by an earlier ticket or another row), its sender's rows are
/// written and its message is not: going one by one, it finds the sender known and its new
/// ticket tries other codes, as after [`new_sender_ticket_pg`].
async fn batch_insert<D: Db>(
    c: &mut D,
    writes: &[&GroupWrite],
    batch: &[(usize, usize)],
) -> Result<Vec<((usize, usize), Ingested)>> {
    let mut rows = Vec::with_capacity(batch.len());
    let mut contacts = Vec::new();
    let mut codes = Vec::with_capacity(batch.len());
    for (n, &(w, i)) in batch.iter().enumerate() {
        let GroupWrite { opts, msgs, now } = writes[w];
        let (msg, now) = (&msgs[i], *now);
        let primary = primary_of(&msg.sender)?;
        let code = TicketCode::from_entropy(rand::random());
        codes.push(code);
        let (first_due, due, first_budget, budget) = new_ticket_clocks(opts, now);
        rows.push(serde_json::json!({
            "n": n, "name": msg.sender.display_name,
            "kind": primary.kind.as_str(), "value": primary.value,
            "code": code.to_string(), "channel": msg.channel.as_str(),
            "lat": msg.location.map(|l| l.lat), "lon": msg.location.map(|l| l.lon),
            "at": json_time(now),
            "first_due": json_time(first_due), "due": json_time(due),
            "first_budget": first_budget, "budget": budget,
            "provider_id": msg.provider_id, "text": msg.text,
            "automated": msg.thread.automated, "sent_at": json_time(msg.received_at),
        }));
        for k in other_contacts(&msg.sender, primary) {
            contacts.push(serde_json::json!({"n": n, "kind": k.kind.as_str(), "value": k.value}));
        }
    }
    let stored = c
        .fetch_all(
            // `fresh` keeps the candidates not stored and not known, probed by index one by
            // one (LATERAL with LIMIT: as `NOT EXISTS` the planner may hash the whole
            // table instead, 15 ms a group of 23 in `cargo xtask bench`); `u` numbers their
            // rows once (MATERIALIZED, so each `nextval` runs once per row).
            "WITH fresh AS (SELECT j.* FROM json_to_recordset($1::json) AS j (n int8, \
                 name text, kind text, value text, code text, channel text, lat float8, \
                 lon float8, at timestamptz, first_due timestamptz, due timestamptz, \
                 first_budget text, budget text, provider_id text, text text, \
                 automated bool, sent_at timestamptz) \
                 LEFT JOIN LATERAL (SELECT 1 AS hit FROM messages m WHERE m.channel = j.channel \
                     AND m.provider_id = j.provider_id LIMIT 1) stored ON TRUE \
                 LEFT JOIN LATERAL (SELECT 1 AS hit FROM identities o WHERE o.kind = j.kind \
                     AND o.value = j.value LIMIT 1) known ON TRUE \
                 WHERE stored.hit IS NULL AND known.hit IS NULL), \
             u AS MATERIALIZED (SELECT fresh.*, nextval('reporters_id_seq') AS rid, \
                 nextval('identities_id_seq') AS iid, nextval('tickets_id_seq') AS tid \
                 FROM fresh), \
             r AS (INSERT INTO reporters (id, name, created_at) SELECT rid, name, at FROM u), \
             i AS (INSERT INTO identities (id, reporter_id, kind, value, created_at) \
                 SELECT iid, rid, kind, value, at FROM u), \
             k AS (INSERT INTO identities (reporter_id, kind, value, created_at) \
                 SELECT u.rid, k.kind, k.value, u.at \
                 FROM json_to_recordset($2::json) AS k (n int8, kind text, value text), u \
                 WHERE u.n = k.n ON CONFLICT (kind, value) DO NOTHING), \
             t AS (INSERT INTO tickets (id, code, status, channel, reporter_id, lat, lon, \
                 created_at, updated_at, last_message_at, first_response_due_at, \
                 resolution_due_at, first_response_budget, resolution_budget, route_pending) \
                 SELECT tid, code, 'new', channel, rid, lat, lon, at, at, at, first_due, due, \
                 first_budget, budget, TRUE FROM u ON CONFLICT (code) DO NOTHING RETURNING id), \
             m AS (INSERT INTO messages (ticket_id, direction, channel, provider_id, \
                 identity_id, display_name, text, lat, lon, automated, sent_at, stored_at) \
                 SELECT tid, 'in', channel, provider_id, iid, name, text, lat, lon, \
                 automated, sent_at, at FROM u JOIN t ON t.id = u.tid RETURNING ticket_id, id) \
             SELECT u.n, u.tid, m.id AS message_id FROM u JOIN m ON m.ticket_id = u.tid",
            args![
                serde_json::Value::Array(rows).to_string(),
                serde_json::Value::Array(contacts).to_string()
            ],
        )
        .await?;
    let mut out = Vec::with_capacity(batch.len());
    for row in stored {
        let n = usize::try_from(row.get::<i64>("n")?)
            .ok()
            .filter(|n| *n < batch.len())
            .ok_or_else(|| StoreError::Internal("a batched intake row out of range".into()))?;
        let (w, i) = batch[n];
        let GroupWrite { opts, msgs, now } = writes[w];
        let (ticket_id, message_id): (i64, i64) = (row.get("tid")?, row.get("message_id")?);
        insert_attachments(c, message_id, &msgs[i]).await?;
        queue_receipt(c, opts, &msgs[i], ticket_id, codes[n], *now).await?;
        let stored = Ingested {
            ticket: Some(codes[n]),
            message_id,
            duplicate: false,
            ticket_created: true,
            reopened: false,
        };
        out.push(((w, i), stored));
    }
    Ok(out)
}
