//! End-to-end runs of the real binary against the tokio plugin: a short smoke run, the
//! preflight refusal, and the result files.

mod support;

use support::*;

const SMOKE: &str = r#"
name = "e2e"
runtimes = ["tokio"]
[server]
threads = 1
cpus = [0]
[load]
connections = 50
payload_bytes = 64
warmup = "500ms"
duration = "2s"
cpus = [1]
allow_shared_cpus = true
[shutdown]
grace = "2s"
"#;

#[test]
fn smoke_run_against_tokio_writes_a_clean_row() {
    let _g = load_lock();
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "e2e.toml", SMOKE);
    let out_dir = dir.path().join("out");
    let (json, md) = (dir.path().join("x.json"), dir.path().join("x.md"));
    let out = runbench(&[
        "run",
        scenario.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
        "--export-json",
        json.to_str().unwrap(),
        "--export-markdown",
        md.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let run = out_dir.join("e2e/latest");
    for f in [
        "summary.json",
        "summary.csv",
        "percentiles.csv",
        "timeline.csv",
        "latency.hlog",
        "meta.json",
    ] {
        assert!(run.join(f).exists(), "{f} missing");
    }
    let rows = csv_rows(&run.join("summary.csv"));
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(r["status"], "ok", "{:?}", r["error"]);
    assert_eq!(r["runtime"], "tokio");
    assert!(!r["runtime_version"].is_empty());
    assert!(num(r, "requests") > 0.0);
    assert_eq!(num(r, "mismatched_bytes"), 0.0);
    assert_eq!(num(r, "errors"), 0.0);
    assert_eq!(num(r, "connections_ok"), 50.0);
    assert!(num(r, "p50_us") > 0.0 && num(r, "p50_us") <= num(r, "p99_us"));
    assert!(num(r, "server_rss_peak_bytes") > 0.0);
    // A clean shutdown: every connection closed by the client (the load ended first), none cut,
    // and the server gone well within its grace period.
    assert_eq!(r["shutdown_overrun"], "false");
    assert_eq!(num(r, "server_cut"), 0.0);
    assert_eq!(num(r, "server_accepted"), 50.0);
    assert!(num(r, "shutdown_ms") < 2000.0);
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("meta.json")).unwrap()).unwrap();
    assert!(meta["host"]["cores"].as_u64().unwrap() >= 1);
    assert!(meta["finished_at"].is_string());
    assert_eq!(meta["plugins"][0]["sha256"].as_str().unwrap().len(), 64);
    // meta.json lists every file the run wrote, and each is there.
    let files: Vec<&str> = meta["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    for f in [
        "summary.csv",
        "summary.json",
        "meta.json",
        "report.md",
        "throughput.png",
    ] {
        assert!(files.contains(&f), "{f} not in {files:?}");
    }
    for f in &files {
        assert!(run.join(f).exists(), "{f} listed but missing");
    }
    let timeline = csv_rows(&run.join("timeline.csv"));
    assert!(timeline.len() >= 2, "one row per second of load");
    assert!(timeline.iter().all(|t| num(t, "server_rss_bytes") > 0.0));
    // The final table is the result: on stdout (`run ... > out` keeps it), progress on stderr.
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        stdout.contains("  runtime ") && stdout.contains("tokio"),
        "stdout: {stdout}"
    );
    assert!(
        !stderr.contains("  runtime "),
        "the table is not on stderr: {stderr}"
    );
    // summary.json and the exports hold the same row as summary.csv, with its verdicts.
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["format"], 1);
    assert_eq!(summary["scenario"]["name"], "e2e");
    let row = &summary["rows"][0];
    assert_eq!(row["runtime"], "tokio");
    assert_eq!(row["status"], "ok");
    assert_eq!(row["requests"].as_f64().unwrap(), num(r, "requests"));
    assert!(row["audit"].is_string());
    let exported: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(exported[0], summary, "the export is summary.json's object");
    let md = std::fs::read_to_string(&md).unwrap();
    assert!(
        md.starts_with("## e2e\n") && md.contains("| tokio |"),
        "{md}"
    );
}

/// The command line is recorded, and so are the runtimes it chose (not the scenario's "every
/// built plugin").
#[test]
fn a_runs_command_line_and_the_runtimes_it_chose_are_recorded() {
    let _g = load_lock();
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(
        dir.path(),
        "all.toml",
        &SMOKE
            .replace("runtimes = [\"tokio\"]\n", "")
            .replace("\"2s\"\ncpus", "\"500ms\"\ncpus"),
    );
    let out_dir = dir.path().join("out");
    let out = runbench(&[
        "run",
        scenario.to_str().unwrap(),
        "--runtimes",
        "tokio",
        "--out",
        out_dir.to_str().unwrap(),
        "--save-baseline",
        "main",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // Saved as a named baseline beside the run, and found by name for a later comparison.
    let latest = out_dir.join("e2e/latest").canonicalize().unwrap();
    let saved = out_dir.join("e2e/baselines/main").canonicalize().unwrap();
    assert_eq!(saved, latest);
    let cmp = runbench(&["compare", "--baseline", "main", latest.to_str().unwrap()]);
    assert_eq!(cmp.status.code(), Some(0), "{}", text(&cmp));
    assert!(text(&cmp).contains("inconclusive"), "{}", text(&cmp));
    let missing = runbench(&["compare", "--baseline", "other", latest.to_str().unwrap()]);
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing));
    assert!(
        text(&missing).contains("--save-baseline other"),
        "{}",
        text(&missing)
    );
    let meta = read_meta(&out_dir.join("e2e/latest"));
    assert_eq!(meta["scenario"]["runtimes"], serde_json::json!(["tokio"]));
    let args: Vec<&str> = meta["command_line"]
        .as_array()
        .expect("command_line")
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(args[1..3], ["run", scenario.to_str().unwrap()], "{args:?}");
    assert!(
        args.windows(2).any(|w| w == ["--runtimes", "tokio"]),
        "{args:?}"
    );
    let report = std::fs::read_to_string(out_dir.join("e2e/latest/report.md")).unwrap();
    assert!(!report.contains("every built plugin"), "{report}");
}

#[test]
fn fifty_thousand_connections_in_one_server_process_stop_at_the_preflight_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = runbench(&[
        "run",
        concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/50k.toml"),
        "--server-processes",
        "1",
        "--out",
        dir.path().join("o").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let msg = text(&out);
    assert!(msg.contains("50000 connections"), "{msg}");
    assert!(msg.contains("--server-processes 3"), "{msg}");
    assert!(msg.contains("--connections"), "{msg}");
    assert!(!dir.path().join("o").exists(), "nothing written");
}

#[test]
fn fifty_thousand_connections_get_as_many_server_processes_as_the_open_files_limit_needs() {
    let dir = tempfile::tempdir().unwrap();
    let out = runbench(&[
        "run",
        concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios/50k.toml"),
        "--runtimes",
        "tokio,embassy",
        "--dry-run",
        "--out",
        dir.path().join("o").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let (_, hard) = runbench::os::sys::nofile_limit().unwrap();
    let want = runbench::plan::auto_processes(50_000, hard);
    let msg = text(&out);
    assert!(
        msg.contains(&format!("{want} server process(es)")),
        "processes = \"auto\" under a limit of {hard}: {msg}"
    );
}

#[test]
fn dry_run_prints_the_expanded_sweep_and_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = SMOKE
        .replace("connections = 50", "connections = [10, 20]")
        .replace("payload_bytes = 64", "payload_bytes = [64, 1024]");
    let scenario = write(dir.path(), "sweep.toml", &s);
    let out = runbench(&[
        "run",
        scenario.to_str().unwrap(),
        "--dry-run",
        "--repeat",
        "2",
        "--out",
        dir.path().join("o").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("8 step(s) = 2 trial(s) x 4 point(s) x 1 runtime(s)"),
        "{t}"
    );
    assert!(t.contains("connections=20 payload=1024B"), "{t}");
    assert!(t.contains("estimated total"), "{t}");
    assert!(!dir.path().join("o").exists());
    // The order shown is the seed's, and says how to run in it: the same seed, the same order.
    let seed = t
        .split("seed ")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .unwrap();
    assert!(t.contains(&format!("unless given `--seed {seed}`")), "{t}");
    let order = |out: &std::process::Output| -> Vec<String> {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains(". trial "))
            .map(str::to_string)
            .collect()
    };
    let again = runbench(&[
        "run",
        scenario.to_str().unwrap(),
        "--dry-run",
        "--repeat",
        "2",
        "--seed",
        seed,
    ]);
    assert_eq!(order(&again), order(&out), "{}", text(&again));
}

#[test]
fn unknown_runtime_is_bad_input_with_a_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(
        dir.path(),
        "x.toml",
        &SMOKE.replace("[\"tokio\"]", "[\"tokyo\"]"),
    );
    let out = runbench(&["validate", scenario.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("unknown runtime `tokyo` (did you mean `tokio`?)"),
        "{}",
        text(&out)
    );
    // Every unknown name, where the file says it.
    let two = write(
        dir.path(),
        "two.toml",
        &SMOKE.replace("[\"tokio\"]", "[\"tokyo\", \"smoll\"]"),
    );
    let out = runbench(&["validate", two.to_str().unwrap()]);
    let msg = text(&out);
    assert_eq!(out.status.code(), Some(2), "{msg}");
    assert!(
        msg.contains("two.toml:3:13: `runtimes`: unknown runtimes `tokyo`")
            && msg.contains("`smoll` (did you mean `smol`?)"),
        "{msg}"
    );
    // A name from the command line is the command line's, not the scenario file's.
    let fine = write(dir.path(), "fine.toml", SMOKE);
    let out = runbench(&[
        "run",
        fine.to_str().unwrap(),
        "--runtimes",
        "tokyo",
        "--dry-run",
    ]);
    let msg = text(&out);
    assert_eq!(out.status.code(), Some(2), "{msg}");
    assert!(msg.contains("--runtimes: unknown runtime `tokyo`"), "{msg}");
    assert!(!msg.contains("fine.toml"), "{msg}");
    // A plugin folder that is not there is named.
    let out = runbench(&[
        "validate",
        fine.to_str().unwrap(),
        "--plugin-dir",
        "/nonexistent-dir",
    ]);
    let msg = text(&out);
    assert_eq!(out.status.code(), Some(2), "{msg}");
    assert!(
        msg.contains("plugin folder /nonexistent-dir: No such file"),
        "{msg}"
    );
}

#[test]
fn every_shipped_scenario_validates() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| p.display().to_string())
        .collect();
    files.sort();
    assert!(!files.is_empty());
    let mut args = vec!["validate"];
    args.extend(files.iter().map(String::as_str));
    let out = runbench(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn the_committed_schemas_are_current() {
    for (args, file) in [
        (vec!["schema"], "schema.json"),
        (vec!["schema", "--summary"], "summary.schema.json"),
    ] {
        let out = runbench(&args);
        let path = format!("{}/../scenarios/{file}", env!("CARGO_MANIFEST_DIR"));
        let committed = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            committed.trim(),
            "scenarios/{file} is stale: run `cargo run -- {} > scenarios/{file}`",
            args.join(" ")
        );
    }
}

#[test]
fn new_writes_a_scenario_that_validates() {
    let dir = tempfile::tempdir().unwrap();
    let out = runbench(&["new", "mine", "--dir", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let path = dir.path().join("mine.toml");
    // Its `#:schema ./schema.json` points at a file that is there, outside the repository too.
    let first = std::fs::read_to_string(&path).unwrap();
    assert!(first.starts_with("#:schema ./schema.json"), "{first}");
    let schema = std::fs::read_to_string(dir.path().join("schema.json")).unwrap();
    assert!(
        schema.contains("\"title\": \"runbench scenario\""),
        "{schema}"
    );
    let v = runbench(&["validate", path.to_str().unwrap()]);
    assert_eq!(v.status.code(), Some(0), "{}", text(&v));
    let again = runbench(&["new", "mine", "--dir", dir.path().to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(2), "refuses to overwrite");
}

#[test]
fn plugins_with_a_wrong_abi_or_no_symbol_give_typed_errors() {
    let wrong = plugin_file("runbench_testplugin_wrong_abi");
    let none = plugin_file("runbench_testplugin_no_symbol");
    match runbench::plugin::load(&wrong) {
        Err(runbench::plugin::LoadError::AbiVersion {
            expected, found, ..
        }) => {
            assert_eq!((expected, found), (runbench_plugin_abi::ABI_VERSION, 999))
        }
        other => panic!(
            "expected an ABI version error, got {:?}",
            other.map(|p| p.name())
        ),
    }
    assert!(matches!(
        runbench::plugin::load(&none),
        Err(runbench::plugin::LoadError::NoSymbol { .. })
    ));
    let missing = target_dir().join("librunbench_plugin_nothing.so");
    assert!(matches!(
        runbench::plugin::load(&missing),
        Err(runbench::plugin::LoadError::Missing { .. })
    ));
    let text_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(text_file.path(), "not a library").unwrap();
    assert!(matches!(
        runbench::plugin::load(text_file.path()),
        Err(runbench::plugin::LoadError::NotALibrary { .. })
    ));
}
