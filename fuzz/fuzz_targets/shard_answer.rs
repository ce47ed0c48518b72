//! Fuzz target `shard_answer`: a shard's answer body as the router reads it
//! (issue 22), through the pure decoders of `router::decode` the router
//! runs on every shard answer before it merges or forwards anything.
//!
//! The first byte chooses what the router asked (shard count 1..=4, which
//! shard answered, k 0..=7, the mode, hits or best scores); the rest is the
//! body, given to `search_answer`, `stats_answer`, `info_answer`,
//! `document_answer` and `problem_answer`. None may panic, and whatever
//! `search_answer` accepts is checked against a plain reading of what the
//! merge relies on, written here independently of the decoder:
//! one answer per query (`search_answer_batch_size`), at most k hits, none
//! for best scores (`search_answer_k`), unique ids (`search_answer_unique`),
//! finite scores, cosines within [-1, 1] up to rounding
//! (`search_answer_finite`), ordered by score descending then id ascending
//! bytewise (`search_answer_order`), every id owned by the shard that
//! answered: CRC16 hash slot mod the count (`search_answer_owner`). An
//! accepted problem has our type URN, the answer's status, a 4xx
//! (`problem_answer_consistent`); an accepted document is the one asked
//! for, with an embedding exactly when asked, all finite
//! (`document_answer_asked`).

#![no_main]

#[path = "common/mod.rs"]
mod common;

use common::check;
use libfuzzer_sys::fuzz_target;
use semsearch::{
    query::{dto::SearchMode, shard::ShardWant},
    router::decode::{document_answer, info_answer, problem_answer, search_answer, stats_answer, Asked, Origin},
    shard::Shard,
    store::keys::KeySpace,
};

const MODES: [SearchMode; 3] = [SearchMode::Vector, SearchMode::Lexical, SearchMode::Hybrid];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let shards = usize::from(selector & 0x03) + 1;
    let shard = usize::from((selector >> 2) & 0x03) % shards;
    let k = usize::from((selector >> 4) & 0x07);
    let want = if selector & 0x80 != 0 { ShardWant::Best } else { ShardWant::Hits };
    let mode = MODES[usize::from(selector) % 3];
    let keys = KeySpace::default();
    let asked = [Asked { k, mode, want }, Asked { k: 1, mode: SearchMode::Vector, want: ShardWant::Hits }];
    let origin = Origin { shard, shards, keys: &keys };

    for n in 1..=2 {
        if let Ok(answer) = search_answer(body, &asked[..n], origin) {
            check(answer.answers.len() == n, "search_answer_batch_size", || format!("{n} asked: {answer:?}"));
            for (a, asked) in answer.answers.iter().zip(&asked[..n]) {
                let max = if asked.want == ShardWant::Best { 0 } else { asked.k };
                check(a.hits.len() <= max, "search_answer_k", || format!("{} hits for {asked:?}", a.hits.len()));
                let mut ids: Vec<&str> = a.hits.iter().map(|h| h.id.as_str()).collect();
                ids.sort_unstable();
                ids.dedup();
                check(ids.len() == a.hits.len(), "search_answer_unique", || format!("{:?}", a.hits));
                for h in &a.hits {
                    let cosine_ok = asked.mode != SearchMode::Vector || h.score.abs() <= 1.001;
                    check(h.score.is_finite() && h.rank.is_finite() && cosine_ok, "search_answer_finite", || {
                        format!("{h:?}")
                    });
                    let slot_ok = shards == 1
                        || usize::from(Shard::owner_of(format!("cache:embedding:{}", h.id).as_bytes(), shards as u16))
                            == shard;
                    check(slot_ok, "search_answer_owner", || format!("{} on shard {shard}/{shards}", h.id));
                }
                for pair in a.hits.windows(2) {
                    let (x, y) = (&pair[0], &pair[1]);
                    let before = x.rank > y.rank || (x.rank == y.rank && x.id.as_bytes() < y.id.as_bytes());
                    check(before, "search_answer_order", || format!("{x:?} then {y:?}"));
                }
            }
        }
    }
    let _ = stats_answer(body, &[k, 1]);
    let _ = info_answer(body);
    for with_embedding in [false, true] {
        if let Ok(doc) = document_answer(body, "a", with_embedding) {
            let ok = doc.id == "a"
                && doc.embedding.as_ref().is_some() == with_embedding
                && doc.embedding.iter().flatten().all(|x| x.is_finite());
            check(ok, "document_answer_asked", || format!("{doc:?} (with_embedding {with_embedding})"));
        }
    }
    let status = 400 + u16::from(selector) % 200;
    for content_type in [&b"application/problem+json"[..], b"application/problem+json; charset=utf-8", b"text/html"] {
        if let Ok(p) = problem_answer(status, Some(content_type), body) {
            let ok = p.status == status
                && (400..500).contains(&status)
                && p.type_ == format!("urn:semsearch:problem:{}", p.code.as_str())
                && content_type.starts_with(b"application/problem+json");
            check(ok, "problem_answer_consistent", || format!("{status}: {p:?}"));
        }
    }
});
