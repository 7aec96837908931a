//! Shared helpers for runbench's integration tests: the built binary, its plugins, temp dirs,
//! and a lock so tests that put load on the (two) CPUs do not overlap and disturb each other.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_runbench"))
}

/// Where cargo put the plugins of this build (next to the binary).
pub fn target_dir() -> PathBuf {
    bin().parent().expect("binary has a folder").to_path_buf()
}

/// A library built by this workspace, e.g. `plugin_file("runbench_plugin_tokio")`. Fails with a
/// hint when it was not built (run `cargo build --workspace`, as `just test` does).
pub fn plugin_file(lib_name: &str) -> PathBuf {
    let path = target_dir().join(format!("lib{lib_name}.so"));
    assert!(
        path.exists(),
        "{} is missing: build the workspace first (`cargo build --workspace`, or `just test`)",
        path.display()
    );
    path
}

static LOAD: Mutex<()> = Mutex::new(());

/// Serialises tests that generate load within this test binary.
pub fn load_lock() -> MutexGuard<'static, ()> {
    LOAD.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn runbench(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .output()
        .expect("runbench runs")
}

pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write test file");
    p
}

/// Rows of a CSV file as maps from column to value.
pub fn csv_rows(path: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let mut r =
        csv::Reader::from_path(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    r.deserialize().map(|row| row.expect("csv row")).collect()
}

pub fn num(row: &std::collections::HashMap<String, String>, col: &str) -> f64 {
    row.get(col)
        .unwrap_or_else(|| panic!("no column {col}"))
        .parse()
        .unwrap_or_else(|e| panic!("column {col} = {:?}: {e}", row[col]))
}

pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
