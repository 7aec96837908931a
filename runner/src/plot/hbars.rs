//! Horizontal bars, one per runtime, names on the left: long runtime names never collide, and a
//! bar's length is its value (the axis starts at zero).

use super::scale::{self, Axis, Ticked};
use super::{style, Area};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Bar thickness as a fraction of a row, and at most this many pixels (a lone bar stays a bar).
const BAR_FRACTION: f64 = 0.62;
const BAR_MAX_PX: f64 = 56.0;
/// Half the height of a CI whisker, pixels.
const WHISKER_PX: i32 = 7;
const DOT_RADIUS: u32 = 3;
/// Gap between a bar's end and its value label, pixels.
const LABEL_GAP: i32 = 12;
/// Height of the strip above the bars that holds the reference line's label, pixels.
const REFERENCE_STRIP_PX: f64 = 40.0;

pub struct Bar {
    pub label: String,
    pub colour: RGBColor,
    pub value: Option<f64>,
    /// Confidence interval (low, high), drawn as an error bar.
    pub ci: Option<(f64, f64)>,
    /// Individual trials, drawn as dots on the bar.
    pub dots: Vec<f64>,
    /// Shown right of the bar (or at zero when there is no bar).
    pub text: String,
    pub text_colour: RGBColor,
}

/// A vertical dashed line across all bars, labelled at the top (the epoll limit).
pub struct Reference {
    pub value: f64,
    pub label: String,
}

pub struct Panel<'a> {
    pub bars: &'a [Bar],
    pub x_desc: &'a str,
    /// What the bars measure, for the axis labels.
    pub unit: scale::Unit,
    pub reference: Option<Reference>,
}

pub fn draw(area: &Area, panel: &Panel) -> anyhow::Result<()> {
    let n = panel.bars.len();
    let label_w = panel
        .bars
        .iter()
        .map(|b| {
            area.estimate_text_size(&b.label, &style::tick())
                .map(|s| s.0)
        })
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .max()
        .unwrap_or(0)
        + 24;
    let (w, h) = area.dim_in_pixel();
    let plot_w = w.saturating_sub(label_w).max(100) as f64;
    // Leave room right of the longest bar for its label.
    let mut need: f64 = 0.0;
    for b in panel.bars {
        let end = bar_end(b);
        let text_w = area
            .estimate_text_size(&b.text, &style::value_label(&style::TEXT))?
            .0;
        if end > 0.0 {
            let frac = 1.0 - (text_w as f64 + LABEL_GAP as f64 + 6.0) / plot_w;
            need = need.max(end / frac.max(0.3));
        }
    }
    if let Some(r) = &panel.reference {
        need = need.max(r.value);
    }
    let x = Axis::linear_from_zero(need);
    let strip = if panel.reference.is_some() {
        let bars_px = (f64::from(h) - 64.0 - REFERENCE_STRIP_PX).max(50.0);
        n as f64 * REFERENCE_STRIP_PX / bars_px
    } else {
        0.0
    };
    let top = n as f64 + strip;
    let centres: Vec<f64> = (0..n).map(|i| centre(n, i)).collect();
    let labels: Vec<String> = panel.bars.iter().map(|b| b.label.clone()).collect();
    let label_of = |y: &f64| {
        (0..n)
            .find(|&i| (centre(n, i) - y).abs() < 1e-6)
            .map(|i| labels[i].clone())
            .unwrap_or_default()
    };
    let x_fmt = |v: &f64| panel.unit.label(*v);
    let mut chart = ChartBuilder::on(area)
        .x_label_area_size(64)
        .y_label_area_size(label_w)
        .build_cartesian_2d(x.coord(), Ticked::new(0.0..top.max(1.0), centres))?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .bold_line_style(style::GRID)
        .x_desc(panel.x_desc)
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&label_of)
        .label_style(style::tick())
        .axis_desc_style(style::axis_desc())
        .draw()?;

    // The reference first, so the bars' value labels are drawn over it.
    if let Some(r) = &panel.reference {
        let line = style::TEXT.stroke_width(2);
        chart.draw_series(DashedLineSeries::new(
            vec![(r.value, 0.0), (r.value, n as f64 + strip * 0.3)],
            10,
            6,
            line,
        ))?;
        let label_style =
            style::text(style::VALUE_PX, &style::TEXT).pos(Pos::new(HPos::Right, VPos::Center));
        chart.draw_series(std::iter::once(
            EmptyElement::at((r.value, n as f64 + strip * 0.6))
                + Text::new(r.label.clone(), (-LABEL_GAP, 0), label_style),
        ))?;
    }
    let row_px = f64::from(chart.plotting_area().dim_in_pixel().1) / top.max(1.0);
    let half = BAR_FRACTION.min(BAR_MAX_PX / row_px) / 2.0;
    for (i, b) in panel.bars.iter().enumerate() {
        let y = centre(n, i);
        if let Some(v) = b.value {
            chart.draw_series(std::iter::once(Rectangle::new(
                [(0.0, y - half), (v, y + half)],
                b.colour.filled(),
            )))?;
            if let Some((lo, hi)) = b.ci {
                let stroke = style::TEXT.stroke_width(2);
                let whisker = |x: f64| {
                    EmptyElement::at((x, y))
                        + PathElement::new(vec![(0, -WHISKER_PX), (0, WHISKER_PX)], stroke)
                };
                chart.draw_series([whisker(lo), whisker(hi)])?;
                chart.draw_series(std::iter::once(PathElement::new(
                    vec![(lo, y), (hi, y)],
                    stroke,
                )))?;
            }
            chart.draw_series(
                b.dots
                    .iter()
                    .map(|&d| Circle::new((d, y), DOT_RADIUS, style::TEXT.filled())),
            )?;
        }
        // On a white box, so a label crossing the reference line or a grid line stays legible.
        let label = style::value_label(&b.text_colour);
        let (tw, th) = area.estimate_text_size(&b.text, &label)?;
        let (tw, th) = (tw as i32, th as i32);
        chart.draw_series(std::iter::once(
            EmptyElement::at((bar_end(b), y))
                + Rectangle::new(
                    [
                        (LABEL_GAP - 3, -th / 2 - 3),
                        (LABEL_GAP + tw + 3, th / 2 + 3),
                    ],
                    WHITE.filled(),
                )
                + Text::new(b.text.clone(), (LABEL_GAP, 0), label),
        ))?;
    }
    Ok(())
}

/// Row `i` (0 = top) of `n`, in data coordinates.
fn centre(n: usize, i: usize) -> f64 {
    n as f64 - i as f64 - 0.5
}

fn bar_end(b: &Bar) -> f64 {
    let mut end = b.value.unwrap_or(0.0);
    if let Some((_, hi)) = b.ci {
        end = end.max(hi);
    }
    b.dots.iter().copied().fold(end, f64::max)
}
