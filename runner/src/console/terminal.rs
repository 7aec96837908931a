//! What a person at the terminal sees of a whole run (a 50k run is minutes, a nightly an hour):
//! the plan's estimate before it starts, one line per finished step (runtime, requests/s, p99,
//! status) with the run's place in it (step k of n, ETA), and at the end a table sorted fastest
//! first with the share of the `epoll` limit and, as hyperfine does, "tokio ran 1.12 ± 0.03
//! times faster than smol". On a terminal the place is also a line that stays under the step's
//! bar; elsewhere (CI, a log file) everything is plain lines.
//!
//! The texts are pure functions of the rows, so they are tested without a terminal.

use super::format::{at_least, duration_us as micros, paint, share, thousands, Look};
use crate::plan::budget;
use crate::plan::Plan;
use crate::results::read::REFERENCE_RUNTIME;
use crate::results::{RowStatus, SummaryRow};
use indicatif::{ProgressBar, ProgressState, ProgressStyle};
use std::fmt::Write;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The run's place among its steps.
pub struct Overall {
    total: usize,
    done: usize,
    started: Instant,
    /// The plan's estimate of the steps done so far and of those left.
    estimated_done: Duration,
    estimated_left: Duration,
    /// Probes of the capacity search in progress (the step that ends with it).
    probes: usize,
    /// The overall line, on a terminal.
    bar: Option<ProgressBar>,
    /// The ETA as of its last estimate and when that was: the overall line counts it down
    /// between steps, so it does not freeze while a long step runs.
    countdown: Arc<Mutex<(Instant, Duration)>>,
}

impl Overall {
    /// Says what the plan will take (and, over an hour, how to stop it) before it starts.
    pub fn start(plan: &Plan) -> Overall {
        let estimate = plan.estimate();
        let mut line = format!(
            "plan: {} measurement(s), estimated {}",
            plan.steps.len(),
            budget::hours(estimate.as_secs_f64())
        );
        if estimate > budget::LONG_PLAN {
            let end = chrono::Utc::now() + estimate;
            let _ = write!(
                line,
                " (until about {}); Ctrl-C stops it and keeps what was measured",
                end.format("%Y-%m-%d %H:%M UTC")
            );
        }
        super::log(&line);
        let countdown = Arc::new(Mutex::new((Instant::now(), estimate)));
        let bar = std::io::stderr().is_terminal().then(|| {
            // Hidden until the screen takes it (see `RunProgress::start`).
            let bar = ProgressBar::hidden();
            bar.set_length(plan.steps.len() as u64);
            let left = countdown.clone();
            bar.set_style(
                ProgressStyle::with_template("{prefix:>14.bold} {msg} · ETA {left}")
                    .expect("static template")
                    .with_key(
                        "left",
                        move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                            let (at, eta) = *left.lock().unwrap_or_else(|e| e.into_inner());
                            let _ = w.write_str(&budget::hours(
                                eta.saturating_sub(at.elapsed()).as_secs_f64(),
                            ));
                        },
                    ),
            );
            bar.set_prefix("overall");
            let bar = super::show(bar, true);
            bar.enable_steady_tick(Duration::from_secs(1));
            bar
        });
        let o = Overall {
            bar,
            total: plan.steps.len(),
            done: 0,
            started: Instant::now(),
            estimated_done: Duration::ZERO,
            estimated_left: estimate,
            probes: 0,
            countdown,
        };
        o.show();
        o
    }

    fn eta(&self) -> Duration {
        eta(
            self.estimated_done,
            self.estimated_left,
            self.started.elapsed(),
        )
    }

    fn show(&self) {
        *self.countdown.lock().unwrap_or_else(|e| e.into_inner()) = (Instant::now(), self.eta());
        if let Some(bar) = &self.bar {
            bar.set_position(self.done as u64);
            bar.set_message(format!(
                "step {} of {}",
                (self.done + 1).min(self.total),
                self.total,
            ));
        }
    }

    /// One line for a finished step.
    pub fn step_finished(&mut self, label: &str, row: &SummaryRow, estimate: Duration) {
        self.done += 1;
        self.estimated_done += estimate;
        self.estimated_left = self.estimated_left.saturating_sub(estimate);
        let eta = (self.done < self.total).then(|| self.eta());
        super::log(&step_line(self.done, self.total, label, row, eta));
        self.show();
    }

    /// One line for a finished probe of a capacity search: part of the step in progress, which
    /// ends with the search ([`Overall::search_finished`]).
    pub fn probe_finished(&mut self, label: &str, row: &SummaryRow, estimate: Duration) {
        self.probes += 1;
        self.estimated_done += estimate;
        self.estimated_left = self.estimated_left.saturating_sub(estimate);
        let k = (self.done + 1).min(self.total);
        let label = format!("{label} (probe {})", self.probes);
        let eta = Some(self.eta());
        super::log(&step_line(k, self.total, &label, row, eta));
        self.show();
    }

    /// A capacity search is done: its step is.
    pub fn search_finished(&mut self) {
        self.done += 1;
        self.probes = 0;
        self.show();
    }

    pub fn finish(self) {}
}

/// The overall line leaves the screen however the run ends.
impl Drop for Overall {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            super::hide(&bar, true);
        }
    }
}

/// The time left: the plan's estimate of the steps left, scaled by how the estimate compared
/// with the steps done (a slow machine's steps all run long), within a factor of 5 either way.
pub fn eta(estimated_done: Duration, estimated_left: Duration, elapsed: Duration) -> Duration {
    if estimated_done.is_zero() {
        return estimated_left;
    }
    let ratio = (elapsed.as_secs_f64() / estimated_done.as_secs_f64()).clamp(0.2, 5.0);
    Duration::from_secs_f64(estimated_left.as_secs_f64() * ratio)
}

/// `[3/12] tokio: 123,456 req/s, p99 812.0 µs, ok · ETA 4m 10s`.
pub fn step_line(
    k: usize,
    n: usize,
    label: &str,
    row: &SummaryRow,
    eta: Option<Duration>,
) -> String {
    let mut s = format!("[{k}/{n}] {label}: ");
    if let (Some(rps), Some(p99)) = (row.requests_per_sec, row.p99_us) {
        let _ = write!(s, "{} req/s, p99 {}, ", thousands(rps), micros(p99));
    }
    s.push_str(&status(row, 100));
    if let Some(eta) = eta {
        let _ = write!(s, " · ETA {}", budget::hours(eta.as_secs_f64()));
    }
    s
}

/// How a row's status looks: failed, worth a look (interrupted, `[slo]` broken, an audit flag),
/// skipped, or ok.
fn look(row: &SummaryRow) -> Look {
    match row.status {
        RowStatus::Failed => Look::Fail,
        RowStatus::Skipped => Look::Muted,
        RowStatus::Interrupted => Look::Warn,
        RowStatus::Ok if row.slo == "fail" || !(row.audit.is_empty() || row.audit == "ok") => {
            Look::Warn
        }
        RowStatus::Ok => Look::Ok,
    }
}

fn status(row: &SummaryRow, width: usize) -> String {
    let cut = |e: &str| {
        let one_line = e.replace(['\n', '\r'], " ");
        match one_line.char_indices().nth(width) {
            Some((i, _)) => format!("{}...", &one_line[..i]),
            None => one_line,
        }
    };
    let mut s = match row.status {
        RowStatus::Ok => "ok".into(),
        RowStatus::Failed => format!("FAILED: {}", cut(&row.error)),
        RowStatus::Interrupted => format!("INTERRUPTED: {}", cut(&row.error)),
        RowStatus::Skipped => format!("skipped: {}", cut(&row.error)),
    };
    if row.slo == "fail" {
        s.push_str(&format!("; SLO failed: {}", cut(&row.slo_broken)));
    }
    if !row.audit.is_empty() && row.audit != "ok" {
        s.push_str(&format!("; audit: {}", cut(&row.audit)));
    }
    s
}

/// The summary at the end, per sweep point: runtimes fastest first, the `epoll` share, and how
/// much faster the fastest ran than each other runtime where the run supports it; statuses in
/// colour when `colour` (see `format::colour`).
pub fn final_table(rows: &[SummaryRow], colour: bool) -> String {
    final_table_fitted(rows, colour, None)
}

/// [`final_table`] for a terminal of `width` columns: a row whose status does not fit beside its
/// numbers gets it on the lines below, wrapped at word boundaries.
pub fn final_table_fitted(rows: &[SummaryRow], colour: bool, width: Option<usize>) -> String {
    let mut points: Vec<&str> = Vec::new();
    for r in rows {
        if !points.contains(&r.point.as_str()) {
            points.push(&r.point);
        }
    }
    let mut out = String::new();
    for point in points {
        let mut group: Vec<&SummaryRow> = rows.iter().filter(|r| r.point == point).collect();
        // Measured rows fastest first, then the lower bounds (the client was their limit):
        // a bound is not ranked above a measurement it may not reach.
        group.sort_by(|a, b| class(a).cmp(&class(b)).then(rps(b).total_cmp(&rps(a))));
        if !point.is_empty() {
            let _ = writeln!(out, "{point}:");
        }
        out.push_str(&point_table(&group, colour, width));
        let said = comparisons(&group);
        match width {
            Some(w) => {
                for line in said.lines() {
                    let _ = writeln!(out, "{}", super::format::wrap(line, w, "    "));
                }
            }
            None => out.push_str(&said),
        }
        out.push('\n');
    }
    out
}

/// Requests/s of a row that has one (ok rows first when sorting), else -1.
fn rps(r: &SummaryRow) -> f64 {
    match (r.status, r.requests_per_sec) {
        (RowStatus::Ok, Some(v)) if v.is_finite() => v,
        _ => -1.0,
    }
}

/// Where a row goes in the table: measured rows, then lower bounds, then rows without a figure
/// (skipped, failed, interrupted).
fn class(r: &SummaryRow) -> u8 {
    match (rps(r) > 0.0, r.lower_bound()) {
        (true, false) => 0,
        (true, true) => 1,
        (false, _) => 2,
    }
}

fn point_table(group: &[&SummaryRow], colour: bool, width: Option<usize>) -> String {
    // The limit the others are a share of, where it was measured: a lower bound is no limit.
    let reference = group
        .iter()
        .find(|r| r.runtime == REFERENCE_RUNTIME && rps(r) > 0.0 && !r.lower_bound())
        .map(|r| rps(r));
    let trials = group.iter().any(|r| r.requests_per_sec_ci_low.is_some());
    let mut s = format!("  {:<16} {:>12}", "runtime", "req/s");
    if trials {
        let _ = write!(s, " {:>21}", "95% CI");
    }
    let _ = write!(s, " {:>10} {:>10}", "p50", "p99");
    if reference.is_some() {
        let _ = write!(s, " {:>9}", "vs epoll");
    }
    s.push_str("  status\n");
    for r in group {
        let cell = |v: Option<f64>, f: fn(f64) -> String| v.map_or("-".to_string(), f);
        let _ = write!(
            s,
            "  {:<16} {:>12}",
            r.runtime,
            (r.requests_per_sec).map_or("-".into(), |v| at_least(v, r.lower_bound()))
        );
        if trials {
            let ci = match (r.requests_per_sec_ci_low, r.requests_per_sec_ci_high) {
                (Some(lo), Some(hi)) => format!("[{} – {}]", thousands(lo), thousands(hi)),
                _ => "-".into(),
            };
            let _ = write!(s, " {ci:>21}");
        }
        let _ = write!(
            s,
            " {:>10} {:>10}",
            cell(r.p50_us, micros),
            cell(r.p99_us, micros)
        );
        if let Some(e) = reference {
            let share = (rps(r) > 0.0 && !on_tap(r)).then(|| share(rps(r), e, r.lower_bound()));
            let _ = write!(s, " {:>9}", share.unwrap_or_else(|| "-".into()));
        }
        let text = status(r, 60);
        let line_len = s.lines().last().map_or(0, |l| l.chars().count());
        match width {
            Some(w) if line_len + 2 + text.chars().count() > w => {
                s.push('\n');
                for line in super::format::wrap(&text, w.saturating_sub(6), "").lines() {
                    let _ = writeln!(s, "      {}", paint(line, look(r), colour));
                }
            }
            _ => {
                let _ = writeln!(s, "  {}", paint(&text, look(r), colour));
            }
        }
    }
    s
}

/// "tokio ran 1.12 ± 0.03 times faster than smol": the fastest against each other measured
/// runtime, only where the run can support it. The ± propagates the two coefficients of
/// variation over trials (as hyperfine does with standard deviations), and a ratio whose ± reaches
/// 1 is "within noise". One trial has no noise estimate, so no ratio is claimed from it; rows
/// whose audit flagged them, or whose client was the limit (a lower bound), are not ranked
/// beside clean ones.
fn comparisons(group: &[&SummaryRow]) -> String {
    let measured: Vec<&SummaryRow> = group.iter().copied().filter(|r| rps(r) > 0.0).collect();
    if measured.len() < 2 {
        return String::new();
    }
    let noise = |r: &SummaryRow| r.requests_per_sec_cv.filter(|cv| cv.is_finite());
    if measured.iter().any(|r| noise(r).is_none()) {
        return "  one trial each: no ranking or ratio can be claimed without a noise estimate \
                (rerun with --repeat 5)\n"
            .to_string();
    }
    let (measured, other_path): (Vec<&SummaryRow>, Vec<&SummaryRow>) =
        measured.into_iter().partition(|r| !on_tap(r));
    let (clean, flagged): (Vec<&SummaryRow>, Vec<&SummaryRow>) =
        measured.into_iter().partition(|r| !stands_apart(r));
    let mut s = String::new();
    if let Some((fastest, rest)) = clean.split_first() {
        for other in rest {
            let ratio = rps(fastest) / rps(other);
            let (a, b) = (noise(fastest).unwrap_or(0.0), noise(other).unwrap_or(0.0));
            let spread = ratio * (a * a + b * b).sqrt();
            let _ = if ratio - spread <= 1.0 {
                writeln!(
                    s,
                    "  {} and {}: within noise ({ratio:.2} ± {spread:.2})",
                    fastest.runtime, other.runtime
                )
            } else {
                writeln!(
                    s,
                    "  {} ran {ratio:.2} ± {spread:.2} times faster than {}",
                    fastest.runtime, other.runtime
                )
            };
        }
    }
    if !other_path.is_empty() {
        let names: Vec<&str> = other_path.iter().map(|r| r.runtime.as_str()).collect();
        let _ = writeln!(
            s,
            "  not ranked beside the others: {} (its own TCP/IP stack over a TAP device, where \
             the kernel's share of the work differs from the kernel-socket rows')",
            names.join(", ")
        );
    }
    if !flagged.is_empty() {
        let names: Vec<&str> = flagged.iter().map(|r| r.runtime.as_str()).collect();
        let _ = writeln!(
            s,
            "  not ranked: {} (the client was the limit or the audit flagged the row: see its \
             status)",
            names.join(", ")
        );
    }
    s
}

/// A row measured over a TAP device (its plugin's own network stack), not the kernel's sockets.
fn on_tap(r: &SummaryRow) -> bool {
    r.network == "tap"
}

/// A row that is not to be ranked beside clean ones: its audit flagged it, or the load
/// generator was its limit (its requests/s is a lower bound).
fn stands_apart(r: &SummaryRow) -> bool {
    let audited = r.audit.is_empty() || r.audit == "ok";
    !audited || r.lower_bound()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(runtime: &str, rps: f64, cv: Option<f64>) -> SummaryRow {
        SummaryRow {
            runtime: runtime.into(),
            requests_per_sec: Some(rps),
            requests_per_sec_cv: cv,
            requests_per_sec_ci_low: cv.map(|c| rps * (1.0 - c)),
            requests_per_sec_ci_high: cv.map(|c| rps * (1.0 + c)),
            p50_us: Some(400.0),
            p99_us: Some(1234.0),
            trials: if cv.is_some() { 5 } else { 1 },
            ..Default::default()
        }
    }

    /// The client was the limit of tokio's row and epoll's: their figures are lower bounds,
    /// listed after the measured row with `≥` (and before a row without a figure), and
    /// epoll's is no limit to give shares of.
    /// The runtimes of a table's first `n` rows, in order.
    fn first_words(table: &str, n: usize) -> Vec<&str> {
        (table.lines().skip(1).take(n))
            .map(|l| l.split_whitespace().next().unwrap())
            .collect()
    }

    #[test]
    fn lower_bounds_follow_the_measured_rows_and_a_bounded_epoll_gives_no_shares() {
        let bounded = |runtime: &str, rps: f64| SummaryRow {
            loadgen_saturated: Some(true),
            ..row(runtime, rps, None)
        };
        let interrupted = SummaryRow {
            runtime: "glommio".into(),
            status: RowStatus::Interrupted,
            error: "interrupted (SIGINT)".into(),
            ..Default::default()
        };
        let rows = vec![
            interrupted,
            bounded("tokio", 90_000.0),
            row("smol", 50_000.0, None),
            bounded("epoll", 80_000.0),
        ];
        let t = final_table(&rows, false);
        let order = first_words(&t, 4);
        // A row without a figure (interrupted here) after the lower bounds.
        assert_eq!(order, ["smol", "tokio", "epoll", "glommio"], "{t}");
        assert!(t.contains("≥ 90,000") && t.contains("≥ 80,000"), "{t}");
        assert!(!t.contains("vs epoll"), "{t}");

        let rows = vec![bounded("tokio", 90_000.0), row("epoll", 120_000.0, None)];
        let t = final_table(&rows, false);
        let tokio = t.lines().find(|l| l.contains("tokio")).unwrap();
        assert!(tokio.contains("≥ 75%"), "{t}");
    }

    #[test]
    fn the_final_table_is_sorted_fastest_first_with_the_epoll_share_and_ratios() {
        let failed = SummaryRow {
            runtime: "monoio".into(),
            status: RowStatus::Failed,
            error: "server process killed by signal 11 (SIGSEGV)".into(),
            ..Default::default()
        };
        let rows = vec![
            row("smol", 100_000.0, Some(0.02)),
            failed,
            row("epoll", 150_000.0, Some(0.01)),
            row("tokio", 112_000.0, Some(0.02)),
        ];
        let t = final_table(&rows, false);
        let order = first_words(&t, 4);
        assert_eq!(order, ["epoll", "tokio", "smol", "monoio"], "{t}");
        assert!(t.contains("vs epoll"), "{t}");
        let tokio = t
            .lines()
            .find(|l| l.trim_start().starts_with("tokio"))
            .unwrap();
        assert!(
            tokio.contains("112,000") && tokio.contains("75%"),
            "{tokio}"
        );
        assert!(tokio.contains("[109,760 – 114,240]"), "{tokio}");
        assert!(
            t.contains("FAILED: server process killed by signal 11"),
            "{t}"
        );
        // 150000/112000 = 1.339; ± 1.339 * sqrt(0.01² + 0.02²) = 0.030.
        assert!(
            t.contains("epoll ran 1.34 ± 0.03 times faster than tokio"),
            "{t}"
        );
        assert!(
            t.contains("epoll ran 1.50 ± 0.03 times faster than smol"),
            "{t}"
        );
        assert!(
            !t.contains("than monoio"),
            "a failed runtime is not compared: {t}"
        );
    }

    #[test]
    fn on_a_narrow_terminal_a_long_status_goes_below_its_row_whole_words() {
        let mut r = row("tokio", 15_073.0, None);
        r.audit = "the load generator waited for a CPU 55% of the time while its 1 thread(s) \
                   used only 17%"
            .into();
        let t = final_table_fitted(&[r.clone()], false, Some(80));
        assert!(t.lines().all(|l| l.chars().count() <= 80), "{t}");
        assert!(t.contains("\n      ok; audit: the load generator"), "{t}");
        assert!(!t.contains("thr\n"), "{t}");
        let wide = final_table_fitted(&[r], false, Some(200));
        let line = wide.lines().find(|l| l.starts_with("  tokio")).unwrap();
        let two = final_table_fitted(&[row("a", 2.0, None), row("b", 1.0, None)], false, Some(64));
        assert!(two.lines().all(|l| l.chars().count() <= 64), "{two}");
        assert!(two.contains("without a\n    noise estimate"), "{two}");
        assert!(line.contains("ok; audit: the load generator"), "{wide}");
    }

    #[test]
    fn a_row_on_another_network_path_is_ranked_apart_and_has_no_share_of_the_limit() {
        let mut embassy = row("embassy", 150_000.0, Some(0.01));
        embassy.network = "tap".into();
        let t = final_table(
            &[
                embassy,
                row("epoll", 120_000.0, Some(0.01)),
                row("tokio", 100_000.0, Some(0.01)),
            ],
            false,
        );
        assert!(
            t.contains("epoll ran 1.20 ± 0.02 times faster than tokio"),
            "{t}"
        );
        assert!(!t.contains("embassy ran"), "{t}");
        assert!(t.contains("not ranked beside the others: embassy"), "{t}");
        let line = t
            .lines()
            .find(|l| l.trim_start().starts_with("embassy"))
            .unwrap();
        assert!(!line.contains('%'), "{t}");
    }

    #[test]
    fn one_trial_claims_no_ratio_and_there_is_no_ci_column() {
        let t = final_table(
            &[row("tokio", 112_000.0, None), row("smol", 100_000.0, None)],
            false,
        );
        assert!(!t.contains("faster"), "{t}");
        assert!(
            t.contains("one trial each: no ranking or ratio can be claimed"),
            "{t}"
        );
        assert!(t.contains("--repeat"), "{t}");
        assert!(!t.contains("95% CI") && !t.contains("vs epoll"), "{t}");
    }

    #[test]
    fn a_ratio_whose_interval_reaches_one_is_within_noise() {
        // 103000/100000 = 1.03; ± 1.03 * sqrt(0.03² + 0.03²) = 0.044: it could be 1.
        let t = final_table(
            &[
                row("tokio", 103_000.0, Some(0.03)),
                row("smol", 100_000.0, Some(0.03)),
            ],
            false,
        );
        assert!(
            t.contains("tokio and smol: within noise (1.03 ± 0.04)"),
            "{t}"
        );
        assert!(!t.contains("faster"), "{t}");
    }

    #[test]
    fn with_colour_each_status_has_its_look_and_without_none_has_any() {
        let failed = SummaryRow {
            runtime: "monoio".into(),
            status: RowStatus::Failed,
            error: "boom".into(),
            ..Default::default()
        };
        let mut audited = row("glommio", 150_000.0, None);
        audited.audit = "a witness disagreed".into();
        let rows = vec![row("tokio", 120_000.0, None), audited, failed];
        let t = final_table(&rows, true);
        assert!(t.contains("\x1b[32mok\x1b[0m"), "{t}");
        assert!(
            t.contains("\x1b[33mok; audit: a witness disagreed\x1b[0m"),
            "{t}"
        );
        assert!(t.contains("\x1b[31mFAILED: boom\x1b[0m"), "{t}");
        assert!(!final_table(&rows, false).contains('\x1b'));
    }

    #[test]
    fn rows_flagged_or_bounded_by_the_client_are_not_ranked_beside_clean_ones() {
        let mut saturated = row("monoio", 200_000.0, Some(0.01));
        saturated.loadgen_saturated = Some(true);
        let mut audited = row("glommio", 150_000.0, Some(0.01));
        audited.audit = "the load generator waited for a CPU 38% of the time".into();
        let t = final_table(
            &[
                saturated,
                audited,
                row("tokio", 120_000.0, Some(0.01)),
                row("smol", 100_000.0, Some(0.01)),
            ],
            false,
        );
        assert!(
            t.contains("tokio ran 1.20 ± 0.02 times faster than smol"),
            "{t}"
        );
        assert!(
            !t.contains("monoio ran") && !t.contains("than monoio"),
            "{t}"
        );
        assert!(
            !t.contains("glommio ran") && !t.contains("than glommio"),
            "{t}"
        );
        assert!(t.contains("not ranked: glommio, monoio"), "{t}");
    }

    #[test]
    fn a_sweep_gets_one_table_per_point() {
        let mut a = row("tokio", 1000.0, None);
        a.point = "connections=10".into();
        let mut b = row("tokio", 2000.0, None);
        b.point = "connections=100".into();
        let t = final_table(&[a, b], false);
        assert!(
            t.contains("connections=10:\n") && t.contains("connections=100:\n"),
            "{t}"
        );
    }

    #[test]
    fn a_step_line_says_where_the_run_stands() {
        let line = step_line(
            3,
            12,
            "tokio #2",
            &row("tokio", 123_456.7, None),
            Some(Duration::from_secs(250)),
        );
        assert_eq!(
            line,
            "[3/12] tokio #2: 123,457 req/s, p99 1.23 ms, ok · ETA 4m 10s"
        );
        let mut failed = row("x", 1.0, None);
        failed.requests_per_sec = None;
        failed.status = RowStatus::Failed;
        failed.error = "a\nb".into();
        assert_eq!(
            step_line(12, 12, "x", &failed, None),
            "[12/12] x: FAILED: a b"
        );
    }

    #[test]
    fn a_capacity_searchs_probes_are_one_step_not_one_step_each() {
        let mut o = Overall {
            total: 2,
            done: 0,
            started: Instant::now(),
            estimated_done: Duration::ZERO,
            estimated_left: Duration::from_secs(60),
            probes: 0,
            bar: None,
            countdown: Arc::new(Mutex::new((Instant::now(), Duration::ZERO))),
        };
        let r = row("tokio", 1000.0, None);
        for p in 1..=5 {
            o.probe_finished("tokio", &r, Duration::from_secs(20));
            assert_eq!(o.done, 0, "a probe is not a step");
            assert_eq!(o.probes, p);
        }
        assert_eq!(o.estimated_left, Duration::ZERO, "never below nothing left");
        o.search_finished();
        assert_eq!((o.done, o.total, o.probes), (1, 2, 0));
    }

    #[test]
    fn the_eta_scales_the_estimate_by_how_the_done_steps_compared() {
        let s = Duration::from_secs;
        assert_eq!(eta(Duration::ZERO, s(100), s(0)), s(100));
        // Steps ran twice as long as estimated: so will the rest.
        assert_eq!(eta(s(10), s(100), s(20)), s(200));
        // Never more than 5x off the estimate.
        assert_eq!(eta(s(1), s(100), s(60)), s(500));
    }
}
