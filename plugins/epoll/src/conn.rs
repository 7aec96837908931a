//! One connection's echo state machine, driven by the event loop whenever its socket may have
//! become readable or writable (edge-triggered: each drive goes on until the socket would block).

use mio::net::TcpStream;
use runbench_plugin_abi::{
    Config, HostHandle, MessageTracker, Outcome, Protocol, Serving, SizedAnswer, Steps,
    ECHO_BUFFER_BYTES,
};
use std::io::{self, Read, Write};
use std::ops::Range;
use std::time::{Duration, Instant};

/// Reads (each followed by its echo) one drive may do before letting other connections run.
const READS_PER_DRIVE: usize = 32;

/// What every request of the server asks, worked out once per event loop.
pub struct Work {
    /// The answer to each request when it is not an echo (`response_bytes`).
    sized: Option<SizedAnswer>,
    /// Whether a request needs `cpu` or `sleep` (else only its answer and its count).
    has_work: bool,
}

impl Work {
    pub fn new(config: &Config) -> Self {
        let w = &config.workload;
        Work {
            sized: (!w.is_echo()).then(|| SizedAnswer::new(w)),
            has_work: Steps::has_work(w),
        }
    }
}

/// What a drive left behind.
pub enum Step {
    /// Waiting for the socket (the next edge wakes it).
    Idle,
    /// Read budget spent with data possibly left: drive again soon without waiting for an edge.
    Yielded,
    /// Began the read's requests' `sleep`: drive again at this instant.
    Sleeping(Instant),
    Closed(Outcome),
}

pub struct Conn<'a> {
    /// Tells apart connections that reuse the same slab slot.
    pub id: u64,
    stream: TcpStream,
    buf: Box<[u8]>,
    /// Bytes of the answer (`buf`, or `out` for sized answers) not yet written.
    unsent: Range<usize>,
    /// The sized answers to the last read's complete requests (empty for an echo).
    out: Vec<u8>,
    tracker: MessageTracker,
    /// The connection's draws of the workload's `cpu` and `sleep`.
    steps: Steps,
    /// Present while served; counts it in the server's concurrency.
    serving: Option<Serving<'a>>,
    /// Holds one of the `max_connections` slots.
    pub has_slot: bool,
    /// The sleep in progress: when it started, how long, and how many requests' timers it is.
    sleeping: Option<(Instant, Duration, u64)>,
    /// HTTP/1.1's state, when the workload's protocol is HTTP.
    http: Option<Box<crate::http::Http>>,
}

impl<'a> Conn<'a> {
    /// The server's `ordinal`-th connection (its part of the seeded draws).
    pub fn new(id: u64, stream: TcpStream, config: &Config, ordinal: u64) -> Self {
        Conn {
            id,
            stream,
            buf: Vec::new().into_boxed_slice(),
            unsent: 0..0,
            out: Vec::new(),
            tracker: MessageTracker::new(config.workload.request_bytes),
            steps: Steps::new(&config.workload, ordinal),
            serving: None,
            has_slot: false,
            sleeping: None,
            http: None,
        }
    }

    pub fn stream_mut(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    pub fn is_served(&self) -> bool {
        self.serving.is_some()
    }

    /// Starts serving (after any `max_connections` slot was granted). The buffer is allocated
    /// only now, so connections waiting for a slot cost no buffer.
    pub fn start(&mut self, serving: Serving<'a>, config: &Config) -> io::Result<()> {
        self.serving = Some(serving);
        if config.workload.protocol == Protocol::Http1 {
            self.http = Some(Box::new(crate::http::Http::new(config)));
        } else {
            self.buf = vec![0u8; ECHO_BUFFER_BYTES].into_boxed_slice();
        }
        self.stream.set_nodelay(true)
    }

    /// Answers whatever can be answered now: the bytes read (an echo), or the sized answer per
    /// complete request. `stopping`: the server is draining, so a connection found idle between
    /// messages is closed.
    pub fn drive(
        &mut self,
        config: &Config,
        host: &HostHandle,
        work: &Work,
        stopping: bool,
        answered: &mut u64,
    ) -> Step {
        if let Some((started, d, timers)) = self.sleeping {
            if started.elapsed() < d {
                return Step::Idle; // the timer heap already holds its wake-up
            }
            self.sleeping = None;
            Steps::fired(host, timers, started, d);
        }
        if let Some(http) = &mut self.http {
            let (stream, steps, sleeping) = (&mut self.stream, &mut self.steps, &mut self.sleeping);
            return http.drive(stream, config, (host, steps, sleeping), stopping, answered);
        }
        let workload = &config.workload;
        for _ in 0..READS_PER_DRIVE {
            while !self.unsent.is_empty() {
                let answer = match work.sized {
                    None => &self.buf[self.unsent.clone()],
                    Some(_) => &self.out[self.unsent.clone()],
                };
                match self.stream.write(answer) {
                    Ok(n) => {
                        self.unsent.start += n;
                        *answered += n as u64;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Step::Idle,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return Step::Closed(Outcome::IoError),
                }
            }
            let n = loop {
                match self.stream.read(&mut self.buf) {
                    Ok(0) => return Step::Closed(Outcome::PeerClosed),
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        return if stopping && self.tracker.at_boundary() {
                            Step::Closed(Outcome::Clean)
                        } else {
                            Step::Idle
                        };
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return Step::Closed(Outcome::IoError),
                }
            };
            let requests = match &work.sized {
                None => {
                    self.unsent = 0..n;
                    self.tracker.consumed(n)
                }
                Some(answer) => {
                    let requests = self.tracker.completed(n);
                    self.unsent = 0..answer.fill(&mut self.out, requests);
                    requests
                }
            };
            if !work.has_work {
                Steps::done(host, requests);
                continue;
            }
            if let Some(step) = requests_done(
                &mut self.steps,
                &mut self.sleeping,
                host,
                workload,
                requests,
            ) {
                return step;
            }
        }
        Step::Yielded
    }
}

/// The work of `requests` requests just read, in order: each one's cpu now, their sleeps one
/// after another as one timer (`sleeping`, and the step that waits for it), counted.
pub fn requests_done(
    steps: &mut Steps,
    sleeping: &mut Option<(Instant, Duration, u64)>,
    host: &HostHandle,
    workload: &runbench_plugin_abi::Workload,
    requests: u64,
) -> Option<Step> {
    let mut nap = Duration::ZERO;
    let mut timers = 0;
    for _ in 0..requests {
        let d = steps.begin(host, workload);
        if !d.is_zero() {
            nap += d;
            timers += 1;
        }
    }
    Steps::done(host, requests);
    (timers > 0).then(|| {
        let now = Instant::now();
        *sleeping = Some((now, nap, timers));
        Step::Sleeping(now + nap)
    })
}
