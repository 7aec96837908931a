//! throughput.png: requests/s per runtime, fastest first, with the CI over trials as error bars
//! and single trials as dots when the run had several, and the plain-epoll server's value as a
//! dashed line: the limit the runtimes are measured against.

use super::hbars::{self, Bar, Reference};
use super::{palette, scale, select, style, Area};
use crate::console::format::{at_least, share, thousands};
use crate::results::read::{RunData, Summary, REFERENCE_RUNTIME};
use crate::results::RowStatus;
use plotters::style::RGBColor;

pub const SIZE: (u32, u32) = (1280, 720);

pub fn draw(root: &Area, data: &RunData) -> anyhow::Result<()> {
    let view = select::per_runtime(data);
    let subtitle = select::subtitle(data, &view.rows, &[], view.focus.as_deref());
    let area = style::header(root, "Throughput: requests per second", &subtitle)?;
    if view.rows.is_empty() {
        return style::no_data(&area, "summary.csv has no rows");
    }
    // The limit line where epoll measured the server: a lower bound is no limit.
    let reference = view
        .rows
        .iter()
        .find(|r| r.runtime() == REFERENCE_RUNTIME && r.ok() && !r.lower_bound())
        .and_then(|r| r.row.requests_per_sec);
    let bars: Vec<Bar> = view
        .rows
        .iter()
        .map(|r| bar(data, &view, r, reference))
        .collect();
    hbars::draw(
        &area,
        &hbars::Panel {
            bars: &bars,
            x_desc: if view.rows.iter().any(|r| r.lower_bound()) {
                "requests per second (higher is better; ≥ = load generator saturated, a lower bound)"
            } else {
                "requests per second (higher is better)"
            },
            reference: reference.map(|v| Reference {
                value: v,
                label: format!("{REFERENCE_RUNTIME} limit: {} req/s", thousands(v)),
            }),
            unit: scale::Unit::Count,
        },
    )
}

fn bar(data: &RunData, view: &select::View, r: &Summary, reference: Option<f64>) -> Bar {
    let rps = r.row.requests_per_sec;
    let ci = match (
        r.row.requests_per_sec_ci_low,
        r.row.requests_per_sec_ci_high,
    ) {
        (Some(lo), Some(hi)) => Some((lo, hi)),
        _ => None,
    };
    let swept = data.swept();
    let dots: Vec<f64> = data
        .trials
        .iter()
        .flatten()
        .filter(|t| t.runtime() == r.runtime() && t.point(&swept) == r.point(&swept))
        .filter_map(|t| t.row.requests_per_sec)
        .collect();
    let mut text = match rps {
        Some(v) => format!("{} req/s", at_least(v, r.lower_bound())),
        None => String::new(),
    };
    if let (Some(v), Some(e)) = (rps, reference) {
        if r.runtime() != REFERENCE_RUNTIME && e > 0.0 && r.row.network != "tap" {
            let share = share(v, e, r.lower_bound());
            text.push_str(&format!("  ({share} of {REFERENCE_RUNTIME})"));
        }
    }
    let mut text_colour = style::TEXT;
    if let Some((word, colour)) = status_look(r.row.status) {
        let width = if text.is_empty() { 90 } else { 50 };
        let said = format!("{word}: {}", shorten(&r.row.error, width));
        text = if text.is_empty() {
            said
        } else {
            format!("{text}  {said}")
        };
        text_colour = colour;
    }
    Bar {
        label: view.label(r),
        colour: palette::colour(r.runtime()),
        value: rps,
        ci,
        dots,
        text,
        text_colour,
    }
}

/// How a row that is not ok is said on the chart: each status its own word and look, so a
/// runtime skipped by its nature or a run stopped by the user is not drawn as a failure.
fn status_look(status: RowStatus) -> Option<(&'static str, RGBColor)> {
    match status {
        RowStatus::Ok => None,
        RowStatus::Failed => Some(("failed", style::FAILED)),
        RowStatus::Interrupted => Some(("interrupted", style::INTERRUPTED)),
        RowStatus::Skipped => Some(("skipped", style::MUTED)),
    }
}

/// The first `max` characters, with an ellipsis when cut (the full text is in report.md).
pub fn shorten(s: &str, max: usize) -> String {
    let s = s.trim();
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let cut: String = s.chars().take(max.saturating_sub(1)).collect();
        format!("{}…", cut.trim_end())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skipped_failed_and_interrupted_rows_each_have_their_own_word_and_look() {
        assert_eq!(status_look(RowStatus::Ok), None);
        let looks: Vec<_> = [
            RowStatus::Failed,
            RowStatus::Interrupted,
            RowStatus::Skipped,
        ]
        .into_iter()
        .map(|s| status_look(s).unwrap())
        .collect();
        assert_eq!(
            looks.iter().map(|l| l.0).collect::<Vec<_>>(),
            ["failed", "interrupted", "skipped"]
        );
        assert!(looks[0].1 != looks[1].1 && looks[1].1 != looks[2].1 && looks[0].1 != looks[2].1);
    }
}
