//! The capacity search: per runtime (and point), the highest open-model rate at which `[slo]`
//! holds. Coarse steps up (doubling from `from`) until a probe fails, then bisection until the
//! bracket is within `resolution`; near the boundary each probe runs twice and passes only if
//! both do; then the found rate must pass `confirm` more trials and the lowest failing rate must
//! fail again, because one lucky probe is not a capacity. A probe the load generator may have
//! decided (see `crate::judge::probe`) is inconclusive, not a pass or a fail: it is run again (a
//! client descheduled once for a few milliseconds is not a ceiling), and when it stays
//! inconclusive that rate is the client's ceiling: the search bisects below it as below a
//! failure, so the capacity found is within `resolution` of the ceiling (a lower bound, said
//! in the note) or a real failure under it.
//!
//! The algorithm is a pure function of a probe callback, so it is tested against synthetic
//! servers; `run::run_plan` gives it real probes.

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

pub use crate::judge::probe::Probe;
pub use crate::results::Found;
pub use crate::scenario::MAX_PROBES;

/// Inconclusive probes in a row at one rate before the search stops at the client's ceiling:
/// a saturated client stays saturated, a late one from a scheduling hiccup does not.
pub const INCONCLUSIVE_TRIES: usize = 3;

/// Runs the probes and remembers what they showed.
struct Prober<P> {
    probe: P,
    probes: usize,
    /// Every rate that passed, the limits broken at each rate that failed, and why each rate
    /// the client could not decide stayed inconclusive.
    passed: Vec<u64>,
    broken: Vec<(u64, String)>,
    undecided: Vec<(u64, String)>,
}

/// What a rate showed once its probes were run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Pass,
    Fail,
    /// Inconclusive [`INCONCLUSIVE_TRIES`] times in a row: the client cannot decide this rate.
    Ceiling,
}

/// Why a search ends before its design says (the `note`).
struct Stop(String);

impl<P: FnMut(u64, Stage) -> Probe> Prober<P> {
    /// One probe, run again while inconclusive; `Err` when the search must end.
    fn at(&mut self, rate: u64, stage: Stage) -> Result<Outcome, Stop> {
        let mut unsure = String::new();
        for _ in 0..INCONCLUSIVE_TRIES {
            if self.probes >= MAX_PROBES {
                return Err(Stop(format!("stopped after {MAX_PROBES} probes")));
            }
            self.probes += 1;
            match (self.probe)(rate, stage) {
                Probe::Pass => {
                    self.passed.push(rate);
                    return Ok(Outcome::Pass);
                }
                Probe::Fail(why) => {
                    self.broken.push((rate, why));
                    return Ok(Outcome::Fail);
                }
                Probe::Inconclusive(why) => unsure = why,
                Probe::Interrupted => return Err(Stop("interrupted".into())),
            }
        }
        self.undecided.push((rate, unsure));
        Ok(Outcome::Ceiling)
    }

    /// `times` probes in a row at `rate`: a pass if all pass, else the first that did not.
    fn holds(&mut self, rate: u64, stage: Stage, times: usize) -> Result<Outcome, Stop> {
        for _ in 0..times {
            let o = self.at(rate, stage)?;
            if o != Outcome::Pass {
                return Ok(o);
            }
        }
        Ok(Outcome::Pass)
    }

    /// The highest rate below `rate` that passed.
    fn passed_below(&self, rate: u64) -> Option<u64> {
        self.passed.iter().copied().filter(|&r| r < rate).max()
    }

    /// The note for a search that ends under the client's ceiling at `rate`, with why that
    /// rate stayed inconclusive.
    fn ceiling_note(&self, rate: u64) -> String {
        let why = (self.undecided.iter().rev())
            .find(|(r, _)| *r == rate)
            .map_or("", |(_, why)| why.as_str());
        format!(
            "the load generator's ceiling at {rate}/s ({INCONCLUSIVE_TRIES} probes in a row \
             inconclusive): {why}"
        )
    }
}

pub fn find(s: &Settings, probe: impl FnMut(u64, Stage) -> Probe) -> Found {
    let mut p = Prober {
        probe,
        probes: 0,
        passed: Vec::new(),
        broken: Vec::new(),
        undecided: Vec::new(),
    };
    let mut b = Bracket::default();
    let note = match search(s, &mut p, &mut b) {
        Ok(note) => note,
        Err(Stop(note)) => match b.ceiling {
            // Ended early below a ceiling already found: say both.
            Some(c) => format!("{note}; {}", p.ceiling_note(c)),
            None => note,
        },
    };
    let binding = (b.failed)
        .and_then(|h| p.broken.iter().rev().find(|(r, _)| *r == h))
        .map(|(_, why)| why.clone())
        .unwrap_or_default();
    Found {
        capacity: b.held,
        failed_at: b.failed,
        binding,
        probes: p.probes,
        note,
    }
}

/// What the search knows: the highest rate that held, the lowest that failed, and the lowest
/// the client could not decide (its ceiling: the search goes on below it, not above).
#[derive(Default)]
struct Bracket {
    held: Option<u64>,
    failed: Option<u64>,
    ceiling: Option<u64>,
}

impl Bracket {
    /// The bracket's upper end: a failure or the ceiling, whichever is lower.
    fn top(&self) -> Option<u64> {
        match (self.failed, self.ceiling) {
            (Some(f), Some(c)) => Some(f.min(c)),
            (f, c) => f.or(c),
        }
    }

    fn record(&mut self, rate: u64, o: Outcome) {
        match o {
            Outcome::Pass => self.held = Some(rate),
            Outcome::Fail => self.failed = Some(rate),
            Outcome::Ceiling => self.ceiling = Some(rate),
        }
    }
}

/// The search proper.
fn search<P: FnMut(u64, Stage) -> Probe>(
    s: &Settings,
    p: &mut Prober<P>,
    b: &mut Bracket,
) -> Result<String, Stop> {
    let mut rate = s.from;
    loop {
        // Steps up, doubling, until a probe fails or the client cannot decide.
        while b.top().is_none() {
            let o = p.at(rate, Stage::StepUp)?;
            b.record(rate, o);
            if o == Outcome::Pass {
                if rate >= s.max {
                    return Ok(format!("passed at the search's max ({rate}/s)"));
                }
                rate = (rate * 2).min(s.max);
            }
        }
        let Some(mut l) = b.held else {
            return Ok(match b.ceiling {
                Some(c) if b.failed.is_none() => p.ceiling_note(c),
                _ => format!("fails already at {}/s", s.from),
            });
        };
        let mut h = b.top().expect("set above");
        // Bisection, below a failure or below the client's ceiling alike; near the boundary a
        // rate holds only if two probes in a row pass.
        while (h as f64) > l as f64 * (1.0 + s.resolution) && h > l + 1 {
            let mid = l + (h - l) / 2;
            let near = (h as f64) <= l as f64 * (1.0 + 4.0 * s.resolution);
            let o = p.holds(mid, Stage::Bisect, if near { 2 } else { 1 })?;
            b.record(mid, o);
            match o {
                Outcome::Pass => l = mid,
                _ => h = mid,
            }
        }
        b.held = Some(l);
        // Confirmation: the found rate passes `confirm` more times ...
        let confirmed = p.holds(l, Stage::Confirm, s.confirm)?;
        if confirmed != Outcome::Pass {
            // ... or it was a lucky one: the highest lower rate that passed is the new bound.
            b.record(l, confirmed);
            b.held = p.passed_below(l);
            continue;
        }
        if b.failed != Some(h) {
            // The top is the client's ceiling: nothing above it can be decided.
            return Ok(p.ceiling_note(h));
        }
        // ... and the lowest failing rate fails again.
        match p.at(h, Stage::Recheck)? {
            Outcome::Fail => return Ok(String::new()),
            Outcome::Ceiling => {
                b.ceiling = Some(h);
                b.failed = None;
                return Ok(p.ceiling_note(h));
            }
            Outcome::Pass => {
                // That failure was the unlucky one: search upwards from it, to a ceiling above
                // it at most.
                (b.held, b.failed) = (Some(h), None);
                if h >= s.max {
                    return Ok(format!("passed at the search's max ({h}/s)"));
                }
                if b.ceiling.is_some_and(|c| c <= h) {
                    b.ceiling = None;
                }
                rate = ((h as f64 * (1.0 + s.resolution)).ceil() as u64).clamp(h + 1, s.max);
            }
        }
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
    fn the_search_bisects_below_the_clients_ceiling() {
        // The client cannot decide above 100,000/s; the server would pass anything.
        let mut tried = Vec::new();
        let f = find(&S, |rate, _| {
            tried.push(rate);
            if rate > 100_000 {
                Probe::Inconclusive("load generator saturated".into())
            } else {
                Probe::Pass
            }
        });
        let (lo, note) = (f.capacity.unwrap(), &f.note);
        // The lower bound comes within the resolution of the ceiling, not at the last doubling
        // (64,000) below it.
        assert!(lo <= 100_000 && lo as f64 >= 100_000.0 / 1.05, "{f:?}");
        assert_eq!(f.failed_at, None, "nothing failed: {f:?}");
        assert!(note.contains("the load generator's ceiling at"), "{f:?}");
        let ceiling: u64 = note["the load generator's ceiling at ".len()..]
            .split('/')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            ceiling > 100_000 && ceiling as f64 <= lo as f64 * 1.05 + 1.0,
            "{f:?}"
        );
        // Every rate the client could not decide was tried three times before it counted.
        for r in tried.iter().filter(|&&r| r > 100_000) {
            assert_eq!(
                tried.iter().filter(|&&x| x == *r).count(),
                INCONCLUSIVE_TRIES
            );
        }
        assert!(f.probes <= MAX_PROBES, "{f:?}");
    }

    #[test]
    fn the_ceiling_is_explained_by_its_own_probes_not_the_last_inconclusive_one() {
        // Above 100,000/s the client is saturated; the first confirmation of the found rate is
        // late once for another reason, and then passes.
        let mut late_once = true;
        let f = find(&S, |rate, stage| {
            if rate > 100_000 {
                Probe::Inconclusive(format!("saturated at {rate}/s"))
            } else if stage == Stage::Confirm && std::mem::take(&mut late_once) {
                Probe::Inconclusive("descheduled once".into())
            } else {
                Probe::Pass
            }
        });
        let ceiling = f
            .note
            .split(" at ")
            .nth(1)
            .unwrap()
            .split('/')
            .next()
            .unwrap();
        assert!(
            f.note.ends_with(&format!("saturated at {ceiling}/s")),
            "{f:?}"
        );
    }

    #[test]
    fn a_failure_below_the_clients_ceiling_is_a_capacity() {
        // The client cannot decide 128,000/s, but the server fails from 90,000/s: bisecting
        // under the ceiling finds the server's limit, as if the ceiling were not there.
        let f = find(&S, |rate, _| match rate {
            r if r > 120_000 => Probe::Inconclusive("send lag".into()),
            r if r >= 90_000 => Probe::Fail("p99 over the limit".into()),
            _ => Probe::Pass,
        });
        let (lo, hi) = (f.capacity.unwrap(), f.failed_at.unwrap());
        assert!(lo < 90_000 && 90_000 <= hi, "{f:?}");
        assert!(hi as f64 <= lo as f64 * 1.05 + 1.0, "{f:?}");
        assert!(f.note.is_empty(), "ended as designed: {f:?}");
        assert!(f.binding.contains("p99"), "{f:?}");
    }

    #[test]
    fn a_client_that_cannot_decide_the_first_rate_says_so() {
        let f = find(&S, |_, _| Probe::Inconclusive("saturated".into()));
        assert_eq!(f.capacity, None);
        assert!(f.note.contains("ceiling at 1000/s"), "{f:?}");
        assert_eq!(f.probes, INCONCLUSIVE_TRIES);
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
