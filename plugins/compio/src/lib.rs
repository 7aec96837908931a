//! runbench plugin for compio: thread-per-core, completion-based runtimes, one per server CPU,
//! each with its own SO_REUSEPORT listener, serving its connections with `compio::runtime::spawn`ed
//! tasks. Reads and writes hand one owned buffer back and forth ([`echo_stream`]).
//!
//! Threads: exactly `threads` runtime threads (`compio-<i>`); the calling thread only joins. No
//! helpers: compio's blocking pool starts only for `spawn_blocking`, which nothing here uses.
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
use compio::runtime::Runtime;
use runbench_plugin_abi::{
    accept_until_stopped, echo_stream, export_plugin, os, serve_connection, serve_on_threads,
    Bound, Config, EchoStream, HostHandle, Outcome, Plugin,
};
use std::io;
use std::sync::Arc;
use tokio::sync::Semaphore;

struct Compio;

impl Plugin for Compio {
    const RUNTIME: &'static str = "compio";
    const RUNTIME_VERSION: &'static str = env!("RUNTIME_VERSION");

    fn serve(config: &Config, host: &HostHandle) -> Result<(), String> {
        let config = Arc::new(config.clone());
        let permits = config.max_connections.map(|n| Arc::new(Semaphore::new(n)));
        let (threads, worker_host) = (config.threads, host.clone());
        // Each thread reports once its listener accepts, or why it could not start.
        serve_on_threads(host, threads, "compio", move |i, bound| {
            worker(i, &config, worker_host.clone(), permits.clone(), bound);
            Ok(())
        })
    }
}

export_plugin!(Compio);

fn worker(
    index: usize,
    config: &Arc<Config>,
    host: HostHandle,
    permits: Option<Arc<Semaphore>>,
    bound: Bound,
) {
    let setup = || -> Result<(Runtime, std::net::TcpListener), String> {
        if let Some(cpu) = config.cpu_for_worker(index) {
            os::pin_current_thread(cpu)
                .map_err(|e| format!("pinning runtime {index} to CPU {cpu}: {e}"))?;
        }
        let runtime =
            Runtime::new().map_err(|e| format!("building compio runtime {index}: {e}"))?;
        let listener = os::reuseport_listener(config.addr)
            .map_err(|e| format!("listening on {}: {e}", config.addr))?;
        Ok((runtime, listener))
    };
    let (runtime, std_listener) = match setup() {
        Ok(s) => s,
        Err(e) => {
            let _ = bound.send(Err(e));
            return;
        }
    };
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
    let config = config.clone();
    runtime.block_on(async move {
        let listener = match TcpListener::from_std(std_listener) {
            Ok(l) => l,
            Err(e) => {
                let _ = bound.send(Err(format!("registering the listener: {e}")));
                return;
            }
        };
        let _ = bound.send(Ok(()));
        drop(bound);
        accept_loop(listener, host, config, permits).await;
    });
}

async fn accept_loop(
    listener: TcpListener,
    host: HostHandle,
    config: Arc<Config>,
    permits: Option<Arc<Semaphore>>,
) {
    let mut tasks = Vec::new();
    accept_until_stopped(
        &host,
        || listener.accept(),
        |(stream, _)| {
            let (conn_host, config, permits) = (host.clone(), config.clone(), permits.clone());
            tasks.push(compio::runtime::spawn(async move {
                connection(stream, &conn_host, &config, permits).await;
            }));
            // Forget finished tasks so the list does not grow with connection churn.
            tasks.retain(|t| !t.is_finished());
            std::future::ready(())
        },
        compio::time::sleep,
    )
    .await;
    drop(listener);
    for t in tasks {
        let _ = t.await;
    }
}

async fn connection(
    stream: TcpStream,
    host: &HostHandle,
    config: &Config,
    permits: Option<Arc<Semaphore>>,
) {
    serve_connection(
        host,
        permits.map(|sem| sem.acquire_owned()),
        echo(stream, host, config),
    )
    .await;
}

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
    fn sleep(&self, d: std::time::Duration) -> impl std::future::Future<Output = ()> {
        compio::time::sleep(d)
    }
}

async fn echo(stream: TcpStream, host: &HostHandle, config: &Config) -> Outcome {
    if stream.set_nodelay(true).is_err() {
        return Outcome::IoError;
    }
    echo_stream(&mut Stream(stream), host, config).await
}
