//! The limit row's HTTP/1.1: a hand-written responder over httparse, driven like the echo by
//! the event loop. Requests are parsed in place from the connection's buffer (pipelined ones one
//! after another), each answered with the same bytes as the hyper plugins' (TechEmpower's
//! plaintext, or `response_bytes` of body; a HEAD's without the body) appended to one reused output buffer, written when
//! the socket takes it. The `Date` header is formatted once per second per thread. A request
//! httparse refuses (or one with a body this responder does not frame: chunked) is answered
//! 400 and the connection closed, as hyper does.

use mio::net::TcpStream;
use runbench_plugin_abi::{spin_for, Config, Outcome, Workload, ECHO_BUFFER_BYTES};
use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::time::{Instant, SystemTime};

use crate::conn::Step;

/// Headers one request may have.
const MAX_HEADERS: usize = 64;
/// Reads one drive may do before letting other connections run.
const READS_PER_DRIVE: usize = 32;
const BAD_REQUEST: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\nServer: runbench\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// One connection's HTTP state.
pub struct Http {
    /// Bytes read and not yet parsed are `buf[start..end]`.
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// Answers not yet written are `out[sent..]`.
    out: Vec<u8>,
    sent: usize,
    body: Vec<u8>,
    content_type: &'static str,
    /// Closing after `out` is written (a malformed request's 400).
    closing: bool,
}

impl Http {
    pub fn new(workload: &Workload) -> Self {
        let (body, content_type) = match workload.response_bytes {
            None => (runbench_plugin_abi::PLAINTEXT.to_vec(), "text/plain"),
            Some(n) => (
                (0..n as usize).map(Workload::response_byte).collect(),
                "application/octet-stream",
            ),
        };
        Http {
            buf: vec![0u8; ECHO_BUFFER_BYTES].into_boxed_slice(),
            start: 0,
            end: 0,
            out: Vec::new(),
            sent: 0,
            body,
            content_type,
            closing: false,
        }
    }

    /// Answers what can be answered now; `sleep_until` is the connection's per-request sleep
    /// (answers wait in `out` until it is over). `stopping`: a connection with no request
    /// begun and nothing to write closes.
    pub fn drive(
        &mut self,
        stream: &mut TcpStream,
        config: &Config,
        stopping: bool,
        echoed: &mut u64,
        sleep_until: &mut Option<Instant>,
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
            if self.end == self.buf.len() {
                // A head larger than the buffer.
                self.fail();
                continue;
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
            let requests = self.answer_all(echoed);
            for _ in 0..requests {
                spin_for(config.workload.cpu.mean());
            }
            if requests > 0 && !config.workload.sleep.is_zero() {
                let until = Instant::now() + config.workload.sleep.mean() * requests as u32;
                *sleep_until = Some(until);
                return Step::Sleeping(until);
            }
        }
        Step::Yielded
    }

    /// Parses every whole request in the buffer and appends its answer; returns how many.
    fn answer_all(&mut self, echoed: &mut u64) -> u64 {
        let mut answered = 0;
        while self.start < self.end && !self.closing {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut req = httparse::Request::new(&mut headers);
            let head = match req.parse(&self.buf[self.start..self.end]) {
                Ok(httparse::Status::Complete(len)) => len,
                Ok(httparse::Status::Partial) => break,
                Err(_) => {
                    self.fail();
                    break;
                }
            };
            let head_only = req.method == Some("HEAD");
            let mut body = 0usize;
            for h in req.headers.iter() {
                if h.name.eq_ignore_ascii_case("content-length") {
                    match std::str::from_utf8(h.value)
                        .ok()
                        .and_then(|v| v.parse().ok())
                    {
                        Some(n) => body = n,
                        None => self.closing = true,
                    }
                } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                    self.closing = true;
                }
            }
            if self.closing || head + body > self.buf.len() {
                self.fail();
                break;
            }
            if self.end - self.start < head + body {
                break;
            }
            self.start += head + body;
            self.respond(head_only);
            if !head_only {
                *echoed += self.body.len() as u64;
            }
            answered += 1;
        }
        answered
    }

    /// Appends the answer (a HEAD's without its body).
    fn respond(&mut self, head_only: bool) {
        DATE.with(|d| {
            let mut d = d.borrow_mut();
            d.refresh();
            let out = &mut self.out;
            out.extend_from_slice(b"HTTP/1.1 200 OK\r\nServer: runbench\r\nContent-Type: ");
            out.extend_from_slice(self.content_type.as_bytes());
            out.extend_from_slice(b"\r\nContent-Length: ");
            out.extend_from_slice(itoa(self.body.len(), &mut [0u8; 20]));
            out.extend_from_slice(b"\r\nDate: ");
            out.extend_from_slice(d.text.as_bytes());
            out.extend_from_slice(b"\r\n\r\n");
            if !head_only {
                out.extend_from_slice(&self.body);
            }
        });
    }

    /// A request this responder refuses: answer 400 and close once it is written.
    fn fail(&mut self) {
        self.out.extend_from_slice(BAD_REQUEST);
        self.closing = true;
        (self.start, self.end) = (0, 0);
    }
}

fn itoa(mut n: usize, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// The `Date` header's value, formatted again when the second changes.
struct Date {
    second: u64,
    text: String,
}

impl Date {
    fn refresh(&mut self) {
        let now = SystemTime::now();
        let second = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if second != self.second || self.text.is_empty() {
            self.second = second;
            self.text = httpdate::fmt_http_date(now);
        }
    }
}

thread_local! {
    static DATE: RefCell<Date> = const {
        RefCell::new(Date {
            second: 0,
            text: String::new(),
        })
    };
}
