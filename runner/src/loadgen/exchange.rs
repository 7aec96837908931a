//! The load generator's side of a [`Workload`]: the bytes of each request, how many answer
//! bytes a connection may expect for what it wrote, and whether they are right. The one place
//! that knows the request shape on the client's side.
//!
//! Request bytes are pseudo-random, different per connection, checkable without storing a copy
//! per connection: connection `i` sends `bytes[offset(i)..][..request]` of one shared buffer, and
//! an echo answers with the same bytes, as they arrive. A sized answer
//! ([`Workload::response_bytes`]) comes once per complete request, its byte `pos` being
//! [`Workload::response_byte`]`(pos)`.
//!
//! HTTP/1.1 ([`Protocol::Http1`]): one request built once for every connection (a GET, or a
//! POST with `request_bytes` of body; an `X-Pad` header of `header_bytes`), answered by a
//! response whose body is the plaintext or `response_bytes` of the shared pattern, parsed by
//! [`super::http::Parser`] and its body bytes checked here.

use runbench_plugin_abi::{Protocol, Workload};
use std::net::SocketAddr;

/// Distinct starting offsets; connections sharing one still differ from their neighbours.
const OFFSETS: usize = 251;

pub struct Exchange {
    bytes: Vec<u8>,
    payload: usize,
    /// Bytes of a sized answer; `None`: an echo.
    sized: Option<usize>,
    /// HTTP: the request every connection sends, and the body of a right answer.
    http: Option<(Vec<u8>, Vec<u8>)>,
}

impl Exchange {
    /// The exchange of `workload` (its request size; an unknown size is one byte) with the
    /// server at `target` (HTTP's `Host`).
    pub fn of(workload: &Workload, target: SocketAddr) -> Self {
        if workload.protocol == Protocol::Http1 {
            return Exchange::http(workload, target);
        }
        let mut x = Exchange::new(workload.request_bytes.unwrap_or(1).max(1) as usize);
        if !workload.is_echo() {
            x.sized = workload.response_bytes().map(|n| n.max(1) as usize);
        }
        x
    }

    fn http(workload: &Workload, target: SocketAddr) -> Self {
        let body = workload.request_bytes.unwrap_or(0) as usize;
        let mut request = Vec::with_capacity(128 + body + workload.header_bytes as usize);
        let method = if body > 0 { "POST" } else { "GET" };
        request.extend_from_slice(format!("{method} / HTTP/1.1\r\nHost: {target}\r\n").as_bytes());
        if workload.header_bytes > 0 {
            request.extend_from_slice(b"X-Pad: ");
            request.resize(request.len() + workload.header_bytes as usize, b'p');
            request.extend_from_slice(b"\r\n");
        }
        if body > 0 {
            request.extend_from_slice(format!("Content-Length: {body}\r\n").as_bytes());
        }
        request.extend_from_slice(b"\r\n");
        let pattern = Exchange::new(body.max(1));
        request.extend_from_slice(&pattern.message(0)[..body]);
        let answer = match workload.response_bytes {
            None => runbench_plugin_abi::PLAINTEXT.to_vec(),
            Some(n) => (0..n as usize).map(Workload::response_byte).collect(),
        };
        Exchange {
            bytes: Vec::new(),
            payload: request.len(),
            sized: None,
            http: Some((request, answer)),
        }
    }

    /// Whether requests and answers are HTTP/1.1.
    pub fn is_http(&self) -> bool {
        self.http.is_some()
    }

    /// HTTP: the bytes of `got`, at position `pos` of an answer's body, that differ from the
    /// right body (bytes beyond its end all differ).
    pub fn body_mismatches(&self, pos: u64, got: &[u8]) -> u64 {
        let Some((_, want)) = &self.http else {
            return 0;
        };
        let pos = pos as usize;
        let want = want.get(pos..).unwrap_or(&[]);
        let beyond = got.len().saturating_sub(want.len()) as u64;
        let want = &want[..got.len().min(want.len())];
        let differ = want.iter().zip(got).filter(|(a, b)| a != b).count() as u64;
        differ + beyond
    }

    /// HTTP: body bytes a right answer has.
    pub fn body_len(&self) -> u64 {
        self.http.as_ref().map_or(0, |(_, b)| b.len() as u64)
    }

    fn new(payload: usize) -> Self {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let bytes = (0..payload + OFFSETS)
            .map(|_| {
                // xorshift64: cheap and not a repeating short cycle, so shifted copies differ.
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect();
        Exchange {
            bytes,
            payload,
            sized: None,
            http: None,
        }
    }

    /// The request connection `conn` sends.
    pub fn message(&self, conn: usize) -> &[u8] {
        if let Some((request, _)) = &self.http {
            return request;
        }
        let off = conn % OFFSETS;
        &self.bytes[off..off + self.payload]
    }

    /// Bytes of one complete answer.
    pub fn answer_len(&self) -> usize {
        self.sized.unwrap_or(self.payload)
    }

    /// Answer bytes the server may have sent for `written` whole requests and `write_pos` bytes
    /// of the next (an echo answers bytes as they arrive, a sized answer once its request is
    /// complete).
    pub fn answerable(&self, written: usize, write_pos: usize) -> usize {
        match self.sized {
            Some(answer) => written * answer,
            None => written * self.payload + write_pos,
        }
    }

    /// Bytes of `got` that differ from the expected answer at position `pos` of the answer.
    pub fn mismatches(&self, conn: usize, pos: usize, got: &[u8]) -> u64 {
        if self.sized.is_some() {
            return (got.iter().enumerate())
                .filter(|&(i, &b)| b != Workload::response_byte(pos + i))
                .count() as u64;
        }
        let want = &self.message(conn)[pos..pos + got.len()];
        if want == got {
            return 0;
        }
        want.iter().zip(got).filter(|(a, b)| a != b).count() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbours_differ_and_mismatches_are_counted() {
        let p = Exchange::of(&Workload::echo(64), "127.0.0.1:9".parse().unwrap());
        assert_ne!(p.message(0), p.message(1));
        let msg = p.message(7).to_vec();
        assert_eq!(p.mismatches(7, 0, &msg), 0);
        let mut bad = msg[10..20].to_vec();
        bad[3] ^= 0xff;
        bad[4] ^= 0x01;
        assert_eq!(p.mismatches(7, 10, &bad), 2);
    }

    #[test]
    fn a_sized_answer_is_checked_against_its_pattern_once_the_request_is_whole() {
        let w = Workload {
            response_bytes: Some(1000),
            ..Workload::echo(64)
        };
        let x = Exchange::of(&w, "127.0.0.1:9".parse().unwrap());
        assert_eq!(x.answer_len(), 1000);
        // Half a request written: no answer is due yet; two whole ones: two answers.
        assert_eq!(x.answerable(0, 32), 0);
        assert_eq!(x.answerable(2, 10), 2000);
        let good: Vec<u8> = (500..600).map(Workload::response_byte).collect();
        assert_eq!(x.mismatches(3, 500, &good), 0);
        // The echo's bytes are not a sized answer.
        assert_ne!(x.mismatches(3, 0, &x.message(3)[..10]), 0);
        let mut bad = good.clone();
        bad[7] ^= 0x40;
        assert_eq!(x.mismatches(3, 500, &bad), 1);
        // An answer the size of the request is an echo.
        let same = Workload {
            response_bytes: Some(64),
            ..Workload::echo(64)
        };
        let x = Exchange::of(&same, "127.0.0.1:9".parse().unwrap());
        assert_eq!(x.answerable(1, 5), 69);
    }

    #[test]
    fn http_requests_are_built_once_and_bodies_checked() {
        let target = "127.0.0.1:8080".parse().unwrap();
        let x = Exchange::of(&Workload::http1(), target);
        assert_eq!(
            x.message(0),
            b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"
        );
        assert_eq!(x.message(0), x.message(7));
        assert_eq!(x.body_mismatches(0, b"Hello, World!"), 0);
        assert_eq!(x.body_mismatches(7, b"World!"), 0);
        assert_eq!(x.body_mismatches(0, b"Hello, world!!"), 2);
        let w = Workload {
            request_bytes: Some(5),
            response_bytes: Some(3),
            header_bytes: 4,
            ..Workload::http1()
        };
        let x = Exchange::of(&w, target);
        let text = String::from_utf8_lossy(x.message(0)).into_owned();
        assert!(
            text.starts_with(
                "POST / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nX-Pad: pppp\r\n\
                Content-Length: 5\r\n\r\n"
            ),
            "{text:?}"
        );
        assert_eq!(x.message(0).len(), text.find("\r\n\r\n").unwrap() + 4 + 5);
        assert_eq!(x.body_len(), 3);
    }
}
