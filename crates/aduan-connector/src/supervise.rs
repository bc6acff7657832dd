//! Keeps a connector running: restarts it with backoff when it fails, and — for a poller
//! that must run on one instance at a time — only while this instance holds its lease.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::{Connector, ConnectorContext, ConnectorError};

/// How long a lease lasts without renewal: a dead holder's poller moves to another instance
/// within this time plus one [`LEASE_RENEW`].
pub const LEASE_TTL: Duration = Duration::from_secs(10);
/// How often the holder renews its lease, and how often the others try to take it.
pub const LEASE_RENEW: Duration = Duration::from_secs(2);
/// How long a poller that lost its lease may take to stop by itself before it is dropped.
const LEASE_STOP_GRACE: Duration = Duration::from_secs(5);

/// This process's name as a lease holder: host, process id and start time, so that a
/// restarted process on the same host is a different holder.
pub fn instance_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_default();
        let host = if host.is_empty() { "localhost".to_owned() } else { host };
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() % 1_000_000_000_000)
            .unwrap_or(0);
        format!("{host}:{}:{started:x}", std::process::id())
    })
}

/// The restart delay of a failed connector: a second, doubling up to five minutes.
const RESTART_BACKOFF: crate::Backoff =
    crate::Backoff::new(Duration::from_secs(1), Duration::from_secs(300));

/// Runs `connector` until shutdown. A transient failure restarts it after a backoff that
/// doubles up to five minutes and resets once it has run for a while; a fatal one stops it.
/// A connector with an [`exclusive`](Connector::exclusive) lease runs only while this
/// instance holds that lease; the others stand by and take over when it expires.
pub async fn supervise(connector: Arc<dyn Connector>, cx: ConnectorContext) {
    let name = connector.name();
    let lease = connector.exclusive();
    let mut backoff = RESTART_BACKOFF.start();
    loop {
        if let Some(lease) = &lease
            && !take_lease(&cx, name, lease).await
        {
            return;
        }
        for ch in connector.channels() {
            cx.telemetry.connector_up(ch, true);
        }
        let started = Instant::now();
        let (result, lost) = match &lease {
            None => (connector.run(cx.clone()).await, false),
            Some(lease) => run_holding(&*connector, &cx, lease).await,
        };
        for ch in connector.channels() {
            cx.telemetry.connector_up(ch, false);
        }
        if let Some(lease) = &lease {
            cx.telemetry.lease_held(lease, false);
            if let Err(error) = cx.store.lease_release(lease, instance_id()).await {
                tracing::warn!(connector = name, %error, "Could not release the lease; it will expire.");
            }
        }
        if cx.shutdown.is_cancelled() {
            return;
        }
        if lost {
            // Whatever the stopped run returned, the poller goes on wherever the lease is.
            tracing::warn!(connector = name, "Lease lost; standing by for it.");
            backoff.reset();
            continue;
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
                tracing::warn!(connector = name, %error, backoff_secs = backoff.current().as_secs(), "Connector failed; restarting after backoff.");
            }
        }
        if started.elapsed() > Duration::from_secs(60) {
            backoff.reset();
        }
        tokio::select! {
            () = cx.shutdown.cancelled() => return,
            () = tokio::time::sleep(backoff.next_delay()) => {}
        }
    }
}

/// Waits until this instance holds `lease`. `false`: shutdown came first.
async fn take_lease(cx: &ConnectorContext, name: &str, lease: &str) -> bool {
    let mut said = false;
    loop {
        match cx.store.lease_acquire(lease, instance_id(), LEASE_TTL).await {
            Ok(true) => {
                cx.telemetry.lease_held(lease, true);
                tracing::info!(
                    connector = name,
                    lease,
                    holder = instance_id(),
                    "Lease taken; this instance runs the poller."
                );
                return true;
            }
            Ok(false) if !said => {
                said = true;
                tracing::info!(
                    connector = name,
                    lease,
                    "Another instance holds the lease; standing by."
                );
            }
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(connector = name, lease, %error, "Could not try the lease.")
            }
        }
        tokio::select! {
            () = cx.shutdown.cancelled() => return false,
            () = tokio::time::sleep(LEASE_RENEW) => {}
        }
    }
}

/// Runs the connector under `lease`, renewing it; stops it when the lease is lost (another
/// holder took it) or could not be renewed for half its time (this instance may be cut off
/// from the database). Returns the run's result and whether the lease was lost.
async fn run_holding(
    connector: &dyn Connector,
    cx: &ConnectorContext,
    lease: &str,
) -> (Result<(), ConnectorError>, bool) {
    let stop = cx.shutdown.child_token();
    let inner = ConnectorContext { shutdown: stop.clone(), ..cx.clone() };
    let run = connector.run(inner);
    tokio::pin!(run);
    let mut renewed = Instant::now();
    let mut tick = tokio::time::interval(LEASE_RENEW);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            r = &mut run => return (r, false),
            _ = tick.tick() => {}
        }
        match cx.store.lease_acquire(lease, instance_id(), LEASE_TTL).await {
            Ok(true) => {
                renewed = Instant::now();
                continue;
            }
            Ok(false) => {
                tracing::warn!(
                    connector = connector.name(),
                    lease,
                    "Another instance took the lease; stopping the poller."
                );
            }
            Err(error) if renewed.elapsed() < LEASE_TTL / 2 => {
                tracing::warn!(connector = connector.name(), lease, %error, "Could not renew the lease; trying again.");
                continue;
            }
            Err(error) => {
                tracing::warn!(connector = connector.name(), lease, %error, "Could not renew the lease in time; stopping the poller.");
            }
        }
        stop.cancel();
        let result = tokio::time::timeout(LEASE_STOP_GRACE, &mut run).await.unwrap_or(Ok(()));
        return (result, true);
    }
}
