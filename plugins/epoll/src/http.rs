//! The limit row's HTTP/1.1: the ABI crate's hand-written responder over httparse
//! ([`Responder`]), driven like the echo by the event loop. Requests are parsed in place from the
//! connection's buffer (pipelined ones one after another), their answers appended to one reused
//! output buffer and written when the socket takes them. A request the responder refuses is
//! answered 400 and the connection closed once that is written, as hyper does.

use crate::conn::Step;
use mio::net::TcpStream;
use runbench_plugin_abi::responder::Responder;
use runbench_plugin_abi::{Config, HostHandle, Outcome, Steps, ECHO_BUFFER_BYTES};
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

/// What a drive works with beside the socket: the host (counters), the connection's draws and
/// its sleep in progress (see [`crate::conn::requests_done`]).
pub type Drive<'a> = (
    &'a HostHandle,
    &'a mut Steps,
    &'a mut Option<(Instant, Duration, u64)>,
);

/// Reads one drive may do before letting other connections run.
const READS_PER_DRIVE: usize = 32;

/// One connection's HTTP state.
pub struct Http {
    responder: Responder,
    /// Bytes read and not yet parsed are `buf[start..end]`.
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// Answers not yet written are `out[sent..]`.
    out: Vec<u8>,
    sent: usize,
    /// Closing after `out` is written (a refused request's 400).
    closing: bool,
}

impl Http {
    pub fn new(config: &Config) -> Self {
        Http {
            responder: Responder::new(&config.workload),
            buf: vec![0u8; ECHO_BUFFER_BYTES].into_boxed_slice(),
            start: 0,
            end: 0,
            out: Vec::new(),
            sent: 0,
            closing: false,
        }
    }

    /// Answers what can be answered now; the requests' work is the echo's (`requests_done`:
    /// drawn cpu now, the sleeps as one timer, answers waiting in `out` until it is over). `stopping`: a connection with no request
    /// begun and nothing to write closes.
    pub fn drive(
        &mut self,
        stream: &mut TcpStream,
        config: &Config,
        (host, steps, sleeping): Drive<'_>,
        stopping: bool,
        echoed: &mut u64,
    ) -> Step {
        for _ in 0..READS_PER_DRIVE {
            while self.sent < self.out.len() {
                match stream.write(&self.out[self.sent..]) {
                    Ok(n) => self.sent += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Step::Idle,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return Step::Closed(Outcome::IoError),
                }
            }
            self.out.clear();
            self.sent = 0;
            if self.closing {
                return Step::Closed(Outcome::IoError);
            }
            if self.start == self.end {
                (self.start, self.end) = (0, 0);
            } else if self.end == self.buf.len() {
                // A request split at the buffer's end: move its start to the front.
                self.buf.copy_within(self.start..self.end, 0);
                (self.start, self.end) = (0, self.end - self.start);
            }
            let n = loop {
                match stream.read(&mut self.buf[self.end..]) {
                    Ok(0) => return Step::Closed(Outcome::PeerClosed),
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        return if stopping && self.start == self.end {
                            Step::Closed(Outcome::Clean)
                        } else {
                            Step::Idle
                        };
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => return Step::Closed(Outcome::IoError),
                }
            };
            self.end += n;
            let input = &self.buf[self.start..self.end];
            let done = self.responder.answer(input, self.buf.len(), &mut self.out);
            self.start += done.consumed;
            *echoed += done.body_bytes;
            self.closing = done.close;
            let workload = &config.workload;
            if let Some(step) =
                crate::conn::requests_done(steps, sleeping, host, workload, done.requests)
            {
                return step;
            }
        }
        Step::Yielded
    }
}
