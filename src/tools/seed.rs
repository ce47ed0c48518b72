//! Writing documents into Redis the way the chatbot does:
//! `SET cache:embedding:<id> <value> EX <ttl>`. Used by `semsearch seed`,
//! `semsearch demo` and `semsearch bench --synthetic`; the service never
//! calls it (it only reads embeddings).
//!
//! Keys come from [`KeySpace::seed_key`], so nothing is written outside the
//! embedding prefix. Writes go in pipelined batches of [`BATCH_DOCS`].
//! Without `overwrite`, each batch first asks `EXISTS` for every key (cheap,
//! and the values of existing keys, ~10 KB each, are never sent), then writes
//! the rest with `SET … NX`, so a key created meanwhile by the chatbot is
//! still not overwritten. Both kinds of refusal count as `skipped_existing`.

use std::{fs::File, path::PathBuf, time::Duration};

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use redis::{aio::MultiplexedConnection, AsyncConnectionConfig, ConnectionInfo};
use serde::Serialize;
use thiserror::Error;
use tracing::warn;

use super::corpus::{self, CorpusDoc, CorpusError};
use crate::{
    config::{ConfigError, RedisArgs},
    store::{
        connect::RedisTarget,
        keys::{KeyError, KeySpace, SeedKey, DEFAULT_CONTEXT_PREFIX, DEFAULT_EMBEDDING_PATTERN, DEFAULT_QUICK_KEY},
    },
};

/// Flags of `semsearch seed`.
#[derive(Debug, Clone, Args)]
pub struct SeedArgs {
    /// JSONL file, one chatbot value per line (`{"title","url","text","embedding"}`);
    /// gzip is detected from the content.
    pub file: PathBuf,
    #[command(flatten)]
    pub redis: RedisArgs,
    /// SCAN pattern of the embedding keys (as for serve); documents go under its prefix.
    #[arg(long, env = "SEMSEARCH_EMBEDDING_PATTERN", default_value = DEFAULT_EMBEDDING_PATTERN)]
    pub embedding_pattern: String,
    /// Expiry of every key, in seconds (the chatbot uses 86400); 0: no expiry.
    #[arg(long, default_value_t = 86_400)]
    pub ttl_secs: u64,
    /// Replace keys that exist. Without it they are left alone and counted as skipped.
    #[arg(long)]
    pub overwrite: bool,
    /// No progress bar (it is also hidden when stderr is not a terminal).
    #[arg(long)]
    pub no_progress: bool,
}

/// Validated `semsearch seed` flags.
#[derive(Debug, Clone)]
pub struct SeedSettings {
    pub file: PathBuf,
    pub redis: RedisTarget,
    pub keys: KeySpace,
    pub options: SeedOptions,
    pub progress: bool,
}

impl SeedSettings {
    /// # Errors
    /// [`ConfigError`] for a bad Redis URL or embedding pattern.
    pub fn from_args(args: &SeedArgs) -> Result<Self, ConfigError> {
        // The quick key and context prefix are not used by seed, but KeySpace
        // checks the embedding prefix against them, as serve would.
        Ok(Self {
            file: args.file.clone(),
            redis: args.redis.target()?,
            keys: KeySpace::new(&args.embedding_pattern, DEFAULT_QUICK_KEY, DEFAULT_CONTEXT_PREFIX)?,
            options: SeedOptions { ttl_secs: (args.ttl_secs > 0).then_some(args.ttl_secs), overwrite: args.overwrite },
            progress: !args.no_progress,
        })
    }
}

/// Why `semsearch seed FILE` stopped.
#[derive(Debug, Error)]
pub enum SeedFileError {
    #[error("cannot read {path}")]
    Open { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Seed(#[from] SeedError),
}

/// `semsearch seed FILE`: loads the corpus into Redis with a progress bar
/// over the file's bytes (hidden when asked, or when stderr is not a terminal).
///
/// # Errors
/// [`SeedFileError`] when the file cannot be read or Redis fails.
pub async fn seed_file(settings: &SeedSettings) -> Result<SeedReport, SeedFileError> {
    let open_error = |source| SeedFileError::Open { path: settings.file.clone(), source };
    let file = File::open(&settings.file).map_err(open_error)?;
    let len = file.metadata().map_err(open_error)?.len();
    let progress = if settings.progress { ProgressBar::new(len) } else { ProgressBar::hidden() };
    progress.set_style(
        ProgressStyle::with_template("{spinner} {bytes}/{total_bytes} [{wide_bar}] {eta} {msg}")
            .expect("the template is a valid literal")
            .progress_chars("=> "),
    );
    let reader = corpus::open(progress.wrap_read(file)).map_err(open_error)?;
    let mut conn = connect(&settings.redis.info).await?;
    let report = seed(&mut conn, &settings.keys, corpus::documents(reader), settings.options, &progress).await?;
    progress.finish_and_clear();
    Ok(report)
}

/// Documents per pipeline: large enough to amortise round trips, small
/// enough (~5 MB of chatbot values) not to stall Redis for other clients.
pub const BATCH_DOCS: usize = 500;
/// Bad corpus lines logged individually; the rest are only counted.
const LOGGED_BAD_LINES: u64 = 10;

#[derive(Debug, Error)]
pub enum SeedError {
    #[error("redis failed while seeding")]
    Redis(#[from] redis::RedisError),
    #[error(transparent)]
    Corpus(#[from] CorpusError),
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// How to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeedOptions {
    /// `EX` of every key; `None`: no expiry.
    pub ttl_secs: Option<u64>,
    /// Replace existing keys instead of skipping them.
    pub overwrite: bool,
}

impl Default for SeedOptions {
    /// The chatbot's: one day, never overwrite.
    fn default() -> Self {
        Self { ttl_secs: Some(86_400), overwrite: false }
    }
}

/// What a seeding run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SeedReport {
    pub written: u64,
    /// Keys left alone because they existed (only without `overwrite`).
    pub skipped_existing: u64,
    /// Corpus lines that were not documents.
    pub bad_lines: u64,
}

/// Opens a connection whose response timeout suits multi-megabyte pipelines.
///
/// # Errors
/// [`SeedError::Redis`] when Redis cannot be reached.
pub async fn connect(info: &ConnectionInfo) -> Result<MultiplexedConnection, SeedError> {
    let client = redis::Client::open(info.clone())?;
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(5)))
        .set_response_timeout(Some(Duration::from_secs(60)));
    Ok(client.get_multiplexed_async_connection_with_config(&config).await?)
}

/// Writes every document of `docs`, batch by batch. Bad corpus lines are
/// counted and logged (the first few); a read or Redis error stops the run.
/// `progress` gets a message with the counts after each batch (the caller
/// decides what it measures and whether it is visible).
///
/// # Errors
/// [`SeedError`] on a Redis failure, an unreadable corpus or an empty id.
pub async fn seed(
    conn: &mut MultiplexedConnection,
    keys: &KeySpace,
    docs: impl Iterator<Item = Result<CorpusDoc, CorpusError>>,
    options: SeedOptions,
    progress: &ProgressBar,
) -> Result<SeedReport, SeedError> {
    let mut report = SeedReport::default();
    let mut batch: Vec<(SeedKey, Vec<u8>)> = Vec::with_capacity(BATCH_DOCS);
    for doc in docs {
        match doc {
            Ok(doc) => batch.push((keys.seed_key(&doc.id)?, doc.value)),
            Err(CorpusError::BadLine { line_no }) => {
                report.bad_lines += 1;
                if report.bad_lines <= LOGGED_BAD_LINES {
                    warn!(line_no, "corpus line skipped: not a JSON object with a string \"url\"");
                }
            }
            Err(e) => return Err(e.into()),
        }
        if batch.len() == BATCH_DOCS {
            write_batch(conn, &batch, options, &mut report).await?;
            batch.clear();
            progress.set_message(summary(&report));
        }
    }
    write_batch(conn, &batch, options, &mut report).await?;
    progress.set_message(summary(&report));
    Ok(report)
}

fn summary(r: &SeedReport) -> String {
    format!("{} written, {} skipped (existing)", r.written, r.skipped_existing)
}

async fn write_batch(
    conn: &mut MultiplexedConnection,
    batch: &[(SeedKey, Vec<u8>)],
    options: SeedOptions,
    report: &mut SeedReport,
) -> Result<(), SeedError> {
    if batch.is_empty() {
        return Ok(());
    }
    let missing: Vec<&(SeedKey, Vec<u8>)> = if options.overwrite {
        batch.iter().collect()
    } else {
        let mut pipe = redis::pipe();
        for (key, _) in batch {
            pipe.cmd("EXISTS").arg(key.as_str());
        }
        let exists: Vec<i64> = pipe.query_async(conn).await?;
        batch.iter().zip(exists).filter(|(_, n)| *n == 0).map(|(doc, _)| doc).collect()
    };
    report.skipped_existing += (batch.len() - missing.len()) as u64;
    if missing.is_empty() {
        return Ok(());
    }
    let mut pipe = redis::pipe();
    for (key, value) in &missing {
        let cmd = pipe.cmd("SET").arg(key.as_str()).arg(value.as_slice());
        if !options.overwrite {
            cmd.arg("NX");
        }
        if let Some(ttl) = options.ttl_secs {
            cmd.arg("EX").arg(ttl);
        }
    }
    // SET answers OK, or nil when NX found the key (created since EXISTS).
    let replies: Vec<Option<String>> = pipe.query_async(conn).await?;
    let written = replies.iter().filter(|r| r.is_some()).count() as u64;
    report.written += written;
    report.skipped_existing += missing.len() as u64 - written;
    Ok(())
}
