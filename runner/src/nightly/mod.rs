//! `runbench nightly`: run every `scenarios/nightly/*.toml`, append the trials to the history,
//! judge tonight against the recent past, draw trend plots and write `nightly.md`.
//!
//! Output (`<out>` = `--out`, default `output/`):
//! - `<out>/<scenario>/<UTC time>/`: the usual run folders;
//! - `<out>/history/<scenario>.csv`: every night's trials ([`history`]);
//! - `<out>/nightly/<UTC time>/`: `nightly.md`, `verdicts.csv`, `bmf.json` and
//!   `trend-<scenario>-<metric>.png`; `<out>/nightly/latest` links to the newest.
//!
//! A verdict needs several trials per runtime: each scenario runs with `[run] repeat` (or
//! `--trials`) trials, the order of runtimes shuffled per trial so slow drift of the machine
//! spreads over all runtimes alike, and its `trials.csv` gives the trials.

pub mod bmf;
pub mod history;
pub mod metric;
pub mod report;
pub mod run_folder;
pub mod trend;
pub mod verdict;

use crate::error::Error;
use crate::plan::{self, Overrides, Plan};
use crate::results::{create_stamped_dir, point_latest, write_atomic, write_together};
use crate::{run, scenario};
use history::HistoryRow;
use metric::Metric;
use report::{NightReport, ScenarioSection};
use run_folder::RunFolder;
use std::path::{Path, PathBuf};
use verdict::Settings;

/// Trials per runtime when the run itself does not repeat.
pub const DEFAULT_TRIALS: usize = 5;
/// Folder names under the output root that the nightly uses itself.
const RESERVED: [&str; 2] = ["history", "nightly"];

#[derive(Clone, Debug)]
pub struct Options {
    pub scenarios_dir: PathBuf,
    pub out: PathBuf,
    pub settings: Settings,
    pub trials: usize,
    pub plugin_dir: PathBuf,
}

/// What a night found.
#[derive(Clone, Debug)]
pub struct NightOutcome {
    pub dir: PathBuf,
    /// nightly.md, as written.
    pub markdown: String,
    pub regressions: usize,
    pub failed_trials: usize,
    /// The signal that stopped the night before its last measurement: nothing was judged and
    /// no history changed (nightly.md says so; the run folders are marked interrupted).
    pub interrupted: Option<i32>,
}

/// The scenario files of a nightly, sorted by name.
pub fn scenario_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| anyhow::anyhow!("reading scenario folder {}: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    anyhow::ensure!(
        !files.is_empty(),
        "no *.toml scenario files in {}",
        dir.display()
    );
    Ok(files)
}

/// Checks every scenario (and its history file) before running any, so a typo in the last file
/// costs nothing and a broken history is found before the night, not after it.
fn plans(opts: &Options) -> anyhow::Result<Vec<Plan>> {
    anyhow::ensure!(
        (1..=1000).contains(&opts.trials),
        "--trials must be between 1 and 1000"
    );
    anyhow::ensure!(
        opts.settings.baseline_nights >= 1,
        "--baseline-nights must be at least 1"
    );
    let host = scenario::Host::current();
    let mut plans: Vec<Plan> = Vec::new();
    for path in scenario_files(&opts.scenarios_dir)? {
        let s = scenario::load(&path, &host)?;
        anyhow::ensure!(
            !RESERVED.contains(&s.name.as_str()),
            "{}: the scenario name `{}` is reserved for the nightly's own folders ({}); rename it",
            path.display(),
            s.name,
            RESERVED.join(", ")
        );
        if let Some(other) = plans.iter().find(|p| p.scenario.name == s.name) {
            anyhow::bail!(
                "{} and {} both name their scenario `{}`; they would share one history file",
                other.scenario.source.display(),
                path.display(),
                s.name
            );
        }
        history::read(&history::path(&opts.out, &s.name))?;
        // A scenario's own `[run] repeat` wins; otherwise --trials.
        let overrides = Overrides {
            repeat: (s.run.repeat == 1).then_some(opts.trials),
            ..Overrides::default()
        };
        plans.push(plan::plan(&s, &overrides, &opts.plugin_dir)?);
    }
    Ok(plans)
}

/// The night: every scenario is measured first, and only a night measured to the end is
/// recorded and judged. An interrupted night (SIGINT, SIGTERM, SIGHUP) leaves every history
/// untouched and judges nothing; a history is appended whole or not at all.
pub fn run(opts: &Options) -> Result<NightOutcome, Error> {
    let plans = plans(opts).map_err(Error::input)?;
    let started = chrono::Utc::now();
    let night = started.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let dir = create_stamped_dir(&opts.out.join("nightly"), started)?;

    let mut measured: Vec<(&Plan, RunFolder)> = Vec::new();
    for p in &plans {
        // A signal between two scenarios: the next one is not started.
        let (sig, cut) = match crate::os::interrupt::requested() {
            Some(sig) => (sig, None),
            None => {
                crate::console::log(&format!(
                    "nightly: {}, {} trial(s) per runtime",
                    p.scenario.name, p.scenario.run.repeat
                ));
                let outcome = run::run_plan(p, &opts.out, &run_options())?;
                if let Some(e) = outcome.stopped_by {
                    return Err(e);
                }
                match outcome.interrupted {
                    Some(sig) => (sig, Some(outcome.dir)),
                    None => {
                        let folder = RunFolder::from_rows(
                            &outcome.dir,
                            &outcome.meta,
                            &outcome.trials,
                            &outcome.capacity,
                            "trials.csv",
                        )
                        .map_err(Error::system)?;
                        measured.push((p, folder));
                        continue;
                    }
                }
            }
        };
        let done: Vec<String> = measured
            .iter()
            .map(|(_, f)| relative(&f.path, &opts.out))
            .collect();
        let cut = cut.map(|d| relative(&d, &opts.out));
        let name = crate::os::interrupt::name(sig);
        let md = report::interrupted_md(&night, &name, plans.len(), &done, cut.as_deref());
        write_atomic(&dir.join("nightly.md"), md.as_bytes())?;
        let markdown = md;
        crate::console::log(&format!(
            "nightly: interrupted by {name}; nothing judged, no history changed ({})",
            dir.join("nightly.md").display()
        ));
        return Ok(NightOutcome {
            dir,
            markdown,
            regressions: 0,
            failed_trials: 0,
            interrupted: Some(sig),
        });
    }

    let mut sections = Vec::new();
    let mut bmf = bmf::Bmf::new();
    let mut machine = None;
    let mut git_commit = crate::results::meta::GIT_COMMIT.to_string();
    for (p, folder) in &measured {
        let rows = night_rows(std::slice::from_ref(folder), &night, &opts.out);
        bmf::add(&mut bmf, &p.scenario.name, &rows);
        machine.get_or_insert_with(|| folder.fingerprint.clone());
        git_commit = folder.git_commit.clone();
        sections.push(record(opts, &dir, &night, p, folder, &rows).map_err(Error::system)?);
    }
    let markdown = write_reports(&dir, &night, &git_commit, &machine, opts, &sections)
        .map_err(Error::system)?;
    write_atomic(
        &dir.join("bmf.json"),
        &bmf::to_json(&bmf).map_err(Error::system)?,
    )?;
    point_latest(&opts.out.join("nightly"), &dir)?;
    crate::console::log(&format!(
        "nightly: wrote {}",
        dir.join("nightly.md").display()
    ));
    Ok(NightOutcome {
        regressions: sections
            .iter()
            .map(|s| report::regressions(&s.verdicts))
            .sum(),
        failed_trials: sections.iter().map(|s| s.failures.len()).sum(),
        dir,
        markdown,
        interrupted: None,
    })
}

fn run_options() -> run::RunOptions {
    run::RunOptions {
        keep_trials: true,
        ..Default::default()
    }
}

/// Appends tonight's rows of one scenario to its history, then judges them and draws its trend
/// plots: the scenario's part of nightly.md.
fn record(
    opts: &Options,
    dir: &Path,
    night: &str,
    plan: &Plan,
    folder: &RunFolder,
    rows: &[HistoryRow],
) -> anyhow::Result<ScenarioSection> {
    let name = &plan.scenario.name;
    let history = history::append(&history::path(&opts.out, name), rows)?;
    let verdicts = verdict::nightly_verdicts(&history, night, &opts.settings);
    let stored: Vec<history::VerdictRow> = verdicts
        .iter()
        .map(|v| history::VerdictRow {
            timestamp: night.to_string(),
            runtime: v.runtime.clone(),
            point: v.point.key(),
            metric: v.metric.column().to_string(),
            outcome: v.outcome().as_str().to_string(),
        })
        .collect();
    let all_verdicts = history::append_rows(&history::verdicts_path(&opts.out, name), &stored)?;
    let mut plots = Vec::new();
    if let Some(fp) = rows.first().map(HistoryRow::fingerprint) {
        let marks = trend::regressions(&history, &all_verdicts, &fp);
        for metric in Metric::ALL {
            let t = trend::prepare(name, &history, &fp, metric, &marks);
            if t.series.is_empty() {
                continue;
            }
            let file = trend::file_name(name, metric);
            trend::draw(&t, &dir.join(&file))?;
            plots.push((metric, file));
        }
    }
    Ok(ScenarioSection {
        name: name.clone(),
        verdicts,
        plots,
        failures: folder.failures.clone(),
        trials_note: format!(
            "Trials: {} per runtime from the run's trials.csv (runtimes in shuffled order per \
             trial).",
            plan.scenario.run.repeat
        ),
        runs: vec![relative(&folder.path, &opts.out)],
    })
}

/// nightly.md and verdicts.csv.
fn write_reports(
    dir: &Path,
    night: &str,
    git_commit: &str,
    machine: &Option<history::Fingerprint>,
    opts: &Options,
    sections: &[ScenarioSection],
) -> anyhow::Result<String> {
    let md = report::nightly_md(&NightReport {
        night: night.to_string(),
        git_commit: git_commit.to_string(),
        machine: machine.clone(),
        settings: opts.settings,
        sections: sections.to_vec(),
    });
    let csv = report::verdicts_csv(sections)?;
    write_together(
        dir,
        &[("nightly.md", md.as_bytes()), ("verdicts.csv", &csv)],
    )?;
    Ok(md)
}

/// Tonight's history rows: every trial of every folder, stamped with the night. Repeated runs
/// number their trials on from the previous run's.
fn night_rows(folders: &[RunFolder], night: &str, out: &Path) -> Vec<HistoryRow> {
    let mut rows = Vec::new();
    let mut offset = 0;
    for f in folders {
        let mut max_trial = 0;
        for r in &f.rows {
            let mut r = r.clone();
            max_trial = max_trial.max(r.trial);
            r.trial += offset;
            r.timestamp = night.to_string();
            r.run_dir = relative(&f.path, out);
            rows.push(r);
        }
        for fl in &f.failures {
            max_trial = max_trial.max(fl.trial);
        }
        offset += max_trial + 1;
    }
    rows
}

fn relative(path: &Path, root: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// `runbench compare A B`: the report, and how many regressions it found.
pub fn compare(
    a: &Path,
    b: &Path,
    settings: &Settings,
    force: bool,
) -> anyhow::Result<(String, usize)> {
    let fa = RunFolder::open(a)?;
    let fb = RunFolder::open(b)?;
    verdict::check_comparable(&fa, &fb, force)?;
    if fa.scenario != fb.scenario {
        crate::console::log(&format!(
            "note: comparing different scenarios (`{}` and `{}`); runtimes and points are matched \
             by name and parameters",
            fa.scenario, fb.scenario
        ));
    }
    let verdicts = verdict::compare_runs(&fa, &fb, settings);
    anyhow::ensure!(
        !verdicts.is_empty(),
        "{} has no successful trial to compare",
        b.display()
    );
    anyhow::ensure!(
        verdicts
            .iter()
            .any(|v| v.outcome() != verdict::Outcome::NoBaseline),
        "nothing to compare: no runtime and point measured in {} was measured in {} (compare \
         runs of the same scenario, or of scenarios that share runtimes and points)",
        b.display(),
        a.display()
    );
    let md = report::compare_md(
        &a.display().to_string(),
        &b.display().to_string(),
        &verdicts,
        settings,
    );
    Ok((md, report::regressions(&verdicts)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use run_folder::tests::write_run;

    #[test]
    fn compare_refuses_other_machines_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        write_run(&a, "CPU X", &[("tokio", 0, 1000.0)]);
        write_run(&b, "CPU Y", &[("tokio", 0, 1000.0)]);
        let err = compare(&a, &b, &Settings::default(), false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("different machines") && err.contains("CPU X (A) vs CPU Y (B)"));
        assert!(err.contains("--force"));
        assert!(compare(&a, &b, &Settings::default(), true).is_ok());
    }

    #[test]
    fn compare_finds_a_slower_run() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let base: Vec<(&str, u32, f64)> = (0..5)
            .map(|t| ("tokio", t, 1000.0 + t as f64 * 7.0))
            .collect();
        let slow: Vec<(&str, u32, f64)> = (0..5)
            .map(|t| ("tokio", t, 800.0 + t as f64 * 7.0))
            .collect();
        write_run(&a, "CPU X", &base);
        write_run(&b, "CPU X", &slow);
        let (md, regressions) = compare(&a, &b, &Settings::default(), false).unwrap();
        // requests/s down 20%; p50, p99 and CPU per request (derived as 1/rps) up 25%.
        assert_eq!(regressions, 4, "{md}");
        assert!(
            md.contains("| tokio | throughput (requests/s) | **regressed** |"),
            "{md}"
        );
        let (md, regressions) = compare(&a, &a, &Settings::default(), false).unwrap();
        assert_eq!(regressions, 0, "{md}");
    }

    #[test]
    fn one_trial_each_is_inconclusive_however_large_the_move_and_nothing_in_common_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (
            dir.path().join("a"),
            dir.path().join("b"),
            dir.path().join("c"),
        );
        write_run(&a, "CPU X", &[("tokio", 0, 1000.0)]);
        write_run(&b, "CPU X", &[("tokio", 0, 500.0)]);
        let (md, regressions) = compare(&a, &b, &Settings::default(), false).unwrap();
        assert_eq!(regressions, 0, "{md}");
        assert!(
            md.contains("| tokio | throughput (requests/s) | inconclusive |"),
            "{md}"
        );
        assert!(!md.contains("| unchanged |"), "{md}");
        assert!(md.contains("1 vs 1") && md.contains("--repeat"), "{md}");
        write_run(&c, "CPU X", &[("smol", 0, 1000.0)]);
        let err = compare(&a, &c, &Settings::default(), false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("nothing to compare"), "{err}");
    }

    #[test]
    fn repeated_runs_number_trials_on() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("smoke/r1"), dir.path().join("smoke/r2"));
        write_run(&a, "CPU X", &[("tokio", 0, 1000.0), ("other", 0, 10.0)]);
        write_run(&b, "CPU X", &[("tokio", 0, 1001.0), ("other", 0, 11.0)]);
        let folders = vec![RunFolder::open(&a).unwrap(), RunFolder::open(&b).unwrap()];
        let rows = night_rows(&folders, "2025-01-01T00:00:00Z", dir.path());
        let trials: Vec<(String, u32, String)> = rows
            .iter()
            .map(|r| (r.runtime.clone(), r.trial, r.run_dir.clone()))
            .collect();
        assert_eq!(
            trials,
            vec![
                ("tokio".into(), 0, "smoke/r1".into()),
                ("other".into(), 0, "smoke/r1".into()),
                ("tokio".into(), 1, "smoke/r2".into()),
                ("other".into(), 1, "smoke/r2".into()),
            ]
        );
        assert!(rows.iter().all(|r| r.timestamp == "2025-01-01T00:00:00Z"));
    }
}
