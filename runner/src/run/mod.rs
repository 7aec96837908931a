//! Runs a [`Plan`] step by step (trial x point x runtime, shuffled per trial): servers up ->
//! load generators connected -> load (timeline sampled) -> servers stopped -> one trial row.
//! Every file of the run folder is rewritten after each step, so nothing measured is lost.
//!
//! Every wait has a deadline: server start-up (`ready_timeout`), connecting (scaled with the
//! connection count), the load (its planned length + [`LOAD_MARGIN`]), shutdown (grace +
//! [`crate::supervise::server::EXIT_MARGIN`], then SIGKILL), the cooldown ([`COOLDOWN_LIMIT`]).
//! A server that dies ends its step at once; an interruption (Ctrl-C, SIGTERM) ends the step
//! and the run after stopping the current server (see [`crate::interrupt`]).

use crate::error::Error;
use crate::measure::SPECTRUM;
use crate::plan::{Plan, Step};
use crate::progress::{self, RunProgress};
use crate::results::hlog::{self, HlogEntry};
use crate::results::{self, Meta, PercentileRow, RowStatus, RunDir, RunStatus, SummaryRow};
use crate::rss_trend;
use crate::supervise::server::READY_TIMEOUT;
use crate::terminal::Overall;
use crate::timeline::{TimelineRecorder, TimelineRow};
use std::path::{Path, PathBuf};
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
#[derive(Debug)]
pub struct RunOutcome {
    /// The rows of summary.csv.
    pub summary: Vec<SummaryRow>,
    /// The signal that interrupted the run, if one did (the files are marked so).
    pub interrupted: Option<i32>,
    /// The run folder (`latest` may name another run that started meanwhile).
    pub dir: PathBuf,
    /// What stopped the run after it started: a result file that could not be written. The
    /// files hold every measurement up to the last complete write; meta.json says
    /// `write_failed` when it could still be written.
    pub stopped_by: Option<Error>,
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
/// disk as they come). Errors only before the first measurement; a write that fails later ends
/// the run with [`RunOutcome::stopped_by`], so the caller still has the rows to show.
pub fn run_plan(plan: &Plan, out_root: &Path, options: &RunOptions) -> Result<RunOutcome, Error> {
    let started = chrono::Utc::now();
    let base_time = SystemTime::now();
    let exe = std::env::current_exe()
        .map_err(|e| Error::system(anyhow::anyhow!("finding runbench's own executable: {e}")))?;
    let dir = RunDir::create(out_root, &plan.scenario.name, started)?;
    // Whatever runtimes this run has: a namespace left by a killed run is cleaned now.
    crate::netns::remove_stale();
    let mut meta = Meta::new(plan, started);
    if let Err(e) = dir.write("meta.json", &meta_json(&meta)) {
        dir.remove_if_empty();
        return Err(e.into());
    }
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
    let mut stopped_by = None;
    let mut latest_moved = false;
    for (n, step) in plan.steps.iter().enumerate() {
        if crate::interrupt::requested().is_some() {
            break;
        }
        let (out, port) = run_step(plan, &exe, step, base_time, options);
        let measured = out.row.status != RowStatus::Interrupted;
        if measured {
            meta.steps_done += 1;
        }
        overall.step_finished(&step_label(plan, step), &out.row, plan.step_estimate(step));
        all.trials.push(out.row);
        all.percentiles.extend(out.percentiles);
        all.timeline.extend(out.timeline);
        all.hlog.extend(out.hlog);
        summary = results::aggregate(&all.trials, plan.seed);
        if let Err(e) = write_all(&dir, &all, &summary, &meta, options, base_time) {
            // None of this step's files changed: the folder still holds the steps before it.
            if measured {
                meta.steps_done -= 1;
            }
            progress::log(&format!(
                "stopping the run: {e}; this measurement is only in the table below, and no \
                 more are made since they could not be kept"
            ));
            stopped_by = Some(e);
            break;
        }
        // `latest` moves to this run once it has a measurement (ok or failed), not before.
        if meta.steps_done > 0 && !latest_moved {
            latest_moved = true;
            if let Err(e) = dir.point_latest() {
                progress::log(&format!("`latest` not moved: {e}"));
            }
        }
        if n + 1 < plan.steps.len() && crate::interrupt::requested().is_none() {
            cooldown(port);
        }
    }
    overall.finish();
    let interrupted = crate::interrupt::requested();
    meta.interrupted_by = interrupted.map(crate::interrupt::name);
    meta.finished_at = Some(chrono::Utc::now().to_rfc3339());
    if stopped_by.is_none() {
        meta.status = match interrupted {
            Some(_) => RunStatus::Interrupted,
            None => RunStatus::Complete,
        };
        // The plots and report.md are drawn from the files, meta.json included.
        stopped_by = dir
            .write("meta.json", &meta_json(&meta))
            .map_err(Error::from)
            .and_then(|()| draw_plots(&dir.path))
            .err();
    }
    if let Some(e) = &stopped_by {
        meta.status = RunStatus::WriteFailed;
        meta.write_error = Some(e.to_string());
        // Best effort: with the failed file's temporary copy gone, a small file often fits.
        let _ = dir.write("meta.json", &meta_json(&meta));
    }
    match (interrupted, &stopped_by) {
        (_, Some(_)) => progress::log(&format!(
            "{} of {} measurement(s) done; {} holds them up to the last complete write",
            meta.steps_done,
            meta.steps_planned,
            dir.path.display()
        )),
        (Some(sig), None) => progress::log(&format!(
            "interrupted by {}: {} of {} measurement(s) done; wrote what was measured to {}",
            crate::interrupt::name(sig),
            meta.steps_done,
            meta.steps_planned,
            dir.path.display()
        )),
        (None, None) => progress::log(&format!("wrote {}", dir.path.display())),
    }
    Ok(RunOutcome {
        summary,
        interrupted,
        dir: dir.path,
        stopped_by,
    })
}

fn meta_json(meta: &Meta) -> Vec<u8> {
    serde_json::to_vec_pretty(meta).expect("meta.json holds only plain data")
}

/// Every file of the run folder after a step, replaced together so that a failed write (disk
/// full) leaves all of them as they were after the previous step, meta.json's `steps_done`
/// included.
fn write_all(
    dir: &RunDir,
    all: &Collected,
    summary: &[SummaryRow],
    meta: &Meta,
    options: &RunOptions,
    base: SystemTime,
) -> Result<(), Error> {
    // Rendered in memory first; only writing them can fail for outside reasons.
    let mut files = vec![("summary.csv", results::summary_csv(summary))];
    if options.keep_trials {
        files.push(("trials.csv", results::summary_csv(&all.trials)));
    }
    files.push((
        "percentiles.csv",
        results::percentiles_csv(&all.percentiles),
    ));
    files.push(("timeline.csv", results::to_csv(&all.timeline)));
    files.push(("latency.hlog", hlog::hlog(base, &all.hlog)));
    let mut bytes = Vec::new();
    for (name, b) in files {
        bytes.push((name, b.map_err(Error::system)?));
    }
    bytes.push(("meta.json", meta_json(meta)));
    let files: Vec<(&str, &[u8])> = bytes.iter().map(|(n, b)| (*n, b.as_slice())).collect();
    Ok(dir.write_together(&files)?)
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
/// so a chart that cannot be drawn is reported and the run goes on; a file that cannot be
/// written is a write failure like any other.
fn draw_plots(dir: &Path) -> Result<(), Error> {
    match crate::render::render_dir(dir) {
        Ok(r) => {
            for f in &r.failures {
                progress::log(&format!("plot not drawn: {f}"));
            }
            Ok(())
        }
        Err(e) => match Error::system(e) {
            Error::Write(w) => Err(Error::Write(w)),
            other => {
                progress::log(&format!(
                    "plots and report.md not written: {other}; the CSV results are complete \
                     (retry with `runbench plot {}`)",
                    dir.display()
                ));
                Ok(())
            }
        },
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
