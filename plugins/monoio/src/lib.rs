//! runbench plugin for monoio: thread-per-core runtimes on io_uring, one per server CPU, each
//! with its own SO_REUSEPORT listener (`ListenerOpts::reuse_port`), serving its connections with
//! `monoio::spawn`ed tasks. Reads and writes use monoio's owned-buffer ("rent") API on the ABI
//! crate's shared echo loop.
//!
//! Threads: exactly `threads` runtime threads (`monoio-<i>`); the calling thread only joins. No
//! helpers: the `sync` feature (needed so the stop signal and the shared semaphore can wake a
//! task from another thread) adds no thread unless a blocking pool is attached, and none is.
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

use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::{ListenerOpts, TcpListener, TcpStream};
use monoio::{FusionDriver, RuntimeBuilder};
use runbench_plugin_abi::{
    accept_until_stopped, echo_stream, export_plugin, os, serve_connection, serve_on_threads,
    Bound, Config, EchoStream, HostHandle, Outcome, Plugin, LISTEN_BACKLOG,
};
use std::sync::Arc;
use tokio::sync::Semaphore;

struct Monoio;

impl Plugin for Monoio {
    const RUNTIME: &'static str = "monoio";
    const RUNTIME_VERSION: &'static str = env!("RUNTIME_VERSION");

    fn serve(config: &Config, host: &HostHandle) -> Result<(), String> {
        if !monoio::utils::detect_uring() {
            host.warn(
                "monoio: io_uring is unavailable or lacks the operations monoio needs; running on \
                 monoio's epoll (legacy) driver instead, so this row does not measure io_uring. \
                 Check the kernel (5.6+), `sysctl kernel.io_uring_disabled` and any container \
                 seccomp profile",
            );
        }
        let config = Arc::new(config.clone());
        let permits = config.max_connections.map(|n| Arc::new(Semaphore::new(n)));
        let (threads, worker_host) = (config.threads, host.clone());
        // Each thread reports once its listener accepts, or why it could not start.
        serve_on_threads(host, threads, "monoio", move |i, bound| {
            worker(i, &config, worker_host.clone(), permits.clone(), bound);
            Ok(())
        })
    }
}

export_plugin!(Monoio);

fn worker(
    index: usize,
    config: &Arc<Config>,
    host: HostHandle,
    permits: Option<Arc<Semaphore>>,
    bound: Bound,
) {
    if let Some(cpu) = config.cpu_for_worker(index) {
        if let Err(e) = os::pin_current_thread(cpu) {
            let _ = bound.send(Err(format!("pinning runtime {index} to CPU {cpu}: {e}")));
            return;
        }
    }
    let mut runtime = match RuntimeBuilder::<FusionDriver>::new().enable_timer().build() {
        Ok(rt) => rt,
        Err(e) => {
            let _ = bound.send(Err(format!("building monoio runtime {index}: {e}")));
            return;
        }
    };
    let config = config.clone();
    runtime.block_on(async move {
        let opts = ListenerOpts::new()
            .reuse_port(true)
            .reuse_addr(true)
            .backlog(LISTEN_BACKLOG);
        let listener = match TcpListener::bind_with_config(config.addr, &opts) {
            Ok(l) => l,
            Err(e) => {
                let _ = bound.send(Err(format!("listening on {}: {e}", config.addr)));
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
            tasks.push(monoio::spawn(async move {
                connection(stream, &conn_host, &config, permits).await;
            }));
            // Forget finished tasks so the list does not grow with connection churn.
            tasks.retain(|t| !t.is_finished());
            std::future::ready(())
        },
        monoio::time::sleep,
    )
    .await;
    drop(listener);
    for t in tasks {
        t.await;
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

async fn echo(stream: TcpStream, host: &HostHandle, config: &Config) -> Outcome {
    if stream.set_nodelay(true).is_err() {
        return Outcome::IoError;
    }
    echo_stream(&mut Rented(stream), host, config).await
}

/// monoio's owned-buffer ("rent") I/O: the one buffer travels into each read and write and comes
/// back with its result, as monoio's own echo examples do.
struct Rented(TcpStream);

impl EchoStream for Rented {
    async fn read(&mut self, mut buf: Vec<u8>) -> (std::io::Result<usize>, Vec<u8>) {
        // monoio reads into the spare capacity after `len`.
        buf.clear();
        self.0.read(buf).await
    }

    async fn write_all(&mut self, mut buf: Vec<u8>, n: usize) -> (std::io::Result<()>, Vec<u8>) {
        buf.truncate(n);
        let (r, buf) = self.0.write_all(buf).await;
        (r.map(drop), buf)
    }

    fn sleep(&self, d: std::time::Duration) -> impl std::future::Future<Output = ()> {
        monoio::time::sleep(d)
    }
}
