//! Request and response bodies of the search routes, as the OpenAPI
//! document describes them, for the node and the router alike. Plain data:
//! validation lives in [`super::plan`], rendering in [`super::answer`].

use std::{fmt, marker::PhantomData};

use serde::{
    de::{value::MapAccessDeserializer, Deserializer, MapAccess, Visitor},
    Deserialize, Serialize,
};
use serde_json::{json, value::RawValue};
use utoipa::{
    openapi::{
        schema::{
            AdditionalProperties, ArrayBuilder, KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, SchemaType,
            Type,
        },
        Ref, RefOr, Schema,
    },
    PartialSchema, ToSchema,
};

/// k when the request does not say (the chatbot's default).
pub const DEFAULT_K: i64 = 3;

/// `SEMSEARCH_MAX_K`'s default: the spec states it as `k`'s maximum, as it
/// states `SEMSEARCH_MAX_BATCH`'s default as a batch's `maxItems`
/// (`tests/api/openapi.rs` keeps both equal to the defaults).
pub const DEFAULT_MAX_K: i64 = 1000;

/// A question's length the spec can state: JSON Schema counts characters,
/// the server counts bytes ([`MAX_TEXT_BYTES`]); this many
/// characters fit in that many bytes whatever they are (4 bytes at most each).
pub const MAX_TEXT_CHARS: usize = MAX_TEXT_BYTES / 4;

fn default_k() -> i64 {
    DEFAULT_K
}

fn default_true() -> bool {
    true
}

/// Body of `POST /v1/search` (and of each batch item), as the server reads
/// it: every field optional, so that a missing or doubled query gets our
/// own `query_required` / `ambiguous_query` answer (see `super::query`).
///
/// The OpenAPI document describes it more strictly, as a `oneOf` of the
/// three kinds of query ([`QueryKind`]), so that generated clients reject
/// `{}` and `{vector, id}` at compile time; see the `ToSchema` impl below.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// Query embedding; see [`QueryKind::Vector`].
    #[serde(default)]
    pub vector: Option<QueryVector>,
    /// Question text; see [`QueryKind::Text`].
    #[serde(default)]
    pub text: Option<String>,
    /// A document id, "more like this"; see [`QueryKind::Id`].
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default = "default_k")]
    pub k: i64,
    #[serde(default)]
    pub min_score: Option<f32>,
    #[serde(default = "default_true")]
    pub with_text: bool,
    #[serde(default)]
    pub context_key: Option<String>,
    /// Only documents matching this; see [`SearchFilter`].
    #[serde(default)]
    pub filter: Option<SearchFilter>,
    /// How a `text` query is ranked; see [`SearchMode`].
    #[serde(default)]
    pub mode: Option<SearchMode>,
    /// Tuning of `hybrid` ranking; see [`HybridOptions`].
    #[serde(default)]
    pub hybrid: Option<HybridOptions>,
    /// The passage of each hit that answers the question; see [`SnippetOptions`].
    #[serde(default)]
    pub snippet: Option<SnippetOptions>,
}

/// A query embedding as the body carries it, read straight into f32: each
/// element is read as JSON's f64 and narrowed to f32 (what the index
/// searches with), with no `Vec<Option<f64>>` in between: a profile of 64
/// clients found that vector, grown by doubling to 6 KB per request, among
/// the decode stage's costs. A `null` element is kept as its position, for
/// the plan's `null_element` answer ([`super::plan::validate_vector`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryVector {
    /// The elements narrowed to f32; a `null` one is 0 here.
    pub values: Vec<f32>,
    /// Where the first `null` element is.
    pub first_null: Option<usize>,
}

/// Elements a [`QueryVector`] has room for before it grows: MiniLM's 384
/// and the other common embedding sizes up to 1,024 read without a copy;
/// longer ones grow (the body limit bounds them).
const VECTOR_START_CAPACITY: usize = 1024;

impl<'de> Deserialize<'de> for QueryVector {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Elements;

        impl<'de> Visitor<'de> for Elements {
            type Value = QueryVector;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an array of numbers")
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<QueryVector, A::Error> {
                let mut out = QueryVector {
                    values: Vec::with_capacity(
                        seq.size_hint().map_or(VECTOR_START_CAPACITY, |n| n.min(VECTOR_START_CAPACITY)),
                    ),
                    first_null: None,
                };
                while let Some(x) = seq.next_element::<Option<f64>>()? {
                    if x.is_none() && out.first_null.is_none() {
                        out.first_null = Some(out.values.len());
                    }
                    out.values.push(x.unwrap_or(0.0) as f32);
                }
                Ok(out)
            }
        }

        deserializer.deserialize_seq(Elements)
    }
}

/// How a query is ranked. A `text` query is `hybrid` unless it says
/// otherwise; `vector` and `id` queries can only be `vector` (they carry no
/// words to match).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum SearchMode {
    /// Cosine similarity of the embeddings only.
    #[default]
    Vector,
    /// BM25F over title and text only (no embedding is made).
    Lexical,
    /// Both rankings fused (see `docs/text-search.md`): what finds
    /// Portuguese questions an English embedding model ranks poorly.
    Hybrid,
}

impl SearchMode {
    pub const ALL: [SearchMode; 3] = [Self::Vector, Self::Lexical, Self::Hybrid];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Vector => "vector",
            Self::Lexical => "lexical",
            Self::Hybrid => "hybrid",
        }
    }

    /// Whether this mode needs the question embedded.
    pub fn uses_vectors(self) -> bool {
        matches!(self, Self::Vector | Self::Hybrid)
    }

    /// Whether this mode matches the question's words.
    pub fn uses_words(self) -> bool {
        matches!(self, Self::Lexical | Self::Hybrid)
    }
}

/// `hybrid` of a search.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HybridOptions {
    /// The vector ranking's weight in the fused score, in (0, 1]; the rest
    /// goes to the lexical ranking. Default: chosen per question from how
    /// well the embedding model reads it (1 for a question it understands,
    /// 0.4 for one it does not).
    #[serde(default)]
    #[schema(minimum = 0.0, exclusive_minimum = 0.0, maximum = 1.0)]
    pub vector_weight: Option<f64>,
}

/// Longest `text` accepted, in bytes. Questions are short; this stops a 1 MB
/// body from becoming a 1 MB (and billed) provider request.
pub const MAX_TEXT_BYTES: usize = 8 * 1024;

/// Longest snippet a request may ask for, in characters.
pub const MAX_SNIPPET_CHARS: u32 = 10_000;

/// `snippet` of a search.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SnippetOptions {
    /// The snippet's length limit, in characters (Unicode scalar values), 1 to 10000.
    #[schema(minimum = 1, maximum = 10000)]
    pub max_chars: u32,
}

/// The passage of a hit's text that best matches the question.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Snippet {
    /// At most `max_chars` characters of the text, cut at word boundaries.
    pub text: String,
    /// The matched words as `[start, end)` offsets into `text`, in UTF-16
    /// code units (JavaScript string indexes), ascending.
    pub highlights: Vec<[usize; 2]>,
}

/// Most fields one filter may name.
pub const MAX_FILTER_FIELDS: usize = 16;
/// Most values one field's any-of list may hold.
pub const MAX_FILTER_VALUES: usize = 256;
/// Longest `url_prefix`, in bytes.
pub const MAX_URL_PREFIX_BYTES: usize = 2048;

/// `filter` of a search: every condition must hold (AND). Read as plain
/// JSON values and checked in `super::query::row_filter`, so that a wrong
/// shape gets our own `invalid_filter` answer with the field named.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<serde_json::Map<String, serde_json::Value>>,
}

impl SearchFilter {
    /// Its schema's name in the OpenAPI document.
    pub const SCHEMA_NAME: &str = "SearchFilter";

    fn schema() -> Schema {
        let scalar = || {
            OneOfBuilder::new()
                .item(ObjectBuilder::new().schema_type(Type::String))
                .item(ObjectBuilder::new().schema_type(Type::Number))
                .item(ObjectBuilder::new().schema_type(Type::Boolean))
        };
        let value = OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::String))
            .item(ObjectBuilder::new().schema_type(Type::Number))
            .item(ObjectBuilder::new().schema_type(Type::Boolean))
            .item(ArrayBuilder::new().items(scalar()).min_items(Some(1)).max_items(Some(MAX_FILTER_VALUES)))
            .description(Some("One value (equality) or a list of values (any of them)."));
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "Search only the documents matching every condition; the answer is the exact top-k among them (same tie rule). Attributes are the stored value's extra string, number and boolean fields (all but `embedding`, `text`, `title`, `url`), at most 32 per document. 422 `unknown_filter_field` for a field no document has, `filter_type_mismatch` for a value of a type the field never holds, `invalid_filter` for any other wrong shape.",
            ))
            .property(
                "url_prefix",
                ObjectBuilder::new()
                    .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
                    .max_length(Some(MAX_URL_PREFIX_BYTES))
                    .description(Some("Keep documents whose url starts with this (byte-wise).")),
            )
            .property(
                "fields",
                ObjectBuilder::new()
                    .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
                    .max_properties(Some(MAX_FILTER_FIELDS))
                    .additional_properties(Some(AdditionalProperties::RefOr(RefOr::T(Schema::OneOf(value.build())))))
                    .description(Some(
                        "Attribute name → value or list of values. Numbers compare as 64-bit floats (1 equals 1.0).",
                    )),
            )
            .additional_properties(Some(AdditionalProperties::FreeForm(false)))
            .examples([json!({"url_prefix": "https://help.example.com/en/", "fields": {"locale": "en", "product": ["a", "b"]}})])
            .into()
    }
}

/// The three kinds of query a search body carries exactly one of. Only the
/// OpenAPI document names them (`VectorQuery`, `TextQuery`, `IdQuery`); the
/// server reads all three into one [`SearchRequest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryKind {
    Vector,
    Text,
    Id,
}

impl QueryKind {
    pub const ALL: [QueryKind; 3] = [Self::Vector, Self::Text, Self::Id];

    /// The body field that carries this kind of query.
    pub fn field(self) -> &'static str {
        match self {
            Self::Vector => "vector",
            Self::Text => "text",
            Self::Id => "id",
        }
    }

    /// Its schema's name in the OpenAPI document.
    pub fn schema_name(self) -> &'static str {
        match self {
            Self::Vector => "VectorQuery",
            Self::Text => "TextQuery",
            Self::Id => "IdQuery",
        }
    }

    fn field_schema(self) -> RefOr<Schema> {
        match self {
            Self::Vector => ArrayBuilder::new()
                .items(ObjectBuilder::new().schema_type(Type::Number).format(Some(SchemaFormat::KnownFormat(KnownFormat::Double))))
                .min_items(Some(1))
                .max_items(Some(crate::store::loader::MAX_DIM))
                .description(Some(
                    "Query embedding, as long as the index dimension (`GET /v1/stats`; 422 `wrong_dimension` otherwise, and no index is longer than 65536); its length does not matter (cosine).",
                ))
                .into(),
            Self::Text => ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(MAX_TEXT_CHARS))
                .description(Some(
                    "Question text, embedded server-side by the configured provider (422 `text_search_disabled` when none is). At most 8 KiB of UTF-8 (422 `text_too_long`): 2048 characters always fit.",
                ))
                .into(),
            Self::Id => ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some(
                    "A document id (for the chatbot, the article URL): find documents like it. Its stored vector is the query and it is left out of the results.",
                ))
                .into(),
        }
    }

    /// `mode`: every mode for a text query; only `vector` for the others.
    fn mode_schema(self) -> RefOr<Schema> {
        match self {
            Self::Text => OneOfBuilder::new()
                .item(Ref::from_schema_name("SearchMode"))
                .item(ObjectBuilder::new().schema_type(Type::Null))
                .description(Some("How the question is ranked. Default: `hybrid`."))
                .into(),
            Self::Vector | Self::Id => ObjectBuilder::new()
                .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
                .enum_values(Some(["vector"]))
                .description(Some("Only `vector`: this query has no words to match (422 `mode_needs_text` otherwise)."))
                .into(),
        }
    }

    /// `hybrid`: options of the fusion, for a text query only.
    fn hybrid_schema(self) -> RefOr<Schema> {
        match self {
            Self::Text => OneOfBuilder::new()
                .item(Ref::from_schema_name("HybridOptions"))
                .item(ObjectBuilder::new().schema_type(Type::Null))
                .description(Some("Tuning of `hybrid` ranking. Default: the per-question weight."))
                .into(),
            Self::Vector | Self::Id => {
                ObjectBuilder::new().schema_type(Type::Null).description(Some("Only for text queries.")).into()
            }
        }
    }

    fn example(self) -> serde_json::Value {
        match self {
            Self::Vector => json!({"vector": [0.12, -0.03, 0.51], "k": 3, "min_score": 0.2, "with_text": false}),
            Self::Text => {
                json!({"text": "How do I reset my password?", "k": 3, "filter": {"fields": {"locale": "en"}}})
            }
            Self::Id => json!({"id": "https://example.org/a", "k": 5, "with_text": false}),
        }
    }

    /// One variant: its own field required, the other two allowed only as
    /// null (which the server reads as absent; a TypeScript client sees
    /// `id?: null`, so `{vector, id: "…"}` does not type-check), then the
    /// options every kind shares. No `default:` keywords: openapi-typescript
    /// makes a property with a default required (issue 14), so defaults are
    /// stated in the descriptions.
    fn schema(self) -> Schema {
        let mut object = ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(match self {
                Self::Vector => "A search by query embedding.",
                Self::Text => "A search by question text, embedded server-side.",
                Self::Id => "\"More like this\": a search by a stored document's vector, the document left out.",
            }))
            .required(self.field())
            .property(self.field(), self.field_schema());
        for other in Self::ALL.into_iter().filter(|&o| o != self) {
            object = object.property(
                other.field(),
                ObjectBuilder::new().schema_type(Type::Null).description(Some(format!(
                    "Not with `{}`: send exactly one of `vector`, `text` and `id` (null counts as absent).",
                    self.field()
                ))),
            );
        }
        object
            .property(
                "k",
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                    .minimum(Some(1))
                    .maximum(Some(DEFAULT_MAX_K))
                    .description(Some(format!(
                        "How many results; 1 to the server's SEMSEARCH_MAX_K (default {DEFAULT_MAX_K}, the maximum stated here). Default: {DEFAULT_K}."
                    ))),
            )
            .property(
                "min_score",
                ObjectBuilder::new()
                    .schema_type(SchemaType::from_iter([Type::Number, Type::Null]))
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Float)))
                    .description(Some("Drop results scoring below this. Default: none.")),
            )
            .property(
                "with_text",
                ObjectBuilder::new()
                    .schema_type(Type::Boolean)
                    .description(Some("Include each article's text (the bulk of the response). Default: true.")),
            )
            .property(
                "context_key",
                ObjectBuilder::new()
                    .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
                    .min_length(Some(1))
                    .max_length(Some(256))
                    .pattern(Some("^[!-~]+$"))
                    .description(Some(
                        "Suffix of the `cache:context:<key>` the results are stored under (1 to 256 printable ASCII bytes, no spaces). Default: a hash of the query and its options.",
                    )),
            )
            .property(
                "filter",
                OneOfBuilder::new()
                    .item(Ref::from_schema_name(SearchFilter::SCHEMA_NAME))
                    .item(ObjectBuilder::new().schema_type(Type::Null))
                    .description(Some("Search only documents matching this. Default: every document.")),
            )
            .property("mode", self.mode_schema())
            .property("hybrid", self.hybrid_schema())
            .property(
                "snippet",
                OneOfBuilder::new()
                    .item(Ref::from_schema_name("SnippetOptions"))
                    .item(ObjectBuilder::new().schema_type(Type::Null))
                    .description(Some(
                        "Give each hit the passage of its text that best matches the question (the text's opening for a query without words). Default: none.",
                    )),
            )
            .additional_properties(Some(AdditionalProperties::FreeForm(false)))
            .examples([self.example()])
            .into()
    }
}

impl PartialSchema for SearchRequest {
    fn schema() -> RefOr<Schema> {
        QueryKind::ALL
            .into_iter()
            .fold(OneOfBuilder::new(), |one_of, kind| one_of.item(Ref::from_schema_name(kind.schema_name())))
            .description(Some(
                "Body of `POST /v1/search`: exactly one of `vector`, `text` and `id`, with the options every kind shares.",
            ))
            .into()
    }
}

impl ToSchema for SearchRequest {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.extend(QueryKind::ALL.map(|kind| (kind.schema_name().to_owned(), RefOr::T(kind.schema()))));
        schemas.push((SearchFilter::SCHEMA_NAME.to_owned(), RefOr::T(SearchFilter::schema())));
        schemas.push(("SearchMode".to_owned(), <SearchMode as PartialSchema>::schema()));
        schemas.push(("HybridOptions".to_owned(), <HybridOptions as PartialSchema>::schema()));
        schemas.push(("SnippetOptions".to_owned(), <SnippetOptions as PartialSchema>::schema()));
    }
}

/// One article. Results are ordered by descending score; equal scores by
/// ascending `id` (byte-wise), the tie rule of `src/search/topk.rs`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SearchResult {
    /// The embedding's Redis key without its prefix (for the chatbot, the article URL).
    pub id: String,
    pub url: String,
    /// Always present: null when the stored value has no title.
    #[schema(required = true)]
    pub title: Option<String>,
    /// Present exactly when the request asked for texts (`with_text`, the
    /// default): the article text, or null when the stored value has none.
    /// Absent with `with_text: false`.
    // Held as the JSON string it is written as: escaped once per search,
    // for this and for the context entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, required = false)]
    pub text: Option<Option<Box<RawValue>>>,
    /// What the results are ordered by: in `vector` mode the cosine
    /// similarity, in [-1, 1]; in `lexical` mode the BM25F score (≥ 0); in
    /// `hybrid` mode the fused score (at most 1, the best possible;
    /// comparable only between results of one question).
    pub score: f32,
    /// `hybrid` mode: the cosine similarity. Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub vector_score: Option<f32>,
    /// `hybrid` and `lexical` modes: the BM25F score (0 when no word of the
    /// question is in the document). Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub lexical_score: Option<f64>,
    /// Present when the request asked for `snippet`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub snippet: Option<Snippet>,
}

/// Why fewer than k results came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FewerReason {
    /// The index holds fewer than k documents.
    IndexSmallerThanK,
    /// `min_score` removed the rest.
    MinScore,
    /// Fewer than k documents match the `filter`.
    Filter,
    /// `lexical` mode: fewer than k documents contain a word of the question.
    NoMoreMatches,
}

/// Answer of `POST /v1/search`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "results": [{"id": "https://example.org/a", "url": "https://example.org/a", "title": "A", "score": 0.83}],
    "took_us": 412,
    "index_version": 7,
    "context": {"key": "cache:context:3f2a", "queued": true}
}))]
pub struct SearchResponse {
    pub results: Vec<SearchResult>,
    /// How the results were ranked.
    pub mode: SearchMode,
    /// Server-side time, in microseconds.
    pub took_us: u64,
    /// The snapshot that answered; changes on every reload or update.
    pub index_version: u64,
    /// Present only when `results` has fewer than k entries (never null).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub fewer_results_reason: Option<FewerReason>,
    /// Where the results are cached for the chatbot; absent (never null)
    /// when context writes are off.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub context: Option<ContextRef>,
}

/// Where the results were cached for the chatbot.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContextRef {
    /// The full Redis key (`cache:context:…`).
    pub key: String,
    /// False when the write queue was full and the context was not stored.
    pub queued: bool,
}

/// Body of `POST /v1/search/batch`: each element is a `/v1/search` body.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"queries": [{"vector": [0.12, -0.03, 0.51], "k": 2}, {"id": "https://example.org/a", "k": 3}]}))]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// 1 to the server's SEMSEARCH_MAX_BATCH (default 256) queries, else 422 `invalid_batch_size`.
    #[serde(deserialize_with = "objects")]
    // maxItems is SEMSEARCH_MAX_BATCH's default; tests/api/openapi.rs keeps them equal.
    #[schema(min_items = 1, max_items = 256)]
    pub queries: Vec<SearchRequest>,
}

/// Answers of a batch, in request order.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchResponse {
    /// One list per query, in request order, each shaped like `/v1/search` results.
    pub results: Vec<Vec<SearchResult>>,
    /// Per query, why fewer than k results came back (null when k came back).
    pub fewer_results_reasons: Vec<Option<FewerReason>>,
    /// Per query, where its results were cached (null when context writes are off).
    pub contexts: Vec<Option<ContextRef>>,
    /// Per query, how its results were ranked.
    pub modes: Vec<SearchMode>,
    /// Server-side time, in microseconds.
    pub took_us: u64,
    pub index_version: u64,
}

/// A body (or batch item) that must be a JSON object. serde's derived
/// `Deserialize` also accepts a struct as a positional array, so
/// `[v,null,null,2,null,false]` was a search with k = 2 (issue 16).
pub struct ObjectOnly<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for ObjectOnly<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Objects<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for Objects<T> {
            type Value = T;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }
        deserializer.deserialize_map(Objects(PhantomData)).map(ObjectOnly)
    }
}

/// `#[serde(deserialize_with)]` for a list of objects (batch `queries`).
///
/// # Errors
/// When an element is not a JSON object of type `T`.
pub fn objects<'de, D: Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Vec<T>, D::Error> {
    let items: Vec<ObjectOnly<T>> = Vec::deserialize(deserializer)?;
    Ok(items.into_iter().map(|ObjectOnly(t)| t).collect())
}
