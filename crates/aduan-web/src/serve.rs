//! Serving the router on a TCP listener, with the limits that keep one client from holding
//! the daemon (issue 21.6):
//! - a cap on concurrent connections: the accept loop takes a permit before it accepts, so
//!   at most `max_connections` sockets are open. When every permit is taken, the oldest
//!   idle connection (no request being handled: a keep-alive connection between requests,
//!   or one that has not finished sending a request head) is closed to make room, so idle
//!   and half-open connections can't keep `/healthz` or anyone else out; only when every
//!   connection is busy with a request does the loop wait (new clients then wait in the
//!   kernel's backlog, costing no file descriptor of ours);
//! - a header-read timeout (hyper's `header_read_timeout`): a connection that does not
//!   finish a request head within it, including an idle keep-alive connection waiting for
//!   its next request, is closed, so idle and slowloris connections free their permit;
//! - a body-read deadline: the whole body must arrive within `body_read_timeout` of the
//!   head, or reading it fails (the request gets 400 and the connection closes);
//! - a global budget of in-flight body bytes: a request declaring a `Content-Length`
//!   reserves it before a byte of the body is read (503 `server_busy` with `Retry-After`
//!   when the budget has no room, 413 when it alone exceeds the budget); a chunked body
//!   reserves as it arrives and fails once the budget has no room. The reservation is held
//!   until the answer is ready, so bodies being parsed count too.
//!
//! Every refusal is counted in `aduan_http_refused_total{reason}` when [`serve_counted`] is
//! given the process's [`Telemetry`]: `header_timeout` (a connection closed by the
//! header-read timeout, idle keep-alive ones included), `body_timeout`, `connection_cap` (an
//! idle connection closed, or the accept loop made to wait, by the connection cap), `busy`
//! (503), `too_large` (413), `body_budget` (a chunked body failed on the budget).
//!
//! Authentication that needs no body (API keys in `Authorization`, sessions, CSRF headers)
//! is checked by extractors that run before the body is read.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::Frame;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use aduan_connector::Telemetry;

use crate::error::ApiError;

/// Counts a refusal when there is telemetry to count it in.
fn refused(telemetry: Option<&Arc<Telemetry>>, reason: &'static str) {
    if let Some(t) = telemetry {
        t.http_refused(reason);
    }
}

/// The limits of [`serve`].
#[derive(Debug, Clone, Copy)]
pub struct ServeLimits {
    /// A request head (and an idle keep-alive connection's next one) must arrive within this.
    pub header_read_timeout: Duration,
    /// A request body must arrive whole within this of its head.
    pub body_read_timeout: Duration,
    /// Open connections at most.
    pub max_connections: usize,
    /// Request body bytes held at once by all requests together.
    pub max_inflight_body_bytes: u64,
}

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(60),
            max_connections: 512,
            max_inflight_body_bytes: 64 * 1024 * 1024,
        }
    }
}

/// The budget is counted in KiB so that it fits a semaphore's permits.
fn kib(bytes: u64) -> u32 {
    u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX)
}

#[derive(Clone)]
struct BodyGuard {
    budget: Arc<Semaphore>,
    budget_kib: u32,
    timeout: Duration,
    telemetry: Option<Arc<Telemetry>>,
}

/// Reservations of one request, released when its answer is ready.
type Held = Arc<Mutex<Vec<OwnedSemaphorePermit>>>;

/// Adds the body deadline and the in-flight budget to `app` (what [`serve`] does).
/// Refusals are counted in `telemetry` when given.
pub fn guard_bodies(
    app: Router,
    limits: &ServeLimits,
    telemetry: Option<Arc<Telemetry>>,
) -> Router {
    let budget_kib = kib(limits.max_inflight_body_bytes).max(1);
    let guard = BodyGuard {
        budget: Arc::new(Semaphore::new(budget_kib as usize)),
        budget_kib,
        timeout: limits.body_read_timeout,
        telemetry,
    };
    app.layer(axum::middleware::from_fn_with_state(guard, guard_body))
}

fn busy() -> Response {
    let mut resp = ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "server_busy",
        "too many large requests at once; retry in a few seconds",
    )
    .into_response();
    resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    resp
}

async fn guard_body(State(g): State<BodyGuard>, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let chunked = req.headers().contains_key(header::TRANSFER_ENCODING);
    if declared.unwrap_or(0) == 0 && !chunked {
        return next.run(req).await;
    }
    let held: Held = Arc::default();
    let reserved_kib = match declared {
        Some(n) => {
            let want = kib(n);
            if want > g.budget_kib {
                refused(g.telemetry.as_ref(), "too_large");
                return ApiError::too_large(g.budget_kib as usize * 1024).into_response();
            }
            match g.budget.clone().try_acquire_many_owned(want) {
                Ok(p) => {
                    if let Ok(mut h) = held.lock() {
                        h.push(p);
                    }
                    want
                }
                Err(_) => {
                    tracing::warn!(
                        declared_bytes = n,
                        "In-flight body budget full; refusing a request before reading it."
                    );
                    refused(g.telemetry.as_ref(), "busy");
                    return busy();
                }
            }
        }
        None => 0,
    };
    let (parts, body) = req.into_parts();
    let body = Body::new(Guarded {
        inner: body,
        deadline: Box::pin(tokio::time::sleep(g.timeout)),
        budget: g.budget.clone(),
        held: held.clone(),
        reserved: u64::from(reserved_kib) * 1024,
        read: 0,
        failed: false,
        telemetry: g.telemetry.clone(),
    });
    let resp = next.run(Request::from_parts(parts, body)).await;
    drop(held);
    resp
}

/// A request body with a deadline, counted against the in-flight budget.
struct Guarded {
    inner: Body,
    deadline: Pin<Box<tokio::time::Sleep>>,
    budget: Arc<Semaphore>,
    held: Held,
    reserved: u64,
    read: u64,
    failed: bool,
    telemetry: Option<Arc<Telemetry>>,
}

#[derive(Debug, thiserror::Error)]
enum BodyError {
    #[error("the request body did not arrive within the body-read timeout")]
    Timeout,
    #[error("the in-flight body budget is full")]
    Budget,
}

impl http_body::Body for Guarded {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::BoxError>>> {
        let this = self.get_mut();
        if this.failed {
            return Poll::Ready(None);
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.failed = true;
            tracing::info!("A request body was not sent in time; closing.");
            refused(this.telemetry.as_ref(), "body_timeout");
            return Poll::Ready(Some(Err(BodyError::Timeout.into())));
        }
        let frame = match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => return Poll::Pending,
        };
        if let Some(data) = frame.data_ref() {
            this.read += data.len() as u64;
            if this.read > this.reserved {
                let more = kib(this.read - this.reserved);
                match this.budget.clone().try_acquire_many_owned(more) {
                    Ok(p) => {
                        this.reserved += u64::from(more) * 1024;
                        if let Ok(mut h) = this.held.lock() {
                            h.push(p);
                        }
                    }
                    Err(_) => {
                        this.failed = true;
                        tracing::warn!("In-flight body budget full; failing a chunked body.");
                        refused(this.telemetry.as_ref(), "body_budget");
                        return Poll::Ready(Some(Err(BodyError::Budget.into())));
                    }
                }
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.failed || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The open connections, for choosing one to close when the cap is reached.
#[derive(Default)]
struct Registry {
    next_id: std::sync::atomic::AtomicU64,
    open: Mutex<std::collections::HashMap<u64, Entry>>,
}

struct Entry {
    since: std::time::Instant,
    /// Requests of this connection being handled now.
    busy: Arc<std::sync::atomic::AtomicUsize>,
    evict: CancellationToken,
}

impl Registry {
    fn add(&self) -> (u64, Arc<std::sync::atomic::AtomicUsize>, CancellationToken) {
        use std::sync::atomic::Ordering;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let busy = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let evict = CancellationToken::new();
        let entry =
            Entry { since: std::time::Instant::now(), busy: busy.clone(), evict: evict.clone() };
        if let Ok(mut open) = self.open.lock() {
            open.insert(id, entry);
        }
        (id, busy, evict)
    }

    fn remove(&self, id: u64) {
        if let Ok(mut open) = self.open.lock() {
            open.remove(&id);
        }
    }

    /// Closes the oldest connection without a request in hand; whether there was one.
    fn evict_oldest_idle(&self) -> bool {
        use std::sync::atomic::Ordering;
        let Ok(mut open) = self.open.lock() else { return false };
        let oldest = open
            .iter()
            .filter(|(_, e)| e.busy.load(Ordering::Acquire) == 0)
            .min_by_key(|(_, e)| e.since)
            .map(|(id, _)| *id);
        match oldest.and_then(|id| open.remove(&id)) {
            Some(e) => {
                e.evict.cancel();
                true
            }
            None => false,
        }
    }
}

/// Counts a request of a connection as being handled while it lives.
struct Busy(Arc<std::sync::atomic::AtomicUsize>);

impl Busy {
    fn new(n: &Arc<std::sync::atomic::AtomicUsize>) -> Busy {
        n.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Busy(n.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// Serves `app` on `listener` until `shutdown`, within `limits`; then stops accepting,
/// lets the open connections finish their requests and returns.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServeLimits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    serve_counted(listener, app, limits, None, shutdown).await
}

/// [`serve`], counting refusals in `telemetry` (`aduan_http_refused_total{reason}`).
pub async fn serve_counted(
    listener: TcpListener,
    app: Router,
    limits: ServeLimits,
    telemetry: Option<Arc<Telemetry>>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = guard_bodies(app, &limits, telemetry.clone());
    let connections = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(64)
        .keep_alive_interval(limits.header_read_timeout)
        .keep_alive_timeout(limits.header_read_timeout);
    let tracker = TaskTracker::new();
    let registry = Arc::new(Registry::default());
    loop {
        let permit = match connections.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                refused(telemetry.as_ref(), "connection_cap");
                if registry.evict_oldest_idle() {
                    tracing::debug!("Connection cap reached; closed the oldest idle connection.");
                } else {
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "Connection cap reached with every connection busy; waiting."
                    );
                }
                tokio::select! {
                    p = connections.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                    () = shutdown.cancelled() => break,
                }
            }
        };
        let (tcp, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(error) => {
                    // EMFILE and friends: wait a little instead of spinning.
                    tracing::warn!(%error, "Accepting a connection failed.");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let _ = tcp.set_nodelay(true);
        let app = app.clone();
        let builder = builder.clone();
        let stop = shutdown.clone();
        let (id, busy, evict) = registry.add();
        let registry = registry.clone();
        let telemetry = telemetry.clone();
        tracker.spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                let handling = Busy::new(&busy);
                let mut req = req.map(Body::new);
                // The client address feeds the per-address limits.
                req.extensions_mut().insert(ConnectInfo(addr));
                let app = app.clone();
                async move {
                    let resp = match app.oneshot(req).await {
                        Ok(r) => r,
                        Err(never) => match never {},
                    };
                    drop(handling);
                    Ok::<_, Infallible>(resp)
                }
            });
            let conn = builder.serve_connection(TokioIo::new(tcp), service);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(error) = r {
                        if error.downcast_ref::<hyper::Error>().is_some_and(hyper::Error::is_timeout) {
                            refused(telemetry.as_ref(), "header_timeout");
                        }
                        tracing::debug!(%error, "A connection ended with an error.");
                    }
                }
                () = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
                // Dropping an idle connection closes its socket.
                () = evict.cancelled() => {}
            }
            registry.remove(id);
        });
    }
    drop(listener);
    tracker.close();
    tracker.wait().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use axum::routing::post;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;

    /// A server with tight limits whose one route reads the whole body.
    async fn start(limits: ServeLimits) -> (SocketAddr, Arc<Telemetry>, CancellationToken) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let telemetry = Arc::new(Telemetry::new());
        let stop = CancellationToken::new();
        let app =
            Router::new().route("/up", post(|body: Bytes| async move { body.len().to_string() }));
        tokio::spawn(serve_counted(listener, app, limits, Some(telemetry.clone()), stop.clone()));
        (addr, telemetry, stop)
    }

    fn count(t: &Telemetry, reason: &str) -> u64 {
        let needle = format!("aduan_http_refused_total{{reason=\"{reason}\"}} ");
        let text = t.render();
        let line =
            text.lines().find(|l| l.starts_with(&needle)).unwrap_or_else(|| panic!("{text}"));
        line[needle.len()..].trim().parse().unwrap()
    }

    /// Sends `head` (and no body), returns the status line of the answer.
    async fn status_of(addr: SocketAddr, head: &str) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(head.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 512];
        let n = s.read(&mut buf).await.unwrap();
        String::from_utf8_lossy(&buf[..n]).lines().next().unwrap_or("").to_owned()
    }

    async fn eventually(t: &Telemetry, reason: &str, want: u64) {
        for _ in 0..100 {
            if count(t, reason) >= want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(count(t, reason), want, "{reason}");
    }

    #[tokio::test]
    async fn every_refusal_is_counted_by_reason() {
        let limits = ServeLimits {
            header_read_timeout: Duration::from_millis(300),
            body_read_timeout: Duration::from_millis(300),
            max_connections: 3,
            max_inflight_body_bytes: 1024 * 1024,
        };
        let (addr, t, stop) = start(limits).await;
        for reason in aduan_connector::HTTP_REFUSALS {
            assert_eq!(count(&t, reason), 0, "{reason}");
        }

        // 413: one body over the whole budget, refused before it is sent.
        let head = "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 2097152\r\n\r\n";
        assert!(status_of(addr, head).await.contains("413"));
        assert_eq!(count(&t, "too_large"), 1);

        // 503: a held 800 KiB upload leaves no room for a second one.
        let mut held = TcpStream::connect(addr).await.unwrap();
        held.write_all(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 819200\r\n\r\nabc")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let head = "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 819200\r\n\r\n";
        assert!(status_of(addr, head).await.contains("503"));
        assert_eq!(count(&t, "busy"), 1);

        // The held upload never finishes: the body deadline cuts it.
        eventually(&t, "body_timeout", 1).await;
        drop(held);

        // A request head that never ends is closed by the header-read timeout.
        let mut slow = TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"POST /up HTTP/1.1\r\nHost:").await.unwrap();
        eventually(&t, "header_timeout", 1).await;
        drop(slow);

        // More connections than the cap: idle ones are closed to make room, and counted.
        let mut idle = Vec::new();
        for _ in 0..5 {
            idle.push(TcpStream::connect(addr).await.unwrap());
        }
        eventually(&t, "connection_cap", 1).await;
        stop.cancel();
    }
}
