//! Where plugins live: `librunbench_plugin_<name>.so` next to the runbench binary (cargo puts
//! every workspace cdylib there). Nothing is loaded from anywhere else unless named explicitly.

use std::path::{Path, PathBuf};

const PREFIX: &str = "librunbench_plugin_";
const SUFFIX: &str = ".so";

/// A plugin library file and the name its file implies.
#[derive(Clone, Debug)]
pub struct PluginFile {
    /// From the file name, with `_` as `-` (`tokio-per-core`); the header's name must match.
    pub name: String,
    pub path: PathBuf,
}

/// The directory of the running binary.
pub fn plugin_dir() -> std::io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    Ok(exe.parent().map(Path::to_path_buf).unwrap_or_default())
}

/// Every plugin file in `dir`, sorted by name.
pub fn discover(dir: &Path) -> std::io::Result<Vec<PluginFile>> {
    let mut found = Vec::new();
    // The folder is named in the error: "No such file or directory" alone does not say which.
    let in_dir = |e: std::io::Error| {
        std::io::Error::new(e.kind(), format!("plugin folder {}: {e}", dir.display()))
    };
    for entry in std::fs::read_dir(dir).map_err(in_dir)? {
        let path = entry.map_err(in_dir)?.path();
        let Some(file) = path.file_name().and_then(|f| f.to_str()) else {
            continue;
        };
        if let Some(stem) = file
            .strip_prefix(PREFIX)
            .and_then(|f| f.strip_suffix(SUFFIX))
        {
            found.push(PluginFile {
                name: stem.replace('_', "-"),
                path,
            });
        }
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}
