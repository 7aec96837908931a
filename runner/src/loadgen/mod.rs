//! `runbench loadgen`: one load-generator process. The runner starts as many as the open-files
//! limit requires and merges their histograms; the same split would let several machines share
//! the load.
//!
//! Lifecycle: connect everything -> report `connected` -> wait for `start` on stdin -> run ->
//! report `result`. EOF on stdin before `start` ends the process without load.

mod connect;
mod pattern;
mod worker;

pub use worker::{new_histogram, HIST_MAX_NS};

use crate::plan::source_address;
use crate::protocol::{LoadErrors, LoadEvent, LoadResult, LoadgenSpec, ProtocolOut, START};
use base64::Engine;
use hdrhistogram::serialization::{Serializer, V2Serializer};
use std::io::BufRead;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use worker::{Live, Worker, WorkerResult, WorkerSpec};

const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// Workers start this long after `start` arrives, so every thread begins at one instant.
const START_DELAY: Duration = Duration::from_millis(20);

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
    let warmup = Duration::from_millis(spec.warmup_ms);
    let duration = Duration::from_millis(spec.duration_ms);
    let (connected_tx, connected_rx) = mpsc::channel();
    let mut start_txs = Vec::new();
    let mut handles = Vec::new();
    let mut lives = Vec::new();
    let shares = split(spec);
    for (t, connections) in shares.into_iter().enumerate() {
        let live = Arc::new(Live::default());
        lives.push(live.clone());
        let (tx, rx) = mpsc::channel::<Instant>();
        start_txs.push(tx);
        let connected_tx = connected_tx.clone();
        let cpu = (!spec.cpus.is_empty()).then(|| spec.cpus[t % spec.cpus.len()]);
        let wspec = WorkerSpec {
            target: spec.target,
            connections,
            payload: spec.payload_bytes as usize,
            connect_timeout: Duration::from_millis(spec.connect_timeout_ms),
        };
        handles.push(
            std::thread::Builder::new()
                .name(format!("loadgen-{t}"))
                .spawn(move || -> std::io::Result<Option<WorkerResult>> {
                    if let Some(cpu) = cpu {
                        runbench_plugin_abi::os::pin_current_thread(cpu)?;
                    }
                    let (worker, connected) = match Worker::connect(wspec, live) {
                        Ok(v) => v,
                        Err(e) => {
                            let _ = connected_tx.send(Err(e.to_string()));
                            return Err(e);
                        }
                    };
                    let _ = connected_tx.send(Ok(connected));
                    match rx.recv() {
                        Ok(start) => worker.run(start, warmup, duration).map(Some),
                        Err(_) => Ok(None),
                    }
                })?,
        );
    }
    drop(connected_tx);

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
    loop {
        line.clear();
        if stdin.read_line(&mut line)? == 0 {
            anyhow::bail!("runner closed stdin before start");
        }
        if line.trim() == START {
            break;
        }
    }
    let start = Instant::now() + START_DELAY;
    for tx in start_txs {
        let _ = tx.send(start);
    }
    let end = start + warmup + duration;
    while Instant::now() < end {
        std::thread::sleep(PROGRESS_EVERY.min(end.saturating_duration_since(Instant::now())));
        out.send(&LoadEvent::Progress {
            completed: lives.iter().map(|l| l.completed.load(Relaxed)).sum(),
            errors: lives.iter().map(|l| l.errors.load(Relaxed)).sum(),
        });
    }

    let mut histogram = new_histogram();
    let mut result = LoadResult {
        connections_ok: ok,
        requests: 0,
        mismatched_bytes: 0,
        errors,
        histogram: String::new(),
        busy_fraction: 0.0,
        cpu_user_s: 0.0,
        cpu_sys_s: 0.0,
    };
    let workers = handles.len().max(1) as f64;
    for h in handles {
        let r = h
            .join()
            .map_err(|_| anyhow::anyhow!("a load-generator thread panicked"))??
            .ok_or_else(|| anyhow::anyhow!("a worker did not start"))?;
        histogram.add(&r.histogram)?;
        result.requests += r.requests;
        result.mismatched_bytes += r.mismatched_bytes;
        result.errors.add(&r.errors);
        result.busy_fraction += r.busy_fraction / workers;
    }
    result.histogram = encode_histogram(&histogram)?;
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
