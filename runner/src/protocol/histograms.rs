//! Latency histograms: nanoseconds in HdrHistograms (3 significant digits), merged exactly by
//! addition at every level (worker thread -> load process -> run), and their wire form (V2
//! serialisation, base64) between processes.

use base64::Engine;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Highest latency tracked (ns, one hour); larger values are clamped to it.
pub const HIST_MAX_NS: u64 = 3_600_000_000_000;

pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIST_MAX_NS, 3).expect("static histogram bounds")
}

/// Records `d` (clamped to 1 ns ..= [`HIST_MAX_NS`]).
pub fn record(h: &mut Histogram<u64>, d: Duration) {
    h.saturating_record((d.as_nanos().min(u128::from(HIST_MAX_NS)) as u64).max(1));
}

pub fn encode(h: &Histogram<u64>) -> anyhow::Result<String> {
    let mut bytes = Vec::new();
    V2Serializer::new()
        .serialize(h, &mut bytes)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

pub fn decode(text: &str) -> anyhow::Result<Histogram<u64>> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(text)?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| anyhow::anyhow!("bad histogram: {e:?}"))
}

/// Value at percentile `p` (0..=100) of a nanosecond histogram, in microseconds; 0 when empty.
pub fn percentile_us(h: &Histogram<u64>, p: f64) -> f64 {
    if h.is_empty() {
        0.0
    } else {
        h.value_at_percentile(p) as f64 / 1000.0
    }
}

/// Every histogram a load generator keeps. One type from a worker thread up to the run, so a
/// new histogram is one field here and one line in [`LoadHistograms::add`].
#[derive(Clone, Debug)]
pub struct LoadHistograms {
    /// Latency from the intended send time (open model) or the send (closed model). In the open
    /// model it includes the requests that were never answered, at the end of the drain.
    pub latency: Histogram<u64>,
    /// Open model: latency from the later of the actual send and the previous answer, as a
    /// client that waits for each answer would report it (coordinated omission).
    pub uncorrected: Histogram<u64>,
    /// Connect latency of connections opened during the load.
    pub connect: Histogram<u64>,
    /// Open model: how late the generator got to each scheduled send (its own lateness).
    pub send_lag: Histogram<u64>,
    /// Open model: latency from when the generator got to each request (its intended time plus
    /// its send lag) instead of from the intended time: the same requests as `latency`, less the
    /// client's own lateness. The audit compares the two percentile by percentile.
    pub after_lag: Histogram<u64>,
}

impl Default for LoadHistograms {
    fn default() -> Self {
        LoadHistograms {
            latency: new_histogram(),
            uncorrected: new_histogram(),
            connect: new_histogram(),
            send_lag: new_histogram(),
            after_lag: new_histogram(),
        }
    }
}

impl LoadHistograms {
    pub fn add(&mut self, o: &LoadHistograms) -> anyhow::Result<()> {
        self.latency.add(&o.latency)?;
        self.uncorrected.add(&o.uncorrected)?;
        self.connect.add(&o.connect)?;
        self.send_lag.add(&o.send_lag)?;
        self.after_lag.add(&o.after_lag)?;
        Ok(())
    }

    pub fn encode(&self) -> anyhow::Result<EncodedHistograms> {
        Ok(EncodedHistograms {
            latency: encode(&self.latency)?,
            uncorrected: encode(&self.uncorrected)?,
            connect: encode(&self.connect)?,
            send_lag: encode(&self.send_lag)?,
            after_lag: encode(&self.after_lag)?,
        })
    }
}

/// [`LoadHistograms`] on the wire.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct EncodedHistograms {
    pub latency: String,
    pub uncorrected: String,
    pub connect: String,
    pub send_lag: String,
    /// Absent from older load generators (a mixed cluster): empty.
    #[serde(default)]
    pub after_lag: String,
}

impl EncodedHistograms {
    pub fn decode(&self) -> anyhow::Result<LoadHistograms> {
        Ok(LoadHistograms {
            latency: decode(&self.latency)?,
            uncorrected: decode(&self.uncorrected)?,
            connect: decode(&self.connect)?,
            send_lag: decode(&self.send_lag)?,
            after_lag: if self.after_lag.is_empty() {
                new_histogram()
            } else {
                decode(&self.after_lag)?
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_histograms_equal_one_histogram_of_all_samples() {
        let mut all = new_histogram();
        let mut parts = [
            LoadHistograms::default(),
            LoadHistograms::default(),
            LoadHistograms::default(),
        ];
        for i in 1..30_000u64 {
            let v = (i * 7919) % 5_000_000 + 1_000;
            all.record(v).unwrap();
            parts[(i % 3) as usize].latency.record(v).unwrap();
        }
        let mut merged = LoadHistograms::default();
        for p in &parts {
            // Through the wire form, as between processes.
            merged.add(&p.encode().unwrap().decode().unwrap()).unwrap();
        }
        assert_eq!(merged.latency.len(), all.len());
        for p in crate::measure::SPECTRUM {
            assert_eq!(
                merged.latency.value_at_percentile(*p),
                all.value_at_percentile(*p),
                "p{p}"
            );
        }
    }
}
