//! Turning one Redis value into a unit vector plus article metadata.
//!
//! Accepted encodings, tried in this order:
//! 1. the chatbot's JSON object `{"title","url","text","embedding":[...]}`
//!    (extra fields ignored; `title`, `url`, `text` optional);
//! 2. a bare JSON array of numbers;
//! 3. a raw little-endian f32 blob (length a multiple of 4, not JSON text).
//!
//! A value that starts like JSON text but does not parse is `invalid_json`,
//! never reinterpreted as a blob. Rows leave here L2-normalised, so the index
//! never normalises again. Failures are [`SkipReason`]s: data, not errors.

use super::json;
use crate::index::unit::{scale_to_unit, NotUnit};

/// Why a key was not loaded. Counted in `LoadReport`, shown in `/v1/stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipReason {
    /// The key holds a hash, list, set, … (MGET answered nil, TYPE said so).
    WrongType,
    /// Neither valid JSON of an accepted shape nor an f32 blob.
    InvalidJson,
    /// NaN, ±Infinity, or a number beyond f32 range.
    NonFinite,
    /// Every component is zero: no direction, so no cosine.
    ZeroVector,
    /// Valid, but not the index's dimension.
    WrongDimension,
    /// Deleted between SCAN and MGET. Routine during a reload; not corruption.
    Vanished,
    /// The key is not UTF-8, so it cannot be a document id.
    InvalidKey,
}

impl SkipReason {
    pub const ALL: [SkipReason; 7] = [
        Self::WrongType,
        Self::InvalidJson,
        Self::NonFinite,
        Self::ZeroVector,
        Self::WrongDimension,
        Self::Vanished,
        Self::InvalidKey,
    ];

    /// Stable snake_case name used in stats and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::WrongType => "wrong_type",
            Self::InvalidJson => "invalid_json",
            Self::NonFinite => "non_finite",
            Self::ZeroVector => "zero_vector",
            Self::WrongDimension => "wrong_dimension",
            Self::Vanished => "vanished",
            Self::InvalidKey => "invalid_key",
        }
    }
}

/// Article metadata carried by the chatbot's format. All optional: bare
/// arrays and blobs carry none.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Meta {
    pub title: Option<Box<str>>,
    pub url: Option<Box<str>>,
    pub text: Option<Box<str>>,
}

/// Decodes `value`, appends its unit-length vector to `out` and returns the
/// metadata. On a skip, `out` is left as it was.
///
/// # Errors
/// The [`SkipReason`] that stopped the value.
pub fn decode_into(value: &[u8], out: &mut Vec<f32>) -> Result<Meta, SkipReason> {
    let start = out.len();
    let result = decode_raw(value, out).and_then(|meta| {
        to_unit(&mut out[start..])?;
        Ok(meta)
    });
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn decode_raw(value: &[u8], out: &mut Vec<f32>) -> Result<Meta, SkipReason> {
    let first = value.iter().copied().find(|b| !b.is_ascii_whitespace());
    if matches!(first, Some(b'{' | b'[')) {
        let parsed = if first == Some(b'{') {
            json::parse_object(value, out)
        } else {
            json::parse_number_array(value, out).map(|()| Meta::default())
        };
        match parsed {
            Ok(meta) => return Ok(meta),
            Err(reason) if looks_like_text(value) => return Err(reason),
            Err(_) => {} // binary that happens to start with '{' or '[': try the blob
        }
    }
    if !value.is_empty() && value.len().is_multiple_of(4) && !looks_like_text(value) {
        out.reserve(value.len() / 4);
        for c in value.chunks_exact(4) {
            let x = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            if !x.is_finite() {
                return Err(SkipReason::NonFinite);
            }
            out.push(x);
        }
        return Ok(Meta::default());
    }
    Err(SkipReason::InvalidJson)
}

/// Scales a decoded row to unit length, naming what stops it as a skip reason.
fn to_unit(row: &mut [f32]) -> Result<(), SkipReason> {
    scale_to_unit(row).map_err(|e| match e {
        NotUnit::Empty => SkipReason::WrongDimension,
        NotUnit::Zero => SkipReason::ZeroVector,
        NotUnit::NonFinite => SkipReason::NonFinite,
    })
}

fn looks_like_text(value: &[u8]) -> bool {
    std::str::from_utf8(value).is_ok_and(|s| s.chars().all(|c| !c.is_control() || c.is_whitespace()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(v: &[u8]) -> Result<(Meta, Vec<f32>), SkipReason> {
        let mut out = vec![9.0];
        let meta = decode_into(v, &mut out)?;
        assert_eq!(out[0], 9.0, "earlier rows are untouched");
        Ok((meta, out[1..].to_vec()))
    }

    #[test]
    fn chatbot_object_is_decoded_and_normalised() {
        let (meta, v) =
            decode(br#"{"title":"T","url":"https://u","text":"x","extra":1,"embedding":[3,4]}"#).expect("valid");
        assert_eq!(v, vec![0.6, 0.8]);
        assert_eq!(meta.title.as_deref(), Some("T"));
        assert_eq!(meta.url.as_deref(), Some("https://u"));
        assert_eq!(meta.text.as_deref(), Some("x"));
    }

    #[test]
    fn escaped_strings_are_unescaped() {
        let (meta, _) = decode(br#"{"title":"a \"q\" \u00e9","embedding":[1]}"#).expect("valid");
        assert_eq!(meta.title.as_deref(), Some("a \"q\" é"));
    }

    #[test]
    fn bare_array_is_decoded() {
        let (meta, v) = decode(b" [0, 2.0] ").expect("valid");
        assert_eq!(v, vec![0.0, 1.0]);
        assert_eq!(meta, Meta::default());
    }

    #[test]
    fn little_endian_blob_is_decoded() {
        let bytes: Vec<u8> = [3.0f32, 0.0, 4.0].iter().flat_map(|x| x.to_le_bytes()).collect();
        let (_, v) = decode(&bytes).expect("valid");
        assert_eq!(v, vec![0.6, 0.0, 0.8]);
    }

    #[test]
    fn blob_starting_with_a_brace_byte_is_still_a_blob() {
        // 0x7b is '{'; the rest is not text.
        let bytes = [0x7b, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x80, 0x3f];
        assert!(decode(&bytes).is_ok());
    }

    #[test]
    fn malformed_arrays_are_invalid_json() {
        for v in [&b"[1,2]x"[..], b"[1,,2]", b"[1 2]", b"[1,2", b"[1,]", b"[1e]", b"[--1]", b"[1,true]"] {
            assert_eq!(decode(v).unwrap_err(), SkipReason::InvalidJson, "{}", String::from_utf8_lossy(v));
        }
    }

    #[test]
    fn skip_reasons() {
        assert_eq!(decode(b"{not json").unwrap_err(), SkipReason::InvalidJson);
        assert_eq!(decode(br#"{"title":"no embedding"}"#).unwrap_err(), SkipReason::InvalidJson);
        assert_eq!(decode(br#"{"embedding":[1,null]}"#).unwrap_err(), SkipReason::InvalidJson);
        assert_eq!(decode(br#"{"embedding":[1,"a"]}"#).unwrap_err(), SkipReason::InvalidJson);
        assert_eq!(decode(b"hello").unwrap_err(), SkipReason::InvalidJson);
        assert_eq!(decode(b"").unwrap_err(), SkipReason::InvalidJson);
        assert_eq!(decode(b"abcd").unwrap_err(), SkipReason::InvalidJson, "text is never a blob");
        assert_eq!(decode(br#"{"embedding":[1,NaN]}"#).unwrap_err(), SkipReason::NonFinite);
        assert_eq!(decode(b"[1, Infinity]").unwrap_err(), SkipReason::NonFinite);
        assert_eq!(decode(b"[1e39, 1]").unwrap_err(), SkipReason::NonFinite);
        assert_eq!(decode(&f32::NAN.to_le_bytes().repeat(2)).unwrap_err(), SkipReason::NonFinite);
        assert_eq!(decode(b"[0, 0.0, -0]").unwrap_err(), SkipReason::ZeroVector);
        assert_eq!(decode(b"[]").unwrap_err(), SkipReason::WrongDimension);
    }
}
