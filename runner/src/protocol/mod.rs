//! Messages between the runner and its child processes: one JSON object per line on the child's
//! protocol stream (its original stdout); commands go to the child's stdin as plain lines.

pub mod histograms;

use runbench_plugin_abi::Workload;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::net::SocketAddr;
use std::os::fd::FromRawFd;
use std::path::PathBuf;
use std::sync::Mutex;

/// Command lines the runner writes to a child's stdin. EOF on stdin means `STOP` too, so a child
/// never outlives a dead runner.
pub const STOP: &str = "stop";
pub const START: &str = "start";
/// `window <start ns> <end ns>` (CLOCK_MONOTONIC) to a server: snapshot your counters and CPU
/// time at those two instants (the measured window's edges) and report them.
pub const WINDOW: &str = "window";
/// `counts` to a server: report your counters now ([`ServerEvent::Counts`]).
pub const COUNTS: &str = "counts";

/// What a `runbench serve` child runs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ServeSpec {
    pub plugin: PathBuf,
    pub addr: SocketAddr,
    pub threads: usize,
    pub cpus: Vec<usize>,
    pub max_connections: usize,
    pub grace_ms: u64,
    pub workload: Workload,
    /// Network namespace (under /run/netns) to enter before anything else; set for plugins
    /// that need a TAP device (see `crate::os::netns`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<String>,
}

/// The plugin's connection counters, as the ABI reports them.
pub use runbench_plugin_abi::ServeReport;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ServerEvent {
    Ready {
        runtime: String,
        runtime_version: String,
    },
    Log {
        level: u32,
        message: String,
    },
    /// The stop command arrived (the runner times shutdown from its own clock too).
    Stopping,
    /// `serve` returned; `drain_ms` is from the stop command to that moment (every connection
    /// closed), `None` when serve ended without a stop.
    Report {
        counts: ServeReport,
        drain_ms: Option<f64>,
        /// Peak RSS of the serve process after exec (VmHWM), read just before it exits.
        #[serde(default)]
        peak_rss_bytes: Option<u64>,
    },
    Failed {
        stage: String,
        message: String,
    },
    /// The answer to [`COUNTS`].
    Counts {
        snapshot: ServerSnapshot,
    },
    /// The server's own reading at one edge of the measured window (see [`WINDOW`]).
    Snapshot {
        edge: WindowEdge,
        snapshot: ServerSnapshot,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowEdge {
    Start,
    End,
}

/// What a server process reads of itself at one instant: the plugin's live counters (when it
/// publishes them) and its CPU time from getrusage.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerSnapshot {
    /// When it was taken (CLOCK_MONOTONIC ns).
    pub at_ns: u64,
    /// `None`: the plugin publishes no live counters.
    pub counts: Option<ServeReport>,
    pub cpu_user_s: f64,
    pub cpu_sys_s: f64,
}

impl ServerSnapshot {
    /// Sums over server processes (taken at the same instants).
    pub fn add(&mut self, o: &ServerSnapshot) {
        self.at_ns = self.at_ns.max(o.at_ns);
        self.counts = match (self.counts, o.counts) {
            (Some(mut a), Some(b)) => {
                a.add(&b);
                Some(a)
            }
            _ => None,
        };
        self.cpu_user_s += o.cpu_user_s;
        self.cpu_sys_s += o.cpu_sys_s;
    }
}

/// The child's writer for protocol lines. Takes over the process's stdout and points fd 1 at
/// stderr, so a plugin that prints cannot corrupt the protocol.
pub struct ProtocolOut(Mutex<std::fs::File>);

impl ProtocolOut {
    pub fn take_stdout() -> std::io::Result<Self> {
        // SAFETY: dup/dup2 on the process's own standard descriptors.
        let fd = unsafe {
            let fd = libc::dup(1);
            if fd < 0 || libc::dup2(2, 1) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            fd
        };
        // SAFETY: `fd` is a fresh descriptor we own.
        Ok(ProtocolOut(Mutex::new(unsafe {
            std::fs::File::from_raw_fd(fd)
        })))
    }

    pub fn send<T: Serialize>(&self, msg: &T) {
        let mut line = serde_json::to_vec(msg).expect("protocol messages serialise");
        line.push(b'\n');
        let mut out = self.0.lock().unwrap_or_else(|e| e.into_inner());
        // A vanished runner is not an error worth dying for here; stdin EOF stops us anyway.
        let _ = out.write_all(&line);
    }
}

/// A value that ramps linearly between phase targets (connections or requests/s).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Ramp {
    pub start: f64,
    /// (phase length in ms, value at its end); `None` keeps the previous value.
    pub phases: Vec<(u64, Option<f64>)>,
}

impl Ramp {
    pub fn constant(v: f64) -> Self {
        Ramp {
            start: v,
            phases: Vec::new(),
        }
    }

    /// The value `t` after the load started.
    pub fn at(&self, t: std::time::Duration) -> f64 {
        let mut t_ms = t.as_secs_f64() * 1000.0;
        let mut value = self.start;
        for &(len, target) in &self.phases {
            let to = target.unwrap_or(value);
            if t_ms < len as f64 {
                return value + (to - value) * (t_ms / len as f64);
            }
            t_ms -= len as f64;
            value = to;
        }
        value
    }
}

/// What a `runbench loadgen` child runs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoadgenSpec {
    pub target: SocketAddr,
    /// Global index of this process's first connection (selects payload patterns and sources).
    pub first_connection: usize,
    /// Connections this process owns (its share of the peak).
    pub connections: usize,
    /// Run number, selecting this run's block of source addresses.
    pub run: usize,
    pub workload: Workload,
    pub warmup_ms: u64,
    pub duration_ms: u64,
    pub threads: usize,
    pub cpus: Vec<usize>,
    pub connect_timeout_ms: u64,
    pub model: crate::scenario::Model,
    /// Connections open over time, over all processes; connection `i` is open while `i < value`.
    pub open_connections: Ramp,
    /// Open model: requests/s over all connections.
    pub rate: Option<Ramp>,
    pub requests_per_connection: Option<u64>,
    /// Uneven load over the connections (`[load] skew`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skew: Option<crate::scenario::Skew>,
    /// Open model: the generator sleeps at most once per window of this many ns.
    #[serde(default)]
    pub send_window_ns: u64,
    pub interval_ms: u64,
    /// The servers get the stop signal this long after the load starts.
    pub signal_at_ms: Option<u64>,
    /// Network namespace to enter before anything else (the server's, when it has one). Inside
    /// one, connections come from the kernel's TAP address rather than 127.x source blocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<String>,
}

/// Connection failures seen by the load generator, counted by kind (never stored one by one).
/// Requests that went unanswered are counted apart ([`LoadCounters::unanswered`]): these count
/// connections, those requests.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct LoadErrors {
    pub connect_failed: u64,
    pub connect_timeout: u64,
    pub reset: u64,
    pub closed_by_server: u64,
    pub other: u64,
    /// HTTP: answers that were not valid HTTP/1.1 (or cut short by a close), each ending its
    /// connection.
    #[serde(default)]
    pub malformed: u64,
}

impl LoadErrors {
    pub fn total(&self) -> u64 {
        self.connect_failed
            + self.connect_timeout
            + self.reset
            + self.closed_by_server
            + self.other
            + self.malformed
    }

    /// `kind=count` for every kind that happened, e.g. `reset=3 closed_by_server=1`.
    pub fn kinds(&self) -> String {
        [
            ("connect_failed", self.connect_failed),
            ("connect_timeout", self.connect_timeout),
            ("reset", self.reset),
            ("closed_by_server", self.closed_by_server),
            ("other", self.other),
            ("malformed", self.malformed),
        ]
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{k}={n}"))
        .collect::<Vec<_>>()
        .join(" ")
    }
}

impl std::ops::AddAssign for LoadErrors {
    fn add_assign(&mut self, o: LoadErrors) {
        self.connect_failed += o.connect_failed;
        self.connect_timeout += o.connect_timeout;
        self.reset += o.reset;
        self.closed_by_server += o.closed_by_server;
        self.other += o.other;
        self.malformed += o.malformed;
    }
}

/// A wait that counts as long in [`LoadCounters::long_pending_at_end`].
pub const LONG_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

/// What load generators count. Every field adds up from worker threads to processes to the run
/// (one `+=`, in [`LoadCounters::add_assign`]), so a new counter is one field here.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct LoadCounters {
    /// Connections established before the load started.
    pub connections_ok: u64,
    /// Connections opened after the start (churn, ramps).
    pub reconnects: u64,
    /// Requests answered inside the measured window, whenever they were sent: requests/s is
    /// this over the window (the timeline's intervals of the window add up to it).
    pub requests: u64,
    /// Open model: requests the schedule puts inside the measured window.
    pub scheduled: u64,
    /// Requests written inside the measured window (open model: of those scheduled in it).
    pub sent: u64,
    /// Open model: scheduled requests written more than [`LATE_SEND`] after their intended time
    /// (the generator was behind, the connection was reconnecting, or the socket was full).
    pub sent_late: u64,
    /// Open model: scheduled requests never written (their connection had failed, or was still
    /// reconnecting when the load ended). They count as unanswered too.
    pub not_sent: u64,
    /// Open model: requests of the window that got no answer: still open at the end of the
    /// drain, or lost with a failed connection. Their latency is recorded as (end of the drain
    /// - intended send), so they weigh on the percentiles instead of vanishing.
    pub unanswered: u64,
    pub mismatched_bytes: u64,
    pub errors: LoadErrors,
    /// Requests outstanding when the servers got the stop signal, and what became of them.
    pub in_flight_at_signal: u64,
    pub completed_after_signal: u64,
    pub cut_after_signal: u64,
    /// Requests written but not yet answered when the window opened and when it closed: how far
    /// the server's count of echoes in the window may differ from the client's.
    pub in_flight_at_window_start: u64,
    pub in_flight_at_window_end: u64,
    /// Connections open when the window opened.
    pub open_at_window_start: u64,
    /// Requests still unanswered when the window closed that were already pending when it
    /// opened: no answer in the whole window (stuck connections).
    pub stuck_through_window: u64,
    /// Closed model: the longest a request still unanswered when the window closed had waited
    /// (ns from its intended send time; merged as the largest), and how many had waited more
    /// than [`LONG_WAIT`]: waits the window's percentiles leave out, since a latency is
    /// recorded only when its answer comes.
    #[serde(default)]
    pub oldest_pending_at_end_ns: u64,
    #[serde(default)]
    pub long_pending_at_end: u64,
    /// Closed model, for Little's law: the time-integral of the requests pending over the
    /// window (request-ns), and the client's own time between an answer and the next request on
    /// that connection (ns).
    pub pending_ns: u64,
    pub resend_gap_sum_ns: u64,
    /// Reads of answers in the window, and those timed when read instead (late by whatever the
    /// generator slept or waited): without a kernel receive stamp, or with one the reading
    /// thread's clocks could not place, even by an offset measured again (after the read:
    /// a step back between stamp and read, or the stamping CPU's clock ahead of the reader's).
    #[serde(default)]
    pub reads: u64,
    #[serde(default)]
    pub reads_unstamped: u64,
    #[serde(default)]
    pub reads_stamp_rejected: u64,
    /// Steps of the realtime clock (the stamps' clock) against the monotonic one that the
    /// load threads' measurements of the two found in the window.
    #[serde(default)]
    pub clock_steps: u64,
    /// Open model: turns of the loop that handed out requests of the window, each a batch: what
    /// was due when it looked, and what fell due while it sent that.
    #[serde(default)]
    pub send_batches: u64,
    /// Latencies recorded in the window whose answer was stamped at or before its request went
    /// out: impossible, so a clock or stamping fault; recorded as zero, and counted.
    #[serde(default)]
    pub latency_clamped: u64,
    /// The least time a loopback answer takes once its request is in, measured by each load
    /// thread before the load (`arrival::loopback_floor`; merged as the smallest; 0: not
    /// measured), and the latencies
    /// recorded in the window below their thread's floor (the clamped ones among them): no
    /// server can answer faster, so each is a fault of the client's timing.
    #[serde(default)]
    pub loopback_floor_ns: u64,
    #[serde(default)]
    pub latency_below_floor: u64,
    /// With `[load] skew`: answers in the window on the hot connections (the witness of the
    /// share they carried).
    #[serde(default)]
    pub hot_requests: u64,
    /// HTTP: answers that were not 2xx, by class (1xx, 3xx, 4xx, 5xx); they complete their
    /// request (as wrk counts them) and flag the row.
    #[serde(default)]
    pub non_2xx: [u64; 4],
}

impl LoadCounters {
    /// Counts an HTTP answer's status by class.
    pub fn count_status(&mut self, status: u16) {
        let slot = match status / 100 {
            1 => 0,
            3 => 1,
            4 => 2,
            5 => 3,
            _ => return,
        };
        self.non_2xx[slot] += 1;
    }

    /// HTTP: the non-2xx answers, `4xx=3 5xx=1`, empty when there were none.
    pub fn non_2xx_kinds(&self) -> String {
        ["1xx", "3xx", "4xx", "5xx"]
            .iter()
            .zip(self.non_2xx)
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| format!("{k}={n}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl std::ops::AddAssign for LoadCounters {
    fn add_assign(&mut self, o: LoadCounters) {
        self.connections_ok += o.connections_ok;
        self.reconnects += o.reconnects;
        self.requests += o.requests;
        self.scheduled += o.scheduled;
        self.sent += o.sent;
        self.sent_late += o.sent_late;
        self.not_sent += o.not_sent;
        self.unanswered += o.unanswered;
        self.mismatched_bytes += o.mismatched_bytes;
        self.errors += o.errors;
        self.in_flight_at_signal += o.in_flight_at_signal;
        self.completed_after_signal += o.completed_after_signal;
        self.cut_after_signal += o.cut_after_signal;
        self.in_flight_at_window_start += o.in_flight_at_window_start;
        self.in_flight_at_window_end += o.in_flight_at_window_end;
        self.open_at_window_start += o.open_at_window_start;
        self.stuck_through_window += o.stuck_through_window;
        self.oldest_pending_at_end_ns = self
            .oldest_pending_at_end_ns
            .max(o.oldest_pending_at_end_ns);
        self.long_pending_at_end += o.long_pending_at_end;
        self.pending_ns += o.pending_ns;
        self.resend_gap_sum_ns += o.resend_gap_sum_ns;
        self.reads += o.reads;
        self.reads_unstamped += o.reads_unstamped;
        self.reads_stamp_rejected += o.reads_stamp_rejected;
        self.clock_steps += o.clock_steps;
        self.send_batches += o.send_batches;
        self.latency_clamped += o.latency_clamped;
        self.loopback_floor_ns = match (self.loopback_floor_ns, o.loopback_floor_ns) {
            (0, b) => b,
            (a, 0) => a,
            (a, b) => a.min(b),
        };
        self.latency_below_floor += o.latency_below_floor;
        self.hot_requests += o.hot_requests;
        for (a, b) in self.non_2xx.iter_mut().zip(o.non_2xx) {
            *a += b;
        }
    }
}

/// A scheduled send this much after its intended time counts as late ([`LoadCounters::sent_late`]).
pub const LATE_SEND: std::time::Duration = std::time::Duration::from_millis(1);

/// How hard the load generator worked, measured independently three ways per thread: wall
/// time outside its waits, CPU time outside them (what a sleep itself costs the CPU counts as
/// waiting; `cpu_s` keeps it: it is what the load cost), and time runnable but waiting for a CPU
/// (schedstat). Fractions merge as the busiest thread (the one that limits the load); seconds
/// add up.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct LoadBusy {
    pub wall: f64,
    pub cpu: f64,
    /// Runnable but not running (another process, or another load process, had the CPU).
    pub cpu_wait: f64,
    /// The worker threads' CPU seconds, summed, and the longest worker's run (s): what the
    /// load CPUs' utilisation is computed from.
    pub thread_cpu_s: f64,
    pub run_s: f64,
    /// CPU seconds (user + system) of the load processes, summed.
    pub cpu_s: f64,
}

impl LoadBusy {
    pub fn merge(&mut self, o: &LoadBusy) {
        self.wall = self.wall.max(o.wall);
        self.cpu = self.cpu.max(o.cpu);
        self.cpu_wait = self.cpu_wait.max(o.cpu_wait);
        self.thread_cpu_s += o.thread_cpu_s;
        self.run_s = self.run_s.max(o.run_s);
        self.cpu_s += o.cpu_s;
    }

    /// How busy the load CPUs were: the busiest thread, or all threads' CPU over the CPUs they
    /// share (three load processes on one core are saturated at a third each).
    pub fn cpu_busy(&self, load_cpus: usize) -> f64 {
        let shared = if self.run_s > 0.0 {
            self.thread_cpu_s / (self.run_s * load_cpus.max(1) as f64)
        } else {
            0.0
        };
        self.cpu.max(shared).min(1.0)
    }
}

/// One load-generator process's measurement.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LoadResult {
    pub counters: LoadCounters,
    pub busy: LoadBusy,
    pub histograms: crate::protocol::histograms::EncodedHistograms,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum LoadEvent {
    Connected {
        ok: u64,
        errors: LoadErrors,
        first_error: Option<String>,
    },
    /// Running totals (warmup included) at `at_ns` on the child's CLOCK_MONOTONIC, so the
    /// runner computes rates from the child's own clock, not from when the line arrived.
    Progress {
        at_ns: u64,
        completed: u64,
        errors: u64,
    },
    /// One timeline interval: index k covers [k, k+1) * interval since the start.
    Interval {
        index: u64,
        completed: u64,
        errors: u64,
        connections: u64,
        histogram: String,
    },
    Result {
        result: Box<LoadResult>,
    },
    Failed {
        message: String,
    },
}
