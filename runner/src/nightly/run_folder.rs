//! A run's trials as the nightly and `compare` judge them: history rows, and the trials that
//! produced none, with the machine they ran on. Built from a run just made (the nightly: its rows
//! are in memory, nothing is read back) or from a run folder on disk (`compare`), with the same
//! types the run writes its files with.

use super::history::{Fingerprint, HistoryRow};
use crate::results::{CapacityRow, Meta, RowStatus, SummaryRow};
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
    /// Measured trials; `timestamp` is the run's start and `run_dir` its path.
    pub rows: Vec<HistoryRow>,
    pub failures: Vec<Failure>,
}

impl RunFolder {
    /// A run's trials as the run itself holds them (the nightly: nothing is read back).
    pub fn from_rows(
        path: &Path,
        meta: &Meta,
        trials: &[SummaryRow],
        capacity: &[CapacityRow],
        source: &'static str,
    ) -> anyhow::Result<RunFolder> {
        let fingerprint = fingerprint(meta).map_err(|missing| {
            anyhow::anyhow!(
                "{}: meta.json lacks `{missing}`, so the machine is unknown",
                path.display()
            )
        })?;
        let mut folder = RunFolder {
            path: path.to_path_buf(),
            scenario: meta.scenario_name(),
            git_commit: Some(meta.git_commit.clone())
                .filter(|c| !c.is_empty())
                .unwrap_or_else(|| "unknown".into()),
            started_at: meta.started_at.clone(),
            fingerprint,
            source,
            rows: Vec::new(),
            failures: Vec::new(),
        };
        // A capacity search's probes are not trials to judge: its answer is.
        let searched = !capacity.is_empty();
        for c in capacity.iter().filter(|c| c.capacity.is_some()) {
            let mut row = folder.history_row(&SummaryRow::default(), c.trial);
            row.runtime = c.runtime.clone();
            row.capacity = c.capacity.map(|v| v as f64);
            row.requests_per_sec = None;
            row.set_point(&c.point());
            folder.rows.push(row);
        }
        for t in trials.iter().filter(|_| !searched) {
            let trial = t.trial.unwrap_or(0);
            match t.status {
                RowStatus::Ok => folder.rows.push(folder.history_row(t, trial)),
                RowStatus::Failed | RowStatus::Interrupted => folder.failures.push(Failure {
                    runtime: t.runtime.clone(),
                    trial,
                    error: t.error.clone(),
                }),
                // Not a failure: the runtime cannot take part by its nature.
                RowStatus::Skipped => {}
            }
        }
        Ok(folder)
    }

    /// A run folder on disk (`compare`): meta.json and trials.csv (or summary.csv when the run
    /// had one trial), read with the types the run wrote them with.
    pub fn open(dir: &Path) -> anyhow::Result<RunFolder> {
        let meta_path = dir.join("meta.json");
        let meta: Meta = crate::os::sys::open_regular(&meta_path)
            .map_err(anyhow::Error::from)
            .and_then(|f| Ok(serde_json::from_reader(f)?))
            .map_err(|e| {
                anyhow::anyhow!(
                    "{} is not a run folder: reading {}: {e}",
                    dir.display(),
                    meta_path.display()
                )
            })?;
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
        let mut warnings = Vec::new();
        let rows = crate::results::read::summary_rows(&csv_path, &mut warnings)?;
        let capacity_path = dir.join("capacity.csv");
        let capacity = if capacity_path.exists() {
            crate::results::read::capacity_rows(&capacity_path, &mut warnings)?
        } else {
            Vec::new()
        };
        for w in warnings {
            crate::console::log(&format!("note: {w}"));
        }
        RunFolder::from_rows(dir, &meta, &rows, &capacity, source)
    }

    fn history_row(&self, t: &SummaryRow, trial: u32) -> HistoryRow {
        let mut row = HistoryRow {
            timestamp: self.started_at.clone(),
            git_commit: self.git_commit.clone(),
            runtime: t.runtime.clone(),
            runtime_version: t.runtime_version.clone(),
            trial,
            host_cpu: self.fingerprint.cpu_model.clone(),
            host_cores: self.fingerprint.cores,
            host_kernel: self.fingerprint.kernel.clone(),
            requests_per_sec: t.requests_per_sec,
            p99_us: t.p99_us,
            p50_us: t.p50_us,
            server_cpu_us_per_request: t.server_cpu_us_per_request,
            server_rss_peak_bytes: t.server_rss_peak_bytes.map(|b| b as f64),
            run_dir: self.path.display().to_string(),
            ..Default::default()
        };
        row.set_point(&t.point());
        row
    }
}

/// The machine of a run, or the first field meta.json lacks for it.
fn fingerprint(meta: &Meta) -> Result<Fingerprint, &'static str> {
    let h = &meta.host;
    if h.cpu_model.is_empty() {
        return Err("/host/cpu_model");
    }
    if h.cores == 0 {
        return Err("/host/cores");
    }
    if h.kernel.is_empty() {
        return Err("/host/kernel");
    }
    Ok(Fingerprint {
        cpu_model: h.cpu_model.clone(),
        cores: h.cores as u64,
        kernel: h.kernel.clone(),
    })
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
        let f = RunFolder::open(dir.path()).unwrap();
        assert_eq!(f.source, "summary.csv");
        assert_eq!(f.scenario, "smoke");
        assert_eq!(f.fingerprint.cpu_model, "CPU X");
        assert_eq!(f.rows.len(), 2);
        let r = &f.rows[1];
        assert_eq!(r.trial, 1);
        assert_eq!(r.requests_per_sec, Some(1010.0));
        assert_eq!(r.max_connections, 0, "an absent column is no limit");
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
        let f = RunFolder::open(dir.path()).unwrap();
        assert_eq!(f.source, "trials.csv");
        assert_eq!(f.rows.len(), 1);
        assert_eq!(f.rows[0].max_connections, 50);
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
    fn a_capacity_search_gives_one_history_row_per_search_and_no_probe_rows() {
        let dir = tempfile::tempdir().unwrap();
        write_run(dir.path(), "CPU X", &[("tokio", 0, 1000.0)]);
        std::fs::write(
            dir.path().join("capacity.csv"),
            "runtime,trial,capacity,interval_low,interval_high,slo,binding_limit,probes,note,\
             connections,payload_bytes,target_rate,server_threads,max_connections\n\
             tokio,0,9000,9000,9500,p99 <= 5ms,p99,13,,100,64,,1,0\n\
             tokio,1,8500,8500,9000,p99 <= 5ms,p99,12,,100,64,,1,0\n\
             smol,0,,,,p99 <= 5ms,,1,fails already at 1000/s,100,64,,1,0\n",
        )
        .unwrap();
        let f = RunFolder::open(dir.path()).unwrap();
        let caps: Vec<(String, u32, Option<f64>)> = f
            .rows
            .iter()
            .map(|r| (r.runtime.clone(), r.trial, r.capacity))
            .collect();
        // smol found none: nothing to judge (its searches' probes are in trials.csv).
        assert_eq!(
            caps,
            vec![
                ("tokio".into(), 0, Some(9000.0)),
                ("tokio".into(), 1, Some(8500.0))
            ]
        );
        assert!(f.rows.iter().all(|r| r.requests_per_sec.is_none()));
    }

    #[test]
    fn a_folder_without_meta_is_refused_with_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let err = RunFolder::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("is not a run folder"), "{err}");
    }
}
