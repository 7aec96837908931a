//! The metrics a nightly tracks, and which way is better for each.

use super::history::HistoryRow;
use crate::console::format::Unit;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Metric {
    RequestsPerSec,
    P50Us,
    P99Us,
    ServerCpuUsPerRequest,
    ServerRssPeakBytes,
    /// A capacity search's answer: the highest rate within the scenario's `[slo]`.
    Capacity,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Better {
    Higher,
    Lower,
}

impl Metric {
    pub const ALL: [Metric; 6] = [
        Metric::RequestsPerSec,
        Metric::P50Us,
        Metric::P99Us,
        Metric::ServerCpuUsPerRequest,
        Metric::ServerRssPeakBytes,
        Metric::Capacity,
    ];

    /// The column name in summary.csv and the history (also used in file names).
    pub fn column(self) -> &'static str {
        match self {
            Metric::RequestsPerSec => "requests_per_sec",
            Metric::P50Us => "p50_us",
            Metric::P99Us => "p99_us",
            Metric::ServerCpuUsPerRequest => "server_cpu_us_per_request",
            Metric::ServerRssPeakBytes => "server_rss_peak_bytes",
            Metric::Capacity => "capacity",
        }
    }

    /// For tables and plot captions.
    pub fn label(self) -> &'static str {
        match self {
            Metric::RequestsPerSec => "throughput (requests/s)",
            Metric::P50Us => "p50 latency",
            Metric::P99Us => "p99 latency",
            Metric::ServerCpuUsPerRequest => "server CPU per request",
            Metric::ServerRssPeakBytes => "server peak RSS (MiB)",
            Metric::Capacity => "capacity within the SLO (requests/s)",
        }
    }

    /// Values are shown in this unit (RSS is stored in bytes, shown in MiB).
    pub fn display_scale(self) -> f64 {
        match self {
            Metric::ServerRssPeakBytes => 1.0 / (1024.0 * 1024.0),
            _ => 1.0,
        }
    }

    /// How its values read: durations (stored in µs) auto-scaled, the rest as quantities.
    pub fn unit(self) -> Unit {
        match self {
            Metric::P50Us | Metric::P99Us | Metric::ServerCpuUsPerRequest => Unit::Micros,
            _ => Unit::Count,
        }
    }

    /// `v` (in the stored unit) as a table shows it.
    pub fn show(self, v: f64) -> String {
        self.unit().cell(v * self.display_scale())
    }

    pub fn better(self) -> Better {
        match self {
            Metric::RequestsPerSec | Metric::Capacity => Better::Higher,
            _ => Better::Lower,
        }
    }

    pub fn get(self, r: &HistoryRow) -> Option<f64> {
        let v = match self {
            Metric::RequestsPerSec => r.requests_per_sec,
            Metric::P50Us => r.p50_us,
            Metric::P99Us => r.p99_us,
            Metric::ServerCpuUsPerRequest => r.server_cpu_us_per_request,
            Metric::ServerRssPeakBytes => r.server_rss_peak_bytes,
            Metric::Capacity => r.capacity,
        };
        v.filter(|v| v.is_finite())
    }
}
