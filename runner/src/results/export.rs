//! Pure functions from results to file contents; `RunDir` does the writing.

use super::SummaryRow;
use serde::{Deserialize, Serialize};

super::point::point_columns! {
/// One percentile of one runtime's trial at one point (percentiles.csv: the latency spectrum).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PercentileRow {
    pub runtime: String,
    pub trial: u32,
    pub percentile: f64,
    pub latency_us: f64,
}
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
