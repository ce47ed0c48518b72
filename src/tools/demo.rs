//! `semsearch demo`: the whole service on one machine with nothing else
//! installed: the `redis-server` is PATH's 7.x, else a private copy fetched
//! into the cache dir ([`super::redis_binary`]).
//!
//! Life cycle: a temp dir → a private redis-server in it (its own process
//! group, a unix socket only, no persistence) → the demo corpus seeded with
//! `tools::seed`, exactly as `semsearch seed` and the chatbot write it → the
//! real [`App`] on the given address → example requests printed once the
//! index is loaded. On the shutdown signal it unwinds in reverse: the service
//! drains, the server is killed, the dir is removed. Nothing outlives the
//! process unless it is SIGKILLed (then the redis-server and its temp dir
//! stay behind: no `Drop` runs).

use std::{
    fs::File,
    future::Future,
    io::Cursor,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context;
use clap::Args;
use indicatif::ProgressBar;
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::{
    corpus::{self, CorpusDoc, DEMO_CORPUS_GZ},
    redis_binary,
    redis_child::ChildRedis,
    seed::{self, SeedOptions},
};
use crate::{app::App, config::Settings, index::SharedIndex};

/// The document the "more like this" example uses when the corpus has it.
const PREFERRED_EXAMPLE_ID: &str = "https://packages.debian.org/bookworm/curl";
/// Longest wait for the first index load before giving up on the banner.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// Flags of `semsearch demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Address the demo listens on (loopback: the demo is for this machine).
    #[arg(long, env = "SEMSEARCH_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// A corpus file to load instead of the built-in one (JSONL or .jsonl.gz).
    #[arg(long)]
    pub corpus: Option<PathBuf>,
    /// Log filter (tracing EnvFilter syntax).
    #[arg(long, env = "RUST_LOG", default_value = "warn,semsearch=info")]
    pub log: String,
}

/// What `semsearch demo` was asked to do.
#[derive(Debug, Clone)]
pub struct DemoSettings {
    pub bind: SocketAddr,
    /// `None`: the built-in corpus.
    pub corpus: Option<PathBuf>,
}

/// Runs the demo until `shutdown` resolves.
///
/// # Errors
/// When redis-server cannot be started (the message says how to install
/// it), the corpus cannot be read, seeding fails, or the address is taken.
pub async fn run(settings: DemoSettings, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
    // Relay the signal into a token now, not when serving starts: a Ctrl-C
    // while seeding must still stop the Redis child (it no longer shares our
    // process group, so the terminal's signal does not reach it).
    let stop = CancellationToken::new();
    let trigger = stop.clone();
    tokio::spawn(async move {
        shutdown.await;
        trigger.cancel();
    });

    let dir = tempfile::Builder::new().prefix("semsearch-demo-").tempdir().context("creating the demo's temp dir")?;
    // Fetching a private redis-server (first run, none on PATH) blocks on
    // apt-get: off the async workers.
    tokio::task::spawn_blocking(redis_binary::locate).await.context("locating redis-server")??;
    let redis = ChildRedis::start_detached(dir.path(), &[])?;
    let result = seed_and_serve(&settings, &redis, dir.path(), stop).await;
    drop(redis);
    let path = dir.path().to_path_buf();
    dir.close().with_context(|| format!("removing {}", path.display()))?;
    info!("demo stopped; its Redis and temp dir are gone");
    result
}

async fn seed_and_serve(
    settings: &DemoSettings,
    redis: &ChildRedis,
    dir: &Path,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    ensure_model().await;
    let mut serve = Settings::for_redis_url(&redis.url()).context("demo settings")?;
    serve.bind = settings.bind;
    let text_search = serve.embedder.is_some();
    let (reader, source) = match &settings.corpus {
        Some(path) => {
            let file = File::open(path).with_context(|| format!("reading {}", path.display()))?;
            (corpus::open(file)?, path.display().to_string())
        }
        None => (corpus::open(Cursor::new(DEMO_CORPUS_GZ))?, "the built-in demo corpus".to_owned()),
    };

    let mut examples = Examples::default();
    let docs = corpus::documents(reader).inspect(|doc| {
        if let Ok(doc) = doc {
            examples.see(doc);
        }
    });
    let mut conn = seed::connect(&serve.redis.info).await?;
    let no_progress = ProgressBar::hidden();
    let report = tokio::select! {
        report = seed::seed(&mut conn, &serve.keys, docs, SeedOptions::default(), &no_progress) => report?,
        () = stop.cancelled() => return Ok(()),
    };
    drop(conn);
    info!(written = report.written, bad_lines = report.bad_lines, "demo corpus seeded");

    let bind = serve.bind;
    let app = App::build(serve).await.with_context(|| {
        format!("starting the demo on {bind}; is the port taken? set SEMSEARCH_BIND=127.0.0.1:8081")
    })?;
    let addr = app.local_addr()?;
    let index = app.shared_index();
    let run = app.run_until_stopped(stop.clone().cancelled_owned());
    tokio::pin!(run);
    tokio::select! {
        served = &mut run => return served,
        ready = wait_until_loaded(&index) => {
            if ready {
                announce(addr, &index, &source, redis, dir, &examples, text_search)?;
            }
        }
    }
    run.await
}

/// Fetches the local embedder's model on the first run (saying so, with
/// progress), so the demo answers questions; on failure prints one line and
/// the demo serves vector and id queries only.
async fn ensure_model() {
    let Some(dir) = crate::config::model_dir() else {
        println!("text search is off: no cache directory for the model (set SEMSEARCH_MODEL_DIR)");
        return;
    };
    if semsearch_minilm::files::verify_dir(&dir, &semsearch_minilm::files::MINILM_FILES).is_ok() {
        return;
    }
    println!("first run: fetching the all-MiniLM-L6-v2 model (90 MB) into {} for text search", dir.display());
    if let Err(e) = super::model::fetch(dir, std::io::IsTerminal::is_terminal(&std::io::stderr())).await {
        println!("text search is off: the model could not be fetched ({e:#}); vector and id queries work");
    }
}

/// True once an index is published; false after [`READY_TIMEOUT`].
async fn wait_until_loaded(index: &SharedIndex) -> bool {
    let step = Duration::from_millis(50);
    let mut waited = Duration::ZERO;
    while waited < READY_TIMEOUT {
        if index.current().is_some() {
            return true;
        }
        tokio::time::sleep(step).await;
        waited += step;
    }
    false
}

/// The documents the printed examples use, noted while seeding.
#[derive(Default)]
struct Examples {
    first_two: Vec<CorpusDoc>,
    preferred_seen: bool,
}

impl Examples {
    fn see(&mut self, doc: &CorpusDoc) {
        self.preferred_seen |= doc.id == PREFERRED_EXAMPLE_ID;
        if self.first_two.len() < 2 {
            self.first_two.push(doc.clone());
        }
    }

    /// The "more like this" id.
    fn by_id(&self) -> Option<&str> {
        if self.preferred_seen {
            Some(PREFERRED_EXAMPLE_ID)
        } else {
            self.first_two.first().map(|d| d.id.as_str())
        }
    }

    /// A real document's embedding (another document than [`Self::by_id`]).
    fn vector(&self) -> Option<serde_json::Value> {
        let by_id = self.by_id()?;
        let doc = self.first_two.iter().find(|d| d.id != by_id)?;
        let value: serde_json::Value = serde_json::from_slice(&doc.value).ok()?;
        value.get("embedding").cloned()
    }
}

/// Prints where everything is and three requests to try, on stdout.
#[allow(clippy::too_many_arguments)] // one call site; a struct would only rename them
fn announce(
    addr: SocketAddr,
    index: &SharedIndex,
    source: &str,
    redis: &ChildRedis,
    dir: &Path,
    examples: &Examples,
    text_search: bool,
) -> anyhow::Result<()> {
    let (documents, dim) = index.current().map_or((0, 0), |i| (i.len(), i.dim()));
    let base = format!("http://{addr}");
    let pid = redis.pid().map_or_else(|| "?".to_owned(), |p| p.to_string());
    println!("semsearch demo is ready: {documents} documents ({dim} dimensions) from {source}");
    println!("  playground: {base}/   (open it in a browser)");
    println!("  service:    {base}   (Ctrl-C stops it and its Redis)");
    println!(
        "  redis:      private redis-server {}, pid {pid}, socket {} (removed on exit)",
        redis_binary::locate().map_or_else(|_| "?".to_owned(), |b| b.version.clone()),
        redis.socket().display()
    );
    println!();
    println!("Try:");
    if text_search {
        let body =
            serde_json::json!({"text": "how do I download a file from the command line", "k": 3, "with_text": false});
        println!("  # ask a question: embedded in process by all-MiniLM-L6-v2, the corpus's model");
        println!("  curl -s {base}/v1/search -H 'content-type: application/json' -d '{body}'");
        println!();
    }
    if let Some(id) = examples.by_id() {
        let body = serde_json::json!({"id": id, "k": 3, "with_text": false});
        println!("  # more like this: the 3 documents nearest to one article (ids are article URLs)");
        println!("  curl -s {base}/v1/search -H 'content-type: application/json' -d '{body}'");
        println!();
    }
    if let Some(vector) = examples.vector() {
        let path = dir.join("vector-query.json");
        let body = serde_json::json!({"vector": vector, "k": 3, "with_text": false});
        std::fs::write(&path, body.to_string()).with_context(|| format!("writing {}", path.display()))?;
        println!("  # vector search with a real document's embedding (the body, {dim} floats, is in a file)");
        println!("  curl -s {base}/v1/search -H 'content-type: application/json' -d @{}", path.display());
        println!();
    }
    println!("  # what is loaded");
    println!("  curl -s {base}/v1/stats");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(id: &str) -> CorpusDoc {
        CorpusDoc { id: id.to_owned(), value: format!("{{\"url\":\"{id}\",\"embedding\":[0.6,0.8]}}").into_bytes() }
    }

    #[test]
    fn examples_prefer_curl_and_take_the_vector_from_another_document() {
        let mut examples = Examples::default();
        for id in ["https://a/first", "https://a/second", PREFERRED_EXAMPLE_ID] {
            examples.see(&doc(id));
        }

        assert_eq!(examples.by_id(), Some(PREFERRED_EXAMPLE_ID));
        assert_eq!(examples.vector(), Some(serde_json::json!([0.6, 0.8])));
    }

    #[test]
    fn without_curl_the_first_document_is_the_id_and_the_second_gives_the_vector() {
        let mut examples = Examples::default();
        examples.see(&doc("https://a/first"));
        examples.see(&doc("https://a/second"));

        assert_eq!(examples.by_id(), Some("https://a/first"));
        assert!(examples.vector().is_some());
        assert_eq!(Examples::default().by_id(), None);
    }
}
