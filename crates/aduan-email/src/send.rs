//! SMTP delivery with lettre: one pooled transport, outcomes mapped to retry or give up,
//! and a per-recipient limit on automatic mail (RFC 3834: don't flood one address with
//! receipts). An outbox row counts against the limit once, on its first attempt: the retries
//! of a receipt through an SMTP outage are the same mail, and must not use the limit up
//! (they did, and a receipt retried through an outage was then given up for good).

use std::num::NonZeroU32;
use std::time::{Duration, SystemTime};

use aduan_connector::SendError;
use aduan_core::{Channel, IdentityKind};
use aduan_store::OutboxItem;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::EmailError;
use crate::compose::Composer;

/// Automatic mails (receipts, status answers) one address gets: a burst of this many, then
/// one more every `AUTO_MAIL_PERIOD`.
const AUTO_MAIL_BURST: u32 = 5;
const AUTO_MAIL_PERIOD: Duration = Duration::from_secs(12 * 60);

pub(crate) struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    composer: Composer,
    automatic: DefaultKeyedRateLimiter<String>,
}

impl Smtp {
    pub(crate) fn new(url: &str, composer: Composer) -> Result<Smtp, EmailError> {
        // The URL may hold credentials: never show it.
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|_| EmailError::Config("smtp_url is not a usable SMTP URL".into()))?
            .timeout(Some(Duration::from_secs(60)))
            .pool_config(PoolConfig::new().max_size(4).idle_timeout(Duration::from_secs(60)))
            .build();
        let burst = NonZeroU32::new(AUTO_MAIL_BURST).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(AUTO_MAIL_PERIOD)
            .map(|q| q.allow_burst(burst))
            .unwrap_or_else(|| Quota::per_hour(burst));
        Ok(Smtp { transport, composer, automatic: RateLimiter::keyed(quota) })
    }

    pub(crate) async fn send(&self, item: &OutboxItem) -> Result<Option<String>, SendError> {
        if item.channel != Channel::Email || item.recipient.kind != IdentityKind::Email {
            return Err(SendError::Permanent(format!(
                "the email connector can't send to a {} address",
                item.recipient.kind
            )));
        }
        if item.purpose.is_auto_reply()
            && aduan_core::machine::is_machine_address(&item.recipient.value)
        {
            // The store refuses these when it queues them; a row queued before is not sent.
            return Err(SendError::Permanent(
                "not sent: the address can't be a resident's (automated_recipient)".into(),
            ));
        }
        if counts_against_limit(item) {
            if self.automatic.len() > 10_000 {
                self.automatic.retain_recent();
            }
            if self.automatic.check_key(&item.recipient.value).is_err() {
                return Err(SendError::Permanent(
                    "not sent: too many automatic mails to this address (RFC 3834 limit)".into(),
                ));
            }
        }
        let out = self
            .composer
            .outbox_mail(item, row_token(item.id), SystemTime::now())
            .map_err(|e| SendError::Permanent(e.to_string()))?;
        self.deliver(out.message).await?;
        Ok(Some(out.message_id))
    }

    pub(crate) fn composer(&self) -> &Composer {
        &self.composer
    }

    pub(crate) async fn deliver(&self, message: lettre::Message) -> Result<(), SendError> {
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) => Err(classify(&e)),
        }
    }
}

/// Retry or give up. The reason names the SMTP code only: server texts quote addresses.
fn classify(e: &lettre::transport::smtp::Error) -> SendError {
    let code = e.status().map(|c| c.to_string());
    // 550 mailbox unavailable, 551 user not local, 553 mailbox name not allowed: the
    // address is wrong, another of the resident's addresses may work.
    if e.is_permanent() && code.as_deref().is_some_and(recipient_refused) {
        return SendError::Undeliverable(aduan_core::UndeliverableReason::RecipientInvalid);
    }
    if e.is_permanent() {
        return SendError::Permanent(format!(
            "the SMTP server refused the mail (code {})",
            code.as_deref().unwrap_or("5xx")
        ));
    }
    let reason = if e.is_transient() {
        format!("the SMTP server deferred the mail (code {})", code.as_deref().unwrap_or("4xx"))
    } else if e.is_timeout() {
        "the SMTP server did not answer in time".to_owned()
    } else if e.is_tls() {
        "TLS with the SMTP server failed".to_owned()
    } else {
        "could not talk to the SMTP server".to_owned()
    };
    SendError::Retry { reason, after: None }
}

/// SMTP codes that refuse the recipient's mailbox (not the message or the server).
fn recipient_refused(code: &str) -> bool {
    matches!(code, "550" | "551" | "553")
}

/// Whether sending `item` spends one of its recipient's automatic mails: an auto-reply to a
/// resident on its first attempt. Retries of the row are the same mail; notifications to
/// officials and admins are not auto-replies and never limited (a busy morning's sixth
/// disposition to one OPD was given up for good).
fn counts_against_limit(item: &OutboxItem) -> bool {
    item.purpose.is_auto_reply() && item.attempts <= 1
}

/// The unique part of the Message-ID of outbox row `id`: the same on every attempt and on
/// every instance, so a row sent again (its sender died between SMTP's 250 and marking the
/// row sent) carries the same Message-ID and mail clients show it once.
pub(crate) fn row_token(id: i64) -> [u8; 8] {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("aduan-outbox-row:{id}").as_bytes());
    let mut token = [0u8; 8];
    token.copy_from_slice(&digest[..8]);
    token
}

#[cfg(test)]
mod tests {
    use super::{counts_against_limit, row_token};
    use aduan_core::{Channel, Identity, IdentityKind, Purpose, TicketCode};
    use aduan_store::OutboxItem;

    #[test]
    fn mailbox_refusals_are_undeliverable_other_5xx_are_not() {
        assert!(super::recipient_refused("550") && super::recipient_refused("553"));
        assert!(!super::recipient_refused("554") && !super::recipient_refused("552"));
    }

    #[test]
    fn a_rows_retries_do_not_count_against_the_automatic_limit() {
        let mut item = OutboxItem {
            id: 1,
            ticket: "ADU-7K3M9QXP".parse::<TicketCode>().expect("a code"),
            channel: Channel::Email,
            recipient: Identity::new(IdentityKind::Email, "warga@example.id").expect("an address"),
            text: "Aduan diterima".into(),
            purpose: Purpose::Ack,
            attempts: 1,
            thread_refs: Vec::new(),
        };
        assert!(counts_against_limit(&item));
        item.attempts = 2;
        assert!(!counts_against_limit(&item), "a retry spent the limit again");
        item.attempts = 1;
        item.purpose = Purpose::Reply;
        assert!(!counts_against_limit(&item), "an operator's answer is not automatic mail");
        for purpose in [Purpose::Disposition, Purpose::Warning, Purpose::Escalation] {
            item.purpose = purpose;
            assert!(!counts_against_limit(&item), "a notification to officials was limited");
        }
    }

    #[test]
    fn a_rows_message_id_token_is_stable_and_its_own() {
        assert_eq!(row_token(42), row_token(42));
        assert_ne!(row_token(42), row_token(43));
        assert_ne!(row_token(1), [0u8; 8]);
    }
}
