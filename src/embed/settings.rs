//! [`EmbedderSettings`]: how text queries are embedded and cached, as the
//! configuration layer builds it. Owned here so `embed` reads no flags.

use std::{fmt, path::PathBuf, time::Duration};

use semsearch_minilm::{EmbedderOptions, PoolSettings};

use super::{providers::RetryPolicy, Normalization, ProviderKind};
use crate::{secret::Secret, store::keys::QueryCacheKeys};

/// How to embed question text and cache the result.
#[derive(Debug, Clone)]
pub struct EmbedderSettings {
    /// Which model answers, with exactly the settings that model needs.
    pub provider: ProviderSettings,
    /// The model name sent to a service (the local model's own name for `local`).
    pub model: String,
    pub normalization: Normalization,
    pub cache_keys: QueryCacheKeys,
    /// 0: no Redis tier.
    pub cache_ttl_secs: u64,
    /// 0: no in-process tier.
    pub cache_capacity: usize,
    pub cache_timeout: Duration,
}

impl EmbedderSettings {
    /// The `SEMSEARCH_EMBEDDER` value these settings came from.
    pub fn kind(&self) -> ProviderKind {
        match &self.provider {
            ProviderSettings::Local(_) => ProviderKind::Local,
            ProviderSettings::Http(http) => http.protocol.kind(),
        }
    }

    /// The in-process model's settings, when it is the provider.
    pub fn local(&self) -> Option<&LocalSettings> {
        match &self.provider {
            ProviderSettings::Local(local) => Some(local),
            ProviderSettings::Http(_) => None,
        }
    }

    /// The local model chosen by default (not asked for): one that fails to
    /// load turns text search off with a warning instead of stopping start-up.
    pub fn implicit_local(&self) -> Option<&LocalSettings> {
        self.local().filter(|local| local.implicit)
    }
}

/// The provider and what only it needs. An enum, so a URL cannot reach the
/// local model, nor a model directory a service: the configuration layer
/// builds one variant and nothing checks the pairing at run time.
#[derive(Debug, Clone)]
pub enum ProviderSettings {
    /// The in-process all-MiniLM-L6-v2.
    Local(LocalSettings),
    /// An embedding service reached over HTTP.
    Http(HttpSettings),
}

/// An embedding service: its wire protocol, where it is, and how hard to
/// lean on it. `Debug` shows the URL's host only: a URL may carry credentials.
#[derive(Clone)]
pub struct HttpSettings {
    pub protocol: HttpProtocol,
    /// The service's base URL (the protocol's path is appended).
    pub url: reqwest::Url,
    pub api_key: Option<Secret>,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub retry: RetryPolicy,
    /// Requests in flight towards the service, retry waits included.
    pub concurrency: usize,
}

impl fmt::Debug for HttpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpSettings")
            .field("protocol", &self.protocol)
            .field("host", &self.url.host_str())
            .field("api_key", &self.api_key)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("retry", &self.retry)
            .field("concurrency", &self.concurrency)
            .finish()
    }
}

/// The HTTP wire protocols a service may speak (the [`ProviderKind`]s
/// other than `local`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpProtocol {
    /// Hugging Face text-embeddings-inference: `POST {url}/embed`.
    Tei,
    /// Hugging Face Inference API: `POST {url}/models/{model}`.
    Hf,
    /// OpenAI-compatible: `POST {url}/v1/embeddings`.
    Openai,
}

impl HttpProtocol {
    /// The protocol a `SEMSEARCH_EMBEDDER` value names; `None` for `local`.
    pub fn of(kind: ProviderKind) -> Option<Self> {
        match kind {
            ProviderKind::Tei => Some(Self::Tei),
            ProviderKind::Hf => Some(Self::Hf),
            ProviderKind::Openai => Some(Self::Openai),
            ProviderKind::Local => None,
        }
    }

    pub fn kind(self) -> ProviderKind {
        match self {
            Self::Tei => ProviderKind::Tei,
            Self::Hf => ProviderKind::Hf,
            Self::Openai => ProviderKind::Openai,
        }
    }
}

/// The in-process model: where its files are and how it runs.
#[derive(Debug, Clone)]
pub struct LocalSettings {
    /// Holds config.json, tokenizer.json and model.safetensors (sha256-checked at load).
    pub model_dir: PathBuf,
    pub options: EmbedderOptions,
    /// Bounds of the inference pool's queue and batches.
    pub pool: PoolSettings,
    /// Longest wait for a question's pass to start (questions go before
    /// bulk `/v1/embed` work, so this is about one bulk pass); after it the
    /// question is answered 503 `overloaded` instead of waiting.
    pub question_wait: Duration,
    /// Chosen by default (the model was found), not asked for: a model that
    /// fails to load then turns text search off with a warning instead of
    /// stopping start-up.
    pub implicit: bool,
    /// The directory was named (SEMSEARCH_MODEL_DIR), not the default
    /// cache directory: the warnings say which.
    pub dir_configured: bool,
}

impl LocalSettings {
    /// The warning logged when the model chosen by default does not load:
    /// where it was looked for, why it failed (the error names the file),
    /// and what is off.
    pub fn load_failure_message(&self, error: &dyn std::fmt::Display) -> String {
        let place = if self.dir_configured {
            format!("in {} (SEMSEARCH_MODEL_DIR)", self.model_dir.display())
        } else {
            format!("in the default directory {}", self.model_dir.display())
        };
        let missing: Vec<&str> = semsearch_minilm::files::MINILM_FILES
            .iter()
            .map(|f| f.name)
            .filter(|name| !self.model_dir.join(name).is_file())
            .collect();
        let missing = match missing.as_slice() {
            [] => String::new(),
            names => format!(" (missing: {})", names.join(", ")),
        };
        format!(
            "the local model {place} did not load{missing}: {error}; text search with embeddings is off (vector queries and \"mode\": \"lexical\" still work)"
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{ServeArgs, Settings};

    #[test]
    fn issue_22_a_named_model_dir_without_the_weights_is_reported_with_the_file_and_the_dir() {
        // Arrange: SEMSEARCH_MODEL_DIR names a directory with everything but model.safetensors.
        let dir = tempfile::tempdir().expect("temp dir");
        for f in ["config.json", "tokenizer.json"] {
            std::fs::write(dir.path().join(f), b"{}").expect("write");
        }
        let mut args = ServeArgs::defaults();
        args.embedder.model_dir = Some(dir.path().to_path_buf());
        let settings = Settings::from_args(&args).expect("valid").embedder.expect("a named directory is tried");
        let local = settings.local().cloned().expect("the local model");

        // Act
        let err = crate::embed::QueryEmbedder::new(&settings, None).expect_err("no weights, no model");
        let message = local.load_failure_message(&err);

        // Assert
        assert!(message.contains("missing: model.safetensors"), "{message}");
        assert!(
            message.contains(&dir.path().display().to_string()) && message.contains("SEMSEARCH_MODEL_DIR"),
            "{message}"
        );
        assert!(message.contains("text search with embeddings is off"), "{message}");
        assert!(!message.contains("default directory"), "{message}");
    }
}
