//! What a run leaves behind in `<out>/<scenario>/<UTC timestamp>/`: `summary.csv` (median over
//! trials), `trials.csv` (with --keep-trials), `percentiles.csv`, `timeline.csv`, `latency.hlog`
//! and `meta.json`, each rewritten atomically after every measurement so a later failure cannot
//! lose what was already measured.

mod aggregate;
mod capacity;
mod export;
pub mod hlog;
pub mod meta;
mod output;
pub mod point;
pub mod read;

pub use aggregate::aggregate;
pub use capacity::{CapacityRow, Found};
pub use export::{
    percentiles_csv, summary_csv, summary_markdown, to_csv, PercentileRow, SummaryJson,
};
pub use meta::{Meta, RunStatus};
pub use output::{
    baseline_name, create_stamped_dir, find_baseline, point_latest, save_baseline, write_atomic,
    write_together, RunDir,
};
pub use point::{Param, Point};

use serde::{Deserialize, Serialize};

/// `ok`: measured, nothing wrong. `failed`: this runtime failed (the error says how; the other
/// runtimes are unaffected). `interrupted`: the run was stopped (Ctrl-C, SIGTERM) while this
/// runtime was being measured, so its measurement is incomplete. `skipped`: the runtime cannot
/// take part in this scenario by its nature (the error says why); decided before anything ran.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RowStatus {
    #[default]
    Ok,
    Failed,
    Interrupted,
    Skipped,
}

point::point_columns! {
/// One runtime at one point: a trial (trials.csv), the median over trials (summary.csv) or a
/// capacity probe (trials.csv with `probe`). Measurement fields are empty when the runtime
/// failed before measuring. One type for the three on purpose: the files share one schema that
/// the plots, report.md, `compare` and the nightly read with one reader; the columns only some
/// of them fill (the trial number, the interval over trials, the probe's stage) are empty in the
/// others by design.
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct SummaryRow {
    pub scenario: String,
    pub runtime: String,
    pub runtime_version: String,
    pub status: RowStatus,
    pub error: String,
    /// Trial number (trials.csv, or summary.csv when there was one trial).
    pub trial: Option<u32>,
    /// Trials this row summarises.
    pub trials: u32,
    pub model: String,
    /// What each request asked of the server (`[workload]` in words, e.g. `cpu 20us · sleep
    /// 1ms`, led by `http1` for HTTP; `echo` for none); the point's `workload` column names it in a sweep.
    #[serde(default)]
    pub workload_parts: String,
    pub server_processes: usize,
    /// `[server] processes = "auto"` chose `server_processes` (the fewest the open-files limit
    /// allows).
    pub server_processes_auto: bool,
    pub duration_s: f64,
    /// Answers received inside the measured window (whenever the request was sent).
    pub requests: Option<u64>,
    pub requests_per_sec: Option<f64>,
    /// With trials: a distribution-free confidence interval for the median over trials (order
    /// statistics), and the probability it covers the true median (`ci_level`: 0.95 or more
    /// from 6 trials; with 3-5 trials the interval is min-max and covers 75-94%).
    pub requests_per_sec_ci_low: Option<f64>,
    pub requests_per_sec_ci_high: Option<f64>,
    pub requests_per_sec_ci_level: Option<f64>,
    pub requests_per_sec_cv: Option<f64>,
    pub p50_us: Option<f64>,
    pub p90_us: Option<f64>,
    pub p99_us: Option<f64>,
    pub p99_us_ci_low: Option<f64>,
    pub p99_us_ci_high: Option<f64>,
    pub p99_us_ci_level: Option<f64>,
    pub p99_us_cv: Option<f64>,
    pub p999_us: Option<f64>,
    pub max_us: Option<f64>,
    pub mean_us: Option<f64>,
    /// Open model: latency from the actual send time, as a tool with coordinated omission sees it.
    pub p50_uncorrected_us: Option<f64>,
    pub p99_uncorrected_us: Option<f64>,
    /// Open model: p99 of the latency counted from when the client got to each request (its
    /// intended time plus its send lag): the p99 less the client's own lateness. Far below
    /// `p99_us`, the client's lateness shaped the p99 (the audit says so).
    pub p99_after_lag_us: Option<f64>,
    /// Requests written in the measured window (open model: of those scheduled in it).
    pub sent: Option<u64>,
    /// Open model: requests the schedule put in the window; of them, written more than 1 ms
    /// late, never written, and never answered (those count in the percentiles at the end of
    /// the drain); and the p99 of how late the generator got to a scheduled send.
    pub scheduled: Option<u64>,
    pub sent_late: Option<u64>,
    pub not_sent: Option<u64>,
    pub unanswered: Option<u64>,
    pub send_lag_p99_us: Option<f64>,
    /// Open model: the p99.9 of the send lag: its tail, which lands in the latency's tail (the
    /// audit says which percentiles it shapes).
    pub send_lag_p999_us: Option<f64>,
    /// Connection failures (connect failed or timed out, reset, closed by the server).
    pub errors: Option<u64>,
    /// Errors by kind, e.g. `reset=3 closed_by_server=1`.
    pub error_kinds: String,
    pub mismatched_bytes: Option<u64>,
    pub connections_ok: Option<u64>,
    /// Server CPU seconds in the measured window (/proc at its edges, over all server
    /// processes), and per request answered in it.
    pub server_cpu_user_s: Option<f64>,
    pub server_cpu_sys_s: Option<f64>,
    pub server_cpu_us_per_request: Option<f64>,
    /// Server CPU seconds over the processes' whole lives (start-up, connects, warmup, drain).
    pub server_cpu_life_user_s: Option<f64>,
    pub server_cpu_life_sys_s: Option<f64>,
    /// Messages the servers echoed in the window, by their own count (a witness of `requests`).
    pub server_echoes_window: Option<u64>,
    pub server_rss_peak_bytes: Option<u64>,
    /// With `[load] idle_connections`: how many were held, and the servers' RSS per idle
    /// connection: (RSS with them accepted - RSS before they connected) / their count.
    pub idle_connections: Option<u64>,
    pub server_rss_per_idle_connection_bytes: Option<f64>,
    /// How evenly the server's threads shared its CPU in the window (the work-stealing
    /// question): the busiest thread's share of the servers' CPU (1/k for k threads evenly
    /// busy, 1 when one thread did all), and the threads that used at least a tenth of the
    /// busiest one's CPU. From /proc/<pid>/task/*/schedstat at the window's start and a tenth
    /// of it (at most 50 ms) before its end (a thread-per-connection server's threads end with
    /// their connections at the window's end, taking their CPU time with them).
    pub server_busiest_thread_share: Option<f64>,
    pub server_busy_threads: Option<u64>,
    /// How late the server's timers came back in the window, on average, in µs past the time
    /// each asked for (the workload's `sleep` and fan-out timers; the wake-up after the timer
    /// included); empty without timers.
    pub server_timer_late_us: Option<f64>,
    /// With `[load] skew`: the share of the answers in the window that went to the hot
    /// connections (the scenario's `share`, measured).
    pub hot_share: Option<f64>,
    /// Least-squares slope of the server's sampled RSS over the measured window (timeline.csv),
    /// in MiB per minute; empty with fewer than 5 samples in the window.
    pub server_rss_growth_mib_per_min: Option<f64>,
    /// The RSS grew steadily through the measured window (a likely leak; fails the row). Empty
    /// when it cannot be judged (too few samples, or the connection count changed).
    pub server_rss_growing: Option<bool>,
    /// From the stop signal to the last server process's exit.
    pub shutdown_ms: Option<f64>,
    /// From the stop signal to the last connection closed.
    pub drain_ms: Option<f64>,
    pub shutdown_overrun: Option<bool>,
    /// Seconds after the load start when the stop signal was sent, if during the load.
    pub shutdown_at_s: Option<f64>,
    pub in_flight_at_signal: Option<u64>,
    pub completed_after_signal: Option<u64>,
    pub cut_after_signal: Option<u64>,
    pub server_accepted: Option<u64>,
    pub server_closed_clean: Option<u64>,
    pub server_peer_closed: Option<u64>,
    pub server_cut: Option<u64>,
    pub server_io_errors: Option<u64>,
    /// Most connections served at once (summed over server processes).
    pub server_max_concurrent: Option<u64>,
    /// Connections opened during the load (churn, ramps) and their connect latency.
    pub reconnects: Option<u64>,
    pub connect_p50_us: Option<f64>,
    pub connect_p99_us: Option<f64>,
    /// The load generator's work as fractions of the run: wall time outside its waits (busiest
    /// thread), CPU outside its waits (a short sleep's own CPU counts as waiting; busiest
    /// thread, or all threads over the load CPUs they share), and time
    /// runnable but waiting for a CPU (busiest thread). Saturated when busy or CPU is above 0.9
    /// or (open model) the p99 send lag is above 1 ms.
    pub loadgen_busy: Option<f64>,
    pub loadgen_cpu_busy: Option<f64>,
    pub loadgen_cpu_wait: Option<f64>,
    pub loadgen_saturated: Option<bool>,
    pub loadgen_cpu_s: Option<f64>,
    /// Open model: the window's requests per batch the generator sent them in (one turn of its
    /// loop: what was due when it looked, and what fell due while it sent that), over all its
    /// threads. 1 where each send has a wake-up of its own; more where a wait costs more than
    /// the time between sends (a sleep costs about 15 µs of CPU on the 2-vCPU VMs here: about 5
    /// at 100,000/s). The server then gets requests in bursts of about this many, each late by
    /// up to the burst's length (`send_lag_*` says how late). The on-time C client's
    /// `per_batch` (benchmarks/ontime) is the same figure for a client that only sends.
    pub loadgen_sends_per_batch: Option<f64>,
    /// The network path the row was measured on: `kernel` (the kernel's TCP stack on both
    /// sides) or `tap` (the plugin's own TCP/IP stack behind a TAP device, where the kernel's
    /// work splits differently between client and server: such a row is ranked apart).
    pub network: String,
    /// HTTP rows: what served the HTTP (the plugin's `http_stack`: the HTTP library and the I/O
    /// adapter under it); empty for an echo, or an external server.
    pub http_stack: String,
    /// What ran as the load: processes (one per shard of the open-files limit, or per load
    /// agent) and their threads over all of them (`[load] threads` is per process).
    pub load_processes: Option<u64>,
    pub load_threads: Option<u64>,
    /// Reads of answers in the window (several answers a read when the kernel coalesced them);
    /// those without the kernel's receive stamp, and those whose stamp the clocks could not
    /// place even by an offset measured again (later than the read: a step back between stamp
    /// and read, or the stamping CPU's clock ahead of the reader's), both
    /// timed when read instead (the audit flags any).
    pub reads: Option<u64>,
    pub reads_unstamped: Option<u64>,
    pub reads_stamp_rejected: Option<u64>,
    /// Steps of the realtime clock, which the kernel stamps answers by, found in the window
    /// (the audit flags any: stamps around a step are placed off by its size).
    pub clock_steps: Option<u64>,
    /// Latencies whose answer was stamped at or before its request went out (impossible: a
    /// clock or stamping fault; recorded as zero; the audit flags any).
    pub latency_clamped: Option<u64>,
    /// The least time a loopback answer takes once its request is in, measured by each load
    /// thread before the load (the smallest), and the latencies below it (the clamped ones among them: no server
    /// answers faster, so each is a fault of the client's timing; the audit flags any).
    pub loopback_floor_us: Option<f64>,
    pub latency_below_floor: Option<u64>,
    /// Open model: `load.send_window` (0: every send at its time): sends may be late by up to
    /// it, and that lateness is in the latency.
    pub send_window_us: Option<f64>,
    /// `ok`, or what the run's own witnesses disagreed about (see `crate::measure::audit`).
    pub audit: String,
    /// With `[slo]`: `pass` or `fail`, and the limits broken.
    pub slo: String,
    pub slo_broken: String,
    /// With `[search]`: why this probe ran (`step-up`, `bisect`, `confirm`, `recheck`).
    pub probe: String,
    /// The sweep point in words.
    pub point: String,
}
}

impl SummaryRow {
    /// Whether requests/s is a lower bound: the load generator was the limit.
    pub fn lower_bound(&self) -> bool {
        self.loadgen_saturated == Some(true)
    }

    /// The order people read rows in: the measured ones fastest first, then the lower bounds
    /// (the client was their limit) fastest first, then the rows without a figure (skipped,
    /// failed before measuring, interrupted).
    pub fn reading_order(&self, other: &SummaryRow) -> std::cmp::Ordering {
        let group = |r: &SummaryRow| (r.requests_per_sec.is_none(), r.lower_bound());
        let rps = |r: &SummaryRow| r.requests_per_sec.unwrap_or(-1.0);
        (group(self).cmp(&group(other))).then(rps(other).total_cmp(&rps(self)))
    }

    /// Open model: the answers' rate in the window over the offered rate.
    pub fn achieved_fraction(&self) -> Option<f64> {
        match (self.requests_per_sec, self.target_rate) {
            (Some(got), Some(offered)) if offered > 0 => Some(got / offered as f64),
            _ => None,
        }
    }

    /// The same row, failed.
    pub fn failed(base: &SummaryRow, error: String) -> SummaryRow {
        SummaryRow {
            status: RowStatus::Failed,
            error,
            ..base.clone()
        }
    }

    /// The same row, not run: the runtime cannot take part in this scenario.
    pub fn skipped(base: &SummaryRow, reason: String) -> SummaryRow {
        SummaryRow {
            status: RowStatus::Skipped,
            error: reason,
            ..base.clone()
        }
    }

    /// The same row, cut short by an interruption.
    pub fn interrupted(base: &SummaryRow, error: String) -> SummaryRow {
        SummaryRow {
            status: RowStatus::Interrupted,
            error,
            ..base.clone()
        }
    }
}
