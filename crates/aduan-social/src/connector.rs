//! The IO shell: [`MetaConnector`] and [`XConnector`] send answers over HTTP (the requests
//! themselves are built in [`crate::send`]), pace them with token buckets, and — for Meta —
//! apply delivery receipts to the outbox and fetch media into the attachment store.
//!
//! Media URLs come from webhook bodies, so they are fetched only through
//! [`aduan_connector::egress`]: from the configured `graph_api_url`'s origin or over https
//! from Meta's media hosts ([`META_MEDIA_HOSTS`], or `[channels.meta] media_hosts`), never
//! from an internal address, redirects checked hop by hop, the WhatsApp token never sent
//! elsewhere.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use aduan_connector::Secret;
use aduan_connector::body::read_limited;
use aduan_connector::egress::{Credentials, EgressPolicy, MediaFetcher};
use aduan_connector::media::{FetchedMedia, MediaError, MediaQueue, MediaSource};
use aduan_connector::{
    Connector, ConnectorContext, ConnectorError, KeyedPacer, Pacer, SendError, Webhook, retry_after,
};
use aduan_core::Channel;
use aduan_store::{DeliveryReceipt, OutboxItem, Store, UnfetchedAttachment};
use serde_json::Value;
use tokio::sync::{Mutex, mpsc};

use crate::meta::MetaWebhook;
use crate::send::{self, Answer, Call, XRoute};
use crate::x::XWebhook;

/// The hosts Meta serves media from (Messenger and Instagram attachment URLs, the URL a
/// WhatsApp media id resolves to): the default of `[channels.meta] media_hosts`.
pub const META_MEDIA_HOSTS: &[&str] =
    &["*.fbcdn.net", "*.fbsbx.com", "*.cdninstagram.com", "*.whatsapp.net"];

/// Media larger than this is not fetched (WhatsApp's own limit for documents is 100 MB).
pub const MAX_MEDIA_BYTES: usize = 100 * 1024 * 1024;
/// Failed fetches of one attachment before it is given up.
pub const MAX_FETCH_ATTEMPTS: i64 = aduan_connector::media::MAX_FETCH_ATTEMPTS;
/// How long a receipt that arrives before its outbox row records the message id is kept.
const RECEIPT_PATIENCE: Duration = Duration::from_secs(120);

fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .connect_timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default()
}

/// Posts one call and reads the answer (status, Retry-After, body up to 1 MiB).
async fn post(http: &reqwest::Client, call: &Call) -> Result<Answer, SendError> {
    let resp = http
        .post(&call.url)
        .bearer_auth(call.bearer.expose())
        .json(&call.body)
        .send()
        .await
        .map_err(|e| SendError::Retry {
            reason: format!("request failed: {}", e.without_url()),
            after: None,
        })?;
    let status = resp.status().as_u16();
    let retry_after = retry_after(resp.headers());
    let body = read_limited(resp, 1024 * 1024)
        .await
        .map_err(|e| SendError::Retry { reason: e.to_string(), after: None })?;
    Ok(Answer { status, retry_after, body })
}

/// `[channels.meta]`, with secrets already resolved (each a [`Secret`], so `Debug` never
/// shows one).
#[derive(Debug, Clone)]
pub struct MetaConfig {
    pub app_secret: Secret,
    pub verify_token: Secret,
    /// Sends on Messenger and Instagram when set.
    pub page_access_token: Option<Secret>,
    /// Sends on WhatsApp when set together with `whatsapp_phone_number_id`.
    pub whatsapp_token: Option<Secret>,
    pub whatsapp_phone_number_id: Option<String>,
    /// `https://graph.facebook.com/v21.0`; a local server in tests.
    pub graph_api_url: String,
    /// Hosts media may be fetched from over https besides `graph_api_url`'s origin (exact
    /// names or `*.suffix`); [`META_MEDIA_HOSTS`] by default.
    pub media_hosts: Vec<String>,
    /// The approved WhatsApp template sent instead of an answer outside the 24-hour window
    /// (`[channels.meta] whatsapp_template`); without it such an answer is undeliverable.
    pub whatsapp_template: Option<send::WhatsappTemplate>,
    /// Answer Messenger/Instagram residents up to 7 days with the `HUMAN_AGENT` tag
    /// (`[channels.meta] human_agent_tag`, off by default: it needs Meta's approval).
    pub human_agent_tag: bool,
    /// `[server] public_url`, for the tracking link in the template.
    pub public_url: String,
}

/// Messenger, Instagram and WhatsApp: one webhook, three senders.
pub struct MetaConnector {
    cfg: MetaConfig,
    http: reqwest::Client,
    /// Every media download goes through it (see the module docs).
    media: MediaFetcher,
    webhook: Arc<MetaWebhook>,
    receipts: Mutex<mpsc::Receiver<DeliveryReceipt>>,
    /// Set when `run` starts: `send` needs it for the customer window.
    store: OnceLock<Store>,
    /// 300 calls/s per Page (and per Instagram professional account).
    page_limit: Pacer,
    /// 80 messages/s per WhatsApp number by default.
    number_limit: Pacer,
    /// About one message per 6 s to the same WhatsApp user (error 131056 beyond).
    pair_limit: KeyedPacer,
}

impl MetaConnector {
    pub fn new(cfg: MetaConfig) -> MetaConnector {
        let (tx, rx) = mpsc::channel(4096);
        let webhook = Arc::new(MetaWebhook::new(
            cfg.app_secret.expose().to_owned(),
            cfg.verify_token.expose().to_owned(),
            Some(tx),
        ));
        let media =
            MediaFetcher::new(EgressPolicy::new(&[cfg.graph_api_url.as_str()], &cfg.media_hosts));
        MetaConnector {
            cfg,
            http: http_client(),
            media,
            webhook,
            receipts: Mutex::new(rx),
            store: OnceLock::new(),
            page_limit: Pacer::new("page", 300, Duration::from_secs(1), 300),
            number_limit: Pacer::new("whatsapp number", 80, Duration::from_secs(1), 80),
            pair_limit: KeyedPacer::new("whatsapp pair", 1, Duration::from_secs(6), 1),
        }
    }

    fn whatsapp(&self) -> Option<(&str, &str)> {
        Some((
            self.cfg.whatsapp_token.as_ref()?.expose(),
            self.cfg.whatsapp_phone_number_id.as_deref()?,
        ))
    }

    /// How this answer may go now: free text, tagged, a template, or not at all
    /// (`Undeliverable(WindowClosed)`), by when the resident last wrote on its channel.
    async fn route(&self, item: &OutboxItem) -> Result<send::MetaRoute, SendError> {
        let store = self.started_store()?;
        let last = store
            .last_inbound_at(item.channel, &item.recipient)
            .await
            .map_err(|e| SendError::Retry { reason: format!("store: {e}"), after: None })?;
        send::meta_route(
            item.channel,
            item.purpose,
            last,
            chrono::Utc::now(),
            self.cfg.human_agent_tag,
            self.cfg.whatsapp_template.is_some(),
        )
    }

    fn started_store(&self) -> Result<&Store, SendError> {
        self.store.get().ok_or_else(|| SendError::Retry {
            reason: "the meta connector has not started yet".into(),
            after: Some(Duration::from_secs(1)),
        })
    }

    /// Outside WhatsApp's window: the template with the code, the status and the tracking
    /// link; the answer itself waits for the resident (`NoticeSent`).
    async fn send_template(&self, item: &OutboxItem) -> Result<Option<String>, SendError> {
        let (Some((token, number)), Some(template)) =
            (self.whatsapp(), self.cfg.whatsapp_template.as_ref())
        else {
            return Err(SendError::Undeliverable(aduan_core::UndeliverableReason::WindowClosed));
        };
        let view = self
            .started_store()?
            .ticket(item.ticket)
            .await
            .map_err(|e| SendError::Retry { reason: format!("store: {e}"), after: None })?
            .ok_or_else(|| SendError::Permanent(format!("ticket {} not found", item.ticket)))?;
        let status = aduan_core::texts::status_label(view.summary.status);
        let link = format!("{}/lacak/{}", self.cfg.public_url.trim_end_matches('/'), item.ticket);
        let values = send::TemplateValues { code: item.ticket, status, link: &link };
        self.number_limit.pace(1, Duration::from_secs(2)).await?;
        self.pair_limit.pace(&item.recipient.value, Duration::from_secs(7)).await?;
        let call = send::whatsapp_template_call(
            &self.cfg.graph_api_url,
            token,
            number,
            &item.recipient.value,
            template,
            values,
        );
        let notice = send::meta_answer(item.channel, &post(&self.http, &call).await?)?;
        Err(SendError::NoticeSent { reason: aduan_core::UndeliverableReason::WindowClosed, notice })
    }

    async fn apply_receipt(&self, store: &Store, r: &DeliveryReceipt) -> bool {
        match store.outbox_receipt(r.clone()).await {
            Ok(found) => {
                if found {
                    tracing::debug!(channel = %r.channel, provider_id = %r.provider_id, status = r.status.as_str(), "Delivery receipt recorded.");
                }
                found
            }
            Err(error) => {
                tracing::warn!(%error, channel = %r.channel, "Could not record a delivery receipt.");
                false
            }
        }
    }

    /// The channels whose media this connector fetches.
    fn media_queue(&self) -> MediaQueue {
        let mut channels = vec![Channel::Messenger, Channel::Instagram];
        if self.cfg.whatsapp_token.is_some() {
            channels.push(Channel::Whatsapp);
        }
        MediaQueue::new("meta", channels)
    }

    /// WhatsApp media by id through the Graph API (two calls: the id gives a short-lived
    /// URL, the URL the bytes, both with the token); Messenger and Instagram attachment URLs
    /// directly.
    async fn fetch_one(&self, a: &UnfetchedAttachment) -> Result<(Vec<u8>, String), MediaError> {
        let concrete = |ct: &str| !ct.ends_with("/*") && !ct.is_empty();
        if a.provider_ref.starts_with("https://") || a.provider_ref.starts_with("http://") {
            let (data, header_type) = self.download(&a.provider_ref, None).await?;
            let ct = header_type.filter(|t| concrete(t)).unwrap_or_else(|| a.content_type.clone());
            return Ok((data, ct));
        }
        let Some((token, _)) = self.whatsapp() else {
            return Err(MediaError::transient("no whatsapp_token"));
        };
        let meta_url =
            format!("{}/{}", self.cfg.graph_api_url.trim_end_matches('/'), a.provider_ref);
        let resp = self.http.get(&meta_url).bearer_auth(token).send().await.map_err(|e| {
            MediaError::transient(format!("media lookup failed: {}", e.without_url()))
        })?;
        let status = resp.status();
        let body = read_limited(resp, 64 * 1024)
            .await
            .map_err(|e| MediaError::transient(e.to_string()))?;
        if !status.is_success() {
            return Err(MediaError {
                reason: format!("media lookup answered HTTP {status}", status = status.as_u16()),
                permanent: matches!(status.as_u16(), 400 | 403 | 404 | 410),
            });
        }
        let doc: Value = serde_json::from_slice(&body)
            .map_err(|_| MediaError::transient("media lookup answer is not JSON"))?;
        let url = doc
            .get("url")
            .and_then(Value::as_str)
            .ok_or_else(|| MediaError::permanent("media lookup answer has no url"))?;
        let mime = doc.get("mime_type").and_then(Value::as_str).map(str::to_owned);
        let (data, header_type) = self.download(url, Some(token)).await?;
        let ct = mime
            .filter(|t| concrete(t))
            .or(header_type.filter(|t| concrete(t)))
            .unwrap_or_else(|| a.content_type.clone());
        Ok((data, ct))
    }

    async fn download(
        &self,
        url: &str,
        token: Option<&str>,
    ) -> Result<(Vec<u8>, Option<String>), MediaError> {
        let credentials = token.map_or(Credentials::None, Credentials::Bearer);
        match self.media.get(url, credentials, MAX_MEDIA_BYTES).await {
            Ok(fetched) => Ok((fetched.bytes, fetched.content_type)),
            Err(e) => Err(MediaError::from(e)),
        }
    }

    async fn send_meta(
        &self,
        item: &OutboxItem,
        human_agent: bool,
    ) -> Result<Option<String>, SendError> {
        let chunks = send::split_text(&item.text, send::max_chars(item.channel));
        let mut last = None;
        for chunk in chunks {
            let call = match item.channel {
                Channel::Messenger | Channel::Instagram => {
                    let Some(token) = self.cfg.page_access_token.as_ref().map(Secret::expose)
                    else {
                        return Err(SendError::Permanent("no page_access_token configured".into()));
                    };
                    self.page_limit.pace(1, Duration::from_secs(2)).await?;
                    let build = if human_agent {
                        send::messenger_human_agent_call
                    } else {
                        send::messenger_call
                    };
                    build(&self.cfg.graph_api_url, token, &item.recipient.value, &chunk)
                }
                Channel::Whatsapp => {
                    let Some((token, number)) = self.whatsapp() else {
                        return Err(SendError::Permanent(
                            "no whatsapp_token or whatsapp_phone_number_id configured".into(),
                        ));
                    };
                    self.number_limit.pace(1, Duration::from_secs(2)).await?;
                    self.pair_limit.pace(&item.recipient.value, Duration::from_secs(7)).await?;
                    send::whatsapp_call(
                        &self.cfg.graph_api_url,
                        token,
                        number,
                        &item.recipient.value,
                        &chunk,
                    )
                }
                other => {
                    return Err(SendError::Permanent(format!(
                        "the meta connector does not send on {other}"
                    )));
                }
            };
            let answer = post(&self.http, &call).await?;
            last = send::meta_answer(item.channel, &answer)?;
        }
        Ok(last)
    }
}

#[async_trait::async_trait]
impl MediaSource for MetaConnector {
    async fn fetch_media(&self, a: &UnfetchedAttachment) -> Result<FetchedMedia, MediaError> {
        let (bytes, content_type) = self.fetch_one(a).await?;
        Ok(FetchedMedia { bytes, content_type: Some(content_type) })
    }
}

#[async_trait::async_trait]
impl Connector for MetaConnector {
    fn name(&self) -> &'static str {
        "meta"
    }

    fn channels(&self) -> Vec<Channel> {
        let mut out = Vec::new();
        if self.cfg.page_access_token.is_some() {
            out.extend([Channel::Messenger, Channel::Instagram]);
        }
        if self.whatsapp().is_some() {
            out.push(Channel::Whatsapp);
        }
        out
    }

    fn webhooks(&self) -> Vec<Arc<dyn Webhook>> {
        vec![self.webhook.clone()]
    }

    /// Applies delivery receipts as they come and fetches media every few seconds.
    async fn run(&self, cx: ConnectorContext) -> Result<(), ConnectorError> {
        let _ = self.store.set(cx.store.clone());
        let media = self.media_queue();
        let mut rx = self.receipts.lock().await;
        let mut tick = tokio::time::interval(Duration::from_secs(3));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Receipts that came before their row knew the message id (a "sent" status can
        // outrun the answer of the send call); tried again on each tick for a while.
        let mut early: Vec<(DeliveryReceipt, tokio::time::Instant)> = Vec::new();
        loop {
            tokio::select! {
                () = cx.shutdown.cancelled() => return Ok(()),
                r = rx.recv() => {
                    let Some(r) = r else { return Ok(()) };
                    if !self.apply_receipt(&cx.store, &r).await {
                        early.push((r, tokio::time::Instant::now()));
                    }
                }
                _ = tick.tick() => {
                    let mut keep = Vec::new();
                    for (r, since) in early.drain(..) {
                        if !self.apply_receipt(&cx.store, &r).await && since.elapsed() < RECEIPT_PATIENCE {
                            keep.push((r, since));
                        }
                    }
                    early = keep;
                    self.pair_limit.retain_recent();
                    media.run_once(&cx, self).await;
                }
            }
        }
    }

    async fn send(&self, item: &OutboxItem) -> Result<Option<String>, SendError> {
        match self.route(item).await? {
            send::MetaRoute::Free => self.send_meta(item, false).await,
            send::MetaRoute::HumanAgent => self.send_meta(item, true).await,
            send::MetaRoute::Template => self.send_template(item).await,
        }
    }
}

/// `[channels.x]`, with secrets resolved.
#[derive(Debug, Clone)]
pub struct XConfig {
    pub consumer_secret: Secret,
    /// An OAuth 2.0 user-context token of the account: DMs and replies are sent with it.
    pub bearer_token: Option<Secret>,
    /// `https://api.x.com`; a local server in tests.
    pub api_url: String,
}

/// X direct messages and mentions.
pub struct XConnector {
    cfg: XConfig,
    http: reqwest::Client,
    webhook: Arc<XWebhook>,
    /// 200 requests per 15 minutes per user.
    quarter_limit: Pacer,
    /// 1,000 per 24 hours per user.
    day_limit: Pacer,
}

impl XConnector {
    pub fn new(cfg: XConfig) -> XConnector {
        let webhook = Arc::new(XWebhook::new(cfg.consumer_secret.expose().to_owned()));
        XConnector {
            cfg,
            http: http_client(),
            webhook,
            quarter_limit: Pacer::new("x", 200, Duration::from_secs(15 * 60), 200),
            day_limit: Pacer::new("x daily", 1000, Duration::from_secs(24 * 3600), 1000),
        }
    }
}

#[async_trait::async_trait]
impl Connector for XConnector {
    fn name(&self) -> &'static str {
        "x"
    }

    fn channels(&self) -> Vec<Channel> {
        if self.cfg.bearer_token.is_some() { vec![Channel::X] } else { Vec::new() }
    }

    fn webhooks(&self) -> Vec<Arc<dyn Webhook>> {
        vec![self.webhook.clone()]
    }

    async fn send(&self, item: &OutboxItem) -> Result<Option<String>, SendError> {
        let Some(token) = self.cfg.bearer_token.as_ref().map(Secret::expose) else {
            return Err(SendError::Permanent("no bearer_token configured for x".into()));
        };
        let patience = Duration::from_secs(1);
        match send::x_route(item) {
            XRoute::PublicReply { tweet_id, text } => {
                self.day_limit.pace(1, patience).await?;
                self.quarter_limit.pace(1, patience).await?;
                let call = send::x_reply_call(&self.cfg.api_url, token, &tweet_id, &text);
                send::x_answer(&post(&self.http, &call).await?, true)
            }
            XRoute::Dm => {
                let mut last = None;
                for chunk in send::split_text(&item.text, send::max_chars(Channel::X)) {
                    self.day_limit.pace(1, patience).await?;
                    self.quarter_limit.pace(1, patience).await?;
                    let call =
                        send::x_dm_call(&self.cfg.api_url, token, &item.recipient.value, &chunk);
                    last = send::x_answer(&post(&self.http, &call).await?, false)?;
                }
                Ok(last)
            }
        }
    }
}
