//! HTTP/1.1 ([`crate::Protocol::Http1`]) for every runtime, written once: hyper 1's
//! `server::conn::http1` (keep-alive on, pipelined requests answered in order) over whatever
//! I/O adapter the plugin's runtime has ([`crate::Runtime::http_io`]: hyper-util's `TokioIo`
//! for tokio, smol-hyper's `FuturesIo` for futures-io streams, ...), with each request's work
//! done by the same [`Handler`] as the echo's. The answer is TechEmpower's plaintext (200,
//! `Server`, `Date`, `Content-Type: text/plain`, `Content-Length: 13`, `Hello, World!`) or,
//! with [`Workload::response_bytes`], that many bytes of [`Workload::response_byte`]'s pattern.
//!
//! hyper's HTTP/1 server needs no executor and, with the header-read timeout off, no timer: the
//! connection is one future the runtime's connection task awaits, so every runtime runs the
//! same code. hyper adds `Date` itself (cached per second) and `Content-Length` from the body.

use crate::{race, Either, Handler, HostHandle, Outcome, Primitives, Stats, Workload};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE, SERVER};
use hyper::{Request, Response};
use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex};

pub use crate::{PLAINTEXT, SERVER_NAME};

/// What hyper needs of a connection's byte stream: its `rt::Read` and `rt::Write`.
pub trait HttpIo: hyper::rt::Read + hyper::rt::Write + Unpin {}

impl<T: hyper::rt::Read + hyper::rt::Write + Unpin> HttpIo for T {}

/// The I/O of a plugin without an HTTP stack ([`crate::Runtime::http_io`]'s default): there is
/// none, so it cannot be made.
pub enum NoHttp {}

impl hyper::rt::Read for NoHttp {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        _: hyper::rt::ReadBufCursor<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match *self {}
    }
}

impl hyper::rt::Write for NoHttp {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        _: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match *self {}
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match *self {}
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match *self {}
    }
}

/// The answer of every request on one connection, built once.
#[derive(Clone)]
pub struct Answer {
    body: Bytes,
    content_type: HeaderValue,
}

impl Answer {
    pub fn of(workload: &Workload) -> Answer {
        match workload.response_bytes {
            None => Answer {
                body: Bytes::from_static(PLAINTEXT),
                content_type: HeaderValue::from_static("text/plain"),
            },
            Some(len) => Answer {
                body: (0..len as usize).map(Workload::response_byte).collect(),
                content_type: HeaderValue::from_static("application/octet-stream"),
            },
        }
    }

    fn response(&self) -> Response<Full<Bytes>> {
        let mut r = Response::new(Full::new(self.body.clone()));
        let headers = r.headers_mut();
        headers.insert(SERVER, HeaderValue::from_static(SERVER_NAME));
        headers.insert(CONTENT_TYPE, self.content_type.clone());
        r
    }
}

/// Serves one connection as HTTP/1.1 until the peer closes it, an error, or the stop: at the
/// stop signal (`stopping`) hyper's graceful shutdown closes an idle connection at once and
/// one inside a request after its answer (`Clean`); once `forced` resolves whatever is left is
/// cut. Each request's body is read whole, its work done ([`Handler::request`] with the
/// runtime's primitives `rt`), then answered; the answer's body bytes are counted. `ordinal` is
/// the connection's accept ordinal (its draws).
pub async fn serve_http<I: HttpIo, R: Primitives>(
    io: I,
    rt: &R,
    ordinal: u64,
    stopping: impl Future<Output = ()>,
    forced: impl Future<Output = ()>,
    host: &HostHandle,
    workload: &Workload,
) -> Outcome {
    let handler = Handler::new(rt, host, workload, ordinal);
    let has_work = handler.has_work();
    // hyper's HTTP/1 dispatcher runs one request's service future at a time (pipelined ones
    // wait, in order), so the handler is taken by the request in flight and always there.
    let handler = Arc::new(Mutex::new(Some(handler)));
    let answer = Answer::of(workload);
    let service = {
        let (handler, host) = (handler.clone(), host.clone());
        hyper::service::service_fn(move |req: Request<Incoming>| {
            let (handler, host, answer) = (handler.clone(), host.clone(), answer.clone());
            async move {
                let head_only = req.method() == hyper::Method::HEAD;
                let mut body = req.into_body();
                while let Some(frame) = body.frame().await {
                    if frame.is_err() {
                        break;
                    }
                }
                if has_work {
                    let taken = handler.lock().unwrap_or_else(|e| e.into_inner()).take();
                    let mut h = taken.expect("hyper's HTTP/1 serves one request at a time");
                    h.request().await;
                    *handler.lock().unwrap_or_else(|e| e.into_inner()) = Some(h);
                } else {
                    Stats::add(&host.stats().requests, 1);
                }
                // hyper leaves a HEAD's body out.
                if !head_only {
                    host.stats().echoed(answer.body.len());
                }
                Ok::<_, Infallible>(answer.response())
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .keep_alive(true)
        // Answers to pipelined requests leave in one write (hyper's choice for pipelining).
        .pipeline_flush(true)
        // No timer needed: the header-read timeout (30 s by default) is off.
        .header_read_timeout(None);
    let mut conn = pin!(builder.serve_connection(io, service));
    let outcome = match race(conn.as_mut(), stopping).await {
        Either::Left(r) => ended(r),
        Either::Right(()) => {
            conn.as_mut().graceful_shutdown();
            match race(conn.as_mut(), forced).await {
                Either::Left(Ok(())) => Outcome::Clean,
                Either::Left(Err(e)) => ended(Err(e)),
                Either::Right(()) => Outcome::Cut,
            }
        }
    };
    let left = handler.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(h) = left {
        h.finish().await;
    }
    outcome
}

/// How a connection that ended on its own ended: the peer closed it (between requests, or
/// inside one: a client that gave up), or an error (a malformed request hyper answered 400,
/// a socket error).
fn ended(r: hyper::Result<()>) -> Outcome {
    match r {
        Ok(()) => Outcome::PeerClosed,
        Err(e) if e.is_incomplete_message() || e.is_canceled() => Outcome::PeerClosed,
        Err(_) => Outcome::IoError,
    }
}
