//! The load models measured against known servers: the coordinated-omission demonstration
//! (a server that stalls 200 ms every second) and the open model's rate accuracy.

mod support;

use support::*;

fn run(
    dir: &std::path::Path,
    scenario: &str,
    plugin: &str,
) -> std::collections::HashMap<String, String> {
    let row = only_row(&run_scenario(dir, scenario, Some(plugin)));
    assert_eq!(row["status"], "ok", "{}", row["error"]);
    row
}

const CO: &str = r#"
name = "co-MODEL"
[load]
model = "MODEL"
RATE
connections = 10
payload_bytes = 64
warmup = "500ms"
duration = "4s"
allow_shared_cpus = true
"#;

/// wrwrk2's lesson: a closed load that waits for the stalled server records one slow request per
/// connection per stall and many fast ones, so its median looks healthy; an open load keeps
/// its schedule and every request due during a stall waits, so p99 shows the stall.
#[test]
fn open_load_shows_server_stalls_that_closed_load_hides() {
    let _g = load_lock();
    let dir = tempfile::tempdir().unwrap();
    let closed = run(
        dir.path(),
        &CO.replace("MODEL", "closed").replace("RATE", ""),
        "runbench_testplugin_stall",
    );
    let open = run(
        dir.path(),
        &CO.replace("MODEL", "open").replace("RATE", "rate = 2000"),
        "runbench_testplugin_stall",
    );
    assert!(
        num(&closed, "p50_us") < 10_000.0,
        "closed p50 {}",
        closed["p50_us"]
    );
    assert!(
        num(&open, "p99_us") >= 100_000.0,
        "open p99 {}",
        open["p99_us"]
    );
    assert_eq!(
        closed["send_window_us"], "",
        "a closed load has no send window"
    );
    assert_eq!(
        closed["loadgen_sends_per_batch"], "",
        "nor batches of scheduled sends"
    );
    // The uncorrected view of the same open run understates the stall.
    assert!(num(&open, "p99_uncorrected_us") < num(&open, "p99_us"));
}

/// The rate holds with every send at its time and with sends grouped into the longest window;
/// each row says which window it ran with, and a closed row has none. The window shows in the
/// batches the sends went out in: the loop sleeps at most once per window, and between its
/// sleeps it sleeps through answers, so a batch holds what 500 µs at 20,000/s schedule (10),
/// give or take the turns a connect or a full socket wakes it for.
#[test]
fn open_load_holds_its_rate_within_one_percent() {
    let _g = load_lock();
    let dir = tempfile::tempdir().unwrap();
    for (window, expect) in [("", 0.0), ("send_window = \"500us\"", 500.0)] {
        let s = format!(
            r#"
name = "rate"
[load]
model = "open"
rate = 20000
{window}
connections = 100
payload_bytes = 64
warmup = "500ms"
duration = "3s"
allow_shared_cpus = true
"#
        );
        let row = run(dir.path(), &s, "runbench_plugin_tokio");
        assert_eq!(num(&row, "send_window_us"), expect);
        let achieved = num(&row, "requests_per_sec");
        let sent = num(&row, "sent") / 3.0;
        assert!(
            (achieved - 20_000.0).abs() <= 200.0,
            "window {expect} us: achieved {achieved}/s"
        );
        assert!(
            (sent - 20_000.0).abs() <= 200.0,
            "window {expect} us: sent {sent}/s"
        );
        // A batch is counted only with a request of the window in it.
        let per_batch = num(&row, "loadgen_sends_per_batch");
        assert!(
            per_batch >= 1.0,
            "window {expect} us: {per_batch} per batch"
        );
        if expect > 0.0 {
            assert!(
                per_batch >= 4.0,
                "window {expect} us: {per_batch} per batch"
            );
        }
    }
}

/// Sending at a modest rate must be cheap: the generator sleeps until each send is due instead of
/// spinning (a CPU-time bound, not a timing check).
#[test]
fn a_low_rate_open_load_does_not_busy_wait() {
    let _g = load_lock();
    let dir = tempfile::tempdir().unwrap();
    let s = r#"
name = "low-rate"
[load]
model = "open"
rate = 1000
connections = 10
payload_bytes = 64
duration = "2s"
"#;
    let row = run(dir.path(), s, "runbench_plugin_epoll");
    // Its whole life: connecting, 2 s of load, the drain. Measured on the 2-core development
    // machine, debug build: 0.23 s of CPU, busy 0.11; a spinning generator takes a whole core.
    let cpu = num(&row, "loadgen_cpu_s");
    assert!(cpu < 0.5, "the load generator used {cpu} s of CPU in ~2 s");
    // It sleeps through answers; their latencies are right only with the kernel's stamps.
    assert_eq!(num(&row, "reads_unstamped"), 0.0);
    // At 1,000/s on 10 connections each answer has its own read, roughly; no read is counted
    // that did not bring one.
    let (reads, answers) = (num(&row, "reads"), num(&row, "requests"));
    assert!(
        reads > 0.0 && reads <= answers,
        "{reads} reads, {answers} answers"
    );
    assert!(
        num(&row, "loadgen_cpu_busy") < 0.3,
        "{}",
        row["loadgen_cpu_busy"]
    );
}
