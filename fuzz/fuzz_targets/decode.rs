//! Fuzz target `decode`: one Redis value through `store::decode::decode_into`
//! (as the loader calls it, into a buffer already holding a row), and the
//! same bytes as one number token through `store::json::parse_f32`.
//!
//! Oracle: the rule in src/store/decode.rs's module docs, written as plainly
//! as possible with other parsers. A value that looks like JSON (first
//! non-whitespace byte `{` or `[`, the whole value printable UTF-8) is read
//! by serde_json, each embedding element's own text by `str::parse::<f32>`;
//! a value that starts like JSON and parses as JSON is JSON even where the
//! text rule calls it binary; any other non-empty value of 4n bytes is n
//! little-endian f32s; anything else is `invalid_json`. Then unit length via
//! `index::unit::scale_to_unit`.
//! Decoded rows must equal the reference bit for bit. Attributes: serde_json's
//! map of the object (the last of a repeated name wins) less the four known
//! fields, its scalar values, through the same `DocAttributes::bounded`
//! (the bounds rule itself is unit-tested in `index::attributes`).

#![no_main]

#[path = "common/mod.rs"]
mod common;

use common::check;
use libfuzzer_sys::fuzz_target;
use semsearch::{
    index::{
        attributes::{AttrValue, DocAttributes},
        unit::{scale_to_unit, NotUnit},
    },
    store::{
        decode::{decode_into, Meta, SkipReason},
        json::parse_f32,
    },
};
use serde::Deserialize;
use serde_json::value::RawValue;

/// A row the loader decoded before this value; it must survive untouched.
const EARLIER_ROW: [f32; 3] = [0.6, 0.0, 0.8];

fuzz_target!(|data: &[u8]| {
    check_decode(data);
    check_parse_f32(data);
});

fn check_decode(value: &[u8]) {
    let mut out = EARLIER_ROW.to_vec();
    let got = decode_into(value, &mut out).map(|meta| (meta, out[EARLIER_ROW.len()..].to_vec()));
    check(out[..EARLIER_ROW.len()] == EARLIER_ROW, "decode_keeps_earlier_rows", || {
        format!("earlier row became {:?}", &out[..EARLIER_ROW.len()])
    });
    if got.is_err() {
        check(out.len() == EARLIER_ROW.len(), "decode_skip_leaves_nothing", || {
            format!("a skipped value left {} floats behind", out.len() - EARLIER_ROW.len())
        });
    }

    let want = reference(value);
    if same(&got, &want) {
        return;
    }
    // Broken JSON may stop at its first out-of-range number (non_finite)
    // before reaching the syntax error serde reports: skipped either way.
    if looks_like_json(value) && got == Err(SkipReason::NonFinite) && want == Err(SkipReason::InvalidJson) {
        return;
    }
    // The documented leniency: embedding numbers follow `str::parse::<f32>`
    // (`01`, `1.`, `.5`), a superset of JSON's. Such a value must decode as
    // it would with those numbers written the JSON way.
    if looks_like_json(value) && decodes_as_json(&got, value) {
        return;
    }
    // A value starting like JSON that the text rule calls binary (not UTF-8,
    // or a control character) but that parses as JSON is JSON: the rule as
    // decode.rs documents it since fuzz finding 1 (docs/hardening.md).
    if !looks_like_json(value) && starts_like_json(value) && decodes_as_json(&got, value) {
        return;
    }
    check(false, "decode_equals_reference", || {
        format!("value {:?} ({:?})\n  got  {got:?}\n  want {want:?}", value, String::from_utf8_lossy(value))
    });
}

type Decoded = Result<(Meta, Vec<f32>), SkipReason>;

/// Whether `got` is what serde_json + `str::parse::<f32>` make of `value`
/// (read as text, invalid UTF-8 replaced), lenient numbers written the JSON way.
fn decodes_as_json(got: &Decoded, value: &[u8]) -> bool {
    let text = String::from_utf8_lossy(value);
    let as_json = |text: &str| same(got, &reference_json(text.as_bytes()).and_then(finish));
    as_json(&text) || with_json_numbers(text.as_bytes()).is_some_and(|rewritten| as_json(&rewritten))
}

/// Equal results, rows compared bit for bit.
fn same(a: &Decoded, b: &Decoded) -> bool {
    match (a, b) {
        (Ok((ma, ra)), Ok((mb, rb))) => {
            ma == mb && ra.len() == rb.len() && ra.iter().zip(rb).all(|(x, y)| x.to_bits() == y.to_bits())
        }
        (Err(x), Err(y)) => x == y,
        _ => false,
    }
}

fn starts_like_json(value: &[u8]) -> bool {
    matches!(value.iter().find(|b| !b.is_ascii_whitespace()), Some(b'{' | b'['))
}

fn looks_like_json(value: &[u8]) -> bool {
    starts_like_json(value)
        && std::str::from_utf8(value).is_ok_and(|s| s.chars().all(|c| !c.is_control() || c.is_whitespace()))
}

/// The rule of decode.rs's module docs.
fn reference(value: &[u8]) -> Decoded {
    if looks_like_json(value) {
        reference_json(value).and_then(finish)
    } else if !value.is_empty() && value.len().is_multiple_of(4) {
        let floats = value.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        finish((Meta::default(), floats))
    } else {
        Err(SkipReason::InvalidJson)
    }
}

/// The chatbot's object; serde's derive refuses duplicated known fields and
/// ignores unknown ones, as the format says.
#[derive(Deserialize)]
struct Doc<'a> {
    #[serde(borrow)]
    embedding: Vec<&'a RawValue>,
    title: Option<String>,
    url: Option<String>,
    text: Option<String>,
}

fn reference_json(value: &[u8]) -> Result<(Meta, Vec<f32>), SkipReason> {
    let (meta, elements) = if value.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        let doc: Doc = serde_json::from_slice(value).map_err(|_| SkipReason::InvalidJson)?;
        let object: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(value).map_err(|_| SkipReason::InvalidJson)?;
        let attributes = object
            .iter()
            .filter(|(name, _)| !matches!(name.as_str(), "embedding" | "title" | "url" | "text"))
            .filter_map(|(name, v)| AttrValue::from_json(v).map(|v| (name.as_str().into(), v)))
            .collect();
        let meta = Meta {
            title: doc.title.map(Into::into),
            url: doc.url.map(Into::into),
            text: doc.text.map(Into::into),
            attributes: DocAttributes::bounded(attributes),
        };
        (meta, doc.embedding)
    } else {
        let elements: Vec<&RawValue> = serde_json::from_slice(value).map_err(|_| SkipReason::InvalidJson)?;
        (Meta::default(), elements)
    };
    let mut floats = Vec::with_capacity(elements.len());
    for element in elements {
        let text = element.get();
        if !text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
            return Err(SkipReason::InvalidJson);
        }
        let x = text.parse::<f32>().map_err(|_| SkipReason::InvalidJson)?;
        if !x.is_finite() {
            return Err(SkipReason::NonFinite);
        }
        floats.push(x);
    }
    Ok((meta, floats))
}

/// Non-finite check and unit length, as the docs say for every format.
fn finish((meta, mut floats): (Meta, Vec<f32>)) -> Decoded {
    if floats.iter().any(|x| !x.is_finite()) {
        return Err(SkipReason::NonFinite);
    }
    scale_to_unit(&mut floats).map_err(|e| match e {
        NotUnit::Empty => SkipReason::WrongDimension,
        NotUnit::Zero => SkipReason::ZeroVector,
        NotUnit::NonFinite => SkipReason::NonFinite,
    })?;
    Ok((meta, floats))
}

/// `value` with every number token outside strings that `str::parse::<f32>`
/// reads finitely but JSON does not allow (`01`, `1.`, `.5`, `-.5e3`)
/// rewritten as a JSON number of the same f32 value. `None` if nothing changed.
fn with_json_numbers(value: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(value).ok()?;
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    let (mut in_string, mut escaped) = (false, false);
    let mut token = String::new();
    let is_token_char = |c: char| c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E');
    let flush = |token: &mut String, out: &mut String, changed: &mut bool| {
        match lenient_number(token) {
            Some(x) if !is_json_number(token) => {
                out.push_str(&format!("{:e}", f64::from(x)));
                *changed = true;
            }
            _ => out.push_str(token),
        }
        token.clear();
    };
    for c in text.chars() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if is_token_char(c) {
            token.push(c);
        } else {
            flush(&mut token, &mut out, &mut changed);
            in_string = c == '"';
            out.push(c);
        }
    }
    flush(&mut token, &mut out, &mut changed);
    changed.then_some(out)
}

/// A token of json.rs's number grammar that `str::parse::<f32>` reads as a
/// finite value.
fn lenient_number(token: &str) -> Option<f32> {
    grammar_ok(token).then(|| token.parse::<f32>().ok()).flatten().filter(|x| x.is_finite())
}

/// JSON's own number grammar (RFC 8259 section 6).
fn is_json_number(token: &str) -> bool {
    serde_json::from_str::<&RawValue>(token)
        .is_ok_and(|raw| raw.get().starts_with(|c: char| c == '-' || c.is_ascii_digit()))
}

/// `parse_f32` answers `str::parse::<f32>` on every token of its grammar
/// (bit for bit; `Some(inf)` standing for any non-finite result) and `None`
/// on everything else.
fn check_parse_f32(token: &[u8]) {
    let got = parse_f32(token);
    // Not UTF-8: the replacement character fails the grammar, so `None`.
    let text = &*String::from_utf8_lossy(token);
    let want = if grammar_ok(text) {
        match text.parse::<f32>() {
            Ok(x) if x.is_finite() => Some(x),
            Ok(_) => Some(f32::INFINITY),
            Err(_) => None,
        }
    } else {
        None
    };
    // json.rs reports non_finite as soon as it sees it, before looking at
    // what follows: a number slot holding NaN or Infinity (`-NaN`,
    // `.Infinity`, `NaNx` alike), or a number beyond f32's range followed by
    // junk (`1e39x`). `parse_f32` maps that to `Some(inf)`; such a value is
    // refused either way.
    let non_finite_first = want.is_none()
        && (text.contains("NaN")
            || text.contains("Infinity")
            || number_prefix(text).is_some_and(|p| p.parse::<f32>().is_ok_and(|x| !x.is_finite())));
    let agree = got.map(f32::to_bits) == want.map(f32::to_bits) || (non_finite_first && got == Some(f32::INFINITY));
    check(agree, "parse_f32_equals_std", || {
        format!("token {text:?}: parse_f32 {got:?}, str::parse gives {:?}", text.parse::<f32>())
    });
}

/// json.rs's number grammar: `-? digits? (. digits?)? ([eE] [+-]? digits)?`
/// with at least one mantissa digit.
fn grammar_ok(token: &str) -> bool {
    let body = token.strip_prefix('-').unwrap_or(token);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    digits(int) && digits(frac) && !(int.is_empty() && frac.is_empty()) && exponent_ok
}

/// The longest prefix of `text` in [`grammar_ok`]'s grammar that json.rs
/// reads as one number before deciding what follows it (an `e` without
/// digits is an error, not the end of the number).
fn number_prefix(text: &str) -> Option<&str> {
    let b = text.as_bytes();
    let digits_from = |mut i: usize| {
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        i
    };
    let mut i = usize::from(b.first() == Some(&b'-'));
    let int_end = digits_from(i);
    let mut any_digit = int_end > i;
    i = int_end;
    if b.get(i) == Some(&b'.') {
        let frac_end = digits_from(i + 1);
        any_digit |= frac_end > i + 1;
        i = frac_end;
    }
    if !any_digit {
        return None;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        let sign = usize::from(matches!(b.get(i + 1), Some(b'+' | b'-')));
        let exp_end = digits_from(i + 1 + sign);
        if exp_end == i + 1 + sign {
            return None;
        }
        i = exp_end;
    }
    Some(&text[..i])
}
