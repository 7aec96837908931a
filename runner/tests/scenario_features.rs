//! The scenario language measured for real: phase ramps, shutdown during load, the server-side
//! connection limit, connection churn and external targets.

mod support;

use support::*;

#[test]
fn phases_reach_their_connection_targets_within_one_percent() {
    let _g = load_lock();
    let dir = tempfile::tempdir().unwrap();
    let run = run_scenario(
        dir.path(),
        r#"name = "phases"
[load]
connections = 0
payload_bytes = 64
allow_shared_cpus = true
[[load.phases]]
duration = "1s"
connections = 200
[[load.phases]]
duration = "1s"
connections = 200
[[load.phases]]
duration = "500ms"
connections = 50
[[load.phases]]
duration = "1s"
connections = 50
[run]
interval = "500ms"
"#,
        Some("runbench_plugin_tokio"),
    );
    let row = only_row(&run);
    assert_eq!(row["status"], "ok", "{}", row["error"]);
    let timeline = csv_rows(&run.join("timeline.csv"));
    let at = |t: f64| {
        timeline
            .iter()
            .find(|r| (num(r, "t_s") - t).abs() < 1e-6)
            .unwrap_or_else(|| panic!("no interval ending at {t}s"))
    };
    for (t, want) in [(1.5, 200.0), (2.0, 200.0), (3.0, 50.0), (3.5, 50.0)] {
        let got = num(at(t), "connections");
        assert!(
            (got - want).abs() <= want * 0.01,
            "at {t}s: {got} connections, wanted {want}"
        );
    }
    assert!(
        num(at(0.5), "connections") > 0.0 && num(at(0.5), "connections") < 200.0,
        "ramping up at 0.5s"
    );
}

#[test]
fn shutdown_during_load_accounts_for_every_request_in_flight() {
    let _g = load_lock();
    let dir = tempfile::tempdir().unwrap();
    let run = run_scenario(
        dir.path(),
        r#"name = "stop-during-load"
[server]
sleep = "5ms"
[load]
model = "open"
rate = 4000
connections = 50
payload_bytes = 64
warmup = "200ms"
duration = "2s"
allow_shared_cpus = true
[shutdown]
at = "1500ms"
grace = "1s"
"#,
        Some("runbench_plugin_tokio"),
    );
    let r = only_row(&run);
    assert_eq!(r["status"], "ok", "{}", r["error"]);
    let in_flight = num(&r, "in_flight_at_signal");
    assert!(in_flight > 0.0, "requests were in flight at the signal");
    assert_eq!(
        num(&r, "completed_after_signal") + num(&r, "cut_after_signal"),
        in_flight
    );
    assert_eq!(num(&r, "shutdown_at_s"), 1.5);
    assert!(num(&r, "drain_ms") <= num(&r, "shutdown_ms"));
    assert_eq!(r["shutdown_overrun"], "false");
    let closed = num(&r, "server_closed_clean")
        + num(&r, "server_cut")
        + num(&r, "server_peer_closed")
        + num(&r, "server_io_errors");
    assert_eq!(
        closed,
        num(&r, "server_accepted"),
        "every connection ended one way"
    );
}

#[test]
fn max_connections_limits_how_many_are_served_at_once() {
    let _g = load_lock();
    let dir = tempfile::tempdir().unwrap();
    let run = run_scenario(
        dir.path(),
        r#"name = "limit"
[server]
max_connections = 5
[load]
connections = 20
payload_bytes = 64
requests_per_connection = 5
warmup = "200ms"
duration = "1500ms"
allow_shared_cpus = true
"#,
        Some("runbench_plugin_tokio"),
    );
    let r = only_row(&run);
    assert_eq!(num(&r, "server_max_concurrent"), 5.0);
    assert!(num(&r, "requests") > 0.0);
    assert_eq!(num(&r, "mismatched_bytes"), 0.0);
}

#[test]
fn churn_reconnects_after_n_requests_and_counts_every_accept() {
    let _g = load_lock();
    let dir = tempfile::tempdir().unwrap();
    let run = run_scenario(
        dir.path(),
        r#"name = "churn"
[load]
connections = 10
payload_bytes = 64
requests_per_connection = 5
warmup = "200ms"
duration = "1s"
allow_shared_cpus = true
"#,
        Some("runbench_plugin_tokio"),
    );
    let r = only_row(&run);
    assert_eq!(r["status"], "ok", "{}", r["error"]);
    let reconnects = num(&r, "reconnects");
    assert!(reconnects > 0.0);
    // Every accept is a client connect; at the end, at most one reconnect per connection may
    // still be in flight (accepted by the server, not yet completed on the client).
    let accepted = num(&r, "server_accepted");
    assert!(
        (10.0 + reconnects..=20.0 + reconnects).contains(&accepted),
        "accepted {accepted}, reconnects {reconnects}"
    );
    // Every 5 requests a reconnect: the measured requests bound the reconnects from below.
    assert!(reconnects >= num(&r, "requests") / 5.0 - 10.0);
    assert!(num(&r, "connect_p50_us") > 0.0);
}

/// A tiny blocking echo server in the test process.
fn echo_server() -> std::net::SocketAddr {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn an_external_echo_server_is_measured_like_a_plugin() {
    let _g = load_lock();
    let dir = tempfile::tempdir().unwrap();
    let addr = echo_server();
    let run = run_scenario(
        dir.path(),
        &format!(
            r#"name = "external"
[target]
address = "{addr}"
name = "std-threads"
[load]
connections = 4
payload_bytes = 64
warmup = "200ms"
duration = "1s"
allow_shared_cpus = true
"#
        ),
        None,
    );
    let r = only_row(&run);
    assert_eq!(r["status"], "ok", "{}", r["error"]);
    assert_eq!(r["runtime"], "std-threads");
    assert!(num(&r, "requests") > 0.0);
    assert_eq!(num(&r, "mismatched_bytes"), 0.0);
    // A target the run did not start has no CPU or memory reading: empty, not zero.
    for col in [
        "server_cpu_user_s",
        "server_cpu_us_per_request",
        "server_cpu_life_user_s",
        "server_rss_peak_bytes",
    ] {
        assert_eq!(r[col], "", "{col}");
    }
}

#[test]
fn a_non_loopback_target_is_refused_without_allow_remote() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "remote.toml",
        "name = \"remote\"\n[target]\naddress = \"192.0.2.1:7\"\n[load]\nconnections = 1\npayload_bytes = 1\nduration = \"1s\"\n",
    );
    let out = runbench(&[
        "run",
        file.to_str().unwrap(),
        "--out",
        dir.path().join("o").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("not a loopback address") && text(&out).contains("--allow-remote"),
        "{}",
        text(&out)
    );
    assert!(!dir.path().join("o").exists(), "nothing written");
}

/// A threaded Python echo server, for targets started through a shell.
const PY_ECHO: &str = r#"
import socket, sys, threading
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1])))
srv.listen(128)
def serve(c):
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    with c:
        while True:
            d = c.recv(65536)
            if not d:
                return
            c.sendall(d)
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

/// Runs a target started as `sh -c "<shell>"` (the shell forks: `python3 echo.py PORT; true`
/// cannot be an exec) and returns its row, after checking that no process of it is left.
/// `None` (with the reason printed) when python3 is missing.
fn run_forking_target(shell: &str) -> Option<std::collections::HashMap<String, String>> {
    if std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: python3 is not installed (the forking target is a Python server)");
        return None;
    }
    let _g = load_lock();
    let dir = tempfile::tempdir().unwrap();
    let script = write(dir.path(), "echo.py", PY_ECHO);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let shell = shell
        .replace("SCRIPT", script.to_str().unwrap())
        .replace("PORT", &port.to_string());
    let scenario = write(
        dir.path(),
        "s.toml",
        &format!(
            r#"name = "forking"
[target]
address = "127.0.0.1:{port}"
command = ["sh", "-c", "{shell}"]
name = "python"
[load]
connections = 4
payload_bytes = 64
warmup = "200ms"
duration = "1s"
allow_shared_cpus = true
[shutdown]
grace = "1s"
[run]
interval = "250ms"
"#
        ),
    );
    let mut child = tagged_command(
        &[
            "run",
            scenario.to_str().unwrap(),
            "--out",
            dir.path().join("out").to_str().unwrap(),
        ],
        dir.path(),
    )
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::null())
    .spawn()
    .unwrap();
    wait_with_limit(&mut child, std::time::Duration::from_secs(60));
    let left = tagged_processes(dir.path());
    for (pid, _) in &left {
        // SAFETY: killing what this test's run left behind (its tag says so).
        unsafe { libc::kill(*pid as i32, libc::SIGKILL) };
    }
    assert!(left.is_empty(), "the target outlived the run: {left:?}");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "something still listens on the target's port"
    );
    let row = only_row(&dir.path().join("out/forking/latest"));
    let timeline = csv_rows(&dir.path().join("out/forking/latest/timeline.csv"));
    // The timeline samples the whole group: python's threads are there, not only the shell's.
    assert!(
        timeline.iter().any(|r| num(r, "server_threads") >= 5.0),
        "{timeline:?}"
    );
    Some(row)
}

/// `sh -c "python3 srv.py; true"` left python running and listening after the run (the next
/// run would measure the orphan), and its CPU and memory were the shell's.
#[test]
fn a_target_command_that_forks_is_stopped_and_measured_as_a_whole() {
    let Some(row) = run_forking_target("python3 SCRIPT PORT; true") else {
        return;
    };
    assert_eq!(row["status"], "ok", "{}", row["error"]);
    assert!(num(&row, "requests") > 0.0);
    // Python's own memory (an interpreter is several MiB; the shell alone is under 2 MiB).
    let rss = num(&row, "server_rss_peak_bytes");
    assert!(rss > 6.0 * 1024.0 * 1024.0, "{rss}");
    assert!(num(&row, "server_cpu_user_s") + num(&row, "server_cpu_sys_s") > 0.0);
}

/// A target that ignores the stop signal is killed, group and all, and fails its row, as a
/// plugin that does so does.
#[test]
fn a_target_that_ignores_the_stop_signal_fails_its_row_and_is_killed() {
    let Some(row) = run_forking_target("trap '' TERM; python3 SCRIPT PORT; true") else {
        return;
    };
    assert_eq!(row["status"], "failed", "{row:?}");
    assert_killed_as_overrun(&row);
}
