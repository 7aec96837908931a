//! capacity.png: each runtime's capacity from the search (the highest rate meeting `[slo]`),
//! highest first, with the interval it lies in (up to the lowest rate that failed).

use super::hbars::{self, Bar};
use super::{palette, scale, style, Area};
use crate::console::format::thousands;
use crate::results::read::RunData;

pub const SIZE: (u32, u32) = (1280, 720);

pub fn draw(root: &Area, data: &RunData) -> anyhow::Result<()> {
    let rows = data.capacity.as_deref().unwrap_or_default();
    let slo = rows.first().map(|r| r.slo.as_str()).unwrap_or_default();
    let area = style::header(
        root,
        "Capacity: the highest rate within the objectives",
        &format!("{slo} · {}", crate::plot::load_line(data)),
    )?;
    if rows.is_empty() {
        return style::no_data(&area, "capacity.csv has no rows");
    }
    let mut rows: Vec<_> = rows.iter().collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.capacity.unwrap_or(0)));
    let bars: Vec<Bar> = rows
        .iter()
        .map(|r| {
            let value = r.capacity.map(|c| c as f64);
            let mut text = match (r.capacity, r.interval_high) {
                (Some(c), Some(h)) => format!(
                    "{} req/s (fails at {})",
                    thousands(c as f64),
                    thousands(h as f64)
                ),
                (Some(c), None) => format!("≥ {} req/s", thousands(c as f64)),
                (None, _) => "no rate met the objectives".into(),
            };
            if !r.note.is_empty() && r.interval_high.is_none() {
                text.push_str(&format!("  {}", super::throughput::shorten(&r.note, 60)));
            }
            Bar {
                label: r.runtime.clone(),
                colour: palette::colour(&r.runtime),
                value,
                ci: match (r.capacity, r.interval_high) {
                    (Some(c), Some(h)) => Some((c as f64, h as f64)),
                    _ => None,
                },
                dots: Vec::new(),
                text,
                text_colour: style::TEXT,
            }
        })
        .collect();
    hbars::draw(
        &area,
        &hbars::Panel {
            bars: &bars,
            x_desc: "requests per second meeting the objectives (higher is better; whisker: up to \
                     the lowest rate that failed; ≥: the search stopped without a failure)",
            reference: None,
            unit: scale::Unit::Count,
        },
    )
}
