//! One load-generator thread: an edge-triggered epoll loop over its share of the connections.
//!
//! - Closed model: each connection has one request in flight; the next is sent when the echo of
//!   the last has fully arrived (every byte checked).
//! - Open model: requests follow the shared [`Schedule`] whether or not earlier replies came back
//!   (they are pipelined). Latency is measured from each request's *intended* send time, so a
//!   stalled server shows up in the percentiles instead of slowing the schedule down (wrk2's
//!   lesson); the latency from the actual send is kept beside it. A request that never gets an
//!   answer (still open at the end of the drain, or lost with its connection) is recorded at
//!   the end of the drain: it weighs on the percentiles instead of vanishing.
//!
//! Timing is honest about the generator itself: an answer counts as arrived at the kernel's
//! receive stamp, not when the loop read it (so the open model sleeps through answers until its
//! next send, one wake-up per request at most); a wait is a sleep, never a poll (see
//! [`Worker::wait`]); busy time is the wall time outside the waits (sends included) and,
//! independently, the thread's CPU time; the lateness of every scheduled send is recorded.
//!
//! Nothing is shared with other workers on the hot path except relaxed counters for progress.

use super::arrival;
use super::connect::start_connect;
use super::epoll::{Epoll, Ready};
use super::exchange::Exchange;
use super::http::{show, Parser};
use super::pacer::{Clock, Pacer};
use super::schedule::Owned;
pub use super::settings::Settings;
use crate::protocol::histograms::{new_histogram, record, LoadHistograms};
use crate::protocol::{LoadBusy, LoadCounters, LoadErrors, LATE_SEND};
use hdrhistogram::Histogram;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::io::{self, Write};
use std::net::{IpAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Connects in flight at once per worker, so a burst does not overflow the server's backlog.
const CONNECT_WINDOW: usize = 256;
pub use super::pacer::DRAIN;
/// How often a ramp of the connection count is followed.
const RAMP_EVERY: Duration = Duration::from_millis(10);
/// HTTP: requests one `writev` carries at most.
const HTTP_WRITE_BATCH: usize = 64;
/// Open model: requests a worker keeps queued at most (~56 MB). A server far slower than the
/// rate would otherwise grow the queues without bound; beyond this a due request is not sent
/// (counted, and recorded as unanswered).
const MAX_QUEUED: usize = 1_000_000;
/// Open model: scheduled requests handed out between two looks at the sockets.
const SEND_BATCH: usize = 1024;
/// A short sleep is not all off the CPU: on a VM arming its timer exits to the hypervisor, and a
/// sleep of a few µs can be over before the thread is switched out. What the sleeps cost the CPU
/// counts as waiting, not work (at 100,000/s on this VM the loop was on the CPU 0.99 of the time
/// and in its waits 0.25, and at a higher rate it waits less, not works less). Reading the
/// thread's CPU clock is a system call (0.52 µs here), so one sleep in this many is measured and
/// stands for the others.
const WAIT_CPU_SAMPLE: u32 = 8;
/// Open model: the longest the loop sleeps through arriving answers (stamped on arrival, see
/// [`arrival`]) before a send; it bounds how late a lost connection or an error is noticed.
const READ_LATE_AT_MOST: Duration = Duration::from_millis(1);

/// Counters the child's main thread reads for progress lines.
#[derive(Default)]
pub struct Live {
    pub completed: AtomicU64,
    pub errors: AtomicU64,
}

/// One timeline interval of one worker: index k covers [k, k+1) intervals since the start, by
/// the time each answer arrived.
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

/// What one worker measured.
pub struct WorkerResult {
    pub counters: LoadCounters,
    pub histograms: LoadHistograms,
    pub busy: LoadBusy,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    /// No socket: not opened yet, or retired (churn, ramp down); may be opened.
    Idle,
    Connecting,
    Open,
    /// Failed; not reopened.
    Dead,
}

#[derive(Clone, Copy)]
enum Failure {
    ConnectFailed,
    ConnectTimeout,
    ClosedByServer,
    /// HTTP: an answer that is not valid HTTP/1.1, or one cut short by the server's close.
    Malformed,
    Io(io::ErrorKind),
}

impl Failure {
    fn count(self, e: &mut LoadErrors) {
        use io::ErrorKind as K;
        match self {
            Failure::ConnectFailed => e.connect_failed += 1,
            Failure::ConnectTimeout => e.connect_timeout += 1,
            Failure::ClosedByServer => e.closed_by_server += 1,
            Failure::Malformed => e.malformed += 1,
            Failure::Io(K::ConnectionReset | K::BrokenPipe | K::ConnectionAborted) => e.reset += 1,
            Failure::Io(_) => e.other += 1,
        }
    }
}

struct Req {
    intended: Instant,
    /// When the generator got to it (open model: the loop turn that handed it to its
    /// connection, late by the send lag; closed: its intended time).
    handed: Instant,
    sent: Option<Instant>,
    at_signal: bool,
}

struct Conn {
    /// Global connection index (selects the payload pattern and the ramp's threshold).
    index: usize,
    source: IpAddr,
    state: State,
    stream: Option<TcpStream>,
    connect_started: Instant,
    /// Requests of this connection, oldest first: the first `written` are on the wire, the rest
    /// wait for the socket (or for the connection, while it reconnects).
    queue: VecDeque<Req>,
    written: usize,
    /// Bytes of `queue[written]` written so far, and of `queue[0]`'s echo received so far.
    write_pos: usize,
    recv_pos: usize,
    /// Requests started and answered on the current TCP connection (churn counts them).
    started_here: u64,
    answered_here: u64,
    /// When the previous echo on this connection completed: a client that waits for each answer
    /// (wrk's kind) could not have sent the next request before it.
    last_completion: Option<Instant>,
    /// A write stopped on a full socket buffer; epoll's writable event must not be slept through.
    write_blocked: bool,
    /// HTTP: where the answer being read is.
    parser: Parser,
}

/// The current timeline interval's tallies.
struct Interval {
    index: u64,
    ends: Instant,
    completed: u64,
    errors: u64,
    histogram: Histogram<u64>,
}

pub struct Worker {
    settings: Arc<Settings>,
    owned: Owned,
    epoll: Epoll,
    conns: Vec<Conn>,
    exchange: Exchange,
    live: Arc<Live>,
    counters: LoadCounters,
    histograms: LoadHistograms,
    interval: Interval,
    clock: Clock,
    /// When requests go out (the load model, ramps, churn).
    pacer: Pacer,
    connecting: usize,
    /// Connections whose write waits for room in the socket buffer.
    write_blocked: usize,
    /// Requests in all queues, and those of them on the wire (kept incrementally: scanning
    /// thousands of connections per loop turn would cost more than the I/O).
    queued: usize,
    outstanding: usize,
    window_opened: bool,
    window_closed: bool,
    signalled: bool,
    first_error: Option<String>,
    /// Finished intervals not yet handed to the process.
    pending_intervals: Vec<IntervalSample>,
    /// Up to when `counters.pending_ns` has integrated the queued requests.
    pending_until: Instant,
    /// Closed model with `[load] skew`: cold connections thinking, by when their next request
    /// goes out; and this thread's latencies so far (their mean sets the think time).
    thinking: BinaryHeap<Reverse<(Instant, usize)>>,
    latency_sum: Duration,
    latency_count: u32,
    /// Open model: when the last sleep ended (the send window counts from it).
    woke: Option<Instant>,
    /// This thread's realtime-to-monotonic offset, for the kernel's receive stamps.
    clocks: arrival::Clocks,
    /// The least time a loopback answer takes once its request is in (measured before
    /// connecting, [`arrival::loopback_floor`]): no answer comes sooner, so a latency below it
    /// is the client's timing fault and is counted.
    floor: Option<Duration>,
    /// HTTP: the first malformed answer was logged (one line per worker, not one per answer).
    malformed_logged: bool,
    /// HTTP: the answers of one read are being taken; the requests they free go out together
    /// after them (one `writev` per read, not one `write` per answer).
    defer_writes: bool,
}

impl Worker {
    pub fn new(
        settings: Arc<Settings>,
        owned: Owned,
        connections: Vec<(usize, IpAddr)>,
        live: Arc<Live>,
    ) -> io::Result<Worker> {
        // Called on the worker's own thread, before the sleep cost is measured on it.
        // SAFETY: prctl on the calling thread. The default 50 us timer slack would blur the
        // schedule; epoll's timeouts are exact to the nanosecond otherwise.
        unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1) };
        let now = Instant::now();
        let conns = connections
            .into_iter()
            .map(|(index, source)| Conn {
                index,
                source,
                state: State::Idle,
                stream: None,
                connect_started: now,
                queue: VecDeque::new(),
                written: 0,
                write_pos: 0,
                recv_pos: 0,
                started_here: 0,
                answered_here: 0,
                last_completion: None,
                write_blocked: false,
                parser: Parser::new(),
            })
            .collect();
        Ok(Worker {
            exchange: Exchange::of(&settings.workload, settings.target),
            clock: Pacer::clock(now, &settings),
            pacer: Pacer::new(&settings),
            interval: Interval {
                index: 0,
                // Intervals count from the start of the load (set by `run`); nothing before.
                ends: now + Duration::from_secs(86_400 * 365),
                completed: 0,
                errors: 0,
                histogram: new_histogram(),
            },
            settings,
            owned,
            epoll: Epoll::new()?,
            conns,
            live,
            counters: LoadCounters::default(),
            histograms: LoadHistograms::default(),
            connecting: 0,
            write_blocked: 0,
            queued: 0,
            outstanding: 0,
            window_opened: false,
            window_closed: false,
            signalled: false,
            first_error: None,
            pending_intervals: Vec::new(),
            pending_until: now,
            thinking: BinaryHeap::new(),
            latency_sum: Duration::ZERO,
            latency_count: 0,
            woke: None,
            clocks: arrival::Clocks::measure(),
            floor: None,
            malformed_logged: false,
            defer_writes: false,
        })
    }

    /// With `[load] skew`: global connection `index` is one of the hot ones.
    fn is_hot(&self, index: usize) -> bool {
        let n = self.settings.open_connections.start.round() as u64;
        (self.settings.skew).is_some_and(|k| k.is_hot(index as u64, n))
    }

    fn wanted(&self, i: usize, at: Instant) -> bool {
        self.pacer.wanted(self.conns[i].index, at, &self.clock)
    }

    // ---- connecting ----

    /// Starts connecting slot `i`; a socket that cannot even start fails the connection.
    fn begin_connect(&mut self, i: usize, now: Instant) {
        let started = start_connect(self.conns[i].source, self.settings.target).and_then(|s| {
            self.epoll.add(&s, i)?;
            Ok(s)
        });
        match started {
            Ok(stream) => {
                let c = &mut self.conns[i];
                c.stream = Some(stream);
                c.state = State::Connecting;
                c.connect_started = now;
                self.connecting += 1;
            }
            Err(e) => {
                let message = format!(
                    "connect from {} to {}: {e}",
                    self.conns[i].source, self.settings.target
                );
                self.first_error.get_or_insert(message);
                self.lose(i, Failure::ConnectFailed, now);
            }
        }
    }

    /// A connecting socket reported readiness: open it, or fail it with the reason.
    fn finish_connect(&mut self, i: usize, now: Instant) {
        self.connecting -= 1;
        let stream = self.conns[i].stream.as_ref().expect("connecting");
        let outcome = match stream.take_error() {
            Ok(Some(e)) | Err(e) => Err(e),
            Ok(None) => stream.peer_addr().map(|_| ()),
        };
        match outcome {
            Ok(()) => {
                self.conns[i].state = State::Open;
                self.conns[i].started_here = 0;
                self.conns[i].answered_here = 0;
            }
            Err(e) => {
                let message = format!("connect to {}: {e}", self.settings.target);
                self.first_error.get_or_insert(message);
                self.lose(i, Failure::ConnectFailed, now);
            }
        }
    }

    /// Opens the connections wanted at the start; returns once each connected, failed or timed
    /// out.
    pub fn connect_initial(&mut self) -> io::Result<Connected> {
        // Before the connections: its two sockets then do not count against the files limit.
        self.floor = arrival::loopback_floor(&mut self.clocks);
        self.counters.loopback_floor_ns = self.floor.map_or(0, |f| f.as_nanos() as u64);
        let deadline = Instant::now() + self.settings.connect_timeout;
        let wanted: Vec<usize> = (0..self.conns.len())
            .filter(|&i| self.wanted(i, self.clock.start))
            .collect();
        let mut next = 0;
        while next < wanted.len() || self.connecting > 0 {
            while self.connecting < CONNECT_WINDOW && next < wanted.len() {
                self.begin_connect(wanted[next], Instant::now());
                next += 1;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let n = self.epoll.wait(left.min(Duration::from_millis(100)))?;
            let now = Instant::now();
            for e in 0..n {
                let r = self.epoll.ready(e);
                if self.conns[r.slot].state == State::Connecting {
                    self.finish_connect(r.slot, now);
                }
            }
        }
        let now = Instant::now();
        for i in 0..self.conns.len() {
            if self.conns[i].state == State::Connecting {
                self.connecting -= 1;
                let message = format!("connect to {} timed out", self.settings.target);
                self.first_error.get_or_insert(message);
                self.lose(i, Failure::ConnectTimeout, now);
            }
        }
        let ok = self.open_count();
        self.counters.connections_ok = ok;
        Ok(Connected {
            ok,
            errors: self.counters.errors,
            first_error: self.first_error.clone(),
        })
    }

    fn open_count(&self) -> u64 {
        self.conns.iter().filter(|c| c.state == State::Open).count() as u64
    }

    // ---- losing and retiring connections ----

    /// Connection `i` failed (at any stage): count why, and give up its requests. In the open
    /// model those of the window are unanswered, recorded at the end of the drain.
    fn lose(&mut self, i: usize, why: Failure, now: Instant) {
        if self.conns[i].state == State::Dead {
            return;
        }
        why.count(&mut self.counters.errors);
        self.count_error(now);
        let queue = std::mem::take(&mut self.conns[i].queue);
        self.queued -= queue.len();
        for req in &queue {
            self.give_up(req, self.clock.drain_until);
        }
        self.drop_socket(i, State::Dead);
    }

    /// A request that will not be answered (counted as the pacer says).
    fn give_up(&mut self, req: &Req, at: Instant) {
        if req.at_signal {
            self.counters.cut_after_signal += 1;
        }
        if self.pacer.counts_unanswered(req.intended, &self.clock) {
            self.counters.unanswered += 1;
            if req.sent.is_none() {
                self.counters.not_sent += 1;
            }
            record(
                &mut self.histograms.latency,
                at.saturating_duration_since(req.intended),
            );
            record(
                &mut self.histograms.after_lag,
                at.saturating_duration_since(req.handed),
            );
        }
    }

    /// Closes the socket. What is left in the queue (requests not yet written: a connection is
    /// retired only when nothing is on the wire) goes out on the next connection.
    fn drop_socket(&mut self, i: usize, state: State) {
        let c = &mut self.conns[i];
        if let Some(s) = c.stream.take() {
            self.epoll.remove(&s);
        }
        if c.state == State::Connecting {
            self.connecting -= 1;
        }
        if c.write_blocked {
            c.write_blocked = false;
            self.write_blocked -= 1;
        }
        self.outstanding -= c.written;
        c.written = 0;
        c.write_pos = 0;
        c.recv_pos = 0;
        c.parser = Parser::new();
        c.state = state;
    }

    /// Ends the current TCP connection after its last answer (churn, ramp down); reconnects when
    /// the load still wants it.
    fn retire(&mut self, i: usize, now: Instant) {
        self.drop_socket(i, State::Idle);
        self.conns[i].last_completion = None;
        if now < self.clock.end && self.wanted(i, now) {
            self.begin_connect(i, now);
        }
    }

    fn count_error(&mut self, now: Instant) {
        self.advance_interval(now);
        self.interval.errors += 1;
        self.live.errors.fetch_add(1, Relaxed);
    }

    // ---- requests ----

    /// Queues a request intended at `intended`, which the generator got to at `handed`, and
    /// writes what the socket takes.
    fn enqueue(&mut self, i: usize, intended: Instant, handed: Instant) {
        // Only what is in flight when the stop signal comes is marked (by `mark_instants`).
        self.conns[i].queue.push_back(Req {
            intended,
            handed,
            sent: None,
            at_signal: false,
        });
        self.queued += 1;
        // With earlier requests still unwritten the socket is full (or the churn limit holds):
        // edge-triggered EPOLLOUT (or the reconnect) resumes writing, a write now would not.
        let c = &self.conns[i];
        if c.state == State::Open && c.queue.len() - c.written == 1 && !self.defer_writes {
            self.write_more(i);
        }
    }

    /// The closed model's first requests on a connection just opened: `pipeline` of them (one
    /// unless HTTP pipelines), each answer then sending the next.
    fn own_requests(&mut self, i: usize, now: Instant) {
        for _ in 0..self.settings.workload.pipeline() {
            match self.pacer.own_request(now) {
                Some(at) => self.enqueue(i, at, at),
                None => return,
            }
        }
    }

    /// The churn limit allows another request on the current TCP connection.
    fn may_start(&self, i: usize) -> bool {
        self.pacer.may_start(self.conns[i].started_here)
    }

    fn write_more(&mut self, i: usize) {
        let blocked = self.write_some(i);
        if self.conns[i].write_blocked != blocked {
            self.conns[i].write_blocked = blocked;
            if blocked {
                self.write_blocked += 1;
            } else {
                self.write_blocked -= 1;
            }
        }
    }

    /// Writes the queued requests the socket takes; true when it stopped on a full buffer.
    fn write_some(&mut self, i: usize) -> bool {
        if self.exchange.is_http() {
            return self.write_http(i);
        }
        loop {
            let c = &self.conns[i];
            if c.state != State::Open || c.written >= c.queue.len() {
                return false;
            }
            if c.write_pos == 0 && !self.may_start(i) {
                return false;
            }
            let c = &mut self.conns[i];
            let msg = self.exchange.message(c.index);
            let Some(stream) = c.stream.as_mut() else {
                return false;
            };
            match stream.write(&msg[c.write_pos..]) {
                Ok(0) => {
                    self.lose(i, Failure::ClosedByServer, Instant::now());
                    return false;
                }
                Ok(n) => {
                    if c.write_pos == 0 {
                        c.started_here += 1;
                        self.outstanding += 1;
                        let req = &mut c.queue[c.written];
                        let now = *req.sent.get_or_insert_with(Instant::now);
                        if self.pacer.counts_send(req.intended, now, &self.clock) {
                            self.counters.sent += 1;
                            if now.saturating_duration_since(req.intended) > LATE_SEND {
                                self.counters.sent_late += 1;
                            }
                        }
                    }
                    let c = &mut self.conns[i];
                    c.write_pos += n;
                    if c.write_pos == msg.len() {
                        c.write_pos = 0;
                        c.written += 1;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if self.exchange.is_http() => {
                    self.fail_http(i, Failure::Io(e.kind()), Instant::now());
                    return false;
                }
                Err(e) => {
                    self.lose(i, Failure::Io(e.kind()), Instant::now());
                    return false;
                }
            }
        }
    }

    /// Reads what has arrived, completing requests in order, each at the kernel's arrival stamp
    /// of the read that finished it. Reads no further than what was written (large messages
    /// echo while they are still being sent).
    fn read_more(&mut self, i: usize, scratch: &mut [u8], now: Instant) {
        let answer_len = self.exchange.answer_len();
        loop {
            let c = &mut self.conns[i];
            let Some(stream) = c.stream.as_mut() else {
                return;
            };
            let expected = self.exchange.answerable(c.written, c.write_pos) - c.recv_pos;
            let want = expected.min(scratch.len());
            if want == 0 {
                return;
            }
            let not_before = c.queue.front().map(|r| r.intended);
            match arrival::read(stream, &mut scratch[..want], &mut self.clocks, not_before) {
                Ok(got) if got.n == 0 => return self.lose(i, Failure::ClosedByServer, got.read_at),
                Ok(got) => {
                    let (n, arrived, read_at) = self.count_read(got);
                    let mut pos = 0;
                    while pos < n {
                        let c = &mut self.conns[i];
                        let take = (n - pos).min(answer_len - c.recv_pos);
                        self.counters.mismatched_bytes += self.exchange.mismatches(
                            c.index,
                            c.recv_pos,
                            &scratch[pos..pos + take],
                        );
                        c.recv_pos += take;
                        pos += take;
                        if c.recv_pos == answer_len {
                            c.recv_pos = 0;
                            self.complete(i, arrived, read_at);
                            if self.conns[i].state != State::Open {
                                return;
                            }
                        }
                    }
                    if n < want {
                        // A short read drained the socket; epoll reports the next arrival.
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return self.lose(i, Failure::Io(e.kind()), now),
            }
        }
    }

    /// HTTP: writes the queued requests the socket takes, as many as are waiting (up to
    /// [`HTTP_WRITE_BATCH`], and as the churn limit allows) in one `writev`; true when it
    /// stopped on a full buffer. Each request counts as sent when its first byte is written.
    fn write_http(&mut self, i: usize) -> bool {
        loop {
            let c = &self.conns[i];
            if c.state != State::Open || c.written >= c.queue.len() {
                return false;
            }
            // Requests this write may begin: the one under way, then those the churn allows.
            let waiting = (c.queue.len() - c.written).min(HTTP_WRITE_BATCH);
            let under_way = usize::from(c.write_pos > 0);
            let may_begin = (0..waiting - under_way)
                .take_while(|&k| self.pacer.may_start(c.started_here + k as u64))
                .count();
            let count = under_way + may_begin;
            if count == 0 {
                return false;
            }
            let msg = self.exchange.message(c.index);
            let mut slices = [io::IoSlice::new(&[]); HTTP_WRITE_BATCH];
            slices[0] = io::IoSlice::new(&msg[c.write_pos..]);
            for slice in &mut slices[1..count] {
                *slice = io::IoSlice::new(msg);
            }
            let c = &mut self.conns[i];
            let Some(stream) = c.stream.as_mut() else {
                return false;
            };
            match stream.write_vectored(&slices[..count]) {
                Ok(0) => {
                    self.fail_http(i, Failure::ClosedByServer, Instant::now());
                    return false;
                }
                Ok(mut n) => {
                    let now = Instant::now();
                    while n > 0 {
                        let c = &mut self.conns[i];
                        if c.write_pos == 0 {
                            c.started_here += 1;
                            self.outstanding += 1;
                            let req = &mut c.queue[c.written];
                            let sent = *req.sent.get_or_insert(now);
                            if self.pacer.counts_send(req.intended, sent, &self.clock) {
                                self.counters.sent += 1;
                                if sent.saturating_duration_since(req.intended) > LATE_SEND {
                                    self.counters.sent_late += 1;
                                }
                            }
                        }
                        let c = &mut self.conns[i];
                        let take = n.min(msg.len() - c.write_pos);
                        c.write_pos += take;
                        n -= take;
                        if c.write_pos == msg.len() {
                            c.write_pos = 0;
                            c.written += 1;
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.fail_http(i, Failure::Io(e.kind()), Instant::now());
                    return false;
                }
            }
        }
    }

    /// HTTP: takes what has arrived ([`Worker::read_answers`]), then writes in one go the
    /// requests its answers freed (the closed model's next ones, `pipeline` deep).
    fn read_http(&mut self, i: usize, scratch: &mut [u8], now: Instant, closed: bool) {
        self.defer_writes = true;
        self.read_answers(i, scratch, now, closed);
        self.defer_writes = false;
        let c = &self.conns[i];
        if c.state == State::Open && c.written < c.queue.len() && !c.write_blocked {
            self.write_more(i);
        }
    }

    /// HTTP: reads what has arrived and parses it answer by answer ([`Parser`]), completing the
    /// oldest request at each answer's end (at the arrival stamp of the read that ended it),
    /// counting non-2xx answers by class and the bytes of a 2xx body that differ from the right
    /// one. A malformed answer, one with no request outstanding, or a close inside an answer
    /// is an error naming the connection and the bytes; the connection is then replaced, as is
    /// one the server closed, and the load goes on. `closed`: the event also said the peer
    /// closed (its FIN may have come with the last bytes, and no later edge will report it).
    fn read_answers(&mut self, i: usize, scratch: &mut [u8], now: Instant, closed: bool) {
        loop {
            let c = &mut self.conns[i];
            let Some(stream) = c.stream.as_mut() else {
                return;
            };
            let want = scratch.len();
            let not_before = c.queue.front().map(|r| r.intended);
            match arrival::read(stream, &mut scratch[..want], &mut self.clocks, not_before) {
                Ok(got) if got.n == 0 => {
                    if self.conns[i].parser.between_answers() {
                        return self.fail_http(i, Failure::ClosedByServer, got.read_at);
                    }
                    let why = "the server closed the connection inside an answer";
                    return self.malformed(i, why, &[], got.read_at);
                }
                Ok(got) => {
                    let (n, arrived, read_at) = self.count_read(got);
                    let mut pos = 0;
                    while pos < n {
                        let c = &mut self.conns[i];
                        if c.written == 0 && c.parser.between_answers() {
                            let why = "an answer with no request outstanding";
                            return self.malformed(i, why, &scratch[pos..n], read_at);
                        }
                        let body_at = c.parser.body_pos;
                        let fed = match c.parser.feed(&scratch[pos..n]) {
                            Ok(fed) => fed,
                            Err(why) => return self.malformed(i, why, &scratch[pos..n], read_at),
                        };
                        let status = c.parser.status();
                        let body = &scratch[pos..n][fed.body.clone()];
                        if (200..300).contains(&status) || fed.done.is_some_and(|s| s / 100 == 2) {
                            self.counters.mismatched_bytes +=
                                self.exchange.body_mismatches(body_at, body);
                        }
                        pos += fed.used;
                        if let Some(status) = fed.done {
                            let body_len = body_at + fed.body.len() as u64;
                            if status / 100 == 2 {
                                let right = self.exchange.body_len();
                                self.counters.mismatched_bytes += right.saturating_sub(body_len);
                            }
                            self.counters.count_status(status);
                            self.complete(i, arrived, read_at);
                            if self.conns[i].state != State::Open {
                                return;
                            }
                        }
                    }
                    if n < want && !closed {
                        // A short read drained the socket; epoll reports the next arrival.
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return self.fail_http(i, Failure::Io(e.kind()), now),
            }
        }
    }

    /// HTTP: connection `i` got a malformed answer (`why`, in `bytes`): counted, the first of
    /// this worker logged with the connection and the bytes, and the connection replaced.
    fn malformed(&mut self, i: usize, why: &str, bytes: &[u8], now: Instant) {
        if !self.malformed_logged {
            self.malformed_logged = true;
            eprintln!(
                "connection {} (from {}) to {}: malformed HTTP answer: {why}: \"{}\"",
                self.conns[i].index,
                self.conns[i].source,
                self.settings.target,
                show(bytes)
            );
        }
        self.fail_http(i, Failure::Malformed, now);
    }

    /// HTTP: connection `i` failed (counted as `why`, its requests given up); a new one takes
    /// its place while the load still wants it (a server may close or botch a connection; the
    /// run goes on).
    fn fail_http(&mut self, i: usize, why: Failure, now: Instant) {
        self.lose(i, why, now);
        self.conns[i].state = State::Idle;
        self.conns[i].last_completion = None;
        if now < self.clock.end && self.wanted(i, now) {
            self.begin_connect(i, now);
        }
    }

    /// Counts a read of answers in the window (how its answers were timed, and a step of the
    /// realtime clock, the kernel's stamps', its measurement of the clocks found); its bytes,
    /// when they arrived and when they were read.
    fn count_read(&mut self, got: arrival::Got) -> (usize, Instant, Instant) {
        if self.clock.in_window(got.read_at) {
            let c = &mut self.counters;
            c.reads += 1;
            c.reads_unstamped += u64::from(got.timed == arrival::Timed::Unstamped);
            c.reads_stamp_rejected += u64::from(got.timed == arrival::Timed::StampRejected);
            c.clock_steps += u64::from(got.stepped);
        }
        (got.n, got.arrived, got.read_at)
    }

    /// The oldest request of connection `i` was answered: it `arrived` (its latency ends there)
    /// and was read at `now` (the instant that counts it, in the window or an interval, and from
    /// which the client acts on it: one instant for the window and the timeline, so their counts
    /// agree however far the reads fall behind the arrivals).
    fn complete(&mut self, i: usize, arrived: Instant, now: Instant) {
        self.advance_interval(now);
        let c = &mut self.conns[i];
        let req = c.queue.pop_front().expect("a written request");
        c.written -= 1;
        c.answered_here += 1;
        self.queued -= 1;
        self.outstanding -= 1;
        let sent = req.sent.unwrap_or(req.intended);
        // What a coordinated-omission-prone client would have measured: from the moment it could
        // have sent this request (written, and the previous answer in), not from the schedule.
        let uncorrected_from = c.last_completion.map_or(sent, |prev| sent.max(prev));
        c.last_completion = Some(now);
        if self.clock.in_window(now) {
            self.counters.requests += 1;
            if self.is_hot(self.conns[i].index) {
                self.counters.hot_requests += 1;
            }
        }
        let latency = arrived.saturating_duration_since(req.intended);
        if self.latency_count < u32::MAX {
            self.latency_sum += latency;
            self.latency_count += 1;
        }
        if self.pacer.counts_latency(req.intended, now, &self.clock) {
            // An answer cannot arrive before its request was due to go out (the instant taken
            // before the write; the send instant is taken after it, and on loopback the answer
            // can be in before the write returns).
            self.counters.latency_clamped += u64::from(arrived <= req.intended);
            self.counters.latency_below_floor +=
                u64::from(self.floor.is_some_and(|floor| latency < floor));
            record(&mut self.histograms.latency, latency);
            if self.pacer.keeps_uncorrected() {
                record(
                    &mut self.histograms.uncorrected,
                    arrived.saturating_duration_since(uncorrected_from),
                );
                record(
                    &mut self.histograms.after_lag,
                    arrived.saturating_duration_since(req.handed),
                );
            }
        }
        if req.at_signal {
            self.counters.completed_after_signal += 1;
        }
        record(&mut self.interval.histogram, latency);
        self.interval.completed += 1;
        self.live.completed.fetch_add(1, Relaxed);
        self.after_answer(i, now);
    }

    /// What a connection does after an answer: retire (churn, ramp down), or send the request
    /// the pacer has for it (the closed model's next).
    fn after_answer(&mut self, i: usize, now: Instant) {
        let c = &self.conns[i];
        let quiet = c.written == 0 && c.write_pos == 0;
        let churn_done = self.pacer.churn_done(c.answered_here);
        let wanted = self.wanted(i, now);
        if quiet && (churn_done || (!wanted && c.queue.is_empty())) {
            return self.retire(i, now);
        }
        if now >= self.clock.end || !wanted || churn_done {
            return;
        }
        // The next request starts now, not at the instant the poll returned.
        if let Some(start) = self.pacer.own_request(Instant::now()) {
            let think = self.think_time(i);
            if !think.is_zero() {
                self.thinking.push(Reverse((start + think, i)));
                return;
            }
            if self.clock.in_window(start) {
                self.counters.resend_gap_sum_ns +=
                    start.saturating_duration_since(now).as_nanos() as u64;
            }
            self.enqueue(i, start, start);
        }
    }

    /// Closed model with `[load] skew`: how long cold connection `i` thinks before its next
    /// request ([`crate::scenario::Skew::think_time`] of this thread's mean latency); zero for a
    /// hot one and without skew.
    fn think_time(&self, i: usize) -> Duration {
        let Some(skew) = self.settings.skew else {
            return Duration::ZERO;
        };
        if self.is_hot(self.conns[i].index) || self.latency_count == 0 {
            return Duration::ZERO;
        }
        let n = self.settings.open_connections.start.round() as u64;
        skew.think_time(n, self.latency_sum / self.latency_count)
    }

    /// Sends the requests of the cold connections whose think time is over by `now`.
    fn end_thinking(&mut self, now: Instant) {
        while let Some(&Reverse((at, i))) = self.thinking.peek() {
            if at > now {
                return;
            }
            self.thinking.pop();
            let c = &self.conns[i];
            if c.state == State::Open && at < self.clock.end && self.wanted(i, at) {
                self.enqueue(i, at, now);
            }
        }
    }

    // ---- the schedule, ramps, intervals ----

    /// Open model: hands the requests due by `now` to their connections, at most
    /// [`SEND_BATCH`] at a time so a generator that fell behind still reads its answers. Sends
    /// take time (a few µs each on loopback): when those due by `now` are out, the clock is read
    /// again and what fell due meanwhile goes too, in this turn rather than after another look
    /// at the sockets (at 100,000/s that look cost one `epoll_wait` per send, 5% of the core).
    fn send_due(&mut self, mut now: Instant) {
        let (mut handed, mut of_window) = (0, false);
        while handed < SEND_BATCH {
            let Some((at, due)) = self.pacer.take_due(now, &self.clock) else {
                let fresh = Instant::now();
                match self.pacer.next_due() {
                    Some((at, _)) if at <= fresh => {
                        now = fresh;
                        continue;
                    }
                    _ => break,
                }
            };
            handed += 1;
            let i = due.slot;
            if self.clock.in_window(at) {
                of_window = true;
                self.counters.scheduled += 1;
                record(
                    &mut self.histograms.send_lag,
                    now.saturating_duration_since(at),
                );
            }
            match self.conns[i].state {
                _ if self.queued >= MAX_QUEUED => self.give_up(
                    &Req {
                        intended: at,
                        handed: now,
                        sent: None,
                        at_signal: false,
                    },
                    self.clock.drain_until,
                ),
                State::Dead => self.give_up(
                    &Req {
                        intended: at,
                        handed: now,
                        sent: None,
                        at_signal: false,
                    },
                    self.clock.drain_until,
                ),
                State::Idle => {
                    self.enqueue(i, at, now);
                    self.begin_connect(i, now);
                }
                State::Connecting | State::Open => self.enqueue(i, at, now),
            }
        }
        self.counters.send_batches += u64::from(of_window);
    }

    /// Opens connections a ramp now wants and retires those it no longer wants.
    fn follow_ramp(&mut self, now: Instant) {
        for i in 0..self.conns.len() {
            let wanted = self.wanted(i, now);
            let c = &self.conns[i];
            match c.state {
                State::Idle if wanted && self.connecting < CONNECT_WINDOW => {
                    self.begin_connect(i, now)
                }
                State::Open if !wanted && c.queue.is_empty() => self.retire(i, now),
                _ => {}
            }
        }
    }

    /// Closes every interval that ended by `now` (empty ones too) and starts the current one.
    fn advance_interval(&mut self, now: Instant) {
        while now >= self.interval.ends {
            let sample = IntervalSample {
                index: self.interval.index,
                completed: std::mem::take(&mut self.interval.completed),
                errors: std::mem::take(&mut self.interval.errors),
                connections: self.open_count(),
                histogram: std::mem::replace(&mut self.interval.histogram, new_histogram()),
            };
            self.interval.index += 1;
            self.interval.ends += self.settings.interval;
            self.pending_intervals.push(sample);
        }
    }

    /// Adds the requests pending since the last call, over the part of it inside the window, to
    /// their time-integral (Little's law's L). Called at every turn of the loop, before the
    /// count changes by what the turn handles, so each stretch counts the requests pending in it.
    fn integrate_pending(&mut self, now: Instant) {
        let from = self.pending_until.max(self.clock.measure_from);
        let to = now.min(self.clock.end);
        if to > from {
            self.counters.pending_ns += self.queued as u64 * (to - from).as_nanos() as u64;
        }
        self.pending_until = self.pending_until.max(now);
    }

    /// Marks the instants the row's counters refer to: the window's edges and the stop signal.
    fn mark_instants(&mut self, now: Instant) {
        if !self.window_opened && now >= self.clock.measure_from {
            self.window_opened = true;
            self.counters.in_flight_at_window_start = self.outstanding as u64;
            self.counters.open_at_window_start = self.open_count();
        }
        if !self.window_closed && now >= self.clock.end {
            self.window_closed = true;
            self.counters.in_flight_at_window_end = self.outstanding as u64;
            let opened = self.clock.measure_from;
            self.counters.stuck_through_window = (self.conns.iter())
                .flat_map(|c| c.queue.iter())
                .filter(|r| r.intended < opened)
                .count() as u64;
            let waits = (self.conns.iter())
                .flat_map(|c| c.queue.iter())
                .map(|r| self.clock.end.saturating_duration_since(r.intended));
            for wait in waits {
                let c = &mut self.counters;
                c.oldest_pending_at_end_ns = c.oldest_pending_at_end_ns.max(wait.as_nanos() as u64);
                c.long_pending_at_end += u64::from(wait > crate::protocol::LONG_WAIT);
            }
        }
        let signal = self.settings.signal_at.map(|d| self.clock.start + d);
        if !self.signalled && signal.is_some_and(|at| now >= at) {
            self.signalled = true;
            for c in &mut self.conns {
                for r in &mut c.queue {
                    r.at_signal = true;
                }
            }
            self.counters.in_flight_at_signal = self.queued as u64;
        }
    }

    /// The next instant the loop must act at, if nothing arrives before.
    fn next_wake(&self, now: Instant, next_ramp: Option<Instant>) -> Instant {
        let c = &self.clock;
        let mut wake = if now < c.end { c.end } else { c.drain_until };
        wake = wake.min(self.interval.ends);
        if !self.window_opened {
            wake = wake.min(c.measure_from);
        }
        if let Some(at) = self.next_send_wake() {
            wake = wake.min(at);
        }
        if let Some(Reverse((at, _))) = self.thinking.peek() {
            wake = wake.min(*at);
        }
        if let Some(at) = next_ramp {
            wake = wake.min(at);
        }
        if let Some(at) = self.settings.signal_at.map(|d| c.start + d) {
            if !self.signalled {
                wake = wake.min(at);
            }
        }
        wake
    }

    /// Open model: when the loop wakes for the next send: at its time, or, with a send window,
    /// if that would mean sleeping again less than a window after the last sleep ended, at the
    /// window's end (with every send due by then). So it sleeps at most once per window; a send
    /// is never early and late by less than the window, and one that comes after the window
    /// keeps its time.
    fn next_send_wake(&self) -> Option<Instant> {
        let (at, _) = self.pacer.next_due()?;
        Some(match self.woke {
            Some(woke) => at.max(woke + self.settings.send_window),
            None => at,
        })
    }

    /// Open model: the loop may sleep until `wake` without waking for answers when the next
    /// thing to do is a send due within [`READ_LATE_AT_MOST`], and nothing waits on an event
    /// whose time matters (a connect, whose time is measured; a write stopped on a full buffer,
    /// which would delay a send).
    fn may_read_late(&self, now: Instant, wake: Instant) -> bool {
        self.next_send_wake() == Some(wake)
            && wake.saturating_duration_since(now) <= READ_LATE_AT_MOST
            && now < self.clock.end
            && self.connecting == 0
            && self.write_blocked == 0
    }

    // ---- the run ----

    /// Runs the load from `start` for warmup + duration (+ the open model's drain). Interval
    /// samples go to `tx`.
    pub fn run(mut self, start: Instant, tx: Sender<IntervalSample>) -> io::Result<WorkerResult> {
        let s = self.settings.clone();
        self.clock = self.pacer.start(start, &s, self.owned);
        self.interval.ends = start + s.interval;
        let ramping = self.pacer.ramping();
        let mut next_ramp = ramping.then_some(start);
        let mut scratch = vec![0u8; 64 * 1024];

        std::thread::sleep(start.saturating_duration_since(Instant::now()));
        let (began, cpu_began) = (Instant::now(), crate::os::sys::thread_cpu_time());
        let wait_began = crate::os::procfs::thread_cpu_wait();
        for i in 0..self.conns.len() {
            if self.conns[i].state == State::Open {
                self.own_requests(i, began);
            }
        }
        let (mut waiting, mut waiting_cpu, mut sleeps) = (Duration::ZERO, Duration::ZERO, 0u64);
        self.pending_until = began;
        loop {
            let now = Instant::now();
            self.integrate_pending(now);
            self.mark_instants(now);
            self.advance_interval(now);
            for sample in self.pending_intervals.drain(..) {
                let _ = tx.send(sample);
            }
            // The schedule holds only requests due before the end; this runs after the end too,
            // for those due just before it.
            self.send_due(now);
            self.end_thinking(now);
            let idle = self.queued == 0 && self.pacer.next_due().is_none();
            if now >= self.clock.end && (idle || now >= self.clock.drain_until) {
                break;
            }
            if now < self.clock.end {
                if let Some(at) = next_ramp.filter(|&at| now >= at) {
                    self.follow_ramp(now);
                    next_ramp = Some(at.max(now) + RAMP_EVERY);
                }
            }
            let wake = self.next_wake(now, next_ramp);
            let before = Instant::now();
            let timeout = wake.saturating_duration_since(before);
            // A zero timeout is a look at the sockets, not a sleep.
            let sleeping = !timeout.is_zero();
            sleeps += u64::from(sleeping);
            let sampled = sleeping && sleeps % u64::from(WAIT_CPU_SAMPLE) == 0;
            let cpu_before = sampled.then(crate::os::sys::thread_cpu_time);
            let n = self.wait(now, wake, timeout)?;
            let now = Instant::now();
            waiting += now - before;
            if let Some(cpu) = cpu_before {
                let spent = crate::os::sys::thread_cpu_time().saturating_sub(cpu);
                waiting_cpu += spent * WAIT_CPU_SAMPLE;
            }
            self.integrate_pending(now);
            for e in 0..n {
                let r = self.epoll.ready(e);
                self.on_ready(r, &mut scratch, now);
            }
        }
        let end = Instant::now();
        self.finish(end);
        for sample in self.pending_intervals.drain(..) {
            let _ = tx.send(sample);
        }
        let cpu = crate::os::sys::thread_cpu_time().saturating_sub(cpu_began);
        let cpu_wait = match (wait_began, crate::os::procfs::thread_cpu_wait()) {
            (Some(a), Some(b)) => b.saturating_sub(a),
            _ => Duration::ZERO,
        };
        Ok(WorkerResult {
            counters: self.counters,
            histograms: self.histograms,
            busy: busy(end - began, waiting, cpu, waiting_cpu, cpu_wait),
        })
    }

    /// Waits for events until `wake`, or, where [`Worker::may_read_late`], sleeps until it and
    /// then takes what arrived meanwhile.
    ///
    /// A wait is a sleep, however short: the loop never polls or spins through one. Waiting
    /// awake keeps sends on time to the microsecond where nothing else wants the machine, but
    /// the generator usually shares it with the server, and on the 2-vCPU VMs here it made the
    /// tail it was meant to protect: at 100,000/s against the C echo server, a client polling
    /// through its waits had sends more than 1 ms late in nearly every run and a p99 1.2-10
    /// times a sleeping one's (medians of 8-10 alternating rounds), the on-time C client as much
    /// as runbench (docs/benchmarks.md, "Waiting awake made the tail"). A sleep's cost where
    /// sends are close together is bounded by [`Worker::send_due`], which sends what fell due
    /// while it sent before the loop waits again; what a sleep costs the CPU counts as waiting
    /// ([`WAIT_CPU_SAMPLE`]).
    fn wait(&mut self, now: Instant, wake: Instant, timeout: Duration) -> io::Result<usize> {
        if timeout.is_zero() {
            return self.epoll.wait(Duration::ZERO);
        }
        let n = if self.may_read_late(now, wake) {
            // Answers are stamped by the kernel on arrival: sleeping through them until the
            // send costs nothing in accuracy and saves a wake-up per request.
            std::thread::sleep(timeout);
            self.epoll.wait(Duration::ZERO)
        } else {
            self.epoll.wait(timeout)
        }?;
        self.woke = Some(Instant::now());
        Ok(n)
    }

    fn on_ready(&mut self, r: Ready, scratch: &mut [u8], now: Instant) {
        let i = r.slot;
        match self.conns[i].state {
            State::Connecting => {
                self.finish_connect(i, now);
                if self.conns[i].state != State::Open {
                    return;
                }
                self.counters.reconnects += 1;
                record(
                    &mut self.histograms.connect,
                    now.saturating_duration_since(self.conns[i].connect_started),
                );
                let own = (now < self.clock.end && self.conns[i].queue.is_empty())
                    .then(|| self.pacer.own_request(Instant::now()))
                    .flatten();
                if let Some(at) = own {
                    self.own_requests(i, at);
                } else {
                    // Requests that fell due while it reconnected go out now, late, with their
                    // intended times.
                    self.write_more(i);
                }
            }
            State::Open => {
                if r.writable {
                    self.write_more(i);
                }
                if self.conns[i].state == State::Open && (r.readable || r.closed) {
                    if self.exchange.is_http() {
                        self.read_http(i, scratch, now, r.closed);
                    } else {
                        self.read_more(i, scratch, now);
                    }
                }
            }
            State::Idle | State::Dead => {}
        }
    }

    /// The end of the run: what is still unanswered is given up at `now` (the end of the open
    /// model's drain).
    fn finish(&mut self, now: Instant) {
        self.mark_instants(now);
        // A generator that fell far behind may not have handed out the last of the schedule.
        while let Some((at, _)) = self.pacer.take_any(&self.clock) {
            if self.clock.in_window(at) {
                self.counters.scheduled += 1;
                record(
                    &mut self.histograms.send_lag,
                    now.saturating_duration_since(at),
                );
            }
            let req = Req {
                intended: at,
                handed: now,
                sent: None,
                at_signal: false,
            };
            self.give_up(&req, now);
        }
        for i in 0..self.conns.len() {
            let queue = std::mem::take(&mut self.conns[i].queue);
            for req in &queue {
                self.give_up(req, now);
            }
        }
        // A partial last interval is left out: it would read as a whole one.
        self.advance_interval(now);
    }
}

/// The thread's busy fractions over `total`: wall time outside the waits, CPU time outside them
/// (`waiting_cpu`, what the waits cost the CPU, is part of `waiting`), and time runnable but
/// waiting for a CPU.
fn busy(
    total: Duration,
    waiting: Duration,
    cpu: Duration,
    waiting_cpu: Duration,
    cpu_wait: Duration,
) -> LoadBusy {
    let cpu = cpu.saturating_sub(waiting_cpu);
    let fraction = |d: Duration| {
        if total.is_zero() {
            0.0
        } else {
            (d.as_secs_f64() / total.as_secs_f64()).clamp(0.0, 1.0)
        }
    };
    LoadBusy {
        wall: fraction(total.saturating_sub(waiting)),
        cpu: fraction(cpu),
        cpu_wait: fraction(cpu_wait),
        thread_cpu_s: cpu.as_secs_f64(),
        run_s: total.as_secs_f64(),
        cpu_s: 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::super::schedule::Due;
    use super::*;
    use crate::protocol::Ramp;
    use crate::scenario::Model;
    use runbench_plugin_abi::Workload;

    fn open_worker(send_window: Duration) -> Worker {
        let settings = Settings {
            target: "127.0.0.1:9".parse().unwrap(),
            model: Model::Open,
            workload: Workload::echo(64),
            open_connections: Ramp::constant(1.0),
            rate: Some(Ramp::constant(3000.0)),
            requests_per_connection: None,
            skew: None,
            send_window,
            connect_timeout: Duration::from_secs(1),
            warmup: Duration::from_secs(1),
            duration: Duration::from_secs(1),
            interval: Duration::from_secs(1),
            signal_at: None,
        };
        let owned = Owned {
            first: 0,
            count: 1,
            threads: 1,
            thread: 0,
        };
        let mut w = Worker::new(
            Arc::new(settings),
            owned,
            Vec::new(),
            Arc::new(Live::default()),
        )
        .unwrap();
        let settings = w.settings.clone();
        w.clock = w.pacer.start(w.clock.start, &settings, w.owned);
        w
    }

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    /// The worker's next send is due at `start + due` µs, and its last sleep ended at
    /// `start + woke` µs; when the loop wakes, seen at `start + now` µs.
    fn wake_at(w: &mut Worker, woke: Option<u64>, now: u64, due: u64) -> Instant {
        let start = w.clock.start;
        w.woke = woke.map(|t| start + us(t));
        let next = Due {
            at: us(due),
            connection: 0,
            slot: 0,
        };
        w.pacer.set_next_due(start + us(due), next);
        let wake = w.next_wake(start + us(now), None);
        if wake - (start + us(now)) <= READ_LATE_AT_MOST {
            assert!(
                w.may_read_late(start + us(now), wake),
                "the send is the next thing to do, so answers may wait for it"
            );
        }
        wake
    }

    fn wake_for(window: u64, woke: Option<u64>, now: u64, due: u64) -> (Instant, Instant) {
        let mut w = open_worker(us(window));
        let wake = wake_at(&mut w, woke, now, due);
        (w.clock.start, wake)
    }

    /// The wiring, which the timing of a real run on a 2-core VM cannot show reliably (there the
    /// timer alone makes a send at 3,000/s ~200 µs late at the median): the loop's next wake for
    /// a send due soon after its last sleep is the window's end, and it may sleep through
    /// answers until then.
    #[test]
    fn the_loop_sleeps_at_most_once_per_window() {
        // Woke at 0, send due at 120 µs: with a 500 µs window it waits to 500 µs; without,
        // it goes at 120 µs.
        let (start, wake) = wake_for(500, Some(0), 20, 120);
        assert_eq!(wake, start + us(500));
        let (start, wake) = wake_for(0, Some(0), 20, 120);
        assert_eq!(wake, start + us(120));
    }

    #[test]
    fn a_send_window_never_moves_a_send_earlier_nor_delays_it_by_a_window_or_more() {
        let window = 500;
        let mut w = open_worker(us(window));
        let start = w.clock.start;
        for woke in (0..2000).step_by(37) {
            for due in (woke + 1..woke + 1500).step_by(13) {
                let wake = wake_at(&mut w, Some(woke), woke, due);
                let at = start + us(due);
                assert!(wake >= at, "woke {woke} due {due}: early");
                assert!(
                    wake - at < us(window),
                    "woke {woke} due {due}: a window late"
                );
            }
        }
    }

    #[test]
    fn sends_sparser_than_the_window_keep_their_times() {
        // The first sleep of the run, a send after the window.
        for (woke, now, due) in [(None, 0, 300), (Some(0), 10, 600)] {
            let (start, wake) = wake_for(500, woke, now, due);
            assert_eq!(wake, start + us(due), "woke {woke:?} now {now} due {due}");
        }
    }

    #[test]
    fn busy_is_the_time_outside_the_waits() {
        let ms = Duration::from_millis;
        // 1 s: 300 ms working, 700 ms waiting of which 200 ms on the CPU (short sleeps), 520 ms
        // on the CPU in all, 50 ms runnable off it.
        let b = busy(ms(1000), ms(700), ms(520), ms(200), ms(50));
        assert!((b.wall - 0.3).abs() < 1e-9, "{b:?}");
        assert!((b.cpu - 0.32).abs() < 1e-9, "{b:?}");
        assert!((b.cpu_wait - 0.05).abs() < 1e-9, "{b:?}");
        assert!((b.thread_cpu_s - 0.32).abs() < 1e-9, "{b:?}");
        // Fractions stay within the run, whatever the clocks said.
        assert_eq!(busy(ms(1000), ms(0), ms(1500), ms(0), ms(0)).cpu, 1.0);
        assert_eq!(busy(ms(1000), ms(900), ms(100), ms(500), ms(0)).cpu, 0.0);
        assert_eq!(busy(ms(0), ms(0), ms(10), ms(0), ms(0)).wall, 0.0);
    }
}
