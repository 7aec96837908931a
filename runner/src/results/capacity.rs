//! capacity.csv: per runtime (and point), the highest open-model rate at which `[slo]` held, as
//! the capacity search found it.

use crate::plan::{Plan, Point};
use serde::{Deserialize, Serialize};

/// What a capacity search found (`crate::run::search::find`).
#[derive(Clone, Debug, PartialEq)]
pub struct Found {
    /// The highest rate that passed every probe and confirmation there (None: not even `from`).
    pub capacity: Option<u64>,
    /// The lowest rate that failed (None: nothing failed up to `max` or the client's ceiling).
    pub failed_at: Option<u64>,
    /// The limits broken at `failed_at`.
    pub binding: String,
    pub probes: usize,
    /// Empty when the search ended as designed; otherwise why not (client ceiling, max,
    /// interruption, probe limit).
    pub note: String,
}

super::point::point_columns! {

/// One runtime's capacity at one point (the point's `target_rate` is empty: the search sets it).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct CapacityRow {
    pub runtime: String,
    /// Which search this is when a night repeats them (`--trials`).
    pub trial: u32,
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
}
}

impl CapacityRow {
    pub fn new(plan: &Plan, runtime: &str, point: &Point, trial: usize, f: &Found) -> CapacityRow {
        let mut row = CapacityRow {
            runtime: runtime.to_string(),
            trial: trial as u32,
            capacity: f.capacity,
            interval_low: f.capacity,
            interval_high: f.failed_at,
            slo: plan
                .scenario
                .slo
                .as_ref()
                .map(crate::scenario::Slo::describe)
                .unwrap_or_default(),
            binding_limit: f.binding.clone(),
            probes: f.probes,
            note: f.note.clone(),
            ..Default::default()
        };
        row.set_point(point);
        row
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
