//! HTTP/1.1 on embassy the way its users serve it on a device: picoserve, a `no_std` HTTP server
//! with no heap of its own, over embassy-net's socket. Each connection of the pool is served by
//! `picoserve::Server` with this module's runtime glue (embassy-time's timer; the socket shut by
//! the pool slot, as after an echo), and one route answering GET, HEAD and POST on `/`.
//!
//! The request's work is the ABI crate's [`Handler`] with the executor's primitives, as for the
//! echo and for every other runtime's HTTP; the counters are those `serve_http` keeps (requests,
//! answer body bytes). The answer is TechEmpower's plaintext (`Server`, `Date`, `Content-Type:
//! text/plain`, `Content-Length: 13`, `Hello, World!`) or `response_bytes` of the sized pattern;
//! picoserve writes `Content-Type` and `Content-Length` from the body, leaves a HEAD's body out,
//! keeps the connection alive for HTTP/1.1, answers pipelined requests in order (what follows a
//! request stays in its buffer), and answers a malformed request 400 and closes.

use crate::conn::Ticks;
use embassy_net::tcp::{TcpReader, TcpSocket, TcpWriter};
use embassy_time::Timer as EmbassyTimer;
use picoserve::io::{Read, Write};
use picoserve::response::{Content, IntoResponse, Response, ResponseWriter, StatusCode};
use picoserve::routing::{get_service, RequestHandlerService};
use picoserve::{request::Request, ResponseSent};
use runbench_plugin_abi::{race, Either, Handler, HostHandle, Outcome, StopWait, Workload};
use std::cell::RefCell;
use std::time::SystemTime;

/// picoserve's buffer for one request's head (and a body that fits; a larger one is read
/// through it): the load generator's largest head is 64 KiB of `X-Pad` plus the request line.
pub const HTTP_BUFFER_BYTES: usize = 72 * 1024;

/// No picoserve timeout may end a connection the load keeps busy or idle on purpose (idle
/// connections, think times): the server stops by the host's signal, not by a timer.
const NO_TIMEOUT: picoserve::time::Duration = picoserve::time::Duration::from_secs(24 * 3600);

/// What serves one connection: picoserve on the pool slot's socket, the request's work and the
/// answer. `stopping` resolves at the stop signal: picoserve then finishes the request in
/// flight and ends (`Clean`); `forced` cuts whatever is left.
pub async fn serve(
    socket: &mut TcpSocket<'_>,
    ticks: &Ticks,
    ordinal: u64,
    stopping: &mut StopWait,
    forced: &mut StopWait,
    host: &HostHandle,
    workload: &Workload,
) -> Outcome {
    let answer = Answer::of(workload);
    let ctx = Ctx {
        handler: RefCell::new(Some(Handler::new(ticks, host, workload, ordinal))),
        host,
        answer: &answer,
    };
    let app = picoserve::Router::new().route("/", get_service(Svc(&ctx)).post_service(Svc(&ctx)));
    let config = picoserve::Config::new(picoserve::Timeouts {
        start_read_request: NO_TIMEOUT,
        persistent_start_read_request: NO_TIMEOUT,
        read_request: NO_TIMEOUT,
        write: NO_TIMEOUT,
    })
    .keep_connection_alive();
    let mut buffer = vec![0u8; HTTP_BUFFER_BYTES];
    let server = picoserve::Server::custom(&app, Clock, &config, &mut buffer)
        .with_graceful_shutdown(&mut *stopping, NO_TIMEOUT);
    let outcome = match race(server.serve(Socket(socket)), &mut *forced).await {
        Either::Left(Ok(info)) if info.shutdown_reason.is_some() => Outcome::Clean,
        Either::Left(Ok(_)) => Outcome::PeerClosed,
        // A malformed request (answered 400), or the socket's error.
        Either::Left(Err(_)) => Outcome::IoError,
        Either::Right(()) => Outcome::Cut,
    };
    let left = ctx.handler.borrow_mut().take();
    if let Some(h) = left {
        h.finish().await;
    }
    outcome
}

/// A connection's state for its requests: one request at a time (picoserve reads the next
/// only once an answer is written), so the handler is taken by the request in flight.
struct Ctx<'a> {
    handler: RefCell<Option<Handler<Ticks>>>,
    host: &'a HostHandle,
    answer: &'a Answer,
}

#[derive(Clone, Copy)]
struct Svc<'a>(&'a Ctx<'a>);

impl RequestHandlerService<(), ()> for Svc<'_> {
    async fn call_request_handler_service<R: Read, W: ResponseWriter<Error = R::Error>>(
        &self,
        _state: &(),
        _path_parameters: (),
        request: Request<'_, R>,
        response_writer: W,
    ) -> Result<ResponseSent, W::Error> {
        let ctx = self.0;
        // The body read whole (and dropped): a POST's `request_bytes`.
        let connection = request.body_connection.finalize().await?;
        // The request's work (none for plaintext), counted with the request.
        let taken = ctx.handler.borrow_mut().take();
        if let Some(mut h) = taken {
            h.request().await;
            *ctx.handler.borrow_mut() = Some(h);
        }
        // picoserve leaves a HEAD's body out; it is counted as the other runtimes count it,
        // the body bytes they write, so a HEAD adds none.
        let head = request.parts.method() == "HEAD";
        if !head {
            ctx.host.stats().echoed(ctx.answer.body.len());
        }
        Response::new(StatusCode::OK, ctx.answer)
            .with_header("Server", runbench_plugin_abi::SERVER_NAME)
            // Written into the answer as it goes out: no text kept or allocated per request.
            .with_header("Date", httpdate::HttpDate::from(SystemTime::now()))
            .write_to(connection, response_writer)
            .await
    }
}

/// The answer's body and type, built once per connection.
struct Answer {
    body: Vec<u8>,
    content_type: &'static str,
}

impl Answer {
    fn of(workload: &Workload) -> Answer {
        match workload.response_bytes {
            None => Answer {
                body: runbench_plugin_abi::PLAINTEXT.to_vec(),
                content_type: "text/plain",
            },
            Some(len) => Answer {
                body: (0..len as usize).map(Workload::response_byte).collect(),
                content_type: "application/octet-stream",
            },
        }
    }
}

impl Content for &Answer {
    fn content_type(&self) -> &'static str {
        self.content_type
    }
    fn content_length(&self) -> usize {
        self.body.len()
    }
    async fn write_content<W: Write>(self, mut writer: W) -> Result<(), W::Error> {
        writer.write_all(&self.body).await
    }
}

/// picoserve's runtime marker for this glue.
pub struct EmbassyNet;

/// embassy-time as picoserve's timer.
struct Clock;

impl picoserve::Timer<EmbassyNet> for Clock {
    async fn delay(&self, duration: picoserve::time::Duration) {
        EmbassyTimer::after_millis(duration.as_millis()).await;
    }

    async fn run_with_timeout<F: core::future::Future>(
        &self,
        duration: picoserve::time::Duration,
        future: F,
    ) -> Result<F::Output, picoserve::time::TimeoutError> {
        match race(future, EmbassyTimer::after_millis(duration.as_millis())).await {
            Either::Left(out) => Ok(out),
            Either::Right(()) => Err(picoserve::time::TimeoutError),
        }
    }
}

/// The socket's writing half as picoserve writes answers: embassy-net sends what is written
/// without a flush, and its `flush` waits until the peer has acknowledged every byte, which
/// picoserve's flush after each answer would turn into a wait for the client's delayed ACK
/// (40 ms on Linux: 23 requests/s on one connection, measured) where the echo and every other
/// runtime's HTTP wait for nothing. So a flush here returns at once.
struct Sender<'w>(TcpWriter<'w>);

impl picoserve::io::ErrorType for Sender<'_> {
    type Error = embassy_net::tcp::Error;
}

impl Write for Sender<'_> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.0.write(buf).await
    }

    async fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// The pool slot's socket as picoserve's: split for reading and writing; closing it is left to
/// the slot (a FIN after a clean end, a reset after a cut), as after an echo.
struct Socket<'s, 'a>(&'s mut TcpSocket<'a>);

impl<'a> picoserve::io::Socket<EmbassyNet> for Socket<'_, 'a> {
    type Error = embassy_net::tcp::Error;
    type ReadHalf<'r>
        = TcpReader<'r>
    where
        Self: 'r;
    type WriteHalf<'w>
        = Sender<'w>
    where
        Self: 'w;

    fn split(&mut self) -> (TcpReader<'_>, Sender<'_>) {
        let (r, w) = self.0.split();
        (r, Sender(w))
    }

    async fn abort<T: picoserve::Timer<EmbassyNet>>(
        self,
        _timeouts: &picoserve::Timeouts,
        _timer: &mut T,
    ) -> Result<(), picoserve::Error<Self::Error>> {
        Ok(())
    }

    async fn shutdown<T: picoserve::Timer<EmbassyNet>>(
        self,
        _timeouts: &picoserve::Timeouts,
        _timer: &mut T,
    ) -> Result<(), picoserve::Error<Self::Error>> {
        Ok(())
    }
}
