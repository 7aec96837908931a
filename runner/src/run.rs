//! Runs a [`Plan`]: for each runtime, servers up -> load generators connected -> load ->
//! servers stopped -> one summary row, written before the next runtime starts.

use crate::measure::{LoadMeasurement, SPECTRUM};
use crate::plan::Plan;
use crate::progress::{self, Phase, RunProgress};
use crate::protocol::{LoadResult, LoadgenSpec, ServeSpec};
use crate::results::{self, Meta, PercentileRow, RowStatus, RunDir, SummaryRow};
use crate::supervise::loadgen::Loadgens;
use crate::supervise::server::{Servers, ServersExit};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A load generator above this busy fraction may have limited the result.
pub const SATURATED_BUSY: f64 = 0.9;
/// Slack beyond the load's planned end before the run is declared hung.
const LOAD_MARGIN: Duration = Duration::from_secs(15);

/// Numbers source-address blocks so that successive runs in one process never share one.
static RUN_SEQ: AtomicUsize = AtomicUsize::new(0);

/// Runs every runtime of the plan; returns the rows (also written to disk as they come).
pub fn run_plan(plan: &Plan, out_root: &Path) -> anyhow::Result<Vec<SummaryRow>> {
    let started = chrono::Utc::now();
    let dir = RunDir::create(out_root, &plan.scenario.name, started)?;
    let exe = std::env::current_exe()?;
    let mut meta = Meta {
        runbench_version: env!("CARGO_PKG_VERSION"),
        scenario: plan.scenario.clone(),
        scenario_file: plan.scenario.source.display().to_string(),
        server_processes: plan.server_processes,
        loadgen_processes: plan.shards.len(),
        started_at: started.to_rfc3339(),
        finished_at: None,
        host: results::meta::HostInfo::read(plan.nofile_limit),
        rustc: results::meta::RUSTC_VERSION,
        git_commit: results::meta::GIT_COMMIT,
        plugins: plan
            .plugins
            .iter()
            .map(|p| results::meta::PluginInfo {
                runtime: p.name.clone(),
                path: p.path.display().to_string(),
            })
            .collect(),
    };
    dir.write("meta.json", &serde_json::to_vec_pretty(&meta)?)?;
    progress::log(&format!(
        "scenario {}: {} runtime(s), {} connections x {} B, target 127.0.0.1, results in {}",
        plan.scenario.name,
        plan.plugins.len(),
        plan.scenario.load.connections,
        plan.scenario.load.payload_bytes,
        dir.path.display()
    ));

    let mut rows = Vec::new();
    let mut percentiles = Vec::new();
    for plugin in &plan.plugins {
        let (row, spectrum) = run_one(plan, &exe, &plugin.name, &plugin.path, 0);
        if let Some(h) = spectrum {
            percentiles.extend(h);
        }
        rows.push(row);
        dir.write("summary.csv", &results::summary_csv(&rows)?)?;
        dir.write("percentiles.csv", &results::percentiles_csv(&percentiles)?)?;
    }
    meta.finished_at = Some(chrono::Utc::now().to_rfc3339());
    dir.write("meta.json", &serde_json::to_vec_pretty(&meta)?)?;
    progress::log(&format!("wrote {}", dir.path.display()));
    Ok(rows)
}

fn base_row(plan: &Plan, runtime: &str, trial: u32) -> SummaryRow {
    let s = &plan.scenario;
    SummaryRow {
        scenario: s.name.clone(),
        runtime: runtime.to_string(),
        runtime_version: String::new(),
        trial,
        status: RowStatus::Ok,
        error: String::new(),
        connections: s.load.connections,
        connections_ok: None,
        payload_bytes: s.load.payload_bytes,
        server_threads: s.server.threads,
        server_processes: plan.server_processes,
        duration_s: s.load.duration.as_secs_f64(),
        requests: None,
        requests_per_sec: None,
        p50_us: None,
        p90_us: None,
        p99_us: None,
        p999_us: None,
        max_us: None,
        mean_us: None,
        errors: None,
        mismatched_bytes: None,
        server_cpu_user_s: None,
        server_cpu_sys_s: None,
        server_cpu_us_per_request: None,
        server_rss_peak_bytes: None,
        shutdown_ms: None,
        shutdown_overrun: None,
        server_accepted: None,
        server_cut: None,
        loadgen_busy: None,
        loadgen_saturated: None,
        loadgen_cpu_s: None,
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

/// One runtime, one trial. Never fails: a failure becomes the row's status and error.
fn run_one(
    plan: &Plan,
    exe: &Path,
    runtime: &str,
    plugin: &Path,
    trial: u32,
) -> (SummaryRow, Option<Vec<PercentileRow>>) {
    let s = &plan.scenario;
    let base = base_row(plan, runtime, trial);
    let load_total = s.load.warmup + s.load.duration;
    let mut progress = RunProgress::start(runtime, load_total);
    let result = measure(plan, exe, runtime, plugin, &mut progress);
    progress.finish();
    match result {
        Err(e) => {
            progress::log(&format!("[{runtime}] FAILED: {e}"));
            (SummaryRow::failed(&base, e), None)
        }
        Ok((version, load, servers)) => {
            let row = to_row(base, &version, &load, &servers);
            if row.status == RowStatus::Failed {
                progress::log(&format!("[{runtime}] FAILED: {}", row.error));
            }
            let spectrum = SPECTRUM
                .iter()
                .map(|&p| PercentileRow {
                    runtime: runtime.to_string(),
                    trial,
                    percentile: p,
                    latency_us: load.percentile_us(p),
                })
                .collect();
            (row, Some(spectrum))
        }
    }
}

fn to_row(
    base: SummaryRow,
    version: &str,
    load: &LoadMeasurement,
    servers: &ServersExit,
) -> SummaryRow {
    let cpu = servers.cpu_user_s + servers.cpu_sys_s;
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
    if load.requests == 0 {
        problems.push("no request completed in the measured window".into());
    }
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
        errors: Some(load.errors.total()),
        mismatched_bytes: Some(load.mismatched_bytes),
        server_cpu_user_s: Some(servers.cpu_user_s),
        server_cpu_sys_s: Some(servers.cpu_sys_s),
        server_cpu_us_per_request: (load.requests > 0).then(|| cpu * 1e6 / load.requests as f64),
        server_rss_peak_bytes: Some(servers.rss_peak_bytes),
        shutdown_ms: Some(servers.shutdown.as_secs_f64() * 1000.0),
        shutdown_overrun: Some(servers.overran),
        server_accepted: Some(servers.counts.accepted),
        server_cut: Some(servers.counts.cut),
        loadgen_busy: Some(load.busy_fraction),
        loadgen_saturated: Some(load.busy_fraction > SATURATED_BUSY),
        loadgen_cpu_s: Some(load.cpu_s),
        ..base
    }
}

type Measured = (String, LoadMeasurement, ServersExit);

fn measure(
    plan: &Plan,
    exe: &Path,
    runtime: &str,
    plugin: &Path,
    progress: &mut RunProgress,
) -> Result<Measured, String> {
    let s = &plan.scenario;
    // Declared before the servers, so it is dropped (namespace deleted) after they are gone.
    let netns = tap_namespace(plan, runtime, plugin)?;
    let (reservation, target) = match &netns {
        Some(ns) => (None, ns.server_addr()),
        None => {
            let (r, port) = reserve_port().map_err(|e| format!("finding a free port: {e}"))?;
            (Some(r), SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        }
    };
    let netns_name = netns.as_ref().map(|ns| ns.name().to_string());
    let serve = ServeSpec {
        plugin: plugin.to_path_buf(),
        addr: target,
        threads: s.server.threads,
        cpus: s.server.cpus.clone(),
        max_connections: s.server.max_connections,
        message_bytes: s.load.payload_bytes,
        grace_ms: s.shutdown.grace.as_millis() as u64,
        work_ns: 0,
        sleep_ns: 0,
        netns: netns_name.clone(),
    };
    let mut servers = Servers::start(exe, &serve, plan.server_processes, runtime)?;
    drop(reservation);
    let version = servers.runtime_version.clone();

    progress.phase(Phase::Connecting);
    let run = RUN_SEQ.fetch_add(1, Ordering::Relaxed) + std::process::id() as usize;
    let specs: Vec<LoadgenSpec> = plan
        .shards
        .iter()
        .map(|sh| LoadgenSpec {
            target,
            first_connection: sh.first_connection,
            connections: sh.connections,
            run,
            payload_bytes: s.load.payload_bytes,
            warmup_ms: s.load.warmup.as_millis() as u64,
            duration_ms: s.load.duration.as_millis() as u64,
            threads: s.load.threads,
            cpus: s.load.cpus.clone(),
            connect_timeout_ms: connect_timeout(s.load.connections).as_millis() as u64,
            netns: netns_name.clone(),
        })
        .collect();
    let timeout = connect_timeout(s.load.connections) + Duration::from_secs(10);
    let (mut loadgens, connected) = match Loadgens::connect(exe, &specs, runtime, timeout) {
        Ok(v) => v,
        Err(e) => {
            servers.stop(s.shutdown.grace);
            return Err(e);
        }
    };
    if connected.ok < s.load.connections as u64 {
        progress::log(&format!(
            "[{runtime}] {} of {} connections failed: {}",
            s.load.connections as u64 - connected.ok,
            s.load.connections,
            connected.first_error.as_deref().unwrap_or("unknown reason")
        ));
    }

    loadgens.start();
    let started = Instant::now();
    let hard_end = started + s.load.warmup + s.load.duration + LOAD_MARGIN;
    let mut results: Vec<Option<Result<LoadResult, String>>> = vec![None; loadgens.len()];
    let mut server_died = None;
    while results.iter().any(Option::is_none) {
        let completed = loadgens.poll(&mut results);
        progress.load(started.elapsed(), completed, s.load.warmup);
        loadgens.reap_dead(&mut results);
        if server_died.is_none() {
            server_died = servers.crashed();
        }
        if Instant::now() > hard_end {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    loadgens.finish();
    progress.phase(Phase::Shutdown);
    let exit = servers.stop(s.shutdown.grace);
    if let Some(e) = server_died {
        return Err(e);
    }
    let mut ok = Vec::new();
    for r in results {
        match r {
            Some(Ok(r)) => ok.push(r),
            Some(Err(e)) => return Err(e),
            None => {
                return Err("load generator did not report within the run's hard time limit".into())
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
