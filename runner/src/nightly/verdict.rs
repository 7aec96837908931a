//! Regression verdicts: is tonight's runtime slower than its recent past?
//!
//! A verdict compares tonight's trials of one runtime, scenario point and metric with the pooled
//! trials of the baseline: the last K earlier nights measured on the same machine fingerprint.
//! Like criterion.rs's `compare` it needs *both*
//! - a size: the relative change of medians beyond a noise threshold, and
//! - significance: a two-sided Mann-Whitney U test below `alpha`,
//!
//! because either alone cries wolf: with enough trials a 0.5% wobble is "significant", and one
//! noisy night alone can move a median by 10%.
//!
//! The threshold is the configured noise (default 5%) or, once the baseline has at least
//! [`MIN_NIGHTS_FOR_SPREAD`] nights, [`SPREAD_FACTOR`] times the coefficient of variation of its
//! nightly medians, whichever is larger: a metric that wanders 6% from night to night on this
//! machine (p99 on a shared runner does) is not judged against 5%.
//!
//! Until the baseline has [`MIN_NIGHTS_FOR_SPREAD`] nights, nothing is called regressed or
//! improved (the verdict says "unchanged" and the note says what it would have been): one busy
//! night of the machine in a two-night baseline would otherwise raise an alarm, and an alarm that
//! cries wolf in its first week is switched off.

use super::history::{Fingerprint, HistoryRow, Point};
use super::metric::{Better, Metric};
use super::run_folder::RunFolder;
use crate::stats;
use std::collections::BTreeMap;

pub const DEFAULT_BASELINE_NIGHTS: usize = 7;
/// Default noise threshold, percent: the floor for a quiet machine. Measured on the shared 2-core
/// development machine (release build, the two nightly scenarios, 3 nights of 3 trials): the
/// trial-to-trial CV within a night was 1-3% for p50 and peak RSS and 3-10% for CPU per request,
/// so 5% is above their noise; requests/s and p99 varied far more there (4-37% within a night,
/// 23-35% between nights' medians, other jobs sharing the CPUs), which the
/// [`SPREAD_FACTOR`] rule absorbs once the baseline has [`MIN_NIGHTS_FOR_SPREAD`] nights.
pub const DEFAULT_NOISE_PCT: f64 = 5.0;
pub const DEFAULT_ALPHA: f64 = 0.05;
/// The threshold is at least this many night-to-night CVs of the baseline.
pub const SPREAD_FACTOR: f64 = 2.0;
/// Fewer nights than this say too little about night-to-night spread: the threshold is not
/// widened, and no regression or improvement is claimed yet.
pub const MIN_NIGHTS_FOR_SPREAD: usize = 3;

#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// How many earlier nights form the baseline.
    pub baseline_nights: usize,
    /// Noise threshold as a fraction (0.05 = 5%).
    pub noise: f64,
    /// Significance level of the Mann-Whitney test.
    pub alpha: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            baseline_nights: DEFAULT_BASELINE_NIGHTS,
            noise: DEFAULT_NOISE_PCT / 100.0,
            alpha: DEFAULT_ALPHA,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    Regressed,
    Improved,
    Unchanged,
    /// Too few trials for the test ever to be significant: nothing can be said either way.
    Inconclusive,
    NoBaseline,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Regressed => "regressed",
            Outcome::Improved => "improved",
            Outcome::Unchanged => "unchanged",
            Outcome::Inconclusive => "inconclusive",
            Outcome::NoBaseline => "no-baseline",
        }
    }
}

/// The statistical part of a verdict: two samples in, outcome out.
#[derive(Clone, Debug, PartialEq)]
pub struct Judgement {
    pub outcome: Outcome,
    /// (new median - baseline median) / baseline median; `None` without a usable baseline.
    pub change: Option<f64>,
    /// A 95% bootstrap interval of `change` (`stats::bootstrap_change_ci`), which `compare`
    /// gives; `None` unless both samples have at least two values.
    pub change_ci: Option<(f64, f64)>,
    pub p_value: Option<f64>,
    /// The threshold the change was held against (fraction).
    pub threshold: f64,
    /// Why an outcome is what it is when that is not obvious ("" otherwise).
    pub note: String,
}

/// Judges `new` against `baseline` for a metric where `better` is the good direction.
pub fn judge(
    baseline: &[f64],
    new: &[f64],
    better: Better,
    threshold: f64,
    alpha: f64,
) -> Judgement {
    let no_baseline = |note: &str| Judgement {
        outcome: Outcome::NoBaseline,
        change: None,
        change_ci: None,
        p_value: None,
        threshold,
        note: note.to_string(),
    };
    if baseline.is_empty() {
        return no_baseline("no earlier measurement");
    }
    if new.is_empty() {
        return no_baseline("no measurement tonight");
    }
    let (base_med, new_med) = (stats::median(baseline), stats::median(new));
    if base_med == 0.0 {
        return no_baseline("baseline median is 0; a relative change is undefined");
    }
    let change = (new_med - base_med) / base_med.abs();
    let p = stats::mann_whitney_u(new, baseline).p_value;
    let significant = p < alpha;
    let (worse, improved) = match better {
        Better::Higher => (change < -threshold, change > threshold),
        Better::Lower => (change > threshold, change < -threshold),
    };
    let beyond = worse || improved;
    let min_p = stats::mann_whitney_min_p(new.len(), baseline.len());
    let outcome = match (significant, worse, improved) {
        (true, true, _) => Outcome::Regressed,
        (true, _, true) => Outcome::Improved,
        // No test of so few trials can reach `alpha`: "unchanged" would be a claim too.
        _ if min_p >= alpha => Outcome::Inconclusive,
        _ => Outcome::Unchanged,
    };
    let note = if min_p >= alpha {
        format!(
            "too few trials to decide (best possible p = {min_p:.2} with {} vs {}): rerun with \
             --repeat 5 --keep-trials",
            new.len(),
            baseline.len()
        )
    } else if beyond && !significant {
        format!(
            "beyond the {:.1}% threshold but not significant",
            threshold * 100.0
        )
    } else if !beyond && significant && change.abs() > 0.0 {
        format!(
            "significant but within the {:.1}% threshold",
            threshold * 100.0
        )
    } else {
        String::new()
    };
    Judgement {
        outcome,
        change: Some(change),
        change_ci: None,
        p_value: Some(p),
        threshold,
        note,
    }
}

/// Resamples for a change's interval, and their fixed seed (the same samples, the same
/// interval, run after run).
const CHANGE_RESAMPLES: usize = 2000;
const CHANGE_SEED: u64 = 0x5eed_c4a9;

/// One runtime, point and metric.
#[derive(Clone, Debug)]
pub struct Verdict {
    pub runtime: String,
    pub point: Point,
    pub metric: Metric,
    pub new_median: f64,
    pub baseline_median: Option<f64>,
    pub n_new: usize,
    pub n_baseline: usize,
    /// Distinct nights (or runs) in the baseline.
    pub baseline_nights: usize,
    pub judgement: Judgement,
}

impl Verdict {
    pub fn outcome(&self) -> Outcome {
        self.judgement.outcome
    }
}

/// Rows grouped by (runtime, point key).
fn by_series<'a>(
    rows: impl Iterator<Item = &'a HistoryRow>,
) -> BTreeMap<(String, String), Vec<&'a HistoryRow>> {
    let mut m: BTreeMap<(String, String), Vec<&HistoryRow>> = BTreeMap::new();
    for r in rows {
        m.entry((r.runtime.clone(), r.point().key()))
            .or_default()
            .push(r);
    }
    m
}

fn values(rows: &[&HistoryRow], metric: Metric) -> Vec<f64> {
    rows.iter().filter_map(|r| metric.get(r)).collect()
}

/// Tonight (`night`, a timestamp in `history`) against the last `baseline_nights` earlier nights
/// with the same machine fingerprint, for every runtime, point and metric measured tonight.
pub fn nightly_verdicts(history: &[HistoryRow], night: &str, settings: &Settings) -> Vec<Verdict> {
    let tonight = by_series(history.iter().filter(|r| r.timestamp == night));
    let mut out = Vec::new();
    for ((runtime, point_key), new_rows) in &tonight {
        let fingerprint = new_rows[0].fingerprint();
        let earlier: Vec<&HistoryRow> = history
            .iter()
            .filter(|r| {
                r.timestamp.as_str() < night
                    && &r.runtime == runtime
                    && &r.point().key() == point_key
            })
            .collect();
        let same_machine: Vec<&HistoryRow> = earlier
            .iter()
            .copied()
            .filter(|r| r.fingerprint() == fingerprint)
            .collect();
        let mut nights: Vec<&str> = same_machine.iter().map(|r| r.timestamp.as_str()).collect();
        nights.sort_unstable();
        nights.dedup();
        let window = &nights[nights.len().saturating_sub(settings.baseline_nights)..];
        let baseline: Vec<&HistoryRow> = same_machine
            .iter()
            .copied()
            .filter(|r| window.contains(&r.timestamp.as_str()))
            .collect();
        let other_machine = earlier
            .iter()
            .find(|r| r.fingerprint() != fingerprint)
            .map(|r| r.fingerprint());
        for metric in Metric::ALL {
            let new = values(new_rows, metric);
            if new.is_empty() {
                continue;
            }
            let base = values(&baseline, metric);
            let night_medians: Vec<f64> = window
                .iter()
                .filter_map(|n| {
                    let v: Vec<f64> = baseline
                        .iter()
                        .filter(|r| r.timestamp == *n)
                        .filter_map(|r| metric.get(r))
                        .collect();
                    (!v.is_empty()).then(|| stats::median(&v))
                })
                .collect();
            let mut threshold = settings.noise;
            if night_medians.len() >= MIN_NIGHTS_FOR_SPREAD {
                let spread = stats::cv(&night_medians);
                if spread.is_finite() {
                    threshold = threshold.max(SPREAD_FACTOR * spread);
                }
            }
            let mut judgement = judge(&base, &new, metric.better(), threshold, settings.alpha);
            let decisive = matches!(judgement.outcome, Outcome::Regressed | Outcome::Improved);
            if decisive && night_medians.len() < MIN_NIGHTS_FOR_SPREAD {
                judgement.note = format!(
                    "would be {}, but the baseline has {} night(s): {MIN_NIGHTS_FOR_SPREAD} are \
                     needed to know how much a night varies on this machine",
                    judgement.outcome.as_str(),
                    night_medians.len()
                );
                judgement.outcome = Outcome::Unchanged;
            }
            if judgement.outcome == Outcome::NoBaseline && base.is_empty() {
                judgement.note = match &other_machine {
                    Some(fp) if same_machine.is_empty() => format!(
                        "new machine fingerprint; earlier nights ran on {fp}, a new baseline starts"
                    ),
                    _ => "first night of this runtime and point".into(),
                };
            }
            out.push(Verdict {
                runtime: runtime.clone(),
                point: new_rows[0].point(),
                metric,
                new_median: stats::median(&new),
                baseline_median: (!base.is_empty()).then(|| stats::median(&base)),
                n_new: new.len(),
                n_baseline: base.len(),
                baseline_nights: night_medians.len(),
                judgement,
            });
        }
    }
    out
}

/// Run B against run A as the baseline (the `compare` command). The threshold is the configured
/// noise: two runs say nothing about night-to-night spread.
pub fn compare_runs(a: &RunFolder, b: &RunFolder, settings: &Settings) -> Vec<Verdict> {
    let base_groups = by_series(a.rows.iter());
    let mut out = Vec::new();
    for ((runtime, point_key), new_rows) in by_series(b.rows.iter()) {
        let base_rows = base_groups
            .get(&(runtime.clone(), point_key))
            .cloned()
            .unwrap_or_default();
        for metric in Metric::ALL {
            let new = values(&new_rows, metric);
            if new.is_empty() {
                continue;
            }
            let base = values(&base_rows, metric);
            let mut judgement = judge(&base, &new, metric.better(), settings.noise, settings.alpha);
            judgement.change_ci =
                stats::bootstrap_change_ci(&base, &new, 0.95, CHANGE_RESAMPLES, CHANGE_SEED);
            if base.is_empty() {
                judgement.note = format!("not measured in {}", a.path.display());
            }
            out.push(Verdict {
                runtime: runtime.clone(),
                point: new_rows[0].point(),
                metric,
                new_median: stats::median(&new),
                baseline_median: (!base.is_empty()).then(|| stats::median(&base)),
                n_new: new.len(),
                n_baseline: base.len(),
                baseline_nights: usize::from(!base.is_empty()),
                judgement,
            });
        }
    }
    out
}

/// Whether two runs may be compared: same machine fingerprint, or an error that says what
/// differs and how to override.
pub fn check_comparable(a: &RunFolder, b: &RunFolder, force: bool) -> anyhow::Result<()> {
    if a.fingerprint == b.fingerprint || force {
        return Ok(());
    }
    let diff = |what: &str, x: &dyn std::fmt::Display, y: &dyn std::fmt::Display| {
        format!("\n  {what}: {x} (A) vs {y} (B)")
    };
    let (fa, fb): (&Fingerprint, &Fingerprint) = (&a.fingerprint, &b.fingerprint);
    let mut msg = format!(
        "refusing to compare runs from different machines ({} and {}):",
        a.path.display(),
        b.path.display()
    );
    if fa.cpu_model != fb.cpu_model {
        msg.push_str(&diff("CPU", &fa.cpu_model, &fb.cpu_model));
    }
    if fa.cores != fb.cores {
        msg.push_str(&diff("cores", &fa.cores, &fb.cores));
    }
    if fa.kernel != fb.kernel {
        msg.push_str(&diff("kernel", &fa.kernel, &fb.kernel));
    }
    msg.push_str(
        "\nnumbers from different machines differ for reasons other than the code; pass --force \
         to compare anyway",
    );
    anyhow::bail!(msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nightly::history::tests::row;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, Normal};

    fn night(i: usize) -> String {
        format!("2025-01-{:02}T03:00:00Z", i + 1)
    }

    /// `nights` baseline nights then tonight, `trials` each, every metric drawn around its
    /// level with `cv` trial noise and a 1% night-to-night wobble; tonight's values are scaled:
    /// requests/s by `rps_factor`, p99 by `latency_factor`.
    fn synthetic(
        seed: u64,
        nights: usize,
        trials: u32,
        cv: f64,
        rps_factor: f64,
        latency_factor: f64,
    ) -> Vec<HistoryRow> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let trial_noise = Normal::new(1.0, cv).unwrap();
        let night_noise = Normal::new(1.0, 0.01).unwrap();
        let mut rows = Vec::new();
        for n in 0..=nights {
            let tonight = n == nights;
            let wobble = night_noise.sample(&mut rng);
            for t in 0..trials {
                let mut r = row(&night(n), "tokio", t, 0.0);
                let mut draw = |level: f64| level * wobble * trial_noise.sample(&mut rng);
                r.requests_per_sec = Some(draw(50_000.0) * if tonight { rps_factor } else { 1.0 });
                r.p99_us = Some(draw(900.0) * if tonight { latency_factor } else { 1.0 });
                r.p50_us = Some(draw(400.0));
                r.server_cpu_us_per_request = Some(draw(12.0));
                r.server_rss_peak_bytes = Some(draw(8e6));
                rows.push(r);
            }
        }
        rows
    }

    fn outcome(v: &[Verdict], metric: Metric) -> Outcome {
        v.iter().find(|v| v.metric == metric).unwrap().outcome()
    }

    #[test]
    fn a_a_comparison_is_unchanged_in_at_least_95_percent_of_seeds() {
        let settings = Settings::default();
        let seeds = 200;
        let mut unchanged = 0;
        for seed in 0..seeds {
            let h = synthetic(seed, 7, 5, 0.03, 1.0, 1.0);
            let v = nightly_verdicts(&h, &night(7), &settings);
            // Every metric but capacity, which only a capacity search measures.
            assert_eq!(v.len(), Metric::ALL.len() - 1);
            if v.iter().all(|v| v.outcome() == Outcome::Unchanged) {
                unchanged += 1;
            }
        }
        eprintln!("A/A: {unchanged}/{seeds} seeds unchanged on every metric");
        assert!(
            unchanged as f64 >= 0.95 * seeds as f64,
            "{unchanged}/{seeds} unchanged"
        );
    }

    #[test]
    fn a_15_percent_slowdown_is_regressed_in_at_least_95_percent_of_seeds() {
        let settings = Settings::default();
        let seeds = 200;
        let (mut rps_regressed, mut p99_regressed) = (0, 0);
        for seed in 0..seeds {
            // 15% fewer requests/s and 15% higher p99: both are worse, in opposite directions.
            let h = synthetic(1000 + seed, 7, 5, 0.03, 0.85, 1.15);
            let v = nightly_verdicts(&h, &night(7), &settings);
            rps_regressed += usize::from(outcome(&v, Metric::RequestsPerSec) == Outcome::Regressed);
            p99_regressed += usize::from(outcome(&v, Metric::P99Us) == Outcome::Regressed);
            let rps = v
                .iter()
                .find(|v| v.metric == Metric::RequestsPerSec)
                .unwrap();
            assert_eq!((rps.n_new, rps.n_baseline, rps.baseline_nights), (5, 35, 7));
        }
        eprintln!("15% slowdown: requests/s {rps_regressed}/{seeds}, p99 {p99_regressed}/{seeds}");
        assert!(
            rps_regressed as f64 >= 0.95 * seeds as f64,
            "{rps_regressed}"
        );
        assert!(
            p99_regressed as f64 >= 0.95 * seeds as f64,
            "{p99_regressed}"
        );
    }

    #[test]
    fn a_10_percent_slowdown_is_caught_too() {
        let settings = Settings::default();
        let seeds = 200;
        let mut regressed = 0;
        for seed in 0..seeds {
            let h = synthetic(5000 + seed, 7, 5, 0.03, 0.90, 1.0);
            let v = nightly_verdicts(&h, &night(7), &settings);
            regressed += usize::from(outcome(&v, Metric::RequestsPerSec) == Outcome::Regressed);
        }
        eprintln!("10% slowdown: requests/s {regressed}/{seeds}");
        assert!(regressed as f64 >= 0.95 * seeds as f64, "{regressed}");
    }

    #[test]
    fn the_good_direction_is_an_improvement() {
        let h = synthetic(5, 7, 5, 0.03, 1.20, 0.80);
        let v = nightly_verdicts(&h, &night(7), &Settings::default());
        assert_eq!(outcome(&v, Metric::RequestsPerSec), Outcome::Improved);
        assert_eq!(outcome(&v, Metric::P99Us), Outcome::Improved);
        let rps = v
            .iter()
            .find(|v| v.metric == Metric::RequestsPerSec)
            .unwrap();
        assert!((rps.judgement.change.unwrap() - 0.20).abs() < 0.05);
    }

    #[test]
    fn a_small_significant_change_within_the_threshold_is_unchanged() {
        // 3% slower with almost no noise: significant, but below the 5% threshold.
        let h = synthetic(9, 7, 5, 0.002, 0.97, 1.0);
        let v = nightly_verdicts(&h, &night(7), &Settings::default());
        let rps = v
            .iter()
            .find(|v| v.metric == Metric::RequestsPerSec)
            .unwrap();
        assert_eq!(rps.outcome(), Outcome::Unchanged);
        assert!(rps.judgement.p_value.unwrap() < 0.05);
        assert!(
            rps.judgement.note.contains("within the"),
            "{:?}",
            rps.judgement
        );
    }

    #[test]
    fn a_noisy_baseline_widens_the_threshold() {
        // Nightly medians alternate +-8%; tonight is 15% below the pooled median but no lower
        // than three of the seven baseline nights.
        let mut h = Vec::new();
        for n in 0..8 {
            let level = if n == 7 {
                0.92
            } else if n % 2 == 0 {
                1.08
            } else {
                0.92
            };
            for t in 0..5 {
                h.push(row(
                    &night(n),
                    "tokio",
                    t,
                    50_000.0 * level * (1.0 + t as f64 * 1e-3),
                ));
            }
        }
        let v = nightly_verdicts(&h, &night(7), &Settings::default());
        let rps = v
            .iter()
            .find(|v| v.metric == Metric::RequestsPerSec)
            .unwrap();
        assert!(rps.judgement.threshold > 0.15, "{:?}", rps.judgement);
        assert_eq!(rps.outcome(), Outcome::Unchanged);
    }

    #[test]
    fn a_fingerprint_change_starts_a_new_baseline() {
        let mut h = synthetic(3, 7, 5, 0.03, 0.5, 1.0);
        for r in h.iter_mut().filter(|r| r.timestamp == night(7)) {
            r.host_kernel = "6.12.0".into();
        }
        let v = nightly_verdicts(&h, &night(7), &Settings::default());
        for v in &v {
            assert_eq!(v.outcome(), Outcome::NoBaseline, "{v:?}");
            assert!(v.judgement.note.contains("new machine fingerprint"));
        }
        // The next night on the new machine has tonight as its baseline.
        let mut next: Vec<HistoryRow> = h
            .iter()
            .filter(|r| r.timestamp == night(7))
            .cloned()
            .collect();
        for r in next.iter_mut() {
            r.timestamp = night(8);
        }
        h.extend(next);
        let v = nightly_verdicts(&h, &night(8), &Settings::default());
        assert!(v.iter().all(|v| v.outcome() == Outcome::Unchanged));
        assert!(v
            .iter()
            .all(|v| v.n_baseline == 5 && v.baseline_nights == 1));
    }

    #[test]
    fn a_young_baseline_reports_but_does_not_alarm() {
        // Two baseline nights and a 30% drop: noted, not called a regression.
        let h = synthetic(11, 2, 5, 0.03, 0.70, 1.0);
        let v = nightly_verdicts(&h, &night(2), &Settings::default());
        let rps = v
            .iter()
            .find(|v| v.metric == Metric::RequestsPerSec)
            .unwrap();
        assert_eq!(rps.outcome(), Outcome::Unchanged);
        assert!(
            rps.judgement.note.starts_with("would be regressed"),
            "{:?}",
            rps.judgement
        );
        // With a third night it is.
        let h = synthetic(11, 3, 5, 0.03, 0.70, 1.0);
        let v = nightly_verdicts(&h, &night(3), &Settings::default());
        assert_eq!(outcome(&v, Metric::RequestsPerSec), Outcome::Regressed);
    }

    #[test]
    fn the_baseline_is_the_last_k_nights_only() {
        // Ten old nights at half the speed, then seven normal ones: with K = 7 the slow past
        // is out of the window.
        let mut h = Vec::new();
        for n in 0..18 {
            let level = if n < 10 { 25_000.0 } else { 50_000.0 };
            for t in 0..5 {
                h.push(row(&night(n), "tokio", t, level + t as f64));
            }
        }
        let v = nightly_verdicts(&h, &night(17), &Settings::default());
        let rps = v
            .iter()
            .find(|v| v.metric == Metric::RequestsPerSec)
            .unwrap();
        assert_eq!(rps.baseline_nights, 7);
        assert_eq!(rps.n_baseline, 35);
        assert_eq!(rps.baseline_median, Some(50_002.0));
        assert_eq!(rps.outcome(), Outcome::Unchanged);
    }

    #[test]
    fn too_few_trials_never_claim_a_regression_and_say_why() {
        let j = judge(
            &[100.0, 101.0, 99.0],
            &[70.0, 71.0, 69.0],
            Better::Higher,
            0.05,
            0.05,
        );
        assert_eq!(j.outcome, Outcome::Inconclusive);
        assert!(j.note.contains("too few trials"), "{}", j.note);
        // One trial each: a halving is not "unchanged" either.
        let j = judge(&[100.0], &[50.0], Better::Higher, 0.05, 0.05);
        assert_eq!(j.outcome, Outcome::Inconclusive);
        assert!(
            j.note.contains("1 vs 1") && j.note.contains("--repeat"),
            "{}",
            j.note
        );
        let j = judge(&[], &[70.0], Better::Higher, 0.05, 0.05);
        assert_eq!(j.outcome, Outcome::NoBaseline);
    }
}
