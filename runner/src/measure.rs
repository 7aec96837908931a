//! One runtime's measurement: the load generators' results merged, plus the servers' exit.

use crate::loadgen::{decode_histogram, new_histogram};
use crate::protocol::{LoadErrors, LoadResult};
use hdrhistogram::Histogram;
use std::time::Duration;

/// The percentiles exported to percentiles.csv (the latency plot's spectrum).
pub const SPECTRUM: &[f64] = &[
    0.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.95, 99.99, 99.995, 99.999, 100.0,
];

#[derive(Clone, Debug)]
pub struct LoadMeasurement {
    /// Latency from the intended send time.
    pub histogram: Histogram<u64>,
    /// Open model: latency from the actual send time.
    pub uncorrected: Option<Histogram<u64>>,
    pub connect: Histogram<u64>,
    pub sent: u64,
    pub reconnects: u64,
    pub in_flight_at_signal: u64,
    pub completed_after_signal: u64,
    pub cut_after_signal: u64,
    pub connections_ok: u64,
    pub requests: u64,
    pub measured: Duration,
    pub mismatched_bytes: u64,
    pub errors: LoadErrors,
    pub busy_fraction: f64,
    pub cpu_s: f64,
}

impl LoadMeasurement {
    /// Merges per-process results (each already a merge of its threads' histograms).
    pub fn merge(results: &[LoadResult], measured: Duration) -> anyhow::Result<Self> {
        let mut m = LoadMeasurement {
            histogram: new_histogram(),
            uncorrected: None,
            connect: new_histogram(),
            sent: 0,
            reconnects: 0,
            in_flight_at_signal: 0,
            completed_after_signal: 0,
            cut_after_signal: 0,
            connections_ok: 0,
            requests: 0,
            measured,
            mismatched_bytes: 0,
            errors: LoadErrors::default(),
            busy_fraction: 0.0,
            cpu_s: 0.0,
        };
        for r in results {
            m.histogram.add(decode_histogram(&r.histogram)?)?;
            if !r.histogram_uncorrected.is_empty() {
                m.uncorrected
                    .get_or_insert_with(new_histogram)
                    .add(decode_histogram(&r.histogram_uncorrected)?)?;
            }
            if !r.connect_histogram.is_empty() {
                m.connect.add(decode_histogram(&r.connect_histogram)?)?;
            }
            m.sent += r.sent;
            m.reconnects += r.reconnects;
            m.in_flight_at_signal += r.in_flight_at_signal;
            m.completed_after_signal += r.completed_after_signal;
            m.cut_after_signal += r.cut_after_signal;
            m.connections_ok += r.connections_ok;
            m.requests += r.requests;
            m.mismatched_bytes += r.mismatched_bytes;
            m.errors.add(&r.errors);
            m.busy_fraction = m.busy_fraction.max(r.busy_fraction);
            m.cpu_s += r.cpu_user_s + r.cpu_sys_s;
        }
        Ok(m)
    }

    pub fn requests_per_sec(&self) -> f64 {
        self.requests as f64 / self.measured.as_secs_f64()
    }

    /// Latency at percentile `p` (0..=100) in microseconds; 0 without samples.
    pub fn percentile_us(&self, p: f64) -> f64 {
        percentile_us(&self.histogram, p)
    }
}

/// Value at percentile `p` of a nanosecond histogram, in microseconds; 0 when empty.
pub fn percentile_us(h: &Histogram<u64>, p: f64) -> f64 {
    if h.is_empty() {
        0.0
    } else {
        h.value_at_percentile(p) as f64 / 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loadgen::encode_histogram;

    #[test]
    fn merging_process_histograms_equals_one_histogram_of_all_samples() {
        let mut all = new_histogram();
        let mut parts = [new_histogram(), new_histogram(), new_histogram()];
        for i in 1..30_000u64 {
            let v = (i * 7919) % 5_000_000 + 1_000;
            all.record(v).unwrap();
            parts[(i % 3) as usize].record(v).unwrap();
        }
        let results: Vec<LoadResult> = parts
            .iter()
            .map(|h| LoadResult {
                connections_ok: 1,
                requests: h.len(),
                mismatched_bytes: 0,
                errors: LoadErrors::default(),
                histogram: encode_histogram(h).unwrap(),
                histogram_uncorrected: String::new(),
                sent: h.len(),
                reconnects: 0,
                connect_histogram: String::new(),
                in_flight_at_signal: 0,
                completed_after_signal: 0,
                cut_after_signal: 0,
                busy_fraction: 0.5,
                cpu_user_s: 0.0,
                cpu_sys_s: 0.0,
            })
            .collect();
        let m = LoadMeasurement::merge(&results, Duration::from_secs(1)).unwrap();
        assert_eq!(m.histogram.len(), all.len());
        for p in SPECTRUM {
            assert_eq!(
                m.histogram.value_at_percentile(*p),
                all.value_at_percentile(*p),
                "p{p}"
            );
        }
    }
}
