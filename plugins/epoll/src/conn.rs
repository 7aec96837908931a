//! One connection's echo state machine, driven by the event loop whenever its socket may have
//! become readable or writable (edge-triggered: each drive goes on until the socket would block).

use mio::net::TcpStream;
use runbench_plugin_abi::{
    spin_for, Config, MessageTracker, Outcome, Protocol, Serving, ECHO_BUFFER_BYTES,
};
use std::io::{self, Read, Write};
use std::ops::Range;
use std::time::Instant;

/// Reads (each followed by its echo) one drive may do before letting other connections run.
const READS_PER_DRIVE: usize = 32;

/// What a drive left behind.
pub enum Step {
    /// Waiting for the socket (the next edge wakes it).
    Idle,
    /// Read budget spent with data possibly left: drive again soon without waiting for an edge.
    Yielded,
    /// Began a per-message `sleep`: drive again at this instant.
    Sleeping(Instant),
    Closed(Outcome),
}

pub struct Conn<'a> {
    /// Tells apart connections that reuse the same slab slot.
    pub id: u64,
    stream: TcpStream,
    buf: Box<[u8]>,
    /// Bytes of `buf` read but not yet echoed.
    unsent: Range<usize>,
    tracker: MessageTracker,
    /// Present while served; counts it in the server's concurrency.
    serving: Option<Serving<'a>>,
    /// Holds one of the `max_connections` slots.
    pub has_slot: bool,
    sleep_until: Option<Instant>,
    /// HTTP/1.1's state, when the workload's protocol is HTTP.
    http: Option<Box<crate::http::Http>>,
}

impl<'a> Conn<'a> {
    pub fn new(id: u64, stream: TcpStream, config: &Config) -> Self {
        Conn {
            id,
            stream,
            buf: Vec::new().into_boxed_slice(),
            unsent: 0..0,
            tracker: MessageTracker::new(config.workload.request_bytes),
            serving: None,
            has_slot: false,
            sleep_until: None,
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

    /// Echoes whatever can be echoed now. `stopping`: the server is draining, so a connection
    /// found idle between messages is closed.
    pub fn drive(&mut self, config: &Config, stopping: bool, echoed: &mut u64) -> Step {
        if let Some(until) = self.sleep_until {
            if Instant::now() < until {
                return Step::Idle; // the timer heap already holds its wake-up
            }
            self.sleep_until = None;
        }
        if let Some(http) = &mut self.http {
            let stream = &mut self.stream;
            return http.drive(stream, config, stopping, echoed, &mut self.sleep_until);
        }
        for _ in 0..READS_PER_DRIVE {
            while !self.unsent.is_empty() {
                match self.stream.write(&self.buf[self.unsent.clone()]) {
                    Ok(n) => {
                        self.unsent.start += n;
                        *echoed += n as u64;
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
            self.unsent = 0..n;
            let messages = self.tracker.consumed(n);
            for _ in 0..messages {
                spin_for(config.workload.cpu.mean());
            }
            if messages > 0 && !config.workload.sleep.is_zero() {
                let until = Instant::now() + config.workload.sleep.mean() * messages as u32;
                self.sleep_until = Some(until);
                return Step::Sleeping(until);
            }
        }
        Step::Yielded
    }
}
