//! runbench plugin for monoio: thread-per-core runtimes on io_uring, one per server CPU, each
//! with its own SO_REUSEPORT listener (`ListenerOpts::reuse_port`), serving its connections with
//! `monoio::spawn`ed tasks. Reads and writes use monoio's owned-buffer ("rent") API and hand the
//! same buffer back and forth, as monoio's own echo examples do.
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
    export_plugin, os, race, serve_connection, serve_on_threads, spin_for, Bound, Config, Either,
    HostHandle, MessageTracker, Outcome, Plugin, ECHO_BUFFER_BYTES, LISTEN_BACKLOG,
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
    let mut stopping = host.stop().stopping();
    loop {
        let accepted = match race(listener.accept(), &mut stopping).await {
            Either::Left(r) => r,
            Either::Right(()) => break,
        };
        match accepted {
            Ok((stream, _)) => {
                host.stats().accepted();
                let (conn_host, config, permits) = (host.clone(), config.clone(), permits.clone());
                tasks.push(monoio::spawn(async move {
                    connection(stream, &conn_host, &config, permits).await;
                }));
            }
            Err(e) => {
                host.stats().accept_error();
                host.warn(&format!("accept failed: {e}"));
                monoio::time::sleep(runbench_plugin_abi::ACCEPT_BACKOFF).await;
            }
        }
        // Forget finished tasks so the list does not grow with connection churn.
        tasks.retain(|t| !t.is_finished());
    }
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

async fn echo(mut stream: TcpStream, host: &HostHandle, config: &Config) -> Outcome {
    if stream.set_nodelay(true).is_err() {
        return Outcome::IoError;
    }
    // One owned buffer travels into each read and write and comes back with its result.
    let mut buf = Vec::with_capacity(ECHO_BUFFER_BYTES);
    let mut tracker = MessageTracker::new(config.message_bytes);
    let mut stopping = host.stop().stopping();
    let mut forced = host.stop().forced();
    loop {
        buf.clear();
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
            spin_for(config.work);
            if !config.sleep.is_zero() {
                monoio::time::sleep(config.sleep).await;
            }
        }
        // `buf` now holds exactly the `n` bytes read.
        match race(stream.write_all(buf), &mut forced).await {
            Either::Left((Ok(_), returned)) => {
                buf = returned;
                host.stats().echoed(n);
            }
            Either::Left((Err(_), _)) => return Outcome::IoError,
            Either::Right(()) => return Outcome::Cut,
        }
    }
}
