//! How big a plan may be. Sweeps multiply (four lists of 100 values are 10^8 points), so the
//! size of a plan is counted from the scenario's list lengths before any point is built, and a
//! plan over the limits below is refused with its numbers and the ways to narrow it, both by
//! `validate` and by `run`. The check is on the plan, not the file, because the command line
//! changes the size (`--repeat`, `--connections`, `--runtimes`) and may be the way out.

use crate::scenario::Scenario;
use std::time::Duration;

/// Sweep points (combinations of the swept parameters) one scenario may have.
pub const MAX_POINTS: u128 = 10_000;
/// Measurements (trials x points x runtimes) one plan may have.
pub const MAX_STEPS: u128 = 100_000;
/// The longest a plan may take by its estimate: a 24-hour soak of three runtimes fits, a typo
/// that would occupy a machine for weeks does not.
pub const MAX_PLAN_TIME: Duration = Duration::from_secs(72 * 3600);
/// A plan estimated longer than this says so before it starts.
pub const LONG_PLAN: Duration = Duration::from_secs(3600);
/// Start-up, connect and cooldown per measurement, beyond the load itself (observed on loopback).
pub const STEP_OVERHEAD: Duration = Duration::from_millis(700);

/// Estimated wall time of one measurement at `connections` connections.
pub fn step_time(s: &Scenario, connections: usize) -> Duration {
    STEP_OVERHEAD
        + Duration::from_millis(connections as u64 / 20)
        + s.load.total()
        + s.shutdown.grace.min(Duration::from_secs(1))
}

/// Estimated wall time of one step of the plan: one measurement, or a capacity search's probes.
pub fn plan_step_time(s: &Scenario, connections: usize) -> Duration {
    let probes = s
        .search
        .as_ref()
        .map_or(1, crate::scenario::Search::typical_probes);
    step_time(s, connections) * probes as u32
}

/// A plan's size, counted without building it.
#[derive(Clone, Debug, PartialEq)]
pub struct Size {
    pub points: u128,
    pub steps: u128,
    /// Estimated wall time in seconds (f64: a refused plan may exceed what `Duration` holds).
    pub seconds: f64,
}

/// The swept lists: (field, number of values), in the order `plan::points` nests them.
fn lists(s: &Scenario) -> [(&'static str, usize); 5] {
    [
        ("load.connections", s.load.connections.len()),
        ("load.payload_bytes", s.load.payload_bytes.len()),
        ("load.rate", s.load.rate.len().max(1)),
        ("server.threads", s.server.threads.len()),
        ("server.max_connections", s.server.max_connections.len()),
    ]
}

pub fn size(s: &Scenario, subjects: usize) -> Size {
    let points: u128 = lists(s).iter().map(|&(_, n)| n as u128).product();
    let per_connections = points / s.load.connections.len().max(1) as u128;
    let runs = s.run.repeat as f64 * subjects as f64;
    let seconds: f64 = s
        .load
        .connections
        .iter()
        .map(|&c| plan_step_time(s, c).as_secs_f64() * per_connections as f64 * runs)
        .sum();
    Size {
        points,
        steps: points * s.run.repeat as u128 * subjects as u128,
        seconds,
    }
}

/// Refuses a plan over [`MAX_POINTS`], [`MAX_STEPS`] or [`MAX_PLAN_TIME`] with its numbers and
/// what to turn down. `subjects` is the number of runtimes.
pub fn check(s: &Scenario, subjects: usize) -> Result<Size, String> {
    let size = size(s, subjects);
    let swept: Vec<(&str, usize)> = lists(s).into_iter().filter(|&(_, n)| n > 1).collect();
    if size.points > MAX_POINTS {
        let factors: Vec<String> = swept.iter().map(|(f, n)| format!("{n} {f}")).collect();
        // The first of the longest lists.
        let (field, n) = swept
            .iter()
            .copied()
            .rev()
            .max_by_key(|&(_, n)| n)
            .expect("more than one point means a swept list");
        return Err(format!(
            "the sweep has {} points ({}); at most {MAX_POINTS} are allowed. Narrow it: fewer \
             values in the longest list ({field}, {n} values), or split the sweep over several \
             scenarios",
            size.points,
            factors.join(" x ")
        ));
    }
    let product = format!(
        "{} trial(s) x {} point(s) x {subjects} runtime(s)",
        s.run.repeat, size.points
    );
    if size.steps > MAX_STEPS {
        return Err(format!(
            "the plan has {} measurements ({product}); at most {MAX_STEPS} are allowed. Narrow \
             it: fewer trials (run.repeat or --repeat), points or runtimes (--runtimes)",
            size.steps
        ));
    }
    if size.seconds > MAX_PLAN_TIME.as_secs_f64() {
        return Err(format!(
            "the plan would take about {} ({product}, each {} of load plus start-up); at most {} \
             is allowed. Narrow it: fewer trials (run.repeat or --repeat), a shorter load.warmup \
             or load.duration, or fewer points or runtimes (--runtimes)",
            hours(size.seconds),
            hours(s.load.total().as_secs_f64()),
            hours(MAX_PLAN_TIME.as_secs_f64())
        ));
    }
    Ok(size)
}

/// `48000h`, `3h 12m`, `4m 10s`: whole units, however large.
pub fn hours(seconds: f64) -> String {
    let s = seconds.max(0.0).round();
    if s >= 100.0 * 3600.0 {
        format!("{:.0}h", s / 3600.0)
    } else if s >= 3600.0 {
        match ((s % 3600.0) / 60.0) as u64 {
            0 => format!("{}h", (s / 3600.0) as u64),
            m => format!("{}h {m}m", (s / 3600.0) as u64),
        }
    } else if s >= 60.0 {
        format!("{}m {}s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else {
        format!("{}s", s as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{parse, Host};
    use std::path::Path;

    fn scenario(load: &str, run: &str) -> Scenario {
        let text = format!(
            "name = \"b\"\n[server]\ncpus = [0]\n[load]\npayload_bytes = 64\ncpus = [1]\n{load}\n\
             [run]\n{run}\n"
        );
        parse(
            Path::new("b.toml"),
            &text,
            &Host {
                cpus: 2,
                elsewhere: false,
            },
        )
        .unwrap()
    }

    #[test]
    fn size_counts_points_steps_and_time_without_building_the_plan() {
        let s = scenario(
            "connections = [10, 20, 40]\nduration = \"2s\"",
            "repeat = 2",
        );
        let size = size(&s, 3);
        assert_eq!((size.points, size.steps), (3, 18));
        let plan_estimate: f64 = [10, 20, 40]
            .iter()
            .map(|&c| step_time(&s, c).as_secs_f64() * 6.0)
            .sum();
        assert!((size.seconds - plan_estimate).abs() < 1e-9);
    }

    #[test]
    fn hours_prints_whole_units() {
        assert_eq!(hours(48_000.0 * 3600.0), "48000h");
        assert_eq!(hours(3.0 * 3600.0 + 12.0 * 60.0 + 5.0), "3h 12m");
        assert_eq!(hours(72.0 * 3600.0), "72h");
        assert_eq!(hours(250.0), "4m 10s");
        assert_eq!(hours(9.4), "9s");
    }
}
