//! Wiring: builds the state, binds the listener, spawns the long-lived
//! background tasks (refresher, context writer, Redis memory watch, server)
//! and runs until the shutdown future resolves. Short-lived work is spawned
//! where it is owned: the refresher's loads and updates (`refresh`), the
//! loader's chunk reads (`store::loader`), scans on rayon (`index::coalesce`),
//! the model's inference thread (`embed::providers` via `semsearch_minilm`).

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use tokio::{net::TcpListener, sync::mpsc};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{
    api::{self, auth::AccessKeys, limits::SearchSlots, AppParts, AppState, Limits},
    config::Settings,
    embed::{EmbedError, EmbedderSettings, QueryEmbedder, PROBE_TEXT},
    index::{coalesce::Coalescer, SharedIndex},
    refresh::{RefreshHandle, RefreshSource, RefreshStatus, Refresher},
    router::{self, shards::Shards, RouterSettings, RouterState},
    store::{
        context::{self, ContextWriter},
        link::RedisClient,
        memory::{self as redis_memory, MemoryBudget},
        query_cache::QueryCache,
        watcher,
    },
    telemetry::error_chain,
};
use semsearch_scan::{int8, kernel};

/// A bound, not yet running, semsearch.
pub struct App {
    listener: TcpListener,
    settings: Settings,
    client: RedisClient,
    state: AppState,
    refresher: Refresher,
    context_writer: Option<ContextWriter>,
    changes: mpsc::UnboundedSender<watcher::Change>,
    /// Redis's room for our writes, shared by the context writer and the query cache.
    memory: Arc<MemoryBudget>,
}

impl App {
    /// Binds the listener and prepares the Redis client; connects to nothing yet.
    ///
    /// # Errors
    /// When the forced kernel is unsupported, the address cannot be bound or
    /// the Redis target is unusable.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        // rustls needs one process-wide CryptoProvider for rediss://. We pick
        // `ring` (aws-lc-rs would need cmake and a long C build). Installing
        // fails only when one is already installed (a second App in the same
        // process), which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        kernel::select(settings.kernel).context("choosing the search kernel (SEMSEARCH_KERNEL)")?;
        let listener = TcpListener::bind(settings.bind).await.with_context(|| format!("binding {}", settings.bind))?;
        let client = match &settings.redis_cluster {
            Some(cluster) => RedisClient::cluster(cluster).context("preparing the Redis Cluster client")?,
            None => RedisClient::node(&settings.redis).context("preparing the Redis client")?,
        };
        let memory = MemoryBudget::new(settings.redis_memory.reserve_percent);
        let embedder = match &settings.embedder {
            Some(es) => {
                let redis_tier = (es.cache_ttl_secs > 0).then(|| {
                    QueryCache::new(
                        client.clone(),
                        es.cache_keys.clone(),
                        es.cache_ttl_secs,
                        es.cache_timeout,
                        Arc::clone(&memory),
                    )
                });
                embedder_or_off(es, QueryEmbedder::new(es, redis_tier))?
            }
            None => None,
        };
        // Installed before any request can record into it.
        api::metrics::handle();
        crate::index::spare::set_policy(settings.reload_buffers);
        let index = Arc::new(SharedIndex::new());
        let (contexts, context_writer) = match settings.context_ttl_secs {
            Some(ttl) => {
                let (queue, writer) = context::channel(ttl, Arc::clone(&memory));
                (Some(queue), Some(writer))
            }
            None => (None, None),
        };
        let (changes_tx, changes_rx) = mpsc::unbounded_channel();
        let (reloads_tx, reloads_rx) = mpsc::channel(16);
        let status = Arc::new(RefreshStatus::default());
        let refresher = Refresher {
            client: client.clone(),
            source: RefreshSource {
                redis_display: settings.redis_display().to_owned(),
                keys: settings.keys.clone(),
                load: settings.load.clone(),
                dim: settings.dim,
                scan: settings.scan,
                lexical: Arc::clone(&settings.lexical),
                retry_max: settings.retry_max,
            },
            timing: settings.refresh.clone(),
            shared: Arc::clone(&index),
            contexts: contexts.clone(),
            status: Arc::clone(&status),
            changes: changes_rx,
            reloads: reloads_rx,
        };
        let on_loopback = listener.local_addr().map(|a| a.ip().is_loopback()).unwrap_or(false);
        let access = AccessKeys::new(settings.access.api_keys.clone(), settings.access.admin_keys.clone(), on_loopback);
        let state = AppState::new(AppParts {
            index,
            max_k: settings.max_k,
            max_batch: settings.max_batch,
            budget: settings.budget,
            coalescer: Coalescer::new(settings.max_batch),
            scans: Arc::default(),
            keys: settings.keys.clone(),
            contexts,
            refresh: RefreshHandle { reloads: reloads_tx, status },
            access: Arc::new(access),
            searches: SearchSlots::new(settings.max_concurrent_searches),
            embedder,
        });
        Ok(Self { listener, settings, client, state, refresher, context_writer, changes: changes_tx, memory })
    }

    /// The address actually bound (useful with port 0).
    ///
    /// # Errors
    /// If the OS cannot report it.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The concurrent-search slots, so tests can hold one and see the next search refused.
    pub fn search_slots(&self) -> SearchSlots {
        self.state.searches.clone()
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
        let Self { listener, settings, client, state, refresher, context_writer, changes, memory } = self;
        let cancel = CancellationToken::new();
        info!(addr = %listener.local_addr()?, redis = settings.redis_display(), kernel = kernel::name(), int8_kernel = int8::kernel::active().name(), scan = %settings.scan, "semsearch listening");

        let mut tasks = vec![
            tokio::spawn(api::metrics::run_upkeep(cancel.clone())),
            tokio::spawn(refresher.run(cancel.clone())),
            tokio::spawn(watcher::run(
                client.clone(),
                settings.keys.clone(),
                settings.retry_max,
                changes,
                cancel.clone(),
            )),
        ];
        let query_cache = settings.embedder.as_ref().is_some_and(|e| e.cache_ttl_secs > 0);
        if context_writer.is_some() || query_cache {
            let every = settings.redis_memory.check_every;
            tasks.push(tokio::spawn(redis_memory::run_watch(client.clone(), memory, every, cancel.clone())));
        }
        if let Some(writer) = context_writer {
            tasks.push(tokio::spawn(writer.run(client, settings.keys.clone(), cancel.clone())));
        }
        if let Some(embedder) = state.embedder.clone() {
            tasks.push(tokio::spawn(probe_embedder(embedder, Arc::clone(&state.index), cancel.clone())));
        }

        let limits = Limits {
            max_body_bytes: settings.max_body_bytes,
            request_timeout: settings.request_timeout,
            cors_origins: settings.cors_origins.clone(),
        };
        let embedder = state.embedder.clone();
        let router = api::router(state, limits);
        let served = serve_then_join(listener, router, &settings, shutdown, &cancel, tasks).await;
        if let Some(embedder) = &embedder {
            embedder.provider().close();
            let c = embedder.counts();
            info!(
                lru_hits = c.lru_hits,
                redis_hits = c.redis_hits,
                provider_calls = c.provider_calls,
                redis_errors = c.redis_errors,
                "query-embedding cache totals"
            );
        }
        info!("semsearch stopped");
        served
    }
}

/// Embeds [`PROBE_TEXT`] once at start-up and compares its dimension with the
/// index's once that is loaded. Only warns: the provider may be down now and
/// fine later, and a mismatch is also answered per request (502
/// `embedder_wrong_dimension`), so the service keeps serving vector queries.
async fn probe_embedder(embedder: Arc<QueryEmbedder>, shared: Arc<SharedIndex>, cancel: CancellationToken) {
    let provider = embedder.provider();
    let (kind, host, model) = (provider.kind().as_str(), provider.host(), provider.model());
    let got = tokio::select! {
        () = cancel.cancelled() => return,
        r = provider.embed(PROBE_TEXT) => match r {
            Ok(vector) => vector.len(),
            Err(e) => {
                warn!(provider = kind, host, model, error.message = %e, error.cause_chain = %error_chain(&e), "embedding provider probe failed; text queries fail until it answers");
                return;
            }
        },
    };
    let expected = loop {
        if let Some(index) = shared.current() {
            break index.dim();
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    };
    if expected != 0 && expected != got {
        warn!(provider = kind, host, model, provider_dim = got, index_dim = expected, "embedding provider dimension differs from the index; text queries will answer 502 embedder_wrong_dimension");
    } else {
        info!(provider = kind, host, model, dim = got, "embedding provider ready for text queries");
    }
}

/// A bound, not yet running, `semsearch router` (see [`crate::router`]).
pub struct RouterApp {
    listener: TcpListener,
    settings: Settings,
    client: RedisClient,
    state: RouterState,
    context_writer: Option<ContextWriter>,
    memory: Arc<MemoryBudget>,
}

impl RouterApp {
    /// Binds the listener and prepares the shard client, the embedder and
    /// the Redis client for contexts; connects to nothing yet.
    ///
    /// # Errors
    /// When the address cannot be bound, or the embedder or a client cannot be built.
    pub async fn build(settings: Settings, router: RouterSettings) -> anyhow::Result<Self> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let listener = TcpListener::bind(settings.bind).await.with_context(|| format!("binding {}", settings.bind))?;
        let client = match &settings.redis_cluster {
            Some(cluster) => RedisClient::cluster(cluster).context("preparing the Redis Cluster client")?,
            None => RedisClient::node(&settings.redis).context("preparing the Redis client")?,
        };
        let shards = Shards::new(
            &router.shards,
            router.shard_timeout,
            router.shard_api_key.clone(),
            router.max_shard_answer_bytes,
        )
        .context("preparing the HTTP client for the shards")?;
        let embedder = match &settings.embedder {
            Some(es) => embedder_or_off(es, QueryEmbedder::new(es, None))?,
            None => None,
        };
        let memory = MemoryBudget::new(settings.redis_memory.reserve_percent);
        let (contexts, context_writer) = match settings.context_ttl_secs {
            Some(ttl) => {
                let (queue, writer) = context::channel(ttl, Arc::clone(&memory));
                (Some(queue), Some(writer))
            }
            None => (None, None),
        };
        let state = RouterState {
            shards: Arc::new(shards),
            embedder,
            keys: settings.keys.clone(),
            contexts,
            max_k: settings.max_k,
            max_batch: settings.max_batch,
            budget: settings.budget,
            lexical: Arc::clone(&settings.lexical),
            overhead: Arc::default(),
            checks: Arc::default(),
            slots: SearchSlots::new(settings.max_concurrent_searches),
        };
        Ok(Self { listener, settings, client, state, context_writer, memory })
    }

    /// The address actually bound (useful with port 0).
    ///
    /// # Errors
    /// If the OS cannot report it.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, then drains and stops the context writer.
    ///
    /// # Errors
    /// When the HTTP server fails.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let Self { listener, settings, client, state, context_writer, memory } = self;
        let cancel = CancellationToken::new();
        info!(addr = %listener.local_addr()?, shards = state.shards.count(), "semsearch router listening");
        let mut tasks = vec![tokio::spawn(check_shards_at_start(state.clone(), cancel.clone()))];
        if let Some(writer) = context_writer {
            let every = settings.redis_memory.check_every;
            tasks.push(tokio::spawn(redis_memory::run_watch(client.clone(), memory, every, cancel.clone())));
            tasks.push(tokio::spawn(writer.run(client, settings.keys.clone(), cancel.clone())));
        }
        let on_loopback = listener.local_addr().map(|a| a.ip().is_loopback()).unwrap_or(false);
        let access = AccessKeys::new(settings.access.api_keys.clone(), settings.access.admin_keys.clone(), on_loopback);
        let timeout_ms = settings.request_timeout.as_millis();
        let routes = router::routes(state, Arc::new(access), settings.max_body_bytes)
            // As the service: a slow request gets 503 `timeout` as problem+json, not an empty 408.
            .layer(axum::middleware::map_response(move |res: axum::response::Response| async move {
                if res.status() == axum::http::StatusCode::REQUEST_TIMEOUT {
                    axum::response::IntoResponse::into_response(crate::problem::ApiError::Timeout {
                        limit_ms: timeout_ms,
                    })
                } else {
                    res
                }
            }))
            .layer(tower_http::timeout::TimeoutLayer::with_status_code(
                axum::http::StatusCode::REQUEST_TIMEOUT,
                settings.request_timeout,
            ));
        let served = serve_then_join(listener, routes, &settings, shutdown, &cancel, tasks).await;
        info!("semsearch router stopped");
        served
    }
}

/// Checks which shard each replica is as soon as the router starts (and
/// again every [`START_CHECK_EVERY`] until every shard has answered), so a
/// wrong shard list is in the log, and its replicas out of the calls,
/// before the first search or readiness probe; `/readyz` checks again.
async fn check_shards_at_start(state: RouterState, cancel: CancellationToken) {
    loop {
        let verdict = state.checks.check(&state.shards, state.keys.embedding_prefix()).await;
        if !matches!(verdict, router::verify::ListVerdict::Unavailable { .. }) {
            return;
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(START_CHECK_EVERY) => {}
        }
    }
}

/// How often the start-up check retries while a shard does not answer.
const START_CHECK_EVERY: Duration = Duration::from_secs(2);

/// Serves `routes` until `shutdown`, then cancels the background `tasks`
/// and waits for them: the shared ending of `semsearch serve` and `router`.
async fn serve_then_join(
    listener: TcpListener,
    routes: axum::Router,
    settings: &Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
    cancel: &CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
) -> anyhow::Result<()> {
    let stop = cancel.clone();
    let served = api::server::serve(listener, routes, settings.server, async move {
        shutdown.await;
        stop.cancel();
    })
    .await
    .context("serving HTTP");
    cancel.cancel();
    for task in tasks {
        let _ = task.await;
    }
    served
}

/// The embedder just built, or, when it failed: nothing (text search off,
/// with a warning naming why) if the local model was only found by
/// default, not asked for; otherwise the failure, which stops start-up.
fn embedder_or_off(
    settings: &EmbedderSettings,
    built: Result<QueryEmbedder, EmbedError>,
) -> anyhow::Result<Option<Arc<QueryEmbedder>>> {
    match built {
        Ok(embedder) => Ok(Some(Arc::new(embedder))),
        Err(e) => match settings.implicit_local() {
            Some(local) => {
                warn!(error.cause_chain = %error_chain(&e), "{}", local.load_failure_message(&e));
                Ok(None)
            }
            None => Err(e).context("preparing the embedder (SEMSEARCH_EMBEDDER)"),
        },
    }
}
