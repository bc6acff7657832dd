//! The outbox: queueing a message to the resident (with the caps on automatic messages),
//! claiming due rows for senders, and recording sent, failed, bounced and receipts.

use aduan_core::{
    Actor, Channel, EventKind, Identity, OutboxState, Purpose, ReplyRoute, TicketCode,
};
use chrono::{DateTime, Duration, Utc};

use super::common::{claim_key, event, lock, parse};
use crate::db::{Db, Value, args};
use crate::types::{DeliveryReceipt, OutboxItem, OutboxRow, ReceiptStatus, Replied};
use crate::{AutoLimits, Result, Store, StoreError, clean, now, truncate_ms};

/// The purposes [`AutoLimits`] count: automatic messages to residents.
const AUTO_REPLY_PURPOSES: &str = "('ack', 'identity_request', 'status', 'confirm_request')";

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
    // Never an automatic message to an address that can't be a resident (issue 16).
    if to.kind == aduan_core::IdentityKind::Email
        && aduan_core::machine::is_machine_address(&to.value)
    {
        return Ok(Some("automated_recipient"));
    }
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
    // Only a mail to officials may carry their action links; what goes to a resident (an
    // official's answer quoting the mail it answers) never does.
    let hidden;
    let text = if purpose.is_internal() {
        text
    } else {
        hidden = aduan_core::action_link::hide_tokens(text);
        hidden.as_ref()
    };
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
                "UPDATE outbox SET state = 'dead', last_error = $3, lease_until = NULL, \
                 receipt = 'failed' WHERE state = 'sent' AND message_id IN \
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
            // A failure reported while it was being sent (a callback receipt) makes it dead.
            "UPDATE outbox SET state = CASE WHEN receipt = 'failed' THEN 'dead' ELSE 'sent' END, \
         sent_at = $2, provider_id = $3, lease_until = NULL \
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
    apply_receipt(c, id, &row, receipt).await?;
    Ok(true)
}

/// Records `receipt` on outbox row `id` (whose `receipt` column `row` holds), forward only:
/// a receipt never moves a row back (`delivered` after `read` is ignored) and nothing
/// follows `failed`. A failure makes the row `dead`, except while it is still being sent:
/// then `outbox_sent` makes it dead when the send returns.
async fn apply_receipt<D: Db>(
    c: &mut D,
    id: i64,
    row: &crate::db::Row,
    receipt: DeliveryReceipt,
) -> Result<()> {
    let old: Option<ReceiptStatus> =
        row.get::<Option<String>>("receipt")?.map(|r| parse(&r, "receipt")).transpose()?;
    if old.is_some_and(|old| old == ReceiptStatus::Failed || old >= receipt.status) {
        return Ok(());
    }
    if receipt.status == ReceiptStatus::Failed {
        let error = receipt.error.unwrap_or_else(|| "the provider reported a failure".into());
        c.execute(
            "UPDATE outbox SET state = CASE WHEN state = 'sending' THEN state ELSE 'dead' END, \
             last_error = $2, receipt = 'failed', receipt_at = $3, \
             lease_until = CASE WHEN state = 'sending' THEN lease_until ELSE NULL END WHERE id = $1",
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
    Ok(())
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

impl Store {
    /// Marks sent messages that came back undeliverable (bounces): their outbox rows end
    /// `dead` with `reason`. Returns the tickets concerned.
    pub async fn outbox_bounced(
        &self,
        channel: Channel,
        provider_ids: Vec<String>,
        reason: String,
    ) -> Result<Vec<TicketCode>> {
        let reason = clean(reason);
        write!(self, |c| outbox_bounced(c, channel, provider_ids, reason))
    }

    /// Claims up to `limit` due outbox rows of the given channels for one sender, for
    /// `lease`. A claimed row is not handed out again until its lease runs out.
    pub async fn outbox_claim(
        &self,
        channels: Vec<Channel>,
        limit: i64,
        lease: Duration,
    ) -> Result<Vec<OutboxItem>> {
        let now = now();
        write!(self, |c| outbox_claim(c, channels, limit, lease, now))
    }

    /// Marks a claimed row sent; `provider_id` is the provider's id of what went out.
    pub async fn outbox_sent(&self, id: i64, provider_id: Option<String>) -> Result<()> {
        let now = now();
        write!(self, |c| outbox_sent(c, id, provider_id, now))
    }

    /// Records a failed attempt: retried at `retry_at`, or given up (`dead`) when `None`.
    pub async fn outbox_failed(
        &self,
        id: i64,
        error: String,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<()> {
        let now = now();
        write!(self, |c| outbox_failed(c, id, error, retry_at, now))
    }

    /// Outbox rows per channel and state (for metrics and the health view).
    /// Automatic messages refused by [`AutoLimits`], by reason (`recipient_day`, `hour`),
    /// over the whole outbox: the same figures on every instance.
    pub async fn auto_refused_counts(&self) -> Result<Vec<(String, i64)>> {
        read!(self, |c| auto_refused_counts(c))
    }

    pub async fn outbox_counts(&self) -> Result<Vec<(Channel, aduan_core::OutboxState, i64)>> {
        read!(self, |c| outbox_counts(c))
    }

    /// Applies a provider's delivery receipt to the outbox row of that message; `false`
    /// when no row has that provider id (yet).
    pub async fn outbox_receipt(&self, receipt: DeliveryReceipt) -> Result<bool> {
        write!(self, |c| outbox_receipt(c, receipt))
    }

    /// One outbox row with its delivery state.
    pub async fn outbox_row(&self, id: i64) -> Result<Option<OutboxRow>> {
        read!(self, |c| outbox_row(c, id))
    }
}

// Dead notifications to officials are retried, then escalated (issue 21.3).
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
        // One walk of the partial index `outbox_dead` (migration 0013) in id order; the
        // revival count is a column of the row (`outbox_revive` increments it).
        "SELECT o.id, t.code, o.purpose, o.recipient_kind, o.recipient, o.last_error, \
         o.revivals FROM outbox o JOIN tickets t ON t.id = o.ticket_id \
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
            "UPDATE outbox SET state = 'pending', lease_until = NULL, revivals = revivals + 1 \
             WHERE id = $1 AND state = 'dead' RETURNING ticket_id",
            args![id],
        )
        .await?;
    let Some(ticket_id) = ticket_id else { return Ok(false) };
    let key = format!("revived:{id}:{n}");
    if !claim_key(c, ticket_id, &key, now).await? {
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
    if !claim_key(c, ticket_id, &key, now).await? {
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
        claim_key(c, ticket_id, &format!("alert:{}", q.outbox_id), now).await?;
        alerted += 1;
    }
    let note = format!("notification given up; {alerted} admin(s) alerted");
    event(c, ticket_id, now, &Actor::System, EventKind::Notified, None, Some(&key), Some(&note))
        .await?;
    Ok(true)
}

impl Store {
    /// Notifications to officials or admins that are `dead` since before `dead_before` and
    /// not escalated yet, oldest first (see `dead_notifications`).
    pub async fn dead_notifications(
        &self,
        dead_before: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<DeadNotification>> {
        let dead_before = truncate_ms(dead_before);
        read!(self, |c| dead_notifications(c, dead_before, limit))
    }

    /// Puts dead notification row `id` back to `pending` (revival `n` of `of`), with an
    /// event on its ticket; `false` when it is not dead any more or was revived already.
    pub async fn outbox_revive(
        &self,
        id: i64,
        n: i64,
        of: i64,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let now = truncate_ms(now);
        match write!(self, |c| outbox_revive(c, id, n, of, now)) {
            Err(StoreError::Conflict(_)) => Ok(false),
            other => other,
        }
    }

    /// Gives dead notification row `id` up: `text` is queued once to each of `to` (the
    /// admins) and the ticket records it. `false` when that happened before.
    pub async fn outbox_escalate_dead(
        &self,
        id: i64,
        to: Vec<Identity>,
        text: String,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let text = clean(text);
        let now = truncate_ms(now);
        write!(self, |c| outbox_escalate_dead(c, id, to, text, now))
    }
}

// --- receipts: delivery receipts by outbox row, failures per channel ---
//
// Twilio status callbacks and Kannel delivery reports come to URLs we gave with the send,
// carrying the outbox row (`CallbackReceipt::outbox_id`): they are applied to that row even
// while it is still `sending` (a report can outrun the send call's answer), as long as the
// row is on the receipt's channel and has no other provider id. The rule of
// [`outbox_receipt`] holds: receipts only move forward (sent → delivered → read) and
// `failed` is final. A failure on a row still `sending` is recorded and the row ends `dead`
// when the sender reports it sent (`outbox_sent`).

/// Applies one receipt to the row it names, or by provider id when it names none. Returns
/// whether a row matched.
pub(crate) async fn outbox_callback_receipt<D: Db>(
    c: &mut D,
    cr: crate::types::CallbackReceipt,
) -> Result<bool> {
    let Some(row_id) = cr.outbox_id else {
        return outbox_receipt(c, cr.receipt).await;
    };
    let r = cr.receipt;
    let row = c
        .fetch_optional(
            "SELECT id, state, receipt FROM outbox WHERE id = $1 AND channel = $2 \
             AND (provider_id IS NULL OR provider_id = $3)",
            args![row_id, r.channel.as_str(), &r.provider_id],
        )
        .await?;
    let Some(row) = row else {
        return Ok(false);
    };
    let state: String = row.get("state")?;
    let status = r.status;
    apply_receipt(c, row_id, &row, r).await?;
    tracing::debug!(
        outbox_id = row_id,
        state,
        status = status.as_str(),
        "Delivery receipt recorded."
    );
    Ok(true)
}

async fn outbox_callback_receipts<D: Db>(
    c: &mut D,
    receipts: Vec<crate::types::CallbackReceipt>,
) -> Result<Vec<bool>> {
    let mut out = Vec::with_capacity(receipts.len());
    for r in receipts {
        out.push(outbox_callback_receipt(c, r).await?);
    }
    Ok(out)
}

/// Outbound messages whose provider reported them undeliverable (a failed receipt or a
/// bounce), per channel.
pub(crate) async fn delivery_failed_counts<D: Db>(c: &mut D) -> Result<Vec<(Channel, i64)>> {
    let rows = c
        .fetch_all(
            "SELECT channel, COUNT(*) AS n FROM outbox WHERE state = 'dead' AND receipt = 'failed' \
             GROUP BY channel ORDER BY channel",
            args![],
        )
        .await?;
    rows.iter()
        .map(|r| Ok((parse(&r.get::<String>("channel")?, "channel")?, r.get("n")?)))
        .collect()
}

impl Store {
    /// Applies receipts from a provider's callback in one transaction (see
    /// `outbox_callback_receipt`); for each, whether a row matched.
    pub async fn outbox_callback_receipts(
        &self,
        receipts: Vec<crate::types::CallbackReceipt>,
    ) -> Result<Vec<bool>> {
        write!(self, |c| outbox_callback_receipts(c, receipts))
    }

    /// Outbound messages reported undeliverable, per channel (`aduan_delivery_failed_total`):
    /// the same figures on every instance.
    pub async fn delivery_failed_counts(&self) -> Result<Vec<(Channel, i64)>> {
        read!(self, |c| delivery_failed_counts(c))
    }
}

// --- windows: undeliverable answers, the fallback chain, waiting for the resident ---
//
// A provider that can't deliver an answer to a resident now (Meta's window closed, the bot
// blocked, a number not on WhatsApp, a wrong address) makes the outbound worker call
// [`outbox_undeliverable`]: in one transaction the row becomes `undeliverable` with its
// reason, and the same answer (the same message) is queued as a new row to the next of the
// reporter's identities in the configured order, among the channels the worker can send on,
// never twice to one (channel, address) for that answer — the rows of one answer point at
// its first row (`fallback_of`). With every way spent the row is kept `waiting_for_resident`
// (shown on the tracking page); so is a row for which only a WhatsApp template could go.
// When the reporter next writes on any channel, intake re-queues their waiting answers to
// the identity and channel they wrote from ([`requeue_waiting`]), before anything else it
// queues. Notifications to officials and automatic receipts/status answers have no fallback:
// they end `dead` as before.

/// What became of an answer its provider could not deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undelivered {
    /// Queued again (row `outbox_id`) on another of the reporter's identities.
    Fallback { outbox_id: i64, channel: Channel, to: Identity },
    /// Kept until the resident writes again.
    Waiting,
    /// Not an answer that follows the resident (a notification, a receipt): `dead`.
    Dead,
}

/// The purposes whose rows follow the resident to other channels: a person's answer and the
/// request for identity. A receipt or a status answer belongs to the chat it answers.
fn follows_resident(purpose: Purpose) -> bool {
    matches!(purpose, Purpose::Reply | Purpose::IdentityRequest)
}

#[allow(clippy::too_many_arguments, reason = "the outcome of one send and the fallback plan")]
pub(crate) async fn outbox_undeliverable<D: Db>(
    c: &mut D,
    id: i64,
    reason: aduan_core::UndeliverableReason,
    notice: Option<Option<String>>,
    sendable: Vec<Channel>,
    order: Vec<Channel>,
    now: DateTime<Utc>,
) -> Result<Undelivered> {
    let row = c
        .fetch_optional(
            "UPDATE outbox SET state = 'undeliverable', undeliverable = $2, last_error = $3, \
             lease_until = NULL, next_attempt_at = $4 WHERE id = $1 AND state = 'sending' \
             RETURNING ticket_id, message_id, purpose, fallback_of",
            args![id, reason.as_str(), format!("undeliverable: {reason}"), now],
        )
        .await?;
    let Some(row) = row else {
        return Err(StoreError::Conflict(format!("outbox row {id} is not being sent")));
    };
    let ticket_id: i64 = row.get("ticket_id")?;
    let message_id: i64 = row.get("message_id")?;
    let purpose: Purpose = parse(&row.get::<String>("purpose")?, "outbox purpose")?;
    let root = row.get::<Option<i64>>("fallback_of")?.unwrap_or(id);
    if !follows_resident(purpose) {
        c.execute("UPDATE outbox SET state = 'dead' WHERE id = $1", args![id]).await?;
        return Ok(Undelivered::Dead);
    }
    if let Some(notice) = notice {
        // A template went out: the row records its id (for its receipts), the answer waits.
        c.execute(
            "UPDATE outbox SET state = 'waiting_for_resident', provider_id = $2, sent_at = $3 \
             WHERE id = $1",
            args![id, notice, now],
        )
        .await?;
        return Ok(Undelivered::Waiting);
    }
    let tried_rows = c
        .fetch_all(
            "SELECT channel, recipient_kind, recipient FROM outbox \
             WHERE (id = $1 OR fallback_of = $1) AND recipient IS NOT NULL ORDER BY id",
            args![root],
        )
        .await?;
    let mut tried = Vec::with_capacity(tried_rows.len());
    for r in &tried_rows {
        let kind: String = r.get("recipient_kind")?;
        tried.push((
            parse::<Channel>(&r.get::<String>("channel")?, "channel")?,
            Identity { kind: parse(&kind, "identity kind")?, value: r.get("recipient")? },
        ));
    }
    let identity_rows = c
        .fetch_all(
            "SELECT i.kind, i.value FROM identities i JOIN tickets t ON t.reporter_id = i.reporter_id \
             WHERE t.id = $1 ORDER BY i.id",
            args![ticket_id],
        )
        .await?;
    let mut identities = Vec::with_capacity(identity_rows.len());
    for r in &identity_rows {
        let kind: String = r.get("kind")?;
        identities.push(Identity { kind: parse(&kind, "identity kind")?, value: r.get("value")? });
    }
    match aduan_core::next_fallback(&order, &sendable, &identities, &tried) {
        Some((channel, to)) => {
            let outbox_id =
                queue_again(c, ticket_id, message_id, root, purpose, channel, &to, now).await?;
            Ok(Undelivered::Fallback { outbox_id, channel, to })
        }
        None => {
            c.execute("UPDATE outbox SET state = 'waiting_for_resident' WHERE id = $1", args![id])
                .await?;
            Ok(Undelivered::Waiting)
        }
    }
}

/// A new pending row for the answer of row `root`, to `to` on `channel`.
#[allow(clippy::too_many_arguments, reason = "the columns of the new row")]
async fn queue_again<D: Db>(
    c: &mut D,
    ticket_id: i64,
    message_id: i64,
    root: i64,
    purpose: Purpose,
    channel: Channel,
    to: &Identity,
    now: DateTime<Utc>,
) -> Result<i64> {
    c.fetch_one_scalar(
        "INSERT INTO outbox (ticket_id, message_id, channel, recipient_kind, recipient, state, \
         purpose, next_attempt_at, created_at, fallback_of) \
         VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7, $7, $8) RETURNING id",
        args![
            ticket_id,
            message_id,
            channel.as_str(),
            to.kind.as_str(),
            &to.value,
            purpose.as_str(),
            now,
            root
        ],
    )
    .await
}

/// The reporter wrote on `channel` from `from`: each of their answers waiting for them is
/// queued again there (the waiting row keeps its reason and becomes `undeliverable`).
/// Returns how many were re-queued; none when `from` can't be written to on `channel`.
pub(crate) async fn requeue_waiting<D: Db>(
    c: &mut D,
    reporter_id: Option<i64>,
    channel: Channel,
    from: Option<&Identity>,
    now: DateTime<Utc>,
) -> Result<usize> {
    let (Some(reporter_id), Some(to)) =
        (reporter_id, from.and_then(|f| aduan_core::address_on(channel, f)))
    else {
        return Ok(0);
    };
    let rows = c
        .fetch_all(
            "SELECT o.id, o.ticket_id, o.message_id, o.purpose, o.fallback_of FROM outbox o \
             JOIN tickets t ON t.id = o.ticket_id \
             WHERE t.reporter_id = $1 AND o.state = 'waiting_for_resident' ORDER BY o.id",
            args![reporter_id],
        )
        .await?;
    for r in &rows {
        let id: i64 = r.get("id")?;
        c.execute("UPDATE outbox SET state = 'undeliverable' WHERE id = $1", args![id]).await?;
        let root = r.get::<Option<i64>>("fallback_of")?.unwrap_or(id);
        let purpose = parse(&r.get::<String>("purpose")?, "outbox purpose")?;
        let (ticket_id, message_id) = (r.get("ticket_id")?, r.get("message_id")?);
        queue_again(c, ticket_id, message_id, root, purpose, channel, &to, now).await?;
    }
    if !rows.is_empty() {
        tracing::info!(reporter_id, n = rows.len(), %channel, "Waiting answers re-queued where the resident wrote.");
    }
    Ok(rows.len())
}

/// Every outbox row of a ticket's messages, in id order, for showing where each answer
/// went: `(message_id, hop)`.
pub(crate) async fn delivery_hops<D: Db>(
    c: &mut D,
    ticket_id: i64,
) -> Result<Vec<(i64, aduan_core::DeliveryHop)>> {
    let rows = c
        .fetch_all(
            "SELECT message_id, channel, state, undeliverable, provider_id FROM outbox \
             WHERE ticket_id = $1 ORDER BY id",
            args![ticket_id],
        )
        .await?;
    rows.iter()
        .map(|r| {
            let state: OutboxState = parse(&r.get::<String>("state")?, "outbox state")?;
            let undeliverable: Option<String> = r.get("undeliverable")?;
            let provider_id: Option<String> = r.get("provider_id")?;
            Ok((
                r.get("message_id")?,
                aduan_core::DeliveryHop {
                    channel: parse(&r.get::<String>("channel")?, "channel")?,
                    state,
                    undeliverable: undeliverable
                        .map(|u| parse(&u, "undeliverable reason"))
                        .transpose()?,
                    notice: state == OutboxState::WaitingForResident && provider_id.is_some(),
                },
            ))
        })
        .collect()
}

/// Puts on each outbound message of a ticket its delivery hops and the operator's note,
/// when it did not simply go where it was sent (a fallback, a wait).
pub(crate) async fn fill_deliveries<D: Db>(
    c: &mut D,
    ticket_id: i64,
    messages: &mut [crate::types::MessageView],
) -> Result<()> {
    let mut hops: std::collections::HashMap<i64, Vec<aduan_core::DeliveryHop>> =
        std::collections::HashMap::new();
    for (message_id, hop) in delivery_hops(c, ticket_id).await? {
        hops.entry(message_id).or_default().push(hop);
    }
    for m in messages.iter_mut() {
        let Some(h) = hops.remove(&m.id) else { continue };
        if let Some(note) = aduan_core::texts::delivery_note(&h) {
            m.delivery_note = Some(note);
            m.deliveries = h;
        }
    }
    Ok(())
}

impl Store {
    /// Records that claimed row `id` can't be delivered there (`reason`), and carries the
    /// answer on: to the next of the reporter's identities in `order` among the `sendable`
    /// channels, or, with none left, keeps it `waiting_for_resident`. `notice`: only a
    /// short notice went out (a WhatsApp template, with its provider id), the answer waits.
    #[allow(clippy::too_many_arguments, reason = "the outcome of one send and the fallback plan")]
    pub async fn outbox_undeliverable(
        &self,
        id: i64,
        reason: aduan_core::UndeliverableReason,
        notice: Option<Option<String>>,
        sendable: Vec<Channel>,
        order: Vec<Channel>,
        now: DateTime<Utc>,
    ) -> Result<Undelivered> {
        let now = truncate_ms(now);
        write!(self, |c| outbox_undeliverable(c, id, reason, notice, sendable, order, now))
    }
}
