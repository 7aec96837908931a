//! Plots and report.md from small run folders written here: every chart is a real PNG of the
//! documented size with something drawn on it, `runbench plot` redraws the same bytes from the
//! CSV files, and a sweep gets its sweep chart.

mod support;

use runbench::measure::SPECTRUM;
use runbench::plot::render::render_dir;
use runbench::results::{self, PercentileRow, RowStatus, SummaryRow};
use std::collections::HashSet;
use std::path::Path;
use std::process::Command;

const THROUGHPUT: (u32, u32) = (1280, 720);
const LATENCY: (u32, u32) = (1280, 760);
const RESOURCES: (u32, u32) = (1400, 680);
const TIMELINE: (u32, u32) = (1280, 940);
const SWEEP: (u32, u32) = (1500, 720);

fn row(runtime: &str, connections: usize, rps: Option<f64>) -> SummaryRow {
    let measured = rps.is_some();
    let m = |v: f64| measured.then_some(v);
    SummaryRow {
        scenario: "fixture".into(),
        runtime: runtime.into(),
        runtime_version: "1.0".into(),
        trial: Some(0),
        trials: 1,
        status: if measured {
            RowStatus::Ok
        } else {
            RowStatus::Failed
        },
        error: if measured {
            String::new()
        } else {
            "server exited with signal 11 before ready".into()
        },
        connections,
        connections_ok: measured.then_some(connections as u64),
        payload_bytes: 64,
        server_threads: 2,
        server_processes: 1,
        duration_s: 3.0,
        requests: rps.map(|r| (r * 3.0) as u64),
        requests_per_sec: rps,
        p50_us: m(50.0 + connections as f64 / 10.0),
        p90_us: m(80.0 + connections as f64 / 10.0),
        p99_us: m(200.0 + connections as f64 / 5.0),
        p999_us: m(900.0),
        max_us: m(4000.0),
        mean_us: m(60.0),
        errors: m(0.0).map(|_| 0),
        mismatched_bytes: m(0.0).map(|_| 0),
        server_cpu_user_s: m(1.0),
        server_cpu_sys_s: m(2.0),
        server_cpu_us_per_request: rps.map(|r| 3e6 / (r * 3.0)),
        server_rss_peak_bytes: m(0.0).map(|_| 20 << 20),
        shutdown_ms: m(5.0),
        shutdown_overrun: m(0.0).map(|_| false),
        server_accepted: measured.then_some(connections as u64),
        server_cut: m(0.0).map(|_| 0),
        loadgen_busy: m(0.5),
        loadgen_saturated: m(0.0).map(|_| runtime == "smol"),
        loadgen_cpu_s: m(1.0),
        ..Default::default()
    }
}

fn spectrum(runtime: &str, scale: f64) -> Vec<PercentileRow> {
    SPECTRUM
        .iter()
        .map(|&p| PercentileRow {
            runtime: runtime.into(),
            trial: 0,
            percentile: p,
            latency_us: scale * (20.0 + p * p / 40.0),
            ..Default::default()
        })
        .collect()
}

fn meta(dir: &Path, shutdown_at_s: Option<f64>) {
    let meta = serde_json::json!({
        "runbench_version": "0.1.0",
        "scenario": {
            "name": "fixture",
            "description": "A fixture for the plot tests",
            "runtimes": null,
            "server": {"threads": 2, "cpus": [0], "max_connections": 0, "processes": 1},
            "load": {"connections": 100, "payload_bytes": 64, "warmup": "1s", "duration": "3s",
                     "cpus": [1], "threads": 1},
            "shutdown": {"grace": "2s"}
        },
        "started_at": "2026-01-01T00:00:00+00:00",
        "host": {"cpu_model": "Test CPU", "cores": 2, "kernel": "6.1.0"},
        "git_commit": "abc123",
        "rustc": "rustc 1.85.0",
        "plugins": [],
        "warmup_s": 1.0,
        "duration_s": 3.0,
        "shutdown_at_s": shutdown_at_s,
        "runtime_notes": {"tokio": "a note the run wrote for tokio"}
    });
    std::fs::write(
        dir.join("meta.json"),
        serde_json::to_vec_pretty(&meta).unwrap(),
    )
    .unwrap();
}

/// Three runtimes (one saturated), one failed, CI columns, trials and a timeline.
fn write_multi_runtime(dir: &Path) {
    let rows = vec![
        row("epoll", 100, Some(90_000.0)),
        row("tokio", 100, Some(80_000.0)),
        row("smol", 100, Some(60_000.0)),
        row("async-std", 100, None),
    ];
    let rows: Vec<SummaryRow> = rows
        .into_iter()
        .map(|mut r| {
            r.trials = 3;
            r.trial = None;
            r.requests_per_sec_ci_low = r.requests_per_sec.map(|v| v * 0.97);
            r.requests_per_sec_ci_high = r.requests_per_sec.map(|v| v * 1.02);
            r
        })
        .collect();
    let summary = results::summary_csv(&rows).unwrap();
    std::fs::write(dir.join("summary.csv"), summary).unwrap();
    let mut trials = Vec::new();
    for t in 0..3 {
        for r in rows.iter().filter(|r| r.requests_per_sec.is_some()) {
            let mut tr = r.clone();
            tr.trial = Some(t);
            tr.requests_per_sec = r.requests_per_sec.map(|v| v * (0.98 + 0.01 * t as f64));
            trials.push(tr);
        }
    }
    std::fs::write(
        dir.join("trials.csv"),
        results::summary_csv(&trials).unwrap(),
    )
    .unwrap();
    let mut pct = spectrum("epoll", 1.0);
    pct.extend(spectrum("tokio", 1.3));
    pct.extend(spectrum("smol", 2.0));
    std::fs::write(
        dir.join("percentiles.csv"),
        results::percentiles_csv(&pct).unwrap(),
    )
    .unwrap();
    let mut tl = String::from(
        "runtime,trial,t_s,requests,errors,p50_us,p99_us,server_cpu_user_s,server_cpu_sys_s,\
         server_rss_bytes,server_threads,server_ctx_switches\n",
    );
    for (rt, rate) in [("epoll", 90_000), ("tokio", 80_000), ("smol", 60_000)] {
        for i in 1..=8 {
            let t = i as f64 * 0.5;
            let n = rate / 2 * (if i <= 2 { i } else { 2 }) / 2;
            tl.push_str(&format!(
                "{rt},0,{t},{n},0,50,{},0.1,0.1,1000000,3,10\n",
                200 + i * 10
            ));
        }
    }
    std::fs::write(dir.join("timeline.csv"), tl).unwrap();
    meta(dir, Some(3.5));
}

/// Two runtimes over connections 10, 100, 1000 (plain summary columns only).
fn write_sweep(dir: &Path) {
    let mut rows = Vec::new();
    let mut pct = Vec::new();
    for rt in ["epoll", "tokio"] {
        for c in [10, 100, 1000] {
            rows.push(row(rt, c, Some(c as f64 * 50.0 + 10_000.0)));
            pct.extend(spectrum(rt, c as f64 / 10.0));
        }
    }
    std::fs::write(
        dir.join("summary.csv"),
        results::summary_csv(&rows).unwrap(),
    )
    .unwrap();
    std::fs::write(
        dir.join("percentiles.csv"),
        results::percentiles_csv(&pct).unwrap(),
    )
    .unwrap();
    meta(dir, None);
}

/// Decodes a PNG, checks its size, and counts its distinct colours.
fn check_png(path: &Path, size: (u32, u32)) {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .unwrap_or_else(|e| panic!("{} does not decode: {e}", path.display()));
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), size, "{}", path.display());
    let px = info.color_type.samples();
    let colours: HashSet<&[u8]> = buf[..info.buffer_size()].chunks(px).collect();
    assert!(
        colours.len() > 20,
        "{} looks blank: {} colours",
        path.display(),
        colours.len()
    );
}

#[test]
fn every_chart_of_a_multi_runtime_run_is_a_drawn_png_of_its_size() {
    let dir = tempfile::tempdir().unwrap();
    write_multi_runtime(dir.path());
    let r = render_dir(dir.path()).unwrap();
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    check_png(&dir.path().join("throughput.png"), THROUGHPUT);
    check_png(&dir.path().join("latency.png"), LATENCY);
    check_png(&dir.path().join("resources.png"), RESOURCES);
    check_png(&dir.path().join("timeline.png"), TIMELINE);
    assert!(!dir.path().join("sweep-connections.png").exists());
    assert!(dir.path().join("report.md").exists());
}

/// `plot --out` writes elsewhere and leaves the run folder as it was.
#[test]
fn plot_out_writes_the_charts_elsewhere_and_only_reads_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    std::fs::create_dir_all(&run).unwrap();
    write_multi_runtime(&run);
    let before: Vec<_> = std::fs::read_dir(&run)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let out = dir.path().join("charts");
    let o = support::runbench(&[
        "plot",
        run.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", support::text(&o));
    check_png(&out.join("throughput.png"), THROUGHPUT);
    assert!(out.join("report.md").exists());
    let after: Vec<_> = std::fs::read_dir(&run)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(before.len(), after.len(), "the run folder is only read");
}

#[test]
fn report_has_the_table_flags_notes_and_every_plot() {
    let dir = tempfile::tempdir().unwrap();
    write_multi_runtime(dir.path());
    render_dir(dir.path()).unwrap();
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    for want in [
        "# fixture",
        "A fixture for the plot tests",
        "Test CPU, 2 cores, Linux 6.1.0",
        "| **tokio** | 80,000 [77,600–81,600] | 60.0 µs | 220 µs | 20.0 | 89% | 12.5 µs | 0 | ok |",
        "| p50 | p99 | peak RSS MiB | vs epoll | CPU/req |",
        "**smol**: the load generator was saturated",
        "lower bound",
        "**The client was the limit** for 1 of 3 measured rows (**smol**)",
        "--agents",
        "**async-std**: failed: server exited with signal 11 before ready",
        "**tokio**: a note the run wrote for tokio",
        "![Requests per second per runtime](throughput.png)",
        "(latency.png)",
        "(resources.png)",
        "(timeline.png)",
        "| `load.connections` | 100 |",
    ] {
        assert!(md.contains(want), "report.md lacks {want:?}:\n{md}");
    }
}

/// A reason that concerns several rows is one flag naming them all, not a sentence per row.
#[test]
fn a_flag_shared_by_rows_is_one_line_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    write_multi_runtime(dir.path());
    let path = dir.path().join("summary.csv");
    let mut r = csv::Reader::from_path(&path).unwrap();
    let headers = r.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (rt, sat) = (col("runtime"), col("loadgen_saturated"));
    let rows: Vec<csv::StringRecord> = r
        .records()
        .map(|rec| {
            let rec = rec.unwrap();
            let mut fields: Vec<String> = rec.iter().map(str::to_string).collect();
            if fields[rt] == "tokio" {
                fields[sat] = "true".into();
            }
            csv::StringRecord::from(fields)
        })
        .collect();
    let mut w = csv::Writer::from_path(&path).unwrap();
    w.write_record(&headers).unwrap();
    for rec in &rows {
        w.write_record(rec).unwrap();
    }
    w.flush().unwrap();
    render_dir(dir.path()).unwrap();
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    let lines: Vec<&str> = md
        .lines()
        .filter(|l| l.contains("the load generator was saturated"))
        .collect();
    assert_eq!(lines.len(), 1, "{md}");
    assert!(
        lines[0].contains("**tokio**") && lines[0].contains("**smol**"),
        "{}",
        lines[0]
    );
    assert!(md.contains("for 2 of 3 measured rows"), "{md}");
}

#[test]
fn runbench_plot_redraws_the_same_bytes_from_the_csv_files() {
    let dir = tempfile::tempdir().unwrap();
    write_multi_runtime(dir.path());
    let first = render_dir(dir.path()).unwrap();
    let before: Vec<(String, Vec<u8>)> = first
        .files
        .iter()
        .map(|f| (f.clone(), std::fs::read(dir.path().join(f)).unwrap()))
        .collect();
    for (f, _) in &before {
        std::fs::remove_file(dir.path().join(f)).unwrap();
    }
    let out = Command::new(support::bin())
        .arg("plot")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (f, bytes) in before {
        let again = std::fs::read(dir.path().join(&f)).unwrap();
        assert!(again == bytes, "{f} differs when redrawn");
    }
}

#[test]
fn a_sweep_over_connections_gets_sweep_connections_png() {
    let dir = tempfile::tempdir().unwrap();
    write_sweep(dir.path());
    let r = render_dir(dir.path()).unwrap();
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    check_png(&dir.path().join("sweep-connections.png"), SWEEP);
    assert!(!dir.path().join("sweep-payload_bytes.png").exists());
    // The per-runtime charts show the largest point, and say so.
    check_png(&dir.path().join("throughput.png"), THROUGHPUT);
    check_png(&dir.path().join("latency.png"), LATENCY);
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(md.contains("Requests per second per runtime at 1,000 connections"));
    assert!(md.contains("| runtime | connections | requests/s |"));
    assert!(md.contains("(sweep-connections.png)"));
}

#[test]
fn a_run_without_meta_json_or_percentiles_still_gets_plots_and_says_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let rows = vec![row("tokio", 100, Some(50_000.0))];
    std::fs::write(
        dir.path().join("summary.csv"),
        results::summary_csv(&rows).unwrap(),
    )
    .unwrap();
    let r = render_dir(dir.path()).unwrap();
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    check_png(&dir.path().join("throughput.png"), THROUGHPUT);
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(md.contains("meta.json could not be read"), "{md}");
    assert!(md.contains("percentiles.csv is missing"), "{md}");
}

#[test]
fn runbench_plot_on_a_folder_without_results_names_what_it_needs() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(support::bin())
        .arg("plot")
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("has no summary.csv"), "{err}");
}

/// `runbench plot` on a summary holding `inf` and 1.7e308 looped forever allocating (24 GB
/// before the kernel killed it). Now every chart is drawn from the finite values, the others
/// are named, and the whole command stays within 1 GiB and a few seconds.
#[test]
fn plot_on_infinite_or_huge_values_draws_the_rest_and_says_what_it_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let mut tokio = row("tokio", 100, Some(50_000.0));
    tokio.requests_per_sec = Some(f64::INFINITY);
    tokio.p99_us = Some(1.7e308);
    let rows = vec![tokio, row("smol", 100, Some(40_000.0))];
    std::fs::write(
        dir.path().join("summary.csv"),
        results::summary_csv(&rows).unwrap(),
    )
    .unwrap();
    let mut pct = spectrum("tokio", 1.0);
    pct[3].latency_us = f64::INFINITY;
    pct.extend(spectrum("smol", 1.5));
    std::fs::write(
        dir.path().join("percentiles.csv"),
        results::percentiles_csv(&pct).unwrap(),
    )
    .unwrap();
    let mut cmd = Command::new(support::bin());
    cmd.arg("plot").arg(dir.path());
    support::limit(&mut cmd, support::Limit::Memory(1 << 30));
    let out = support::output_within(&mut cmd, std::time::Duration::from_secs(30));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    for part in [
        "summary.csv row 2: `requests_per_sec` = inf is not a finite number",
        "summary.csv row 2: `p99_us` = 1.7e308 is not a finite number",
        "percentiles.csv row 5: `latency_us` = inf",
        "left out of the plots",
    ] {
        assert!(err.contains(part), "missing {part:?} in:\n{err}");
    }
    check_png(&dir.path().join("throughput.png"), THROUGHPUT);
    check_png(&dir.path().join("latency.png"), LATENCY);
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(
        md.contains("`requests_per_sec` = inf is not a finite number"),
        "{md}"
    );
    assert!(md.contains("| **smol** |"), "{md}");
}

/// A `[[workload]]` sweep: three runtimes at two workloads, one skipped at the second.
fn write_workloads(dir: &Path) {
    let mut rows = Vec::new();
    let mut pct = Vec::new();
    for (rt, cpu, io) in [
        ("epoll", 40_000.0, 30_000.0),
        ("tokio", 36_000.0, 45_000.0),
        ("smol", 20_000.0, 0.0),
    ] {
        for (workload, rps) in [("cpu", cpu), ("io", io)] {
            let mut r = row(rt, 50, Some(rps));
            r.workload = workload.into();
            if rps == 0.0 {
                r = SummaryRow::skipped(
                    &r,
                    "the plugin does not serve the workload's sleep per request".into(),
                );
                r.requests_per_sec = None;
            }
            rows.push(r);
        }
        pct.extend(spectrum(rt, 1.0));
    }
    std::fs::write(
        dir.join("summary.csv"),
        results::summary_csv(&rows).unwrap(),
    )
    .unwrap();
    std::fs::write(
        dir.join("percentiles.csv"),
        results::percentiles_csv(&pct).unwrap(),
    )
    .unwrap();
    meta(dir, None);
}

#[test]
fn a_workload_sweep_gets_a_heatmap_and_a_report_section_that_leads_with_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    write_workloads(dir.path());
    let r = render_dir(dir.path()).unwrap();
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    check_png(&dir.path().join("workloads.png"), (1400, 760));
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    let section = md.find("## Workloads").expect("a Workloads section");
    assert!(section < md.find("## Results").unwrap(), "{md}");
    assert!(
        md.contains(
            "- **cpu**: `epoll` served the most (40,000 req/s); then `tokio` 0.90, `smol` 0.50"
        ),
        "{md}"
    );
    assert!(
        md.contains(
            "- **io**: `tokio` served the most (45,000 req/s); then `epoll` 0.67 (smol skipped)"
        ),
        "{md}"
    );
    assert!(md.contains("(workloads.png)"));
    assert!(md.contains("| runtime | workload | requests/s |"), "{md}");
    // One workload: no heatmap.
    let one = tempfile::tempdir().unwrap();
    write_multi_runtime(one.path());
    render_dir(one.path()).unwrap();
    assert!(!one.path().join("workloads.png").exists());
}
