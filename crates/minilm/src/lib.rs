//! The in-process embedder: sentence-transformers/all-MiniLM-L6-v2 on the
//! CPU, exact to sentence-transformers (issue 11).
//!
//! ```text
//!  texts ──► tokenize (WordPiece, ≤ 256) ──► bert (forward, ragged batch) ──► mean pool ──► L2 norm
//!                        ▲                          ▲
//!                 files (dir, sha256) ─── weights (safetensors, packed once)
//! ```
//!
//! - [`files`]: the model directory, its default location, sha256 checks;
//! - [`tokenize`]: the model's tokenizer with sentence-transformers' truncation;
//! - [`bert`]: the forward pass, over [`ops`] compiled per ISA by [`kernel`];
//! - [`weights`]: tensors read from `model.safetensors`;
//! - [`pool`]: the bounded inference pool that coalesces concurrent requests;
//! - [`LocalEmbedder`]: all of it loaded once, callable from any thread.
//!
//! [`LocalEmbedder`] is synchronous and CPU-bound: services call it through
//! the bounded inference pool (`pool`), never on a tokio worker.
//!
//! Owns the encoder and nothing around it: it reads a model directory it is
//! given and never touches the network or the environment (getting the
//! files is semsearch's `semsearch model fetch` tool; the directory comes
//! from its configuration). Kernels take CPU proof tokens from
//! `semsearch_cpu`; `unsafe` lives only in `kernel/x86_64.rs`.

#![deny(unsafe_code)]

pub mod bert;
pub mod files;
pub mod kernel;
pub mod ops;
pub mod pool;
pub mod tokenize;
pub mod weights;

use std::path::{Path, PathBuf};

use thiserror::Error;

pub use bert::{Scratch, Threads};
pub use files::{default_model_dir, ModelFileError, MODEL_NAME};
pub use kernel::BertKernel;
pub use pool::{Class, InferencePool, PoolError, PoolSettings, PoolStats, Ticket};
pub use tokenize::{TokenBatch, TokenizeError, MAX_TOKENS};

pub use bert::BertConfig;
use bert::{BertError, BertModel, ForwardError};
use tokenize::{TokenizerLoadError, WordPieces};
use weights::TensorFile;

/// One text's embedding.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedding {
    /// Unit length, [`LocalEmbedder::dim`] floats.
    pub vector: Vec<f32>,
    /// The text had more than [`MAX_TOKENS`] word pieces and only the first
    /// ones were embedded (as sentence-transformers does); the API reports it.
    pub truncated: bool,
}

/// How to run the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmbedderOptions {
    /// Threads per forward pass. Default [`Threads::One`]: on a quiet
    /// machine two threads cut one question's forward pass by about a
    /// third (bench `embed`, `question/avx512/{one,two}`), but each pass
    /// then needs ~25 hand-offs between threads, and when the other core is
    /// busy (search on rayon, other requests, a shared host) a hand-off can
    /// wait for a whole time slice, which made two threads several times
    /// slower at the median on a shared 2-core machine (`paired … ratio`
    /// line of the bench; figures in docs/benchmarks.md,
    /// "Encoder"). Batches gain nothing from a second thread there either;
    /// the pool's coalescing is what scales under load. Choose `Two` only
    /// for an otherwise idle core.
    pub threads: Threads,
    /// `None`: the fastest kernel this CPU supports.
    pub kernel: Option<BertKernel>,
}

impl Default for EmbedderOptions {
    fn default() -> Self {
        Self { threads: Threads::One, kernel: None }
    }
}

/// Why the model could not be loaded. Start-up stops with it; every variant
/// names the file involved.
#[derive(Debug, Error)]
pub enum ModelLoadError {
    #[error(transparent)]
    Files(#[from] ModelFileError),
    #[error("cannot read {}", .path.display())]
    ReadConfig {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a BERT config", .path.display())]
    ParseConfig {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Tokenizer(#[from] TokenizerLoadError),
    #[error("model.safetensors in {}: {source}", .dir.display())]
    Model {
        dir: PathBuf,
        #[source]
        source: Box<BertError>,
    },
    #[error("tokenizer.json has {tokenizer} tokens but the model only {model}: they are not one model's files")]
    VocabMismatch { tokenizer: usize, model: usize },
    #[error("the model has {positions} positions, fewer than the {needed} the truncation needs")]
    TooFewPositions { positions: usize, needed: usize },
    #[error("cannot start the embedder's helper thread")]
    ThreadPool(#[from] rayon::ThreadPoolBuildError),
}

/// Why a batch of texts could not be embedded.
#[derive(Debug, Error)]
pub enum LocalError {
    #[error(transparent)]
    Tokenize(#[from] TokenizeError),
    #[error("the forward pass refused the batch: {0}")]
    Forward(#[from] ForwardError),
}

/// The loaded model: tokenizer, packed weights, chosen kernel. Immutable,
/// shared by reference; each caller brings its own [`Scratch`].
#[derive(Debug)]
pub struct LocalEmbedder {
    tokenizer: WordPieces,
    model: BertModel,
    kernel: BertKernel,
    threads: Threads,
    /// The two threads of a [`Threads::Two`] pass: private, so the forward
    /// pass and the search's global rayon pool never queue behind each other.
    helpers: Option<rayon::ThreadPool>,
}

impl LocalEmbedder {
    /// Verifies the files in `dir` (sha256 of the tokenizer and weights),
    /// then loads them. Takes about half a second, most of it hashing and
    /// reading 90 MB; call it once at start-up.
    ///
    /// # Errors
    /// Missing or altered files (naming the fix), an unsupported config,
    /// tensors of the wrong shape, a tokenizer that does not fit the model.
    pub fn load(dir: &Path, options: EmbedderOptions) -> Result<Self, ModelLoadError> {
        files::verify_dir(dir, &files::MINILM_FILES)?;
        Self::load_unverified(dir, options)
    }

    /// [`Self::load`] without the sha256 checks: for tests with other
    /// BERT-shaped models. Production code uses `load`.
    ///
    /// # Errors
    /// As [`Self::load`], except the checksums.
    pub fn load_unverified(dir: &Path, options: EmbedderOptions) -> Result<Self, ModelLoadError> {
        let config_path = dir.join(files::CONFIG.name);
        let text = std::fs::read(&config_path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                ModelLoadError::Files(ModelFileError::Missing { dir: dir.to_path_buf(), file: files::CONFIG.name })
            } else {
                ModelLoadError::ReadConfig { path: config_path.clone(), source }
            }
        })?;
        let config: BertConfig = serde_json::from_slice(&text)
            .map_err(|source| ModelLoadError::ParseConfig { path: config_path.clone(), source })?;
        let tokenizer = WordPieces::load(&dir.join(files::TOKENIZER.name))?;
        if tokenizer.vocab_size() > config.vocab_size {
            return Err(ModelLoadError::VocabMismatch { tokenizer: tokenizer.vocab_size(), model: config.vocab_size });
        }
        if config.max_position_embeddings < MAX_TOKENS {
            return Err(ModelLoadError::TooFewPositions {
                positions: config.max_position_embeddings,
                needed: MAX_TOKENS,
            });
        }
        let model_error = |source| ModelLoadError::Model { dir: dir.to_path_buf(), source: Box::new(source) };
        let mut tensors =
            TensorFile::open(&dir.join(files::WEIGHTS.name)).map_err(|e| model_error(BertError::Weights(e)))?;
        let model = BertModel::load(config, &mut tensors).map_err(model_error)?;
        let helpers = match options.threads {
            Threads::One => None,
            Threads::Two => Some(
                rayon::ThreadPoolBuilder::new().num_threads(2).thread_name(|i| format!("embed-forward-{i}")).build()?,
            ),
        };
        Ok(Self {
            tokenizer,
            model,
            kernel: options.kernel.unwrap_or_else(BertKernel::detect),
            threads: options.threads,
            helpers,
        })
    }

    /// Dimension of every vector (384).
    pub fn dim(&self) -> usize {
        self.model.dim()
    }

    pub fn kernel(&self) -> BertKernel {
        self.kernel
    }

    pub fn threads(&self) -> Threads {
        self.threads
    }

    /// The model's shape (from `config.json`).
    pub fn config(&self) -> &BertConfig {
        self.model.config()
    }

    /// Bytes of weights held in memory (the packed model).
    pub fn model_bytes(&self) -> usize {
        self.model.bytes()
    }

    /// Tokenises `texts` (first step of [`Self::embed`]; separate so the
    /// pool can budget a batch by tokens and benches can time each step).
    ///
    /// # Errors
    /// The first text that is empty or cannot be tokenised.
    pub fn tokenize<S: AsRef<str>>(&self, texts: &[S]) -> Result<TokenBatch, TokenizeError> {
        self.tokenizer.encode_all(texts)
    }

    /// Tokenises one text onto the end of `batch`.
    ///
    /// # Errors
    /// See [`WordPieces::encode_into`].
    pub fn tokenize_into(&self, index: usize, text: &str, batch: &mut TokenBatch) -> Result<(), TokenizeError> {
        self.tokenizer.encode_into(index, text, batch)
    }

    /// The forward pass, mean pooling and normalisation for a tokenised batch.
    ///
    /// # Errors
    /// Only for a batch this tokenizer did not make (ids or lengths out of range).
    pub fn forward(&self, batch: &TokenBatch, scratch: &mut Scratch) -> Result<Vec<Embedding>, ForwardError> {
        let mut flat = Vec::new();
        let run = |flat: &mut Vec<f32>, scratch: &mut Scratch| {
            self.model.forward(batch.ids(), batch.bounds(), self.kernel, self.threads, scratch, flat)
        };
        match &self.helpers {
            Some(pool) => pool.install(|| run(&mut flat, scratch))?,
            None => run(&mut flat, scratch)?,
        }
        Ok(flat
            .chunks_exact(self.dim())
            .enumerate()
            .map(|(i, v)| Embedding { vector: v.to_vec(), truncated: batch.truncated(i) })
            .collect())
    }

    /// Embeds `texts` as one batch, in order.
    ///
    /// # Errors
    /// An empty text (no word pieces) or a tokenizer failure, naming the text's index.
    pub fn embed<S: AsRef<str>>(&self, texts: &[S], scratch: &mut Scratch) -> Result<Vec<Embedding>, LocalError> {
        let batch = self.tokenize(texts)?;
        Ok(self.forward(&batch, scratch)?)
    }
}
