//! Filterable attributes: each document's extra scalar fields, per-field
//! posting lists over rows, and a filter evaluated to the set of rows it
//! matches.
//!
//! The chatbot's JSON value carries fields beyond `embedding`, `text`,
//! `title` and `url` (a help center's `locale`, `section`, `product`).
//! `store::json` keeps the scalar ones (strings, numbers, booleans) as a
//! [`DocAttributes`], bounded by [`DocAttributes::bounded`]; [`Attributes`]
//! turns every document's into one posting list (a roaring bitmap of rows)
//! per field and value, built with the snapshot in `Index::new`, so a
//! load and a per-key update (which builds a new snapshot) keep them in step.
//!
//! Invariant: a posting list holds rows of the snapshot it was built with,
//! and only those; [`Attributes::matching`] answers exactly the rows whose
//! document satisfies every condition (`RowFilter`'s rule). Scanning those
//! rows is `semsearch_scan::filter`'s job; this module knows no vectors.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use roaring::RoaringBitmap;
use thiserror::Error;

use super::Document;

/// Most attributes kept per document; further fields (in name order) are dropped and counted.
pub const MAX_FIELDS: usize = 32;
/// Longest attribute name kept, in bytes.
pub const MAX_NAME_BYTES: usize = 64;
/// Longest string value kept, in bytes (a locale or product slug, not an article).
pub const MAX_VALUE_BYTES: usize = 256;
/// Most bytes of names and string values kept per document (numbers and
/// booleans count 8 bytes): bounds the memory a hostile value can claim.
pub const MAX_DOC_BYTES: usize = 2048;

/// One attribute value. Numbers are compared as f64 (so `1` equals `1.0`;
/// integers beyond 2^53 lose precision, as in JavaScript).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AttrValue {
    Str(Box<str>),
    /// The f64's bits, with -0 stored as 0 so equal numbers hash equally.
    Num(u64),
    Bool(bool),
}

impl AttrValue {
    /// A number value; `None` for NaN or ±Infinity (JSON has neither).
    pub fn number(x: f64) -> Option<Self> {
        x.is_finite().then(|| Self::Num(if x == 0.0 { 0 } else { x.to_bits() }))
    }

    /// The value of a JSON scalar; `None` for null, arrays and objects.
    pub fn from_json(value: &serde_json::Value) -> Option<Self> {
        match value {
            serde_json::Value::String(s) => Some(Self::Str(s.as_str().into())),
            serde_json::Value::Number(n) => n.as_f64().and_then(Self::number),
            serde_json::Value::Bool(b) => Some(Self::Bool(*b)),
            _ => None,
        }
    }

    pub fn kind(&self) -> AttrKind {
        match self {
            Self::Str(_) => AttrKind::String,
            Self::Num(_) => AttrKind::Number,
            Self::Bool(_) => AttrKind::Boolean,
        }
    }

    /// Bytes it counts against [`MAX_DOC_BYTES`].
    fn cost(&self) -> usize {
        match self {
            Self::Str(s) => s.len(),
            Self::Num(_) | Self::Bool(_) => 8,
        }
    }

    /// The value as JSON (numbers as f64), as filters and their canonical form write it.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Self::Str(s) => serde_json::Value::String(s.to_string()),
            Self::Num(bits) => {
                serde_json::Number::from_f64(f64::from_bits(*bits)).map_or(serde_json::Value::Null, Into::into)
            }
            Self::Bool(b) => serde_json::Value::Bool(*b),
        }
    }
}

/// The JSON type of an attribute value, as filters name it in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AttrKind {
    String,
    Number,
    Boolean,
}

impl AttrKind {
    pub const ALL: [AttrKind; 3] = [Self::String, Self::Number, Self::Boolean];

    /// The kind [`AttrKind::as_str`] names.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Number => "number",
            Self::Boolean => "boolean",
        }
    }
}

/// One document's attributes: sorted by name, names unique, within the bounds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DocAttributes {
    fields: Box<[(Box<str>, AttrValue)]>,
    /// Fields the bounds dropped, for the load log and `/v1/stats`.
    dropped: u32,
}

impl DocAttributes {
    /// Keeps what the bounds allow of `fields` (one value per name; the
    /// caller resolved duplicates). In name order: names longer than
    /// [`MAX_NAME_BYTES`] and strings longer than [`MAX_VALUE_BYTES`] are
    /// dropped; then fields are kept while fewer than [`MAX_FIELDS`] are and
    /// the running bytes stay within [`MAX_DOC_BYTES`]. Every field not kept
    /// is counted in [`DocAttributes::dropped`].
    pub fn bounded(fields: BTreeMap<Box<str>, AttrValue>) -> Self {
        let mut kept = Vec::new();
        let (mut bytes, mut dropped) = (0usize, 0u32);
        for (name, value) in fields {
            let cost = name.len() + value.cost();
            let fits = name.len() <= MAX_NAME_BYTES
                && !matches!(&value, AttrValue::Str(s) if s.len() > MAX_VALUE_BYTES)
                && kept.len() < MAX_FIELDS
                && bytes + cost <= MAX_DOC_BYTES;
            if fits {
                bytes += cost;
                kept.push((name, value));
            } else {
                dropped += 1;
            }
        }
        Self { fields: kept.into(), dropped }
    }

    pub fn get(&self, name: &str) -> Option<&AttrValue> {
        self.fields.binary_search_by(|(n, _)| (**n).cmp(name)).ok().map(|i| &self.fields[i].1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &AttrValue)> {
        self.fields.iter().map(|(n, v)| (&**n, v))
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    pub fn dropped(&self) -> u32 {
        self.dropped
    }

    pub(super) fn heap_bytes(&self) -> usize {
        self.fields.iter().map(|(n, v)| n.len() + std::mem::size_of::<(Box<str>, AttrValue)>() + v.cost()).sum()
    }
}

/// A validated filter, independent of any snapshot: all conditions ANDed;
/// a field's list of values is any-of.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowFilter {
    /// Keep documents whose url starts with this (byte-wise).
    pub url_prefix: Option<Box<str>>,
    /// Field name → accepted values (non-empty, sorted, deduplicated).
    pub fields: BTreeMap<Box<str>, Vec<AttrValue>>,
}

impl RowFilter {
    /// Whether the filter has no condition (it matches every row).
    pub fn is_empty(&self) -> bool {
        self.url_prefix.is_none() && self.fields.is_empty()
    }

    /// Whether `doc` satisfies every condition: the rule posting lists implement.
    pub fn accepts(&self, doc: &Document) -> bool {
        self.url_prefix.as_deref().is_none_or(|p| doc.url().starts_with(p))
            && self.fields.iter().all(|(name, values)| doc.attributes.get(name).is_some_and(|v| values.contains(v)))
    }

    /// Whether the filter can be evaluated where `kinds` tells which value
    /// kinds each field holds (`None`: no document has the field): the
    /// first field, in name order, that is unknown or asked for a kind it
    /// never holds is the error.
    ///
    /// # Errors
    /// [`FilterError::UnknownField`] or [`FilterError::WrongType`].
    pub fn check<'a>(&self, kinds: impl Fn(&str) -> Option<&'a [AttrKind]>) -> Result<(), FilterError> {
        for (name, values) in &self.fields {
            let held = kinds(name).ok_or_else(|| FilterError::UnknownField { field: name.to_string() })?;
            if let Some(v) = values.iter().find(|v| !held.contains(&v.kind())) {
                return Err(FilterError::WrongType { field: name.to_string(), holds: held.to_vec(), got: v.kind() });
            }
        }
        Ok(())
    }

    /// One canonical JSON text per meaning (keys sorted, values sorted and
    /// deduplicated, numbers as f64): what context keys hash, so equal
    /// filters share a context however they were written.
    pub fn canonical(&self) -> String {
        let mut out = serde_json::Map::new();
        if !self.fields.is_empty() {
            let fields: serde_json::Map<String, serde_json::Value> = self
                .fields
                .iter()
                .map(|(n, vs)| (n.to_string(), serde_json::Value::Array(vs.iter().map(AttrValue::to_json).collect())))
                .collect();
            out.insert("fields".into(), fields.into());
        }
        if let Some(p) = &self.url_prefix {
            out.insert("url_prefix".into(), p.to_string().into());
        }
        serde_json::Value::Object(out).to_string()
    }
}

/// Why a filter cannot be evaluated against a snapshot (the API answers 422).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FilterError {
    #[error("no document has the attribute {field:?}")]
    UnknownField { field: String },
    #[error("attribute {field:?} holds {} values, not {}", kinds_text(.holds), .got.as_str())]
    WrongType { field: String, holds: Vec<AttrKind>, got: AttrKind },
}

fn kinds_text(kinds: &[AttrKind]) -> String {
    kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(" or ")
}

/// Posting lists of one field.
#[derive(Debug, Default)]
struct FieldPostings {
    /// The value kinds some document holds for this field, for type errors.
    kinds: Vec<AttrKind>,
    values: HashMap<AttrValue, RoaringBitmap>,
}

/// The posting lists of one snapshot: per field, per value, the rows
/// holding it; and the rows in url order, for `url_prefix`.
#[derive(Debug, Default)]
pub struct Attributes {
    fields: HashMap<Box<str>, FieldPostings>,
    /// Rows sorted by url; `None` when that is row order (every url is the
    /// id, the chatbot's case), so nothing is stored.
    by_url: Option<Vec<u32>>,
    /// Attributes the load bounds dropped, over every document.
    dropped: u64,
}

impl Attributes {
    /// Posting lists of `docs` (rows in order). Linear in the attributes held.
    pub fn build(docs: &[Arc<Document>]) -> Self {
        let mut fields: HashMap<Box<str>, FieldPostings> = HashMap::new();
        let mut dropped = 0u64;
        for (row, doc) in docs.iter().enumerate() {
            dropped += u64::from(doc.attributes.dropped);
            for (name, value) in doc.attributes.iter() {
                let field = match fields.get_mut(name) {
                    Some(f) => f,
                    None => fields.entry(name.into()).or_default(),
                };
                if !field.kinds.contains(&value.kind()) {
                    field.kinds.push(value.kind());
                    field.kinds.sort_unstable();
                }
                // Rows arrive ascending, so each insert appends.
                match field.values.get_mut(value) {
                    Some(rows) => rows.insert(row as u32),
                    None => field.values.entry(value.clone()).or_default().insert(row as u32),
                };
            }
        }
        let in_row_order = docs.windows(2).all(|w| w[0].url() < w[1].url());
        let by_url = (!in_row_order).then(|| {
            let mut rows: Vec<u32> = (0..docs.len() as u32).collect();
            rows.sort_unstable_by(|&a, &b| docs[a as usize].url().cmp(docs[b as usize].url()).then(a.cmp(&b)));
            rows
        });
        Self { fields, by_url, dropped }
    }

    /// Attributes dropped by the load bounds, over every document.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Distinct attribute names.
    pub fn field_count(&self) -> usize {
        self.fields.len()
    }

    /// The rows of `docs` (this snapshot's documents) that `filter` accepts;
    /// `None` when it has no condition (every row).
    ///
    /// # Errors
    /// [`FilterError::UnknownField`] for a name no document holds;
    /// [`FilterError::WrongType`] for a value of a kind no document holds
    /// for that name.
    pub fn matching(&self, docs: &[Arc<Document>], filter: &RowFilter) -> Result<Option<RoaringBitmap>, FilterError> {
        filter.check(|name| self.kinds(name))?;
        Ok(self.matching_unchecked(docs, filter))
    }

    /// The value kinds some document holds for field `name` (`None`: no
    /// document has it). A sharded deployment adds these up over its
    /// shards and runs [`RowFilter::check`] on the sum, as one node would.
    pub fn kinds(&self, name: &str) -> Option<&[AttrKind]> {
        self.fields.get(name).map(|f| f.kinds.as_slice())
    }

    /// [`Attributes::matching`] without the check: a field no document
    /// holds, or a value of a kind it never has, matches no row. A shard
    /// answers this way, because another shard may hold the field.
    pub fn matching_unchecked(&self, docs: &[Arc<Document>], filter: &RowFilter) -> Option<RoaringBitmap> {
        let mut lists = Vec::with_capacity(filter.fields.len());
        for (name, values) in &filter.fields {
            let mut any: RoaringBitmap = RoaringBitmap::new();
            if let Some(field) = self.fields.get(name) {
                for v in values {
                    if let Some(rows) = field.values.get(v) {
                        any |= rows;
                    }
                }
            }
            lists.push(any);
        }
        let mut rows = filter.url_prefix.as_deref().map(|p| self.url_prefix_rows(docs, p));
        // Smallest first: every intersection is then at most that small.
        lists.sort_unstable_by_key(RoaringBitmap::len);
        for list in lists {
            rows = Some(match rows {
                Some(mut r) => {
                    r &= list;
                    r
                }
                None => list,
            });
        }
        rows
    }

    /// Rows whose url starts with `prefix`: one contiguous range in url order.
    fn url_prefix_rows(&self, docs: &[Arc<Document>], prefix: &str) -> RoaringBitmap {
        let url_of = |row: u32| docs[row as usize].url();
        match &self.by_url {
            None => {
                let lo = docs.partition_point(|d| d.url() < prefix);
                let hi = lo + docs[lo..].partition_point(|d| d.url().starts_with(prefix));
                let mut rows = RoaringBitmap::new();
                rows.insert_range(lo as u32..hi as u32);
                rows
            }
            Some(by_url) => {
                let lo = by_url.partition_point(|&r| url_of(r) < prefix);
                let hi = lo + by_url[lo..].partition_point(|&r| url_of(r).starts_with(prefix));
                let mut rows = by_url[lo..hi].to_vec();
                rows.sort_unstable();
                RoaringBitmap::from_sorted_iter(rows).expect("sorted rows, each once")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn attrs(fields: &[(&str, AttrValue)]) -> DocAttributes {
        DocAttributes::bounded(fields.iter().map(|(n, v)| ((*n).into(), v.clone())).collect())
    }

    fn s(x: &str) -> AttrValue {
        AttrValue::Str(x.into())
    }

    fn doc(id: &str, url: Option<&str>, fields: &[(&str, AttrValue)]) -> Arc<Document> {
        Arc::new(Document {
            id: id.into(),
            url: url.map(Into::into),
            title: None,
            text: None,
            expires_at_ms: None,
            attributes: attrs(fields),
        })
    }

    #[test]
    fn bounds_drop_and_count_long_names_long_values_and_fields_past_the_caps() {
        let long_name = "n".repeat(MAX_NAME_BYTES + 1);
        let long_value = "v".repeat(MAX_VALUE_BYTES + 1);
        let mut fields: BTreeMap<Box<str>, AttrValue> =
            (0..MAX_FIELDS + 3).map(|i| (format!("f{i:03}").into(), AttrValue::Bool(true))).collect();
        fields.insert(long_name.as_str().into(), s("x"));
        fields.insert("a_long".into(), AttrValue::Str(long_value.into()));

        let got = DocAttributes::bounded(fields);

        assert_eq!(got.len(), MAX_FIELDS);
        assert_eq!(got.dropped(), 3 + 2);
        assert!(got.get("a_long").is_none() && got.get(&long_name).is_none());
        assert_eq!(got.get("f000"), Some(&AttrValue::Bool(true)));
    }

    #[test]
    fn bounds_stop_at_the_byte_budget() {
        let fields = (0..20).map(|i| (format!("f{i:02}").into(), AttrValue::Str("x".repeat(200).into()))).collect();
        let got = DocAttributes::bounded(fields);
        assert_eq!(got.len(), MAX_DOC_BYTES / 203);
        assert_eq!(got.len() as u32 + got.dropped(), 20);
    }

    #[test]
    fn numbers_compare_as_f64_and_minus_zero_is_zero() {
        assert_eq!(AttrValue::number(1.0), AttrValue::from_json(&serde_json::json!(1)));
        assert_eq!(AttrValue::number(-0.0), AttrValue::number(0.0));
        assert_eq!(AttrValue::number(f64::NAN), None);
        assert_eq!(AttrValue::from_json(&serde_json::json!(null)), None);
    }

    #[test]
    fn unknown_fields_and_wrong_types_are_refused() {
        let docs = vec![doc("a", None, &[("locale", s("en"))]), doc("b", None, &[("n", AttrValue::Bool(true))])];
        let attributes = Attributes::build(&docs);
        let f = |name: &str, v: AttrValue| RowFilter { url_prefix: None, fields: [(name.into(), vec![v])].into() };

        assert_eq!(
            attributes.matching(&docs, &f("product", s("x"))),
            Err(FilterError::UnknownField { field: "product".into() })
        );
        assert!(matches!(
            attributes.matching(&docs, &f("locale", AttrValue::Bool(true))),
            Err(FilterError::WrongType { got: AttrKind::Boolean, .. })
        ));
        assert_eq!(attributes.matching(&docs, &RowFilter::default()), Ok(None));
    }

    #[test]
    fn url_prefix_uses_the_stored_url_when_it_differs_from_the_id() {
        let docs =
            vec![doc("1", Some("https://h/fr/x"), &[]), doc("2", Some("https://h/en/y"), &[]), doc("3", None, &[])];
        let attributes = Attributes::build(&docs);
        let filter = RowFilter { url_prefix: Some("https://h/en/".into()), fields: BTreeMap::new() };
        let rows = attributes.matching(&docs, &filter).expect("no field condition").expect("a condition");
        assert_eq!(rows.iter().collect::<Vec<_>>(), vec![1]);
    }

    #[test]
    fn canonical_form_ignores_order_and_number_spelling() {
        let a = RowFilter {
            url_prefix: Some("u".into()),
            fields: [("n".into(), vec![AttrValue::number(1.0).expect("finite")])].into(),
        };
        assert_eq!(a.canonical(), r#"{"fields":{"n":[1.0]},"url_prefix":"u"}"#);
        assert_eq!(RowFilter::default().canonical(), "{}");
    }

    fn value() -> impl Strategy<Value = AttrValue> {
        prop_oneof![
            (0..4u8).prop_map(|i| s(&format!("v{i}"))),
            (0..3i32).prop_map(|i| AttrValue::number(f64::from(i)).expect("finite")),
            any::<bool>().prop_map(AttrValue::Bool),
        ]
    }

    proptest! {
        /// Posting lists answer exactly what [`RowFilter::accepts`] says, row by row.
        #[test]
        fn matching_equals_the_per_document_rule(
            docs in proptest::collection::vec(
                (proptest::collection::btree_map("[abc]", value(), 0..3), 0..4u8),
                0..60,
            ),
            filter_fields in proptest::collection::btree_map("[abc]", proptest::collection::vec(value(), 1..3), 0..3),
            prefix in proptest::option::of(0..4u8),
        ) {
            let docs: Vec<Arc<Document>> = docs
                .iter()
                .enumerate()
                .map(|(i, (fields, url))| {
                    let fields: Vec<(&str, AttrValue)> = fields.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
                    let url = format!("u{url}/{i:03}");
                    doc(&format!("{i:03}"), Some(&url), &fields)
                })
                .collect();
            let filter = RowFilter {
                url_prefix: prefix.map(|p| format!("u{p}/").into()),
                fields: filter_fields.into_iter().map(|(n, mut vs)| { vs.sort(); vs.dedup(); (n.into(), vs) }).collect(),
            };
            let attributes = Attributes::build(&docs);

            match attributes.matching(&docs, &filter) {
                Ok(rows) => {
                    let got: Vec<u32> = match rows { Some(r) => r.iter().collect(), None => (0..docs.len() as u32).collect() };
                    let want: Vec<u32> = (0..docs.len() as u32).filter(|&r| filter.accepts(&docs[r as usize])).collect();
                    prop_assert_eq!(got, want);
                }
                Err(FilterError::UnknownField { field }) => {
                    prop_assert!(docs.iter().all(|d| d.attributes.get(&field).is_none()));
                }
                Err(FilterError::WrongType { field, got, .. }) => {
                    prop_assert!(docs.iter().all(|d| d.attributes.get(&field).is_none_or(|v| v.kind() != got)));
                }
            }
        }
    }
}
