//! One slot of the socket pool: listen, serve the connection that arrives, close it, listen
//! again, until the stop signal.

use crate::{http, jobs, Shared, SOCKET_RX_BYTES, SOCKET_TX_BYTES};
use embassy_executor::Spawner;
use embassy_net::tcp::TcpSocket;
use embassy_net::Stack;
use embassy_sync::semaphore::Semaphore;
use embassy_time::Timer as EmbassyTimer;
use runbench_plugin_abi::{
    echo_stream, race, serve_connection, EchoStream, Either, Job, Outcome, Primitives, Protocol,
    StopWait, Timer, ACCEPT_BACKOFF,
};
use std::future::Future;
use std::io;
use std::time::Duration;

/// How long a closing socket waits for its FIN (or RST) to leave and be acknowledged. The peer
/// is the kernel on the other end of the TAP, which answers in microseconds; the bound only
/// keeps a vanished peer from holding up the shutdown.
const CLOSE_LIMIT: embassy_time::Duration = embassy_time::Duration::from_secs(1);

/// The body of one pool task. The socket's buffers are allocated once per slot and reused by
/// every connection it serves.
pub async fn pool_slot(stack: Stack<'static>, shared: &'static Shared, spawner: Spawner) {
    let ticks = Ticks { spawner, shared };
    let mut rx = vec![0u8; SOCKET_RX_BYTES];
    let mut tx = vec![0u8; SOCKET_TX_BYTES];
    let stop = shared.host.stop();
    let mut stopping = stop.stopping();
    let mut forced = stop.forced();
    let mut first = true;
    while !stop.is_stopping() {
        let mut socket = TcpSocket::new(stack, &mut rx, &mut tx);
        let announce = std::mem::replace(&mut first, false);
        // `race` polls `accept` first, so the socket is listening before `announce` runs.
        let accepted = race(socket.accept(shared.port), async {
            if announce {
                shared.now_listening();
            }
            (&mut stopping).await
        })
        .await;
        match accepted {
            // Stop accepting: dropping the socket takes it out of the stack.
            Either::Right(()) => break,
            Either::Left(Err(e)) => {
                shared.host.stats().accept_error();
                shared.host.warn(&format!("accept failed: {e:?}"));
                ticks.sleep(ACCEPT_BACKOFF).await;
                continue;
            }
            Either::Left(Ok(())) => {}
        }
        let ordinal = shared.host.stats().accepted();
        connection(&mut socket, ticks, ordinal, &mut stopping, &mut forced).await;
    }
    if first {
        // Stopped before this slot ever listened; readiness must not wait for it.
        shared.now_listening();
    }
}

/// Serves one connection with the ABI crate's shared pieces (the permit and outcome counting of
/// `serve_connection`, the echo loop of `echo_stream`) or, for HTTP/1.1, with picoserve
/// ([`http::serve`]), then closes the socket as its outcome says: a FIN after a clean end, a
/// reset after a cut.
async fn connection(
    socket: &mut TcpSocket<'_>,
    ticks: Ticks,
    ordinal: u64,
    stopping: &mut StopWait,
    forced: &mut StopWait,
) {
    let shared = ticks.shared;
    let host = &shared.host;
    // The wait queue holds one waiter per pool task, so it is never full; were it so, the
    // connection would end as if the server had stopped.
    let acquire = (shared.permits.as_ref()).map(|permits| async { permits.acquire(1).await.ok() });
    let workload = &shared.config.workload;
    let mut stream = Socket(&mut *socket);
    let _ = stream.set_nodelay();
    let outcome = if workload.protocol == Protocol::Http1 {
        // Boxed: picoserve's future is deep and large, and the pool's task storage is static.
        let http = Box::pin(http::serve(
            &mut *socket,
            &ticks,
            ordinal,
            stopping,
            &mut *forced,
            host,
            workload,
        ));
        serve_connection(host, host.stop().stopping(), acquire, http).await
    } else {
        let echo = echo_stream(
            &mut stream,
            &ticks,
            ordinal,
            stopping,
            &mut *forced,
            host,
            workload,
        );
        serve_connection(host, host.stop().stopping(), acquire, echo).await
    };
    match outcome {
        Outcome::Clean | Outcome::PeerClosed => close(socket, forced).await,
        Outcome::Cut => cut(socket).await,
        // A malformed HTTP request was answered 400: that answer leaves before the FIN. (On a
        // socket that failed there is nothing left to send, and closing it returns at once.)
        Outcome::IoError if workload.protocol == Protocol::Http1 => close(socket, forced).await,
        Outcome::IoError => {}
    }
}

/// An embassy-net socket as the shared echo loop reads and writes it.
struct Socket<'s, 'a>(&'s mut TcpSocket<'a>);

impl EchoStream for Socket<'_, '_> {
    async fn read(&mut self, mut buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        let read = self.0.read(&mut buf).await;
        (read.map_err(|e| io::Error::other(format!("{e:?}"))), buf)
    }
    async fn write_all(&mut self, buf: Vec<u8>, n: usize) -> (io::Result<()>, Vec<u8>) {
        let mut sent = 0;
        while sent < n {
            match self.0.write(&buf[sent..n]).await {
                Ok(0) => return (Err(io::ErrorKind::WriteZero.into()), buf),
                Ok(k) => sent += k,
                Err(e) => return (Err(io::Error::other(format!("{e:?}"))), buf),
            }
        }
        (Ok(()), buf)
    }
    /// The TCP_NODELAY of every plugin: Nagle's algorithm off, so each echo leaves at once.
    fn set_nodelay(&mut self) -> io::Result<()> {
        self.0.set_nagle_enabled(false);
        Ok(())
    }
}

/// The executor's primitives for the shared echo loop: embassy-time's timer (the per-request
/// `sleep` and the accept back-off), and fan-out tasks and hop relays spawned into the static
/// job pool (see the crate docs).
#[derive(Clone, Copy)]
pub struct Ticks {
    spawner: Spawner,
    shared: &'static Shared,
}

/// Fan-out tasks and hop relays from the static job pool through the spawner, hops over
/// embassy-sync channels; no blocking pool (see the crate docs).
impl Primitives for Ticks {
    type Channel = jobs::Chan;

    fn spawn_job(&self, job: Job<Self>) -> impl Future<Output = ()> {
        let refused = &self.shared.jobs_refused;
        jobs::spawn(|done| crate::job_task(job, done), self.spawner, refused)
    }
}

impl Timer for Ticks {
    fn sleep(&self, d: Duration) -> impl Future<Output = ()> {
        EmbassyTimer::after(to_embassy(d))
    }
}

/// Sends FIN and waits until it is acknowledged: dropping the socket earlier would take it out
/// of the stack with the FIN unsent. Bounded by the grace deadline and [`CLOSE_LIMIT`].
async fn close(socket: &mut TcpSocket<'_>, forced: &mut StopWait) {
    socket.close();
    let flushed = bounded(
        socket.flush(),
        race(forced, EmbassyTimer::after(CLOSE_LIMIT)),
    )
    .await;
    if !flushed {
        cut(socket).await;
    }
}

/// Resets the connection and waits until the RST has left.
async fn cut(socket: &mut TcpSocket<'_>) {
    socket.abort();
    bounded(socket.flush(), EmbassyTimer::after(CLOSE_LIMIT)).await;
}

/// Runs `fut` until it finishes (true) or `limit` fires (false).
async fn bounded<T>(fut: impl Future<Output = T>, limit: impl Future) -> bool {
    matches!(race(fut, limit).await, Either::Left(_))
}

fn to_embassy(d: std::time::Duration) -> embassy_time::Duration {
    // Round up to the 1 µs tick, so a requested delay is never shortened to zero.
    embassy_time::Duration::from_nanos(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}
