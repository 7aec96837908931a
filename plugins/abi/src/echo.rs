//! Runtime-independent pieces of the echo protocol that every plugin shares.

use crate::{race, Config, Either, HostHandle, StopSource};
use futures_io::{AsyncRead, AsyncWrite};
use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::time::{Duration, Instant};

/// How a connection ended; each maps to one [`crate::ServeReport`] counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    PeerClosed,
    Clean,
    Cut,
    IoError,
}

/// Tracks where a connection is within the fixed-size messages of the load, so the server knows
/// whether a stop signal finds it between messages (close now) or inside one (finish first).
#[derive(Clone, Debug)]
pub struct MessageTracker {
    message_bytes: Option<u64>,
    pos: u64,
}

impl MessageTracker {
    pub fn new(message_bytes: Option<u64>) -> Self {
        MessageTracker {
            message_bytes,
            pos: 0,
        }
    }

    /// True when every byte read so far belongs to a complete message.
    pub fn at_boundary(&self) -> bool {
        self.pos == 0
    }

    /// Accounts for `n` bytes read; returns how many messages started in them (the number of
    /// times per-message work must be done).
    pub fn consumed(&mut self, n: usize) -> u64 {
        let n = n as u64;
        match self.message_bytes {
            None => u64::from(n > 0),
            Some(size) => {
                let starts = if self.pos == 0 {
                    n.div_ceil(size)
                } else {
                    (n + self.pos).div_ceil(size) - 1
                };
                self.pos = (self.pos + n) % size;
                starts
            }
        }
    }
}

/// Busy-spins the calling thread for `d` (CPU work per request, not yielding to the runtime).
pub fn spin_for(d: Duration) {
    if d.is_zero() {
        return;
    }
    let start = Instant::now();
    while start.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// One accepted connection under the contract: wait for a `max_connections` slot (`acquire`;
/// a connection still waiting when the stop signal comes, or whose wait fails, closes clean),
/// count it as served while `serve` runs, then count how it ended.
pub async fn serve_connection<P, E, A, S>(host: &HostHandle, acquire: Option<A>, serve: S)
where
    A: Future<Output = Result<P, E>>,
    S: Future<Output = Outcome>,
{
    serve_connection_with(host, host.stop(), acquire, serve).await;
}

/// [`serve_connection`] with the stop signal taken from `stop` (see [`StopSource`]).
pub async fn serve_connection_with<P, E, A, S>(
    host: &HostHandle,
    stop: &impl StopSource,
    acquire: Option<A>,
    serve: S,
) where
    A: Future<Output = Result<P, E>>,
    S: Future<Output = Outcome>,
{
    let _permit = match acquire {
        Some(wait) => match race(wait, stop.stopping()).await {
            Either::Left(Ok(permit)) => Some(permit),
            _ => {
                host.stats().finished(Outcome::Clean);
                return;
            }
        },
        None => None,
    };
    let _serving = host.stats().serving();
    let outcome = serve.await;
    host.stats().finished(outcome);
}

/// A connection's byte stream as the echo loop needs it, for any runtime. The buffer is owned
/// and handed back with each result, so completion-based runtimes (monoio, compio, kimojio) can
/// lend it to the kernel while readiness-based ones read into it in place.
pub trait EchoStream {
    /// Reads what has arrived (at most the buffer's capacity); the first `n` bytes of the buffer
    /// that comes back are the data.
    fn read(&mut self, buf: Vec<u8>) -> impl Future<Output = (io::Result<usize>, Vec<u8>)>;
    /// Writes the buffer's first `n` bytes, all of them.
    fn write_all(
        &mut self,
        buf: Vec<u8>,
        n: usize,
    ) -> impl Future<Output = (io::Result<()>, Vec<u8>)>;
    /// The runtime's own timer (the scenario's per-message `sleep`).
    fn sleep(&self, d: Duration) -> impl Future<Output = ()>;
}

/// The echo loop of the contract (see [`crate::Plugin::serve`]), the one every plugin on an async
/// runtime runs: read, do the per-message `work` and `sleep`, write back, and stop at a message
/// boundary on the stop signal or anywhere once the grace period is over. Counts echoed bytes.
pub async fn echo_stream<S: EchoStream>(
    stream: &mut S,
    host: &HostHandle,
    config: &Config,
) -> Outcome {
    echo_stream_with(stream, host, host.stop(), config).await
}

/// [`echo_stream`] with the stop signal taken from `stop` (see [`StopSource`]).
pub async fn echo_stream_with<S: EchoStream>(
    stream: &mut S,
    host: &HostHandle,
    stop: &impl StopSource,
    config: &Config,
) -> Outcome {
    // Zeroed by the allocator (calloc): pages no read reaches stay out of RSS.
    let mut buf = vec![0u8; crate::ECHO_BUFFER_BYTES];
    let mut tracker = MessageTracker::new(config.workload.request_bytes);
    let mut stopping = stop.stopping();
    let mut forced = stop.forced();
    loop {
        let (read, returned) = if tracker.at_boundary() {
            match race(stream.read(buf), &mut stopping).await {
                Either::Left(r) => r,
                Either::Right(()) => return Outcome::Clean,
            }
        } else {
            match race(stream.read(buf), &mut forced).await {
                Either::Left(r) => r,
                Either::Right(()) => return Outcome::Cut,
            }
        };
        buf = returned;
        let n = match read {
            Ok(0) => return Outcome::PeerClosed,
            Ok(n) => n,
            Err(_) => return Outcome::IoError,
        };
        for _ in 0..tracker.consumed(n) {
            spin_for(config.workload.cpu);
            if !config.workload.sleep.is_zero() {
                stream.sleep(config.workload.sleep).await;
            }
        }
        match race(stream.write_all(buf, n), &mut forced).await {
            Either::Left((Ok(()), returned)) => {
                buf = returned;
                host.stats().echoed(n);
            }
            Either::Left((Err(_), _)) => return Outcome::IoError,
            Either::Right(()) => return Outcome::Cut,
        }
    }
}

/// [`echo_stream`] for any stream with the `futures-io` traits (async-std, smol/async-io,
/// glommio, embassy-executor's async-io), with `sleep` the runtime's timer.
pub async fn echo_futures_io<S, Sleep, Fut>(
    stream: &mut S,
    host: &HostHandle,
    config: &Config,
    sleep: Sleep,
) -> Outcome
where
    S: AsyncRead + AsyncWrite + Unpin,
    Sleep: Fn(Duration) -> Fut,
    Fut: Future<Output = ()>,
{
    echo_stream(&mut FuturesIo { stream, sleep }, host, config).await
}

struct FuturesIo<'a, S, Sleep> {
    stream: &'a mut S,
    sleep: Sleep,
}

impl<S, Sleep, Fut> EchoStream for FuturesIo<'_, S, Sleep>
where
    S: AsyncRead + AsyncWrite + Unpin,
    Sleep: Fn(Duration) -> Fut,
    Fut: Future<Output = ()>,
{
    async fn read(&mut self, mut buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        let stream = &mut *self.stream;
        let r = poll_fn(|cx| Pin::new(&mut *stream).poll_read(cx, &mut buf)).await;
        (r, buf)
    }

    async fn write_all(&mut self, buf: Vec<u8>, n: usize) -> (io::Result<()>, Vec<u8>) {
        let mut data = &buf[..n];
        let stream = &mut *self.stream;
        while !data.is_empty() {
            match poll_fn(|cx| Pin::new(&mut *stream).poll_write(cx, data)).await {
                Ok(0) => return (Err(io::ErrorKind::WriteZero.into()), buf),
                Ok(written) => data = &data[written..],
                Err(e) => return (Err(e), buf),
            }
        }
        (Ok(()), buf)
    }

    fn sleep(&self, d: Duration) -> impl Future<Output = ()> {
        (self.sleep)(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracker_counts_message_starts_across_split_reads() {
        let mut t = MessageTracker::new(Some(64));
        assert_eq!(t.consumed(10), 1);
        assert!(!t.at_boundary());
        assert_eq!(t.consumed(54), 0);
        assert!(t.at_boundary());
        assert_eq!(t.consumed(128), 2);
        assert_eq!(t.consumed(70), 2);
        assert_eq!(t.consumed(58), 0);
        assert!(t.at_boundary());
    }

    #[test]
    fn unknown_size_treats_each_read_as_a_message() {
        let mut t = MessageTracker::new(None);
        assert_eq!(t.consumed(5), 1);
        assert!(t.at_boundary());
    }
}
