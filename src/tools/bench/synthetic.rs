//! Scale-test data: N random unit vectors written to Redis under the
//! embedding prefix through `tools::seed` (so the same never-overwrite rule
//! and key checks apply), as the chatbot's JSON or as a raw f32 blob.
//! Generated lazily, one batch at a time: 100k × 384 never sits in memory.

use indicatif::{ProgressBar, ProgressStyle};
use rand::{rngs::StdRng, SeedableRng};
use serde::Serialize;

use super::SyntheticSettings;
use super::{queries::random_unit, HarnessError};
use crate::tools::{
    corpus::{CorpusDoc, CorpusError},
    seed::{self, SeedOptions, SeedReport},
};

/// Value format of synthetic documents; the loader accepts both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyntheticFormat {
    /// `{"title","url","text","embedding":[…]}`, as the chatbot writes it.
    Json,
    /// 4 × dim bytes of little-endian f32.
    Blob,
}

/// Mixed into the seed so documents and random queries never coincide.
const DOCS_SEED_SALT: u64 = 0x5eed_d0c5;

/// Id of synthetic document `i` (a URL, like the chatbot's ids).
pub fn doc_id(i: usize) -> String {
    format!("https://synthetic.example/doc/{i:07}")
}

/// The documents, generated as they are consumed.
pub fn documents(
    n: usize,
    dim: usize,
    format: SyntheticFormat,
    seed: u64,
) -> impl Iterator<Item = Result<CorpusDoc, CorpusError>> {
    let mut rng = StdRng::seed_from_u64(seed ^ DOCS_SEED_SALT);
    (0..n).map(move |i| {
        let vector = random_unit(&mut rng, dim);
        let id = doc_id(i);
        let value = match format {
            SyntheticFormat::Json => serde_json::to_vec(&serde_json::json!({
                "title": format!("synthetic document {i}"),
                "url": id,
                "text": "",
                "embedding": vector,
            }))
            .expect("a JSON value of strings and floats always serializes"),
            SyntheticFormat::Blob => vector.iter().flat_map(|x| x.to_le_bytes()).collect(),
        };
        Ok(CorpusDoc { id, value })
    })
}

/// Writes the synthetic documents, with a progress bar on a terminal.
///
/// # Errors
/// [`HarnessError::Seed`] when Redis fails.
pub async fn fill(settings: &SyntheticSettings, seed: u64) -> Result<SeedReport, HarnessError> {
    let progress = ProgressBar::new(settings.docs as u64);
    progress.set_style(
        ProgressStyle::with_template("{spinner} {pos}/{len} synthetic documents [{wide_bar}] {eta} {msg}")
            .expect("the template is a valid literal")
            .progress_chars("=> "),
    );
    let mut conn = seed::connect(&settings.redis.info).await?;
    let docs = documents(settings.docs, settings.dim, settings.format, seed).inspect(|_| progress.inc(1));
    let options = SeedOptions { ttl_secs: Some(86_400), overwrite: settings.overwrite };
    let report = seed::seed(&mut conn, &settings.keys, docs, options, &progress).await?;
    progress.finish_and_clear();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::decode::decode_into;

    #[test]
    fn both_formats_decode_to_the_same_unit_vector() {
        let json: Vec<CorpusDoc> = documents(2, 16, SyntheticFormat::Json, 1).map(|d| d.expect("doc")).collect();
        let blob: Vec<CorpusDoc> = documents(2, 16, SyntheticFormat::Blob, 1).map(|d| d.expect("doc")).collect();

        for (j, b) in json.iter().zip(&blob) {
            let (mut from_json, mut from_blob) = (Vec::new(), Vec::new());
            decode_into(&j.value, &mut from_json).expect("json decodes");
            decode_into(&b.value, &mut from_blob).expect("blob decodes");
            assert_eq!(j.id, b.id);
            assert_eq!(from_json.len(), 16);
            for (x, y) in from_json.iter().zip(&from_blob) {
                assert!((x - y).abs() < 1e-6);
            }
        }
        assert_eq!(json[1].id, "https://synthetic.example/doc/0000001");
    }
}
