//! Bodies of the one-shot subcommands (`seed`, `healthcheck`), so `main.rs`
//! stays a dispatcher and tests can call the same code. The long-running
//! ones have their own modules: `demo` and `harness`.

use std::{
    fs::File,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    path::PathBuf,
    time::Duration,
};

use indicatif::{ProgressBar, ProgressStyle};
use thiserror::Error;

use crate::{
    config::SeedSettings,
    corpus,
    store::seed::{self, SeedError, SeedReport},
};

#[derive(Debug, Error)]
pub enum CommandError {
    #[error("cannot read {path}")]
    Open { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Seed(#[from] SeedError),
    #[error("GET {url} failed")]
    Unreachable { url: String, source: reqwest::Error },
    #[error("GET {url} answered {status}")]
    NotReady { url: String, status: u16 },
}

/// `semsearch seed FILE`: loads the corpus into Redis with a progress bar
/// over the file's bytes (hidden when asked, or when stderr is not a terminal).
///
/// # Errors
/// [`CommandError`] when the file cannot be read or Redis fails.
pub async fn seed_file(settings: &SeedSettings) -> Result<SeedReport, CommandError> {
    let open_error = |source| CommandError::Open { path: settings.file.clone(), source };
    let file = File::open(&settings.file).map_err(open_error)?;
    let len = file.metadata().map_err(open_error)?.len();
    let progress = if settings.progress { ProgressBar::new(len) } else { ProgressBar::hidden() };
    progress.set_style(
        ProgressStyle::with_template("{spinner} {bytes}/{total_bytes} [{wide_bar}] {eta} {msg}")
            .expect("the template is a valid literal")
            .progress_chars("=> "),
    );
    let reader = corpus::open(progress.wrap_read(file)).map_err(open_error)?;
    let mut conn = seed::connect(&settings.redis.info).await?;
    let report = seed::seed(&mut conn, &settings.keys, corpus::documents(reader), settings.options, &progress).await?;
    progress.finish_and_clear();
    Ok(report)
}

/// `semsearch healthcheck`: GET /readyz on the server listening on `bind`
/// (0.0.0.0 and :: are reached on loopback). For the container HEALTHCHECK,
/// so the runtime image needs no curl.
///
/// # Errors
/// [`CommandError::Unreachable`] or [`CommandError::NotReady`].
pub async fn healthcheck(bind: SocketAddr, timeout: Duration) -> Result<(), CommandError> {
    let ip = match bind.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let url = format!("http://{}/readyz", SocketAddr::new(ip, bind.port()));
    let unreachable = |source| CommandError::Unreachable { url: url.clone(), source };
    let client = reqwest::Client::builder().timeout(timeout).build().map_err(unreachable)?;
    let res = client.get(&url).send().await.map_err(unreachable)?;
    if res.status().is_success() {
        Ok(())
    } else {
        Err(CommandError::NotReady { url, status: res.status().as_u16() })
    }
}
