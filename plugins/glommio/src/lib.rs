//! runbench plugin for glommio: thread-per-core `LocalExecutor`s on io_uring, one per server CPU
//! (`Placement::Fixed`), each accepting on its own SO_REUSEPORT listener and serving its
//! connections itself with `spawn_local` tasks. This is glommio's intended shape: nothing is
//! shared between executors except, here, the `max_connections` limit.
//!
//! Threads: `threads` executor threads (`glommio-<id>`), and glommio's blocking-thread pool of
//! one thread per executor (default placement: pinned like its executor; used for file
//! operations, idle in an echo server). So `2 * threads` in all; the calling thread only joins.
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

use glommio::net::{TcpListener, TcpStream};
use glommio::sync::Gate;
use glommio::{LocalExecutorBuilder, Placement};
use runbench_plugin_abi::{
    echo_futures_io, export_plugin, os, race, serve_connection, serve_on, Bound, Config, Either,
    HostHandle, Outcome, Plugin,
};
use std::os::fd::{FromRawFd, IntoRawFd, RawFd};
use std::pin::pin;
use std::sync::Arc;
use tokio::sync::Semaphore;

struct Glommio;

impl Plugin for Glommio {
    const RUNTIME: &'static str = "glommio";
    const RUNTIME_VERSION: &'static str = env!("RUNTIME_VERSION");

    fn serve(config: &Config, host: &HostHandle) -> Result<(), String> {
        let io_memory = system::check_system(config.threads)?;
        let config = Arc::new(config.clone());
        let permits = config.max_connections.map(|n| Arc::new(Semaphore::new(n)));
        serve_on(
            host,
            config.threads,
            |i, bound| {
                let placement = match config.cpu_for_worker(i) {
                    Some(cpu) => Placement::Fixed(cpu),
                    None => Placement::Unbound,
                };
                let (config, host, permits) = (config.clone(), host.clone(), permits.clone());
                LocalExecutorBuilder::new(placement)
                    .name("glommio")
                    .io_memory(io_memory)
                    .spawn(move || executor_main(config, host, permits, bound))
                    .map_err(|e| format!("starting glommio executor {i}: {e}"))
            },
            |i, executor| {
                executor
                    .join()
                    .map_err(|e| format!("glommio executor {i}: {e}"))
            },
        )
    }
}

export_plugin!(Glommio);

async fn executor_main(
    config: Arc<Config>,
    host: HostHandle,
    permits: Option<Arc<Semaphore>>,
    bound: Bound,
) {
    let listener = match os::reuseport_listener(config.addr)
        // glommio issues blocking-style accepts through io_uring; it expects a blocking socket.
        .and_then(|l| l.set_nonblocking(false).map(|()| l))
    {
        Ok(l) => l.into_raw_fd(),
        Err(e) => {
            let _ = bound.send(Err(format!("listening on {}: {e}", config.addr)));
            return;
        }
    };
    let _ = bound.send(Ok(()));
    drop(bound);
    accept_loop(listener, host, config, permits).await;
}

async fn accept_loop(
    listener_fd: RawFd,
    host: HostHandle,
    config: Arc<Config>,
    permits: Option<Arc<Semaphore>>,
) {
    // SAFETY: a fresh, bound and listening socket whose ownership moves to glommio.
    let listener = unsafe { TcpListener::from_raw_fd(listener_fd) };
    let connections = Gate::new();
    let spawn = |stream: TcpStream| {
        host.stats().accepted();
        let (conn_host, config, permits) = (host.clone(), config.clone(), permits.clone());
        match connections.spawn(async move {
            connection(stream, &conn_host, &config, permits).await;
        }) {
            Ok(task) => {
                task.detach();
            }
            Err(e) => host.warn(&format!("spawning a connection task: {e}")),
        }
    };
    let mut stopping = host.stop().stopping();
    loop {
        let mut accept = pin!(listener.accept());
        let accepted = match race(accept.as_mut(), &mut stopping).await {
            Either::Left(r) => r,
            Either::Right(()) => {
                // Dropping an in-flight io_uring accept leaves glommio to cancel it, and a
                // connection it accepts meanwhile stalls others (seen in the conformance
                // tests). Shutting the listener down ends the accept in the kernel instead.
                // SAFETY: shutdown on the listener's own descriptor, still open here.
                unsafe { libc::shutdown(listener_fd, libc::SHUT_RD) };
                if let Ok(stream) = accept.await {
                    spawn(stream); // accepted just before the stop: it closes at once
                }
                break;
            }
        };
        match accepted {
            Ok(stream) => spawn(stream),
            Err(e) => {
                host.stats().accept_error();
                host.warn(&format!("accept failed: {e}"));
                glommio::timer::sleep(runbench_plugin_abi::ACCEPT_BACKOFF).await;
            }
        }
    }
    drop(listener);
    let _ = connections.close().await;
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
    echo_futures_io(&mut stream, host, config, glommio::timer::sleep).await
}
