//! The live progress line, so a run of several levels is never silent.
//!
//! On a terminal: one line redrawn four times a second (indicatif) with the
//! phase, time, requests sent, answers and errors so far, and the average
//! QPS; each level then leaves a one-line summary. Elsewhere (CI logs, a
//! file): an `info` log line every 5 s and the same summary. The request
//! loops only bump the atomic counters in [`Live`]; the line is drawn by its
//! own task and never holds them up.

use std::{
    io::IsTerminal,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use indicatif::{ProgressBar, ProgressStyle};
use tokio::{sync::oneshot, task::JoinHandle, time::Instant};
use tracing::info;

/// Counters of the running phase, bumped by the request loops.
#[derive(Debug, Default)]
pub struct Live {
    pub sent: AtomicU64,
    pub ok: AtomicU64,
    pub failed: AtomicU64,
}

impl Live {
    /// Zero for a new phase.
    pub fn reset(&self) {
        for counter in [&self.sent, &self.ok, &self.failed] {
            counter.store(0, Ordering::Relaxed);
        }
    }

    /// One request answered (or failed).
    pub fn finished(&self, ok: bool) {
        let counter = if ok { &self.ok } else { &self.failed };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// `(sent, ok, failed)` so far.
    pub fn snapshot(&self) -> (u64, u64, u64) {
        (self.sent.load(Ordering::Relaxed), self.ok.load(Ordering::Relaxed), self.failed.load(Ordering::Relaxed))
    }
}

/// Where progress goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    Off,
    /// A redrawn line on stderr (a terminal).
    Line,
    /// `info` log lines (stderr is a file or a pipe).
    Log,
}

/// Redraws per second of the terminal line.
const LINE_TICK: Duration = Duration::from_millis(250);
/// Period of the log lines when stderr is not a terminal.
const LOG_TICK: Duration = Duration::from_secs(5);

impl Progress {
    /// `Off` when not wanted, else a line on a terminal and log lines elsewhere.
    pub fn new(wanted: bool) -> Self {
        match (wanted, std::io::stderr().is_terminal()) {
            (false, _) => Progress::Off,
            (true, true) => Progress::Line,
            (true, false) => Progress::Log,
        }
    }

    /// Starts showing one phase (`level` and `phase`, e.g. `rate 200/s`,
    /// `measuring`) of planned length `planned`, from `live`.
    pub fn watch(self, level: String, phase: &'static str, planned: Duration, live: Arc<Live>) -> Watch {
        if self == Progress::Off {
            return Watch { stop: None, task: None };
        }
        let (stop, mut stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let bar = (self == Progress::Line).then(|| line(&level, phase, planned));
            let started = Instant::now();
            let mut tick = tokio::time::interval(if bar.is_some() { LINE_TICK } else { LOG_TICK });
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = tick.tick() => {}
                }
                let elapsed = started.elapsed();
                let (sent, ok, failed) = live.snapshot();
                let qps = ok as f64 / elapsed.as_secs_f64().max(1e-9);
                match &bar {
                    Some(bar) => {
                        bar.set_position(elapsed.as_millis().min(planned.as_millis()) as u64);
                        bar.set_message(format!(
                            "{:>5.1}/{:.0} s  sent {sent}  ok {ok}  errors {failed}  {qps:.1} QPS",
                            elapsed.as_secs_f64(),
                            planned.as_secs_f64()
                        ));
                    }
                    None => info!(
                        level = %level,
                        phase,
                        elapsed_s = elapsed.as_secs(),
                        planned_s = planned.as_secs(),
                        sent,
                        ok,
                        errors = failed,
                        qps = format_args!("{qps:.1}"),
                        "progress"
                    ),
                }
            }
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
        });
        Watch { stop: Some(stop), task: Some(task) }
    }

    /// The one-line summary a finished level leaves.
    pub fn level_done(self, level: &LevelSummary) {
        let p99 = level.p99_ms.map_or_else(|| "-".to_owned(), |p99| format!("{p99:.2} ms"));
        match self {
            Progress::Off => {}
            Progress::Line => eprintln!(
                "{}: {} requests, {} errors, {:.1} QPS, p99 {p99}",
                level.label, level.requests, level.errors, level.qps
            ),
            Progress::Log => info!(
                level = %level.label,
                requests = level.requests,
                errors = level.errors,
                qps = format_args!("{:.1}", level.qps),
                p99 = %p99,
                "level done"
            ),
        }
    }
}

fn line(level: &str, phase: &str, planned: Duration) -> ProgressBar {
    let bar = ProgressBar::new(planned.as_millis().max(1) as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:20}] {msg}")
            .expect("the template is a valid literal")
            .progress_chars("=> "),
    );
    bar.set_prefix(format!("{level}, {phase}"));
    bar
}

/// The task drawing one phase; [`Watch::finish`] stops it and clears the line.
pub struct Watch {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Watch {
    pub async fn finish(self) {
        if let Some(stop) = self.stop {
            let _ = stop.send(());
        }
        if let Some(task) = self.task {
            let _ = task.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_counters_reset_per_phase() {
        let live = Live::default();
        live.sent.fetch_add(3, Ordering::Relaxed);
        live.finished(true);
        live.finished(false);
        assert_eq!(live.snapshot(), (3, 1, 1));

        live.reset();

        assert_eq!(live.snapshot(), (0, 0, 0));
    }
}

/// What a finished level's line shows (the load module's `LevelReport` says
/// more; this keeps `progress` from depending on it).
#[derive(Debug, Clone)]
pub struct LevelSummary {
    pub label: String,
    pub requests: u64,
    pub errors: u64,
    pub qps: f64,
    pub p99_ms: Option<f64>,
}
