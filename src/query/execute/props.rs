//! Property tests: lexical and hybrid rankings, on snapshots changed by
//! random per-key updates (delta, tombstones) and with expired rows,
//! filters and an excluded row, equal a naive oracle that rebuilds
//! everything from the live documents: BM25F counted from scratch (same
//! formula, same order: the same bits), the mean vector summed from
//! scratch, every document fused and sorted.
//!
//! Texts come from a small Portuguese vocabulary (accents, stop words,
//! repeats), so terms are shared, document frequencies move with updates,
//! and equal scores are common.

use std::collections::{BTreeMap, HashMap, HashSet};

use proptest::prelude::*;
use roaring::RoaringBitmap;
use semsearch_lexical::{bm25, Bm25Params, CorpusStats, Language, Scorer};

use super::*;
use crate::index::{
    fusion::{fused_order, FusedHit},
    lexical::LexicalSettings,
    unit::scale_to_unit,
    Document, IndexBuilder,
};

const DIM: usize = 6;
const WORDS: &[&str] = &[
    "planilha",
    "planilhas",
    "eletrônica",
    "eletronica",
    "contas",
    "conta",
    "de",
    "para",
    "o",
    "jogo",
    "jogos",
    "xadrez",
    "música",
    "musica",
    "editor",
    "texto",
    "textos",
    "imagem",
    "não",
    "servidor",
];

/// A document: title words, text words, vector, deadline.
type Doc = (Vec<usize>, Vec<usize>, Vec<f32>, Option<u64>);

fn id(i: usize) -> String {
    format!("doc:{i:04}")
}

fn text(words: &[usize]) -> String {
    words.iter().map(|&w| WORDS[w % WORDS.len()]).collect::<Vec<_>>().join(" ")
}

fn unit(mut v: Vec<f32>) -> Vec<f32> {
    if scale_to_unit(&mut v).is_err() {
        v = vec![0.0; DIM];
        v[0] = 1.0;
    }
    v
}

fn doc() -> impl Strategy<Value = Doc> {
    (
        prop::collection::vec(0..WORDS.len(), 0..4),
        prop::collection::vec(0..WORDS.len(), 0..12),
        // A few shared vectors (cosine ties) or a random one.
        prop_oneof![
            (0..3usize).prop_map(|t| unit((0..DIM).map(|d| ((t * 5 + d) % 4) as f32 - 1.5).collect())),
            prop::collection::vec(-1.0f32..1.0, DIM).prop_map(unit),
        ],
        prop::option::weighted(0.2, 0..100u64),
    )
}

fn build(model: &BTreeMap<String, Doc>) -> Index {
    let mut b = IndexBuilder::new(DIM);
    for (id, (title, body, v, exp)) in model {
        let d = Document {
            id: id.as_str().into(),
            title: Some(text(title).into()),
            text: Some(text(body).into()),
            expires_at_ms: *exp,
            ..Default::default()
        };
        b.push(Arc::new(d), v);
    }
    b.finish().expect("a BTreeMap is in id order")
}

/// BM25F of every live document, counted from scratch over `docs` (all of
/// the snapshot's documents: statistics include expired ones).
fn naive_bm25(settings: &LexicalSettings, docs: &[(String, String)], terms: &[String]) -> Vec<f64> {
    let analysed: Vec<(Vec<String>, Vec<String>)> =
        docs.iter().map(|(t, x)| (settings.analyzer.terms(t), settings.analyzer.terms(x))).collect();
    let n = docs.len() as f64;
    let avg_title = analysed.iter().map(|(t, _)| t.len() as u64).sum::<u64>() as f64 / n;
    let avg_text = analysed.iter().map(|(_, x)| x.len() as u64).sum::<u64>() as f64 / n;
    let p = settings.params;
    analysed
        .iter()
        .map(|(title, body)| {
            let mut score = 0.0;
            for t in terms {
                let df = analysed.iter().filter(|(a, b)| a.contains(t) || b.contains(t)).count() as f64;
                let (tf_title, tf_text) =
                    (title.iter().filter(|x| *x == t).count() as u32, body.iter().filter(|x| *x == t).count() as u32);
                if tf_title + tf_text == 0 {
                    continue;
                }
                let tf =
                    bm25::field_tf(p, tf_title, title.len() as u32, avg_title, tf_text, body.len() as u32, avg_text);
                score += bm25::idf(n, df) * tf / (p.k1 + tf);
            }
            score
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn lexical_and_hybrid_equal_a_naive_oracle_through_updates(
        initial in prop::collection::vec(doc(), 1..40),
        changes in prop::collection::vec((0..50usize, prop::option::weighted(0.7, doc())), 0..12),
        question in prop::collection::vec(0..WORDS.len(), 1..5),
        qvec in prop::collection::vec(-1.0f32..1.0, DIM),
        k in 1usize..12,
        now in 0..120u64,
        exclude in prop::option::of(0..60usize),
        filter_mod in prop::option::of(2u32..4),
        weight in prop::option::of(1u8..=10),
    ) {
        // Arrange: an index with its lexical side, changed key by key.
        let settings = Arc::new(LexicalSettings::new(Language::Portuguese));
        let mut model: BTreeMap<String, Doc> = initial.into_iter().enumerate().map(|(i, d)| (id(i), d)).collect();
        let mut index = build(&model).with_lexical(Arc::clone(&settings));
        for (i, change) in changes {
            let key = id(i);
            match change {
                Some(d) => { model.insert(key.clone(), d); }
                None => { model.remove(&key); }
            }
            let fresh_model: BTreeMap<String, Doc> = model.get(&key).map(|d| (key.clone(), d.clone())).into_iter().collect();
            let changed: HashSet<&str> = [key.as_str()].into_iter().collect();
            index = index.apply(&build(&fresh_model), &changed).expect("same dim").0;
        }
        let terms = settings.analyzer.terms(&text(&question));
        let q = unit(qvec);
        let rows: Option<RoaringBitmap> = filter_mod.map(|m| (0..index.len() as u32).filter(|r| r % m == 0).collect());
        let exclude = exclude.filter(|&r| r < index.len());
        let live = LiveQuery { vector: &q, k, min_score: None, exclude, rows: rows.as_ref() };

        // The oracle: every document of the view, statistics from scratch.
        let n = index.len();
        let docs: Vec<(String, String)> = (0..n)
            .map(|r| (index.doc(r).title.as_deref().unwrap_or("").to_owned(), index.doc(r).text.as_deref().unwrap_or("").to_owned()))
            .collect();
        let bm = if n == 0 { Vec::new() } else { naive_bm25(&settings, &docs, &terms) };
        let searchable: Vec<usize> = (0..n)
            .filter(|&r| rows.as_ref().is_none_or(|f| f.contains(r as u32)) && Some(r) != exclude && !index.is_expired(r, now))
            .collect();
        let stats = index.corpus_stats(&terms);
        let scorer = Scorer::new(terms.clone(), &stats, Bm25Params::default());

        // Act + Assert: lexical, bit for bit.
        let got = rank(&index, &live, &Ranking::Lexical { scorer: scorer.clone() }, now);
        let mut want: Vec<(u32, f64)> = searchable.iter().map(|&r| (r as u32, bm[r])).filter(|&(_, s)| s > 0.0).collect();
        want.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        prop_assert_eq!(got.matches, want.len());
        want.truncate(k);
        let got_pairs: Vec<(u32, f64)> = got.hits.iter().map(|h| (h.row, h.rank)).collect();
        prop_assert_eq!(&got_pairs, &want, "lexical");

        // Act + Assert: hybrid, every document fused and sorted.
        let weight = weight.map(|w| f64::from(w) / 10.0);
        let got = rank(&index, &live, &Ranking::Hybrid { scorer, fusion: FusionSource::Local { weight } }, now);
        let cos: Vec<f32> = (0..n).map(|r| index.cosine(r, &q)).collect();
        let mut sum = vec![0.0f64; DIM];
        for r in 0..n {
            for (s, &x) in sum.iter_mut().zip(index.row(r)) {
                *s += f64::from(x);
            }
        }
        let mu = if n == 0 { 0.0 } else { q.iter().zip(&sum).map(|(&a, b)| f64::from(a) * b).sum::<f64>() / n as f64 };
        let best_cosine = searchable.iter().map(|&r| cos[r]).fold(None, |m: Option<f32>, c| Some(m.map_or(c, |m| m.max(c))));
        let fusion = Fusion {
            weight: weight.unwrap_or_else(|| settings.fusion.vector_weight(mu)),
            mu,
            best_cosine: best_cosine.unwrap_or(0.0),
            best_lexical: searchable.iter().map(|&r| bm[r]).fold(0.0, f64::max),
        };
        let mut all: Vec<FusedHit> = searchable
            .iter()
            .map(|&r| FusedHit { row: r as u32, score: fusion.score(cos[r], bm[r]), cosine: cos[r], lexical: bm[r] })
            .collect();
        all.sort_by(fused_order);
        all.truncate(k);
        let want_rows: Vec<u32> = all.iter().map(|h| h.row).collect();
        let got_rows: Vec<u32> = got.hits.iter().map(|h| h.row).collect();
        prop_assert_eq!(&got_rows, &want_rows, "hybrid: {:?} vs {:?}", got.hits, all);
        for (g, w) in got.hits.iter().zip(&all) {
            prop_assert!((g.rank - w.score).abs() <= 1e-9, "{} vs {}", g.rank, w.score);
        }
    }
}

#[test]
fn statistics_after_updates_equal_a_fresh_index_of_the_same_documents() {
    let settings = Arc::new(LexicalSettings::new(Language::Portuguese));
    let mut model: BTreeMap<String, Doc> = BTreeMap::new();
    for i in 0..20 {
        model.insert(id(i), (vec![i % 5], vec![i % 7, 3, i % 11], unit(vec![1.0; DIM]), None));
    }
    let mut index = build(&model).with_lexical(Arc::clone(&settings));
    for i in [3usize, 7, 7, 25] {
        model.insert(id(i), (vec![9], vec![10, 11], unit(vec![0.5; DIM]), None));
        let fresh: BTreeMap<String, Doc> = model.get(&id(i)).map(|d| (id(i), d.clone())).into_iter().collect();
        let key = id(i);
        index = index.apply(&build(&fresh), &[key.as_str()].into_iter().collect()).expect("same dim").0;
    }
    model.remove(&id(4));
    let key = id(4);
    index = index.apply(&build(&BTreeMap::new()), &[key.as_str()].into_iter().collect()).expect("same dim").0;
    let fresh = build(&model).with_lexical(settings);
    let terms: Vec<String> = WORDS.iter().map(|w| w.to_string()).collect();
    let (got, want): (CorpusStats, CorpusStats) = (index.corpus_stats(&terms), fresh.corpus_stats(&terms));
    assert_eq!(got, want);
    let q = unit(vec![0.3; DIM]);
    assert!((index.mean_cosine(&q) - fresh.mean_cosine(&q)).abs() < 1e-12);
    let merged = index.merged();
    assert_eq!(merged.corpus_stats(&terms), want, "a merge keeps the lexical side");
    let _: HashMap<(), ()> = HashMap::new();
}
