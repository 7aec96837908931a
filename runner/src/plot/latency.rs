//! latency.png: each runtime's latency percentile spectrum, HdrHistogram style. The x axis is
//! log10(1 / (1 - p)), so 90%, 99%, 99.9%... are equally spaced and the tail gets the room it
//! deserves; the maximum (100%) has no place on that axis and is left out.

use super::scale::{self, Axis, Ticked};
use super::{palette, select, style, Area};
use crate::results::read::{RunData, Summary};
use crate::results::PercentileRow as Percentile;
use plotters::prelude::*;

pub const SIZE: (u32, u32) = (1280, 760);
const MARKER_RADIUS: u32 = 3;

/// Percentile labels of the x axis.
const X_LABELS: &[(f64, &str)] = &[
    (0.0, "0%"),
    (50.0, "50%"),
    (90.0, "90%"),
    (99.0, "99%"),
    (99.9, "99.9%"),
    (99.99, "99.99%"),
    (99.999, "99.999%"),
    (99.9999, "99.9999%"),
];

/// The x position of percentile `p` (0 <= p < 100).
fn x_of(p: f64) -> f64 {
    -(1.0 - p / 100.0).log10()
}

struct Spectrum {
    label: String,
    colour: RGBColor,
    /// (percentile, latency µs), percentile < 100, ascending.
    points: Vec<(f64, f64)>,
}

pub fn draw(root: &Area, data: &RunData) -> anyhow::Result<()> {
    let view = select::per_runtime(data);
    let subtitle = select::subtitle(data, &view.rows, &[], view.focus.as_deref());
    let area = style::header(root, "Latency by percentile (lower is better)", &subtitle)?;
    let mut missing = Vec::new();
    let mut spectra = Vec::new();
    for r in &view.rows {
        match spectrum_of(data, r) {
            Some(points) if !points.is_empty() => spectra.push(Spectrum {
                label: if r.ok() {
                    view.label(r)
                } else {
                    format!("{} (failed)", view.label(r))
                },
                colour: palette::colour(r.runtime()),
                points,
            }),
            _ => missing.push(r.runtime().to_string()),
        }
    }
    if spectra.is_empty() {
        return style::no_data(
            &area,
            "no runtime has a latency spectrum in percentiles.csv",
        );
    }
    let max_x = spectra
        .iter()
        .flat_map(|s| s.points.iter().map(|p| x_of(p.0)))
        .fold(0.0, f64::max);
    let max_x = (max_x * 1e6).round() / 1e6;
    let ticks: Vec<(f64, &str)> = X_LABELS
        .iter()
        .map(|&(p, l)| (x_of(p), l))
        .filter(|&(x, _)| x <= max_x + 1e-6)
        .collect();
    let x_end = max_x.max(1.0);
    let y = Axis::for_values(
        spectra.iter().flat_map(|s| s.points.iter().map(|p| p.1)),
        true,
    );
    let x_label = |x: &f64| {
        ticks
            .iter()
            .find(|(t, _)| (t - x).abs() < 1e-6)
            .map(|(_, l)| l.to_string())
            .unwrap_or_default()
    };
    let y_label = |v: &f64| scale::Unit::Micros.label(y.value(*v));
    // Runtimes without a spectrum (failed before measuring) are listed under the legend.
    let notes: Vec<String> = if missing.is_empty() {
        Vec::new()
    } else {
        std::iter::once("no spectrum:".to_string())
            .chain(missing)
            .collect()
    };
    let labels: Vec<String> = spectra
        .iter()
        .map(|s| s.label.clone())
        .chain(notes.clone())
        .collect();
    let (w, _) = area.dim_in_pixel();
    let (plot_area, legend_area) =
        area.split_horizontally(w - style::legend_width(&area, &labels)?);
    let mut chart = ChartBuilder::on(&plot_area)
        .x_label_area_size(64)
        .y_label_area_size(80)
        .build_cartesian_2d(
            Ticked::new(0.0..x_end, ticks.iter().map(|t| t.0).collect()),
            y.coord(),
        )?;
    chart
        .configure_mesh()
        .bold_line_style(style::GRID)
        .x_desc("percentile (log scale of 1/(1-p))")
        .y_desc(if y.log {
            "latency (log scale)"
        } else {
            "latency"
        })
        .x_label_formatter(&x_label)
        .y_label_formatter(&y_label)
        .label_style(style::tick())
        .axis_desc_style(style::axis_desc())
        .draw()?;
    for s in &spectra {
        let pts: Vec<(f64, f64)> = s
            .points
            .iter()
            .filter_map(|&(p, v)| y.pos(v).map(|yv| (x_of(p), yv)))
            .collect();
        chart.draw_series(LineSeries::new(
            pts.clone(),
            s.colour.stroke_width(style::LINE_W),
        ))?;
        chart.draw_series(
            pts.into_iter()
                .map(|p| Circle::new(p, MARKER_RADIUS, s.colour.filled())),
        )?;
    }
    let entries: Vec<(String, RGBColor)> = spectra
        .iter()
        .map(|s| (s.label.clone(), s.colour))
        .collect();
    style::legend_column(&legend_area, &entries, &notes)?;
    Ok(())
}

/// The spectrum recorded for summary row `r`: its percentiles.csv rows, matched by the point
/// columns when the file has them, by order of appearance in a sweep without them. Several
/// trials give the median latency at each percentile.
fn spectrum_of(data: &RunData, r: &Summary) -> Option<Vec<(f64, f64)>> {
    let swept = data.swept();
    let mine: Vec<&Percentile> = data
        .percentiles
        .iter()
        .filter(|p| p.runtime == r.runtime())
        .collect();
    let rows: Vec<&Percentile> = if swept.is_empty() {
        mine
    } else if data.percentiles_have_point {
        mine.into_iter()
            .filter(|p| swept.iter().all(|&s| p.param(s) == r.param(s)))
            .collect()
    } else {
        // Without point columns, the k-th spectrum of a runtime belongs to its k-th summary row
        // (both are written in run order) — only when the counts agree.
        let segments = split_runs(&mine);
        let own: Vec<&Summary> = data
            .summary
            .iter()
            .filter(|s| s.runtime() == r.runtime())
            .collect();
        if segments.len() != own.len() {
            return None;
        }
        let k = own.iter().position(|s| std::ptr::eq(*s, r))?;
        segments.into_iter().nth(k)?
    };
    let mut by_pct: Vec<(f64, Vec<f64>)> = Vec::new();
    for p in rows {
        if p.percentile >= 100.0 || !p.latency_us.is_finite() {
            continue;
        }
        match by_pct.iter_mut().find(|(q, _)| *q == p.percentile) {
            Some((_, v)) => v.push(p.latency_us),
            None => by_pct.push((p.percentile, vec![p.latency_us])),
        }
    }
    by_pct.sort_by(|a, b| a.0.total_cmp(&b.0));
    Some(
        by_pct
            .into_iter()
            .map(|(p, mut v)| {
                v.sort_by(f64::total_cmp);
                (p, median(&v))
            })
            .collect(),
    )
}

/// Consecutive runs of ascending percentiles: one per spectrum written.
fn split_runs<'a>(rows: &[&'a Percentile]) -> Vec<Vec<&'a Percentile>> {
    let mut out: Vec<Vec<&Percentile>> = Vec::new();
    let mut last = f64::INFINITY;
    for p in rows {
        if out.is_empty() || p.percentile <= last {
            out.push(Vec::new());
        }
        last = p.percentile;
        if let Some(seg) = out.last_mut() {
            seg.push(p);
        }
    }
    out
}

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}
