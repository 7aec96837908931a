//! runbench's limit row: a minimal echo server on edge-triggered epoll (through mio, a thin
//! wrapper over `epoll_wait`), with no async runtime. It shows what the runtimes' abstractions
//! cost against hand-written readiness code on the same kernel interface.
//!
//! Shape: one event-loop thread per worker (`threads`, pinned to `config.cpu_for_worker(i)`),
//! each with its own SO_REUSEPORT listener and epoll instance; a connection lives on the thread
//! that accepted it. Per connection a 16 KiB buffer, echo on readiness, per-message `work` spun
//! in place and `sleep` through a per-thread timer heap.
//!
//! Workload parts, by hand: the `cpu` and `sleep` of each request drawn from the connection's
//! seeded sequence (the ABI crate's [`runbench_plugin_abi::Steps`], counted like every plugin's),
//! the requests of one read spun in order and their sleeps taken as one timer-heap entry (the
//! sum of their draws: what awaiting them one after another takes); sized answers
//! (`response_bytes`), one per complete request. Not fan-out, `blocking` or hops: a
//! hand-written version of those would be a task system, a thread pool and channels of this
//! crate's own making, which is no longer the bare-epoll limit this row stands for, so the
//! header leaves those bits off and the host skips such rows with that reason.
//!
//! Same semantics as every plugin: `max_connections` is one server-wide count of slots (accepted
//! connections wait, unserved, in one FIFO queue over all threads; a freed slot goes to the
//! longest-waiting connection and wakes its thread through a mio waker); on
//! stop, listeners close, idle connections close at a message boundary, the rest finish their
//! message, and everything left is cut at the grace deadline. The stop signal is polled: epoll
//! waits at most 10 ms ([`worker::STOP_POLL`]), so a drain may start up to 10 ms late.
//!
//! Threads: exactly `threads` event-loop threads (`epoll-<i>`); the calling thread only joins.
//!
//! HTTP/1.1 (`http.rs`): a hand-written responder over httparse, the limit for the hyper rows.
//!
//! The version reported for this row is mio's, the only crate between this code and the kernel.

mod conn;
mod http;
mod limit;
mod worker;

use limit::Limit;
use runbench_plugin_abi::{
    export_plugin, serve_on_threads, Bound, Config, HostHandle, Plugin, WORKLOAD_DIST,
    WORKLOAD_HTTP1, WORKLOAD_RESPONSE, WORKLOAD_V1,
};
use std::sync::Arc;
use worker::EventLoop;

struct Epoll;

impl Plugin for Epoll {
    const RUNTIME: &'static str = "epoll";
    const RUNTIME_VERSION: &'static str = env!("RUNTIME_VERSION");
    /// HTTP/1.1 by hand over httparse (`http.rs`).
    const WORKLOADS: u32 = WORKLOAD_V1 | WORKLOAD_RESPONSE | WORKLOAD_DIST | WORKLOAD_HTTP1;
    const HTTP_STACK: &'static str = concat!(
        "runbench responder over httparse ",
        env!("HTTPARSE_VERSION"),
        " in epoll loops"
    );

    fn serve(config: &Config, host: &HostHandle) -> Result<(), String> {
        let limit = config.max_connections.map(|n| Arc::new(Limit::new(n)));
        let (worker_config, worker_host) = (config.clone(), host.clone());
        // Each thread (pinned) reports once its listener accepts, or ends with why it could not.
        serve_on_threads(config, host, "epoll", move |i, bound| {
            event_loop(i, &worker_config, &worker_host, limit.as_deref(), bound)
        })
    }
}

export_plugin!(Epoll);

fn event_loop(
    index: usize,
    config: &Config,
    host: &HostHandle,
    limit: Option<&Limit>,
    bound: Bound,
) -> Result<(), String> {
    let event_loop = EventLoop::new(config.listen()?, config, host, limit)
        .map_err(|e| format!("setting up epoll for event loop {index}: {e}"))?;
    let _ = bound.send(Ok(()));
    drop(bound);
    event_loop
        .run()
        .map_err(|e| format!("event loop {index}: epoll_wait failed: {e}"))
}
