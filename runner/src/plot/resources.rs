//! resources.png: what each server cost, side by side: peak resident memory, and CPU time
//! (user + sys, whole process lifetime) per measured request. Same row order as throughput.png.

use super::hbars::{self, Bar};
use super::scale::Unit;
use super::{palette, select, style, Area};
use crate::console::format::duration_us;
use crate::results::read::{RunData, Summary};

pub const SIZE: (u32, u32) = (1400, 680);
/// Space between the two panels, pixels.
const GUTTER: u32 = 30;

const MIB: f64 = 1024.0 * 1024.0;

pub fn draw(root: &Area, data: &RunData) -> anyhow::Result<()> {
    let view = select::per_runtime(data);
    let subtitle = select::subtitle(data, &view.rows, &[], view.focus.as_deref());
    let area = style::header(root, "Server resources: memory and CPU", &subtitle)?;
    if view.rows.is_empty() {
        return style::no_data(&area, "summary.csv has no rows");
    }
    let (w, _) = area.dim_in_pixel();
    let (left, right) = area.split_horizontally(w / 2);
    let right = right.margin(0, 0, GUTTER, 0);
    let panel = |value: &dyn Fn(&Summary) -> Option<f64>, text: &dyn Fn(f64) -> String| {
        view.rows
            .iter()
            .map(|r| {
                let v = value(r);
                Bar {
                    label: view.label(r),
                    colour: palette::colour(r.runtime()),
                    value: v,
                    ci: None,
                    dots: Vec::new(),
                    text: v.map_or("not measured".into(), text),
                    text_colour: if v.is_some() {
                        style::TEXT
                    } else {
                        style::MUTED
                    },
                }
            })
            .collect::<Vec<_>>()
    };
    let rss = panel(
        &|r| r.row.server_rss_peak_bytes.map(|b| b as f64 / MIB),
        &|v| format!("{v:.1} MiB"),
    );
    let cpu = panel(&|r| r.row.server_cpu_us_per_request, &duration_us);
    hbars::draw(
        &left,
        &hbars::Panel {
            bars: &rss,
            x_desc: "server peak RSS (MiB, lower is better)",
            reference: None,
            unit: Unit::Count,
        },
    )?;
    hbars::draw(
        &right,
        &hbars::Panel {
            bars: &cpu,
            x_desc: "server CPU per request (user + sys, lower is better)",
            reference: None,
            unit: Unit::Micros,
        },
    )
}
