//! Which rows a per-runtime chart shows, in which order, under which labels, and the subtitle
//! that says under what load they were measured.

use crate::results::read::{cmp_point, Param, RunData, Summary};

/// The rows of one chart: one per runtime at one load point.
pub struct View<'a> {
    pub rows: Vec<&'a Summary>,
    /// For sweeps: the point shown (the heaviest one), e.g. "1000 connections".
    pub focus: Option<String>,
}

/// The rows compared by the per-runtime charts (throughput, latency, resources): every row, or
/// in a sweep the rows at its largest point, which the title then names. Ordered by requests/s,
/// fastest first; runtimes that produced no number last.
pub fn per_runtime(data: &RunData) -> View<'_> {
    let swept = data.swept();
    let mut rows: Vec<&Summary> = data.summary.iter().collect();
    let mut focus = None;
    if !swept.is_empty() {
        let top = rows
            .iter()
            .map(|r| r.point(&swept))
            .max_by(|a, b| cmp_point(a, b))
            .unwrap_or_default();
        rows.retain(|r| r.point(&swept) == top);
        let parts: Vec<String> = swept
            .iter()
            .zip(&top)
            .filter_map(|(p, v)| v.map(|v| p.describe(v)))
            .collect();
        focus = Some(parts.join(", "));
    }
    rows.sort_by(|a, b| {
        (a.row.reading_order(&b.row))
            .then_with(|| a.runtime().cmp(b.runtime()))
            .then_with(|| a.row.trial.cmp(&b.row.trial))
    });
    View { rows, focus }
}

/// Runtimes in the order the per-runtime charts show them (fastest first), then any others in
/// run order: every legend lists runtimes in this order.
pub fn runtime_order(data: &RunData) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let view = per_runtime(data);
    for r in view
        .rows
        .iter()
        .map(|r| r.runtime().to_string())
        .chain(data.runtimes())
    {
        if !out.contains(&r) {
            out.push(r);
        }
    }
    out
}

impl View<'_> {
    /// A row's name on an axis or legend: the runtime, plus the trial when one runtime has
    /// several rows (older summaries held one row per trial).
    pub fn label(&self, row: &Summary) -> String {
        let n = self
            .rows
            .iter()
            .filter(|r| r.runtime() == row.runtime())
            .count();
        if n > 1 {
            match row.row.trial {
                Some(t) => format!("{} (trial {t})", row.runtime()),
                None => row.runtime().to_string(),
            }
        } else {
            row.runtime().to_string()
        }
    }
}

/// "smoke · 100 connections · 64 B payload · 1 server thread · 3 s measured after 1 s warmup":
/// the parameters that all `rows` share, leaving out those in `skip` (the x axis of a sweep).
pub fn subtitle(data: &RunData, rows: &[&Summary], skip: &[Param], focus: Option<&str>) -> String {
    format!(
        "{} · {}",
        data.meta.scenario,
        load_line(data, rows, skip, focus)
    )
}

/// The load part of [`subtitle`]: "100 connections · 64 B payload · ...".
pub fn load_line(data: &RunData, rows: &[&Summary], skip: &[Param], focus: Option<&str>) -> String {
    let mut parts = Vec::new();
    let same = |f: &dyn Fn(&Summary) -> String| -> Option<String> {
        let first = f(rows.first()?);
        rows.iter().all(|r| f(r) == first).then_some(first)
    };
    let swept = data.swept();
    for p in [
        Param::Connections,
        Param::PayloadBytes,
        Param::ServerThreads,
    ] {
        if skip.contains(&p) || (focus.is_some() && swept.contains(&p)) {
            continue;
        }
        match same(&|r| r.param(p).map(|v| p.describe(v)).unwrap_or_default()) {
            Some(s) if !s.is_empty() => parts.push(s),
            _ if swept.contains(&p) => parts.push(format!("{} swept", p.name())),
            _ => {}
        }
    }
    if let Some(s) = same(&|r| r.row.server_processes.to_string()) {
        if s != "1" {
            parts.push(format!("{s} server processes"));
        }
    }
    if let Some(m) = same(&|r| r.row.model.clone()) {
        if !m.is_empty() {
            parts.push(format!("{m} model"));
        }
    }
    if let Some(d) = same(&|r| format!("{}", r.row.duration_s)) {
        let warm = data
            .meta
            .warmup_s
            .filter(|&w| w > 0.0)
            .map(|w| format!(" after {w} s warmup"))
            .unwrap_or_default();
        parts.push(format!("{d} s measured{warm}"));
    }
    if let Some(t) = same(&|r| r.row.trials.to_string()) {
        if !t.is_empty() && t != "1" && t != "0" {
            parts.push(format!("median of {t} trials"));
        }
    }
    if let Some(f) = focus {
        parts.push(format!("at {f} (largest point of the sweep)"));
    }
    parts.join(" · ")
}
