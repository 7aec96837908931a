//! Numbers for people, one way everywhere a person reads them (the terminal, report.md): a
//! duration in the unit that reads best with three significant digits (`812 µs`, `5.48 ms`,
//! `414 ms`, `1.20 s`), counts with a comma between thousands (`123,457`). Files for programs
//! (CSV, JSON) keep fixed units named in their headers.

/// How a row's status looks where colour is on: ok, worth a look (an audit flag, a broken
/// `[slo]`, an interruption), failed, or set aside (skipped).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Look {
    Ok,
    Warn,
    Fail,
    Muted,
}

/// Whether to colour what goes to a stream: only a terminal, and never with `NO_COLOR` set to
/// anything (no-color.org).
pub fn colour(is_terminal: bool) -> bool {
    is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// `text` in the colour of `look` when `on` (ANSI SGR), else as it is.
pub fn paint(text: &str, look: Look, on: bool) -> String {
    if !on {
        return text.to_string();
    }
    let code = match look {
        Look::Ok => "32",
        Look::Warn => "33",
        Look::Fail => "31",
        Look::Muted => "2",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// A duration given in microseconds, auto-scaled to ns, µs, ms or s with three significant
/// digits: `0.25` -> `250 ns`, `60` -> `60.0 µs`, `5484.5` -> `5.48 ms`, `414449.7` -> `414 ms`.
pub fn duration_us(us: f64) -> String {
    if !us.is_finite() {
        return "-".into();
    }
    // The unit is chosen after rounding, so 999.96 µs reads 1.00 ms, not 1000 µs.
    let us = round_significant(us, 3);
    let (value, unit) = match us.abs() {
        a if a < 1.0 => (us * 1000.0, "ns"),
        a if a < 1_000.0 => (us, "µs"),
        a if a < 1_000_000.0 => (us / 1_000.0, "ms"),
        _ => (us / 1_000_000.0, "s"),
    };
    format!("{} {unit}", significant(value, 3))
}

/// `v` rounded to `digits` significant digits.
fn round_significant(v: f64, digits: i32) -> f64 {
    if v == 0.0 {
        return 0.0;
    }
    let scale = 10f64.powi(v.abs().log10().floor() as i32 - (digits - 1));
    (v / scale).round() * scale
}

/// `v` (already rounded) with `digits` significant digits (at least none after the point):
/// 1.23 -> 1.23, 60 -> 60.0, 414 -> 414, 4144 -> 4144.
fn significant(v: f64, digits: i32) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let magnitude = v.abs().log10().floor() as i32;
    let decimals = (digits - 1 - magnitude).max(0) as usize;
    format!("{v:.decimals$}")
}

/// What an axis's values are, for its tick labels: durations given in microseconds, labelled in
/// the unit that reads best (`200 µs`, `1.5 ms`, `2 s`: the terminal's and report's formatter,
/// [`duration_us`]), or quantities (`950`, `12.5`, `52,700`: the
/// thousands style of the terminal and report).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Micros,
    Count,
}

impl Unit {
    /// The tick label of `v`, without trailing zeros (`1 ms`, not `1.00 ms`).
    pub fn label(self, v: f64) -> String {
        match self {
            Unit::Micros => {
                let text = duration_us(v);
                match text.split_once(' ') {
                    Some((n, unit)) => format!("{} {unit}", trim_zeros(n)),
                    None => text,
                }
            }
            Unit::Count if v.abs() >= 1_000.0 => thousands(v),
            Unit::Count => trim_zeros(&significant(round_significant(v, 3), 3)).to_string(),
        }
    }

    /// A value for a table cell: three significant digits, kept (`1.50 ms`, `52,700`, `12.0`).
    pub fn cell(self, v: f64) -> String {
        match self {
            Unit::Micros => duration_us(v),
            Unit::Count if v.abs() >= 1_000.0 => thousands(v),
            Unit::Count => significant(round_significant(v, 3), 3),
        }
    }
}

/// `1.50` -> `1.5`, `2.00` -> `2`, `100` -> `100`.
fn trim_zeros(n: &str) -> &str {
    if n.contains('.') {
        n.trim_end_matches('0').trim_end_matches('.')
    } else {
        n
    }
}

/// `text` wrapped at word boundaries to `width` columns, continuation lines starting with
/// `indent` (a word longer than a line, such as a path, is split).
pub fn wrap(text: &str, width: usize, indent: &str) -> String {
    let options = textwrap::Options::new(width.max(20)).subsequent_indent(indent);
    textwrap::fill(text, options)
}

/// 123456.7 -> "123,457".
pub fn thousands(v: f64) -> String {
    let n = v.round() as i64;
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// A count that may be a lower bound (the client was the limit): `52,346`, or `≥ 70,571`.
pub fn at_least(v: f64, bound: bool) -> String {
    if bound {
        format!("≥ {}", thousands(v))
    } else {
        thousands(v)
    }
}

/// `part` as a share of `whole`: `75%`, or `≥ 75%` when `part` is a lower bound.
pub fn share(part: f64, whole: f64, bound: bool) -> String {
    let at_least = if bound { "≥ " } else { "" };
    format!("{at_least}{:.0}%", part / whole * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lower_bound_and_its_share_read_at_least() {
        assert_eq!(at_least(70_571.0, true), "≥ 70,571");
        assert_eq!(at_least(52_346.0, false), "52,346");
        assert_eq!(share(90_000.0, 120_000.0, true), "≥ 75%");
        assert_eq!(share(120_000.0, 120_000.0, false), "100%");
    }

    #[test]
    fn unit_labels_read_like_the_terminal() {
        assert_eq!(Unit::Micros.label(200.0), "200 µs");
        assert_eq!(Unit::Micros.label(1_000.0), "1 ms");
        assert_eq!(Unit::Micros.label(1_500.0), "1.5 ms");
        assert_eq!(Unit::Micros.label(2_000_000.0), "2 s");
        assert_eq!(Unit::Micros.label(0.5), "500 ns");
        assert_eq!(Unit::Count.label(52_700.0), "52,700");
        assert_eq!(Unit::Count.label(12.5), "12.5");
        assert_eq!(Unit::Count.label(0.0), "0");
        assert_eq!(
            wrap(
                "[1/2] smol: 17,047 req/s, p99 12.6 ms, ok; audit: the client",
                30,
                "    "
            ),
            "[1/2] smol: 17,047 req/s, p99\n    12.6 ms, ok; audit: the\n    client"
        );
        assert_eq!(Unit::Count.label(100.0), "100");
        assert_eq!(Unit::Count.cell(1.5), "1.50");
        assert_eq!(Unit::Micros.cell(1_500.0), "1.50 ms");
    }

    #[test]
    fn durations_take_the_unit_that_reads_best_with_three_significant_digits() {
        assert_eq!(duration_us(0.25), "250 ns");
        assert_eq!(duration_us(0.001), "1.00 ns");
        assert_eq!(duration_us(60.0), "60.0 µs");
        assert_eq!(duration_us(812.04), "812 µs");
        assert_eq!(duration_us(999.96), "1.00 ms");
        assert_eq!(duration_us(5484.5), "5.48 ms");
        assert_eq!(duration_us(414_449.7), "414 ms");
        assert_eq!(duration_us(2_363_490.0), "2.36 s");
        assert_eq!(duration_us(0.0), "0 ns");
        assert_eq!(duration_us(f64::NAN), "-");
    }

    #[test]
    fn paint_colours_only_when_on() {
        assert_eq!(paint("ok", Look::Ok, false), "ok");
        assert_eq!(paint("ok", Look::Ok, true), "\x1b[32mok\x1b[0m");
        assert_eq!(
            paint("FAILED: x", Look::Fail, true),
            "\x1b[31mFAILED: x\x1b[0m"
        );
        assert!(!colour(false), "never for a pipe or a file");
    }

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1234567.0), "1,234,567");
        assert_eq!(thousands(-52346.0), "-52,346");
    }
}
