//! `trend-<scenario>-<metric>.png`: one line per runtime (and scenario point) over the nights
//! measured on this machine, the median of each night's trials with a bar from its lowest to
//! its highest trial, and a red ring where that night's verdict was a regression.
//!
//! Nights are evenly spaced (one step per night, not per calendar day): a skipped night should
//! not look like a slope, and several runs in one day stay readable.

use super::history::{Fingerprint, HistoryRow};
use super::metric::{Better, Metric};
use super::verdict::Outcome;
use crate::stats;
use plotters::coord::ranged1d::{IntoSegmentedCoord, SegmentValue};
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;

const SIZE: (u32, u32) = (1000, 560);
/// At most this many nights are drawn (the newest ones).
pub const MAX_NIGHTS: usize = 60;
const REGRESSION: RGBColor = RGBColor(214, 39, 40);
const FONT_CAPTION: u32 = 22;
const FONT_LABEL: u32 = 15;
const FONT_SMALL: u32 = 14;
const FOOTER_HEIGHT: u32 = 46;

/// The font family of these plots: the embedded DejaVu Sans that every chart registers.
pub fn plot_font() -> &'static str {
    // A font that fails to register falls back to plotters' default, which still draws.
    let _ = crate::plot::style::register_font();
    crate::plot::style::FONT
}

/// One line of a trend plot.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub name: String,
    /// (night index, median, lowest trial, highest trial)
    pub points: Vec<(usize, f64, f64, f64)>,
    /// Night indices whose verdict for this series was a regression.
    pub regressions: Vec<usize>,
}

/// What one plot shows, prepared from the history (pure, so it is tested without drawing).
#[derive(Clone, Debug)]
pub struct Trend {
    pub scenario: String,
    pub metric: Metric,
    pub machine: Fingerprint,
    /// Night timestamps, oldest first; x = index into this.
    pub nights: Vec<String>,
    pub series: Vec<Series>,
}

pub fn file_name(scenario: &str, metric: Metric) -> String {
    format!("trend-{scenario}-{}.png", metric.column())
}

/// Nights whose verdict was a regression: night timestamps per (runtime, point key, metric),
/// as each night judged itself (its stored verdicts, [`super::history::VerdictRow`]).
pub type Regressions = BTreeMap<(String, String, Metric), Vec<String>>;

/// [`Regressions`] over the newest [`MAX_NIGHTS`] nights on `machine`, from the stored verdicts
/// (nights recorded before verdicts were stored have no marks).
pub fn regressions(
    history: &[HistoryRow],
    verdicts: &[super::history::VerdictRow],
    machine: &Fingerprint,
) -> Regressions {
    let nights = nights_on(history, machine);
    let mut out = Regressions::new();
    for v in verdicts {
        let Some(metric) = Metric::ALL.into_iter().find(|m| m.column() == v.metric) else {
            continue;
        };
        if v.outcome == Outcome::Regressed.as_str() && nights.contains(&v.timestamp) {
            out.entry((v.runtime.clone(), v.point.clone(), metric))
                .or_default()
                .push(v.timestamp.clone());
        }
    }
    out
}

/// The newest [`MAX_NIGHTS`] night timestamps on `machine`, oldest first.
fn nights_on(history: &[HistoryRow], machine: &Fingerprint) -> Vec<String> {
    let mut nights: Vec<String> = history
        .iter()
        .filter(|r| &r.fingerprint() == machine)
        .map(|r| r.timestamp.clone())
        .collect();
    nights.sort();
    nights.dedup();
    nights.split_off(nights.len().saturating_sub(MAX_NIGHTS))
}

/// The trend of `metric` over the newest [`MAX_NIGHTS`] nights on `machine`.
pub fn prepare(
    scenario: &str,
    history: &[HistoryRow],
    machine: &Fingerprint,
    metric: Metric,
    regressed: &Regressions,
) -> Trend {
    let nights = nights_on(history, machine);
    let rows: Vec<&HistoryRow> = history
        .iter()
        .filter(|r| &r.fingerprint() == machine && nights.contains(&r.timestamp))
        .collect();
    let points: Vec<String> = {
        let mut p: Vec<String> = rows.iter().map(|r| r.point().key()).collect();
        p.sort();
        p.dedup();
        p
    };
    let mut groups: BTreeMap<(String, String), (String, Vec<&HistoryRow>)> = BTreeMap::new();
    for r in &rows {
        let name = if points.len() > 1 {
            format!("{} · {}", r.runtime, r.point().label())
        } else {
            r.runtime.clone()
        };
        groups
            .entry((r.runtime.clone(), r.point().key()))
            .or_insert_with(|| (name, Vec::new()))
            .1
            .push(r);
    }
    let series = groups
        .into_iter()
        .filter_map(|(key, (name, rows))| {
            let points: Vec<(usize, f64, f64, f64)> = nights
                .iter()
                .enumerate()
                .filter_map(|(i, n)| {
                    let mut v: Vec<f64> = rows
                        .iter()
                        .filter(|r| &r.timestamp == n)
                        .filter_map(|r| metric.get(r))
                        .map(|x| x * metric.display_scale())
                        .collect();
                    v.sort_by(f64::total_cmp);
                    (!v.is_empty()).then(|| (i, stats::median(&v), v[0], v[v.len() - 1]))
                })
                .collect();
            (!points.is_empty()).then(|| Series {
                name,
                regressions: regressed
                    .get(&(key.0, key.1, metric))
                    .map(|ns| {
                        ns.iter()
                            .filter_map(|n| nights.iter().position(|x| x == n))
                            .collect()
                    })
                    .unwrap_or_default(),
                points,
            })
        })
        .collect();
    Trend {
        scenario: scenario.to_string(),
        metric,
        machine: machine.clone(),
        nights,
        series,
    }
}

/// `2025-01-27T07:40:12Z` -> `01-27 07:40`, with seconds when two nights share a minute
/// (several runs in a row, as when trying the nightly out).
fn night_labels(nights: &[String]) -> Vec<String> {
    let cut = |end: usize| -> Vec<String> {
        nights
            .iter()
            .map(|ts| match (ts.get(5..10), ts.get(11..end)) {
                (Some(d), Some(t)) => format!("{d} {t}"),
                _ => ts.clone(),
            })
            .collect()
    };
    let minutes = cut(16);
    let mut unique = minutes.clone();
    unique.sort();
    unique.dedup();
    if unique.len() == minutes.len() {
        minutes
    } else {
        cut(19)
    }
}

/// From zero to a little above the highest trial: a zoomed axis makes a 2% wobble look like a
/// cliff, and whether a change matters is the verdict's job (the red rings), not the eye's.
fn y_range(trend: &Trend) -> (f64, f64) {
    let hi = trend
        .series
        .iter()
        .flat_map(|s| s.points.iter())
        .fold(f64::NEG_INFINITY, |hi, p| hi.max(p.3));
    if !hi.is_finite() || hi <= 0.0 {
        return (0.0, 1.0);
    }
    (0.0, hi * 1.12)
}

/// Draws the chart in memory and writes it atomically, like a run's charts, so a full disk
/// leaves no half-written PNG (and fails with the [`crate::error::WriteError`]).
pub fn draw(trend: &Trend, path: &Path) -> anyhow::Result<()> {
    let png = crate::plot::render_png(SIZE, |root| draw_on(trend, root))
        .map_err(|e| anyhow::anyhow!("drawing {}: {e:#}", path.display()))?;
    crate::results::write_atomic(path, &png)?;
    Ok(())
}

fn draw_on(trend: &Trend, root: &crate::plot::Area) -> anyhow::Result<()> {
    let font = plot_font();
    let err = |e: &dyn std::fmt::Debug| anyhow::anyhow!("{e:?}");
    let (main, footer) = root.split_vertically(SIZE.1 - FOOTER_HEIGHT);
    let grey = (font, FONT_SMALL).into_font().color(&RGBColor(80, 80, 80));
    footer
        .draw(&Text::new(
            format!("machine: {}", trend.machine),
            (14, 4),
            grey.clone(),
        ))
        .map_err(|e| err(&e))?;
    footer
        .draw(&Text::new(
            "dot: median of the night's trials   bar: lowest to highest trial   \
             red ring: regression verdict that night",
            (14, 4 + FONT_SMALL as i32 + 6),
            grey,
        ))
        .map_err(|e| err(&e))?;

    let n = trend.nights.len().max(1);
    let (y_lo, y_hi) = y_range(trend);
    let mut chart = ChartBuilder::on(&main)
        .caption(
            format!(
                "{} — {}, {} is better",
                trend.scenario,
                trend.metric.label(),
                match trend.metric.better() {
                    Better::Higher => "higher",
                    Better::Lower => "lower",
                }
            ),
            (font, FONT_CAPTION),
        )
        .margin(14)
        .x_label_area_size(46)
        .y_label_area_size(78)
        // Integer ranges are inclusive in plotters: 0..n-1 gives exactly n segments.
        .build_cartesian_2d((0..n - 1).into_segmented(), y_lo..y_hi)
        .map_err(|e| err(&e))?;
    let labels = night_labels(&trend.nights);
    chart
        .configure_mesh()
        .disable_x_mesh()
        .bold_line_style(RGBColor(225, 225, 225))
        .light_line_style(WHITE)
        .x_labels(n.min(12))
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .y_labels(8)
        .y_label_formatter(&|v| trend.metric.unit().label(*v))
        .x_desc("night (UTC, month-day time)")
        .y_desc(trend.metric.label())
        .label_style((font, FONT_LABEL))
        .axis_desc_style((font, FONT_LABEL))
        .draw()
        .map_err(|e| err(&e))?;

    let x = |i: usize| SegmentValue::CenterOf(i);
    for s in &trend.series {
        // The same colour per runtime as in every other chart.
        let color = crate::plot::palette::colour(&s.name);
        for &(i, _, lo, hi) in &s.points {
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(x(i), lo), (x(i), hi)],
                    color.mix(0.45).stroke_width(3),
                )))
                .map_err(|e| err(&e))?;
        }
        chart
            .draw_series(LineSeries::new(
                s.points.iter().map(|&(i, m, _, _)| (x(i), m)),
                color.stroke_width(2),
            ))
            .map_err(|e| err(&e))?
            .label(s.name.clone())
            .legend(move |(lx, ly)| {
                PathElement::new(vec![(lx, ly), (lx + 20, ly)], color.stroke_width(2))
            });
        chart
            .draw_series(
                s.points
                    .iter()
                    .map(|&(i, m, _, _)| Circle::new((x(i), m), 4, color.filled())),
            )
            .map_err(|e| err(&e))?;
        chart
            .draw_series(
                s.points
                    .iter()
                    .filter(|p| s.regressions.contains(&p.0))
                    .map(|&(i, m, _, _)| Circle::new((x(i), m), 10, REGRESSION.stroke_width(3))),
            )
            .map_err(|e| err(&e))?;
    }
    if trend.series.iter().any(|s| !s.regressions.is_empty()) {
        // An empty series only to put the red ring in the legend.
        chart
            .draw_series(std::iter::empty::<Circle<(SegmentValue<usize>, f64), i32>>())
            .map_err(|e| err(&e))?
            .label("regression verdict")
            .legend(|(lx, ly)| Circle::new((lx + 10, ly), 7, REGRESSION.stroke_width(3)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(180, 180, 180))
        .label_font((font, FONT_LABEL))
        .draw()
        .map_err(|e| err(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nightly::history::tests::row;

    #[test]
    fn prepare_gives_one_point_per_night_with_trial_range_and_marks_regressions() {
        let mut h = Vec::new();
        for n in 0..9 {
            let level = if n == 8 { 40_000.0 } else { 50_000.0 };
            for t in 0..5 {
                h.push(row(
                    &format!("2025-01-0{}T03:00:00Z", n + 1),
                    "tokio",
                    t,
                    level + 100.0 * t as f64,
                ));
            }
        }
        let machine = h[0].fingerprint();
        // Each night's verdicts as the nightly stores them.
        let settings = crate::nightly::verdict::Settings::default();
        let mut stored = Vec::new();
        for n in 0..9 {
            let night = format!("2025-01-0{}T03:00:00Z", n + 1);
            let past: Vec<HistoryRow> =
                h.iter().filter(|r| r.timestamp <= night).cloned().collect();
            for v in crate::nightly::verdict::nightly_verdicts(&past, &night, &settings) {
                stored.push(crate::nightly::history::VerdictRow {
                    timestamp: night.clone(),
                    runtime: v.runtime.clone(),
                    point: v.point.key(),
                    metric: v.metric.column().into(),
                    outcome: v.outcome().as_str().into(),
                });
            }
        }
        let marks = regressions(&h, &stored, &machine);
        let t = prepare("smoke", &h, &machine, Metric::RequestsPerSec, &marks);
        assert_eq!(t.nights.len(), 9);
        assert_eq!(t.series.len(), 1);
        let s = &t.series[0];
        assert_eq!(s.name, "tokio");
        assert_eq!(s.points.len(), 9);
        assert_eq!(s.points[0], (0, 50_200.0, 50_000.0, 50_400.0));
        assert_eq!(s.regressions, vec![8]);
        // Another machine's rows are not drawn.
        let mut other = row("2025-01-10T03:00:00Z", "tokio", 0, 1.0);
        other.host_cpu = "Other".into();
        h.push(other);
        let t = prepare("smoke", &h, &machine, Metric::RequestsPerSec, &marks);
        assert_eq!(t.nights.len(), 9);
        // Only the metric that regressed is marked.
        let t = prepare("smoke", &h, &machine, Metric::P99Us, &marks);
        assert!(t.series[0].regressions.is_empty());
    }

    #[test]
    fn draws_a_png() {
        let h: Vec<HistoryRow> = (0..3)
            .flat_map(|n| {
                (0..3).map(move |t| {
                    row(
                        &format!("2025-01-0{}T03:00:00Z", n + 1),
                        "tokio",
                        t,
                        1000.0 + t as f64,
                    )
                })
            })
            .collect();
        let machine = h[0].fingerprint();
        let t = prepare("smoke", &h, &machine, Metric::P99Us, &Regressions::new());
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(file_name("smoke", Metric::P99Us));
        draw(&t, &p).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
    }

    #[test]
    fn night_labels_show_seconds_only_when_needed() {
        let n = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            night_labels(&n(&["2025-01-27T03:00:05Z", "2025-01-28T03:00:09Z"])),
            ["01-27 03:00", "01-28 03:00"]
        );
        assert_eq!(
            night_labels(&n(&["2025-01-27T03:00:05Z", "2025-01-27T03:00:40Z"])),
            ["01-27 03:00:05", "01-27 03:00:40"]
        );
    }

    #[test]
    fn values_read_as_the_terminal_writes_them() {
        assert_eq!(Metric::RequestsPerSec.show(52_100.4), "52,100");
        assert_eq!(Metric::P99Us.show(5_484.5), "5.48 ms");
        assert_eq!(Metric::ServerCpuUsPerRequest.show(12.34), "12.3 µs");
        assert_eq!(
            Metric::ServerRssPeakBytes.show(1.5 * 1024.0 * 1024.0),
            "1.50"
        );
        assert_eq!(Metric::P99Us.unit().label(2_000_000.0), "2 s");
    }
}
