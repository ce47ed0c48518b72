//! The accept loop: HTTP/1 and HTTP/2 connections served with bounds that
//! `axum::serve` does not give us (issue 16):
//!
//! - a header-read timeout: a connection that does not deliver a complete
//!   request head within it is closed. hyper starts this timer whenever it
//!   waits for a request head, so it also closes idle keep-alive
//!   connections; without a timer set, half-sent requests were held forever;
//! - a connection cap: at the cap we stop accepting (the kernel's backlog
//!   holds the rest) instead of running out of file descriptors;
//! - a shutdown deadline: on shutdown we stop accepting, let open
//!   connections finish their requests, and drop whatever is still open
//!   after the grace period, so a half-sent request cannot keep the process
//!   alive after SIGTERM.

use std::{future::Future, io, sync::Arc, time::Duration};

use axum::Router;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::{conn::auto, graceful::GracefulShutdown},
    service::TowerToHyperService,
};
use tokio::{net::TcpListener, sync::Semaphore, task::JoinSet};
use tracing::{debug, info, warn};

/// Connection-level bounds, as the configuration layer builds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerSettings {
    /// Longest wait for a complete request head (and longest idle keep-alive).
    pub header_read_timeout: Duration,
    /// Connections open at once; more wait in the listen backlog.
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
    builder.http2().timer(TokioTimer::new()).keep_alive_interval(Some(settings.header_read_timeout));
    let slots = Arc::new(Semaphore::new(settings.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
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
        let service = TowerToHyperService::new(router.clone());
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned();
        let conn = graceful.watch(conn);
        connections.spawn(async move {
            if let Err(e) = conn.await {
                debug!(error.message = %e, "connection closed with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(settings.shutdown_grace) => {
            info!(open = connections.len(), grace_ms = settings.shutdown_grace.as_millis() as u64, "dropping connections still open after the shutdown grace period");
        }
    }
    connections.shutdown().await;
    Ok(())
}
