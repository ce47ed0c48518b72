//! Wiring: builds the state, binds the listener, spawns background tasks and
//! runs until the shutdown future resolves. The only place tasks are spawned.

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{
    api::{self, AppState, Limits},
    config::Settings,
    index::SharedIndex,
    search::{coalesce::Coalescer, kernel},
    store::loader,
};

/// A bound, not yet running, semsearch.
pub struct App {
    listener: TcpListener,
    settings: Settings,
    client: redis::Client,
    state: AppState,
}

impl App {
    /// Binds the listener and prepares the Redis client; connects to nothing yet.
    ///
    /// # Errors
    /// When the forced kernel is unsupported, the address cannot be bound or
    /// the Redis target is unusable.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        kernel::select(settings.kernel).context("choosing the search kernel (SEMSEARCH_KERNEL)")?;
        let listener = TcpListener::bind(settings.bind).await.with_context(|| format!("binding {}", settings.bind))?;
        let client = redis::Client::open(settings.redis.info.clone()).context("preparing the Redis client")?;
        let state = AppState {
            index: Arc::new(SharedIndex::new()),
            max_k: settings.max_k,
            max_batch: settings.max_batch,
            coalescer: Coalescer::new(settings.max_batch),
        };
        Ok(Self { listener, settings, client, state })
    }

    /// The address actually bound (useful with port 0).
    ///
    /// # Errors
    /// If the OS cannot report it.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The shared index, for tests and embedding applications.
    pub fn shared_index(&self) -> Arc<SharedIndex> {
        Arc::clone(&self.state.index)
    }

    /// Serves until `shutdown` resolves, then drains in-flight requests,
    /// stops background tasks and returns.
    ///
    /// # Errors
    /// When the HTTP server fails.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let Self { listener, settings, client, state } = self;
        let cancel = CancellationToken::new();
        info!(addr = %listener.local_addr()?, redis = settings.redis.display(), kernel = kernel::name(), "semsearch listening");

        let loader = tokio::spawn(load_until_ready(client, settings.clone(), Arc::clone(&state.index), cancel.clone()));

        let limits = Limits { max_body_bytes: settings.max_body_bytes, request_timeout: settings.request_timeout };
        let router = api::router(state, limits);
        let stop = cancel.clone();
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                shutdown.await;
                stop.cancel();
            })
            .await
            .context("serving HTTP")?;
        cancel.cancel();
        let _ = loader.await;
        info!("semsearch stopped");
        Ok(())
    }
}

/// First load, retried with capped exponential backoff until it succeeds or
/// the service stops. A transient Redis error never ends the process.
async fn load_until_ready(
    client: redis::Client,
    settings: Settings,
    shared: Arc<SharedIndex>,
    cancel: CancellationToken,
) {
    let mut delay = Duration::from_millis(100);
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        let result = async {
            let conn = loader::connect(&client, &settings.load).await?;
            loader::load_all(&conn, &settings.keys, &settings.load, settings.dim).await
        };
        let outcome = tokio::select! {
            () = cancel.cancelled() => return,
            r = result => r,
        };
        match outcome {
            Ok(index) => {
                let index = shared.replace(index);
                info!(version = index.version(), docs = index.len(), "index ready");
                return;
            }
            Err(e) => {
                let why = format!(
                    "attempt {attempt} to load from {} failed: {e}: {}",
                    settings.redis.display(),
                    error_chain(&e)
                );
                warn!(error.message = %e, error.cause_chain = %error_chain(&e), attempt, retry_in_ms = delay.as_millis() as u64, "loading embeddings failed; will retry");
                shared.set_failure(Some(why));
            }
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(settings.retry_max);
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = Vec::new();
    let mut source = e.source();
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    parts.join(": ")
}
