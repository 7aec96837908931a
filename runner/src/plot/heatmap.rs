//! workloads.png: a `[[workload]]` sweep as a grid, one row per runtime and one column per
//! workload point, each cell the runtime's requests/s relative to the best runtime at that point
//! (1.00 is the best; 0.50 served half as many). Drawn when the summary holds two workloads or
//! more. The same grid leads report.md's Workloads section ([`Grid::answers`]).

use super::{style, Area};
use crate::results::read::RunData;
use crate::results::{Point, RowStatus};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

pub const SIZE: (u32, u32) = (1400, 760);
const LABEL_W: u32 = 220;
const COLUMN_HEAD_H: u32 = 40;

/// One cell: requests/s, or why there is none (the row's status).
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Rate(f64),
    Not(String),
}

/// Runtimes x workload points of a run.
pub struct Grid {
    pub runtimes: Vec<String>,
    /// Each point and its column label (the workload's name).
    pub points: Vec<(Point, String)>,
    /// `cells[runtime][point]`.
    pub cells: Vec<Vec<Cell>>,
    /// `flagged[runtime][point]`: the row's audit flagged a figure.
    pub flagged: Vec<Vec<bool>>,
}

impl Grid {
    /// The grid of a run whose rows have two workloads or more; `None` otherwise.
    pub fn of(data: &RunData) -> Option<Grid> {
        let mut points: Vec<(Point, String)> = Vec::new();
        for s in &data.summary {
            let p = s.row.point();
            if !points.iter().any(|(q, _)| *q == p) {
                let label = if p.workload.is_empty() {
                    p.short()
                } else {
                    p.workload.clone()
                };
                points.push((p, label));
            }
        }
        let workloads = {
            let mut names: Vec<&str> = points.iter().map(|(p, _)| p.workload.as_str()).collect();
            names.sort_unstable();
            names.dedup();
            names.len()
        };
        if workloads < 2 {
            return None;
        }
        // In the scenario's order (the rows are in the run's shuffled order).
        let order = &data.meta.workloads;
        points.sort_by_key(|(p, _)| order.iter().position(|w| *w == p.workload));
        // A workload swept with another parameter: the label says both.
        for i in 0..points.len() {
            let twice = points.iter().filter(|(_, l)| *l == points[i].1).count() > 1;
            if twice {
                points[i].1 = format!("{} ({})", points[i].1, points[i].0.short());
            }
        }
        let runtimes = data.runtimes();
        let flagged = (runtimes.iter())
            .map(|rt| {
                (points.iter())
                    .map(|(p, _)| {
                        data.summary.iter().any(|s| {
                            s.runtime() == rt
                                && s.row.point() == *p
                                && !matches!(s.row.audit.as_str(), "" | "ok")
                        })
                    })
                    .collect()
            })
            .collect();
        let cells = runtimes
            .iter()
            .map(|rt| {
                points
                    .iter()
                    .map(|(p, _)| {
                        let row = (data.summary.iter())
                            .find(|s| s.runtime() == rt && s.row.point() == *p);
                        match row {
                            None => Cell::Not("not run".into()),
                            Some(s) => match (s.row.status, s.row.requests_per_sec) {
                                (RowStatus::Ok, Some(r)) => Cell::Rate(r),
                                (RowStatus::Ok, None) => Cell::Not("not measured".into()),
                                (RowStatus::Failed, _) => Cell::Not("failed".into()),
                                (RowStatus::Interrupted, _) => Cell::Not("interrupted".into()),
                                (RowStatus::Skipped, _) => Cell::Not("skipped".into()),
                            },
                        }
                    })
                    .collect()
            })
            .collect();
        Some(Grid {
            runtimes,
            points,
            cells,
            flagged,
        })
    }

    /// The best requests/s at column `j`, if any runtime was measured there.
    pub fn best(&self, j: usize) -> Option<(usize, f64)> {
        (0..self.runtimes.len())
            .filter_map(|i| match self.cells[i][j] {
                Cell::Rate(r) => Some((i, r)),
                Cell::Not(_) => None,
            })
            .max_by(|a, b| a.1.total_cmp(&b.1))
    }

    /// Cell (i, j) relative to the best at column j.
    pub fn relative(&self, i: usize, j: usize) -> Option<f64> {
        let (_, best) = self.best(j)?;
        match self.cells[i][j] {
            Cell::Rate(r) if best > 0.0 => Some(r / best),
            _ => None,
        }
    }

    /// One line per workload point, the answer first: which runtime served the most there,
    /// then every other runtime relative to it (report.md); ⚠ marks a row the audit flagged.
    pub fn answers(&self) -> Vec<String> {
        (0..self.points.len())
            .map(|j| {
                let label = &self.points[j].1;
                let Some((b, best)) = self.best(j) else {
                    return format!("**{label}**: no runtime was measured");
                };
                let mut others: Vec<(f64, String)> = Vec::new();
                let mut not: Vec<String> = Vec::new();
                for i in (0..self.runtimes.len()).filter(|&i| i != b) {
                    match (&self.cells[i][j], self.relative(i, j)) {
                        (_, Some(rel)) => others.push((rel, self.name(i, j))),
                        (Cell::Not(why), _) => not.push(format!("{} {why}", self.runtimes[i])),
                        (Cell::Rate(_), None) => not.push(self.runtimes[i].clone()),
                    }
                }
                others.sort_by(|a, b| b.0.total_cmp(&a.0));
                let mut line = format!(
                    "**{label}**: {} served the most ({} req/s)",
                    self.name(b, j),
                    crate::console::format::thousands(best)
                );
                if !others.is_empty() {
                    let list: Vec<String> = others
                        .iter()
                        .map(|(rel, rt)| format!("{rt} {rel:.2}"))
                        .collect();
                    line.push_str(&format!("; then {}", list.join(", ")));
                }
                if !not.is_empty() {
                    line.push_str(&format!(" ({})", not.join(", ")));
                }
                line
            })
            .collect()
    }
}

impl Grid {
    /// `runtime` in code, with ⚠ where its row at column `j` was flagged.
    fn name(&self, i: usize, j: usize) -> String {
        let mark = if self.flagged[i][j] { " ⚠" } else { "" };
        format!("`{}`{mark}", self.runtimes[i])
    }
}

/// Colour of a relative value: white-ish at 0, deep green at 1.
fn shade(rel: f64) -> RGBColor {
    let t = rel.clamp(0.0, 1.0);
    let mix = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
    RGBColor(mix(247.0, 26.0), mix(252.0, 152.0), mix(245.0, 80.0))
}

pub fn draw(root: &Area, data: &RunData) -> anyhow::Result<()> {
    let area = style::header(
        root,
        "Requests per second by workload, relative to the best runtime at each",
        &format!(
            "{} · 1.00 = the most requests/s at that workload; the cell says the runtime's share of it",
            data.meta.scenario
        ),
    )?;
    let Some(grid) = Grid::of(data) else {
        return style::no_data(&area, "the run has fewer than two workloads");
    };
    let (w, h) = area.dim_in_pixel();
    let cols = grid.points.len().max(1) as u32;
    let rows = grid.runtimes.len().max(1) as u32;
    let cell_w = (w.saturating_sub(LABEL_W)) / cols;
    let cell_h = (h.saturating_sub(COLUMN_HEAD_H) / rows).min(70);
    let centre = |s: TextStyle<'static>| s.pos(Pos::new(HPos::Center, VPos::Center));
    for (j, (_, label)) in grid.points.iter().enumerate() {
        let x = (LABEL_W + j as u32 * cell_w + cell_w / 2) as i32;
        area.draw_text(label, &centre(style::tick()), (x, COLUMN_HEAD_H as i32 / 2))?;
    }
    for (i, rt) in grid.runtimes.iter().enumerate() {
        let y0 = (COLUMN_HEAD_H + i as u32 * cell_h) as i32;
        let left = style::tick().pos(Pos::new(HPos::Left, VPos::Center));
        area.draw_text(rt, &left, (4, y0 + cell_h as i32 / 2))?;
        for j in 0..grid.points.len() {
            let x0 = (LABEL_W + j as u32 * cell_w) as i32;
            let rect = [
                (x0 + 2, y0 + 2),
                (x0 + cell_w as i32 - 2, y0 + cell_h as i32 - 2),
            ];
            let (fill, text, colour) = match (&grid.cells[i][j], grid.relative(i, j)) {
                (Cell::Rate(r), Some(rel)) => (
                    shade(rel),
                    format!("{rel:.2} ({} /s)", crate::console::format::thousands(*r)),
                    if rel > 0.6 { WHITE } else { style::TEXT },
                ),
                (Cell::Not(why), _) => (style::GRID, why.clone(), style::MUTED),
                (Cell::Rate(_), None) => (style::GRID, "-".into(), style::MUTED),
            };
            area.draw(&Rectangle::new(rect, fill.filled()))?;
            let at = (x0 + cell_w as i32 / 2, y0 + cell_h as i32 / 2);
            area.draw_text(&text, &centre(style::text(style::VALUE_PX, &colour)), at)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shades_run_from_pale_to_deep() {
        assert_eq!(shade(0.0), RGBColor(247, 252, 245));
        assert_eq!(shade(1.0), RGBColor(26, 152, 80));
        assert_eq!(shade(7.0), shade(1.0));
    }
}
