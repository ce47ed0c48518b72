//! Thin shim: parse settings, start logging, build the app, run it.
//! `semsearch embed` embeds one text and prints it, for debugging a provider;
//! the other subcommands dispatch to their library modules. `semsearch openapi` prints the
//! OpenAPI document.

use anyhow::Context;
use semsearch::{
    api,
    app::App,
    commands,
    config::{BenchSettings, Command, SeedSettings, Settings},
    demo, embed, harness,
    shutdown::shutdown_signal,
    telemetry,
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Settings::from_cli();
    if let Some(Command::Openapi) = &cli.command {
        print!("{}", api::openapi::yaml());
        return Ok(());
    }
    if let Some(Command::Embed(args)) = &cli.command {
        let settings = Settings::from_args(&args.serve).context("invalid configuration")?;
        let embedder = settings.embedder.as_ref().context("SEMSEARCH_EMBEDDER is not set: nothing to embed with")?;
        let (text, vector) = embed::embed_once(embedder, &args.text).await.context("embedding the text")?;
        let report = serde_json::json!({
            "provider": embedder.provider.as_str(),
            "model": embedder.model,
            "text": text,
            "dimension": vector.len(),
            "vector": vector,
        });
        println!("{report}");
        return Ok(());
    }
    if let Some(Command::Demo(args)) = &cli.command {
        telemetry::init(&args.log, semsearch::config::LogFormat::Pretty);
        let settings = demo::DemoSettings { bind: args.bind, corpus: args.corpus.clone() };
        return demo::run(settings, shutdown_signal()).await;
    }
    if let Some(Command::Healthcheck(args)) = &cli.command {
        let timeout = std::time::Duration::from_secs(args.timeout_secs.max(1));
        return commands::healthcheck(args.bind, timeout).await.context("semsearch is not ready");
    }
    if let Some(Command::Bench(args)) = &cli.command {
        let settings = BenchSettings::from_args(args).context("invalid configuration")?;
        telemetry::init("warn,semsearch=info", semsearch::config::LogFormat::Pretty);
        let report = harness::run(&settings).await.context("benchmark")?;
        print!("{}", report.table());
        harness::write_outputs(&settings, &report).context("writing the benchmark outputs")?;
        return Ok(());
    }
    if let Some(Command::Seed(args)) = &cli.command {
        let settings = SeedSettings::from_args(args).context("invalid configuration")?;
        telemetry::init("warn", semsearch::config::LogFormat::Pretty);
        let report = commands::seed_file(&settings).await.context("seeding Redis")?;
        println!(
            "seed: {} written, {} skipped (existing keys), {} bad lines, into {}",
            report.written,
            report.skipped_existing,
            report.bad_lines,
            settings.redis.display()
        );
        return Ok(());
    }
    let args = cli.into_serve_args();
    let settings = Settings::from_args(&args).context("invalid configuration")?;
    telemetry::init(&settings.log, settings.log_format);
    let app = App::build(settings).await?;
    app.run_until_stopped(shutdown_signal()).await
}
