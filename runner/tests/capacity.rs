//! `[slo]` thresholds and the capacity search, against servers whose capacity is known: a
//! tokio server doing 100 µs of CPU work per request on one thread cannot exceed ~10,000/s.

mod support;

use std::collections::HashMap;
use support::*;

type Row = HashMap<String, String>;

const WORK_SERVER: &str = r#"
[server]
work = "100us"
[load]
connections = 50
payload_bytes = 64
warmup = "200ms"
duration = "600ms"
"#;

fn run_ok(dir: &std::path::Path, name: &str, body: &str) -> std::path::PathBuf {
    run_scenario(
        dir,
        &format!("name = \"{name}\"\nruntimes = [\"tokio\"]\n{body}"),
        None,
    )
}

fn capacity_of(run: &std::path::Path) -> Row {
    let mut rows = csv_rows(&run.join("capacity.csv"));
    assert_eq!(rows.len(), 1, "{rows:?}");
    rows.remove(0)
}

fn search(slo: &str) -> String {
    WORK_SERVER.replace("[load]", "[load]\nmodel = \"open\"")
        + &format!(
            "[slo]\n{slo}\nerrors = 0\n[search]\nrate = {{ from = 1000, max = 1000000 }}\n\
             resolution = 0.1\nconfirm = 2\n"
        )
}

#[test]
fn the_search_finds_a_known_capacity_and_a_tighter_slo_a_lower_one() {
    let _g = load_lock();
    let dir = tempfile::tempdir().unwrap();
    let closed = only_row(&run_ok(dir.path(), "closed-max", WORK_SERVER));
    let max = num(&closed, "requests_per_sec");

    let loose = run_ok(dir.path(), "loose", &search("p99 = \"50ms\""));
    let c = capacity_of(&loose);
    let (cap, hi) = (num(&c, "capacity"), num(&c, "interval_high"));
    // 100 µs of CPU per request on one thread: never more than 10,000/s. The open load may beat
    // the closed loop's maximum a little (pipelined requests share the server's syscalls), but
    // not by the tail-latency margin an SLO leaves, nor fall far below it.
    assert!(
        cap < 10_000.0 && cap >= 0.7 * max,
        "capacity {cap}/s against a closed-loop maximum of {max}/s: {c:?}"
    );
    // The bracket is within the resolution, unless the probes between its ends were
    // inconclusive (the load generator could not tell the server's limit from its own on a
    // loaded machine: "the load generator's ceiling at 4750/s (3 probes in a row
    // inconclusive)" left 4,500-5,000 on CI), which the note must then say.
    assert!(
        hi <= cap * 1.1 + 1.0 || c["note"].contains("inconclusive"),
        "the bracket is within the resolution or the note says why not: {c:?}"
    );
    // Just above this server's rate (9,815/s answered at 10,000/s) a 600 ms probe's backlog
    // grows too slowly to break p99 <= 50 ms by its end (37-40 ms); the pace check is what fails
    // it there, and p99 where the search probed further above.
    assert!(
        c["binding_limit"].contains("p99") || c["binding_limit"].contains("backlog grew"),
        "{c:?}"
    );
    // Every probe is in trials.csv: the found rate confirmed twice, the next step rechecked.
    let trials = csv_rows(&loose.join("trials.csv"));
    let at = |rate: f64, probe: &str| {
        trials
            .iter()
            .filter(|t| num(t, "target_rate") == rate && t["probe"] == probe)
            .count()
    };
    // (A noisy probe can send the search back, so a rate may be confirmed or rechecked again.)
    // A search that noisy probes sent back and forth until its probe limit ends unconfirmed,
    // as designed, and says so: "stopped after 40 probes" left 6,500-7,000 on a loaded run.
    if !c["note"].starts_with("stopped after") {
        assert!(at(cap, "confirm") >= 2, "{c:?}");
        assert!(at(hi, "recheck") >= 1, "{c:?}");
    }
    assert_eq!(trials.len(), num(&c, "probes") as usize);
    assert!(loose.join("capacity.png").exists());
    assert!(loose.join("latency-vs-rate.png").exists());
    let report = std::fs::read_to_string(loose.join("report.md")).unwrap();
    assert!(
        report.contains("## Capacity\n\nAt p99 <= 50ms, errors <= 0: tokio "),
        "{report}"
    );

    // A median limit: robust against the p99 spikes a virtual machine's idle CPUs add at low
    // rates (which would fail the search at its first rate). This server's knee is so sharp
    // that p50 <= 2 ms and p99 <= 50 ms bind within one step of the resolution (both found
    // 9,000/s in one CI run), so here the tighter limit must find no more (give or take the
    // resolution's step either search's noise can cost) and be the one that binds; that it
    // finds less where latency grows gradually is
    // `run::tests::a_tighter_objective_finds_a_lower_capacity`.
    let tight = capacity_of(&run_ok(dir.path(), "tight", &search("p50 = \"2ms\"")));
    assert!(
        num(&tight, "capacity") <= cap * 1.1,
        "p50 <= 2 ms: {tight:?}; p99 <= 50 ms: {cap}"
    );
    // The search may instead end, as designed, at a client the machine stalled (seen once here:
    // send lag p99 30 ms at 4,000/s three probes in a row); then it must say so.
    assert!(
        tight["binding_limit"].contains("p50")
            || tight["note"].contains("the load generator's ceiling"),
        "{tight:?}"
    );
}

#[test]
fn a_client_that_cannot_keep_up_ends_the_search_at_its_ceiling() {
    let _g = load_lock();
    let dir = tempfile::tempdir().unwrap();
    // The epoll server outruns this machine's load generator; no latency limit is reachable.
    let run = run_scenario(
        dir.path(),
        r#"name = "ceiling"
runtimes = ["epoll"]
[load]
model = "open"
connections = 50
payload_bytes = 64
warmup = "200ms"
duration = "500ms"
[slo]
p99 = "10s"
[search]
rate = { from = 50000, max = 100000000 }
confirm = 1
"#,
        None,
    );
    let c = capacity_of(&run);
    assert_eq!(c["interval_high"], "", "nothing failed: {c:?}");
    assert!(c["note"].contains("load generator's ceiling"), "{c:?}");
}

#[test]
fn a_row_that_breaks_a_threshold_fails_its_slo_with_its_own_exit_code() {
    let _g = load_lock();
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "s.toml",
        r#"name = "slo"
runtimes = ["tokio"]
[load]
connections = 10
payload_bytes = 64
duration = "500ms"
[slo]
p99 = "1us"
errors = 0
"#,
    );
    let out_dir = dir.path().join("out");
    let out = runbench(&[
        "run",
        file.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));
    let row = only_row(&out_dir.join("slo/latest"));
    assert_eq!(row["status"], "ok");
    assert_eq!(row["slo"], "fail");
    assert!(
        row["slo_broken"].starts_with("p99 "),
        "{}",
        row["slo_broken"]
    );
    let report = std::fs::read_to_string(out_dir.join("slo/latest/report.md")).unwrap();
    assert!(report.contains("**fail**: p99"), "{report}");

    // Within its thresholds the same run passes and exits 0.
    std::fs::write(
        &file,
        std::fs::read_to_string(&file)
            .unwrap()
            .replace("1us", "10s"),
    )
    .unwrap();
    let out = runbench(&[
        "run",
        file.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(only_row(&out_dir.join("slo/latest"))["slo"], "pass");
}
