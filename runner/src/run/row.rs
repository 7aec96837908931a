//! Measurements -> one summary row: the scenario's parameters, the load generators' merged
//! histograms and counters, and the servers' exit, with the problems that fail the row.

use super::SATURATED_BUSY;
use crate::measure::{percentile_us, LoadMeasurement};
use crate::plan::{Plan, Step};
use crate::results::{RowStatus, SummaryRow};
use crate::rss_trend::RssTrend;
use crate::scenario::Model;
use crate::supervise::server::ServersExit;

pub(super) fn base_row(plan: &Plan, subject: &str, step: &Step) -> SummaryRow {
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

/// Adds the RSS trend's columns; a growing RSS fails a row that was otherwise fine.
pub(super) fn with_rss_trend(mut row: SummaryRow, trend: Option<RssTrend>) -> SummaryRow {
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

pub(super) fn to_row(
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
