//! Trials -> summary rows: per runtime and point, the median over trials with a 95% bootstrap
//! confidence interval and the coefficient of variation of requests/s and p99. The remaining
//! columns come from the trial whose requests/s is the median one, so each row stays a real
//! measurement rather than a mix of trials.

use super::{RowStatus, SummaryRow};
use crate::stats;

/// Bootstrap resamples: enough that the interval's ends are stable to a fraction of a percent.
const RESAMPLES: usize = 2000;

pub fn aggregate(trials: &[SummaryRow], seed: u64) -> Vec<SummaryRow> {
    let mut groups: Vec<Vec<&SummaryRow>> = Vec::new();
    for row in trials {
        match groups
            .iter_mut()
            .find(|g| g[0].runtime == row.runtime && g[0].point == row.point)
        {
            Some(g) => g.push(row),
            None => groups.push(vec![row]),
        }
    }
    groups.iter().map(|g| summarise(g, seed)).collect()
}

fn summarise(group: &[&SummaryRow], seed: u64) -> SummaryRow {
    let ok: Vec<&SummaryRow> = group
        .iter()
        .copied()
        .filter(|r| r.status == RowStatus::Ok)
        .collect();
    let failed: Vec<&SummaryRow> = group
        .iter()
        .copied()
        .filter(|r| r.status == RowStatus::Failed)
        .collect();
    let interrupted = group.iter().find(|r| r.status == RowStatus::Interrupted);
    if ok.is_empty() {
        // Nothing measured: the first failure says why (a failure outranks an interruption).
        let first = failed.first().copied().or(interrupted.copied());
        let mut row = first.unwrap_or(group[0]).clone();
        row.trials = group.len() as u32;
        if group.len() > 1 {
            row.trial = None;
        }
        return row;
    }
    let rps: Vec<f64> = ok.iter().filter_map(|r| r.requests_per_sec).collect();
    let p99: Vec<f64> = ok.iter().filter_map(|r| r.p99_us).collect();
    let median_rps = stats::median(&rps);
    // The trial closest to the median requests/s carries the other columns.
    let base = ok
        .iter()
        .min_by(|a, b| {
            let d = |r: &SummaryRow| (r.requests_per_sec.unwrap_or(0.0) - median_rps).abs();
            d(a).total_cmp(&d(b))
        })
        .expect("non-empty");
    let mut row = (*base).clone();
    row.trials = group.len() as u32;
    if group.len() > 1 {
        row.trial = None;
        row.requests_per_sec = Some(median_rps);
        let (lo, hi) = stats::bootstrap_median_ci(&rps, 0.95, RESAMPLES, seed);
        row.requests_per_sec_ci_low = Some(lo);
        row.requests_per_sec_ci_high = Some(hi);
        row.requests_per_sec_cv = Some(stats::cv(&rps));
        if !p99.is_empty() {
            row.p99_us = Some(stats::median(&p99));
            let (lo, hi) = stats::bootstrap_median_ci(&p99, 0.95, RESAMPLES, seed ^ 0x9e37);
            row.p99_us_ci_low = Some(lo);
            row.p99_us_ci_high = Some(hi);
            row.p99_us_cv = Some(stats::cv(&p99));
        }
    }
    if !failed.is_empty() {
        row.status = RowStatus::Failed;
        row.error = format!(
            "{} of {} trials failed: {}",
            failed.len(),
            group.len(),
            failed[0].error
        );
    } else if let Some(i) = interrupted {
        row.status = RowStatus::Interrupted;
        row.error = format!(
            "{} of {} trials measured: {}",
            ok.len(),
            group.len(),
            i.error
        );
    }
    row
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trial(runtime: &str, rps: f64, p99: f64) -> SummaryRow {
        SummaryRow {
            runtime: runtime.into(),
            requests_per_sec: Some(rps),
            p99_us: Some(p99),
            trials: 1,
            ..Default::default()
        }
    }

    #[test]
    fn median_row_per_runtime_with_interval_and_cv() {
        let rows = vec![
            trial("a", 100.0, 10.0),
            trial("b", 50.0, 20.0),
            trial("a", 120.0, 12.0),
            trial("a", 110.0, 11.0),
        ];
        let s = aggregate(&rows, 1);
        assert_eq!(s.len(), 2);
        let a = &s[0];
        assert_eq!((a.runtime.as_str(), a.trials), ("a", 3));
        assert_eq!(a.requests_per_sec, Some(110.0));
        assert_eq!(a.p99_us, Some(11.0));
        let (lo, hi) = (
            a.requests_per_sec_ci_low.unwrap(),
            a.requests_per_sec_ci_high.unwrap(),
        );
        assert!(lo <= 110.0 && 110.0 <= hi && lo >= 100.0 && hi <= 120.0);
        assert!((a.requests_per_sec_cv.unwrap() - 10.0 / 110.0).abs() < 1e-9);
        assert_eq!(s[1].trials, 1);
        assert_eq!(s[1].requests_per_sec_ci_low, None);
    }

    #[test]
    fn a_failed_trial_marks_the_summary_failed_but_keeps_the_measured_median() {
        let mut bad = trial("a", 0.0, 0.0);
        bad.status = RowStatus::Failed;
        bad.error = "server crashed".into();
        let s = aggregate(&[trial("a", 100.0, 10.0), bad], 1);
        assert_eq!(s[0].status, RowStatus::Failed);
        assert!(s[0].error.contains("1 of 2 trials failed: server crashed"));
        assert_eq!(s[0].requests_per_sec, Some(100.0));
    }

    #[test]
    fn an_interrupted_trial_is_left_out_of_the_median_and_marks_the_row() {
        let mut cut = trial("a", 1.0, 1.0);
        cut.status = RowStatus::Interrupted;
        cut.error = "interrupted (SIGINT) during the load".into();
        let s = aggregate(
            &[
                trial("a", 100.0, 10.0),
                trial("a", 120.0, 12.0),
                cut.clone(),
            ],
            1,
        );
        assert_eq!(s[0].status, RowStatus::Interrupted);
        assert_eq!(s[0].requests_per_sec, Some(110.0));
        assert!(s[0]
            .error
            .starts_with("2 of 3 trials measured: interrupted"));
        let alone = aggregate(&[cut], 1);
        assert_eq!(alone[0].status, RowStatus::Interrupted);
        assert_eq!(
            alone[0].requests_per_sec,
            Some(1.0),
            "the row as it was, not a median"
        );
    }
}
