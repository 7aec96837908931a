//! The `[workload]` section: what it builds, its older names, and every way it can be wrong
//! (file, line, field, what is allowed), with the bounds that keep memory bounded.

use runbench::scenario::{parse, Host, Scenario};
use runbench_plugin_abi::{Dist, Fanout};
use std::path::Path;
use std::time::Duration;

const BASE: &str =
    "name = \"w\"\n[server]\ncpus = [0]\n[load]\nconnections = 10\nduration = \"1s\"\ncpus = [1]\n";

fn host() -> Host {
    Host {
        cpus: 4,
        elsewhere: false,
    }
}

fn ok(text: &str) -> Scenario {
    parse(Path::new("scen/w.toml"), text, &host()).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn error(text: &str) -> String {
    match parse(Path::new("scen/w.toml"), text, &host()) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => e.to_string(),
    }
}

fn with(workload: &str) -> String {
    format!("{BASE}{workload}")
}

fn assert_all(msg: &str, parts: &[&str]) {
    for p in parts {
        assert!(msg.contains(p), "missing {p:?} in:\n{msg}");
    }
}

fn us(n: u64) -> Duration {
    Duration::from_micros(n)
}

#[test]
fn every_key_of_the_issue_builds_its_part() {
    let s = ok(&with(
        "[workload]\nrequest_bytes = 64\nresponse_bytes = 1024\n\
         cpu = { mean = \"20us\", dist = \"exp\" }\n\
         sleep = { mean = \"1ms\", dist = \"lognormal\", p99 = \"5ms\" }\n\
         fanout = { tasks = 8, cpu = \"5us\", sleep = \"200us\" }\n\
         blocking = \"100us\"\nhops = 2\n",
    ));
    assert_eq!(s.load.payload_bytes, vec![64]);
    assert_eq!(s.workloads.len(), 1);
    let w = s.workload("", 64);
    assert_eq!(w.request_bytes, Some(64));
    assert_eq!(w.response_bytes, Some(1024));
    assert_eq!(w.cpu, Dist::Exp { mean: us(20) });
    assert_eq!(
        w.sleep,
        Dist::LogNormal {
            mean: us(1000),
            p99: us(5000)
        }
    );
    assert_eq!(
        w.fanout,
        Some(Fanout {
            tasks: 8,
            cpu: us(5),
            sleep: us(200)
        })
    );
    assert_eq!((w.blocking, w.hops), (us(100), 2));
    assert_eq!(
        s.workloads[0].parts,
        "cpu exp(20us) · sleep lognormal(1ms, p99 5ms) · fanout 8×(5us, 200us) · blocking \
         100us · 2 hops · 1024 B answers"
    );
}

#[test]
fn the_older_names_still_work_and_must_agree_with_the_new() {
    // Today's scenarios: [load] payload_bytes and [server] work/sleep.
    let old = BASE
        .replace("[load]\n", "[load]\npayload_bytes = [64, 128]\n")
        .replace("[server]\n", "[server]\nwork = \"50us\"\nsleep = \"1ms\"\n");
    let s = ok(&old);
    assert_eq!(s.load.payload_bytes, vec![64, 128]);
    let w = s.workload("", 128);
    assert_eq!(
        (w.cpu, w.sleep),
        (Dist::Fixed(us(50)), Dist::Fixed(us(1000)))
    );
    assert_eq!(w.request_bytes, Some(128));
    assert_eq!(s.workloads[0].name, "");
    // Both given and the same: fine.
    ok(&format!(
        "{old}[workload]\ncpu = \"50us\"\nrequest_bytes = [64, 128]\n"
    ));
    let msg = error(&format!("{old}[workload]\nrequest_bytes = 32\n"));
    assert_all(
        &msg,
        &[
            "scen/w.toml:7:",
            "`load.payload_bytes`",
            "older name of `[workload] request_bytes`, which says 32",
        ],
    );
    let msg = error(&format!("{old}[workload]\ncpu = \"20us\"\n"));
    assert_all(
        &msg,
        &[
            "scen/w.toml:3:",
            "`server.work`",
            "older name of `workload.cpu`",
            "50us against 20us",
        ],
    );
    let msg = error(BASE);
    assert_all(
        &msg,
        &["`load`", "missing the request size", "request_bytes"],
    );
}

#[test]
fn bad_durations_and_distributions_name_the_field_and_what_is_allowed() {
    let cases: &[(&str, &[&str])] = &[
        (
            "cpu = \"-5us\"",
            &["scen/w.toml:10:", "`workload.cpu`", "negative"],
        ),
        ("sleep = \"11s\"", &["`workload.sleep`", "at most 10s"]),
        (
            "cpu = 20",
            &["`workload.cpu`", "a duration is text with its unit"],
        ),
        (
            "cpu = { mean = \"20us\", dist = \"lognormal\", p99 = \"1ms\" }",
            &["`workload.cpu.p99`", "at most 14.95 times its mean"],
        ),
        (
            "cpu = { mean = \"20us\", dist = \"lognormal\", p99 = \"10us\" }",
            &["`workload.cpu.p99`", "must be above its mean"],
        ),
        (
            "cpu = { mean = \"20us\", dist = \"lognormal\" }",
            &["`workload.cpu`", "needs its `p99`"],
        ),
        (
            "cpu = { mean = \"20us\", dist = \"exp\", p99 = \"30us\" }",
            &["`workload.cpu.p99`", "only a log-normal has a p99"],
        ),
        (
            "cpu = { mean = \"20us\", dist = \"pareto\" }",
            &["`workload.cpu.dist`", "\"fixed\", \"exp\" or \"lognormal\""],
        ),
        (
            "sleep = { mean = \"0s\", dist = \"exp\" }",
            &["`workload.sleep.mean`", "above zero"],
        ),
        (
            "cpu = { mean = \"20us\", spread = 3 }",
            &["scen/w.toml:10:", "unknown field `spread`"],
        ),
        (
            "blocking = \"1 fortnight\"",
            &["`workload.blocking`", "not a duration"],
        ),
    ];
    for (line, want) in cases {
        let msg = error(&with(&format!("[workload]\nrequest_bytes = 64\n{line}\n")));
        assert_all(&msg, want);
    }
}

#[test]
fn fan_outs_hops_and_answers_are_bounded() {
    let msg = error(&with(
        "[workload]\nrequest_bytes = 64\nfanout = { tasks = 1000000, sleep = \"1ms\" }\n",
    ));
    assert_all(
        &msg,
        &[
            "scen/w.toml:10:",
            "`workload.fanout.tasks`",
            "between 1 and 1024",
        ],
    );
    let msg = error(&with("[workload]\nrequest_bytes = 64\nhops = 65\n"));
    assert_all(&msg, &["`workload.hops`", "between 0 and 64"]);
    let msg = error(&with(
        "[workload]\nrequest_bytes = 64\nresponse_bytes = 2000000\n",
    ));
    assert_all(
        &msg,
        &["`workload.response_bytes`", "between 1 and 1048576"],
    );
    // Within each bound, but too much over every connection at once.
    let many = with("[workload]\nrequest_bytes = 64\nfanout = { tasks = 1024 }\n")
        .replace("connections = 10", "connections = 2000");
    assert_all(
        &error(&many),
        &[
            "`workload.fanout.tasks`",
            "2048000 tasks alive at once",
            "at most 1048576",
        ],
    );
    let big = with("[workload]\nrequest_bytes = 64\nresponse_bytes = 1048576\n")
        .replace("connections = 10", "connections = 5000");
    assert_all(
        &error(&big),
        &[
            "`workload.response_bytes`",
            "5000 MiB of answers",
            "at most 4096 MiB",
        ],
    );
    // The open model pipelines: a 16 KiB read of 64 B requests completes 256 answers at once.
    let open = with("[workload]\nrequest_bytes = 64\nresponse_bytes = 1048576\n").replace(
        "connections = 10",
        "connections = 20\nmodel = \"open\"\nrate = 1000",
    );
    assert_all(
        &error(&open),
        &[
            "`workload.response_bytes`",
            "x 256 answers a read can complete (open model, 64 B requests)",
            "5120 MiB",
        ],
    );
}

#[test]
fn a_workload_list_is_a_sweep_of_named_points() {
    let s = ok(&with(
        "[[workload]]\nname = \"cpu\"\nrequest_bytes = 64\ncpu = \"20us\"\n\
         [[workload]]\nsleep = \"1ms\"\n[[workload]]\ncpu = \"10us\"\nsleep = \"500us\"\n",
    ));
    let names: Vec<&str> = s.workloads.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["cpu", "sleep", "cpu-sleep"]);
    let points = runbench::plan::points(&s);
    assert_eq!(points.len(), 3);
    assert_eq!(points[1].workload, "sleep");
    assert!(
        points[1].key().ends_with(",workload=sleep"),
        "{}",
        points[1].key()
    );
    assert_eq!(s.workload("sleep", 64).sleep, Dist::Fixed(us(1000)));
    let msg = error(&with(
        "[[workload]]\nrequest_bytes = 64\ncpu = \"1us\"\n[[workload]]\ncpu = \"2us\"\n",
    ));
    assert_all(&msg, &["`workload.1.name`", "`cpu` names two workloads"]);
    let msg = error(&with(
        "[[workload]]\nrequest_bytes = 64\n[[workload]]\nrequest_bytes = 128\nsleep = \"1ms\"\n",
    ));
    assert_all(
        &msg,
        &[
            "scen/w.toml:11:",
            "`workload.1.request_bytes`",
            "differs from `workload.0.request_bytes`",
        ],
    );
    let msg = error(&with(
        "[[workload]]\nrequest_bytes = 64\n[[workload]]\nhops = -1\n",
    ));
    assert_all(&msg, &["`workload.1.hops`", "between 0 and 64, got -1"]);
}

mod support;

/// A plugin folder holding `plugins` (lib name -> the name runbench finds it under).
fn plugin_dir(dir: &Path, plugins: &[(&str, &str)]) -> std::path::PathBuf {
    let folder = dir.join("plugins");
    std::fs::create_dir_all(&folder).unwrap();
    for (lib, name) in plugins {
        let to = folder.join(format!("librunbench_plugin_{name}.so"));
        std::os::unix::fs::symlink(support::plugin_file(lib), to).unwrap();
    }
    folder
}

#[test]
fn validate_names_the_runtimes_a_workload_skips_and_refuses_one_no_runtime_serves() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = plugin_dir(
        dir.path(),
        &[
            ("runbench_plugin_tokio", "tokio"),
            ("runbench_testplugin_no_timer", "no_timer"),
        ],
    );
    let text = "name = \"v\"\n[load]\nconnections = 2\nduration = \"1s\"\n\
                [workload]\nrequest_bytes = 64\nsleep = \"1ms\"\n";
    let file = support::write(dir.path(), "v.toml", text);
    let args = |f: &Path| {
        vec![
            "validate".to_string(),
            f.display().to_string(),
            "--plugin-dir".into(),
            plugins.display().to_string(),
        ]
    };
    let run = |f: &Path| {
        let a = args(f);
        support::runbench(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let out = run(&file);
    let said = support::text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(
        said.contains(
            "`no-timer` would be skipped at 1 of 1 point(s): the plugin does not serve the \
             workload's sleep per request"
        ),
        "{said}"
    );
    assert!(!said.contains("`tokio` would be skipped"), "{said}");
    // Only the plugin without a timer: no runtime serves it, refused with each one's reason.
    let only = text.replace("[load]", "runtimes = [\"no-timer\"]\n[load]");
    let file = support::write(dir.path(), "only.toml", &only);
    let out = run(&file);
    let said = support::text(&out);
    assert_ne!(out.status.code(), Some(0), "{said}");
    assert!(
        said.contains("no runtime of this run serves the workload (sleep 1ms)")
            && said.contains("`no-timer`: the plugin does not serve the workload's sleep"),
        "{said}"
    );
}

#[test]
fn skew_and_idle_connections_are_checked() {
    let s = ok(&with("[workload]\nrequest_bytes = 64\n").replace(
        "connections = 10",
        "connections = 10\nskew = { hot = 0.1, share = 0.9 }\nidle_connections = 500",
    ));
    let k = s.load.skew.unwrap();
    assert_eq!((k.hot, k.share, s.load.idle_connections), (0.1, 0.9, 500));
    // 1 hot and 9 cold connections: a cold one thinks 9·0.9/(1·0.1) - 1 = 80 latencies.
    assert_eq!(k.think_time(10, us(100)), us(8000));
    let bad = |line: &str| {
        error(
            &with("[workload]\nrequest_bytes = 64\n")
                .replace("connections = 10", &format!("connections = 10\n{line}")),
        )
    };
    assert_all(
        &bad("skew = { hot = 1.5, share = 0.9 }"),
        &[
            "scen/w.toml:6:",
            "`load.skew.hot`",
            "above 0 and below 1 (a fraction), got 1.5",
        ],
    );
    assert_all(
        &bad("skew = { hot = 0.1, share = 0 }"),
        &["`load.skew.share`", "got 0"],
    );
    assert_all(&bad("skew = { hot = 0.1 }"), &["missing field `share`"]);
    assert_all(
        &bad("idle_connections = -1"),
        &["`load.idle_connections`", "got -1"],
    );
    let one = with("[workload]\nrequest_bytes = 64\n").replace(
        "connections = 10",
        "connections = 1\nskew = { hot = 0.5, share = 0.9 }",
    );
    assert_all(
        &error(&one),
        &["`load.connections`", "skew needs at least 2 connections"],
    );
}

#[test]
fn idle_connections_beyond_the_open_files_limit_are_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let file = support::write(
        dir.path(),
        "i.toml",
        "name = \"i\"\n[load]\nconnections = 2\nduration = \"1s\"\nidle_connections = 900000\n\
         [workload]\nrequest_bytes = 64\n",
    );
    let out = support::runbench(&["validate", file.to_str().unwrap()]);
    let said = support::text(&out);
    assert_ne!(out.status.code(), Some(0), "{said}");
    assert!(
        said.contains("holds 900000 idle connections") && said.contains("RLIMIT_NOFILE"),
        "{said}"
    );
}

#[test]
fn the_runs_seed_is_the_workloads_seed() {
    let text = with("[workload]\nrequest_bytes = 64\ncpu = { mean = \"20us\", dist = \"exp\" }\n[run]\nseed = 7\n");
    let s = ok(&text);
    let plugin = support::plugin_file("runbench_plugin_tokio");
    let dir = tempfile::tempdir().unwrap();
    let with_seed = |seed: Option<u64>| {
        let o = runbench::plan::Overrides {
            plugins: vec![plugin.clone()],
            seed,
            ..Default::default()
        };
        let plan = runbench::plan::plan(&s, &o, dir.path()).unwrap();
        plan.workload(&plan.points[0]).seed
    };
    // The scenario's seed, and --seed over it: what repeats the server's draws.
    assert_eq!(with_seed(None), 7);
    assert_eq!(with_seed(Some(99)), 99);
}
