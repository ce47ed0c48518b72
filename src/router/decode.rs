//! What the router accepts from a shard: each answer body decoded into its
//! typed DTO (`query::shard`) and checked before it is merged or passed on.
//!
//! A shard is another process, reached over a network the router does not
//! control (a proxy, a wrong address, a node of another version): its bytes
//! are input like a client's. Every function here is pure (bytes and what
//! the router asked in, a typed answer or a [`BadAnswer`] out), so the fuzz
//! target `shard_answer` calls exactly what the router runs. A bad answer
//! counts as a failed attempt: the router tries the shard's next replica
//! (`shards`), and never merges or forwards what failed a check.
//!
//! The checks are those the merge relies on (`merge`: each list is one
//! shard's exact top-k under the tie rule): at most k hits, ids unique and
//! owned by this shard, scores finite and in the tie rule's order.

use std::collections::HashSet;

use crate::{
    api::documents::DocumentResponse,
    problem::PROBLEM_JSON,
    query::{
        dto::SearchMode,
        shard::{ShardInfo, ShardProblem, ShardResponse, ShardStatsResponse, ShardWant},
    },
    store::keys::KeySpace,
};

use super::merge::rank_order;

/// How a shard's answer failed its checks (logged with the replica's URL;
/// the client gets `shard_unavailable` once every replica failed).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BadAnswer {
    #[error("not the JSON expected: {0}")]
    Json(String),
    #[error("answered {got} queries of {expected}")]
    BatchSize { expected: usize, got: usize },
    #[error("query {query}: {got} hits for k = {k}")]
    TooManyHits { query: usize, k: usize, got: usize },
    #[error("query {query}: id {id:?} twice")]
    DuplicateId { query: usize, id: String },
    #[error("query {query}: a score of {id:?} is not a finite number in range")]
    BadScore { query: usize, id: String },
    #[error("query {query}: {id:?} is out of the tie rule's order")]
    OutOfOrder { query: usize, id: String },
    #[error("query {query}: {id:?} belongs to another shard")]
    NotOwned { query: usize, id: String },
    #[error("query {query}: best scores are not finite numbers in range")]
    BadBest { query: usize },
    #[error("query {query}: statistics for {got} terms, {expected} asked")]
    StatsShape { query: usize, expected: usize, got: usize },
    #[error("asked for document {expected:?}, got {got:?}")]
    WrongDocument { expected: String, got: String },
    #[error("document without the embedding asked for, or with a non-finite one")]
    BadEmbedding,
    #[error("an error answer that is not our problem+json ({0})")]
    NotAProblem(String),
}

/// What one query asked of a shard: what its answer is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asked {
    pub k: usize,
    pub mode: SearchMode,
    pub want: ShardWant,
}

/// Which shard answered, and how ids map to shards.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub shard: usize,
    pub shards: usize,
    pub keys: &'a KeySpace,
}

impl Origin<'_> {
    fn owns(&self, id: &str) -> bool {
        let Ok(count) = u16::try_from(self.shards) else { return false };
        self.shards <= 1 || usize::from(self.keys.owner_of(id, count)) == self.shard
    }
}

/// Largest |cosine| a vector score may have: 1, with the f32 rounding a
/// dot product of unit vectors can add.
const MAX_COSINE: f32 = 1.0 + 1e-3;

fn json<'a, T: serde::Deserialize<'a>>(body: &'a [u8]) -> Result<T, BadAnswer> {
    serde_json::from_slice(body).map_err(|e| BadAnswer::Json(e.to_string()))
}

/// A `POST /v1/shard/search` answer to the queries `asked`, from `from`.
///
/// # Errors
/// [`BadAnswer`] naming the first check that failed.
pub fn search_answer(body: &[u8], asked: &[Asked], from: Origin<'_>) -> Result<ShardResponse, BadAnswer> {
    let answer: ShardResponse = json(body)?;
    if answer.answers.len() != asked.len() {
        return Err(BadAnswer::BatchSize { expected: asked.len(), got: answer.answers.len() });
    }
    for (query, (a, asked)) in answer.answers.iter().zip(asked).enumerate() {
        let best_ok = a.best_cosine.is_none_or(|c| c.is_finite() && c.abs() <= MAX_COSINE)
            && a.best_lexical.is_finite()
            && a.best_lexical >= 0.0;
        if !best_ok {
            return Err(BadAnswer::BadBest { query });
        }
        let k = if asked.want == ShardWant::Best { 0 } else { asked.k };
        if a.hits.len() > k {
            return Err(BadAnswer::TooManyHits { query, k, got: a.hits.len() });
        }
        let mut seen = HashSet::with_capacity(a.hits.len());
        for (i, hit) in a.hits.iter().enumerate() {
            let id = || hit.id.clone();
            if !seen.insert(hit.id.as_str()) {
                return Err(BadAnswer::DuplicateId { query, id: id() });
            }
            let in_range = |s: f32| match asked.mode {
                SearchMode::Vector => s.abs() <= MAX_COSINE,
                _ => true,
            };
            let finite = hit.score.is_finite()
                && hit.rank.is_finite()
                && in_range(hit.score)
                && hit.vector_score.is_none_or(|s| s.is_finite() && s.abs() <= MAX_COSINE)
                && hit.lexical_score.is_none_or(f64::is_finite);
            if !finite {
                return Err(BadAnswer::BadScore { query, id: id() });
            }
            if i > 0 && rank_order(&a.hits[i - 1], hit) != std::cmp::Ordering::Less {
                return Err(BadAnswer::OutOfOrder { query, id: id() });
            }
            if !from.owns(&hit.id) {
                return Err(BadAnswer::NotOwned { query, id: id() });
            }
        }
    }
    Ok(answer)
}

/// A `POST /v1/shard/stats` answer for questions of `terms[i]` terms each.
///
/// # Errors
/// [`BadAnswer`] naming the first check that failed.
pub fn stats_answer(body: &[u8], terms: &[usize]) -> Result<ShardStatsResponse, BadAnswer> {
    let answer: ShardStatsResponse = json(body)?;
    if answer.answers.len() != terms.len() {
        return Err(BadAnswer::BatchSize { expected: terms.len(), got: answer.answers.len() });
    }
    for (query, (a, &expected)) in answer.answers.iter().zip(terms).enumerate() {
        if a.stats.df.len() != expected {
            return Err(BadAnswer::StatsShape { query, expected, got: a.stats.df.len() });
        }
        if !a.vector_dot.is_finite() {
            return Err(BadAnswer::BadBest { query });
        }
    }
    Ok(answer)
}

/// A `GET /v1/shard/info` answer (its identity is checked by `verify`).
///
/// # Errors
/// [`BadAnswer::Json`].
pub fn info_answer(body: &[u8]) -> Result<ShardInfo, BadAnswer> {
    json(body)
}

/// A `POST /v1/shard/document` answer for `id`.
///
/// # Errors
/// [`BadAnswer`]: another document, or an embedding missing or not finite.
pub fn document_answer(body: &[u8], id: &str, with_embedding: bool) -> Result<DocumentResponse, BadAnswer> {
    let doc: DocumentResponse = json(body)?;
    if doc.id != id {
        return Err(BadAnswer::WrongDocument { expected: id.to_owned(), got: doc.id });
    }
    let embedding_ok = match &doc.embedding {
        Some(v) => with_embedding && !v.is_empty() && v.iter().all(|x| x.is_finite()),
        None => !with_embedding,
    };
    if !embedding_ok {
        return Err(BadAnswer::BadEmbedding);
    }
    Ok(doc)
}

/// A shard's 4xx answer, `status` with `content_type`: our problem+json,
/// consistent with itself, or nothing the router passes on.
///
/// # Errors
/// [`BadAnswer::NotAProblem`] for another media type (an HTML page from a
/// proxy), a body of another shape, or a status that disagrees.
pub fn problem_answer(status: u16, content_type: Option<&[u8]>, body: &[u8]) -> Result<ShardProblem, BadAnswer> {
    let media = content_type.and_then(|v| std::str::from_utf8(v).ok()).unwrap_or("");
    if !media.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case(PROBLEM_JSON)) {
        return Err(BadAnswer::NotAProblem(format!("content type {:?}", crate::problem::echo(media))));
    }
    let problem: ShardProblem = json(body).map_err(|e| BadAnswer::NotAProblem(e.to_string()))?;
    let consistent =
        problem.status == status && (400..500).contains(&status) && problem.type_ == problem.code.type_uri();
    if !consistent {
        return Err(BadAnswer::NotAProblem(format!(
            "status {status}, problem {} {}",
            problem.status,
            problem.code.as_str()
        )));
    }
    Ok(problem)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn keys() -> KeySpace {
        KeySpace::default()
    }

    fn hit(id: &str, score: f64) -> serde_json::Value {
        json!({"id": id, "url": id, "title": null, "score": score, "rank": score})
    }

    fn answer(hits: Vec<serde_json::Value>) -> Vec<u8> {
        json!({"index_version": 1, "answers": [{"hits": hits, "searchable": 3, "filtered": false}]})
            .to_string()
            .into_bytes()
    }

    const VECTOR: Asked = Asked { k: 3, mode: SearchMode::Vector, want: ShardWant::Hits };

    fn one_shard(keys: &KeySpace) -> Origin<'_> {
        Origin { shard: 0, shards: 1, keys }
    }

    #[test]
    fn a_well_formed_answer_is_accepted() {
        let k = keys();
        let body = answer(vec![hit("a", 0.9), hit("c", 0.5)]);
        assert!(search_answer(&body, &[VECTOR], one_shard(&k)).is_ok());
        let tied = answer(vec![hit("b", 0.5), hit("c", 0.5)]);
        assert!(search_answer(&tied, &[VECTOR], one_shard(&k)).is_ok(), "equal scores by ascending id");
    }

    #[test]
    fn duplicated_ids_unordered_scores_and_too_many_hits_are_refused() {
        let k = keys();
        let cases = [
            (answer(vec![hit("a", 0.9), hit("a", 0.9)]), "DuplicateId"),
            (answer(vec![hit("a", 0.5), hit("b", 0.9)]), "OutOfOrder"),
            (answer(vec![hit("c", 0.5), hit("b", 0.5)]), "OutOfOrder"),
            (answer(vec![hit("a", 0.9), hit("b", 0.8), hit("c", 0.7), hit("d", 0.6)]), "TooManyHits"),
            (answer(vec![hit("a", 1e39)]), "BadScore"),
            (answer(vec![hit("a", 2.0)]), "BadScore"),
            (b"<html>".to_vec(), "Json"),
            (json!({"index_version": 1, "answers": []}).to_string().into_bytes(), "BatchSize"),
        ];
        for (body, want) in cases {
            let got = search_answer(&body, &[VECTOR], one_shard(&k)).expect_err(want);
            assert!(format!("{got:?}").starts_with(want), "{want}: {got:?}");
        }
    }

    #[test]
    fn a_hit_of_another_shard_is_refused() {
        let k = keys();
        let id = (0..100).map(|i| format!("doc-{i}")).find(|id| k.owner_of(id, 2) == 1);
        let id = id.expect("some id hashes to shard 1 of 2");
        let from = Origin { shard: 0, shards: 2, keys: &k };
        let got = search_answer(&answer(vec![hit(&id, 0.5)]), &[VECTOR], from);
        assert!(matches!(got, Err(BadAnswer::NotOwned { .. })), "{got:?}");
        assert!(search_answer(&answer(vec![hit(&id, 0.5)]), &[VECTOR], Origin { shard: 1, ..from }).is_ok());
    }

    #[test]
    fn only_our_problem_json_is_a_problem() {
        let body = json!({"type": "urn:semsearch:problem:wrong_dimension", "title": "Unprocessable Entity",
            "status": 422, "detail": "d", "code": "wrong_dimension"})
        .to_string();
        assert!(problem_answer(422, Some(b"application/problem+json"), body.as_bytes()).is_ok());
        assert!(problem_answer(400, Some(b"application/problem+json"), body.as_bytes()).is_err(), "status differs");
        assert!(problem_answer(422, Some(b"text/html"), body.as_bytes()).is_err());
        assert!(problem_answer(400, Some(b"application/problem+json"), b"<html>").is_err());
    }

    #[test]
    fn a_document_answer_must_be_the_one_asked_for() {
        let doc = json!({"id": "a", "url": "a", "title": null, "text": null, "index_version": 3}).to_string();
        assert!(document_answer(doc.as_bytes(), "a", false).is_ok());
        assert!(matches!(document_answer(doc.as_bytes(), "b", false), Err(BadAnswer::WrongDocument { .. })));
        assert!(matches!(document_answer(doc.as_bytes(), "a", true), Err(BadAnswer::BadEmbedding)));
    }

    proptest::proptest! {
        /// Any bytes: no panic, and whatever is accepted holds every check.
        #[test]
        fn random_bytes_never_panic_and_accepted_answers_hold_the_checks(
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
        ) {
            let k = keys();
            if let Ok(a) = search_answer(&body, &[VECTOR], one_shard(&k)) {
                proptest::prop_assert!(a.answers[0].hits.len() <= 3);
            }
            let _ = stats_answer(&body, &[2]);
            let _ = info_answer(&body);
            let _ = document_answer(&body, "a", true);
            let _ = problem_answer(422, Some(b"application/problem+json"), &body);
        }
    }
}
