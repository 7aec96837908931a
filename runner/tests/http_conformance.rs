//! HTTP/1.1 conformance of every plugin that declares `WORKLOAD_HTTP1`, through the real
//! `runbench serve` child and std TCP clients on loopback, each answer parsed with httparse:
//! valid plaintext answers (200, `Server`, `Date`, `Content-Type: text/plain`,
//! `Content-Length: 13`, `Hello, World!`), keep-alive (many requests, one connection),
//! pipelined requests answered in order (GET and HEAD interleaved: only a GET's answer has a
//! body), a POST with `request_bytes` of body answered with `response_bytes`, a malformed
//! request answered 400 or closed cleanly, and the workload's parts done (and counted) per
//! request. A failing test is named `<runtime>::<case>`.
//!
//! `embassy` (its own TCP stack on a TAP device) serves inside a network namespace each case
//! creates; its clients' sockets are opened from a thread that joined it (needs root, as
//! tests/embassy.rs).

mod common;
mod support;

use common::*;
use runbench::os::netns::TapNamespace;
use runbench_plugin_abi::{Dist, Workload};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

macro_rules! http_conformance {
    ($($module:ident => $runtime:literal;)*) => {$(
        mod $module {
            use super::cases;
            const RUNTIME: &str = $runtime;

            #[test]
            fn plaintext_answers_are_valid() {
                cases::plaintext_answers_are_valid(RUNTIME);
            }
            #[test]
            fn keep_alive_serves_many_requests_on_one_connection() {
                cases::keep_alive_serves_many_requests_on_one_connection(RUNTIME);
            }
            #[test]
            fn pipelined_requests_are_answered_in_order() {
                cases::pipelined_requests_are_answered_in_order(RUNTIME);
            }
            #[test]
            fn post_body_and_sized_answer() {
                cases::post_body_and_sized_answer(RUNTIME);
            }
            #[test]
            fn malformed_request_is_refused() {
                cases::malformed_request_is_refused(RUNTIME);
            }
            #[test]
            fn the_workload_is_done_per_request() {
                cases::the_workload_is_done_per_request(RUNTIME);
            }
        }
    )*};
}

http_conformance! {
    tokio => "tokio";
    tokio_per_core => "tokio-per-core";
    epoll => "epoll";
    smol => "smol";
    async_std => "async-std";
    glommio => "glommio";
    compio => "compio";
    monoio => "monoio";
    kimojio => "kimojio";
    std_threads => "std-threads";
    embassy_executor => "embassy-executor";
    embassy => "embassy";
}

mod cases {
    use super::*;

    const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: runbench\r\n\r\n";
    const HEAD: &[u8] = b"HEAD / HTTP/1.1\r\nHost: runbench\r\n\r\n";

    /// A started server and where its clients connect from. Fields drop in order: the server
    /// is killed before its namespace is deleted.
    pub struct Target {
        server: Server,
        ns: Option<TapNamespace>,
    }

    impl Target {
        /// A client connection: from a thread in the server's namespace where it has one (the
        /// socket stays in that namespace whichever thread uses it).
        fn connect(&self) -> TcpStream {
            let addr = self.server.addr;
            match &self.ns {
                None => connect(addr),
                Some(ns) => {
                    let name = ns.name().to_string();
                    std::thread::scope(|s| {
                        s.spawn(move || {
                            runbench::os::netns::enter(&name).expect("entering the namespace");
                            connect(addr)
                        })
                        .join()
                        .expect("the connecting thread")
                    })
                }
            }
        }

        fn finish(self) -> Finished {
            let Target { server, ns } = self;
            let finished = server.finish();
            drop(ns);
            finished
        }
    }

    fn start(runtime: &str, workload: Workload) -> Target {
        let ns = (runtime == "embassy")
            .then(|| TapNamespace::create().expect("creating the test's network namespace"));
        let server = Server::start(
            runtime,
            Options {
                threads: 2,
                cpus: vec![0, 1],
                workload: Some(workload),
                netns: ns
                    .as_ref()
                    .map(|ns| (ns.name().to_string(), ns.server_addr())),
                ..Options::default()
            },
        );
        Target { server, ns }
    }

    /// One parsed answer: status, headers (lower-case names), body.
    #[derive(Debug)]
    pub struct Answer {
        pub status: u16,
        pub headers: Vec<(String, String)>,
        pub body: Vec<u8>,
    }

    impl Answer {
        pub fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        }
    }

    /// Reads one answer from `stream` (its head, then `Content-Length` bytes unless `head_only`),
    /// leaving what follows in `pending`.
    pub fn read_answer(stream: &mut TcpStream, pending: &mut Vec<u8>, head_only: bool) -> Answer {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut res = httparse::Response::new(&mut headers);
            match res.parse(pending).expect("a valid HTTP/1.1 answer head") {
                httparse::Status::Complete(len) => {
                    let status = res.code.expect("a status");
                    assert_eq!(res.version, Some(1), "HTTP/1.1");
                    let headers: Vec<(String, String)> = res
                        .headers
                        .iter()
                        .map(|h| {
                            let value = String::from_utf8_lossy(h.value).into_owned();
                            (h.name.to_ascii_lowercase(), value)
                        })
                        .collect();
                    let body_len: usize = headers
                        .iter()
                        .find(|(n, _)| n == "content-length")
                        .map(|(_, v)| v.parse().expect("a numeric Content-Length"))
                        .expect("a Content-Length");
                    let body_len = if head_only { 0 } else { body_len };
                    pending.drain(..len);
                    while pending.len() < body_len {
                        fill(stream, pending);
                    }
                    let body = pending.drain(..body_len).collect();
                    return Answer {
                        status,
                        headers,
                        body,
                    };
                }
                httparse::Status::Partial => fill(stream, pending),
            }
        }
    }

    fn fill(stream: &mut TcpStream, pending: &mut Vec<u8>) {
        let mut buf = [0u8; 16 * 1024];
        match stream.read(&mut buf) {
            Ok(0) => panic!("the server closed the connection mid-answer: {pending:?}"),
            Ok(n) => pending.extend_from_slice(&buf[..n]),
            Err(e) => panic!("reading an answer (have {} bytes): {e}", pending.len()),
        }
    }

    fn assert_plaintext(runtime: &str, a: &Answer) {
        assert_eq!(a.status, 200, "{runtime}: {a:?}");
        assert_eq!(a.header("server"), Some("runbench"), "{runtime}: {a:?}");
        assert_eq!(a.header("content-type"), Some("text/plain"), "{runtime}");
        assert_eq!(a.header("content-length"), Some("13"), "{runtime}");
        let date = a.header("date").expect("a Date header");
        httpdate::parse_http_date(date).unwrap_or_else(|e| panic!("{runtime}: Date {date}: {e}"));
        assert_eq!(a.body, b"Hello, World!", "{runtime}");
    }

    pub fn plaintext_answers_are_valid(runtime: &str) {
        let _serial = serial();
        let server = start(runtime, Workload::http1());
        let mut c = server.connect();
        let mut pending = Vec::new();
        c.write_all(GET).unwrap();
        assert_plaintext(runtime, &read_answer(&mut c, &mut pending, false));
        assert!(pending.is_empty(), "{runtime}: bytes beyond the answer");
        drop(c);
        let counts = server.finish().counts;
        assert_eq!(counts.accepted, 1, "{runtime}: {counts:?}");
        assert_eq!(counts.bytes_echoed, 13, "{runtime}: body bytes counted");
    }

    pub fn keep_alive_serves_many_requests_on_one_connection(runtime: &str) {
        let _serial = serial();
        let server = start(runtime, Workload::http1());
        let mut c = server.connect();
        let mut pending = Vec::new();
        for _ in 0..50 {
            c.write_all(GET).unwrap();
            let a = read_answer(&mut c, &mut pending, false);
            assert_plaintext(runtime, &a);
            assert_ne!(a.header("connection"), Some("close"), "{runtime}");
        }
        drop(c);
        let counts = server.finish().counts;
        assert_eq!(counts.accepted, 1, "{runtime}: one connection");
        assert_eq!(counts.bytes_echoed, 50 * 13, "{runtime}: {counts:?}");
        // Closed by the client, or (when the stop came first) by the server between requests.
        let ended_clean = counts.peer_closed + counts.closed_clean;
        let failed = (counts.cut, counts.io_errors);
        assert_eq!((ended_clean, failed), (1, (0, 0)), "{runtime}: {counts:?}");
    }

    pub fn pipelined_requests_are_answered_in_order(runtime: &str) {
        let _serial = serial();
        let server = start(runtime, Workload::http1());
        let mut c = server.connect();
        // 16 at once, in one write: GET, HEAD, GET, GET, HEAD, ... (a HEAD every third).
        let kinds: Vec<bool> = (0..16).map(|i| i % 3 == 1).collect();
        let mut burst = Vec::new();
        for &head in &kinds {
            burst.extend_from_slice(if head { HEAD } else { GET });
        }
        c.write_all(&burst).unwrap();
        let mut pending = Vec::new();
        for (i, &head) in kinds.iter().enumerate() {
            let a = read_answer(&mut c, &mut pending, head);
            assert_eq!(a.status, 200, "{runtime}: answer {i}");
            assert_eq!(a.header("content-length"), Some("13"), "{runtime}: {i}");
            if !head {
                assert_eq!(a.body, b"Hello, World!", "{runtime}: answer {i}");
            }
        }
        // Nothing more: had a HEAD's answer carried a body, or the order been off, the
        // bytes would not have parsed as the answers above, or some would be left.
        c.set_read_timeout(Some(std::time::Duration::from_millis(200)))
            .unwrap();
        let mut extra = [0u8; 64];
        match c.read(&mut extra) {
            Ok(n) => panic!("{runtime}: {n} bytes beyond the 16 answers"),
            Err(e) => assert!(
                matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
                "{runtime}: {e}"
            ),
        }
        assert!(pending.is_empty(), "{runtime}");
    }

    pub fn post_body_and_sized_answer(runtime: &str) {
        let _serial = serial();
        let w = Workload {
            request_bytes: Some(300),
            response_bytes: Some(1000),
            ..Workload::http1()
        };
        let server = start(runtime, w);
        let mut c = server.connect();
        let mut req = b"POST / HTTP/1.1\r\nHost: runbench\r\nContent-Length: 300\r\n\r\n".to_vec();
        req.extend_from_slice(&[7u8; 300]);
        let want: Vec<u8> = (0..1000).map(Workload::response_byte).collect();
        let mut pending = Vec::new();
        for _ in 0..3 {
            // The body split over two writes.
            c.write_all(&req[..100]).unwrap();
            c.write_all(&req[100..]).unwrap();
            let a = read_answer(&mut c, &mut pending, false);
            assert_eq!(a.status, 200, "{runtime}");
            assert_eq!(a.header("content-length"), Some("1000"), "{runtime}");
            assert!(a.body == want, "{runtime}: the sized answer's pattern");
        }
        drop(c);
        let counts = server.finish().counts;
        assert_eq!(counts.bytes_echoed, 3000, "{runtime}: {counts:?}");
    }

    /// The workload's parts apply per HTTP request as per echo: each GET's busy time and its
    /// wait on the runtime's timer, counted by the server (a plugin that answered without the
    /// work would count neither).
    pub fn the_workload_is_done_per_request(runtime: &str) {
        let _serial = serial();
        let w = Workload {
            cpu: Dist::Fixed(Duration::from_micros(200)),
            sleep: Dist::Fixed(Duration::from_millis(2)),
            ..Workload::http1()
        };
        let server = start(runtime, w);
        let mut c = server.connect();
        let mut pending = Vec::new();
        let started = std::time::Instant::now();
        for _ in 0..5 {
            c.write_all(GET).unwrap();
            assert_plaintext(runtime, &read_answer(&mut c, &mut pending, false));
        }
        // Each answer waited for its 2 ms timer at least.
        assert!(started.elapsed() >= Duration::from_millis(10), "{runtime}");
        drop(c);
        let c = server.finish().counts;
        assert_eq!(
            (c.requests, c.spun_ns, c.timers, c.timers_early),
            (5, 5 * 200_000, 5, 0),
            "{runtime}: {c:?}"
        );
    }

    pub fn malformed_request_is_refused(runtime: &str) {
        let _serial = serial();
        let server = start(runtime, Workload::http1());
        let mut c = server.connect();
        c.write_all(b"NOT HTTP AT ALL\x01\x02\r\n\r\n").unwrap();
        let mut got = Vec::new();
        match c.read_to_end(&mut got) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            Err(e) => panic!("{runtime}: the server neither answered nor closed: {e}"),
        }
        if !got.is_empty() {
            let text = String::from_utf8_lossy(&got);
            assert!(
                text.starts_with("HTTP/1.1 400"),
                "{runtime}: answered {text:?}"
            );
        }
        // The server still serves others.
        let mut c = server.connect();
        c.write_all(GET).unwrap();
        assert_plaintext(runtime, &read_answer(&mut c, &mut Vec::new(), false));
    }
}
