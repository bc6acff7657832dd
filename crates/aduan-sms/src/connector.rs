//! The IO shell: [`SmsConnector`] sends answers through Kannel `sendsms`, Twilio's Messages
//! API or the Android gateway, paced per gateway with governor, and fetches Twilio MMS
//! media into the attachment store.
//!
//! **Which gateway answers.** Every SMS provider id carries its gateway (`kannel:…`,
//! `twilio:…`, `android:…`), and an outbox row lists the provider ids of its ticket's SMS
//! messages newest first (`thread_refs`): the answer goes through the gateway of the newest
//! one, i.e. the gateway the resident last wrote through (what we sent is recorded with
//! the same prefix). A ticket with no SMS yet (a web form that left a phone number) goes
//! through the first configured gateway in the order Kannel, Twilio, Android; so does one
//! whose gateway has since been switched off. Nothing new is stored for this.
//!
//! **Media.** A Twilio MMS names its media by URL in the (signed) webhook. They are fetched
//! only through [`aduan_connector::egress`]: from the configured `api_url`'s origin or over
//! https from Twilio's media hosts ([`TWILIO_MEDIA_HOSTS`], or `[channels.twilio]
//! media_hosts`), never from an internal address, every redirect checked; the account's
//! Basic credentials go only to the configured API's origin (never along a redirect).

use std::sync::Arc;
use std::time::Duration;

use aduan_connector::Secret;
use aduan_connector::egress::{Credentials, EgressPolicy, MediaFetcher};
use aduan_connector::media::{FetchedMedia, MediaError, MediaQueue, MediaSource};
use aduan_connector::{
    Connector, ConnectorContext, ConnectorError, Pacer, SendError, Webhook, retry_after,
};
use aduan_core::{Channel, IdentityKind};
use aduan_store::{OutboxItem, UnfetchedAttachment};

use crate::android::{self, AndroidWebhook};
use crate::kannel::{self, KannelWebhook, Outcome};
use crate::twilio::{self, TwilioWebhook};
use crate::{Gateway, outgoing_text, split};

/// The hosts Twilio serves MMS media from: the API (`/2010-04-01/…/Media/ME…`) and the
/// stores it redirects to (`mms.twiliocdn.com` with media authentication on, the public
/// S3 endpoint for older media). The default of `[channels.twilio] media_hosts`.
pub const TWILIO_MEDIA_HOSTS: &[&str] =
    &["api.twilio.com", "*.twiliocdn.com", "s3-external-1.amazonaws.com"];

/// Media larger than this is not fetched.
pub const MAX_MEDIA_BYTES: usize = 20 * 1024 * 1024;
/// Failed fetches of one attachment before it is given up.
pub const MAX_FETCH_ATTEMPTS: i64 = aduan_connector::media::MAX_FETCH_ATTEMPTS;

/// `[channels.kannel]`, secrets resolved.
#[derive(Debug, Clone)]
pub struct KannelConfig {
    /// The `secret` query parameter of the smsbox `get-url`.
    pub secret: Secret,
    /// `http://127.0.0.1:13013/cgi-bin/sendsms`.
    pub sendsms_url: String,
    pub username: String,
    pub password: Secret,
    /// The sender (short code or number); Kannel's default when `None`.
    pub from: Option<String>,
    /// Messages per second handed to smsbox.
    pub per_second: u32,
    /// The most parts one answer may take; longer texts are cut and end in `...`.
    pub max_parts: usize,
    /// Where smsbox sends delivery reports (`{public_url}/hooks/kannel-dlr`); `None`: no
    /// reports asked for.
    pub dlr_url: Option<String>,
}

/// `[channels.twilio]`, secrets resolved.
#[derive(Debug, Clone)]
pub struct TwilioConfig {
    pub account_sid: String,
    pub auth_token: Secret,
    /// Our number (`+1…`) or a Messaging Service (`MG…`); needed to send.
    pub from: Option<String>,
    /// `https://api.twilio.com`; a local server in tests.
    pub api_url: String,
    /// Segments per second (a long code sends one per second).
    pub segments_per_second: u32,
    /// The most parts (segments) one answer may take.
    pub max_parts: usize,
    /// Hosts MMS media may be fetched from over https besides `api_url`'s origin (exact
    /// names or `*.suffix`); [`TWILIO_MEDIA_HOSTS`] by default.
    pub media_hosts: Vec<String>,
    /// The `StatusCallback` base (`{public_url}/hooks/twilio-status`); `None`: none asked.
    pub status_callback: Option<String>,
}

/// `[channels.android_sms]`, secrets resolved.
#[derive(Debug, Clone)]
pub struct AndroidConfig {
    pub signing_key: Secret,
    /// The phone's API (`http://phone.local:8080`) or the cloud's
    /// (`https://api.sms-gate.app/3rdparty/v1`); needed to send.
    pub api_url: Option<String>,
    pub username: String,
    pub password: Secret,
    /// Messages per minute through the phone's SIM (carriers flag faster senders).
    pub per_minute: u32,
    /// The most parts one answer may take.
    pub max_parts: usize,
}

/// The SMS channel: whichever gateways are configured. `Debug` is derived: every secret
/// is a [`Secret`], printed as `Secret(***)`.
#[derive(Debug, Clone)]
pub struct SmsConfig {
    pub kannel: Option<KannelConfig>,
    pub twilio: Option<TwilioConfig>,
    pub android: Option<AndroidConfig>,
}

/// Parts an answer may take unless configured (a receipt always fits in one).
pub const DEFAULT_MAX_PARTS: usize = 4;

fn retry(reason: String) -> SendError {
    SendError::Retry { reason, after: None }
}

/// Kannel, Twilio and the Android gateway behind one `sms` channel.
pub struct SmsConnector {
    cfg: SmsConfig,
    http: reqwest::Client,
    /// Twilio media downloads (see the module docs).
    media: Option<MediaFetcher>,
    kannel_limit: Pacer,
    twilio_limit: Pacer,
    android_limit: Pacer,
}

impl SmsConnector {
    pub fn new(cfg: SmsConfig) -> SmsConnector {
        let kps = cfg.kannel.as_ref().map_or(10, |k| k.per_second.max(1));
        let tps = cfg.twilio.as_ref().map_or(1, |t| t.segments_per_second.max(1));
        let apm = cfg.android.as_ref().map_or(20, |a| a.per_minute.max(1));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        let media = cfg
            .twilio
            .as_ref()
            .map(|t| MediaFetcher::new(EgressPolicy::new(&[t.api_url.as_str()], &t.media_hosts)));
        SmsConnector {
            http,
            media,
            kannel_limit: Pacer::new(Gateway::Kannel.as_str(), kps, Duration::from_secs(1), kps),
            // One second's worth of segments, plus a whole capped message.
            twilio_limit: Pacer::new(
                Gateway::Twilio.as_str(),
                tps,
                Duration::from_secs(1),
                tps.max(cfg.twilio.as_ref().map_or(1, |t| t.max_parts as u32)),
            ),
            android_limit: Pacer::new(Gateway::Android.as_str(), apm, Duration::from_secs(60), 3),
            cfg,
        }
    }

    /// The gateways that can send, in the default order.
    fn senders(&self) -> Vec<Gateway> {
        let mut out = Vec::new();
        if self.cfg.kannel.is_some() {
            out.push(Gateway::Kannel);
        }
        if self.cfg.twilio.as_ref().is_some_and(|t| t.from.is_some()) {
            out.push(Gateway::Twilio);
        }
        if self.cfg.android.as_ref().is_some_and(|a| a.api_url.is_some()) {
            out.push(Gateway::Android);
        }
        out
    }

    /// The gateway an answer goes through (see the module docs).
    pub fn route(&self, item: &OutboxItem) -> Option<Gateway> {
        let senders = self.senders();
        Gateway::of_refs(&item.thread_refs)
            .filter(|g| senders.contains(g))
            .or_else(|| senders.first().copied())
    }

    async fn send_kannel(
        &self,
        item: &OutboxItem,
        text: &str,
    ) -> Result<Option<String>, SendError> {
        let Some(k) = &self.cfg.kannel else {
            return Err(SendError::Permanent("kannel is not configured".into()));
        };
        self.kannel_limit.pace(1, Duration::from_secs(2)).await?;
        let mut url = kannel::sendsms_url(
            &k.sendsms_url,
            &k.username,
            k.password.expose(),
            k.from.as_deref(),
            &item.recipient.value,
            text,
        );
        if let Some(base) = &k.dlr_url {
            url = kannel::with_dlr(&url, &kannel::dlr_url(base, k.secret.expose(), item.id));
        }
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| retry(format!("sendsms failed: {}", e.without_url())))?;
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        match kannel::answer(status, &body) {
            Outcome::Accepted => {}
            Outcome::Queued => {
                // Bearerbox keeps it and delivers when an SMSC takes it; sending again
                // would reach the resident twice.
                tracing::warn!(outbox_id = item.id, ticket = %item.ticket, "Kannel queued the SMS for later delivery.");
            }
            Outcome::Retry(reason) => return Err(retry(reason)),
            Outcome::Permanent(reason) => return Err(SendError::Permanent(reason)),
        }
        // sendsms gives no id; ours marks the message as gone through Kannel.
        Ok(Some(Gateway::Kannel.provider_id(&format!("out-{}", item.id))))
    }

    async fn send_twilio(
        &self,
        item: &OutboxItem,
        text: &str,
    ) -> Result<Option<String>, SendError> {
        let Some(t) = &self.cfg.twilio else {
            return Err(SendError::Permanent("twilio is not configured".into()));
        };
        let Some(from) = &t.from else {
            return Err(SendError::Permanent("channels.twilio.from is not set".into()));
        };
        let segments = split::parts(text) as u32;
        self.twilio_limit.pace(segments, Duration::from_secs(5)).await?;
        let mut call =
            twilio::message_call(&t.api_url, &t.account_sid, from, &item.recipient.value, text);
        if let Some(base) = &t.status_callback {
            call.form.push(("StatusCallback", twilio::status_callback_url(base, item.id)));
        }
        let resp = self
            .http
            .post(&call.url)
            .basic_auth(&call.account_sid, Some(t.auth_token.expose()))
            .form(&call.form)
            .send()
            .await
            .map_err(|e| retry(format!("Twilio call failed: {}", e.without_url())))?;
        let status = resp.status().as_u16();
        let after = retry_after(resp.headers());
        let body = resp.bytes().await.unwrap_or_default();
        match twilio::message_answer(status, &body) {
            Ok(sid) => Ok(Some(Gateway::Twilio.provider_id(&sid))),
            Err((true, reason)) => Err(SendError::Retry { reason, after }),
            Err((false, reason)) => match twilio::undeliverable(&body) {
                Some(why) => Err(SendError::Undeliverable(why)),
                None => Err(SendError::Permanent(reason)),
            },
        }
    }

    async fn send_android(
        &self,
        item: &OutboxItem,
        text: &str,
    ) -> Result<Option<String>, SendError> {
        let Some((a, api)) =
            self.cfg.android.as_ref().and_then(|a| Some((a, a.api_url.as_deref()?)))
        else {
            return Err(SendError::Permanent("channels.android_sms.api_url is not set".into()));
        };
        self.android_limit.pace(1, Duration::from_secs(5)).await?;
        let resp = self
            .http
            .post(android::message_url(api))
            .basic_auth(&a.username, Some(a.password.expose()))
            .json(&android::message_body(&item.recipient.value, text))
            .send()
            .await
            .map_err(|e| retry(format!("gateway call failed: {}", e.without_url())))?;
        let status = resp.status().as_u16();
        let after = retry_after(resp.headers());
        let body = resp.bytes().await.unwrap_or_default();
        match android::message_answer(status, &body) {
            Ok(id) => Ok(Some(Gateway::Android.provider_id(&id))),
            Err((true, reason)) => Err(SendError::Retry { reason, after }),
            Err((false, reason)) => Err(SendError::Permanent(reason)),
        }
    }
}

/// Twilio MMS media, with HTTP Basic of the account when media authentication is on.
#[async_trait::async_trait]
impl MediaSource for SmsConnector {
    async fn fetch_media(&self, a: &UnfetchedAttachment) -> Result<FetchedMedia, MediaError> {
        let (Some(t), Some(media)) = (&self.cfg.twilio, &self.media) else {
            return Err(MediaError::transient("twilio is not configured"));
        };
        // The account's credentials go to the configured API only (Twilio's media URLs are
        // on it and redirect to a signed URL on its CDN); media named elsewhere is fetched
        // without them.
        let credentials = if media.policy().is_api_url(&a.provider_ref) {
            Credentials::Basic { user: t.account_sid.as_str(), password: t.auth_token.expose() }
        } else {
            Credentials::None
        };
        let f = media.get(&a.provider_ref, credentials, MAX_MEDIA_BYTES).await?;
        Ok(FetchedMedia { bytes: f.bytes, content_type: f.content_type })
    }
}

#[async_trait::async_trait]
impl Connector for SmsConnector {
    fn name(&self) -> &'static str {
        "sms"
    }

    fn channels(&self) -> Vec<Channel> {
        if self.senders().is_empty() { Vec::new() } else { vec![Channel::Sms] }
    }

    fn webhooks(&self) -> Vec<Arc<dyn Webhook>> {
        let mut out: Vec<Arc<dyn Webhook>> = Vec::new();
        if let Some(k) = &self.cfg.kannel {
            out.push(Arc::new(KannelWebhook::new(k.secret.expose())));
            out.push(Arc::new(kannel::KannelDlrWebhook::new(k.secret.expose())));
        }
        if let Some(t) = &self.cfg.twilio {
            out.push(Arc::new(TwilioWebhook::new(
                t.auth_token.expose(),
                Some(t.account_sid.clone()),
            )));
            out.push(Arc::new(twilio::TwilioStatusWebhook::new(
                t.auth_token.expose(),
                Some(t.account_sid.clone()),
            )));
        }
        if let Some(a) = &self.cfg.android {
            out.push(Arc::new(AndroidWebhook::new(a.signing_key.expose())));
        }
        out
    }

    /// Fetches MMS media every few seconds.
    async fn run(&self, cx: ConnectorContext) -> Result<(), ConnectorError> {
        if self.cfg.twilio.is_none() {
            cx.shutdown.cancelled().await;
            return Ok(());
        }
        MediaQueue::new("sms", vec![Channel::Sms]).run(&cx, self).await;
        Ok(())
    }

    async fn send(&self, item: &OutboxItem) -> Result<Option<String>, SendError> {
        if item.recipient.kind != IdentityKind::Phone {
            return Err(SendError::Permanent("an SMS answer needs a phone number".into()));
        }
        let Some(gateway) = self.route(item) else {
            return Err(SendError::Permanent("no SMS gateway can send".into()));
        };
        let max_parts = match gateway {
            Gateway::Kannel => self.cfg.kannel.as_ref().map(|k| k.max_parts),
            Gateway::Twilio => self.cfg.twilio.as_ref().map(|t| t.max_parts),
            Gateway::Android => self.cfg.android.as_ref().map(|a| a.max_parts),
        };
        let text = split::cap(&outgoing_text(item), max_parts.unwrap_or(DEFAULT_MAX_PARTS));
        let result = match gateway {
            Gateway::Kannel => self.send_kannel(item, &text).await,
            Gateway::Twilio => self.send_twilio(item, &text).await,
            Gateway::Android => self.send_android(item, &text).await,
        };
        match &result {
            Ok(_) => {
                tracing::debug!(outbox_id = item.id, ticket = %item.ticket, gateway = gateway.as_str(), parts = split::parts(&text), "SMS handed to the gateway.")
            }
            Err(error) => {
                tracing::warn!(outbox_id = item.id, ticket = %item.ticket, gateway = gateway.as_str(), %error, "SMS not sent.")
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(refs: &[&str]) -> OutboxItem {
        OutboxItem {
            id: 7,
            ticket: aduan_core::TicketCode::from_entropy([1, 2, 3, 4, 5]),
            channel: Channel::Sms,
            recipient: aduan_core::Identity::phone("+6281234567890").unwrap(),
            text: "Halo".into(),
            purpose: aduan_core::Purpose::Reply,
            attempts: 1,
            thread_refs: refs.iter().map(|r| (*r).to_owned()).collect(),
        }
    }

    fn kannel() -> KannelConfig {
        KannelConfig {
            secret: "s".into(),
            sendsms_url: "http://127.0.0.1:1/cgi-bin/sendsms".into(),
            username: "u".into(),
            password: "p".into(),
            from: None,
            per_second: 10,
            max_parts: DEFAULT_MAX_PARTS,
            dlr_url: None,
        }
    }

    fn twilio(from: Option<&str>) -> TwilioConfig {
        TwilioConfig {
            account_sid: "AC1".into(),
            auth_token: "t".into(),
            from: from.map(str::to_owned),
            api_url: "http://127.0.0.1:1".into(),
            segments_per_second: 1,
            max_parts: DEFAULT_MAX_PARTS,
            media_hosts: Vec::new(),
            status_callback: None,
        }
    }

    fn connector(kannel: Option<KannelConfig>, twilio: Option<TwilioConfig>) -> SmsConnector {
        SmsConnector::new(SmsConfig { kannel, twilio, android: None })
    }

    #[test]
    fn answers_follow_the_newest_gateway_else_the_default_order() {
        let both = connector(Some(kannel()), Some(twilio(Some("+15005550006"))));
        assert_eq!(both.route(&item(&["twilio:SM2", "kannel:x"])), Some(Gateway::Twilio));
        assert_eq!(both.route(&item(&["kannel:out-3", "twilio:SM2"])), Some(Gateway::Kannel));
        assert_eq!(both.route(&item(&[])), Some(Gateway::Kannel));
        // Android is not configured: its resident is answered by the default gateway.
        assert_eq!(both.route(&item(&["android:ev1"])), Some(Gateway::Kannel));
        // Twilio without `from` only receives.
        let receive_only = connector(None, Some(twilio(None)));
        assert_eq!(receive_only.route(&item(&["twilio:SM2"])), None);
        assert!(receive_only.channels().is_empty());
        assert_eq!(receive_only.webhooks().len(), 2, "inbound and status callbacks");
    }

    #[test]
    fn debug_of_the_config_never_shows_a_secret() {
        let secrets = ["kannel-secret-zq", "kannel-pass-zq", "twilio-token-zq", "android-key-zq"];
        let cfg = SmsConfig {
            kannel: Some(KannelConfig {
                secret: secrets[0].into(),
                password: secrets[1].into(),
                ..kannel()
            }),
            twilio: Some(TwilioConfig { auth_token: secrets[2].into(), ..twilio(None) }),
            android: Some(AndroidConfig {
                signing_key: secrets[3].into(),
                api_url: None,
                username: "u".into(),
                password: "android-pass-zq".into(),
                per_minute: 20,
                max_parts: DEFAULT_MAX_PARTS,
            }),
        };
        let shown = format!("{cfg:?} {cfg:#?}");
        assert!(!shown.contains("-zq"), "{shown}");
        assert!(shown.contains("sendsms"), "the rest is shown: {shown}");
    }
}
