//! Runs a [`Plan`] step by step (trial x point x runtime, shuffled per trial): servers up ->
//! load generators connected -> load (timeline sampled) -> servers stopped -> one trial row.
//! Every file of the run folder is rewritten after each step, so nothing measured is lost.
//!
//! Every wait has a deadline: server start-up (`ready_timeout`), connecting (scaled with the
//! connection count), the load (its planned length + [`LOAD_MARGIN`]), shutdown (grace +
//! [`crate::supervise::server::EXIT_MARGIN`], then SIGKILL), the cooldown ([`COOLDOWN_LIMIT`]).
//! A server that dies ends its step at once; an interruption (Ctrl-C, SIGTERM) ends the step
//! and the run after stopping the current server (see [`crate::interrupt`]).

use crate::measure::{percentile_us, LoadMeasurement, SPECTRUM};
use crate::plan::{Plan, Point, Step, Subject};
use crate::progress::{self, Phase, RunProgress};
use crate::protocol::{LoadResult, LoadgenSpec, Ramp, ServeSpec};
use crate::results::hlog::{self, HlogEntry};
use crate::results::{self, Meta, PercentileRow, RowStatus, RunDir, RunStatus, SummaryRow};
use crate::rss_trend::{self, RssTrend};
use crate::scenario::Model;
use crate::supervise::external::External;
use crate::supervise::loadgen::Loadgens;
use crate::supervise::server::{Servers, ServersExit, READY_TIMEOUT};
use crate::timeline::{TimelineRecorder, TimelineRow};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

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

fn base_row(plan: &Plan, subject: &str, step: &Step) -> SummaryRow {
    let s = &plan.scenario;
    let p = &plan.points[step.point];
    SummaryRow {
        scenario: s.name.clone(),
        runtime: subject.to_string(),
        trial: Some(step.trial as u32),
        trials: 1,
        model: match s.load.model {
            Model::Closed => "closed".into(),
            Model::Open => "open".into(),
        },
        connections: p.connections,
        payload_bytes: p.payload_bytes,
        target_rate: p.rate,
        server_threads: p.threads,
        max_connections: p.max_connections,
        server_processes: plan.server_processes,
        duration_s: s.load.duration.as_secs_f64(),
        shutdown_at_s: s.shutdown.at.map(|d| d.as_secs_f64()),
        point: if plan.points.len() > 1 {
            p.label()
        } else {
            String::new()
        },
        ..Default::default()
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
    let label = match (plan.points.len(), s.run.repeat) {
        (1, 1) => name.clone(),
        (1, _) => format!("{name} #{}", step.trial + 1),
        _ => format!("{name} #{} {}", step.trial + 1, point.label()),
    };
    let mut progress = RunProgress::start(&label, s.load.total());
    let mut timeline = TimelineRecorder::new(s.run.interval);
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
    let tag = hlog::tag(&[
        &name,
        &step.trial.to_string(),
        &point.label().replace(' ', ";"),
    ]);
    let offset = step_start.duration_since(base_time).unwrap_or_default();
    let hlog = timeline
        .histograms()
        .into_iter()
        .map(|(start, histogram)| HlogEntry {
            tag: tag.clone(),
            start: offset + start,
            duration: timeline.interval(),
            histogram,
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

/// Adds the RSS trend's columns; a growing RSS fails a row that was otherwise fine.
fn with_rss_trend(mut row: SummaryRow, trend: Option<RssTrend>) -> SummaryRow {
    let Some(t) = trend else { return row };
    row.server_rss_growth_mib_per_min = Some(t.mib_per_min);
    row.server_rss_growing = t.growing;
    if t.growing == Some(true) && row.status != RowStatus::Interrupted {
        row.status = RowStatus::Failed;
        row.error = match row.error.is_empty() {
            true => t.describe(),
            false => format!("{}; {}", row.error, t.describe()),
        };
    }
    row
}

fn error_kinds(e: &crate::protocol::LoadErrors) -> String {
    let kinds = [
        ("connect_failed", e.connect_failed),
        ("connect_timeout", e.connect_timeout),
        ("reset", e.reset),
        ("closed_by_server", e.closed_by_server),
        ("unanswered", e.unanswered),
        ("other", e.other),
    ];
    kinds
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{k}={n}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn to_row(
    base: SummaryRow,
    version: &str,
    load: &LoadMeasurement,
    servers: &ServersExit,
) -> SummaryRow {
    let cpu = servers.cpu_user_s + servers.cpu_sys_s;
    let stop_during_load = base.shutdown_at_s.is_some();
    let mut problems = Vec::new();
    if let Some(f) = &servers.failure {
        problems.push(f.clone());
    }
    if load.mismatched_bytes > 0 {
        problems.push(format!(
            "{} echoed bytes differed from what was sent",
            load.mismatched_bytes
        ));
    }
    if load.connections_ok < base.connections as u64 {
        problems.push(format!(
            "only {} of {} connections were established",
            load.connections_ok, base.connections
        ));
    }
    if load.requests == 0 && !stop_during_load {
        problems.push("no request completed in the measured window".into());
    }
    let uncorrected = load.uncorrected.as_ref();
    SummaryRow {
        runtime_version: version.to_string(),
        status: if problems.is_empty() {
            RowStatus::Ok
        } else {
            RowStatus::Failed
        },
        error: problems.join("; "),
        connections_ok: Some(load.connections_ok),
        requests: Some(load.requests),
        requests_per_sec: Some(load.requests_per_sec()),
        p50_us: Some(load.percentile_us(50.0)),
        p90_us: Some(load.percentile_us(90.0)),
        p99_us: Some(load.percentile_us(99.0)),
        p999_us: Some(load.percentile_us(99.9)),
        max_us: Some(load.percentile_us(100.0)),
        mean_us: Some(if load.histogram.is_empty() {
            0.0
        } else {
            load.histogram.mean() / 1000.0
        }),
        p50_uncorrected_us: uncorrected.map(|h| percentile_us(h, 50.0)),
        p99_uncorrected_us: uncorrected.map(|h| percentile_us(h, 99.0)),
        sent: Some(load.sent),
        errors: Some(load.errors.total()),
        error_kinds: error_kinds(&load.errors),
        mismatched_bytes: Some(load.mismatched_bytes),
        server_cpu_user_s: Some(servers.cpu_user_s),
        server_cpu_sys_s: Some(servers.cpu_sys_s),
        server_cpu_us_per_request: (load.requests > 0).then(|| cpu * 1e6 / load.requests as f64),
        server_rss_peak_bytes: Some(servers.rss_peak_bytes),
        shutdown_ms: Some(servers.shutdown.as_secs_f64() * 1000.0),
        drain_ms: servers.drain_ms,
        shutdown_overrun: Some(servers.overran),
        in_flight_at_signal: stop_during_load.then_some(load.in_flight_at_signal),
        completed_after_signal: stop_during_load.then_some(load.completed_after_signal),
        cut_after_signal: stop_during_load.then_some(load.cut_after_signal),
        server_accepted: Some(servers.counts.accepted),
        server_closed_clean: Some(servers.counts.closed_clean),
        server_peer_closed: Some(servers.counts.peer_closed),
        server_cut: Some(servers.counts.cut),
        server_io_errors: Some(servers.counts.io_errors),
        server_max_concurrent: Some(servers.counts.max_concurrent),
        reconnects: Some(load.reconnects),
        connect_p50_us: (!load.connect.is_empty()).then(|| percentile_us(&load.connect, 50.0)),
        connect_p99_us: (!load.connect.is_empty()).then(|| percentile_us(&load.connect, 99.0)),
        loadgen_busy: Some(load.busy_fraction),
        loadgen_saturated: Some(load.busy_fraction > SATURATED_BUSY),
        loadgen_cpu_s: Some(load.cpu_s),
        ..base
    }
}

/// A port nobody listens on yet. The probe socket has SO_REUSEPORT and stays bound (not
/// listening) until the servers are up, so no other program takes the port meanwhile.
fn reserve_port() -> std::io::Result<(TcpListener, u16)> {
    let probe =
        runbench_plugin_abi::os::reuseport_listener(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
    let port = probe.local_addr()?.port();
    // A listening probe would take a share of the connections; re-bind without listen.
    drop(probe);
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)).into())?;
    Ok((socket.into(), port))
}

/// The server side of a step: plugin processes or an external target.
enum Server {
    Plugins(Servers),
    External(External),
}

impl Server {
    fn pids(&self) -> Vec<u32> {
        match self {
            Server::Plugins(s) => s.pids(),
            Server::External(e) => e.pid().into_iter().collect(),
        }
    }
    fn crashed(&mut self) -> Option<String> {
        match self {
            Server::Plugins(s) => s.crashed(),
            Server::External(e) => e.crashed(),
        }
    }
    fn signal_stop(&mut self) {
        if let Server::Plugins(s) = self {
            s.signal_stop();
        }
    }
    fn stop(self, grace: Duration) -> ServersExit {
        match self {
            Server::Plugins(s) => s.stop(grace),
            Server::External(e) => e.stop(grace),
        }
    }
}

type Measured = (String, LoadMeasurement, ServersExit);

fn start_server(
    plan: &Plan,
    exe: &Path,
    subject: &Subject,
    point: &Point,
    netns: Option<&crate::netns::TapNamespace>,
    ready_timeout: Duration,
) -> Result<(Server, SocketAddr, String), String> {
    let s = &plan.scenario;
    match subject {
        Subject::External(t) => {
            let ext = External::start(t)?;
            Ok((Server::External(ext), t.address, String::new()))
        }
        Subject::Plugin(plugin) => {
            let (reservation, addr) = match netns {
                Some(ns) => (None, ns.server_addr()),
                None => {
                    let (r, port) =
                        reserve_port().map_err(|e| format!("finding a free port: {e}"))?;
                    (Some(r), SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
                }
            };
            let serve = ServeSpec {
                plugin: plugin.path.clone(),
                addr,
                threads: point.threads,
                cpus: s.server.cpus.clone(),
                max_connections: point.max_connections,
                message_bytes: point.payload_bytes,
                grace_ms: s.shutdown.grace.as_millis() as u64,
                work_ns: s.server.work.as_nanos() as u64,
                sleep_ns: s.server.sleep.as_nanos() as u64,
                netns: netns.map(|ns| ns.name().to_string()),
            };
            let servers = Servers::start(
                exe,
                &serve,
                plan.server_processes,
                &plugin.name,
                ready_timeout,
            )?;
            drop(reservation);
            let version = servers.runtime_version.clone();
            Ok((Server::Plugins(servers), addr, version))
        }
    }
}

fn loadgen_specs(
    plan: &Plan,
    point: &Point,
    target: SocketAddr,
    netns: Option<String>,
) -> Vec<LoadgenSpec> {
    let s = &plan.scenario;
    let run = RUN_SEQ.fetch_add(1, Ordering::Relaxed) + std::process::id() as usize;
    let ramp_phases =
        |f: &dyn Fn(&crate::scenario::Phase) -> Option<f64>| -> Vec<(u64, Option<f64>)> {
            s.load
                .phases
                .iter()
                .map(|p| (p.duration.as_millis() as u64, f(p)))
                .collect()
        };
    let open_connections = Ramp {
        start: point.connections as f64,
        phases: ramp_phases(&|p| p.connections.map(|c| c as f64)),
    };
    let rate = point.rate.map(|r| Ramp {
        start: r as f64,
        phases: ramp_phases(&|p| p.rate.map(|r| r as f64)),
    });
    plan.shards(point)
        .iter()
        .map(|sh| LoadgenSpec {
            target,
            first_connection: sh.first_connection,
            connections: sh.connections,
            run,
            payload_bytes: point.payload_bytes,
            warmup_ms: s.load.warmup.as_millis() as u64,
            duration_ms: s.load.duration.as_millis() as u64,
            threads: s.load.threads,
            cpus: s.load.cpus.clone(),
            connect_timeout_ms: connect_timeout(point.connections).as_millis() as u64,
            model: s.load.model,
            open_connections: open_connections.clone(),
            rate: rate.clone(),
            requests_per_connection: s.load.requests_per_connection,
            interval_ms: s.run.interval.as_millis() as u64,
            signal_at_ms: s.shutdown.at.map(|d| d.as_millis() as u64),
            netns: netns.clone(),
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn measure(
    plan: &Plan,
    exe: &Path,
    subject: &Subject,
    point: &Point,
    options: &RunOptions,
    progress: &mut RunProgress,
    timeline: &mut TimelineRecorder,
    port: &mut Option<u16>,
) -> Result<Measured, StepEnd> {
    let s = &plan.scenario;
    // Declared before the servers, so it is dropped (namespace deleted) after they are gone.
    let netns = match subject {
        Subject::Plugin(p) => tap_namespace(plan, &p.name, &p.path)?,
        Subject::External(_) => None,
    };
    let (mut server, target, version) = start_server(
        plan,
        exe,
        subject,
        point,
        netns.as_ref(),
        options.ready_timeout,
    )
    .map_err(failed_or_interrupted)?;
    *port = Some(target.port());

    progress.phase(Phase::Connecting);
    let netns_name = netns.as_ref().map(|ns| ns.name().to_string());
    let specs = loadgen_specs(plan, point, target, netns_name);
    let timeout = connect_timeout(point.connections) + Duration::from_secs(10);
    let (mut loadgens, connected) = match Loadgens::connect(exe, &specs, subject.name(), timeout) {
        Ok(v) => v,
        Err(e) => {
            server.stop(s.shutdown.grace);
            return Err(failed_or_interrupted(e));
        }
    };
    let expected = point.connections as u64;
    if connected.ok < expected {
        progress::log(&format!(
            "[{}] {} of {} connections failed: {}",
            subject.name(),
            expected - connected.ok,
            expected,
            connected.first_error.as_deref().unwrap_or("unknown reason")
        ));
    }

    let started = loadgens.start();
    let pids = server.pids();
    let hard_end = started + s.load.total() + LOAD_MARGIN;
    let signal_at = s.shutdown.at.map(|d| started + d);
    let mut results: Vec<Option<Result<LoadResult, String>>> = vec![None; loadgens.len()];
    let mut server_died = None;
    let mut interrupted = None;
    while results.iter().any(Option::is_none) {
        let completed = loadgens.poll(&mut results, timeline);
        progress.load(started.elapsed(), completed, s.load.warmup);
        timeline.sample_servers(started, &pids);
        loadgens.reap_dead(&mut results, timeline);
        if server_died.is_none() {
            server_died = server.crashed();
        }
        // Load on a dead server measures nothing; the other runtimes are waiting.
        if server_died.is_some() {
            break;
        }
        interrupted = crate::interrupt::requested();
        if interrupted.is_some() {
            break;
        }
        if signal_at.is_some_and(|at| Instant::now() >= at) {
            server.signal_stop();
        }
        if Instant::now() > hard_end {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let load_ran = started.elapsed();
    loadgens.poll(&mut results, timeline);
    if server_died.is_some() || interrupted.is_some() {
        loadgens.abort();
    } else {
        loadgens.finish();
    }
    progress.phase(Phase::Shutdown);
    let exit = server.stop(s.shutdown.grace);
    if let Some(sig) = interrupted {
        let server_end = match &exit.failure {
            Some(f) => format!("server: {f}"),
            None => format!("server stopped cleanly in {} ms", exit.shutdown.as_millis()),
        };
        return Err(StepEnd::Interrupted(format!(
            "interrupted ({}) {:.1}s into the load; {server_end}",
            crate::interrupt::name(sig),
            load_ran.as_secs_f64()
        )));
    }
    if let Some(e) = server_died {
        return Err(StepEnd::Failed(e));
    }
    let mut ok = Vec::new();
    for r in results {
        match r {
            Some(Ok(r)) => ok.push(r),
            Some(Err(e)) => return Err(StepEnd::Failed(e)),
            None => {
                return Err(StepEnd::Failed(format!(
                    "load generator did not report within the run's hard time limit \
                     (load {}s + {}s)",
                    s.load.total().as_secs_f64(),
                    LOAD_MARGIN.as_secs()
                )))
            }
        }
    }
    let load = LoadMeasurement::merge(&ok, s.load.duration).map_err(|e| e.to_string())?;
    Ok((version, load, exit))
}

/// For a plugin with its own TCP/IP stack ([`runbench_plugin_abi::NEEDS_TAP`]): a network
/// namespace with a TAP device for this run alone. `None` for kernel-socket plugins.
fn tap_namespace(
    plan: &Plan,
    runtime: &str,
    plugin: &Path,
) -> Result<Option<crate::netns::TapNamespace>, String> {
    // RTLD_LOCAL, like the serve child's load (see plugin::load), so its symbols stay private.
    let loaded = crate::plugin::load(plugin).map_err(|e| e.to_string())?;
    if !loaded.needs_tap() {
        return Ok(None);
    }
    if plan.server_processes != 1 {
        return Err(format!(
            "{runtime} drives one TAP device, which one server process holds; \
             run it with --server-processes 1 (this run asked for {})",
            plan.server_processes
        ));
    }
    let ns = crate::netns::TapNamespace::create().map_err(|e| {
        format!("{runtime} needs a TAP device in a network namespace of its own: {e}")
    })?;
    progress::log(&format!(
        "[{runtime}] network namespace {}: {} on {}, load from {}",
        ns.name(),
        ns.server_addr(),
        runbench_plugin_abi::TAP_DEVICE,
        crate::netns::KERNEL_ADDR
    ));
    Ok(Some(ns))
}

fn connect_timeout(connections: usize) -> Duration {
    Duration::from_secs(10) + Duration::from_millis(connections as u64 / 2)
}
