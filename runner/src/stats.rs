//! Statistics over repeated trials: median, coefficient of variation, and a percentile-bootstrap
//! confidence interval of the median (Efron & Tibshirani, "An Introduction to the Bootstrap",
//! 1993, ch. 13). Pure functions, seeded, so results are reproducible.

/// Median of `xs` (mean of the two middle values for an even count); NaN when empty.
pub fn median(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

pub fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Coefficient of variation: sample standard deviation / mean; 0 for fewer than two samples.
pub fn cv(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return 0.0;
    }
    let m = mean(xs);
    let var = xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (xs.len() - 1) as f64;
    if m == 0.0 {
        0.0
    } else {
        var.sqrt() / m.abs()
    }
}

/// Percentile-bootstrap confidence interval of the median at `confidence` (e.g. 0.95).
pub fn bootstrap_median_ci(xs: &[f64], confidence: f64, resamples: usize, seed: u64) -> (f64, f64) {
    if xs.len() < 2 {
        let m = median(xs);
        return (m, m);
    }
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut medians = Vec::with_capacity(resamples);
    let mut sample = vec![0.0; xs.len()];
    for _ in 0..resamples {
        for s in sample.iter_mut() {
            *s = xs[rng.usize(..xs.len())];
        }
        medians.push(median(&sample));
    }
    medians.sort_by(f64::total_cmp);
    let alpha = (1.0 - confidence) / 2.0;
    let at = |q: f64| medians[((q * (resamples - 1) as f64).round() as usize).min(resamples - 1)];
    (at(alpha), at(1.0 - alpha))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_cv_of_known_samples() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
        // sd of 2,4,4,4,5,5,7,9 (sample) = 2.138..., mean 5
        let c = cv(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
        assert!((c - 2.13809 / 5.0).abs() < 1e-4, "{c}");
        assert_eq!(cv(&[1.0]), 0.0);
    }

    /// The 95% interval should contain the true median in about 95% of samples. Percentile
    /// bootstrap intervals of a median undercover slightly for small n, so n = 30 and a band.
    #[test]
    fn bootstrap_ci_covers_the_true_median_about_95_percent_of_the_time() {
        let mut rng = fastrand::Rng::with_seed(42);
        let draws = 300;
        let mut covered = 0;
        for d in 0..draws {
            // Exponential(1): true median ln 2.
            let xs: Vec<f64> = (0..30).map(|_| -(1.0 - rng.f64()).ln()).collect();
            let (lo, hi) = bootstrap_median_ci(&xs, 0.95, 1000, d);
            if lo <= std::f64::consts::LN_2 && std::f64::consts::LN_2 <= hi {
                covered += 1;
            }
        }
        let rate = covered as f64 / draws as f64;
        assert!((0.90..=0.99).contains(&rate), "coverage {rate}");
    }
}
