//! report.md: a run folder explained in one page — what was run, on what machine, the numbers
//! per runtime, what to distrust about them, and the plots. A pure function of the data read
//! back from the folder, like the plots.

use crate::console::format::{at_least, duration_us, share, thousands};
use crate::plot::Plot;
use crate::results::read::{Param, RunData, Summary, REFERENCE_RUNTIME};
use crate::results::RowStatus;
use std::collections::BTreeMap;
use std::fmt::Write;

const MIB: f64 = 1024.0 * 1024.0;

pub fn markdown(data: &RunData, plots: &[Plot]) -> String {
    let mut md = String::new();
    let m = &data.meta;
    let _ = writeln!(md, "# {}\n", m.scenario);
    if !m.description.is_empty() {
        let _ = writeln!(md, "{}\n", m.description);
    }
    let _ = writeln!(md, "- **Load:** {}", crate::plot::load_line(data));
    let _ = writeln!(md, "- **Machine:** {}", machine(data));
    if let Some(r) = data.summary.iter().find(|r| r.row.server_processes_auto) {
        let _ = writeln!(
            md,
            "- **Server processes:** {}, chosen by `processes = \"auto\"`: the fewest whose share \
             of the connections fits the open-files limit",
            r.row.server_processes
        );
    }
    let mut run = Vec::new();
    if let Some(s) = &m.started_at {
        run.push(format!("started {s}"));
    }
    if let Some(v) = &m.runbench_version {
        run.push(format!("runbench {v}"));
    }
    if let Some(c) = &m.git_commit {
        run.push(format!("commit `{c}`"));
    }
    if let Some(r) = &m.rustc {
        run.push(r.clone());
    }
    if !run.is_empty() {
        let _ = writeln!(md, "- **Run:** {}", run.join(", "));
    }
    md.push('\n');
    if let Some(lead) = client_limit(data) {
        md.push_str(&lead);
    }

    if let Some(c) = data.capacity.as_deref() {
        md.push_str(&capacity_section(c));
    }
    if let Some(grid) = crate::plot::heatmap::Grid::of(data) {
        md.push_str(&workloads_section(&grid));
        if let Some(said) = one_trial(data) {
            md.push_str(&said);
        }
    }
    md.push_str("## Results\n\n");
    md.push_str(&table(data));
    md.push('\n');
    if let Some(said) = one_trial(data) {
        md.push_str(&said);
    }

    md.push_str("## Flags\n\n");
    let flags = flags(data, plots);
    if flags.is_empty() {
        md.push_str(
            "None: every runtime ran without errors, mismatches or a saturated load generator.\n",
        );
    } else {
        for f in flags {
            let _ = writeln!(md, "- {f}");
        }
    }
    md.push('\n');

    let notes = notes(data);
    if !notes.is_empty() {
        md.push_str("## Notes\n\n");
        for (rt, text) in notes {
            let _ = writeln!(md, "- **{}**: {text}", cell(&rt));
        }
        md.push('\n');
    }

    md.push_str("## Plots\n\n");
    for p in plots {
        match &p.png {
            Ok(_) => {
                let _ = writeln!(md, "### {}\n\n![{}]({})\n", p.caption, p.caption, p.file);
            }
            Err(e) => {
                let _ = writeln!(
                    md,
                    "### {}\n\n*{} could not be drawn: {}*\n",
                    p.caption,
                    p.file,
                    cell(e)
                );
            }
        }
    }

    md.push_str("## Parameters\n\n");
    if m.parameters.is_empty() {
        md.push_str("Unknown (meta.json could not be read).\n");
    } else {
        md.push_str("| parameter | value |\n| --- | --- |\n");
        for (k, v) in &m.parameters {
            let v = if k == "load.threads" {
                format!("{v} (per load process)")
            } else {
                v.clone()
            };
            let _ = writeln!(md, "| `{k}` | {} |", cell(&v));
        }
        if let Some(ran) = load_that_ran(data) {
            let _ = writeln!(md, "| load that ran | {ran} |");
        }
    }
    md.push_str(
        "\nFiles: `summary.csv` (one row per runtime), `percentiles.csv` (latency spectrum), \
         `meta.json` (scenario and machine); `runbench plot <this folder>` redraws the plots and \
         this report from them.\n",
    );
    md
}

/// The load processes and threads the rows ran with (the scenario's `load.threads` is per
/// process, and a run splits its connections over processes by the open-files limit): `3
/// processes × 1 thread (3 threads)`, or one entry per distinct shape.
fn load_that_ran(data: &RunData) -> Option<String> {
    let mut seen: Vec<(u64, u64)> = Vec::new();
    for r in &data.summary {
        if let (Some(p), Some(t)) = (r.row.load_processes, r.row.load_threads) {
            if !seen.contains(&(p, t)) {
                seen.push((p, t));
            }
        }
    }
    let plural = |n: u64, one: &str| {
        if n == 1 {
            format!("1 {one}")
        } else {
            format!("{n} {one}es")
        }
    };
    let shapes: Vec<String> = seen
        .iter()
        .map(|&(p, t)| format!("{} with {t} thread(s) in all", plural(p, "process")))
        .collect();
    (!shapes.is_empty()).then(|| shapes.join("; "))
}

/// A `[[workload]]` sweep: per workload point, the answer first (which runtime served the
/// most), then the others relative to it (the heatmap's cells, workloads.png).
fn workloads_section(grid: &crate::plot::heatmap::Grid) -> String {
    let mut md = String::from(
        "## Workloads\n\nWho served the most requests/s at each workload, and every other \
         runtime as a share of it (1.00 = as many; workloads.png draws the grid; ⚠: the row's \
         audit flagged a figure, see Flags):\n\n",
    );
    for line in grid.answers() {
        let _ = writeln!(md, "- {line}");
    }
    md.push('\n');
    md
}

fn machine(data: &RunData) -> String {
    let m = &data.meta;
    let mut parts = Vec::new();
    parts.push(m.cpu_model.clone().unwrap_or_else(|| "unknown CPU".into()));
    if let Some(c) = m.cores {
        parts.push(format!("{c} cores"));
    }
    if let Some(k) = &m.kernel {
        parts.push(format!("Linux {k}"));
    }
    parts.join(", ")
}

/// Rows in reading order: measured rows fastest first, then the lower bounds (a bound is not
/// ranked above a measurement it may not reach); in a sweep, by runtime then point.
fn ordered(data: &RunData) -> Vec<&Summary> {
    let swept = data.swept();
    let mut rows: Vec<&Summary> = data.summary.iter().collect();
    let workloads = workload_order(data);
    if swept.is_empty() && workloads.len() < 2 {
        rows.sort_by(|a, b| a.row.reading_order(&b.row));
    } else {
        let order = data.runtimes();
        rows.sort_by(|a, b| {
            let ia = order.iter().position(|r| r == a.runtime());
            let ib = order.iter().position(|r| r == b.runtime());
            let wa = workloads.iter().position(|w| *w == a.row.workload);
            let wb = workloads.iter().position(|w| *w == b.row.workload);
            ia.cmp(&ib)
                .then_with(|| crate::results::read::cmp_point(&a.point(&swept), &b.point(&swept)))
                .then(wa.cmp(&wb))
        });
    }
    rows
}

/// The workloads' names in the scenario's order (meta.json), then any it does not list.
fn workload_order(data: &RunData) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    for s in &data.summary {
        if !names.contains(&s.row.workload.as_str()) {
            names.push(&s.row.workload);
        }
    }
    let order = &data.meta.workloads;
    names.sort_by_key(|n| order.iter().position(|w| w == n).unwrap_or(usize::MAX));
    names
}

/// Which optional columns the results table has.
struct Columns {
    /// A `[[workload]]` sweep: the workload's name after the runtime.
    workloads: bool,
    swept: Vec<Param>,
    reference: bool,
    ci: bool,
    slo: bool,
}

fn table(data: &RunData) -> String {
    let cols = Columns {
        workloads: workload_order(data).len() > 1,
        swept: data.swept(),
        reference: data
            .summary
            .iter()
            .any(|s| s.runtime() == REFERENCE_RUNTIME),
        ci: data
            .summary
            .iter()
            .any(|s| s.row.requests_per_sec_ci_low.is_some()),
        slo: data.summary.iter().any(|s| !s.row.slo.is_empty()),
    };
    let head = table_head(&cols);
    let mut out = format!("| {} |\n", head.join(" | "));
    let align: Vec<&str> = head
        .iter()
        .enumerate()
        .map(|(i, h)| {
            if i == 0 || h == "status" || h == "SLO" || h == "workload" {
                "---"
            } else {
                "---:"
            }
        })
        .collect();
    let _ = writeln!(out, "| {} |", align.join(" | "));
    for r in ordered(data) {
        let _ = writeln!(out, "| {} |", table_row(data, &cols, r).join(" | "));
    }
    out
}

fn table_head(cols: &Columns) -> Vec<String> {
    let mut head: Vec<String> = vec!["runtime".into()];
    if cols.workloads {
        head.push("workload".into());
    }
    head.extend(cols.swept.iter().map(|p| p.name().to_string()));
    let rps = if cols.ci {
        "requests/s [CI]"
    } else {
        "requests/s"
    };
    head.push(rps.into());
    head.extend(["p50", "p99", "peak RSS MiB"].map(String::from));
    if cols.reference {
        head.push(format!("vs {REFERENCE_RUNTIME}"));
    }
    head.extend(["CPU/req", "errors", "status"].map(String::from));
    if cols.slo {
        head.push("SLO".into());
    }
    head
}

fn table_row(data: &RunData, cols: &Columns, r: &Summary) -> Vec<String> {
    // Runtime names come from plugin headers too: escaped like every cell.
    let mut c: Vec<String> = vec![format!("**{}**", cell(r.runtime()))];
    if cols.workloads {
        c.push(cell(&r.row.workload));
    }
    for &p in &cols.swept {
        c.push(r.param(p).map_or("-".into(), |v| fmt_param(p, v)));
    }
    c.push(rps_cell(r));
    c.push(r.row.p50_us.map_or("-".into(), duration_us));
    c.push(r.row.p99_us.map_or("-".into(), duration_us));
    c.push(fixed(
        r.row.server_rss_peak_bytes.map(|b| b as f64 / MIB),
        1,
    ));
    if cols.reference {
        let ratio = match (data.reference_for(r), r.row.requests_per_sec) {
            (Some(e), Some(v)) => (e.row.requests_per_sec)
                .filter(|&e| e > 0.0)
                .map_or("-".into(), |e| share(v, e, r.lower_bound())),
            _ => "-".into(),
        };
        c.push(ratio);
    }
    c.push(
        r.row
            .server_cpu_us_per_request
            .map_or("-".into(), duration_us),
    );
    c.push(r.row.errors.map_or("-".into(), |e| e.to_string()));
    c.push(match r.row.status {
        RowStatus::Ok if r.row.audit.is_empty() || r.row.audit == "ok" => "ok".into(),
        RowStatus::Ok => "ok, audit ⚠".into(),
        RowStatus::Skipped => "skipped".into(),
        RowStatus::Interrupted => "**interrupted**".into(),
        RowStatus::Failed => "**failed**".into(),
    });
    if cols.slo {
        c.push(match r.row.slo.as_str() {
            "fail" => format!("**fail**: {}", cell(&r.row.slo_broken)),
            other => other.to_string(),
        });
    }
    c
}

/// Requests/s with `≥` for a lower bound and the interval over trials with its coverage.
fn rps_cell(r: &Summary) -> String {
    let mut rps = (r.row.requests_per_sec).map_or("-".into(), |v| at_least(v, r.lower_bound()));
    if let (Some(lo), Some(hi)) = (
        r.row.requests_per_sec_ci_low,
        r.row.requests_per_sec_ci_high,
    ) {
        let level = r
            .row
            .requests_per_sec_ci_level
            .map(|l| format!(", {:.0}%", l * 100.0))
            .unwrap_or_default();
        rps = format!("{rps} [{}–{}{level}]", thousands(lo), thousands(hi));
    }
    rps
}

/// The capacity search's answer first: "at p99 <= 5ms: monoio 212k/s, tokio 198k/s, ...".
fn capacity_section(rows: &[crate::results::CapacityRow]) -> String {
    let mut rows: Vec<_> = rows.iter().collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.capacity.unwrap_or(0)));
    let slo = rows.first().map(|r| r.slo.clone()).unwrap_or_default();
    let answer: Vec<String> = rows
        .iter()
        .map(|r| match (r.capacity, r.interval_high) {
            (Some(c), Some(_)) => format!("{} {}/s", r.runtime, thousands(c as f64)),
            (Some(c), None) => format!("{} ≥ {}/s", r.runtime, thousands(c as f64)),
            (None, _) => format!("{} none", r.runtime),
        })
        .collect();
    let mut md = format!(
        "## Capacity\n\nAt {}: {}.\n\n",
        cell(&slo),
        answer.join(", ")
    );
    md.push_str(
        "| runtime | capacity req/s | fails at req/s | binding limit | probes | note |\n\
         | --- | ---: | ---: | --- | ---: | --- |\n",
    );
    for r in rows {
        let num = |v: Option<u64>| v.map_or("-".into(), |v| thousands(v as f64));
        let _ = writeln!(
            md,
            "| **{}** | {} | {} | {} | {} | {} |",
            r.runtime,
            num(r.capacity),
            num(r.interval_high),
            cell(&r.binding_limit),
            r.probes,
            cell(&r.note)
        );
    }
    md.push_str(
        "\nEach probe is a row of `trials.csv` (`probe`: step-up, bisect, confirm, recheck); \
         a probe the load generator could not drive is inconclusive and runs again; three in a \
         row make that rate the client's ceiling, below which the search goes on, so a capacity \
         with that note is a lower bound.\n\n",
    );
    md
}

/// One line per distinct reason, with the rows it concerns, in the order they first appear
/// (not one near-identical sentence per row).
fn flags(data: &RunData, plots: &[Plot]) -> Vec<String> {
    let swept = data.swept();
    let mut grouped: Vec<(String, Vec<String>)> = Vec::new();
    let mut add = |who: String, reason: String| match grouped.iter_mut().find(|g| g.0 == reason) {
        Some(g) => g.1.push(who),
        None => grouped.push((reason, vec![who])),
    };
    for r in ordered(data) {
        let at: Vec<String> = swept
            .iter()
            .filter_map(|&p| r.param(p).map(|v| p.describe(v)))
            .collect();
        let who = if at.is_empty() {
            format!("**{}**", cell(r.runtime()))
        } else {
            format!("**{}** at {}", cell(r.runtime()), at.join(", "))
        };
        for reason in row_flags(r) {
            add(who.clone(), reason);
        }
    }
    let mut out: Vec<String> = grouped
        .into_iter()
        .map(|(reason, who)| format!("{}: {reason}", who.join(", ")))
        .collect();
    for p in plots {
        if let Err(e) = &p.png {
            out.push(format!("`{}` could not be drawn: {}", p.file, cell(e)));
        }
    }
    out.extend(data.warnings.iter().map(|w| cell(w)));
    out
}

/// What is to be said of one row, each reason worded the same for every row it concerns.
fn row_flags(r: &Summary) -> Vec<String> {
    let mut out = Vec::new();
    match r.row.status {
        RowStatus::Ok => {}
        RowStatus::Skipped => out.push(format!("skipped: {}", cell(&r.row.error))),
        RowStatus::Interrupted => out.push(format!("interrupted: {}", cell(&r.row.error))),
        RowStatus::Failed => out.push(format!("failed: {}", cell(&r.row.error))),
    }
    if !r.row.audit.is_empty() && r.row.audit != "ok" {
        out.push(format!(
            "the run's own witnesses disagree (the numbers are shown as measured; look before \
             acting on them): {}",
            cell(&r.row.audit)
        ));
    }
    if r.lower_bound() {
        out.push(
            "the load generator was saturated, so requests/s is a lower bound: the server may \
             be faster than measured."
                .into(),
        );
    }
    if let Some(m) = r.row.mismatched_bytes.filter(|&m| m > 0) {
        out.push(format!("{m} echoed bytes differed from what was sent."));
    }
    if let Some(e) = r.row.errors.filter(|&e| e > 0) {
        out.push(format!(
            "{e} connection errors ({}).",
            cell(&r.row.error_kinds)
        ));
    }
    if r.row.shutdown_overrun == Some(true) {
        out.push(format!(
            "the server did not stop within the shutdown grace period{}.",
            r.row
                .shutdown_ms
                .map(|ms| format!(" (took {ms:.0} ms)"))
                .unwrap_or_default()
        ));
    }
    out
}

/// When the client was the limit of some rows, the report says so first: those numbers
/// measured the load generator, and what would measure the servers instead.
fn client_limit(data: &RunData) -> Option<String> {
    let measured: Vec<&Summary> = data.summary.iter().filter(|r| r.ok()).collect();
    let bounded: Vec<String> = (measured.iter())
        .filter(|r| r.lower_bound())
        .map(|r| format!("**{}**", cell(r.runtime())))
        .collect();
    if bounded.is_empty() {
        return None;
    }
    Some(format!(
        "**The client was the limit** for {} of {} measured rows ({}): their requests/s are \
         lower bounds (≥) and their latencies include the load generator's own waiting, so this \
         run measured the client there, not the servers. To measure the servers: give the load \
         more CPUs (`[load] cpus`, `threads`), use fewer connections or a lower rate, or run the \
         load from more machines (`runbench run --agents`).\n\n",
        bounded.len(),
        measured.len(),
        bounded.join(", ")
    ))
}

/// Under the tables of a run whose rows have one trial each (no noise estimate): that their
/// order is no ranking, as the terminal says.
fn one_trial(data: &RunData) -> Option<String> {
    let measured: Vec<&Summary> = data.summary.iter().filter(|r| r.ok()).collect();
    let single = measured.iter().any(|r| r.row.requests_per_sec_cv.is_none());
    (measured.len() > 1 && single).then(|| {
        "One trial each: no order here is a ranking and no difference a ratio, since one \
         trial has no noise estimate (rerun with `--repeat 5`).\n\n"
            .to_string()
    })
}

/// Per-runtime notes for the runtimes in this run: standing ones first, then the run's own.
fn notes(data: &RunData) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let runtimes = data.runtimes();
    let mut add = |rt: &str, text: &str| {
        let text = text.trim();
        if text.is_empty() || !runtimes.iter().any(|r| r == rt) {
            return;
        }
        let list = out.entry(rt.to_string()).or_default();
        if !list.iter().any(|t| t == text) {
            list.push(text.to_string());
        }
    };
    // Standing caveats (crate::plugin::notes), then whatever the run itself recorded.
    for rt in &runtimes {
        if let Some(text) = crate::plugin::notes::runtime_note(rt) {
            add(rt, text);
        }
    }
    for (rt, text) in &data.meta.notes {
        add(rt, text);
    }
    for s in &data.summary {
        if let Some(n) = &s.extra.note {
            add(s.runtime(), n);
        }
    }
    out.into_iter()
        .map(|(k, v)| (k, cell(&v.join(" "))))
        .collect()
}

fn fmt_param(p: Param, v: f64) -> String {
    match p {
        Param::TargetRate => thousands(v),
        _ if v.fract() == 0.0 => format!("{}", v as i64),
        _ => format!("{v}"),
    }
}

fn fixed(v: Option<f64>, decimals: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.decimals$}"))
}

/// Text safe inside a Markdown table cell or list item (one line, no column breaks).
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_load_that_ran_is_said_beside_the_per_process_setting() {
        let row = |processes, threads| Summary {
            row: crate::results::SummaryRow {
                load_processes: Some(processes),
                load_threads: Some(threads),
                ..crate::results::SummaryRow::default()
            },
            extra: Default::default(),
        };
        let data = run_with(vec![row(3, 3), row(3, 3), row(1, 1)]);
        assert_eq!(
            load_that_ran(&data).as_deref(),
            Some("3 processes with 3 thread(s) in all; 1 process with 1 thread(s) in all")
        );
    }

    fn run_of(rows: &[(&str, f64, bool, Option<f64>)]) -> RunData {
        let summary = rows
            .iter()
            .map(|&(runtime, rps, bound, cv)| Summary {
                row: crate::results::SummaryRow {
                    runtime: runtime.into(),
                    requests_per_sec: Some(rps),
                    requests_per_sec_cv: cv,
                    loadgen_saturated: Some(bound),
                    network: "kernel".into(),
                    ..crate::results::SummaryRow::default()
                },
                extra: Default::default(),
            })
            .collect();
        run_with(summary)
    }

    /// A run of these summary rows and nothing else.
    fn run_with(summary: Vec<Summary>) -> RunData {
        RunData {
            dir: std::path::PathBuf::new(),
            meta: Default::default(),
            summary,
            percentiles: Vec::new(),
            percentiles_have_point: true,
            trials: None,
            timeline: None,
            capacity: None,
            warnings: Vec::new(),
        }
    }

    /// Issue 26's 50k run: a lower bound is not ranked above a measurement, and a share of an
    /// epoll row that is itself a lower bound is not given (it would be a share of no limit).
    #[test]
    fn lower_bounds_follow_the_measured_rows_and_a_bounded_epoll_is_no_limit() {
        let data = run_of(&[
            ("tokio", 90_000.0, true, None),
            ("smol", 50_000.0, false, None),
            ("epoll", 80_000.0, true, None),
        ]);
        let order: Vec<&str> = ordered(&data).iter().map(|r| r.runtime()).collect();
        assert_eq!(order, ["smol", "tokio", "epoll"]);
        assert!(data.reference_for(&data.summary[0]).is_none());
        let t = table(&data);
        assert!(!t.contains("% |"), "no share of a bounded epoll:\n{t}");

        // A measured epoll is the limit; a bounded row's share is at least what it shows.
        let data = run_of(&[
            ("tokio", 90_000.0, true, None),
            ("epoll", 120_000.0, false, None),
        ]);
        let t = table(&data);
        assert!(t.contains("| ≥ 75% |"), "{t}");
        assert!(t.contains("| 100% |"), "{t}");
    }

    #[test]
    fn one_trial_is_said_to_be_no_ranking_and_trials_are_not() {
        let data = run_of(&[
            ("tokio", 90_000.0, false, None),
            ("smol", 80_000.0, false, None),
        ]);
        assert!(one_trial(&data)
            .unwrap()
            .contains("no order here is a ranking"));
        let data = run_of(&[
            ("tokio", 90_000.0, false, Some(0.01)),
            ("smol", 80_000.0, false, Some(0.02)),
        ]);
        assert_eq!(one_trial(&data), None);
        assert_eq!(
            one_trial(&run_of(&[("tokio", 90_000.0, false, None)])),
            None
        );
    }

    #[test]
    fn cell_keeps_a_table_row_intact() {
        assert_eq!(cell("a|b\nc"), "a\\|b c");
    }
}
