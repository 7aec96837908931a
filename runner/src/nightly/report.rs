//! Verdicts as text: `nightly.md`, the `compare` table, and `verdicts.csv`. Pure functions from
//! results to strings; the caller writes the files.

use super::history::Fingerprint;
use super::metric::Metric;
use super::run_folder::Failure;
use super::verdict::{Outcome, Settings, Verdict, MIN_NIGHTS_FOR_SPREAD, SPREAD_FACTOR};
use serde::Serialize;

/// One scenario's part of a night.
#[derive(Clone, Debug)]
pub struct ScenarioSection {
    pub name: String,
    pub verdicts: Vec<Verdict>,
    /// (metric, PNG file name relative to nightly.md)
    pub plots: Vec<(Metric, String)>,
    pub failures: Vec<Failure>,
    /// How the trials came about (runbench's own repeats, or the nightly repeating the run).
    pub trials_note: String,
    /// Run folders, relative to the output root.
    pub runs: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct NightReport {
    pub night: String,
    pub git_commit: String,
    pub machine: Option<Fingerprint>,
    pub settings: Settings,
    pub sections: Vec<ScenarioSection>,
}

pub fn regressions(verdicts: &[Verdict]) -> usize {
    verdicts
        .iter()
        .filter(|v| v.outcome() == Outcome::Regressed)
        .count()
}

fn value(metric: Metric, v: f64) -> String {
    metric.show(v)
}

/// `-15.0% [-16.2%, -13.9%]`: the change of the median with its 95% interval when there is one
/// (criterion's `change: [-2.1% +0.5% +3.0%]`).
fn change_cell(change: Option<f64>, ci: Option<(f64, f64)>) -> String {
    let pct = |c: f64| format!("{:+.1}%", c * 100.0);
    match (change, ci) {
        (Some(c), Some((lo, hi))) => format!("{} [{}, {}]", pct(c), pct(lo), pct(hi)),
        (Some(c), None) => pct(c),
        (None, _) => "–".into(),
    }
}

fn outcome_cell(o: Outcome) -> String {
    match o {
        Outcome::Regressed => "**regressed**".into(),
        other => other.as_str().into(),
    }
}

/// The verdict table (Markdown). `baseline_word` names the baseline column's counts
/// ("nights" for the nightly, "runs" for compare).
pub fn verdict_table(verdicts: &[Verdict], baseline_word: &str) -> String {
    let mut points: Vec<String> = verdicts.iter().map(|v| v.point.key()).collect();
    points.sort();
    points.dedup();
    let show_point = points.len() > 1;
    let mut s = String::from("| runtime |");
    if show_point {
        s.push_str(" point |");
    }
    s.push_str(&format!(
        " metric | verdict | tonight (median) | baseline (median) | change | p-value | trials: new / baseline ({baseline_word}) | threshold | note |\n|---|"
    ));
    if show_point {
        s.push_str("---|");
    }
    s.push_str("---|---|---:|---:|---:|---:|---:|---:|---|\n");
    let mut rows: Vec<&Verdict> = verdicts.iter().collect();
    rows.sort_by(|a, b| {
        (&a.runtime, a.point.key(), a.metric).cmp(&(&b.runtime, b.point.key(), b.metric))
    });
    for v in rows {
        let j = &v.judgement;
        s.push_str(&format!("| {} |", v.runtime));
        if show_point {
            s.push_str(&format!(" {} |", v.point.label()));
        }
        s.push_str(&format!(
            " {} | {} | {} | {} | {} | {} | {} / {} ({}) | {:.1}% | {} |\n",
            v.metric.label(),
            outcome_cell(j.outcome),
            value(v.metric, v.new_median),
            v.baseline_median.map_or("–".into(), |b| value(v.metric, b)),
            change_cell(j.change, j.change_ci),
            j.p_value.map_or("–".into(), format_p),
            v.n_new,
            v.n_baseline,
            v.baseline_nights,
            j.threshold * 100.0,
            j.note
        ));
    }
    s
}

fn format_p(p: f64) -> String {
    if p < 0.001 {
        "< 0.001".into()
    } else {
        format!("{p:.3}")
    }
}

fn rule(settings: &Settings) -> String {
    format!(
        "**regressed** = the median moved in the bad direction by more than the threshold \
         ({:.1}%, or {SPREAD_FACTOR}× the night-to-night coefficient of variation of the \
         baseline's medians once it has {MIN_NIGHTS_FOR_SPREAD}+ nights, whichever is larger) \
         **and** a two-sided Mann-Whitney U test of tonight's trials against the baseline's gives \
         p < {}. **improved** is the same in the good direction; anything else is unchanged. \
         Higher is better for throughput, lower for latency, CPU and memory.",
        settings.noise * 100.0,
        settings.alpha
    )
}

pub fn nightly_md(r: &NightReport) -> String {
    let all: Vec<&Verdict> = r.sections.iter().flat_map(|s| &s.verdicts).collect();
    let regressed = all
        .iter()
        .filter(|v| v.outcome() == Outcome::Regressed)
        .count();
    let failed: usize = r.sections.iter().map(|s| s.failures.len()).sum();
    let mut s = format!("# runbench nightly {}\n\n", r.night);
    s.push_str(&match (regressed, failed) {
        (0, 0) => "**No regression.**".to_string(),
        (0, f) => format!("**No regression**, but {f} trial(s) failed (see below)."),
        (n, _) => format!("**{n} regression(s)** (runbench exits with code 3)."),
    });
    s.push_str("\n\n| | |\n|---|---|\n");
    s.push_str(&format!(
        "| machine | {} |\n",
        r.machine
            .as_ref()
            .map_or("unknown (no trial finished)".into(), |m| m.to_string())
    ));
    s.push_str(&format!("| runbench commit | `{}` |\n", r.git_commit));
    s.push_str(&format!(
        "| baseline | the last {} earlier nights on this machine (same CPU model, core count and kernel) |\n",
        r.settings.baseline_nights
    ));
    s.push_str(&format!(
        "| counts | {} regressed, {} improved, {} unchanged, {} inconclusive, {} without baseline |\n\n",
        regressed,
        all.iter()
            .filter(|v| v.outcome() == Outcome::Improved)
            .count(),
        all.iter()
            .filter(|v| v.outcome() == Outcome::Unchanged)
            .count(),
        all.iter()
            .filter(|v| v.outcome() == Outcome::Inconclusive)
            .count(),
        all.iter()
            .filter(|v| v.outcome() == Outcome::NoBaseline)
            .count(),
    ));
    s.push_str(&rule(&r.settings));
    s.push('\n');
    for sec in &r.sections {
        s.push_str(&format!("\n## {}\n\n", sec.name));
        s.push_str(&format!("{}\n\n", sec.trials_note));
        if !sec.runs.is_empty() {
            let runs: Vec<String> = sec.runs.iter().map(|r| format!("`{r}`")).collect();
            s.push_str(&format!("Run folders: {}\n\n", runs.join(", ")));
        }
        if !sec.plots.is_empty() {
            let links: Vec<String> = sec
                .plots
                .iter()
                .map(|(m, f)| format!("[{}]({f})", m.label()))
                .collect();
            s.push_str(&format!("Trend plots: {}\n\n", links.join(" · ")));
        }
        if sec.verdicts.is_empty() {
            s.push_str("No trial produced numbers tonight.\n");
        } else {
            s.push_str(&verdict_table(&sec.verdicts, "nights"));
        }
        if !sec.failures.is_empty() {
            s.push_str("\nFailed trials (not in the history):\n\n");
            for f in &sec.failures {
                s.push_str(&format!("- {} trial {}: {}\n", f.runtime, f.trial, f.error));
            }
        }
    }
    s
}

/// nightly.md of a night stopped by a signal: what ran, and that nothing was judged. `done` are
/// the run folders measured to the end, `cut` the one the signal interrupted.
pub fn interrupted_md(
    night: &str,
    signal: &str,
    scenarios: usize,
    done: &[String],
    cut: Option<&str>,
) -> String {
    let mut s = format!(
        "# runbench nightly {night}\n\n**Interrupted by {signal}** after {} of {scenarios} \
         scenario(s) had been measured. A partial night is not judged: no verdicts, no trend \
         plots, and no history file was changed.\n",
        done.len()
    );
    if !done.is_empty() {
        let runs: Vec<String> = done.iter().map(|r| format!("`{r}`")).collect();
        s.push_str(&format!("\nMeasured: {}\n", runs.join(", ")));
    }
    if let Some(cut) = cut {
        s.push_str(&format!(
            "\nInterrupted (its meta.json says so; its rows so far are kept): `{cut}`\n"
        ));
    }
    s
}

/// The `compare` command's report.
pub fn compare_md(a: &str, b: &str, verdicts: &[Verdict], settings: &Settings) -> String {
    let mut s = format!("# runbench compare\n\nbaseline A: `{a}`\n\ncompared B: `{b}`\n\n");
    s.push_str(&format!(
        "**regressed** = the median moved in the bad direction by more than {:.1}% **and** a \
         two-sided Mann-Whitney U test of B's trials against A's gives p < {}.\n\n",
        settings.noise * 100.0,
        settings.alpha
    ));
    s.push_str(&verdict_table(verdicts, "runs").replace("tonight (median)", "B (median)"));
    s
}

#[derive(Serialize)]
struct CsvVerdict<'a> {
    scenario: &'a str,
    runtime: &'a str,
    point: String,
    metric: &'static str,
    verdict: &'static str,
    new_median: f64,
    baseline_median: Option<f64>,
    change: Option<f64>,
    p_value: Option<f64>,
    n_new: usize,
    n_baseline: usize,
    baseline_nights: usize,
    threshold: f64,
    note: &'a str,
}

/// Every verdict of the night, one row each, for scripts.
pub fn verdicts_csv(sections: &[ScenarioSection]) -> anyhow::Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for sec in sections {
        for v in &sec.verdicts {
            w.serialize(CsvVerdict {
                scenario: &sec.name,
                runtime: &v.runtime,
                point: v.point.key(),
                metric: v.metric.column(),
                verdict: v.outcome().as_str(),
                new_median: v.new_median,
                baseline_median: v.baseline_median,
                change: v.judgement.change,
                p_value: v.judgement.p_value,
                n_new: v.n_new,
                n_baseline: v.n_baseline,
                baseline_nights: v.baseline_nights,
                threshold: v.judgement.threshold,
                note: &v.judgement.note,
            })?;
        }
    }
    w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))
}
