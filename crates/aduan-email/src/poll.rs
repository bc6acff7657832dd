//! The IMAP poller: one session on the intake mailbox, caught up after every wake-up.
//!
//! For each batch of new mail (UIDs above the checkpoint): fetch with `BODY.PEEK[]`, parse,
//! write attachments, store everything with one `Store::ingest_all` (and official answers
//! with `Store::relay_reply`), then move the mails to `processed_mailbox` (unreadable ones
//! to `quarantine_mailbox`), and only then advance the checkpoint (`UIDVALIDITY:UID`). A
//! crash anywhere in between makes the next session fetch the batch again, and the store
//! recognises every mail by its Message-ID: nothing is lost, nothing stored twice.
//!
//! Between batches the session waits in IDLE (renewed every `poll`, well under the 29
//! minutes of RFC 2177; a renewal on a dead connection fails its `DONE` and reconnects),
//! or sleeps `poll` when the server has no IDLE. Any error ends the session; the supervisor
//! reconnects with backoff.

use std::time::Duration;

use aduan_connector::{ConnectorContext, ConnectorError};
use aduan_core::{Actor, Channel};
use aduan_store::StoreError;

use crate::imap::{self, Capabilities, Fetched, Session, timed};
use crate::official::{Route, into_note, route};
use crate::parse::{ParseOptions, ParsedMail, parse_mail};
use crate::{EmailConnector, EmailError};

/// Mails fetched and stored per batch.
pub const BATCH: usize = 100;
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

/// What became of one mail of a batch.
enum Outcome {
    /// Stored (or relayed); moves to the processed folder.
    Done,
    /// Unreadable; moves to quarantine.
    Quarantine(String),
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
    let fetched = imap::fetch(session, uids).await?;
    let now = aduan_store::now();
    let mut outcomes: Vec<(u32, Outcome)> = Vec::with_capacity(fetched.len());
    let mut parsed: Vec<(u32, ParsedMail)> = Vec::with_capacity(fetched.len());
    for Fetched { uid, raw, internal_date } in fetched {
        let opts = ParseOptions {
            received_at: internal_date.map_or(now, |d| d.min(now)),
            ..conn.parse_options.clone()
        };
        match parse_mail(&raw, &opts) {
            Ok(mail) => parsed.push((uid, mail)),
            Err(e) => outcomes.push((uid, Outcome::Quarantine(e.to_string()))),
        }
    }

    // Attachments first: a message may only point at content that is on disk.
    let blobs: Vec<crate::Blob> =
        parsed.iter().flat_map(|(_, m)| m.blobs.iter().cloned()).collect();
    conn.write_blobs(blobs).await?;

    let mut intake = Vec::new();
    let mut intake_uids = Vec::new();
    let mut bounces: Vec<(u32, Vec<String>)> = Vec::new();
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
        }
        match route(&mail, &cfg.officials) {
            Route::Intake => {
                if !mail.bounced.is_empty() {
                    bounces.push((uid, mail.bounced.clone()));
                }
                intake_uids.push(uid);
                intake.push(mail.message);
            }
            Route::Note => {
                intake_uids.push(uid);
                intake.push(into_note(mail).message);
            }
            Route::Official { official, opds, ticket } => {
                match relay_official(cx, &mail, &official, &opds, ticket).await? {
                    true => outcomes.push((uid, Outcome::Done)),
                    false => {
                        intake_uids.push(uid);
                        intake.push(into_note(mail).message);
                    }
                }
            }
        }
    }
    if !intake.is_empty() {
        let stored = cx.store.ingest_all(intake).await?;
        for (uid, outcome) in intake_uids.iter().zip(&stored) {
            cx.telemetry.message_stored(Channel::Email, outcome);
            outcomes.push((*uid, Outcome::Done));
        }
    }
    for (uid, ids) in bounces {
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
            Outcome::Done => None,
        })
        .collect();
    imap::move_to(session, caps, &done, &cfg.processed_mailbox).await?;
    imap::move_to(session, caps, &quarantined, &cfg.quarantine_mailbox).await?;

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
        last_uid = last,
        "Mail batch stored."
    );
    Ok(())
}

/// Relays an official's answer. `Ok(false)` when it is not one after all (no ticket found,
/// or the ticket is not assigned to the official's OPD): the caller keeps it as a note.
async fn relay_official(
    cx: &ConnectorContext,
    mail: &ParsedMail,
    official: &str,
    opds: &[String],
    ticket: Option<aduan_core::TicketCode>,
) -> Result<bool, EmailError> {
    let code = match ticket {
        Some(code) => Some(code),
        None => {
            cx.store
                .ticket_of_message(Channel::Email, mail.message.thread.references.clone())
                .await?
        }
    };
    let Some(code) = code else { return Ok(false) };
    let Some(view) = cx.store.ticket(code).await? else { return Ok(false) };
    // Follow a merge to the ticket that lives on.
    let view = match view.summary.merged_into {
        Some(into) => match cx.store.ticket(into).await? {
            Some(v) => v,
            None => return Ok(false),
        },
        None => view,
    };
    let code = view.summary.code;
    if !view.summary.opd.as_ref().is_some_and(|o| opds.contains(o)) {
        tracing::info!(channel = "email", ticket = %code, "Answer from an official of another OPD kept as a note.");
        return Ok(false);
    }
    let origin = format!("email:{}", mail.message.provider_id);
    let actor = Actor::User(official.to_owned());
    match cx.store.relay_reply(code, mail.message.text.clone(), actor, origin).await {
        Ok(Some(replied)) => {
            tracing::info!(channel = "email", ticket = %code, message_id = replied.message_id, "Official's answer recorded and relayed.");
            Ok(true)
        }
        Ok(None) => Ok(true),
        Err(StoreError::TicketNotFound(_) | StoreError::Conflict(_) | StoreError::Invalid(_)) => {
            Ok(false)
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
