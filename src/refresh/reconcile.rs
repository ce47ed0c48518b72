//! The reconcile machine: every `reconcile_every` (or sooner, when the
//! change feed says something was missed) compare Redis's key set with the
//! index's, and keep the quick key's deadline.
//!
//! Plain data. The loop in `mod.rs` sleeps until [`Reconcile::due`], reads a
//! fingerprint of the embedding keys and the quick key's PTTL when
//! [`Reconcile::start`] says so, and hands them to [`Reconcile::finished`],
//! which judges them. The rules:
//! - the quick key's deadline is its PTTL, so it reloads when the deadline
//!   passes, not when Redis gets round to reclaiming it; a quick key seen by
//!   one reconcile and gone at the next reloads (debounced) too;
//! - redis_empty: an empty keyspace while we hold documents (FLUSHDB, Redis
//!   restarted without its data) is an outage, not "no articles": flag it
//!   and keep serving, no reload. Keys seen after that mean a refill is
//!   under way: keep serving the last index (the refill's writes patch it
//!   key by key) and reload only when the refill is done: the quick key
//!   exists again (the chatbot sets it after processing its articles), or
//!   the key count is the same at two reconciles in a row (settled). A
//!   partial refill is never published (issue 16);
//! - otherwise a key set that differs from the published snapshot's reloads
//!   at once;
//! - nothing is judged while the index is about to change anyway (a reload
//!   scheduled or running, keys pending): it would compare against a
//!   snapshot on its way out.
//! - a published full reload answers the reconcile due when it started and
//!   the next periodic one ([`Reconcile::answered_by_reload`]): its SCAN
//!   and its PTTL of the quick key are what a reconcile reads.

use std::time::Duration;

use tokio::time::Instant;

use super::status::ReloadReason;
use crate::store::keys::KeySetFingerprint;

/// Whether a key exists, from its PTTL (Redis answers -2 for a missing key,
/// -1 for one without a TTL).
pub fn exists(pttl_ms: i64) -> bool {
    pttl_ms != -2
}

/// What a reconcile read from Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed {
    /// Of every key matching the embedding pattern.
    pub fingerprint: KeySetFingerprint,
    /// The quick key's PTTL as Redis answers it: -1 without a TTL, -2 when
    /// the key does not exist.
    pub quick_pttl_ms: i64,
}

/// The index side, when a reconcile's answer arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ours {
    /// Documents in the published snapshot; `None` before the first load.
    pub docs: Option<usize>,
    /// The key set the published snapshot accounts for.
    pub fingerprint: KeySetFingerprint,
    /// A reload is scheduled or running, or keys are pending or being applied.
    pub changing: bool,
    /// Redis was already found empty while we held documents.
    pub redis_empty: bool,
}

/// The judgement on Redis's key set against the index's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySetVerdict {
    /// No snapshot yet, or it is about to change: nothing to compare with.
    NotJudged,
    /// Same key set: nothing to do.
    Agrees,
    /// Redis has no embeddings while we hold documents: flag `redis_empty`,
    /// keep serving, do not reload.
    Empty,
    /// Embeddings are back after an empty keyspace and the refill is done:
    /// reload now.
    Reappeared,
    /// Embeddings are coming back after an empty keyspace; the refill is not
    /// done yet: keep serving the last index.
    Refilling { redis_keys: u64 },
    /// The key sets differ (a change the feed missed): reload now.
    Differs { redis_keys: u64, index_keys: u64 },
}

impl KeySetVerdict {
    /// The reload this verdict calls for, to start now.
    pub fn reload(self) -> Option<ReloadReason> {
        match self {
            Self::NotJudged | Self::Agrees | Self::Empty | Self::Refilling { .. } => None,
            Self::Reappeared => Some(ReloadReason::EmbeddingsReappeared),
            Self::Differs { .. } => Some(ReloadReason::KeySetChanged),
        }
    }
}

/// What a finished reconcile found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Findings {
    /// The quick key existed at the last reconcile and is gone now (a
    /// deletion the feed missed): reload, debounced, as a
    /// [`ReloadReason::QuickKeyChanged`].
    pub quick_key_gone: bool,
    pub key_set: KeySetVerdict,
}

/// The reconcile state machine. See the module doc for its rules.
#[derive(Debug, Clone)]
pub struct Reconcile {
    every: Duration,
    /// When the next reconcile starts; moved to "now" when the feed reports
    /// something it cannot name (arming, FLUSHDB, a non-UTF-8 key).
    due: Instant,
    running: bool,
    /// When the quick key's TTL runs out, from the last reconcile's PTTL.
    quick_deadline: Option<Instant>,
    /// Whether the quick key existed at the last reconcile; `None` before the first.
    quick_present: Option<bool>,
    /// During a refill, the key count the previous reconcile saw.
    refill_count: Option<u64>,
}

impl Reconcile {
    pub fn new(now: Instant, every: Duration) -> Self {
        Self { every, due: now + every, running: false, quick_deadline: None, quick_present: None, refill_count: None }
    }

    /// Reconcile as soon as possible (after the running one, if any).
    pub fn request(&mut self, now: Instant) {
        self.due = now;
    }

    /// When the next reconcile should start; `None` while one runs.
    pub fn due(&self) -> Option<Instant> {
        (!self.running).then_some(self.due)
    }

    /// Starts a reconcile if one is due, and schedules the next one a full
    /// period from now. The caller reads Redis when this returns `true`.
    pub fn start(&mut self, now: Instant) -> bool {
        if self.due().is_none_or(|at| at > now) {
            return false;
        }
        self.running = true;
        self.due = now + self.every;
        true
    }

    /// The running reconcile was stopped because a full reload started: it
    /// runs again as soon as it may (after the reload, see the refresh loop).
    pub fn put_off(&mut self, now: Instant) {
        self.running = false;
        self.due = now;
    }

    /// The reconcile could not reach Redis; the next one is already scheduled.
    pub fn failed(&mut self) {
        self.running = false;
    }

    /// When the quick key's TTL runs out, if it has one.
    pub fn quick_deadline(&self) -> Option<Instant> {
        self.quick_deadline
    }

    /// The quick key's deadline has passed: reload now, once.
    pub fn quick_deadline_passed(&mut self, now: Instant) -> Option<ReloadReason> {
        self.quick_deadline.filter(|at| *at <= now)?;
        self.quick_deadline = None;
        Some(ReloadReason::QuickKeyExpired)
    }

    /// A full reload that `started` before `now` was published. Its SCAN
    /// saw the whole key set and its last read was the quick key's PTTL,
    /// which is all a reconcile reads, so:
    /// - a reconcile that was due when the reload started (put off for it,
    ///   or asked for by what triggered it) is answered, and so is the
    ///   periodic one: the next runs a full period from `now`. Running it
    ///   anyway was a second SCAN of every key right after each reload;
    /// - one asked for while the reload ran stays due: the reload's reads
    ///   may predate what asked for it;
    /// - the quick key's deadline and presence are the reload's reading.
    ///   Taking presence from it matters: a quick key deleted to trigger
    ///   this reload is "gone" only against a reading from before the
    ///   deletion, and a later reconcile would have reloaded a second time.
    pub fn answered_by_reload(&mut self, started: Instant, now: Instant, quick_pttl_ms: i64) {
        if self.running {
            return; // its own reading arrives in `finished`
        }
        if !(started < self.due && self.due <= now) {
            self.due = now + self.every;
        }
        self.read_quick_key(now, quick_pttl_ms);
    }

    /// Records the quick key's PTTL read at `now`; whether it is gone since
    /// the previous reading.
    fn read_quick_key(&mut self, now: Instant, pttl_ms: i64) -> bool {
        let present = exists(pttl_ms);
        self.quick_deadline = u64::try_from(pttl_ms).ok().map(|ms| now + Duration::from_millis(ms));
        let gone = self.quick_present == Some(true) && !present;
        self.quick_present = Some(present);
        gone
    }

    /// Judges what the reconcile read (see the module doc for the rules).
    pub fn finished(&mut self, now: Instant, seen: Observed, ours: &Ours) -> Findings {
        self.running = false;
        let present = exists(seen.quick_pttl_ms);
        let quick_key_gone = self.read_quick_key(now, seen.quick_pttl_ms);

        let key_set = match ours.docs {
            None => KeySetVerdict::NotJudged,
            Some(_) if ours.changing || quick_key_gone => KeySetVerdict::NotJudged,
            Some(docs) if seen.fingerprint.count == 0 && docs > 0 => {
                self.refill_count = None;
                KeySetVerdict::Empty
            }
            Some(_) if ours.redis_empty => {
                let count = seen.fingerprint.count;
                let settled = self.refill_count == Some(count);
                self.refill_count = Some(count);
                if present || settled {
                    self.refill_count = None;
                    KeySetVerdict::Reappeared
                } else {
                    KeySetVerdict::Refilling { redis_keys: count }
                }
            }
            Some(_) if seen.fingerprint != ours.fingerprint => {
                KeySetVerdict::Differs { redis_keys: seen.fingerprint.count, index_keys: ours.fingerprint.count }
            }
            Some(_) => KeySetVerdict::Agrees,
        };
        Findings { quick_key_gone, key_set }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVERY: Duration = Duration::from_secs(30);

    fn keys(ids: &[&str]) -> KeySetFingerprint {
        let mut f = KeySetFingerprint::default();
        for id in ids {
            f.insert(format!("cache:embedding:{id}").as_bytes());
        }
        f
    }

    /// A published snapshot of documents a, b, c, quiet.
    fn holding_three() -> Ours {
        Ours { docs: Some(3), fingerprint: keys(&["a", "b", "c"]), changing: false, redis_empty: false }
    }

    fn seen(fingerprint: KeySetFingerprint) -> Observed {
        Observed { fingerprint, quick_pttl_ms: -1 }
    }

    impl Observed {
        fn with_quick(self, quick_pttl_ms: i64) -> Self {
            Self { quick_pttl_ms, ..self }
        }
    }

    /// Sleeps (in paused time) until the machine is due, as the loop does, and starts.
    async fn wait_and_start(reconcile: &mut Reconcile) {
        let at = reconcile.due().expect("a reconcile is scheduled");
        tokio::time::sleep_until(at).await;
        assert!(reconcile.start(Instant::now()), "due, so it starts");
    }

    #[tokio::test(start_paused = true)]
    async fn reconcile_marks_redis_empty_and_does_not_reload_on_an_empty_keyspace_while_holding_docs() {
        // Arrange
        let mut reconcile = Reconcile::new(Instant::now(), EVERY);
        wait_and_start(&mut reconcile).await;

        // Act: FLUSHDB happened; Redis has no embedding keys.
        let findings = reconcile.finished(Instant::now(), seen(KeySetFingerprint::default()), &holding_three());

        // Assert
        assert_eq!(findings.key_set, KeySetVerdict::Empty);
        assert_eq!(findings.key_set.reload(), None, "the last index keeps serving");
        assert!(!findings.quick_key_gone);
    }

    #[tokio::test(start_paused = true)]
    async fn embeddings_reappearing_after_an_empty_keyspace_reload_at_once() {
        // Arrange
        let mut reconcile = Reconcile::new(Instant::now(), EVERY);
        wait_and_start(&mut reconcile).await;
        let flushed = Ours { redis_empty: true, ..holding_three() };

        // Act: one key written after the flush, with the quick key there (PTTL -1).
        let findings = reconcile.finished(Instant::now(), seen(keys(&["x"])), &flushed);

        // Assert
        assert_eq!(findings.key_set.reload(), Some(ReloadReason::EmbeddingsReappeared));
    }

    #[tokio::test(start_paused = true)]
    async fn issue_16_a_refill_without_the_quick_key_reloads_only_once_the_key_count_settles() {
        // Arrange
        let mut reconcile = Reconcile::new(Instant::now(), EVERY);
        let flushed = Ours { redis_empty: true, ..holding_three() };
        let refill = |ids: &[&str]| Observed { fingerprint: keys(ids), quick_pttl_ms: -2 };

        // Act: the chatbot writes one key, then two, then nothing more.
        wait_and_start(&mut reconcile).await;
        let first = reconcile.finished(Instant::now(), refill(&["x"]), &flushed);
        wait_and_start(&mut reconcile).await;
        let growing = reconcile.finished(Instant::now(), refill(&["x", "y"]), &flushed);
        wait_and_start(&mut reconcile).await;
        let settled = reconcile.finished(Instant::now(), refill(&["x", "y"]), &flushed);

        // Assert
        assert_eq!(first.key_set, KeySetVerdict::Refilling { redis_keys: 1 });
        assert_eq!(first.key_set.reload(), None, "a partial refill is never loaded");
        assert_eq!(growing.key_set, KeySetVerdict::Refilling { redis_keys: 2 });
        assert_eq!(settled.key_set.reload(), Some(ReloadReason::EmbeddingsReappeared));
    }

    #[tokio::test(start_paused = true)]
    async fn a_still_empty_keyspace_stays_flagged_without_a_reload() {
        // Arrange
        let mut reconcile = Reconcile::new(Instant::now(), EVERY);
        wait_and_start(&mut reconcile).await;
        let flushed = Ours { redis_empty: true, ..holding_three() };

        // Act
        let findings = reconcile.finished(Instant::now(), seen(KeySetFingerprint::default()), &flushed);

        // Assert
        assert_eq!(findings.key_set, KeySetVerdict::Empty);
        assert_eq!(findings.key_set.reload(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn an_empty_keyspace_with_an_empty_index_is_no_outage() {
        // Arrange
        let mut reconcile = Reconcile::new(Instant::now(), EVERY);
        wait_and_start(&mut reconcile).await;
        let nothing =
            Ours { docs: Some(0), fingerprint: KeySetFingerprint::default(), changing: false, redis_empty: false };

        // Act
        let findings = reconcile.finished(Instant::now(), seen(KeySetFingerprint::default()), &nothing);

        // Assert
        assert_eq!(findings.key_set, KeySetVerdict::Agrees);
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_set_that_differs_from_the_index_reloads_at_once() {
        // Arrange
        let mut reconcile = Reconcile::new(Instant::now(), EVERY);
        wait_and_start(&mut reconcile).await;

        // Act: same count, one key swapped (only the XOR tells).
        let swapped = reconcile.finished(Instant::now(), seen(keys(&["a", "b", "z"])), &holding_three());

        // Assert
        assert_eq!(swapped.key_set, KeySetVerdict::Differs { redis_keys: 3, index_keys: 3 });
        assert_eq!(swapped.key_set.reload(), Some(ReloadReason::KeySetChanged));
    }

    #[tokio::test(start_paused = true)]
    async fn the_same_key_set_in_any_order_agrees() {
        // Arrange
        let mut reconcile = Reconcile::new(Instant::now(), EVERY);
        wait_and_start(&mut reconcile).await;

        // Act
        let findings = reconcile.finished(Instant::now(), seen(keys(&["c", "a", "b"])), &holding_three());

        // Assert
        assert_eq!(findings.key_set, KeySetVerdict::Agrees);
        assert_eq!(findings.key_set.reload(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_is_judged_while_the_index_is_about_to_change_or_before_the_first_load() {
        // Arrange
        let mut reconcile = Reconcile::new(Instant::now(), EVERY);
        let changing = Ours { changing: true, ..holding_three() };
        let unloaded = Ours { docs: None, ..holding_three() };

        // Act
        wait_and_start(&mut reconcile).await;
        let while_changing = reconcile.finished(Instant::now(), seen(KeySetFingerprint::default()), &changing);
        wait_and_start(&mut reconcile).await;
        let before_load = reconcile.finished(Instant::now(), seen(keys(&["z"])), &unloaded);

        // Assert
        assert_eq!(while_changing.key_set, KeySetVerdict::NotJudged);
        assert_eq!(before_load.key_set, KeySetVerdict::NotJudged);
    }

    #[tokio::test(start_paused = true)]
    async fn the_quick_key_vanishing_between_reconciles_reloads_and_defers_the_key_set() {
        // Arrange: the quick key exists (an hour left) at the first reconcile.
        let mut reconcile = Reconcile::new(Instant::now(), EVERY);
        wait_and_start(&mut reconcile).await;
        let with_quick = Observed { fingerprint: keys(&["a", "b", "c"]), quick_pttl_ms: 3_600_000 };
        let first = reconcile.finished(Instant::now(), with_quick, &holding_three());

        // Act: gone at the next, and the key set differs too.
        wait_and_start(&mut reconcile).await;
        let gone = Observed { fingerprint: keys(&["a"]), quick_pttl_ms: -2 };
        let second = reconcile.finished(Instant::now(), gone, &holding_three());

        // Assert
        assert!(!first.quick_key_gone);
        assert!(second.quick_key_gone);
        assert_eq!(second.key_set, KeySetVerdict::NotJudged, "the quick key's reload covers it");
        assert_eq!(reconcile.quick_deadline(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_quick_key_missing_from_the_first_reconcile_is_not_a_change() {
        // Arrange
        let mut reconcile = Reconcile::new(Instant::now(), EVERY);
        wait_and_start(&mut reconcile).await;

        // Act
        let missing = Observed { fingerprint: keys(&["a", "b", "c"]), quick_pttl_ms: -2 };
        let findings = reconcile.finished(Instant::now(), missing, &holding_three());

        // Assert
        assert!(!findings.quick_key_gone);
        assert_eq!(findings.key_set, KeySetVerdict::Agrees);
    }

    #[test]
    fn a_reconcile_put_off_for_a_reload_is_due_again_at_once() {
        let now = Instant::now();
        let mut r = Reconcile::new(now, EVERY);
        r.request(now);
        assert!(r.start(now));
        assert_eq!(r.due(), None, "running");

        r.put_off(now + Duration::from_millis(5));

        assert_eq!(r.due(), Some(now + Duration::from_millis(5)), "not a full period later");
    }

    #[test]
    fn a_reload_answers_the_reconcile_due_when_it_started_and_the_next_runs_a_period_later() {
        // Arrange: the feed asked for a reconcile, and a reload started at once.
        let start = Instant::now();
        let mut r = Reconcile::new(start, EVERY);
        r.request(start);
        r.put_off(start);

        // Act: the reload is published 2 s later.
        let published = start + Duration::from_secs(2);
        r.answered_by_reload(start, published, -1);

        // Assert
        assert_eq!(r.due(), Some(published + EVERY), "the reload's SCAN was that reconcile's");
    }

    #[test]
    fn a_reconcile_asked_for_while_a_reload_ran_still_runs_after_it() {
        // Arrange
        let start = Instant::now();
        let mut r = Reconcile::new(start, EVERY);
        let asked = start + Duration::from_secs(1);
        r.request(asked);

        // Act
        r.answered_by_reload(start, start + Duration::from_secs(2), -1);

        // Assert
        assert_eq!(r.due(), Some(asked), "the reload's reads may predate what asked");
    }

    #[test]
    fn a_quick_key_deleted_to_trigger_a_reload_is_not_gone_again_at_the_next_reconcile() {
        // Arrange: a reconcile saw the quick key; then it was deleted, which
        // triggered a reload that found it absent.
        let t0 = Instant::now();
        let mut r = Reconcile::new(t0, EVERY);
        r.request(t0);
        assert!(r.start(t0));
        r.finished(t0, Observed { fingerprint: keys(&["a", "b", "c"]), quick_pttl_ms: 3_600_000 }, &holding_three());
        let reload_start = t0 + Duration::from_secs(5);
        r.answered_by_reload(reload_start, reload_start + Duration::from_secs(1), -2);

        // Act: the next reconcile also finds it absent.
        let at = r.due().expect("scheduled");
        assert!(r.start(at));
        let findings = r.finished(at, seen(keys(&["a", "b", "c"])).with_quick(-2), &holding_three());

        // Assert
        assert!(!findings.quick_key_gone, "that deletion was answered by the reload already");
        assert_eq!(r.quick_deadline(), None);
    }

    #[test]
    fn a_reload_takes_the_quick_keys_deadline_from_its_own_reading() {
        let start = Instant::now();
        let mut r = Reconcile::new(start, EVERY);
        let published = start + Duration::from_secs(1);

        r.answered_by_reload(start, published, 60_000);

        assert_eq!(r.quick_deadline(), Some(published + Duration::from_secs(60)));
    }

    #[tokio::test(start_paused = true)]
    async fn the_quick_key_reloads_at_its_pttl_deadline_once() {
        // Arrange
        let mut reconcile = Reconcile::new(Instant::now(), EVERY);
        wait_and_start(&mut reconcile).await;
        let read_at = Instant::now();
        let with_ttl = Observed { fingerprint: keys(&["a", "b", "c"]), quick_pttl_ms: 1_000 };
        reconcile.finished(read_at, with_ttl, &holding_three());

        // Act
        let early = reconcile.quick_deadline_passed(read_at + Duration::from_millis(999));
        tokio::time::sleep_until(reconcile.quick_deadline().expect("a TTL gives a deadline")).await;
        let on_time = reconcile.quick_deadline_passed(Instant::now());
        let again = reconcile.quick_deadline_passed(Instant::now());

        // Assert
        assert_eq!(Instant::now(), read_at + Duration::from_millis(1_000));
        assert_eq!((early, on_time, again), (None, Some(ReloadReason::QuickKeyExpired), None));
    }

    #[tokio::test(start_paused = true)]
    async fn a_quick_key_without_a_ttl_has_no_deadline() {
        // Arrange
        let mut reconcile = Reconcile::new(Instant::now(), EVERY);
        wait_and_start(&mut reconcile).await;

        // Act
        reconcile.finished(Instant::now(), seen(keys(&["a", "b", "c"])), &holding_three());

        // Assert
        assert_eq!(reconcile.quick_deadline(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn reconciles_run_every_period_one_at_a_time_and_sooner_on_request() {
        // Arrange
        let created = Instant::now();
        let mut reconcile = Reconcile::new(created, EVERY);

        // Act / Assert: the first one a period after start.
        assert!(!reconcile.start(created + EVERY - Duration::from_millis(1)));
        wait_and_start(&mut reconcile).await;
        assert_eq!(Instant::now(), created + EVERY);

        // Not a second one while the first runs, even when requested.
        reconcile.request(Instant::now());
        assert_eq!(reconcile.due(), None);
        assert!(!reconcile.start(Instant::now()));

        // The request is honoured as soon as the first one ends.
        reconcile.failed();
        let requested = Instant::now();
        wait_and_start(&mut reconcile).await;
        assert_eq!(Instant::now(), requested);

        // And then a full period later.
        reconcile.finished(Instant::now(), seen(keys(&["a", "b", "c"])), &holding_three());
        assert_eq!(reconcile.due(), Some(requested + EVERY));
    }
}
