//! One step's measurement: start the server, connect the load generators, run the load while
//! sampling the timeline, stop the server, merge what the load generators measured.

use super::server::{start_server, tap_namespace, Server};
use super::{failed_or_interrupted, RunOptions, StepEnd, LOAD_MARGIN, RUN_SEQ};
use crate::console::progress::{Phase, RunProgress};
use crate::measure::timeline::TimelineRecorder;
use crate::measure::{LoadMeasurement, WindowReadings};
use crate::os::procfs::ProcSample;
use crate::plan::{Plan, Point, Subject};
use crate::protocol::{LoadResult, LoadgenSpec};
use crate::supervise::loadgen::Loadgens;
use crate::supervise::server::{ProcSampler, ServersExit};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

fn loadgen_specs(
    plan: &Plan,
    point: &Point,
    target: SocketAddr,
    netns: Option<String>,
) -> Vec<LoadgenSpec> {
    let s = &plan.scenario;
    let run = RUN_SEQ.fetch_add(1, Ordering::Relaxed) + std::process::id() as usize;
    let (open_connections, rate) = plan.ramps(point);
    plan.shards(point)
        .iter()
        .map(|sh| LoadgenSpec {
            target,
            first_connection: sh.first_connection,
            connections: sh.connections,
            run,
            workload: plan.workload(point),
            warmup_ms: s.load.warmup.as_millis() as u64,
            duration_ms: s.load.duration.as_millis() as u64,
            threads: s.load.threads,
            cpus: s.load.cpus.clone(),
            connect_timeout_ms: connect_timeout(point.connections).as_millis() as u64,
            model: s.load.model,
            open_connections: open_connections.clone(),
            rate: rate.clone(),
            requests_per_connection: s.load.requests_per_connection,
            skew: s.load.skew,
            send_window_ns: s.load.send_window.as_nanos() as u64,
            interval_ms: s.run.interval.as_millis() as u64,
            signal_at_ms: s.shutdown.at.map(|d| d.as_millis() as u64),
            netns: netns.clone(),
        })
        .collect()
}

/// What one step works with.
pub(super) struct StepInputs<'a> {
    pub plan: &'a Plan,
    pub exe: &'a Path,
    pub subject: &'a Subject,
    pub point: &'a Point,
    pub options: &'a RunOptions,
}

/// What a step keeps whether or not it measures: progress, the timeline, the server's port
/// (for the cooldown) and when the load started (for the interval log).
pub(super) struct StepState {
    pub progress: RunProgress,
    pub timeline: TimelineRecorder,
    pub port: Option<u16>,
    pub load_started: Option<SystemTime>,
}

/// Everything a step measured.
pub(super) struct Measured {
    pub version: String,
    pub load: LoadMeasurement,
    pub servers: ServersExit,
    pub window: WindowReadings,
    /// Across machines: load processes that failed (their agent was lost, or refused): the row
    /// fails with this, and what the others measured is kept in it.
    pub partial: Option<String>,
    /// `[load] idle_connections`: how many were held, and the servers' RSS per one.
    pub idle: Option<(u64, f64)>,
}

/// /proc samples of the servers at the window's two edges, taken by the runner.
struct ProcEdges {
    at: [Instant; 2],
    taken: [Option<Option<ProcSample>>; 2],
    /// Each server thread's CPU at the start and a little before the end: a thread that ends
    /// between the two readings takes its CPU time with it, and a thread-per-connection server's
    /// threads end as soon as the load generators close their connections at the window's end.
    threads_at: [Instant; 2],
    threads: [Option<Option<crate::measure::ThreadCpu>>; 2],
}

/// How long before the window's end the threads are read: a tenth of the window, at most this.
const THREADS_EARLY: Duration = Duration::from_millis(50);

impl ProcEdges {
    fn new(start: Instant, end: Instant) -> Self {
        let early = ((end - start) / 10).min(THREADS_EARLY);
        ProcEdges {
            at: [start, end],
            taken: [None, None],
            threads_at: [start, end - early],
            threads: [None, None],
        }
    }

    fn sample(&mut self, sampler: &ProcSampler) {
        for k in 0..2 {
            if self.taken[k].is_none() && Instant::now() >= self.at[k] {
                self.taken[k] = Some(sampler.all());
            }
            if self.threads[k].is_none() && Instant::now() >= self.threads_at[k] {
                self.threads[k] = Some(sampler.threads());
            }
        }
    }

    /// How evenly the server's threads shared the window's CPU.
    fn spread(&self) -> Option<crate::measure::ThreadSpread> {
        let (Some(Some(a)), Some(Some(b))) = (&self.threads[0], &self.threads[1]) else {
            return None;
        };
        crate::measure::ThreadSpread::between(a, b)
    }

    /// The next edge not yet sampled.
    fn next(&self) -> Option<Instant> {
        let proc = (0..2)
            .find(|&k| self.taken[k].is_none())
            .map(|k| self.at[k]);
        let threads = (0..2)
            .find(|&k| self.threads[k].is_none())
            .map(|k| self.threads_at[k]);
        proc.into_iter().chain(threads).min()
    }

    fn readings(&self) -> Option<(ProcSample, ProcSample)> {
        Some((self.taken[0]??, self.taken[1]??))
    }
}

/// The step, in its phases: servers up and the load connected, the load driven to its end,
/// then the servers stopped and what everyone measured collected.
pub(super) fn measure(inp: &StepInputs, st: &mut StepState) -> Result<Measured, StepEnd> {
    let (plan, subject) = (inp.plan, inp.subject);
    // Declared before the servers, so it is dropped (namespace deleted) after they are gone.
    let netns = match subject {
        Subject::Plugin(p) => tap_namespace(plan, &p.name, &p.path)?,
        Subject::External(_) => None,
    };
    let (mut server, version, mut loadgens, idle) = set_up(inp, st, netns.as_ref())?;
    let driven = drive(inp, st, &mut server, &mut loadgens);
    // Held through the load, closed with it, before the servers are stopped (as the load
    // generators close theirs): a server's drain measures the connections that carried load.
    let idle = idle.map(|i| (i.count(), i.rss_per_connection()));
    let mut measured = collect(inp, st, server, loadgens, driven, version)?;
    measured.idle = idle;
    Ok(measured)
}

/// Starts the servers, connects the load generators and waits until the servers accepted them.
fn set_up(
    inp: &StepInputs,
    st: &mut StepState,
    netns: Option<&crate::os::netns::TapNamespace>,
) -> Result<(Server, String, Loadgens, Option<Idle>), StepEnd> {
    let (plan, point, subject) = (inp.plan, inp.point, inp.subject);
    let (mut server, target, version) = start_server(
        plan,
        inp.exe,
        subject,
        point,
        netns,
        inp.options.ready_timeout,
    )
    .map_err(failed_or_interrupted)?;
    st.port = Some(target.port());
    st.progress.phase(Phase::Connecting);
    let idle = match hold_idle(plan, &mut server, target, subject.name()) {
        Ok(idle) => idle,
        Err(e) => {
            server.stop(plan.scenario.shutdown.grace);
            return Err(StepEnd::Failed(e));
        }
    };
    let netns_name = netns.map(|ns| ns.name().to_string());
    let specs = loadgen_specs(plan, point, target, netns_name);
    let timeout = connect_timeout(point.connections) + Duration::from_secs(10);
    let (loadgens, connected) =
        match Loadgens::connect(inp.exe, &specs, subject.name(), timeout, &plan.placement) {
            Ok(v) => v,
            Err(e) => {
                server.stop(plan.scenario.shutdown.grace);
                return Err(failed_or_interrupted(e));
            }
        };
    let expected = point.connections as u64;
    if connected.ok < expected {
        crate::console::log(&format!(
            "[{}] {} of {} connections failed: {}",
            subject.name(),
            expected - connected.ok,
            expected,
            connected.first_error.as_deref().unwrap_or("unknown reason")
        ));
    }
    let held = idle.as_ref().map_or(0, |i| i.streams.len() as u64);
    await_accepted(&mut server, connected.ok + held, timeout, subject.name());
    Ok((server, version, loadgens, idle))
}

/// `[load] idle_connections`, held open by the runner without traffic through the step, and
/// the servers' RSS before they connected and once the servers had accepted them all.
pub(super) struct Idle {
    streams: Vec<std::net::TcpStream>,
    pub rss_before: u64,
    pub rss_after: u64,
}

impl Idle {
    /// The servers' RSS per idle connection: (RSS with them - RSS before) / their count.
    pub fn rss_per_connection(&self) -> f64 {
        (self.rss_after as f64 - self.rss_before as f64) / self.streams.len().max(1) as f64
    }

    pub fn count(&self) -> u64 {
        self.streams.len() as u64
    }
}

/// Opens the idle connections before the load (the servers have accepted nothing else yet),
/// waits until the servers accepted them all, and reads the RSS on either side.
fn hold_idle(
    plan: &Plan,
    server: &mut Server,
    target: SocketAddr,
    runtime: &str,
) -> Result<Option<Idle>, String> {
    let n = plan.scenario.load.idle_connections;
    if n == 0 {
        return Ok(None);
    }
    if !plan.placement.is_local() {
        return Err(
            "idle_connections are held by runbench itself, which needs the servers on \
                    this host (not in a run across machines)"
                .into(),
        );
    }
    let sampler = server.sampler();
    let rss = || sampler.all().map(|s| s.rss_bytes);
    let rss_before = rss().ok_or("the server exited before the idle connections")?;
    let mut streams = Vec::with_capacity(n);
    for k in 0..n {
        match std::net::TcpStream::connect_timeout(&target, Duration::from_secs(10)) {
            Ok(s) => streams.push(s),
            Err(e) => {
                return Err(format!(
                    "idle connection {} of {n} to {target} failed: {e}",
                    k + 1
                ))
            }
        }
    }
    let limit = connect_timeout(n) + Duration::from_secs(10);
    await_accepted(server, n as u64, limit, runtime);
    // What the accept did to the memory settles once each connection's first read is posted;
    // one reading after the count is complete sees it.
    let rss_after = rss().ok_or("the server exited while the idle connections were accepted")?;
    Ok(Some(Idle {
        streams,
        rss_before,
        rss_after,
    }))
}

/// How the load ended.
struct Driven {
    results: Vec<Option<Result<LoadResult, String>>>,
    server_died: Option<String>,
    interrupted: Option<i32>,
    ran: Duration,
    edges: ProcEdges,
}

/// Starts the load at one instant and follows it to its end: results and intervals as they
/// come, server samples at their instants, the stop signal when the scenario says, and an end
/// at once when the server dies or the run is interrupted.
fn drive(
    inp: &StepInputs,
    st: &mut StepState,
    server: &mut Server,
    loadgens: &mut Loadgens,
) -> Driven {
    let s = &inp.plan.scenario;
    let started = loadgens.start();
    // `started` lies a moment ahead (the start command's lead time).
    st.load_started = Some(SystemTime::now() + started.saturating_duration_since(Instant::now()));
    let (window_start, window_end) = (started + s.load.warmup, started + s.load.total());
    server.watch_window(
        crate::os::sys::ns_at(window_start),
        crate::os::sys::ns_at(window_end),
    );
    let mut d = Driven {
        results: vec![None; loadgens.len()],
        server_died: None,
        interrupted: None,
        ran: Duration::ZERO,
        edges: ProcEdges::new(window_start, window_end),
    };
    let sampler = server.sampler();
    let hard_end = started + s.load.total() + LOAD_MARGIN;
    let signal_at = s.shutdown.at.map(|d| started + d);
    while d.results.iter().any(Option::is_none) {
        loadgens.poll(&mut d.results, &mut st.timeline);
        st.progress
            .load(started.elapsed(), s.load.warmup, || loadgens.rate());
        st.timeline.sample_servers(started, || sampler.present());
        d.edges.sample(&sampler);
        loadgens.reap_dead(&mut d.results, &mut st.timeline);
        d.server_died = d.server_died.take().or_else(|| server.crashed());
        d.interrupted = crate::os::interrupt::requested();
        // Load on a dead server measures nothing; the other runtimes are waiting.
        if d.server_died.is_some() || d.interrupted.is_some() || Instant::now() > hard_end {
            break;
        }
        let signalled = signal_at.is_some_and(|at| Instant::now() >= at);
        if signalled {
            server.signal_stop();
        }
        // After a stop signal during the load, poll finely: the servers' exit time is measured
        // by this loop. Server samples are taken at their instants, not at the next tick.
        let tick = Duration::from_millis(if signalled { 2 } else { 20 });
        let mut wake = (Instant::now() + tick).min(st.timeline.next_sample_at(started));
        if let Some(at) = d.edges.next() {
            wake = wake.min(at);
        }
        std::thread::sleep(wake.saturating_duration_since(Instant::now()));
    }
    d.ran = started.elapsed();
    loadgens.poll(&mut d.results, &mut st.timeline);
    d
}

/// Stops the servers and turns what the load generators and the servers reported into the
/// step's measurement, or into why there is none.
fn collect(
    inp: &StepInputs,
    st: &mut StepState,
    server: Server,
    loadgens: Loadgens,
    d: Driven,
    version: String,
) -> Result<Measured, StepEnd> {
    let s = &inp.plan.scenario;
    if d.server_died.is_some() || d.interrupted.is_some() {
        loadgens.abort();
    } else {
        loadgens.finish();
    }
    st.progress.phase(Phase::Shutdown);
    let exit = server.stop(s.shutdown.grace);
    if let Some(sig) = d.interrupted {
        let server_end = match &exit.failure {
            Some(f) => format!("server: {f}"),
            None => format!("server stopped cleanly in {} ms", exit.shutdown.as_millis()),
        };
        return Err(StepEnd::Interrupted(format!(
            "interrupted ({}) {:.1}s into the load; {server_end}",
            crate::os::interrupt::name(sig),
            d.ran.as_secs_f64()
        )));
    }
    if let Some(e) = d.server_died {
        return Err(StepEnd::Failed(e));
    }
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    let placement = &inp.plan.placement;
    placement.log_shares(&d.results);
    for r in d.results {
        match r {
            Some(Ok(r)) => ok.push(r),
            // Across machines one lost agent must not throw away what the others measured.
            Some(Err(e)) if !placement.is_local() => failed.push(e),
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
    failed.dedup();
    if ok.is_empty() && !failed.is_empty() {
        return Err(StepEnd::Failed(failed.join("; ")));
    }
    let partial = (!failed.is_empty()).then(|| {
        format!(
            "{} of {} load processes failed, the row holds the others' measurements: {}",
            failed.len(),
            failed.len() + ok.len(),
            failed.join("; ")
        )
    });
    let load = LoadMeasurement::merge(&ok, s.load.duration).map_err(|e| e.to_string())?;
    if !placement.is_local() {
        crate::console::log(&format!(
            "merged: requests={} histogram_count={}",
            load.counters.requests,
            load.histograms.latency.len()
        ));
    }
    let window = WindowReadings {
        proc: d.edges.readings(),
        own: exit.window,
        spread: d.edges.spread(),
    };
    Ok(Measured {
        version,
        load,
        servers: exit,
        window,
        partial,
        idle: None,
    })
}

/// Before the load starts, until the servers have accepted every connection the client holds:
/// the kernel completes a connect into the accept queue, and a runtime whose accept loop falls
/// behind (once its connections are busy, one accept per turn of a long run queue) would
/// otherwise be measured with part of its connections never served. Gives up when the count
/// stops growing for [`ACCEPT_STALL`] or at `limit` (the audit then reports what the server had
/// accepted when the window opened).
fn await_accepted(server: &mut Server, want: u64, limit: Duration, runtime: &str) {
    let deadline = Instant::now() + limit;
    let mut last = (0, Instant::now());
    loop {
        let Some(accepted) = server.accepted_now() else {
            return;
        };
        if accepted >= want {
            return;
        }
        if accepted > last.0 {
            last = (accepted, Instant::now());
        }
        let stalled = last.1.elapsed() >= ACCEPT_STALL;
        if stalled || Instant::now() >= deadline || crate::os::interrupt::requested().is_some() {
            crate::console::log(&format!(
                "[{runtime}] the server accepted {accepted} of the {want} connections the client \
                 established{}; starting the load anyway",
                if stalled {
                    format!(" and no more for {}s", ACCEPT_STALL.as_secs())
                } else {
                    String::new()
                }
            ));
            return;
        }
        if server.crashed().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// How long the servers' accepted count may stand still before the load starts regardless.
const ACCEPT_STALL: Duration = Duration::from_secs(2);

fn connect_timeout(connections: usize) -> Duration {
    Duration::from_secs(10) + Duration::from_millis(connections as u64 / 2)
}
