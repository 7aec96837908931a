//! runbench plugin for kimojio (Microsoft's thread-per-core io_uring runtime): one
//! `kimojio::Runtime` per server CPU, each with its own SO_REUSEPORT listener, accepting,
//! reading and writing through io_uring (`operations::accept`, `read`, `write`), one
//! `spawn_task`ed task per connection.
//!
//! Threads: exactly `threads` runtime threads (`kimojio-<i>`); the calling thread only joins.
//! kimojio starts no helper threads (io_uring may start kernel `iou-wrk` workers for operations
//! it cannot complete inline; none show up for socket I/O here).
//!
//! HTTP/1.1: the ABI crate's hyper server over [`hyper_io`], this crate's adapter from
//! kimojio's completion-based reads and writes to hyper's poll-based traits (kimojio has none).
//!
//! Workload parts: `spawn_task` for fan-out and the hops' relays, kimojio's timer and its
//! runtime-local `async_channel` for hops. No `blocking`: kimojio has no blocking pool (its
//! answer to blocking work is io_uring operations and other runtimes), so the header leaves the
//! bit off and the host skips such a row with that reason rather than run it on a pool kimojio
//! does not have.
//!
//! I/O driver: io_uring only; kimojio has no fallback. It needs Linux 5.15 or later and an
//! io_uring that is not disabled (`sysctl kernel.io_uring_disabled`, container seccomp
//! profiles); without it the runtime cannot be built and `serve` fails saying so. Built
//! without kimojio's default `tls` feature, so OpenSSL is not needed.
//!
//! Cross-thread wake-ups: kimojio's `Waker`s are thread-local (an `Rc` to the task, queued on
//! the runtime's own ready list), so they must never be woken from another thread, and both the
//! host's stop signal (woken on the host's stop-watcher thread) and the server-wide
//! `max_connections` semaphore (woken by whichever runtime freed a permit) do exactly that.
//! Each runtime therefore has a [`Relay`]: a future that must wake from another thread is polled
//! with a thread-safe waker that queues its id and bumps an eventfd; a task on the runtime reads
//! that eventfd through io_uring and wakes the real, local waker. This costs nothing per message
//! (only the stop and a permit hand-over go through it).
//!
//! `max_connections` is one limit for the whole server: a tokio `sync::Semaphore` (FIFO-fair,
//! runtime-independent; only tokio's `sync` feature is built) shared by all runtimes, waited on
//! through the relay. kimojio's own `AsyncSemaphore` is single-threaded.

mod hyper_io;

use kimojio::configuration::Configuration;
use kimojio::operations::{self, TaskHandle};
use kimojio::{OwnedFd, Runtime as KimojioRuntime};
use runbench_plugin_abi::{
    export_plugin, os, race, serve_per_core, Config, Connection, EchoStream, HostHandle,
    JoinHandles, Plugin, Runtime, Timer,
};
use runbench_plugin_abi::{
    Channel, HopReceiver, HopSender, Job, Primitives, WORKLOAD_ALL, WORKLOAD_BLOCKING,
    WORKLOAD_HTTP1,
};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

struct Kimojio;

impl Plugin for Kimojio {
    const RUNTIME: &'static str = "kimojio";
    const RUNTIME_VERSION: &'static str = env!("RUNTIME_VERSION");
    /// Every part but `blocking` (kimojio has no blocking pool), and HTTP/1.1.
    const WORKLOADS: u32 = (WORKLOAD_ALL & !WORKLOAD_BLOCKING) | WORKLOAD_HTTP1;
    const HTTP_STACK: &'static str = concat!(
        "hyper ",
        env!("HYPER_VERSION"),
        " + runbench HyperIo over kimojio io_uring reads and writes"
    );

    fn serve(config: &Config, host: &HostHandle) -> Result<(), String> {
        let (major, minor) = operations::kernel_version();
        if (major, minor) < (5, 15) {
            return Err(format!(
                "kimojio needs Linux 5.15 or later for io_uring; this kernel is {major}.{minor}"
            ));
        }
        serve_per_core(config, host, "kimojio", |core| {
            let mut runtime = build_runtime(core.index)?;
            let listener = core.config().listen()?;
            // io_uring waits for a connection itself; a non-blocking listener could make it fail
            // the accept with EAGAIN instead.
            listener
                .set_nonblocking(false)
                .map_err(|e| format!("making the listener blocking: {e}"))?;
            let relay = Relay::new().map_err(|e| format!("creating the wake-up eventfd: {e}"))?;
            let result = runtime.block_on(async move {
                let local = Rc::new(Local {
                    relay,
                    wakers: RefCell::default(),
                    next_id: Cell::new(0),
                });
                // The relay runs for as long as the server; `race` drops it once the server is
                // done.
                let server = core.serve(Rt(local.clone()), OwnedFd::from(listener));
                race(server, local.run()).await
            });
            match result {
                Some(Ok(runbench_plugin_abi::Either::Left(served))) => served,
                Some(Err(p)) => std::panic::resume_unwind(p),
                _ => Ok(()),
            }
        })
    }
}

export_plugin!(Kimojio);

/// kimojio panics when io_uring cannot be set up; this reports why instead.
fn build_runtime(index: usize) -> Result<KimojioRuntime, String> {
    let thread_index = u8::try_from(index).unwrap_or(u8::MAX);
    std::panic::catch_unwind(|| KimojioRuntime::new(thread_index, Configuration::new())).map_err(
        |p| {
            let why = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            format!(
                "building kimojio runtime {index} (needs a working io_uring: check \
                 `sysctl kernel.io_uring_disabled` and any seccomp profile): {why}"
            )
        },
    )
}

/// One kimojio runtime as the shared request handling sees it: `spawn_task`ed tasks, its
/// io_uring accept, reads, writes and timer, tokio's FIFO-fair semaphore, and every wake-up
/// from another thread (the stop signal, a freed permit) through the runtime's [`Relay`].
#[derive(Clone)]
struct Rt(Rc<Local>);

impl Timer for Rt {
    async fn sleep(&self, d: Duration) {
        let _ = operations::sleep(d).await;
    }
}

/// The workload's parts on kimojio's own primitives: `operations::spawn_task` on the
/// connection's runtime per fan-out task or hop relay (its `TaskHandle` is the join; dropping
/// one does not cancel its task) and kimojio's `async_channel` (single-slot, runtime-local) for
/// hops. No blocking pool: kimojio has none (see the crate docs).
impl Primitives for Rt {
    type Channel = Chan;

    fn spawn_job(&self, job: Job<Self>) -> impl Future<Output = ()> {
        let handle = operations::spawn_task(job.run());
        async move {
            let _ = handle.await;
        }
    }
}

/// kimojio's `async_channel`, as the hops' [`Channel`]. It holds one message whatever the
/// capacity asked: a relay takes each on before the next can enter.
struct Chan;
struct Tx(kimojio::Sender<u64>);
struct Rx(kimojio::Receiver<u64>);

impl Channel for Chan {
    type Sender = Tx;
    type Receiver = Rx;
    fn bounded(_capacity: usize) -> (Tx, Rx) {
        let (tx, rx) = kimojio::async_channel();
        (Tx(tx), Rx(rx))
    }
}

impl HopSender for Tx {
    async fn send(&self, msg: u64) -> bool {
        self.0.send(msg).await.is_ok()
    }
}

impl HopReceiver for Rx {
    async fn recv(&mut self) -> Option<u64> {
        self.0.recv().await.ok()
    }
}

impl Runtime for Rt {
    type Listener = OwnedFd;
    type Stream = Stream;
    type Tasks = JoinHandles<TaskHandle<()>>;
    type Semaphore = tokio::sync::Semaphore;

    async fn accept(&self, listener: &OwnedFd) -> io::Result<Stream> {
        operations::accept(listener)
            .await
            .map(Stream)
            .map_err(io_error)
    }
    fn tasks(&self) -> Self::Tasks {
        JoinHandles::default()
    }
    fn spawn(&self, tasks: &mut Self::Tasks, connection: Connection<Self>) {
        tasks.push(
            operations::spawn_task(connection.serve()),
            TaskHandle::is_complete,
        );
    }
    async fn join_all(&self, tasks: Self::Tasks) {
        tasks.join().await;
    }
    /// hyper over this crate's [`hyper_io::HyperIo`]: kimojio has no hyper layer of its own.
    fn http_io(&self, stream: Stream) -> Option<impl runbench_plugin_abi::http::HttpIo> {
        Some(hyper_io::HyperIo::new(stream.0))
    }
    fn cross_thread<F: Future>(&self, fut: F) -> impl Future<Output = F::Output> {
        self.0.relayed(Box::pin(fut))
    }
}

/// A connection for the shared echo loop. kimojio's reads borrow a slice (its future blocks in
/// `drop` until a cancelled read is done with it), so they go straight into the loop's buffer,
/// which stays borrowed for as long as the read future lives.
struct Stream(OwnedFd);

fn io_error(e: kimojio::Errno) -> io::Error {
    io::Error::from_raw_os_error(e.raw_os_error())
}

impl EchoStream for Stream {
    async fn read(&mut self, mut buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        match operations::read(&self.0, &mut buf[..]).await {
            Ok(n) => (Ok(n), buf),
            Err(e) => (Err(io_error(e)), buf),
        }
    }
    async fn write_all(&mut self, buf: Vec<u8>, n: usize) -> (io::Result<()>, Vec<u8>) {
        let mut done = 0;
        while done < n {
            match operations::write(&self.0, &buf[done..n]).await {
                Ok(0) => return (Err(io::ErrorKind::WriteZero.into()), buf),
                Ok(n) => done += n,
                Err(e) => return (Err(io_error(e)), buf),
            }
        }
        (Ok(()), buf)
    }
    fn set_nodelay(&mut self) -> io::Result<()> {
        socket2::SockRef::from(&self.0).set_tcp_nodelay(true)
    }
}

/// The thread-safe half of a runtime's relay: ids of futures woken from another thread, and the
/// eventfd that tells the runtime there are some.
struct Relay {
    eventfd: std::os::fd::OwnedFd,
    woken: Mutex<Vec<u64>>,
}

impl Relay {
    fn new() -> io::Result<Arc<Self>> {
        Ok(Arc::new(Relay {
            eventfd: os::eventfd()?,
            woken: Mutex::new(Vec::new()),
        }))
    }
}

/// What a relayed future is polled with: any thread may wake it.
struct RemoteWaker {
    id: u64,
    relay: Arc<Relay>,
}

impl Wake for RemoteWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.relay.woken.lock().unwrap().push(self.id);
        Arc::new(os::EventFdWaker(self.relay.eventfd.as_raw_fd())).wake();
    }
}

/// The runtime-side half: the local wakers of the relayed futures, by id.
struct Local {
    relay: Arc<Relay>,
    wakers: RefCell<HashMap<u64, Waker>>,
    next_id: Cell<u64>,
}

impl Local {
    fn relayed<F: Future + Unpin>(self: &Rc<Self>, inner: F) -> Relayed<F> {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        Relayed {
            inner,
            id,
            remote: Waker::from(Arc::new(RemoteWaker {
                id,
                relay: self.relay.clone(),
            })),
            local: self.clone(),
            registered: None,
        }
    }

    /// Wakes, on this runtime's thread, the local waker of every future woken from elsewhere.
    async fn run(self: Rc<Self>) {
        let mut count = [0u8; 8];
        loop {
            if operations::read(&self.relay.eventfd, &mut count)
                .await
                .is_err()
            {
                // Not expected for an eventfd; without the relay nothing could stop, so say so.
                panic!("kimojio relay: reading the wake-up eventfd failed");
            }
            let ids = std::mem::take(&mut *self.relay.woken.lock().unwrap());
            let wakers: Vec<Waker> = {
                let map = self.wakers.borrow();
                ids.iter().filter_map(|id| map.get(id).cloned()).collect()
            };
            for w in wakers {
                w.wake();
            }
        }
    }
}

/// A future that may be woken from another thread, polled so that it never sees (and so never
/// wakes) a kimojio waker.
struct Relayed<F> {
    inner: F,
    id: u64,
    remote: Waker,
    local: Rc<Local>,
    registered: Option<Waker>,
}

impl<F: Future + Unpin> Future for Relayed<F> {
    type Output = F::Output;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        if !this
            .registered
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            this.local
                .wakers
                .borrow_mut()
                .insert(this.id, cx.waker().clone());
            this.registered = Some(cx.waker().clone());
        }
        Pin::new(&mut this.inner).poll(&mut Context::from_waker(&this.remote))
    }
}

impl<F> Drop for Relayed<F> {
    fn drop(&mut self) {
        self.local.wakers.borrow_mut().remove(&self.id);
    }
}
