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

/// Environment variable that marks every process a test's runbench starts: children inherit
/// it, so [`tagged_processes`] finds them even after they were orphaned.
pub const TAG_VAR: &str = "RUNBENCH_TEST_TAG";

/// A runbench command whose process tree is marked with `tag` (use the test's temp dir).
pub fn tagged_command(args: &[&str], tag: &Path) -> Command {
    let mut cmd = Command::new(bin());
    cmd.args(args).env(TAG_VAR, tag);
    cmd
}

/// Live processes marked with `tag` (pid, command line), this test process excepted. Zombies
/// have no environment left and do not count: they hold no resources but a pid.
pub fn tagged_processes(tag: &Path) -> Vec<(u32, String)> {
    let wanted = format!("{TAG_VAR}={}", tag.display()).into_bytes();
    let me = std::process::id();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(env) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if env.split(|&b| b == 0).any(|var| var == wanted.as_slice()) {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            found.push((pid, cmdline.trim().to_string()));
        }
    }
    found
}

/// Waits up to `limit` for a process marked with `tag` whose command line contains `part`.
pub fn wait_for_process(tag: &Path, part: &str, limit: std::time::Duration) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if tagged_processes(tag).iter().any(|(_, c)| c.contains(part)) {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    false
}

/// Sends `signal` to a process this test started.
pub fn signal(child: &std::process::Child, signal: i32) {
    // SAFETY: signalling our own child, which has not been reaped yet.
    let r = unsafe { libc::kill(child.id() as i32, signal) };
    assert_eq!(r, 0, "kill({}, {signal})", child.id());
}

/// Runs `scenario` (name from its first line) against `plugin` (None: no --plugin, e.g. an
/// external target); returns the run folder.
pub fn run_scenario(
    dir: &std::path::Path,
    scenario: &str,
    plugin: Option<&str>,
) -> std::path::PathBuf {
    let file = write(dir, "s.toml", scenario);
    let out_dir = dir.join("out");
    let mut args = vec![
        "run".to_string(),
        file.display().to_string(),
        "--out".into(),
        out_dir.display().to_string(),
    ];
    if let Some(p) = plugin {
        args.push("--plugin".into());
        args.push(plugin_file(p).display().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = runbench(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let name = scenario
        .lines()
        .find_map(|l| l.strip_prefix("name = "))
        .unwrap()
        .trim_matches('"');
    out_dir.join(name).join("latest")
}

pub fn only_row(run: &std::path::Path) -> std::collections::HashMap<String, String> {
    let mut rows = csv_rows(&run.join("summary.csv"));
    assert_eq!(rows.len(), 1);
    rows.remove(0)
}
