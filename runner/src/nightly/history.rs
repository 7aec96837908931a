//! The nightly history: one CSV file per scenario, `<out>/history/<scenario>.csv`, one row per
//! runtime, scenario point and trial of every night.
//!
//! A plain CSV rather than a database: it diffs and merges in git (the workflow keeps it on a
//! branch), opens in any spreadsheet, and a night appends a few dozen rows. Appending rewrites
//! the whole file to a temporary name and renames it over the old one, so a crash or a full disk
//! leaves either the old history or the new one, never half a row; an advisory lock keeps two
//! nightly processes from losing each other's rows.

pub use crate::results::Point;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};

/// The machine a measurement comes from. Numbers from different machines (or kernels) are not
/// comparable, so a change of fingerprint starts a new baseline.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fingerprint {
    pub cpu_model: String,
    pub cores: u64,
    pub kernel: String,
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}, {} cores, kernel {}",
            self.cpu_model, self.cores, self.kernel
        )
    }
}

crate::results::point::point_columns! {
/// One trial of one runtime at one point, on one night.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HistoryRow {
    /// When the night started (RFC 3339, UTC, second precision; every row of a night shares it,
    /// so it sorts and groups as text).
    pub timestamp: String,
    pub git_commit: String,
    pub runtime: String,
    pub runtime_version: String,
    pub trial: u32,
    pub host_cpu: String,
    pub host_cores: u64,
    pub host_kernel: String,
    #[serde(default)]
    pub requests_per_sec: Option<f64>,
    #[serde(default)]
    pub p99_us: Option<f64>,
    #[serde(default)]
    pub p50_us: Option<f64>,
    #[serde(default)]
    pub server_cpu_us_per_request: Option<f64>,
    #[serde(default)]
    pub server_rss_peak_bytes: Option<f64>,
    /// A capacity search's answer (requests/s within the `[slo]`); its rows have no other metric.
    #[serde(default)]
    pub capacity: Option<f64>,
    /// The run folder the trial came from (relative to the output root), for tracing a number
    /// back to its raw files.
    #[serde(default)]
    pub run_dir: String,
}
}

impl HistoryRow {
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint {
            cpu_model: self.host_cpu.clone(),
            cores: self.host_cores,
            kernel: self.host_kernel.clone(),
        }
    }
}

/// `<out>/history/<scenario>.csv`.
pub fn path(out_root: &Path, scenario: &str) -> PathBuf {
    out_root.join("history").join(format!("{scenario}.csv"))
}

/// `<out>/history/<scenario>.verdicts.csv`: every night's verdicts as they were made, so the
/// trend plots mark past regressions without judging every past night again.
pub fn verdicts_path(out_root: &Path, scenario: &str) -> PathBuf {
    out_root
        .join("history")
        .join(format!("{scenario}.verdicts.csv"))
}

/// One verdict of one night, as stored.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VerdictRow {
    pub timestamp: String,
    pub runtime: String,
    /// [`Point::key`].
    pub point: String,
    /// [`crate::nightly::metric::Metric::column`].
    pub metric: String,
    /// `regressed`, `improved`, `unchanged`, `no-baseline`.
    pub outcome: String,
}

/// Every row of a history file; an absent file is an empty history.
pub fn read(path: &Path) -> anyhow::Result<Vec<HistoryRow>> {
    read_rows(path)
}

/// Appends rows and returns the whole history as it now is, read under the same lock (another
/// night's rows appended meanwhile are kept, and nothing is read twice).
pub fn append(path: &Path, rows: &[HistoryRow]) -> anyhow::Result<Vec<HistoryRow>> {
    append_rows(path, rows)
}

fn read_rows<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<Vec<T>> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => anyhow::bail!("reading history {}: {e}", path.display()),
    };
    let mut rows = Vec::new();
    for (i, r) in csv::Reader::from_reader(file).deserialize().enumerate() {
        let row: T = r.map_err(|e| {
            anyhow::anyhow!(
                "history {} row {} is unreadable ({e}); fix or move the file, a new one is started \
                 when it is absent",
                path.display(),
                i + 2
            )
        })?;
        rows.push(row);
    }
    Ok(rows)
}

/// Appends rows under an advisory lock: reads the file, writes old + new rows to a temporary
/// file beside it, flushes it to disk and renames it over the original. A file that cannot be
/// read is left alone and reported rather than overwritten.
pub fn append_rows<T: Serialize + serde::de::DeserializeOwned + Clone>(
    path: &Path,
    rows: &[T],
) -> anyhow::Result<Vec<T>> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("creating {}: {e}", dir.display()))?;
    let _lock = Lock::take(path)?;
    let mut all: Vec<T> = read_rows(path)?;
    all.extend_from_slice(rows);
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in &all {
        w.serialize(r)?;
    }
    let bytes = w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
    crate::results::write_atomic(path, &bytes)?;
    Ok(all)
}

/// An exclusive `flock` on `<history>.lock`, released when dropped (or when the process dies).
struct Lock(std::fs::File);

impl Lock {
    fn take(path: &Path) -> anyhow::Result<Lock> {
        use std::os::fd::AsRawFd;
        let lock_path = path.with_extension("csv.lock");
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| anyhow::anyhow!("opening {}: {e}", lock_path.display()))?;
        // SAFETY: flock on a descriptor we own; it is released when the file is closed.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            anyhow::bail!(
                "locking {}: {}",
                lock_path.display(),
                std::io::Error::last_os_error()
            );
        }
        Ok(Lock(f))
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        use std::os::fd::AsRawFd;
        // SAFETY: unlocking our own descriptor.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn row(night: &str, runtime: &str, trial: u32, rps: f64) -> HistoryRow {
        HistoryRow {
            timestamp: night.into(),
            git_commit: "abc123".into(),
            runtime: runtime.into(),
            runtime_version: "1.0".into(),
            connections: 100,
            payload_bytes: 64,
            server_threads: 1,
            trial,
            host_cpu: "Test CPU".into(),
            host_cores: 2,
            host_kernel: "6.1.0".into(),
            requests_per_sec: Some(rps),
            p99_us: Some(1000.0),
            p50_us: Some(500.0),
            server_cpu_us_per_request: Some(10.0),
            server_rss_peak_bytes: Some(8e6),
            run_dir: format!("smoke/{night}"),
            capacity: None,
            max_connections: 0,
            workload: String::new(),
            target_rate: None,
        }
    }

    #[test]
    fn append_then_read_back_keeps_every_row_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path(), "smoke");
        assert!(read(&p).unwrap().is_empty());
        let night1 = vec![row("2025-01-01T00:00:00Z", "tokio", 0, 100.0)];
        let mut night2 = vec![
            row("2025-01-02T00:00:00Z", "tokio", 0, 101.5),
            row("2025-01-02T00:00:00Z", "tokio", 1, 99.25),
        ];
        night2[1].p99_us = None; // a metric that was not measured stays absent
        night2[1].target_rate = Some(5000);
        append(&p, &night1).unwrap();
        let all = append(&p, &night2).unwrap();
        let back = read(&p).unwrap();
        assert_eq!(back, [night1, night2].concat());
        assert_eq!(all, back, "append returns the history as written");
        let leftovers: Vec<_> = std::fs::read_dir(p.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn a_history_from_an_older_version_without_optional_columns_is_readable() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("old.csv");
        std::fs::write(
            &p,
            "timestamp,git_commit,runtime,runtime_version,connections,payload_bytes,server_threads,\
             trial,host_cpu,host_cores,host_kernel,requests_per_sec\n\
             2025-01-01T00:00:00Z,abc,tokio,1.0,100,64,1,0,CPU,2,6.1,1234.5\n",
        )
        .unwrap();
        let rows = read(&p).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].requests_per_sec, Some(1234.5));
        assert_eq!(rows[0].p99_us, None);
        assert_eq!(rows[0].max_connections, 0);
    }

    #[test]
    fn an_unreadable_history_is_reported_and_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("broken.csv");
        std::fs::write(&p, "timestamp,runtime\nonly,two\n").unwrap();
        let err = append(&p, &[row("2025-01-01T00:00:00Z", "tokio", 0, 1.0)]).unwrap_err();
        assert!(err.to_string().contains("broken.csv row 2"), "{err}");
        assert_eq!(
            std::fs::read_to_string(&p).unwrap(),
            "timestamp,runtime\nonly,two\n"
        );
    }

    #[test]
    fn concurrent_appends_lose_no_rows() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path(), "smoke");
        std::thread::scope(|s| {
            for t in 0..4u32 {
                let p = &p;
                s.spawn(move || {
                    for i in 0..10 {
                        append(p, &[row("2025-01-01T00:00:00Z", "tokio", t * 100 + i, 1.0)])
                            .unwrap();
                    }
                });
            }
        });
        let mut trials: Vec<u32> = read(&p).unwrap().iter().map(|r| r.trial).collect();
        trials.sort();
        let expected: Vec<u32> = (0..4)
            .flat_map(|t| (0..10).map(move |i| t * 100 + i))
            .collect();
        assert_eq!(trials, expected);
    }
}
