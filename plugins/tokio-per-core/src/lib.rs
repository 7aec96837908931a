//! runbench plugin for tokio run thread-per-core: `threads` independent `current_thread`
//! runtimes, each on its own OS thread pinned to one server CPU, each with its own SO_REUSEPORT
//! listener, so the kernel spreads connections over the threads and no task ever moves between
//! them. This is how tokio is used where work stealing costs more than it saves (many short,
//! independent connections), e.g. the shape of actix-web's workers.
//!
//! Threads: exactly `threads` worker threads named `tokio-per-core-<i>`; the calling thread only
//! waits for them. No helper threads (nothing here uses tokio's blocking pool).
//!
//! `max_connections` is one limit for the whole server: a `tokio::sync::Semaphore` shared by all
//! runtimes (its wakers work across runtimes), so a connection accepted by a busy thread waits
//! even if another thread has a free slot, exactly as in the multi-thread plugin.

use runbench_plugin_abi::{
    accept_until_stopped, echo_futures_io, export_plugin, os, serve_connection, serve_on_threads,
    Bound, Config, HostHandle, Outcome, Plugin,
};
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::compat::TokioAsyncReadCompatExt;

struct TokioPerCore;

impl Plugin for TokioPerCore {
    const RUNTIME: &'static str = "tokio-per-core";
    const RUNTIME_VERSION: &'static str = env!("RUNTIME_VERSION");

    fn serve(config: &Config, host: &HostHandle) -> Result<(), String> {
        let config = Arc::new(config.clone());
        let permits = config.max_connections.map(|n| Arc::new(Semaphore::new(n)));
        let (threads, worker_host) = (config.threads, host.clone());
        // Each thread reports once its listener accepts, or why it could not start.
        serve_on_threads(host, threads, "tokio-per-core", move |i, bound| {
            worker(i, &config, worker_host.clone(), permits.clone(), bound);
            Ok(())
        })
    }
}

export_plugin!(TokioPerCore);

fn worker(
    index: usize,
    config: &Arc<Config>,
    host: HostHandle,
    permits: Option<Arc<Semaphore>>,
    bound: Bound,
) {
    let setup = || -> Result<(tokio::runtime::Runtime, std::net::TcpListener), String> {
        if let Some(cpu) = config.cpu_for_worker(index) {
            os::pin_current_thread(cpu)
                .map_err(|e| format!("pinning worker {index} to CPU {cpu}: {e}"))?;
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("building worker {index}'s tokio runtime: {e}"))?;
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
        accept_loop(listener, host, config.clone(), permits).await;
    });
}

async fn accept_loop(
    listener: TcpListener,
    host: HostHandle,
    config: Arc<Config>,
    permits: Option<Arc<Semaphore>>,
) {
    let mut tasks = tokio::task::JoinSet::new();
    accept_until_stopped(
        &host,
        || listener.accept(),
        |(stream, _)| {
            tasks.spawn(connection(
                stream,
                host.clone(),
                config.clone(),
                permits.clone(),
            ));
            // Reap finished tasks so the set does not grow with connection churn.
            while tasks.try_join_next().is_some() {}
            std::future::ready(())
        },
        tokio::time::sleep,
    )
    .await;
    drop(listener);
    while tasks.join_next().await.is_some() {}
}

async fn connection(
    stream: TcpStream,
    host: HostHandle,
    config: Arc<Config>,
    permits: Option<Arc<Semaphore>>,
) {
    serve_connection(
        &host,
        permits.as_ref().map(|sem| sem.acquire()),
        echo(stream, &host, &config),
    )
    .await;
}

async fn echo(stream: TcpStream, host: &HostHandle, config: &Config) -> Outcome {
    if stream.set_nodelay(true).is_err() {
        return Outcome::IoError;
    }
    // tokio's I/O traits differ from futures-io's only in the read buffer type; the adapter
    // converts per call and lets the shared loop serve tokio too.
    echo_futures_io(&mut stream.compat(), host, config, tokio::time::sleep).await
}
