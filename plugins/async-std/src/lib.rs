//! runbench plugin for async-std: one accept loop, `async_std::task::spawn` per connection on
//! async-std's global executor. This is how async-std servers were written.
//!
//! **async-std is discontinued upstream** in favour of smol (RUSTSEC-2025-0052); it is measured
//! because existing code still runs on it. Its executor (async-global-executor) and reactor
//! (async-io) are the smol ecosystem's, so the `smol` plugin is the maintained counterpart.
//!
//! Threads: async-std sizes its executor once, from the `ASYNC_STD_THREAD_COUNT` environment
//! variable read when the runtime is first used. [`serve`](Plugin::serve) sets it to `threads`
//! before touching async-std, so the pool honours `threads` (`async-std/runtime` threads). On
//! top of those async-std always has one helper: async-io's reactor thread (`async-io`), which
//! polls epoll whenever no executor thread is blocked on it. The calling thread runs the accept
//! loop inside `task::block_on`, as tokio's plugin does.
//!
//! `max_connections` uses tokio's `sync::Semaphore` (runtime-independent; only tokio's `sync`
//! feature is built). async-std has no semaphore of its own, and `async-lock`'s, which its locks
//! come from, is not fair: a newly accepted connection's `acquire` takes a freed permit before
//! the woken waiter does, starving the longest-waiting ones. tokio's hands permits out FIFO.

use async_std::net::{TcpListener, TcpStream};
use runbench_plugin_abi::{
    accept_until_stopped, echo_futures_io, export_plugin, os, serve_connection, Config, HostHandle,
    Outcome, Plugin,
};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Read by async-std once, when its global executor starts.
const THREAD_COUNT_VAR: &str = "ASYNC_STD_THREAD_COUNT";

struct AsyncStd;

impl Plugin for AsyncStd {
    const RUNTIME: &'static str = "async-std";
    const RUNTIME_VERSION: &'static str = env!("RUNTIME_VERSION");

    fn serve(config: &Config, host: &HostHandle) -> Result<(), String> {
        // Must happen before the first async-std call in this process (a serve child calls
        // `serve` once). The host's other threads are parked on locks, not reading the
        // environment, so changing it here races with nothing.
        std::env::set_var(THREAD_COUNT_VAR, config.threads.to_string());
        async_std::task::block_on(serve(config.clone(), host.clone()))
    }
}

export_plugin!(AsyncStd);

async fn serve(config: Config, host: HostHandle) -> Result<(), String> {
    let std_listener = os::reuseport_listener(config.addr)
        .map_err(|e| format!("listening on {}: {e}", config.addr))?;
    let listener = TcpListener::from(std_listener);
    let permits = config.max_connections.map(|n| Arc::new(Semaphore::new(n)));
    let config = Arc::new(config);
    // Every connection task holds a sender; `recv` fails once all are gone, i.e. all closed.
    let (alive, all_closed) = async_std::channel::bounded::<()>(1);
    host.ready();

    accept_until_stopped(
        &host,
        || listener.accept(),
        |(stream, _)| {
            let (host, config, permits, alive) =
                (host.clone(), config.clone(), permits.clone(), alive.clone());
            async_std::task::spawn(async move {
                connection(stream, &host, &config, permits).await;
                drop(alive);
            });
            std::future::ready(())
        },
        async_std::task::sleep,
    )
    .await;
    drop(listener);
    drop(alive);
    let _ = all_closed.recv().await;
    Ok(())
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
    echo_futures_io(&mut stream, host, config, async_std::task::sleep).await
}
