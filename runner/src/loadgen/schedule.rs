//! The open model's send schedule, shared by every load-generator thread of every process.
//!
//! Request `k` (numbered over the whole load, from 0) is due at the instant `t_k` at which the
//! integral of the rate since the load started reaches `k`: `∫₀^{t_k} rate(t) dt = k`. So a
//! ramp from 1 to 20,000/s over 3 s schedules its 30,000 requests, and a phase at rate 0 none.
//! Request `k` goes to connection `k mod n(t_k)`, `n` the connections the scenario wants open at
//! that instant: round robin, so a connection's share of the rate does not depend on how long it
//! lived (one that is reconnecting gets its requests late, with their intended times, instead of
//! a fresh schedule that skips the gap).
//!
//! With `[load] skew` request `k` goes to the connection [`Skew::connection`] gives instead: the
//! hot connections get exactly `share` of every stretch of requests, round robin among them.
//!
//! Every thread walks the same sequence and keeps the requests of the connections it owns, so
//! no two threads need to talk and together they send exactly the schedule. Walking costs a few
//! nanoseconds per request of the whole load, far below sending one.

use crate::protocol::Ramp;
use crate::scenario::Skew;
use std::time::Duration;

/// One straight piece of the rate: from `a` to `b` requests/s over `len` seconds starting at
/// `t0`, with `g0` requests due before it.
#[derive(Clone, Copy, Debug)]
struct Segment {
    t0: f64,
    len: f64,
    a: f64,
    b: f64,
    g0: f64,
}

impl Segment {
    fn slope(&self) -> f64 {
        if self.len.is_finite() && self.len > 0.0 {
            (self.b - self.a) / self.len
        } else {
            0.0
        }
    }

    /// Requests due within the whole segment.
    fn requests(&self) -> f64 {
        if self.len.is_finite() {
            (self.a + self.b) / 2.0 * self.len
        } else if self.a > 0.0 {
            f64::INFINITY
        } else {
            0.0
        }
    }
}

/// `G(t) = ∫₀^t rate` of a piecewise-linear rate, and its inverse.
#[derive(Clone, Debug)]
pub struct RateIntegral {
    segments: Vec<Segment>,
}

impl RateIntegral {
    pub fn new(rate: &Ramp) -> Self {
        let mut segments = Vec::new();
        let (mut t0, mut g0, mut value) = (0.0, 0.0, rate.start.max(0.0));
        for &(len_ms, target) in &rate.phases {
            let to = target.unwrap_or(value).max(0.0);
            let s = Segment {
                t0,
                len: len_ms as f64 / 1000.0,
                a: value,
                b: to,
                g0,
            };
            g0 += s.requests();
            t0 += s.len;
            value = to;
            segments.push(s);
        }
        segments.push(Segment {
            t0,
            len: f64::INFINITY,
            a: value,
            b: value,
            g0,
        });
        RateIntegral { segments }
    }

    /// Requests due in `[0, t)` (t in seconds since the load started).
    pub fn requests_before(&self, t: f64) -> f64 {
        let t = t.max(0.0);
        let s = self
            .segments
            .iter()
            .rev()
            .find(|s| s.t0 <= t)
            .expect("the first segment starts at 0");
        let tau = (t - s.t0).min(s.len);
        s.g0 + s.a * tau + s.slope() * tau * tau / 2.0
    }

    /// When request number `k` is due (seconds), or `None` if the rate never reaches it.
    /// `hint` remembers the segment of the last call, so walking `k` upwards is cheap.
    fn time_of(&self, k: f64, hint: &mut usize) -> Option<f64> {
        while let Some(s) = self.segments.get(*hint) {
            let end = s.g0 + s.requests();
            if k < end {
                // Solve g0 + a·τ + slope·τ²/2 = k for τ in the form that is stable for any slope
                // (and exact for a constant rate): τ = 2d / (a + √(a² + 2·slope·d)).
                let d = k - s.g0;
                if d <= 0.0 {
                    return Some(s.t0);
                }
                let root = (s.a * s.a + 2.0 * s.slope() * d).max(0.0).sqrt();
                let tau = (2.0 * d / (s.a + root)).min(s.len);
                return Some(s.t0 + tau);
            }
            *hint += 1;
        }
        None
    }
}

/// The connections one load-generator thread owns: global indices `first + thread + j·threads`
/// for `j` in `0..`, below `first + count` (how `loadgen::split` deals them out).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owned {
    pub first: usize,
    pub count: usize,
    pub threads: usize,
    pub thread: usize,
}

impl Owned {
    /// The thread's local slot of global connection `c`, if it owns it.
    pub fn slot(&self, c: usize) -> Option<usize> {
        let k = c.checked_sub(self.first)?;
        (k < self.count && k % self.threads == self.thread).then_some(k / self.threads)
    }
}

/// One request of the schedule that this thread sends.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Due {
    /// Since the load started.
    pub at: Duration,
    /// Global connection index.
    pub connection: usize,
    /// The thread's slot for it.
    pub slot: usize,
}

/// This thread's part of the schedule, in due order, up to the end of the load.
pub struct Schedule {
    integral: RateIntegral,
    connections: Ramp,
    owned: Owned,
    skew: Option<Skew>,
    end_s: f64,
    k: u64,
    hint: usize,
}

impl Schedule {
    pub fn new(
        rate: &Ramp,
        connections: &Ramp,
        owned: Owned,
        end: Duration,
        skew: Option<Skew>,
    ) -> Self {
        Schedule {
            integral: RateIntegral::new(rate),
            connections: connections.clone(),
            owned,
            skew,
            end_s: end.as_secs_f64(),
            k: 0,
            hint: 0,
        }
    }

    /// The next request this thread owns that is due before the end, if any.
    pub fn next_due(&mut self) -> Option<Due> {
        loop {
            let t = self.integral.time_of(self.k as f64, &mut self.hint)?;
            if t >= self.end_s {
                return None;
            }
            let k = self.k;
            self.k += 1;
            let at = Duration::from_secs_f64(t);
            // With no connection wanted, the request belongs to connection 0, which is not
            // open: its owner counts it as not sent.
            let n = self.connections.at(at).round().max(1.0) as u64;
            let connection = match self.skew {
                Some(skew) => skew.connection(k, n),
                None => k % n,
            } as usize;
            if let Some(slot) = self.owned.slot(connection) {
                return Some(Due {
                    at,
                    connection,
                    slot,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(start: f64, phases: &[(u64, Option<f64>)]) -> Ramp {
        Ramp {
            start,
            phases: phases.to_vec(),
        }
    }

    fn all(owned: Owned, rate: &Ramp, conns: &Ramp, end_s: u64) -> Vec<Due> {
        let mut s = Schedule::new(rate, conns, owned, Duration::from_secs(end_s), None);
        std::iter::from_fn(|| s.next_due()).collect()
    }

    const ONE: Owned = Owned {
        first: 0,
        count: 100,
        threads: 1,
        thread: 0,
    };

    #[test]
    fn a_constant_rate_is_evenly_spaced_round_robin() {
        let due = all(ONE, &Ramp::constant(1000.0), &Ramp::constant(100.0), 2);
        assert_eq!(due.len(), 2000);
        for (k, d) in due.iter().enumerate() {
            assert!((d.at.as_secs_f64() - k as f64 / 1000.0).abs() < 1e-9);
            assert_eq!(d.connection, k % 100);
        }
    }

    #[test]
    fn a_ramp_schedules_the_integral_of_its_rate() {
        // 1/s -> 20,000/s over 3 s: (1 + 20000) / 2 * 3 = 30,001.5 requests due.
        let rate = ramp(1.0, &[(3000, Some(20_000.0))]);
        let due = all(ONE, &rate, &Ramp::constant(100.0), 3);
        assert_eq!(due.len(), 30_002);
        // Denser at the end: the last second holds (13334 + 20000) / 2 = 16,667 of them.
        let last_second = due.iter().filter(|d| d.at.as_secs_f64() >= 2.0).count();
        assert!((last_second as i64 - 16_667).abs() <= 1, "{last_second}");
        let i = RateIntegral::new(&rate);
        assert!((i.requests_before(3.0) - 30_001.5).abs() < 1e-6);
    }

    #[test]
    fn rate_zero_sends_nothing() {
        let rate = ramp(0.0, &[(1000, Some(0.0)), (1000, Some(1000.0))]);
        let due = all(ONE, &rate, &Ramp::constant(10.0), 2);
        assert!(due.iter().all(|d| d.at >= Duration::from_secs(1)));
        // 0 -> 1000/s over the second 1 s: 500 requests.
        assert_eq!(due.len(), 500);
        assert!(all(ONE, &Ramp::constant(0.0), &Ramp::constant(10.0), 5).is_empty());
    }

    #[test]
    fn threads_and_processes_share_the_schedule_exactly() {
        let rate = ramp(500.0, &[(2000, Some(4000.0)), (1000, None)]);
        let conns = Ramp::constant(10.0);
        let whole = all(
            Owned {
                first: 0,
                count: 10,
                threads: 1,
                thread: 0,
            },
            &rate,
            &conns,
            4,
        );
        // Two processes of 5 connections, the second with two threads.
        let mut parts = all(
            Owned {
                first: 0,
                count: 5,
                threads: 1,
                thread: 0,
            },
            &rate,
            &conns,
            4,
        );
        for thread in 0..2 {
            parts.extend(all(
                Owned {
                    first: 5,
                    count: 5,
                    threads: 2,
                    thread,
                },
                &rate,
                &conns,
                4,
            ));
        }
        parts.sort_by(|a, b| a.at.cmp(&b.at).then(a.connection.cmp(&b.connection)));
        let key = |d: &Due| (d.at, d.connection);
        assert_eq!(
            parts.iter().map(key).collect::<Vec<_>>(),
            whole.iter().map(key).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_skew_gives_the_hot_connections_their_share_and_spreads_the_rest() {
        let skew = Skew {
            hot: 0.1,
            share: 0.9,
        };
        let mut s = Schedule::new(
            &Ramp::constant(10_000.0),
            &Ramp::constant(100.0),
            ONE,
            Duration::from_secs(1),
            Some(skew),
        );
        let mut per = [0u32; 100];
        for d in std::iter::from_fn(|| s.next_due()) {
            per[d.connection] += 1;
        }
        // 10,000 requests: 9,000 over the 10 hot connections, 1,000 over the 90 cold ones,
        // each even within its kind (round robin).
        assert_eq!(per[..10].iter().sum::<u32>(), 9000);
        assert!(per[..10].iter().all(|&n| n == 900), "{per:?}");
        assert!(per[10..].iter().all(|&n| (11..=12).contains(&n)), "{per:?}");
        assert_eq!(per.iter().sum::<u32>(), 10_000);
    }

    #[test]
    fn a_connection_ramp_only_uses_wanted_connections() {
        let conns = ramp(1.0, &[(1000, Some(100.0))]);
        let due = all(ONE, &Ramp::constant(10_000.0), &conns, 1);
        for d in &due {
            let n = conns.at(d.at).round().max(1.0) as usize;
            assert!(d.connection < n);
        }
    }
}
