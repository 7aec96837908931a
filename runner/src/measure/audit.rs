//! A run audits itself: after every step, each figure the row reports is compared with a second,
//! independent witness the run already has, and every disagreement beyond its tolerance is
//! written into the row's `audit` column (and report.md's Flags). An audit never hides or
//! changes a number; it says which ones a reader should not act on without a look.
//!
//! The witnesses and their tolerances (docs/how-it-works.md, "Load models, and why the numbers
//! can be trusted", says the same):
//! - **Connections**: the client's established connections vs the connections the servers had
//!   accepted when the window opened (the plugin's live counters). Fewer accepted means some
//!   connections sat in the kernel's accept queue, never served: their traffic is not measured.
//! - **Echoes**: the client's answers in the window vs the messages the servers echoed in it
//!   (their live byte counters / message size). They may differ by the requests in flight at
//!   the two edges (echoed before an edge, read after it), plus 1% and 10 messages for the
//!   instants the two sides read at.
//! - **Little's law** (closed model, constant connections, no churn): the time-integral of the
//!   requests pending over the window (L, measured by the client) must be the connections open,
//!   within 5% (less: the client was slow to send the next request); and no request may stay
//!   pending through the whole window (a stuck share of the connections).
//! - **Schedule** (open model): the requests the load generators scheduled in the window vs the
//!   integral of the rate over it (within one per load thread); requests not sent, sent late
//!   (more than 1% of them), or never answered.
//! - **Server CPU**: the window's CPU from /proc (the figure reported) vs the servers' own
//!   getrusage at the same instants, within 5% or 20 ms per server process.
//! - **Client lateness** (open model): each reported percentile from the intended send time vs
//!   the same percentile from when the client got to each request (the send lag taken out);
//!   more than a third of the percentile and 50 µs apart (beyond `send_window`), the client's
//!   own lateness shapes that percentile, and the finding names it.
//! - **Loopback floor**: no latency below the shortest loopback round trip each load thread
//!   measured before the load.
//! - **Receive stamps**: every read of an answer should carry the kernel's receive stamp; one
//!   without (stamping unavailable, or a realtime clock step) is timed when read, late by what
//!   the generator slept or waited, which would otherwise be charged to the server unseen.
//! - **Workload** (servers with the workload counters): the work the servers counted in the
//!   window against the requests they did times what one request asks
//!   (`Workload::per_request`): timers fired (and none may return before its time), fan-out
//!   tasks spawned and joined, the fan-outs whose tasks overlapped (one that did not ran them
//!   inline), blocking jobs and those run off the connection's thread, hop messages, and the
//!   answer bytes (requests x response_bytes). The servers' requests against the client's
//!   answers too. A request in flight at an edge has counted some parts and not others; a
//!   server works on at most one request per connection at a time (the handler is sequential),
//!   so at most one per established connection at each edge; plus the requests in flight on the
//!   client at its edges, and 1% and 10 for the instants the two sides read at (as the echoes).
//!   A plugin that skips a part misses by every request of the window.
//! - **Load generator**: its busy fraction from wall time outside `epoll_wait` vs its thread CPU
//!   time plus its run-queue wait (schedstat), within 0.15; and a wait for a CPU above 25% while
//!   its own threads used less than 75% of the load CPUs (another process competed for them, or,
//!   with more load threads than CPUs, they waited for each other in bursts: either way the
//!   latencies include that wait). A busier load CPU is reported as saturation instead.

use crate::console::format::duration_us as us;
use crate::loadgen::RateIntegral;
use crate::measure::{LoadMeasurement, WindowReadings};
use crate::protocol::histograms::percentile_us;
use crate::protocol::Ramp;
use crate::scenario::Model;
use runbench_plugin_abi::Workload;
use std::time::Duration;

/// What the audit needs to know about the step beyond its measurements.
pub struct StepFacts {
    pub model: Model,
    /// What each request is (the size of an answer).
    pub workload: Workload,
    /// `[load] skew`: the share of the requests the hot connections should carry.
    pub skew: Option<crate::scenario::Skew>,
    /// Constant connections with no churn: the only case where Little's law has one `N`.
    pub steady_connections: bool,
    pub rate: Option<Ramp>,
    /// Open model: sends may be late by up to this on purpose (`load.send_window`).
    pub send_window: Duration,
    pub warmup: Duration,
    pub duration: Duration,
    pub server_processes: usize,
    /// Load-generator processes, their threads over all of them, and the CPUs they share.
    pub load_processes: usize,
    pub load_threads: usize,
    pub load_cpus: usize,
}

/// The audit's outcome.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Audit {
    /// Messages the servers echoed in the window, when they publish live counters.
    pub server_echoes: Option<u64>,
    pub findings: Vec<String>,
}

impl Audit {
    /// The `audit` column: `ok`, or the findings.
    pub fn column(&self) -> String {
        if self.findings.is_empty() {
            "ok".into()
        } else {
            self.findings.join("; ")
        }
    }
}

pub fn audit(f: &StepFacts, load: &LoadMeasurement, window: &WindowReadings) -> Audit {
    let mut a = Audit {
        server_echoes: window.answered(&f.workload),
        findings: Vec::new(),
    };
    let c = &load.counters;
    if let Some(accepted) = window.accepted_at_start() {
        if accepted < c.connections_ok {
            a.findings.push(format!(
                "server had accepted {accepted} of the {} connections the client established \
                 when the window opened",
                c.connections_ok
            ));
        }
    }
    workload_findings(f, c, window, &mut a.findings);
    if let (Some(k), true) = (f.skew, c.requests > 0) {
        skew_findings(f.model, k, c, &mut a.findings);
    }
    if let Some(echoed) = a.server_echoes {
        let slack = c.in_flight_at_window_start + c.in_flight_at_window_end + c.requests / 100 + 10;
        if echoed.abs_diff(c.requests) > slack {
            a.findings.push(format!(
                "server echoed {echoed} messages in the window, the client counted {} answers \
                 (allowed difference {slack})",
                c.requests
            ));
        }
    }
    let window_s = load.measured.as_secs_f64();
    if f.model == Model::Closed && f.steady_connections && c.open_at_window_start > 0 {
        little(c, window_s, &mut a.findings);
    }
    if f.model == Model::Closed {
        a.findings.extend(waits_left_out(load));
    }
    if f.model == Model::Open {
        schedule_findings(f, load, &mut a.findings);
        a.findings.extend(client_lateness(f, load));
    }
    if c.reads_unstamped > 0 {
        a.findings.push(format!(
            "{} of {} reads of answers in the window had no kernel receive stamp: those \
             answers were timed when read, and their latencies include the client's own delay \
             in reading them",
            c.reads_unstamped, c.reads
        ));
    }
    if c.reads_stamp_rejected > 0 {
        a.findings.push(format!(
            "{} of {} reads of answers in the window carried a kernel receive stamp later than \
             the read itself, even by the clocks' offset measured again: the realtime clock was \
             stepped back between stamp and read, or the clock of the CPU that stamped them \
             (the one that sent the answer) is ahead of the reading CPU's, and then answers \
             stamped by a CPU whose clock is behind come out early; those reads were timed \
             when read",
            c.reads_stamp_rejected, c.reads
        ));
    }
    if c.clock_steps > 0 {
        let times = match c.clock_steps {
            1 => "once".to_string(),
            n => format!("{n} times"),
        };
        a.findings.push(format!(
            "the realtime clock, which the kernel stamps answers by, was stepped {times} in the \
             window: answers read between a step and the next measurement of the two clocks \
             (within {}) may be placed off by the step's size",
            us(crate::loadgen::CLOCKS_REMEASURED.as_secs_f64() * 1e6)
        ));
    }
    if c.latency_clamped > 0 {
        a.findings.push(format!(
            "{} answers were stamped at or before their request went out, which cannot be: \
             their latencies were recorded as zero (a fault of the client's clocks or of the \
             kernel's stamps), so the low percentiles are not to be trusted",
            c.latency_clamped
        ));
    }
    let unclamped_below = c.latency_below_floor.saturating_sub(c.latency_clamped);
    if unclamped_below > 0 {
        a.findings.push(format!(
            "{unclamped_below} latencies were shorter than the loopback floor of {} (the least \
             time this machine took to read a request on loopback and write its answer back, \
             measured before the load), which no server can answer within: a fault of the \
             client's timing, so the low percentiles are not to be trusted",
            us(c.loopback_floor_ns as f64 / 1000.0)
        ));
    }
    if let (Some((user, sys)), Some(own)) = (window.proc_cpu(), window.own_cpu()) {
        let proc = user + sys;
        let tolerance = (0.05 * own).max(0.02 * f.server_processes as f64);
        if (proc - own).abs() > tolerance {
            a.findings.push(format!(
                "server CPU in the window: {proc:.3} s from /proc, {own:.3} s from the servers' \
                 getrusage"
            ));
        }
    }
    // The three readings of the generator's threads: wall time outside epoll_wait should be its
    // CPU time plus the time it waited for a CPU. CPU may exceed it a little: the kernel's work
    // inside epoll_wait (a wake-up per send at modest rates) is CPU time spent waiting.
    let b = &load.busy;
    if b.wall - (b.cpu + b.cpu_wait) > 0.15 {
        a.findings.push(format!(
            "load generator busy {:.2} of the wall time, but its CPU time ({:.2}) and its wait \
             for a CPU ({:.2}) account for less",
            b.wall, b.cpu, b.cpu_wait
        ));
    }
    // Waiting for a CPU is expected when the load's own threads share it (three load processes
    // on one core); it says another process competed for the load CPUs only when the load's
    // threads left them mostly idle.
    let used = b.cpu_busy(f.load_cpus);
    if b.cpu_wait > 0.25 && used < 0.75 {
        // More threads than CPUs wait for each other when answers reach them together (bursts),
        // even with CPU time to spare; this witness cannot tell that from another process.
        let who = if f.load_threads > f.load_cpus {
            "its own threads, more than its CPUs, waited for each other, or another process \
             competed for them"
        } else {
            "another process competed for them"
        };
        a.findings.push(format!(
            "the load generator waited for a CPU {:.0}% of the time while its {} thread(s) used \
             only {:.0}% of its {} CPU(s): {who}, and the latencies include that wait",
            b.cpu_wait * 100.0,
            f.load_threads,
            used * 100.0,
            f.load_cpus
        ));
    }
    a
}

/// The servers' workload counters against requests x workload (see the module's doc).
fn workload_findings(
    f: &StepFacts,
    c: &crate::protocol::LoadCounters,
    window: &WindowReadings,
    out: &mut Vec<String>,
) {
    let Some((a, b)) = window.own else { return };
    let (Some(a), Some(b)) = (a.counts, b.counts) else {
        return;
    };
    let d = |get: fn(&runbench_plugin_abi::ServeReport) -> u64| get(&b).saturating_sub(get(&a));
    let requests = d(|r| r.requests);
    let w = &f.workload;
    if requests == 0 {
        if w.needs() != 0 && d(|r| r.bytes_echoed) > 0 {
            out.push(
                "the server answered but counted no requests' work (a plugin without the workload \
                 counters): its work per request is unchecked"
                    .into(),
            );
        }
        return;
    }
    let slack = 2 * c.connections_ok.max(c.open_at_window_start)
        + c.in_flight_at_window_start
        + c.in_flight_at_window_end
        + c.requests / 100
        + 10;
    if requests.abs_diff(c.requests) > slack {
        out.push(format!(
            "requests: the server did the work of {requests} requests in the window, the client \
             counted {} answers (allowed difference {slack})",
            c.requests
        ));
    }
    let per = w.per_request();
    let mut part = |name: &str, counted: u64, per_request: u64| {
        let want = requests * per_request;
        let allowed = slack * per_request.max(1);
        if counted.abs_diff(want) > allowed {
            out.push(format!(
                "{name}: the server counted {counted} in the window, {requests} requests x \
                 {per_request} is {want} (allowed difference {allowed})"
            ));
        }
    };
    part("timers", d(|r| r.timers), per.timers);
    part("tasks spawned", d(|r| r.tasks_spawned), per.tasks);
    part("tasks joined", d(|r| r.tasks_joined), per.tasks);
    part("blocking jobs", d(|r| r.blocking_jobs), per.blocking_jobs);
    part("hop messages", d(|r| r.hop_messages), per.hop_messages);
    if let Some(answer) = w.response_bytes() {
        part("bytes answered", d(|r| r.bytes_echoed), answer);
    }
    let early = d(|r| r.timers_early);
    if early > 0 {
        out.push(format!(
            "timer returned early: {early} of {} timer sleeps came back before their time",
            d(|r| r.timers)
        ));
    }
    let (checked, overlapped) = (d(|r| r.fanouts_checked), d(|r| r.fanouts_overlapped));
    if checked > overlapped + slack {
        out.push(format!(
            "fanout ran inline: in {} of {checked} fan-outs no two tasks were in flight at once \
             (they ran one after another: run inline, or each started only after the one before \
             it ended, as threads that take longer to start than a task takes do)",
            checked - overlapped
        ));
    }
    let (jobs, off) = (d(|r| r.blocking_jobs), d(|r| r.blocking_off_thread));
    if jobs > off + slack {
        out.push(format!(
            "blocking work done inline: {} of {jobs} blocking jobs ran on the connection's own \
             thread, not on a blocking pool",
            jobs - off
        ));
    }
}

/// `[load] skew`: the hot connections' share of the answers in the window against the
/// scenario's. Open: the schedule gives them exactly `share`; the answers in the window differ
/// from the requests scheduled in it by those in flight at its edges, plus 1%. Closed: the cold
/// connections' think time follows this thread's mean latency so far, which moves as the run
/// does; within 0.1.
fn skew_findings(
    model: Model,
    k: crate::scenario::Skew,
    c: &crate::protocol::LoadCounters,
    out: &mut Vec<String>,
) {
    let got = c.hot_requests as f64 / c.requests as f64;
    let tolerance = match model {
        Model::Open => {
            (c.in_flight_at_window_start + c.in_flight_at_window_end) as f64 / c.requests as f64
                + 0.01
        }
        Model::Closed => 0.1,
    };
    if (got - k.share).abs() > tolerance {
        out.push(format!(
            "skew: the hot connections carried {:.1}% of the answers, the scenario asks for \
             {:.1}% (allowed difference {:.1} points)",
            got * 100.0,
            k.share * 100.0,
            tolerance * 100.0
        ));
    }
}

/// Little's law in the closed model: every open connection has one request pending, so the
/// time-integral of the requests pending (L, measured) must be the connections open; less means
/// the client itself was slow to send the next request. And a request pending through the
/// whole window means a connection that got no answer in it at all (stuck). Both are measured
/// directly: comparing λW (answers x mean latency) with N instead confuses stuck connections
/// with long latencies at the window's edges, which at 50,000 connections and p99 of seconds
/// is several percent either way.
fn little(c: &crate::protocol::LoadCounters, window_s: f64, out: &mut Vec<String>) {
    let pending = c.pending_ns as f64 / 1e9 / window_s;
    let n = c.open_at_window_start as f64;
    if pending < n * (1.0 - LITTLE_TOLERANCE) {
        out.push(format!(
            "Little's law: {pending:.0} requests pending on average over {n:.0} open \
             connections: the client was slow to send the next request ({:.1} s of gaps)",
            c.resend_gap_sum_ns as f64 / 1e9
        ));
    }
    if c.stuck_through_window > 0 {
        out.push(format!(
            "{} requests pending through the whole window without an answer ({:.1}% of the \
             connections stuck)",
            c.stuck_through_window,
            c.stuck_through_window as f64 / n * 100.0
        ));
    }
}

/// Closed model: a request still unanswered when the window closed has no latency in the row
/// (one is recorded when its answer comes), so a server that stopped answering near the end
/// leaves percentiles made of the answers before it. Flagged when the oldest such wait is over
/// [`crate::protocol::LONG_WAIT`] and more than twice the longest latency recorded: beyond
/// what the spectrum shows, not a request that happened to be in flight.
fn waits_left_out(load: &LoadMeasurement) -> Option<String> {
    let c = &load.counters;
    let oldest_us = c.oldest_pending_at_end_ns as f64 / 1000.0;
    let max_us = if load.histograms.latency.is_empty() {
        0.0
    } else {
        percentile_us(&load.histograms.latency, 100.0)
    };
    let long_us = crate::protocol::LONG_WAIT.as_secs_f64() * 1e6;
    (oldest_us > long_us && oldest_us > 2.0 * max_us).then(|| {
        format!(
            "{} request(s) were still unanswered when the window closed, the oldest after {} \
             (the longest latency recorded is {}): the percentiles leave out these waits (the \
             server stopped answering, or answered very late, near the end)",
            c.long_pending_at_end,
            crate::console::format::duration_us(oldest_us),
            crate::console::format::duration_us(max_us)
        )
    })
}

/// The percentiles a row reports, as the audit names them.
const REPORTED: [(f64, &str); 4] = [(50.0, "p50"), (90.0, "p90"), (99.0, "p99"), (99.9, "p99.9")];
/// The client's own lateness shapes a percentile when it makes up more than this share of it...
const LATENESS_SHARE: f64 = 1.0 / 3.0;
/// ...and more than this (µs): below, it is within a loop turn and a wake-up on any machine.
const LATENESS_FLOOR_US: f64 = 50.0;

/// Open model: the percentiles the client's own lateness shapes. Each answered request's latency
/// is its send lag (how late the generator got to it) plus the time from then to its answer
/// (`after_lag`, the same requests); a percentile of the first that stands well above the same
/// percentile of the second is the client's as much as the server's: a generator late in
/// bursts (preempted, or its loop busy with other work) puts those bursts into the tail, while
/// its p99 lag stays small and its late-send count (beyond 1 ms) says nothing. Lateness up to
/// the send window is on purpose and the row says so; only what lies beyond it counts.
fn client_lateness(f: &StepFacts, load: &LoadMeasurement) -> Option<String> {
    let h = &load.histograms;
    if h.after_lag.is_empty() || h.latency.is_empty() {
        return None;
    }
    let window_us = f.send_window.as_secs_f64() * 1e6;
    let shaped: Vec<String> = REPORTED
        .iter()
        .filter_map(|&(p, name)| {
            let from_due = percentile_us(&h.latency, p);
            let after_lag = percentile_us(&h.after_lag, p);
            let client = from_due - after_lag - window_us;
            (client > LATENESS_FLOOR_US && client > LATENESS_SHARE * from_due).then(|| {
                format!(
                    "{name} ({} from the intended send, {} from when the client got to the \
                     request)",
                    us(from_due),
                    us(after_lag)
                )
            })
        })
        .collect();
    if shaped.is_empty() {
        return None;
    }
    Some(format!(
        "the client's own lateness shapes {}: its send lag (p99 {}, p99.9 {}, max {}) is in \
         these percentiles, which overstate the server's",
        shaped.join(", "),
        us(percentile_us(&h.send_lag, 99.0)),
        us(percentile_us(&h.send_lag, 99.9)),
        us(percentile_us(&h.send_lag, 100.0)),
    ))
}

/// How far the requests pending may fall below the connections open (the client's resend gaps
/// on a busy generator).
const LITTLE_TOLERANCE: f64 = 0.05;

fn schedule_findings(f: &StepFacts, load: &LoadMeasurement, out: &mut Vec<String>) {
    let c = &load.counters;
    if let Some(rate) = &f.rate {
        let g = RateIntegral::new(rate);
        let from = f.warmup.as_secs_f64();
        let due = g.requests_before(from + f.duration.as_secs_f64()) - g.requests_before(from);
        if (c.scheduled as f64 - due).abs() > f.load_threads as f64 + 1.0 {
            out.push(format!(
                "scheduled {} requests in the window, the rate's integral over it is {due:.0}",
                c.scheduled
            ));
        }
    }
    if c.not_sent > 0 {
        out.push(format!(
            "{} of {} scheduled requests were never sent",
            c.not_sent, c.scheduled
        ));
    }
    if c.sent_late * 100 > c.scheduled {
        out.push(format!(
            "{} of {} scheduled requests were sent more than {} ms late",
            c.sent_late,
            c.scheduled,
            crate::protocol::LATE_SEND.as_millis()
        ));
    }
    if c.unanswered > 0 {
        out.push(format!(
            "{} of {} requests of the window were never answered",
            c.unanswered, c.scheduled
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{LoadBusy, ServeReport, ServerSnapshot};

    fn facts(model: Model) -> StepFacts {
        StepFacts {
            model,
            workload: Workload::echo(100),
            skew: None,
            steady_connections: true,
            rate: None,
            send_window: Duration::ZERO,
            warmup: Duration::ZERO,
            duration: Duration::from_secs(1),
            server_processes: 1,
            load_processes: 1,
            load_threads: 1,
            load_cpus: 1,
        }
    }

    fn load(requests: u64) -> LoadMeasurement {
        let mut m = LoadMeasurement::merge(&[], Duration::from_secs(1)).unwrap();
        m.counters.requests = requests;
        m.counters.connections_ok = 100;
        m.counters.open_at_window_start = 100;
        // 100 connections always busy for 1 s: Little's law holds.
        m.counters.pending_ns = 100_000_000_000;
        m.counters.resend_gap_sum_ns = 1_000_000_000;
        m.busy = LoadBusy {
            wall: 0.5,
            cpu: 0.45,
            cpu_wait: 0.02,
            thread_cpu_s: 0.45,
            run_s: 1.0,
            cpu_s: 0.5,
        };
        m
    }

    fn snap(accepted: u64, bytes: u64, cpu: f64) -> ServerSnapshot {
        ServerSnapshot {
            at_ns: 0,
            counts: Some(ServeReport {
                accepted,
                bytes_echoed: bytes,
                ..Default::default()
            }),
            cpu_user_s: cpu,
            cpu_sys_s: 0.0,
        }
    }

    #[test]
    fn a_consistent_step_is_ok() {
        let w = WindowReadings {
            proc: None,
            own: Some((snap(100, 0, 0.0), snap(100, 1_000_000, 0.5))),
            spread: None,
        };
        let a = audit(&facts(Model::Closed), &load(10_000), &w);
        assert_eq!(a.column(), "ok", "{:?}", a.findings);
        assert_eq!(a.server_echoes, Some(10_000));
    }

    #[test]
    fn waits_left_out_at_the_windows_end_are_flagged_beyond_the_spectrum_only() {
        let mut l = load(10_000);
        crate::protocol::histograms::record(&mut l.histograms.latency, Duration::from_millis(2));
        l.counters.oldest_pending_at_end_ns = 1_500_000_000;
        l.counters.long_pending_at_end = 22;
        let text = waits_left_out(&l).expect("a 1.5 s wait beyond a 2 ms spectrum");
        assert!(
            text.starts_with("22 request(s) were still unanswered"),
            "{text}"
        );
        assert!(text.contains("after 1.50 s"), "{text}");
        // In flight a while, but within what the spectrum shows: not a finding.
        crate::protocol::histograms::record(&mut l.histograms.latency, Duration::from_millis(900));
        assert_eq!(waits_left_out(&l), None);
        // Short waits never are.
        let mut short = load(10_000);
        short.counters.oldest_pending_at_end_ns = 50_000_000;
        assert_eq!(waits_left_out(&short), None);
    }

    #[test]
    fn each_witness_catches_its_disagreement() {
        let w = WindowReadings {
            proc: None,
            own: Some((snap(80, 0, 0.0), snap(100, 500_000, 0.5))),
            spread: None,
        };
        let mut l = load(10_000);
        l.counters.stuck_through_window = 50; // half the connections stuck
        l.busy.wall = 0.95; // busy, but neither running nor waiting to run
        let a = audit(&facts(Model::Closed), &l, &w);
        let text = a.column();
        assert!(text.contains("accepted 80 of the 100"), "{text}");
        assert!(text.contains("echoed 5000 messages"), "{text}");
        assert!(
            text.contains("50 requests pending through the whole window"),
            "{text}"
        );
        assert!(text.contains("account for less"), "{text}");
        assert!(!text.contains("receive stamp"), "{text}");
        l.counters.reads = 10_000;
        l.counters.reads_unstamped = 7;
        let text = audit(&facts(Model::Closed), &l, &w).column();
        assert!(
            text.contains("7 of 10000 reads of answers in the window had no kernel receive stamp")
        );
        assert!(!text.contains("stamped at or before"), "{text}");
        assert!(!text.contains("later than the read"), "{text}");
        assert!(!text.contains("stepped"), "{text}");
        l.counters.reads_stamp_rejected = 4;
        l.counters.clock_steps = 2;
        let text = audit(&facts(Model::Closed), &l, &w).column();
        assert!(
            text.contains("4 of 10000 reads of answers in the window carried a kernel receive stamp later than the read"),
            "{text}"
        );
        assert!(text.contains("was stepped 2 times in the window"), "{text}");
        l.counters.latency_clamped = 3;
        let text = audit(&facts(Model::Closed), &l, &w).column();
        assert!(
            text.contains("3 answers were stamped at or before their request went out"),
            "{text}"
        );
        assert!(!text.contains("loopback floor"), "{text}");
        // The clamped ones are below the floor too; two more are below it but not clamped.
        l.counters.loopback_floor_ns = 12_000;
        l.counters.latency_below_floor = 5;
        let text = audit(&facts(Model::Closed), &l, &w).column();
        assert!(
            text.contains("2 latencies were shorter than the loopback floor of 12.0 µs"),
            "{text}"
        );
        let mut l = load(10_000);
        l.counters.pending_ns /= 2;
        l.busy.cpu_wait = 0.4;
        let text = audit(&facts(Model::Closed), &l, &w).column();
        assert!(text.contains("Little's law: 50 requests pending"), "{text}");
        assert!(text.contains("waited for a CPU 40%"), "{text}");
        // Its own threads keeping the CPU busy is saturation, not a competitor.
        l.busy.thread_cpu_s = 0.9;
        let text = audit(&facts(Model::Closed), &l, &w).column();
        assert!(!text.contains("waited for a CPU"), "{text}");
    }

    /// An open-model load of 10,000 requests whose answers take 80-120 µs after the client got
    /// to them, the client `lag(k)` late to request `k`.
    fn lagging(lag: impl Fn(u64) -> Duration) -> LoadMeasurement {
        use crate::protocol::histograms::record;
        let mut l = load(10_000);
        for k in 0..10_000u64 {
            let after = Duration::from_micros(80 + k * 7919 % 41);
            let late = lag(k);
            record(&mut l.histograms.send_lag, late);
            record(&mut l.histograms.after_lag, after);
            record(&mut l.histograms.latency, late + after);
        }
        l
    }

    #[test]
    fn a_client_late_in_bursts_is_named_in_the_percentiles_it_shapes() {
        let f = facts(Model::Open);
        // On time within a few µs: nothing to say.
        let quiet = lagging(|k| Duration::from_nanos(2_000 + k * 31 % 3_000));
        let text = audit(&f, &quiet, &WindowReadings::default()).column();
        assert!(!text.contains("lateness"), "{text}");
        // 2% of the sends 20 ms late (a burst every 50 requests): p99 and p99.9 are the
        // client's, p50 and p90 are not; the lag's own p99 still reads 20 ms, but at 0.5% it
        // would not, and the finding still would (below).
        let bursty = lagging(|k| Duration::from_millis(if k % 50 == 0 { 20 } else { 0 }));
        let text = audit(&f, &bursty, &WindowReadings::default()).column();
        assert!(
            text.contains("the client's own lateness shapes p99 ("),
            "{text}"
        );
        assert!(text.contains("p99.9 ("), "{text}");
        assert!(
            !text.contains("shapes p50") && !text.contains("p90 ("),
            "{text}"
        );
        // 0.5% of the sends 2 ms late: the lag's p99 is on time, the latency's p99.9 is not.
        let rare = lagging(|k| Duration::from_millis(if k % 200 == 0 { 2 } else { 0 }));
        assert!(percentile_us(&rare.histograms.send_lag, 99.0) < 1.0);
        let text = audit(&f, &rare, &WindowReadings::default()).column();
        assert!(text.contains("shapes p99.9 ("), "{text}");
        assert!(!text.contains("p99 ("), "{text}");
        // Lateness within the send window is on purpose: a 500 µs window late by up to it.
        let mut windowed = facts(Model::Open);
        windowed.send_window = Duration::from_micros(500);
        let within = lagging(|k| Duration::from_micros(k * 13 % 500));
        let text = audit(&windowed, &within, &WindowReadings::default()).column();
        assert!(!text.contains("lateness"), "{text}");
        let text = audit(&f, &within, &WindowReadings::default()).column();
        assert!(text.contains("lateness shapes p50"), "{text}");
    }

    #[test]
    fn each_workload_part_is_checked_against_requests_times_the_workload() {
        use runbench_plugin_abi::{Dist, Fanout};
        let mut f = facts(Model::Closed);
        f.workload = Workload {
            response_bytes: Some(1000),
            sleep: Dist::Fixed(Duration::from_millis(1)),
            fanout: Some(Fanout {
                tasks: 4,
                cpu: Duration::ZERO,
                sleep: Duration::from_micros(100),
            }),
            blocking: Duration::from_micros(50),
            hops: 2,
            ..Workload::echo(100)
        };
        // 10,000 requests, each: 1 + 4 timers, 4 tasks, 1 blocking job, 2 hop messages, 1000 B.
        let honest = ServeReport {
            accepted: 100,
            requests: 10_000,
            bytes_echoed: 10_000_000,
            timers: 50_000,
            tasks_spawned: 40_000,
            tasks_joined: 40_000,
            fanouts_checked: 10_000,
            fanouts_overlapped: 10_000,
            blocking_jobs: 10_000,
            blocking_off_thread: 10_000,
            hop_messages: 20_000,
            ..Default::default()
        };
        let window = |end: ServeReport| WindowReadings {
            proc: None,
            own: Some((
                ServerSnapshot {
                    counts: Some(ServeReport {
                        accepted: 100,
                        ..Default::default()
                    }),
                    ..snap(100, 0, 0.0)
                },
                ServerSnapshot {
                    counts: Some(end),
                    ..snap(100, 0, 0.5)
                },
            )),
            spread: None,
        };
        let a = audit(&f, &load(10_000), &window(honest));
        assert_eq!(a.column(), "ok", "{:?}", a.findings);
        // Within the edges' slack (2 x 100 connections + 1% + 10 = 310 requests): still ok.
        let edge = ServeReport {
            timers: 50_000 - 5 * 300,
            ..honest
        };
        assert_eq!(audit(&f, &load(10_000), &window(edge)).column(), "ok");
        let cheat = ServeReport {
            timers: 10_000,
            timers_early: 7,
            tasks_joined: 0,
            fanouts_overlapped: 0,
            blocking_off_thread: 0,
            hop_messages: 0,
            bytes_echoed: 9_000_000,
            ..honest
        };
        let text = audit(&f, &load(10_000), &window(cheat)).column();
        for part in [
            "timers: the server counted 10000 in the window, 10000 requests x 5 is 50000",
            "tasks joined: the server counted 0",
            "hop messages: the server counted 0",
            "bytes answered: the server counted 9000000",
            "timer returned early: 7 of 10000",
            "fanout ran inline: in 10000 of 10000 fan-outs",
            "blocking work done inline: 10000 of 10000",
        ] {
            assert!(text.contains(part), "{part}: {text}");
        }
        assert!(!text.contains("tasks spawned"), "{text}");
        // A server that answered and counted no requests' work is said to be unchecked.
        let old = ServeReport {
            requests: 0,
            ..honest
        };
        let text = audit(&f, &load(10_000), &window(old)).column();
        assert!(text.contains("counted no requests' work"), "{text}");
    }

    #[test]
    fn the_hot_share_of_a_skewed_load_is_checked() {
        let mut f = facts(Model::Open);
        f.skew = Some(crate::scenario::Skew {
            hot: 0.1,
            share: 0.9,
        });
        let mut l = load(1000);
        l.counters.scheduled = 1000;
        l.counters.hot_requests = 895;
        let w = WindowReadings::default();
        assert!(!audit(&f, &l, &w).column().contains("skew"));
        l.counters.hot_requests = 500;
        let text = audit(&f, &l, &w).column();
        assert!(
            text.contains("skew: the hot connections carried 50.0% of the answers, the scenario asks for 90.0%"),
            "{text}"
        );
    }

    #[test]
    fn the_open_schedule_is_checked_against_the_rate_integral() {
        let mut f = facts(Model::Open);
        f.rate = Some(Ramp::constant(1000.0));
        let mut l = load(1000);
        l.counters.scheduled = 1000;
        assert!(audit(&f, &l, &WindowReadings::default())
            .findings
            .is_empty());
        l.counters.scheduled = 600;
        l.counters.unanswered = 3;
        let text = audit(&f, &l, &WindowReadings::default()).column();
        assert!(text.contains("integral over it is 1000"), "{text}");
        assert!(text.contains("3 of 600 requests"), "{text}");
    }
}
