//! The question embedders behind one [`Provider`]: the in-process MiniLM
//! model (`local`, the default when its files are present) and three HTTP
//! protocols (`tei`, `hf`, `openai`).
//!
//! Owns the wire protocols, timeouts, retries and the concurrency limit. It
//! does not cache, normalise text or know the index dimension (see
//! `embed::embedder` and `query::resolve`).
//!
//! | kind     | request                                              | response                          |
//! |----------|------------------------------------------------------|-----------------------------------|
//! | `tei`    | `POST {url}/embed` `{"inputs": [text]}`              | `[[f32…]]`                        |
//! | `hf`     | `POST {url}/models/{model}` `{"inputs": text}`       | `[f32…]` or `[[f32…]]`            |
//! | `openai` | `POST {url}/v1/embeddings` `{"input": [text], "model"}` | `{"data": [{"embedding", "index"}]}` |
//!
//! Retries: only 429 and 5xx answers are retried, at most `max_retries` times.
//! The wait is the provider's `Retry-After` (delta-seconds) when it sends one,
//! else exponential backoff from `retry_base` capped at `retry_max`; a
//! `Retry-After` longer than `retry_max` ends the attempts at once, because
//! waiting less than asked would only earn another 429. Timeouts and refused
//! connections are not retried: the caller is waiting, and the request timeout
//! already bounds how long one attempt may take.

use std::{
    fmt,
    sync::Arc,
    time::{Duration, Instant},
};

use reqwest::{header::RETRY_AFTER, StatusCode};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Semaphore;
use tracing::debug;

use semsearch_minilm::{pool::PoolError, Class, Embedding, InferencePool, LocalEmbedder, TokenizeError, MODEL_NAME};

use super::{EmbedError, EmbedderSettings, HttpProtocol, ProviderSettings};
use crate::secret::Secret;

/// Which protocol the embedding service speaks (`SEMSEARCH_EMBEDDER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProviderKind {
    /// In process: all-MiniLM-L6-v2 from SEMSEARCH_MODEL_DIR (see `semsearch_minilm`).
    Local,
    /// Hugging Face text-embeddings-inference (`/embed`).
    Tei,
    /// Hugging Face Inference API, feature-extraction task.
    Hf,
    /// OpenAI-compatible `/v1/embeddings` (OpenAI, Ollama, vLLM, TEI).
    Openai,
}

impl ProviderKind {
    /// The name used in config, logs and error messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Tei => "tei",
            Self::Hf => "hf",
            Self::Openai => "openai",
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When and how often to try again.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub base: Duration,
    pub max: Duration,
}

impl RetryPolicy {
    /// The wait before retry number `retry` (0-based), or `None` to give up.
    /// See the module docs for the rule.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Option<Duration> {
        if retry >= self.max_retries {
            return None;
        }
        match retry_after {
            Some(asked) if asked > self.max => None,
            Some(asked) => Some(asked),
            None => Some(self.base.saturating_mul(2_u32.saturating_pow(retry)).min(self.max)),
        }
    }
}

/// A configured embedder: the in-process model or an HTTP service. Cheap to
/// share behind an `Arc`.
pub struct Provider {
    kind: ProviderKind,
    model: String,
    backend: Backend,
}

enum Backend {
    Http(Box<Http>),
    /// The bounded inference pool over the loaded model (off the tokio workers).
    Local(Local),
}

/// The in-process model's pool and how long a question may wait for it.
struct Local {
    pool: Arc<InferencePool>,
    /// Longest wait for a question's pass to start; then 503 `overloaded`.
    question_wait: Duration,
}

/// An embedding service reached over HTTP.
struct Http {
    endpoint: reqwest::Url,
    api_key: Option<Secret>,
    http: reqwest::Client,
    /// Requests in flight (including their retry waits) towards the provider:
    /// protects it, and our rate limit with it, from a burst of questions.
    in_flight: Semaphore,
    retry: RetryPolicy,
    request_timeout: Duration,
}

impl fmt::Debug for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Provider")
            .field("kind", &self.kind)
            .field("host", &self.host())
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
}

impl Provider {
    /// For an HTTP protocol: builds the client (connects to nothing yet).
    /// For `local`: loads the model files (sha256-checked) and starts the
    /// inference thread, so a bad model fails here, at start-up.
    ///
    /// # Errors
    /// [`EmbedError::Client`] when the TLS backend cannot be initialised, or
    /// [`EmbedError::BadUrl`] when the endpoint cannot be formed from the URL;
    /// for `local`, the model's load error or [`EmbedError::LocalFailed`].
    pub fn new(settings: &EmbedderSettings) -> Result<Self, EmbedError> {
        let kind = settings.kind();
        let http = match &settings.provider {
            ProviderSettings::Local(local) => {
                let model = Arc::new(LocalEmbedder::load(&local.model_dir, local.options)?);
                let pool = InferencePool::start(model, local.pool).map_err(|e| EmbedError::LocalFailed {
                    reason: format!("cannot start the inference thread: {e}"),
                })?;
                let backend = Backend::Local(Local { pool: Arc::new(pool), question_wait: local.question_wait });
                return Ok(Self { kind, model: MODEL_NAME.to_owned(), backend });
            }
            ProviderSettings::Http(http) => http,
        };
        let base = http.url.as_str().trim_end_matches('/');
        let endpoint = match http.protocol {
            HttpProtocol::Tei => format!("{base}/embed"),
            HttpProtocol::Hf => format!("{base}/models/{}", settings.model),
            HttpProtocol::Openai => format!("{base}/v1/embeddings"),
        };
        let endpoint = reqwest::Url::parse(&endpoint).map_err(|_| EmbedError::BadUrl { provider: kind })?;
        let client = reqwest::Client::builder()
            .connect_timeout(http.connect_timeout)
            .timeout(http.request_timeout)
            .user_agent(concat!("semsearch/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|source| EmbedError::Client { provider: kind, source })?;
        Ok(Self {
            kind,
            model: settings.model.clone(),
            backend: Backend::Http(Box::new(Http {
                endpoint,
                api_key: http.api_key.clone(),
                http: client,
                in_flight: Semaphore::new(http.concurrency.max(1)),
                retry: http.retry,
                request_timeout: http.request_timeout,
            })),
        })
    }

    pub fn kind(&self) -> ProviderKind {
        self.kind
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    /// Host of the endpoint, for logs (never the full URL: it may carry
    /// credentials); `in-process` for the local model.
    pub fn host(&self) -> &str {
        match &self.backend {
            Backend::Http(http) => http.endpoint.host_str().unwrap_or(""),
            Backend::Local(_) => "in-process",
        }
    }

    /// Embeds one text: a question, served by the local model before any
    /// bulk work, or refused ([`EmbedError::Busy`]) when its pass cannot
    /// start within the question wait.
    ///
    /// # Errors
    /// As [`Provider::embed_many`], and [`EmbedError::Busy`].
    pub async fn embed(&self, text: &str) -> Result<Vec<f32>, EmbedError> {
        let started = Instant::now();
        let vector = match &self.backend {
            Backend::Http(http) => http.embed(self.kind, &self.model, text).await,
            Backend::Local(local) => local_question(local, text).await,
        };
        self.record_duration("single", started);
        vector
    }

    /// Embeds several texts; each answer says whether its text was
    /// truncated (only the local model truncates; services do it unseen).
    ///
    /// # Errors
    /// For HTTP services [`EmbedError::Timeout`], [`EmbedError::Unreachable`],
    /// [`EmbedError::Status`] (after the last retry) or
    /// [`EmbedError::BadResponse`]; for the local model
    /// [`EmbedError::Overloaded`] or [`EmbedError::LocalFailed`].
    pub async fn embed_many(&self, texts: Vec<String>) -> Result<Vec<Embedding>, EmbedError> {
        let started = Instant::now();
        let embeddings = match &self.backend {
            Backend::Http(http) => http.embed_each(self.kind, &self.model, &texts).await,
            Backend::Local(local) => local_embed(&local.pool, texts).await,
        };
        self.record_duration("batch", started);
        embeddings
    }

    /// The embedder's latency histogram (described in `api::metrics`): the
    /// only cost of a text query that rivals the scan (the local model is
    /// ~80x a 10k-document scan), so it gets its own series. Failed calls
    /// are timed too: a provider that times out is the latency to see.
    fn record_duration(&self, call: &'static str, started: Instant) {
        metrics::histogram!("semsearch_embed_duration_seconds", "provider" => self.kind.as_str(), "call" => call)
            .record(started.elapsed().as_secs_f64());
    }

    /// Stops the local model's inference thread (no-op for services).
    pub fn close(&self) {
        if let Backend::Local(local) = &self.backend {
            local.pool.close();
        }
    }
}

/// One question through the local pool, ahead of bulk work; given up (the
/// ticket dropped, so it is never run) when its pass has not started within
/// `question_wait`: the caller gets 503 `overloaded` at once instead of a
/// `timeout` after the request's whole budget.
async fn local_question(local: &Local, text: &str) -> Result<Vec<f32>, EmbedError> {
    let mut ticket = local.pool.submit(vec![text.to_owned()], Class::Question).map_err(pool_error)?;
    if tokio::time::timeout(local.question_wait, ticket.started()).await.is_err() {
        metrics::counter!("semsearch_embed_questions_refused_total").increment(1);
        return Err(EmbedError::Busy { budget_ms: local.question_wait.as_millis() as u64 });
    }
    let mut out = ticket.answer().await.map_err(pool_error)?;
    if out.len() != 1 {
        return Err(EmbedError::LocalFailed { reason: format!("{} embeddings for 1 text", out.len()) });
    }
    Ok(out.swap_remove(0).vector)
}

/// A pool failure as an [`EmbedError`].
fn pool_error(e: PoolError) -> EmbedError {
    match e {
        // Control characters only, say: nothing to embed, the caller's mistake (422), per text.
        PoolError::Tokenize(TokenizeError::EmptyText { index }) => EmbedError::EmptyTexts { indices: vec![index] },
        PoolError::EmptyTexts { indices } => EmbedError::EmptyTexts { indices },
        PoolError::TooManyTokens { tokens, max } => EmbedError::TooManyTokens { tokens, max },
        PoolError::Overloaded { .. } | PoolError::TooLarge { .. } => EmbedError::Overloaded { reason: e.to_string() },
        other => EmbedError::LocalFailed { reason: other.to_string() },
    }
}

/// One bulk call into the local pool, its failures as [`EmbedError`]s.
async fn local_embed(pool: &InferencePool, texts: Vec<String>) -> Result<Vec<Embedding>, EmbedError> {
    let n = texts.len();
    let out = pool.embed(texts).await.map_err(pool_error)?;
    if out.len() != n {
        return Err(EmbedError::LocalFailed { reason: format!("{} embeddings for {n} texts", out.len()) });
    }
    Ok(out)
}

impl Http {
    /// Embeds several texts one request at a time, in order (the services'
    /// batch protocols differ; a batch is rare: `POST /v1/embed`).
    async fn embed_each(
        &self,
        kind: ProviderKind,
        model: &str,
        texts: &[String],
    ) -> Result<Vec<Embedding>, EmbedError> {
        let mut out = Vec::with_capacity(texts.len());
        for text in texts {
            out.push(Embedding { vector: self.embed(kind, model, text).await?, truncated: false });
        }
        Ok(out)
    }

    /// Embeds one text, retrying 429/5xx as the module docs describe.
    async fn embed(&self, kind: ProviderKind, model: &str, text: &str) -> Result<Vec<f32>, EmbedError> {
        let _permit = self.in_flight.acquire().await.map_err(|_| EmbedError::Closed { provider: kind })?;
        let mut retry = 0;
        loop {
            let response = self.request(kind, model, text).send().await.map_err(|e| self.transport_error(kind, e))?;
            let status = response.status();
            if status.is_success() {
                let body = response.bytes().await.map_err(|e| self.transport_error(kind, e))?;
                return parse(kind, &body);
            }
            let retryable = status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            match retryable.then(|| self.retry.delay(retry, retry_after)).flatten() {
                Some(wait) => {
                    debug!(provider = %kind, status = status.as_u16(), retry, wait_ms = wait.as_millis() as u64, "embedding provider asked us to retry");
                    tokio::time::sleep(wait).await;
                    retry += 1;
                }
                None => {
                    return Err(EmbedError::Status { provider: kind, status: status.as_u16(), attempts: retry + 1 })
                }
            }
        }
    }

    fn request(&self, kind: ProviderKind, model: &str, text: &str) -> reqwest::RequestBuilder {
        let body = match kind {
            ProviderKind::Tei | ProviderKind::Local => json!({ "inputs": [text] }),
            ProviderKind::Hf => json!({ "inputs": text }),
            ProviderKind::Openai => json!({ "input": [text], "model": model }),
        };
        let request = self.http.post(self.endpoint.clone()).json(&body);
        match &self.api_key {
            Some(key) => request.bearer_auth(key.expose()),
            None => request,
        }
    }

    /// Drops the URL from the error: errors end up in logs, and a URL may
    /// carry credentials. Logs name the host instead.
    fn transport_error(&self, kind: ProviderKind, e: reqwest::Error) -> EmbedError {
        let e = e.without_url();
        if e.is_timeout() {
            EmbedError::Timeout { provider: kind, timeout_ms: self.request_timeout.as_millis() as u64 }
        } else {
            EmbedError::Unreachable { provider: kind, source: e }
        }
    }
}

/// `hf` answers a flat vector for sentence models, nested for some pipelines.
#[derive(Deserialize)]
#[serde(untagged)]
enum HfBody {
    Flat(Vec<f32>),
    Nested(Vec<Vec<f32>>),
}

#[derive(Deserialize)]
struct OpenAiBody {
    data: Vec<OpenAiItem>,
}

#[derive(Deserialize)]
struct OpenAiItem {
    embedding: Vec<f32>,
    #[serde(default)]
    index: usize,
}

/// Extracts the one embedding from a successful response body.
///
/// # Errors
/// [`EmbedError::BadResponse`] when the body is not the protocol's shape, holds
/// other than exactly one embedding, or the embedding is empty or non-finite.
pub fn parse(kind: ProviderKind, body: &[u8]) -> Result<Vec<f32>, EmbedError> {
    let bad = |reason: String| EmbedError::BadResponse { provider: kind, reason };
    let one = |mut rows: Vec<Vec<f32>>| match rows.len() {
        1 => Ok(rows.swap_remove(0)),
        n => Err(bad(format!("expected 1 embedding, got {n} (a model without pooling returns one per token)"))),
    };
    let vector = match kind {
        ProviderKind::Tei | ProviderKind::Local => one(serde_json::from_slice(body).map_err(|e| bad(e.to_string()))?)?,
        ProviderKind::Hf => match serde_json::from_slice(body).map_err(|e| bad(e.to_string()))? {
            HfBody::Flat(v) => v,
            HfBody::Nested(rows) => one(rows)?,
        },
        ProviderKind::Openai => {
            let body: OpenAiBody = serde_json::from_slice(body).map_err(|e| bad(e.to_string()))?;
            one(body.data.into_iter().filter(|item| item.index == 0).map(|item| item.embedding).collect())?
        }
    };
    if vector.is_empty() {
        return Err(bad("the embedding is empty".into()));
    }
    if let Some(i) = vector.iter().position(|x| !x.is_finite()) {
        return Err(bad(format!("element {i} is not a finite 32-bit float")));
    }
    Ok(vector)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(r: Result<Vec<f32>, EmbedError>) -> String {
        match r {
            Err(EmbedError::BadResponse { reason, .. }) => reason,
            other => panic!("expected BadResponse, got {other:?}"),
        }
    }

    #[test]
    fn tei_answers_one_row_per_input() {
        assert_eq!(parse(ProviderKind::Tei, b"[[0.5, -1, 2e-3]]").ok(), Some(vec![0.5, -1.0, 0.002]));
        assert!(reason(parse(ProviderKind::Tei, b"[[1], [2]]")).contains("expected 1 embedding, got 2"));
        assert!(reason(parse(ProviderKind::Tei, b"[]")).contains("got 0"));
        assert!(parse(ProviderKind::Tei, b"[0.5, 1]").is_err(), "flat is not TEI's shape");
    }

    #[test]
    fn hf_answers_flat_or_nested() {
        assert_eq!(parse(ProviderKind::Hf, b"[0.25, 1]").ok(), Some(vec![0.25, 1.0]));
        assert_eq!(parse(ProviderKind::Hf, b"[[0.25, 1]]").ok(), Some(vec![0.25, 1.0]));
        assert!(reason(parse(ProviderKind::Hf, b"[[1, 2], [3, 4]]")).contains("per token"));
        assert!(parse(ProviderKind::Hf, br#"{"error": "Model is loading"}"#).is_err());
    }

    #[test]
    fn openai_picks_the_item_with_index_0() {
        let body =
            br#"{"object":"list","data":[{"object":"embedding","embedding":[1,2],"index":0}],"model":"m","usage":{}}"#;
        assert_eq!(parse(ProviderKind::Openai, body).ok(), Some(vec![1.0, 2.0]));
        let no_index = br#"{"data":[{"embedding":[3]}]}"#;
        assert_eq!(parse(ProviderKind::Openai, no_index).ok(), Some(vec![3.0]), "Ollama may omit index");
        assert!(parse(ProviderKind::Openai, br#"{"data":[]}"#).is_err());
        assert!(parse(ProviderKind::Openai, b"[[1]]").is_err());
    }

    #[test]
    fn malformed_empty_or_non_finite_bodies_are_bad_responses() {
        for kind in [ProviderKind::Tei, ProviderKind::Hf, ProviderKind::Openai] {
            assert!(parse(kind, b"not json").is_err(), "{kind}");
            assert!(parse(kind, b"").is_err(), "{kind}");
        }
        assert!(reason(parse(ProviderKind::Hf, b"[]")).contains("empty"));
        assert!(reason(parse(ProviderKind::Hf, b"[1, 1e300]")).contains("element 1"));
        assert!(parse(ProviderKind::Hf, br#"[1, "a"]"#).is_err());
        assert!(parse(ProviderKind::Hf, b"[1, null]").is_err());
    }

    #[tokio::test]
    async fn transport_errors_never_carry_the_url_or_its_credentials() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port");
        let mut args = crate::config::ServeArgs::defaults();
        args.embedder.embedder = Some(ProviderKind::Tei);
        args.embedder.embedder_url = Some(format!("http://user:hunter2@{closed}"));
        let settings = crate::config::Settings::from_args(&args).expect("valid").embedder.expect("tei configured");

        let err = Provider::new(&settings).expect("client builds").embed("q").await.expect_err("nothing listens");

        assert!(matches!(err, EmbedError::Unreachable { provider: ProviderKind::Tei, .. }), "{err:?}");
        let mut chain = format!("{err} {err:?}");
        let mut source = std::error::Error::source(&err);
        while let Some(s) = source {
            chain += &format!(" {s}");
            source = s.source();
        }
        // The socket address may appear (hyper reports it, and logs name the host anyway); the URL may not.
        assert!(!chain.contains("hunter2") && !chain.contains("http://"), "{chain}");
    }

    /// A model whose passes wait until the test opens its gate.
    struct Gated {
        open: std::sync::Mutex<bool>,
        opened: std::sync::Condvar,
        passes: std::sync::atomic::AtomicUsize,
    }

    impl semsearch_minilm::pool::BatchModel for Gated {
        fn tokenize_into(
            &self,
            _index: usize,
            _text: &str,
            batch: &mut semsearch_minilm::TokenBatch,
        ) -> Result<(), TokenizeError> {
            batch.push(&[101, 7, 102], false);
            Ok(())
        }

        fn forward(
            &self,
            batch: &semsearch_minilm::TokenBatch,
            _scratch: &mut semsearch_minilm::Scratch,
        ) -> Result<Vec<Embedding>, semsearch_minilm::bert::ForwardError> {
            self.passes.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut open = self.open.lock().expect("gate");
            while !*open {
                open = self.opened.wait(open).expect("gate");
            }
            Ok((0..batch.len()).map(|_| Embedding { vector: vec![1.0, 0.0], truncated: false }).collect())
        }
    }

    #[tokio::test]
    async fn issue_22_a_question_that_cannot_start_within_its_wait_is_503_overloaded() {
        // Arrange: bulk work holds the model (its one worker); a question may wait 50 ms for its pass.
        let model = Arc::new(Gated {
            open: std::sync::Mutex::new(false),
            opened: std::sync::Condvar::new(),
            passes: std::sync::atomic::AtomicUsize::new(0),
        });
        let one_worker = semsearch_minilm::PoolSettings { workers: 1, ..Default::default() };
        let pool = Arc::new(InferencePool::start(Arc::clone(&model), one_worker).expect("pool"));
        let local = Local { pool: Arc::clone(&pool), question_wait: Duration::from_millis(50) };
        let bulk = {
            let pool = Arc::clone(&pool);
            tokio::spawn(async move { local_embed(&pool, vec!["bulk".to_owned(); 8]).await })
        };
        while model.passes.load(std::sync::atomic::Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }

        // Act: the gate stays shut, so only the wait budget can end the question's wait.
        let refused = local_question(&local, "a question").await;

        // Assert
        let err = refused.expect_err("the model is busy");
        assert!(matches!(err, EmbedError::Busy { budget_ms: 50 }), "{err:?}");
        let api = crate::query::resolve::to_api_error(err);
        assert_eq!((api.status().as_u16(), api.code()), (503, "overloaded"));
        let response = axum::response::IntoResponse::into_response(api);
        assert!(response.headers().contains_key("retry-after"));
        *model.open.lock().expect("gate") = true;
        model.opened.notify_all();
        assert_eq!(bulk.await.expect("join").expect("bulk still answered").len(), 8);
    }

    #[test]
    fn retry_waits_honour_retry_after_and_back_off_otherwise() {
        let policy = RetryPolicy { max_retries: 3, base: Duration::from_millis(100), max: Duration::from_secs(1) };
        assert_eq!(policy.delay(0, None), Some(Duration::from_millis(100)));
        assert_eq!(policy.delay(1, None), Some(Duration::from_millis(200)));
        assert_eq!(policy.delay(2, None), Some(Duration::from_millis(400)));
        assert_eq!(policy.delay(3, None), None, "max_retries reached");
        assert_eq!(policy.delay(0, Some(Duration::ZERO)), Some(Duration::ZERO));
        assert_eq!(policy.delay(0, Some(Duration::from_secs(1))), Some(Duration::from_secs(1)));
        assert_eq!(policy.delay(0, Some(Duration::from_secs(2))), None, "asked to wait longer than we may");
        let long = RetryPolicy { max_retries: 40, ..policy };
        assert_eq!(long.delay(35, None), Some(Duration::from_secs(1)), "backoff is capped, never overflows");
    }
}
