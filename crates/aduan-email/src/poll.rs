//! The IMAP poller: one session on the intake mailbox, caught up after every wake-up.
//!
//! For each batch of new mail (UIDs above the checkpoint): read every mail's
//! `RFC822.SIZE`; mails over `max_message_bytes` are never fetched (quarantined, a human
//! sender told so from the headers alone); the rest are fetched with `BODY.PEEK[]` in
//! groups of at most [`BATCH_BYTES`] (big mails alone), each parsed on the blocking pool
//! within [`PARSE_BUDGET`] (over it: quarantine) and its attachments written and dropped
//! before the next. Then everything is stored with one `Store::ingest_all` (official
//! answers, once authenticated, with `Store::relay_reply`); when the store refuses the
//! batch, mail by mail, and a mail it still refuses is quarantined alone (its error kind
//! logged, never its text). Then the mails move to `processed_mailbox` (the others to
//! `quarantine_mailbox`), and only then the checkpoint (`UIDVALIDITY:UID`) advances. A
//! crash anywhere in between makes the next session fetch the batch again, and the store
//! recognises every mail by its Message-ID: nothing is lost, nothing stored twice.
//! Before a mail's blobs are written, its attachments are held against the sender's hourly
//! attachment budget ([`apply_attachment_budget`]); what does not fit is not written and
//! is recorded as refused on the ticket once the mail is stored. No one
//! mail can stop intake: whatever fails with it alone is set aside, and the checkpoint
//! moves on.
//!
//! Between batches the session waits in IDLE (renewed every `poll`, well under the 29
//! minutes of RFC 2177; a renewal on a dead connection fails its `DONE` and reconnects),
//! or sleeps `poll` when the server has no IDLE. Any error ends the session; the supervisor
//! reconnects with backoff.

use std::collections::HashMap;
use std::time::Duration;

use aduan_connector::{ConnectorContext, ConnectorError};
use aduan_core::{Actor, Channel, Identity, InboundMessage};
use aduan_store::{Ingested, StoreError};

use crate::imap::{self, Capabilities, Fetched, Session, timed};
use crate::official::{Route, into_note, into_unverified_note, route, verify_answer};
use crate::parse::{ParseOptions, ParsedMail, parse_mail_owned};
use crate::{EmailConnector, EmailError};

/// Mails fetched and stored per batch.
pub const BATCH: usize = 100;
/// The most bytes (by `RFC822.SIZE`) fetched with one command.
pub const BATCH_BYTES: u64 = 32 * 1024 * 1024;
/// Mails larger than this are fetched alone.
pub const ALONE_BYTES: u64 = 4 * 1024 * 1024;
/// The CPU time one mail may take to parse (MIME, text); over it, it goes to quarantine.
pub const PARSE_BUDGET: Duration = Duration::from_secs(20);
/// The checkpoint's connector name.
pub const CHECKPOINT_CONNECTOR: &str = "email";

/// Where the poller left off in one mailbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    pub uid_validity: u32,
    pub last_uid: u32,
}

impl Checkpoint {
    pub fn parse(value: &str) -> Option<Checkpoint> {
        let (v, u) = value.split_once(':')?;
        Some(Checkpoint { uid_validity: v.parse().ok()?, last_uid: u.parse().ok()? })
    }

    pub fn render(&self) -> String {
        format!("{}:{}", self.uid_validity, self.last_uid)
    }
}

/// The checkpoint key of a mailbox of an account.
pub fn checkpoint_key(user: &str, mailbox: &str) -> String {
    format!("{user}/{mailbox}")
}

fn transient(e: EmailError) -> ConnectorError {
    ConnectorError::Transient(e.to_string())
}

/// One session: connect, catch up, wait, repeat until shutdown or an error.
pub(crate) async fn run(conn: &EmailConnector, cx: ConnectorContext) -> Result<(), ConnectorError> {
    cx.telemetry.connector_up(Channel::Email, false);
    let connected = tokio::select! {
        () = cx.shutdown.cancelled() => return Ok(()),
        s = start(conn, &cx) => s,
    };
    let (mut session, caps, mut checkpoint) = connected.map_err(transient)?;
    cx.telemetry.connector_up(Channel::Email, true);
    tracing::info!(
        channel = "email",
        idle = caps.idle,
        uid_move = caps.r#move,
        uid_validity = checkpoint.uid_validity,
        last_uid = checkpoint.last_uid,
        "IMAP session ready."
    );
    loop {
        let result = catch_up(conn, &cx, &mut session, caps, &mut checkpoint).await;
        result.map_err(transient)?;
        if cx.shutdown.is_cancelled() {
            break;
        }
        session = wait(conn, &cx, session, caps).await.map_err(transient)?;
        if cx.shutdown.is_cancelled() {
            break;
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), session.logout()).await;
    Ok(())
}

/// Connects, checks capabilities, makes the target folders, selects the mailbox and reads
/// the checkpoint (reset when UIDVALIDITY changed).
async fn start(
    conn: &EmailConnector,
    cx: &ConnectorContext,
) -> Result<(Session, Capabilities, Checkpoint), EmailError> {
    let cfg = &conn.config;
    let mut session = imap::connect(&cfg.account, &conn.tls).await?;
    let caps = imap::capabilities(&mut session).await?;
    imap::ensure_mailbox(&mut session, &cfg.processed_mailbox).await?;
    imap::ensure_mailbox(&mut session, &cfg.quarantine_mailbox).await?;
    imap::ensure_mailbox(&mut session, &cfg.automated_mailbox).await?;
    let mailbox = timed("SELECT", session.select(&cfg.mailbox)).await?;
    let uid_validity = mailbox.uid_validity.unwrap_or(0);
    let key = checkpoint_key(&cfg.account.user, &cfg.mailbox);
    let stored = cx.store.checkpoint(CHECKPOINT_CONNECTOR, &key).await?;
    let checkpoint = match stored.as_deref().and_then(Checkpoint::parse) {
        Some(c) if c.uid_validity == uid_validity => c,
        Some(old) => {
            tracing::warn!(
                channel = "email",
                old = old.uid_validity,
                new = uid_validity,
                "UIDVALIDITY changed; rescanning the mailbox (stored mails are recognised by Message-ID)."
            );
            Checkpoint { uid_validity, last_uid: 0 }
        }
        None => Checkpoint { uid_validity, last_uid: 0 },
    };
    Ok((session, caps, checkpoint))
}

/// Processes every mail above the checkpoint, batch by batch, until none is left.
async fn catch_up(
    conn: &EmailConnector,
    cx: &ConnectorContext,
    session: &mut Session,
    caps: Capabilities,
    checkpoint: &mut Checkpoint,
) -> Result<(), EmailError> {
    loop {
        imap::drain_unsolicited(session);
        let uids = imap::uids_after(session, checkpoint.last_uid).await?;
        if uids.is_empty() {
            return Ok(());
        }
        for chunk in uids.chunks(BATCH) {
            process_batch(conn, cx, session, caps, checkpoint, chunk).await?;
            if cx.shutdown.is_cancelled() {
                return Ok(());
            }
        }
    }
}

/// A mail's UID and `RFC822.SIZE`.
type UidSize = (u32, u64);

/// What became of one mail of a batch.
#[derive(Debug)]
enum Outcome {
    /// Stored (or relayed); moves to the processed folder.
    Done,
    /// Unreadable, too large, or refused by the store; moves to quarantine.
    Quarantine(String),
    /// Automated mail (see [`crate::classify`]), stored without a ticket of its own; moves
    /// to the automated folder.
    Automated,
}

/// The UIDs of `sized` (UID, RFC822.SIZE) in fetch groups: consecutive mails up to
/// [`BATCH_BYTES`] together, a mail over [`ALONE_BYTES`] alone.
fn fetch_groups(sized: &[(u32, u64)]) -> Vec<Vec<u32>> {
    let mut groups: Vec<Vec<u32>> = Vec::new();
    let mut current: Vec<u32> = Vec::new();
    let mut bytes = 0u64;
    for &(uid, size) in sized {
        if !current.is_empty() && (bytes + size > BATCH_BYTES || size > ALONE_BYTES) {
            groups.push(std::mem::take(&mut current));
            bytes = 0;
        }
        current.push(uid);
        bytes += size;
        if size > ALONE_BYTES {
            groups.push(std::mem::take(&mut current));
            bytes = 0;
        }
    }
    if !current.is_empty() {
        groups.push(current);
    }
    groups
}

/// Runs the CPU-heavy `work` (MIME parsing, text extraction) on the blocking pool, within
/// `budget`. `Err` says why the mail goes to quarantine. A task over budget is left to
/// finish on its own thread (it can't be stopped), but the poller moves on.
async fn within_budget<T, F>(budget: Duration, work: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, crate::ParseError> + Send + 'static,
{
    match tokio::time::timeout(budget, tokio::task::spawn_blocking(work)).await {
        Ok(Ok(Ok(mail))) => Ok(mail),
        Ok(Ok(Err(e))) => Err(e.to_string()),
        Ok(Err(_)) => Err("the parser task failed".into()),
        Err(_) => Err(format!("processing took longer than {} s", budget.as_secs())),
    }
}

/// Whether a store error is about the message (it will fail again however often it is
/// retried) rather than the store being unreachable.
fn about_the_message(e: &StoreError) -> bool {
    match e {
        StoreError::TicketNotFound(_)
        | StoreError::Transition(_)
        | StoreError::Conflict(_)
        | StoreError::Invalid(_)
        | StoreError::Internal(_)
        | StoreError::Sqlite(_) => true,
        // The server answered with an SQL error: the connection works, the row does not.
        StoreError::Database(db) => db.as_database_error().is_some(),
        _ => false,
    }
}

/// A store error as logged and as the quarantine reason: its kind, never its text (which
/// may quote the message).
fn store_error_kind(e: &StoreError) -> String {
    match e {
        StoreError::Database(db) => match db.as_database_error() {
            Some(d) => {
                format!("database refused the message (SQLSTATE {})", d.code().unwrap_or_default())
            }
            None => "database error".into(),
        },
        StoreError::Invalid(_) => "the store refused the message as invalid".into(),
        StoreError::Conflict(_) => "the store refused the message (conflict)".into(),
        StoreError::Sqlite(_) => "SQLite refused the message".into(),
        StoreError::Internal(_) => "internal store error".into(),
        _ => "store error".into(),
    }
}

/// Stores `messages` with one `ingest` call; when that fails, one by one, so a message the
/// store refuses costs itself only. Returns what was stored (UID, outcome) and the UIDs
/// refused with the reason. When every message of several fails, or a failure is the
/// store being unreachable, the batch fails as a whole (retried later, nothing moved).
pub(crate) async fn ingest_isolated<F, Fut>(
    messages: Vec<(u32, InboundMessage)>,
    ingest: F,
) -> Result<(Vec<(u32, Ingested)>, Vec<(u32, String)>), EmailError>
where
    F: Fn(Vec<InboundMessage>) -> Fut,
    Fut: Future<Output = Result<Vec<Ingested>, StoreError>>,
{
    if messages.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let uids: Vec<u32> = messages.iter().map(|(u, _)| *u).collect();
    let all: Vec<InboundMessage> = messages.iter().map(|(_, m)| m.clone()).collect();
    let first_error = match ingest(all).await {
        Ok(stored) => return Ok((uids.into_iter().zip(stored).collect(), Vec::new())),
        Err(e) if !about_the_message(&e) => return Err(e.into()),
        Err(e) => e,
    };
    tracing::warn!(
        channel = "email",
        mails = uids.len(),
        error = store_error_kind(&first_error),
        "The store refused a batch of mail; storing its mails one by one."
    );
    let (mut stored, mut refused) = (Vec::new(), Vec::new());
    let several = messages.len() > 1;
    let mut last_error = first_error;
    for (uid, message) in messages {
        match ingest(vec![message]).await {
            Ok(mut one) => {
                if let Some(outcome) = one.pop() {
                    stored.push((uid, outcome));
                }
            }
            Err(e) if !about_the_message(&e) => return Err(e.into()),
            Err(e) => {
                refused.push((uid, store_error_kind(&e)));
                last_error = e;
            }
        }
    }
    if several && stored.is_empty() {
        // Not one message of many: the store, not the mail.
        return Err(last_error.into());
    }
    Ok((stored, refused))
}

async fn process_batch(
    conn: &EmailConnector,
    cx: &ConnectorContext,
    session: &mut Session,
    caps: Capabilities,
    checkpoint: &mut Checkpoint,
    uids: &[u32],
) -> Result<(), EmailError> {
    let cfg = &conn.config;
    let now = aduan_store::now();
    let mut outcomes: Vec<(u32, Outcome)> = Vec::with_capacity(uids.len());

    // Sizes first: a mail over the limit is never fetched whole.
    let sized = imap::sizes(session, uids).await?;
    let (too_large, wanted): (Vec<UidSize>, Vec<UidSize>) =
        sized.into_iter().partition(|(_, size)| *size > cfg.max_message_bytes);
    if !too_large.is_empty() {
        let large_uids: Vec<u32> = too_large.iter().map(|(u, _)| *u).collect();
        answer_too_large(conn, session, &large_uids).await;
        for (uid, size) in too_large {
            outcomes.push((
                uid,
                Outcome::Quarantine(format!(
                    "{size} bytes, more than max_message_bytes ({})",
                    cfg.max_message_bytes
                )),
            ));
        }
    }

    let mut parsed: Vec<(u32, ParsedMail)> = Vec::with_capacity(wanted.len());
    // The senders' attachment budgets: what earlier mails of this batch took (stored only
    // at ingest), and the mails with attachments left out.
    let mut spent: HashMap<Identity, u64> = HashMap::new();
    let mut over_budget: Vec<(u32, String)> = Vec::new();
    for group in fetch_groups(&wanted) {
        let fetched = imap::fetch(session, &group).await?;
        for Fetched { uid, raw, internal_date } in fetched {
            let opts = ParseOptions {
                received_at: internal_date.map_or(now, |d| d.min(now)),
                ..conn.parse_options.clone()
            };
            match within_budget(PARSE_BUDGET, move || parse_mail_owned(raw, &opts)).await {
                Ok(mut mail) => {
                    if let Some(reason) =
                        apply_attachment_budget(&cx.store, &mut mail, &mut spent).await?
                    {
                        tracing::warn!(
                            channel = "email",
                            uid,
                            "Attachments over the sender's budget; not stored."
                        );
                        over_budget.push((uid, reason));
                    }
                    // Attachments first: a message may only point at content that is on
                    // disk. Written mail by mail and dropped: a batch is not held twice.
                    conn.write_blobs(&cx.blobs, std::mem::take(&mut mail.blobs)).await?;
                    parsed.push((uid, mail));
                }
                Err(reason) => outcomes.push((uid, Outcome::Quarantine(reason))),
            }
        }
    }

    let mut intake: Vec<(u32, InboundMessage)> = Vec::new();
    let mut bounces: Vec<(u32, Vec<String>)> = Vec::new();
    let mut automated: Vec<(u32, crate::Automated)> = Vec::new();
    for (uid, mut mail) in parsed {
        // Threading headers come first: a reply to a mail of a ticket joins that ticket
        // even when its subject carries another code.
        if !mail.message.thread.references.is_empty()
            && let Some(code) = cx
                .store
                .ticket_of_message(Channel::Email, mail.message.thread.references.clone())
                .await?
        {
            mail.message.thread.ticket = Some(code);
            heard_in_thread(&mut mail);
        }
        if let Some(class) = mail.automated {
            tracing::debug!(channel = "email", uid, class = class.as_str(), "Automated mail.");
            automated.push((uid, class));
        }
        match route(&mail, &cfg.officials) {
            Route::Intake => {
                if !mail.bounced.is_empty() {
                    bounces.push((uid, mail.bounced.clone()));
                }
                intake.push((uid, mail.message));
            }
            Route::Note => intake.push((uid, into_note(mail).message)),
            Route::Official { official, opds, ticket } => {
                match relay_official(conn, cx, &mail, &official, &opds, ticket).await? {
                    Relay::Relayed => outcomes.push((uid, Outcome::Done)),
                    Relay::Note => intake.push((uid, into_note(mail).message)),
                    Relay::Unverified(code) => {
                        intake.push((uid, into_unverified_note(mail, code).message));
                    }
                }
            }
        }
    }
    let (stored, refused) = ingest_isolated(intake, |batch| cx.store.ingest_all(batch)).await?;
    for (uid, outcome) in &stored {
        if let Some((_, reason)) = over_budget.iter().find(|(u, _)| u == uid)
            && !outcome.duplicate
        {
            cx.store.message_attachments_refused(outcome.message_id, reason.clone()).await?;
        }
        cx.telemetry.message_stored(Channel::Email, outcome);
        let moved = match automated.iter().find(|(u, _)| u == uid) {
            Some((_, class)) => {
                cx.telemetry.email_automated(class.as_str());
                Outcome::Automated
            }
            None => Outcome::Done,
        };
        outcomes.push((*uid, moved));
    }
    for (uid, reason) in refused {
        outcomes.push((uid, Outcome::Quarantine(reason)));
    }
    for (uid, ids) in bounces {
        if !stored.iter().any(|(u, _)| *u == uid) {
            continue;
        }
        let codes = cx
            .store
            .outbox_bounced(
                Channel::Email,
                ids,
                "bounced: the receiving server returned the mail".into(),
            )
            .await?;
        for code in codes {
            tracing::warn!(channel = "email", uid, ticket = %code, "Answer bounced; its delivery is marked failed.");
        }
    }

    let done: Vec<u32> =
        outcomes.iter().filter(|(_, o)| matches!(o, Outcome::Done)).map(|(u, _)| *u).collect();
    let quarantined: Vec<u32> = outcomes
        .iter()
        .filter_map(|(u, o)| match o {
            Outcome::Quarantine(reason) => {
                cx.telemetry.message_quarantined(Channel::Email, &format!("uid:{u}"), reason);
                Some(*u)
            }
            Outcome::Done | Outcome::Automated => None,
        })
        .collect();
    let machines: Vec<u32> =
        outcomes.iter().filter(|(_, o)| matches!(o, Outcome::Automated)).map(|(u, _)| *u).collect();
    imap::move_to(session, caps, &done, &cfg.processed_mailbox).await?;
    imap::move_to(session, caps, &quarantined, &cfg.quarantine_mailbox).await?;
    imap::move_to(session, caps, &machines, &cfg.automated_mailbox).await?;

    let last = uids.iter().copied().max().unwrap_or(checkpoint.last_uid);
    if last > checkpoint.last_uid {
        checkpoint.last_uid = last;
        cx.store
            .set_checkpoint(
                CHECKPOINT_CONNECTOR.into(),
                checkpoint_key(&cfg.account.user, &cfg.mailbox),
                checkpoint.render(),
            )
            .await?;
    }
    tracing::debug!(
        channel = "email",
        processed = done.len(),
        quarantined = quarantined.len(),
        automated = machines.len(),
        last_uid = last,
        "Mail batch stored."
    );
    Ok(())
}

/// Holds one parsed mail's attachments (the raw copy `email-asli.eml` included, last)
/// against its sender's hourly attachment budget (`Store::attachment_bytes_left`, less
/// what `spent` says earlier mails of the batch took): those that fit stay, in order; the
/// others lose their content (`sha256` emptied, their blob dropped before it is written)
/// and the reason is returned, for `Store::message_attachments_refused` once the mail is
/// stored. A mail without a sender identity (automated) is not held to a budget.
pub(crate) async fn apply_attachment_budget(
    store: &aduan_store::Store,
    mail: &mut ParsedMail,
    spent: &mut HashMap<Identity, u64>,
) -> Result<Option<String>, StoreError> {
    let Some(sender) = mail.message.sender.identity.clone() else { return Ok(None) };
    if mail.blobs.len() != mail.message.attachments.len() {
        return Ok(None);
    }
    let Some(left) = store.attachment_bytes_left(&sender).await? else { return Ok(None) };
    let used = spent.entry(sender).or_default();
    let mut left = left.saturating_sub(*used);
    let (mut refused, mut refused_bytes) = (0usize, 0u64);
    let blobs = std::mem::take(&mut mail.blobs);
    for (a, blob) in mail.message.attachments.iter_mut().zip(blobs) {
        if a.size <= left {
            left -= a.size;
            *used += a.size;
            mail.blobs.push(blob);
        } else {
            refused += 1;
            refused_bytes += a.size;
            a.sha256.clear();
        }
    }
    Ok((refused > 0).then(|| aduan_connector::media::over_budget(refused_bytes, left)))
}

/// A mail with only a weak machine signal (`Precedence: bulk`, `List-*`: list software
/// adds them to what people write) that replies to one of our mails on a ticket, from an
/// address that can be a person's, is the resident's: its sender identity comes back and
/// it is no longer automated. Strong signals (DSN, `Auto-Submitted`, …) always win.
pub(crate) fn heard_in_thread(mail: &mut ParsedMail) {
    let person =
        mail.from.as_ref().is_some_and(|f| !aduan_core::machine::is_machine_address(&f.value));
    if mail.automated.is_some_and(crate::Automated::is_weak)
        && mail.message.thread.ticket.is_some()
        && person
    {
        mail.automated = None;
        mail.message.thread.automated = false;
        mail.message.sender.identity = mail.from.clone();
    }
}

/// Tells the human senders of mails over `max_message_bytes` (read from their headers
/// only) that their mail was not taken. Automated mail, our own, and senders already told
/// within the hour get nothing. Failures are logged, never fatal: the mails go to
/// quarantine either way.
async fn answer_too_large(conn: &EmailConnector, session: &mut Session, uids: &[u32]) {
    let headers = match imap::fetch_headers(session, uids).await {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(channel = "email", error = %e, "Could not read the headers of mails over the size limit; nobody is told.");
            return;
        }
    };
    for Fetched { uid, raw, .. } in headers {
        let Ok(mail) = crate::parse::parse_mail(&raw, &conn.parse_options) else { continue };
        if mail.automated.is_some() {
            continue;
        }
        let Some(from) = mail.from.as_ref().map(|f| f.value.clone()) else { continue };
        if conn.too_large_answers.check_key(&from).is_err() {
            continue;
        }
        let message = conn.smtp.composer().too_large_mail(
            &from,
            Some(mail.message.provider_id.as_str()).filter(|id| !id.starts_with("sha256:")),
            conn.config.max_message_bytes,
            rand::random(),
            std::time::SystemTime::now(),
        );
        let sent = match message {
            Ok(m) => conn.smtp.deliver(m).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match sent {
            Ok(()) => tracing::info!(
                channel = "email",
                uid,
                "Sender of a mail over the size limit told so."
            ),
            Err(error) => tracing::warn!(
                channel = "email",
                uid,
                error,
                "Could not tell the sender of a mail over the size limit."
            ),
        }
    }
}

/// What became of an official's mail.
enum Relay {
    /// Recorded as the OPD's answer and queued to the resident.
    Relayed,
    /// Not an answer after all (no ticket, another OPD): a note.
    Note,
    /// Claims to be the OPD's answer about this ticket but is not authenticated: a note
    /// that says so.
    Unverified(aduan_core::TicketCode),
}

/// Relays an official's answer when it is authenticated (see [`verify_answer`]); else says
/// how to keep it.
async fn relay_official(
    conn: &EmailConnector,
    cx: &ConnectorContext,
    mail: &ParsedMail,
    official: &str,
    opds: &[String],
    ticket: Option<aduan_core::TicketCode>,
) -> Result<Relay, EmailError> {
    let code = match ticket {
        Some(code) => Some(code),
        None => {
            cx.store
                .ticket_of_message(Channel::Email, mail.message.thread.references.clone())
                .await?
        }
    };
    let Some(named) = code else { return Ok(Relay::Note) };
    let Some(view) = cx.store.ticket(named).await? else { return Ok(Relay::Note) };
    // Follow a merge to the ticket that lives on.
    let view = match view.summary.merged_into {
        Some(into) => match cx.store.ticket(into).await? {
            Some(v) => v,
            None => return Ok(Relay::Note),
        },
        None => view,
    };
    let code = view.summary.code;
    let Some(opd) = view.summary.opd.as_ref().filter(|o| opds.contains(o)) else {
        tracing::info!(channel = "email", ticket = %code, "Answer from an official of another OPD kept as a note.");
        return Ok(Relay::Note);
    };
    if let Err(why) = verify_answer(
        mail,
        &conn.reply_key,
        &[named, code],
        official,
        opd,
        conn.config.trusted_authserv_id.as_deref(),
    ) {
        cx.telemetry.webhook_rejected(Channel::Email, "official_answer_unverified");
        tracing::warn!(
            channel = "email",
            ticket = %code,
            reason = why.as_str(),
            "Mail from an official's address not authenticated; kept as an unverified note, not relayed."
        );
        return Ok(Relay::Unverified(code));
    }
    let origin = format!("email:{}", mail.message.provider_id);
    let actor = Actor::User(official.to_owned());
    match cx.store.relay_reply(code, mail.message.text.clone(), actor, origin).await {
        Ok(Some(replied)) => {
            tracing::info!(channel = "email", ticket = %code, message_id = replied.message_id, "Official's answer recorded and relayed.");
            Ok(Relay::Relayed)
        }
        Ok(None) => Ok(Relay::Relayed),
        Err(StoreError::TicketNotFound(_) | StoreError::Conflict(_) | StoreError::Invalid(_)) => {
            Ok(Relay::Note)
        }
        Err(e) => Err(e.into()),
    }
}

/// Waits for new mail: IDLE until the server reports something, `poll` passes, or
/// shutdown; or a plain sleep when the server has no IDLE.
async fn wait(
    conn: &EmailConnector,
    cx: &ConnectorContext,
    session: Session,
    caps: Capabilities,
) -> Result<Session, EmailError> {
    let poll = conn.config.poll;
    if !caps.idle {
        tokio::select! {
            () = cx.shutdown.cancelled() => {}
            () = tokio::time::sleep(poll) => {}
        }
        return Ok(session);
    }
    let mut idle = session.idle();
    timed("IDLE", idle.init()).await?;
    let outcome = {
        // The server's own keepalives reset this timeout; silence for two periods means
        // the connection is gone.
        let (fut, stop) = idle.wait_with_timeout(poll * 2);
        tokio::pin!(fut);
        let outcome = tokio::select! {
            r = &mut fut => Some(r),
            () = tokio::time::sleep(poll) => None,
            () = cx.shutdown.cancelled() => None,
        };
        drop(stop);
        outcome
    };
    if let Some(Err(e)) = outcome {
        return Err(e.into());
    }
    timed("DONE", idle.done()).await
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    fn message(text: &str) -> InboundMessage {
        let raw = format!(
            "From: warga@example.id\r\nSubject: Aduan\r\nMessage-ID: <{text}@w>\r\n\r\n{text}\r\n"
        );
        crate::parse::parse_mail(raw.as_bytes(), &ParseOptions::default()).unwrap().message
    }

    fn stored(id: i64) -> Ingested {
        Ingested {
            ticket: None,
            message_id: id,
            duplicate: false,
            ticket_created: true,
            reopened: false,
        }
    }

    /// A store that refuses any batch holding a message with `bad` in its text, with
    /// `error`, and records what it stored.
    async fn fake_store(
        batch: Vec<InboundMessage>,
        bad: &str,
        error: fn() -> StoreError,
        kept: &Mutex<Vec<String>>,
    ) -> Result<Vec<Ingested>, StoreError> {
        if batch.iter().any(|m| m.text.contains(bad)) {
            return Err(error());
        }
        let mut kept = kept.lock().unwrap();
        let mut out = Vec::new();
        for m in batch {
            kept.push(m.text);
            out.push(stored(kept.len() as i64));
        }
        Ok(out)
    }

    #[tokio::test]
    async fn a_mail_the_store_refuses_is_set_aside_alone() {
        let kept = Mutex::new(Vec::new());
        let batch: Vec<(u32, InboundMessage)> = ["baik1", "RUSAK", "baik2", "baik3"]
            .iter()
            .enumerate()
            .map(|(i, t)| (i as u32 + 1, message(t)))
            .collect();
        let refuse = || StoreError::Invalid("text holds a NUL".into());
        let (ok, refused) =
            ingest_isolated(batch, |b| fake_store(b, "RUSAK", refuse, &kept)).await.unwrap();
        assert_eq!(ok.iter().map(|(u, _)| *u).collect::<Vec<_>>(), vec![1, 3, 4]);
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].0, 2);
        // The reason names the kind, never the message's text.
        assert!(!refused[0].1.contains("NUL"), "{}", refused[0].1);
        assert_eq!(
            *kept.lock().unwrap(),
            vec!["Aduan\n\nbaik1", "Aduan\n\nbaik2", "Aduan\n\nbaik3"]
        );
    }

    #[tokio::test]
    async fn a_store_that_is_down_fails_the_batch_and_quarantines_nothing() {
        let kept = Mutex::new(Vec::new());
        let batch = vec![(1, message("baik1")), (2, message("baik2"))];
        // Unreachable: not about the message.
        let down = || StoreError::Closed;
        assert!(
            ingest_isolated(batch.clone(), |b| fake_store(b, "baik", down, &kept)).await.is_err()
        );
        // Every message of several refused: the store, not the mail.
        let refuse = || StoreError::Internal("disk I/O error".into());
        assert!(ingest_isolated(batch, |b| fake_store(b, "baik", refuse, &kept)).await.is_err());
        assert!(kept.lock().unwrap().is_empty());
        // One message alone that the store refuses is the message's fault.
        let (ok, refused) =
            ingest_isolated(vec![(7, message("RUSAK"))], |b| fake_store(b, "RUSAK", refuse, &kept))
                .await
                .unwrap();
        assert!(ok.is_empty());
        assert_eq!(refused.len(), 1);
    }

    #[test]
    fn fetches_are_capped_by_bytes() {
        const MB: u64 = 1024 * 1024;
        let sized = [(1, 10), (2, 20), (3, 20 * MB), (4, 3 * MB), (5, 3 * MB), (6, 30 * MB)];
        assert_eq!(fetch_groups(&sized), vec![vec![1, 2], vec![3], vec![4, 5], vec![6]]);
        let small: Vec<(u32, u64)> = (1..=40).map(|u| (u, 2 * MB)).collect();
        let groups = fetch_groups(&small);
        assert!(groups.iter().all(|g| g.len() as u64 * 2 * MB <= BATCH_BYTES), "{groups:?}");
        assert_eq!(groups.concat(), (1..=40).collect::<Vec<u32>>());
    }

    #[tokio::test]
    async fn a_mail_over_its_processing_budget_is_given_up() {
        let slow = within_budget(Duration::from_millis(50), || {
            std::thread::sleep(Duration::from_millis(500));
            Ok(1)
        })
        .await;
        assert!(slow.unwrap_err().contains("longer than"));
        let fast = within_budget(Duration::from_secs(5), || Ok(2)).await;
        assert_eq!(fast, Ok(2));
        let bad: Result<i32, String> =
            within_budget(Duration::from_secs(5), || Err(crate::ParseError::NotAMessage)).await;
        assert!(bad.is_err());
        let panicked: Result<i32, String> =
            within_budget(Duration::from_secs(5), || panic!("parser bug")).await;
        assert!(panicked.is_err());
    }

    fn with_photo(id: &str) -> Vec<u8> {
        let photo = "/9j/4AAQ".repeat(100); // 600 bytes once decoded
        format!(
            "From: Warga <warga@example.id>\r\nSubject: Jalan rusak\r\nMessage-ID: <{id}@w>\r\n\
             MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
             --b\r\nContent-Type: text/plain\r\n\r\nJalan rusak, foto terlampir.\r\n\
             --b\r\nContent-Type: image/jpeg\r\nContent-Disposition: attachment; \
             filename=\"foto.jpg\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{photo}\r\n--b--\r\n"
        )
        .into_bytes()
    }

    /// A mail's attachments count against its sender's hourly budget before anything is
    /// written: within a batch and across batches; what does not fit is not stored, the
    /// mail is, and its ticket says why.
    #[tokio::test]
    async fn mail_attachments_over_the_senders_budget_are_not_stored() {
        let dir = tempfile::tempdir().unwrap();
        let first =
            crate::parse::parse_mail_owned(with_photo("a1"), &ParseOptions::default()).unwrap();
        let whole: u64 = first.message.attachments.iter().map(|a| a.size).sum();
        assert_eq!(first.message.attachments.len(), 2, "the photo and the raw copy");
        // Room for one such mail an hour.
        let url = format!("sqlite://{}", dir.path().join("aduan.db").display());
        let opts = aduan_store::StoreOptions {
            attachment_bytes_per_hour: Some(whole + 10),
            ..Default::default()
        };
        let store = aduan_store::Store::open(&url, opts).await.unwrap();
        store.migrate().await.unwrap();

        let mut spent = HashMap::new();
        let mut first = first;
        assert_eq!(apply_attachment_budget(&store, &mut first, &mut spent).await.unwrap(), None);
        assert_eq!(first.blobs.len(), 2);
        // The same sender again in the same batch: nothing fits any more.
        let mut second =
            crate::parse::parse_mail_owned(with_photo("a2"), &ParseOptions::default()).unwrap();
        let reason = apply_attachment_budget(&store, &mut second, &mut spent).await.unwrap();
        assert!(reason.as_deref().is_some_and(|r| r.contains("budget")), "{reason:?}");
        assert!(second.blobs.is_empty(), "nothing to write");
        assert!(second.message.attachments.iter().all(|a| a.sha256.is_empty()));

        // Stored: the first counts in the store from now on (a new batch, nothing spent).
        let one = store.ingest(first.message).await.unwrap();
        assert!(one.ticket.is_some());
        let mut third =
            crate::parse::parse_mail_owned(with_photo("a3"), &ParseOptions::default()).unwrap();
        let reason = apply_attachment_budget(&store, &mut third, &mut HashMap::new())
            .await
            .unwrap()
            .unwrap();
        assert!(third.blobs.is_empty());
        let stored = store.ingest(third.message).await.unwrap();
        let code = stored.ticket.unwrap();
        assert_eq!(store.message_attachments_refused(stored.message_id, reason).await.unwrap(), 2);
        let view = store.ticket(code).await.unwrap().unwrap();
        let refused = view
            .events
            .iter()
            .filter(|e| e.kind == aduan_core::EventKind::AttachmentRefused)
            .count();
        assert_eq!(refused, 2, "{:?}", view.events);
    }
}
