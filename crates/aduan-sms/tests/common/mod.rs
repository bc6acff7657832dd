//! What the SMS tests share: a real SQLite store, the real router with the SMS webhooks,
//! the connector's loop and the outbound worker running as in the daemon.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use aduan_connector::{Connector, ConnectorContext, Telemetry, outbound};
use aduan_core::Channel;
use aduan_sms::{SmsConfig, SmsConnector};
use aduan_store::{Store, StoreOptions, TicketFilter, TicketView};
use aduan_web::{AppState, WebConfig};
use axum::Router;
use tokio_util::sync::CancellationToken;

pub struct Env {
    pub app: Router,
    pub store: Store,
    pub telemetry: Arc<Telemetry>,
    pub shutdown: CancellationToken,
    pub attachments: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Env {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub fn sms_config() -> SmsConfig {
    SmsConfig { kannel: None, twilio: None, android: None }
}

/// `configure` fills in the gateways; `public_url` is what Twilio signs.
pub async fn env(public_url: &str, configure: impl FnOnce(&mut SmsConfig)) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("aduan.db").display());
    let store = Store::open(&url, StoreOptions::default()).await.unwrap();
    store.migrate().await.unwrap();
    let attachments = dir.path().join("attachments");
    let mut cfg = sms_config();
    configure(&mut cfg);
    let sms: Arc<dyn Connector> = Arc::new(SmsConnector::new(cfg));
    let telemetry = Arc::new(Telemetry::new());
    let web = WebConfig {
        attachments_dir: attachments.clone(),
        public_url: public_url.to_owned(),
        ..WebConfig::default()
    };
    let app = aduan_web::app(AppState::new(store.clone(), telemetry.clone(), web), sms.webhooks());
    let shutdown = CancellationToken::new();
    let cx = ConnectorContext {
        store: store.clone(),
        telemetry: telemetry.clone(),
        blobs: aduan_connector::BlobStore::new(&attachments, Default::default()),
        shutdown: shutdown.clone(),
    };
    tokio::spawn(aduan_connector::supervise(sms.clone(), cx.clone()));
    let ocfg = outbound::OutboundConfig {
        poll: Duration::from_millis(20),
        backoff: Duration::from_millis(200),
        ..outbound::OutboundConfig::default()
    };
    tokio::spawn(outbound::run(cx, vec![sms], ocfg));
    Env { app, store, telemetry, shutdown, attachments, _dir: dir }
}

impl Env {
    pub async fn sms_tickets(&self) -> Vec<TicketView> {
        let filter =
            TicketFilter { channel: Some(Channel::Sms), limit: 100, ..TicketFilter::default() };
        let page = self.store.tickets(&filter).await.unwrap();
        let mut out = Vec::new();
        for t in page.items {
            out.push(self.store.ticket(t.code).await.unwrap().unwrap());
        }
        out
    }

    /// Waits (up to `secs`) until `pred` holds for the SMS tickets.
    pub async fn wait_tickets(
        &self,
        secs: u64,
        what: &str,
        pred: impl Fn(&[TicketView]) -> bool,
    ) -> Vec<TicketView> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let tickets = self.sms_tickets().await;
            if pred(&tickets) {
                return tickets;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("{what}: never happened; tickets: {tickets:#?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
