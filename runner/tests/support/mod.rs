//! Shared helpers for runbench's integration tests: the built binary, its plugins, temp dirs,
//! and a lock so tests that put load on the (two) CPUs do not overlap and disturb each other.

#![allow(dead_code)]

pub mod proc;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
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

/// The plugin library of `runtime` (`tokio-per-core` -> `librunbench_plugin_tokio_per_core.so`).
pub fn runtime_plugin(runtime: &str) -> PathBuf {
    plugin_file(&format!("runbench_plugin_{}", runtime.replace('-', "_")))
}

/// A free port for a daemon a test starts to listen on (on every address, as slurmd does), taken
/// below the kernel's ephemeral range: a port the kernel hands out for `bind(0)` is one it may
/// also give any outgoing connection before the daemon binds it (slurmd once failed so in CI).
/// Each call in a process returns a different port; the start depends on the process id, so
/// test binaries running side by side seldom probe the same ones.
pub fn listen_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let low = ephemeral_low().clamp(2048, 65535) as u32;
    let first = 1024u32.max(low / 2);
    let span = low - first;
    let start = std::process::id() * 37 % span;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        assert!(n < span, "no free port below {low}");
        let port = (first + (start + n) % span) as u16;
        if std::net::TcpListener::bind(("0.0.0.0", port)).is_ok() {
            return port;
        }
    }
}

/// The first port of the kernel's ephemeral range (32768 where it cannot be read).
fn ephemeral_low() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768)
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

/// The stamped run folders under `<out>/<scenario>` (not `latest`), sorted.
pub fn run_folders(scenario_dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(scenario_dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", scenario_dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().is_some_and(|n| n != "latest") && p.is_dir())
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .collect();
    found.sort();
    found
}

/// The one run folder under `<out>/<scenario>`.
pub fn only_run_folder(scenario_dir: &Path) -> PathBuf {
    let mut found = run_folders(scenario_dir);
    assert_eq!(found.len(), 1, "{found:?}");
    found.remove(0)
}

/// Temporary files (`.<name>.tmp-<pid>`, `.latest-<pid>`) left in `dir`.
pub fn temporary_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect()
}

/// Waits for `child` at most `limit`; kills it (and fails) past that.
pub fn wait_with_limit(
    child: &mut std::process::Child,
    limit: std::time::Duration,
) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("runbench did not exit within {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Runs `cmd` to its end within `limit` (killed and failed past it), with its output.
pub fn output_within(cmd: &mut Command, limit: std::time::Duration) -> Output {
    use std::io::Read;
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("runbench starts");
    // Read both pipes while waiting, so a chatty child cannot block on a full pipe.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let status = wait_with_limit(&mut child, limit);
    Output {
        status,
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
    }
}

/// A resource limit for a command's process (set between fork and exec).
#[derive(Clone, Copy)]
pub enum Limit {
    /// RLIMIT_AS: an allocation without bound fails fast instead of exhausting the machine.
    Memory(u64),
    /// RLIMIT_FSIZE: a write past this size fails with EFBIG (SIGXFSZ ignored), a full disk for
    /// one file without root or a small filesystem.
    FileSize(u64),
}

pub fn limit(cmd: &mut Command, limit: Limit) {
    use std::os::unix::process::CommandExt;
    // SAFETY: signal and setrlimit are async-signal-safe and allocate nothing.
    unsafe {
        cmd.pre_exec(move || {
            let (resource, bytes) = match limit {
                Limit::Memory(b) => (libc::RLIMIT_AS, b),
                Limit::FileSize(b) => {
                    libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                    (libc::RLIMIT_FSIZE, b)
                }
            };
            let lim = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            if libc::setrlimit(resource, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// A server that ignored the stop signal was killed at grace + the runner's 2 s margin (not
/// left running) and its row says so.
pub fn assert_killed_as_overrun(row: &std::collections::HashMap<String, String>) {
    assert!(
        row["error"].contains("shutdown overrun"),
        "{}",
        row["error"]
    );
    assert_eq!(row["shutdown_overrun"], "true");
    // The scenarios of these tests have a grace of 1 s.
    let shutdown = num(row, "shutdown_ms");
    assert!(
        (3000.0..6000.0).contains(&shutdown),
        "shutdown_ms {shutdown}"
    );
}

/// A run folder's meta.json.
pub fn read_meta(run: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(run.join("meta.json"))
        .unwrap_or_else(|e| panic!("{}/meta.json: {e}", run.display()));
    serde_json::from_str(&text).expect("meta.json whole")
}

/// A run across machines' scenario of a few seconds: 8 connections to the epoll plugin (the
/// cluster and container tests').
pub fn cluster_scenario(dir: &Path, duration_s: u32) -> PathBuf {
    write(
        dir,
        &format!("cluster-{duration_s}.toml"),
        &format!(
            r#"name = "cluster"
runtimes = ["epoll"]
[server]
threads = 1
cpus = [0]
[load]
connections = 8
payload_bytes = 64
warmup = "1s"
duration = "{duration_s}s"
cpus = [1]
[shutdown]
grace = "1s"
"#
        ),
    )
}

/// `field=<number>` in a log line (the controller's `load process ... requests=N` lines).
pub fn log_num(line: &str, field: &str) -> u64 {
    let at = line
        .find(&format!("{field}="))
        .unwrap_or_else(|| panic!("no {field} in {line}"))
        + field.len()
        + 1;
    line[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}
