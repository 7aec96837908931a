//! Every way a scenario can be wrong gets a message naming the file, line, column and field,
//! and saying what is allowed.

use runbench::scenario::{parse, Host, Model};
use std::path::Path;

const GOOD: &str = r#"name = "t"
[server]
cpus = [0]
[load]
connections = 100
payload_bytes = 64
warmup = "1s"
duration = "5s"
cpus = [1]
"#;

fn host() -> Host {
    Host {
        cpus: 4,
        elsewhere: false,
    }
}

/// The error text for `text`, which must fail.
fn error(text: &str) -> String {
    match parse(Path::new("scen/x.toml"), text, &host()) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

fn assert_all(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "missing {p:?} in:\n{msg}");
    }
}

#[test]
fn a_good_scenario_parses_with_defaults() {
    let s = parse(Path::new("x.toml"), GOOD, &host()).unwrap();
    assert_eq!(s.load.connections, vec![100]);
    assert_eq!(s.load.model, Model::Closed);
    assert_eq!(s.server.threads, vec![1]);
    assert_eq!(s.shutdown.grace, std::time::Duration::from_secs(2));
    assert_eq!(s.run.repeat, 1);
    assert!(s.runtimes.is_none());
}

#[test]
fn unknown_key_names_line_column_and_suggests_the_closest() {
    let msg = error(&GOOD.replace("connections = 100", "conections = 100"));
    assert_all(
        &msg,
        &[
            "scen/x.toml:5:1",
            "unknown field `conections`",
            "did you mean `connections`?",
            "load.conections",
        ],
    );
}

#[test]
fn wrong_type_names_the_field() {
    let msg = error(&GOOD.replace("payload_bytes = 64", "payload_bytes = \"big\""));
    assert_all(
        &msg,
        &[
            "scen/x.toml:6:",
            "load.payload_bytes",
            "expected a number or a list of numbers",
        ],
    );
    let msg = error(&GOOD.replace("name = \"t\"", "name = 5"));
    assert_all(&msg, &["scen/x.toml:1:", "`name`", "string"]);
}

#[test]
fn zero_and_negative_values_say_what_is_allowed() {
    let msg = error(&GOOD.replace("connections = 100", "connections = 0"));
    assert_all(
        &msg,
        &[
            "scen/x.toml:5:15",
            "`load.connections`",
            "must be between 1 and",
            "got 0",
        ],
    );
    let msg = error(&GOOD.replace("payload_bytes = 64", "payload_bytes = -3"));
    assert_all(&msg, &["scen/x.toml:6:", "`load.payload_bytes`", "got -3"]);
    let msg = error(&GOOD.replace("payload_bytes = 64", "payload_bytes = 100000000"));
    assert_all(
        &msg,
        &["`load.payload_bytes`", "must be between 1 and 67108864"],
    );
    let msg = error(&GOOD.replace("connections = 100", "connections = [10, -1]"));
    assert_all(&msg, &["`load.connections.1`", "got -1"]);
}

#[test]
fn bad_durations_are_explained() {
    let msg = error(&GOOD.replace("duration = \"5s\"", "duration = \"5 parsecs\""));
    assert_all(
        &msg,
        &[
            "scen/x.toml:8:",
            "`load.duration`",
            "is not a duration",
            "\"5s\"",
        ],
    );
    let msg = error(&GOOD.replace("duration = \"5s\"", "duration = \"0s\""));
    assert_all(&msg, &["`load.duration`", "longer than zero"]);
}

#[test]
fn empty_or_duplicate_runtime_lists_are_refused() {
    let msg = error(&GOOD.replace("name = \"t\"", "name = \"t\"\nruntimes = []"));
    assert_all(&msg, &["scen/x.toml:2:", "`runtimes`", "is empty"]);
    let msg = error(&GOOD.replace(
        "name = \"t\"",
        "name = \"t\"\nruntimes = [\"tokio\", \"tokio\"]",
    ));
    assert_all(&msg, &["listed twice"]);
}

#[test]
fn cpus_must_exist_and_not_overlap_unless_allowed() {
    let msg = error(&GOOD.replace("cpus = [1]", "cpus = [7]"));
    assert_all(&msg, &["`load.cpus`", "CPU 7 does not exist", "0..=3"]);
    let msg = error(&GOOD.replace("cpus = [1]", "cpus = [0, 1]"));
    assert_all(
        &msg,
        &[
            "`load.cpus`",
            "overlaps server.cpus",
            "allow_shared_cpus = true",
        ],
    );
    let ok = GOOD.replace("cpus = [1]", "cpus = [0, 1]\nallow_shared_cpus = true");
    assert!(parse(Path::new("x.toml"), &ok, &host()).is_ok());
}

#[test]
fn model_specific_keys_are_checked() {
    let msg = error(&GOOD.replace("[load]", "[load]\nrate = 100"));
    assert_all(&msg, &["`load.rate`", "only applies to model = \"open\""]);
    let msg = error(&GOOD.replace("[load]", "[load]\nmodel = \"open\""));
    assert_all(&msg, &["needs `rate`"]);
    let msg = error(&GOOD.replace("[load]", "[load]\nmodel = \"fast\""));
    assert_all(&msg, &["`load.model`", "use \"closed\" or \"open\""]);
    let msg = error(&GOOD.replace("[load]", "[load]\nsend_window = \"100us\""));
    assert_all(
        &msg,
        &["`load.send_window`", "only applies to model = \"open\""],
    );
    let open = GOOD.replace("[load]", "[load]\nmodel = \"open\"\nrate = 1000");
    let msg = error(&open.replace("[load]", "[load]\nsend_window = \"2ms\""));
    assert_all(
        &msg,
        &["`load.send_window`", "at most 500µs", "late by up to"],
    );
    let s = parse(
        Path::new("x.toml"),
        &open.replace("[load]", "[load]\nsend_window = \"250us\""),
        &host(),
    )
    .unwrap();
    assert_eq!(s.load.send_window, std::time::Duration::from_micros(250));
}

#[test]
fn empty_files_and_non_toml_are_refused() {
    assert_all(&error("  \n"), &["scen/x.toml", "empty"]);
    assert_all(&error("this is not toml"), &["scen/x.toml:1:"]);
}

#[test]
fn shutdown_at_must_fall_inside_the_load() {
    let msg = error(&GOOD.replace("cpus = [1]", "cpus = [1]\n[shutdown]\nat = \"10s\""));
    assert_all(&msg, &["`shutdown.at`", "must fall inside the load"]);
}

#[test]
fn sweeps_expand_to_the_cartesian_product() {
    let s = GOOD
        .replace("connections = 100", "connections = [1, 10]")
        .replace(
            "[server]",
            "[server]\nthreads = [1, 2]\nmax_connections = [0, 5]",
        );
    let s = parse(Path::new("x.toml"), &s, &host()).unwrap();
    let points = runbench::plan::points(&s);
    assert_eq!(points.len(), 8);
    assert!(points
        .iter()
        .any(|p| p.connections == 10 && p.threads == 2 && p.max_connections == 5));
    // Shuffled per trial, but every (point, subject) exactly once per trial.
    let steps = runbench::plan::schedule(3, points.len(), 2, 7);
    assert_eq!(steps.len(), 3 * 8 * 2);
    for t in 0..3 {
        let mut seen: Vec<(usize, usize)> = steps
            .iter()
            .filter(|s| s.trial == t)
            .map(|s| (s.point, s.subject))
            .collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 16);
    }
    assert_eq!(
        steps,
        runbench::plan::schedule(3, points.len(), 2, 7),
        "same seed, same order"
    );
}

#[test]
fn phases_ramp_linearly_from_the_previous_target() {
    use runbench::protocol::Ramp;
    let r = Ramp {
        start: 0.0,
        phases: vec![
            (10_000, Some(10_000.0)),
            (30_000, None),
            (10_000, Some(0.0)),
        ],
    };
    let at = |s: f64| r.at(std::time::Duration::from_secs_f64(s));
    assert_eq!(at(0.0), 0.0);
    assert_eq!(at(5.0), 5_000.0);
    assert_eq!(at(20.0), 10_000.0);
    assert_eq!(at(45.0), 5_000.0);
    assert_eq!(at(100.0), 0.0);
}

const OPEN_NO_RATE: &str = "name = \"x\"\n[load]\nmodel = \"open\"\nconnections = 10\npayload_bytes = 64\nduration = \"1s\"\n";
const OPEN: &str = "name = \"x\"\n[load]\nmodel = \"open\"\nrate = 100\nconnections = 10\npayload_bytes = 64\nduration = \"1s\"\n";

#[test]
fn slo_and_search_are_checked_with_what_is_allowed() {
    let search = "[search]\nrate = { from = 1000, max = 2000 }\n";
    let msg = error(&format!("{OPEN_NO_RATE}{search}"));
    assert_all(&msg, &["`search`", "needs `[slo]`"]);
    let msg = error(&format!("{OPEN}[slo]\np99 = \"5ms\"\n{search}"));
    assert_all(&msg, &["`load.rate`", "chosen by `[search]`"]);
    let msg = error(&format!("{OPEN}[slo]\nerrors = 1.5\n"));
    assert_all(&msg, &["`slo.errors`", "neither a count", "fraction"]);
    let msg = error(&format!("{OPEN}[slo]\np99 = \"fast\"\n"));
    assert_all(&msg, &["`slo.p99`", "not a duration"]);
    let msg = error(&format!("{OPEN}[slo]\n"));
    assert_all(&msg, &["`slo`", "is empty"]);
    let msg = error(&format!(
        "{OPEN_NO_RATE}[slo]\np99 = \"5ms\"\n[search]\nrate = {{ from = 1000, max = 500 }}\n"
    ));
    assert_all(&msg, &["`search.rate.max`", "must be above `from` (1000)"]);
    let msg = error(&format!(
        "{OPEN_NO_RATE}[slo]\np99 = \"5ms\"\n{search}[run]\nrepeat = 3\n"
    ));
    assert_all(&msg, &["`run.repeat`", "search.confirm"]);
    let closed = "name = \"x\"\n[load]\nconnections = 10\npayload_bytes = 64\nduration = \"1s\"\n";
    let msg = error(&format!("{closed}[slo]\nachieved = 0.99\n"));
    assert_all(&msg, &["`slo.achieved`", "model = \"open\""]);
    // The shipped example is valid.
    let s = runbench::scenario::parse(
        std::path::Path::new("capacity.toml"),
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../scenarios/capacity.toml"
        ))
        .unwrap(),
        &host(),
    )
    .unwrap();
    assert_eq!(s.search.unwrap().confirm, 3);
}

#[test]
fn names_that_would_climb_out_of_the_output_folder_are_refused() {
    for bad in ["..", ".", ".hidden", "a/b", ""] {
        let msg = error(&GOOD.replace("name = \"t\"", &format!("name = \"{bad}\"")));
        assert_all(
            &msg,
            &[
                "scen/x.toml:1:8",
                "`name`",
                "starting with a letter or digit",
            ],
        );
    }
    let long = "n".repeat(101);
    let msg = error(&GOOD.replace("name = \"t\"", &format!("name = \"{long}\"")));
    assert_all(&msg, &["`name`", "1 to 100"]);
}

#[test]
fn a_target_name_that_would_break_report_tables_is_refused() {
    for bad in ["a|b", "two\\nlines", "x y"] {
        let text =
            GOOD.to_string() + &format!("[target]\naddress = \"127.0.0.1:7\"\nname = \"{bad}\"\n");
        let msg = error(&text);
        assert_all(
            &msg,
            &["scen/x.toml:12:8", "`target.name`", "letters, digits"],
        );
    }
}

#[test]
fn a_measured_window_too_short_to_measure_is_refused() {
    let msg = error(&GOOD.replace("duration = \"5s\"", "duration = \"1ns\""));
    assert_all(
        &msg,
        &[
            "scen/x.toml:8:",
            "`load.duration`",
            "at least 100ms",
            "got 1ns",
        ],
    );
    let phased = GOOD.replace("duration = \"5s\"", "").replace(
        "warmup = \"1s\"",
        "warmup = \"1s\"\nphases = [{ duration = \"1050ms\", connections = 10 }]",
    );
    assert_all(&error(&phased), &["`load.warmup`", "less than 100ms"]);
}

#[test]
fn a_stop_signal_inside_the_warmup_is_refused() {
    let msg = error(&GOOD.replace("cpus = [1]", "cpus = [1]\n[shutdown]\nat = \"500ms\""));
    assert_all(
        &msg,
        &[
            "`shutdown.at`",
            "inside the warmup (1s)",
            "between 1s and 6s",
        ],
    );
    let ok = GOOD.replace("cpus = [1]", "cpus = [1]\n[shutdown]\nat = \"3s\"");
    assert!(parse(Path::new("x.toml"), &ok, &host()).is_ok());
}

/// A 200 KB line of brackets: the message shows a window of it, not the whole line.
#[test]
fn an_error_on_a_huge_line_does_not_echo_it() {
    let text = format!(
        "{GOOD}[run]\nseed = {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let msg = error(&text);
    assert!(msg.len() < 2_000, "{} bytes of message", msg.len());
    assert_all(&msg, &["scen/x.toml:11:", "..."]);
}

/// Duplicate checks use sets: 80,000 runtime names (about a megabyte) check in well under the
/// time the old quadratic scan took (minutes).
#[test]
fn many_runtime_names_validate_in_linear_time() {
    let names: Vec<String> = (0..80_000).map(|i| format!("\"r{i}\"")).collect();
    let text = GOOD.replace(
        "name = \"t\"",
        &format!("name = \"t\"\nruntimes = [{}]", names.join(",")),
    );
    let started = std::time::Instant::now();
    let s = parse(Path::new("x.toml"), &text, &host()).unwrap();
    assert_eq!(s.runtimes.unwrap().len(), 80_000);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let dup = text.replace("\"r79999\"", "\"r0\"");
    assert_all(&error(&dup), &["`runtimes.79999`", "`r0` is listed twice"]);
}

/// The weak messages a new user met (issue 26 item 11): each now says what to write instead.
#[test]
fn a_duration_without_its_unit_and_bytes_with_one_get_the_form_to_write() {
    let msg = error(&GOOD.replace("duration = \"5s\"", "duration = 10"));
    assert_all(
        &msg,
        &[
            "scen/x.toml:8:12",
            "`load.duration`",
            "\"10s\", \"10ms\" or \"10us\"",
        ],
    );
    let msg = error(&GOOD.replace("payload_bytes = 64", "payload_bytes = \"64KB\""));
    assert_all(
        &msg,
        &[
            "scen/x.toml:6:17",
            "`load.payload_bytes`",
            "a plain number without a unit",
        ],
    );
}

#[test]
fn a_missing_load_section_or_name_is_the_files_not_its_first_lines() {
    let msg = error("name = \"t\"\n[server]\ncpus = [0]\n");
    assert_all(&msg, &["scen/x.toml", "no `[load]` section"]);
    assert!(!msg.contains("`name`:"), "blamed on the first key: {msg}");
    let msg = error(&GOOD.replace("name = \"t\"\n", ""));
    assert_all(&msg, &["scen/x.toml", "has no `name`"]);
}
