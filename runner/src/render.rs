//! A run folder's CSV files -> its PNG plots and report.md. Used at the end of every run and by
//! `runbench plot`, so both give the same files.

use crate::results::read::RunData;
use crate::results::write_atomic;
use crate::{plot, report};
use std::path::Path;

/// What was (and was not) written.
pub struct Rendered {
    pub files: Vec<String>,
    /// `file: why` for each chart that could not be drawn or written.
    pub failures: Vec<String>,
}

/// Draws every chart that applies and writes report.md. A chart that fails is named in
/// `failures` and in the report; the others are still written.
pub fn render_dir(dir: &Path) -> anyhow::Result<Rendered> {
    let data = RunData::load(dir)?;
    let mut plots = plot::draw_all(&data);
    let mut rendered = Rendered {
        files: Vec::new(),
        failures: Vec::new(),
    };
    for p in &mut plots {
        if let Ok(png) = &p.png {
            if let Err(e) = write_atomic(&dir.join(&p.file), png) {
                p.png = Err(format!("{e:#}"));
            }
        }
        match &p.png {
            Ok(_) => rendered.files.push(p.file.clone()),
            Err(e) => rendered.failures.push(format!("{}: {e}", p.file)),
        }
    }
    write_atomic(
        &dir.join("report.md"),
        report::markdown(&data, &plots).as_bytes(),
    )?;
    rendered.files.push("report.md".into());
    Ok(rendered)
}
