//! Small, pure statistics for comparing benchmark trials: robust location (median), spread
//! (coefficient of variation), a seeded bootstrap confidence interval of the median, and the
//! Mann-Whitney U rank test.
//!
//! Benchmark samples are few (3 to 10 trials a night), skewed and sometimes tied (RSS is counted
//! in pages), so everything here is rank- or order-based rather than assuming normality.
//!
//! Empty input gives `NaN` rather than a panic, so a missing metric shows up as "no value" in a
//! table instead of taking a whole report down.
//!
//! References:
//! - Hyndman, R. J. & Fan, Y. (1996). Sample quantiles in statistical packages. *The American
//!   Statistician* 50(4), 361-365 (definition 7, the default of R and NumPy, is used here).
//! - Efron, B. & Tibshirani, R. J. (1993). *An Introduction to the Bootstrap*, ch. 13 (the
//!   percentile interval).
//! - Mann, H. B. & Whitney, D. R. (1947). On a test of whether one of two random variables is
//!   stochastically larger than the other. *Ann. Math. Statist.* 18(1), 50-60.
//! - Lehmann, E. L. (1975). *Nonparametrics: Statistical Methods Based on Ranks*, §1.4 (normal
//!   approximation with tie and continuity correction) and §1.3 (the exact conditional
//!   distribution of the rank sum given the ties, which the exact test here computes).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use statrs::distribution::{ContinuousCDF, Normal};

/// The one random generator behind everything `--seed` repeats (the trial order, the
/// bootstrap): ChaCha8, whose output for a seed is fixed across platforms and releases.
pub fn seeded_rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// A seed for a run that was given none (recorded in meta.json, so `--seed` repeats the run's
/// order): from the clock and the process id, which is all it needs to differ between runs.
pub fn fresh_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut rng = seeded_rng(nanos ^ (u64::from(std::process::id()) << 32));
    rng.random_range(0..i64::MAX as u64)
}

/// The median (mean of the two middle values for an even count); `NaN` for an empty slice.
pub fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    quantile_sorted(&v, 0.5)
}

/// Quantile `q` (0..=1) of an ascending slice, linear interpolation between order statistics
/// (Hyndman & Fan definition 7); `NaN` for an empty slice.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        1 => sorted[0],
        n => {
            let h = (n - 1) as f64 * q.clamp(0.0, 1.0);
            let lo = h.floor() as usize;
            let hi = (lo + 1).min(n - 1);
            sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
        }
    }
}

/// Arithmetic mean; `NaN` for an empty slice.
pub fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Sample standard deviation (n - 1 denominator); `NaN` for fewer than two values.
pub fn std_dev(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return f64::NAN;
    }
    let m = mean(xs);
    let ss: f64 = xs.iter().map(|x| (x - m) * (x - m)).sum();
    (ss / (xs.len() - 1) as f64).sqrt()
}

/// Coefficient of variation: sample standard deviation over the absolute mean, as a fraction
/// (0.03 = 3%). `NaN` for fewer than two values or a zero mean.
pub fn cv(xs: &[f64]) -> f64 {
    let m = mean(xs);
    if m == 0.0 {
        return f64::NAN;
    }
    std_dev(xs) / m.abs()
}

/// Percentile-bootstrap confidence interval of the median (Efron & Tibshirani, ch. 13):
/// `resamples` resamples with replacement, the median of each, and the `(1-confidence)/2` and
/// `(1+confidence)/2` quantiles of those medians.
///
/// Seeded with ChaCha8, whose output for a seed is fixed across platforms and `rand_chacha`
/// releases, so the same trials always give the same interval. Returns `(NaN, NaN)` for an
/// empty slice and `(x, x)` for one value or zero resamples.
pub fn bootstrap_median_ci(xs: &[f64], confidence: f64, resamples: usize, seed: u64) -> (f64, f64) {
    match xs.len() {
        0 => return (f64::NAN, f64::NAN),
        1 => return (xs[0], xs[0]),
        _ if resamples == 0 => {
            let m = median(xs);
            return (m, m);
        }
        _ => {}
    }
    let mut rng = seeded_rng(seed);
    let mut sample = vec![0.0; xs.len()];
    let mut medians = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        for s in sample.iter_mut() {
            *s = xs[rng.random_range(0..xs.len())];
        }
        sample.sort_by(f64::total_cmp);
        medians.push(quantile_sorted(&sample, 0.5));
    }
    medians.sort_by(f64::total_cmp);
    let alpha = 1.0 - confidence.clamp(0.0, 1.0);
    (
        quantile_sorted(&medians, alpha / 2.0),
        quantile_sorted(&medians, 1.0 - alpha / 2.0),
    )
}

/// A bootstrap confidence interval for the relative change of the median from `base` to `new`
/// ((median(new) - median(base)) / median(base)), both resampled independently, as criterion
/// reports `change: [-2.1% +0.5% +3.0%]`. Seeded (ChaCha8) so the same samples give the same
/// interval. `None` unless both have at least two values (one value has no spread to resample)
/// and the resampled base medians are never zero.
pub fn bootstrap_change_ci(
    base: &[f64],
    new: &[f64],
    confidence: f64,
    resamples: usize,
    seed: u64,
) -> Option<(f64, f64)> {
    if base.len() < 2 || new.len() < 2 || resamples == 0 {
        return None;
    }
    let mut rng = seeded_rng(seed);
    let mut draw = |xs: &[f64]| {
        let mut s: Vec<f64> = (0..xs.len())
            .map(|_| xs[rng.random_range(0..xs.len())])
            .collect();
        s.sort_by(f64::total_cmp);
        quantile_sorted(&s, 0.5)
    };
    let mut changes = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        let (b, n) = (draw(base), draw(new));
        if b == 0.0 {
            return None;
        }
        changes.push((n - b) / b.abs());
    }
    changes.sort_by(f64::total_cmp);
    let alpha = 1.0 - confidence.clamp(0.0, 1.0);
    Some((
        quantile_sorted(&changes, alpha / 2.0),
        quantile_sorted(&changes, 1.0 - alpha / 2.0),
    ))
}

/// A distribution-free confidence interval for the median from order statistics (Conover,
/// *Practical Nonparametric Statistics*, 3rd ed., §3.2): with the values sorted, the interval
/// `[x(j), x(n+1-j)]` covers the true median with probability `1 - 2·P(B ≤ j-1)`, `B` binomial
/// (n, ½), whatever the distribution. Returns the narrowest such interval covering at least
/// `confidence`, with its exact coverage; with too few values for that (fewer than 6 for 95%)
/// the widest one, `[min, max]`, and the lower coverage it has (3 values: 0.75, 5: 0.9375).
/// `None` for an empty slice; one value gives `(x, x, 0)`.
pub fn median_ci(xs: &[f64], confidence: f64) -> Option<(f64, f64, f64)> {
    let mut v: Vec<f64> = xs.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let coverage = |j: usize| -> f64 {
        // P(B <= j-1) for B ~ Binomial(n, 1/2), summed exactly (n is a trial count: small).
        let mut p = 0.0;
        let mut c = 1.0f64; // C(n, 0)
        for k in 0..j {
            p += c;
            c = c * (n - k) as f64 / (k + 1) as f64;
        }
        1.0 - 2.0 * p / 2f64.powi(n as i32)
    };
    let mut j = 1;
    while j < n.div_ceil(2) && coverage(j + 1) >= confidence {
        j += 1;
    }
    Some((v[j - 1], v[n - j], coverage(j).max(0.0)))
}

/// How a Mann-Whitney p-value was obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MwMethod {
    /// Exact: from the permutation distribution of the (mid)rank sum, ties included.
    Exact,
    /// Normal approximation with tie and continuity correction.
    Asymptotic,
}

/// Result of [`mann_whitney_u`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MannWhitney {
    /// U of the first sample: how many (a, b) pairs have a > b, ties counting one half.
    pub u: f64,
    /// Two-sided p-value; `NaN` when either sample is empty.
    pub p_value: f64,
    pub method: MwMethod,
}

/// The exact distribution is used when the smaller sample has at most this many values (SciPy's
/// `method="auto"` bound); above it the normal approximation is close.
pub const MW_EXACT_MAX_SMALL: usize = 8;
/// ... and both together at most this many (bounds the exact table: n x small x 2n x small).
pub const MW_EXACT_MAX_TOTAL: usize = 400;

/// Two-sided Mann-Whitney U test of "a and b come from the same distribution".
///
/// Exact when one sample has at most [`MW_EXACT_MAX_SMALL`] values (and both together at most
/// [`MW_EXACT_MAX_TOTAL`]), else the normal approximation with tie and continuity correction.
/// Without ties this is `scipy.stats.mannwhitneyu(a, b)`. With ties and small samples SciPy
/// falls back to the normal approximation, which can report p-values below anything the data
/// could produce (3 vs 6 tied trials: 0.008 where the exact minimum is 0.024); here the exact
/// permutation distribution of the midrank sum is used instead, as SciPy's
/// `method=PermutationMethod()` does.
pub fn mann_whitney_u(a: &[f64], b: &[f64]) -> MannWhitney {
    let exact = a.len().min(b.len()) <= MW_EXACT_MAX_SMALL;
    mann_whitney_u_with(
        a,
        b,
        if exact {
            MwMethod::Exact
        } else {
            MwMethod::Asymptotic
        },
    )
}

/// [`mann_whitney_u`] with the method forced. `Exact` falls back to `Asymptotic` when both
/// samples together exceed [`MW_EXACT_MAX_TOTAL`].
pub fn mann_whitney_u_with(a: &[f64], b: &[f64], method: MwMethod) -> MannWhitney {
    let ranks = RankSums::new(a, b);
    let method = if a.len() + b.len() > MW_EXACT_MAX_TOTAL {
        MwMethod::Asymptotic
    } else {
        method
    };
    ranks.test(method)
}

/// The smallest two-sided p-value an exact test with these sample sizes can give: one sample
/// entirely above the other, without ties (ties only raise it). When it is above the
/// significance level, no data can be "significant", which a report should say rather than
/// calling the result unchanged.
pub fn mann_whitney_min_p(n_a: usize, n_b: usize) -> f64 {
    if n_a == 0 || n_b == 0 {
        return 1.0;
    }
    // 2 / C(n_a + n_b, n_a), in logs to avoid overflow.
    let (k, n) = (n_a.min(n_b), n_a + n_b);
    let ln_choose: f64 = (0..k)
        .map(|i| ((n - i) as f64).ln() - ((i + 1) as f64).ln())
        .sum();
    (2.0 * (-ln_choose).exp()).min(1.0)
}

struct RankSums {
    n_a: usize,
    n_b: usize,
    /// Twice the midrank of every pooled value (an integer), first sample first.
    doubled_ranks: Vec<u64>,
    /// Sum of t^3 - t over groups of tied values.
    tie_term: f64,
}

impl RankSums {
    fn new(a: &[f64], b: &[f64]) -> RankSums {
        let values: Vec<f64> = a.iter().chain(b).copied().collect();
        let mut order: Vec<usize> = (0..values.len()).collect();
        order.sort_by(|&x, &y| values[x].total_cmp(&values[y]));
        let mut doubled_ranks = vec![0; values.len()];
        let mut tie_term = 0.0;
        let mut i = 0;
        while i < order.len() {
            let mut j = i + 1;
            while j < order.len() && values[order[j]] == values[order[i]] {
                j += 1;
            }
            // Sorted positions i..j (0-based) share the mean of ranks i+1 ..= j; twice that
            // mean, i+1+j, is an integer.
            for &k in &order[i..j] {
                doubled_ranks[k] = (i + 1 + j) as u64;
            }
            let t = (j - i) as f64;
            tie_term += t * t * t - t;
            i = j;
        }
        RankSums {
            n_a: a.len(),
            n_b: b.len(),
            doubled_ranks,
            tie_term,
        }
    }

    /// U of the first sample.
    fn u_a(&self) -> f64 {
        let rank_sum: u64 = self.doubled_ranks[..self.n_a].iter().sum();
        rank_sum as f64 / 2.0 - (self.n_a * (self.n_a + 1)) as f64 / 2.0
    }

    fn test(&self, method: MwMethod) -> MannWhitney {
        let (n_a, n_b) = (self.n_a, self.n_b);
        let u = self.u_a();
        if n_a == 0 || n_b == 0 {
            return MannWhitney {
                u,
                p_value: f64::NAN,
                method,
            };
        }
        let p = match method {
            MwMethod::Exact => self.exact_p(),
            MwMethod::Asymptotic => {
                // Two-sided: the larger of U_a and U_b against the upper tail.
                let u_max = u.max((n_a * n_b) as f64 - u);
                let n = (n_a + n_b) as f64;
                let mu = (n_a * n_b) as f64 / 2.0;
                let var = (n_a * n_b) as f64 / 12.0 * ((n + 1.0) - self.tie_term / (n * (n - 1.0)));
                if var <= 0.0 {
                    1.0 // every value tied: no evidence of any difference
                } else {
                    let z = (u_max - mu - 0.5) / var.sqrt();
                    let normal = Normal::new(0.0, 1.0).expect("standard normal");
                    2.0 * normal.sf(z)
                }
            }
        };
        MannWhitney {
            u,
            p_value: p.clamp(0.0, 1.0),
            method,
        }
    }

    /// Exact two-sided p: under the null hypothesis every choice of which `k` pooled values form
    /// the smaller sample is equally likely. Counting the choices by their (doubled) rank sum is
    /// a subset-sum table (`count[c][s]`: choices of `c` values summing to `s`), the same
    /// distribution SciPy's permutation method enumerates. p = 2 min(P(S <= s), P(S >= s)).
    fn exact_p(&self) -> f64 {
        let (small, k) = if self.n_a <= self.n_b {
            (&self.doubled_ranks[..self.n_a], self.n_a)
        } else {
            (&self.doubled_ranks[self.n_a..], self.n_b)
        };
        let observed: u64 = small.iter().sum();
        let max_sum: u64 = {
            let mut r = self.doubled_ranks.clone();
            r.sort_unstable();
            r.iter().rev().take(k).sum()
        };
        let width = max_sum as usize + 1;
        // Counts up to C(400, 8) ~ 1e16 stay exact enough in f64 for a probability.
        let mut count = vec![vec![0.0f64; width]; k + 1];
        count[0][0] = 1.0;
        for (seen, &r) in self.doubled_ranks.iter().enumerate() {
            let r = r as usize;
            for c in (1..=k.min(seen + 1)).rev() {
                let (lower, upper) = count.split_at_mut(c);
                let (from, to) = (&lower[c - 1], &mut upper[0]);
                for s in (r..width).rev() {
                    to[s] += from[s - r];
                }
            }
        }
        let dist = &count[k];
        let total: f64 = dist.iter().sum();
        let obs = observed as usize;
        let le: f64 = dist[..=obs].iter().sum();
        let ge: f64 = dist[obs..].iter().sum();
        (2.0 * le.min(ge) / total).min(1.0)
    }
}

/// An ordinary least-squares line `y = intercept + slope * x` and how much of the variation of
/// `y` it explains (the coefficient of determination R², 0..=1; 0 when `y` does not vary).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LineFit {
    pub slope: f64,
    pub intercept: f64,
    pub r2: f64,
}

/// Least-squares fit of `ys` against `xs`; `None` for fewer than two points or when every `x`
/// is the same.
pub fn linear_fit(xs: &[f64], ys: &[f64]) -> Option<LineFit> {
    if xs.len() != ys.len() || xs.len() < 2 {
        return None;
    }
    let (mx, my) = (mean(xs), mean(ys));
    let sxx: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
    if sxx == 0.0 {
        return None;
    }
    let sxy: f64 = xs.iter().zip(ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let slope = sxy / sxx;
    let intercept = my - slope * mx;
    let ss_tot: f64 = ys.iter().map(|y| (y - my).powi(2)).sum();
    let ss_res: f64 = xs
        .iter()
        .zip(ys)
        .map(|(x, y)| (y - intercept - slope * x).powi(2))
        .sum();
    let r2 = if ss_tot == 0.0 {
        0.0
    } else {
        (1.0 - ss_res / ss_tot).clamp(0.0, 1.0)
    };
    Some(LineFit {
        slope,
        intercept,
        r2,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_interval_covers_the_shift_and_is_absent_without_spread() {
        let base = [100.0, 101.0, 99.0, 100.5, 99.5];
        let new: Vec<f64> = base.iter().map(|x| x * 0.8).collect();
        let (lo, hi) = bootstrap_change_ci(&base, &new, 0.95, 2000, 7).unwrap();
        assert!(lo <= -0.2 + 1e-9 && hi >= -0.2 - 1e-9, "[{lo}, {hi}]");
        assert!(
            hi < 0.0,
            "a 20% drop with 1% noise is surely a drop: [{lo}, {hi}]"
        );
        let (lo, hi) = bootstrap_change_ci(&base, &base, 0.95, 2000, 7).unwrap();
        assert!(lo < 0.0 && hi > 0.0, "the same samples: [{lo}, {hi}]");
        assert_eq!(bootstrap_change_ci(&[100.0], &[50.0], 0.95, 2000, 7), None);
        assert_eq!(
            bootstrap_change_ci(&base, &new, 0.95, 2000, 7),
            bootstrap_change_ci(&base, &new, 0.95, 2000, 7),
            "seeded"
        );
    }
    use rand_distr::{Distribution, LogNormal};

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn median_odd_even_and_empty() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[7.0]), 7.0);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn quantile_matches_numpy_linear() {
        // numpy.quantile([1, 2, 3, 4, 10], [0.1, 0.9]) == [1.4, 7.6]
        let v = [1.0, 2.0, 3.0, 4.0, 10.0];
        assert!(close(quantile_sorted(&v, 0.1), 1.4, 1e-12));
        assert!(close(quantile_sorted(&v, 0.9), 7.6, 1e-12));
    }

    #[test]
    fn cv_matches_reference() {
        // numpy: np.std(x, ddof=1) / np.mean(x) = 0.427617987059879
        let x = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        assert!(close(cv(&x), 0.427_617_987_059_879, 1e-12));
        assert!(cv(&[1.0]).is_nan());
        assert!(cv(&[0.0, 0.0]).is_nan());
        assert_eq!(cv(&[5.0, 5.0, 5.0]), 0.0);
    }

    // Reference values below are from scipy.stats.mannwhitneyu (SciPy 1.17.1), two-sided.

    #[test]
    fn mann_whitney_exact_small_samples() {
        let x = [19.0, 22.0, 16.0, 29.0, 24.0];
        let y = [20.0, 11.0, 17.0, 12.0];
        let r = mann_whitney_u(&x, &y);
        assert_eq!(r.method, MwMethod::Exact);
        assert_eq!(r.u, 17.0);
        assert!(close(r.p_value, 0.111_111_111_111_111_1, 1e-12), "{r:?}");
        // Swapping the samples gives the complementary U and the same p-value.
        let s = mann_whitney_u(&y, &x);
        assert_eq!(s.u, 3.0);
        assert!(close(s.p_value, r.p_value, 1e-12));
    }

    #[test]
    fn mann_whitney_exact_matches_scipy_when_forced() {
        let a = [1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30];
        let b = [0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.15, 1.29];
        // 9 vs 9 is above the exact bound: the normal approximation, with b's ties corrected.
        let auto = mann_whitney_u(&a, &b);
        assert_eq!(auto.method, MwMethod::Asymptotic);
        assert_eq!(auto.u, 58.0);
        assert!(
            close(auto.p_value, 0.132_919_458_185_318_92, 1e-9),
            "{auto:?}"
        );
        // Without ties, the exact distribution on 9 x 9 against SciPy's method="exact".
        let b2 = [0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.061, 3.15, 1.291];
        let exact = mann_whitney_u_with(&a, &b2, MwMethod::Exact);
        assert_eq!(exact.method, MwMethod::Exact);
        assert_eq!(exact.u, 58.0);
        assert!(
            close(exact.p_value, 0.135_911_147_675_853_55, 1e-12),
            "{exact:?}"
        );
    }

    #[test]
    fn mann_whitney_with_ties_asymptotic_and_exact() {
        let c = [1.0, 2.0, 2.0, 3.0, 3.0, 3.0, 4.0, 5.0];
        let d = [3.0, 4.0, 4.0, 5.0, 5.0, 6.0, 7.0, 7.0, 8.0];
        let approx = mann_whitney_u_with(&c, &d, MwMethod::Asymptotic);
        assert_eq!(approx.u, 7.5);
        assert!(
            close(approx.p_value, 0.006_373_133_838_085_873, 1e-9),
            "{approx:?}"
        );
        // SciPy: mannwhitneyu(c, d, method=PermutationMethod(n_resamples=np.inf))
        let exact = mann_whitney_u(&c, &d);
        assert_eq!(exact.method, MwMethod::Exact);
        assert!(
            close(exact.p_value, 0.005_183_052_241_875_772, 1e-12),
            "{exact:?}"
        );
    }

    #[test]
    fn tied_small_samples_never_beat_the_exact_minimum() {
        // Peak RSS of 3 trials against 6, in pages: the approximation says 0.021, but no split
        // of 9 values into 3 and 6 can be rarer than 2 / C(9, 3) = 0.0238.
        let x = [7.37, 7.37, 7.41];
        let y = [7.18, 7.18, 7.18, 7.20, 7.18, 7.21];
        let r = mann_whitney_u(&x, &y);
        assert_eq!(r.u, 18.0);
        assert!(close(r.p_value, 0.023_809_523_809_523_808, 1e-12), "{r:?}");
        let approx = mann_whitney_u_with(&x, &y, MwMethod::Asymptotic);
        assert!(
            close(approx.p_value, 0.021_291_755_267_428_082, 1e-9),
            "{approx:?}"
        );
        // Ties that are not symmetric: SciPy's permutation p is 2/3.
        let r = mann_whitney_u(&[1.0, 1.0, 1.0, 2.0], &[1.0, 1.0, 1.0, 1.0, 3.0, 3.0]);
        assert_eq!(r.u, 10.0);
        assert!(close(r.p_value, 2.0 / 3.0, 1e-12), "{r:?}");
    }

    #[test]
    fn mann_whitney_one_small_sample_against_a_baseline() {
        // The nightly shape: 5 new trials against a 35-trial baseline.
        let s = [10.1, 10.5, 9.8, 10.3, 10.0];
        let l: Vec<f64> = (0..35)
            .map(|i| 9.0 + 2.0 * i as f64 / 34.0 + 0.001)
            .collect();
        let exact = mann_whitney_u(&s, &l);
        assert_eq!(exact.method, MwMethod::Exact);
        assert_eq!(exact.u, 99.0);
        assert!(
            close(exact.p_value, 0.662_326_293_905_241_3, 1e-12),
            "{exact:?}"
        );
        let approx = mann_whitney_u_with(&s, &l, MwMethod::Asymptotic);
        assert!(
            close(approx.p_value, 0.652_815_143_513_654_2, 1e-9),
            "{approx:?}"
        );
    }

    #[test]
    fn mann_whitney_degenerate_inputs() {
        let r = mann_whitney_u(&[1.0, 1.0, 1.0], &[1.0, 1.0, 1.0]);
        assert_eq!(r.u, 4.5);
        assert_eq!(r.p_value, 1.0);
        assert!(mann_whitney_u(&[], &[1.0]).p_value.is_nan());
    }

    #[test]
    fn mann_whitney_min_p_is_the_exact_extreme() {
        // 3 vs 3 can never reach 0.05: 2 / C(6, 3) = 0.1.
        assert!(close(mann_whitney_min_p(3, 3), 0.1, 1e-12));
        let extreme = mann_whitney_u(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]);
        assert!(close(extreme.p_value, 0.1, 1e-12));
        assert!(close(mann_whitney_min_p(5, 35), 2.0 / 658_008.0, 1e-15));
    }

    #[test]
    fn exact_p_is_one_at_the_centre_and_symmetric() {
        // U = n_a n_b / 2 exactly: nothing is more typical.
        let r = mann_whitney_u(&[1.0, 4.0], &[2.0, 3.0]);
        assert_eq!(r.u, 2.0);
        assert_eq!(r.p_value, 1.0);
        let a = [3.1, 5.2, 9.9, 1.4, 7.7];
        let b = [2.2, 8.8, 6.1, 4.3, 0.5, 10.5, 11.0];
        assert!(close(
            mann_whitney_u(&a, &b).p_value,
            mann_whitney_u(&b, &a).p_value,
            1e-12
        ));
    }

    #[test]
    fn bootstrap_is_seeded_and_brackets_the_median() {
        let x = [9.7, 10.2, 10.0, 9.9, 10.4, 10.1, 9.8];
        let a = bootstrap_median_ci(&x, 0.95, 2000, 42);
        let b = bootstrap_median_ci(&x, 0.95, 2000, 42);
        assert_eq!(a, b);
        assert!(a.0 <= median(&x) && median(&x) <= a.1, "{a:?}");
        assert!(a.0 >= 9.7 && a.1 <= 10.4);
        let narrow = bootstrap_median_ci(&x, 0.5, 2000, 42);
        assert!(narrow.0 >= a.0 && narrow.1 <= a.1);
        assert_eq!(bootstrap_median_ci(&[3.0], 0.95, 100, 1), (3.0, 3.0));
        assert!(bootstrap_median_ci(&[], 0.95, 100, 1).0.is_nan());
    }

    /// Property: a 95% interval should contain the true median in about 95% of samples. The
    /// percentile bootstrap of a median is known to be slightly off for small n, hence the band.
    #[test]
    fn bootstrap_ci_covers_the_true_median_about_95_percent() {
        // Log-normal(0, 0.5): skewed like latencies, true median exp(0) = 1.
        let dist = LogNormal::new(0.0, 0.5).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let draws = 200;
        let mut covered = 0;
        for draw in 0..draws {
            let sample: Vec<f64> = (0..31).map(|_| dist.sample(&mut rng)).collect();
            let (lo, hi) = bootstrap_median_ci(&sample, 0.95, 1000, draw);
            if lo <= 1.0 && 1.0 <= hi {
                covered += 1;
            }
        }
        let rate = covered as f64 / draws as f64;
        eprintln!("bootstrap 95% CI coverage: {covered}/{draws}");
        assert!((0.88..=0.99).contains(&rate), "coverage {rate}");
    }

    #[test]
    fn linear_fit_recovers_a_line_and_says_how_well_it_explains_the_data() {
        let xs = [0.0, 1.0, 2.0, 3.0, 4.0];
        let line: Vec<f64> = xs.iter().map(|x| 3.0 + 2.0 * x).collect();
        let f = linear_fit(&xs, &line).unwrap();
        assert!((f.slope - 2.0).abs() < 1e-12 && (f.intercept - 3.0).abs() < 1e-12);
        assert!((f.r2 - 1.0).abs() < 1e-12);
        // A single step halfway is growth, but not steady growth.
        let step = [10.0, 10.0, 10.0, 20.0, 20.0];
        let f = linear_fit(&xs, &step).unwrap();
        assert!(f.slope > 0.0 && f.r2 < 0.8, "{f:?}");
        let flat = linear_fit(&xs, &[5.0; 5]).unwrap();
        assert_eq!((flat.slope, flat.r2), (0.0, 0.0));
        assert_eq!(linear_fit(&[1.0, 1.0], &[1.0, 2.0]), None);
        assert_eq!(linear_fit(&[1.0], &[1.0]), None);
    }

    #[test]
    fn order_statistic_median_interval_has_its_exact_coverage() {
        // 3 trials: only [min, max], which covers the median 75% of the time.
        assert_eq!(median_ci(&[3.0, 1.0, 2.0], 0.95), Some((1.0, 3.0, 0.75)));
        let (lo, hi, level) = median_ci(&[5.0, 1.0, 4.0, 2.0, 3.0], 0.95).unwrap();
        assert_eq!((lo, hi), (1.0, 5.0));
        assert!((level - 0.9375).abs() < 1e-12);
        // 10 trials: [x(2), x(9)] covers 97.85%; [x(3), x(8)] only 89%.
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        let (lo, hi, level) = median_ci(&ten, 0.95).unwrap();
        assert_eq!((lo, hi), (2.0, 9.0));
        assert!((level - 0.978_515_625).abs() < 1e-9, "{level}");
        assert_eq!(median_ci(&[], 0.95), None);
        assert_eq!(median_ci(&[7.0], 0.95), Some((7.0, 7.0, 0.0)));
    }

    #[test]
    fn order_statistic_interval_covers_the_true_median_as_often_as_it_says() {
        // Seeded draws of 10 from a skewed distribution whose median is ln 2 (exponential, 1).
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let mut covered = 0;
        for _ in 0..2000 {
            let xs: Vec<f64> = (0..10)
                .map(|_| -(1.0 - rand::Rng::random::<f64>(&mut rng)).ln())
                .collect();
            let (lo, hi, _) = median_ci(&xs, 0.95).unwrap();
            covered += usize::from(lo <= std::f64::consts::LN_2 && std::f64::consts::LN_2 <= hi);
        }
        // 97.85% expected; 2000 draws put 95% of outcomes within about ±0.65%.
        assert!((1930..=1985).contains(&covered), "{covered} of 2000");
    }
}
