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
