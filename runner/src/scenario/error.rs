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
        let width = text[start..span.end.clamp(start, line_end)]
            .chars()
            .count()
            .max(1);
        let (shown, caret_at, width) = window(&text[line_start..line_end], column - 1, width);
        let gutter = line.to_string().len();
        let snippet = format!(
            "{:gutter$} |\n{line} | {shown}\n{:gutter$} | {}{}",
            "",
            "",
            " ".repeat(caret_at),
            "^".repeat(width)
        );
        ScenarioError::Invalid {
            path: path.to_path_buf(),
            line,
            column,
            field,
            message: shorten(&message, MAX_MESSAGE_CHARS),
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
        let mut field = field_at(text, span.start);
        // A key missing from the top level is the whole file's fault, not its first line's.
        let missing = message
            .strip_prefix("missing field `")
            .map(|k| k.trim_end_matches('`'));
        match missing {
            Some("load") => {
                message = "the scenario has no `[load]` section, which is required".into();
                field = None;
            }
            Some("name") => {
                message = "the scenario has no `name`, which is required (`name = \"...\"` \
                           before the first [section])"
                    .into();
                field = None;
            }
            _ => {}
        }
        if let Some(hint) = field
            .as_deref()
            .and_then(|f| unit_hint(f, &text[span.clone()]))
        {
            message.push_str(&hint);
        }
        Self::at(path, text, span, field, message)
    }
}

/// Keys whose value is a duration written with its unit.
const DURATION_KEYS: &[&str] = &[
    "warmup",
    "duration",
    "grace",
    "at",
    "interval",
    "work",
    "sleep",
    "cpu",
    "blocking",
    "mean",
    "send_window",
    "p50",
    "p90",
    "p99",
    "p999",
    "max",
];
/// Keys whose value is a plain count of bytes.
const BYTE_KEYS: &[&str] = &["payload_bytes", "request_bytes", "response_bytes"];

/// How to write `field`'s value when `written` has the wrong form: a duration without its unit
/// (`duration = 10`), a byte count with one (`payload_bytes = "64KB"`).
fn unit_hint(field: &str, written: &str) -> Option<String> {
    let key = field.rsplit('.').next().unwrap_or(field);
    let written = written.trim();
    let number = written.parse::<f64>().is_ok();
    if DURATION_KEYS.contains(&key) && number {
        return Some(format!(
            "; a duration is text with its unit: \"{written}s\", \"{written}ms\" or \"{written}us\""
        ));
    }
    if BYTE_KEYS.contains(&key) && written.starts_with('"') {
        return Some(
            "; bytes are a plain number without a unit: 64, 1024 or 65536 (not \"64KB\")".into(),
        );
    }
    None
}

/// At most this much of the offending line is shown (a 200 KB line of brackets must not be
/// echoed whole), centred on the column.
const SNIPPET_CHARS: usize = 100;
/// Messages quote what was written (an unknown key); this much of it is enough.
const MAX_MESSAGE_CHARS: usize = 300;
/// Keys longer than this are no typo of a real key (and the edit distance would cost
/// memory in proportion).
const MAX_TYPO_CHARS: usize = 64;

/// The part of `line` to show around char `column`: (text, where the caret starts, caret width).
fn window(line: &str, column: usize, width: usize) -> (String, usize, usize) {
    let len = line.chars().count();
    if len <= SNIPPET_CHARS {
        return (line.to_string(), column, width);
    }
    let start = column
        .saturating_sub(SNIPPET_CHARS / 3)
        .min(len - SNIPPET_CHARS);
    let end = start + SNIPPET_CHARS;
    let body: String = line.chars().skip(start).take(SNIPPET_CHARS).collect();
    let (lead, tail) = (
        if start > 0 { "..." } else { "" },
        if end < len { "..." } else { "" },
    );
    let caret_at = lead.len() + (column - start);
    let width = width.min(end.saturating_sub(column)).max(1);
    (format!("{lead}{body}{tail}"), caret_at, width)
}

/// `s` cut to `max` chars, saying how much was left out.
fn shorten(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    let head: String = s.chars().take(max).collect();
    format!("{head}... ({} more characters)", n - max)
}

/// For serde's "unknown field `x`, expected one of `a`, `b`" the closest expected key.
fn suggest_key(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let (typo, expected) = rest.split_once('`')?;
    if typo.chars().count() > MAX_TYPO_CHARS {
        return None;
    }
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
    fn a_huge_line_is_shown_as_a_window_around_the_column() {
        let text = format!("work = {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
        let at = 7 + 5_000;
        let e = ScenarioError::at(
            Path::new("x.toml"),
            &text,
            at..at + 1,
            Some("work".into()),
            "x".repeat(10_000),
        );
        let msg = e.to_string();
        assert!(msg.len() < 1_000, "{} bytes", msg.len());
        assert!(msg.contains("x.toml:1:5008"), "{msg}");
        assert!(msg.contains("(9700 more characters)"), "{msg}");
        let lines: Vec<&str> = msg.lines().collect();
        // The caret sits under the character at the column.
        let shown = lines[2].split_once(" | ").unwrap().1;
        let caret = lines[3].split_once(" | ").unwrap().1;
        assert!(
            shown.starts_with("...[") && shown.ends_with("[..."),
            "{shown}"
        );
        assert_eq!(caret.trim_start().len(), 1);
        assert_eq!(&shown[caret.len() - 1..caret.len()], "[");
    }

    #[test]
    fn field_names_section_and_key() {
        let text = "name = \"x\"\n[load]\nconnections = 0\n";
        let at = text.find('0').unwrap();
        assert_eq!(field_at(text, at).as_deref(), Some("load.connections"));
        assert_eq!(field_at(text, 1).as_deref(), Some("name"));
    }
}
