//! [`Pacer`]: when requests go out, the one part of the load generator that knows the load
//! model. The worker keeps the sockets and asks the pacer what is due, when to wake, whether a
//! connection is wanted now, and which requests and latencies count in the window.
//!
//! - Closed: a connection sends its next request when the answer to the last is in (and its
//!   first when it opens); latency counts for requests that started and finished in the window.
//! - Open: the shared [`Schedule`] (the rate's integral, round robin over the connections wanted
//!   at each instant) whatever the answers do; latency is measured from each request's intended
//!   time, every request scheduled in the window counts, and one never answered is recorded at
//!   the end of a [`DRAIN`].
//!
//! Both follow the connection ramp (connection `i` is wanted while `i` is below the ramp's
//! value) and churn (a TCP connection ends after `requests_per_connection` answers). A new way
//! to pace (a weighted assignment of the schedule to connections, think times) is a variant or
//! a parameter here, not a branch in the worker.

use super::schedule::{Due, Owned, Schedule};
use super::settings::Settings;
use crate::protocol::Ramp;
use crate::scenario::Model;
use std::time::{Duration, Instant};

/// Open model: after the load ends, outstanding requests get this long to be answered.
pub const DRAIN: Duration = Duration::from_secs(1);

/// The instants of one run, as the pacer and the worker count them.
#[derive(Clone, Copy)]
pub struct Clock {
    pub start: Instant,
    pub measure_from: Instant,
    pub end: Instant,
    /// The end of the drain, when what is still unanswered is given up.
    pub drain_until: Instant,
}

impl Clock {
    pub fn in_window(&self, t: Instant) -> bool {
        t >= self.measure_from && t < self.end
    }
}

enum Pace {
    Closed,
    Open {
        schedule: Schedule,
        /// The next scheduled request, when it is due.
        next: Option<(Instant, Due)>,
    },
}

pub struct Pacer {
    pace: Pace,
    /// Connections open over time (over all processes).
    connections: Ramp,
    requests_per_connection: Option<u64>,
}

impl Pacer {
    /// The pacer of `s`, before the load starts.
    pub fn new(s: &Settings) -> Pacer {
        Pacer {
            pace: Pace::Closed,
            connections: s.open_connections.clone(),
            requests_per_connection: s.requests_per_connection,
        }
    }

    /// The run's instants if the load started at `start`.
    pub fn clock(start: Instant, s: &Settings) -> Clock {
        let measure_from = start + s.warmup;
        let end = measure_from + s.duration;
        let drain = match s.model {
            Model::Open => DRAIN,
            Model::Closed => Duration::ZERO,
        };
        Clock {
            start,
            measure_from,
            end,
            drain_until: end + drain,
        }
    }

    /// The load starts at `start`: the run's instants, and the open model's schedule for the
    /// connections `owned` from then.
    pub fn start(&mut self, start: Instant, s: &Settings, owned: Owned) -> Clock {
        if let (Model::Open, Some(rate)) = (s.model, &s.rate) {
            let schedule = Schedule::new(
                rate,
                &s.open_connections,
                owned,
                s.warmup + s.duration,
                s.skew,
            );
            self.pace = Pace::Open {
                schedule,
                next: None,
            };
            self.advance(start);
        }
        Pacer::clock(start, s)
    }

    /// Moves to the next scheduled request.
    fn advance(&mut self, start: Instant) {
        if let Pace::Open { schedule, next } = &mut self.pace {
            *next = schedule.next_due().map(|due| (start + due.at, due));
        }
    }

    /// The next scheduled request (open model), due or not.
    pub fn next_due(&self) -> Option<(Instant, Due)> {
        match &self.pace {
            Pace::Open { next, .. } => *next,
            Pace::Closed => None,
        }
    }

    /// Takes the next scheduled request if it is due by `now`.
    pub fn take_due(&mut self, now: Instant, clock: &Clock) -> Option<(Instant, Due)> {
        let due = self.next_due().filter(|(at, _)| *at <= now)?;
        self.advance(clock.start);
        Some(due)
    }

    /// Takes the next scheduled request whenever it is due (the end of a run that fell behind).
    pub fn take_any(&mut self, clock: &Clock) -> Option<(Instant, Due)> {
        let due = self.next_due()?;
        self.advance(clock.start);
        Some(due)
    }

    /// The request a connection sends of itself, when it is open with nothing queued (at the
    /// start, after a reconnect) and after each answer, intended at the returned instant: the
    /// closed model's next request, at once. The open model's come from the schedule.
    pub fn own_request(&self, now: Instant) -> Option<Instant> {
        match self.pace {
            Pace::Closed => Some(now),
            Pace::Open { .. } => None,
        }
    }

    /// Tests: the next scheduled request is `due` at `at`.
    #[cfg(test)]
    pub fn set_next_due(&mut self, at: Instant, due: Due) {
        if let Pace::Open { next, .. } = &mut self.pace {
            *next = Some((at, due));
        }
    }

    /// Connection `index` is wanted open at `at` (the connection ramp).
    pub fn wanted(&self, index: usize, at: Instant, clock: &Clock) -> bool {
        let t = at.saturating_duration_since(clock.start);
        (index as f64) < self.connections.at(t).round()
    }

    /// The connection ramp moves, so connections must be opened and retired as it goes.
    pub fn ramping(&self) -> bool {
        !self.connections.phases.is_empty()
    }

    /// Churn allows another request on a TCP connection that started `started` of them.
    pub fn may_start(&self, started: u64) -> bool {
        self.requests_per_connection.is_none_or(|n| started < n)
    }

    /// Churn ends a TCP connection that `answered` requests.
    pub fn churn_done(&self, answered: u64) -> bool {
        self.requests_per_connection.is_some_and(|n| answered >= n)
    }

    /// A request intended at `intended` and sent at `sent` counts as sent in the window: by its
    /// schedule (open) or by when it went out (closed).
    pub fn counts_send(&self, intended: Instant, sent: Instant, clock: &Clock) -> bool {
        match self.pace {
            Pace::Open { .. } => clock.in_window(intended),
            Pace::Closed => clock.in_window(sent),
        }
    }

    /// An answer to a request intended at `intended`, read at `now`, counts in the latency
    /// histogram. Open: every request scheduled in the window, however late its answer (that
    /// lateness is the measurement). Closed: requests that started and finished in the window,
    /// so no request's latency is cut by the window's edges.
    pub fn counts_latency(&self, intended: Instant, now: Instant, clock: &Clock) -> bool {
        match self.pace {
            Pace::Open { .. } => clock.in_window(intended),
            Pace::Closed => intended >= clock.measure_from && now <= clock.end,
        }
    }

    /// The latency a client that waits for each answer would have reported is kept beside the
    /// corrected one (open model: the two differ).
    pub fn keeps_uncorrected(&self) -> bool {
        matches!(self.pace, Pace::Open { .. })
    }

    /// A request intended at `intended` that will not be answered counts as unanswered, in the
    /// latency histogram at the end of the drain. Only the open model counts these: the closed
    /// model's outstanding requests at the end are simply not finished.
    pub fn counts_unanswered(&self, intended: Instant, clock: &Clock) -> bool {
        matches!(self.pace, Pace::Open { .. }) && clock.in_window(intended)
    }
}
