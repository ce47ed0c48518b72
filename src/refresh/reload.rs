//! The full-reload machine: when to read the whole keyspace again.
//!
//! Plain data. The loop in `mod.rs` tells it what happened (a trigger, the
//! change feed's news, a reload that finished) together with `now`, sleeps
//! until [`FullReload::due`], and spawns a load when [`FullReload::start`]
//! returns a reason. It keeps three promises:
//! - a burst of debounced triggers gives one reload (the earliest deadline
//!   wins, and a trigger never postpones one already scheduled);
//! - a trigger during a reload queues exactly one more, however many arrive;
//! - failed reloads retry after a backoff that doubles up to `retry_max`
//!   and is reset by the first success.

use std::time::Duration;

use tokio::time::Instant;

use super::status::ReloadReason;

/// Longest wait for the change feed before the first load starts anyway
/// (Redis unreachable: the load would fail and retry regardless).
pub const FEED_WAIT_AT_START: Duration = Duration::from_secs(2);

/// The first retry after a failure waits this long; each further one twice as long.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// Where the full reload stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadPhase {
    /// Nothing to do until a trigger.
    Idle,
    /// A reload starts at `at`; later triggers coalesce into it.
    Scheduled { at: Instant, reason: ReloadReason },
    /// A load is in flight since `started`. Its reads may predate triggers
    /// that arrive now, so those queue `again` (one reason, the first).
    Running { reason: ReloadReason, started: Instant, again: Option<ReloadReason> },
}

/// A reload that has finished: what `/v1/stats` reports about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FinishedReload {
    pub reason: ReloadReason,
    /// When it started: its reads are no older than this.
    pub started: Instant,
    pub took: Duration,
}

/// The full-reload state machine. See the module doc for its promises.
#[derive(Debug, Clone)]
pub struct FullReload {
    phase: ReloadPhase,
    /// Wait before the next retry; doubled per failure up to `retry_max`.
    backoff: Duration,
    retry_max: Duration,
    /// How long a debounced trigger waits for others to join it.
    debounce: Duration,
    /// Whether the change feed has been armed at least once: a later arming
    /// follows a disconnect and calls for a full reload.
    feed_armed_before: bool,
}

impl FullReload {
    /// The machine at start: the first load is scheduled, but waits (at most
    /// [`FEED_WAIT_AT_START`]) for the change feed, so nothing written between
    /// the load's reads and the feed's arming is missed.
    pub fn at_startup(now: Instant, debounce: Duration, retry_max: Duration) -> Self {
        Self {
            phase: ReloadPhase::Scheduled { at: now + FEED_WAIT_AT_START, reason: ReloadReason::Startup },
            backoff: FIRST_BACKOFF,
            retry_max,
            debounce,
            feed_armed_before: false,
        }
    }

    pub fn phase(&self) -> ReloadPhase {
        self.phase
    }

    /// When the scheduled reload should start; `None` when idle or running.
    pub fn due(&self) -> Option<Instant> {
        match self.phase {
            ReloadPhase::Scheduled { at, .. } => Some(at),
            ReloadPhase::Idle | ReloadPhase::Running { .. } => None,
        }
    }

    pub fn is_running(&self) -> bool {
        matches!(self.phase, ReloadPhase::Running { .. })
    }

    /// Scheduled or running: the index is about to change anyway.
    pub fn is_pending(&self) -> bool {
        !matches!(self.phase, ReloadPhase::Idle)
    }

    /// The wait before the next retry; per-key updates reuse it (at least
    /// 500 ms) when Redis fails them.
    pub fn backoff(&self) -> Duration {
        self.backoff
    }

    /// A trigger whose burst should give one reload: waits `debounce`.
    pub fn trigger(&mut self, reason: ReloadReason, now: Instant) {
        self.schedule(reason, now + self.debounce);
    }

    /// A trigger that should not wait (admin, a deadline passed, the
    /// reconcile found a difference).
    pub fn trigger_now(&mut self, reason: ReloadReason, now: Instant) {
        self.schedule(reason, now);
    }

    /// Schedules a reload at `at`, coalescing with one already scheduled (the
    /// earlier deadline and its reason win); during a reload, queues exactly one more.
    fn schedule(&mut self, reason: ReloadReason, at: Instant) {
        self.phase = match self.phase {
            ReloadPhase::Running { reason: running, started, again } => {
                ReloadPhase::Running { reason: running, started, again: again.or(Some(reason)) }
            }
            ReloadPhase::Scheduled { at: due, reason: first } if due <= at => {
                ReloadPhase::Scheduled { at: due, reason: first }
            }
            ReloadPhase::Scheduled { .. } | ReloadPhase::Idle => ReloadPhase::Scheduled { at, reason },
        };
    }

    /// The change feed is armed. The first arming releases the first load;
    /// a later one follows a disconnect, and pushes are at-most-once, so
    /// what changed meanwhile (values included) is unknown: reload.
    ///
    /// Returns whether this arming triggered a reload.
    pub fn feed_armed(&mut self, now: Instant) -> bool {
        if self.feed_armed_before {
            self.trigger(ReloadReason::ChangeFeedRearmed, now);
            true
        } else {
            self.feed_armed_before = true;
            self.feed_answered(now);
            false
        }
    }

    /// The change feed has answered (armed, refused, or Redis unreachable):
    /// the first load has nothing left to wait for.
    pub fn feed_answered(&mut self, now: Instant) {
        if let ReloadPhase::Scheduled { at, reason: ReloadReason::Startup } = self.phase {
            self.phase = ReloadPhase::Scheduled { at: at.min(now), reason: ReloadReason::Startup };
        }
    }

    /// Starts the scheduled reload if it is due: the caller spawns the load
    /// for the returned reason. `None` when nothing is due yet.
    pub fn start(&mut self, now: Instant) -> Option<ReloadReason> {
        match self.phase {
            ReloadPhase::Scheduled { at, reason } if at <= now => {
                self.phase = ReloadPhase::Running { reason, started: now, again: None };
                Some(reason)
            }
            _ => None,
        }
    }

    /// The running reload succeeded (published, or kept the last index on an
    /// empty keyspace). Resets the backoff and schedules the queued reload,
    /// debounced. `None` when no reload was running.
    pub fn succeeded(&mut self, now: Instant) -> Option<FinishedReload> {
        let ReloadPhase::Running { reason, started, again } = self.phase else { return None };
        self.backoff = FIRST_BACKOFF;
        self.phase = ReloadPhase::Idle;
        if let Some(again) = again {
            self.trigger(again, now);
        }
        Some(FinishedReload { reason, started, took: now - started })
    }

    /// The running reload failed. Schedules the retry after the current
    /// backoff (the queued reason if one is queued, else `Startup` for the
    /// first load and `Retry` for any other) and doubles the backoff up to
    /// `retry_max`. Returns the wait before the retry; `None` when no reload
    /// was running.
    pub fn failed(&mut self, now: Instant) -> Option<Duration> {
        let ReloadPhase::Running { reason, again, .. } = self.phase else { return None };
        let retry = again.unwrap_or(if reason == ReloadReason::Startup { reason } else { ReloadReason::Retry });
        let wait = self.backoff;
        self.backoff = (self.backoff * 2).min(self.retry_max);
        self.phase = ReloadPhase::Idle;
        self.schedule(retry, now + wait);
        Some(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBOUNCE: Duration = Duration::from_millis(250);
    const RETRY_MAX: Duration = Duration::from_secs(1);

    /// Sleeps (in paused time) until the machine is due, as the loop does,
    /// and starts the reload.
    async fn wait_and_start(reload: &mut FullReload) -> ReloadReason {
        let at = reload.due().expect("a reload is scheduled");
        tokio::time::sleep_until(at).await;
        reload.start(Instant::now()).expect("due, so it starts")
    }

    /// A machine past its first load, idle.
    async fn idle() -> FullReload {
        let mut reload = FullReload::at_startup(Instant::now(), DEBOUNCE, RETRY_MAX);
        reload.feed_armed(Instant::now());
        wait_and_start(&mut reload).await;
        reload.succeeded(Instant::now()).expect("was running");
        reload
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_triggers_gives_one_reload() {
        // Arrange
        let mut reload = idle().await;
        let first = Instant::now();

        // Act: ten triggers 20 ms apart, all within one debounce window of the first.
        for _ in 0..10 {
            reload.trigger(ReloadReason::QuickKeyChanged, Instant::now());
            tokio::time::advance(Duration::from_millis(20)).await;
        }
        let started = wait_and_start(&mut reload).await;

        // Assert: one reload, at the first trigger's deadline; nothing else scheduled.
        assert_eq!(started, ReloadReason::QuickKeyChanged);
        assert_eq!(Instant::now(), first + DEBOUNCE);
        reload.succeeded(Instant::now()).expect("was running");
        assert_eq!(reload.phase(), ReloadPhase::Idle);
    }

    #[tokio::test(start_paused = true)]
    async fn a_trigger_during_a_reload_queues_exactly_one_more() {
        // Arrange
        let mut reload = idle().await;
        reload.trigger_now(ReloadReason::Admin, Instant::now());
        wait_and_start(&mut reload).await;

        // Act: three triggers while the load runs.
        reload.trigger(ReloadReason::QuickKeyChanged, Instant::now());
        reload.trigger_now(ReloadReason::KeySetChanged, Instant::now());
        reload.trigger(ReloadReason::ChangeFeedRearmed, Instant::now());
        assert_eq!(reload.due(), None, "nothing starts while a reload runs");
        tokio::time::advance(Duration::from_millis(30)).await;
        reload.succeeded(Instant::now()).expect("was running");

        // Assert: exactly one more, debounced, for the first queued reason; then idle.
        let finished_at = Instant::now();
        assert_eq!(wait_and_start(&mut reload).await, ReloadReason::QuickKeyChanged);
        assert_eq!(Instant::now(), finished_at + DEBOUNCE);
        reload.succeeded(Instant::now()).expect("was running");
        assert_eq!(reload.phase(), ReloadPhase::Idle, "not two more");
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_doubles_and_stops_at_the_cap() {
        // Arrange
        let mut reload = idle().await;
        reload.trigger_now(ReloadReason::Admin, Instant::now());

        // Act: eight failures in a row, each retried when due.
        let mut waits = Vec::new();
        let mut reasons = Vec::new();
        for _ in 0..8 {
            reasons.push(wait_and_start(&mut reload).await);
            let failed_at = Instant::now();
            let wait = reload.failed(failed_at).expect("was running");
            assert_eq!(reload.due(), Some(failed_at + wait), "the retry is scheduled after the wait");
            waits.push(wait);
        }

        // Assert: 100 ms doubling, then held at retry_max.
        let ms: Vec<u128> = waits.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1000, 1000, 1000, 1000]);
        assert_eq!(reasons[0], ReloadReason::Admin);
        assert!(reasons[1..].iter().all(|r| *r == ReloadReason::Retry), "{reasons:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_resets_the_backoff() {
        // Arrange: three failures grow the backoff to 800 ms.
        let mut reload = idle().await;
        reload.trigger_now(ReloadReason::Admin, Instant::now());
        for _ in 0..3 {
            wait_and_start(&mut reload).await;
            reload.failed(Instant::now()).expect("was running");
        }
        assert_eq!(reload.backoff(), Duration::from_millis(800));

        // Act
        wait_and_start(&mut reload).await;
        reload.succeeded(Instant::now()).expect("was running");

        // Assert
        assert_eq!(reload.backoff(), FIRST_BACKOFF);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_first_load_retries_as_startup_and_a_queued_reason_wins_over_retry() {
        // Arrange
        let mut reload = FullReload::at_startup(Instant::now(), DEBOUNCE, RETRY_MAX);
        reload.feed_answered(Instant::now());

        // Act
        let first = wait_and_start(&mut reload).await;
        reload.failed(Instant::now()).expect("was running");
        let second = wait_and_start(&mut reload).await;
        reload.trigger(ReloadReason::QuickKeyChanged, Instant::now());
        reload.failed(Instant::now()).expect("was running");
        let third = wait_and_start(&mut reload).await;

        // Assert
        assert_eq!(
            [first, second, third],
            [ReloadReason::Startup, ReloadReason::Startup, ReloadReason::QuickKeyChanged]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_load_waits_for_the_feed_at_most_two_seconds() {
        // Arrange
        let start = Instant::now();
        let mut reload = FullReload::at_startup(start, DEBOUNCE, RETRY_MAX);

        // Act: the feed never answers.
        let reason = wait_and_start(&mut reload).await;

        // Assert
        assert_eq!(reason, ReloadReason::Startup);
        assert_eq!(Instant::now(), start + FEED_WAIT_AT_START);
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_load_starts_as_soon_as_the_feed_answers() {
        // Arrange
        let start = Instant::now();
        let mut reload = FullReload::at_startup(start, DEBOUNCE, RETRY_MAX);
        tokio::time::advance(Duration::from_millis(300)).await;

        // Act
        reload.feed_answered(Instant::now());

        // Assert
        assert_eq!(reload.start(Instant::now()), Some(ReloadReason::Startup));
        assert_eq!(Instant::now(), start + Duration::from_millis(300));
    }

    #[tokio::test(start_paused = true)]
    async fn only_a_rearmed_feed_reloads_not_its_first_arming() {
        // Arrange
        let mut reload = FullReload::at_startup(Instant::now(), DEBOUNCE, RETRY_MAX);

        // Act
        let first = reload.feed_armed(Instant::now());
        wait_and_start(&mut reload).await;
        reload.succeeded(Instant::now()).expect("was running");
        let rearmed_at = Instant::now();
        let second = reload.feed_armed(rearmed_at);

        // Assert
        assert!(!first && second);
        assert_eq!(
            reload.phase(),
            ReloadPhase::Scheduled { at: rearmed_at + DEBOUNCE, reason: ReloadReason::ChangeFeedRearmed }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_immediate_trigger_overtakes_a_debounced_one() {
        // Arrange
        let mut reload = idle().await;
        reload.trigger(ReloadReason::QuickKeyChanged, Instant::now());
        tokio::time::advance(Duration::from_millis(10)).await;

        // Act
        reload.trigger_now(ReloadReason::Admin, Instant::now());

        // Assert: the earlier deadline and its reason.
        assert_eq!(reload.start(Instant::now()), Some(ReloadReason::Admin));
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_starts_before_its_deadline() {
        // Arrange
        let mut reload = idle().await;
        reload.trigger(ReloadReason::QuickKeyChanged, Instant::now());

        // Act
        tokio::time::advance(DEBOUNCE - Duration::from_millis(1)).await;
        let early = reload.start(Instant::now());
        tokio::time::advance(Duration::from_millis(1)).await;
        let on_time = reload.start(Instant::now());

        // Assert
        assert_eq!((early, on_time), (None, Some(ReloadReason::QuickKeyChanged)));
    }

    #[test]
    fn finishing_when_nothing_runs_is_ignored() {
        // Arrange
        let now = Instant::now();
        let mut reload = FullReload::at_startup(now, DEBOUNCE, RETRY_MAX);

        // Act
        let (ok, failed) = (reload.succeeded(now), reload.failed(now));

        // Assert
        assert_eq!((ok, failed), (None, None));
        assert_eq!(reload.due(), Some(now + FEED_WAIT_AT_START), "still waiting for the first load");
    }
}
