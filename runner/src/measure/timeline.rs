//! The run's timeline: per interval, what the load generators completed (merged over processes)
//! and what the server processes used, read from /proc at the same instants.

use crate::os::procfs::ProcSample;
use crate::protocol::histograms::{decode, new_histogram, percentile_us};
use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// One interval of one runtime's trial (timeline.csv), written by the run and read back by
/// `runbench plot`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
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
    /// Merged while processes report; once all have, it is reduced to what is kept (memory
    /// stays small on long runs: a decoded histogram is ~100 KB, its compressed form ~1 KB).
    histogram: Option<Histogram<u64>>,
    p50_us: f64,
    p99_us: f64,
    /// HdrHistogram V2 (deflate) bytes, for the interval log.
    encoded: Vec<u8>,
}

impl LoadInterval {
    fn finish(&mut self) {
        let Some(h) = self.histogram.take() else {
            return;
        };
        self.p50_us = percentile_us(&h, 50.0);
        self.p99_us = percentile_us(&h, 99.0);
        let mut bytes = Vec::new();
        if V2DeflateSerializer::new().serialize(&h, &mut bytes).is_ok() {
            self.encoded = bytes;
        }
    }
}

pub struct TimelineRecorder {
    interval: Duration,
    /// Load-generator processes, each reporting every interval.
    processes: usize,
    load: BTreeMap<u64, LoadInterval>,
    server: BTreeMap<u64, ProcSample>,
    next_sample: u64,
    /// Across machines: the agent each load process runs on, and each agent's own interval
    /// histograms (latency.hlog keeps a tag per agent beside the merged one).
    sources: Vec<String>,
    by_source: BTreeMap<(String, u64), Histogram<u64>>,
}

impl TimelineRecorder {
    pub fn new(interval: Duration, processes: usize) -> Self {
        TimelineRecorder {
            interval,
            processes: processes.max(1),
            load: BTreeMap::new(),
            server: BTreeMap::new(),
            next_sample: 0,
            sources: Vec::new(),
            by_source: BTreeMap::new(),
        }
    }

    /// Names the agent of each load process (by index), so intervals are kept per agent too.
    pub fn name_sources(&mut self, names: Vec<String>) {
        self.sources = names;
    }

    /// Load-generator process `process`'s interval `index`.
    pub fn on_interval(
        &mut self,
        process: usize,
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
            histogram: Some(new_histogram()),
            p50_us: 0.0,
            p99_us: 0.0,
            encoded: Vec::new(),
        });
        e.reported += 1;
        e.completed += completed;
        e.errors += errors;
        e.connections += connections;
        let decoded = decode(histogram);
        if let (Some(merged), Ok(h)) = (e.histogram.as_mut(), &decoded) {
            let _ = merged.add(h);
        }
        if let (Some(source), Ok(h)) = (self.sources.get(process), &decoded) {
            let _ = self
                .by_source
                .entry((source.clone(), index))
                .or_insert_with(new_histogram)
                .add(h);
        }
        if e.reported >= self.processes {
            e.finish();
        }
    }

    /// When the next server sample is due (the end of the current interval).
    pub fn next_sample_at(&self, started: Instant) -> Instant {
        started + self.interval * (self.next_sample as u32 + 1)
    }

    /// Samples the servers when an interval boundary has passed since `started`.
    pub fn sample_servers(&mut self, started: Instant, mut sample: impl FnMut() -> ProcSample) {
        while started.elapsed() >= self.interval * (self.next_sample as u32 + 1) {
            let total = sample();
            self.server.insert(self.next_sample, total);
            self.next_sample += 1;
        }
    }

    /// Ends the recording: intervals that not every process reported (a process that died) are
    /// summarised from what arrived.
    pub fn finish(&mut self) {
        for l in self.load.values_mut() {
            l.finish();
        }
    }

    pub fn rows(&self, runtime: &str, trial: u32, point: &str) -> Vec<TimelineRow> {
        self.load
            .iter()
            .map(|(&k, l)| {
                let s = self.server.get(&k).copied().unwrap_or_default();
                TimelineRow {
                    runtime: runtime.to_string(),
                    trial,
                    t_s: self.interval.as_secs_f64() * (k + 1) as f64,
                    requests: l.completed,
                    errors: l.errors,
                    connections: l.connections,
                    p50_us: l.p50_us,
                    p99_us: l.p99_us,
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

    /// (interval start since load start, V2-deflate histogram bytes) for the interval log.
    pub fn encoded_histograms(&self) -> Vec<(Duration, Vec<u8>)> {
        self.load
            .iter()
            .map(|(&k, l)| (self.interval * k as u32, l.encoded.clone()))
            .collect()
    }

    /// (agent, interval start since load start, V2-deflate bytes) of every agent's intervals.
    pub fn encoded_by_source(&self) -> Vec<(String, Duration, Vec<u8>)> {
        self.by_source
            .iter()
            .filter_map(|((source, k), h)| {
                let mut bytes = Vec::new();
                V2DeflateSerializer::new().serialize(h, &mut bytes).ok()?;
                Some((source.clone(), self.interval * *k as u32, bytes))
            })
            .collect()
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }
}
