//! Every Redis key name semsearch reads or writes, in one place.
//!
//! Invariant: semsearch writes only under the prefixes this module owns
//! (`cache:context:*` and `cache:query_embedding:*` by default).
//! [`KeySpace::context_key`] and [`QueryCacheKeys::key`] are the only ways
//! to obtain a [`WritableKey`], and the store's write paths take nothing else,
//! so a write outside our prefixes cannot be expressed. `chat:history:*` and
//! every other key are never read or written: reads go through the embedding
//! pattern and the quick key only.
//!
//! One deliberate exception, outside the service: the seeding tools
//! (`semsearch seed`, `demo`, `bench --synthetic`) write documents the way the
//! chatbot does. They get their keys from [`KeySpace::seed_key`], a distinct
//! [`SeedKey`] type that the service's write paths do not accept, so the
//! running service still cannot write an embedding.

use sha2::{Digest, Sha256};

use crate::shard::Shard;
use thiserror::Error;

/// Why a key configuration or a requested key was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum KeyError {
    /// The embedding pattern must be a literal prefix followed by one `*`.
    #[error(
        "embedding pattern {pattern:?} must be a literal prefix ending in a single '*' (no other glob characters)"
    )]
    BadPattern { pattern: String },
    /// A prefix we write under must be non-empty and must not overlap the
    /// embeddings (a context written there would become a document).
    #[error(
        "context prefix {prefix:?} must be non-empty and must not overlap the embedding prefix {embedding_prefix:?}"
    )]
    BadContextPrefix { prefix: String, embedding_prefix: String },
    /// The query-embedding cache prefix must be non-empty and overlap neither
    /// the embeddings (a cached question would become a document) nor the
    /// contexts (a context SCAN would return question vectors).
    #[error(
        "query cache prefix {prefix:?} must be non-empty and must not overlap the embedding prefix {embedding_prefix:?} or the context prefix {context_prefix:?}"
    )]
    BadQueryCachePrefix { prefix: String, embedding_prefix: String, context_prefix: String },
    /// The quick key is empty or lies under the context or embedding prefix.
    #[error("the quick key {quick_key:?} must be non-empty and outside the embedding and context prefixes")]
    BadQuickKey { quick_key: String },
    /// A client-chosen key suffix was empty, too long or not printable.
    #[error("context key must be 1..=256 bytes of printable ASCII without spaces")]
    BadContextKey,
    /// A document to seed has an empty id: its key would be the bare prefix.
    #[error("a document id must not be empty")]
    EmptyDocumentId,
}

/// The key names in use, validated once at start-up.
#[derive(Debug, Clone)]
pub struct KeySpace {
    embedding_pattern: String,
    embedding_prefix: String,
    quick_key: String,
    context_prefix: String,
    /// `Some` on a shard replica (`SEMSEARCH_SHARD`): embedding keys of other
    /// shards are not ours to load, even though SCAN and the change feed see them.
    shard: Option<Shard>,
}

/// A key semsearch is allowed to write. Only [`KeySpace`] constructs one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WritableKey(String);

impl WritableKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An embedding key, for the seeding tools only (see the module docs).
/// Only [`KeySpace::seed_key`] constructs one, so it is always under the
/// embedding prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedKey(String);

impl SeedKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Longest client-chosen key suffix we accept, in bytes.
pub const MAX_CONTEXT_KEY_BYTES: usize = 256;

/// The chatbot's embedding keys: `cache:embedding:<article url>`.
pub const DEFAULT_EMBEDDING_PATTERN: &str = "cache:embedding:*";
/// The chatbot's "articles changed" key.
pub const DEFAULT_QUICK_KEY: &str = "cache:processed_articles:quick";
/// Where the chatbot reads cached retrieval results.
pub const DEFAULT_CONTEXT_PREFIX: &str = "cache:context:";

impl Default for KeySpace {
    /// The chatbot's key names, for tools that need no flags to find them.
    fn default() -> Self {
        Self::new(DEFAULT_EMBEDDING_PATTERN, DEFAULT_QUICK_KEY, DEFAULT_CONTEXT_PREFIX)
            .expect("the default key names are valid and do not overlap")
    }
}

impl KeySpace {
    /// Validates the configured names.
    ///
    /// # Errors
    /// [`KeyError::BadPattern`] when the pattern has glob characters other
    /// than one trailing `*` (we derive document ids by stripping the prefix);
    /// [`KeyError::BadContextPrefix`] when the context prefix could collide
    /// with the embeddings.
    pub fn new(embedding_pattern: &str, quick_key: &str, context_prefix: &str) -> Result<Self, KeyError> {
        let prefix = embedding_pattern
            .strip_suffix('*')
            .filter(|p| !p.contains(['*', '?', '[', ']', '\\']))
            .ok_or_else(|| KeyError::BadPattern { pattern: embedding_pattern.to_owned() })?;
        // The start-up sweep SCANs `<context prefix>*` and UNLINKs every match:
        // a glob character there would delete other keys ('*' deleted all of
        // them in the fuzz run of issue 16).
        if context_prefix.contains(['*', '?', '[', ']', '\\'])
            || context_prefix.is_empty()
            || context_prefix.starts_with(prefix)
            || (!prefix.is_empty() && prefix.starts_with(context_prefix))
            || prefix.is_empty()
        {
            return Err(KeyError::BadContextPrefix {
                prefix: context_prefix.to_owned(),
                embedding_prefix: prefix.to_owned(),
            });
        }
        // The quick key under our context prefix would be deleted by the
        // start-up sweep; under the embedding prefix it would be loaded as a
        // document (issue 16).
        // A quick key that is a prefix of the embedding prefix makes Redis refuse
        // the tracking prefixes as overlapping (the change feed would be off).
        if quick_key.is_empty()
            || quick_key.starts_with(context_prefix)
            || quick_key.starts_with(prefix)
            || prefix.starts_with(quick_key)
        {
            return Err(KeyError::BadQuickKey { quick_key: quick_key.to_owned() });
        }
        Ok(Self {
            embedding_pattern: embedding_pattern.to_owned(),
            embedding_prefix: prefix.to_owned(),
            quick_key: quick_key.to_owned(),
            context_prefix: context_prefix.to_owned(),
            shard: None,
        })
    }

    /// The same names, keeping only the embedding keys of `shard`.
    #[must_use]
    pub fn with_shard(mut self, shard: Option<Shard>) -> Self {
        self.shard = shard;
        self
    }

    /// The shard this replica keeps, if it keeps one.
    pub fn shard(&self) -> Option<Shard> {
        self.shard
    }

    /// Whether this replica keeps the embedding key `key`: always without a
    /// shard; with one, when the key's hash slot falls in it. Keys of other
    /// shards are neither rows nor skipped keys: they are not in our key set.
    pub fn owns(&self, key: &[u8]) -> bool {
        self.shard.is_none_or(|s| s.owns(key))
    }

    /// The SCAN MATCH pattern for embeddings (`cache:embedding:*`).
    pub fn embedding_pattern(&self) -> &str {
        &self.embedding_pattern
    }

    /// The literal part of the pattern; stripped from a key to get the id.
    pub fn embedding_prefix(&self) -> &str {
        &self.embedding_prefix
    }

    /// The chatbot's article cache; its removal means "reload".
    pub fn quick_key(&self) -> &str {
        &self.quick_key
    }

    /// The document id of an embedding key: the suffix after the prefix
    /// (for the chatbot, the article URL). `None` for keys outside the pattern.
    pub fn doc_id<'k>(&self, key: &'k str) -> Option<&'k str> {
        // The bare prefix names no document (its id would be "", which no
        // route can fetch): it is an invalid key, not a row (issue 16).
        key.strip_prefix(self.embedding_prefix.as_str()).filter(|id| !id.is_empty())
    }

    /// The Redis key of a document id.
    pub fn embedding_key(&self, id: &str) -> String {
        format!("{}{}", self.embedding_prefix, id)
    }

    /// Which of `count` shards keeps document `id`: its key's hash slot
    /// mod `count` (see `crate::shard`). Checked for every hit a router
    /// merges, so a usual key is formed on the stack, not the heap.
    pub fn owner_of(&self, id: &str, count: u16) -> u16 {
        let (prefix, id) = (self.embedding_prefix.as_bytes(), id.as_bytes());
        let mut buf = [0u8; 256];
        match buf.get_mut(..prefix.len() + id.len()) {
            Some(key) => {
                key[..prefix.len()].copy_from_slice(prefix);
                key[prefix.len()..].copy_from_slice(id);
                Shard::owner_of(key, count)
            }
            None => Shard::owner_of(&[prefix, id].concat(), count),
        }
    }

    /// What a key the change feed named is to this replica: the quick key,
    /// a document it keeps (by id), or neither. Keys are parsed here once;
    /// from the feed on, the refresher speaks document ids.
    pub fn tracked<'k>(&self, key: &'k [u8]) -> TrackedKey<'k> {
        let Ok(key) = std::str::from_utf8(key) else { return TrackedKey::NotUtf8 };
        if key == self.quick_key {
            return TrackedKey::Quick;
        }
        match self.doc_id(key) {
            Some(id) if self.owns(key.as_bytes()) => TrackedKey::Document(id),
            _ => TrackedKey::NotOurs,
        }
    }

    /// The key the seeding tools write document `id` under (prefix + id).
    ///
    /// # Errors
    /// [`KeyError::EmptyDocumentId`] for an empty id.
    pub fn seed_key(&self, id: &str) -> Result<SeedKey, KeyError> {
        if id.is_empty() {
            return Err(KeyError::EmptyDocumentId);
        }
        Ok(SeedKey(self.embedding_key(id)))
    }

    /// The key a search result is cached under.
    ///
    /// # Errors
    /// [`KeyError::BadContextKey`] unless `suffix` is 1..=256 bytes of
    /// printable, non-space ASCII.
    pub fn context_key(&self, suffix: &str) -> Result<WritableKey, KeyError> {
        let ok =
            !suffix.is_empty() && suffix.len() <= MAX_CONTEXT_KEY_BYTES && suffix.bytes().all(|b| b.is_ascii_graphic());
        if !ok {
            return Err(KeyError::BadContextKey);
        }
        Ok(WritableKey(format!("{}{}", self.context_prefix, suffix)))
    }

    /// The SCAN pattern matching every context we wrote.
    pub fn context_pattern(&self) -> String {
        format!("{}*", self.context_prefix)
    }

    /// Validates the query-embedding cache prefix against our other prefixes.
    ///
    /// # Errors
    /// [`KeyError::BadQueryCachePrefix`] when `prefix` is empty or either it
    /// or the embedding / context prefix starts with the other.
    pub fn query_cache(&self, prefix: &str) -> Result<QueryCacheKeys, KeyError> {
        let overlaps = |other: &str| prefix.starts_with(other) || other.starts_with(prefix);
        if prefix.is_empty()
            || prefix.contains(['*', '?', '[', ']', '\\'])
            || overlaps(&self.embedding_prefix)
            || overlaps(&self.context_prefix)
        {
            return Err(KeyError::BadQueryCachePrefix {
                prefix: prefix.to_owned(),
                embedding_prefix: self.embedding_prefix.clone(),
                context_prefix: self.context_prefix.clone(),
            });
        }
        Ok(QueryCacheKeys { prefix: prefix.to_owned() })
    }
}

/// Default prefix of cached question embeddings. Deliberately outside
/// `cache:embedding:*`: a question stored there would be loaded as an article.
pub const DEFAULT_QUERY_CACHE_PREFIX: &str = "cache:query_embedding:";

/// Keys of the query-embedding cache, validated by [`KeySpace::query_cache`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryCacheKeys {
    prefix: String,
}

/// Hex SHA-256 of `model + "\n" + normalised text`: the identity of a cached
/// question embedding, in Redis and in the in-process LRU alike. Hashing keeps
/// keys short and printable whatever the question, and the model is part of
/// it so switching models can never serve a vector from the old one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QueryDigest(String);

impl QueryDigest {
    pub fn new(model: &str, normalized_text: &str) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(model.as_bytes());
        hasher.update(b"\n");
        hasher.update(normalized_text.as_bytes());
        let hex = hasher.finalize().iter().fold(String::with_capacity(64), |mut s, b| {
            s.push(char::from(HEX[usize::from(b >> 4)]));
            s.push(char::from(HEX[usize::from(b & 0xf)]));
            s
        });
        Self(hex)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

impl QueryCacheKeys {
    /// The key a question's embedding is cached under: prefix + digest.
    pub fn key(&self, digest: &QueryDigest) -> WritableKey {
        WritableKey(format!("{}{}", self.prefix, digest.0))
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

/// What a changed key is to this replica (see [`KeySpace::tracked`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackedKey<'k> {
    /// The chatbot's quick key: its change means "reload".
    Quick,
    /// The embedding key of a document this replica keeps: its id.
    Document(&'k str),
    /// Not UTF-8, so it names no document id; only a reconcile can account for it.
    NotUtf8,
    /// The bare prefix, or a document of another shard.
    NotOurs,
}

/// An order-independent digest of a set of keys: how many, and the XOR of
/// their 64-bit hashes. Cheap to compute from a SCAN and to update one key at
/// a time, which is what the periodic reconcile needs to notice missed
/// changes. (A value rewritten under the same key does not change it.)
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeySetFingerprint {
    pub count: u64,
    pub xor: u64,
}

impl KeySetFingerprint {
    pub fn insert(&mut self, key: &[u8]) {
        self.count += 1;
        self.xor ^= key_hash(key);
    }

    pub fn remove(&mut self, key: &[u8]) {
        self.count = self.count.saturating_sub(1);
        self.xor ^= key_hash(key);
    }
}

/// FNV-1a, 64 bit: stable across processes and versions (unlike std's hasher).
pub fn key_hash(key: &[u8]) -> u64 {
    key.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chatbot() -> KeySpace {
        KeySpace::new("cache:embedding:*", "cache:processed_articles:quick", "cache:context:")
            .expect("defaults are valid")
    }

    #[test]
    fn fingerprint_ignores_order_and_undoes_removal() {
        let (mut a, mut b) = (KeySetFingerprint::default(), KeySetFingerprint::default());
        for k in ["x", "y", "z"] {
            a.insert(k.as_bytes());
        }
        for k in ["z", "x", "w", "y"] {
            b.insert(k.as_bytes());
        }
        assert_ne!(a, b);
        b.remove(b"w");
        assert_eq!(a, b);
    }

    #[test]
    fn doc_id_is_the_suffix_after_the_prefix() {
        let k = chatbot();
        assert_eq!(k.doc_id("cache:embedding:https://a/b"), Some("https://a/b"));
        assert_eq!(k.doc_id("chat:history:1"), None);
        assert_eq!(k.doc_id("cache:embedding:"), None, "issue 16: the bare prefix is no document");
    }

    #[test]
    fn an_ids_owner_is_its_keys_slot_on_the_stack_or_the_heap() {
        use crate::shard::Shard;
        let keys = KeySpace::default();
        for id in ["a", "https://help.example/artigo/1", "{tag}x", &"x".repeat(300)] {
            for count in [1, 2, 3, 7] {
                assert_eq!(keys.owner_of(id, count), Shard::owner_of(keys.embedding_key(id).as_bytes(), count), "{id}");
            }
        }
    }

    #[test]
    fn a_changed_key_is_the_quick_key_one_of_our_documents_or_neither() {
        // Arrange
        let keys = chatbot();
        let shard = Shard::new(0, 2).expect("valid");
        let theirs = (0..).map(|i| format!("cache:embedding:{i}")).find(|k| !shard.owns(k.as_bytes()));
        let theirs = theirs.expect("some key is the other shard's");
        let sharded = chatbot().with_shard(Some(shard));

        // Act / Assert
        assert_eq!(keys.tracked(b"cache:processed_articles:quick"), TrackedKey::Quick);
        assert_eq!(keys.tracked(b"cache:embedding:https://a"), TrackedKey::Document("https://a"));
        assert_eq!(keys.tracked(b"cache:embedding:\xff"), TrackedKey::NotUtf8);
        assert_eq!(keys.tracked(b"cache:embedding:"), TrackedKey::NotOurs);
        assert_eq!(keys.tracked(theirs.as_bytes()), TrackedKey::Document(&theirs["cache:embedding:".len()..]));
        assert_eq!(sharded.tracked(theirs.as_bytes()), TrackedKey::NotOurs);
    }

    #[test]
    fn issue_16_a_context_prefix_with_glob_characters_is_refused() {
        for prefix in ["*", "cache:ctx*", "c?x:", "c[x]:", "c\\x:"] {
            assert!(
                matches!(KeySpace::new("cache:embedding:*", "q", prefix), Err(KeyError::BadContextPrefix { .. })),
                "{prefix:?}"
            );
        }
    }

    #[test]
    fn issue_16_a_quick_key_under_our_prefixes_is_refused() {
        for quick in ["cache:context:quick", "cache:embedding:quick", "", "cache:", "cache:embedding"] {
            assert!(
                matches!(
                    KeySpace::new("cache:embedding:*", quick, "cache:context:"),
                    Err(KeyError::BadQuickKey { .. })
                ),
                "{quick:?}"
            );
        }
    }

    #[test]
    fn pattern_with_inner_glob_is_refused() {
        assert!(matches!(KeySpace::new("cache:*:x*", "q", "c:"), Err(KeyError::BadPattern { .. })));
        assert!(matches!(KeySpace::new("cache:embedding:", "q", "c:"), Err(KeyError::BadPattern { .. })));
    }

    #[test]
    fn context_prefix_inside_embeddings_is_refused() {
        let got = KeySpace::new("cache:embedding:*", "q", "cache:embedding:ctx:");
        assert!(matches!(got, Err(KeyError::BadContextPrefix { .. })));
        let got = KeySpace::new("cache:embedding:*", "q", "cache:");
        assert!(matches!(got, Err(KeyError::BadContextPrefix { .. })));
    }

    #[test]
    fn query_cache_prefix_overlapping_embeddings_or_contexts_is_refused() {
        let k = chatbot();
        for bad in ["", "cache:embedding:q:", "cache:", "cache:context:q:", "cache:emb"] {
            assert!(
                matches!(k.query_cache(bad), Err(KeyError::BadQueryCachePrefix { .. })),
                "{bad:?} should be refused"
            );
        }
        assert!(k.query_cache(DEFAULT_QUERY_CACHE_PREFIX).is_ok());
    }

    #[test]
    fn query_keys_are_prefix_plus_hex_sha256_of_model_newline_text() {
        let keys = chatbot().query_cache(DEFAULT_QUERY_CACHE_PREFIX).expect("default is valid");
        let digest = QueryDigest::new("m", "q");
        // sha256("m\nq"), computed with `printf 'm\nq' | sha256sum`.
        assert_eq!(digest.as_str(), "5a05a06b80b7f7d3ff1df10940a983b7860f98fbe1eac8bce6b4a769d04b435f");
        assert_eq!(keys.key(&digest).as_str(), format!("cache:query_embedding:{}", digest.as_str()));
        assert_ne!(QueryDigest::new("other-model", "q"), digest, "the model is part of the identity");
    }

    #[test]
    fn seed_keys_stay_under_the_embedding_prefix() {
        let k = chatbot();
        let key = k.seed_key("https://a/b").expect("non-empty id");
        assert_eq!(key.as_str(), "cache:embedding:https://a/b");
        assert_eq!(k.doc_id(key.as_str()), Some("https://a/b"));
        assert_eq!(k.seed_key(""), Err(KeyError::EmptyDocumentId));
    }

    #[test]
    fn context_keys_stay_under_the_context_prefix() {
        let k = chatbot();
        assert_eq!(k.context_key("abc").map(|w| w.0), Ok("cache:context:abc".to_owned()));
        assert_eq!(k.context_key(""), Err(KeyError::BadContextKey));
        assert_eq!(k.context_key("has space"), Err(KeyError::BadContextKey));
        assert_eq!(k.context_key(&"x".repeat(257)), Err(KeyError::BadContextKey));
    }
}
