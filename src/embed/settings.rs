//! [`EmbedderSettings`]: how text queries are embedded and cached, as the
//! configuration layer builds it. Owned here so `embed` reads no flags.

use std::{fmt, path::PathBuf, time::Duration};

use semsearch_minilm::{EmbedderOptions, PoolSettings};

use super::{providers::RetryPolicy, Normalization, ProviderKind};
use crate::{secret::Secret, store::keys::QueryCacheKeys};

/// How to embed question text and cache the result. `Debug` shows the URL's
/// host only: a URL may carry credentials.
#[derive(Clone)]
pub struct EmbedderSettings {
    pub provider: ProviderKind,
    /// The service's base URL; `None` for the local model.
    pub url: Option<reqwest::Url>,
    /// The local model; `Some` exactly when `provider` is `local`.
    pub local: Option<LocalSettings>,
    pub model: String,
    pub api_key: Option<Secret>,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub retry: RetryPolicy,
    pub concurrency: usize,
    pub normalization: Normalization,
    pub cache_keys: QueryCacheKeys,
    /// 0: no Redis tier.
    pub cache_ttl_secs: u64,
    /// 0: no in-process tier.
    pub cache_capacity: usize,
    pub cache_timeout: Duration,
}

impl fmt::Debug for EmbedderSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbedderSettings")
            .field("provider", &self.provider)
            .field("host", &self.url.as_ref().and_then(|u| u.host_str()))
            .field("local", &self.local)
            .field("model", &self.model)
            .field("api_key", &self.api_key)
            .field("request_timeout", &self.request_timeout)
            .field("retry", &self.retry)
            .field("concurrency", &self.concurrency)
            .field("normalization", &self.normalization)
            .field("cache_keys", &self.cache_keys)
            .field("cache_ttl_secs", &self.cache_ttl_secs)
            .field("cache_capacity", &self.cache_capacity)
            .finish_non_exhaustive()
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
        let local = settings.local.clone().expect("the local model");

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
