//! The sweep point: one combination of the parameters a scenario can sweep, the one type the
//! plan, every result file, the plots and the nightly history use for it (the result files
//! add its columns with `crate::results::point::point_columns!`).
//!
//! A new sweep parameter is a [`Param`] variant, a [`Point`] field, and a column in
//! `point_columns!`; everything that lists, labels, groups or plots points goes through them.

use serde::{Deserialize, Serialize};

/// A parameter that may vary between the rows of one run (a sweep).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Param {
    Connections,
    PayloadBytes,
    ServerThreads,
    MaxConnections,
    TargetRate,
}

impl Param {
    pub const ALL: [Param; 5] = [
        Param::Connections,
        Param::PayloadBytes,
        Param::ServerThreads,
        Param::MaxConnections,
        Param::TargetRate,
    ];

    /// The column name in every result file, also used in file names (`sweep-<name>.png`).
    pub fn name(self) -> &'static str {
        match self {
            Param::Connections => "connections",
            Param::PayloadBytes => "payload_bytes",
            Param::ServerThreads => "server_threads",
            Param::MaxConnections => "max_connections",
            Param::TargetRate => "target_rate",
        }
    }

    /// Axis text, with the unit.
    pub fn axis_label(self) -> &'static str {
        match self {
            Param::Connections => "connections",
            Param::PayloadBytes => "payload (bytes)",
            Param::ServerThreads => "server threads",
            Param::MaxConnections => "server max_connections (0 = no limit)",
            Param::TargetRate => "target rate (requests/s)",
        }
    }

    /// `100 connections`, `64 B payload`.
    pub fn describe(self, v: f64) -> String {
        match self {
            Param::Connections => format!("{} connection{}", fmt_num(v), plural(v)),
            Param::PayloadBytes => format!("{} B payload", fmt_num(v)),
            Param::ServerThreads => format!("{} server thread{}", fmt_num(v), plural(v)),
            Param::MaxConnections => format!("max_connections {}", fmt_num(v)),
            Param::TargetRate => format!("target {} req/s", fmt_num(v)),
        }
    }
}

/// One combination of the swept parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Point {
    pub connections: usize,
    pub payload_bytes: u64,
    /// Open model only.
    pub rate: Option<u64>,
    pub threads: usize,
    /// 0 = no limit.
    pub max_connections: usize,
    /// The workload's name in a `[[workload]]` sweep; empty for a scenario's only workload.
    #[serde(default)]
    pub workload: String,
}

impl Point {
    /// The value of `p` at this point (`None`: not set, e.g. no rate in a closed load).
    pub fn get(&self, p: Param) -> Option<f64> {
        match p {
            Param::Connections => Some(self.connections as f64),
            Param::PayloadBytes => Some(self.payload_bytes as f64),
            Param::ServerThreads => Some(self.threads as f64),
            Param::MaxConnections => Some(self.max_connections as f64),
            Param::TargetRate => self.rate.map(|r| r as f64),
        }
    }

    /// `connections=100 payload=64B threads=1 rate=5000/s`: the run's rows and log lines.
    pub fn label(&self) -> String {
        let mut s = format!(
            "connections={} payload={}B threads={}",
            self.connections, self.payload_bytes, self.threads
        );
        if self.max_connections > 0 {
            s.push_str(&format!(" max_connections={}", self.max_connections));
        }
        if let Some(r) = self.rate {
            s.push_str(&format!(" rate={r}/s"));
        }
        if !self.workload.is_empty() {
            s.push_str(&format!(" workload={}", self.workload));
        }
        s
    }

    /// A canonical text form, the grouping key of the history and the benchmark names (as
    /// BMF names, stable across versions).
    pub fn key(&self) -> String {
        let mut s = format!(
            "connections={},payload_bytes={},server_threads={},max_connections={}",
            self.connections, self.payload_bytes, self.threads, self.max_connections
        );
        if let Some(r) = self.rate {
            s.push_str(&format!(",target_rate={r}"));
        }
        if !self.workload.is_empty() {
            s.push_str(&format!(",workload={}", self.workload));
        }
        s
    }

    /// A short label, e.g. `100 conn, 64 B, 1 thr` (nightly tables and trend legends).
    pub fn short(&self) -> String {
        let mut s = format!(
            "{} conn, {} B, {} thr",
            self.connections, self.payload_bytes, self.threads
        );
        if self.max_connections > 0 {
            s.push_str(&format!(", max {} conn", self.max_connections));
        }
        if let Some(r) = self.rate {
            s.push_str(&format!(", {r} req/s offered"));
        }
        if !self.workload.is_empty() {
            s.push_str(&format!(", {}", self.workload));
        }
        s
    }
}

fn plural(v: f64) -> &'static str {
    if v == 1.0 {
        ""
    } else {
        "s"
    }
}

/// A parameter's value for people, as the terminal writes counts (`50,000`).
fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        crate::console::format::thousands(v)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_leaves_out_a_rate_that_is_not_set() {
        let p = Point {
            connections: 100,
            payload_bytes: 64,
            threads: 1,
            ..Default::default()
        };
        assert_eq!(
            p.key(),
            "connections=100,payload_bytes=64,server_threads=1,max_connections=0"
        );
        let q = Point {
            rate: Some(5000),
            max_connections: 10,
            ..p.clone()
        };
        assert_eq!(
            q.key(),
            "connections=100,payload_bytes=64,server_threads=1,max_connections=10,target_rate=5000"
        );
        assert_eq!(q.get(Param::TargetRate), Some(5000.0));
        assert_eq!(p.get(Param::TargetRate), None);
    }
}
