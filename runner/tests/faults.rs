//! Faults a run survives. Each test runs a misbehaving test plugin next to tokio: the fault's
//! row must say what went wrong, tokio's row must be complete, the exit code must be 1, and no
//! child process may outlive the run. Then interruption (Ctrl-C, SIGTERM, SIGKILL of the
//! runner) and the serve child's own stop on stdin EOF.

mod support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};
use support::*;

const SCENARIO: &str = r#"
name = "faults"
[server]
threads = 1
cpus = [0]
[load]
connections = 20
payload_bytes = 64
warmup = "500ms"
duration = "2s"
cpus = [1]
allow_shared_cpus = true
[shutdown]
grace = "1s"
[run]
interval = "250ms"
"#;

type Row = HashMap<String, String>;

/// The rows of one run's summary.csv, by runtime.
fn summary(out_dir: &Path) -> HashMap<String, Row> {
    csv_rows(&out_dir.join("faults/latest/summary.csv"))
        .into_iter()
        .map(|r| (r["runtime"].clone(), r))
        .collect()
}

fn assert_no_children_left(tag: &Path) {
    let left = tagged_processes(tag);
    assert!(left.is_empty(), "processes outlived the run: {left:?}");
}

fn assert_complete_tokio_row(row: &Row) {
    assert_eq!(row["status"], "ok", "tokio: {}", row["error"]);
    assert!(row["error"].is_empty());
    assert!(num(row, "requests") > 0.0);
    assert_eq!(num(row, "connections_ok"), 20.0);
    assert_eq!(num(row, "mismatched_bytes"), 0.0);
    assert!(num(row, "p99_us") > 0.0);
    assert_eq!(row["shutdown_overrun"], "false");
}

/// Runs `fault` (a test plugin) and tokio; checks what every fault case shares and returns the
/// fault's row, the output and the run folder.
fn run_fault(fault: &str, extra: &[&str]) -> (Row, Output, tempfile::TempDir) {
    let _g = load_lock();
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "faults.toml", SCENARIO);
    let out_dir = dir.path().join("out");
    let fault_lib = plugin_file(&format!("runbench_testplugin_{}", fault.replace('-', "_")));
    let tokio_lib = plugin_file("runbench_plugin_tokio");
    let mut args = vec![
        "run",
        scenario.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
        "--plugin",
        fault_lib.to_str().unwrap(),
        "--plugin",
        tokio_lib.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = tagged_command(&args, dir.path()).output().unwrap();
    assert_no_children_left(dir.path());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("target 127.0.0.1"),
        "the target is announced before the run: {}",
        text(&out)
    );
    let mut rows = summary(&out_dir);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_complete_tokio_row(&rows["tokio"]);
    let row = rows.remove(fault).expect("a row for the faulty runtime");
    assert_eq!(row["status"], "failed", "{row:?}");
    assert!(!row["error"].is_empty());

    // meta.json names exactly what was loaded.
    let meta: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out_dir.join("faults/latest/meta.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(meta["status"], "complete");
    for (lib, name) in [(&fault_lib, fault), (&tokio_lib, "tokio")] {
        use sha2::Digest;
        let entry = meta["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["runtime"] == name)
            .unwrap_or_else(|| panic!("{name} in meta.json plugins"));
        assert_eq!(entry["path"], lib.to_str().unwrap());
        let digest = format!("{:x}", sha2::Sha256::digest(std::fs::read(lib).unwrap()));
        assert_eq!(entry["sha256"], digest.as_str());
    }
    (row, out, dir)
}

#[test]
fn a_panic_in_serve_is_caught_and_reported_with_its_message() {
    let (row, _, _) = run_fault("panic", &[]);
    assert!(
        row["error"].contains("panicked: deliberate panic from the panic test plugin"),
        "{}",
        row["error"]
    );
}

#[test]
fn an_aborting_server_is_reported_by_its_signal() {
    let (row, _, _) = run_fault("abort", &[]);
    assert!(row["error"].contains("SIGABRT"), "{}", row["error"]);
}

#[test]
fn a_segfaulting_server_is_reported_by_its_signal() {
    let (row, _, _) = run_fault("segfault", &[]);
    assert!(row["error"].contains("SIGSEGV"), "{}", row["error"]);
}

#[test]
fn a_server_that_never_becomes_ready_is_killed_at_the_startup_timeout() {
    let started = Instant::now();
    let (row, _, _) = run_fault("never-ready", &["--ready-timeout", "1s"]);
    assert!(
        row["error"].contains("not ready within 1s (start-up timeout); killed"),
        "{}",
        row["error"]
    );
    // One second of waiting, not the default fifteen, plus tokio's few seconds.
    assert!(
        started.elapsed() < Duration::from_secs(14),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_server_that_ignores_the_stop_signal_is_killed_and_reported_as_an_overrun() {
    let (row, _, _) = run_fault("ignore-stop", &[]);
    assert!(
        row["error"].contains("shutdown overrun"),
        "{}",
        row["error"]
    );
    assert_eq!(row["shutdown_overrun"], "true");
    // Killed at grace (1 s) + the runner's 2 s margin, not left running.
    let shutdown = num(&row, "shutdown_ms");
    assert!(
        (3000.0..6000.0).contains(&shutdown),
        "shutdown_ms {shutdown}"
    );
    // What it measured before is still there.
    assert!(num(&row, "requests") > 0.0);
}

#[test]
fn wrong_echo_bytes_are_counted_and_fail_the_row() {
    let (row, _, _) = run_fault("wrong-bytes", &[]);
    let mismatched = num(&row, "mismatched_bytes");
    assert!(mismatched > 0.0, "{row:?}");
    assert!(
        row["error"].contains("echoed bytes differed from what was sent"),
        "{}",
        row["error"]
    );
}

#[test]
fn a_steady_leak_shows_in_the_timeline_and_fails_the_row() {
    let (row, _, dir) = run_fault("leak", &[]);
    assert_eq!(row["server_rss_growing"], "true");
    // It leaks 20 MiB/s = 1200 MiB/min; debug builds and a busy machine slow the leaker down.
    let rate = num(&row, "server_rss_growth_mib_per_min");
    assert!((300.0..1500.0).contains(&rate), "{rate} MiB/min");
    assert!(
        row["error"].contains("possible memory leak"),
        "{}",
        row["error"]
    );
    let timeline = csv_rows(&dir.path().join("out/faults/latest/timeline.csv"));
    let rss = |runtime: &str| -> Vec<f64> {
        timeline
            .iter()
            .filter(|r| r["runtime"] == runtime)
            .map(|r| num(r, "server_rss_bytes"))
            .collect()
    };
    let leak = rss("leak");
    assert!(leak.len() >= 8 && leak.windows(2).filter(|w| w[1] > w[0]).count() >= leak.len() - 2);
    let tokio = summary(&dir.path().join("out"))["tokio"].clone();
    assert_eq!(tokio["server_rss_growing"], "false");
    assert!(rss("tokio").iter().all(|&b| b > 0.0));
}

/// Waits for `child` at most `limit`; kills it (and fails) past that.
fn wait_with_limit(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("runbench did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The run folder's CSV files and `latest` link, read while the run may be rewriting them:
/// each must parse whole (the csv reader refuses rows of unequal length).
fn check_files_whole(run_root: &Path) {
    let latest = run_root.join("latest");
    if std::fs::symlink_metadata(&latest).is_err() {
        return;
    }
    assert!(latest.is_dir(), "latest points at a run folder");
    for name in ["summary.csv", "timeline.csv", "percentiles.csv"] {
        let path = latest.join(name);
        if let Ok(mut r) = csv::Reader::from_path(&path) {
            for row in r.records() {
                row.unwrap_or_else(|e| panic!("{name} half-written: {e}"));
            }
        }
    }
    if let Ok(text) = std::fs::read_to_string(latest.join("meta.json")) {
        serde_json::from_str::<serde_json::Value>(&text).expect("meta.json whole");
    }
}

#[test]
fn ctrl_c_mid_run_stops_the_server_keeps_what_was_measured_and_exits_130() {
    let _g = load_lock();
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "faults.toml", SCENARIO);
    let out_dir = dir.path().join("out");
    let tokio = plugin_file("runbench_plugin_tokio");
    let stall = plugin_file("runbench_testplugin_stall");
    // In a process group of its own, as a shell runs a command, so that Ctrl-C can be sent the
    // way a terminal sends it: to the whole foreground group.
    let mut child = tagged_command(
        &[
            "run",
            scenario.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
            "--plugin",
            tokio.to_str().unwrap(),
            "--plugin",
            stall.to_str().unwrap(),
        ],
        dir.path(),
    )
    .process_group(0)
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let run_root = out_dir.join("faults");
    // The first runtime is done once summary.csv has a row; then wait for the second one's
    // load, reading the files all the while.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen_loadgen = None;
    while seen_loadgen.is_none_or(|t: Instant| t.elapsed() < Duration::from_millis(700)) {
        assert!(
            Instant::now() < deadline,
            "the run did not reach its second step"
        );
        check_files_whole(&run_root);
        let first_done = std::fs::read_to_string(run_root.join("latest/summary.csv"))
            .is_ok_and(|t| t.lines().count() == 2);
        if first_done
            && seen_loadgen.is_none()
            && tagged_processes(dir.path())
                .iter()
                .any(|(_, c)| c.contains(" loadgen "))
        {
            seen_loadgen = Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // SAFETY: signalling the process group of our own child.
    assert_eq!(unsafe { libc::kill(-(child.id() as i32), libc::SIGINT) }, 0);
    let status = wait_with_limit(&mut child, Duration::from_secs(15));
    let mut log = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut log).unwrap();
    assert_eq!(status.code(), Some(130), "{log}");
    assert_no_children_left(dir.path());
    check_files_whole(&run_root);

    let rows = csv_rows(&run_root.join("latest/summary.csv"));
    assert_eq!(rows.len(), 2, "{rows:?}");
    let done = rows
        .iter()
        .find(|r| r["status"] == "ok")
        .expect("a measured row");
    assert!(num(done, "requests") > 0.0);
    let cut = rows
        .iter()
        .find(|r| r["status"] == "interrupted")
        .expect("{rows:?}");
    assert!(
        cut["error"].contains("interrupted (SIGINT)"),
        "{}",
        cut["error"]
    );
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_root.join("latest/meta.json")).unwrap())
            .unwrap();
    assert_eq!(meta["status"], "interrupted");
    assert_eq!(meta["interrupted_by"], "SIGINT");
    assert_eq!(
        (meta["steps_done"].as_u64(), meta["steps_planned"].as_u64()),
        (Some(1), Some(2))
    );
    assert!(meta["finished_at"].is_string());
    // The interrupted server was stopped by the runner, not killed by the terminal's signal.
    assert!(
        cut["error"].contains("server stopped cleanly"),
        "{}",
        cut["error"]
    );
    let leftovers: Vec<_> = std::fs::read_dir(run_root.join("latest"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

/// Starts a one-runtime run of `plugin` and returns once its load is running.
fn start_run_under_load(plugin: &str, dir: &Path) -> std::process::Child {
    let scenario = write(dir, "faults.toml", SCENARIO);
    let lib = plugin_file(plugin);
    let child = tagged_command(
        &[
            "run",
            scenario.to_str().unwrap(),
            "--out",
            dir.join("out").to_str().unwrap(),
            "--plugin",
            lib.to_str().unwrap(),
        ],
        dir,
    )
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    assert!(
        wait_for_process(dir, " loadgen ", Duration::from_secs(20)),
        "no load generator started"
    );
    std::thread::sleep(Duration::from_millis(300));
    child
}

#[test]
fn sigterm_stops_the_run_with_exit_code_143_and_the_row_marked_interrupted() {
    let _g = load_lock();
    let dir = tempfile::tempdir().unwrap();
    let mut child = start_run_under_load("runbench_plugin_tokio", dir.path());
    signal(&child, libc::SIGTERM);
    let status = wait_with_limit(&mut child, Duration::from_secs(15));
    assert_eq!(status.code(), Some(143));
    assert_no_children_left(dir.path());
    let rows = csv_rows(&dir.path().join("out/faults/latest/summary.csv"));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["status"], "interrupted");
    assert!(rows[0]["error"].contains("SIGTERM"), "{}", rows[0]["error"]);
    let meta = std::fs::read_to_string(dir.path().join("out/faults/latest/meta.json")).unwrap();
    let meta: serde_json::Value = serde_json::from_str(&meta).unwrap();
    assert_eq!(meta["interrupted_by"], "SIGTERM");
    assert_eq!(meta["steps_done"], 0);
}

/// SIGKILL gives the runner no chance to clean up; its children must still go, even a server
/// that ignores the stop signal (which stdin EOF alone would not end) and a load generator in
/// the middle of its load.
#[test]
fn a_killed_runner_leaves_no_child_processes() {
    let _g = load_lock();
    let dir = tempfile::tempdir().unwrap();
    let mut child = start_run_under_load("runbench_testplugin_ignore_stop", dir.path());
    assert!(tagged_processes(dir.path())
        .iter()
        .any(|(_, c)| c.contains(" serve ")));
    signal(&child, libc::SIGKILL);
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    while !tagged_processes(dir.path()).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_no_children_left(dir.path());
}

/// A serve child whose runner goes away (its stdin closes) stops on its own, with a report.
#[test]
fn a_serve_child_stops_by_itself_when_its_stdin_closes() {
    let _g = load_lock();
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let spec = runbench::protocol::ServeSpec {
        plugin: plugin_file("runbench_plugin_tokio"),
        addr: format!("127.0.0.1:{port}").parse().unwrap(),
        threads: 1,
        cpus: vec![],
        max_connections: 0,
        message_bytes: 64,
        grace_ms: 1000,
        work_ns: 0,
        sleep_ns: 0,
        netns: None,
    };
    let mut child = tagged_command(
        &["serve", "--spec", &serde_json::to_string(&spec).unwrap()],
        dir.path(),
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.contains("\"ready\""));
    assert!(ready.is_some(), "the server never said it was ready");
    let held = std::net::TcpStream::connect(spec.addr).unwrap();
    let closed = Instant::now();
    drop(child.stdin.take());
    let status = wait_with_limit(&mut child, Duration::from_secs(5));
    assert_eq!(status.code(), Some(0));
    // An idle connection closes at once: no waiting for the grace period.
    assert!(
        closed.elapsed() < Duration::from_millis(900),
        "{:?}",
        closed.elapsed()
    );
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l.contains("\"report\"")), "{rest:?}");
    drop(held);
    assert_no_children_left(dir.path());
}
