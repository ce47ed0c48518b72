//! `semsearch embed TEXT`: embeds one text straight from the configured
//! provider (no cache, no Redis) and prints it as JSON, to debug a
//! provider set-up.

use anyhow::Context;
use clap::Args;

use crate::{
    config::{EmbedderArgs, KeyArgs},
    embed,
};

/// Flags of `semsearch embed`: the text-search flags (and the key names the
/// query-cache prefix is checked against), nothing of Redis or HTTP.
#[derive(Debug, Clone, Args)]
pub struct EmbedArgs {
    /// The text to embed (normalised as SEMSEARCH_TEXT_NORMALIZATION says).
    pub text: String,
    #[command(flatten)]
    pub embedder: EmbedderArgs,
    #[command(flatten)]
    pub keys: KeyArgs,
}

/// Embeds `args.text` and returns the report `semsearch embed` prints.
///
/// # Errors
/// When the configuration is invalid, no embedder is configured, or the
/// provider fails.
pub async fn run(args: &EmbedArgs) -> anyhow::Result<serde_json::Value> {
    let keys = args.keys.key_space().context("invalid configuration")?;
    let settings = args.embedder.settings(&keys).context("invalid configuration")?;
    let embedder = settings.as_ref().context("SEMSEARCH_EMBEDDER is not set: nothing to embed with")?;
    let (text, vector) = embed::embed_once(embedder, &args.text).await.context("embedding the text")?;
    Ok(serde_json::json!({
        "provider": embedder.kind().as_str(),
        "model": embedder.model,
        "text": text,
        "dimension": vector.len(),
        "vector": vector,
    }))
}
