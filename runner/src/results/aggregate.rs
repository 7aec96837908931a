//! Trials -> summary rows: per runtime and point, requests/s, every latency percentile, server
//! CPU per request and peak RSS are each the median over the trials that measured, requests/s
//! and p99 with a distribution-free confidence interval (order statistics, with its exact
//! coverage: min-max from 3-5 trials covers only 75-94%) and their coefficient of variation.
//! Counts and the other columns come from the trial whose requests/s is closest to the median.

use super::{RowStatus, SummaryRow};
use crate::stats;

/// The coverage asked of the median's interval (reached from 6 trials on).
const CONFIDENCE: f64 = 0.95;

pub fn aggregate(trials: &[SummaryRow]) -> Vec<SummaryRow> {
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
    groups.iter().map(|g| summarise(g)).collect()
}

fn summarise(group: &[&SummaryRow]) -> SummaryRow {
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
    let column = |f: fn(&SummaryRow) -> Option<f64>| -> Vec<f64> {
        ok.iter().filter_map(|r| f(r)).collect()
    };
    let rps = column(|r| r.requests_per_sec);
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
        let median = |v: Vec<f64>| (!v.is_empty()).then(|| stats::median(&v));
        row.requests_per_sec = Some(median_rps);
        if let Some((lo, hi, level)) = stats::median_ci(&rps, CONFIDENCE) {
            row.requests_per_sec_ci_low = Some(lo);
            row.requests_per_sec_ci_high = Some(hi);
            row.requests_per_sec_ci_level = Some(level);
        }
        row.requests_per_sec_cv = Some(stats::cv(&rps));
        let p99 = column(|r| r.p99_us);
        if let Some((lo, hi, level)) = stats::median_ci(&p99, CONFIDENCE) {
            row.p99_us_ci_low = Some(lo);
            row.p99_us_ci_high = Some(hi);
            row.p99_us_ci_level = Some(level);
            row.p99_us_cv = Some(stats::cv(&p99));
        }
        row.p99_us = median(p99);
        row.p50_us = median(column(|r| r.p50_us));
        row.p90_us = median(column(|r| r.p90_us));
        row.p999_us = median(column(|r| r.p999_us));
        row.max_us = median(column(|r| r.max_us));
        row.mean_us = median(column(|r| r.mean_us));
        row.server_cpu_us_per_request = median(column(|r| r.server_cpu_us_per_request));
        row.server_rss_peak_bytes =
            median(column(|r| r.server_rss_peak_bytes.map(|b| b as f64))).map(|b| b.round() as u64);
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

    #[test]
    fn every_latency_column_is_its_own_median_over_trials() {
        let mut rows = Vec::new();
        for (rps, p50, p999) in [(100.0, 5.0, 90.0), (120.0, 1.0, 70.0), (110.0, 9.0, 99.0)] {
            let mut t = trial("a", rps, 10.0);
            t.p50_us = Some(p50);
            t.p999_us = Some(p999);
            rows.push(t);
        }
        let a = &aggregate(&rows)[0];
        // Not the p50/p999 of the median-throughput trial (9, 99).
        assert_eq!((a.p50_us, a.p999_us), (Some(5.0), Some(90.0)));
    }

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
        let s = aggregate(&rows);
        assert_eq!(s.len(), 2);
        let a = &s[0];
        assert_eq!((a.runtime.as_str(), a.trials), ("a", 3));
        assert_eq!(a.requests_per_sec, Some(110.0));
        assert_eq!(a.p99_us, Some(11.0));
        let (lo, hi) = (
            a.requests_per_sec_ci_low.unwrap(),
            a.requests_per_sec_ci_high.unwrap(),
        );
        // Three trials: the order-statistic interval is min-max, covering 75%.
        assert_eq!((lo, hi), (100.0, 120.0));
        assert_eq!(a.requests_per_sec_ci_level, Some(0.75));
        assert!((a.requests_per_sec_cv.unwrap() - 10.0 / 110.0).abs() < 1e-9);
        assert_eq!(s[1].trials, 1);
        assert_eq!(s[1].requests_per_sec_ci_low, None);
    }

    #[test]
    fn a_failed_trial_marks_the_summary_failed_but_keeps_the_measured_median() {
        let mut bad = trial("a", 0.0, 0.0);
        bad.status = RowStatus::Failed;
        bad.error = "server crashed".into();
        let s = aggregate(&[trial("a", 100.0, 10.0), bad]);
        assert_eq!(s[0].status, RowStatus::Failed);
        assert!(s[0].error.contains("1 of 2 trials failed: server crashed"));
        assert_eq!(s[0].requests_per_sec, Some(100.0));
    }

    #[test]
    fn an_interrupted_trial_is_left_out_of_the_median_and_marks_the_row() {
        let mut cut = trial("a", 1.0, 1.0);
        cut.status = RowStatus::Interrupted;
        cut.error = "interrupted (SIGINT) during the load".into();
        let s = aggregate(&[
            trial("a", 100.0, 10.0),
            trial("a", 120.0, 12.0),
            cut.clone(),
        ]);
        assert_eq!(s[0].status, RowStatus::Interrupted);
        assert_eq!(s[0].requests_per_sec, Some(110.0));
        assert!(s[0]
            .error
            .starts_with("2 of 3 trials measured: interrupted"));
        let alone = aggregate(&[cut]);
        assert_eq!(alone[0].status, RowStatus::Interrupted);
        assert_eq!(
            alone[0].requests_per_sec,
            Some(1.0),
            "the row as it was, not a median"
        );
    }
}
