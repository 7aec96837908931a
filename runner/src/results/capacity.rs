//! capacity.csv: per runtime (and point), the highest open-model rate at which `[slo]` held, as
//! the capacity search found it.

use crate::plan::{Plan, Point};
use crate::run::search::Found;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct CapacityRow {
    pub runtime: String,
    /// Requests/s: the highest rate that passed every probe and confirmation there; empty when
    /// not even the search's lowest rate did.
    pub capacity: Option<u64>,
    /// The interval it lies in: `capacity` .. the lowest rate that failed (empty when nothing
    /// failed: the search reached its max or the load generator's ceiling).
    pub interval_low: Option<u64>,
    pub interval_high: Option<u64>,
    /// The objectives, e.g. `p99 <= 5ms, errors <= 0`.
    pub slo: String,
    /// What broke at `interval_high` (the limit that binds).
    pub binding_limit: String,
    pub probes: usize,
    /// Why the search ended where it did, when not as designed (the client's ceiling, max).
    pub note: String,
    pub connections: usize,
    pub payload_bytes: u64,
    pub server_threads: usize,
    pub max_connections: usize,
}

impl CapacityRow {
    pub fn new(plan: &Plan, runtime: &str, point: &Point, f: &Found) -> CapacityRow {
        CapacityRow {
            runtime: runtime.to_string(),
            capacity: f.capacity,
            interval_low: f.capacity,
            interval_high: f.failed_at,
            slo: plan
                .scenario
                .slo
                .as_ref()
                .map(crate::objectives::describe)
                .unwrap_or_default(),
            binding_limit: f.binding.clone(),
            probes: f.probes,
            note: f.note.clone(),
            connections: point.connections,
            payload_bytes: point.payload_bytes,
            server_threads: point.threads,
            max_connections: point.max_connections,
        }
    }

    /// `212,000/s (fails at 222,600/s: p99 6.1 ms > 5ms), 17 probes`.
    pub fn describe(&self) -> String {
        let mut s = match self.capacity {
            Some(c) => format!("{c}/s"),
            None => "none".into(),
        };
        if let Some(h) = self.interval_high {
            s.push_str(&format!(" (fails at {h}/s: {})", self.binding_limit));
        }
        s.push_str(&format!(", {} probes", self.probes));
        if !self.note.is_empty() {
            s.push_str(&format!("; {}", self.note));
        }
        s
    }
}
