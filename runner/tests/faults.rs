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
    assert_killed_as_overrun(&row);
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
    let mut child = run_command(dir.path(), &scenario, &out_dir, &[&tokio, &stall])
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
    // Interrupted is said as such, not as a failure of the runtime.
    let md = std::fs::read_to_string(run_root.join("latest/report.md")).unwrap();
    assert!(md.contains(" interrupted: interrupted (SIGINT)"), "{md}");
    assert!(!md.contains("failed: interrupted"), "{md}");
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

/// Waits for a run (of `start_run_under_load`) that `signal` stopped: its exit code, no child
/// left, and its one run folder marked interrupted by it. Returns the folder.
fn assert_stopped_by(
    child: &mut std::process::Child,
    dir: &Path,
    signal: &str,
    code: i32,
) -> std::path::PathBuf {
    let status = wait_with_limit(child, Duration::from_secs(15));
    assert_eq!(status.code(), Some(code), "{signal}");
    assert_no_children_left(dir);
    let run = only_run_folder(&dir.join("out/faults"));
    let meta = read_meta(&run);
    assert_eq!(meta["status"], "interrupted");
    assert_eq!(meta["interrupted_by"], signal);
    run
}

/// `runbench run <scenario> --out <out> --plugin <lib>...`, its processes tagged with `tag`.
fn run_command(
    tag: &Path,
    scenario: &Path,
    out: &Path,
    plugins: &[&Path],
) -> std::process::Command {
    let mut args = vec![
        "run".to_string(),
        scenario.display().to_string(),
        "--out".into(),
        out.display().to_string(),
    ];
    for p in plugins {
        args.push("--plugin".into());
        args.push(p.display().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    tagged_command(&args, tag)
}

/// Starts a one-runtime run of `plugin` and returns once its load is running.
fn start_run_under_load(plugin: &str, dir: &Path) -> std::process::Child {
    let scenario = write(dir, "faults.toml", SCENARIO);
    let lib = plugin_file(plugin);
    let child = run_command(dir, &scenario, &dir.join("out"), &[&lib])
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

/// SIGTERM, and SIGHUP (a closed terminal or ssh session, which used to kill the run with
/// meta.json still `running`), stop the run cleanly with 128 + the signal.
#[test]
fn sigterm_or_sighup_stops_the_run_with_128_plus_the_signal_and_the_row_marked_interrupted() {
    let _g = load_lock();
    for (sig, name, code) in [
        (libc::SIGTERM, "SIGTERM", 143),
        (libc::SIGHUP, "SIGHUP", 129),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut child = start_run_under_load("runbench_plugin_tokio", dir.path());
        signal(&child, sig);
        let run = assert_stopped_by(&mut child, dir.path(), name, code);
        let rows = csv_rows(&run.join("summary.csv"));
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0]["status"], "interrupted");
        assert!(rows[0]["error"].contains(name), "{}", rows[0]["error"]);
        assert_eq!(read_meta(&run)["steps_done"], 0);
        // Nothing was measured, so `latest` did not move to this run.
        assert!(std::fs::symlink_metadata(dir.path().join("out/faults/latest")).is_err());
    }
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
        grace_ms: 1000,
        workload: runbench_plugin_abi::Workload::echo(64),
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

/// The terminal itself goes away: its stderr is a pseudo-terminal whose other end is closed
/// (every later write fails with EIO) and SIGHUP arrives. The run must still stop cleanly
/// and mark its files, not die on its first log line.
#[test]
fn a_closed_terminal_does_not_kill_the_run_before_it_marks_its_files() {
    let _g = load_lock();
    let dir = tempfile::tempdir().unwrap();
    let (mut master, mut slave) = (-1, -1);
    // SAFETY: openpty fills two descriptors we then own.
    let r = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(r, 0, "openpty: {}", std::io::Error::last_os_error());
    // Not inherited by runbench: a copy of the master there would keep the terminal alive.
    // SAFETY: fcntl on a descriptor we own.
    assert_eq!(
        unsafe { libc::fcntl(master, libc::F_SETFD, libc::FD_CLOEXEC) },
        0
    );
    // SAFETY: both descriptors are ours and open.
    let (master, slave) = unsafe {
        use std::os::fd::FromRawFd;
        (
            std::fs::File::from_raw_fd(master),
            std::fs::File::from_raw_fd(slave),
        )
    };
    // The "terminal": drain what the run writes until told to hang up, then close it.
    let hang_up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let terminal = {
        let hang_up = hang_up.clone();
        std::thread::spawn(move || {
            use std::os::fd::AsRawFd;
            let mut master = master;
            let mut buf = [0u8; 4096];
            while !hang_up.load(std::sync::atomic::Ordering::SeqCst) {
                let mut pfd = libc::pollfd {
                    fd: master.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: polling one descriptor we own.
                if unsafe { libc::poll(&mut pfd, 1, 20) } > 0
                    && std::io::Read::read(&mut master, &mut buf).is_err()
                {
                    break;
                }
            }
            // Dropped here: the terminal is gone.
        })
    };
    let scenario = write(dir.path(), "faults.toml", SCENARIO);
    let lib = plugin_file("runbench_plugin_tokio");
    let mut child = run_command(dir.path(), &scenario, &dir.path().join("out"), &[&lib])
        .stderr(slave)
        .spawn()
        .unwrap();
    assert!(
        wait_for_process(dir.path(), " loadgen ", Duration::from_secs(20)),
        "no load generator started"
    );
    std::thread::sleep(Duration::from_millis(300));
    // Hang up: the terminal's other end closes, then the signal comes.
    hang_up.store(true, std::sync::atomic::Ordering::SeqCst);
    terminal.join().unwrap();
    signal(&child, libc::SIGHUP);
    assert_stopped_by(&mut child, dir.path(), "SIGHUP", 129);
}

/// The nightly had no signal handling: the run folder stayed `running`, an empty
/// nightly/<time>/ was left, nothing said what happened. Now a signal stops it like `run`
/// (130 / 143), its run folder is marked interrupted, nothing is judged and the history file
/// is byte for byte what it was.
#[test]
fn an_interrupted_nightly_judges_nothing_and_leaves_the_history_untouched() {
    let _g = load_lock();
    for (sig, code, name) in [
        (libc::SIGINT, 130, "SIGINT"),
        (libc::SIGTERM, 143, "SIGTERM"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let scenarios = dir.path().join("nightly");
        std::fs::create_dir(&scenarios).unwrap();
        write(
            &scenarios,
            "echo.toml",
            &SCENARIO.replace(
                "name = \"faults\"",
                "name = \"echo\"\nruntimes = [\"tokio\"]",
            ),
        );
        let out_dir = dir.path().join("out");
        let history = out_dir.join("history/echo.csv");
        std::fs::create_dir_all(history.parent().unwrap()).unwrap();
        let before = "timestamp,git_commit,runtime,runtime_version,connections,payload_bytes,\
            server_threads,max_connections,target_rate,trial,host_cpu,host_cores,host_kernel,\
            requests_per_sec,p99_us,p50_us,server_cpu_us_per_request,server_rss_peak_bytes,run_dir\n\
            2025-01-01T00:00:00Z,abc,tokio,1.0,20,64,1,0,,0,CPU,2,6.1,1000.0,900.0,100.0,10.0,8000000,echo/x\n";
        std::fs::write(&history, before).unwrap();
        let mut child = tagged_command(
            &[
                "nightly",
                "--scenarios",
                scenarios.to_str().unwrap(),
                "--out",
                out_dir.to_str().unwrap(),
                "--trials",
                "2",
                "--plugin-dir",
                target_dir().to_str().unwrap(),
            ],
            dir.path(),
        )
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
        assert!(
            wait_for_process(dir.path(), " loadgen ", Duration::from_secs(20)),
            "no load generator started"
        );
        std::thread::sleep(Duration::from_millis(300));
        // SAFETY: signalling the process group of our own child, as a terminal would.
        assert_eq!(unsafe { libc::kill(-(child.id() as i32), sig) }, 0);
        let status = wait_with_limit(&mut child, Duration::from_secs(15));
        let mut log = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut log).unwrap();
        assert_eq!(status.code(), Some(code), "{log}");
        assert_no_children_left(dir.path());
        assert_eq!(
            std::fs::read_to_string(&history).unwrap(),
            before,
            "history changed"
        );
        let run = only_run_folder(&out_dir.join("echo"));
        let meta = read_meta(&run);
        assert_eq!(meta["status"], "interrupted", "{name}");
        assert_eq!(meta["interrupted_by"], name);
        let night = only_run_folder(&out_dir.join("nightly"));
        let md = std::fs::read_to_string(night.join("nightly.md")).unwrap();
        assert!(
            md.contains(&format!(
                "**Interrupted by {name}** after 0 of 1 scenario(s)"
            )),
            "{md}"
        );
        assert!(md.contains("no history file was changed"), "{md}");
        assert!(
            !night.join("verdicts.csv").exists(),
            "verdicts from a partial night"
        );
        assert!(
            std::fs::symlink_metadata(out_dir.join("nightly/latest")).is_err(),
            "nightly/latest moved to a partial night"
        );
    }
}

/// A write that fails after measuring exited 2 ("bad input; nothing was run"), printed no table
/// and left temporary files. Now: exit 4, the message names the file, the table of what was
/// measured is printed, no temporary file is left, the CSV files hold the measurement and
/// meta.json says `write_failed`. Files of 48 KB fit, the plots (about 100 KB) do not.
#[test]
fn a_write_that_fails_after_measuring_exits_4_naming_the_file_and_keeps_the_results() {
    let _g = load_lock();
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "faults.toml", SCENARIO);
    let out_dir = dir.path().join("out");
    let lib = plugin_file("runbench_plugin_tokio");
    let mut cmd = run_command(dir.path(), &scenario, &out_dir, &[&lib]);
    limit(&mut cmd, Limit::FileSize(48 * 1024));
    let out = output_within(&mut cmd, Duration::from_secs(60));
    let log = text(&out);
    assert_eq!(out.status.code(), Some(4), "{log}");
    assert_no_children_left(dir.path());
    let run = only_run_folder(&out_dir.join("faults"));
    assert!(
        log.contains(&format!("error: could not write {}/", run.display()))
            && log.contains(".png: File too large"),
        "{log}"
    );
    // The table of what was measured is on the terminal.
    assert!(
        log.lines()
            .any(|l| l.trim_start().starts_with("tokio") && table_status_ok(l)),
        "{log}"
    );
    assert!(
        temporary_files(&run).is_empty(),
        "{:?}",
        temporary_files(&run)
    );
    let rows = csv_rows(&run.join("summary.csv"));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["status"], "ok");
    assert!(num(&rows[0], "requests") > 0.0);
    let meta = read_meta(&run);
    assert_eq!(meta["status"], "write_failed");
    assert!(
        meta["write_error"]
            .as_str()
            .unwrap()
            .contains(".png: File too large"),
        "{meta}"
    );
    assert_eq!(meta["steps_done"], 1);
    // Something was measured: `latest` points here.
    assert_eq!(
        std::fs::canonicalize(out_dir.join("faults/latest")).unwrap(),
        std::fs::canonicalize(&run).unwrap()
    );

    // So small that not even meta.json fits: exit 4 before measuring, and no empty run folder.
    let mut cmd = run_command(dir.path(), &scenario, &dir.path().join("out2"), &[&lib]);
    limit(&mut cmd, Limit::FileSize(512));
    let out = output_within(&mut cmd, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(
        text(&out).contains("meta.json: File too large"),
        "{}",
        text(&out)
    );
    assert!(run_folders(&dir.path().join("out2/faults")).is_empty());
}

/// A final-table line whose status is ok (an audit note may follow it: on a busy machine the
/// audit rightly says the load generator waited for a CPU).
fn table_status_ok(line: &str) -> bool {
    line.split_whitespace().any(|w| w == "ok" || w == "ok;")
}

/// A plan over an hour says how long it will take, and how to stop it, before it starts.
#[test]
fn a_plan_over_an_hour_prints_its_estimate_before_it_starts() {
    let _g = load_lock();
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(
        dir.path(),
        "faults.toml",
        &SCENARIO.replace("duration = \"2s\"", "duration = \"2h\""),
    );
    let lib = plugin_file("runbench_plugin_tokio");
    let mut child = run_command(dir.path(), &scenario, &dir.path().join("out"), &[&lib])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref().map_while(Result::ok) {
        let starting = line.contains("[tokio] starting");
        seen.push(line);
        if starting {
            break;
        }
    }
    signal(&child, libc::SIGTERM);
    let status = wait_with_limit(&mut child, Duration::from_secs(15));
    assert_eq!(status.code(), Some(143), "{seen:?}");
    let plan = seen
        .iter()
        .position(|l| l.starts_with("plan: 1 measurement(s), estimated 2h"))
        .unwrap_or_else(|| panic!("no estimate line: {seen:?}"));
    assert!(
        seen[plan].contains("Ctrl-C stops it and keeps what was measured"),
        "{seen:?}"
    );
    assert!(
        plan < seen.len() - 1,
        "the estimate comes before the first step: {seen:?}"
    );
    assert_no_children_left(dir.path());
}

/// Two runs started in the same second shared one folder and one summary was lost. Each now
/// gets its own folder with its own rows.
#[test]
fn two_runs_started_together_keep_separate_folders() {
    let _g = load_lock();
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(
        dir.path(),
        "faults.toml",
        &SCENARIO.replace("duration = \"2s\"", "duration = \"1s\""),
    );
    let out_dir = dir.path().join("out");
    let spawn = |lib: &str| {
        let lib = plugin_file(lib);
        run_command(dir.path(), &scenario, &out_dir, &[&lib])
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut a = spawn("runbench_plugin_tokio");
    let mut b = spawn("runbench_plugin_epoll");
    for c in [&mut a, &mut b] {
        let status = wait_with_limit(c, Duration::from_secs(60));
        assert_eq!(status.code(), Some(0));
    }
    let folders = run_folders(&out_dir.join("faults"));
    assert_eq!(folders.len(), 2, "{folders:?}");
    let mut runtimes: Vec<String> = folders
        .iter()
        .flat_map(|f| csv_rows(&f.join("summary.csv")))
        .map(|r| r["runtime"].clone())
        .collect();
    runtimes.sort();
    assert_eq!(runtimes, ["epoll", "tokio"]);
    assert_no_children_left(dir.path());
}

/// A runner killed with SIGKILL during an embassy run cannot delete its network namespace. The
/// next run, of any runtime (here tokio), removes it and says so.
#[test]
fn a_namespace_left_by_a_killed_run_is_removed_by_the_next_run_of_any_runtime() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: creating a network namespace needs root");
        return;
    }
    if std::process::Command::new("ip").arg("-V").output().is_err() {
        eprintln!("skipped: iproute2's `ip` is not installed");
        return;
    }
    let _g = load_lock();
    // A pid that was a process and is no more: the namespace's owner is gone.
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    let name = format!("runbench-{pid}-0");
    let added = std::process::Command::new("ip")
        .args(["netns", "add", &name])
        .status()
        .unwrap();
    assert!(added.success(), "ip netns add {name}");
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(
        dir.path(),
        "faults.toml",
        &SCENARIO
            .replace("duration = \"2s\"", "duration = \"200ms\"")
            .replace("warmup = \"500ms\"", "warmup = \"0s\""),
    );
    let lib = plugin_file("runbench_plugin_tokio");
    let out = run_command(dir.path(), &scenario, &dir.path().join("out"), &[&lib])
        .output()
        .unwrap();
    let still_there = Path::new("/run/netns").join(&name).exists();
    if still_there {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &name])
            .status();
    }
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!still_there, "{name} was not removed:\n{}", text(&out));
    assert!(
        text(&out).contains(&format!(
            "removed network namespace {name}: left by runbench process {pid}, which is gone"
        )),
        "{}",
        text(&out)
    );
}

/// A write that fails between two measurements: every file stays as it was after the first
/// (the second step's files are replaced together or not at all), the run stops with exit 4,
/// and the second measurement is still shown in the table. The failure is made by a folder
/// where the second step's temporary latency.hlog would go.
#[test]
fn a_write_failing_mid_run_leaves_every_file_as_after_the_last_complete_step() {
    let _g = load_lock();
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "faults.toml", SCENARIO);
    let out_dir = dir.path().join("out");
    let tokio = plugin_file("runbench_plugin_tokio");
    let epoll = plugin_file("runbench_plugin_epoll");
    let child = run_command(dir.path(), &scenario, &out_dir, &[&tokio, &epoll])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let root = out_dir.join("faults");
    let deadline = Instant::now() + Duration::from_secs(30);
    let run = loop {
        assert!(Instant::now() < deadline, "the first step did not finish");
        let done = std::fs::read_to_string(root.join("latest/summary.csv"))
            .is_ok_and(|t| t.lines().count() == 2);
        if done {
            break std::fs::canonicalize(root.join("latest")).unwrap();
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let before: Vec<(String, Vec<u8>)> = ["summary.csv", "latency.hlog", "meta.json"]
        .iter()
        .map(|f| (f.to_string(), std::fs::read(run.join(f)).unwrap()))
        .collect();
    let blocker = run.join(format!(".latency.hlog.tmp-{pid}"));
    std::fs::create_dir(&blocker).unwrap();
    let mut child = child;
    let status = wait_with_limit(&mut child, Duration::from_secs(30));
    let (mut log, mut table) = (String::new(), String::new());
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut log).unwrap();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut table).unwrap();
    assert_eq!(status.code(), Some(4), "{log}");
    assert!(
        log.contains(&format!(
            "error: could not write {}",
            run.join("latency.hlog").display()
        )),
        "{log}"
    );
    std::fs::remove_dir(&blocker).unwrap();
    assert!(
        temporary_files(&run).is_empty(),
        "{:?}",
        temporary_files(&run)
    );
    // The CSV files and the histogram log are those of the first step.
    for (f, bytes) in &before[..2] {
        assert_eq!(&std::fs::read(run.join(f)).unwrap(), bytes, "{f} changed");
    }
    let meta = read_meta(&run);
    assert_eq!(meta["status"], "write_failed");
    assert_eq!(meta["steps_done"], 1);
    // Both measurements are in the final table (on stdout).
    for runtime in ["tokio", "epoll"] {
        assert!(
            table
                .lines()
                .any(|l| l.trim_start().starts_with(runtime) && table_status_ok(l)),
            "{runtime}: {table}\n{log}"
        );
    }
    assert_no_children_left(dir.path());
}
