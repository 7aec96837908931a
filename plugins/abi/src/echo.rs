//! Runtime-independent pieces of the echo protocol that every plugin shares.

use crate::{race, Either, Handler, HostHandle, Primitives, Workload};
use futures_io::{AsyncRead, AsyncWrite};
use std::future::{poll_fn, Future};
use std::io;
use std::os::fd::AsRawFd;
use std::pin::{pin, Pin};
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

    /// Accounts for `n` bytes read; returns how many messages they completed (for answers
    /// that go out once a request is whole).
    pub fn completed(&mut self, n: usize) -> u64 {
        let n = n as u64;
        match self.message_bytes {
            None => u64::from(n > 0),
            Some(size) => {
                let done = (self.pos + n) / size;
                self.pos = (self.pos + n) % size;
                done
            }
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

/// One accepted connection under the contract: wait for a `max_connections` slot (`acquire`,
/// `None` when the server has no limit; a connection still waiting when the stop signal comes,
/// or whose wait fails, closes clean), count it as served while `serve` runs, then count how it
/// ended, and return that. `stopping` is the stop signal ([`crate::StopToken::stopping`]).
pub async fn serve_connection<P, A, S>(
    host: &HostHandle,
    stopping: impl Future<Output = ()>,
    acquire: Option<A>,
    serve: S,
) -> Outcome
where
    A: Future<Output = Option<P>>,
    S: Future<Output = Outcome>,
{
    let _permit = match acquire {
        Some(wait) => match race(wait, stopping).await {
            Either::Left(Some(permit)) => Some(permit),
            _ => {
                host.stats().finished(Outcome::Clean);
                return Outcome::Clean;
            }
        },
        None => None,
    };
    let _serving = host.stats().serving();
    let outcome = serve.await;
    host.stats().finished(outcome);
    outcome
}

/// A connection's byte stream as the echo loop needs it, for any runtime (hyper's `rt::Read`
/// and `rt::Write` in one). The buffer is owned and handed back with each result, so
/// completion-based runtimes (monoio, compio, kimojio) can lend it to the kernel while
/// readiness-based ones read into it in place. Streams with the `futures-io` traits have it
/// through [`FuturesIo`].
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
    /// Turns TCP_NODELAY on, so each answer leaves at once (the contract's).
    fn set_nodelay(&mut self) -> io::Result<()>;
}

/// The echo loop of the contract (see [`crate::Plugin::serve`]), the one every plugin on an async
/// runtime runs: read, do each request's work ([`Handler::request`] with the runtime's
/// primitives `rt`), answer, and stop at a message boundary once `stopping` resolves (the stop
/// signal) or anywhere once `forced` does (the grace period is over). An echo answers the bytes
/// as they arrive (the work done once per request started); a sized answer
/// ([`Workload::response_bytes`]) goes out once per complete request. Counts answer bytes.
/// `ordinal` is the connection's accept ordinal (see [`crate::Stats::accepted`]).
pub async fn echo_stream<S: EchoStream, R: Primitives>(
    stream: &mut S,
    rt: &R,
    ordinal: u64,
    stopping: impl Future<Output = ()>,
    forced: impl Future<Output = ()>,
    host: &HostHandle,
    workload: &Workload,
) -> Outcome {
    let mut handler = Handler::new(rt, host, workload, ordinal);
    let outcome = answer_stream(stream, &mut handler, stopping, forced, host, workload).await;
    handler.finish().await;
    outcome
}

async fn answer_stream<S: EchoStream, R: Primitives>(
    stream: &mut S,
    handler: &mut Handler<R>,
    stopping: impl Future<Output = ()>,
    forced: impl Future<Output = ()>,
    host: &HostHandle,
    workload: &Workload,
) -> Outcome {
    let (mut stopping, mut forced) = (pin!(stopping), pin!(forced));
    // Zeroed by the allocator (calloc): pages no read reaches stay out of RSS.
    let mut buf = vec![0u8; crate::ECHO_BUFFER_BYTES];
    let sized = (!workload.is_echo()).then(|| SizedAnswer::new(workload));
    let mut answer = Vec::new();
    let mut tracker = MessageTracker::new(workload.request_bytes);
    let has_work = handler.has_work();
    loop {
        let (read, returned) = if tracker.at_boundary() {
            match race(stream.read(buf), stopping.as_mut()).await {
                Either::Left(r) => r,
                Either::Right(()) => return Outcome::Clean,
            }
        } else {
            match race(stream.read(buf), forced.as_mut()).await {
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
        let requests = match &sized {
            None => tracker.consumed(n),
            Some(_) => tracker.completed(n),
        };
        if has_work {
            for _ in 0..requests {
                handler.request().await;
            }
        } else if requests > 0 {
            crate::Stats::add(&host.stats().requests, requests);
        }
        let written = match &sized {
            None => {
                let r = race(stream.write_all(buf, n), forced.as_mut()).await;
                match r {
                    Either::Left((r, returned)) => {
                        buf = returned;
                        r.map(|()| n)
                    }
                    Either::Right(()) => return Outcome::Cut,
                }
            }
            Some(_) if requests == 0 => continue,
            Some(s) => {
                let len = s.fill(&mut answer, requests);
                let r = race(stream.write_all(answer, len), forced.as_mut()).await;
                match r {
                    Either::Left((r, returned)) => {
                        answer = returned;
                        r.map(|()| len)
                    }
                    Either::Right(()) => return Outcome::Cut,
                }
            }
        };
        match written {
            Ok(len) => host.stats().echoed(len),
            Err(_) => return Outcome::IoError,
        }
    }
}

/// The bytes of sized answers ([`Workload::response_byte`]), built into a reused buffer.
pub struct SizedAnswer {
    one: Vec<u8>,
}

impl SizedAnswer {
    pub fn new(workload: &Workload) -> Self {
        let len = workload.response_bytes().unwrap_or(0) as usize;
        SizedAnswer {
            one: (0..len).map(Workload::response_byte).collect(),
        }
    }

    /// Fills `out` with `requests` answers; returns their length.
    pub fn fill(&self, out: &mut Vec<u8>, requests: u64) -> usize {
        out.clear();
        for _ in 0..requests {
            out.extend_from_slice(&self.one);
        }
        out.len()
    }
}

/// [`EchoStream`] for any socket with the `futures-io` traits (async-std, smol/async-io,
/// glommio, tokio through `tokio-util`'s `compat`).
pub struct FuturesIo<S>(pub S);

impl<S> EchoStream for FuturesIo<S>
where
    S: AsyncRead + AsyncWrite + AsRawFd + Unpin,
{
    async fn read(&mut self, mut buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        let stream = &mut self.0;
        let r = poll_fn(|cx| Pin::new(&mut *stream).poll_read(cx, &mut buf)).await;
        (r, buf)
    }

    async fn write_all(&mut self, buf: Vec<u8>, n: usize) -> (io::Result<()>, Vec<u8>) {
        let mut data = &buf[..n];
        let stream = &mut self.0;
        while !data.is_empty() {
            match poll_fn(|cx| Pin::new(&mut *stream).poll_write(cx, data)).await {
                Ok(0) => return (Err(io::ErrorKind::WriteZero.into()), buf),
                Ok(written) => data = &data[written..],
                Err(e) => return (Err(e), buf),
            }
        }
        (Ok(()), buf)
    }

    fn set_nodelay(&mut self) -> io::Result<()> {
        crate::os::set_nodelay(&self.0)
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
    fn tracker_counts_completed_messages_across_split_reads() {
        let mut t = MessageTracker::new(Some(64));
        assert_eq!(t.completed(10), 0);
        assert_eq!(t.completed(54), 1);
        assert_eq!(t.completed(128 + 6), 2);
        assert_eq!(t.completed(58), 1);
        assert!(t.at_boundary());
    }

    #[test]
    fn unknown_size_treats_each_read_as_a_message() {
        let mut t = MessageTracker::new(None);
        assert_eq!(t.consumed(5), 1);
        assert!(t.at_boundary());
    }
}
