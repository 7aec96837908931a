//! runbench plugin for compio: thread-per-core, completion-based runtimes, one per server CPU,
//! each with its own SO_REUSEPORT listener, serving its connections with `compio::runtime::spawn`ed
//! tasks. Reads and writes hand one owned buffer back and forth (the ABI crate's `EchoStream`).
//!
//! Threads: exactly `threads` runtime threads (`compio-<i>`); the calling thread only joins. No
//! helpers: compio's blocking pool (one per runtime) starts threads only for `spawn_blocking`,
//! which only a workload with `blocking` uses; idle ones exit after a while.
//!
//! Workload parts: `compio::runtime::spawn` for fan-out and the hops' relays, `spawn_blocking`,
//! compio's timer. compio has no channel of its own, so the hops cross tokio's bounded `mpsc`
//! (runtime-independent, already here for the semaphore); the row measures compio's tasks and
//! wake-ups around it.
//!
//! I/O driver: compio's fusion driver (its `io-uring` and `polling` features together). Each
//! runtime probes the kernel when it is built and runs on io_uring when every operation compio
//! needs is supported, otherwise on `polling` (epoll, readiness-based: compio then does the
//! reads and writes itself when a socket is ready). The driver each runtime got is logged at
//! start, and a fallback as a warning, because it changes what the row measures; the row is
//! still labelled `compio`. io_uring is refused by kernels before 5.6, by
//! `sysctl kernel.io_uring_disabled`, and by container seccomp profiles that block
//! `io_uring_setup`.
//!
//! `max_connections` is one limit for the whole server: a tokio `sync::Semaphore` (FIFO-fair,
//! runtime-independent; only tokio's `sync` feature is built) shared by all runtimes, whose
//! wakers work across threads because compio's do (a remote wake goes through the executor's
//! sync queue and the driver's notifier).

use compio::io::{AsyncRead, AsyncWriteExt};
use compio::net::{TcpListener, TcpStream};
use compio::runtime::{JoinHandle, Runtime as CompioRuntime};
use runbench_plugin_abi::{
    export_plugin, serve_per_core, Config, Connection, EchoStream, HostHandle, JoinHandles, Plugin,
    Runtime, Timer, WORKLOAD_ALL,
};
use runbench_plugin_abi::{BlockingJob, DetachOnDrop, Job, Primitives};
use std::future::Future;
use std::io;
use std::time::Duration;

struct Compio;

impl Plugin for Compio {
    const RUNTIME: &'static str = "compio";
    const RUNTIME_VERSION: &'static str = env!("RUNTIME_VERSION");
    /// HTTP/1.1 through compio's futures-io adapter and smol-hyper's `FuturesIo`.
    const WORKLOADS: u32 = WORKLOAD_ALL | runbench_plugin_abi::WORKLOAD_HTTP1;
    const HTTP_STACK: &'static str = concat!(
        "hyper ",
        env!("HYPER_VERSION"),
        " + compio io-compat AsyncStream + smol-hyper ",
        env!("SMOL_HYPER_VERSION"),
        " FuturesIo"
    );

    fn serve(config: &Config, host: &HostHandle) -> Result<(), String> {
        serve_per_core(config, host, "compio", |core| {
            let index = core.index;
            let runtime = CompioRuntime::new()
                .map_err(|e| format!("building compio runtime {index}: {e}"))?;
            let listener = core.config().listen()?;
            log_driver(&runtime, index, core.host());
            runtime.block_on(async {
                let listener = TcpListener::from_std(listener)
                    .map_err(|e| format!("registering the listener: {e}"))?;
                core.serve(Rt, listener).await
            })
        })
    }
}

export_plugin!(Compio);

/// Says which driver the runtime got, and warns when it is not io_uring.
fn log_driver(runtime: &CompioRuntime, index: usize, host: &HostHandle) {
    let driver = runtime.driver_type();
    if driver.is_iouring() {
        host.info(&format!("compio runtime {index}: io_uring driver"));
    } else {
        host.warn(&format!(
            "compio runtime {index}: {driver:?} driver, not io_uring (the kernel lacks an \
             operation compio needs, or io_uring is disabled: check the kernel version, \
             `sysctl kernel.io_uring_disabled` and any seccomp profile); this row does not \
             measure io_uring"
        ));
    }
}

/// One compio runtime as the shared request handling sees it: `compio::runtime::spawn`ed tasks,
/// its timer, its owned-buffer streams, and tokio's FIFO-fair semaphore (see the crate docs).
#[derive(Clone)]
struct Rt;

impl Timer for Rt {
    fn sleep(&self, d: Duration) -> impl Future<Output = ()> {
        compio::time::sleep(d)
    }
}

/// The workload's parts on compio's own primitives: `compio::runtime::spawn` on the connection's
/// runtime per fan-out task or hop relay (its `JoinHandle` cancels its task when dropped, so
/// the join detaches it instead) and `compio::runtime::spawn_blocking` (compio's blocking pool).
/// compio has no channel of its own, so the hops go through tokio's bounded `mpsc`
/// (runtime-independent, like the semaphore; see the crate docs).
impl Primitives for Rt {
    type Channel = runbench_plugin_abi::TokioMpsc;

    fn spawn_job(&self, job: Job<Self>) -> impl Future<Output = ()> {
        DetachOnDrop::new(compio::runtime::spawn(job.run()), JoinHandle::detach)
    }

    async fn blocking(&self, job: BlockingJob) {
        // Err only if the job panicked; its counters then say what it did not do.
        let _ = compio::runtime::spawn_blocking(move || job.run()).await;
    }
}

impl Runtime for Rt {
    type Listener = TcpListener;
    type Stream = Stream;
    type Tasks = JoinHandles<JoinHandle<()>>;
    type Semaphore = tokio::sync::Semaphore;

    async fn accept(&self, listener: &TcpListener) -> io::Result<Stream> {
        Ok(Stream(listener.accept().await?.0))
    }
    fn tasks(&self) -> Self::Tasks {
        JoinHandles::default()
    }
    fn spawn(&self, tasks: &mut Self::Tasks, connection: Connection<Self>) {
        tasks.push(
            compio::runtime::spawn(connection.serve()),
            JoinHandle::is_finished,
        );
    }
    async fn join_all(&self, tasks: Self::Tasks) {
        tasks.join().await;
    }
    /// compio's futures-io adapter (pinned in a box: it holds its in-flight operations), then
    /// smol-hyper's.
    fn http_io(&self, stream: Self::Stream) -> Option<impl runbench_plugin_abi::http::HttpIo> {
        let stream = Box::pin(compio::io::compat::AsyncStream::new(stream.0));
        Some(smol_hyper::rt::FuturesIo::new(stream))
    }
}

/// compio's owned-buffer I/O: the one buffer travels into each read and write and comes back
/// with its result.
struct Stream(TcpStream);

impl EchoStream for Stream {
    async fn read(&mut self, mut buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        // compio reads into the spare capacity after `len`.
        buf.clear();
        self.0.read(buf).await.into()
    }
    async fn write_all(&mut self, mut buf: Vec<u8>, n: usize) -> (io::Result<()>, Vec<u8>) {
        buf.truncate(n);
        self.0.write_all(buf).await.into()
    }
    fn set_nodelay(&mut self) -> io::Result<()> {
        self.0.set_nodelay(true)
    }
}
