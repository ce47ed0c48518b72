//! Text → word pieces, exactly as sentence-transformers tokenises for
//! all-MiniLM-L6-v2: the model's own `tokenizer.json` (BERT normaliser,
//! lower-casing, WordPiece), `[CLS] … [SEP]`, truncation at 256 word pieces
//! including the two specials (`max_seq_length` in `sentence_bert_config.json`).
//!
//! The shipped `tokenizer.json` pads every input to 128 and truncates at
//! 128; both settings are replaced on load: truncation at [`MAX_TOKENS`],
//! no padding (batches are ragged, see `bert`).

use std::{ops::Range, path::Path};

use thiserror::Error;
use tokenizers::{
    tokenizer::{TruncationDirection, TruncationParams, TruncationStrategy},
    Tokenizer,
};

/// Word pieces per text, `[CLS]` and `[SEP]` included (sentence-transformers' `max_seq_length`).
pub const MAX_TOKENS: usize = 256;

/// Why `tokenizer.json` cannot be used.
#[derive(Debug, Error)]
#[error("cannot use {path} as a tokenizer")]
pub struct TokenizerLoadError {
    pub path: String,
    #[source]
    pub source: tokenizers::Error,
}

/// Why one text cannot be tokenised.
#[derive(Debug, Error)]
pub enum TokenizeError {
    /// No word pieces at all: empty, whitespace or control characters only.
    #[error("text {index} is empty: it has no word pieces")]
    EmptyText { index: usize },
    #[error("cannot tokenise text {index}")]
    Tokenizer {
        index: usize,
        #[source]
        source: tokenizers::Error,
    },
}

/// The model's tokenizer with sentence-transformers' truncation.
#[derive(Debug)]
pub struct WordPieces {
    tokenizer: Tokenizer,
}

/// Token ids of several texts, end to end, with where each text starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenBatch {
    ids: Vec<u32>,
    /// `bounds[i]..bounds[i + 1]` are text `i`'s ids; starts with 0.
    bounds: Vec<usize>,
    truncated: Vec<bool>,
}

impl TokenBatch {
    pub fn new() -> Self {
        Self { ids: Vec::new(), bounds: vec![0], truncated: Vec::new() }
    }

    /// Texts in the batch.
    pub fn len(&self) -> usize {
        self.truncated.len()
    }

    pub fn is_empty(&self) -> bool {
        self.truncated.is_empty()
    }

    /// Tokens in the batch: the rows of the forward pass.
    pub fn tokens(&self) -> usize {
        self.ids.len()
    }

    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    /// Offsets into [`Self::ids`]: `len() + 1` values, from 0 to `tokens()`.
    pub fn bounds(&self) -> &[usize] {
        &self.bounds
    }

    /// Text `i`'s ids.
    pub fn text(&self, i: usize) -> &[u32] {
        &self.ids[self.span(i)]
    }

    fn span(&self, i: usize) -> Range<usize> {
        self.bounds[i]..self.bounds[i + 1]
    }

    /// Whether text `i` lost word pieces to truncation.
    pub fn truncated(&self, i: usize) -> bool {
        self.truncated[i]
    }

    /// Appends every text of `other` (its texts keep their order).
    pub fn extend(&mut self, other: &TokenBatch) {
        let base = self.ids.len();
        self.ids.extend_from_slice(&other.ids);
        self.bounds.extend(other.bounds[1..].iter().map(|b| b + base));
        self.truncated.extend_from_slice(&other.truncated);
    }

    pub fn clear(&mut self) {
        self.ids.clear();
        self.bounds.truncate(1);
        self.truncated.clear();
    }

    /// Appends one text's ids (with its specials) and whether it was truncated.
    pub fn push(&mut self, ids: &[u32], truncated: bool) {
        self.ids.extend_from_slice(ids);
        self.bounds.push(self.ids.len());
        self.truncated.push(truncated);
    }
}

impl WordPieces {
    /// Loads `tokenizer.json` and replaces its padding and truncation.
    ///
    /// # Errors
    /// The file cannot be read or parsed.
    pub fn load(path: &Path) -> Result<Self, TokenizerLoadError> {
        let fail = |source| TokenizerLoadError { path: path.display().to_string(), source };
        let mut tokenizer = Tokenizer::from_file(path).map_err(fail)?;
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                direction: TruncationDirection::Right,
                max_length: MAX_TOKENS,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            }))
            .map_err(fail)?;
        Ok(Self { tokenizer })
    }

    /// Vocabulary size including added tokens: every id is below it.
    pub fn vocab_size(&self) -> usize {
        self.tokenizer.get_vocab_size(true)
    }

    /// Tokenises `text` and appends it to `batch`; `index` only labels errors.
    ///
    /// # Errors
    /// [`TokenizeError::EmptyText`] when the text has no word pieces (the
    /// caller reports that as the user's mistake), or a tokenizer failure.
    pub fn encode_into(&self, index: usize, text: &str, batch: &mut TokenBatch) -> Result<(), TokenizeError> {
        let encoding =
            self.tokenizer.encode_fast(text, true).map_err(|source| TokenizeError::Tokenizer { index, source })?;
        let specials: u32 = encoding.get_special_tokens_mask().iter().sum();
        if encoding.get_ids().len() <= specials as usize {
            return Err(TokenizeError::EmptyText { index });
        }
        batch.push(encoding.get_ids(), !encoding.get_overflowing().is_empty());
        Ok(())
    }

    /// Tokenises every text into a fresh batch.
    ///
    /// # Errors
    /// The first text that fails, see [`Self::encode_into`].
    pub fn encode_all<S: AsRef<str>>(&self, texts: &[S]) -> Result<TokenBatch, TokenizeError> {
        let mut batch = TokenBatch::new();
        for (index, text) in texts.iter().enumerate() {
            self.encode_into(index, text.as_ref(), &mut batch)?;
        }
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extend_offsets_the_appended_bounds() {
        let mut a = TokenBatch::new();
        a.push(&[101, 7, 102], false);
        let mut b = TokenBatch::new();
        b.push(&[101, 8, 9, 102], true);
        b.push(&[101, 5, 102], false);

        a.extend(&b);

        assert_eq!(a.bounds(), &[0, 3, 7, 10]);
        assert_eq!(a.text(1), &[101, 8, 9, 102]);
        assert_eq!((a.len(), a.tokens(), a.truncated(1), a.truncated(2)), (3, 10, true, false));
    }

    #[test]
    fn clear_keeps_the_leading_zero_bound() {
        let mut a = TokenBatch::new();
        a.push(&[1, 2], false);

        a.clear();

        assert_eq!((a.bounds(), a.len(), a.tokens()), (&[0usize][..], 0, 0));
    }
}
