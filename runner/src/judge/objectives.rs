//! `[slo]` thresholds, k6-style: every measured row is judged `pass` or `fail`, with the limits
//! it broke; a run in which a row failed its objectives exits with its own code.

use crate::results::{RowStatus, SummaryRow};
use crate::scenario::{ErrorBudget, Percentile, Slo};

/// The verdict on one row.
#[derive(Clone, Debug, PartialEq)]
pub struct Judgement {
    pub pass: bool,
    /// What was broken, e.g. `p99 6.20 ms > 5 ms`.
    pub broken: Vec<String>,
    /// The same, as values (what the capacity search weighs against the client's lateness).
    pub limits: Vec<Broken>,
}

/// One broken limit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Broken {
    Latency {
        measured_us: f64,
        limit_us: f64,
    },
    /// The row has no value for a limited percentile.
    Missing,
    Errors,
    Achieved,
}

fn latency_us(row: &SummaryRow, p: Percentile) -> Option<f64> {
    match p {
        Percentile::P50 => row.p50_us,
        Percentile::P90 => row.p90_us,
        Percentile::P99 => row.p99_us,
        Percentile::P999 => row.p999_us,
        Percentile::Max => row.max_us,
    }
}

/// Judges a measured row; `None` for a row that measured nothing (failed, skipped).
pub fn judge(slo: &Slo, row: &SummaryRow) -> Option<Judgement> {
    if !matches!(row.status, RowStatus::Ok | RowStatus::Failed) || row.requests.is_none() {
        return None;
    }
    let mut broken = Vec::new();
    let mut limits = Vec::new();
    for &(p, limit) in &slo.latency {
        let limit_us = limit.as_secs_f64() * 1e6;
        match latency_us(row, p) {
            Some(v) if v <= limit_us => {}
            Some(v) => {
                broken.push(format!(
                    "{} {} > {}",
                    p.key(),
                    fmt_us(v),
                    humantime::format_duration(limit)
                ));
                limits.push(Broken::Latency {
                    measured_us: v,
                    limit_us,
                });
            }
            None => {
                broken.push(format!("{} not measured", p.key()));
                limits.push(Broken::Missing);
            }
        }
    }
    if let Some(budget) = slo.errors {
        let errors = row.errors.unwrap_or(0) + row.unanswered.unwrap_or(0);
        let of = row
            .scheduled
            .unwrap_or_else(|| row.requests.unwrap_or(0) + row.unanswered.unwrap_or(0));
        let ok = match budget {
            ErrorBudget::Count(n) => errors <= n,
            ErrorBudget::Fraction(f) => (errors as f64) <= f * of as f64,
        };
        if !ok {
            let allowed = match budget {
                ErrorBudget::Count(n) => format!("{n}"),
                ErrorBudget::Fraction(f) => format!("{}% of {of}", f * 100.0),
            };
            broken.push(format!(
                "errors {errors} (connection errors + unanswered) > {allowed}"
            ));
            limits.push(Broken::Errors);
        }
    }
    if let (Some(min), Some(ratio)) = (slo.achieved, row.achieved_fraction()) {
        if ratio < min {
            broken.push(format!(
                "achieved {:.1}% of the target rate < {:.1}%",
                ratio * 100.0,
                min * 100.0
            ));
            limits.push(Broken::Achieved);
        }
    }
    Some(Judgement {
        pass: broken.is_empty(),
        broken,
        limits,
    })
}

/// Writes the verdict into the row's `slo` and `slo_broken` columns.
pub fn apply(slo: Option<&Slo>, row: &mut SummaryRow) {
    let Some(j) = slo.and_then(|s| judge(s, row)) else {
        return;
    };
    row.slo = if j.pass { "pass" } else { "fail" }.into();
    row.slo_broken = j.broken.join("; ");
}

fn fmt_us(us: f64) -> String {
    if us >= 1000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{us:.0} µs")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn row(p99_us: f64, errors: u64, unanswered: u64, rps: f64) -> SummaryRow {
        SummaryRow {
            requests: Some(10_000),
            requests_per_sec: Some(rps),
            target_rate: Some(10_000),
            p99_us: Some(p99_us),
            errors: Some(errors),
            unanswered: Some(unanswered),
            scheduled: Some(10_000),
            ..Default::default()
        }
    }

    #[test]
    fn each_limit_is_judged_and_named() {
        let slo = Slo {
            latency: vec![(Percentile::P99, Duration::from_millis(5))],
            errors: Some(ErrorBudget::Count(0)),
            achieved: Some(0.99),
        };
        assert!(judge(&slo, &row(4_000.0, 0, 0, 10_000.0)).unwrap().pass);
        let j = judge(&slo, &row(6_200.0, 1, 2, 9_000.0)).unwrap();
        assert!(!j.pass);
        assert_eq!(
            j.broken,
            [
                "p99 6.20 ms > 5ms",
                "errors 3 (connection errors + unanswered) > 0",
                "achieved 90.0% of the target rate < 99.0%"
            ]
        );
    }

    #[test]
    fn an_error_fraction_is_of_the_scheduled_requests() {
        let slo = Slo {
            errors: Some(ErrorBudget::Fraction(0.001)),
            ..Default::default()
        };
        assert!(judge(&slo, &row(1.0, 0, 10, 10_000.0)).unwrap().pass);
        assert!(!judge(&slo, &row(1.0, 0, 11, 10_000.0)).unwrap().pass);
    }

    #[test]
    fn rows_that_measured_nothing_are_not_judged() {
        let slo = Slo {
            errors: Some(ErrorBudget::Count(0)),
            ..Default::default()
        };
        let skipped = SummaryRow {
            status: RowStatus::Skipped,
            ..Default::default()
        };
        assert_eq!(judge(&slo, &skipped), None);
    }
}
