//! runbench plugin for tokio's multi-thread, work-stealing runtime: one accept loop, one task per
//! connection, `threads` workers. This is how most tokio servers are written.
//!
//! Threads: `threads` workers (`tokio-worker`); the calling thread runs the accept loop inside
//! `block_on`. No helper threads (nothing here uses tokio's blocking pool).

use runbench_plugin_abi::{
    accept_until_stopped, echo_futures_io, export_plugin, os, serve_connection, Config, HostHandle,
    Outcome, Plugin,
};
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::compat::TokioAsyncReadCompatExt;

struct Tokio;

impl Plugin for Tokio {
    const RUNTIME: &'static str = "tokio";
    const RUNTIME_VERSION: &'static str = env!("RUNTIME_VERSION");

    fn serve(config: &Config, host: &HostHandle) -> Result<(), String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.threads)
            .thread_name("tokio-worker")
            .enable_all()
            .build()
            .map_err(|e| format!("building the tokio runtime: {e}"))?;
        runtime.block_on(serve(config.clone(), host.clone()))
    }
}

export_plugin!(Tokio);

async fn serve(config: Config, host: HostHandle) -> Result<(), String> {
    let std_listener = os::reuseport_listener(config.addr)
        .map_err(|e| format!("listening on {}: {e}", config.addr))?;
    let listener = TcpListener::from_std(std_listener).map_err(|e| e.to_string())?;
    let permits = config.max_connections.map(|n| Arc::new(Semaphore::new(n)));
    let config = Arc::new(config);
    let mut tasks = tokio::task::JoinSet::new();
    host.ready();

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
    Ok(())
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
