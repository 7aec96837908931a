//! One slot of the socket pool: listen, serve the connection that arrives, close it, listen
//! again, until the stop signal.

use crate::{Shared, SOCKET_RX_BYTES, SOCKET_TX_BYTES};
use embassy_net::tcp::TcpSocket;
use embassy_net::Stack;
use embassy_sync::semaphore::Semaphore;
use embassy_time::Timer;
use runbench_plugin_abi::{
    race, spin_for, Either, MessageTracker, Outcome, StopWait, ACCEPT_BACKOFF, ECHO_BUFFER_BYTES,
};
use std::future::Future;

/// How long a closing socket waits for its FIN (or RST) to leave and be acknowledged. The peer
/// is the kernel on the other end of the TAP, which answers in microseconds; the bound only
/// keeps a vanished peer from holding up the shutdown.
const CLOSE_LIMIT: embassy_time::Duration = embassy_time::Duration::from_secs(1);

/// The body of one pool task. Buffers are allocated once per slot and reused by every
/// connection it serves.
pub async fn pool_slot(stack: Stack<'static>, shared: &'static Shared) {
    let mut rx = vec![0u8; SOCKET_RX_BYTES];
    let mut tx = vec![0u8; SOCKET_TX_BYTES];
    let mut buf = vec![0u8; ECHO_BUFFER_BYTES];
    let stop = shared.host.stop();
    let mut stopping = stop.stopping();
    let mut forced = stop.forced();
    let mut first = true;
    while !stop.is_stopping() {
        let mut socket = TcpSocket::new(stack, &mut rx, &mut tx);
        // The TCP_NODELAY of every plugin: each echo leaves at once.
        socket.set_nagle_enabled(false);
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
                Timer::after(to_embassy(ACCEPT_BACKOFF)).await;
                continue;
            }
            Either::Left(Ok(())) => {}
        }
        shared.host.stats().accepted();
        let outcome = connection(&mut socket, &mut buf, shared, &mut stopping, &mut forced).await;
        shared.host.stats().finished(outcome);
    }
    if first {
        // Stopped before this slot ever listened; readiness must not wait for it.
        shared.now_listening();
    }
}

async fn connection(
    socket: &mut TcpSocket<'_>,
    buf: &mut [u8],
    shared: &Shared,
    stopping: &mut StopWait,
    forced: &mut StopWait,
) -> Outcome {
    let config = &shared.config;
    let _permit = match &shared.permits {
        Some(permits) => match race(permits.acquire(1), &mut *stopping).await {
            Either::Left(Ok(p)) => Some(p),
            // The wait queue holds one waiter per pool task, so it is never full; were it
            // so, the connection would end as if the server had stopped.
            Either::Left(Err(_)) | Either::Right(()) => {
                close(socket, forced).await;
                return Outcome::Clean;
            }
        },
        None => None,
    };
    let _serving = shared.host.stats().serving();
    let mut tracker = MessageTracker::new(config.workload.request_bytes);
    loop {
        let read = if tracker.at_boundary() {
            match race(socket.read(buf), &mut *stopping).await {
                Either::Left(r) => r,
                Either::Right(()) => {
                    close(socket, forced).await;
                    return Outcome::Clean;
                }
            }
        } else {
            match race(socket.read(buf), &mut *forced).await {
                Either::Left(r) => r,
                Either::Right(()) => {
                    cut(socket).await;
                    return Outcome::Cut;
                }
            }
        };
        let n = match read {
            Ok(0) => {
                close(socket, forced).await;
                return Outcome::PeerClosed;
            }
            Ok(n) => n,
            Err(_) => return Outcome::IoError,
        };
        for _ in 0..tracker.consumed(n) {
            spin_for(config.workload.cpu);
            if !config.workload.sleep.is_zero() {
                Timer::after(to_embassy(config.workload.sleep)).await;
            }
        }
        let mut sent = 0;
        while sent < n {
            match race(socket.write(&buf[sent..n]), &mut *forced).await {
                Either::Left(Ok(k)) => sent += k,
                Either::Left(Err(_)) => return Outcome::IoError,
                Either::Right(()) => {
                    cut(socket).await;
                    return Outcome::Cut;
                }
            }
        }
        shared.host.stats().echoed(n);
    }
}

/// Sends FIN and waits until it is acknowledged: dropping the socket earlier would take it out
/// of the stack with the FIN unsent. Bounded by the grace deadline and [`CLOSE_LIMIT`].
async fn close(socket: &mut TcpSocket<'_>, forced: &mut StopWait) {
    socket.close();
    let flushed = bounded(socket.flush(), race(forced, Timer::after(CLOSE_LIMIT))).await;
    if !flushed {
        cut(socket).await;
    }
}

/// Resets the connection and waits until the RST has left.
async fn cut(socket: &mut TcpSocket<'_>) {
    socket.abort();
    bounded(socket.flush(), Timer::after(CLOSE_LIMIT)).await;
}

/// Runs `fut` until it finishes (true) or `limit` fires (false).
async fn bounded<T>(fut: impl Future<Output = T>, limit: impl Future) -> bool {
    matches!(race(fut, limit).await, Either::Left(_))
}

fn to_embassy(d: std::time::Duration) -> embassy_time::Duration {
    // Round up to the 1 µs tick, so a requested delay is never shortened to zero.
    embassy_time::Duration::from_nanos(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}
