//! Why a refresh step failed. Every failure here is routine and retried by
//! the loop (the current index keeps serving); the variants say which step
//! failed so the log line and `/readyz` can say so.

use thiserror::Error;
use tokio::task::JoinError;

use crate::{index::IndexError, store::loader::IndexLoadError, telemetry::error_chain};

/// A failed full reload, per-key update or reconcile.
#[derive(Debug, Error)]
pub enum RefreshError {
    /// Connecting, or reading values (a full reload or the changed keys),
    /// failed. Transparent, so a reload failure reads as the load's own error.
    #[error(transparent)]
    Load(#[from] IndexLoadError),
    /// The reconcile could not reach Redis, or its SCAN or PTTL failed.
    #[error("redis failed during the reconcile")]
    Reconcile(#[from] redis::RedisError),
    /// Re-read rows could not be merged into the published snapshot.
    #[error("changed keys could not be merged into the index")]
    Merge(#[from] IndexError),
    /// A background step panicked or was aborted before it answered.
    #[error("the {step} task stopped before it finished")]
    TaskFailed {
        step: &'static str,
        #[source]
        source: JoinError,
    },
}

impl RefreshError {
    /// This error and its causes on one line (`error: cause: cause`), as
    /// `/readyz` and the admin reload show them: the causes are what an
    /// operator needs ("connection refused"), the top line alone says little.
    pub fn detail(&self) -> String {
        let chain = error_chain(self);
        if chain.is_empty() {
            self.to_string()
        } else {
            format!("{self}: {chain}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reload_failure_detail_reads_as_the_load_error_and_its_causes() {
        // Arrange
        let io = redis::RedisError::from(std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused here"));
        let error = RefreshError::from(IndexLoadError::from(io));

        // Act
        let detail = error.detail();

        // Assert
        assert!(detail.starts_with("redis failed during load: "), "{detail}");
        assert!(detail.contains("refused here"), "{detail}");
    }

    #[test]
    fn a_detail_without_causes_has_no_trailing_separator() {
        // Arrange
        let error = RefreshError::from(IndexLoadError::WorkerGone);

        // Act
        let detail = error.detail();

        // Assert
        assert_eq!(detail, IndexLoadError::WorkerGone.to_string());
    }
}
