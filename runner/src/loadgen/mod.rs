//! `runbench loadgen`: one load-generator process. The runner starts as many as the open-files
//! limit requires and merges their histograms; the same split would let several machines share
//! the load.
//!
//! Lifecycle: connect everything -> report `connected` -> wait for `start` on stdin -> run ->
//! report `result`. EOF on stdin before `start` ends the process without load.

mod connect;
mod pattern;
mod timer;
mod worker;

pub use worker::{new_histogram, HIST_MAX_NS};

use crate::plan::source_address;
use crate::protocol::{LoadErrors, LoadEvent, LoadResult, LoadgenSpec, ProtocolOut, START};
use base64::Engine;
use hdrhistogram::serialization::{Serializer, V2Serializer};
use std::collections::BTreeMap;
use std::io::BufRead;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use worker::{IntervalSample, Live, Settings, Worker, WorkerResult};

const PROGRESS_EVERY: Duration = Duration::from_millis(250);

pub fn child_main(spec: &LoadgenSpec) -> i32 {
    let out = match ProtocolOut::take_stdout() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("runbench loadgen: {e}");
            return 3;
        }
    };
    // First, while this process has one thread: the workers inherit the namespace.
    if let Some(ns) = &spec.netns {
        if let Err(e) = crate::netns::enter(ns) {
            out.send(&LoadEvent::Failed {
                message: e.to_string(),
            });
            return 4;
        }
    }
    match run(spec, &out) {
        Ok(result) => {
            out.send(&LoadEvent::Result { result });
            0
        }
        Err(e) => {
            out.send(&LoadEvent::Failed {
                message: format!("{e:#}"),
            });
            4
        }
    }
}

fn split(spec: &LoadgenSpec) -> Vec<Vec<(usize, IpAddr)>> {
    let threads = spec.threads.max(1).min(spec.connections.max(1));
    let mut shares = vec![Vec::new(); threads];
    for k in 0..spec.connections {
        let index = spec.first_connection + k;
        // In a namespace the kernel's one TAP address is the source (0.0.0.0 lets it pick).
        let source = match spec.netns {
            Some(_) => Ipv4Addr::UNSPECIFIED,
            None => source_address(spec.run, index),
        };
        shares[k % threads].push((index, IpAddr::V4(source)));
    }
    shares
}

fn run(spec: &LoadgenSpec, out: &ProtocolOut) -> anyhow::Result<LoadResult> {
    crate::sys::raise_nofile()?;
    crate::sys::pin_process(&spec.cpus)?;
    let settings = Arc::new(Settings::from_spec(spec));
    let (connected_tx, connected_rx) = mpsc::channel();
    let (interval_tx, interval_rx) = mpsc::channel::<IntervalSample>();
    let mut start_txs = Vec::new();
    let mut handles = Vec::new();
    let mut lives = Vec::new();
    for (t, connections) in split(spec).into_iter().enumerate() {
        let live = Arc::new(Live::default());
        lives.push(live.clone());
        let (tx, rx) = mpsc::channel::<Instant>();
        start_txs.push(tx);
        let connected_tx = connected_tx.clone();
        let interval_tx = interval_tx.clone();
        let settings = settings.clone();
        let cpu = (!spec.cpus.is_empty()).then(|| spec.cpus[t % spec.cpus.len()]);
        handles.push(
            std::thread::Builder::new()
                .name(format!("loadgen-{t}"))
                .spawn(move || -> std::io::Result<Option<WorkerResult>> {
                    if let Some(cpu) = cpu {
                        runbench_plugin_abi::os::pin_current_thread(cpu)?;
                    }
                    let connected = Worker::new(settings, connections, live)
                        .and_then(|mut w| w.connect_initial().map(|c| (w, c)));
                    let worker = match connected {
                        Ok((worker, c)) => {
                            let _ = connected_tx.send(Ok(c));
                            worker
                        }
                        Err(e) => {
                            let _ = connected_tx.send(Err(e.to_string()));
                            return Err(e);
                        }
                    };
                    match rx.recv() {
                        Ok(start) => worker.run(start, interval_tx).map(Some),
                        Err(_) => Ok(None),
                    }
                })?,
        );
    }
    drop(connected_tx);
    drop(interval_tx);

    let mut ok = 0;
    let mut errors = LoadErrors::default();
    let mut first_error = None;
    // Exactly one message per worker (the workers keep their senders while they run).
    for r in connected_rx.iter().take(handles.len()) {
        match r {
            Ok(c) => {
                ok += c.ok;
                errors.add(&c.errors);
                if first_error.is_none() {
                    first_error = c.first_error;
                }
            }
            Err(e) => anyhow::bail!("a worker could not connect: {e}"),
        }
    }
    out.send(&LoadEvent::Connected {
        ok,
        errors,
        first_error,
    });

    let mut stdin = std::io::stdin().lock();
    let mut line = String::new();
    // `start <CLOCK_MONOTONIC ns>`: every process starts at the same instant, which the runner
    // also uses to time the stop signal.
    let start = loop {
        line.clear();
        if stdin.read_line(&mut line)? == 0 {
            anyhow::bail!("runner closed stdin before start");
        }
        if let Some(at) = line.trim().strip_prefix(START) {
            let ns: u64 = at
                .trim()
                .parse()
                .map_err(|e| anyhow::anyhow!("bad start line {line:?}: {e}"))?;
            break crate::sys::instant_at(ns);
        }
    };
    for tx in start_txs {
        let _ = tx.send(start);
    }

    // Until every worker is done: progress lines, and each interval once all workers sent it.
    let workers = handles.len();
    let mut pending: BTreeMap<u64, (usize, IntervalSample)> = BTreeMap::new();
    let mut last_progress = Instant::now();
    loop {
        match interval_rx.recv_timeout(PROGRESS_EVERY) {
            Ok(sample) => {
                let entry = pending.entry(sample.index).or_insert_with(|| {
                    (
                        0,
                        IntervalSample {
                            index: sample.index,
                            completed: 0,
                            errors: 0,
                            connections: 0,
                            histogram: new_histogram(),
                        },
                    )
                });
                entry.0 += 1;
                entry.1.completed += sample.completed;
                entry.1.errors += sample.errors;
                entry.1.connections += sample.connections;
                entry.1.histogram.add(&sample.histogram)?;
                if entry.0 == workers {
                    let (_, s) = pending.remove(&sample.index).expect("present");
                    out.send(&LoadEvent::Interval {
                        index: s.index,
                        completed: s.completed,
                        errors: s.errors,
                        connections: s.connections,
                        histogram: encode_histogram(&s.histogram)?,
                    });
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if last_progress.elapsed() >= PROGRESS_EVERY {
            last_progress = Instant::now();
            out.send(&LoadEvent::Progress {
                completed: lives.iter().map(|l| l.completed.load(Relaxed)).sum(),
                errors: lives.iter().map(|l| l.errors.load(Relaxed)).sum(),
            });
        }
    }

    let mut histogram = new_histogram();
    let mut uncorrected: Option<hdrhistogram::Histogram<u64>> = None;
    let mut connect = new_histogram();
    let mut result = LoadResult {
        connections_ok: ok,
        requests: 0,
        mismatched_bytes: 0,
        errors,
        histogram: String::new(),
        histogram_uncorrected: String::new(),
        sent: 0,
        reconnects: 0,
        connect_histogram: String::new(),
        in_flight_at_signal: 0,
        completed_after_signal: 0,
        cut_after_signal: 0,
        busy_fraction: 0.0,
        cpu_user_s: 0.0,
        cpu_sys_s: 0.0,
    };
    result.errors = LoadErrors::default();
    for h in handles {
        let r = h
            .join()
            .map_err(|_| anyhow::anyhow!("a load-generator thread panicked"))??
            .ok_or_else(|| anyhow::anyhow!("a worker did not start"))?;
        if let Some(h) = &r.histogram {
            histogram.add(h)?;
        }
        if let Some(h) = &r.uncorrected {
            uncorrected.get_or_insert_with(new_histogram).add(h)?;
        }
        if let Some(h) = &r.connect {
            connect.add(h)?;
        }
        result.requests += r.requests;
        result.sent += r.sent;
        result.reconnects += r.reconnects;
        result.mismatched_bytes += r.mismatched_bytes;
        result.errors.add(&r.errors);
        result.in_flight_at_signal += r.in_flight_at_signal;
        result.completed_after_signal += r.completed_after_signal;
        result.cut_after_signal += r.cut_after_signal;
        // The busiest thread is the one that would limit the load.
        result.busy_fraction = result.busy_fraction.max(r.busy_fraction);
    }
    result.histogram = encode_histogram(&histogram)?;
    if let Some(u) = &uncorrected {
        result.histogram_uncorrected = encode_histogram(u)?;
    }
    result.connect_histogram = encode_histogram(&connect)?;
    let (user, sys) = own_cpu_time();
    result.cpu_user_s = user;
    result.cpu_sys_s = sys;
    Ok(result)
}

pub fn encode_histogram(h: &hdrhistogram::Histogram<u64>) -> anyhow::Result<String> {
    let mut bytes = Vec::new();
    V2Serializer::new()
        .serialize(h, &mut bytes)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

pub fn decode_histogram(text: &str) -> anyhow::Result<hdrhistogram::Histogram<u64>> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(text)?;
    hdrhistogram::serialization::Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| anyhow::anyhow!("bad histogram: {e:?}"))
}

fn own_cpu_time() -> (f64, f64) {
    // SAFETY: getrusage into a zeroed local struct.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (secs(u.ru_utime), secs(u.ru_stime))
}
