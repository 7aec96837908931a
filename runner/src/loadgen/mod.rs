//! `runbench loadgen`: one load-generator process. The runner starts as many as the open-files
//! limit requires and merges their results; the same split would let several machines share
//! the load.
//!
//! Its phases: connect every worker thread's connections -> report `connected` -> wait for
//! `start` on stdin -> relay timeline intervals and progress while the workers run -> merge
//! the workers' results -> report `result`. EOF on stdin before `start` ends it without load.

mod arrival;
mod connect;
mod epoll;
mod exchange;
mod http;
mod pacer;
mod schedule;
mod settings;
mod worker;

pub use arrival::REMEASURE as CLOCKS_REMEASURED;
pub use schedule::RateIntegral;
pub use worker::DRAIN;

use crate::plan::source_address;
use crate::protocol::histograms::{encode, new_histogram, LoadHistograms};
use crate::protocol::{LoadBusy, LoadCounters, LoadEvent, LoadResult, LoadgenSpec, ProtocolOut};
use crate::protocol::{LoadErrors, START};
use schedule::Owned;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use worker::{Connected, IntervalSample, Live, Settings, Worker, WorkerResult};

const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// Exit codes of the load-generator child, read by the supervisor.
pub mod exit {
    pub const OK: i32 = 0;
    pub const SETUP_FAILED: i32 = 3;
    pub const LOAD_FAILED: i32 = 4;
}

pub fn child_main(spec: &LoadgenSpec) -> i32 {
    let out = match ProtocolOut::take_stdout() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("runbench loadgen: {e}");
            return exit::SETUP_FAILED;
        }
    };
    // First, while this process has one thread: the workers inherit the namespace.
    if let Some(ns) = &spec.netns {
        if let Err(e) = crate::os::netns::enter(ns) {
            out.send(&LoadEvent::Failed {
                message: e.to_string(),
            });
            return exit::SETUP_FAILED;
        }
    }
    match run(spec, &out) {
        Ok(result) => {
            out.send(&LoadEvent::Result {
                result: Box::new(result),
            });
            exit::OK
        }
        Err(e) => {
            out.send(&LoadEvent::Failed {
                message: format!("{e:#}"),
            });
            exit::LOAD_FAILED
        }
    }
}

/// How many worker threads a process runs.
fn thread_count(spec: &LoadgenSpec) -> usize {
    spec.threads.max(1).min(spec.connections.max(1))
}

/// The process's connections dealt out to its threads: the k-th goes to thread k % threads.
fn split(spec: &LoadgenSpec) -> Vec<Vec<(usize, IpAddr)>> {
    let threads = thread_count(spec);
    let mut shares = vec![Vec::new(); threads];
    for k in 0..spec.connections {
        let index = spec.first_connection + k;
        // In a namespace the kernel's one TAP address is the source (0.0.0.0 lets it pick).
        // So does a target off loopback (another host): 127.x sources reach only loopback.
        let source = match spec.netns {
            Some(_) => Ipv4Addr::UNSPECIFIED,
            None if !spec.target.ip().is_loopback() => Ipv4Addr::UNSPECIFIED,
            None => source_address(spec.run, index),
        };
        shares[k % threads].push((index, IpAddr::V4(source)));
    }
    shares
}

/// The running worker threads, and how to reach them.
struct Workers {
    handles: Vec<JoinHandle<std::io::Result<Option<WorkerResult>>>>,
    starts: Vec<mpsc::Sender<Instant>>,
    lives: Vec<Arc<Live>>,
    connected: mpsc::Receiver<Result<Connected, String>>,
    intervals: mpsc::Receiver<IntervalSample>,
}

fn run(spec: &LoadgenSpec, out: &ProtocolOut) -> anyhow::Result<LoadResult> {
    crate::os::sys::raise_nofile()?;
    crate::os::sys::pin_process(&spec.cpus)?;
    let workers = spawn_workers(spec)?;
    // This thread only relays intervals and progress; on a shared core it must never delay a
    // worker's sends (lowest priority, for this thread alone: the workers keep theirs).
    // SAFETY: setpriority on the calling thread's own id.
    unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 19) };
    out.send(&await_connected(&workers)?);
    let start = await_start()?;
    for tx in &workers.starts {
        let _ = tx.send(start);
    }
    relay_until_done(&workers, out)?;
    merge_results(workers.handles)
}

fn spawn_workers(spec: &LoadgenSpec) -> anyhow::Result<Workers> {
    let settings = Arc::new(Settings::from_spec(spec));
    let threads = thread_count(spec);
    let (connected_tx, connected) = mpsc::channel();
    let (interval_tx, intervals) = mpsc::channel::<IntervalSample>();
    let mut workers = Workers {
        handles: Vec::new(),
        starts: Vec::new(),
        lives: Vec::new(),
        connected,
        intervals,
    };
    for (thread, connections) in split(spec).into_iter().enumerate() {
        let owned = Owned {
            first: spec.first_connection,
            count: spec.connections,
            threads,
            thread,
        };
        let live = Arc::new(Live::default());
        workers.lives.push(live.clone());
        let (start_tx, start_rx) = mpsc::channel::<Instant>();
        workers.starts.push(start_tx);
        let (connected_tx, interval_tx) = (connected_tx.clone(), interval_tx.clone());
        let settings = settings.clone();
        let cpu = (!spec.cpus.is_empty()).then(|| spec.cpus[thread % spec.cpus.len()]);
        let handle = std::thread::Builder::new()
            .name(format!("loadgen-{thread}"))
            .spawn(move || {
                if let Some(cpu) = cpu {
                    runbench_plugin_abi::os::pin_current_thread(cpu)?;
                }
                let mut worker = match Worker::new(settings, owned, connections, live) {
                    Ok(w) => w,
                    Err(e) => {
                        let _ = connected_tx.send(Err(e.to_string()));
                        return Err(e);
                    }
                };
                match worker.connect_initial() {
                    Ok(c) => {
                        let _ = connected_tx.send(Ok(c));
                    }
                    Err(e) => {
                        let _ = connected_tx.send(Err(e.to_string()));
                        return Err(e);
                    }
                }
                match start_rx.recv() {
                    Ok(start) => worker.run(start, interval_tx).map(Some),
                    Err(_) => Ok(None),
                }
            })?;
        workers.handles.push(handle);
    }
    Ok(workers)
}

/// Every worker's connect report, merged into the process's `connected` event.
fn await_connected(workers: &Workers) -> anyhow::Result<LoadEvent> {
    let (mut ok, mut errors, mut first_error) = (0, LoadErrors::default(), None);
    // Exactly one message per worker (the workers keep their senders while they run).
    for r in workers.connected.iter().take(workers.handles.len()) {
        let c = r.map_err(|e| anyhow::anyhow!("a worker could not connect: {e}"))?;
        ok += c.ok;
        errors += c.errors;
        first_error = first_error.or(c.first_error);
    }
    Ok(LoadEvent::Connected {
        ok,
        errors,
        first_error,
    })
}

/// `start <CLOCK_MONOTONIC ns>`: every process starts at the same instant, which the runner
/// also uses to time the stop signal and the window.
fn await_start() -> anyhow::Result<Instant> {
    let mut stdin = std::io::stdin().lock();
    let mut line = String::new();
    loop {
        line.clear();
        if stdin.read_line(&mut line)? == 0 {
            anyhow::bail!("runner closed stdin before start");
        }
        if let Some(at) = line.trim().strip_prefix(START) {
            let ns: u64 = at
                .trim()
                .parse()
                .map_err(|e| anyhow::anyhow!("bad start line {line:?}: {e}"))?;
            return Ok(crate::os::sys::instant_at(ns));
        }
    }
}

/// Until every worker is done: each timeline interval once all workers sent it, and progress
/// lines stamped with this process's clock.
fn relay_until_done(workers: &Workers, out: &ProtocolOut) -> anyhow::Result<()> {
    let count = workers.handles.len();
    let mut pending: BTreeMap<u64, (usize, IntervalSample)> = BTreeMap::new();
    let mut last_progress = Instant::now();
    loop {
        match workers.intervals.recv_timeout(PROGRESS_EVERY) {
            Ok(sample) => {
                let entry = pending.entry(sample.index).or_insert_with(|| {
                    let empty = IntervalSample {
                        index: sample.index,
                        completed: 0,
                        errors: 0,
                        connections: 0,
                        histogram: new_histogram(),
                    };
                    (0, empty)
                });
                entry.0 += 1;
                entry.1.completed += sample.completed;
                entry.1.errors += sample.errors;
                entry.1.connections += sample.connections;
                entry.1.histogram.add(&sample.histogram)?;
                if entry.0 == count {
                    let (_, s) = pending.remove(&sample.index).expect("present");
                    out.send(&LoadEvent::Interval {
                        index: s.index,
                        completed: s.completed,
                        errors: s.errors,
                        connections: s.connections,
                        histogram: encode(&s.histogram)?,
                    });
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
        }
        if last_progress.elapsed() >= PROGRESS_EVERY {
            last_progress = Instant::now();
            out.send(&LoadEvent::Progress {
                at_ns: crate::os::sys::monotonic_ns(),
                completed: workers
                    .lives
                    .iter()
                    .map(|l| l.completed.load(Relaxed))
                    .sum(),
                errors: workers.lives.iter().map(|l| l.errors.load(Relaxed)).sum(),
            });
        }
    }
}

/// The workers' results added up, with this process's CPU time.
fn merge_results(
    handles: Vec<JoinHandle<std::io::Result<Option<WorkerResult>>>>,
) -> anyhow::Result<LoadResult> {
    let mut counters = LoadCounters::default();
    let mut histograms = LoadHistograms::default();
    let mut busy = LoadBusy::default();
    for h in handles {
        let r = h
            .join()
            .map_err(|_| anyhow::anyhow!("a load-generator thread panicked"))??
            .ok_or_else(|| anyhow::anyhow!("a worker did not start"))?;
        counters += r.counters;
        histograms.add(&r.histograms)?;
        busy.merge(&r.busy);
    }
    let (user, sys) = crate::os::sys::own_cpu_time();
    busy.cpu_s = user + sys;
    Ok(LoadResult {
        counters,
        busy,
        histograms: histograms.encode()?,
    })
}
