//! A run folder's CSV files -> its PNG plots and report.md. Used at the end of every run and by
//! `runbench plot`, so both give the same files.

use crate::plot;
use crate::plot::report;
use crate::results::read::RunData;
use crate::results::write_atomic;
use std::path::Path;

/// What was (and was not) written.
pub struct Rendered {
    pub files: Vec<String>,
    /// `file: why` for each chart that could not be drawn.
    pub failures: Vec<String>,
    /// What could not be read but did not stop the drawing (also in report.md).
    pub warnings: Vec<String>,
}

/// Draws every chart that applies and writes report.md. A chart that cannot be drawn is named
/// in `failures` and in the report; the others are still written. A file that cannot be
/// written ends the rendering with that [`crate::error::WriteError`] (disk full: the next
/// would fail too), its temporary file removed.
pub fn render_dir(dir: &Path) -> anyhow::Result<Rendered> {
    render_into(dir, dir)
}

/// [`render_dir`] with the charts and report.md written to `out` (made if missing) instead of
/// the run folder, which is only read.
pub fn render_into(dir: &Path, out: &Path) -> anyhow::Result<Rendered> {
    std::fs::create_dir_all(out).map_err(|e| crate::error::WriteError::new(out, e))?;
    let data = RunData::load(dir)?;
    let plots = plot::draw_all(&data);
    let mut rendered = Rendered {
        files: Vec::new(),
        failures: Vec::new(),
        warnings: data.warnings.clone(),
    };
    for p in &plots {
        if let Ok(png) = &p.png {
            write_atomic(&out.join(&p.file), png)?;
        }
        match &p.png {
            Ok(_) => rendered.files.push(p.file.clone()),
            Err(e) => rendered.failures.push(format!("{}: {e}", p.file)),
        }
    }
    write_atomic(
        &out.join("report.md"),
        report::markdown(&data, &plots).as_bytes(),
    )?;
    rendered.files.push("report.md".into());
    Ok(rendered)
}
