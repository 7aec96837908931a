//! Runs a [`Plan`] step by step (trial x point x runtime, shuffled per trial): servers up ->
//! load generators connected -> load (timeline sampled) -> servers stopped -> one trial row.
//! Every file of the run folder is rewritten after each step, so nothing measured is lost.
//!
//! Every wait has a deadline: server start-up (`ready_timeout`), connecting (scaled with the
//! connection count), the load (its planned length + [`LOAD_MARGIN`]), shutdown (grace +
//! [`crate::supervise::server::EXIT_MARGIN`], then SIGKILL), the cooldown ([`COOLDOWN_LIMIT`]).
//! A server that dies ends its step at once; an interruption (Ctrl-C, SIGTERM) ends the step
//! and the run after stopping the current server (see [`crate::os::interrupt`]).

use crate::console::progress::RunProgress;
use crate::console::terminal::Overall;
use crate::error::Error;
use crate::judge::objectives;
use crate::measure::audit;
use crate::measure::rss_trend;
use crate::measure::timeline::{TimelineRecorder, TimelineRow};
use crate::measure::SPECTRUM;
use crate::plan::{Plan, Point, Step};
use crate::results::hlog::{self, HlogEntry};
use crate::results::{
    self, CapacityRow, Meta, PercentileRow, RowStatus, RunDir, RunStatus, SummaryRow,
};
use crate::scenario::Search;
use crate::supervise::server::READY_TIMEOUT;
use search::Probe;
use std::path::Path;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant, SystemTime};

mod row;
pub mod search;
mod server;
mod step;

use crate::judge::probe::verdict as probe_verdict;
use crate::judge::with_rss_trend;
use row::{base_row, to_row};

/// A load generator above this busy fraction may have limited the result.
pub const SATURATED_BUSY: f64 = 0.9;
/// Slack beyond the load's planned end before the run is declared hung.
const LOAD_MARGIN: Duration = Duration::from_secs(15);
/// How long to wait for the previous server's sockets to disappear before the next step.
const COOLDOWN_LIMIT: Duration = Duration::from_secs(10);

/// Numbers source-address blocks so that successive runs in one process never share one.
static RUN_SEQ: AtomicUsize = AtomicUsize::new(0);

/// Options of one `run` that are not part of the scenario (command-line options too).
#[derive(Clone, Debug, clap::Args)]
pub struct RunOptions {
    /// Also write every trial's row to trials.csv.
    #[arg(long)]
    pub keep_trials: bool,
    /// How long a server may take to report ready before it is killed (tests use a short
    /// one to exercise the timeout).
    #[arg(long, hide = true, default_value = "15s", value_parser = humantime::parse_duration)]
    pub ready_timeout: Duration,
    /// Also write the rows of every scenario run, with their verdicts, to FILE as JSON (an
    /// array of summary.json's objects, one per scenario).
    #[arg(long, value_name = "FILE")]
    pub export_json: Option<std::path::PathBuf>,
    /// Also write the rows of every scenario run to FILE as a Markdown table.
    #[arg(long, value_name = "FILE")]
    pub export_markdown: Option<std::path::PathBuf>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            keep_trials: false,
            ready_timeout: READY_TIMEOUT,
            export_json: None,
            export_markdown: None,
        }
    }
}

/// What a run produced.
#[derive(Debug)]
pub struct RunOutcome {
    /// The rows of summary.csv, and every trial's (trials.csv's, written or not).
    pub summary: Vec<SummaryRow>,
    pub trials: Vec<SummaryRow>,
    /// meta.json as it was last written.
    pub meta: Meta,
    /// With `[search]`: capacity.csv's rows.
    pub capacity: Vec<CapacityRow>,
    /// The signal that interrupted the run, if one did (the files are marked so).
    pub interrupted: Option<i32>,
    /// The run folder (`latest` may name another run that started meanwhile).
    pub dir: std::path::PathBuf,
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
    match crate::os::interrupt::requested() {
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

impl StepOutput {
    /// A step that measured nothing (skipped).
    fn row_only(row: SummaryRow) -> StepOutput {
        StepOutput {
            row,
            percentiles: Vec::new(),
            timeline: Vec::new(),
            hlog: Vec::new(),
        }
    }
}

/// What the run folder holds so far.
#[derive(Default)]
struct Collected {
    trials: Vec<SummaryRow>,
    percentiles: Vec<PercentileRow>,
    timeline: Vec<TimelineRow>,
    hlog: Vec<HlogEntry>,
}

/// Runs every step of the plan (or, with `[search]`, every runtime's capacity search), or until
/// interrupted; returns the summary rows (also written to disk as they come). Errors only
/// before the first measurement; a write that fails later ends the run with
/// [`RunOutcome::stopped_by`], so the caller still has the rows to show.
pub fn run_plan(plan: &Plan, out_root: &Path, options: &RunOptions) -> Result<RunOutcome, Error> {
    let started = chrono::Utc::now();
    let exe = std::env::current_exe()
        .map_err(|e| Error::system(anyhow::anyhow!("finding runbench's own executable: {e}")))?;
    let dir = RunDir::create(out_root, &plan.scenario.name, started)?;
    // Whatever runtimes this run has: a namespace left by a killed run is cleaned now.
    crate::os::netns::remove_stale();
    let mut run = RunState {
        plan,
        options,
        exe,
        base_time: SystemTime::now(),
        meta: Meta::new(plan, started),
        dir,
        all: Collected::default(),
        summary: Vec::new(),
        capacity: Vec::new(),
        last_port: None,
        overall: Overall::start(plan),
        latest_moved: false,
    };
    if let Err(e) = run.dir.write("meta.json", &meta_json(&run.meta)) {
        run.dir.remove_if_empty();
        return Err(e.into());
    }
    announce(plan, &run.dir);
    let mut stopped_by = None;
    for step in &plan.steps {
        if crate::os::interrupt::requested().is_some() {
            break;
        }
        let done = match &plan.scenario.search {
            None => {
                let point = plan.points[step.point].clone();
                run.measure(step.subject, &point, step.trial, "")
                    .map(|_| ())
            }
            Some(search) => run.search_capacity(search, step),
        };
        if let Err(e) = done {
            crate::console::log(&format!(
                "stopping the run: {e}; this measurement is only in the table below, and no \
                 more are made since they could not be kept"
            ));
            stopped_by = Some(e);
            break;
        }
    }
    Ok(run.finish(stopped_by))
}

/// The first lines of a run's log: what it will do, where the results go.
fn announce(plan: &Plan, dir: &RunDir) {
    let target = match (&plan.scenario.target, plan.placement.server()) {
        (Some(t), _) => t.address.to_string(),
        (None, Some(agent)) => format!(
            "server agent {} at {} (a port it reserves per runtime)",
            agent.name,
            agent.addr.ip()
        ),
        (None, None) => "127.0.0.1 (a fresh port per runtime)".to_string(),
    };
    let what = match &plan.scenario.search {
        Some(_) => "a capacity search".to_string(),
        None => format!("{} trial(s)", plan.scenario.run.repeat),
    };
    crate::console::log(&format!(
        "scenario {}: {} runtime(s) x {} point(s) x {what}; target {target}; results in {}",
        plan.scenario.name,
        plan.subjects.len(),
        plan.points.len(),
        dir.path.display()
    ));
    if plan.scenario.server.processes_auto {
        crate::console::log(&format!(
            "server processes: {} (processes = \"auto\": {} connections, at most {} per process \
             under the open-files limit of {})",
            plan.server_processes,
            plan.scenario.load.peak_connections(),
            (plan.nofile_limit as usize).saturating_sub(crate::plan::FD_RESERVE),
            plan.nofile_limit
        ));
    }
}

fn meta_json(meta: &Meta) -> Vec<u8> {
    serde_json::to_vec_pretty(meta).expect("meta.json holds only plain data")
}

/// A run in progress: its folder and everything measured so far, rewritten after each step.
struct RunState<'a> {
    plan: &'a Plan,
    options: &'a RunOptions,
    exe: std::path::PathBuf,
    base_time: SystemTime,
    meta: Meta,
    dir: RunDir,
    all: Collected,
    summary: Vec<SummaryRow>,
    capacity: Vec<CapacityRow>,
    /// The last step's server port, for the cooldown before the next step.
    last_port: Option<u16>,
    overall: Overall,
    /// `latest` moves to this run once it has a measurement (ok or failed), not before.
    latest_moved: bool,
}

impl RunState<'_> {
    /// Measures `subject` at `point` (trial `trial`), records the row and rewrites the files.
    /// A failed write leaves every file as after the previous step and ends the run.
    fn measure(
        &mut self,
        subject: usize,
        point: &Point,
        trial: usize,
        probe: &str,
    ) -> Result<SummaryRow, Error> {
        if let Some(port) = self.last_port.take() {
            cooldown(port);
        }
        let (mut out, port) = run_step(self, subject, point, trial);
        self.last_port = port;
        out.row.probe = probe.to_string();
        objectives::apply(self.plan.scenario.slo.as_ref(), &mut out.row);
        let measured = out.row.status != RowStatus::Interrupted;
        if measured {
            self.meta.steps_done += 1;
        }
        let label = step_label(self.plan, subject, point, trial);
        let estimate = crate::plan::budget::step_time(&self.plan.scenario, point.connections);
        if probe.is_empty() {
            self.overall.step_finished(&label, &out.row, estimate);
        } else {
            self.overall.probe_finished(&label, &out.row, estimate);
        }
        let row = out.row.clone();
        self.all.trials.push(out.row);
        self.all.percentiles.extend(out.percentiles);
        self.all.timeline.extend(out.timeline);
        self.all.hlog.extend(out.hlog);
        self.summary = results::aggregate(&self.all.trials);
        for r in &mut self.summary {
            objectives::apply(self.plan.scenario.slo.as_ref(), r);
        }
        if let Err(e) = self.write_files() {
            // None of this step's files changed: the folder still holds the steps before it.
            if measured {
                self.meta.steps_done -= 1;
            }
            return Err(e);
        }
        if self.meta.steps_done > 0 && !self.latest_moved {
            self.latest_moved = true;
            if let Err(e) = self.dir.point_latest() {
                crate::console::log(&format!("`latest` not moved: {e}"));
            }
        }
        Ok(row)
    }

    /// One runtime's capacity search at one point: probes until `search::find` is done.
    fn search_capacity(&mut self, search: &Search, step: &Step) -> Result<(), Error> {
        let plan = self.plan;
        let base = plan.points[step.point].clone();
        let name = plan.subjects[step.subject].name().to_string();
        let settings = search::Settings {
            from: search.from,
            max: search.max,
            resolution: search.resolution,
            confirm: search.confirm,
        };
        let mut tries: std::collections::BTreeMap<u64, usize> = Default::default();
        let mut failure = None;
        let found = search::find(&settings, |rate, stage| {
            let point = Point {
                rate: Some(rate),
                ..base.clone()
            };
            let trial = tries.entry(rate).or_default();
            *trial += 1;
            match self.measure(step.subject, &point, *trial - 1, stage.name()) {
                Ok(row) => probe_verdict(&row, plan.scenario.slo.as_ref()),
                Err(e) => {
                    failure = Some(e);
                    Probe::Interrupted
                }
            }
        });
        if let Some(e) = failure {
            return Err(e);
        }
        let row = CapacityRow::new(plan, &name, &base, step.trial, &found);
        self.overall.search_finished();
        crate::console::log(&format!("[{name}] capacity: {}", row.describe()));
        self.capacity.push(row);
        self.write_files()
    }

    /// Every file of the run folder, replaced together so that a failed write (disk full)
    /// leaves all of them as they were after the previous step, meta.json's `steps_done`
    /// included.
    fn write_files(&mut self) -> Result<(), Error> {
        let all = &self.all;
        // Rendered in memory first; only writing them can fail for outside reasons.
        let mut files = vec![("summary.csv", results::summary_csv(&self.summary))];
        // A search's probes at one rate are trials of it: keep them all.
        if self.options.keep_trials || self.plan.scenario.search.is_some() {
            files.push(("trials.csv", results::summary_csv(&all.trials)));
        }
        files.push((
            "percentiles.csv",
            results::percentiles_csv(&all.percentiles),
        ));
        files.push(("timeline.csv", results::to_csv(&all.timeline)));
        files.push(("latency.hlog", hlog::hlog(self.base_time, &all.hlog)));
        if self.plan.scenario.search.is_some() {
            files.push(("capacity.csv", results::to_csv(&self.capacity)));
        }
        let mut bytes = Vec::new();
        for (name, b) in files {
            bytes.push((name, b.map_err(Error::system)?));
        }
        bytes.push((
            "summary.json",
            results::SummaryJson::new(&self.meta, &self.summary).bytes(),
        ));
        self.meta.files = (bytes.iter().map(|(n, _)| n.to_string()))
            .chain(["meta.json".to_string()])
            .collect();
        bytes.push(("meta.json", meta_json(&self.meta)));
        let files: Vec<(&str, &[u8])> = bytes.iter().map(|(n, b)| (*n, b.as_slice())).collect();
        Ok(self.dir.write_together(&files)?)
    }

    /// Marks the run complete, interrupted or stopped by a failed write, draws the plots, says
    /// where the results are.
    fn finish(mut self, mut stopped_by: Option<Error>) -> RunOutcome {
        self.overall.finish();
        let interrupted = crate::os::interrupt::requested();
        let meta = &mut self.meta;
        meta.interrupted_by = interrupted.map(crate::os::interrupt::name);
        meta.finished_at = Some(chrono::Utc::now().to_rfc3339());
        if stopped_by.is_none() {
            meta.status = match interrupted {
                Some(_) => RunStatus::Interrupted,
                None => RunStatus::Complete,
            };
            // The plots and report.md are drawn from the files, meta.json included; then
            // meta.json lists them too.
            stopped_by = self
                .dir
                .write("meta.json", &meta_json(meta))
                .map_err(Error::from)
                .and_then(|()| draw_plots(&self.dir.path))
                .and_then(|drawn| {
                    meta.files.extend(drawn);
                    self.dir
                        .write("meta.json", &meta_json(meta))
                        .map_err(Error::from)
                })
                .err();
        }
        if let Some(e) = &stopped_by {
            meta.status = RunStatus::WriteFailed;
            meta.write_error = Some(e.to_string());
            // Best effort: with the failed file's temporary copy gone, a small file often fits.
            let _ = self.dir.write("meta.json", &meta_json(meta));
        }
        let dir = self.dir.path.display();
        match (interrupted, &stopped_by) {
            (_, Some(_)) => crate::console::log(&format!(
                "{} of {} measurement(s) done; {dir} holds them up to the last complete write",
                meta.steps_done, meta.steps_planned,
            )),
            (Some(sig), None) => crate::console::log(&format!(
                "interrupted by {}: {} of {} measurement(s) done; wrote what was measured to {dir}",
                crate::os::interrupt::name(sig),
                meta.steps_done,
                meta.steps_planned,
            )),
            (None, None) => crate::console::log(&format!("wrote {dir}")),
        }
        RunOutcome {
            summary: self.summary,
            trials: self.all.trials,
            meta: self.meta,
            capacity: self.capacity,
            interrupted,
            dir: self.dir.path,
            stopped_by,
        }
    }
}

/// How a step is named in the log: the runtime, with the trial and point when there are several
/// (a search's probe by its rate).
fn step_label(plan: &Plan, subject: usize, point: &Point, trial: usize) -> String {
    let name = plan.subjects[subject].name();
    match (
        plan.points.len(),
        plan.scenario.run.repeat,
        &plan.scenario.search,
    ) {
        (_, _, Some(_)) => format!("{name} {}/s", point.rate.unwrap_or(0)),
        (1, 1, None) => name.to_string(),
        (1, _, None) => format!("{name} #{}", trial + 1),
        _ => format!("{name} #{} {}", trial + 1, point.label()),
    }
}

/// Waits until the kernel has let go of the last step's server sockets (anything but
/// TIME_WAIT on loopback), so one runtime's teardown does not load the next one's start.
fn cooldown(port: u16) {
    let deadline = Instant::now() + COOLDOWN_LIMIT;
    while Instant::now() < deadline
        && crate::os::procfs::closing_sockets(port) > 0
        && crate::os::interrupt::requested().is_none()
    {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Plots and report.md from the files just written. The measured results are already on disk,
/// so a chart that cannot be drawn is reported and the run goes on; a file that cannot be
/// written is a write failure like any other.
fn draw_plots(dir: &Path) -> Result<Vec<String>, Error> {
    match crate::plot::render::render_dir(dir) {
        Ok(r) => {
            for f in &r.failures {
                crate::console::log(&format!("plot not drawn: {f}"));
            }
            Ok(r.files)
        }
        Err(e) => match Error::system(e) {
            Error::Write(w) => Err(Error::Write(w)),
            other => {
                crate::console::log(&format!(
                    "plots and report.md not written: {other}; the CSV results are complete \
                     (retry with `runbench plot {}`)",
                    dir.display()
                ));
                Ok(Vec::new())
            }
        },
    }
}

/// One step. Never fails: a failure becomes the row's status and error. Also returns the port
/// the server used, for the cooldown.
fn run_step(
    run: &RunState,
    subject_index: usize,
    point: &Point,
    trial: usize,
) -> (StepOutput, Option<u16>) {
    let (plan, exe, options, base_time) = (run.plan, &run.exe, run.options, run.base_time);
    let s = &plan.scenario;
    let subject = &plan.subjects[subject_index];
    let name = subject.name().to_string();
    let base = base_row(plan, subject_index, point, trial);
    let label = step_label(plan, subject_index, point, trial);
    if let Some(reason) = plan.skip_reason(subject_index, point) {
        crate::console::log(&format!("[{label}] skipped: {reason}"));
        let row = SummaryRow::skipped(&base, reason);
        return (StepOutput::row_only(row), None);
    }
    let inputs = step::StepInputs {
        plan,
        exe,
        subject,
        point,
        options,
    };
    let mut st = step::StepState {
        progress: RunProgress::start(&label, s.load.total()),
        timeline: TimelineRecorder::new(s.run.interval, plan.shards(point).len()),
        port: None,
        load_started: None,
    };
    if let Some(names) = plan.placement.shard_agents(plan.shards(point).len()) {
        st.timeline.name_sources(names);
    }
    let result = step::measure(&inputs, &mut st);
    st.progress.finish();
    st.timeline.finish();
    let timeline = &st.timeline;
    let tag = hlog::tag(&[&name, &trial.to_string(), &point.label().replace(' ', ";")]);
    let mut hlog = interval_log(timeline, &tag, st.load_started, base_time);
    hlog.extend(agent_interval_log(
        timeline,
        &name,
        trial,
        point,
        st.load_started,
        base_time,
    ));
    let timeline_rows = timeline.rows(&name, trial as u32, &base.point);
    let trend = rss_trend::judge(
        &timeline_rows,
        timeline.interval(),
        s.load.warmup,
        s.load.duration,
    );
    let (row, percentiles) = match result {
        Err(StepEnd::Failed(e)) => {
            crate::console::log(&format!("[{label}] FAILED: {e}"));
            (SummaryRow::failed(&base, e), Vec::new())
        }
        Err(StepEnd::Interrupted(e)) => {
            crate::console::log(&format!("[{label}] {e}"));
            (SummaryRow::interrupted(&base, e), Vec::new())
        }
        Ok(m) => {
            let facts = step_facts(plan, point);
            let audit = audit::audit(&facts, &m.load, &m.window);
            if !audit.findings.is_empty() {
                crate::console::log(&format!("[{label}] audit: {}", audit.column()));
            }
            let row = to_row(base, &m, &facts, &audit);
            if row.status == RowStatus::Failed {
                crate::console::log(&format!("[{label}] FAILED: {}", row.error));
            }
            (row, spectrum(&name, trial, point, &m.load))
        }
    };
    (
        StepOutput {
            row: with_rss_trend(row, trend),
            percentiles,
            timeline: timeline_rows,
            hlog,
        },
        st.port,
    )
}

/// The step's intervals for latency.hlog: interval k starts k intervals after the load started
/// (not when the step began), on the run's clock.
fn interval_log(
    timeline: &TimelineRecorder,
    tag: &str,
    load_started: Option<SystemTime>,
    base_time: SystemTime,
) -> Vec<HlogEntry> {
    let intervals = timeline.encoded_histograms().into_iter();
    hlog_entries(
        timeline,
        load_started,
        base_time,
        intervals.map(|(start, encoded)| (tag.to_string(), start, encoded)),
    )
}

/// Across machines, each agent's intervals for latency.hlog, tagged `runtime/trial/point/agent:NAME`.
fn agent_interval_log(
    timeline: &TimelineRecorder,
    runtime: &str,
    trial: usize,
    point: &Point,
    load_started: Option<SystemTime>,
    base_time: SystemTime,
) -> Vec<HlogEntry> {
    let point = point.label().replace(' ', ";");
    let intervals = timeline.encoded_by_source().into_iter();
    hlog_entries(
        timeline,
        load_started,
        base_time,
        intervals.map(|(agent, start, encoded)| {
            let tag = hlog::tag(&[
                runtime,
                &trial.to_string(),
                &point,
                &format!("agent:{agent}"),
            ]);
            (tag, start, encoded)
        }),
    )
}

/// (tag, start since the load started, encoded histogram) -> latency.hlog entries on the run's
/// clock, one interval long.
fn hlog_entries(
    timeline: &TimelineRecorder,
    load_started: Option<SystemTime>,
    base_time: SystemTime,
    intervals: impl Iterator<Item = (String, Duration, Vec<u8>)>,
) -> Vec<HlogEntry> {
    let offset = load_started
        .and_then(|t| t.duration_since(base_time).ok())
        .unwrap_or_default();
    intervals
        .map(|(tag, start, encoded)| HlogEntry {
            tag,
            start: offset + start,
            duration: timeline.interval(),
            encoded,
        })
        .collect()
}

/// percentiles.csv's rows of one measurement.
fn spectrum(
    runtime: &str,
    trial: usize,
    point: &Point,
    load: &crate::measure::LoadMeasurement,
) -> Vec<PercentileRow> {
    SPECTRUM
        .iter()
        .map(|&p| {
            let mut row = PercentileRow {
                runtime: runtime.to_string(),
                trial: trial as u32,
                percentile: p,
                latency_us: load.percentile_us(p),
                ..Default::default()
            };
            row.set_point(point);
            row
        })
        .collect()
}

/// The CPUs the load may use in all: across machines each load agent's host has its own (and an
/// unpinned one, one per load thread, as far as the load can use them).
fn load_cpus(plan: &Plan) -> usize {
    let s = &plan.scenario;
    let agents = plan.placement.load_agents();
    if agents == 0 {
        return s.load.cpus.len();
    }
    let per_host = match s.load.cpus.len() {
        0 => s.load.threads.max(1),
        n => n,
    };
    per_host * agents
}

/// What the audit needs to know of the plan at `point`.
fn step_facts(plan: &Plan, point: &Point) -> audit::StepFacts {
    let s = &plan.scenario;
    let shards = plan.shards(point);
    let threads_per_process = |connections: usize| s.load.threads.max(1).min(connections.max(1));
    audit::StepFacts {
        model: s.load.model,
        workload: plan.workload(point),
        skew: s.load.skew,
        // With skew the cold connections of a closed load think between requests: Little's
        // law's N is not the connections open.
        steady_connections: s.load.phases.is_empty()
            && s.load.requests_per_connection.is_none()
            && s.load.skew.is_none(),
        rate: plan.ramps(point).1,
        send_window: s.load.send_window,
        warmup: s.load.warmup,
        duration: s.load.duration,
        server_processes: plan.server_processes,
        load_processes: shards.len(),
        load_threads: shards
            .iter()
            .map(|sh| threads_per_process(sh.connections))
            .sum(),
        load_cpus: load_cpus(plan),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Percentile, Slo};

    const SEARCH: search::Settings = search::Settings {
        from: 1000,
        max: 1_000_000,
        resolution: 0.05,
        confirm: 2,
    };

    /// A probe of an M/D/1 server (100 µs a request, so 10,000/s at most) at `rate`: its median
    /// sojourn time is the service plus the median wait, which grows without bound toward 1.
    fn probe_row(rate: u64) -> SummaryRow {
        let rho = rate as f64 / 10_000.0;
        let p50 = if rho < 1.0 {
            100.0 + 100.0 * rho / (2.0 * (1.0 - rho))
        } else {
            1e9
        };
        SummaryRow {
            status: RowStatus::Ok,
            requests: Some(rate * 2),
            p50_us: Some(p50),
            not_sent: Some(0),
            send_lag_p99_us: Some(0.0),
            loadgen_saturated: Some(false),
            ..Default::default()
        }
    }

    fn capacity_at_p50(limit_us: u64) -> u64 {
        let slo = Slo {
            latency: vec![(Percentile::P50, Duration::from_micros(limit_us))],
            errors: None,
            achieved: None,
        };
        let found = search::find(&SEARCH, |rate, _| {
            probe_verdict(&probe_row(rate), Some(&slo))
        });
        assert!(found.note.is_empty(), "{found:?}");
        found.capacity.unwrap()
    }

    /// A server that answers 10,000/s at most, fast: under a latency limit loose enough that a
    /// short probe's backlog never reaches it (the "ceiling" integration test's 10 s), a probe
    /// above 10,000/s passed before, and the search reported the client's ceiling (925,000/s
    /// against the 385,000/s answered, on this VM). A rate is a capacity only if the answers
    /// keep pace with it.
    #[test]
    fn a_probe_whose_answers_fall_behind_the_offered_rate_does_not_pass() {
        let slo = Slo {
            latency: vec![(Percentile::P99, Duration::from_secs(10))],
            errors: None,
            achieved: None,
        };
        let row = |rate: u64, saturated: bool| SummaryRow {
            status: RowStatus::Ok,
            requests: Some(rate.min(10_000)),
            requests_per_sec: Some(rate.min(10_000) as f64),
            target_rate: Some(rate),
            duration_s: 1.0,
            p99_us: Some(900_000.0),
            not_sent: Some(0),
            send_lag_p99_us: Some(0.0),
            loadgen_saturated: Some(saturated),
            ..Default::default()
        };
        assert_eq!(probe_verdict(&row(10_000, false), Some(&slo)), Probe::Pass);
        let Probe::Fail(why) = probe_verdict(&row(25_000, false), Some(&slo)) else {
            panic!("the server fell behind: a fail");
        };
        assert!(why.contains("40.0% of the offered rate"), "{why}");
        // A generator 30 ms late at the window's end leaves 300 of 10,000/s's answers out of it.
        let late = SummaryRow {
            requests_per_sec: Some(9_750.0),
            send_lag_p99_us: Some(30_000.0),
            ..row(10_000, false)
        };
        assert!(matches!(
            probe_verdict(&late, Some(&slo)),
            Probe::Inconclusive(_)
        ));
        // A slow rate's window may lack the answers in flight at its end.
        let slow = SummaryRow {
            requests_per_sec: Some(9.0),
            target_rate: Some(10),
            duration_s: 2.0,
            ..row(10, false)
        };
        assert_eq!(probe_verdict(&slow, Some(&slo)), Probe::Pass);
        // Just above the server's rate: 98.5% answered is a backlog growing, not noise.
        assert!(matches!(
            probe_verdict(&row(10_150, false), Some(&slo)),
            Probe::Fail(_)
        ));
        assert!(matches!(
            probe_verdict(&row(25_000, true), Some(&slo)),
            Probe::Inconclusive(_)
        ));
        let found = search::find(&SEARCH, |rate, _| {
            probe_verdict(&row(rate, false), Some(&slo))
        });
        let (lo, hi) = (found.capacity.unwrap(), found.failed_at.unwrap());
        assert!(lo <= 10_101 && 10_101 < hi, "{found:?}");
        assert!(found.binding.contains("backlog grew"), "{found:?}");
    }

    /// The judgement, the verdict and the search together: a tighter objective finds a lower
    /// capacity, each near where the model crosses its limit (p50 = 2 ms at 9,744/s, 300 µs at
    /// 8,000/s). The integration test's real server has a sharper knee, where both land in one
    /// step of the resolution.
    #[test]
    fn a_tighter_objective_finds_a_lower_capacity() {
        let (loose, tight) = (capacity_at_p50(2000), capacity_at_p50(300));
        assert!(tight < loose, "{tight} against {loose}");
        assert!(
            (9_744.0 / 1.05..=9_744.0).contains(&(loose as f64)),
            "{loose}"
        );
        assert!(
            (8_000.0 / 1.05..=8_000.0).contains(&(tight as f64)),
            "{tight}"
        );
    }
}
