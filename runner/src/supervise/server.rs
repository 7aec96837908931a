//! The server side of a run: K `runbench serve` processes sharing one port.

use super::{ChildProc, Reaped};
use crate::cluster::Placement;
use crate::os::procfs::ProcSample;
use crate::protocol::{ServeReport, ServeSpec, ServerEvent, ServerSnapshot, WindowEdge};
use std::path::Path;
use std::time::{Duration, Instant};

/// How long a plugin may take to start listening, unless the run says otherwise.
pub const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// How often waits check for an interruption (Ctrl-C).
const POLL: Duration = Duration::from_millis(100);
/// Beyond the grace period, how long a stopping server may take to exit before it is killed.
pub const EXIT_MARGIN: Duration = Duration::from_secs(2);

/// Where the servers' /proc is read: here, or on the server agent's host.
pub enum ProcSampler {
    Local(Vec<u32>),
    Remote(std::sync::Arc<crate::cluster::link::AgentLink>, Vec<u64>),
}

impl ProcSampler {
    /// Every process's reading summed; `None` once one is gone (the window's edges need all).
    pub fn all(&self) -> Option<ProcSample> {
        match self {
            ProcSampler::Local(pids) => crate::os::procfs::sample_all(pids),
            ProcSampler::Remote(link, ids) => match link.sample(ids)? {
                (sum, true) => Some(sum),
                (_, false) => None,
            },
        }
    }

    /// CPU nanoseconds of every thread of every server process, keyed (pid, tid); `None` when
    /// one is gone, and for servers on another host (not read there).
    pub fn threads(&self) -> Option<crate::measure::ThreadCpu> {
        let ProcSampler::Local(pids) = self else {
            return None;
        };
        let mut out = Vec::new();
        for &pid in pids {
            let threads = crate::os::procfs::thread_cpu_ns(pid)?;
            out.extend(threads.into_iter().map(|(tid, ns)| ((pid, tid), ns)));
        }
        Some(out)
    }

    /// What the processes still there read (the timeline).
    pub fn present(&self) -> ProcSample {
        match self {
            ProcSampler::Local(pids) => {
                let mut total = ProcSample::default();
                for &pid in pids {
                    if let Some(s) = crate::os::procfs::sample(pid) {
                        total.add(&s);
                    }
                }
                total
            }
            ProcSampler::Remote(link, ids) => link.sample(ids).map(|s| s.0).unwrap_or_default(),
        }
    }
}

pub struct Servers {
    procs: Vec<ChildProc<ServerEvent>>,
    pub runtime_version: String,
    /// When the stop command went out.
    signalled: Option<Instant>,
}

/// How the servers ended.
#[derive(Clone, Debug, Default)]
pub struct ServersExit {
    pub counts: ServeReport,
    pub cpu_user_s: f64,
    pub cpu_sys_s: f64,
    /// Sum of each process's peak RSS.
    pub rss_peak_bytes: u64,
    /// From the stop command to the last process's exit.
    pub shutdown: Duration,
    /// From the stop command to the last connection closed (slowest process), when reported.
    pub drain_ms: Option<f64>,
    /// Some process outlived grace + margin and was killed.
    pub overran: bool,
    /// First failure reported or observed (crash, signal, plugin error).
    pub failure: Option<String>,
    /// CPU and RSS above are real readings (false for an external target the run did not start).
    pub resources: bool,
    /// The servers' own snapshots at the window's edges, summed over processes; `None` unless
    /// every process sent both.
    pub window: Option<(ServerSnapshot, ServerSnapshot)>,
}

fn log_event(e: &ServerEvent) -> Option<String> {
    match e {
        ServerEvent::Log { level, message } => {
            let lvl = match level {
                1 => "error",
                2 => "warn",
                3 => "info",
                _ => "debug",
            };
            Some(format!("{lvl}: {message}"))
        }
        _ => None,
    }
}

fn describe_exit(r: &Reaped) -> String {
    match (r.exit_code, r.signal) {
        (_, Some(sig)) => format!("killed by signal {sig} ({})", signal_name(sig)),
        (Some(code), _) => format!("exited with code {code}"),
        _ => "ended".to_string(),
    }
}

pub fn signal_name(sig: i32) -> &'static str {
    match sig {
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGKILL => "SIGKILL",
        libc::SIGBUS => "SIGBUS",
        libc::SIGILL => "SIGILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGFPE => "SIGFPE",
        libc::SIGINT => "SIGINT",
        libc::SIGHUP => "SIGHUP",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGSYS => "SIGSYS",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        _ => "signal",
    }
}

impl Servers {
    /// Starts `count` servers and waits until each is listening, at most `ready_timeout` (then
    /// they are killed). An interruption (Ctrl-C) stops them and returns an error.
    pub fn start(
        exe: &Path,
        spec: &ServeSpec,
        count: usize,
        placement: &Placement,
        runtime: &str,
        ready_timeout: Duration,
    ) -> Result<Servers, String> {
        let json = serde_json::to_string(spec).expect("spec serialises");
        let mut procs = Vec::new();
        for k in 0..count {
            let label = if count > 1 {
                format!("{runtime} server {k}")
            } else {
                format!("{runtime} server")
            };
            let agent = placement.server();
            let p = ChildProc::spawn_at(agent, exe, "serve", &json, &label, log_event, 0)
                .map_err(|e| format!("starting the server process: {e}"))?;
            procs.push(p);
        }
        let mut servers = Servers {
            procs,
            runtime_version: String::new(),
            signalled: None,
        };
        let deadline = Instant::now() + ready_timeout;
        for i in 0..servers.procs.len() {
            loop {
                if let Some(sig) = crate::os::interrupt::requested() {
                    servers.stop(Duration::ZERO);
                    return Err(format!(
                        "interrupted ({}) while the server started",
                        crate::os::interrupt::name(sig)
                    ));
                }
                let p = &mut servers.procs[i];
                match p.next_event((Instant::now() + POLL).min(deadline)) {
                    Some(ServerEvent::Ready {
                        runtime_version, ..
                    }) => {
                        servers.runtime_version = runtime_version;
                        break;
                    }
                    Some(ServerEvent::Failed { stage, message }) => {
                        return Err(format!("{stage}: {message}"));
                    }
                    Some(_) => {}
                    None => {
                        if let Some(r) = p.poll_exit() {
                            return Err(format!(
                                "server process {} before it was ready",
                                describe_exit(&r)
                            ));
                        }
                    }
                }
                if Instant::now() >= deadline {
                    p.kill();
                    return Err(format!(
                        "server not ready within {} (start-up timeout); killed",
                        humantime::format_duration(ready_timeout)
                    ));
                }
            }
        }
        Ok(servers)
    }

    /// Reads the servers' /proc, here or on their agent.
    pub fn sampler(&self) -> ProcSampler {
        let remote: Vec<_> = self.procs.iter().filter_map(|p| p.on_agent()).collect();
        match remote.first() {
            Some((link, _)) => {
                ProcSampler::Remote(link.clone(), remote.iter().map(|r| r.1).collect())
            }
            None => ProcSampler::Local(self.pids()),
        }
    }

    pub fn pids(&self) -> Vec<u32> {
        // A server on an agent has no pid here (its /proc is on its own host).
        self.procs
            .iter()
            .map(|p| p.pid)
            .filter(|&p| p != 0)
            .collect()
    }

    /// A server that died while the load ran (exits after the stop signal are expected, and
    /// their time is noted for the shutdown measurement).
    pub fn crashed(&mut self) -> Option<String> {
        if self.signalled.is_some() {
            for p in &mut self.procs {
                p.poll_exit();
            }
            return None;
        }
        self.procs.iter_mut().find_map(|p| {
            p.poll_exit().map(|r| {
                let reported = p
                    .remaining_events(Duration::from_secs(1))
                    .into_iter()
                    .find_map(|e| match e {
                        ServerEvent::Failed { stage, message } => {
                            Some(format!("{stage}: {message}"))
                        }
                        _ => None,
                    });
                reported.unwrap_or_else(|| {
                    format!("server process {} during the run", describe_exit(&r))
                })
            })
        })
    }

    /// Connections the servers have accepted by now, by their live counters; `None` when a
    /// process does not answer within `wait` or its plugin publishes no live counters.
    pub fn accepted_now(&mut self, wait: Duration) -> Option<u64> {
        for p in &mut self.procs {
            p.send_line(crate::protocol::COUNTS);
        }
        let deadline = Instant::now() + wait;
        let mut total = 0;
        for p in &mut self.procs {
            loop {
                match p.next_event(deadline)? {
                    ServerEvent::Counts { snapshot } => {
                        total += snapshot.counts?.accepted;
                        break;
                    }
                    // Only counts are asked for before the load; anything else is kept for the
                    // end (a failure is seen by `crashed` too).
                    other => p.keep(other),
                }
            }
        }
        Some(total)
    }

    /// Asks every server to snapshot itself at the window's edges (CLOCK_MONOTONIC ns).
    pub fn watch_window(&mut self, start_ns: u64, end_ns: u64) {
        for p in &mut self.procs {
            p.send_line(&format!("{} {start_ns} {end_ns}", crate::protocol::WINDOW));
        }
    }

    /// Sends the stop command to every server (once).
    pub fn signal_stop(&mut self) {
        if self.signalled.is_some() {
            return;
        }
        self.signalled = Some(Instant::now());
        for p in &mut self.procs {
            p.send_line(crate::protocol::STOP);
            p.close_stdin();
        }
    }

    /// Stops the servers (if not yet signalled) and collects their reports and resource usage;
    /// a server still running at grace + margin after the signal is killed.
    pub fn stop(mut self, grace: Duration) -> ServersExit {
        self.signal_stop();
        let signalled = self.signalled.expect("just signalled");
        let deadline = signalled + grace + EXIT_MARGIN;
        let mut exit = ServersExit {
            resources: true,
            ..ServersExit::default()
        };
        let mut window: Vec<(Option<ServerSnapshot>, Option<ServerSnapshot>)> = Vec::new();
        for p in &mut self.procs {
            let (reaped, killed) = p.wait_exit(deadline);
            let mut edges = (None, None);
            exit.cpu_user_s += reaped.user_s;
            exit.cpu_sys_s += reaped.sys_s;
            // wait4's figure counts the memory the child had before exec; the child's own VmHWM
            // does not, so it wins when the child lived to report it.
            let mut peak = reaped.max_rss_bytes;
            let mut reported = false;
            for e in p.remaining_events(Duration::from_secs(1)) {
                match e {
                    ServerEvent::Report {
                        counts,
                        drain_ms,
                        peak_rss_bytes,
                    } => {
                        exit.counts.add(&counts);
                        peak = peak_rss_bytes.unwrap_or(peak);
                        exit.drain_ms = match (exit.drain_ms, drain_ms) {
                            (Some(a), Some(b)) => Some(a.max(b)),
                            (a, b) => a.or(b),
                        };
                        reported = true;
                    }
                    ServerEvent::Failed { stage, message } => {
                        exit.failure.get_or_insert(format!("{stage}: {message}"));
                    }
                    ServerEvent::Snapshot { edge, snapshot } => match edge {
                        WindowEdge::Start => edges.0 = Some(snapshot),
                        WindowEdge::End => edges.1 = Some(snapshot),
                    },
                    _ => {}
                }
            }
            window.push(edges);
            exit.rss_peak_bytes += peak;
            if killed {
                exit.overran = true;
                exit.failure.get_or_insert(format!(
                    "shutdown overrun: still running {:.1}s after the stop signal (grace {:.1}s); killed",
                    (grace + EXIT_MARGIN).as_secs_f64(),
                    grace.as_secs_f64()
                ));
            } else if !reported {
                exit.failure.get_or_insert(format!(
                    "server process {} without a report",
                    describe_exit(&reaped)
                ));
            }
        }
        let last_exit = self
            .procs
            .iter()
            .filter_map(|p| p.exited_at)
            .max()
            .unwrap_or_else(Instant::now);
        exit.shutdown = last_exit.saturating_duration_since(signalled);
        exit.window = sum_snapshots(&window);
        exit
    }
}

/// Per-process (start, end) snapshots summed, if every process sent both.
fn sum_snapshots(
    per_process: &[(Option<ServerSnapshot>, Option<ServerSnapshot>)],
) -> Option<(ServerSnapshot, ServerSnapshot)> {
    let mut sum: Option<(ServerSnapshot, ServerSnapshot)> = None;
    for &(a, b) in per_process {
        let (a, b) = (a?, b?);
        match &mut sum {
            None => sum = Some((a, b)),
            Some((sa, sb)) => {
                sa.add(&a);
                sb.add(&b);
            }
        }
    }
    sum
}
