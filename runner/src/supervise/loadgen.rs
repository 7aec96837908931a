//! The client side of a run: one `runbench loadgen` process per shard.

use super::ChildProc;
use crate::protocol::{LoadErrors, LoadEvent, LoadResult, LoadgenSpec, START};
use crate::timeline::TimelineRecorder;
use std::path::Path;
use std::time::{Duration, Instant};

/// Lead time for the start command to reach every load-generator process.
const START_DELAY: Duration = Duration::from_millis(50);
/// How often waits check for an interruption (Ctrl-C).
const POLL: Duration = Duration::from_millis(100);

/// One load-generator process's event: its result, its progress, or a timeline interval.
fn take_event(
    e: LoadEvent,
    result: &mut Option<Result<LoadResult, String>>,
    completed: &mut u64,
    timeline: &mut TimelineRecorder,
) {
    match e {
        LoadEvent::Progress { completed: c, .. } => *completed = c,
        LoadEvent::Interval {
            index,
            completed,
            errors,
            connections,
            histogram,
        } => timeline.on_interval(index, completed, errors, connections, &histogram),
        LoadEvent::Result { result: r } => *result = Some(Ok(r)),
        LoadEvent::Failed { message } => *result = Some(Err(message)),
        LoadEvent::Connected { .. } => {}
    }
}

pub struct Loadgens {
    procs: Vec<ChildProc<LoadEvent>>,
    /// Latest completed-request count per process.
    completed: Vec<u64>,
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
    ) -> Result<(Loadgens, ConnectSummary), String> {
        let mut procs = Vec::new();
        for (i, spec) in specs.iter().enumerate() {
            let json = serde_json::to_string(spec).expect("spec serialises");
            let label = format!("{runtime} loadgen {i}");
            let p = ChildProc::spawn(exe, "loadgen", &json, &label, |_| None)
                .map_err(|e| format!("starting a load generator: {e}"))?;
            procs.push(p);
        }
        let deadline = Instant::now() + timeout;
        let mut summary = ConnectSummary::default();
        for p in &mut procs {
            let event = loop {
                if let Some(sig) = crate::interrupt::requested() {
                    return Err(format!(
                        "interrupted ({}) while connecting",
                        crate::interrupt::name(sig)
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
                    summary.errors.add(&errors);
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
        let completed = vec![0; procs.len()];
        Ok((Loadgens { procs, completed }, summary))
    }

    /// Starts every process at one instant, `START_DELAY` from now; returns that instant.
    pub fn start(&mut self) -> Instant {
        let at = crate::sys::monotonic_ns() + START_DELAY.as_nanos() as u64;
        for p in &mut self.procs {
            p.send_line(&format!("{START} {at}"));
        }
        crate::sys::instant_at(at)
    }

    /// Latest total of completed requests (warmup included), after draining progress events.
    /// Results that arrive are kept in `results`.
    pub fn poll(
        &mut self,
        results: &mut [Option<Result<LoadResult, String>>],
        timeline: &mut TimelineRecorder,
    ) -> u64 {
        for (i, p) in self.procs.iter().enumerate() {
            while let Some(e) = p.try_event() {
                take_event(e, &mut results[i], &mut self.completed[i], timeline);
            }
        }
        self.completed.iter().sum()
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
                take_event(e, &mut results[i], &mut self.completed[i], timeline);
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
