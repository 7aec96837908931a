//! Does a server's memory grow without bound? Judged from the timeline's RSS samples of the
//! measured window, with a least-squares line through them.
//!
//! Under a steady load a healthy echo server's RSS is flat after warmup: its memory is per
//! connection and the connections are all open by then (tokio, 20 and 1,000 connections: the
//! sampled RSS did not move by a single page over 2 s and 20 s windows). A leak shows as growth
//! that goes on for the whole window. So a server is flagged as growing when, over at least
//! [`MIN_SAMPLES`] samples:
//! - the fitted line rises by at least [`MIN_GROWTH_MIB`] across the window: smaller amounts are
//!   within what an allocator may keep for itself (one more glibc heap segment, thread caches),
//!   and a leak that small would not matter within any run runbench does; and
//! - the line explains at least [`MIN_R2`] of the variation (R²): growth that is steady, not one
//!   step. A single step from one level to another fits a line with R² ≤ 0.75 at best (0.75 for
//!   a step halfway, less elsewhere), a steady leak with R² close to 1.
//!
//! A window whose open connection count changes (ramping phases) is not judged: its RSS follows
//! the connections. The slope itself is reported whenever there are enough samples.

use crate::measure::timeline::TimelineRow;
use crate::stats;
use std::time::Duration;

/// Fewer samples leave the slope to chance (a line through two points always fits).
pub const MIN_SAMPLES: usize = 5;
pub const MIN_GROWTH_MIB: f64 = 8.0;
pub const MIN_R2: f64 = 0.9;
/// Open connections may vary by this fraction (churn between reconnects) and still be "steady".
const CONNECTIONS_SLACK: f64 = 0.02;

const MIB: f64 = 1024.0 * 1024.0;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RssTrend {
    pub mib_per_min: f64,
    /// Fitted growth from the first to the last sample of the window.
    pub growth_mib: f64,
    pub r2: f64,
    /// `None`: the window cannot be judged (connections changed).
    pub growing: Option<bool>,
}

impl RssTrend {
    /// The row's error text when growing.
    pub fn describe(&self) -> String {
        format!(
            "server RSS grew steadily through the measured window: {:.1} MiB/min ({:.1} MiB, \
             R² {:.2}); possible memory leak",
            self.mib_per_min, self.growth_mib, self.r2
        )
    }
}

/// The trend over `rows` (one runtime and trial) whose interval lies inside the measured
/// window `[warmup, warmup + duration]` after the load started.
pub fn judge(
    rows: &[TimelineRow],
    interval: Duration,
    warmup: Duration,
    duration: Duration,
) -> Option<RssTrend> {
    let (from, to) = (warmup.as_secs_f64(), (warmup + duration).as_secs_f64());
    let step = interval.as_secs_f64();
    // Half a millisecond of slack for interval ends computed in floating point.
    let window: Vec<&TimelineRow> = rows
        .iter()
        .filter(|r| r.t_s - step >= from - 5e-4 && r.t_s <= to + 5e-4 && r.server_rss_bytes > 0)
        .collect();
    if window.len() < MIN_SAMPLES {
        return None;
    }
    let xs: Vec<f64> = window.iter().map(|r| r.t_s).collect();
    let ys: Vec<f64> = window
        .iter()
        .map(|r| r.server_rss_bytes as f64 / MIB)
        .collect();
    let fit = stats::linear_fit(&xs, &ys)?;
    let span = xs[xs.len() - 1] - xs[0];
    let growth_mib = fit.slope * span;
    let (lo, hi) = window.iter().fold((u64::MAX, 0), |(lo, hi), r| {
        (lo.min(r.connections), hi.max(r.connections))
    });
    let steady = (hi - lo) as f64 <= hi as f64 * CONNECTIONS_SLACK;
    Some(RssTrend {
        mib_per_min: fit.slope * 60.0,
        growth_mib,
        r2: fit.r2,
        growing: steady.then_some(growth_mib >= MIN_GROWTH_MIB && fit.r2 >= MIN_R2),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(rss_mib: &[f64], connections: &[u64]) -> Vec<TimelineRow> {
        rss_mib
            .iter()
            .zip(connections)
            .enumerate()
            .map(|(i, (&m, &c))| TimelineRow {
                runtime: "x".into(),
                trial: 0,
                t_s: (i + 1) as f64,
                requests: 1,
                errors: 0,
                connections: c,
                p50_us: 0.0,
                p99_us: 0.0,
                server_cpu_user_s: 0.0,
                server_cpu_sys_s: 0.0,
                server_rss_bytes: (m * MIB) as u64,
                server_threads: 1,
                server_ctx_switches: 0,
                point: String::new(),
            })
            .collect()
    }

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn steady_growth_is_flagged_and_warmup_is_left_out() {
        // Warmup (first 2 s) climbs fast, as connections allocate; then 4 MiB/s for 6 s.
        let rss = [5.0, 30.0, 34.0, 38.0, 42.0, 46.0, 50.0, 54.0];
        let t = judge(&rows(&rss, &[100; 8]), S, 2 * S, 6 * S).unwrap();
        assert!((t.mib_per_min - 240.0).abs() < 1e-6, "{t:?}");
        assert!((t.growth_mib - 20.0).abs() < 1e-6);
        assert_eq!(t.growing, Some(true));
    }

    #[test]
    fn a_flat_server_a_small_drift_and_a_single_step_are_not_leaks() {
        let flat = judge(&rows(&[20.0; 8], &[100; 8]), S, 2 * S, 6 * S).unwrap();
        assert_eq!((flat.mib_per_min, flat.growing), (0.0, Some(false)));
        let drift = [20.0, 20.0, 20.5, 21.0, 21.5, 22.0, 22.5, 23.0];
        let t = judge(&rows(&drift, &[100; 8]), S, 2 * S, 6 * S).unwrap();
        assert!(t.r2 > 0.99 && t.growth_mib < MIN_GROWTH_MIB);
        assert_eq!(t.growing, Some(false));
        let step = [20.0, 20.0, 20.0, 20.0, 20.0, 60.0, 60.0, 60.0];
        let t = judge(&rows(&step, &[100; 8]), S, 2 * S, 6 * S).unwrap();
        assert!(t.growth_mib > MIN_GROWTH_MIB && t.r2 < MIN_R2, "{t:?}");
        assert_eq!(t.growing, Some(false));
    }

    #[test]
    fn too_few_samples_or_changing_connections_are_not_judged() {
        let rss = [5.0, 30.0, 40.0, 50.0, 60.0];
        assert_eq!(judge(&rows(&rss, &[100; 5]), S, 2 * S, 3 * S), None);
        let rss = [5.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0];
        let ramp = [10, 100, 200, 300, 400, 500, 600];
        let t = judge(&rows(&rss, &ramp), S, S, 6 * S).unwrap();
        assert_eq!(t.growing, None);
        assert!(t.mib_per_min > 0.0);
    }
}
