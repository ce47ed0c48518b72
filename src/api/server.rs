//! The accept loop: HTTP/1 and HTTP/2 connections served with bounds that
//! `axum::serve` does not give us (issues 16 and 22):
//!
//! - a head deadline, whatever the protocol: a connection that has no
//!   request in flight for `header_read_timeout` is closed. It starts at
//!   accept, so it covers the first bytes (hyper-util's HTTP/1-vs-2
//!   detection reads them with no timer: a silent socket was held forever),
//!   a slow HTTP/2 preface, a request head that never completes, an idle
//!   keep-alive connection and an HTTP/2 connection that only answers PINGs.
//!   hyper's own HTTP/1 header-read timer stays on as a second guard;
//! - a connection cap: at the cap we stop accepting (the kernel's backlog
//!   holds the rest) instead of running out of file descriptors;
//! - a request cap: HTTP/1 requests and HTTP/2 streams in flight, across
//!   all connections, at most `max_connections` (an HTTP/1 connection
//!   carries one at a time, so HTTP/2 cannot multiply the bound); one more
//!   is answered 503 `overloaded` at once. Each HTTP/2 connection also
//!   advertises at most [`MAX_H2_STREAMS`] concurrent streams;
//! - a shutdown deadline: on shutdown we stop accepting, let open
//!   connections finish their requests, and drop whatever is still open
//!   after the grace period, so a half-sent request cannot keep the process
//!   alive after SIGTERM.

use std::{
    convert::Infallible,
    future::Future,
    io,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use axum::{body::Body, response::IntoResponse, Router};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto,
};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{Notify, OwnedSemaphorePermit, Semaphore},
    task::JoinSet,
    time::Instant,
};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use tracing::{debug, info, warn};

use super::head_errors::ProblemHeads;
use crate::problem::ApiError;

/// Connection-level bounds, as the configuration layer builds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerSettings {
    /// Longest time a connection may go without a request in flight: from
    /// accept to its first complete request head, and between requests
    /// (HTTP/1 keep-alive, HTTP/2 idle).
    pub header_read_timeout: Duration,
    /// Connections open at once; more wait in the listen backlog. Also the
    /// bound on requests in flight (HTTP/2 streams included).
    pub max_connections: usize,
    /// After shutdown starts, how long open connections may take to finish.
    pub shutdown_grace: Duration,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 1024,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Pause after a failed accept (EMFILE and friends) before trying again,
/// so a descriptor shortage does not become a busy loop.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Concurrent streams one HTTP/2 connection may open (hyper's default is
/// 200). Our clients send one question at a time per stream; 32 keeps one
/// connection from taking a large share of the request cap at once.
pub const MAX_H2_STREAMS: u32 = 32;

/// Largest HTTP/2 header list we accept (the same 64 KiB order as hyper's
/// HTTP/1 read buffer), so a HEADERS flood cannot grow memory.
const MAX_H2_HEADER_LIST_BYTES: u32 = 64 * 1024;

/// What a connection's requests tell its watchdog: how many are in flight
/// and when the last one ended (or the connection opened).
#[derive(Debug)]
struct Activity {
    in_flight: AtomicUsize,
    idle_since: Mutex<Instant>,
    /// Woken when a request ends, so the watchdog re-arms its deadline.
    ended: Notify,
}

impl Activity {
    fn new() -> Arc<Self> {
        Arc::new(Self { in_flight: AtomicUsize::new(0), idle_since: Mutex::new(Instant::now()), ended: Notify::new() })
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(Arc::clone(self))
    }

    /// When the connection has been idle for `timeout`, or `None` while a
    /// request is in flight.
    fn idle_deadline(&self, timeout: Duration) -> Option<Instant> {
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return None;
        }
        let since = *self.idle_since.lock().unwrap_or_else(|p| p.into_inner());
        Some(since + timeout)
    }
}

/// One request in flight on a connection; dropped when its response body
/// has been sent (or dropped), which restarts the idle clock.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        *self.0.idle_since.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.0.ended.notify_one();
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then drains.
///
/// # Errors
/// Never for a single connection (those are logged); the `io::Result` is
/// for the caller's `?`, as with `axum::serve`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    settings: ServerSettings,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(settings.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_H2_STREAMS)
        .max_header_list_size(MAX_H2_HEADER_LIST_BYTES)
        // A peer that stops acknowledging PINGs is gone: close it.
        .keep_alive_interval(Some(settings.header_read_timeout))
        .keep_alive_timeout(settings.header_read_timeout);
    let max = settings.max_connections.max(1);
    let slots = Arc::new(Semaphore::new(max));
    let requests = Arc::new(Semaphore::new(max));
    let stopping = CancellationToken::new();
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        while connections.try_join_next().is_some() {}
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = Arc::clone(&slots).acquire_owned() => permit.expect("the semaphore is never closed"),
        };
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    warn!(error.message = %e, "accept failed; pausing");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
        };
        let connection = Connection {
            builder: builder.clone(),
            router: router.clone(),
            requests: Arc::clone(&requests),
            max_requests: max,
            idle_timeout: settings.header_read_timeout,
            stopping: stopping.clone(),
        };
        connections.spawn(async move {
            connection.serve(stream).await;
            drop(permit);
        });
    }
    drop(listener);
    stopping.cancel();
    let drained = async { while connections.join_next().await.is_some() {} };
    tokio::select! {
        () = drained => {}
        () = tokio::time::sleep(settings.shutdown_grace) => {
            info!(open = connections.len(), grace_ms = settings.shutdown_grace.as_millis() as u64, "dropping connections still open after the shutdown grace period");
        }
    }
    connections.shutdown().await;
    Ok(())
}

/// One accepted connection and what it shares with the others.
struct Connection {
    builder: auto::Builder<TokioExecutor>,
    router: Router,
    /// Requests in flight across all connections (HTTP/2 streams included).
    requests: Arc<Semaphore>,
    max_requests: usize,
    idle_timeout: Duration,
    stopping: CancellationToken,
}

impl Connection {
    /// Serves the connection until the peer closes it, it stays idle for
    /// `idle_timeout`, or the server stops.
    async fn serve(self, stream: TcpStream) {
        let activity = Activity::new();
        let service = {
            let (router, requests, activity) = (self.router, self.requests, Arc::clone(&activity));
            let max_requests = self.max_requests;
            hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let permit = Arc::clone(&requests).try_acquire_owned();
                let in_flight = activity.begin();
                let router = router.clone();
                async move { Ok::<_, Infallible>(answer(router, req, permit, in_flight, max_requests).await) }
            })
        };
        let conn = self.builder.serve_connection_with_upgrades(TokioIo::new(ProblemHeads::new(stream)), service);
        tokio::pin!(conn);
        let mut closing = false;
        loop {
            let deadline = activity.idle_deadline(self.idle_timeout);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        debug!(error.message = %e, "connection closed with an error");
                    }
                    return;
                }
                () = self.stopping.cancelled(), if !closing => {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
                () = idle_deadline(deadline, &activity) => {
                    // Re-checked: a request may have started while we slept.
                    if activity.idle_deadline(self.idle_timeout).is_some_and(|d| d <= Instant::now()) {
                        if closing {
                            // Asked to close and still open one idle period later: drop it.
                            return;
                        }
                        debug!(idle_ms = self.idle_timeout.as_millis() as u64, "closing a connection with no request in flight");
                        closing = true;
                        conn.as_mut().graceful_shutdown();
                        // The next idle period bounds the goodbye; reset the clock for it.
                        *activity.idle_since.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
                    }
                }
            }
        }
    }
}

/// Sleeps until `deadline`; without one (a request is in flight), until a
/// request ends and the deadline can be set again.
async fn idle_deadline(deadline: Option<Instant>, activity: &Activity) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => activity.ended.notified().await,
    }
}

/// Requests refused because every request slot was taken, by every server
/// of this process: node and router copy it into their `/metrics`
/// (`semsearch_requests_refused_total`); the router has no recorder.
static REQUESTS_REFUSED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// See [`REQUESTS_REFUSED`].
pub fn requests_refused() -> u64 {
    REQUESTS_REFUSED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Runs one request through `router`, or refuses it when every request
/// slot is taken. The slot and the in-flight mark live until the response
/// body is dropped (sent or abandoned).
async fn answer(
    router: Router,
    req: hyper::Request<Incoming>,
    permit: Result<OwnedSemaphorePermit, tokio::sync::TryAcquireError>,
    in_flight: InFlight,
    max_requests: usize,
) -> axum::response::Response {
    let Ok(permit) = permit else {
        REQUESTS_REFUSED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return ApiError::RequestsBusy { limit: max_requests }.into_response();
    };
    let response = match router.oneshot(req.map(Body::new)).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let held = (permit, in_flight);
    response.map(move |body| {
        Body::new(body.map_frame(move |frame| {
            let _ = &held;
            frame
        }))
    })
}
