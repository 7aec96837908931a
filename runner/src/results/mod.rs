//! What a run leaves behind: `summary.csv`, `percentiles.csv` and `meta.json` in
//! `<out>/<scenario>/<UTC timestamp>/`, each rewritten atomically after every runtime so a later
//! failure cannot lose what was already measured.

mod export;
pub mod meta;
mod output;
pub mod read;

pub use export::{percentiles_csv, summary_csv, PercentileRow};
pub use meta::Meta;
pub use output::{write_atomic, RunDir};

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RowStatus {
    Ok,
    Failed,
}

/// One runtime (and trial) of a run. Measurement fields are empty when the runtime failed before
/// measuring.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SummaryRow {
    pub scenario: String,
    pub runtime: String,
    pub runtime_version: String,
    pub trial: u32,
    pub status: RowStatus,
    pub error: String,
    pub connections: usize,
    pub connections_ok: Option<u64>,
    pub payload_bytes: u64,
    pub server_threads: usize,
    pub server_processes: usize,
    pub duration_s: f64,
    pub requests: Option<u64>,
    pub requests_per_sec: Option<f64>,
    pub p50_us: Option<f64>,
    pub p90_us: Option<f64>,
    pub p99_us: Option<f64>,
    pub p999_us: Option<f64>,
    pub max_us: Option<f64>,
    pub mean_us: Option<f64>,
    pub errors: Option<u64>,
    pub mismatched_bytes: Option<u64>,
    pub server_cpu_user_s: Option<f64>,
    pub server_cpu_sys_s: Option<f64>,
    /// (user + sys) CPU microseconds of the server per measured request (whole process lifetime,
    /// so warmup and connection set-up are included; comparable across runtimes of one scenario).
    pub server_cpu_us_per_request: Option<f64>,
    pub server_rss_peak_bytes: Option<u64>,
    pub shutdown_ms: Option<f64>,
    pub shutdown_overrun: Option<bool>,
    pub server_accepted: Option<u64>,
    pub server_cut: Option<u64>,
    pub loadgen_busy: Option<f64>,
    pub loadgen_saturated: Option<bool>,
    pub loadgen_cpu_s: Option<f64>,
}

impl SummaryRow {
    /// A row with the scenario's parameters and no measurement.
    pub fn failed(base: &SummaryRow, error: String) -> SummaryRow {
        SummaryRow {
            status: RowStatus::Failed,
            error,
            ..base.clone()
        }
    }
}

/// A short table for the terminal.
pub fn console_table(rows: &[SummaryRow]) -> String {
    let mut s = format!(
        "{:<16} {:>12} {:>10} {:>10} {:>10} {:>8} {:>12}  status\n",
        "runtime", "req/s", "p50 us", "p99 us", "max us", "errors", "rss MiB"
    );
    let f = |v: Option<f64>, d: usize| v.map_or("-".to_string(), |v| format!("{v:.d$}"));
    for r in rows {
        s.push_str(&format!(
            "{:<16} {:>12} {:>10} {:>10} {:>10} {:>8} {:>12}  {}\n",
            r.runtime,
            f(r.requests_per_sec, 0),
            f(r.p50_us, 1),
            f(r.p99_us, 1),
            f(r.max_us, 1),
            r.errors.map_or("-".into(), |e| e.to_string()),
            f(r.server_rss_peak_bytes.map(|b| b as f64 / 1048576.0), 1),
            match r.status {
                RowStatus::Ok => "ok".to_string(),
                RowStatus::Failed => format!("FAILED: {}", r.error),
            }
        ));
    }
    s
}
