//! runbench plugin for glommio: thread-per-core `LocalExecutor`s on io_uring, one per server CPU
//! (`Placement::Fixed`), each accepting on its own SO_REUSEPORT listener and serving its
//! connections itself with `spawn_local` tasks. This is glommio's intended shape: nothing is
//! shared between executors except, here, the `max_connections` limit.
//!
//! Threads: `threads` executor threads (`glommio-<id>`), and glommio's blocking-thread pool of
//! one thread per executor (default placement: pinned like its executor; used for file
//! operations, idle in an echo server, and the pool a workload's `blocking` jobs go to). So
//! `2 * threads` in all, with or without `blocking`; the calling thread only joins.
//!
//! Needs io_uring and locked memory: glommio refuses to start below 512 KiB of RLIMIT_MEMLOCK
//! and registers `io_memory` with each of its three rings per executor. [`check_system`] checks
//! both before any executor starts and fails with the limit and the fix, raising the soft
//! memlock limit to the hard one first. `io_memory` (glommio's pre-allocated storage-I/O buffer,
//! 10 MiB by default, unused by sockets) is set to 512 KiB, less where needed so that all rings'
//! registrations fit in the memlock limit (8 MiB here: 2 executors register 3 MiB).
//!
//! Listeners come from [`os::reuseport_listener`] (backlog [`runbench_plugin_abi::LISTEN_BACKLOG`])
//! handed to glommio with `FromRawFd`: glommio's own `TcpListener::bind` also sets SO_REUSEPORT but
//! fixes the backlog at 1024, which refuses bursts of connects the other plugins accept.
//!
//! `max_connections` is one limit for the whole server: a tokio `sync::Semaphore` (FIFO-fair,
//! runtime-independent; only tokio's `sync` feature is built) shared by the executors (glommio
//! wakes a task from another thread through its foreign-wake queue). glommio's own
//! `sync::Semaphore` is fair but executor-local (`!Send`), so it cannot hold one count for all
//! executors; `async-lock`'s is shareable but not fair (a newly accepted connection takes a
//! freed permit before the connection that waited longest).

mod system;

use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::net::{TcpListener, TcpStream};
use glommio::sync::Gate;
use glommio::{LocalExecutorBuilder, Placement};
use runbench_plugin_abi::{
    export_plugin, start_per_core, BlockingJob, Channel, Config, Connection, FuturesIo,
    HopReceiver, HopSender, HostHandle, Job, PerCore, Plugin, Primitives, Runtime, Timer,
    WORKLOAD_ALL,
};
use std::future::Future;
use std::io;
use std::os::fd::{FromRawFd, IntoRawFd, RawFd};
use std::pin::Pin;
use std::time::Duration;

struct Glommio;

impl Plugin for Glommio {
    const RUNTIME: &'static str = "glommio";
    const RUNTIME_VERSION: &'static str = env!("RUNTIME_VERSION");
    /// HTTP/1.1 through smol-hyper's `FuturesIo`.
    const WORKLOADS: u32 = WORKLOAD_ALL | runbench_plugin_abi::WORKLOAD_HTTP1;
    const HTTP_STACK: &'static str = concat!(
        "hyper ",
        env!("HYPER_VERSION"),
        " + smol-hyper ",
        env!("SMOL_HYPER_VERSION"),
        " FuturesIo over glommio TcpStream"
    );

    fn serve(config: &Config, host: &HostHandle) -> Result<(), String> {
        let io_memory = system::check_system(config.threads)?;
        start_per_core(
            config,
            host,
            |core: PerCore<Rt>| {
                let placement = match core.config().cpu_for_worker(core.index) {
                    Some(cpu) => Placement::Fixed(cpu),
                    None => Placement::Unbound,
                };
                let index = core.index;
                LocalExecutorBuilder::new(placement)
                    .name("glommio")
                    .io_memory(io_memory)
                    .spawn(move || executor_main(core))
                    .map_err(|e| format!("starting glommio executor {index}: {e}"))
            },
            |i, executor| {
                executor
                    .join()
                    .map_err(|e| format!("glommio executor {i}: {e}"))?
            },
        )
    }
}

export_plugin!(Glommio);

async fn executor_main(core: PerCore<Rt>) -> Result<(), String> {
    let listener = core
        .config()
        .listen()
        // glommio issues blocking-style accepts through io_uring; it expects a blocking socket.
        .and_then(|l| {
            l.set_nonblocking(false)
                .map_err(|e| format!("making the listener blocking: {e}"))?;
            Ok(l.into_raw_fd())
        })?;
    // SAFETY: a fresh, bound and listening socket whose ownership moves to glommio.
    let inner = unsafe { TcpListener::from_raw_fd(listener) };
    core.serve(
        Rt,
        Listener {
            inner,
            fd: listener,
        },
    )
    .await
}

/// glommio's listener and its descriptor, to end an accept in flight at the stop.
struct Listener {
    inner: TcpListener,
    fd: RawFd,
}

/// One glommio executor as the shared request handling sees it: `spawn_local` tasks behind a
/// `Gate` (which waits for them all), glommio's timer and sockets, and tokio's FIFO-fair
/// semaphore (see the crate docs).
#[derive(Clone)]
struct Rt;

impl Timer for Rt {
    fn sleep(&self, d: Duration) -> impl Future<Output = ()> {
        glommio::timer::sleep(d)
    }
}

/// The workload's parts on glommio's own primitives: `spawn_local` on the connection's executor
/// per fan-out task or hop relay (detached, so its `JoinHandle` is the join and dropping it
/// cancels nothing), the executor's blocking-thread pool (`executor().spawn_blocking`), and
/// glommio's executor-local bounded channel (`channels::local_channel`) for hops: a request never
/// leaves its executor.
impl Primitives for Rt {
    type Channel = Chan;

    fn spawn_job(&self, job: Job<Self>) -> impl Future<Output = ()> {
        let handle = glommio::spawn_local(job.run()).detach();
        async move {
            let _ = handle.await;
        }
    }

    fn blocking(&self, job: BlockingJob) -> impl Future<Output = ()> {
        glommio::executor().spawn_blocking(move || job.run())
    }
}

/// glommio's local bounded channel, as the hops' [`Channel`].
struct Chan;
struct Tx(LocalSender<u64>);
struct Rx(LocalReceiver<u64>);

impl Channel for Chan {
    type Sender = Tx;
    type Receiver = Rx;
    fn bounded(capacity: usize) -> (Tx, Rx) {
        let (tx, rx) = local_channel::new_bounded(capacity);
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
        self.0.recv().await
    }
}

impl Runtime for Rt {
    type Listener = Listener;
    type Stream = FuturesIo<TcpStream>;
    type Tasks = Gate;
    type Semaphore = tokio::sync::Semaphore;

    async fn accept(&self, listener: &Listener) -> io::Result<Self::Stream> {
        Ok(FuturesIo(listener.inner.accept().await?))
    }
    /// smol-hyper's futures-io adapter on glommio's stream.
    fn http_io(&self, stream: Self::Stream) -> Option<impl runbench_plugin_abi::http::HttpIo> {
        Some(smol_hyper::rt::FuturesIo::new(stream.0))
    }
    fn tasks(&self) -> Gate {
        Gate::new()
    }
    fn spawn(&self, tasks: &mut Gate, connection: Connection<Self>) {
        let host = connection.host().clone();
        match tasks.spawn(connection.serve()) {
            Ok(task) => {
                task.detach();
            }
            Err(e) => host.warn(&format!("spawning a connection task: {e}")),
        }
    }
    async fn join_all(&self, tasks: Gate) {
        let _ = tasks.close().await;
    }

    /// Dropping an in-flight io_uring accept leaves glommio to cancel it, and a connection it
    /// accepts meanwhile stalls others (seen in the conformance tests). Shutting the listener
    /// down ends the accept in the kernel instead; a connection it got just before is served
    /// (and closes at once).
    async fn stop_accepting<F>(
        &self,
        listener: &Listener,
        pending: Pin<&mut F>,
    ) -> Option<Self::Stream>
    where
        F: Future<Output = io::Result<Self::Stream>>,
    {
        // SAFETY: shutdown on the listener's own descriptor, still open here.
        unsafe { libc::shutdown(listener.fd, libc::SHUT_RD) };
        pending.await.ok()
    }
}
