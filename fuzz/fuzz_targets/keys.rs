//! Fuzz target `keys`: the key-space rules of `store::keys` under arbitrary
//! configured names.
//!
//! `KeySpace::new` with an arbitrary embedding pattern, quick key and context
//! prefix (each the chatbot's default or a fuzzed string), then
//! `context_key`, `doc_id`, `embedding_key`, `seed_key` and `query_cache`.
//! The oracle is what the module promises, checked with Redis' own glob
//! rules (a small port of `stringmatchlen`, since SCAN MATCH is how both
//! the loader and the start-up context sweep see the keys):
//! - `new` accepts exactly a literal prefix + one `*`, with non-overlapping
//!   non-empty prefixes free of glob characters, and a quick key outside
//!   both that is not a prefix of the embedding prefix;
//! - a key is a document (`doc_id` is `Some`) iff SCAN MATCH of the
//!   embedding pattern returns it and it is not the bare prefix, and
//!   `doc_id(embedding_key(id)) == id` for every non-empty id;
//! - every `WritableKey` starts with the context (or query cache) prefix,
//!   is never a document and is found by the sweep's pattern;
//! - the sweep's pattern (`context_pattern`) never matches a document, the
//!   quick key or a cached query embedding;
//! - the prefixes Redis is asked to track (the embedding prefix, plus the
//!   quick key when outside it) never overlap, or CLIENT TRACKING refuses them.

#![no_main]

#[path = "common/mod.rs"]
mod common;

use arbitrary::Arbitrary;
use common::check;
use libfuzzer_sys::fuzz_target;
use semsearch::store::keys::{
    KeyError, KeySpace, QueryDigest, DEFAULT_CONTEXT_PREFIX, DEFAULT_EMBEDDING_PATTERN, DEFAULT_QUERY_CACHE_PREFIX,
    DEFAULT_QUICK_KEY, MAX_CONTEXT_KEY_BYTES,
};

#[derive(Debug, Arbitrary)]
struct Input {
    /// `None`: the chatbot's default, so the fuzzer also explores one
    /// custom name next to two sane ones.
    pattern: Option<String>,
    quick_key: Option<String>,
    context_prefix: Option<String>,
    query_cache_prefix: Option<String>,
    /// A client's `context_key`.
    suffix: String,
    /// A document id.
    id: String,
    /// Any key that exists in Redis.
    key: String,
    question: String,
}

fuzz_target!(|input: Input| {
    let pattern = input.pattern.as_deref().unwrap_or(DEFAULT_EMBEDDING_PATTERN);
    let quick = input.quick_key.as_deref().unwrap_or(DEFAULT_QUICK_KEY);
    let context = input.context_prefix.as_deref().unwrap_or(DEFAULT_CONTEXT_PREFIX);

    let got = KeySpace::new(pattern, quick, context);
    check_acceptance(pattern, quick, context, &got);
    let Ok(keys) = got else { return };

    check_names(&keys, pattern, quick);
    check_documents(&keys, &input);
    check_context_key(&keys, &input.suffix);
    check_sweep(&keys, &input);
    check_tracking(&keys);
    let qc_prefix = input.query_cache_prefix.as_deref().unwrap_or(DEFAULT_QUERY_CACHE_PREFIX);
    check_query_cache(&keys, qc_prefix, &input.question);
});

/// `new` accepts exactly the documented names, refusing with the documented error.
fn check_acceptance(pattern: &str, quick: &str, context: &str, got: &Result<KeySpace, KeyError>) {
    let glob_chars = |s: &str| s.contains(['*', '?', '[', ']', '\\']);
    let prefix = pattern.strip_suffix('*').filter(|p| !glob_chars(p));
    let want = match prefix {
        None => Err("BadPattern"),
        Some(p)
            if p.is_empty()
                || context.is_empty()
                || glob_chars(context)
                || p.starts_with(context)
                || context.starts_with(p) =>
        {
            Err("BadContextPrefix")
        }
        // Under the context prefix the sweep deletes it; under the embedding
        // prefix it is a document; a prefix of the embedding prefix makes
        // CLIENT TRACKING refuse the change feed (issue 16).
        Some(p) if quick.is_empty() || quick.starts_with(context) || quick.starts_with(p) || p.starts_with(quick) => {
            Err("BadQuickKey")
        }
        Some(_) => Ok(()),
    };
    let got_kind = match got {
        Ok(_) => Ok(()),
        Err(KeyError::BadPattern { .. }) => Err("BadPattern"),
        Err(KeyError::BadContextPrefix { .. }) => Err("BadContextPrefix"),
        Err(KeyError::BadQuickKey { .. }) => Err("BadQuickKey"),
        Err(_) => Err("other"),
    };
    check(got_kind == want, "keyspace_acceptance", || {
        format!("pattern {pattern:?}, quick key {quick:?}, context prefix {context:?}: got {got:?}, want {want:?}")
    });
}

fn check_names(keys: &KeySpace, pattern: &str, quick: &str) {
    check(keys.embedding_pattern() == pattern, "names_kept", || format!("{:?}", keys.embedding_pattern()));
    check(format!("{}*", keys.embedding_prefix()) == pattern, "names_kept", || {
        format!("{:?}", keys.embedding_prefix())
    });
    check(keys.quick_key() == quick, "names_kept", || format!("{:?}", keys.quick_key()));
}

/// `doc_id` agrees with SCAN MATCH, and ids round-trip through keys.
fn check_documents(keys: &KeySpace, input: &Input) {
    let pattern = keys.embedding_pattern().as_bytes();
    let key = input.key.as_str();
    let id = keys.doc_id(key);
    // The bare prefix matches the pattern but names no document (issue 16):
    // its id would be "", which no route can fetch.
    let is_document = glob(pattern, key.as_bytes()) && key != keys.embedding_prefix();
    check(id.is_some() == is_document, "doc_id_equals_scan_match", || {
        format!("key {key:?} under pattern {:?}: doc_id {id:?}", keys.embedding_pattern())
    });
    if let Some(id) = id {
        check(keys.embedding_key(id) == key, "embedding_key_round_trips", || format!("{key:?} -> {id:?}"));
    }
    let built = keys.embedding_key(&input.id);
    let want = Some(input.id.as_str()).filter(|id| !id.is_empty());
    check(keys.doc_id(&built) == want, "doc_id_of_embedding_key", || {
        format!("id {:?} -> key {built:?} -> {:?}", input.id, keys.doc_id(&built))
    });
    check(glob(pattern, built.as_bytes()), "embedding_key_is_scanned", || format!("{built:?}"));
    match keys.seed_key(&input.id) {
        Ok(seed) => {
            check(!input.id.is_empty(), "seed_key_needs_an_id", || "empty id accepted".into());
            check(keys.doc_id(seed.as_str()) == Some(input.id.as_str()), "seed_key_is_a_document", || {
                format!("{:?}", seed.as_str())
            });
        }
        Err(e) => check(input.id.is_empty() && e == KeyError::EmptyDocumentId, "seed_key_needs_an_id", || {
            format!("id {:?}: {e:?}", input.id)
        }),
    }
}

/// A context key is under the context prefix, never a document, and found by the sweep.
fn check_context_key(keys: &KeySpace, suffix: &str) {
    let allowed = !suffix.is_empty()
        && suffix.len() <= MAX_CONTEXT_KEY_BYTES
        && suffix.bytes().all(|b| (b'!'..=b'~').contains(&b));
    match keys.context_key(suffix) {
        Ok(key) => {
            let key = key.as_str();
            check(allowed, "context_key_rule", || format!("suffix {suffix:?} accepted"));
            let under_prefix = keys.context_pattern().strip_suffix('*').is_some_and(|p| key.starts_with(p));
            check(under_prefix, "writable_key_under_our_prefix", || format!("{key:?}"));
            check(keys.doc_id(key).is_none(), "writable_key_is_not_a_document", || format!("{key:?}"));
            check(!glob(keys.embedding_pattern().as_bytes(), key.as_bytes()), "writable_key_is_not_scanned", || {
                format!("{key:?} matches {:?}", keys.embedding_pattern())
            });
            check(glob(keys.context_pattern().as_bytes(), key.as_bytes()), "sweep_finds_our_contexts", || {
                format!("context {key:?} is not matched by the sweep pattern {:?}", keys.context_pattern())
            });
        }
        Err(e) => check(!allowed && e == KeyError::BadContextKey, "context_key_rule", || {
            format!("suffix {suffix:?} refused: {e:?}")
        }),
    }
}

/// The start-up sweep (SCAN MATCH context_pattern, then UNLINK) deletes only contexts.
fn check_sweep(keys: &KeySpace, input: &Input) {
    let sweep = keys.context_pattern();
    let document = keys.embedding_key(&input.id);
    check(!glob(sweep.as_bytes(), document.as_bytes()), "sweep_spares_documents", || {
        format!("the sweep pattern {sweep:?} deletes document key {document:?}")
    });
    if keys.doc_id(&input.key).is_some() {
        check(!glob(sweep.as_bytes(), input.key.as_bytes()), "sweep_spares_documents", || {
            format!("the sweep pattern {sweep:?} deletes document key {:?}", input.key)
        });
    }
    // issue 16 item 8: a quick key under the context prefix is deleted at start-up.
    check(!glob(sweep.as_bytes(), keys.quick_key().as_bytes()), "sweep_spares_the_quick_key", || {
        format!("the sweep pattern {sweep:?} deletes the quick key {:?}", keys.quick_key())
    });
}

/// What the change feed asks Redis to track (see store/watcher.rs `arm`):
/// Redis refuses overlapping prefixes for one client.
fn check_tracking(keys: &KeySpace) {
    let (prefix, quick) = (keys.embedding_prefix(), keys.quick_key());
    let tracked_separately = !quick.starts_with(prefix);
    check(!tracked_separately || !prefix.starts_with(quick), "tracking_prefixes_do_not_overlap", || {
        format!("CLIENT TRACKING PREFIX {prefix:?} PREFIX {quick:?} overlap; Redis refuses the change feed")
    });
}

/// The query cache prefix is refused iff it overlaps; its keys are ours alone.
fn check_query_cache(keys: &KeySpace, prefix: &str, question: &str) {
    let overlaps = |other: &str| prefix.starts_with(other) || other.starts_with(prefix);
    let context_prefix = keys.context_pattern().strip_suffix('*').unwrap_or_default().to_owned();
    let allowed = !prefix.is_empty()
        && !prefix.contains(['*', '?', '[', ']', '\\'])
        && !overlaps(keys.embedding_prefix())
        && !overlaps(&context_prefix);
    match keys.query_cache(prefix) {
        Ok(cache) => {
            check(allowed, "query_cache_prefix_rule", || format!("prefix {prefix:?} accepted"));
            let key = cache.key(&QueryDigest::new("model", question));
            let key = key.as_str();
            check(key.starts_with(prefix), "writable_key_under_our_prefix", || format!("{key:?}"));
            check(keys.doc_id(key).is_none(), "writable_key_is_not_a_document", || format!("{key:?}"));
            check(!glob(keys.embedding_pattern().as_bytes(), key.as_bytes()), "writable_key_is_not_scanned", || {
                format!("{key:?} matches {:?}", keys.embedding_pattern())
            });
            check(!glob(keys.context_pattern().as_bytes(), key.as_bytes()), "sweep_spares_query_cache", || {
                format!("the sweep pattern {:?} deletes cached query {key:?}", keys.context_pattern())
            });
        }
        Err(e) => {
            check(!allowed && matches!(e, KeyError::BadQueryCachePrefix { .. }), "query_cache_prefix_rule", || {
                format!("prefix {prefix:?} refused: {e:?}")
            })
        }
    }
}

/// Redis' `stringmatchlen` (util.c), case-sensitive: `*`, `?`, `[...]` with
/// `^` and ranges (compared as C's signed chars), `\` escapes; an unclosed
/// `[` ends at the pattern's end.
fn glob(pattern: &[u8], s: &[u8]) -> bool {
    glob_from(pattern, s) == Glob::Match
}

#[derive(PartialEq)]
enum Glob {
    Match,
    NoMatch,
    /// The pattern matches no suffix of this string either, so an earlier
    /// `*` need not try longer runs (Redis' `skipLongerMatches`, which keeps
    /// `*a*a*a*b` linear instead of exponential).
    NoMatchAnywhere,
}

fn glob_from(pattern: &[u8], s: &[u8]) -> Glob {
    let (mut p, mut i) = (0, 0);
    while p < pattern.len() {
        match pattern[p] {
            b'*' => {
                while p + 1 < pattern.len() && pattern[p + 1] == b'*' {
                    p += 1;
                }
                if p + 1 == pattern.len() {
                    return Glob::Match;
                }
                for start in i..=s.len() {
                    match glob_from(&pattern[p + 1..], &s[start..]) {
                        Glob::NoMatch => {}
                        decided => return decided,
                    }
                }
                return Glob::NoMatchAnywhere;
            }
            b'?' => {
                if i == s.len() {
                    return Glob::NoMatch;
                }
                i += 1;
            }
            b'[' => {
                if i == s.len() {
                    return Glob::NoMatch;
                }
                p += 1;
                let negate = pattern.get(p) == Some(&b'^');
                if negate {
                    p += 1;
                }
                let mut matched = false;
                loop {
                    match pattern.get(p) {
                        None => {
                            p -= 1;
                            break;
                        }
                        Some(b'\\') if p + 1 < pattern.len() => {
                            p += 1;
                            matched |= pattern[p] == s[i];
                        }
                        Some(b']') => break,
                        Some(&lo) if pattern.get(p + 1) == Some(&b'-') && p + 2 < pattern.len() => {
                            let (lo, hi, c) = (lo as i8, pattern[p + 2] as i8, s[i] as i8);
                            let (lo, hi) = if lo > hi { (hi, lo) } else { (lo, hi) };
                            p += 2;
                            matched |= (lo..=hi).contains(&c);
                        }
                        Some(&c) => matched |= c == s[i],
                    }
                    p += 1;
                }
                if matched == negate {
                    return Glob::NoMatch;
                }
                i += 1;
            }
            b'\\' if p + 1 < pattern.len() => {
                p += 1;
                if i == s.len() || pattern[p] != s[i] {
                    return Glob::NoMatch;
                }
                i += 1;
            }
            c => {
                if i == s.len() || c != s[i] {
                    return Glob::NoMatch;
                }
                i += 1;
            }
        }
        p += 1;
    }
    if i == s.len() {
        Glob::Match
    } else {
        Glob::NoMatch
    }
}
