//! A request → a [`Plan`]: every check that needs nothing but the body and
//! the server's limits, in one order, for the node and the router alike.
//!
//! What needs more is done when the plan is resolved: embedding a text
//! (`super::resolve`), finding an `id`'s row or a filter's rows in a
//! snapshot (the node) or on the shards (the router). A check added here is
//! therefore answered identically by both, which is the point: the router
//! once re-implemented these rules and answered `min_score: 1e39` with
//! unfiltered results where a node said 422.

use std::collections::BTreeMap;

use super::dto::{
    QueryVector, SearchFilter, SearchMode, SearchRequest, MAX_FILTER_FIELDS, MAX_FILTER_VALUES, MAX_SNIPPET_CHARS,
    MAX_TEXT_BYTES, MAX_URL_PREFIX_BYTES,
};
use crate::{
    index::attributes::{AttrValue, RowFilter},
    problem::{echo, ApiError},
    store::keys::{KeySpace, WritableKey},
};

/// What a request is checked against: the server's limits and what it
/// knows of the index.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    /// Largest `k` (`SEMSEARCH_MAX_K`).
    pub max_k: usize,
    /// Where contexts go: a client's `context_key` must be a key under it.
    pub keys: &'a KeySpace,
    /// The index dimension a `vector` must have; 0 when unknown (an empty
    /// index with no configured dimension, or a router before it has asked
    /// its shards), then any length is accepted here and checked where the
    /// dimension is known.
    pub dim: usize,
}

/// The query of a request, exactly one of the three kinds.
#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    /// An embedding, scaled to unit length.
    Vector(Vec<f32>),
    /// A question, embedded when the plan is resolved.
    Text(String),
    /// A stored document: its row is the query, and it is left out.
    Id(String),
}

/// A validated request: what to find and how to answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub query: Query,
    pub k: usize,
    /// Finite when present (f32 infinity from `1e39` is refused).
    pub min_score: Option<f32>,
    /// `None` when the request has no filter or an empty one (every row).
    pub filter: Option<RowFilter>,
    pub with_text: bool,
    /// The key the client chose for the context; without one the key is a
    /// hash of the resolved query ([`Plan::default_context_suffix`]).
    pub context_key: Option<WritableKey>,
    /// How the query is ranked; only a text query can be other than `vector`.
    pub mode: SearchMode,
    /// `hybrid.vector_weight`: a fixed weight instead of the per-question one.
    pub vector_weight: Option<f64>,
    /// `snippet.max_chars`.
    pub snippet_chars: Option<usize>,
}

impl Plan {
    /// Checks `req` in a fixed order (k, filter, context key, query, vector,
    /// min_score, mode, hybrid, snippet), so that a request wrong in several
    /// ways gets the same first error from a node and from the router.
    ///
    /// # Errors
    /// `invalid_k`, those of [`row_filter`], `invalid_context_key`,
    /// `query_required`, `ambiguous_query`, the vector checks of
    /// [`validate_vector`], `text_too_long`, `invalid_type` for a
    /// `min_score` beyond f32 or an option out of its range, and
    /// `mode_needs_text`.
    pub fn new(req: &SearchRequest, rules: &Rules<'_>) -> Result<Self, ApiError> {
        let k = validate_k(req.k, rules.max_k)?;
        let filter = req.filter.as_ref().map(row_filter).transpose()?.filter(|f| !f.is_empty());
        let context_key = match &req.context_key {
            Some(suffix) => Some(rules.keys.context_key(suffix).map_err(|_| ApiError::InvalidContextKey)?),
            None => None,
        };
        let query = match (req.vector.as_ref(), req.text.as_deref(), req.id.as_deref()) {
            (None, None, None) => return Err(ApiError::QueryRequired),
            (Some(vector), None, None) => Query::Vector(normalized(validate_vector(vector, rules.dim)?)?),
            (None, Some(text), None) if text.len() > MAX_TEXT_BYTES => {
                return Err(ApiError::TextTooLong { got: text.len(), max: MAX_TEXT_BYTES })
            }
            (None, Some(text), None) => Query::Text(text.to_owned()),
            (None, None, Some(id)) => Query::Id(id.to_owned()),
            _ => return Err(ApiError::AmbiguousQuery),
        };
        // serde reads `1e39` into an f32 as infinity; like the same number in
        // `vector` it is refused, not served as "nothing reaches this score".
        let min_score = match req.min_score {
            Some(m) if !m.is_finite() => {
                return Err(ApiError::InvalidType("min_score: the number is outside f32's range".into()))
            }
            m => m,
        };
        let is_text = matches!(query, Query::Text(_));
        let mode = req.mode.unwrap_or(if is_text { SearchMode::Hybrid } else { SearchMode::Vector });
        if mode != SearchMode::Vector && !is_text {
            return Err(ApiError::ModeNeedsText(format!(
                "mode {:?} ranks by the question's words; a vector or id query has none (send \"text\", or leave mode out)",
                mode.as_str()
            )));
        }
        let vector_weight = match req.hybrid.and_then(|h| h.vector_weight) {
            _ if req.hybrid.is_some() && !is_text => {
                return Err(ApiError::ModeNeedsText("hybrid options apply to text queries only".into()))
            }
            _ if req.hybrid.is_some() && mode != SearchMode::Hybrid => {
                return Err(ApiError::InvalidType(format!(
                    "hybrid: options apply to mode hybrid, not {}",
                    mode.as_str()
                )))
            }
            Some(w) if !(w > 0.0 && w <= 1.0) => {
                return Err(ApiError::InvalidType("hybrid.vector_weight: must be in (0, 1]".into()))
            }
            w => w,
        };
        let snippet_chars = match req.snippet {
            Some(s) if s.max_chars == 0 || s.max_chars > MAX_SNIPPET_CHARS => {
                return Err(ApiError::InvalidType(format!("snippet.max_chars: must be 1 to {MAX_SNIPPET_CHARS}")))
            }
            s => s.map(|s| s.max_chars as usize),
        };
        Ok(Self {
            query,
            k,
            min_score,
            filter,
            with_text: req.with_text,
            context_key,
            mode,
            vector_weight,
            snippet_chars,
        })
    }

    /// The question's words when the mode matches them.
    pub fn words(&self) -> Option<&str> {
        match &self.query {
            Query::Text(text) if self.mode.uses_words() => Some(text),
            _ => None,
        }
    }

    /// The context key's suffix when the client chose none: a hash of the
    /// resolved query (`vector`: the unit vector a text or vector query
    /// scans with), k, min_score and the filter's canonical form; an `id`
    /// query hashes its id instead, because its results (the document left
    /// out) differ from those of its vector.
    pub fn default_context_suffix(&self, vector: &[f32]) -> String {
        let canonical = self.filter.as_ref().map(RowFilter::canonical);
        if self.mode != SearchMode::Vector || self.snippet_chars.is_some() {
            // Words, mode and snippets change the entry: hash them too. A plain
            // vector search keeps the key it had before modes existed.
            let text = match &self.query {
                Query::Text(text) => text.as_str(),
                Query::Vector(_) | Query::Id(_) => "",
            };
            let id = match &self.query {
                Query::Id(id) => Some(id.as_str()),
                _ => None,
            };
            return crate::store::context::search_hash(&crate::store::context::SearchHashParts {
                mode: self.mode.as_str(),
                text,
                id,
                vector: self.mode.uses_vectors().then_some(vector),
                vector_weight: self.vector_weight,
                snippet_chars: self.snippet_chars,
                k: self.k,
                min_score: self.min_score,
                filter: canonical.as_deref(),
            });
        }
        match &self.query {
            Query::Id(id) => crate::store::context::similar_hash(id, self.k, self.min_score, canonical.as_deref()),
            Query::Vector(_) | Query::Text(_) => {
                crate::store::context::request_hash(vector, self.k, self.min_score, canonical.as_deref())
            }
        }
    }

    /// Where this query's context goes once its vector is known: the
    /// client's key, else the default one.
    ///
    /// # Errors
    /// `invalid_context_key` if the default key is refused (it never is:
    /// a hex hash under our own prefix).
    pub fn context_key(&self, keys: &KeySpace, vector: &[f32]) -> Result<WritableKey, ApiError> {
        match &self.context_key {
            Some(key) => Ok(key.clone()),
            None => keys.context_key(&self.default_context_suffix(vector)).map_err(|_| ApiError::InvalidContextKey),
        }
    }
}

/// A request's `filter` as a [`RowFilter`]: values sorted and deduplicated,
/// so equal filters are equal however they were written.
///
/// # Errors
/// [`ApiError::InvalidFilter`] for a value that is not a string, number,
/// boolean or non-empty list of them, or past the bounds in `super::dto`.
pub fn row_filter(filter: &SearchFilter) -> Result<RowFilter, ApiError> {
    if filter.url_prefix.as_ref().is_some_and(|p| p.len() > MAX_URL_PREFIX_BYTES) {
        return Err(ApiError::InvalidFilter(format!("url_prefix is longer than {MAX_URL_PREFIX_BYTES} bytes")));
    }
    let given = filter.fields.as_ref();
    if given.is_some_and(|f| f.len() > MAX_FILTER_FIELDS) {
        return Err(ApiError::InvalidFilter(format!("at most {MAX_FILTER_FIELDS} fields")));
    }
    let mut fields = BTreeMap::new();
    for (name, value) in given.into_iter().flatten() {
        let bad = |what: &str| ApiError::InvalidFilter(format!("fields.{}: {what}", echo(name)));
        let scalar = |v: &serde_json::Value| {
            AttrValue::from_json(v).ok_or_else(|| bad("a value must be a string, number or boolean"))
        };
        let mut values = match value {
            serde_json::Value::Array(list) if list.is_empty() => {
                return Err(bad("an empty list matches nothing; leave the field out or list values"))
            }
            serde_json::Value::Array(list) if list.len() > MAX_FILTER_VALUES => {
                return Err(bad(&format!("at most {MAX_FILTER_VALUES} values")))
            }
            serde_json::Value::Array(list) => list.iter().map(scalar).collect::<Result<Vec<_>, _>>()?,
            one => vec![scalar(one)?],
        };
        values.sort_unstable();
        values.dedup();
        fields.insert(name.as_str().into(), values);
    }
    Ok(RowFilter { url_prefix: filter.url_prefix.as_deref().map(Into::into), fields })
}

/// # Errors
/// [`ApiError::InvalidK`] unless `1 <= k <= max_k`.
pub fn validate_k(k: i64, max_k: usize) -> Result<usize, ApiError> {
    match usize::try_from(k) {
        Ok(k) if (1..=max_k).contains(&k) => Ok(k),
        _ => Err(ApiError::InvalidK { k, max: max_k }),
    }
}

/// Scales a validated query to unit length.
///
/// # Errors
/// `zero_vector` when every element is zero.
pub fn normalized(mut query: Vec<f32>) -> Result<Vec<f32>, ApiError> {
    crate::index::unit::scale_to_unit(&mut query).map_err(|_| ApiError::ZeroVector)?;
    Ok(query)
}

/// Checks a query vector and returns it as f32 (not yet normalised).
///
/// `dim = 0` (dimension unknown here) accepts any length.
///
/// # Errors
/// `empty_vector`, `null_element`, `non_finite`, `wrong_dimension` or `zero_vector`.
pub fn validate_vector(vector: &QueryVector, dim: usize) -> Result<Vec<f32>, ApiError> {
    let values = &vector.values;
    if values.is_empty() {
        return Err(ApiError::EmptyVector);
    }
    // The first element that cannot be searched with, null or beyond f32,
    // whichever comes first.
    let non_finite = values.iter().position(|x| !x.is_finite());
    match (vector.first_null, non_finite) {
        (Some(null), Some(inf)) if inf < null => return Err(ApiError::NonFinite { index: inf }),
        (Some(index), _) => return Err(ApiError::NullElement { index }),
        (None, Some(index)) => return Err(ApiError::NonFinite { index }),
        (None, None) => {}
    }
    check_dimension(values.len(), dim)?;
    if values.iter().all(|&x| x == 0.0) {
        return Err(ApiError::ZeroVector);
    }
    Ok(values.clone())
}

/// # Errors
/// `wrong_dimension` unless `dim` is 0 (unknown) or `len`.
pub fn check_dimension(len: usize, dim: usize) -> Result<(), ApiError> {
    if dim != 0 && len != dim {
        return Err(ApiError::WrongDimension { expected: dim, got: len });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> KeySpace {
        KeySpace::default()
    }

    fn plan(body: serde_json::Value, dim: usize) -> Result<Plan, ApiError> {
        let req: SearchRequest = serde_json::from_value(body).expect("a well-formed body");
        Plan::new(&req, &Rules { max_k: 10, keys: &keys(), dim })
    }

    #[test]
    fn k_bounds() {
        assert!(validate_k(0, 10).is_err());
        assert!(validate_k(-1, 10).is_err());
        assert!(validate_k(11, 10).is_err());
        assert_eq!(validate_k(10, 10).ok(), Some(10));
    }

    /// A vector as a body carries it, read by the request's own decoder.
    fn vector(json: &str) -> QueryVector {
        serde_json::from_str(json).expect("a JSON array of numbers and nulls")
    }

    #[test]
    fn vector_checks() {
        let check = |json: &str| validate_vector(&vector(json), 2);
        assert!(matches!(check("[]"), Err(ApiError::EmptyVector)));
        assert!(matches!(check("[1.0, null]"), Err(ApiError::NullElement { index: 1 })));
        assert!(matches!(check("[1e300, 1.0]"), Err(ApiError::NonFinite { index: 0 })));
        // The first bad element is reported, whichever kind it is.
        assert!(matches!(check("[null, 1e300]"), Err(ApiError::NullElement { index: 0 })));
        assert!(matches!(check("[1e300, null]"), Err(ApiError::NonFinite { index: 0 })));
        assert!(matches!(check("[1, -1e39, null]"), Err(ApiError::NonFinite { index: 1 })));
        assert!(matches!(check("[1.0]"), Err(ApiError::WrongDimension { expected: 2, got: 1 })));
        assert!(matches!(check("[0.0, -0.0]"), Err(ApiError::ZeroVector)));
        assert_eq!(check("[3.0, 4]").ok(), Some(vec![3.0, 4.0]));
        // Read as f64, then narrowed: the f32 nearest the f64 nearest the decimal.
        let decimal = "0.10000000149011612";
        let want = decimal.parse::<f64>().expect("a float") as f32;
        assert_eq!(validate_vector(&vector(&format!("[{decimal}]")), 1).ok(), Some(vec![want]));
        assert!(serde_json::from_str::<QueryVector>(r#"[1, "x"]"#).is_err());
        assert!(serde_json::from_str::<QueryVector>("{}").is_err());
        assert_eq!(normalized(vec![3.0, 4.0]).ok(), Some(vec![0.6, 0.8]));
    }

    #[test]
    fn a_plan_holds_the_unit_vector_and_the_defaults() {
        let got = plan(serde_json::json!({"vector": [3.0, 4.0]}), 2).expect("valid");
        assert_eq!(got.query, Query::Vector(vec![0.6, 0.8]));
        assert_eq!((got.k, got.min_score, got.with_text, got.filter.is_none()), (3, None, true, true));
    }

    #[test]
    fn min_score_beyond_f32_is_refused_for_every_kind_of_query() {
        for query in
            [serde_json::json!({"vector": [1.0]}), serde_json::json!({"text": "a"}), serde_json::json!({"id": "a"})]
        {
            for m in [1e39, -1e39] {
                let mut body = query.clone();
                body["min_score"] = serde_json::json!(m);
                assert!(matches!(plan(body, 0), Err(ApiError::InvalidType(_))), "{query} with {m}");
            }
        }
    }

    #[test]
    fn the_first_error_follows_the_documented_order() {
        // Wrong k and an ambiguous query: k is checked first.
        assert!(matches!(
            plan(serde_json::json!({"vector": [1.0], "text": "a", "k": 0}), 1),
            Err(ApiError::InvalidK { .. })
        ));
        // Ambiguous and a bad min_score: the query is checked first.
        assert!(matches!(
            plan(serde_json::json!({"vector": [1.0], "id": "a", "min_score": 1e39}), 1),
            Err(ApiError::AmbiguousQuery)
        ));
        assert!(matches!(plan(serde_json::json!({}), 1), Err(ApiError::QueryRequired)));
    }

    #[test]
    fn an_empty_filter_is_no_filter_and_values_are_canonical() {
        assert_eq!(plan(serde_json::json!({"id": "a", "filter": {}}), 0).expect("valid").filter, None);
        let a = plan(serde_json::json!({"id": "a", "filter": {"fields": {"x": [2, 1, 2]}}}), 0).expect("valid");
        let b = plan(serde_json::json!({"id": "a", "filter": {"fields": {"x": [1.0, 2]}}}), 0).expect("valid");
        assert_eq!(a.filter, b.filter);
    }

    #[test]
    fn a_text_longer_than_the_limit_is_refused_before_embedding() {
        let long = "a".repeat(MAX_TEXT_BYTES + 1);
        assert!(matches!(plan(serde_json::json!({"text": long}), 0), Err(ApiError::TextTooLong { .. })));
    }
}
