//! The command line: [`Cli`], its [`Command`]s, and [`run`], which
//! dispatches each to the library code that implements it. `main.rs` only
//! calls [`run`].
//!
//! `serve` (the default) and `openapi` are the service; the other
//! subcommands are tools (see [`crate::tools`]) and exist only when the
//! `tools` feature is on.

use anyhow::Context;
use clap::{Parser, Subcommand};

#[cfg(feature = "tools")]
use crate::telemetry::LogFormat;
#[cfg(feature = "tools")]
use crate::tools::{
    bench::{self, BenchArgs, BenchSettings},
    demo::{self, DemoArgs, DemoSettings},
    embed_once::{self, EmbedArgs},
    healthcheck::{self, HealthcheckArgs},
    model::{self, ModelCommand},
    seed::{self, SeedArgs, SeedSettings},
};
use crate::{
    api,
    app::{App, RouterApp},
    config::{stderr_color, RouterArgs, ServeArgs, Settings},
    shutdown::shutdown_signal,
    telemetry,
};

/// `semsearch`: exact cosine top-k over the embeddings a chatbot keeps in Redis.
#[derive(Debug, Parser)]
#[command(name = "semsearch", version = crate::build_info::LONG_VERSION, about, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Flags of `serve`, accepted without the subcommand too.
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load embeddings from Redis and serve search over HTTP (the default).
    Serve(Box<ServeArgs>),
    /// Serve the search API in front of exact shards (replicas started with
    /// SEMSEARCH_SHARD=i/n): fan out to one replica per shard, merge the
    /// per-shard top-k; answers equal a single node's.
    Router(Box<RouterArgs>),
    /// Print the OpenAPI document (YAML) this build serves at /openapi.yaml;
    /// `semsearch openapi > openapi.yaml` regenerates the checked-in copy.
    Openapi,
    /// Embed one text with the configured provider and print the vector and
    /// its dimension (no cache, no Redis): to debug a provider set-up.
    #[cfg(feature = "tools")]
    Embed(EmbedArgs),
    /// Load a corpus file (JSONL, or .jsonl.gz) in the chatbot's format into
    /// Redis, as `SET cache:embedding:<url> <line> EX <ttl>`.
    #[cfg(feature = "tools")]
    Seed(SeedArgs),
    /// Try semsearch with nothing else installed: start a private Redis
    /// (PATH's redis-server 7.x, else Debian's fetched into the cache dir),
    /// load the built-in demo corpus, serve, print example requests.
    /// Ctrl-C stops the service and the Redis.
    #[cfg(feature = "tools")]
    Demo(DemoArgs),
    /// GET /readyz on the local server; exit 0 when ready (the container HEALTHCHECK).
    #[cfg(feature = "tools")]
    Healthcheck(HealthcheckArgs),
    /// Measure a running semsearch: QPS, latency percentiles and errors per
    /// level, in a closed loop (--concurrency) or an open loop (--rate).
    #[cfg(feature = "tools")]
    Bench(BenchArgs),
    /// The in-process embedder's model files: `semsearch model fetch`.
    #[cfg(feature = "tools")]
    #[command(subcommand)]
    Model(ModelCommand),
    /// The redis-server the tools run: `semsearch redis fetch`.
    #[cfg(feature = "tools")]
    #[command(subcommand)]
    Redis(RedisCommand),
}

/// `semsearch redis …`.
#[cfg(feature = "tools")]
#[derive(Debug, Clone, Subcommand)]
pub enum RedisCommand {
    /// Print the directory holding the redis-server and redis-cli that the
    /// demo and the tests run: PATH's when it is Redis 7 or newer, else a
    /// private copy of Debian's, fetched into the cache dir the first time.
    /// Scripts put it first on PATH.
    Fetch,
}

impl Cli {
    /// The serve flags, whether or not `serve` was spelled out.
    pub fn into_serve_args(self) -> ServeArgs {
        match self.command {
            Some(Command::Serve(args)) => *args,
            _ => self.serve,
        }
    }
}

/// Parses the process's command line and runs what it asks for.
///
/// # Errors
/// Whatever the chosen command fails with, with context for the user.
pub async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Openapi) => {
            print!("{}", api::openapi::yaml());
            Ok(())
        }
        #[cfg(feature = "tools")]
        Some(Command::Embed(args)) => {
            println!("{}", embed_once::run(&args).await?);
            Ok(())
        }
        #[cfg(feature = "tools")]
        Some(Command::Demo(args)) => {
            telemetry::init(&args.log, LogFormat::Pretty, stderr_color());
            demo::run(DemoSettings { bind: args.bind, corpus: args.corpus }, shutdown_signal()).await
        }
        #[cfg(feature = "tools")]
        Some(Command::Healthcheck(args)) => {
            let timeout = std::time::Duration::from_secs(args.timeout_secs.max(1));
            healthcheck::healthcheck(args.bind, timeout).await.context("semsearch is not ready")
        }
        #[cfg(feature = "tools")]
        Some(Command::Bench(args)) => {
            let settings = BenchSettings::from_args(&args).context("invalid configuration")?;
            telemetry::init("warn,semsearch=info", LogFormat::Pretty, stderr_color());
            let report = bench::run(&settings).await.context("benchmark")?;
            print!("{}", report.table());
            bench::write_outputs(&settings, &report).context("writing the benchmark outputs")
        }
        #[cfg(feature = "tools")]
        Some(Command::Seed(args)) => {
            let settings = SeedSettings::from_args(&args).context("invalid configuration")?;
            telemetry::init("warn", LogFormat::Pretty, stderr_color());
            let report = seed::seed_file(&settings).await.context("seeding Redis")?;
            println!(
                "seed: {} written, {} skipped (existing keys), {} bad lines, into {}",
                report.written,
                report.skipped_existing,
                report.bad_lines,
                settings.redis.display()
            );
            Ok(())
        }
        #[cfg(feature = "tools")]
        Some(Command::Model(ModelCommand::Fetch(args))) => {
            let dir = args
                .dir
                .or_else(crate::config::model_dir)
                .context("no model directory: pass --dir, or set SEMSEARCH_MODEL_DIR, XDG_CACHE_HOME or HOME")?;
            let report = model::fetch(dir, std::io::IsTerminal::is_terminal(&std::io::stderr())).await?;
            println!("{}", report.dir.display());
            Ok(())
        }
        #[cfg(feature = "tools")]
        Some(Command::Redis(RedisCommand::Fetch)) => {
            let binaries = tokio::task::spawn_blocking(crate::tools::redis_binary::locate)
                .await
                .context("locating redis-server")??;
            println!("{}", binaries.bin_dir().display());
            Ok(())
        }
        Some(Command::Serve(args)) => serve(&args).await,
        Some(Command::Router(args)) => {
            let (settings, router) = args.settings().context("invalid configuration")?;
            let telemetry = start_telemetry(&settings, "semsearch-router")?;
            let result = match RouterApp::build(settings, router).await {
                Ok(app) => app.run_until_stopped(shutdown_signal()).await,
                Err(e) => Err(e),
            };
            telemetry.shutdown().await;
            result
        }
        None => serve(&cli.serve).await,
    }
}

/// `semsearch serve`: build the settings, start logging (and traces), build
/// the app, run it, then send the last spans.
async fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    let settings = Settings::from_args(args).context("invalid configuration")?;
    let telemetry = start_telemetry(&settings, "semsearch")?;
    let result = match App::build(settings).await {
        Ok(app) => app.run_until_stopped(shutdown_signal()).await,
        Err(e) => Err(e),
    };
    telemetry.shutdown().await;
    result
}

/// Logs, and traces when OTEL_EXPORTER_OTLP_ENDPOINT is set.
fn start_telemetry(settings: &Settings, default_service: &'static str) -> anyhow::Result<telemetry::Telemetry> {
    telemetry::init_service(&settings.log, settings.log_format, stderr_color(), &settings.traces, default_service)
        .context("invalid configuration")
}
