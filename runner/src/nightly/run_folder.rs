//! Reads a finished run folder (`meta.json` + `trials.csv`, or `summary.csv` when the run had no
//! repeated trials) into history rows.
//!
//! Columns are looked up by name and a missing column is an absent value, never zero: the result
//! files gain columns over time and old folders must stay comparable.

use super::history::{Fingerprint, HistoryRow};
use std::path::{Path, PathBuf};

/// A trial that did not produce numbers.
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    pub runtime: String,
    pub trial: u32,
    pub error: String,
}

#[derive(Clone, Debug)]
pub struct RunFolder {
    pub path: PathBuf,
    pub scenario: String,
    pub fingerprint: Fingerprint,
    pub git_commit: String,
    pub started_at: String,
    /// `trials.csv` or `summary.csv`.
    pub source: &'static str,
    /// Successful trials; `timestamp` is the run's start and `run_dir` its path.
    pub rows: Vec<HistoryRow>,
    pub failures: Vec<Failure>,
}

pub fn read(dir: &Path) -> anyhow::Result<RunFolder> {
    let meta_path = dir.join("meta.json");
    let meta_text = crate::sys::open_regular(&meta_path)
        .and_then(std::io::read_to_string)
        .map_err(|e| {
            anyhow::anyhow!(
                "{} is not a run folder: reading {}: {e}",
                dir.display(),
                meta_path.display()
            )
        })?;
    let meta: serde_json::Value = serde_json::from_str(&meta_text)
        .map_err(|e| anyhow::anyhow!("{}: not valid JSON: {e}", meta_path.display()))?;
    let text = |ptr: &str| meta.pointer(ptr).and_then(|v| v.as_str()).map(String::from);
    let need = |ptr: &str| {
        text(ptr).ok_or_else(|| anyhow::anyhow!("{}: missing `{ptr}`", meta_path.display()))
    };
    let fingerprint = Fingerprint {
        cpu_model: need("/host/cpu_model")?,
        cores: meta
            .pointer("/host/cores")
            .and_then(|v| v.as_u64())
            .ok_or_else(|| anyhow::anyhow!("{}: missing `/host/cores`", meta_path.display()))?,
        kernel: need("/host/kernel")?,
    };
    let scenario_max_connections = meta
        .pointer("/scenario/server/max_connections")
        .and_then(|v| v.as_u64());

    let (source, csv_path) = ["trials.csv", "summary.csv"]
        .into_iter()
        .map(|f| (f, dir.join(f)))
        .find(|(_, p)| p.exists())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{}: neither trials.csv nor summary.csv is there (did the run stop before its \
                 first runtime finished?)",
                dir.display()
            )
        })?;
    let started_at = need("/started_at")?;
    let mut folder = RunFolder {
        path: dir.to_path_buf(),
        scenario: need("/scenario/name")?,
        fingerprint,
        git_commit: text("/git_commit").unwrap_or_else(|| "unknown".into()),
        started_at,
        source,
        rows: Vec::new(),
        failures: Vec::new(),
    };

    let mut reader = csv::Reader::from_reader(
        crate::sys::open_regular(&csv_path)
            .map_err(|e| anyhow::anyhow!("reading {}: {e}", csv_path.display()))?,
    );
    let headers = reader.headers()?.clone();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| anyhow::anyhow!("{}: {e}", csv_path.display()))?;
        let row = Cells {
            headers: &headers,
            record: &record,
            file: &csv_path,
            line: i + 2,
        };
        let runtime = row.required("runtime")?.to_string();
        let trial = row.number::<u32>("trial")?.unwrap_or(0);
        if row.get("status").is_some_and(|s| s != "ok") {
            folder.failures.push(Failure {
                runtime,
                trial,
                error: row.get("error").unwrap_or("failed").to_string(),
            });
            continue;
        }
        folder.rows.push(HistoryRow {
            timestamp: folder.started_at.clone(),
            git_commit: folder.git_commit.clone(),
            runtime,
            runtime_version: row.get("runtime_version").unwrap_or("").to_string(),
            connections: row.required_number("connections")?,
            payload_bytes: row.required_number("payload_bytes")?,
            server_threads: row.required_number("server_threads")?,
            max_connections: row.number("max_connections")?.or(scenario_max_connections),
            target_rate: row.number("target_rate")?,
            trial,
            host_cpu: folder.fingerprint.cpu_model.clone(),
            host_cores: folder.fingerprint.cores,
            host_kernel: folder.fingerprint.kernel.clone(),
            requests_per_sec: row.number("requests_per_sec")?,
            p99_us: row.number("p99_us")?,
            p50_us: row.number("p50_us")?,
            server_cpu_us_per_request: row.number("server_cpu_us_per_request")?,
            server_rss_peak_bytes: row.number("server_rss_peak_bytes")?,
            run_dir: dir.display().to_string(),
        });
    }
    Ok(folder)
}

struct Cells<'a> {
    headers: &'a csv::StringRecord,
    record: &'a csv::StringRecord,
    file: &'a Path,
    line: usize,
}

impl Cells<'_> {
    /// A cell by column name; an absent column or an empty cell is `None`.
    fn get(&self, column: &str) -> Option<&str> {
        let i = self.headers.iter().position(|h| h == column)?;
        self.record.get(i).filter(|s| !s.is_empty())
    }

    fn required(&self, column: &str) -> anyhow::Result<&str> {
        self.get(column).ok_or_else(|| {
            anyhow::anyhow!(
                "{} line {}: column `{column}` is missing or empty",
                self.file.display(),
                self.line
            )
        })
    }

    fn number<T: std::str::FromStr>(&self, column: &str) -> anyhow::Result<Option<T>>
    where
        T::Err: std::fmt::Display,
    {
        self.get(column)
            .map(|s| {
                s.parse::<T>().map_err(|e| {
                    anyhow::anyhow!(
                        "{} line {}: `{column}` = `{s}` is not a number ({e})",
                        self.file.display(),
                        self.line
                    )
                })
            })
            .transpose()
    }

    fn required_number<T: std::str::FromStr>(&self, column: &str) -> anyhow::Result<T>
    where
        T::Err: std::fmt::Display,
    {
        self.number(column)?.ok_or_else(|| {
            anyhow::anyhow!(
                "{} line {}: column `{column}` is missing or empty",
                self.file.display(),
                self.line
            )
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Writes a run folder the way `run::run_plan` does today (summary.csv only).
    pub(crate) fn write_run(dir: &Path, cpu: &str, rows: &[(&str, u32, f64)]) {
        std::fs::create_dir_all(dir).unwrap();
        let meta = serde_json::json!({
            "scenario": {"name": "smoke", "server": {"max_connections": 0}},
            "started_at": "2025-01-01T00:00:00+00:00",
            "host": {"cpu_model": cpu, "cores": 2, "kernel": "6.1.0", "hostname": "h", "nofile_limit": 1024},
            "git_commit": "abc123",
        });
        std::fs::write(dir.join("meta.json"), meta.to_string()).unwrap();
        let mut csv = String::from(
            "scenario,runtime,runtime_version,trial,status,error,connections,payload_bytes,\
             server_threads,requests_per_sec,p50_us,p99_us,server_cpu_us_per_request,\
             server_rss_peak_bytes\n",
        );
        for (runtime, trial, rps) in rows {
            csv.push_str(&format!(
                "smoke,{runtime},1.0,{trial},ok,,100,64,1,{rps},{},{},{},8388608\n",
                1e6 / rps * 50.0,
                1e6 / rps * 200.0,
                1e6 / rps
            ));
        }
        std::fs::write(dir.join("summary.csv"), csv).unwrap();
    }

    #[test]
    fn reads_summary_rows_with_meta_fingerprint_and_absent_columns() {
        let dir = tempfile::tempdir().unwrap();
        write_run(
            dir.path(),
            "CPU X",
            &[("tokio", 0, 1000.0), ("tokio", 1, 1010.0)],
        );
        let f = read(dir.path()).unwrap();
        assert_eq!(f.source, "summary.csv");
        assert_eq!(f.scenario, "smoke");
        assert_eq!(f.fingerprint.cpu_model, "CPU X");
        assert_eq!(f.rows.len(), 2);
        let r = &f.rows[1];
        assert_eq!(r.trial, 1);
        assert_eq!(r.requests_per_sec, Some(1010.0));
        assert_eq!(
            r.max_connections,
            Some(0),
            "taken from meta.json's scenario"
        );
        assert_eq!(r.target_rate, None, "absent column is absent, not zero");
    }

    #[test]
    fn prefers_trials_csv_and_skips_failed_trials() {
        let dir = tempfile::tempdir().unwrap();
        write_run(dir.path(), "CPU X", &[("tokio", 0, 1000.0)]);
        std::fs::write(
            dir.path().join("trials.csv"),
            "runtime,trial,status,error,connections,payload_bytes,server_threads,max_connections,\
             requests_per_sec\n\
             tokio,0,ok,,100,64,1,50,900\n\
             tokio,1,failed,server crashed,100,64,1,50,\n",
        )
        .unwrap();
        let f = read(dir.path()).unwrap();
        assert_eq!(f.source, "trials.csv");
        assert_eq!(f.rows.len(), 1);
        assert_eq!(f.rows[0].max_connections, Some(50));
        assert_eq!(f.rows[0].p99_us, None);
        assert_eq!(
            f.failures,
            vec![Failure {
                runtime: "tokio".into(),
                trial: 1,
                error: "server crashed".into()
            }]
        );
    }

    #[test]
    fn a_folder_without_meta_is_refused_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let err = read(dir.path()).unwrap_err().to_string();
        assert!(err.contains("is not a run folder"), "{err}");
    }
}
