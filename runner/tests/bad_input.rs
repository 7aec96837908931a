//! Bad input stops `runbench run` before anything runs: a clear error naming the file, exit code
//! 2, and nothing created under --out. Also the safety refusals (remote targets).

mod support;

use std::path::{Path, PathBuf};
use support::*;

const GOOD: &str = r#"
name = "bad"
[server]
cpus = [0]
[load]
connections = 10
payload_bytes = 64
warmup = "100ms"
duration = "1s"
cpus = [1]
allow_shared_cpus = true
"#;

/// Runs `runbench run <scenario> --out <dir>/out <extra>`, expects exit code 2 with every part
/// of `expected` in the message, and an untouched --out.
fn refused(dir: &Path, scenario: &Path, extra: &[&str], expected: &[&str]) -> String {
    let out_dir = dir.join("out");
    let mut args = vec![
        "run",
        scenario.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let out = runbench(&args);
    let msg = text(&out);
    assert_eq!(out.status.code(), Some(2), "{msg}");
    for part in expected {
        assert!(msg.contains(part), "missing {part:?} in:\n{msg}");
    }
    assert!(!out_dir.exists(), "--out was created for a refused run");
    assert!(
        out.stdout.is_empty(),
        "only the error, on stderr: {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    msg
}

#[test]
fn a_missing_scenario_file_is_named_with_a_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "smoke.toml", GOOD);
    let missing = dir.path().join("smoek.toml");
    refused(
        dir.path(),
        &missing,
        &[],
        &[
            &format!("{}: no such scenario file", missing.display()),
            "did you mean",
            "smoke.toml",
        ],
    );
}

#[test]
fn a_directory_instead_of_a_scenario_lists_its_scenarios() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("scenarios");
    std::fs::create_dir(&folder).unwrap();
    write(&folder, "a.toml", GOOD);
    refused(
        dir.path(),
        &folder,
        &[],
        &["is a directory, not a scenario file", "a.toml"],
    );
}

fn plugin_refused(plugin: &Path, expected: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "bad.toml", GOOD);
    refused(
        dir.path(),
        &scenario,
        &["--plugin", plugin.to_str().unwrap()],
        expected,
    )
}

#[test]
fn a_plugin_that_is_not_a_library_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let fake = write(dir.path(), "libfake.so", "not a library");
    plugin_refused(
        &fake,
        &[&fake.display().to_string(), "not a loadable library"],
    );
    let missing = dir.path().join("libnothing.so");
    plugin_refused(&missing, &["libnothing.so", "file not found"]);
}

#[test]
fn a_library_without_the_entry_symbol_is_bad_input() {
    let lib = plugin_file("runbench_testplugin_no_symbol");
    plugin_refused(&lib, &["no `runbench_plugin_header` symbol"]);
}

#[test]
fn a_plugin_of_another_abi_version_is_bad_input() {
    let lib = plugin_file("runbench_testplugin_wrong_abi");
    plugin_refused(
        &lib,
        &[&format!(
            "ABI version 999, this runbench expects {}",
            runbench_plugin_abi::ABI_VERSION
        )],
    );
}

/// A copy of a real plugin whose ELF header says AArch64 (e_machine 183), as a plugin copied
/// from an ARM machine would. glibc's own message for it is a misleading "No such file".
fn foreign_plugin(dir: &Path) -> PathBuf {
    let mut bytes = std::fs::read(plugin_file("runbench_plugin_tokio")).unwrap();
    assert_eq!(&bytes[..4], b"\x7fELF");
    const E_MACHINE: usize = 18;
    const EM_AARCH64: u16 = 183;
    let foreign = if std::env::consts::ARCH == "aarch64" {
        62 // EM_X86_64
    } else {
        EM_AARCH64
    };
    bytes[E_MACHINE..E_MACHINE + 2].copy_from_slice(&foreign.to_le_bytes());
    let path = dir.join("librunbench_plugin_foreign.so");
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn a_plugin_built_for_another_architecture_is_bad_input_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let lib = foreign_plugin(dir.path());
    let msg = plugin_refused(
        &lib,
        &["built for", "but this runbench runs on", "(64-bit)"],
    );
    if std::env::consts::ARCH == "x86_64" {
        assert!(
            msg.contains("built for Aarch64") && msg.contains("X86_64"),
            "{msg}"
        );
    }
    assert!(!msg.contains("No such file"), "{msg}");
}

#[test]
fn a_remote_target_is_refused_without_allow_remote() {
    let dir = tempfile::tempdir().unwrap();
    // --dry-run: even if the check were gone, nothing would be sent anywhere.
    let remote = GOOD.to_string() + "[target]\naddress = \"192.0.2.1:7\"\n";
    let scenario = write(dir.path(), "remote.toml", &remote);
    refused(
        dir.path(),
        &scenario,
        &["--dry-run"],
        &[
            "target 192.0.2.1:7 is not a loopback address",
            "--allow-remote",
        ],
    );
    let local = GOOD.to_string() + "[target]\naddress = \"127.0.0.1:7\"\n";
    let scenario = write(dir.path(), "local.toml", &local);
    let out = runbench(&["run", scenario.to_str().unwrap(), "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn a_bad_scenario_among_several_stops_all_of_them_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good.toml", GOOD);
    let bad = write(
        dir.path(),
        "broken.toml",
        &GOOD.replace("connections = 10", "connections = 0"),
    );
    let out_dir = dir.path().join("out");
    let out = runbench(&[
        "run",
        good.to_str().unwrap(),
        bad.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("broken.toml"), "{}", text(&out));
    assert!(!out_dir.exists());
}

/// A FIFO with no writer blocked `open` forever, and Ctrl-C or SIGTERM could not end it.
#[test]
fn a_scenario_path_that_is_a_fifo_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe.toml");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo on a path in our own temp dir.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    for cmd in ["validate", "run"] {
        let out = output_within(
            std::process::Command::new(bin()).args([cmd, fifo.to_str().unwrap()]),
            std::time::Duration::from_secs(10),
        );
        assert_eq!(out.status.code(), Some(2), "{cmd}: {}", text(&out));
        assert!(
            text(&out).contains("pipe.toml: cannot read the scenario: it is a FIFO"),
            "{}",
            text(&out)
        );
    }
}

#[test]
fn new_refuses_names_that_would_climb_out_of_its_folder() {
    let dir = tempfile::tempdir().unwrap();
    let inner = dir.path().join("scenarios");
    for bad in ["..", ".", "../x"] {
        let out = runbench(&["new", bad, "--dir", inner.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", text(&out));
        assert!(
            text(&out).contains("starting with a letter or digit"),
            "{}",
            text(&out)
        );
    }
    assert!(!inner.exists(), "nothing written");
    assert!(!dir.path().join("...toml").exists() && !dir.path().join("x.toml").exists());
}

/// A folder (not runbench's link) named `latest` failed with a path-less "Is a directory"
/// after leaving an empty run folder.
#[test]
fn a_real_latest_folder_is_refused_by_name_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "bad.toml", GOOD);
    let latest = dir.path().join("out/bad/latest");
    std::fs::create_dir_all(&latest).unwrap();
    let out = runbench(&[
        "run",
        scenario.to_str().unwrap(),
        "--out",
        dir.path().join("out").to_str().unwrap(),
        "--plugin",
        plugin_file("runbench_plugin_tokio").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("{} is a folder, not the link", latest.display())),
        "{}",
        text(&out)
    );
    let entries: Vec<_> = std::fs::read_dir(dir.path().join("out/bad"))
        .unwrap()
        .collect();
    assert_eq!(entries.len(), 1, "no run folder was made: {entries:?}");
}

#[test]
fn runtimes_given_twice_or_where_they_would_be_ignored_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(dir.path(), "bad.toml", GOOD);
    refused(
        dir.path(),
        &scenario,
        &["--runtimes", "tokio,tokio"],
        &["--runtimes lists `tokio` twice", "--repeat"],
    );
    let tokio = plugin_file("runbench_plugin_tokio");
    refused(
        dir.path(),
        &scenario,
        &["--runtimes", "smol", "--plugin", tokio.to_str().unwrap()],
        &["--runtimes cannot be combined with --plugin"],
    );
    let target = write(
        dir.path(),
        "target.toml",
        &(GOOD.to_string() + "[target]\naddress = \"127.0.0.1:7\"\n"),
    );
    refused(
        dir.path(),
        &target,
        &["--runtimes", "tokio"],
        &["--runtimes cannot be used with", "target.toml", "[target]"],
    );
}

/// Four 100-value lists are 10^8 points: `run --dry-run` aborted on a 3 GB allocation and
/// `validate` said ok. Both now refuse it at once, with the numbers and the way out; memory is
/// capped at 1 GiB so an unbounded allocation fails the test instead of the machine.
#[test]
fn a_plan_that_explodes_is_refused_before_it_is_built() {
    let dir = tempfile::tempdir().unwrap();
    let list = format!(
        "[{}]",
        (1..=100)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",")
    );
    let big = GOOD
        .replace("connections = 10", &format!("connections = {list}"))
        .replace("payload_bytes = 64", &format!("payload_bytes = {list}"))
        .replace(
            "[server]",
            &format!("[server]\nthreads = {list}\nmax_connections = {list}"),
        );
    let scenario = write(dir.path(), "big.toml", &big);
    let expected = [
        "big.toml: the sweep has 100000000 points",
        "100 load.connections x 100 load.payload_bytes x 100 server.threads x 100 \
         server.max_connections",
        "at most 10000",
        "fewer values in the longest list (load.connections",
    ];
    for args in [vec!["validate"], vec!["run", "--dry-run"]] {
        let mut cmd = std::process::Command::new(bin());
        cmd.args(&args).arg(&scenario);
        limit(&mut cmd, Limit::Memory(1 << 30));
        let out = output_within(&mut cmd, std::time::Duration::from_secs(20));
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        for part in expected {
            assert!(
                text(&out).contains(part),
                "missing {part:?}: {}",
                text(&out)
            );
        }
    }
    // A day of warmup and a day of load, 1000 times: 48000 hours.
    let long = GOOD
        .replace("warmup = \"100ms\"", "warmup = \"24h\"")
        .replace("duration = \"1s\"", "duration = \"24h\"")
        + "[run]\nrepeat = 1000\n";
    let scenario = write(dir.path(), "long.toml", &long);
    let tokio = plugin_file("runbench_plugin_tokio");
    for args in [
        vec!["validate", scenario.to_str().unwrap()],
        vec![
            "run",
            "--dry-run",
            scenario.to_str().unwrap(),
            "--plugin",
            tokio.to_str().unwrap(),
        ],
    ] {
        let out = runbench(&args);
        let msg = text(&out);
        assert_eq!(out.status.code(), Some(2), "{msg}");
        if args[0] == "run" {
            assert!(
                msg.contains("about 48000h (1000 trial(s) x 1 point(s) x 1 runtime(s)"),
                "{msg}"
            );
        }
        assert!(
            msg.contains("at most 72h is allowed") && msg.contains("--repeat"),
            "{msg}"
        );
    }
    // The command line is a way out: one trial of one runtime fits.
    let out = runbench(&[
        "run",
        "--dry-run",
        scenario.to_str().unwrap(),
        "--plugin",
        tokio.to_str().unwrap(),
        "--repeat",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn validate_says_when_run_would_need_allow_remote() {
    let dir = tempfile::tempdir().unwrap();
    let remote = GOOD.to_string() + "[target]\naddress = \"192.0.2.1:7\"\n";
    let scenario = write(dir.path(), "remote.toml", &remote);
    let out = runbench(&["validate", scenario.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains(
            "note: target 192.0.2.1:7 is not a loopback address; runbench only loads other \
             machines with --allow-remote"
        ),
        "{}",
        text(&out)
    );
}

/// `validate` said ok to 200,000 connections that `run` refused at its preflight: it now runs
/// the same preflight, with the same ways out, and says which runtimes `run` would skip.
#[test]
fn validate_refuses_what_run_would_and_names_what_it_would_skip() {
    let dir = tempfile::tempdir().unwrap();
    let huge = write(
        dir.path(),
        "huge.toml",
        &GOOD.replace("connections = 10", "connections = 200000"),
    );
    for args in [vec!["validate"], vec!["run", "--dry-run"]] {
        let mut cmd = std::process::Command::new(bin());
        cmd.args(&args).arg(&huge);
        let out = output_within(&mut cmd, std::time::Duration::from_secs(20));
        let msg = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {msg}");
        assert!(msg.contains("needs 200000 connections"), "{args:?}: {msg}");
        assert!(msg.contains("--server-processes"), "{args:?}: {msg}");
    }
    let with_runtimes = write(
        dir.path(),
        "skip.toml",
        &format!(
            "runtimes = [\"embassy\", \"tokio\"]\n{}",
            GOOD.replace("connections = 10", "connections = 300")
        ),
    );
    let out = runbench(&["validate", with_runtimes.to_str().unwrap()]);
    let msg = text(&out);
    assert_eq!(out.status.code(), Some(0), "{msg}");
    assert!(
        msg.contains("`embassy` would be skipped at 1 of 1 point(s)")
            && msg.contains("at most 256 connections"),
        "{msg}"
    );
    assert!(!msg.contains("`tokio` would be skipped"), "{msg}");
}
