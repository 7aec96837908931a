//! `bmf.json`: tonight's numbers in Bencher Metric Format, so a Bencher project (or anything
//! that reads BMF) can track them: `{"<benchmark>": {"<measure>": {"value", "lower_value",
//! "upper_value"}}}` (<https://bencher.dev/docs/reference/bencher-metric-format>).
//!
//! Benchmarks are named `<scenario>/<runtime>/<point>`, stable from night to night. `value` is
//! the median of the night's trials and the bounds its 95% bootstrap interval. Throughput uses
//! Bencher's built-in `throughput` measure (operations per second); the others are custom
//! measures whose slug names their unit.

use super::history::HistoryRow;
use super::metric::Metric;
use crate::stats;
use serde::Serialize;
use std::collections::BTreeMap;

pub const CONFIDENCE: f64 = 0.95;
pub const RESAMPLES: usize = 10_000;
/// Fixed so the same trials always export the same interval.
pub const SEED: u64 = 0x5eed_b3cf;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MetricValue {
    pub value: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lower_value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upper_value: Option<f64>,
}

pub type Bmf = BTreeMap<String, BTreeMap<&'static str, MetricValue>>;

/// The BMF measure slug of a metric.
pub fn measure(metric: Metric) -> &'static str {
    match metric {
        Metric::RequestsPerSec => "throughput",
        Metric::P50Us => "latency-p50-us",
        Metric::P99Us => "latency-p99-us",
        Metric::ServerCpuUsPerRequest => "server-cpu-us-per-request",
        Metric::ServerRssPeakBytes => "server-rss-peak-bytes",
        Metric::Capacity => "capacity",
    }
}

/// Adds one night's rows of one scenario to `out`.
pub fn add(out: &mut Bmf, scenario: &str, night_rows: &[HistoryRow]) {
    let mut groups: BTreeMap<String, Vec<&HistoryRow>> = BTreeMap::new();
    for r in night_rows {
        let name = format!("{scenario}/{}/{}", r.runtime, r.point().key());
        groups.entry(name).or_default().push(r);
    }
    for (name, rows) in groups {
        let measures = out.entry(name).or_default();
        for metric in Metric::ALL {
            let v: Vec<f64> = rows.iter().filter_map(|r| metric.get(r)).collect();
            if v.is_empty() {
                continue;
            }
            // One trial has no interval; leave the bounds out rather than repeat the value.
            let (lower, upper) = if v.len() > 1 {
                let (lo, hi) = stats::bootstrap_median_ci(&v, CONFIDENCE, RESAMPLES, SEED);
                (Some(lo), Some(hi))
            } else {
                (None, None)
            };
            measures.insert(
                measure(metric),
                MetricValue {
                    value: stats::median(&v),
                    lower_value: lower,
                    upper_value: upper,
                },
            );
        }
    }
}

pub fn to_json(bmf: &Bmf) -> anyhow::Result<Vec<u8>> {
    Ok(serde_json::to_vec_pretty(bmf)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nightly::history::tests::row;

    #[test]
    fn bmf_json_has_benchmark_measure_value_shape() {
        let rows: Vec<HistoryRow> = [100.0, 110.0, 90.0]
            .iter()
            .enumerate()
            .map(|(t, &rps)| row("2025-01-01T00:00:00Z", "tokio", t as u32, rps))
            .collect();
        let mut bmf = Bmf::new();
        add(&mut bmf, "smoke", &rows);
        let json: serde_json::Value = serde_json::from_slice(&to_json(&bmf).unwrap()).unwrap();
        let obj = json.as_object().unwrap();
        assert_eq!(obj.len(), 1);
        let (name, measures) = obj.iter().next().unwrap();
        assert_eq!(
            name,
            "smoke/tokio/connections=100,payload_bytes=64,server_threads=1,max_connections=0"
        );
        let m = measures.as_object().unwrap();
        // Every metric but capacity, which only a capacity search measures.
        assert_eq!(m.len(), Metric::ALL.len() - 1);
        let t = &m["throughput"];
        assert_eq!(t["value"], 100.0);
        let (lo, hi) = (
            t["lower_value"].as_f64().unwrap(),
            t["upper_value"].as_f64().unwrap(),
        );
        assert!((90.0..=100.0).contains(&lo) && (100.0..=110.0).contains(&hi));
        // Every measure is an object with a numeric `value` (BMF's one required key).
        for (_, v) in m {
            assert!(v["value"].is_f64(), "{v}");
            for k in v.as_object().unwrap().keys() {
                assert!(["value", "lower_value", "upper_value"].contains(&k.as_str()));
            }
        }
    }

    #[test]
    fn a_single_trial_has_no_bounds() {
        let mut bmf = Bmf::new();
        add(
            &mut bmf,
            "s",
            &[row("2025-01-01T00:00:00Z", "tokio", 0, 5.0)],
        );
        let json = serde_json::to_value(&bmf).unwrap();
        let t = &json.as_object().unwrap().values().next().unwrap()["throughput"];
        assert_eq!(t, &serde_json::json!({"value": 5.0}));
    }
}
