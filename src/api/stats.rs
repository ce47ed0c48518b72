//! `GET /v1/stats`: what the index holds, how it got there, and what
//! refresh and the context writer have done since start.

use std::sync::atomic::Ordering;

use axum::{extract::State, Json};
use serde::Serialize;
use utoipa::{
    openapi::{
        schema::{AdditionalProperties, KnownFormat, ObjectBuilder, SchemaFormat, Type},
        RefOr, Schema,
    },
    PartialSchema, ToSchema,
};

use super::{responses::Unauthorized, AppState};
use crate::problem::{ApiError, Problem, PROBLEM_JSON};
use crate::{
    index::{now_ms, Index},
    refresh::{FeedState, ReloadInfo},
    store::{decode::SkipReason, loader::SkipCounts},
};
use semsearch_scan::{int8, kernel};

/// What the index holds and how it got there.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatsResponse {
    /// The semsearch version serving (`semsearch --version`).
    #[schema(value_type = String, example = "0.1.0")]
    pub version: &'static str,
    /// The git commit it was built from, or `unknown`.
    #[schema(value_type = String)]
    pub git_sha: &'static str,
    pub documents: usize,
    pub dimension: usize,
    /// Bytes of the vector matrix.
    pub index_bytes: usize,
    /// Bytes of the int8 copy of the vectors; 0 when the index scans f32.
    pub int8_bytes: usize,
    /// Bytes of ids, URLs, titles, texts and attributes.
    pub metadata_bytes: usize,
    /// Distinct attribute names that filters can use (`filter.fields`).
    pub attribute_fields: usize,
    /// Attributes of the documents served that the per-document bounds
    /// dropped (32 fields, 64-byte names, 256-byte values, 2 KiB in all).
    pub attributes_dropped: u64,
    /// Keys found by the last full load (valid or not).
    pub keys_scanned: usize,
    /// Keys skipped by the last full load, by reason.
    #[schema(value_type = SkippedKeys)]
    pub skipped: SkipCounts,
    pub load_duration_ms: f64,
    pub index_version: u64,
    /// When this snapshot was published; RFC 3339, UTC.
    #[schema(format = DateTime)]
    pub loaded_at: String,
    /// The dot-product kernel chosen for this CPU.
    #[schema(value_type = KernelName)]
    pub kernel: &'static str,
    /// Documents past their Redis deadline, hidden from results until the
    /// index drops them.
    pub expired_pending: usize,
    /// The shard this replica keeps (`SEMSEARCH_SHARD`); `null`: every document.
    pub shard: Option<ShardStats>,
    pub scan: ScanStats,
    pub refresh: RefreshStats,
    /// `null` when context writes are off.
    pub contexts: Option<ContextCounters>,
}

/// Shard `index` of `count`: documents whose key's Redis hash slot mod
/// `count` is `index`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ShardStats {
    pub index: u16,
    pub count: u16,
}

/// How searches read the vectors (`SEMSEARCH_SCAN`) and what the int8
/// scan cost since start. Answers are the same in every mode.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScanStats {
    /// `SEMSEARCH_SCAN` as configured: `auto`, `f32` or `int8`.
    #[schema(value_type = String, example = "auto")]
    pub mode: String,
    /// What the serving index is scanned with: `int8` (int8 copy, bounds,
    /// exact f32 rescoring) or `f32`.
    #[schema(value_type = String, example = "int8")]
    pub active: &'static str,
    /// The int8 dot-product kernel chosen for this CPU.
    #[schema(value_type = String, example = "avx512vnni")]
    pub int8_kernel: &'static str,
    /// Queries answered by an index scanned in f32.
    pub f32_queries: u64,
    /// Queries answered by an index with an int8 copy (by either path).
    pub int8_queries: u64,
    /// Rows those queries rescored in f32 (every row for a fallback).
    pub rescored_rows: u64,
    /// int8 queries the f32 scan answered instead, by reason.
    pub f32_fallbacks: ScanFallbacks,
}

/// Why an int8 query was answered by the f32 scan (same answer, slower).
#[derive(Debug, Serialize, ToSchema)]
pub struct ScanFallbacks {
    /// The query vector is outside the range the int8 bound covers.
    pub query_out_of_range: u64,
    /// k (plus expired rows) above 1/8 of the documents.
    pub large_k: u64,
    /// Too many near-duplicate rows left undecided by the bounds.
    pub too_many_candidates: u64,
}

/// Live refresh since start.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefreshStats {
    pub reloads: u64,
    pub reload_failures: u64,
    pub last_reload: Option<ReloadInfo>,
    /// Documents changed by per-key updates since start.
    pub docs_added: u64,
    pub docs_updated: u64,
    pub docs_removed: u64,
    pub change_feed: FeedState,
    /// Redis holds no embeddings; the last index keeps serving.
    pub redis_empty: bool,
}

/// Context writes (`cache:context:*`) since start.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContextCounters {
    pub ttl_secs: u64,
    pub written: u64,
    pub dropped: u64,
    /// Not written: the value exceeded the 1 MiB cap.
    pub too_large: u64,
    pub stale: u64,
    pub failed: u64,
    pub purged: u64,
    /// Not written: Redis is near maxmemory under an evicting policy, and
    /// the write could have evicted the chatbot's keys (docs/deploy.md).
    pub memory_held: u64,
}

/// The dot-product kernels semsearch has, on any CPU architecture.
// Schema only, listed in full so the document is the same wherever it is
// generated; `semsearch_scan::kernel` names the kernel in use and the tests below
// keep this list in step with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KernelName {
    Scalar,
    Avx2,
    Avx512,
    Neon,
}

/// The schema of `skipped`: one count per [`SkipReason`], every reason always
/// present, so generated clients get named fields rather than a map.
pub struct SkippedKeys;

impl PartialSchema for SkippedKeys {
    fn schema() -> RefOr<Schema> {
        SkipReason::ALL
            .iter()
            .fold(ObjectBuilder::new().schema_type(Type::Object), |object, reason| {
                object.required(reason.as_str()).property(
                    reason.as_str(),
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                        .minimum(Some(0)),
                )
            })
            .description(Some(
                "Keys skipped by the last full load, by reason (see the README: bad values are skipped).",
            ))
            .additional_properties(Some(AdditionalProperties::FreeForm(false)))
            .into()
    }
}

impl ToSchema for SkippedKeys {}

impl StatsResponse {
    pub fn new(state: &AppState, index: &Index) -> Self {
        let s = &state.refresh.status;
        let report = s.load_report().map(|(_, r)| r).unwrap_or_default();
        let r = &*report;
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        Self {
            version: crate::build_info::VERSION,
            git_sha: crate::build_info::GIT_SHA,
            documents: index.len(),
            dimension: index.dim(),
            index_bytes: index.matrix_bytes(),
            int8_bytes: index.int8_bytes(),
            metadata_bytes: index.metadata_bytes(),
            attribute_fields: index.attributes().field_count(),
            attributes_dropped: index.attributes().dropped(),
            keys_scanned: r.keys_scanned,
            skipped: r.skipped.clone(),
            load_duration_ms: r.duration.as_secs_f64() * 1000.0,
            index_version: index.version(),
            loaded_at: humantime::format_rfc3339_millis(index.loaded_at()).to_string(),
            kernel: kernel::name(),
            expired_pending: index.expired_count(now_ms()),
            shard: state.keys.shard().map(|s| ShardStats { index: s.index(), count: s.count() }),
            scan: ScanStats {
                mode: index.scan_mode().to_string(),
                active: index.scan().name(),
                int8_kernel: int8::kernel::active().name(),
                f32_queries: load(&state.scans.f32_queries),
                int8_queries: load(&state.scans.int8_queries),
                rescored_rows: load(&state.scans.rescored_rows),
                f32_fallbacks: ScanFallbacks {
                    query_out_of_range: load(&state.scans.fallback_query_out_of_range),
                    large_k: load(&state.scans.fallback_large_k),
                    too_many_candidates: load(&state.scans.fallback_too_many_candidates),
                },
            },
            refresh: RefreshStats {
                reloads: load(&s.reloads),
                reload_failures: load(&s.reload_failures),
                last_reload: s.last_reload(),
                docs_added: load(&s.docs_added),
                docs_updated: load(&s.docs_updated),
                docs_removed: load(&s.docs_removed),
                change_feed: s.change_feed(),
                redis_empty: s.redis_empty.load(Ordering::Relaxed),
            },
            contexts: state.contexts.as_ref().map(|c| ContextCounters {
                ttl_secs: c.ttl_secs(),
                written: load(&c.stats.written),
                dropped: load(&c.stats.dropped),
                too_large: load(&c.stats.too_large),
                stale: load(&c.stats.stale),
                failed: load(&c.stats.failed),
                purged: load(&c.stats.purged),
                memory_held: load(&c.stats.memory_held),
            }),
        }
    }
}

/// Index size, last load, refresh and context-write counters.
#[utoipa::path(
    get,
    path = "/v1/stats",
    operation_id = "get_stats",
    tag = "operations",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Statistics of the serving index", body = StatsResponse),
        Unauthorized,
        (status = 503, description = "`not_ready` (first load not finished) or `timeout`", body = Problem, content_type = PROBLEM_JSON,
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))),
    )
)]
pub async fn stats(State(state): State<AppState>) -> Result<Json<StatsResponse>, ApiError> {
    let index = state.ready_index()?;
    Ok(Json(StatsResponse::new(&state, &index)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kernel_this_cpu_can_run_has_its_name_in_the_kernel_enum() {
        let listed = [KernelName::Scalar, KernelName::Avx2, KernelName::Avx512, KernelName::Neon]
            .map(|k| serde_json::to_value(k).expect("a unit variant serializes"));
        for kernel in kernel::F32Kernel::available() {
            assert!(listed.contains(&serde_json::Value::from(kernel.name())), "{} is not in KernelName", kernel.name());
        }
    }

    #[test]
    fn skipped_serializes_exactly_the_properties_its_schema_lists() {
        let counts = serde_json::to_value(SkipCounts::default()).expect("counts serialize");
        let schema = serde_json::to_value(SkippedKeys::schema()).expect("schema serializes");
        let mut sent: Vec<&String> = counts.as_object().expect("an object").keys().collect();
        let mut listed: Vec<&String> = schema["properties"].as_object().expect("properties").keys().collect();
        sent.sort();
        listed.sort();
        assert_eq!(sent, listed);
    }
}
