//! Runs a [`Plan`] step by step (trial x point x runtime, shuffled per trial): servers up ->
//! load generators connected -> load (timeline sampled) -> servers stopped -> one trial row.
//! Every file of the run folder is rewritten after each step, so nothing measured is lost.
//!
//! Every wait has a deadline: server start-up (`ready_timeout`), connecting (scaled with the
//! connection count), the load (its planned length + [`LOAD_MARGIN`]), shutdown (grace +
//! [`crate::supervise::server::EXIT_MARGIN`], then SIGKILL), the cooldown ([`COOLDOWN_LIMIT`]).
//! A server that dies ends its step at once; an interruption (Ctrl-C, SIGTERM) ends the step
//! and the run after stopping the current server (see [`crate::interrupt`]).

use crate::measure::SPECTRUM;
use crate::plan::{Plan, Step};
use crate::progress::{self, RunProgress};
use crate::results::hlog::{self, HlogEntry};
use crate::results::{self, Meta, PercentileRow, RowStatus, RunDir, RunStatus, SummaryRow};
use crate::rss_trend;
use crate::terminal::Overall;
use crate::supervise::server::READY_TIMEOUT;
use crate::timeline::{TimelineRecorder, TimelineRow};
use std::path::Path;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant, SystemTime};

mod row;
mod server;
mod step;

use row::{base_row, to_row, with_rss_trend};
use step::measure;

/// A load generator above this busy fraction may have limited the result.
pub const SATURATED_BUSY: f64 = 0.9;
/// Slack beyond the load's planned end before the run is declared hung.
const LOAD_MARGIN: Duration = Duration::from_secs(15);
/// How long to wait for the previous server's sockets to disappear before the next step.
const COOLDOWN_LIMIT: Duration = Duration::from_secs(10);

/// Numbers source-address blocks so that successive runs in one process never share one.
static RUN_SEQ: AtomicUsize = AtomicUsize::new(0);

/// Options of one `run` that are not part of the scenario.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Also write every trial's row to trials.csv.
    pub keep_trials: bool,
    /// How long a server may take to report ready before it is killed.
    pub ready_timeout: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            keep_trials: false,
            ready_timeout: READY_TIMEOUT,
        }
    }
}

/// What a run produced.
#[derive(Clone, Debug)]
pub struct RunOutcome {
    /// The rows of summary.csv.
    pub summary: Vec<SummaryRow>,
    /// The signal that interrupted the run, if one did (the files are marked so).
    pub interrupted: Option<i32>,
}

/// How a step ended without a measurement.
#[derive(Debug)]
enum StepEnd {
    Failed(String),
    Interrupted(String),
}

impl From<String> for StepEnd {
    fn from(e: String) -> Self {
        StepEnd::Failed(e)
    }
}

/// An error of a wait that an interruption also ends: which of the two it was.
fn failed_or_interrupted(e: String) -> StepEnd {
    match crate::interrupt::requested() {
        Some(_) => StepEnd::Interrupted(e),
        None => StepEnd::Failed(e),
    }
}

/// Everything one step produced.
struct StepOutput {
    row: SummaryRow,
    percentiles: Vec<PercentileRow>,
    timeline: Vec<TimelineRow>,
    hlog: Vec<HlogEntry>,
}

/// What the run folder holds so far.
#[derive(Default)]
struct Collected {
    trials: Vec<SummaryRow>,
    percentiles: Vec<PercentileRow>,
    timeline: Vec<TimelineRow>,
    hlog: Vec<HlogEntry>,
}

/// Runs every step of the plan, or until interrupted; returns the summary rows (also written to
/// disk as they come).
pub fn run_plan(plan: &Plan, out_root: &Path, options: &RunOptions) -> anyhow::Result<RunOutcome> {
    let started = chrono::Utc::now();
    let base_time = SystemTime::now();
    let dir = RunDir::create(out_root, &plan.scenario.name, started)?;
    let exe = std::env::current_exe()?;
    let mut meta = Meta::new(plan, started);
    dir.write("meta.json", &serde_json::to_vec_pretty(&meta)?)?;
    let target = match &plan.scenario.target {
        Some(t) => t.address.to_string(),
        None => "127.0.0.1 (a fresh port per runtime)".to_string(),
    };
    progress::log(&format!(
        "scenario {}: {} runtime(s) x {} point(s) x {} trial(s); target {target}; results in {}",
        plan.scenario.name,
        plan.subjects.len(),
        plan.points.len(),
        plan.scenario.run.repeat,
        dir.path.display()
    ));

    let mut overall = Overall::start(plan);
    let mut all = Collected::default();
    let mut summary = Vec::new();
    for (n, step) in plan.steps.iter().enumerate() {
        if crate::interrupt::requested().is_some() {
            break;
        }
        let (out, port) = run_step(plan, &exe, step, base_time, options);
        if out.row.status != RowStatus::Interrupted {
            meta.steps_done += 1;
        }
        overall.step_finished(&step_label(plan, step), &out.row, plan.step_estimate(step));
        all.trials.push(out.row);
        all.percentiles.extend(out.percentiles);
        all.timeline.extend(out.timeline);
        all.hlog.extend(out.hlog);
        summary = results::aggregate(&all.trials, plan.seed);
        write_all(&dir, &all, &summary, options, base_time)?;
        dir.write("meta.json", &serde_json::to_vec_pretty(&meta)?)?;
        if n + 1 < plan.steps.len() && crate::interrupt::requested().is_none() {
            cooldown(port);
        }
    }
    overall.finish();
    let interrupted = crate::interrupt::requested();
    meta.status = match interrupted {
        Some(_) => RunStatus::Interrupted,
        None => RunStatus::Complete,
    };
    meta.interrupted_by = interrupted.map(crate::interrupt::name);
    meta.finished_at = Some(chrono::Utc::now().to_rfc3339());
    dir.write("meta.json", &serde_json::to_vec_pretty(&meta)?)?;
    draw_plots(&dir.path);
    match interrupted {
        Some(sig) => progress::log(&format!(
            "interrupted by {}: {} of {} measurement(s) done; wrote what was measured to {}",
            crate::interrupt::name(sig),
            meta.steps_done,
            meta.steps_planned,
            dir.path.display()
        )),
        None => progress::log(&format!("wrote {}", dir.path.display())),
    }
    Ok(RunOutcome {
        summary,
        interrupted,
    })
}

fn write_all(
    dir: &RunDir,
    all: &Collected,
    summary: &[SummaryRow],
    options: &RunOptions,
    base: SystemTime,
) -> anyhow::Result<()> {
    dir.write("summary.csv", &results::summary_csv(summary)?)?;
    if options.keep_trials {
        dir.write("trials.csv", &results::summary_csv(&all.trials)?)?;
    }
    dir.write(
        "percentiles.csv",
        &results::percentiles_csv(&all.percentiles)?,
    )?;
    dir.write("timeline.csv", &results::to_csv(&all.timeline)?)?;
    dir.write("latency.hlog", &hlog::hlog(base, &all.hlog)?)?;
    Ok(())
}

/// Waits until the kernel has let go of the last step's server sockets (anything but
/// TIME_WAIT on loopback), so one runtime's teardown does not load the next one's start.
fn cooldown(port: Option<u16>) {
    let Some(port) = port else { return };
    let deadline = Instant::now() + COOLDOWN_LIMIT;
    while Instant::now() < deadline
        && crate::sys::closing_sockets(port) > 0
        && crate::interrupt::requested().is_none()
    {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Plots and report.md from the files just written. The measured results are already on disk,
/// so a failure here is reported and the run goes on.
fn draw_plots(dir: &Path) {
    match crate::render::render_dir(dir) {
        Ok(r) => {
            for f in &r.failures {
                progress::log(&format!("plot not drawn: {f}"));
            }
        }
        Err(e) => progress::log(&format!(
            "plots and report.md not written: {e:#}; the CSV results are complete \
             (retry with `runbench plot {}`)",
            dir.display()
        )),
    }
}
/// How a step is named in the log: the runtime, with the trial and point when there are several.
fn step_label(plan: &Plan, step: &Step) -> String {
    let name = plan.subjects[step.subject].name();
    let point = &plan.points[step.point];
    match (plan.points.len(), plan.scenario.run.repeat) {
        (1, 1) => name.to_string(),
        (1, _) => format!("{name} #{}", step.trial + 1),
        _ => format!("{name} #{} {}", step.trial + 1, point.label()),
    }
}

/// One step. Never fails: a failure becomes the row's status and error. Also returns the port
/// the server used, for the cooldown.
fn run_step(
    plan: &Plan,
    exe: &Path,
    step: &Step,
    base_time: SystemTime,
    options: &RunOptions,
) -> (StepOutput, Option<u16>) {
    let s = &plan.scenario;
    let subject = &plan.subjects[step.subject];
    let name = subject.name().to_string();
    let point = &plan.points[step.point];
    let base = base_row(plan, &name, step);
    let label = step_label(plan, step);
    let mut progress = RunProgress::start(&label, s.load.total());
    let mut timeline = TimelineRecorder::new(s.run.interval, plan.shards(point).len());
    let step_start = SystemTime::now();
    let mut port = None;
    let result = measure(
        plan,
        exe,
        subject,
        point,
        options,
        &mut progress,
        &mut timeline,
        &mut port,
    );
    progress.finish();
    timeline.finish();
    let tag = hlog::tag(&[
        &name,
        &step.trial.to_string(),
        &point.label().replace(' ', ";"),
    ]);
    let offset = step_start.duration_since(base_time).unwrap_or_default();
    let hlog = timeline
        .encoded_histograms()
        .into_iter()
        .map(|(start, encoded)| HlogEntry {
            tag: tag.clone(),
            start: offset + start,
            duration: timeline.interval(),
            encoded,
        })
        .collect();
    let timeline_rows = timeline.rows(&name, step.trial as u32, &base.point);
    let trend = rss_trend::judge(
        &timeline_rows,
        timeline.interval(),
        s.load.warmup,
        s.load.duration,
    );
    match result {
        Err(end) => {
            let row = match end {
                StepEnd::Failed(e) => {
                    progress::log(&format!("[{label}] FAILED: {e}"));
                    SummaryRow::failed(&base, e)
                }
                StepEnd::Interrupted(e) => {
                    progress::log(&format!("[{label}] {e}"));
                    SummaryRow::interrupted(&base, e)
                }
            };
            (
                StepOutput {
                    row: with_rss_trend(row, trend),
                    percentiles: Vec::new(),
                    timeline: timeline_rows,
                    hlog,
                },
                port,
            )
        }
        Ok((version, load, servers)) => {
            let row = with_rss_trend(to_row(base, &version, &load, &servers), trend);
            if row.status == RowStatus::Failed {
                progress::log(&format!("[{label}] FAILED: {}", row.error));
            }
            let percentiles = SPECTRUM
                .iter()
                .map(|&p| PercentileRow {
                    runtime: name.clone(),
                    trial: step.trial as u32,
                    percentile: p,
                    latency_us: load.percentile_us(p),
                    connections: Some(point.connections as u64),
                    payload_bytes: Some(point.payload_bytes),
                    server_threads: Some(point.threads as u64),
                    max_connections: Some(point.max_connections as u64),
                    target_rate: point.rate,
                })
                .collect();
            (
                StepOutput {
                    row,
                    percentiles,
                    timeline: timeline_rows,
                    hlog,
                },
                port,
            )
        }
    }
}
