//! A run folder read back into typed data, so plots and report.md can be redrawn from the files
//! alone (`runbench plot`). Columns other work adds later (sweeps, trials, open model) are read
//! as `Option`: a missing column is "not measured", never zero.

pub use super::point::Param;
use super::{Meta, PercentileRow, RowStatus, SummaryRow};
use anyhow::Context;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Everything the plots and the report draw from.
#[derive(Clone, Debug)]
pub struct RunData {
    pub dir: PathBuf,
    pub meta: MetaView,
    /// summary.csv: one row per runtime (and sweep point).
    pub summary: Vec<Summary>,
    /// percentiles.csv.
    pub percentiles: Vec<PercentileRow>,
    /// percentiles.csv names each row's point (files from before it did are matched by order).
    pub percentiles_have_point: bool,
    /// trials.csv, when the run had several trials.
    pub trials: Option<Vec<Summary>>,
    /// timeline.csv, when the run recorded one.
    pub timeline: Option<Vec<TimelineRow>>,
    /// capacity.csv, when the run searched for capacities.
    pub capacity: Option<Vec<super::CapacityRow>>,
    /// Things that could not be read but did not stop the drawing (shown in report.md).
    pub warnings: Vec<String>,
}

/// A summary.csv (or trials.csv) row: the columns every run has, plus the optional ones.
#[derive(Clone, Debug)]
pub struct Summary {
    pub row: SummaryRow,
    pub extra: SummaryExtra,
}

/// Columns that only some runs have beyond `SummaryRow`'s (which reads missing columns as
/// absent through its serde defaults).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct SummaryExtra {
    /// A runtime's caveat written by the run (e.g. how an embassy server was hosted).
    pub note: Option<String>,
}

impl Summary {
    pub fn runtime(&self) -> &str {
        &self.row.runtime
    }

    pub fn ok(&self) -> bool {
        self.row.status == RowStatus::Ok
    }

    /// Whether its requests/s is a lower bound: the load generator was the limit.
    pub fn lower_bound(&self) -> bool {
        self.row.lower_bound()
    }

    pub fn param(&self, p: Param) -> Option<f64> {
        self.row.param(p)
    }

    /// This row's values of the given parameters (its sweep point).
    pub fn point(&self, params: &[Param]) -> Vec<Option<f64>> {
        params.iter().map(|&p| self.param(p)).collect()
    }
}

/// timeline.csv's row: the type the run writes.
pub use crate::measure::timeline::TimelineRow;

/// What the plots and report need from meta.json, read leniently: meta.json grows over time,
/// and an older or partial file should still give a report.
#[derive(Clone, Debug, Default)]
pub struct MetaView {
    pub scenario: String,
    pub description: String,
    pub cpu_model: Option<String>,
    pub cores: Option<u64>,
    pub kernel: Option<String>,
    pub started_at: Option<String>,
    pub runbench_version: Option<String>,
    pub git_commit: Option<String>,
    pub rustc: Option<String>,
    /// The resolved scenario, flattened to `section.key = value`.
    pub parameters: Vec<(String, String)>,
    pub warmup_s: Option<f64>,
    pub duration_s: Option<f64>,
    /// When the stop signal was sent, seconds since load start; `None` when it came after the load.
    pub shutdown_at_s: Option<f64>,
    /// Per-runtime caveats: meta.json `runtime_notes` {runtime: text} and `plugins[].note`.
    pub notes: BTreeMap<String, String>,
    /// The scenario's workloads' names in its order (a `[[workload]]` sweep's columns).
    pub workloads: Vec<String>,
}

impl MetaView {
    /// What the plots and the report show of a run's [`Meta`].
    pub fn of(m: &Meta) -> MetaView {
        let mut parameters = Vec::new();
        if let Some(s) = m.scenario.as_object() {
            for (k, val) in s {
                if k != "name" && k != "description" {
                    flatten(k, val, &mut parameters);
                }
            }
        }
        if m.server_processes > 0 {
            parameters.push(("server_processes".into(), m.server_processes.to_string()));
        }
        for (k, val) in &mut parameters {
            if k == "runtimes" && val == "-" {
                *val = "every built plugin".into();
            }
        }
        let mut notes = m.runtime_notes.clone();
        for p in &m.plugins {
            if let Some(note) = &p.note {
                notes
                    .entry(p.runtime.clone())
                    .or_insert_with(|| note.clone());
            }
        }
        // Older meta.json files have the window only as the scenario's duration text.
        let secs = |value: f64, pointer: &str| {
            Some(value).filter(|&v| v > 0.0).or_else(|| {
                m.scenario_text(pointer)
                    .and_then(|t| humantime::parse_duration(t.trim()).ok())
                    .map(|d| d.as_secs_f64())
            })
        };
        let known = |s: &str| (!s.is_empty()).then(|| s.to_string());
        let workloads = (m.scenario.pointer("/workloads").and_then(|w| w.as_array()))
            .map(|list| {
                list.iter()
                    .filter_map(|w| Some(w.get("name")?.as_str()?.to_string()))
                    .collect()
            })
            .unwrap_or_default();
        MetaView {
            workloads,
            scenario: m.scenario_name(),
            description: m.scenario_text("/description").unwrap_or_default(),
            cpu_model: known(&m.host.cpu_model),
            cores: (m.host.cores > 0).then_some(m.host.cores as u64),
            kernel: known(&m.host.kernel),
            started_at: known(&m.started_at),
            runbench_version: known(&m.runbench_version),
            git_commit: known(&m.git_commit),
            rustc: known(&m.rustc),
            parameters,
            warmup_s: secs(m.warmup_s, "/load/warmup"),
            duration_s: secs(m.duration_s, "/load/duration"),
            shutdown_at_s: m.shutdown_at_s,
            notes,
        }
    }
}

/// `load.connections = 100`; arrays as `0, 1, 2`; nested objects get dotted keys.
fn flatten(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, String)>) {
    use serde_json::Value;
    match v {
        Value::Object(m) => {
            for (k, val) in m {
                flatten(&format!("{prefix}.{k}"), val, out);
            }
        }
        Value::Array(a) => {
            let items: Vec<String> = a.iter().map(scalar).collect();
            out.push((prefix.to_string(), items.join(", ")));
        }
        other => out.push((prefix.to_string(), scalar(other))),
    }
}

fn scalar(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// The largest number a chart or report.md shows: far beyond any measurement (a petabyte of
/// RSS, 31 years in microseconds). A cell above it, `inf` or `NaN` is left out, with a warning,
/// when a run folder is read: an axis sized to 1.7e308 cannot be drawn (rounding it up
/// overflows), and no chart is worth an unbounded loop.
pub const MAX_VALUE: f64 = 1e15;
/// Columns that hold text (a runtime may be called `inf`); every other number is bounded.
const TEXT_COLUMNS: [&str; 9] = [
    "scenario",
    "runtime",
    "runtime_version",
    "status",
    "error",
    "model",
    "error_kinds",
    "point",
    "note",
];
/// Warnings about left-out values per file; the rest are counted.
const MAX_WARNINGS: usize = 10;

/// One CSV record, with "file row N" for messages and whether out-of-range cells were emptied.
struct Record {
    at: String,
    cells: csv::StringRecord,
    emptied: bool,
}

impl Record {
    /// The row as `T`. A row whose emptied cell `T` requires is left out with a warning (the
    /// cell itself was named already); any other unreadable row is an error.
    fn parse<T: DeserializeOwned>(
        &self,
        headers: &csv::StringRecord,
        warnings: &mut Vec<String>,
    ) -> anyhow::Result<Option<T>> {
        match self.cells.deserialize(Some(headers)) {
            Ok(v) => Ok(Some(v)),
            Err(e) if self.emptied => {
                warnings.push(format!("{}: the whole row is left out ({e})", self.at));
                Ok(None)
            }
            Err(e) => Err(anyhow::Error::from(e).context(self.at.clone())),
        }
    }
}

/// A CSV file's header and records, numbers beyond [`MAX_VALUE`] emptied with a warning. Only
/// regular files are opened ([`crate::os::sys::open_regular`]).
fn read_records(
    path: &Path,
    warnings: &mut Vec<String>,
) -> anyhow::Result<(csv::StringRecord, Vec<Record>)> {
    let file = crate::os::sys::open_regular(path)
        .with_context(|| format!("opening {}", path.display()))?;
    let mut r = csv::Reader::from_reader(file);
    let headers = r
        .headers()
        .with_context(|| format!("reading the header of {}", path.display()))?
        .clone();
    let mut out = Vec::new();
    let mut left_out = 0;
    for (i, rec) in r.records().enumerate() {
        let at = format!("{} row {}", path.display(), i + 2);
        let rec = rec.with_context(|| at.clone())?;
        let bad = |h: &str, c: &str| {
            !TEXT_COLUMNS.contains(&h)
                && c.trim()
                    .parse::<f64>()
                    .is_ok_and(|v| !v.is_finite() || v.abs() > MAX_VALUE)
        };
        if !headers.iter().zip(rec.iter()).any(|(h, c)| bad(h, c)) {
            out.push(Record {
                at,
                cells: rec,
                emptied: false,
            });
            continue;
        }
        let mut cells = Vec::with_capacity(rec.len());
        for (j, c) in rec.iter().enumerate() {
            let h = headers.get(j).unwrap_or("");
            if bad(h, c) {
                left_out += 1;
                if left_out <= MAX_WARNINGS {
                    warnings.push(format!(
                        "{at}: `{h}` = {} is not a finite number within ±1e15; left out of \
                         the plots and the report",
                        c.chars().take(40).collect::<String>()
                    ));
                }
                cells.push("");
            } else {
                cells.push(c);
            }
        }
        out.push(Record {
            cells: csv::StringRecord::from(cells),
            at,
            emptied: true,
        });
    }
    if left_out > MAX_WARNINGS {
        warnings.push(format!(
            "{}: {} more value(s) out of range left out",
            path.display(),
            left_out - MAX_WARNINGS
        ));
    }
    Ok((headers, out))
}

/// Reads a CSV file into rows of `T` (columns matched by header name; unknown ones ignored).
fn read_csv<T: DeserializeOwned>(
    path: &Path,
    warnings: &mut Vec<String>,
) -> anyhow::Result<Vec<T>> {
    let (headers, records) = read_records(path, warnings)?;
    let mut out = Vec::new();
    for r in &records {
        out.extend(r.parse(&headers, warnings)?);
    }
    Ok(out)
}

/// Reads rows that are a known struct plus optional columns, from the same record.
fn read_csv_pair<A: DeserializeOwned, B: DeserializeOwned>(
    path: &Path,
    warnings: &mut Vec<String>,
) -> anyhow::Result<Vec<(A, B)>> {
    let (headers, records) = read_records(path, warnings)?;
    let mut out = Vec::new();
    for r in &records {
        let Some(a) = r.parse(&headers, warnings)? else {
            continue;
        };
        if let Some(b) = r.parse(&headers, warnings)? {
            out.push((a, b));
        }
    }
    Ok(out)
}

/// summary.csv or trials.csv, as the run wrote them (warnings: cells left out, see
/// `read_records`).
pub fn summary_rows(path: &Path, warnings: &mut Vec<String>) -> anyhow::Result<Vec<SummaryRow>> {
    Ok(read_summaries(path, warnings)?
        .into_iter()
        .map(|s| s.row)
        .collect())
}

/// capacity.csv, as the run wrote it.
pub fn capacity_rows(
    path: &Path,
    warnings: &mut Vec<String>,
) -> anyhow::Result<Vec<super::CapacityRow>> {
    read_csv(path, warnings)
}

fn read_summaries(path: &Path, warnings: &mut Vec<String>) -> anyhow::Result<Vec<Summary>> {
    Ok(read_csv_pair::<SummaryRow, SummaryExtra>(path, warnings)?
        .into_iter()
        .map(|(row, extra)| Summary { row, extra })
        .collect())
}

impl RunData {
    /// Reads `dir`. summary.csv is required; the other files are used when present.
    pub fn load(dir: &Path) -> anyhow::Result<RunData> {
        let summary_path = dir.join("summary.csv");
        if !summary_path.exists() {
            anyhow::bail!(
                "{} has no summary.csv; give a run folder such as output/<scenario>/latest",
                dir.display()
            );
        }
        let mut warnings = Vec::new();
        let summary = read_summaries(&summary_path, &mut warnings)?;
        let meta_path = dir.join("meta.json");
        let mut meta = match crate::os::sys::open_regular(&meta_path)
            .map_err(anyhow::Error::from)
            .and_then(|f| Ok(serde_json::from_reader::<_, Meta>(f)?))
        {
            Ok(m) => MetaView::of(&m),
            Err(e) => {
                warnings.push(format!(
                    "{} could not be read ({e}); machine and parameters are unknown",
                    meta_path.display()
                ));
                MetaView::default()
            }
        };
        if meta.scenario.is_empty() {
            meta.scenario = summary
                .first()
                .map(|s| s.row.scenario.clone())
                .unwrap_or_default();
        }
        let pct_path = dir.join("percentiles.csv");
        let (percentiles, percentiles_have_point) = if pct_path.exists() {
            let (headers, records) = read_records(&pct_path, &mut warnings)?;
            let mut rows = Vec::new();
            for r in &records {
                rows.extend(r.parse(&headers, &mut warnings)?);
            }
            (rows, headers.iter().any(|h| h == Param::Connections.name()))
        } else {
            warnings.push(format!(
                "{} is missing; no latency spectrum",
                pct_path.display()
            ));
            (Vec::new(), false)
        };
        let optional = |name: &str| {
            let p = dir.join(name);
            p.exists().then_some(p)
        };
        let trials = optional("trials.csv")
            .map(|p| read_summaries(&p, &mut warnings))
            .transpose()?;
        let timeline = optional("timeline.csv")
            .map(|p| read_csv::<TimelineRow>(&p, &mut warnings))
            .transpose()?;
        let capacity = optional("capacity.csv")
            .map(|p| read_csv::<super::CapacityRow>(&p, &mut warnings))
            .transpose()?;
        Ok(RunData {
            dir: dir.to_path_buf(),
            meta,
            summary,
            percentiles,
            percentiles_have_point,
            trials,
            timeline,
            capacity,
            warnings,
        })
    }

    /// The parameters with more than one distinct value across summary rows.
    pub fn swept(&self) -> Vec<Param> {
        Param::ALL
            .into_iter()
            .filter(|&p| {
                let mut seen: Vec<Option<u64>> = Vec::new();
                for s in &self.summary {
                    let v = s.param(p).map(f64::to_bits);
                    if !seen.contains(&v) {
                        seen.push(v);
                    }
                }
                seen.len() > 1
            })
            .collect()
    }

    /// Runtimes in the order they first appear in summary.csv (the run order).
    pub fn runtimes(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for s in &self.summary {
            if !out.iter().any(|r| r == s.runtime()) {
                out.push(s.runtime().to_string());
            }
        }
        out
    }

    /// The row of the reference runtime (`epoll`) at the same point as `row`, if it was run and
    /// measured the server (a lower bound, where the client was the limit, is no limit to be a
    /// share of); none for a row measured on another network path (a TAP device), whose share
    /// of the kernel-socket limit would compare unlike with unlike.
    pub fn reference_for(&self, row: &Summary) -> Option<&Summary> {
        if row.row.network == "tap" {
            return None;
        }
        let swept = self.swept();
        let point = row.point(&swept);
        self.summary.iter().find(|s| {
            s.runtime() == REFERENCE_RUNTIME
                && s.ok()
                && !s.lower_bound()
                && s.point(&swept) == point
        })
    }
}

/// Orders sweep points value by value; an absent value sorts first.
pub fn cmp_point(a: &[Option<f64>], b: &[Option<f64>]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let o = match (x, y) {
            (Some(x), Some(y)) => x.partial_cmp(y).unwrap_or(Ordering::Equal),
            (x, y) => x.is_some().cmp(&y.is_some()),
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

/// The plain-epoll server: the ceiling the runtimes are compared against.
pub const REFERENCE_RUNTIME: &str = "epoll";

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "scenario,runtime,runtime_version,trial,status,error,connections,\
        connections_ok,payload_bytes,server_threads,server_processes,duration_s,requests,\
        requests_per_sec,p50_us,p90_us,p99_us,p999_us,max_us,mean_us,errors,mismatched_bytes,\
        server_cpu_user_s,server_cpu_sys_s,server_cpu_us_per_request,server_rss_peak_bytes,\
        shutdown_ms,shutdown_overrun,server_accepted,server_cut,loadgen_busy,loadgen_saturated,\
        loadgen_cpu_s";

    fn line(rt: &str, conns: u32, extra: &str) -> String {
        format!(
            "s,{rt},1,0,ok,,{conns},{conns},64,1,1,3,300,100,1,2,3,4,5,1,0,0,1,1,1,100,1,false,\
             {conns},0,0.5,false,1{extra}\n"
        )
    }

    #[test]
    fn columns_a_run_did_not_write_are_absent_not_zero() {
        let dir = tempfile::tempdir().unwrap();
        let csv = format!("{HEAD}\n{}", line("tokio", 10, ""));
        std::fs::write(dir.path().join("summary.csv"), csv).unwrap();
        let d = RunData::load(dir.path()).unwrap();
        let e = &d.summary[0].row;
        assert_eq!(e.requests_per_sec_ci_low, None);
        assert_eq!(e.target_rate, None);
        assert_eq!(e.max_connections, 0, "no limit");
        assert!(d.trials.is_none() && d.timeline.is_none());
    }

    #[test]
    fn optional_columns_are_read_when_present_and_empty_cells_are_absent() {
        let dir = tempfile::tempdir().unwrap();
        let csv = format!(
            "{HEAD},requests_per_sec_ci_low,max_connections\n{}{}",
            line("tokio", 10, ",95.5,0"),
            line("smol", 10, ",,50")
        );
        std::fs::write(dir.path().join("summary.csv"), csv).unwrap();
        let d = RunData::load(dir.path()).unwrap();
        assert_eq!(d.summary[0].row.requests_per_sec_ci_low, Some(95.5));
        assert_eq!(d.summary[0].row.max_connections, 0);
        assert_eq!(d.summary[1].row.requests_per_sec_ci_low, None);
        assert_eq!(d.summary[1].row.max_connections, 50);
        // 50 vs no limit is two distinct values: max_connections varies across the rows.
        assert_eq!(d.swept(), vec![Param::MaxConnections]);
    }

    #[test]
    fn swept_lists_the_parameters_that_vary() {
        let dir = tempfile::tempdir().unwrap();
        let csv = format!(
            "{HEAD}\n{}{}{}",
            line("tokio", 10, ""),
            line("tokio", 100, ""),
            line("smol", 10, "")
        );
        std::fs::write(dir.path().join("summary.csv"), csv).unwrap();
        let d = RunData::load(dir.path()).unwrap();
        assert_eq!(d.swept(), vec![Param::Connections]);
        assert_eq!(d.runtimes(), vec!["tokio", "smol"]);
    }
}
