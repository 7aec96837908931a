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
        let mut stamp = started.format("%Y-%m-%dT%H-%M-%SZ").to_string();
        // Two runs in one second (tests) get distinct folders.
        let mut n = 1;
        while parent.join(&stamp).exists() {
            n += 1;
            stamp = format!("{}-{n}", started.format("%Y-%m-%dT%H-%M-%SZ"));
        }
        let path = parent.join(&stamp);
        std::fs::create_dir_all(&path)
            .map_err(|e| anyhow::anyhow!("creating {}: {e}", path.display()))?;
        let tmp = parent.join(format!(".latest-{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&stamp, &tmp)?;
        std::fs::rename(&tmp, parent.join("latest"))?;
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
