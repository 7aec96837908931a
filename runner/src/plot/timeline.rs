//! timeline.png (only when the run recorded timeline.csv): requests/s and p99 latency per
//! interval for every runtime, on one time axis: the warmup shaded, the stop signal marked when
//! it came during the load.

use super::scale::{Axis, Unit};
use super::{palette, style, Area};
use crate::results::read::{RunData, Summary, TimelineRow};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

pub const SIZE: (u32, u32) = (1280, 940);
/// Vertical space between the two panels, pixels.
const PANEL_GAP: u32 = 16;

/// One runtime's intervals from one run of it (a trial, or a sweep point).
struct Series {
    runtime: String,
    rate: Vec<(f64, f64)>,
    p99: Vec<(f64, f64)>,
}

/// What both panels mark on the time axis.
struct Marks {
    t_end: f64,
    warmup_s: Option<f64>,
    shutdown_at_s: Option<f64>,
}

pub fn draw(root: &Area, data: &RunData) -> anyhow::Result<()> {
    let rows: Vec<&Summary> = data.summary.iter().collect();
    let subtitle = super::select::subtitle(data, &rows, &[], None);
    let area = style::header(
        root,
        "Over time: requests/s and p99 per interval",
        &subtitle,
    )?;
    let series = build(data.timeline.as_deref().unwrap_or_default());
    if series.is_empty() {
        return style::no_data(&area, "timeline.csv has no intervals");
    }
    let mut entries: Vec<(String, RGBColor)> = Vec::new();
    for s in &series {
        if !entries.iter().any(|(r, _)| *r == s.runtime) {
            entries.push((s.runtime.clone(), palette::colour(&s.runtime)));
        }
    }
    let order = super::select::runtime_order(data);
    entries.sort_by_key(|(r, _)| order.iter().position(|o| o == r).unwrap_or(usize::MAX));
    let labels: Vec<String> = entries.iter().map(|e| e.0.clone()).collect();
    let (w, h) = area.dim_in_pixel();
    let (plots, legend_area) = area.split_horizontally(w - style::legend_width(&area, &labels)?);
    style::legend_column(&legend_area, &entries, &[])?;
    let (top, bottom) = plots.split_vertically(h / 2 - 20);
    let bottom = bottom.margin(PANEL_GAP, 0, 0, 0);
    let t_end = series
        .iter()
        .flat_map(|s| s.rate.iter().chain(&s.p99).map(|p| p.0))
        .chain(data.meta.shutdown_at_s)
        .fold(0.0, f64::max);
    let marks = Marks {
        t_end: if t_end > 0.0 { t_end } else { 1.0 },
        warmup_s: data.meta.warmup_s.filter(|&w| w > 0.0),
        shutdown_at_s: data.meta.shutdown_at_s,
    };
    let rate = Axis::linear_from_zero(
        series
            .iter()
            .flat_map(|s| s.rate.iter().map(|p| p.1))
            .fold(0.0, f64::max),
    );
    let p99 = Axis::for_values(series.iter().flat_map(|s| s.p99.iter().map(|p| p.1)), true);
    let rate_lines: Vec<_> = series.iter().map(|s| (&s.runtime, &s.rate)).collect();
    let p99_lines: Vec<_> = series.iter().map(|s| (&s.runtime, &s.p99)).collect();
    let rate_axis = (&rate, Unit::Count);
    panel(
        &top,
        &rate_lines,
        rate_axis,
        &marks,
        "requests/s",
        None,
        true,
    )?;
    panel(
        &bottom,
        &p99_lines,
        (&p99, Unit::Micros),
        &marks,
        if p99.log {
            "p99 latency (log scale)"
        } else {
            "p99 latency"
        },
        Some("time since load start"),
        false,
    )
}

/// Groups intervals by runtime and trial in file order; a time that goes back starts another
/// series (a later sweep point of the same runtime).
fn build(rows: &[TimelineRow]) -> Vec<Series> {
    let mut keys: Vec<(String, u32)> = Vec::new();
    for r in rows {
        let k = (r.runtime.clone(), r.trial);
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    let mut out = Vec::new();
    for (runtime, trial) in keys {
        let mut prev_t = f64::INFINITY;
        for r in rows
            .iter()
            .filter(|r| r.runtime == runtime && r.trial == trial)
        {
            if r.t_s <= prev_t {
                out.push(Series {
                    runtime: runtime.clone(),
                    rate: Vec::new(),
                    p99: Vec::new(),
                });
                prev_t = 0.0;
            }
            let Some(s) = out.last_mut() else { continue };
            let span = r.t_s - prev_t;
            if span > 0.0 {
                s.rate.push((r.t_s, r.requests as f64 / span));
            }
            if let Some(p) = Some(r.p99_us).filter(|_| r.requests > 0) {
                s.p99.push((r.t_s, p));
            }
            prev_t = r.t_s;
        }
    }
    out
}

fn panel(
    area: &Area,
    lines: &[(&String, &Vec<(f64, f64)>)],
    (y, unit): (&Axis, Unit),
    marks: &Marks,
    y_desc: &str,
    x_desc: Option<&str>,
    label_marks: bool,
) -> anyhow::Result<()> {
    // Seconds on the axis, labelled as every duration is (500 ms, 2 s).
    let x_fmt = |v: &f64| Unit::Micros.label(*v * 1e6);
    let y_fmt = |v: &f64| unit.label(y.value(*v));
    let mut chart = ChartBuilder::on(area)
        .x_label_area_size(if x_desc.is_some() { 64 } else { 34 })
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..marks.t_end, y.coord())?;
    let mut mesh = chart.configure_mesh();
    mesh.bold_line_style(style::GRID)
        .light_line_style(TRANSPARENT)
        .y_desc(y_desc)
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .label_style(style::tick())
        .axis_desc_style(style::axis_desc());
    if let Some(d) = x_desc {
        mesh.x_desc(d);
    }
    mesh.draw()?;
    let (y0, y1) = (y.range.start, y.range.end);
    let label_y = y1 - (y1 - y0) * 0.04;
    if let Some(w) = marks.warmup_s {
        chart.draw_series(std::iter::once(Rectangle::new(
            [(0.0, y0), (w.min(marks.t_end), y1)],
            style::WARMUP_FILL.filled(),
        )))?;
        if label_marks {
            let centred = style::text(style::VALUE_PX, &style::MUTED)
                .pos(Pos::new(HPos::Center, VPos::Center));
            chart.draw_series(std::iter::once(Text::new(
                "warmup",
                (w.min(marks.t_end) / 2.0, label_y),
                centred,
            )))?;
        }
    }
    for (runtime, pts) in lines {
        let pts: Vec<(f64, f64)> = pts
            .iter()
            .filter_map(|&(t, v)| y.pos(v).map(|p| (t, p)))
            .collect();
        chart.draw_series(LineSeries::new(
            pts,
            palette::colour(runtime).stroke_width(style::LINE_W),
        ))?;
    }
    if let Some(s) = marks.shutdown_at_s {
        chart.draw_series(DashedLineSeries::new(
            vec![(s, y0), (s, y1)],
            10,
            6,
            style::FAILED.stroke_width(2),
        ))?;
        if label_marks {
            let right = style::text(style::VALUE_PX, &style::FAILED)
                .pos(Pos::new(HPos::Right, VPos::Center));
            chart.draw_series(std::iter::once(
                EmptyElement::at((s, label_y)) + Text::new("stop signal", (-8, 0), right),
            ))?;
        }
    }
    Ok(())
}
