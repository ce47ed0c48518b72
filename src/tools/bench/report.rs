//! The benchmark report: what was measured, where, and the numbers per level.
//! Serialized as is for `--json`; [`BenchReport::table`] for the terminal.
//! Header values (API keys) never enter it: only their names.

use serde::Serialize;

use super::load::{Latency, LevelReport, Load};

#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub url: String,
    /// RFC 3339, UTC.
    pub started_at: String,
    /// `model name` from /proc/cpuinfo ("unknown" elsewhere).
    pub cpu: String,
    /// Cores this process may use (client and server share them on one machine).
    pub cores: usize,
    pub server: ServerInfo,
    pub k: usize,
    /// Whether searches asked for the article texts.
    pub with_text: bool,
    /// Names of the headers sent with every request (values never written).
    pub headers: Vec<String>,
    /// Where the query vectors came from.
    pub queries: String,
    pub query_count: usize,
    pub warmup_s: f64,
    pub duration_s: f64,
    pub max_requests: u64,
    pub levels: Vec<LevelReport>,
}

/// What `/v1/stats` said before measuring.
#[derive(Debug, Clone, Serialize)]
pub struct ServerInfo {
    pub documents: usize,
    pub dimension: usize,
    pub kernel: String,
    pub index_version: u64,
    /// The server's build, when it reports one.
    pub version: Option<String>,
    pub git_sha: Option<String>,
}

impl BenchReport {
    /// A fixed-width table, one row per level, then the errors of each level
    /// that had any, by kind.
    pub fn table(&self) -> String {
        let server = self.server.version.as_deref().map_or_else(String::new, |v| {
            format!(", semsearch {v} ({})", self.server.git_sha.as_deref().unwrap_or("unknown"))
        });
        let mut out = format!(
            "{} documents x {} dims, k = {}{}, kernel {}{server}\n{} ({} cores, shared by client and server if local)\n",
            self.server.documents,
            self.server.dimension,
            self.k,
            if self.with_text { ", with texts" } else { ", no texts" },
            self.server.kernel,
            self.cpu,
            self.cores
        );
        let open = self.levels.iter().any(|l| matches!(l.load, Load::Open { .. }));
        out += if open { "open loop: latency from the scheduled send time\n" } else { "closed loop\n" };
        out += &format!(
            "{:>11} {:>9} {:>7} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10}\n",
            if open { "rate/s" } else { "concurrency" },
            "requests",
            "errors",
            "QPS",
            "min ms",
            "mean ms",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "p99.9 ms",
            "max ms",
            "bytes/resp"
        );
        for l in &self.levels {
            let x = match l.load {
                Load::Closed { concurrency } => concurrency.to_string(),
                Load::Open { rate_qps, .. } => format!("{rate_qps}"),
            };
            let ms = |pick: fn(&Latency) -> f64| l.latency.as_ref().map_or(f64::NAN, pick);
            out += &format!(
                "{x:>11} {:>9} {:>7} {:>9.1} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>10.0}\n",
                l.requests,
                l.errors,
                l.qps,
                ms(|x| x.min_ms),
                ms(|x| x.mean_ms),
                ms(|x| x.p50_ms),
                ms(|x| x.p95_ms),
                ms(|x| x.p99_ms),
                ms(|x| x.p999_ms),
                ms(|x| x.max_ms),
                l.mean_response_bytes.unwrap_or(f64::NAN)
            );
        }
        for l in self.levels.iter().filter(|l| l.errors > 0) {
            let kinds: Vec<String> =
                l.errors_by_kind.iter().map(|e| format!("{} x {}", e.failure.label(), e.count)).collect();
            out += &format!("errors at {}: {}\n", l.load.label(), kinds.join(", "));
        }
        for l in &self.levels {
            if let Some(lag) = l.max_send_lag_ms.filter(|&lag| lag >= SEND_LAG_NOTE_MS) {
                out += &format!(
                    "at {}: a request left up to {lag:.1} ms after its scheduled time, counted in its \
                     latency (--max-in-flight reached, or no CPU free to send on time)\n",
                    l.load.label()
                );
            }
        }
        out
    }
}

/// Send lag (open loop) above which the table adds a line about it: below
/// it, tokio's 1 ms timer and scheduling noise explain it.
const SEND_LAG_NOTE_MS: f64 = 10.0;

/// The CPU model for the report.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}
