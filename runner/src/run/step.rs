//! One step's measurement: start the server, connect the load generators, run the load while
//! sampling the timeline, stop the server, merge what the load generators measured.

use super::server::{start_server, tap_namespace};
use super::{failed_or_interrupted, RunOptions, StepEnd, LOAD_MARGIN, RUN_SEQ};
use crate::measure::LoadMeasurement;
use crate::plan::{Plan, Point, Subject};
use crate::progress::{self, Phase, RunProgress};
use crate::protocol::{LoadResult, LoadgenSpec, Ramp};
use crate::supervise::loadgen::Loadgens;
use crate::supervise::server::ServersExit;
use crate::timeline::TimelineRecorder;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

type Measured = (String, LoadMeasurement, ServersExit);

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
pub(super) fn measure(
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
        // After a stop signal during the load, poll finely: the servers' exit time is measured
        // by this loop.
        let tick = if signal_at.is_some_and(|at| Instant::now() >= at) {
            2
        } else {
            20
        };
        std::thread::sleep(Duration::from_millis(tick));
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

fn connect_timeout(connections: usize) -> Duration {
    Duration::from_secs(10) + Duration::from_millis(connections as u64 / 2)
}
