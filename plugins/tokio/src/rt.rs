//! tokio as runbench's shared request handling sees it (hyper-util's `rt/tokio.rs` in spirit):
//! a `JoinSet` of connection tasks, tokio's FIFO-fair `Semaphore`, tokio's timer, and tokio's
//! streams through `tokio-util`'s compat (tokio's I/O traits differ from futures-io's only in
//! the read buffer type); HTTP/1.1 through hyper-util's `TokioIo`. Used by both tokio plugins; `tokio-per-core` includes this file.

use runbench_plugin_abi::{BlockingJob, Connection, FuturesIo, Job, Primitives, Runtime, Timer};
use std::future::Future;
use std::io;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::compat::{Compat, TokioAsyncReadCompatExt};

/// The runtime the calling task runs on (any tokio flavour).
#[derive(Clone)]
pub struct Rt;

impl Timer for Rt {
    fn sleep(&self, d: Duration) -> impl Future<Output = ()> {
        tokio::time::sleep(d)
    }
}

/// The workload's parts on tokio's own primitives: `spawn` (a fan-out task or a hop's relay on
/// the calling runtime; its `JoinHandle` is the join), `spawn_blocking` (tokio's blocking pool)
/// and `mpsc` (the hops).
impl Primitives for Rt {
    type Channel = runbench_plugin_abi::TokioMpsc;

    fn spawn_job(&self, job: Job<Self>) -> impl Future<Output = ()> {
        let handle = tokio::spawn(job.run());
        async move {
            let _ = handle.await;
        }
    }

    fn blocking(&self, job: BlockingJob) -> impl Future<Output = ()> {
        let handle = tokio::task::spawn_blocking(move || job.run());
        async move {
            let _ = handle.await;
        }
    }
}

impl Runtime for Rt {
    type Listener = TcpListener;
    type Stream = FuturesIo<Compat<TcpStream>>;
    type Tasks = JoinSet<()>;
    type Semaphore = tokio::sync::Semaphore;

    async fn accept(&self, listener: &TcpListener) -> io::Result<Self::Stream> {
        Ok(FuturesIo(listener.accept().await?.0.compat()))
    }
    fn tasks(&self) -> JoinSet<()> {
        JoinSet::new()
    }
    fn spawn(&self, tasks: &mut JoinSet<()>, connection: Connection<Self>) {
        tasks.spawn(connection.serve());
        while tasks.try_join_next().is_some() {}
    }
    async fn join_all(&self, mut tasks: JoinSet<()>) {
        while tasks.join_next().await.is_some() {}
    }
    /// hyper-util's `TokioIo` on the tokio stream itself (the compat layer is the echo's).
    fn http_io(&self, stream: Self::Stream) -> Option<impl runbench_plugin_abi::http::HttpIo> {
        Some(hyper_util::rt::TokioIo::new(stream.0.into_inner()))
    }
}
