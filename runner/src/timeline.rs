//! The run's timeline: per interval, what the load generators completed (merged over processes)
//! and what the server processes used, read from /proc at the same instants.

use crate::loadgen::{decode_histogram, new_histogram};
use crate::procfs::{self, ProcSample};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TimelineRow {
    pub runtime: String,
    pub trial: u32,
    /// Seconds since the load started, at the end of the interval.
    pub t_s: f64,
    pub requests: u64,
    pub errors: u64,
    /// Client connections open at the end of the interval.
    pub connections: u64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub server_cpu_user_s: f64,
    pub server_cpu_sys_s: f64,
    pub server_rss_bytes: u64,
    pub server_threads: u64,
    pub server_ctx_switches: u64,
    /// The sweep point (empty when nothing is swept).
    pub point: String,
}

struct LoadInterval {
    reported: usize,
    completed: u64,
    errors: u64,
    connections: u64,
    histogram: Histogram<u64>,
}

pub struct TimelineRecorder {
    interval: Duration,
    load: BTreeMap<u64, LoadInterval>,
    server: BTreeMap<u64, ProcSample>,
    next_sample: u64,
}

impl TimelineRecorder {
    pub fn new(interval: Duration) -> Self {
        TimelineRecorder {
            interval,
            load: BTreeMap::new(),
            server: BTreeMap::new(),
            next_sample: 0,
        }
    }

    /// One load-generator process's interval `index`.
    pub fn on_interval(
        &mut self,
        index: u64,
        completed: u64,
        errors: u64,
        connections: u64,
        histogram: &str,
    ) {
        let e = self.load.entry(index).or_insert_with(|| LoadInterval {
            reported: 0,
            completed: 0,
            errors: 0,
            connections: 0,
            histogram: new_histogram(),
        });
        e.reported += 1;
        e.completed += completed;
        e.errors += errors;
        e.connections += connections;
        if let Ok(h) = decode_histogram(histogram) {
            let _ = e.histogram.add(h);
        }
    }

    /// Samples the servers when an interval boundary has passed since `started`.
    pub fn sample_servers(&mut self, started: Instant, pids: &[u32]) {
        while started.elapsed() >= self.interval * (self.next_sample as u32 + 1) {
            let mut total = ProcSample::default();
            for &pid in pids {
                if let Some(s) = procfs::sample(pid) {
                    total.add(&s);
                }
            }
            self.server.insert(self.next_sample, total);
            self.next_sample += 1;
        }
    }

    pub fn rows(&self, runtime: &str, trial: u32, point: &str) -> Vec<TimelineRow> {
        self.load
            .iter()
            .map(|(&k, l)| {
                let s = self.server.get(&k).copied().unwrap_or_default();
                let pct = |p: f64| {
                    if l.histogram.is_empty() {
                        0.0
                    } else {
                        l.histogram.value_at_percentile(p) as f64 / 1000.0
                    }
                };
                TimelineRow {
                    runtime: runtime.to_string(),
                    trial,
                    t_s: self.interval.as_secs_f64() * (k + 1) as f64,
                    requests: l.completed,
                    errors: l.errors,
                    connections: l.connections,
                    p50_us: pct(50.0),
                    p99_us: pct(99.0),
                    server_cpu_user_s: s.cpu_user_s,
                    server_cpu_sys_s: s.cpu_sys_s,
                    server_rss_bytes: s.rss_bytes,
                    server_threads: s.threads,
                    server_ctx_switches: s.ctx_switches,
                    point: point.to_string(),
                }
            })
            .collect()
    }

    /// (interval start since load start, histogram) for the interval log.
    pub fn histograms(&self) -> Vec<(Duration, Histogram<u64>)> {
        self.load
            .iter()
            .map(|(&k, l)| (self.interval * k as u32, l.histogram.clone()))
            .collect()
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }
}
