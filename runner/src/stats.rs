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
}
