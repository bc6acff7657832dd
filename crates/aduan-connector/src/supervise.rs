//! Keeps a connector running: restarts it with backoff when it fails.

use std::sync::Arc;
use std::time::Duration;

use crate::{Connector, ConnectorContext, ConnectorError};

/// Runs `connector` until shutdown. A transient failure restarts it after a backoff that
/// doubles up to five minutes and resets once it has run for a while; a fatal one stops it.
pub async fn supervise(connector: Arc<dyn Connector>, cx: ConnectorContext) {
    let name = connector.name();
    let mut backoff = Duration::from_secs(1);
    loop {
        for ch in connector.channels() {
            cx.telemetry.connector_up(ch, true);
        }
        let started = std::time::Instant::now();
        let result = connector.run(cx.clone()).await;
        for ch in connector.channels() {
            cx.telemetry.connector_up(ch, false);
        }
        if cx.shutdown.is_cancelled() {
            return;
        }
        match result {
            Ok(()) => {
                tracing::warn!(connector = name, "Connector stopped by itself; restarting.");
            }
            Err(ConnectorError::Fatal(error)) => {
                tracing::error!(connector = name, %error, "Connector failed and will not be restarted.");
                return;
            }
            Err(ConnectorError::Transient(error)) => {
                tracing::warn!(connector = name, %error, backoff_secs = backoff.as_secs(), "Connector failed; restarting after backoff.");
            }
        }
        if started.elapsed() > Duration::from_secs(60) {
            backoff = Duration::from_secs(1);
        }
        tokio::select! {
            () = cx.shutdown.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(300));
    }
}
