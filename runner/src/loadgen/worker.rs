//! One load-generator thread: an edge-triggered epoll loop (mio) over its share of the
//! connections. Closed model: each connection writes one message, reads the whole echo while
//! checking every byte, records the latency, and immediately sends the next.
//!
//! Nothing is shared with other workers on the hot path except two relaxed counters for the
//! progress display; latencies go into this thread's own histogram.

use super::connect::start_connect;
use super::pattern::Pattern;
use crate::protocol::LoadErrors;
use hdrhistogram::Histogram;
use mio::{Events, Interest, Poll, Token};
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Connects in flight at once per worker, so a burst does not overflow the server's backlog.
const CONNECT_WINDOW: usize = 256;
/// After the measured window, in-flight requests get this long to finish (not recorded).
const DRAIN: Duration = Duration::from_millis(500);
/// Highest latency the histogram tracks (ns); larger values are clamped.
pub const HIST_MAX_NS: u64 = 3_600_000_000_000;

pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIST_MAX_NS, 3).expect("static histogram bounds")
}

/// Counters the child's main thread reads for progress lines.
#[derive(Default)]
pub struct Live {
    pub completed: AtomicU64,
    pub errors: AtomicU64,
}

pub struct WorkerSpec {
    pub target: SocketAddr,
    /// (global connection index, source address) for each of this worker's connections.
    pub connections: Vec<(usize, IpAddr)>,
    pub payload: usize,
    pub connect_timeout: Duration,
}

pub struct Connected {
    pub ok: u64,
    pub errors: LoadErrors,
    pub first_error: Option<String>,
}

pub struct WorkerResult {
    pub histogram: Histogram<u64>,
    pub requests: u64,
    pub mismatched_bytes: u64,
    pub errors: LoadErrors,
    pub busy_fraction: f64,
}

struct Conn {
    stream: mio::net::TcpStream,
    index: usize,
    sent: usize,
    received: usize,
    started: Instant,
    alive: bool,
    /// A request is outstanding.
    busy: bool,
}

pub struct Worker {
    poll: Poll,
    conns: Vec<Conn>,
    pattern: Pattern,
    payload: usize,
    errors: LoadErrors,
    live: Arc<Live>,
}

fn classify(e: &io::Error, errors: &mut LoadErrors) {
    match e.kind() {
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => errors.reset += 1,
        _ => errors.other += 1,
    }
}

impl Worker {
    /// Opens every connection of `spec`; returns once each has connected, failed or timed out.
    pub fn connect(spec: WorkerSpec, live: Arc<Live>) -> io::Result<(Worker, Connected)> {
        let mut poll = Poll::new()?;
        let mut errors = LoadErrors::default();
        let mut first_error = None;
        let mut pending: Vec<Option<Conn>> = Vec::new();
        let mut conns = Vec::with_capacity(spec.connections.len());
        let mut events = Events::with_capacity(1024);
        let mut next = 0;
        let mut in_flight = 0;
        let deadline = Instant::now() + spec.connect_timeout;
        let now = Instant::now();
        while next < spec.connections.len() || in_flight > 0 {
            while in_flight < CONNECT_WINDOW && next < spec.connections.len() {
                let (index, source) = spec.connections[next];
                next += 1;
                match start_connect(source, spec.target) {
                    Ok(mut stream) => {
                        let token = Token(pending.len());
                        poll.registry().register(
                            &mut stream,
                            token,
                            Interest::READABLE | Interest::WRITABLE,
                        )?;
                        pending.push(Some(Conn {
                            stream,
                            index,
                            sent: 0,
                            received: 0,
                            started: now,
                            alive: true,
                            busy: false,
                        }));
                        in_flight += 1;
                    }
                    Err(e) => {
                        errors.connect_failed += 1;
                        first_error.get_or_insert_with(|| format!("connect from {source}: {e}"));
                    }
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            poll.poll(&mut events, Some(left.min(Duration::from_millis(100))))?;
            for event in events.iter() {
                let Some(conn) = pending.get_mut(event.token().0).and_then(Option::take) else {
                    continue;
                };
                in_flight -= 1;
                let failed = match conn.stream.take_error() {
                    Ok(Some(e)) | Err(e) => Some(e),
                    Ok(None) => conn.stream.peer_addr().err(),
                };
                match failed {
                    None => conns.push(conn),
                    Some(e) => {
                        errors.connect_failed += 1;
                        first_error
                            .get_or_insert_with(|| format!("connect to {}: {e}", spec.target));
                    }
                }
            }
        }
        for conn in pending.into_iter().flatten() {
            drop(conn);
            errors.connect_timeout += 1;
            first_error.get_or_insert_with(|| format!("connect to {} timed out", spec.target));
        }
        // Re-register under each connection's position in `conns`.
        for (i, conn) in conns.iter_mut().enumerate() {
            poll.registry().reregister(
                &mut conn.stream,
                Token(i),
                Interest::READABLE | Interest::WRITABLE,
            )?;
        }
        let connected = Connected {
            ok: conns.len() as u64,
            errors,
            first_error,
        };
        let worker = Worker {
            poll,
            conns,
            pattern: Pattern::new(spec.payload),
            payload: spec.payload,
            errors: LoadErrors::default(),
            live,
        };
        Ok((worker, connected))
    }

    /// Runs the closed loop: warmup until `start + warmup`, measure until `+ duration`.
    pub fn run(
        mut self,
        start: Instant,
        warmup: Duration,
        duration: Duration,
    ) -> io::Result<WorkerResult> {
        let measure_from = start + warmup;
        let end = measure_from + duration;
        let mut histogram = new_histogram();
        let mut requests = 0u64;
        let mut mismatched = 0u64;
        let mut scratch = vec![0u8; 64 * 1024];
        let mut events = Events::with_capacity(1024);
        let mut idle = Duration::ZERO;

        let wait = start.saturating_duration_since(Instant::now());
        std::thread::sleep(wait);
        let began = Instant::now();
        for i in 0..self.conns.len() {
            self.send(i, began);
        }
        let mut in_flight = self.conns.iter().filter(|c| c.alive).count();
        loop {
            let top = Instant::now();
            let now = top;
            if now >= end && (in_flight == 0 || now >= end + DRAIN) {
                break;
            }
            let timeout = if now < end {
                end - now
            } else {
                end + DRAIN - now
            };
            self.poll
                .poll(&mut events, Some(timeout.min(Duration::from_millis(50))))?;
            let now = Instant::now();
            idle += now - top;
            for event in events.iter() {
                let i = event.token().0;
                if !self.conns[i].alive || !self.conns[i].busy {
                    continue;
                }
                if event.is_writable() && self.conns[i].sent < self.payload {
                    self.write_more(i);
                }
                if self.conns[i].alive
                    && (event.is_readable() || event.is_read_closed() || event.is_error())
                    && self.read_echo(i, &mut scratch, &mut mismatched)
                {
                    let c = &mut self.conns[i];
                    if c.started >= measure_from && now <= end {
                        let ns = now.saturating_duration_since(c.started).as_nanos();
                        histogram.saturating_record(ns.min(u128::from(HIST_MAX_NS)) as u64);
                        requests += 1;
                    }
                    self.live.completed.fetch_add(1, Relaxed);
                    c.busy = false;
                    if now < end {
                        self.send(i, now);
                    }
                }
                if !self.conns[i].alive || !self.conns[i].busy {
                    in_flight -= 1;
                }
            }
        }
        let total = began.elapsed();
        let busy_fraction = if total.is_zero() {
            0.0
        } else {
            1.0 - idle.as_secs_f64() / total.as_secs_f64()
        };
        Ok(WorkerResult {
            histogram,
            requests,
            mismatched_bytes: mismatched,
            errors: self.errors,
            busy_fraction: busy_fraction.clamp(0.0, 1.0),
        })
    }

    fn fail(&mut self, i: usize, e: Option<&io::Error>) {
        let c = &mut self.conns[i];
        if !c.alive {
            return;
        }
        c.alive = false;
        let _ = self.poll.registry().deregister(&mut c.stream);
        match e {
            Some(e) => classify(e, &mut self.errors),
            None => self.errors.closed_by_server += 1,
        }
        self.live.errors.fetch_add(1, Relaxed);
    }

    /// Starts a new request on connection `i`.
    fn send(&mut self, i: usize, now: Instant) {
        let c = &mut self.conns[i];
        if !c.alive {
            return;
        }
        c.sent = 0;
        c.received = 0;
        c.started = now;
        c.busy = true;
        self.write_more(i);
    }

    fn write_more(&mut self, i: usize) {
        loop {
            let c = &mut self.conns[i];
            let msg = self.pattern.message(c.index);
            if c.sent >= msg.len() {
                return;
            }
            match c.stream.write(&msg[c.sent..]) {
                Ok(0) => return self.fail(i, None),
                Ok(n) => c.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return self.fail(i, Some(&e)),
            }
        }
    }

    /// True when the whole echo of the current message has arrived.
    fn read_echo(&mut self, i: usize, scratch: &mut [u8], mismatched: &mut u64) -> bool {
        loop {
            let c = &mut self.conns[i];
            // Never read past the current message: its end is the request boundary.
            let want = (self.payload - c.received).min(scratch.len());
            if want == 0 {
                return false;
            }
            match c.stream.read(&mut scratch[..want]) {
                Ok(0) => {
                    self.fail(i, None);
                    return false;
                }
                Ok(n) => {
                    *mismatched += self.pattern.mismatches(c.index, c.received, &scratch[..n]);
                    c.received += n;
                    if c.received == self.payload && c.sent == self.payload {
                        return true;
                    }
                    // A short read drained the socket; epoll reports the next arrival.
                    if n < want {
                        return false;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.fail(i, Some(&e));
                    return false;
                }
            }
        }
    }
}
