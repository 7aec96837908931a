//! `runbench compare` and `runbench nightly` through the binary: exit codes and messages.
//! No load is generated: run folders are written by hand in the format `run` writes.

mod support;

use std::path::Path;
use std::process::Command;

fn write_run(dir: &Path, cpu: &str, rps: &[f64]) {
    std::fs::create_dir_all(dir).unwrap();
    let meta = serde_json::json!({
        "scenario": {"name": "smoke", "server": {"max_connections": 0}},
        "started_at": "2025-01-01T00:00:00+00:00",
        "host": {"cpu_model": cpu, "cores": 2, "kernel": "6.1.0"},
        "git_commit": "abc123",
    });
    std::fs::write(dir.join("meta.json"), meta.to_string()).unwrap();
    let mut csv = String::from(
        "scenario,runtime,runtime_version,trial,status,error,connections,payload_bytes,\
         server_threads,requests_per_sec,p50_us,p99_us\n",
    );
    for (t, r) in rps.iter().enumerate() {
        csv.push_str(&format!(
            "smoke,tokio,1.0,{t},ok,,100,64,1,{r},{},{}\n",
            5e6 / r,
            2e7 / r
        ));
    }
    std::fs::write(dir.join("summary.csv"), csv).unwrap();
}

fn runbench(args: &[&std::ffi::OsStr]) -> (i32, String, String) {
    let out = Command::new(support::bin()).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn compare_exits_3_on_a_regression_and_0_on_the_same_run() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    write_run(&a, "CPU X", &[1000.0, 1010.0, 990.0, 1005.0, 995.0]);
    write_run(&b, "CPU X", &[850.0, 860.0, 840.0, 855.0, 845.0]);
    let (code, stdout, _) = runbench(&["compare".as_ref(), a.as_os_str(), b.as_os_str()]);
    assert_eq!(code, 3, "{stdout}");
    assert!(
        stdout.contains("| tokio | throughput (requests/s) | **regressed** |"),
        "{stdout}"
    );
    assert!(stdout.contains("-15.0%"), "{stdout}");
    // The change with its 95% interval, as criterion gives it: about -15%, surely below zero.
    let cell = stdout
        .lines()
        .find(|l| l.contains("throughput (requests/s)"))
        .and_then(|l| l.split(" | ").find(|c| c.starts_with("-15.0% [")))
        .unwrap_or_else(|| panic!("no change interval: {stdout}"));
    let bounds: Vec<f64> = cell
        .trim_start_matches("-15.0% [")
        .trim_end_matches(']')
        .split(", ")
        .map(|b| b.trim_end_matches('%').parse().unwrap())
        .collect();
    assert!(
        bounds[0] <= -15.0 && bounds[1] >= -15.0 && bounds[1] < 0.0,
        "{cell}"
    );
    let (code, stdout, _) = runbench(&["compare".as_ref(), a.as_os_str(), a.as_os_str()]);
    assert_eq!(code, 0, "{stdout}");
    // A 15% drop is within a 20% noise threshold.
    let (code, stdout, _) = runbench(&[
        "compare".as_ref(),
        a.as_os_str(),
        b.as_os_str(),
        "--noise".as_ref(),
        "20".as_ref(),
    ]);
    assert_eq!(code, 0, "{stdout}");
}

#[test]
fn compare_refuses_runs_from_different_machines_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    write_run(&a, "CPU X", &[1000.0, 1010.0, 990.0]);
    write_run(&b, "CPU Y", &[1000.0, 1010.0, 990.0]);
    let (code, _, stderr) = runbench(&["compare".as_ref(), a.as_os_str(), b.as_os_str()]);
    assert_eq!(code, 2);
    assert!(stderr.contains("different machines"), "{stderr}");
    assert!(stderr.contains("CPU: CPU X (A) vs CPU Y (B)"), "{stderr}");
    assert!(stderr.contains("--force"), "{stderr}");
    let (code, stdout, _) = runbench(&[
        "compare".as_ref(),
        a.as_os_str(),
        b.as_os_str(),
        "--force".as_ref(),
    ]);
    assert_eq!(code, 0, "{stdout}");
}

#[test]
fn nightly_without_scenarios_names_the_folder() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = runbench(&[
        "nightly".as_ref(),
        "--scenarios".as_ref(),
        dir.path().as_os_str(),
        "--out".as_ref(),
        dir.path().join("out").as_os_str(),
    ]);
    assert_eq!(code, 2);
    assert!(stderr.contains("no *.toml scenario files in"), "{stderr}");
}
