//! runbench plugin for tokio's multi-thread, work-stealing runtime: one accept loop, one task per
//! connection, `threads` workers. This is how most tokio servers are written.
//!
//! Threads: `threads` workers (`tokio-worker`); the calling thread runs the accept loop inside
//! `block_on`. tokio's blocking pool adds threads only for a workload with `blocking`.

mod rt;

use rt::Rt;
use runbench_plugin_abi::{
    export_plugin, Config, HostHandle, Plugin, Server, WORKLOAD_ALL, WORKLOAD_HTTP1,
};
use tokio::net::TcpListener;

struct Tokio;

impl Plugin for Tokio {
    const RUNTIME: &'static str = "tokio";
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
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.threads)
            .thread_name("tokio-worker")
            .enable_all()
            .build()
            .map_err(|e| format!("building the tokio runtime: {e}"))?;
        runtime.block_on(async {
            let listener = TcpListener::from_std(config.listen()?).map_err(|e| e.to_string())?;
            host.ready();
            Server::new(config, host).serve(Rt, listener).await;
            Ok(())
        })
    }
}

export_plugin!(Tokio);
