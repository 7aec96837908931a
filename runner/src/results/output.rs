//! The run folder: created once, files replaced atomically (temp file + rename), and a
//! `latest` link that is swapped atomically too.

use std::path::{Path, PathBuf};

pub struct RunDir {
    pub path: PathBuf,
}

impl RunDir {
    /// `<root>/<scenario>/<UTC timestamp>/`, and `<root>/<scenario>/latest` pointing at it.
    pub fn create(
        root: &Path,
        scenario: &str,
        started: chrono::DateTime<chrono::Utc>,
    ) -> anyhow::Result<RunDir> {
        let parent = root.join(scenario);
        let path = create_stamped_dir(&parent, started)?;
        point_latest(&parent, &path)?;
        Ok(RunDir { path })
    }

    pub fn write(&self, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
        write_atomic(&self.path.join(name), bytes)
    }
}

pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| anyhow::anyhow!("writing {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .map_err(|e| anyhow::anyhow!("replacing {}: {e}", path.display()))?;
    Ok(())
}

/// A new folder `<parent>/<UTC timestamp>` (with `-2`, `-3`, ... when two start in one second).
pub fn create_stamped_dir(
    parent: &Path,
    started: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<PathBuf> {
    let base = started.format("%Y-%m-%dT%H-%M-%SZ").to_string();
    let mut path = parent.join(&base);
    let mut n = 1;
    while path.exists() {
        n += 1;
        path = parent.join(format!("{base}-{n}"));
    }
    std::fs::create_dir_all(&path)
        .map_err(|e| anyhow::anyhow!("creating {}: {e}", path.display()))?;
    Ok(path)
}

/// Points `<parent>/latest` at `dir` (a child of `parent`), replacing the link atomically.
pub fn point_latest(parent: &Path, dir: &Path) -> anyhow::Result<()> {
    let name = dir.file_name().expect("a stamped folder has a name");
    let tmp = parent.join(format!(".latest-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(name, &tmp)?;
    std::fs::rename(&tmp, parent.join("latest"))?;
    Ok(())
}
