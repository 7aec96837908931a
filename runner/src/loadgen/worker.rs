//! One load-generator thread: an edge-triggered epoll loop (mio) over its share of the
//! connections.
//!
//! - Closed model: each connection has one request in flight; the next is sent when the echo of
//!   the last has fully arrived (every byte checked).
//! - Open model: each connection sends on a fixed schedule whether or not earlier replies came back
//!   (requests are pipelined). Latency is measured from the request's *intended* send time, so a
//!   stalled server shows up in the percentiles instead of slowing the schedule down (wrk2's
//!   lesson); the latency from the actual send time is kept beside it.
//!
//! Nothing is shared with other workers on the hot path except relaxed counters for progress.

use super::connect::start_connect;
use super::pattern::Pattern;
use super::timer::{Timer, TIMER_TOKEN};
use crate::protocol::{LoadErrors, LoadgenSpec, Ramp};
use crate::scenario::Model;
use hdrhistogram::Histogram;
use mio::{Events, Interest, Poll, Token};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Connects in flight at once per worker, so a burst does not overflow the server's backlog.
const CONNECT_WINDOW: usize = 256;
/// After the load ends, outstanding requests get this long to finish.
const DRAIN: Duration = Duration::from_secs(1);
/// Highest latency the histogram tracks (ns); larger values are clamped.
pub const HIST_MAX_NS: u64 = 3_600_000_000_000;

pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIST_MAX_NS, 3).expect("static histogram bounds")
}

fn record(h: &mut Histogram<u64>, d: Duration) {
    h.saturating_record((d.as_nanos().min(u128::from(HIST_MAX_NS)) as u64).max(1));
}

/// Counters the child's main thread reads for progress lines.
#[derive(Default)]
pub struct Live {
    pub completed: AtomicU64,
    pub errors: AtomicU64,
}

/// One timeline interval of one worker.
pub struct IntervalSample {
    pub index: u64,
    pub completed: u64,
    pub errors: u64,
    /// Connections open at the end of the interval.
    pub connections: u64,
    pub histogram: Histogram<u64>,
}

pub struct Connected {
    pub ok: u64,
    pub errors: LoadErrors,
    pub first_error: Option<String>,
}

#[derive(Default)]
pub struct WorkerResult {
    pub histogram: Option<Histogram<u64>>,
    pub uncorrected: Option<Histogram<u64>>,
    pub connect: Option<Histogram<u64>>,
    pub requests: u64,
    pub sent: u64,
    pub reconnects: u64,
    pub mismatched_bytes: u64,
    pub errors: LoadErrors,
    pub busy_fraction: f64,
    pub in_flight_at_signal: u64,
    pub completed_after_signal: u64,
    pub cut_after_signal: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Closed,
    Connecting,
    Open,
    /// Failed; not reopened.
    Dead,
}

struct Req {
    intended: Instant,
    sent: Option<Instant>,
    at_signal: bool,
}

struct Conn {
    index: usize,
    source: IpAddr,
    state: State,
    stream: Option<mio::net::TcpStream>,
    connect_started: Instant,
    /// Requests written or waiting to be written, oldest first; echoes complete them in order.
    queue: VecDeque<Req>,
    /// Requests at the front of `queue` that are fully written.
    written: usize,
    write_pos: usize,
    recv_pos: usize,
    done_on_conn: u64,
    /// When the previous echo on this connection completed: a client that waits for each answer
    /// (wrk's kind) could not have sent the next request before it.
    last_completion: Option<Instant>,
    /// Open model: when the next request is due.
    next_due: Option<Instant>,
}

/// The worker's settings, derived from the process's spec.
pub struct Settings {
    pub target: SocketAddr,
    pub model: Model,
    pub payload: usize,
    pub open_connections: Ramp,
    pub rate: Option<Ramp>,
    pub requests_per_connection: Option<u64>,
    pub connect_timeout: Duration,
    pub warmup: Duration,
    pub duration: Duration,
    pub interval: Duration,
    pub signal_at: Option<Duration>,
}

impl Settings {
    pub fn from_spec(spec: &LoadgenSpec) -> Self {
        Settings {
            target: spec.target,
            model: spec.model,
            payload: spec.payload_bytes as usize,
            open_connections: spec.open_connections.clone(),
            rate: spec.rate.clone(),
            requests_per_connection: spec.requests_per_connection,
            connect_timeout: Duration::from_millis(spec.connect_timeout_ms),
            warmup: Duration::from_millis(spec.warmup_ms),
            duration: Duration::from_millis(spec.duration_ms),
            interval: Duration::from_millis(spec.interval_ms.max(1)),
            signal_at: spec.signal_at_ms.map(Duration::from_millis),
        }
    }
}

pub struct Worker {
    settings: Arc<Settings>,
    poll: Poll,
    conns: Vec<Conn>,
    pattern: Pattern,
    live: Arc<Live>,
    r: WorkerResult,
    histogram: Histogram<u64>,
    uncorrected: Histogram<u64>,
    connect_hist: Histogram<u64>,
    interval_hist: Histogram<u64>,
    interval_completed: u64,
    interval_errors: u64,
    /// Open model: (due, connection) min-heap.
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    connecting: usize,
    /// Requests queued over all connections (kept incrementally: scanning 18k connections per
    /// loop turn would cost more than the I/O).
    queued: usize,
    /// Timing of the run (set by `run`).
    start: Instant,
    measure_from: Instant,
    end: Instant,
    signalled: bool,
}

fn classify(e: &io::Error, errors: &mut LoadErrors) {
    match e.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::ConnectionAborted => errors.reset += 1,
        _ => errors.other += 1,
    }
}

impl Worker {
    pub fn new(
        settings: Arc<Settings>,
        connections: Vec<(usize, IpAddr)>,
        live: Arc<Live>,
    ) -> io::Result<Worker> {
        let now = Instant::now();
        let conns = connections
            .into_iter()
            .map(|(index, source)| Conn {
                index,
                source,
                state: State::Closed,
                stream: None,
                connect_started: now,
                queue: VecDeque::new(),
                written: 0,
                write_pos: 0,
                recv_pos: 0,
                done_on_conn: 0,
                last_completion: None,
                next_due: None,
            })
            .collect();
        Ok(Worker {
            pattern: Pattern::new(settings.payload),
            settings,
            poll: Poll::new()?,
            conns,
            live,
            r: WorkerResult::default(),
            histogram: new_histogram(),
            uncorrected: new_histogram(),
            connect_hist: new_histogram(),
            interval_hist: new_histogram(),
            interval_completed: 0,
            interval_errors: 0,
            timers: BinaryHeap::new(),
            connecting: 0,
            queued: 0,
            start: now,
            measure_from: now,
            end: now,
            signalled: false,
        })
    }

    fn wanted(&self, i: usize, t: Duration) -> bool {
        (self.conns[i].index as f64) < self.settings.open_connections.at(t).round()
    }

    fn begin_connect(&mut self, i: usize, now: Instant) {
        let (source, target) = (self.conns[i].source, self.settings.target);
        match start_connect(source, target) {
            Ok(mut stream) => {
                if let Err(e) = self.poll.registry().register(
                    &mut stream,
                    Token(i),
                    Interest::READABLE | Interest::WRITABLE,
                ) {
                    self.r.errors.connect_failed += 1;
                    let _ = e;
                    self.conns[i].state = State::Dead;
                    return;
                }
                let c = &mut self.conns[i];
                c.stream = Some(stream);
                c.state = State::Connecting;
                c.connect_started = now;
                self.connecting += 1;
            }
            Err(_) => {
                self.r.errors.connect_failed += 1;
                self.count_error();
                self.conns[i].state = State::Dead;
            }
        }
    }

    /// A connecting socket reported readiness: did the connect succeed?
    fn finish_connect(&mut self, i: usize) -> Result<(), io::Error> {
        self.connecting -= 1;
        let stream = self.conns[i]
            .stream
            .as_ref()
            .expect("connecting has a stream");
        match stream.take_error() {
            Ok(Some(e)) | Err(e) => Err(e),
            Ok(None) => stream.peer_addr().map(|_| ()),
        }
    }

    /// Opens the connections wanted at the start; returns once each connected, failed or timed out.
    pub fn connect_initial(&mut self) -> io::Result<Connected> {
        let mut errors = LoadErrors::default();
        let mut first_error = None;
        let mut events = Events::with_capacity(1024);
        let deadline = Instant::now() + self.settings.connect_timeout;
        let wanted: Vec<usize> = (0..self.conns.len())
            .filter(|&i| self.wanted(i, Duration::ZERO))
            .collect();
        let mut next = 0;
        let mut ok = 0;
        while next < wanted.len() || self.connecting > 0 {
            while self.connecting < CONNECT_WINDOW && next < wanted.len() {
                let i = wanted[next];
                next += 1;
                self.begin_connect(i, Instant::now());
                if self.conns[i].state == State::Dead {
                    first_error.get_or_insert_with(|| {
                        format!(
                            "connect from {} to {} failed",
                            self.conns[i].source, self.settings.target
                        )
                    });
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            self.poll
                .poll(&mut events, Some(left.min(Duration::from_millis(100))))?;
            for event in events.iter() {
                let i = event.token().0;
                if self.conns[i].state != State::Connecting {
                    continue;
                }
                match self.finish_connect(i) {
                    Ok(()) => {
                        self.conns[i].state = State::Open;
                        ok += 1;
                    }
                    Err(e) => {
                        errors.connect_failed += 1;
                        first_error.get_or_insert_with(|| {
                            format!("connect to {}: {e}", self.settings.target)
                        });
                        self.close(i, State::Dead);
                    }
                }
            }
        }
        for i in 0..self.conns.len() {
            if self.conns[i].state == State::Connecting {
                self.connecting -= 1;
                errors.connect_timeout += 1;
                first_error.get_or_insert_with(|| {
                    format!("connect to {} timed out", self.settings.target)
                });
                self.close(i, State::Dead);
            }
        }
        self.r.errors.add(&errors);
        Ok(Connected {
            ok,
            errors,
            first_error,
        })
    }

    fn close(&mut self, i: usize, state: State) {
        let c = &mut self.conns[i];
        if let Some(mut s) = c.stream.take() {
            let _ = self.poll.registry().deregister(&mut s);
        }
        c.state = state;
        self.queued -= c.queue.len();
        c.queue.clear();
        c.written = 0;
        c.write_pos = 0;
        c.recv_pos = 0;
        c.done_on_conn = 0;
        c.last_completion = None;
        c.next_due = None;
    }

    fn count_error(&mut self) {
        self.interval_errors += 1;
        self.live.errors.fetch_add(1, Relaxed);
    }

    /// The connection failed: its outstanding requests are lost.
    fn fail(&mut self, i: usize, e: Option<&io::Error>) {
        if self.conns[i].state != State::Open {
            return;
        }
        let cut = self.conns[i].queue.iter().filter(|r| r.at_signal).count() as u64;
        self.r.cut_after_signal += cut;
        match e {
            Some(e) => classify(e, &mut self.r.errors),
            None => self.r.errors.closed_by_server += 1,
        }
        self.count_error();
        self.close(i, State::Dead);
    }

    /// Per-connection interval of the open model at time `t`.
    fn open_interval(&self, t: Duration) -> Option<Duration> {
        let rate = self.settings.rate.as_ref()?.at(t);
        let conns = self.settings.open_connections.at(t).round().max(1.0);
        if rate <= 0.0 {
            return Some(Duration::from_millis(100)); // re-check a paused schedule later
        }
        Some(Duration::from_secs_f64(conns / rate))
    }

    /// A connection just became usable at `now`: start its traffic.
    fn start_traffic(&mut self, i: usize, now: Instant) {
        match self.settings.model {
            Model::Closed => self.enqueue(i, now, now),
            Model::Open => {
                let t = now.saturating_duration_since(self.start);
                let Some(every) = self.open_interval(t) else {
                    return;
                };
                // Spread first sends evenly over one interval, by connection index.
                let conns = self.settings.open_connections.at(t).round().max(1.0);
                let offset = every.mul_f64((self.conns[i].index as f64 % conns) / conns);
                let due = now.max(self.start) + offset;
                self.conns[i].next_due = Some(due);
                self.timers.push(Reverse((due, i)));
            }
        }
    }

    /// Queues a request intended at `intended` and writes what the socket takes.
    fn enqueue(&mut self, i: usize, intended: Instant, now: Instant) {
        let at_signal = false;
        self.conns[i].queue.push_back(Req {
            intended,
            sent: None,
            at_signal,
        });
        self.queued += 1;
        if self.conns[i].queue.len() - self.conns[i].written == 1 {
            self.write_more(i, now);
        }
    }

    fn write_more(&mut self, i: usize, now: Instant) {
        loop {
            let c = &mut self.conns[i];
            if c.written >= c.queue.len() {
                return;
            }
            let Some(stream) = c.stream.as_mut() else {
                return;
            };
            let msg = self.pattern.message(c.index);
            if c.write_pos == 0 && c.queue[c.written].sent.is_none() {
                c.queue[c.written].sent = Some(now);
            }
            match stream.write(&msg[c.write_pos..]) {
                Ok(0) => return self.fail(i, None),
                Ok(n) => {
                    c.write_pos += n;
                    if c.write_pos == msg.len() {
                        c.write_pos = 0;
                        c.written += 1;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return self.fail(i, Some(&e)),
            }
        }
    }

    /// Reads what has arrived, completing requests in order.
    fn read_more(&mut self, i: usize, scratch: &mut [u8], mut now: Instant) {
        let payload = self.settings.payload;
        loop {
            let c = &mut self.conns[i];
            let Some(stream) = c.stream.as_mut() else {
                return;
            };
            // Read no further than the oldest request's end (the request boundary) and no further
            // than what was written of it (large messages echo while they are still being sent).
            let limit = if c.written > 0 { payload } else { c.write_pos };
            let want = limit.saturating_sub(c.recv_pos).min(scratch.len());
            if want == 0 {
                return;
            }
            match stream.read(&mut scratch[..want]) {
                Ok(0) => return self.fail(i, None),
                Ok(n) => {
                    self.r.mismatched_bytes +=
                        self.pattern.mismatches(c.index, c.recv_pos, &scratch[..n]);
                    c.recv_pos += n;
                    if c.recv_pos == payload && c.written > 0 {
                        c.recv_pos = 0;
                        self.complete(i, now);
                        // Later bytes in this loop arrived after this instant.
                        now = Instant::now();
                        if self.conns[i].state != State::Open {
                            return;
                        }
                    }
                    if n < want {
                        // A short read drained the socket; epoll reports the next arrival.
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return self.fail(i, Some(&e)),
            }
        }
    }

    fn complete(&mut self, i: usize, now: Instant) {
        let c = &mut self.conns[i];
        let req = c.queue.pop_front().expect("a written request");
        self.queued -= 1;
        // What a coordinated-omission-prone client would have measured: from the moment it could
        // have sent this request (written, and the previous answer in), not from the schedule.
        let uncorrected_from = match (req.sent, c.last_completion) {
            (Some(sent), Some(prev)) => sent.max(prev),
            (Some(sent), None) => sent,
            (None, _) => req.intended,
        };
        c.last_completion = Some(now);
        c.written -= 1;
        c.done_on_conn += 1;
        // Open model: every request scheduled in the window counts, however late its answer (that
        // lateness is the measurement). Closed model: requests that started and finished in the
        // window, so the count divided by the window is the rate.
        let in_window = req.intended >= self.measure_from
            && match self.settings.model {
                Model::Open => req.intended < self.end,
                Model::Closed => now <= self.end,
            };
        if in_window {
            record(
                &mut self.histogram,
                now.saturating_duration_since(req.intended),
            );
            if self.settings.model == Model::Open {
                record(
                    &mut self.uncorrected,
                    now.saturating_duration_since(uncorrected_from),
                );
            }
            self.r.requests += 1;
        }
        if req.at_signal {
            self.r.completed_after_signal += 1;
        }
        record(
            &mut self.interval_hist,
            now.saturating_duration_since(req.intended),
        );
        self.interval_completed += 1;
        self.live.completed.fetch_add(1, Relaxed);

        let running = now < self.end;
        let t = now.saturating_duration_since(self.start);
        let churn = self
            .settings
            .requests_per_connection
            .is_some_and(|n| self.conns[i].done_on_conn >= n);
        let retire = churn || !self.wanted(i, t);
        if retire && self.conns[i].queue.is_empty() {
            self.close(i, State::Closed);
            if churn && running && self.wanted(i, t) {
                self.begin_connect(i, now);
            }
            return;
        }
        if running && self.settings.model == Model::Closed && !retire {
            // The next request starts now, not at the instant the poll returned.
            let start = Instant::now();
            self.enqueue(i, start, start);
        }
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some(&Reverse((due, i))) = self.timers.peek() {
            if due > now {
                break;
            }
            self.timers.pop();
            if self.conns[i].state != State::Open
                || self.conns[i].next_due != Some(due)
                || due >= self.end
            {
                continue;
            }
            if due >= self.measure_from && due < self.end {
                self.r.sent += 1;
            }
            self.enqueue(i, due, now);
            if self.conns[i].state != State::Open {
                continue;
            }
            let t = due.saturating_duration_since(self.start);
            let churn = self.settings.requests_per_connection.is_some_and(|n| {
                self.conns[i].done_on_conn + self.conns[i].queue.len() as u64 >= n
            });
            if churn || !self.wanted(i, t) {
                self.conns[i].next_due = None; // retire after the outstanding echoes
                continue;
            }
            if let Some(every) = self.open_interval(t) {
                let next = due + every;
                self.conns[i].next_due = Some(next);
                self.timers.push(Reverse((next, i)));
            }
        }
    }

    /// Opens connections a ramp now wants and closes those it no longer wants.
    fn follow_ramp(&mut self, now: Instant) {
        let t = now.saturating_duration_since(self.start);
        for i in 0..self.conns.len() {
            let wanted = self.wanted(i, t);
            match self.conns[i].state {
                State::Closed if wanted && self.connecting < CONNECT_WINDOW => {
                    self.begin_connect(i, now)
                }
                State::Open if !wanted && self.conns[i].queue.is_empty() => {
                    self.close(i, State::Closed)
                }
                _ => {}
            }
        }
    }

    /// Runs the load from `start` for warmup + duration, then drains. Interval samples go to `tx`.
    pub fn run(mut self, start: Instant, tx: Sender<IntervalSample>) -> io::Result<WorkerResult> {
        let s = self.settings.clone();
        self.start = start;
        self.measure_from = start + s.warmup;
        self.end = self.measure_from + s.duration;
        let ramping = !s.open_connections.phases.is_empty();
        let signal_at = s.signal_at.map(|d| start + d);
        let mut scratch = vec![0u8; 64 * 1024];
        let mut events = Events::with_capacity(1024);
        let mut idle = Duration::ZERO;
        let mut next_tick = start + s.interval;
        let mut tick_index = 0u64;
        let mut next_ramp = start;

        let mut timer = match s.model {
            Model::Open => Some(Timer::new(&self.poll)?),
            Model::Closed => None,
        };
        std::thread::sleep(start.saturating_duration_since(Instant::now()));
        let began = Instant::now();
        for i in 0..self.conns.len() {
            if self.conns[i].state == State::Open {
                self.start_traffic(i, began);
            }
        }
        loop {
            let top = Instant::now();
            let now = top;
            if let Some(at) = signal_at {
                if !self.signalled && now >= at {
                    self.signalled = true;
                    for c in &mut self.conns {
                        for r in &mut c.queue {
                            r.at_signal = true;
                        }
                    }
                    self.r.in_flight_at_signal = self.queued as u64;
                }
            }
            if now >= next_tick {
                let histogram = std::mem::replace(&mut self.interval_hist, new_histogram());
                let _ = tx.send(IntervalSample {
                    index: tick_index,
                    completed: std::mem::take(&mut self.interval_completed),
                    errors: std::mem::take(&mut self.interval_errors),
                    connections: self.conns.iter().filter(|c| c.state == State::Open).count()
                        as u64,
                    histogram,
                });
                tick_index += 1;
                next_tick += s.interval;
            }
            // The closed model has nothing to wait for: its outstanding requests began too late to
            // end inside the window. The open model waits for the answers it scheduled.
            let drain = match s.model {
                Model::Open => DRAIN,
                Model::Closed => Duration::ZERO,
            };
            if now >= self.end && (self.queued == 0 || now >= self.end + drain) {
                break;
            }
            if now < self.end {
                self.fire_timers(now);
                if ramping && now >= next_ramp {
                    self.follow_ramp(now);
                    next_ramp = now + Duration::from_millis(10);
                }
            }
            let mut wake = if now < self.end {
                self.end
            } else {
                self.end + drain
            };
            wake = wake.min(next_tick);
            if let Some(&Reverse((due, _))) = self.timers.peek() {
                wake = wake.min(due);
            }
            if ramping {
                wake = wake.min(next_ramp);
            }
            if let Some(at) = signal_at.filter(|_| !self.signalled) {
                wake = wake.min(at);
            }
            let timeout = match &mut timer {
                // The open model's schedule needs sub-millisecond wake-ups; epoll's own timeout
                // is in whole milliseconds (and would make every send up to 1 ms late).
                Some(t) => {
                    t.arm(wake)?;
                    Duration::from_millis(50)
                }
                None => wake.saturating_duration_since(now),
            };
            self.poll
                .poll(&mut events, Some(timeout.min(Duration::from_millis(50))))?;
            let now = Instant::now();
            idle += now - top;
            for event in events.iter() {
                let i = event.token().0;
                if i == TIMER_TOKEN.0 {
                    if let Some(t) = &timer {
                        t.clear();
                    }
                    continue;
                }
                match self.conns[i].state {
                    State::Connecting => match self.finish_connect(i) {
                        Ok(()) => {
                            record(
                                &mut self.connect_hist,
                                now.saturating_duration_since(self.conns[i].connect_started),
                            );
                            self.r.reconnects += 1;
                            self.conns[i].state = State::Open;
                            if now < self.end {
                                self.start_traffic(i, now);
                            }
                        }
                        Err(_) => {
                            self.r.errors.connect_failed += 1;
                            self.count_error();
                            self.close(i, State::Dead);
                        }
                    },
                    State::Open => {
                        if event.is_writable() {
                            self.write_more(i, now);
                        }
                        if self.conns[i].state == State::Open
                            && (event.is_readable() || event.is_read_closed() || event.is_error())
                        {
                            self.read_more(i, &mut scratch, now);
                        }
                    }
                    State::Closed | State::Dead => {}
                }
            }
        }
        if s.model == Model::Open {
            self.r.errors.unanswered += self.queued as u64;
        }
        self.r.cut_after_signal += self
            .conns
            .iter()
            .flat_map(|c| c.queue.iter())
            .filter(|r| r.at_signal)
            .count() as u64;
        if self.settings.model == Model::Closed {
            self.r.sent = self.r.requests;
        }
        let total = began.elapsed();
        self.r.busy_fraction = if total.is_zero() {
            0.0
        } else {
            (1.0 - idle.as_secs_f64() / total.as_secs_f64()).clamp(0.0, 1.0)
        };
        self.r.histogram = Some(self.histogram);
        self.r.uncorrected = (self.settings.model == Model::Open).then_some(self.uncorrected);
        self.r.connect = Some(self.connect_hist);
        Ok(self.r)
    }
}
