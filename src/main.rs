//! Thin shim: parse settings, start logging, build the app, run it.

use anyhow::Context;
use semsearch::{app::App, config::Settings, shutdown::shutdown_signal, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Settings::from_cli().into_serve_args();
    let settings = Settings::from_args(&args).context("invalid configuration")?;
    telemetry::init(&settings.log, settings.log_format);
    let app = App::build(settings).await?;
    app.run_until_stopped(shutdown_signal()).await
}
