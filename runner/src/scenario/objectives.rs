//! `[slo]` and `[search]`: what a row must meet to pass, and the search for the highest open-model
//! rate that meets it.

use super::raw::{CountOrFraction, RawSearch, RawSlo};
use super::{Checker, Model, ScenarioError};
use serde::Serialize;
use std::time::Duration;

/// A latency percentile an objective can limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Percentile {
    P50,
    P90,
    P99,
    P999,
    Max,
}

impl Percentile {
    pub const ALL: [Percentile; 5] = [
        Percentile::P50,
        Percentile::P90,
        Percentile::P99,
        Percentile::P999,
        Percentile::Max,
    ];

    /// The key in `[slo]`.
    pub fn key(self) -> &'static str {
        match self {
            Percentile::P50 => "p50",
            Percentile::P90 => "p90",
            Percentile::P99 => "p99",
            Percentile::P999 => "p999",
            Percentile::Max => "max",
        }
    }

    /// 0..=100.
    pub fn value(self) -> f64 {
        match self {
            Percentile::P50 => 50.0,
            Percentile::P90 => 90.0,
            Percentile::P99 => 99.0,
            Percentile::P999 => 99.9,
            Percentile::Max => 100.0,
        }
    }
}

/// How many errors (connection errors and unanswered requests) a row may have.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorBudget {
    Count(u64),
    /// Of the requests (scheduled, in the open model).
    Fraction(f64),
}

/// Service-level objectives: every row gets `slo = pass | fail` and what it broke.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Slo {
    #[serde(with = "latency_limits")]
    pub latency: Vec<(Percentile, Duration)>,
    pub errors: Option<ErrorBudget>,
    /// Open model: achieved / target rate at least this.
    pub achieved: Option<f64>,
}

mod latency_limits {
    use super::Percentile;
    use std::time::Duration;
    pub fn serialize<S: serde::Serializer>(
        v: &[(Percentile, Duration)],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(v.len()))?;
        for (p, d) in v {
            m.serialize_entry(p.key(), &humantime::format_duration(*d).to_string())?;
        }
        m.end()
    }
}

/// The capacity search: per runtime, the highest open-model rate at which `[slo]` holds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Search {
    pub from: u64,
    pub max: u64,
    /// Stop bisecting when hi / lo - 1 is at most this.
    pub resolution: f64,
    /// Trials at the found rate, every one of which must pass.
    pub confirm: usize,
}

impl Slo {
    /// The objectives in words: `p99 <= 5ms, errors <= 0, achieved >= 99%`.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self
            .latency
            .iter()
            .map(|(p, d)| format!("{} <= {}", p.key(), humantime::format_duration(*d)))
            .collect();
        match self.errors {
            Some(ErrorBudget::Count(n)) => parts.push(format!("errors <= {n}")),
            Some(ErrorBudget::Fraction(f)) => parts.push(format!("errors <= {}%", f * 100.0)),
            None => {}
        }
        if let Some(a) = self.achieved {
            parts.push(format!("achieved >= {}%", a * 100.0));
        }
        parts.join(", ")
    }
}

/// Probes a capacity search runs at most, so a noisy server cannot keep it going for ever.
pub const MAX_PROBES: usize = 40;

impl Search {
    /// Probes a search usually takes (for estimates): half the doublings up to `max` (a
    /// capacity lies somewhere below it), the bisection, the confirmations and the recheck.
    pub fn typical_probes(&self) -> usize {
        let doublings = (self.max as f64 / self.from as f64).log2().ceil().max(1.0) as usize / 2;
        let halvings = (1.0 / self.resolution).log2().ceil() as usize;
        (doublings + halvings + self.confirm + 1).min(MAX_PROBES)
    }
}

impl Checker<'_> {
    pub(super) fn slo(&self, raw: &RawSlo, model: Model) -> Result<Slo, ScenarioError> {
        let mut slo = Slo::default();
        for p in Percentile::ALL {
            let text = match p {
                Percentile::P50 => &raw.p50,
                Percentile::P90 => &raw.p90,
                Percentile::P99 => &raw.p99,
                Percentile::P999 => &raw.p999,
                Percentile::Max => &raw.max,
            };
            if let Some(t) = text {
                let d = self.duration(&format!("slo.{}", p.key()), t, false)?;
                slo.latency.push((p, d));
            }
        }
        slo.errors = match raw.errors {
            None => None,
            Some(CountOrFraction::Count(n)) => Some(ErrorBudget::Count(self.int(
                "slo.errors",
                n,
                0,
                i64::MAX,
            )?)),
            Some(CountOrFraction::Fraction(f)) if (0.0..1.0).contains(&f) => {
                Some(ErrorBudget::Fraction(f))
            }
            Some(CountOrFraction::Fraction(f)) => {
                return self.err(
                    "slo.errors",
                    format!(
                        "{f} is neither a count (a whole number, e.g. 0 or 10) nor a fraction of \
                         the requests (at least 0 and below 1, e.g. 0.001)"
                    ),
                )
            }
        };
        if let Some(a) = raw.achieved {
            if model != Model::Open {
                return self.err(
                    "slo.achieved",
                    "applies to model = \"open\" only (a closed load has no target rate)".into(),
                );
            }
            if !(a > 0.0 && a <= 1.0) {
                return self.err(
                    "slo.achieved",
                    format!("must be a fraction of the target rate above 0 and at most 1, got {a}"),
                );
            }
            slo.achieved = Some(a);
        }
        if slo.latency.is_empty() && slo.errors.is_none() && slo.achieved.is_none() {
            return self.err(
                "slo",
                "is empty; give at least one of p50, p90, p99, p999, max, errors, achieved".into(),
            );
        }
        Ok(slo)
    }

    pub(super) fn search(&self, raw: &RawSearch) -> Result<Search, ScenarioError> {
        let from = self.int("search.rate.from", raw.rate.from, 1, 100_000_000)?;
        let max = self.int("search.rate.max", raw.rate.max, 1, 100_000_000)?;
        if max <= from {
            return self.err(
                "search.rate.max",
                format!("must be above `from` ({from}), got {max}"),
            );
        }
        let resolution = raw.resolution.unwrap_or(0.05);
        if !(resolution > 0.0 && resolution < 1.0) {
            return self.err(
                "search.resolution",
                format!("must be a fraction above 0 and below 1 (0.05 = 5%), got {resolution}"),
            );
        }
        let confirm = match raw.confirm {
            Some(n) => self.int("search.confirm", n, 1, 20)? as usize,
            None => 3,
        };
        Ok(Search {
            from,
            max,
            resolution,
            confirm,
        })
    }
}
