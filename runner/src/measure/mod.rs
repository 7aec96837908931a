//! One runtime's measurement: the load generators' results merged (the one place they are),
//! and what the run read of the servers at the measured window's edges.

pub mod audit;
pub mod rss_trend;
pub mod timeline;

use crate::os::procfs::ProcSample;
use crate::protocol::histograms::{percentile_us, LoadHistograms};
use crate::protocol::{LoadBusy, LoadCounters, LoadResult, ServerSnapshot};
use runbench_plugin_abi::Workload;
use std::time::Duration;

/// The percentiles exported to percentiles.csv (the latency plot's spectrum).
pub const SPECTRUM: &[f64] = &[
    0.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.95, 99.99, 99.995, 99.999, 100.0,
];

#[derive(Clone, Debug)]
pub struct LoadMeasurement {
    pub counters: LoadCounters,
    pub busy: LoadBusy,
    pub histograms: LoadHistograms,
    /// The measured window.
    pub measured: Duration,
}

impl LoadMeasurement {
    /// Adds up the load processes' results (each already the sum of its threads).
    pub fn merge(results: &[LoadResult], measured: Duration) -> anyhow::Result<Self> {
        let mut m = LoadMeasurement {
            counters: LoadCounters::default(),
            busy: LoadBusy::default(),
            histograms: LoadHistograms::default(),
            measured,
        };
        for r in results {
            m.counters += r.counters;
            m.busy.merge(&r.busy);
            m.histograms.add(&r.histograms.decode()?)?;
        }
        Ok(m)
    }

    /// Answers inside the window per second of it.
    pub fn requests_per_sec(&self) -> f64 {
        self.counters.requests as f64 / self.measured.as_secs_f64()
    }

    /// Latency at percentile `p` (0..=100) in microseconds; 0 without samples.
    pub fn percentile_us(&self, p: f64) -> f64 {
        percentile_us(&self.histograms.latency, p)
    }
}

/// The servers at the measured window's edges, read two independent ways: /proc of every
/// server process by the runner, and each process's own snapshot (getrusage, and the plugin's
/// live counters), summed over processes. Either may be missing (a process that died, an
/// external target without a command).
#[derive(Clone, Copy, Debug, Default)]
pub struct WindowReadings {
    pub proc: Option<(ProcSample, ProcSample)>,
    pub own: Option<(ServerSnapshot, ServerSnapshot)>,
    /// How the servers' threads shared the window's CPU (servers on this host).
    pub spread: Option<ThreadSpread>,
}

/// Each server thread's CPU nanoseconds, keyed (pid, tid).
pub type ThreadCpu = Vec<((u32, u32), u64)>;

/// How evenly the server's threads shared its CPU in the window (the work-stealing question):
/// each thread's CPU time in the window from /proc/<pid>/task/<tid>/schedstat at the edges.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ThreadSpread {
    /// The busiest thread's share of the servers' CPU in the window: 1/k when k threads shared
    /// it evenly, 1 when one thread did everything.
    pub busiest_share: f64,
    /// Threads that used at least a tenth of the busiest one's CPU.
    pub busy_threads: u64,
}

impl ThreadSpread {
    /// From each thread's CPU nanoseconds at the window's start (`a`) and end (`b`), keyed by
    /// (pid, tid); a thread born in the window counts from zero, one that ended in it is not
    /// seen (so the end is read just before the window's: see `ProcEdges`). `None` when no
    /// thread ran.
    pub fn between(a: &[((u32, u32), u64)], b: &[((u32, u32), u64)]) -> Option<ThreadSpread> {
        let before: std::collections::HashMap<(u32, u32), u64> = a.iter().copied().collect();
        let used: Vec<u64> = (b.iter())
            .map(|(k, ns)| ns.saturating_sub(before.get(k).copied().unwrap_or(0)))
            .collect();
        let total: u64 = used.iter().sum();
        let busiest = used.iter().copied().max()?;
        if total == 0 {
            return None;
        }
        Some(ThreadSpread {
            busiest_share: busiest as f64 / total as f64,
            busy_threads: used.iter().filter(|&&ns| ns * 10 >= busiest).count() as u64,
        })
    }
}

impl WindowReadings {
    /// Server CPU seconds (user, system) in the window, from /proc.
    pub fn proc_cpu(&self) -> Option<(f64, f64)> {
        let (a, b) = self.proc?;
        Some((b.cpu_user_s - a.cpu_user_s, b.cpu_sys_s - a.cpu_sys_s))
    }

    /// Server CPU seconds in the window, from the servers' own getrusage.
    pub fn own_cpu(&self) -> Option<f64> {
        let (a, b) = self.own?;
        Some((b.cpu_user_s + b.cpu_sys_s) - (a.cpu_user_s + a.cpu_sys_s))
    }

    /// Requests the servers answered in the window (bytes answered / bytes of one answer), when
    /// they publish live counters.
    pub fn answered(&self, workload: &Workload) -> Option<u64> {
        let (a, b) = self.own?;
        let bytes = b
            .counts?
            .bytes_echoed
            .saturating_sub(a.counts?.bytes_echoed);
        Some(bytes / workload.response_bytes()?.max(1))
    }

    /// How late the servers' timers came back in the window, on average: microseconds past
    /// the time each asked for (the timer and the wake-up after it). `None` without timers or
    /// live counters.
    pub fn timer_late_us(&self) -> Option<f64> {
        let (a, b) = self.own?;
        let (a, b) = (a.counts?, b.counts?);
        let timers = b.timers.saturating_sub(a.timers);
        let late_ns = b.timers_late_ns.saturating_sub(a.timers_late_ns);
        (timers > 0).then(|| late_ns as f64 / timers as f64 / 1000.0)
    }

    /// Connections the servers had accepted when the window opened.
    pub fn accepted_at_start(&self) -> Option<u64> {
        Some(self.own?.0.counts?.accepted)
    }
}

#[cfg(test)]
mod tests {
    use super::ThreadSpread;

    #[test]
    fn the_spread_is_the_busiest_threads_share_of_the_window() {
        let a = [((1, 10), 1_000), ((1, 11), 5_000), ((1, 12), 0)];
        // Two threads busy evenly, one idle, one born in the window with a little work.
        let b = [
            ((1, 10), 101_000),
            ((1, 11), 105_000),
            ((1, 12), 0),
            ((1, 13), 5_000),
        ];
        let s = ThreadSpread::between(&a, &b).unwrap();
        assert!((s.busiest_share - 100.0 / 205.0).abs() < 1e-9, "{s:?}");
        assert_eq!(s.busy_threads, 2);
        assert_eq!(ThreadSpread::between(&a, &a), None);
    }
}
