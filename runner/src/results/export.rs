//! Pure functions from results to file contents; `RunDir` does the writing.

use super::SummaryRow;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PercentileRow {
    pub runtime: String,
    pub trial: u32,
    pub percentile: f64,
    pub latency_us: f64,
    /// The sweep point this spectrum belongs to (the same columns as summary.csv; csv cannot
    /// serialise a flattened struct, hence the copies).
    pub connections: Option<u64>,
    pub payload_bytes: Option<u64>,
    pub server_threads: Option<u64>,
    pub max_connections: Option<u64>,
    pub target_rate: Option<u64>,
}

pub fn to_csv<T: Serialize>(rows: &[T]) -> anyhow::Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r)?;
    }
    w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))
}

pub fn summary_csv(rows: &[SummaryRow]) -> anyhow::Result<Vec<u8>> {
    to_csv(rows)
}

pub fn percentiles_csv(rows: &[PercentileRow]) -> anyhow::Result<Vec<u8>> {
    to_csv(rows)
}
