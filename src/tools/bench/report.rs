//! The benchmark report: what was measured, where, and the numbers per level.
//! Serialized as is for `--json`; [`BenchReport::table`] for the terminal.

use serde::Serialize;

use super::load::LevelReport;

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
}

impl BenchReport {
    /// A fixed-width table, one row per level.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{} documents x {} dims, k = {}, kernel {}, {} ({} cores)\n",
            self.server.documents, self.server.dimension, self.k, self.server.kernel, self.cpu, self.cores
        );
        out += "concurrency  requests  errors        QPS   p50 ms   p95 ms   p99 ms   max ms\n";
        for l in &self.levels {
            let (p50, p95, p99, max) = l
                .latency
                .map_or((f64::NAN, f64::NAN, f64::NAN, f64::NAN), |x| (x.p50_ms, x.p95_ms, x.p99_ms, x.max_ms));
            out += &format!(
                "{:>11} {:>9} {:>7} {:>10.1} {:>8.2} {:>8.2} {:>8.2} {:>8.2}\n",
                l.concurrency, l.requests, l.errors, l.qps, p50, p95, p99, max
            );
        }
        out
    }
}

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
