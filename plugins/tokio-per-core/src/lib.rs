//! runbench plugin for tokio run thread-per-core: `threads` independent `current_thread`
//! runtimes, each on its own OS thread pinned to one server CPU, each with its own SO_REUSEPORT
//! listener, so the kernel spreads connections over the threads and no task ever moves between
//! them. This is how tokio is used where work stealing costs more than it saves (many short,
//! independent connections), e.g. the shape of actix-web's workers.
//!
//! Threads: exactly `threads` worker threads named `tokio-per-core-<i>`; the calling thread only
//! waits for them. tokio's blocking pool adds threads only for a workload with `blocking`.
//!
//! `max_connections` is one limit for the whole server: a `tokio::sync::Semaphore` shared by all
//! runtimes (its wakers work across runtimes), so a connection accepted by a busy thread waits
//! even if another thread has a free slot, exactly as in the multi-thread plugin.

// The tokio plugin's adapter: the same primitives, one runtime per thread here.
#[path = "../../tokio/src/rt.rs"]
mod rt;

use rt::Rt;
use runbench_plugin_abi::{
    export_plugin, serve_per_core, Config, HostHandle, Plugin, WORKLOAD_ALL, WORKLOAD_HTTP1,
};
use tokio::net::TcpListener;

struct TokioPerCore;

impl Plugin for TokioPerCore {
    const RUNTIME: &'static str = "tokio-per-core";
    const RUNTIME_VERSION: &'static str = env!("RUNTIME_VERSION");
    const WORKLOADS: u32 = WORKLOAD_ALL | WORKLOAD_HTTP1;
    const HTTP_STACK: &'static str = concat!(
        "hyper ",
        env!("HYPER_VERSION"),
        " + hyper-util ",
        env!("HYPER_UTIL_VERSION"),
        " TokioIo"
    );

    fn serve(config: &Config, host: &HostHandle) -> Result<(), String> {
        serve_per_core(config, host, "tokio-per-core", |core| {
            let index = core.index;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("building worker {index}'s tokio runtime: {e}"))?;
            let listener = core.config().listen()?;
            runtime.block_on(async {
                let listener = TcpListener::from_std(listener)
                    .map_err(|e| format!("registering the listener: {e}"))?;
                core.serve(Rt, listener).await
            })
        })
    }
}

export_plugin!(TokioPerCore);
