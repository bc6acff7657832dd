//! What operators do to a ticket: assign, change status, reply, ask for identity, relay an
//! official's answer, merge, set a category; pausing and resuming the clocks.

use aduan_core::{
    Actor, Budget, Channel, EventKind, Identity, Measure, Purpose, ReplyRoute, Status, TicketCode,
    choose_reply_route,
};
use chrono::{DateTime, Utc};

use super::common::{
    REFRESH_DISPOSE_PENDING, TicketRow, event, lock, lock_tickets, parse, require_ticket,
};
use super::outbox::queue_outbound;
use crate::db::{Db, args};
use crate::types::Replied;
use crate::{AutoLimits, Result, Store, StoreError, StoreOptions, clean, now, truncate_ms};

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

/// Sets a ticket's category unless it has one (a report that named its service, e.g.
/// Open311's `service_code`), with a `categorized` event by the system.
pub(crate) async fn set_category_if_unset<D: Db>(
    c: &mut D,
    code: TicketCode,
    category: String,
    now: DateTime<Utc>,
) -> Result<bool> {
    let id: Option<i64> = c
        .fetch_optional_scalar(
            "UPDATE tickets SET category = $2 WHERE code = $1 AND category IS NULL RETURNING id",
            args![code.to_string(), &category],
        )
        .await?;
    let Some(id) = id else { return Ok(false) };
    event(c, id, now, &Actor::System, EventKind::Categorized, None, Some(&category), None).await?;
    Ok(true)
}

impl Store {
    /// Disposes a ticket to an OPD (or moves it to another one).
    pub async fn assign(
        &self,
        code: TicketCode,
        opd: String,
        actor: Actor,
        note: Option<String>,
    ) -> Result<()> {
        let note = note.map(clean);
        let now = now();
        // On every member of the ticket's incident (issue 20).
        write!(self, |c| super::incidents::assign_all(c, code, opd, actor, note, now))
    }

    pub async fn set_status(
        &self,
        code: TicketCode,
        to: Status,
        actor: Actor,
        note: Option<String>,
    ) -> Result<()> {
        let note = note.map(clean);
        let now = now();
        let opts = self.inner.opts.clone();
        // On every member of the ticket's incident (issue 20), each asked to confirm when
        // resolved.
        write!(self, |c| super::incidents::set_status_all(c, &opts, code, to, actor, note, now))
    }

    /// Records an answer to the resident and queues it in the outbox for their channel.
    pub async fn reply(&self, code: TicketCode, text: String, actor: Actor) -> Result<Replied> {
        let text = clean(text);
        let now = now();
        // To every member's reporter of the ticket's incident (issue 20).
        write!(self, |c| super::incidents::reply_all(c, code, text, actor, now))
    }

    /// Asks the resident to identify themselves (queued on their channel like a reply,
    /// purpose `identity_request`) and moves the ticket to `awaiting_identity`.
    pub async fn request_identity(
        &self,
        code: TicketCode,
        text: String,
        actor: Actor,
    ) -> Result<Replied> {
        let text = clean(text);
        let limits = self.inner.opts.auto_limits;
        let now = now();
        write!(self, |c| request_identity(c, code, text, actor, limits, now))
    }

    /// Records an answer that arrived as a message (an OPD official replying by email) and
    /// queues it for the resident like [`Store::reply`], once per `origin` (e.g.
    /// `email:<Message-ID>`): `None` when that message was relayed before.
    pub async fn relay_reply(
        &self,
        code: TicketCode,
        text: String,
        actor: Actor,
        origin: String,
    ) -> Result<Option<Replied>> {
        let (text, origin) = (clean(text), clean(origin));
        let now = now();
        write!(self, |c| super::incidents::relay_reply_all(c, code, text, actor, origin, now))
    }

    /// Merges ticket `code` into `into`: its messages move over, later messages quoting
    /// `code` land in `into`.
    pub async fn merge(&self, code: TicketCode, into: TicketCode, actor: Actor) -> Result<()> {
        let now = now();
        write!(self, |c| merge(c, code, into, actor, now))
    }

    /// Sets a ticket's category unless it has one.
    pub async fn set_category_if_unset(&self, code: TicketCode, category: String) -> Result<bool> {
        let now = now();
        write!(self, |c| set_category_if_unset(c, code, category, now))
    }
}

// --- confirm: the resident confirms a resolved ticket ---

/// The SHA-256 (hex) of a confirmation key: what `confirmations.key_hash` stores.
pub(crate) fn confirm_key_hash(key: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(key.as_bytes()))
}

/// Asks the resident of a ticket that just became `resolved` whether it is really fixed
/// (issue 17 item 4): a `confirmations` row with a random key (stored hashed) and a deadline
/// `[sla] confirm_working_days` working days away, and — when the resident can be written
/// to — the question ([`aduan_core::texts::confirm_request`], purpose `confirm_request`, an
/// auto-reply: capped, never to a machine address) with their `/lacak` link carrying the
/// key. Anonymous reporters and web-form reporters without a contact are not asked (no
/// outbox row); their ticket is still closed when the deadline passes. Any earlier pending
/// question of the ticket is superseded. Returns the key, `None` when the ticket is not
/// resolved.
pub(crate) async fn ask_confirmation<D: Db>(
    c: &mut D,
    opts: &StoreOptions,
    code: TicketCode,
    now: DateTime<Utc>,
) -> Result<Option<String>> {
    let t = require_ticket(c, code, now).await?;
    if t.summary.status != Status::Resolved {
        return Ok(None);
    }
    c.execute(
        "UPDATE confirmations SET outcome = 'superseded' WHERE ticket_id = $1 AND outcome IS NULL",
        args![t.id],
    )
    .await?;
    let key = hex::encode(rand::random::<[u8; 24]>());
    let days = opts.sla.confirm_working_days.max(1);
    let due = opts.sla.calendar.due(now, Budget::WorkingDays(i64::from(days)));
    let route = match resident_route(c, &t).await? {
        ReplyRoute::Send { channel, to }
            if t.reporter_id.is_some() && resident_wrote_from(c, &to).await? =>
        {
            Some(ReplyRoute::Send { channel, to })
        }
        _ => None,
    };
    let (channel, to) = match &route {
        Some(ReplyRoute::Send { channel, to }) => (Some(*channel), Some(to.clone())),
        _ => (None, None),
    };
    c.execute(
        "INSERT INTO confirmations (ticket_id, channel, recipient_kind, recipient, key_hash, \
         asked_at, due_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        args![
            t.id,
            channel.map(Channel::as_str),
            to.as_ref().map(|i| i.kind.as_str()),
            to.as_ref().map(|i| i.value.clone()),
            confirm_key_hash(&key),
            now,
            truncate_ms(due)
        ],
    )
    .await?;
    let system = &Actor::System;
    event(c, t.id, now, system, EventKind::Confirmation, None, Some("asked"), None).await?;
    if let Some(route) = route {
        let link = opts.public_url.as_deref().map(|u| format!("{u}/lacak/{code}?k={key}"));
        let text = aduan_core::texts::confirm_request(code, link.as_deref(), days);
        let (limits, purpose) = (Some(&opts.auto_limits), Purpose::ConfirmRequest);
        queue_outbound(c, t.id, t.summary.channel, route, &text, system, purpose, limits, now)
            .await?;
    }
    Ok(Some(key))
}

/// Whether the resident wrote to us from `identity` themselves (on a channel where the
/// provider vouches for the sender), not only typed it into a web form or an Open311 request:
/// nobody verified such a contact, so no rating request goes there.
async fn resident_wrote_from<D: Db>(c: &mut D, identity: &Identity) -> Result<bool> {
    let row = c
        .fetch_optional(
            "SELECT m.id FROM messages m JOIN identities i ON i.id = m.identity_id \
             WHERE i.kind = $1 AND i.value = $2 AND m.direction = 'in' \
             AND m.channel NOT IN ('web', 'open311') LIMIT 1",
            args![identity.kind.as_str(), &identity.value],
        )
        .await?;
    Ok(row.is_some())
}

/// Applies a resident's answer to the pending confirmation `confirmation_id` of ticket
/// `code` (locked and still `resolved`): fixed → `closed` (with the rating); not fixed →
/// reopened to the same OPD (`assigned`, or `new` without one) with the resolution clock
/// restarted from now; unclear → nothing but an event, the question stays pending.
pub(crate) async fn apply_confirmation<D: Db>(
    c: &mut D,
    opts: &StoreOptions,
    code: TicketCode,
    confirmation_id: i64,
    answer: aduan_core::confirm::Confirmation,
    now: DateTime<Utc>,
) -> Result<()> {
    use aduan_core::confirm::Verdict;
    let t = require_ticket(c, code, now).await?;
    let resident = &Actor::Resident;
    let rating = answer.rating.map(|r| format!("rating {r}"));
    let verdict = answer.verdict.as_str();
    if answer.verdict == Verdict::Unclear {
        return event(c, t.id, now, resident, EventKind::Confirmation, None, Some(verdict), None)
            .await;
    }
    c.execute(
        "UPDATE confirmations SET outcome = $2, rating = $3, answered_at = $4 WHERE id = $1",
        args![confirmation_id, verdict, answer.rating.map(i64::from), now],
    )
    .await?;
    event(c, t.id, now, resident, EventKind::Confirmation, None, Some(verdict), rating.as_deref())
        .await?;
    let from = t.summary.status;
    let to = match answer.verdict {
        Verdict::Fixed => Status::Closed,
        _ => from.reopened(t.summary.opd.is_some()).unwrap_or(Status::New),
    };
    from.can_become(to)?;
    let budget = t.resolution_budget.unwrap_or(opts.sla.resolution);
    let resolution_due = truncate_ms(opts.sla.calendar.due(now, budget));
    if to == Status::Closed {
        c.execute(
            "UPDATE tickets SET status = 'closed', updated_at = $2 WHERE id = $1",
            args![t.id, now],
        )
        .await?;
    } else {
        // Reopened: the resolution clock starts again from now.
        c.execute(
            "UPDATE tickets SET status = $2, updated_at = $3, resolved_at = NULL, \
             resolution_due_at = $4, paused_at = NULL WHERE id = $1",
            args![t.id, to.as_str(), now, resolution_due],
        )
        .await?;
    }
    c.execute(REFRESH_DISPOSE_PENDING, args![t.id]).await?;
    event(
        c,
        t.id,
        now,
        resident,
        EventKind::StatusChanged,
        Some(from.as_str()),
        Some(to.as_str()),
        None,
    )
    .await
}

/// The pending confirmation of ticket `code` whose key hashes to `key_hash`, if the ticket
/// is still `resolved`.
pub(crate) async fn pending_confirmation_by_key<D: Db>(
    c: &mut D,
    code: TicketCode,
    key_hash: &str,
) -> Result<Option<i64>> {
    c.fetch_optional_scalar(
        "SELECT k.id FROM confirmations k JOIN tickets t ON t.id = k.ticket_id \
         WHERE t.code = $1 AND k.key_hash = $2 AND k.outcome IS NULL AND t.status = 'resolved'",
        args![code.to_string(), key_hash],
    )
    .await
}

/// The resident answered on their `/lacak` page with the key of their link: their words
/// (if any) become a message on the ticket, then the answer is applied as for a chat reply.
/// `false` (nothing changed) when the key is not that of a pending confirmation.
pub(crate) async fn confirm_with_key<D: Db>(
    c: &mut D,
    opts: &StoreOptions,
    code: TicketCode,
    key: String,
    answer: aduan_core::confirm::Confirmation,
    words: Option<String>,
    now: DateTime<Utc>,
) -> Result<bool> {
    lock_tickets(c, &[code]).await?;
    let Some(id) = pending_confirmation_by_key(c, code, &confirm_key_hash(&key)).await? else {
        return Ok(false);
    };
    let t = require_ticket(c, code, now).await?;
    if let Some(words) = words.filter(|w| !w.trim().is_empty()) {
        let message_id: i64 = c
            .fetch_one_scalar(
                "INSERT INTO messages (ticket_id, direction, channel, provider_id, text, \
                 automated, sent_at, stored_at) VALUES ($1, 'in', 'web', $2, $3, $4, $5, $5) \
                 RETURNING id",
                args![t.id, format!("confirm:{id}"), &words, false, now],
            )
            .await?;
        c.execute("UPDATE tickets SET last_message_at = $2 WHERE id = $1", args![t.id, now])
            .await?;
        let mid = message_id.to_string();
        event(c, t.id, now, &Actor::Resident, EventKind::MessageReceived, None, Some(&mid), None)
            .await?;
    }
    apply_confirmation(c, opts, code, id, answer, now).await?;
    Ok(true)
}

impl Store {
    /// Asks the resident of a resolved ticket to confirm it ([`ask_confirmation`]) at
    /// `now`; [`Store::set_status`] does this itself when a ticket becomes `resolved`.
    /// Returns the key of the resident's `/lacak` link.
    pub async fn ask_confirmation(
        &self,
        code: TicketCode,
        now: DateTime<Utc>,
    ) -> Result<Option<String>> {
        let opts = self.inner.opts.clone();
        write!(self, |c| async move {
            lock_tickets(c, &[code]).await?;
            ask_confirmation(c, &opts, code, now).await
        })
    }

    /// Whether `key` opens the pending confirmation of ticket `code` (for `/lacak`).
    pub async fn confirmation_pending(&self, code: TicketCode, key: &str) -> Result<bool> {
        let hash = confirm_key_hash(key);
        read!(
            self,
            |c| async move { Ok(pending_confirmation_by_key(c, code, &hash).await?.is_some()) }
        )
    }

    /// The resident's answer from their `/lacak` link (see [`confirm_with_key`]); `false`
    /// when the key opens no pending confirmation of that ticket.
    pub async fn confirm_with_key(
        &self,
        code: TicketCode,
        key: String,
        answer: aduan_core::confirm::Confirmation,
        words: Option<String>,
    ) -> Result<bool> {
        let opts = self.inner.opts.clone();
        let words = words.map(clean);
        let now = now();
        write!(self, |c| confirm_with_key(c, &opts, code, key, answer, words, now))
    }
}
