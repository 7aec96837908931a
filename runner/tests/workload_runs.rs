//! `[workload]`, `skew` and `idle_connections` through whole runs on loopback with tokio (which
//! serves every part): the audit is clean where the server does the work, and names the part a
//! cheating plugin skips; skew's share is witnessed by the client's count of answers on the hot
//! connections; idle connections by the server's own accepted count. Needs the workspace built
//! (`cargo build --workspace`).

mod support;

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

type Row = HashMap<String, String>;

fn scenario(name: &str, load: &str, workload: &str) -> String {
    format!(
        "name = \"{name}\"\n[server]\ncpus = [0]\nthreads = 2\n[load]\ncpus = [1]\n\
         duration = \"1s\"\nwarmup = \"200ms\"\n{load}\n{workload}"
    )
}

/// Runs `text` against the plugin `lib` with `RUNBENCH_CHEAT` set to `cheat` (when given);
/// returns its one row.
fn run(dir: &Path, text: &str, lib: &str, cheat: Option<&str>) -> Row {
    let (code, row, log) = run_any(dir, text, lib, cheat);
    assert_eq!(code, Some(0), "{log}");
    row
}

/// [`run`] for a run that may fail: its exit code, its one row and its output.
fn run_any(dir: &Path, text: &str, lib: &str, cheat: Option<&str>) -> (Option<i32>, Row, String) {
    let _g = support::load_lock();
    let name = text
        .lines()
        .find_map(|l| l.strip_prefix("name = "))
        .unwrap()
        .trim_matches('"')
        .to_string();
    let file = support::write(dir, &format!("{name}.toml"), text);
    let out = dir.join("out");
    let mut cmd = Command::new(support::bin());
    cmd.args([
        "run",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ])
    .arg("--plugin")
    .arg(support::plugin_file(lib));
    match cheat {
        Some(c) => cmd.env("RUNBENCH_CHEAT", c),
        None => cmd.env_remove("RUNBENCH_CHEAT"),
    };
    let result = cmd.output().expect("runbench runs");
    let row = support::only_row(&out.join(&name).join("latest"));
    (result.status.code(), row, support::text(&result))
}

/// The audit's findings about the workload and the skew (the others, about the load generator
/// or the clocks, depend on what else this machine runs and are other tests' business).
fn workload_findings(row: &Row) -> Vec<&str> {
    const PARTS: [&str; 12] = [
        "requests:",
        "timers:",
        "tasks spawned:",
        "tasks joined:",
        "blocking jobs:",
        "hop messages:",
        "bytes answered:",
        "timer returned early",
        "fanout ran inline",
        "blocking work done inline",
        "skew:",
        "counted no requests' work",
    ];
    row["audit"]
        .split("; ")
        .filter(|f| PARTS.iter().any(|p| f.contains(p)))
        .collect()
}

const EVERY_PART: &str = "[workload]\nrequest_bytes = 64\nresponse_bytes = 700\n\
    cpu = { mean = \"20us\", dist = \"exp\" }\nsleep = \"200us\"\n\
    fanout = { tasks = 4, cpu = \"5us\", sleep = \"100us\" }\nblocking = \"50us\"\nhops = 2\n";

#[test]
fn a_workload_with_every_part_runs_on_tokio_with_a_clean_audit() {
    let dir = tempfile::tempdir().unwrap();
    let row = run(
        dir.path(),
        &scenario("every", "connections = 4", EVERY_PART),
        "runbench_plugin_tokio",
        None,
    );
    assert_eq!(row["status"], "ok", "{}", row["error"]);
    assert!(workload_findings(&row).is_empty(), "{}", row["audit"]);
    assert_eq!(row["mismatched_bytes"], "0");
    assert!(support::num(&row, "requests") > 200.0, "{row:?}");
    assert_eq!(
        row["workload_parts"],
        "cpu exp(20us) · sleep 200us · fanout 4×(5us, 100us) · blocking 50us · 2 hops · 700 B \
         answers"
    );
    // Not HTTP: no HTTP stack named, though the plugin has one.
    assert_eq!(row["http_stack"], "");
    // The timers' lateness is measured (a figure, not a blank), never negative.
    assert!(support::num(&row, "server_timer_late_us") >= 0.0, "{row:?}");
}

#[test]
fn the_audit_names_the_part_a_plugin_skips() {
    let dir = tempfile::tempdir().unwrap();
    let lib = "runbench_testplugin_cheat_workload";
    let fan = "[workload]\nrequest_bytes = 64\nfanout = { tasks = 4, sleep = \"200us\" }\n";
    let cases = [
        (
            "timer",
            "[workload]\nrequest_bytes = 64\nsleep = \"500us\"\n",
            "timer returned early",
        ),
        ("inline-fanout", fan, "fanout ran inline"),
        (
            "inline-blocking",
            "[workload]\nrequest_bytes = 64\nblocking = \"50us\"\n",
            "blocking work done inline",
        ),
    ];
    for (cheat, workload, finding) in cases {
        let row = run(
            dir.path(),
            &scenario(cheat, "connections = 4", workload),
            lib,
            Some(cheat),
        );
        assert!(row["audit"].contains(finding), "{cheat}: {}", row["audit"]);
        // The same workload served honestly by the same fixture: nothing to say.
        let honest = run(
            dir.path(),
            &scenario(&format!("{cheat}-honest"), "connections = 4", workload),
            lib,
            None,
        );
        let found = workload_findings(&honest);
        assert!(found.is_empty(), "{cheat} served honestly: {found:?}");
    }
}

/// A plugin that answers a byte short of what it counts (the `short-answer` cheat: its
/// `bytes_echoed` claims 1,000 bytes an answer, the client gets 999) is caught by the client,
/// the witness the server cannot write: no answer is ever complete, so the row fails with the
/// requests left pending, and the run says some runtime failed.
#[test]
fn a_plugin_that_answers_short_fails_its_row() {
    let dir = tempfile::tempdir().unwrap();
    let workload = "[workload]\nrequest_bytes = 64\nresponse_bytes = 1000\n";
    let text = scenario("short-answer", "connections = 4", workload);
    let lib = "runbench_testplugin_cheat_workload";
    let (code, row, log) = run_any(dir.path(), &text, lib, Some("short-answer"));
    assert_eq!(code, Some(1), "{log}");
    assert_eq!(row["status"], "failed", "{row:?}");
    assert!(row["error"].contains("no request completed"), "{row:?}");
    assert!(
        row["audit"].contains("pending through the whole window without an answer"),
        "{row:?}"
    );
    // Served honestly, the same workload's row is clean.
    let honest = run(
        dir.path(),
        &scenario("short-answer-honest", "connections = 4", workload),
        lib,
        None,
    );
    assert_eq!(honest["status"], "ok", "{honest:?}");
    assert_eq!(honest["mismatched_bytes"], "0");
}

#[test]
fn an_open_skew_gives_the_hot_connections_their_share() {
    let dir = tempfile::tempdir().unwrap();
    let load = "model = \"open\"\nrate = 2000\nconnections = 10\n\
                skew = { hot = 0.2, share = 0.8 }";
    let row = run(
        dir.path(),
        &scenario("skew-open", load, "[workload]\nrequest_bytes = 64\n"),
        "runbench_plugin_tokio",
        None,
    );
    assert!(workload_findings(&row).is_empty(), "{}", row["audit"]);
    let share = support::num(&row, "hot_share");
    // 2,000 answers in the window, 80% scheduled to the two hot connections; the edges move a
    // few in flight.
    assert!((share - 0.8).abs() < 0.02, "hot_share {share}");
    assert!(support::num(&row, "server_busiest_thread_share") > 0.0);
}

#[test]
fn a_closed_skew_makes_the_cold_connections_think() {
    let dir = tempfile::tempdir().unwrap();
    let load = "connections = 10\nskew = { hot = 0.2, share = 0.8 }";
    let even = run(
        dir.path(),
        &scenario(
            "even-closed",
            "connections = 10",
            "[workload]\nrequest_bytes = 64\nsleep = \"1ms\"\n",
        ),
        "runbench_plugin_tokio",
        None,
    );
    assert_eq!(even["hot_share"], "", "no skew, no share");
    let row = run(
        dir.path(),
        &scenario(
            "skew-closed",
            load,
            "[workload]\nrequest_bytes = 64\nsleep = \"1ms\"\n",
        ),
        "runbench_plugin_tokio",
        None,
    );
    assert!(workload_findings(&row).is_empty(), "{}", row["audit"]);
    // Evenly, the 2 hot connections of 10 would carry 20%.
    let share = support::num(&row, "hot_share");
    assert!((share - 0.8).abs() < 0.1, "hot_share {share}");
}

#[test]
fn idle_connections_are_accepted_before_the_load_and_priced_in_rss() {
    let dir = tempfile::tempdir().unwrap();
    let row = run(
        dir.path(),
        &scenario(
            "idle",
            "connections = 4\nidle_connections = 300",
            "[workload]\nrequest_bytes = 64\n",
        ),
        "runbench_plugin_tokio",
        None,
    );
    assert_eq!(row["status"], "ok", "{}", row["error"]);
    assert!(workload_findings(&row).is_empty(), "{}", row["audit"]);
    assert_eq!(row["idle_connections"], "300");
    // The server's own count: the idle ones and the active ones.
    assert_eq!(row["server_accepted"], "304");
    // Present, and bounded by what tokio could hold per connection (a task and its buffers).
    let per = support::num(&row, "server_rss_per_idle_connection_bytes");
    assert!(per.abs() < 1024.0 * 1024.0, "{per}");
}
