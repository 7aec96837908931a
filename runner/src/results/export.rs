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

/// Rows as CSV, every number as the shortest text that reads back to it within
/// [`CSV_DIGITS`] significant digits: `0.11`, not the `0.10999999999999999` that arithmetic
/// leaves (the columns' units are in their names, so a cell is a plain number).
pub fn to_csv<T: Serialize>(rows: &[T]) -> anyhow::Result<Vec<u8>> {
    let mut raw = csv::Writer::from_writer(Vec::new());
    for r in rows {
        raw.serialize(r)?;
    }
    let raw = raw.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut read = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(raw.as_slice());
    let mut w = csv::Writer::from_writer(Vec::new());
    for record in read.records() {
        let record = record?;
        w.write_record(record.iter().map(|c| tidy_number(c).into_owned()))?;
    }
    w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))
}

/// Significant digits a CSV number keeps: beyond any measurement's precision, below where
/// binary fractions show.
pub const CSV_DIGITS: usize = 12;

/// `cell` as it is unless it is a fractional number with more than [`CSV_DIGITS`] significant
/// digits, which is rounded to them and written shortest.
fn tidy_number(cell: &str) -> std::borrow::Cow<'_, str> {
    let fractional = cell.contains(['.', 'e', 'E']);
    match cell.parse::<f64>() {
        Ok(v) if fractional && v.is_finite() && v != 0.0 => {
            let rounded: f64 = format!("{v:.*e}", CSV_DIGITS - 1).parse().unwrap_or(v);
            let text = rounded.to_string();
            if text.len() < cell.len() {
                text.into()
            } else {
                cell.into()
            }
        }
        _ => cell.into(),
    }
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

/// `run --export-markdown`: the rows as a Markdown table for people, per point the measured
/// rows fastest first and then the lower bounds (`≥`: the client was the limit), numbers as the
/// terminal and report.md write them (`52,346`, `1.23 ms`).
pub fn summary_markdown(rows: &[SummaryRow]) -> String {
    use crate::console::format::{at_least, duration_us};
    let mut s = String::from(
        "| runtime | point | status | req/s | p50 | p99 | server CPU/req | audit |\n\
         |---|---|---|---:|---:|---:|---:|---|\n",
    );
    let mut sorted: Vec<&SummaryRow> = rows.iter().collect();
    sorted.sort_by(|a, b| (a.point.as_str().cmp(b.point.as_str())).then(a.reading_order(b)));
    let time = |v: Option<f64>| v.map_or("-".into(), duration_us);
    for r in sorted {
        let status = match r.status {
            super::RowStatus::Ok => "ok".to_string(),
            other => format!("{}: {}", status_word(other), r.error.replace('|', "\\|")),
        };
        let rps = (r.requests_per_sec).map_or("-".into(), |v| at_least(v, r.lower_bound()));
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.runtime,
            r.point,
            status,
            rps,
            time(r.p50_us),
            time(r.p99_us),
            time(r.server_cpu_us_per_request),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The Markdown export is for people: numbers as the terminal writes them (issue 26's
    /// `p50 µs 414449.7`), lower bounds marked and after the measured rows.
    #[test]
    fn the_markdown_export_writes_numbers_as_the_terminal_does() {
        let row = |runtime: &str, rps: f64, bound: bool| SummaryRow {
            runtime: runtime.into(),
            status: super::super::RowStatus::Ok,
            requests_per_sec: Some(rps),
            loadgen_saturated: Some(bound),
            p50_us: Some(414_449.7),
            p99_us: Some(5_484.5),
            server_cpu_us_per_request: Some(12.5),
            ..SummaryRow::default()
        };
        let md = summary_markdown(&[row("tokio", 70_571.0, true), row("smol", 52_346.0, false)]);
        let lines: Vec<&str> = md.lines().skip(2).collect();
        assert_eq!(
            lines,
            [
                "| smol |  | ok | 52,346 | 414 ms | 5.48 ms | 12.5 µs |  |",
                "| tokio |  | ok | ≥ 70,571 | 414 ms | 5.48 ms | 12.5 µs |  |",
            ],
            "{md}"
        );
    }

    #[test]
    fn csv_numbers_carry_no_binary_noise() {
        assert_eq!(tidy_number("0.10999999999999999"), "0.11");
        assert_eq!(tidy_number("414449.7"), "414449.7");
        assert_eq!(tidy_number("1.2345678901234567"), "1.23456789012");
        assert_eq!(tidy_number("tokio"), "tokio");
        assert_eq!(tidy_number("1.45"), "1.45");
        assert_eq!(tidy_number("52346"), "52346");
        let csv = to_csv(&[PercentileRow {
            runtime: "a,b".into(),
            percentile: 0.1 + 0.2,
            latency_us: 7.0,
            ..PercentileRow::default()
        }])
        .unwrap();
        let text = String::from_utf8(csv).unwrap();
        assert!(text.contains("\"a,b\"") && text.contains(",0.3,"), "{text}");
    }
}
