//! The capacity search: per runtime (and point), the highest open-model rate at which `[slo]`
//! holds. Coarse steps up (doubling from `from`) until a probe fails, then bisection until the
//! bracket is within `resolution`; near the boundary each probe runs twice and passes only if
//! both do; then the found rate must pass `confirm` more trials and the lowest failing rate must
//! fail again, because one lucky probe is not a capacity. A probe the load generator may have
//! decided (see `run::probe_verdict`) is inconclusive, not a pass or a fail: it is run again (a
//! client descheduled once for a few milliseconds is not a ceiling), and when it stays
//! inconclusive the search stops there, at the client's ceiling, and says so.
//!
//! The algorithm is a pure function of a probe callback, so it is tested against synthetic
//! servers; `run::run_plan` gives it real probes.

/// What one probe at a rate showed.
#[derive(Clone, Debug, PartialEq)]
pub enum Probe {
    Pass,
    /// The limits it broke (or why it failed).
    Fail(String),
    /// The load generator, not the server, was the limit.
    Inconclusive(String),
    /// The run was interrupted (Ctrl-C): the search ends with what it has.
    Interrupted,
}

/// Why a probe was run, for the rows' `probe` column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    StepUp,
    Bisect,
    Confirm,
    /// The lowest failing rate, probed again.
    Recheck,
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::StepUp => "step-up",
            Stage::Bisect => "bisect",
            Stage::Confirm => "confirm",
            Stage::Recheck => "recheck",
        }
    }
}

/// The search's settings (from `[search]`).
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    pub from: u64,
    pub max: u64,
    pub resolution: f64,
    pub confirm: usize,
}

/// Probes at most, so a noisy server cannot keep the search going for ever.
pub const MAX_PROBES: usize = 40;

/// Inconclusive probes in a row at one rate before the search stops at the client's ceiling:
/// a saturated client stays saturated, a late one from a scheduling hiccup does not.
pub const INCONCLUSIVE_TRIES: usize = 3;

/// Probes a search usually takes (for estimates): half the doublings up to `max` (a capacity
/// lies somewhere below it), the bisection, the confirmations and the recheck.
pub fn typical_probes(s: &crate::scenario::Search) -> usize {
    let doublings = (s.max as f64 / s.from as f64).log2().ceil().max(1.0) as usize / 2;
    let halvings = (1.0 / s.resolution).log2().ceil() as usize;
    (doublings + halvings + s.confirm + 1).min(MAX_PROBES)
}

/// What the search found.
#[derive(Clone, Debug, PartialEq)]
pub struct Found {
    /// The highest rate that passed every probe and confirmation there (None: not even `from`).
    pub capacity: Option<u64>,
    /// The lowest rate that failed (None: nothing failed up to `max` or the client's ceiling).
    pub failed_at: Option<u64>,
    /// The limits broken at `failed_at`.
    pub binding: String,
    pub probes: usize,
    /// Empty when the search ended as designed; otherwise why not (client ceiling, max,
    /// interruption, probe limit).
    pub note: String,
}

/// Runs the probes and remembers what they showed.
struct Prober<P> {
    probe: P,
    probes: usize,
    /// Every rate that passed, and the limits broken at the lowest rate that failed.
    passed: Vec<u64>,
    broken: Vec<(u64, String)>,
    /// Why the last inconclusive probe was.
    unsure: String,
}

/// Why a search ends before its design says (the `note`).
struct Stop(String);

impl<P: FnMut(u64, Stage) -> Probe> Prober<P> {
    /// One probe, run again while inconclusive: `Ok(true)` pass, `Ok(false)` fail, `Err` when
    /// the search must end.
    fn at(&mut self, rate: u64, stage: Stage) -> Result<bool, Stop> {
        for _ in 0..INCONCLUSIVE_TRIES {
            if self.probes >= MAX_PROBES {
                return Err(Stop(format!("stopped after {MAX_PROBES} probes")));
            }
            self.probes += 1;
            match (self.probe)(rate, stage) {
                Probe::Pass => {
                    self.passed.push(rate);
                    return Ok(true);
                }
                Probe::Fail(why) => {
                    self.broken.push((rate, why));
                    return Ok(false);
                }
                Probe::Inconclusive(why) => self.unsure = why,
                Probe::Interrupted => return Err(Stop("interrupted".into())),
            }
        }
        Err(Stop(format!(
            "the load generator's ceiling at {rate}/s ({INCONCLUSIVE_TRIES} probes in a row \
             inconclusive): {}",
            self.unsure
        )))
    }

    /// Passes `times` probes in a row at `rate`.
    fn holds(&mut self, rate: u64, stage: Stage, times: usize) -> Result<bool, Stop> {
        for _ in 0..times {
            if !self.at(rate, stage)? {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

pub fn find(s: &Settings, probe: impl FnMut(u64, Stage) -> Probe) -> Found {
    let mut p = Prober {
        probe,
        probes: 0,
        passed: Vec::new(),
        broken: Vec::new(),
        unsure: String::new(),
    };
    let (mut lo, mut hi) = (None, None);
    let note = match search(s, &mut p, &mut lo, &mut hi) {
        Ok(note) => note,
        Err(Stop(note)) => note,
    };
    let binding = hi
        .and_then(|h| p.broken.iter().rev().find(|(r, _)| *r == h))
        .map(|(_, why)| why.clone())
        .unwrap_or_default();
    Found {
        capacity: lo,
        failed_at: hi,
        binding,
        probes: p.probes,
        note,
    }
}

/// The search proper; `lo` is the highest rate that held, `hi` the lowest that failed.
fn search<P: FnMut(u64, Stage) -> Probe>(
    s: &Settings,
    p: &mut Prober<P>,
    lo: &mut Option<u64>,
    hi: &mut Option<u64>,
) -> Result<String, Stop> {
    let mut rate = s.from;
    loop {
        // Steps up, doubling, until a probe fails.
        while hi.is_none() {
            if p.at(rate, Stage::StepUp)? {
                *lo = Some(rate);
                if rate >= s.max {
                    return Ok(format!("passed at the search's max ({rate}/s)"));
                }
                rate = (rate * 2).min(s.max);
            } else {
                *hi = Some(rate);
            }
        }
        let Some(mut l) = *lo else {
            return Ok(format!("fails already at {}/s", s.from));
        };
        let mut h = hi.expect("set above");
        // Bisection; near the boundary a rate holds only if two probes in a row pass.
        while (h as f64) > l as f64 * (1.0 + s.resolution) && h > l + 1 {
            let mid = l + (h - l) / 2;
            let near = (h as f64) <= l as f64 * (1.0 + 4.0 * s.resolution);
            if p.holds(mid, Stage::Bisect, if near { 2 } else { 1 })? {
                l = mid;
            } else {
                h = mid;
            }
        }
        (*lo, *hi) = (Some(l), Some(h));
        // Confirmation: the found rate passes `confirm` more times ...
        if !p.holds(l, Stage::Confirm, s.confirm)? {
            // ... or it was a lucky one: the highest lower rate that passed is the new bound.
            *hi = Some(l);
            *lo = p.passed.iter().copied().filter(|&r| r < l).max();
            continue;
        }
        // ... and the lowest failing rate fails again.
        if p.at(h, Stage::Recheck)? {
            // That failure was the unlucky one: search upwards from it.
            (*lo, *hi) = (Some(h), None);
            if h >= s.max {
                return Ok(format!("passed at the search's max ({h}/s)"));
            }
            rate = ((h as f64 * (1.0 + s.resolution)).ceil() as u64).clamp(h + 1, s.max);
            continue;
        }
        return Ok(String::new());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Settings = Settings {
        from: 1000,
        max: 2_000_000,
        resolution: 0.05,
        confirm: 3,
    };

    /// A server that meets the objective below `capacity` requests/s.
    fn server(capacity: u64) -> impl FnMut(u64, Stage) -> Probe {
        move |rate, _| {
            if rate <= capacity {
                Probe::Pass
            } else {
                Probe::Fail(format!("p99 over the limit at {rate}/s"))
            }
        }
    }

    #[test]
    fn finds_a_known_capacity_within_the_resolution() {
        for capacity in [1_500, 50_000, 123_456, 999_999] {
            let f = find(&S, server(capacity));
            let (lo, hi) = (f.capacity.unwrap(), f.failed_at.unwrap());
            assert!(lo <= capacity && capacity < hi, "{capacity}: {f:?}");
            assert!(hi as f64 <= lo as f64 * 1.05 + 1.0, "{capacity}: {f:?}");
            assert!(f.note.is_empty(), "{f:?}");
            assert!(f.binding.contains("p99"), "{f:?}");
            assert!(f.probes < 30, "{capacity}: {} probes", f.probes);
        }
    }

    #[test]
    fn the_found_rate_is_confirmed_and_the_next_step_up_rechecked() {
        let mut stages = Vec::new();
        let mut inner = server(50_000);
        let f = find(&S, |rate, stage| {
            stages.push((rate, stage));
            inner(rate, stage)
        });
        let found = f.capacity.unwrap();
        let confirms = stages
            .iter()
            .filter(|(r, s)| *s == Stage::Confirm && *r == found)
            .count();
        assert_eq!(confirms, 3);
        assert!(stages.contains(&(f.failed_at.unwrap(), Stage::Recheck)));
    }

    #[test]
    fn a_lucky_probe_is_not_a_capacity() {
        // Passes at 60,000 once (a lucky probe), otherwise only up to 40,000.
        let mut lucky = true;
        let f = find(&S, |rate, _| {
            if rate <= 40_000 || (rate <= 64_000 && std::mem::take(&mut lucky)) {
                Probe::Pass
            } else {
                Probe::Fail("p99".into())
            }
        });
        let found = f.capacity.unwrap();
        assert!(found <= 40_000, "{f:?}");
        assert!(found as f64 >= 40_000.0 / 1.05 - 1.0, "{f:?}");
    }

    #[test]
    fn an_inconclusive_probe_stops_at_the_clients_ceiling() {
        let f = find(&S, |rate, _| {
            if rate > 100_000 {
                Probe::Inconclusive("load generator saturated".into())
            } else {
                Probe::Pass
            }
        });
        assert_eq!(f.capacity, Some(64_000));
        assert_eq!(f.failed_at, None);
        assert!(f.note.contains("ceiling at 128000/s"), "{f:?}");
        // 1000 .. 64000 once each, then 128000 until it stays inconclusive.
        assert_eq!(f.probes, 7 + INCONCLUSIVE_TRIES, "{f:?}");
    }

    #[test]
    fn a_client_late_once_is_probed_again_not_taken_for_a_ceiling() {
        // Every confirmation is late the first time it runs (a client descheduled once).
        let (mut late, mut inner) = (true, server(50_000));
        let f = find(&S, |rate, stage| {
            let was_late = late;
            if stage == Stage::Confirm {
                late = !late;
            }
            if stage == Stage::Confirm && was_late {
                Probe::Inconclusive("send lag p99 7 ms".into())
            } else {
                inner(rate, stage)
            }
        });
        assert!(f.note.is_empty(), "{f:?}");
        let (lo, hi) = (f.capacity.unwrap(), f.failed_at.unwrap());
        assert!(lo <= 50_000 && 50_000 < hi, "{f:?}");
    }

    #[test]
    fn a_server_failing_at_the_start_has_no_capacity() {
        let f = find(&S, server(10));
        assert_eq!(f.capacity, None);
        assert!(f.note.contains("fails already at 1000/s"), "{f:?}");
    }

    #[test]
    fn passing_up_to_max_says_so() {
        let f = find(&S, server(u64::MAX));
        assert_eq!(f.capacity, Some(S.max));
        assert!(f.note.contains("max"), "{f:?}");
    }
}
