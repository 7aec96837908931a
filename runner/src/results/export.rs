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

/// summary.json (and `run --export-json`): the run's rows, each with its verdicts (`status`,
/// `slo`, `audit`), the scenario as it ran and the command that ran it, for scripts. Its JSON
/// Schema is `runbench schema --summary` (committed as scenarios/summary.schema.json).
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(title = "runbench summary")]
pub struct SummaryJson {
    /// The format's version: 1.
    pub format: u32,
    /// The scenario with the command line's overrides applied.
    pub scenario: serde_json::Value,
    /// The command that made the run, program first.
    pub command_line: Vec<String>,
    /// One row per runtime and point (the median over trials where there were several).
    pub rows: Vec<SummaryRow>,
}

impl SummaryJson {
    /// The summary of a run whose meta.json is `meta` and whose rows are `rows`.
    pub fn new(meta: &super::Meta, rows: &[SummaryRow]) -> SummaryJson {
        SummaryJson {
            format: 1,
            scenario: meta.scenario.clone(),
            command_line: meta.command_line.clone(),
            rows: rows.to_vec(),
        }
    }

    pub fn bytes(&self) -> Vec<u8> {
        let mut b = serde_json::to_vec_pretty(self).expect("a summary serialises");
        b.push(b'\n');
        b
    }

    /// The JSON Schema of summary.json.
    pub fn schema() -> String {
        let schema = schemars::schema_for!(SummaryJson);
        serde_json::to_string_pretty(&schema).expect("schemas serialise")
    }
}

/// `run --export-markdown`: the rows as a Markdown table, fastest first per point.
pub fn summary_markdown(rows: &[SummaryRow]) -> String {
    let mut s = String::from(
        "| runtime | point | status | req/s | p50 µs | p99 µs | server CPU µs/req | audit |\n\
         |---|---|---|---:|---:|---:|---:|---|\n",
    );
    let mut sorted: Vec<&SummaryRow> = rows.iter().collect();
    sorted.sort_by(|a, b| {
        (a.point.as_str(), b.requests_per_sec.unwrap_or(-1.0))
            .partial_cmp(&(b.point.as_str(), a.requests_per_sec.unwrap_or(-1.0)))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let num = |v: Option<f64>, d: usize| v.map_or("-".into(), |v| format!("{v:.d$}"));
    for r in sorted {
        let status = match r.status {
            super::RowStatus::Ok => "ok".to_string(),
            other => format!("{}: {}", status_word(other), r.error.replace('|', "\\|")),
        };
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.runtime,
            r.point,
            status,
            num(r.requests_per_sec, 0),
            num(r.p50_us, 1),
            num(r.p99_us, 1),
            num(r.server_cpu_us_per_request, 2),
            r.audit.replace('|', "\\|"),
        ));
    }
    s
}

fn status_word(s: super::RowStatus) -> &'static str {
    match s {
        super::RowStatus::Ok => "ok",
        super::RowStatus::Failed => "failed",
        super::RowStatus::Interrupted => "interrupted",
        super::RowStatus::Skipped => "skipped",
    }
}

pub fn percentiles_csv(rows: &[PercentileRow]) -> anyhow::Result<Vec<u8>> {
    to_csv(rows)
}
