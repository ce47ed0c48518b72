//! BERT's encoder for sentence embeddings: our own forward pass, shaped for
//! small batches of short texts on a CPU.
//!
//! Why not candle's `BertModel`: it was slower per short question than a
//! plain numpy forward pass (the figures are in docs/benchmarks.md,
//! "Encoder"). At 12 tokens the pass is six layers of four matrix products
//! with 12 rows: 255 MFLOP and 42 MB of weights streamed once, so every
//! per-call cost shows. Here weights are packed once at load into the
//! register tile's panel order ([`super::ops`]), bias, GELU and residual
//! are fused into the product's store, activations live in a [`Scratch`]
//! reused across calls (no allocation per op), and attention runs per head
//! on exactly each sequence's tokens. General matrix-product crates
//! (`gemm`, which packs per call, and `matrixmultiply`) were slower than
//! the hand tile at these shapes (same section).
//!
//! # Ragged batches
//! A batch is a list of token sequences laid end to end, without padding:
//! every op except attention works row by row, and attention runs per
//! sequence. This computes what sentence-transformers computes for a batch
//! padded to its longest input (a masked key gets weight exactly 0 there, a
//! padded row is never pooled), without the padded rows' work, so a text's
//! vector does not depend on what it is batched with.
//!
//! The output is sentence-transformers' `all-MiniLM-L6-v2` pipeline after
//! the encoder: mean of the token states, then L2 normalisation.

use std::ops::Range;

use serde::Deserialize;
use thiserror::Error;

use super::{
    kernel::BertKernel,
    ops::{self, AttentionArgs, Epilogue, LinearArgs, BLOCK},
    weights::{TensorFile, WeightsError},
};

/// The fields of a Hugging Face BERT `config.json` the forward pass uses.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub max_position_embeddings: usize,
    pub type_vocab_size: usize,
    pub layer_norm_eps: f64,
    pub hidden_act: String,
    #[serde(default = "absolute")]
    pub position_embedding_type: String,
}

fn absolute() -> String {
    "absolute".to_owned()
}

/// Why the weights cannot be used by this forward pass.
#[derive(Debug, Error)]
pub enum BertError {
    #[error("config.json: {field} = {value} is not supported ({reason})")]
    Unsupported { field: &'static str, value: String, reason: &'static str },
    #[error(transparent)]
    Weights(#[from] WeightsError),
}

/// Why one forward pass was refused. All are caught before any work.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum ForwardError {
    #[error("token id {id} is outside the vocabulary of {vocab}")]
    TokenOutOfRange { id: u32, vocab: usize },
    #[error("a sequence of {len} tokens exceeds the {max} positions the model has")]
    TooLong { len: usize, max: usize },
    #[error("sequence bounds are not increasing offsets into the ids")]
    BadBounds,
}

impl BertConfig {
    /// Checks what the kernels assume: 32-wide heads, widths that are whole
    /// 32-column blocks, the exact GELU, absolute positions.
    ///
    /// # Errors
    /// The first unsupported field.
    pub fn validate(&self) -> Result<(), BertError> {
        let unsupported = |field, value: String, reason| Err(BertError::Unsupported { field, value, reason });
        if self.num_attention_heads == 0 || self.hidden_size != self.num_attention_heads * BLOCK {
            return unsupported("hidden_size", self.hidden_size.to_string(), "must be 32 × num_attention_heads");
        }
        if self.intermediate_size == 0 || !self.intermediate_size.is_multiple_of(BLOCK) {
            return unsupported("intermediate_size", self.intermediate_size.to_string(), "must be a multiple of 32");
        }
        if self.hidden_act != "gelu" {
            return unsupported("hidden_act", self.hidden_act.clone(), "only the exact \"gelu\" is implemented");
        }
        if self.position_embedding_type != "absolute" {
            return unsupported("position_embedding_type", self.position_embedding_type.clone(), "must be absolute");
        }
        if self.type_vocab_size == 0 || self.vocab_size == 0 || self.max_position_embeddings == 0 {
            return unsupported("type_vocab_size", self.type_vocab_size.to_string(), "embeddings must be non-empty");
        }
        if !(self.layer_norm_eps > 0.0 && self.layer_norm_eps < 1.0) {
            return unsupported("layer_norm_eps", self.layer_norm_eps.to_string(), "must be in (0, 1)");
        }
        Ok(())
    }
}

/// A linear layer with its weights packed into panels (see [`ops::pack_panels`]).
#[derive(Debug)]
struct Linear {
    panels: Vec<f32>,
    bias: Vec<f32>,
    /// Input width.
    k: usize,
}

impl Linear {
    /// Reads `{name}.weight` (`[n][k]`) and `{name}.bias` for each name and
    /// stacks them along the output (Q, K and V become one product).
    fn read(file: &mut TensorFile, names: &[String], n: usize, k: usize) -> Result<Self, WeightsError> {
        let mut weight = Vec::with_capacity(names.len() * n * k);
        let mut bias = Vec::with_capacity(names.len() * n);
        for name in names {
            weight.extend(file.read_f32(&format!("{name}.weight"), &[n, k])?);
            bias.extend(file.read_f32(&format!("{name}.bias"), &[n])?);
        }
        Ok(Self { panels: ops::pack_panels(&weight, names.len() * n, k), bias, k })
    }

    fn n(&self) -> usize {
        self.bias.len()
    }
}

#[derive(Debug)]
struct Norm {
    gamma: Vec<f32>,
    beta: Vec<f32>,
}

impl Norm {
    fn read(file: &mut TensorFile, name: &str, width: usize) -> Result<Self, WeightsError> {
        Ok(Self {
            gamma: file.read_f32(&format!("{name}.weight"), &[width])?,
            beta: file.read_f32(&format!("{name}.bias"), &[width])?,
        })
    }
}

#[derive(Debug)]
struct Layer {
    qkv: Linear,
    attention_out: Linear,
    attention_norm: Norm,
    up: Linear,
    down: Linear,
    out_norm: Norm,
}

/// The encoder's weights, loaded once and read-only afterwards (shared by
/// every forward pass, on any thread).
#[derive(Debug)]
pub struct BertModel {
    config: BertConfig,
    eps: f32,
    word: Vec<f32>,
    position: Vec<f32>,
    /// Row 0 of the token-type table: every token is of type 0 for one sentence.
    token_type: Vec<f32>,
    embedding_norm: Norm,
    layers: Vec<Layer>,
}

/// Working memory of one forward pass, reused across calls so a pass
/// allocates nothing once the buffers have grown to the largest batch seen
/// (the inference pool bounds that with its token budget).
#[derive(Debug, Default)]
pub struct Scratch {
    x: Vec<f32>,
    mid: Vec<f32>,
    qkv: Vec<f32>,
    ctx: Vec<f32>,
    inter: Vec<f32>,
    attention: [AttentionScratch; 2],
}

#[derive(Debug, Default)]
struct AttentionScratch {
    k_t: Vec<f32>,
    scores: Vec<f32>,
}

/// Grows `buf` to at least `len` (exactly: the pool's memory bound is
/// rows × widths, not twice that) and returns its first `len` values.
fn sized(buf: &mut Vec<f32>, len: usize) -> &mut [f32] {
    if buf.len() < len {
        buf.reserve_exact(len - buf.len());
        buf.resize(len, 0.0);
    }
    &mut buf[..len]
}

impl Scratch {
    /// Bytes one row (token) of a pass needs for a model of `config`:
    /// hidden state twice, Q, K and V, attention output, intermediate.
    pub fn bytes_per_token(config: &BertConfig) -> usize {
        4 * (6 * config.hidden_size + config.intermediate_size)
    }

    /// Bytes held, for memory reports.
    pub fn bytes(&self) -> usize {
        let attention: usize = self.attention.iter().map(|a| a.k_t.capacity() + a.scores.capacity()).sum();
        4 * (self.x.capacity()
            + self.mid.capacity()
            + self.qkv.capacity()
            + self.ctx.capacity()
            + self.inter.capacity()
            + attention)
    }
}

/// How many threads one forward pass uses: products split their output
/// panels, attention its heads, between the caller and one helper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threads {
    One,
    /// Two halves through `rayon::join`: run inside the intended pool
    /// (`ThreadPool::install`), or the halves go to the global one.
    Two,
}

impl BertModel {
    /// Reads the weights named by `config` from `file`, packing every
    /// linear layer. The pooler is not read: mean pooling does not use it.
    ///
    /// # Errors
    /// An unsupported config, or a tensor missing or of the wrong shape.
    pub fn load(config: BertConfig, file: &mut TensorFile) -> Result<Self, BertError> {
        config.validate()?;
        let h = config.hidden_size;
        let i = config.intermediate_size;
        let word = file.read_f32("embeddings.word_embeddings.weight", &[config.vocab_size, h])?;
        let position = file.read_f32("embeddings.position_embeddings.weight", &[config.max_position_embeddings, h])?;
        let mut token_type = file.read_f32("embeddings.token_type_embeddings.weight", &[config.type_vocab_size, h])?;
        token_type.truncate(h);
        let embedding_norm = Norm::read(file, "embeddings.LayerNorm", h)?;
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for l in 0..config.num_hidden_layers {
            let p = format!("encoder.layer.{l}");
            let qkv_names = ["query", "key", "value"].map(|n| format!("{p}.attention.self.{n}"));
            layers.push(Layer {
                qkv: Linear::read(file, &qkv_names, h, h)?,
                attention_out: Linear::read(file, &[format!("{p}.attention.output.dense")], h, h)?,
                attention_norm: Norm::read(file, &format!("{p}.attention.output.LayerNorm"), h)?,
                up: Linear::read(file, &[format!("{p}.intermediate.dense")], i, h)?,
                down: Linear::read(file, &[format!("{p}.output.dense")], h, i)?,
                out_norm: Norm::read(file, &format!("{p}.output.LayerNorm"), h)?,
            });
        }
        let eps = config.layer_norm_eps as f32;
        Ok(Self { config, eps, word, position, token_type, embedding_norm, layers })
    }

    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    /// Output dimension (384 for MiniLM).
    pub fn dim(&self) -> usize {
        self.config.hidden_size
    }

    /// Bytes of weights held, for memory reports.
    pub fn bytes(&self) -> usize {
        let linear = |l: &Linear| l.panels.len() + l.bias.len();
        let norm = |n: &Norm| n.gamma.len() + n.beta.len();
        let layers: usize = self
            .layers
            .iter()
            .map(|l| {
                linear(&l.qkv)
                    + linear(&l.attention_out)
                    + linear(&l.up)
                    + linear(&l.down)
                    + norm(&l.attention_norm)
                    + norm(&l.out_norm)
            })
            .sum();
        4 * (self.word.len() + self.position.len() + self.token_type.len() + norm(&self.embedding_norm) + layers)
    }

    /// Embeds the sequences `ids[bounds[s]..bounds[s + 1]]` (token ids with
    /// `[CLS]`/`[SEP]` already in place) and writes one unit-length vector
    /// of [`Self::dim`] floats per sequence into `out` (cleared first).
    ///
    /// An empty sequence gets the zero vector (nothing to average); the
    /// tokenizer never produces one.
    ///
    /// # Errors
    /// An id outside the vocabulary, a sequence longer than the position
    /// table, or bounds that are not increasing offsets into `ids`.
    pub fn forward(
        &self,
        ids: &[u32],
        bounds: &[usize],
        kernel: BertKernel,
        threads: Threads,
        scratch: &mut Scratch,
        out: &mut Vec<f32>,
    ) -> Result<(), ForwardError> {
        let h = self.config.hidden_size;
        let rows = ids.len();
        let seqs = sequences(bounds, rows)?;
        if let Some(&id) = ids.iter().find(|&&id| id as usize >= self.config.vocab_size) {
            return Err(ForwardError::TokenOutOfRange { id, vocab: self.config.vocab_size });
        }
        if let Some(len) = seqs.iter().map(|s| s.len()).find(|&l| l > self.config.max_position_embeddings) {
            return Err(ForwardError::TooLong { len, max: self.config.max_position_embeddings });
        }
        if rows == 0 {
            mean_pool_normalized(&[], 0, h, &seqs, out);
            return Ok(());
        }
        let longest = seqs.iter().map(|s| s.len()).max().unwrap_or(0);
        let heads = self.config.num_attention_heads;
        let Scratch { x, mid, qkv, ctx, inter, attention } = scratch;
        let x = sized(x, rows * h);
        let mid = sized(mid, rows * h);
        let qkv = sized(qkv, rows * 3 * h);
        let ctx = sized(ctx, rows * h);
        let inter = sized(inter, rows * self.config.intermediate_size);
        for a in attention.iter_mut() {
            sized(&mut a.k_t, longest * BLOCK);
            sized(&mut a.scores, longest);
        }

        self.embed_tokens(ids, &seqs, x);
        for layer in &self.layers {
            linear(kernel, threads, &layer.qkv, x, rows, Epilogue::Bias, qkv);
            attend(kernel, threads, qkv, rows, heads, &seqs, attention, ctx);
            linear(kernel, threads, &layer.attention_out, ctx, rows, Epilogue::Residual(x), mid);
            ops::layer_norm(mid, rows, &layer.attention_norm.gamma, &layer.attention_norm.beta, self.eps);
            linear(kernel, threads, &layer.up, mid, rows, Epilogue::Gelu, inter);
            linear(kernel, threads, &layer.down, inter, rows, Epilogue::Residual(mid), x);
            ops::layer_norm(x, rows, &layer.out_norm.gamma, &layer.out_norm.beta, self.eps);
        }
        mean_pool_normalized(x, rows, h, &seqs, out);
        Ok(())
    }

    /// Word + token type 0 + position (in HF's order of additions), then LayerNorm.
    fn embed_tokens(&self, ids: &[u32], seqs: &[Range<usize>], x: &mut [f32]) {
        let h = self.config.hidden_size;
        let rows = ids.len();
        for seq in seqs {
            for (pos, r) in seq.clone().enumerate() {
                let word = &self.word[ids[r] as usize * h..][..h];
                let position = &self.position[pos * h..][..h];
                for b in 0..h / BLOCK {
                    let dst = &mut x[b * rows * BLOCK + r * BLOCK..][..BLOCK];
                    let cols = b * BLOCK..(b + 1) * BLOCK;
                    for (((d, w), t), p) in
                        dst.iter_mut().zip(&word[cols.clone()]).zip(&self.token_type[cols.clone()]).zip(&position[cols])
                    {
                        *d = (w + t) + p;
                    }
                }
            }
        }
        ops::layer_norm(x, rows, &self.embedding_norm.gamma, &self.embedding_norm.beta, self.eps);
    }
}

/// Checks `bounds` (increasing, from 0 to `rows`) and turns them into ranges.
fn sequences(bounds: &[usize], rows: usize) -> Result<Vec<Range<usize>>, ForwardError> {
    if bounds.first().copied().unwrap_or(0) != 0
        || bounds.last().copied().unwrap_or(0) != rows
        || bounds.windows(2).any(|w| w[0] > w[1])
    {
        return Err(ForwardError::BadBounds);
    }
    Ok(bounds.windows(2).map(|w| w[0]..w[1]).collect())
}

/// `y = epilogue(x · Wᵀ + b)`; with two threads each takes half the output panels.
fn linear(kernel: BertKernel, threads: Threads, w: &Linear, x: &[f32], rows: usize, epilogue: Epilogue, y: &mut [f32]) {
    let panels = w.n() / BLOCK;
    let y = &mut y[..rows * w.n()];
    if threads == Threads::One || panels < 2 {
        kernel.linear(LinearArgs { x, rows, k: w.k, weights: &w.panels, bias: &w.bias, epilogue, y });
        return;
    }
    let mid = panels / 2;
    let (w1, w2) = w.panels.split_at(mid * w.k * BLOCK);
    let (b1, b2) = w.bias.split_at(mid * BLOCK);
    let (y1, y2) = y.split_at_mut(mid * rows * BLOCK);
    let (e1, e2) = match epilogue {
        Epilogue::Residual(r) => {
            let (r1, r2) = r.split_at(mid * rows * BLOCK);
            (Epilogue::Residual(r1), Epilogue::Residual(r2))
        }
        other => (other, other),
    };
    rayon::join(
        || kernel.linear(LinearArgs { x, rows, k: w.k, weights: w1, bias: b1, epilogue: e1, y: y1 }),
        || kernel.linear(LinearArgs { x, rows, k: w.k, weights: w2, bias: b2, epilogue: e2, y: y2 }),
    );
}

/// Self-attention of every head of every sequence: `qkv` is blocked
/// `[3 · heads][rows][32]` (Q heads, then K, then V), `ctx` `[heads][rows][32]`.
#[allow(clippy::too_many_arguments)]
fn attend(
    kernel: BertKernel,
    threads: Threads,
    qkv: &[f32],
    rows: usize,
    heads: usize,
    seqs: &[Range<usize>],
    scratch: &mut [AttentionScratch; 2],
    ctx: &mut [f32],
) {
    let block = rows * BLOCK;
    let run = |first_head: usize, ctx: &mut [f32], s: &mut AttentionScratch| {
        for (i, out) in ctx.chunks_exact_mut(block).enumerate() {
            let h = first_head + i;
            let q = &qkv[h * block..][..block];
            let k = &qkv[(heads + h) * block..][..block];
            let v = &qkv[(2 * heads + h) * block..][..block];
            for seq in seqs {
                let span = seq.start * BLOCK..seq.end * BLOCK;
                kernel.attention(AttentionArgs {
                    q: &q[span.clone()],
                    k: &k[span.clone()],
                    v: &v[span.clone()],
                    out: &mut out[span],
                    k_t: &mut s.k_t,
                    scores: &mut s.scores,
                });
            }
        }
    };
    let ctx = &mut ctx[..heads * block];
    let [s1, s2] = scratch;
    if threads == Threads::One || heads < 2 {
        run(0, ctx, s1);
    } else {
        let mid = heads / 2;
        let (c1, c2) = ctx.split_at_mut(mid * block);
        rayon::join(|| run(0, c1, s1), || run(mid, c2, s2));
    }
}

/// Mean of each sequence's rows, then `v / max(‖v‖, 1e-12)`, as
/// sentence-transformers' Pooling and Normalize modules compute them.
fn mean_pool_normalized(x: &[f32], rows: usize, h: usize, seqs: &[Range<usize>], out: &mut Vec<f32>) {
    out.clear();
    out.resize(seqs.len() * h, 0.0);
    for (seq, v) in seqs.iter().zip(out.chunks_exact_mut(h)) {
        if seq.is_empty() {
            continue;
        }
        for (b, cols) in v.chunks_exact_mut(BLOCK).enumerate() {
            let block = &x[b * rows * BLOCK..][..rows * BLOCK];
            for r in seq.clone() {
                for (c, val) in cols.iter_mut().zip(&block[r * BLOCK..(r + 1) * BLOCK]) {
                    *c += val;
                }
            }
        }
        let count = seq.len() as f32;
        for c in v.iter_mut() {
            *c /= count;
        }
        let norm = v.iter().map(|c| c * c).sum::<f32>().sqrt().max(1e-12);
        for c in v.iter_mut() {
            *c /= norm;
        }
    }
}

#[cfg(test)]
mod tests {
    //! The optimised pass against a plain f64 transcription of Hugging
    //! Face's BertModel (padded batch, additive mask, erf GELU) on a small
    //! random BERT, so the arithmetic is checked without the model files.

    use rand::{rngs::StdRng, Rng, SeedableRng};

    use super::*;

    const SEED: u64 = 11;

    fn tiny_config() -> BertConfig {
        BertConfig {
            vocab_size: 50,
            hidden_size: 64,
            num_hidden_layers: 2,
            num_attention_heads: 2,
            intermediate_size: 96,
            max_position_embeddings: 40,
            type_vocab_size: 2,
            layer_norm_eps: 1e-12,
            hidden_act: "gelu".to_owned(),
            position_embedding_type: "absolute".to_owned(),
        }
    }

    /// Random tensors of the config's shapes, as name → (shape, values).
    fn random_tensors(c: &BertConfig, rng: &mut StdRng) -> Vec<(String, Vec<usize>, Vec<f32>)> {
        let (h, i) = (c.hidden_size, c.intermediate_size);
        let mut shapes: Vec<(String, Vec<usize>)> = vec![
            ("embeddings.word_embeddings.weight".into(), vec![c.vocab_size, h]),
            ("embeddings.position_embeddings.weight".into(), vec![c.max_position_embeddings, h]),
            ("embeddings.token_type_embeddings.weight".into(), vec![c.type_vocab_size, h]),
            ("embeddings.LayerNorm.weight".into(), vec![h]),
            ("embeddings.LayerNorm.bias".into(), vec![h]),
        ];
        for l in 0..c.num_hidden_layers {
            let p = format!("encoder.layer.{l}");
            for n in ["query", "key", "value"] {
                shapes.push((format!("{p}.attention.self.{n}.weight"), vec![h, h]));
                shapes.push((format!("{p}.attention.self.{n}.bias"), vec![h]));
            }
            shapes.push((format!("{p}.attention.output.dense.weight"), vec![h, h]));
            shapes.push((format!("{p}.attention.output.dense.bias"), vec![h]));
            shapes.push((format!("{p}.attention.output.LayerNorm.weight"), vec![h]));
            shapes.push((format!("{p}.attention.output.LayerNorm.bias"), vec![h]));
            shapes.push((format!("{p}.intermediate.dense.weight"), vec![i, h]));
            shapes.push((format!("{p}.intermediate.dense.bias"), vec![i]));
            shapes.push((format!("{p}.output.dense.weight"), vec![h, i]));
            shapes.push((format!("{p}.output.dense.bias"), vec![h]));
            shapes.push((format!("{p}.output.LayerNorm.weight"), vec![h]));
            shapes.push((format!("{p}.output.LayerNorm.bias"), vec![h]));
        }
        shapes
            .into_iter()
            .map(|(name, shape)| {
                let n: usize = shape.iter().product();
                let (lo, hi) = if name.ends_with("LayerNorm.weight") { (0.5, 1.5) } else { (-0.3, 0.3) };
                let values = (0..n).map(|_| rng.random_range(lo..hi)).collect();
                (name, shape, values)
            })
            .collect()
    }

    fn write_safetensors(path: &std::path::Path, tensors: &[(String, Vec<usize>, Vec<f32>)]) {
        let mut header = serde_json::Map::new();
        let mut data = Vec::new();
        for (name, shape, values) in tensors {
            let begin = data.len();
            data.extend(values.iter().flat_map(|v| v.to_le_bytes()));
            header.insert(
                name.clone(),
                serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [begin, data.len()]}),
            );
        }
        let header = serde_json::to_vec(&header).expect("header");
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend(header);
        bytes.extend(data);
        std::fs::write(path, bytes).expect("write safetensors");
    }

    /// HF BertModel + mean pooling + normalisation, in f64, on a padded batch.
    fn reference(c: &BertConfig, t: &std::collections::HashMap<String, Vec<f32>>, seqs: &[Vec<u32>]) -> Vec<Vec<f64>> {
        let (h, heads, inter) = (c.hidden_size, c.num_attention_heads, c.intermediate_size);
        let d = h / heads;
        let w = |n: &str| t[n].iter().map(|&v| v as f64).collect::<Vec<f64>>();
        let longest = seqs.iter().map(Vec::len).max().unwrap_or(0);
        let lin = |x: &[Vec<f64>], name: &str, n: usize, k: usize| -> Vec<Vec<f64>> {
            let (wt, b) = (w(&format!("{name}.weight")), w(&format!("{name}.bias")));
            x.iter()
                .map(|row| (0..n).map(|o| b[o] + (0..k).map(|i| row[i] * wt[o * k + i]).sum::<f64>()).collect())
                .collect()
        };
        let ln = |x: &mut [Vec<f64>], name: &str| {
            let (g, b) = (w(&format!("{name}.weight")), w(&format!("{name}.bias")));
            for row in x.iter_mut() {
                let mean = row.iter().sum::<f64>() / h as f64;
                let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / h as f64;
                for (j, v) in row.iter_mut().enumerate() {
                    *v = (*v - mean) / (var + c.layer_norm_eps).sqrt() * g[j] + b[j];
                }
            }
        };
        let mut out = Vec::new();
        for ids in seqs {
            // Pad to the longest input with id 0, mask = 1 for real tokens.
            let mask: Vec<f64> = (0..longest).map(|p| if p < ids.len() { 1.0 } else { 0.0 }).collect();
            let (word, pos, typ) = (
                w("embeddings.word_embeddings.weight"),
                w("embeddings.position_embeddings.weight"),
                w("embeddings.token_type_embeddings.weight"),
            );
            let mut x: Vec<Vec<f64>> = (0..longest)
                .map(|p| {
                    let id = ids.get(p).copied().unwrap_or(0) as usize;
                    (0..h).map(|j| word[id * h + j] + typ[j] + pos[p * h + j]).collect()
                })
                .collect();
            ln(&mut x, "embeddings.LayerNorm");
            for l in 0..c.num_hidden_layers {
                let p = format!("encoder.layer.{l}");
                let q = lin(&x, &format!("{p}.attention.self.query"), h, h);
                let k = lin(&x, &format!("{p}.attention.self.key"), h, h);
                let v = lin(&x, &format!("{p}.attention.self.value"), h, h);
                let mut ctx = vec![vec![0.0; h]; longest];
                for hd in 0..heads {
                    for i in 0..longest {
                        let scores: Vec<f64> = (0..longest)
                            .map(|j| {
                                let dot: f64 = (0..d).map(|e| q[i][hd * d + e] * k[j][hd * d + e]).sum();
                                dot / (d as f64).sqrt() + (1.0 - mask[j]) * f32::MIN as f64
                            })
                            .collect();
                        let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                        let e: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                        let sum: f64 = e.iter().sum();
                        for j in 0..longest {
                            for f in 0..d {
                                ctx[i][hd * d + f] += e[j] / sum * v[j][hd * d + f];
                            }
                        }
                    }
                }
                let mut a = lin(&ctx, &format!("{p}.attention.output.dense"), h, h);
                for (ar, xr) in a.iter_mut().zip(&x) {
                    for (av, xv) in ar.iter_mut().zip(xr) {
                        *av += xv;
                    }
                }
                ln(&mut a, &format!("{p}.attention.output.LayerNorm"));
                let mut up = lin(&a, &format!("{p}.intermediate.dense"), inter, h);
                for v in up.iter_mut().flatten() {
                    *v = 0.5 * *v * (1.0 + libm::erf(*v / 2f64.sqrt()));
                }
                let mut o = lin(&up, &format!("{p}.output.dense"), h, inter);
                for (or, ar) in o.iter_mut().zip(&a) {
                    for (ov, av) in or.iter_mut().zip(ar) {
                        *ov += av;
                    }
                }
                ln(&mut o, &format!("{p}.output.LayerNorm"));
                x = o;
            }
            let count: f64 = mask.iter().sum();
            let mut pooled: Vec<f64> =
                (0..h).map(|j| (0..longest).map(|p| x[p][j] * mask[p]).sum::<f64>() / count.max(1e-9)).collect();
            let norm = pooled.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
            pooled.iter_mut().for_each(|v| *v /= norm);
            out.push(pooled);
        }
        out
    }

    #[test]
    fn forward_matches_an_f64_padded_reference_for_every_kernel_and_thread_count() {
        // Arrange
        println!("seed {SEED}");
        let mut rng = StdRng::seed_from_u64(SEED);
        let config = tiny_config();
        let tensors = random_tensors(&config, &mut rng);
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("model.safetensors");
        write_safetensors(&path, &tensors);
        let by_name = tensors.iter().map(|(n, _, v)| (n.clone(), v.clone())).collect();
        // Lengths cover 1 row, tile remainders (13 = 12 + 1) and a longer one.
        let seqs: Vec<Vec<u32>> =
            [5usize, 1, 13, 31, 2].iter().map(|&len| (0..len).map(|_| rng.random_range(0..50)).collect()).collect();
        let ids: Vec<u32> = seqs.iter().flatten().copied().collect();
        let mut bounds = vec![0];
        for s in &seqs {
            bounds.push(bounds.last().expect("starts with 0") + s.len());
        }
        let want = reference(&config, &by_name, &seqs);
        let model = BertModel::load(config, &mut TensorFile::open(&path).expect("open")).expect("load");

        for kernel in BertKernel::available() {
            for threads in [Threads::One, Threads::Two] {
                // Act
                let mut out = Vec::new();
                model.forward(&ids, &bounds, kernel, threads, &mut Scratch::default(), &mut out).expect("forward");

                // Assert
                for (s, (got, want)) in out.chunks_exact(64).zip(&want).enumerate() {
                    let diff = got.iter().zip(want).map(|(g, w)| (*g as f64 - w).abs()).fold(0.0, f64::max);
                    assert!(diff <= 2e-6, "kernel {kernel} {threads:?}, sequence {s}: max abs diff {diff:.3e}");
                }
            }
        }
    }

    #[test]
    fn forward_refuses_ids_outside_the_vocabulary_and_bad_bounds() {
        let mut rng = StdRng::seed_from_u64(SEED);
        let config = tiny_config();
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("model.safetensors");
        write_safetensors(&path, &random_tensors(&config, &mut rng));
        let model = BertModel::load(config, &mut TensorFile::open(&path).expect("open")).expect("load");
        let run = |ids: &[u32], bounds: &[usize]| {
            model.forward(ids, bounds, BertKernel::Portable, Threads::One, &mut Scratch::default(), &mut Vec::new())
        };

        assert_eq!(run(&[1, 50], &[0, 2]), Err(ForwardError::TokenOutOfRange { id: 50, vocab: 50 }));
        assert_eq!(run(&[1, 2], &[0, 3]), Err(ForwardError::BadBounds));
        assert_eq!(run(&[1, 2], &[1, 2]), Err(ForwardError::BadBounds));
        assert_eq!(run(&[1; 41], &[0, 41]), Err(ForwardError::TooLong { len: 41, max: 40 }));
        assert_eq!(run(&[], &[0]), Ok(()));
    }

    #[test]
    fn validate_refuses_shapes_the_kernels_do_not_handle() {
        let mut odd_heads = tiny_config();
        odd_heads.num_attention_heads = 3;
        let mut relu = tiny_config();
        relu.hidden_act = "relu".to_owned();

        assert!(matches!(odd_heads.validate(), Err(BertError::Unsupported { field: "hidden_size", .. })));
        assert!(matches!(relu.validate(), Err(BertError::Unsupported { field: "hidden_act", .. })));
        tiny_config().validate().expect("the tiny config is supported");
    }
}
