//! The run folder: created once and exclusively (two runs never share one), files replaced
//! atomically (temp file + rename), and a `latest` link that is swapped atomically too.

use crate::error::WriteError;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

/// Folders one timestamp may get (`<stamp>`, `<stamp>-2`, ...) before runbench gives up: far
/// more runs than can start in one second on one machine.
const MAX_SUFFIX: usize = 10_000;

pub struct RunDir {
    pub path: PathBuf,
    parent: PathBuf,
}

impl RunDir {
    /// `<root>/<scenario>/<UTC timestamp>/`, made exclusively. `latest` is not moved here: see
    /// [`RunDir::point_latest`].
    pub fn create(
        root: &Path,
        scenario: &str,
        started: chrono::DateTime<chrono::Utc>,
    ) -> Result<RunDir, crate::error::Error> {
        let parent = root.join(scenario);
        check_latest(&parent).map_err(crate::error::Error::input)?;
        let path = create_stamped_dir(&parent, started)?;
        Ok(RunDir { path, parent })
    }

    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<(), WriteError> {
        write_atomic(&self.path.join(name), bytes)
    }

    /// Several files replaced as one (see [`write_together`]).
    pub fn write_together(&self, files: &[(&str, &[u8])]) -> Result<(), WriteError> {
        write_together(&self.path, files)
    }

    /// Points `<root>/<scenario>/latest` here (once this run has measured something).
    pub fn point_latest(&self) -> Result<(), WriteError> {
        point_latest(&self.parent, &self.path)
    }

    /// Removes the folder when nothing could be written into it, so a failed start leaves no
    /// empty run folder behind.
    pub fn remove_if_empty(&self) {
        let _ = std::fs::remove_dir(&self.path);
    }
}

/// `path` replaced by `bytes` atomically: a reader (or a crash) sees the old file or the new
/// one. On failure the temporary file is removed and the error names `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    write_together(dir, &[(name, bytes)])
}

/// Replaces several files of `dir` as one: every temporary file is written and flushed to disk
/// first, and only when all are are they renamed into place (a rename needs no space), then the
/// folder itself is flushed so the renames survive a crash. A write that fails (disk full)
/// changes none of the files and leaves no temporary file, so the folder stays as consistent as
/// it was; the error names the file that could not be written. The one way runbench writes a
/// file: run folders, nightly reports and histories alike.
pub fn write_together(dir: &Path, files: &[(&str, &[u8])]) -> Result<(), WriteError> {
    use std::io::Write;
    let tmp = |name: &str| dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let remove_all = || {
        for (name, _) in files {
            let _ = std::fs::remove_file(tmp(name));
        }
    };
    for (name, bytes) in files {
        let written = std::fs::File::create(tmp(name))
            .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()));
        if let Err(e) = written {
            remove_all();
            return Err(WriteError::new(&dir.join(name), e));
        }
    }
    for (name, _) in files {
        if let Err(e) = std::fs::rename(tmp(name), dir.join(name)) {
            remove_all();
            return Err(WriteError::new(&dir.join(name), e));
        }
    }
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// A new folder `<parent>/<UTC timestamp>` (`-2`, `-3`, ... when that exists). `create_dir`
/// fails if the folder exists, so of two runs starting at once each gets its own.
pub fn create_stamped_dir(
    parent: &Path,
    started: chrono::DateTime<chrono::Utc>,
) -> Result<PathBuf, WriteError> {
    std::fs::create_dir_all(parent).map_err(|e| WriteError::new(parent, e))?;
    let base = started.format("%Y-%m-%dT%H-%M-%SZ").to_string();
    for n in 1..=MAX_SUFFIX {
        let path = match n {
            1 => parent.join(&base),
            n => parent.join(format!("{base}-{n}")),
        };
        match std::fs::create_dir(&path) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(WriteError::new(&path, e)),
        }
    }
    Err(WriteError::new(
        &parent.join(&base),
        std::io::Error::other(format!("{MAX_SUFFIX} folders of this second exist already")),
    ))
}

/// Refuses a `latest` that is not runbench's link (a real folder or file someone put there):
/// it could not be replaced, and the run would otherwise fail only after measuring.
fn check_latest(parent: &Path) -> anyhow::Result<()> {
    let latest = parent.join("latest");
    match std::fs::symlink_metadata(&latest) {
        Ok(m) if !m.file_type().is_symlink() => anyhow::bail!(
            "{} is a {}, not the link runbench keeps to the newest run; move it away (or rename \
             it) and run again",
            latest.display(),
            if m.is_dir() { "folder" } else { "file" }
        ),
        _ => Ok(()),
    }
}

/// Points `<parent>/latest` at `dir` (a child of `parent`), replacing the link atomically.
pub fn point_latest(parent: &Path, dir: &Path) -> Result<(), WriteError> {
    let name = dir.file_name().expect("a stamped folder has a name");
    let tmp = parent.join(format!(".latest-{}", std::process::id()));
    let latest = parent.join("latest");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(name, &tmp)
        .and_then(|()| std::fs::rename(&tmp, &latest))
        .map_err(|reason| {
            let _ = std::fs::remove_file(&tmp);
            WriteError::new(&latest, reason)
        })
}

/// Where the named baselines of a scenario's runs are: `<root>/<scenario>/baselines/`, beside
/// the runs, each a link to a run folder (criterion's `--save-baseline`, kept as links so a
/// baseline is a run folder that can be plotted and compared like any other).
pub const BASELINES: &str = "baselines";

/// A baseline's name: letters, digits, `-`, `_` and `.` (not starting with `.`), at most 64.
pub fn baseline_name(name: &str) -> Result<String, String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(name.to_string())
    } else {
        Err(format!(
            "{name:?} is not a baseline name: use 1 to 64 letters, digits, '-', '_' or '.', \
             not starting with '.'"
        ))
    }
}

/// Names run folder `dir` (`<root>/<scenario>/<time>`) baseline `name` of its scenario,
/// replacing an earlier baseline of that name atomically. Returns the link.
pub fn save_baseline(dir: &Path, name: &str) -> Result<PathBuf, WriteError> {
    let parent = dir.parent().expect("a run folder has a scenario folder");
    let folder = parent.join(BASELINES);
    let link = folder.join(name);
    std::fs::create_dir_all(&folder).map_err(|e| WriteError::new(&folder, e))?;
    let target = Path::new("..").join(dir.file_name().expect("a stamped folder has a name"));
    let tmp = folder.join(format!(".{name}-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&target, &tmp)
        .and_then(|()| std::fs::rename(&tmp, &link))
        .map_err(|reason| {
            let _ = std::fs::remove_file(&tmp);
            WriteError::new(&link, reason)
        })?;
    Ok(link)
}

/// The run folder saved as baseline `name` beside run folder `run` (of the same scenario), or
/// why there is none.
pub fn find_baseline(run: &Path, name: &str) -> Result<PathBuf, String> {
    let scenario = run
        .canonicalize()
        .map_err(|e| format!("{}: {e}", run.display()))?
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("{} is not a run folder", run.display()))?;
    let link = scenario.join(BASELINES).join(name);
    match link.canonicalize() {
        Ok(dir) => Ok(dir),
        Err(_) if std::fs::symlink_metadata(&link).is_ok() => Err(format!(
            "baseline {name:?} ({}) points at a run folder that is gone; save it again with \
             `run --save-baseline {name}`",
            link.display()
        )),
        Err(_) => Err(format!(
            "no baseline {name:?} for {} (looked for {}); save one with `run ... \
             --save-baseline {name}`",
            scenario.display(),
            link.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_baseline_is_found_beside_later_runs_and_replaced_by_name() {
        let root = tempfile::tempdir().unwrap();
        let scenario = root.path().join("smoke");
        let (a, b) = (
            scenario.join("2026-01-01T00-00-00Z"),
            scenario.join("2026-01-02T00-00-00Z"),
        );
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        let e = find_baseline(&b, "main").unwrap_err();
        assert!(
            e.contains("no baseline \"main\"") && e.contains("--save-baseline main"),
            "{e}"
        );
        save_baseline(&a, "main").unwrap();
        assert_eq!(
            find_baseline(&b, "main").unwrap(),
            a.canonicalize().unwrap()
        );
        save_baseline(&b, "main").unwrap();
        assert_eq!(
            find_baseline(&a, "main").unwrap(),
            b.canonicalize().unwrap()
        );
        std::fs::remove_dir(&b).unwrap();
        let e = find_baseline(&a, "main").unwrap_err();
        assert!(e.contains("is gone"), "{e}");
        assert!(baseline_name("nightly-2026.12").is_ok());
        for bad in ["", ".hidden", "a/b", "a b", &"x".repeat(65)] {
            assert!(baseline_name(bad).is_err(), "{bad:?}");
        }
    }

    /// Many runs starting in the same second, at the same moment: each gets a folder of its own.
    #[test]
    fn concurrent_runs_in_one_second_get_distinct_folders() {
        let root = tempfile::tempdir().unwrap();
        let started = chrono::Utc::now();
        for round in 0..200 {
            let parent = root.path().join(format!("round{round}"));
            let barrier = std::sync::Barrier::new(8);
            let mut paths: Vec<PathBuf> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..8)
                    .map(|_| {
                        s.spawn(|| {
                            barrier.wait();
                            create_stamped_dir(&parent, started).unwrap()
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            paths.sort();
            paths.dedup();
            assert_eq!(paths.len(), 8, "round {round}: folders shared: {paths:?}");
        }
    }

    #[test]
    fn a_real_latest_folder_is_refused_before_any_run_folder_is_made() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("s/latest")).unwrap();
        let err = RunDir::create(root.path(), "s", chrono::Utc::now())
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains("s/latest is a folder, not the link"), "{err}");
        let entries: Vec<_> = std::fs::read_dir(root.path().join("s")).unwrap().collect();
        assert_eq!(entries.len(), 1, "only `latest` itself");
    }

    /// One file of a batch cannot be written: none of them changes.
    #[test]
    fn files_written_together_change_all_or_none() {
        let dir = tempfile::tempdir().unwrap();
        write_together(dir.path(), &[("a.csv", b"old a"), ("b.csv", b"old b")]).unwrap();
        // A folder named like the temporary file of `b.csv` makes its write fail.
        let blocker = dir
            .path()
            .join(format!(".b.csv.tmp-{}", std::process::id()));
        std::fs::create_dir(&blocker).unwrap();
        let err =
            write_together(dir.path(), &[("a.csv", b"new a"), ("b.csv", b"new b")]).unwrap_err();
        assert_eq!(err.path, dir.path().join("b.csv"));
        std::fs::remove_dir(&blocker).unwrap();
        assert_eq!(std::fs::read(dir.path().join("a.csv")).unwrap(), b"old a");
        assert_eq!(std::fs::read(dir.path().join("b.csv")).unwrap(), b"old b");
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["a.csv", "b.csv"], "no temporary file left");
    }

    #[test]
    fn a_failed_write_names_the_file_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        // A folder where the file should go: rename fails after the temporary file is written.
        let target = dir.path().join("summary.csv");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("keep"), "x").unwrap();
        let err = write_atomic(&target, b"a,b\n").unwrap_err();
        assert_eq!(err.path, target);
        assert!(err.to_string().contains("summary.csv"), "{err}");
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["summary.csv".to_string()]);
    }
}
