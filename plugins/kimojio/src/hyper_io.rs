//! hyper's `rt::Read` and `rt::Write` over kimojio's io_uring reads and writes.
//!
//! kimojio has no hyper layer (nor tokio or futures-io traits) to put under hyper: its I/O is
//! completion-based, an `operations::read` or `write` future that borrows its buffer until the
//! kernel is done with it. hyper's traits are poll-based and lend a buffer only for one poll.
//! So, as monoio-compat does for monoio, each operation owns its buffer: a boxed future that
//! moves a `Vec` in, lends it to kimojio's operation and hands it back with the result. Nothing
//! is unsafe: a future dropped mid-operation drops kimojio's, which cancels it and waits for
//! the kernel to let go of the buffer before the buffer is freed.
//!
//! Reads: one read of up to [`READ_BUFFER`] bytes at a time, copied into hyper's buffer (what
//! does not fit is kept for the next poll). Writes are taken whole (copied) and written in the
//! background; the next write, `poll_flush` or `poll_shutdown` waits for that one first, so at
//! most one is in flight and its error is the next call's.

use kimojio::{operations, Errno, OwnedFd};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{ready, Context, Poll};

/// The most one read takes from the socket (hyper's own read buffer starts at 8 KiB).
const READ_BUFFER: usize = 16 * 1024;

/// An operation with the buffer it owns, handed back when it completes.
type Op<T> = Pin<Box<dyn Future<Output = (Result<T, Errno>, Vec<u8>)>>>;

/// A connection as hyper sees it.
pub struct HyperIo {
    fd: Rc<OwnedFd>,
    /// Bytes read and not yet given to hyper: `buffer[taken..]`.
    read: Reading,
    /// The write in flight, if any, or the buffer the next one reuses.
    write: Writing,
    /// The write side's shutdown was started (it is the write in flight until done).
    shut: bool,
}

enum Reading {
    Ready { buffer: Vec<u8>, taken: usize },
    Busy(Op<usize>),
}

enum Writing {
    Idle(Vec<u8>),
    Busy(Op<()>),
}

fn io_error(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e.raw_os_error())
}

impl HyperIo {
    pub fn new(fd: OwnedFd) -> HyperIo {
        HyperIo {
            fd: Rc::new(fd),
            read: Reading::Ready {
                buffer: Vec::new(),
                taken: 0,
            },
            write: Writing::Idle(Vec::new()),
            shut: false,
        }
    }

    /// Waits for the write in flight; its buffer is kept for the next.
    fn poll_written(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Writing::Busy(op) = &mut self.write {
            let (result, buffer) = ready!(op.as_mut().poll(cx));
            self.write = Writing::Idle(buffer);
            result.map_err(io_error)?;
        }
        Poll::Ready(Ok(()))
    }
}

/// Writes all of `buffer`, however many writes it takes.
async fn write_all(fd: Rc<OwnedFd>, buffer: Vec<u8>) -> (Result<(), Errno>, Vec<u8>) {
    let mut done = 0;
    while done < buffer.len() {
        match operations::write(&*fd, &buffer[done..]).await {
            Ok(0) => return (Err(Errno::PIPE), buffer),
            Ok(n) => done += n,
            Err(e) => return (Err(e), buffer),
        }
    }
    (Ok(()), buffer)
}

impl hyper::rt::Read for HyperIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut cursor: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            match &mut this.read {
                Reading::Ready { buffer, taken } if *taken < buffer.len() => {
                    let n = cursor.remaining().min(buffer.len() - *taken);
                    cursor.put_slice(&buffer[*taken..*taken + n]);
                    *taken += n;
                    return Poll::Ready(Ok(()));
                }
                Reading::Ready { buffer, .. } => {
                    let mut buffer = std::mem::take(buffer);
                    buffer.resize(READ_BUFFER, 0);
                    let fd = this.fd.clone();
                    this.read = Reading::Busy(Box::pin(async move {
                        let result = operations::read(&*fd, &mut buffer[..]).await;
                        (result, buffer)
                    }));
                }
                Reading::Busy(op) => {
                    let (result, mut buffer) = ready!(op.as_mut().poll(cx));
                    let n = *result.as_ref().unwrap_or(&0);
                    buffer.truncate(n);
                    this.read = Reading::Ready { buffer, taken: 0 };
                    match result {
                        // The end of the stream: nothing put in the cursor says so to hyper.
                        Ok(0) => return Poll::Ready(Ok(())),
                        Ok(_) => {}
                        Err(e) => return Poll::Ready(Err(io_error(e))),
                    }
                }
            }
        }
    }
}

impl hyper::rt::Write for HyperIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_written(cx))?;
        let Writing::Idle(buffer) = &mut this.write else {
            unreachable!("poll_written leaves no write in flight");
        };
        let mut buffer = std::mem::take(buffer);
        buffer.clear();
        buffer.extend_from_slice(data);
        let mut op: Op<()> = Box::pin(write_all(this.fd.clone(), buffer));
        // Submits it; a write that completes at once leaves nothing in flight.
        match op.as_mut().poll(cx) {
            Poll::Ready((result, buffer)) => {
                this.write = Writing::Idle(buffer);
                result.map_err(io_error)?;
            }
            Poll::Pending => this.write = Writing::Busy(op),
        }
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_written(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.shut {
            ready!(this.poll_written(cx))?;
            let Writing::Idle(buffer) = &mut this.write else {
                unreachable!("poll_written leaves no write in flight");
            };
            let (fd, buffer) = (this.fd.clone(), std::mem::take(buffer));
            // The shutdown goes in the write's place, so waiting for it is waiting for a write.
            this.write = Writing::Busy(Box::pin(async move {
                (operations::shutdown(&*fd, libc::SHUT_WR).await, buffer)
            }));
            this.shut = true;
        }
        this.poll_written(cx)
    }
}
