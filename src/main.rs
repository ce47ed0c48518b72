//! Thin shim: parse settings, start logging, build the app, run it.
//! `semsearch embed` embeds one text and prints it, for debugging a provider;
//! `semsearch openapi` prints the OpenAPI document.

use anyhow::Context;
use semsearch::{
    api,
    app::App,
    config::{Command, Settings},
    embed,
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
    let args = cli.into_serve_args();
    let settings = Settings::from_args(&args).context("invalid configuration")?;
    telemetry::init(&settings.log, settings.log_format);
    let app = App::build(settings).await?;
    app.run_until_stopped(shutdown_signal()).await
}
