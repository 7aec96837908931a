//! runbench plugin for monoio: thread-per-core runtimes on io_uring, one per server CPU, each
//! with its own SO_REUSEPORT listener (`ListenerOpts::reuse_port`), serving its connections with
//! `monoio::spawn`ed tasks. Reads and writes use monoio's owned-buffer ("rent") API on the ABI
//! crate's shared echo loop.
//!
//! Threads: exactly `threads` runtime threads (`monoio-<i>`); the calling thread only joins. No
//! helpers: the `sync` feature (needed so the stop signal and the shared semaphore can wake a
//! task from another thread) adds no thread unless a blocking pool is attached, and one is only
//! for a workload with `blocking`: monoio's `DefaultThreadPool` of `threads` more threads, shared
//! by the runtimes (its threads start with the pool).
//!
//! Workload parts: `monoio::spawn` for fan-out and the hops' relays, `spawn_blocking` on that
//! pool, monoio's timer. monoio has no channel of its own (its ecosystem's is the separate
//! `local-sync` crate), so the hops cross tokio's bounded `mpsc` (runtime-independent, already
//! here for the semaphore); the row measures monoio's tasks and wake-ups around it.
//!
//! io_uring: the runtime is built with monoio's `FusionDriver`, which falls back to its epoll
//! ("legacy") driver when io_uring is missing or lacks the operations monoio needs. Because
//! that changes what is measured, the fallback is logged as a warning naming the cause to check;
//! the result row is still labelled `monoio`.
//!
//! `max_connections` is one limit for the whole server: a tokio `sync::Semaphore` (FIFO-fair,
//! runtime-independent; only tokio's `sync` feature is built) shared by all runtimes. monoio has
//! no cross-thread semaphore, and `async-lock`'s is not fair (a newly accepted connection takes
//! a freed permit before the connection that waited longest).

use monoio::blocking::DefaultThreadPool;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::{ListenerOpts, TcpListener, TcpStream};
use monoio::task::JoinHandle;
use monoio::{FusionDriver, RuntimeBuilder};
use runbench_plugin_abi::{
    export_plugin, serve_per_core, Config, Connection, EchoStream, HostHandle, JoinHandles, Plugin,
    Runtime, Timer, LISTEN_BACKLOG, WORKLOAD_ALL,
};
use runbench_plugin_abi::{BlockingJob, Job, Primitives};
use std::future::Future;
use std::io;
use std::time::Duration;

struct Monoio;

impl Plugin for Monoio {
    const RUNTIME: &'static str = "monoio";
    const RUNTIME_VERSION: &'static str = env!("RUNTIME_VERSION");
    /// HTTP/1.1 through monoio-compat and hyper-util's `TokioIo`.
    const WORKLOADS: u32 = WORKLOAD_ALL | runbench_plugin_abi::WORKLOAD_HTTP1;
    const HTTP_STACK: &'static str = concat!(
        "hyper ",
        env!("HYPER_VERSION"),
        " + monoio-compat ",
        env!("MONOIO_COMPAT_VERSION"),
        " StreamWrapper + hyper-util ",
        env!("HYPER_UTIL_VERSION"),
        " TokioIo"
    );

    fn serve(config: &Config, host: &HostHandle) -> Result<(), String> {
        if !monoio::utils::detect_uring() {
            host.warn(
                "monoio: io_uring is unavailable or lacks the operations monoio needs; running on \
                 monoio's epoll (legacy) driver instead, so this row does not measure io_uring. \
                 Check the kernel (5.6+), `sysctl kernel.io_uring_disabled` and any container \
                 seccomp profile",
            );
        }
        // One pool for every runtime, and only when the workload has blocking jobs: without one
        // monoio refuses `spawn_blocking`, and an idle pool would add threads to every row.
        let pool = (!config.workload.blocking.is_zero())
            .then(|| DefaultThreadPool::new(config.threads.max(1)));
        serve_per_core(config, host, "monoio", move |core| {
            let mut builder = RuntimeBuilder::<FusionDriver>::new().enable_timer();
            if let Some(pool) = &pool {
                builder = builder.attach_thread_pool(Box::new(pool.clone()));
            }
            let mut runtime = builder
                .build()
                .map_err(|e| format!("building monoio runtime {}: {e}", core.index))?;
            runtime.block_on(async {
                let opts = ListenerOpts::new()
                    .reuse_port(true)
                    .reuse_addr(true)
                    .backlog(LISTEN_BACKLOG);
                let addr = core.config().addr;
                let listener = TcpListener::bind_with_config(addr, &opts)
                    .map_err(|e| format!("listening on {addr}: {e}"))?;
                core.serve(Rt, listener).await
            })
        })
    }
}

export_plugin!(Monoio);

/// One monoio runtime as the shared request handling sees it: `monoio::spawn`ed tasks, its
/// timer, its owned-buffer streams, and tokio's FIFO-fair semaphore (see the crate docs).
#[derive(Clone)]
struct Rt;

impl Timer for Rt {
    fn sleep(&self, d: Duration) -> impl Future<Output = ()> {
        monoio::time::sleep(d)
    }
}

/// The workload's parts on monoio's own primitives: `monoio::spawn` on the connection's runtime
/// per fan-out task or hop relay (its `JoinHandle` is the join; dropping one detaches its task)
/// and `monoio::spawn_blocking` on the thread pool attached to every runtime for a workload with
/// `blocking`. monoio has no channel of its own, so the hops go through tokio's bounded `mpsc`
/// (runtime-independent, like the semaphore; see the crate docs).
impl Primitives for Rt {
    type Channel = runbench_plugin_abi::TokioMpsc;

    fn spawn_job(&self, job: Job<Self>) -> impl Future<Output = ()> {
        monoio::spawn(job.run())
    }

    async fn blocking(&self, job: BlockingJob) {
        // Err only if the pool dropped the job unrun; the job's counters then say so.
        let _ = monoio::spawn_blocking(move || job.run()).await;
    }
}

impl Runtime for Rt {
    type Listener = TcpListener;
    type Stream = Rented;
    type Tasks = JoinHandles<JoinHandle<()>>;
    type Semaphore = tokio::sync::Semaphore;

    async fn accept(&self, listener: &TcpListener) -> io::Result<Rented> {
        Ok(Rented(listener.accept().await?.0))
    }
    fn tasks(&self) -> Self::Tasks {
        JoinHandles::default()
    }
    fn spawn(&self, tasks: &mut Self::Tasks, connection: Connection<Self>) {
        tasks.push(monoio::spawn(connection.serve()), JoinHandle::is_finished);
    }
    async fn join_all(&self, tasks: Self::Tasks) {
        tasks.join().await;
    }
    /// monoio-compat's tokio-traits wrapper, then hyper-util's `TokioIo`.
    fn http_io(&self, stream: Self::Stream) -> Option<impl runbench_plugin_abi::http::HttpIo> {
        let stream = monoio_compat::StreamWrapper::new(stream.0);
        Some(hyper_util::rt::TokioIo::new(stream))
    }
}

/// monoio's owned-buffer ("rent") I/O: the one buffer travels into each read and write and comes
/// back with its result, as monoio's own echo examples do.
struct Rented(TcpStream);

impl EchoStream for Rented {
    async fn read(&mut self, mut buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        // monoio reads into the spare capacity after `len`.
        buf.clear();
        self.0.read(buf).await
    }

    async fn write_all(&mut self, mut buf: Vec<u8>, n: usize) -> (io::Result<()>, Vec<u8>) {
        buf.truncate(n);
        let (r, buf) = self.0.write_all(buf).await;
        (r.map(drop), buf)
    }

    fn set_nodelay(&mut self) -> io::Result<()> {
        self.0.set_nodelay(true)
    }
}
