//! Question text → query vector, for `POST /v1/search` with `"text"`.
//!
//! ```text
//!  text ──► normalize ──► cache (LRU ─► store::query_cache) ──miss──► providers (HTTP)
//! ```
//!
//! - [`normalize`]: what string is embedded and cached (`none` or the chatbot's rule);
//! - [`embedder`]: [`QueryEmbedder`], the entry point: in-process LRU, then Redis, then the provider;
//! - [`providers`]: the `tei`, `hf` and `openai` wire protocols, timeouts, retries, concurrency;
//! - [`settings`]: [`EmbedderSettings`], built by the configuration layer;
//! - the `local` provider runs the `semsearch_minilm` crate in process
//!   (its files come from `semsearch model fetch`, a tool).
//!
//! This module knows nothing of the index: the dimension check against it is
//! the caller's (`query::resolve`), so a mismatch is reported per request with both numbers.

pub mod embedder;
pub mod normalize;
pub mod providers;
pub mod settings;

use thiserror::Error;

pub use embedder::QueryEmbedder;
pub use normalize::{nothing_to_embed, Normalization};
pub use providers::{Provider, ProviderKind};
pub use settings::{EmbedderSettings, HttpProtocol, HttpSettings, LocalSettings, ProviderSettings};

/// Text embedded once at start-up to learn the provider's dimension. Never
/// cached; test providers recognise it so it does not count as a question.
pub const PROBE_TEXT: &str = "semsearch dimension probe";

/// Why a text could not be embedded. Every variant names the provider.
#[derive(Debug, Error)]
pub enum EmbedError {
    /// The text is empty once normalised; there is nothing to embed.
    #[error("the text is empty after normalisation")]
    EmptyText,
    /// These texts of a batch (0-based) have no word pieces for the local
    /// model (control characters only, say), so the API can name each.
    #[error("texts {indices:?} have nothing to embed")]
    EmptyTexts { indices: Vec<usize> },
    /// The HTTP client could not be built (TLS back-end initialisation).
    #[error("cannot build the HTTP client for the {provider} embedder")]
    Client {
        provider: ProviderKind,
        #[source]
        source: reqwest::Error,
    },
    /// The endpoint URL could not be formed from the configured URL and model.
    #[error("cannot form the {provider} embedder's endpoint from SEMSEARCH_EMBEDDER_URL and the model name")]
    BadUrl { provider: ProviderKind },
    /// One attempt exceeded the request timeout.
    #[error("the {provider} embedder did not answer within {timeout_ms} ms")]
    Timeout { provider: ProviderKind, timeout_ms: u64 },
    /// Connection refused, reset, DNS or TLS failure.
    #[error("cannot reach the {provider} embedder")]
    Unreachable {
        provider: ProviderKind,
        #[source]
        source: reqwest::Error,
    },
    /// A non-success answer, after the retries it deserved.
    #[error("the {provider} embedder answered HTTP {status} (after {attempts} attempt(s))")]
    Status { provider: ProviderKind, status: u16, attempts: u32 },
    /// A success answer whose body is not one finite embedding.
    #[error("the {provider} embedder sent a response we cannot use: {reason}")]
    BadResponse { provider: ProviderKind, reason: String },
    /// The service is shutting down.
    #[error("the {provider} embedder is shutting down")]
    Closed { provider: ProviderKind },
    /// The local model's files are missing, corrupt or unreadable; the
    /// message names the file and the command that fixes it.
    #[error(transparent)]
    LocalLoad(#[from] semsearch_minilm::ModelLoadError),
    /// The local model's queue is full (or the request can never fit it).
    #[error("{reason}")]
    Overloaded { reason: String },
    /// A question's pass could not start on the local model within its
    /// wait budget (the model is busy); answered 503 `overloaded`.
    #[error("the local embedder could not start this question within {budget_ms} ms")]
    Busy { budget_ms: u64 },
    /// A bulk request holds more word pieces than one request may.
    #[error("the texts hold more than {max} word pieces (at least {tokens}); split them into smaller requests")]
    TooManyTokens { tokens: usize, max: usize },
    /// The local model failed on this request.
    #[error("the local embedder failed: {reason}")]
    LocalFailed { reason: String },
}

/// Embeds `text` once, straight from the provider (no cache), as `semsearch
/// embed` does to debug a provider set-up.
///
/// Returns the normalised text that was sent and the vector.
///
/// # Errors
/// Any [`EmbedError`] from building the provider or the request.
pub async fn embed_once(settings: &EmbedderSettings, text: &str) -> Result<(String, Vec<f32>), EmbedError> {
    let provider = Provider::new(settings)?;
    let normalized = settings.normalization.apply(text);
    if normalized.is_empty() {
        return Err(EmbedError::EmptyText);
    }
    let vector = provider.embed(&normalized).await?;
    Ok((normalized, vector))
}
