//! `semsearch embed TEXT`: embeds one text straight from the configured
//! provider (no cache, no Redis) and prints it as JSON, to debug a
//! provider set-up.

use anyhow::Context;
use clap::Args;

use crate::{
    config::{ServeArgs, Settings},
    embed,
};

/// Flags of `semsearch embed`.
#[derive(Debug, Clone, Args)]
pub struct EmbedArgs {
    /// The text to embed (normalised as SEMSEARCH_TEXT_NORMALIZATION says).
    pub text: String,
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// Embeds `args.text` and returns the report `semsearch embed` prints.
///
/// # Errors
/// When the configuration is invalid, no embedder is configured, or the
/// provider fails.
pub async fn run(args: &EmbedArgs) -> anyhow::Result<serde_json::Value> {
    let settings = Settings::from_args(&args.serve).context("invalid configuration")?;
    let embedder = settings.embedder.as_ref().context("SEMSEARCH_EMBEDDER is not set: nothing to embed with")?;
    let (text, vector) = embed::embed_once(embedder, &args.text).await.context("embedding the text")?;
    Ok(serde_json::json!({
        "provider": embedder.provider.as_str(),
        "model": embedder.model,
        "text": text,
        "dimension": vector.len(),
        "vector": vector,
    }))
}
