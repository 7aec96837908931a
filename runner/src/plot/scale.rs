//! Axis ranges, ticks and number labels. A value axis is logarithmic when its data spans more
//! than [`LOG_WHEN_RATIO`], so a fast and a slow runtime both stay readable.

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use std::ops::Range;

/// max/min above which an axis switches to a log scale.
pub const LOG_WHEN_RATIO: f64 = 20.0;
/// The largest axis end; far beyond any measurement, far below where rounding up overflows.
const MAX_AXIS: f64 = 1e300;
/// More ticks than any axis draws (a linear axis has about 8).
const MAX_TICKS: usize = 64;

/// A value axis: its range and tick positions; `log` axes hold log10 of the values.
#[derive(Clone, Debug)]
pub struct Axis {
    pub log: bool,
    pub range: Range<f64>,
    pub ticks: Vec<f64>,
}

impl Axis {
    /// Where a value lands on this axis (log10 for log axes). `None` for values a log axis
    /// cannot show.
    pub fn pos(&self, v: f64) -> Option<f64> {
        if self.log {
            (v > 0.0).then(|| v.log10())
        } else {
            Some(v)
        }
    }

    /// The value at an axis position, for tick labels.
    pub fn value(&self, pos: f64) -> f64 {
        if self.log {
            10f64.powf(pos)
        } else {
            pos
        }
    }

    /// An axis for `values`: log when they span widely (and are all positive), otherwise linear
    /// from zero (bars and rates must start at zero to be compared by length).
    pub fn for_values(values: impl IntoIterator<Item = f64>, allow_log: bool) -> Axis {
        let vals: Vec<f64> = values
            .into_iter()
            .filter(|v| v.is_finite())
            .map(|v| v.min(MAX_AXIS))
            .collect();
        let max = vals.iter().copied().fold(0.0, f64::max);
        let min_pos = vals
            .iter()
            .copied()
            .filter(|&v| v > 0.0)
            .fold(f64::INFINITY, f64::min);
        if allow_log && min_pos.is_finite() && max / min_pos >= LOG_WHEN_RATIO {
            let (lo, hi, ticks) = log_ticks(min_pos, max);
            return Axis {
                log: true,
                range: lo.log10()..hi.log10(),
                ticks: ticks.iter().map(|t| t.log10()).collect(),
            };
        }
        Axis::linear_from_zero(max)
    }

    /// 0 up to a round number a little above `max` (room for value labels).
    pub fn linear_from_zero(max: f64) -> Axis {
        // The values are bounded when read (`results::read::MAX_VALUE`); this is the last
        // guard: a top that overflows to infinity would ask for endless ticks.
        let top = if max > 0.0 && max.is_finite() {
            nice_ceil(max.min(MAX_AXIS) * 1.08)
        } else {
            1.0
        };
        let step = nice_step(top / 7.0);
        let ticks = (0..MAX_TICKS)
            .map(|i| i as f64 * step)
            .take_while(|&t| t <= top * (1.0 + 1e-9))
            .collect();
        Axis {
            log: false,
            range: 0.0..top,
            ticks,
        }
    }
}

/// The 1-2-5 sequence around [lo, hi]: the range rounded out to members of it, and the members
/// inside (only powers of ten when there would be too many to label).
pub fn log_ticks(lo: f64, hi: f64) -> (f64, f64, Vec<f64>) {
    let hi = if hi > lo { hi } else { lo * 2.0 };
    let mut all = Vec::new();
    let (k0, k1) = (lo.log10().floor() as i32 - 1, hi.log10().ceil() as i32 + 1);
    for k in k0..=k1 {
        for m in [1.0, 2.0, 5.0] {
            all.push(m * 10f64.powi(k));
        }
    }
    let eps = 1e-9;
    let lo_n = all
        .iter()
        .copied()
        .filter(|&t| t <= lo * (1.0 + eps))
        .fold(all[0], f64::max);
    let hi_n = all
        .iter()
        .copied()
        .filter(|&t| t >= hi * (1.0 - eps))
        .fold(f64::INFINITY, f64::min);
    let mut ticks: Vec<f64> = all
        .into_iter()
        .filter(|&t| t >= lo_n * (1.0 - eps) && t <= hi_n * (1.0 + eps))
        .collect();
    if ticks.len() > 10 {
        ticks.retain(|t| is_power_of_ten(*t));
    }
    if ticks.len() > 10 {
        // Decades apart: every n-th power of ten, so the labels do not overlap.
        let every = ticks.len().div_ceil(10);
        ticks = ticks.into_iter().step_by(every).collect();
    }
    (lo_n, hi_n, ticks)
}

fn is_power_of_ten(t: f64) -> bool {
    (t.log10() - t.log10().round()).abs() < 1e-9
}

/// The smallest round number (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 x 10^k) that is >= v: the end
/// of an axis, close above the data.
pub fn nice_ceil(v: f64) -> f64 {
    round_up(v, &[1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0])
}

fn round_up(v: f64, steps: &[f64]) -> f64 {
    let k = v.log10().floor();
    let base = 10f64.powf(k);
    for m in steps {
        if m * base >= v * (1.0 - 1e-12) {
            return m * base;
        }
    }
    10.0 * base
}

/// A round tick step near `raw` (1, 2, 2.5, 5 x 10^k).
pub fn nice_step(raw: f64) -> f64 {
    if raw <= 0.0 || !raw.is_finite() {
        return 1.0;
    }
    round_up(raw, &[1.0, 2.0, 2.5, 5.0, 10.0])
}

/// The tick positions to label, at least `gap` apart, from the smallest: a capacity search
/// probes rates a few percent apart, and a label for each would print them over one another.
pub fn spaced(mut ticks: Vec<f64>, gap: f64) -> Vec<f64> {
    ticks.sort_by(f64::total_cmp);
    let mut kept: Vec<f64> = Vec::with_capacity(ticks.len());
    for t in ticks {
        if kept.last().is_none_or(|&last| t - last >= gap) {
            kept.push(t);
        }
    }
    kept
}

pub use crate::console::format::Unit;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ticks_round_out_to_1_2_5() {
        let (lo, hi, ticks) = log_ticks(23.0, 870.0);
        assert_eq!((lo, hi), (20.0, 1000.0));
        assert_eq!(ticks, vec![20.0, 50.0, 100.0, 200.0, 500.0, 1000.0]);
    }

    #[test]
    fn log_ticks_keep_powers_of_ten_when_crowded() {
        let (_, _, ticks) = log_ticks(1.0, 1e6);
        assert_eq!(ticks.len(), 7);
    }

    #[test]
    fn linear_axis_starts_at_zero_with_room_above() {
        let a = Axis::for_values([90_000.0, 100_000.0], true);
        assert!(!a.log);
        assert_eq!(a.range.start, 0.0);
        assert!(a.range.end >= 108_000.0);
        assert_eq!(a.ticks[0], 0.0);
    }

    #[test]
    fn values_near_the_end_of_f64_give_a_bounded_axis() {
        for max in [1.7e308, f64::MAX, f64::INFINITY, f64::NAN] {
            let a = Axis::linear_from_zero(max);
            assert!(a.range.end.is_finite(), "{max}: {:?}", a.range);
            assert!(!a.ticks.is_empty() && a.ticks.len() <= MAX_TICKS, "{max}");
        }
        let a = Axis::for_values([1.0, 1.7e308], true);
        assert!(
            a.log && a.ticks.len() <= 10 && a.range.end.is_finite(),
            "{a:?}"
        );
    }

    #[test]
    fn wide_values_get_a_log_axis() {
        let a = Axis::for_values([10.0, 5000.0], true);
        assert!(a.log);
        assert_eq!(a.value(a.range.start), 10.0);
    }

    #[test]
    fn ticks_closer_than_the_gap_are_left_unlabelled() {
        assert_eq!(
            spaced(vec![3.0, 0.0, 1.0, 1.05, 2.0], 0.5),
            vec![0.0, 1.0, 2.0, 3.0]
        );
        assert_eq!(spaced(vec![0.0, 0.3, 0.6, 0.9], 0.5), vec![0.0, 0.6]);
        assert!(spaced(Vec::new(), 1.0).is_empty());
    }
}

/// A linear f64 coordinate whose labelled ticks are exactly `ticks` (plotters picks its own
/// otherwise, and its key-point wrapper loses the label formatter on f64 axes).
#[derive(Clone, Debug)]
pub struct Ticked {
    pub range: Range<f64>,
    pub ticks: Vec<f64>,
}

impl Ticked {
    pub fn new(range: Range<f64>, ticks: Vec<f64>) -> Ticked {
        Ticked { range, ticks }
    }
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let span = self.range.end - self.range.start;
        if span == 0.0 {
            return limit.1;
        }
        let frac = (v - self.range.start) / span;
        limit.0 + (f64::from(limit.1 - limit.0) * frac + 1e-3).floor() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        // Bold points only: the mesh gets one grid line per labelled tick.
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.range.clone()
    }
}

impl Axis {
    /// This axis as a plotters coordinate.
    pub fn coord(&self) -> Ticked {
        Ticked::new(self.range.clone(), self.ticks.clone())
    }
}
