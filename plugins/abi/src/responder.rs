//! HTTP/1.1 by hand, without a framework (feature `responder`): the plugins with no async
//! runtime for hyper (epoll's event loops, std-threads' blocking threads) answer with this,
//! written once and free of I/O. It parses whole requests from the bytes a connection has read
//! (httparse, what hyper itself uses; pipelined ones one after another) and appends each one's
//! answer to an output buffer: the same bytes as the hyper plugins' (TechEmpower's plaintext or
//! `response_bytes` of body, with `Server`, `Content-Type`, `Content-Length` and a `Date`
//! formatted once per second per thread; a HEAD's without the body). A request httparse refuses,
//! or one whose body it does not frame (chunked), is answered 400 and the connection is to close.

use crate::Workload;
use std::cell::RefCell;
use std::time::SystemTime;

/// Headers one request may have.
const MAX_HEADERS: usize = 64;
const BAD_REQUEST: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\nServer: runbench\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// What [`Responder::answer`] did with the bytes it was given.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Answered {
    /// Bytes of the input the whole requests took (a partial one is left for later).
    pub consumed: usize,
    /// Requests answered.
    pub requests: u64,
    /// Body bytes among the answers.
    pub body_bytes: u64,
    /// The last answer was a 400: close once `out` is written.
    pub close: bool,
}

/// One server's answers, built from its workload once.
pub struct Responder {
    body: Vec<u8>,
    content_type: &'static str,
}

impl Responder {
    pub fn new(workload: &Workload) -> Self {
        let (body, content_type) = match workload.response_bytes {
            None => (crate::PLAINTEXT.to_vec(), "text/plain"),
            Some(n) => (
                (0..n as usize).map(Workload::response_byte).collect(),
                "application/octet-stream",
            ),
        };
        Responder { body, content_type }
    }

    /// Answers every whole request at the start of `input` into `out`. A request that cannot be
    /// whole within `limit` bytes (the connection's buffer) is refused like a malformed one.
    pub fn answer(&self, input: &[u8], limit: usize, out: &mut Vec<u8>) -> Answered {
        let mut done = Answered::default();
        while done.consumed < input.len() {
            let rest = &input[done.consumed..];
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut req = httparse::Request::new(&mut headers);
            let head = match req.parse(rest) {
                Ok(httparse::Status::Complete(len)) => len,
                Ok(httparse::Status::Partial) if rest.len() < limit => break,
                _ => return refuse(done, out),
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
                        None => return refuse(done, out),
                    }
                } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                    return refuse(done, out);
                }
            }
            if head + body > limit {
                return refuse(done, out);
            }
            if rest.len() < head + body {
                break;
            }
            done.consumed += head + body;
            self.respond(head_only, out);
            done.requests += 1;
            if !head_only {
                done.body_bytes += self.body.len() as u64;
            }
        }
        done
    }

    /// Appends one answer (a HEAD's without its body).
    fn respond(&self, head_only: bool, out: &mut Vec<u8>) {
        DATE.with(|d| {
            let mut d = d.borrow_mut();
            d.refresh();
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
}

/// A request this responder refuses: answered 400, and the connection to close.
fn refuse(mut done: Answered, out: &mut Vec<u8>) -> Answered {
    out.extend_from_slice(BAD_REQUEST);
    done.close = true;
    done
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipelined_requests_split_anywhere_are_answered_once_each() {
        let r = Responder::new(&Workload::http1());
        let one = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        let two: Vec<u8> = [one.as_slice(), one].concat();
        for cut in 0..=two.len() {
            let mut out = Vec::new();
            let first = r.answer(&two[..cut], 4096, &mut out);
            let rest = [&two[first.consumed..cut], &two[cut..]].concat();
            let second = r.answer(&rest, 4096, &mut out);
            assert_eq!(first.requests + second.requests, 2, "cut at {cut}");
            assert_eq!(first.consumed + second.consumed, two.len());
            assert_eq!(out.windows(13).filter(|w| w == b"Hello, World!").count(), 2);
        }
    }

    #[test]
    fn malformed_chunked_and_oversized_requests_are_refused() {
        let r = Responder::new(&Workload::http1());
        for bad in [
            b"NOT HTTP\x01\r\n\r\n".as_slice(),
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 99999\r\n\r\n",
        ] {
            let mut out = Vec::new();
            let a = r.answer(bad, 4096, &mut out);
            assert!(a.close, "{}", String::from_utf8_lossy(bad));
            assert!(out.starts_with(b"HTTP/1.1 400"));
        }
        // A head that cannot fit the buffer.
        let mut out = Vec::new();
        assert!(r.answer(b"GET / HTTP/1.1\r\nX: aaaa", 20, &mut out).close);
    }
}
