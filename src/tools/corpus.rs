//! Corpus files: JSON Lines in the chatbot's value format, plain or gzip.
//!
//! Each non-blank line is one Redis value exactly as the chatbot stores it
//! (`{"title","url","text","embedding":[…]}`), and its `url` is the document
//! id. The line is kept byte for byte, because it is what gets written to
//! Redis. Gzip is recognised by its magic bytes, not by the file name.
//! A line that is not a JSON object with a non-empty string `url` is a
//! [`CorpusError::BadLine`]: the caller counts it and reads on. Only I/O
//! errors end the file.

use std::io::{self, BufRead, BufReader, Read};

use flate2::bufread::MultiGzDecoder;
use serde::Deserialize;
use thiserror::Error;

/// The demo corpus shipped in the repo: `corpus-dev.jsonl` (2,000 Debian
/// package descriptions with all-MiniLM-L6-v2 embeddings), gzip -9. Built
/// into the binary so `semsearch demo` runs from any directory and in the
/// container image.
pub const DEMO_CORPUS_GZ: &[u8] = include_bytes!("../../data/demo-corpus.jsonl.gz");

/// One document of a corpus: its id (the key suffix, the article URL) and
/// the value exactly as the chatbot stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorpusDoc {
    pub id: String,
    pub value: Vec<u8>,
}

#[derive(Debug, Error)]
pub enum CorpusError {
    /// Reading or decompressing failed; the rest of the file is unreadable.
    #[error("reading the corpus failed at line {line_no}")]
    Read { line_no: u64, source: io::Error },
    /// This line is not a document; the next one may be.
    #[error("corpus line {line_no} is not a JSON object with a non-empty string \"url\"")]
    BadLine { line_no: u64 },
}

/// Wraps `inner`, decompressing when it starts with the gzip magic bytes.
///
/// # Errors
/// When the first bytes cannot be read.
pub fn open(inner: impl Read + 'static) -> io::Result<Box<dyn BufRead>> {
    let mut buffered = BufReader::with_capacity(1 << 16, inner);
    let gzip = buffered.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    Ok(if gzip {
        Box::new(BufReader::with_capacity(1 << 16, MultiGzDecoder::new(buffered)))
    } else {
        Box::new(buffered)
    })
}

/// The documents of a corpus, in file order.
pub fn documents(reader: Box<dyn BufRead>) -> impl Iterator<Item = Result<CorpusDoc, CorpusError>> {
    reader.lines().enumerate().filter_map(|(i, line)| {
        let line_no = i as u64 + 1;
        match line {
            Err(source) => Some(Err(CorpusError::Read { line_no, source })),
            Ok(line) if line.trim().is_empty() => None,
            Ok(line) => Some(parse_line(line, line_no)),
        }
    })
}

#[derive(Deserialize)]
struct UrlOnly {
    url: String,
}

fn parse_line(line: String, line_no: u64) -> Result<CorpusDoc, CorpusError> {
    match serde_json::from_str::<UrlOnly>(&line) {
        Ok(UrlOnly { url }) if !url.is_empty() => Ok(CorpusDoc { id: url, value: line.into_bytes() }),
        _ => Err(CorpusError::BadLine { line_no }),
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Cursor, Write};

    use flate2::{write::GzEncoder, Compression};

    use super::*;

    const TWO_DOCS: &str =
        "{\"url\":\"https://a/1\",\"embedding\":[1,0]}\n\n{\"url\":\"https://a/2\",\"embedding\":[0,1]}\n";

    fn ids(reader: Box<dyn BufRead>) -> Vec<Result<String, String>> {
        documents(reader).map(|d| d.map(|d| d.id).map_err(|e| e.to_string())).collect()
    }

    #[test]
    fn plain_and_gzip_give_the_same_documents_and_keep_lines_verbatim() {
        let mut gz = GzEncoder::new(Vec::new(), Compression::best());
        gz.write_all(TWO_DOCS.as_bytes()).expect("in-memory gzip");
        let gz = gz.finish().expect("in-memory gzip");

        let plain = ids(open(Cursor::new(TWO_DOCS.as_bytes().to_vec())).expect("open"));
        let zipped = ids(open(Cursor::new(gz)).expect("open"));
        let first = documents(open(Cursor::new(TWO_DOCS.as_bytes().to_vec())).expect("open")).next();

        assert_eq!(plain, vec![Ok("https://a/1".to_owned()), Ok("https://a/2".to_owned())]);
        assert_eq!(zipped, plain);
        let first = first.expect("one document").expect("valid");
        assert_eq!(first.value, b"{\"url\":\"https://a/1\",\"embedding\":[1,0]}");
    }

    #[test]
    fn bad_lines_are_reported_with_their_number_and_reading_goes_on() {
        let text = "not json\n{\"url\":\"\"}\n{\"title\":\"no url\"}\n{\"url\":\"https://a/3\"}\n";

        let got = ids(open(Cursor::new(text.as_bytes().to_vec())).expect("open"));

        assert_eq!(got.len(), 4);
        assert!(got[0].as_ref().is_err_and(|e| e.contains("line 1")), "{got:?}");
        assert!(got[1].is_err() && got[2].is_err());
        assert_eq!(got[3], Ok("https://a/3".to_owned()));
    }

    #[test]
    fn the_shipped_demo_corpus_is_gzip_with_2000_documents() {
        let docs: Vec<_> = documents(open(Cursor::new(DEMO_CORPUS_GZ)).expect("open")).collect();

        assert_eq!(docs.len(), 2000);
        assert!(docs.iter().all(Result::is_ok));
    }
}
