//! The client side of a run: one `runbench loadgen` process per shard.

use super::ChildProc;
use crate::cluster::Placement;
use crate::measure::timeline::TimelineRecorder;
use crate::protocol::{LoadErrors, LoadEvent, LoadResult, LoadgenSpec, START};
use std::path::Path;
use std::time::{Duration, Instant};

/// Lead time for the start command to reach every load-generator process.
const START_DELAY: Duration = Duration::from_millis(50);
/// How often waits check for an interruption (Ctrl-C).
const POLL: Duration = Duration::from_millis(100);

/// A load process's completed-request count as it reported it, stamped with its own clock: the
/// rate comes from the child's timestamps, not from when its lines happened to arrive (they
/// arrive irregularly, and the runner's clock read 0.5x-1.5x the true rate).
#[derive(Clone, Copy, Debug, Default)]
pub struct ChildRate {
    latest: Option<(u64, u64)>,
    shown: Option<(u64, u64)>,
    rate: f64,
}

impl ChildRate {
    /// A progress line: `completed` requests at `at_ns` on the child's CLOCK_MONOTONIC.
    pub fn observe(&mut self, at_ns: u64, completed: u64) {
        self.latest = Some((at_ns, completed));
    }

    /// Requests/s between the previous call and the newest report (the last rate again when no
    /// newer report came in between).
    pub fn take_rate(&mut self) -> f64 {
        if let (Some((t1, c1)), Some((t0, c0))) = (self.latest, self.shown) {
            if t1 > t0 {
                self.rate = c1.saturating_sub(c0) as f64 / ((t1 - t0) as f64 / 1e9);
            }
        }
        self.shown = self.latest;
        self.rate
    }

    pub fn completed(&self) -> u64 {
        self.latest.map_or(0, |(_, c)| c)
    }
}

/// One load-generator process's event: its result, its progress, or a timeline interval.
fn take_event(
    process: usize,
    e: LoadEvent,
    result: &mut Option<Result<LoadResult, String>>,
    progress: &mut ChildRate,
    timeline: &mut TimelineRecorder,
) {
    match e {
        LoadEvent::Progress {
            at_ns, completed, ..
        } => progress.observe(at_ns, completed),
        LoadEvent::Interval {
            index,
            completed,
            errors,
            connections,
            histogram,
        } => timeline.on_interval(process, index, completed, errors, connections, &histogram),
        LoadEvent::Result { result: r } => *result = Some(Ok(*r)),
        LoadEvent::Failed { message } => *result = Some(Err(message)),
        LoadEvent::Connected { .. } => {}
    }
}

pub struct Loadgens {
    procs: Vec<ChildProc<LoadEvent>>,
    /// Progress per process.
    progress: Vec<ChildRate>,
    /// How far ahead of the command the start instant lies (see `Placement::start_lead`).
    lead: Duration,
}

/// What connecting achieved, over all processes.
#[derive(Clone, Debug, Default)]
pub struct ConnectSummary {
    pub ok: u64,
    pub errors: LoadErrors,
    pub first_error: Option<String>,
}

impl Loadgens {
    /// Starts every shard and waits until all have connected (or given up).
    pub fn connect(
        exe: &Path,
        specs: &[LoadgenSpec],
        runtime: &str,
        timeout: Duration,
        placement: &Placement,
    ) -> Result<(Loadgens, ConnectSummary), String> {
        let mut procs = Vec::new();
        for (i, spec) in specs.iter().enumerate() {
            let json = serde_json::to_string(spec).expect("spec serialises");
            let label = format!("{runtime} loadgen {i}");
            let agent = placement.loadgen(i);
            let p = ChildProc::spawn_at(
                agent,
                exe,
                "loadgen",
                &json,
                &label,
                |_| None,
                spec.connections,
            )
            .map_err(|e| format!("starting a load generator: {e}"))?;
            procs.push(p);
        }
        let deadline = Instant::now() + timeout;
        let mut summary = ConnectSummary::default();
        for p in &mut procs {
            let event = loop {
                if let Some(sig) = crate::os::interrupt::requested() {
                    return Err(format!(
                        "interrupted ({}) while connecting",
                        crate::os::interrupt::name(sig)
                    ));
                }
                match p.next_event((Instant::now() + POLL).min(deadline)) {
                    Some(e) => break Some(e),
                    // Exited: its last words may still be in the pipe.
                    None if p.poll_exit().is_some() => {
                        break p
                            .remaining_events(Duration::from_secs(1))
                            .into_iter()
                            .next()
                    }
                    None if Instant::now() >= deadline => break None,
                    None => {}
                }
            };
            match event {
                Some(LoadEvent::Connected {
                    ok,
                    errors,
                    first_error,
                }) => {
                    summary.ok += ok;
                    summary.errors += errors;
                    if summary.first_error.is_none() {
                        summary.first_error = first_error;
                    }
                }
                Some(LoadEvent::Failed { message }) => {
                    return Err(format!("load generator: {message}"))
                }
                _ => return Err("load generator did not finish connecting in time".to_string()),
            }
        }
        let progress = vec![ChildRate::default(); procs.len()];
        // Across machines the start command must cross the slowest link first.
        let lead = placement.start_lead(START_DELAY);
        Ok((
            Loadgens {
                procs,
                progress,
                lead,
            },
            summary,
        ))
    }

    /// Starts every process at one instant, `START_DELAY` from now (across machines, far
    /// enough ahead for the slowest link); returns that instant.
    pub fn start(&mut self) -> Instant {
        let at = crate::os::sys::monotonic_ns() + self.lead.as_nanos() as u64;
        for p in &mut self.procs {
            p.send_line(&format!("{START} {at}"));
        }
        crate::os::sys::instant_at(at)
    }

    /// Takes the events that arrived: results are kept in `results`, intervals go to the
    /// timeline, progress is kept for [`Loadgens::rate`].
    pub fn poll(
        &mut self,
        results: &mut [Option<Result<LoadResult, String>>],
        timeline: &mut TimelineRecorder,
    ) {
        for (i, p) in self.procs.iter_mut().enumerate() {
            while let Some(e) = p.try_event() {
                take_event(i, e, &mut results[i], &mut self.progress[i], timeline);
            }
        }
    }

    /// Requests/s over all processes since the last call, by the processes' own clocks.
    pub fn rate(&mut self) -> f64 {
        self.progress.iter_mut().map(ChildRate::take_rate).sum()
    }

    /// Requests completed so far (warmup included), as last reported.
    pub fn completed(&self) -> u64 {
        self.progress.iter().map(ChildRate::completed).sum()
    }

    pub fn len(&self) -> usize {
        self.procs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.procs.is_empty()
    }

    /// Marks load generators that exited without a result as failed.
    pub fn reap_dead(
        &mut self,
        results: &mut [Option<Result<LoadResult, String>>],
        timeline: &mut TimelineRecorder,
    ) {
        for (i, p) in self.procs.iter_mut().enumerate() {
            if results[i].is_some() {
                continue;
            }
            let Some(r) = p.poll_exit() else { continue };
            // Its last words may still be in the pipe.
            for e in p.remaining_events(Duration::from_secs(1)) {
                take_event(i, e, &mut results[i], &mut self.progress[i], timeline);
            }
            if results[i].is_none() {
                let how = match (r.exit_code, r.signal) {
                    (_, Some(sig)) => format!("was killed by signal {sig}"),
                    (code, _) => format!("exited with {code:?}"),
                };
                results[i] = Some(Err(format!("load generator {i} {how} without a result")));
            }
        }
    }

    /// Ends the load now (the server died, or the run was interrupted): what the processes
    /// would still measure has no use, so they are killed rather than waited for.
    pub fn abort(mut self) {
        for p in &mut self.procs {
            p.kill();
        }
    }

    /// Reaps every process (they exit after sending their result), killing stragglers.
    pub fn finish(mut self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        for p in &mut self.procs {
            p.close_stdin();
            p.wait_exit(deadline);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ChildRate;

    #[test]
    fn the_rate_comes_from_the_childs_clock_however_irregularly_lines_arrive() {
        // 75,000 req/s reported every 250 ms of the child's clock; the runner reads them in
        // bursts (two at once, then none), which its own clock would turn into 0x-2x.
        let mut r = ChildRate::default();
        let mut rates = Vec::new();
        for tick in 1..=12u64 {
            r.observe(tick * 250_000_000, tick * 18_750);
            if tick % 2 == 0 {
                rates.push(r.take_rate());
            }
        }
        // The first call has nothing to compare with.
        for rate in &rates[1..] {
            assert!((rate - 75_000.0).abs() < 1e-6, "{rate}");
        }
        // No new line since the last call: the last rate stands (not 0).
        assert!((r.take_rate() - 75_000.0).abs() < 1e-6);
    }
}
