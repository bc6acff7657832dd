//! What operators do to a ticket: assign, change status, reply, ask for identity, relay an
//! official's answer, merge, set a category; pausing and resuming the clocks.

use aduan_core::{
    Actor, Budget, Channel, EventKind, Identity, Measure, Purpose, ReplyRoute, Status, TicketCode,
    choose_reply_route,
};
use chrono::{DateTime, Utc};

use super::common::{
    REFRESH_DISPOSE_PENDING, TicketRow, event, lock, lock_ticket, lock_tickets, parse,
    require_ticket, status_event,
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

/// Whether ticket `code` (`t`) may be assigned to `opd`: not while that OPD holds it
/// already, and only where `assigned` is a legal next status.
pub(crate) fn check_assign(code: TicketCode, t: &TicketRow, opd: &str) -> Result<()> {
    let from = t.summary.status;
    if from == Status::Assigned && t.summary.opd.as_deref() == Some(opd) {
        return Err(StoreError::Conflict(format!("{code} is already assigned to {opd}")));
    }
    if from != Status::Assigned {
        from.can_become(Status::Assigned)?;
    }
    Ok(())
}

pub(crate) async fn assign<D: Db>(
    c: &mut D,
    code: TicketCode,
    opd: String,
    actor: Actor,
    note: Option<String>,
    now: DateTime<Utc>,
) -> Result<()> {
    let t = lock_ticket(c, code, now).await?;
    let from = t.summary.status;
    check_assign(code, &t, &opd)?;
    c.execute(
        "UPDATE tickets SET status = 'assigned', opd = $2, updated_at = $3, resolved_at = NULL, \
         route_pending = $4, route_lease_until = NULL WHERE id = $1",
        args![t.id, &opd, now, false],
    )
    .await?;
    c.execute(REFRESH_DISPOSE_PENDING, args![t.id]).await?;
    count_disposition(c, t.id, &actor, &opd).await?;
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
        status_event(c, t.id, now, &actor, (from, Status::Assigned), None).await?;
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
    let t = lock_ticket(c, code, now).await?;
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
    status_event(c, t.id, now, &actor, (from, to), note.as_deref()).await?;
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
    let t = lock_ticket(c, code, now).await?;
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
    status_event(c, t.id, now, resident, (from, to), None).await
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

// --- rules: routing quality counters ---

/// Keeps `routing_counts` (migration 0018) for a disposition of ticket `ticket_id` to `opd`
/// by `actor`; runs in [`assign`] before its `assigned` event is written, so the events it
/// reads are the earlier ones (the `events_ticket` index: a handful of rows). A ticket's
/// first disposition counts for its OPD as automatic (`Actor::System`, the router) or
/// manual (a person or an API key); a later disposition of an automatically routed ticket
/// by anyone else to another OPD counts once, for the router's OPD, as a re-disposition:
/// the router's real error.
pub(crate) async fn count_disposition<D: Db>(
    c: &mut D,
    ticket_id: i64,
    actor: &Actor,
    opd: &str,
) -> Result<()> {
    let system = Actor::System.to_string();
    let first = c
        .fetch_optional(
            "SELECT actor, to_value FROM events WHERE ticket_id = $1 AND kind = 'assigned' \
             AND to_value IS NOT NULL ORDER BY id LIMIT 1",
            args![ticket_id],
        )
        .await?;
    let Some(first) = first else {
        let column = if *actor == Actor::System { "auto_n" } else { "manual_n" };
        return bump_routing_count(c, opd, column).await;
    };
    let first_actor: String = first.get("actor")?;
    let first_opd: String = first.get("to_value")?;
    if first_actor != system || *actor == Actor::System || first_opd == opd {
        return Ok(());
    }
    let earlier: Option<i64> = c
        .fetch_optional_scalar(
            "SELECT id FROM events WHERE ticket_id = $1 AND kind = 'assigned' AND actor <> $2 \
             AND to_value IS NOT NULL AND to_value <> $3 LIMIT 1",
            args![ticket_id, &system, &first_opd],
        )
        .await?;
    if earlier.is_some() {
        return Ok(());
    }
    bump_routing_count(c, &first_opd, "redisposed_n").await
}

async fn bump_routing_count<D: Db>(c: &mut D, opd: &str, column: &str) -> Result<()> {
    let sql = format!(
        "INSERT INTO routing_counts (opd, {column}) VALUES ($1, 1) \
         ON CONFLICT (opd) DO UPDATE SET {column} = routing_counts.{column} + 1"
    );
    c.execute(&sql, args![opd]).await?;
    Ok(())
}

// --- inbox: operator assignment ---
//
// Who in the desk handles a ticket (issue 19.2, migration 0019 `tickets.assignee`): an
// operator takes a triage ticket ("saya tangani") and may let it go ("lepaskan"). Each
// change is a `handler` event (`from` → `to`, the operators' emails). Taking needs the
// ticket in triage (`new` or `awaiting_identity`, not yet disposed); letting go works in
// any status.

pub(crate) async fn set_handler<D: Db>(
    c: &mut D,
    code: TicketCode,
    handler: Option<String>,
    actor: Actor,
    now: DateTime<Utc>,
) -> Result<()> {
    let t = lock_ticket(c, code, now).await?;
    let current = t.summary.assignee.clone();
    if current == handler {
        return Ok(());
    }
    let triage = matches!(t.summary.status, Status::New | Status::AwaitingIdentity);
    if handler.is_some() && !triage {
        return Err(StoreError::Conflict(format!(
            "{code} is {}; only a triage ticket can be taken",
            t.summary.status.as_str()
        )));
    }
    c.execute(
        "UPDATE tickets SET assignee = $2, updated_at = $3 WHERE id = $1",
        args![t.id, &handler, now],
    )
    .await?;
    event(c, t.id, now, &actor, EventKind::Handler, current.as_deref(), handler.as_deref(), None)
        .await
}

impl Store {
    /// Sets (`Some(email)`: only on a triage ticket) or clears the operator handling
    /// `code`, with a `handler` event; nothing when it is already so.
    pub async fn set_handler(
        &self,
        code: TicketCode,
        handler: Option<String>,
        actor: Actor,
    ) -> Result<()> {
        let now = now();
        write!(self, |c| set_handler(c, code, handler, actor, now))
    }
}

// Round-robin (`[inbox] round_robin`): new triage tickets nobody took are handed to the
// operators on duty (`users.on_duty`, each operator's own toggle), the one with the fewest
// triage tickets in hand first (ties by email), so new work goes around. A ticket that
// ever had a handler (taken and let go) is left to the desk. One transaction; on
// PostgreSQL under an advisory lock, so instances don't hand out the same ticket twice.

/// Triage tickets handed out: (ticket, operator).
pub(crate) async fn round_robin<D: Db>(
    c: &mut D,
    limit: i64,
    now: DateTime<Utc>,
) -> Result<Vec<(TicketCode, String)>> {
    if D::IS_PG {
        lock(c, "inbox_round_robin").await?;
    }
    let rows = c
        .fetch_all(
            "SELECT u.email, (SELECT COUNT(*) FROM tickets t WHERE t.assignee = u.email \
             AND t.status IN ('new', 'awaiting_identity')) AS load \
             FROM users u WHERE u.on_duty = $1 AND u.disabled = $2 AND u.role = 'operator' \
             ORDER BY u.email",
            args![true, false],
        )
        .await?;
    let mut operators: Vec<(i64, String)> = rows
        .iter()
        .map(|r| Ok((r.get::<i64>("load")?, r.get::<String>("email")?)))
        .collect::<Result<_>>()?;
    if operators.is_empty() {
        return Ok(Vec::new());
    }
    let waiting = c
        .fetch_all(
            "SELECT t.id, t.code FROM tickets t WHERE t.status IN ('new', 'awaiting_identity') \
             AND t.opd IS NULL AND t.assignee IS NULL AND t.merged_into IS NULL \
             AND NOT EXISTS (SELECT 1 FROM events e WHERE e.ticket_id = t.id AND e.kind = $1) \
             ORDER BY t.id LIMIT $2",
            args![EventKind::Handler.as_str(), limit],
        )
        .await?;
    let mut handed = Vec::new();
    for row in waiting {
        let id: i64 = row.get("id")?;
        let code: TicketCode = parse(&row.get::<String>("code")?, "ticket code")?;
        operators.sort();
        let Some((load, email)) = operators.first_mut() else { break };
        c.execute(
            "UPDATE tickets SET assignee = $2, updated_at = $3 WHERE id = $1",
            args![id, email.clone(), now],
        )
        .await?;
        let system = Actor::System;
        event(
            c,
            id,
            now,
            &system,
            EventKind::Handler,
            None,
            Some(email.as_str()),
            Some("bergiliran"),
        )
        .await?;
        *load += 1;
        handed.push((code, email.clone()));
    }
    Ok(handed)
}

impl Store {
    /// Hands up to `limit` new triage tickets to the operators on duty, in turn.
    pub async fn round_robin(&self, limit: i64) -> Result<Vec<(TicketCode, String)>> {
        let now = now();
        write!(self, |c| round_robin(c, limit, now))
    }
}

// --- officials: one-click action links (issue 19 item 5) ---

/// Why an official's action link does not act (or did).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkOutcome {
    /// The action was taken now.
    Done,
    /// The link was used before (its nonce is stored).
    Used,
    /// The ticket is no longer with the link's OPD (moved, or back in triage).
    OtherOpd,
    /// The action is not possible in the ticket's status.
    NotNow(Status),
    /// The action needs a reason, question or note and none was given.
    NeedsText,
}

/// Whether `action` may be taken on a ticket in `status` (checked again when acting).
pub fn official_action_allowed(
    action: aduan_core::action_link::OfficialAction,
    status: Status,
) -> bool {
    use aduan_core::action_link::OfficialAction as A;
    match action {
        A::Accept => status == Status::Assigned,
        A::NotOurs | A::AskInfo | A::Resolve => {
            matches!(status, Status::Assigned | Status::InProgress)
        }
    }
}

/// The ticket of a valid link, or why the link can't act on it now. Reads only.
pub(crate) async fn official_link_check<D: Db>(
    c: &mut D,
    claim: &aduan_core::action_link::ActionClaim,
    now: DateTime<Utc>,
) -> Result<(TicketRow, Option<LinkOutcome>)> {
    let t = require_ticket(c, claim.ticket, now).await?;
    let used: Option<String> = c
        .fetch_optional_scalar(
            "SELECT nonce FROM action_link_uses WHERE nonce = $1",
            args![&claim.nonce],
        )
        .await?;
    let refusal = if used.is_some() {
        Some(LinkOutcome::Used)
    } else if t.summary.opd.as_deref() != Some(claim.opd.as_str()) {
        Some(LinkOutcome::OtherOpd)
    } else if !official_action_allowed(claim.action, t.summary.status) {
        Some(LinkOutcome::NotNow(t.summary.status))
    } else {
        None
    };
    Ok((t, refusal))
}

/// Takes an official's action from a valid link (see [`aduan_core::action_link`]), as
/// `user:<official>`, once per nonce: *terima* → `in_progress`; *bukan wewenang kami* →
/// back to triage (`new`, no OPD) with the reason in the audit note; *minta info* → the
/// question queued to the resident on their channel and the clocks paused; *selesai* → the
/// note queued to the resident as an answer (as an emailed reply is), then `resolved` and
/// the resident asked to confirm. Nothing changes unless [`LinkOutcome::Done`].
pub(crate) async fn official_act<D: Db>(
    c: &mut D,
    opts: &StoreOptions,
    claim: &aduan_core::action_link::ActionClaim,
    opd_name: &str,
    text: Option<String>,
    now: DateTime<Utc>,
) -> Result<LinkOutcome> {
    use aduan_core::action_link::OfficialAction as A;
    lock_tickets(c, &[claim.ticket]).await?;
    let (t, refusal) = official_link_check(c, claim, now).await?;
    if let Some(refusal) = refusal {
        return Ok(refusal);
    }
    let text = text.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    if claim.action.needs_text() && text.is_none() {
        return Ok(LinkOutcome::NeedsText);
    }
    let stored: Option<String> = c
        .fetch_optional_scalar(
            "INSERT INTO action_link_uses (nonce, ticket_id, opd, action, official, used_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (nonce) DO NOTHING RETURNING nonce",
            args![&claim.nonce, t.id, &claim.opd, claim.action.as_str(), &claim.official, now],
        )
        .await?;
    if stored.is_none() {
        return Ok(LinkOutcome::Used);
    }
    let actor = Actor::User(claim.official.clone());
    let code = claim.ticket;
    let text = text.unwrap_or_default();
    match claim.action {
        A::Accept => {
            let note = Some("diterima melalui tautan email".to_owned());
            set_status(c, code, Status::InProgress, actor, note, now).await?;
        }
        A::NotOurs => {
            let note = aduan_core::texts::official_refusal_note(opd_name, &text);
            set_status(c, code, Status::New, actor, Some(note), now).await?;
        }
        A::AskInfo => {
            let question = aduan_core::texts::official_question(code, opd_name, &text);
            answer(c, code, question, actor.clone(), Purpose::Reply, None, now).await?;
            let t = require_ticket(c, code, now).await?;
            pause_clocks(c, &t, "menunggu keterangan dari pelapor", &actor, now).await?;
        }
        A::Resolve => {
            answer(c, code, text, actor.clone(), Purpose::Reply, None, now).await?;
            set_status(c, code, Status::Resolved, actor, None, now).await?;
            ask_confirmation(c, opts, code, now).await?;
        }
    }
    Ok(LinkOutcome::Done)
}

impl Store {
    /// The ticket a valid action link names, and why the link can't act now (`None`: it
    /// can). For the confirmation page; changes nothing.
    pub async fn official_link_check(
        &self,
        claim: aduan_core::action_link::ActionClaim,
    ) -> Result<(crate::TicketSummary, Option<LinkOutcome>)> {
        let now = now();
        read!(self, |c| async move {
            let (t, refusal) = official_link_check(c, &claim, now).await?;
            Ok((t.summary, refusal))
        })
    }

    /// Takes the action of a valid link once ([`official_act`]); `opd_name` is the OPD's
    /// name for the texts.
    pub async fn official_act(
        &self,
        claim: aduan_core::action_link::ActionClaim,
        opd_name: String,
        text: Option<String>,
    ) -> Result<LinkOutcome> {
        let opts = self.inner.opts.clone();
        let text = text.map(clean);
        let now = now();
        write!(self, |c| official_act(c, &opts, &claim, &opd_name, text, now))
    }
}
