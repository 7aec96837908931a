//! runbench plugin for smol: one multi-threaded `async_executor::Executor` run by `threads` OS
//! threads, async-io as the reactor, one detached task per connection. This is the shape smol's
//! own docs give for a multi-threaded server (`Executor::run` on N threads until a shutdown
//! channel closes).
//!
//! Threads: `threads` executor threads named `smol-<i>`, plus one helper that async-io always
//! starts, its reactor thread (`async-io`), which polls epoll whenever no thread blocked in
//! `block_on` is doing so. The calling thread only waits for the server task (parked, not
//! polling the reactor).
//!
//! `max_connections` uses tokio's `sync::Semaphore` (runtime-independent; only tokio's `sync`
//! feature is built), not smol's re-export of async-lock's `Semaphore`: that one is not fair (a
//! newly accepted connection's `acquire` takes a freed permit before the woken waiter does),
//! and the contract is first-come first-served. tokio's hands permits out FIFO.

use runbench_plugin_abi::{
    accept_until_stopped, echo_futures_io, export_plugin, os, serve_connection, Config, HostHandle,
    Outcome, Plugin,
};
use smol::net::{TcpListener, TcpStream};
use smol::{Executor, Timer};
use std::sync::Arc;
use tokio::sync::Semaphore;

struct Smol;

impl Plugin for Smol {
    const RUNTIME: &'static str = "smol";
    const RUNTIME_VERSION: &'static str = env!("RUNTIME_VERSION");

    fn serve(config: &Config, host: &HostHandle) -> Result<(), String> {
        let ex = Arc::new(Executor::new());
        // Closed (by dropping the sender) once the server has finished: the threads then return.
        let (finished, shutdown) = smol::channel::unbounded::<()>();
        let mut threads = Vec::with_capacity(config.threads);
        for i in 0..config.threads {
            let (ex, shutdown) = (ex.clone(), shutdown.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("smol-{i}"))
                .spawn(move || smol::block_on(ex.run(shutdown.recv())));
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) => return Err(format!("spawning executor thread {i}: {e}")),
            }
        }
        let server = ex.spawn(serve(ex.clone(), config.clone(), host.clone()));
        // A plain park-until-woken wait: `smol::block_on` would also poll the reactor from this
        // thread, putting a third thread in the way of every I/O event.
        let result = smol::future::block_on(server);
        drop(finished);
        for t in threads {
            let _ = t.join();
        }
        result
    }
}

export_plugin!(Smol);

async fn serve(ex: Arc<Executor<'static>>, config: Config, host: HostHandle) -> Result<(), String> {
    let std_listener = os::reuseport_listener(config.addr)
        .map_err(|e| format!("listening on {}: {e}", config.addr))?;
    let listener = TcpListener::try_from(std_listener)
        .map_err(|e| format!("registering the listener with async-io: {e}"))?;
    let permits = config.max_connections.map(|n| Arc::new(Semaphore::new(n)));
    let config = Arc::new(config);
    // Every connection task holds a sender; `recv` fails once all are gone, i.e. all closed.
    let (alive, all_closed) = smol::channel::bounded::<()>(1);
    host.ready();

    accept_until_stopped(
        &host,
        || listener.accept(),
        |(stream, _)| {
            let (host, config, permits, alive) =
                (host.clone(), config.clone(), permits.clone(), alive.clone());
            ex.spawn(async move {
                connection(stream, &host, &config, permits).await;
                drop(alive);
            })
            .detach();
            std::future::ready(())
        },
        |d| async move {
            Timer::after(d).await;
        },
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
    echo_futures_io(&mut stream, host, config, |d| async move {
        Timer::after(d).await;
    })
    .await
}
