//! PNG charts of a run folder, drawn with plotters into memory and encoded here, so the same CSV
//! files always give byte-identical PNGs (`runbench plot` redraws exactly what a run drew).
//!
//! One file per chart, each a function from [`RunData`] to pixels; sizes at the top of each file,
//! shared text sizes and colours in [`style`], runtime colours in [`palette`].

mod capacity;
mod hbars;
pub mod heatmap;
mod latency;
pub mod palette;
pub mod render;
pub mod report;
mod resources;
mod scale;
mod select;
pub(crate) mod style;
mod sweep;
mod throughput;
mod timeline;

use crate::results::read::RunData;
use anyhow::Context;
use plotters::prelude::*;

/// A drawing surface: an RGB buffer behind plotters' bitmap backend.
pub type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;

/// One chart of a run: its file name, what it shows, and its PNG (or why it could not be drawn).
pub struct Plot {
    pub file: String,
    pub caption: String,
    pub png: Result<Vec<u8>, String>,
}

/// Every chart that applies to this run. Never fails as a whole: a chart that cannot be drawn
/// carries its error, and the others are still drawn.
pub fn draw_all(data: &RunData) -> Vec<Plot> {
    let at = select::per_runtime(data)
        .focus
        .map(|f| format!(" at {f}"))
        .unwrap_or_default();
    let mut plots = vec![
        plot(
            "throughput.png",
            &format!("Requests per second per runtime{at}"),
            throughput::SIZE,
            data,
            throughput::draw,
        ),
        plot(
            "latency.png",
            &format!("Latency percentile spectrum{at}"),
            latency::SIZE,
            data,
            latency::draw,
        ),
        plot(
            "resources.png",
            &format!("Server peak memory and CPU time per request{at}"),
            resources::SIZE,
            data,
            resources::draw,
        ),
    ];
    if data.timeline.is_some() {
        plots.push(plot(
            "timeline.png",
            "Requests per second and p99 latency over time",
            timeline::SIZE,
            data,
            timeline::draw,
        ));
    }
    if heatmap::Grid::of(data).is_some() {
        plots.push(plot(
            "workloads.png",
            "Requests per second by workload, relative to the best runtime at each",
            heatmap::SIZE,
            data,
            heatmap::draw,
        ));
    }
    if data.capacity.is_some() {
        plots.push(plot(
            "capacity.png",
            "Capacity within the objectives per runtime",
            capacity::SIZE,
            data,
            capacity::draw,
        ));
    }
    if data
        .swept()
        .contains(&crate::results::read::Param::TargetRate)
    {
        plots.push(plot(
            "latency-vs-rate.png",
            "p50 and p99 latency against the offered rate",
            sweep::SIZE,
            data,
            sweep::draw_knee,
        ));
    }
    for param in data.swept() {
        plots.push(plot(
            &format!("sweep-{}.png", param.name()),
            &format!(
                "Requests per second and p99 latency against {}",
                param.name()
            ),
            sweep::SIZE,
            data,
            move |area: &Area, d: &RunData| sweep::draw(area, d, param),
        ));
    }
    plots
}

/// The load every row shares, in words ("100 connections · 64 B payload · ..."), for report.md.
pub fn load_line(data: &RunData) -> String {
    let rows: Vec<_> = data.summary.iter().collect();
    select::load_line(data, &rows, &[], None)
}

fn plot(
    file: &str,
    caption: &str,
    size: (u32, u32),
    data: &RunData,
    draw: impl Fn(&Area, &RunData) -> anyhow::Result<()>,
) -> Plot {
    // A plotting bug must not take the process (and a run's exit code) down with it.
    let drawn = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        render_png(size, |area| draw(area, data))
    }));
    let png = match drawn {
        Ok(Ok(png)) => Ok(png),
        Ok(Err(e)) => Err(format!("{e:#}")),
        Err(panic) => Err(format!(
            "the chart code panicked: {}",
            panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("unknown panic")
        )),
    };
    Plot {
        file: file.to_string(),
        caption: caption.to_string(),
        png,
    }
}

/// Draws into a white RGB canvas of `size` and encodes it as PNG.
pub(crate) fn render_png(
    (w, h): (u32, u32),
    draw: impl FnOnce(&Area) -> anyhow::Result<()>,
) -> anyhow::Result<Vec<u8>> {
    style::register_font()?;
    let mut pixels = vec![0u8; (w * h * 3) as usize];
    {
        let area = BitMapBackend::with_buffer(&mut pixels, (w, h)).into_drawing_area();
        area.fill(&WHITE)?;
        draw(&area)?;
        area.present()?;
    }
    let mut png = Vec::new();
    let mut enc = png::Encoder::new(&mut png, w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().context("encoding PNG")?;
    writer.write_image_data(&pixels).context("encoding PNG")?;
    writer.finish().context("encoding PNG")?;
    Ok(png)
}
