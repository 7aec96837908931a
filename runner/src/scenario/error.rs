//! Scenario errors for people: file, line, column, field, what is allowed, and the line itself.

use std::ops::Range;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{}: no such scenario file{hint}", path.display())]
    Missing { path: PathBuf, hint: String },
    #[error("{}: is a directory, not a scenario file; {}", path.display(),
        if toml_files.is_empty() { "it holds no .toml files".to_string() }
        else { format!("give one of its files: {}", toml_files.join(", ")) })]
    Directory {
        path: PathBuf,
        toml_files: Vec<String>,
    },
    // Not named `source`: that would make the reason a chained cause, printed twice by `{:#}`.
    #[error("{}: cannot read the scenario: {reason}", path.display())]
    Read {
        path: PathBuf,
        reason: std::io::Error,
    },
    #[error("{}: the scenario file is empty", path.display())]
    Empty { path: PathBuf },
    #[error("{}:{line}:{column}: {field}{message}\n{snippet}", path.display(),
        field = field.as_ref().map(|f| format!("`{f}`: ")).unwrap_or_default())]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        field: Option<String>,
        message: String,
        snippet: String,
    },
}

impl ScenarioError {
    /// An error at byte range `span` of `text`.
    pub fn at(
        path: &Path,
        text: &str,
        span: Range<usize>,
        field: Option<String>,
        message: String,
    ) -> Self {
        let start = span.start.min(text.len());
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let line = text[..start].matches('\n').count() + 1;
        let column = text[line_start..start].chars().count() + 1;
        let source_line = &text[line_start..line_end];
        let width = text[start..span.end.clamp(start, line_end)]
            .chars()
            .count()
            .max(1);
        let gutter = line.to_string().len();
        let snippet = format!(
            "{:gutter$} |\n{line} | {source_line}\n{:gutter$} | {}{}",
            "",
            "",
            " ".repeat(column - 1),
            "^".repeat(width)
        );
        ScenarioError::Invalid {
            path: path.to_path_buf(),
            line,
            column,
            field,
            message,
            snippet,
        }
    }

    /// Turns a parse error from `toml`/serde into one that names the field and suggests the
    /// closest valid key for a typo.
    pub fn from_toml(path: &Path, text: &str, err: &toml::de::Error) -> Self {
        let span = err.span().unwrap_or(0..0);
        let mut message = err.message().trim().to_string();
        if message.contains("untagged enum OneOrMany") {
            message = "expected a number or a list of numbers".to_string();
        }
        if let Some(suggestion) = suggest_key(&message) {
            message.push_str(&format!(", did you mean `{suggestion}`?"));
        }
        let field = field_at(text, span.start);
        Self::at(path, text, span, field, message)
    }
}

/// For serde's "unknown field `x`, expected one of `a`, `b`" the closest expected key.
fn suggest_key(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let (typo, expected) = rest.split_once('`')?;
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|candidate| (strsim::damerau_levenshtein(typo, candidate), candidate))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min()
        .map(|(_, c)| c.to_string())
}

/// The dotted key (`load.connections`) of the `key = value` line containing byte `offset`.
fn field_at(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    let line = &text[line_start..line_end];
    let key = line.split_once('=').map(|(k, _)| k.trim())?;
    if key.is_empty() || key.starts_with('[') || key.starts_with('#') {
        return None;
    }
    let section = text[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_string());
    Some(match section {
        Some(s) => format!("{s}.{key}"),
        None => key.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_closest_key() {
        let m = "unknown field `conections`, expected one of `connections`, `payload_bytes`";
        assert_eq!(suggest_key(m).as_deref(), Some("connections"));
        let far = "unknown field `zzzzzz`, expected `connections`";
        assert_eq!(suggest_key(far), None);
    }

    #[test]
    fn field_names_section_and_key() {
        let text = "name = \"x\"\n[load]\nconnections = 0\n";
        let at = text.find('0').unwrap();
        assert_eq!(field_at(text, at).as_deref(), Some("load.connections"));
        assert_eq!(field_at(text, 1).as_deref(), Some("name"));
    }
}
