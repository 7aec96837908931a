//! Measurements -> one summary row: the scenario's parameters, the load generators' merged
//! histograms and counters, and the servers' exit, with the problems that fail the row.

use super::step::Measured;
use super::SATURATED_BUSY;
use crate::measure::audit::{Audit, StepFacts};
use crate::plan::{Plan, Point};
use crate::protocol::histograms::percentile_us;
use crate::protocol::LATE_SEND;
use crate::results::{RowStatus, SummaryRow};
use crate::scenario::Model;

pub(super) fn base_row(plan: &Plan, subject: usize, p: &Point, trial: usize) -> SummaryRow {
    let s = &plan.scenario;
    let mut row = SummaryRow {
        scenario: s.name.clone(),
        runtime: plan.subjects[subject].name().to_string(),
        network: if plan.limits[subject].needs_tap {
            "tap".into()
        } else {
            "kernel".into()
        },
        trial: Some(trial as u32),
        trials: 1,
        model: match s.load.model {
            Model::Closed => "closed".into(),
            Model::Open => "open".into(),
        },
        workload_parts: crate::scenario::describe_workload(&plan.workload(p)),
        http_stack: match plan.workload(p).protocol {
            runbench_plugin_abi::Protocol::Http1 => plan.limits[subject].http_stack.into(),
            runbench_plugin_abi::Protocol::Echo => String::new(),
        },
        server_processes: plan.server_processes,
        server_processes_auto: s.server.processes_auto,
        duration_s: s.load.duration.as_secs_f64(),
        send_window_us: (s.load.model == Model::Open)
            .then_some(s.load.send_window.as_secs_f64() * 1e6),
        shutdown_at_s: s.shutdown.at.map(|d| d.as_secs_f64()),
        // A search's probes differ by rate: each names its point.
        point: if plan.points.len() > 1 || s.search.is_some() {
            p.label()
        } else {
            String::new()
        },
        ..Default::default()
    };
    row.set_point(p);
    row
}

pub(super) fn to_row(
    base: SummaryRow,
    m: &Measured,
    facts: &StepFacts,
    audit: &Audit,
) -> SummaryRow {
    let (load, servers) = (&m.load, &m.servers);
    let c = &load.counters;
    let open = base.model == "open";
    let stop_during_load = base.shutdown_at_s.is_some();
    let problems = crate::judge::problems(
        &base,
        &m.load.counters,
        m.partial.as_deref(),
        m.servers.failure.as_deref(),
    );
    let window_cpu = m.window.proc_cpu().filter(|_| servers.resources);
    let send_lag_p99 = percentile_us(&load.histograms.send_lag, 99.0);
    let cpu_busy = load.busy.cpu_busy(facts.load_cpus);
    let saturated = load.busy.wall > SATURATED_BUSY
        || cpu_busy > SATURATED_BUSY
        || (open && send_lag_p99 > LATE_SEND.as_secs_f64() * 1e6);
    let h = &load.histograms;
    SummaryRow {
        runtime_version: m.version.clone(),
        status: if problems.is_empty() {
            RowStatus::Ok
        } else {
            RowStatus::Failed
        },
        error: problems.join("; "),
        connections_ok: Some(c.connections_ok),
        requests: Some(c.requests),
        requests_per_sec: Some(load.requests_per_sec()),
        p50_us: Some(load.percentile_us(50.0)),
        p90_us: Some(load.percentile_us(90.0)),
        p99_us: Some(load.percentile_us(99.0)),
        p999_us: Some(load.percentile_us(99.9)),
        max_us: Some(load.percentile_us(100.0)),
        mean_us: Some(if h.latency.is_empty() {
            0.0
        } else {
            h.latency.mean() / 1000.0
        }),
        p50_uncorrected_us: open.then(|| percentile_us(&h.uncorrected, 50.0)),
        p99_uncorrected_us: open.then(|| percentile_us(&h.uncorrected, 99.0)),
        p99_after_lag_us: open.then(|| percentile_us(&h.after_lag, 99.0)),
        sent: Some(c.sent),
        scheduled: open.then_some(c.scheduled),
        sent_late: open.then_some(c.sent_late),
        not_sent: open.then_some(c.not_sent),
        unanswered: open.then_some(c.unanswered),
        send_lag_p99_us: open.then_some(send_lag_p99),
        send_lag_p999_us: open.then(|| percentile_us(&h.send_lag, 99.9)),
        errors: Some(c.errors.total()),
        error_kinds: c.errors.kinds(),
        mismatched_bytes: Some(c.mismatched_bytes),
        server_cpu_user_s: window_cpu.map(|(u, _)| u),
        server_cpu_sys_s: window_cpu.map(|(_, s)| s),
        server_cpu_us_per_request: window_cpu
            .filter(|_| c.requests > 0)
            .map(|(u, s)| (u + s) * 1e6 / c.requests as f64),
        server_cpu_life_user_s: servers.resources.then_some(servers.cpu_user_s),
        server_cpu_life_sys_s: servers.resources.then_some(servers.cpu_sys_s),
        server_echoes_window: audit.server_echoes,
        server_rss_peak_bytes: servers.resources.then_some(servers.rss_peak_bytes),
        idle_connections: m.idle.map(|(n, _)| n),
        server_rss_per_idle_connection_bytes: m.idle.map(|(_, per)| per),
        server_busiest_thread_share: m.window.spread.map(|s| s.busiest_share),
        server_busy_threads: m.window.spread.map(|s| s.busy_threads),
        server_timer_late_us: m.window.timer_late_us(),
        hot_share: facts
            .skew
            .filter(|_| c.requests > 0)
            .map(|_| c.hot_requests as f64 / c.requests as f64),
        shutdown_ms: Some(servers.shutdown.as_secs_f64() * 1000.0),
        drain_ms: servers.drain_ms,
        shutdown_overrun: Some(servers.overran),
        in_flight_at_signal: stop_during_load.then_some(c.in_flight_at_signal),
        completed_after_signal: stop_during_load.then_some(c.completed_after_signal),
        cut_after_signal: stop_during_load.then_some(c.cut_after_signal),
        server_accepted: Some(servers.counts.accepted),
        server_closed_clean: Some(servers.counts.closed_clean),
        server_peer_closed: Some(servers.counts.peer_closed),
        server_cut: Some(servers.counts.cut),
        server_io_errors: Some(servers.counts.io_errors),
        server_max_concurrent: Some(servers.counts.max_concurrent),
        reconnects: Some(c.reconnects),
        connect_p50_us: (!h.connect.is_empty()).then(|| percentile_us(&h.connect, 50.0)),
        connect_p99_us: (!h.connect.is_empty()).then(|| percentile_us(&h.connect, 99.0)),
        loadgen_busy: Some(load.busy.wall),
        loadgen_cpu_busy: Some(cpu_busy),
        loadgen_cpu_wait: Some(load.busy.cpu_wait),
        loadgen_saturated: Some(saturated),
        loadgen_cpu_s: Some(load.busy.cpu_s),
        loadgen_sends_per_batch: (open && c.send_batches > 0)
            .then(|| c.scheduled as f64 / c.send_batches as f64),
        load_processes: Some(facts.load_processes as u64),
        load_threads: Some(facts.load_threads as u64),
        reads: Some(c.reads),
        reads_unstamped: Some(c.reads_unstamped),
        reads_stamp_rejected: Some(c.reads_stamp_rejected),
        clock_steps: Some(c.clock_steps),
        latency_clamped: Some(c.latency_clamped),
        loopback_floor_us: (c.loopback_floor_ns > 0).then(|| c.loopback_floor_ns as f64 / 1000.0),
        latency_below_floor: Some(c.latency_below_floor),
        audit: audit.column(),
        ..base
    }
}
