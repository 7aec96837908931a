//! sweep-<param>.png: for a parameter that varies across the run's rows, requests/s and p99
//! latency against its value, one line per runtime (and per value of any other swept parameter).
//! A hollow marker is a point where the load generator was saturated (a lower bound).

use super::scale::{self, Axis, Ticked, Unit};
use super::select;
use super::{palette, style, Area};
use crate::results::read::{cmp_point, Param, RunData, Summary};
use plotters::prelude::*;

pub const SIZE: (u32, u32) = (1500, 720);
const GUTTER: u32 = 30;
const MARKER_RADIUS: u32 = 5;

struct Line<'a> {
    label: String,
    colour: RGBColor,
    rows: Vec<&'a Summary>,
}

pub fn draw(root: &Area, data: &RunData, param: Param) -> anyhow::Result<()> {
    let all: Vec<&Summary> = data.summary.iter().collect();
    let subtitle = select::subtitle(data, &all, &[param], None);
    let area = style::header(
        root,
        &format!("Sweep over {}: requests/s and p99 latency", param.name()),
        &subtitle,
    )?;
    let lines = lines(data, param);
    let xs: Vec<f64> = {
        let mut v: Vec<f64> = all.iter().filter_map(|r| r.param(param)).collect();
        v.sort_by(f64::total_cmp);
        v.dedup();
        v
    };
    if xs.is_empty() {
        return style::no_data(&area, "no row has a value for this parameter");
    }
    let x = Axis::for_values(xs.iter().copied(), xs.iter().all(|&v| v > 0.0));
    let entries: Vec<(String, RGBColor)> =
        lines.iter().map(|l| (l.label.clone(), l.colour)).collect();
    let notes: Vec<String> = if all.iter().any(|r| r.lower_bound()) {
        vec![
            "○ load generator".into(),
            "   saturated:".into(),
            "   a lower bound".into(),
        ]
    } else {
        Vec::new()
    };
    let labels: Vec<String> = entries
        .iter()
        .map(|e| e.0.clone())
        .chain(notes.clone())
        .collect();
    let (w, _) = area.dim_in_pixel();
    let (plots, legend_area) = area.split_horizontally(w - style::legend_width(&area, &labels)?);
    style::legend_column(&legend_area, &entries, &notes)?;
    let (pw, _) = plots.dim_in_pixel();
    let (left, right) = plots.split_horizontally(pw / 2);
    let right = right.margin(0, 0, GUTTER, 0);
    let rps = Axis::linear_from_zero(
        all.iter()
            .filter_map(|r| r.row.requests_per_sec)
            .fold(0.0, f64::max),
    );
    let p99 = Axis::for_values(all.iter().filter_map(|r| r.row.p99_us), true);
    let xa = XAxis {
        param,
        axis: &x,
        values: &xs,
    };
    panel(&left, &lines, &xa, (&rps, Unit::Count), "requests/s", |r| {
        r.row.requests_per_sec
    })?;
    let p99_desc = if p99.log {
        "p99 latency (log scale)"
    } else {
        "p99 latency"
    };
    panel(&right, &lines, &xa, (&p99, Unit::Micros), p99_desc, |r| {
        r.row.p99_us
    })
}

/// latency-vs-rate.png (capacity searches and rate sweeps): p50 and p99 against the offered rate,
/// one line per runtime: where the knee is.
pub fn draw_knee(root: &Area, data: &RunData) -> anyhow::Result<()> {
    let param = Param::TargetRate;
    let all: Vec<&Summary> = data.summary.iter().collect();
    let subtitle = select::subtitle(data, &all, &[param], None);
    let area = style::header(root, "Latency against offered rate", &subtitle)?;
    let lines = lines(data, param);
    let mut xs: Vec<f64> = all.iter().filter_map(|r| r.param(param)).collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    if xs.is_empty() {
        return style::no_data(&area, "no row has a target rate");
    }
    let x = Axis::for_values(xs.iter().copied(), xs.iter().all(|&v| v > 0.0));
    let entries: Vec<(String, RGBColor)> =
        lines.iter().map(|l| (l.label.clone(), l.colour)).collect();
    let (w, _) = area.dim_in_pixel();
    let labels: Vec<String> = entries.iter().map(|e| e.0.clone()).collect();
    let (plots, legend_area) = area.split_horizontally(w - style::legend_width(&area, &labels)?);
    style::legend_column(&legend_area, &entries, &[])?;
    let (pw, _) = plots.dim_in_pixel();
    let (left, right) = plots.split_horizontally(pw / 2);
    let right = right.margin(0, 0, GUTTER, 0);
    // One latency axis for both panels, so p50 and p99 compare by eye.
    let y = Axis::for_values(
        all.iter()
            .flat_map(|r| [r.row.p50_us, r.row.p99_us])
            .flatten(),
        true,
    );
    let xa = XAxis {
        param,
        axis: &x,
        values: &xs,
    };
    let desc = |p: &str| format!("{p} latency{}", if y.log { " (log scale)" } else { "" });
    let y_axis = (&y, Unit::Micros);
    panel(&left, &lines, &xa, y_axis, &desc("p50"), |r| r.row.p50_us)?;
    panel(&right, &lines, &xa, y_axis, &desc("p99"), |r| r.row.p99_us)
}

/// The swept parameter's axis, shared by both panels; ticks at the values that were run.
struct XAxis<'a> {
    param: Param,
    axis: &'a Axis,
    values: &'a [f64],
}

/// One line per runtime and combination of the other swept parameters, in run order.
fn lines(data: &RunData, param: Param) -> Vec<Line<'_>> {
    let others: Vec<Param> = data.swept().into_iter().filter(|&p| p != param).collect();
    let mut out: Vec<Line> = Vec::new();
    let mut keys: Vec<(String, Vec<Option<f64>>)> = Vec::new();
    for r in &data.summary {
        let key = (r.runtime().to_string(), r.point(&others));
        match keys.iter().position(|k| *k == key) {
            Some(i) => out[i].rows.push(r),
            None => {
                let detail: Vec<String> = others
                    .iter()
                    .zip(&key.1)
                    .filter_map(|(p, v)| v.map(|v| p.describe(v)))
                    .collect();
                out.push(Line {
                    label: if detail.is_empty() {
                        key.0.clone()
                    } else {
                        format!("{}, {}", key.0, detail.join(", "))
                    },
                    colour: palette::colour(&key.0),
                    rows: vec![r],
                });
                keys.push(key);
            }
        }
    }
    for l in &mut out {
        l.rows
            .sort_by(|a, b| cmp_point(&[a.param(param)], &[b.param(param)]));
    }
    let order = select::runtime_order(data);
    out.sort_by_key(|l| order.iter().position(|r| r == l.rows[0].runtime()));
    out
}

fn panel(
    area: &Area,
    lines: &[Line],
    xa: &XAxis,
    (y, unit): (&Axis, Unit),
    y_desc: &str,
    value: impl Fn(&Summary) -> Option<f64>,
) -> anyhow::Result<()> {
    let (x, param) = (xa.axis, xa.param);
    // At most ~12 labels across the axis, however many rates a search probed.
    let x_ticks = scale::spaced(
        xa.values.iter().filter_map(|&v| x.pos(v)).collect(),
        (x.range.end - x.range.start) / 12.0,
    );
    let x_fmt = |v: &f64| Unit::Count.label(x.value(*v));
    let y_fmt = |v: &f64| unit.label(y.value(*v));
    // A little room left and right so end markers are not cut by the axes.
    let pad = (x.range.end - x.range.start) * 0.03;
    let mut chart = ChartBuilder::on(area)
        .x_label_area_size(64)
        .y_label_area_size(80)
        .build_cartesian_2d(
            Ticked::new(x.range.start - pad..x.range.end + pad, x_ticks),
            y.coord(),
        )?;
    chart
        .configure_mesh()
        .bold_line_style(style::GRID)
        .x_desc(param.axis_label())
        .y_desc(y_desc)
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .label_style(style::tick())
        .axis_desc_style(style::axis_desc())
        .draw()?;
    for l in lines {
        let pts: Vec<((f64, f64), bool)> = l
            .rows
            .iter()
            .filter_map(|r| {
                let px = x.pos(r.param(param)?)?;
                let py = y.pos(value(r)?)?;
                Some(((px, py), r.lower_bound()))
            })
            .collect();
        chart.draw_series(LineSeries::new(
            pts.iter().map(|p| p.0),
            l.colour.stroke_width(style::LINE_W),
        ))?;
        chart.draw_series(pts.iter().map(|&(p, hollow)| {
            EmptyElement::at(p)
                + Circle::new((0, 0), MARKER_RADIUS, WHITE.filled())
                + Circle::new(
                    (0, 0),
                    MARKER_RADIUS,
                    if hollow {
                        l.colour.stroke_width(2)
                    } else {
                        l.colour.filled()
                    },
                )
        }))?;
    }
    Ok(())
}
