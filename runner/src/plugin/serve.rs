//! `runbench serve`: the child process that hosts one plugin. A crash, leak or hang stays in
//! here, and the runner reads this process's CPU time and peak RSS when it reaps it.

use crate::plugin;
use crate::protocol::{
    ProtocolOut, ServeSpec, ServerEvent, ServerSnapshot, WindowEdge, COUNTS, STOP, WINDOW,
};
use runbench_plugin_abi::{HostApi, RStr, ServeConfig, ServeReport, Stats, Status};
use std::ffi::c_void;
use std::io::BufRead;
use std::mem::size_of;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Condvar, Mutex};

/// Exit codes of the serve child, read by the supervisor.
pub mod exit {
    pub const OK: i32 = 0;
    pub const LOAD_FAILED: i32 = 3;
    pub const SERVE_FAILED: i32 = 4;
}

struct HostCtx {
    out: ProtocolOut,
    runtime: String,
    runtime_version: String,
    stop: Mutex<bool>,
    stop_cv: Condvar,
    stopped_at: Mutex<Option<std::time::Instant>>,
    failure: Mutex<Option<String>>,
    /// The plugin's live counters, once it published them.
    live: AtomicPtr<Stats>,
}

fn ctx<'a>(p: *mut c_void) -> &'a HostCtx {
    // SAFETY: `p` is the `HostCtx` that `run` keeps alive for the whole `serve` call.
    unsafe { &*(p as *const HostCtx) }
}

extern "C" fn host_log(p: *mut c_void, level: u32, msg: RStr) {
    // SAFETY: the plugin passes a valid string for the call.
    let message = unsafe { msg.as_str() }.to_string();
    ctx(p).out.send(&ServerEvent::Log { level, message });
}

extern "C" fn host_ready(p: *mut c_void) {
    let c = ctx(p);
    c.out.send(&ServerEvent::Ready {
        runtime: c.runtime.clone(),
        runtime_version: c.runtime_version.clone(),
    });
}

extern "C" fn host_wait_stop(p: *mut c_void) {
    let c = ctx(p);
    let mut stopped = c.stop.lock().unwrap_or_else(|e| e.into_inner());
    while !*stopped {
        stopped = c.stop_cv.wait(stopped).unwrap_or_else(|e| e.into_inner());
    }
}

extern "C" fn host_fail(p: *mut c_void, msg: RStr) {
    // SAFETY: as in `host_log`.
    let text = unsafe { msg.as_str() }.to_string();
    *ctx(p).failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(text);
}

extern "C" fn host_publish_counters(p: *mut c_void, counters: *const Stats) {
    // SAFETY: the plugin promises the block outlives the process; a block from an older plugin
    // with fewer counters is not read (see `snapshot`).
    let ok = !counters.is_null() && unsafe { (*counters).size } as usize >= size_of::<Stats>();
    if ok {
        ctx(p).live.store(counters.cast_mut(), Ordering::Release);
    }
}

/// This process's reading now: the plugin's counters (if published) and getrusage's CPU time.
fn snapshot(c: &HostCtx) -> ServerSnapshot {
    let live = c.live.load(Ordering::Acquire);
    let (cpu_user_s, cpu_sys_s) = crate::os::sys::own_cpu_time();
    ServerSnapshot {
        at_ns: crate::os::sys::monotonic_ns(),
        // SAFETY: published by the plugin as valid for the life of the process.
        counts: (!live.is_null()).then(|| unsafe { &*live }.report()),
        cpu_user_s,
        cpu_sys_s,
    }
}

/// `window <start> <end>`: a thread that reports a snapshot at each of the two instants.
fn watch_window(c: &'static HostCtx, line: &str) {
    let mut ns = line.split_whitespace().skip(1).map(str::parse::<u64>);
    let (Some(Ok(start)), Some(Ok(end))) = (ns.next(), ns.next()) else {
        return;
    };
    let _ = std::thread::Builder::new()
        .name("runbench-window".into())
        .spawn(move || {
            for (edge, at) in [(WindowEdge::Start, start), (WindowEdge::End, end)] {
                std::thread::sleep(
                    crate::os::sys::instant_at(at)
                        .saturating_duration_since(std::time::Instant::now()),
                );
                c.out.send(&ServerEvent::Snapshot {
                    edge,
                    snapshot: snapshot(c),
                });
            }
        });
}

/// Runs the child to completion; returns the process exit code.
pub fn run(spec: &ServeSpec) -> i32 {
    let out = match ProtocolOut::take_stdout() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("runbench serve: cannot set up the protocol stream: {e}");
            return exit::LOAD_FAILED;
        }
    };
    let plugin = match prepare(spec) {
        Ok(p) => p,
        Err((stage, message)) => {
            fail(&out, stage, message);
            return exit::LOAD_FAILED;
        }
    };
    // Leaked: the stdin thread and late plugin threads may still reach it while the process exits.
    let host: &'static HostCtx = Box::leak(Box::new(HostCtx {
        out,
        runtime: plugin.name().to_string(),
        runtime_version: plugin.runtime_version().to_string(),
        stop: Mutex::new(false),
        stop_cv: Condvar::new(),
        stopped_at: Mutex::new(None),
        failure: Mutex::new(None),
        live: AtomicPtr::new(std::ptr::null_mut()),
    }));
    std::thread::Builder::new()
        .name("runbench-stdin".into())
        .spawn(move || follow_commands(host))
        .expect("spawning the stdin thread");
    let (status, report) = serve(spec, &plugin, host);
    report_end(host, status, &report)
}

fn fail(out: &ProtocolOut, stage: &str, message: String) {
    out.send(&ServerEvent::Failed {
        stage: stage.into(),
        message,
    });
}

/// The process set up for the plugin, and the plugin loaded: (stage, why) when that fails.
fn prepare(spec: &ServeSpec) -> Result<plugin::LoadedPlugin, (&'static str, String)> {
    // First, while this process has one thread: threads started later inherit the namespace.
    if let Some(ns) = &spec.netns {
        crate::os::netns::enter(ns).map_err(|e| ("setup", e.to_string()))?;
    }
    crate::os::sys::raise_nofile()
        .map_err(|e| ("setup", format!("raising the open-files limit: {e}")))?;
    crate::os::sys::pin_process(&spec.cpus)
        .map_err(|e| ("setup", format!("pinning to CPUs {:?}: {e}", spec.cpus)))?;
    plugin::load(&spec.plugin).map_err(|e| ("load", e.to_string()))
}

/// The runner's commands on stdin, until `stop` (or EOF: a runner that is gone).
fn follow_commands(c: &'static HostCtx) {
    for line in std::io::stdin().lock().lines() {
        match line {
            Ok(l) if l.trim() == STOP => break,
            Ok(l) if l.starts_with(WINDOW) => watch_window(c, &l),
            Ok(l) if l.trim() == COUNTS => c.out.send(&ServerEvent::Counts {
                snapshot: snapshot(c),
            }),
            Ok(_) => continue,
            Err(_) => break,
        }
    }
    *c.stopped_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(std::time::Instant::now());
    c.out.send(&ServerEvent::Stopping);
    *c.stop.lock().unwrap_or_else(|e| e.into_inner()) = true;
    c.stop_cv.notify_all();
}

/// Calls the plugin's `serve` (it returns once the server has stopped).
fn serve(
    spec: &ServeSpec,
    plugin: &plugin::LoadedPlugin,
    host: &'static HostCtx,
) -> (Status, ServeReport) {
    let addr = spec.addr.to_string();
    let cpus: Vec<u32> = spec.cpus.iter().map(|&c| c as u32).collect();
    let mut config = ServeConfig {
        size: std::mem::size_of::<ServeConfig>() as u32,
        threads: spec.threads as u32,
        addr: RStr::new(&addr),
        cpus: cpus.as_ptr(),
        cpus_len: cpus.len(),
        max_connections: spec.max_connections as u64,
        grace_ms: spec.grace_ms,
        ..ServeConfig::new()
    };
    spec.workload.write_into(&mut config);
    let api = HostApi {
        size: std::mem::size_of::<HostApi>() as u32,
        ctx: host as *const HostCtx as *mut c_void,
        log: host_log,
        ready: host_ready,
        wait_stop: host_wait_stop,
        fail: host_fail,
        publish_counters: Some(host_publish_counters),
    };
    let mut report = ServeReport {
        size: std::mem::size_of::<ServeReport>() as u32,
        ..Default::default()
    };
    // SAFETY: config, api and report outlive the call; the header was checked by `load`.
    let status = unsafe { (plugin.serve_fn())(&config, &api, &mut report) };
    (status, report)
}

/// The final report (or why serve failed); the process's exit code.
fn report_end(host: &HostCtx, status: Status, report: &ServeReport) -> i32 {
    let failure = host
        .failure
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    match status {
        Status::Ok => {
            let stopped_at = *host.stopped_at.lock().unwrap_or_else(|e| e.into_inner());
            let drain_ms = stopped_at.map(|t| t.elapsed().as_secs_f64() * 1000.0);
            host.out.send(&ServerEvent::Report {
                counts: *report,
                drain_ms,
                peak_rss_bytes: crate::os::procfs::peak_rss_self(),
            });
            exit::OK
        }
        other => {
            // The ABI's message already says "panicked: ..." for a panic.
            fail(
                &host.out,
                "serve",
                failure.unwrap_or_else(|| format!("serve returned {other:?}")),
            );
            exit::SERVE_FAILED
        }
    }
}
