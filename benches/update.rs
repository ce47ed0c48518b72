//! Per-key update cost against a full reload, at N × 384 (issue 12):
//! the goal is time-until-searchable ÷ full reload ≤ 0.05 at 1M.
//!
//! ```text
//! cargo bench --bench update                              # N = 100_000 and 1_000_000
//! cargo bench --bench update -- 100000                    # one size
//! ```
//!
//! Two parts per N, each a ratio of two figures from the same run:
//! 1. **index**, in process: `Index::apply` of one changed document (what a
//!    per-key SET costs now: delta + tombstones) ÷ `Index::merged` of the
//!    same snapshot (a copy of every row plus a new int8 copy: what every
//!    per-key SET cost before, and what the background merge costs).
//! 2. **end to end**, the real `App` on a private `redis-server` holding N
//!    random unit vectors, `SEMSEARCH_SCAN=auto`: SET of a new key → the
//!    document is the top hit of a search for its own vector (median of
//!    `ROUNDS`), ÷ `POST /v1/admin/reload` → its answer (read every key,
//!    decode, build, quantize, publish). Measured with the default 100 ms
//!    key-batching window and again with a 1 ms one, to show what dominates.
//! 3. **search with a full delta**, in process: one query (k = 10) on a
//!    snapshot holding `DELTA_MAX_ROWS - 1` rewritten documents (as many
//!    tombstones and delta rows as there can be before a merge) ÷ the same
//!    query on the merged index of the same documents, interleaved, median
//!    of [`PAIRS`] paired runs; with the rows each rescored, and what the
//!    base scan alone cost when it was asked for `k + tombstones` hits.

use std::time::{Duration, Instant};

use rand::{rngs::StdRng, Rng, SeedableRng};
use redis::aio::MultiplexedConnection;
use semsearch::{
    app::App,
    config::Settings,
    index::{delta::DELTA_MAX_ROWS, unit::scale_to_unit, Document, Index, IndexBuilder, LiveQuery},
    tools::redis_child::ChildRedis,
};
use semsearch_scan::{ScanMode, ScanQuery, ScanRequest};
use serde_json::{json, Value};

#[path = "common/measure.rs"]
mod measure;
use measure::median;

/// all-MiniLM-L6-v2's dimension.
const DIM: usize = 384;

const ROUNDS: usize = 7;
const SET_BATCH: usize = 1000;
const PATIENCE: Duration = Duration::from_secs(30);
/// Paired runs behind the full-delta search ratio.
const PAIRS: usize = 41;

fn unit_vector(rng: &mut StdRng) -> Vec<f32> {
    let mut v: Vec<f32> = (0..DIM).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    scale_to_unit(&mut v).expect("random vectors are not zero");
    v
}

/// A compact JSON array with 6 decimals (what the loader decodes; smaller
/// than the chatbot's 17-digit values, so 1M keys fit in Redis here).
fn json_vector(v: &[f32]) -> String {
    let parts: Vec<String> = v.iter().map(|x| format!("{x:.6}")).collect();
    format!("[{}]", parts.join(","))
}

fn id(i: usize) -> String {
    format!("doc:{i:08}")
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Part 1: the in-process cost of one update, new path vs old.
fn index_part(n: usize) {
    let mut rng = StdRng::seed_from_u64(7);
    let mut b = IndexBuilder::new(DIM);
    b.reserve(n);
    for i in 0..n {
        b.push(doc(&id(i * 2)), &unit_vector(&mut rng));
    }
    let index = b.finish().expect("ids ascend").with_scan(ScanMode::Auto);
    let mut apply = Vec::new();
    let mut merge = Vec::new();
    for r in 0..ROUNDS {
        // One new document between two existing ids, one rewritten.
        let (new_id, old_id) = (id(r * 2 * 1001 + 1), id(r * 2 * 997));
        let mut fb = IndexBuilder::new(DIM);
        let (a, b2) = if new_id < old_id { (&new_id, &old_id) } else { (&old_id, &new_id) };
        for i in [a, b2] {
            fb.push(doc(i), &unit_vector(&mut rng));
        }
        let fresh = fb.finish().expect("sorted");
        let changed = [new_id.as_str(), old_id.as_str()].into_iter().collect();
        let t = Instant::now();
        let (next, _) = index.apply(&fresh, &changed).expect("same dim");
        apply.push(t.elapsed());
        let t = Instant::now();
        let merged = next.merged();
        merge.push(t.elapsed());
        assert_eq!(merged.len(), next.len());
    }
    let (a, m) = (median(apply), median(merge));
    println!(
        "update/index/{n}: apply (1 SET + 1 rewrite) {:.3} ms, full copy + requantize {:.1} ms, ratio {:.5} (scan {})",
        ms(a),
        ms(m),
        a.as_secs_f64() / m.as_secs_f64(),
        index.scan().name()
    );
    full_delta_search(&index, &mut rng);
}

fn doc(id: &str) -> std::sync::Arc<Document> {
    Document { id: id.into(), ..Default::default() }.into()
}

/// Part 3: what a delta and its tombstones add to a search, at their worst
/// (one update short of a merge).
fn full_delta_search(index: &Index, rng: &mut StdRng) {
    let n = index.len();
    let rewrites = DELTA_MAX_ROWS - 1;
    let ids: Vec<String> = (0..rewrites).map(|i| id(i * (n / rewrites) * 2)).collect();
    let mut fb = IndexBuilder::new(DIM);
    for i in &ids {
        fb.push(doc(i), &unit_vector(rng));
    }
    let fresh = fb.finish().expect("sorted");
    let changed = ids.iter().map(String::as_str).collect();
    let (segmented, _) = index.apply(&fresh, &changed).expect("same dim");
    assert_eq!((segmented.tombstones().len(), segmented.needs_merge()), (rewrites, false));
    let merged = segmented.merged();
    let queries: Vec<Vec<f32>> = (0..PAIRS).map(|_| unit_vector(rng)).collect();
    let run = |ix: &Index, q: &[f32]| {
        let t = Instant::now();
        let a = ix.search(&[LiveQuery { vector: q, k: 10, ..LiveQuery::default() }], 0).remove(0);
        (t.elapsed(), a)
    };
    // What the base scan cost before tombstones were skipped inside the
    // scan: asked for k + tombstones hits, dead ones dropped after.
    let widened = |q: &[f32]| {
        let t = Instant::now();
        let base = segmented.segments().0;
        let wide = [ScanQuery { vector: q, k: 10 + rewrites, ..ScanQuery::default() }];
        let a = base.search(&ScanRequest { queries: &wide, ..ScanRequest::default() }).remove(0);
        (t.elapsed(), a.rescored_rows)
    };
    let (mut ratios, mut seg_t, mut mer_t, mut seg_rows, mut mer_rows) = (vec![], vec![], vec![], vec![], vec![]);
    let (mut old_ratios, mut old_rows) = (vec![], vec![]);
    for q in &queries {
        let (ts, a) = run(&segmented, q);
        let (tm, b) = run(&merged, q);
        let (to, rows) = widened(q);
        old_ratios.push(to.as_secs_f64() / tm.as_secs_f64());
        old_rows.push(rows);
        assert_eq!(a.hits, b.hits, "a delta never changes an answer");
        ratios.push(ts.as_secs_f64() / tm.as_secs_f64());
        seg_t.push(ts);
        mer_t.push(tm);
        seg_rows.push(a.rescored_rows);
        mer_rows.push(b.rescored_rows);
    }
    ratios.sort_by(f64::total_cmp);
    old_ratios.sort_by(f64::total_cmp);
    seg_rows.sort_unstable();
    mer_rows.sort_unstable();
    old_rows.sort_unstable();
    println!(
        "update/full-delta/{n} ({rewrites} tombstones + delta rows, scan {}): search {:.3} ms vs merged {:.3} ms, \
         median ratio of {PAIRS} pairs {:.3}; rows rescored median {} vs {}; \
         before (base asked for k + tombstones): base alone ÷ merged {:.3}, {} rows rescored",
        segmented.scan().name(),
        ms(median(seg_t)),
        ms(median(mer_t)),
        ratios[PAIRS / 2],
        seg_rows[PAIRS / 2],
        mer_rows[PAIRS / 2],
        old_ratios[PAIRS / 2],
        old_rows[PAIRS / 2]
    );
}

struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    async fn top(&self, vector: &[f32]) -> Option<String> {
        let body: Value = self
            .http
            .post(format!("{}/v1/search", self.base))
            .json(&json!({"vector": vector, "k": 1, "with_text": false}))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        body["results"][0]["id"].as_str().map(str::to_owned)
    }

    async fn stats(&self) -> Value {
        self.http.get(format!("{}/v1/stats", self.base)).send().await.expect("stats").json().await.expect("JSON")
    }
}

async fn fill(c: &mut MultiplexedConnection, n: usize) {
    let mut rng = StdRng::seed_from_u64(11);
    for start in (0..n).step_by(SET_BATCH) {
        let mut pipe = redis::pipe();
        for i in start..(start + SET_BATCH).min(n) {
            pipe.cmd("SET")
                .arg(format!("cache:embedding:{}", id(i * 2)))
                .arg(json_vector(&unit_vector(&mut rng)))
                .ignore();
        }
        let () = pipe.query_async(c).await.expect("fill Redis");
    }
}

/// Part 2: SET → searchable vs a full reload, through Redis and HTTP.
async fn end_to_end(redis: &ChildRedis, c: &mut MultiplexedConnection, n: usize, key_batch: Duration, salt: usize) {
    let mut settings = Settings::for_redis_url(&redis.url()).expect("settings");
    settings.refresh.key_batch = key_batch;
    settings.embedder = None;
    let app = App::build(settings).await.expect("app");
    let api = Api { http: reqwest::Client::new(), base: format!("http://{}", app.local_addr().expect("addr")) };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    let started = Instant::now();
    while api.stats().await["refresh"]["change_feed"] != "tracking"
        || api.stats().await["documents"].as_u64() < Some(n as u64)
    {
        assert!(started.elapsed() < PATIENCE * 5, "first load");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let scan = api.stats().await["scan"]["active"].clone();

    let mut reloads = Vec::new();
    for _ in 0..2 {
        let t = Instant::now();
        let r = api.http.post(format!("{}/v1/admin/reload", api.base)).send().await.expect("reload");
        assert!(r.status().is_success(), "reload: {}", r.status());
        reloads.push(t.elapsed());
    }
    let reload = median(reloads);

    // Another seed per run: a vector already stored would tie, and the smaller id win.
    let mut rng = StdRng::seed_from_u64(99 + salt as u64);
    let mut sets = Vec::new();
    for r in 0..ROUNDS {
        let v = unit_vector(&mut rng);
        let new_id = id((salt * ROUNDS + r) * 2 * 7919 + 1);
        let t = Instant::now();
        let () = redis::cmd("SET")
            .arg(format!("cache:embedding:{new_id}"))
            .arg(json_vector(&v))
            .query_async(c)
            .await
            .expect("SET");
        // The stored value has 6 decimals; search with what was stored.
        let stored: Vec<f32> = serde_json::from_str(&json_vector(&v)).expect("JSON");
        loop {
            if api.top(&stored).await.as_deref() == Some(new_id.as_str()) {
                sets.push(t.elapsed());
                break;
            }
            assert!(
                t.elapsed() < PATIENCE,
                "round {r}: SET of {new_id} never became searchable: {}",
                api.stats().await
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let set = median(sets.clone());
    println!(
        "update/e2e/{n} (key batch {} ms, scan {scan}): SET -> searchable median {:.1} ms (rounds {:?} ms), full reload {:.0} ms, ratio {:.4}",
        key_batch.as_millis(),
        ms(set),
        sets.iter().map(|d| ms(*d).round()).collect::<Vec<_>>(),
        ms(reload),
        set.as_secs_f64() / reload.as_secs_f64()
    );
    let _ = stop.send(());
    let _ = server.await;
}

fn main() {
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let sizes: Vec<usize> = match filter.as_deref().map(str::parse) {
        Some(Ok(n)) => vec![n],
        _ => vec![100_000, 1_000_000],
    };
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    for n in sizes {
        index_part(n);
        runtime.block_on(async {
            let dir = tempfile::tempdir().expect("temp dir");
            let redis = ChildRedis::start(dir.path(), &[]).unwrap_or_else(|e| panic!("{e}"));
            let client = redis::Client::open(redis.url()).expect("client");
            let mut c = client.get_multiplexed_async_connection().await.expect("connect");
            fill(&mut c, n).await;
            let () = redis::cmd("SET")
                .arg("cache:processed_articles:quick")
                .arg("[]")
                .query_async(&mut c)
                .await
                .expect("quick");
            end_to_end(&redis, &mut c, n, Duration::from_millis(100), 0).await;
            end_to_end(&redis, &mut c, n, Duration::from_millis(1), 1).await;
        });
    }
}
