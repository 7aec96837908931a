//! Text sizes, colours and the title block shared by every chart.

use super::Area;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::sync::OnceLock;

/// The family name the embedded font is registered under (plotters' default family).
pub const FONT: &str = "sans-serif";
/// DejaVu Sans (Bitstream Vera licence, runner/assets/DejaVuSans-LICENSE.txt): embedded so
/// charts draw the same on a machine without fontconfig or any system font.
const FONT_BYTES: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

pub const TITLE_PX: f64 = 30.0;
pub const SUBTITLE_PX: f64 = 19.0;
pub const AXIS_DESC_PX: f64 = 20.0;
pub const TICK_PX: f64 = 17.0;
pub const LEGEND_PX: f64 = 17.0;
pub const VALUE_PX: f64 = 16.0;

/// Height of the title block above the chart.
pub const HEADER_H: u32 = 86;
/// Space around the chart inside the canvas.
pub const MARGIN: u32 = 18;
pub const LINE_W: u32 = 3;

pub const TEXT: RGBColor = RGBColor(0x22, 0x22, 0x22);
pub const MUTED: RGBColor = RGBColor(0x66, 0x66, 0x66);
pub const GRID: RGBColor = RGBColor(0xe4, 0xe4, 0xe4);
pub const FAILED: RGBColor = RGBColor(0xb2, 0x18, 0x2b);
/// A row stopped by the user (Ctrl-C): not a failure of the runtime.
pub const INTERRUPTED: RGBColor = RGBColor(0xb3, 0x5c, 0x00);
/// The shaded warmup band of the timeline.
pub const WARMUP_FILL: RGBColor = RGBColor(0xee, 0xee, 0xee);

pub fn register_font() -> anyhow::Result<()> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES)
            .map_err(|_| "the embedded DejaVuSans.ttf is not a valid font".to_string())
    })
    .clone()
    .map_err(anyhow::Error::msg)
}

pub fn text(px: f64, colour: &RGBColor) -> TextStyle<'static> {
    (FONT, px).into_font().color(colour)
}

pub fn tick() -> TextStyle<'static> {
    text(TICK_PX, &TEXT)
}

pub fn axis_desc() -> TextStyle<'static> {
    text(AXIS_DESC_PX, &TEXT)
}

pub fn legend() -> TextStyle<'static> {
    text(LEGEND_PX, &TEXT)
}

/// Value labels next to bars and markers: left-aligned, vertically centred on the anchor.
pub fn value_label(colour: &RGBColor) -> TextStyle<'static> {
    text(VALUE_PX, colour).pos(Pos::new(HPos::Left, VPos::Center))
}

/// Draws the title and subtitle lines and returns the area below them.
pub fn header<'a>(root: &Area<'a>, title: &str, subtitle: &str) -> anyhow::Result<Area<'a>> {
    let (top, rest) = root.split_vertically(HEADER_H);
    top.draw_text(title, &text(TITLE_PX, &TEXT), (MARGIN as i32, 14))?;
    top.draw_text(subtitle, &text(SUBTITLE_PX, &MUTED), (MARGIN as i32, 54))?;
    Ok(rest.margin(0, MARGIN, MARGIN, MARGIN + 10))
}

/// For a chart with nothing to show: says why, in the middle of the area.
pub fn no_data(area: &Area, why: &str) -> anyhow::Result<()> {
    let (w, h) = area.dim_in_pixel();
    let style = text(AXIS_DESC_PX, &MUTED).pos(Pos::new(HPos::Center, VPos::Center));
    area.draw_text(why, &style, (w as i32 / 2, h as i32 / 2))?;
    Ok(())
}

/// Width a [`legend_column`] needs for these labels.
pub fn legend_width(area: &Area, labels: &[String]) -> anyhow::Result<u32> {
    let mut w = 0;
    for l in labels {
        w = w.max(area.estimate_text_size(l, &legend())?.0);
    }
    Ok(w + LEGEND_SWATCH + 36)
}

const LEGEND_SWATCH: u32 = 28;
const LEGEND_ROW: i32 = 30;

/// A legend beside the chart rather than over it, so it never hides a line: a short line in
/// each runtime's colour and its name, top to bottom; then `notes` in grey.
pub fn legend_column(
    area: &Area,
    entries: &[(String, RGBColor)],
    notes: &[String],
) -> anyhow::Result<()> {
    let style = legend().pos(Pos::new(HPos::Left, VPos::Center));
    let muted = text(VALUE_PX, &MUTED).pos(Pos::new(HPos::Left, VPos::Center));
    let below = 20 + entries.len() as i32 * LEGEND_ROW + 8;
    for (i, note) in notes.iter().enumerate() {
        area.draw_text(note, &muted, (10, below + i as i32 * 24))?;
    }
    for (i, (label, colour)) in entries.iter().enumerate() {
        let y = 20 + i as i32 * LEGEND_ROW;
        area.draw(&PathElement::new(
            vec![(10, y), (10 + LEGEND_SWATCH as i32, y)],
            colour.stroke_width(LINE_W + 1),
        ))?;
        area.draw_text(label, &style, (18 + LEGEND_SWATCH as i32, y))?;
    }
    Ok(())
}
