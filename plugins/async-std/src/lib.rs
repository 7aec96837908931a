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
//! loop inside `task::block_on`, as tokio's plugin does. The `blocking` crate's pool
//! (`task::spawn_blocking`) adds threads only for a workload with `blocking`: it starts them on
//! the first job and lets idle ones exit.
//!
//! `max_connections` uses tokio's `sync::Semaphore` (runtime-independent; only tokio's `sync`
//! feature is built). async-std has no semaphore of its own, and `async-lock`'s, which its locks
//! come from, is not fair: a newly accepted connection's `acquire` takes a freed permit before
//! the woken waiter does, starving the longest-waiting ones. tokio's hands permits out FIFO.

use async_std::channel::{Receiver, Sender};
use async_std::net::{TcpListener, TcpStream};
use runbench_plugin_abi::{
    export_plugin, BlockingJob, Channel, Config, Connection, FuturesIo, HopReceiver, HopSender,
    HostHandle, Job, Plugin, Primitives, Runtime, Server, Timer, WORKLOAD_ALL,
};
use std::future::Future;
use std::io;
use std::time::Duration;

/// Read by async-std once, when its global executor starts.
const THREAD_COUNT_VAR: &str = "ASYNC_STD_THREAD_COUNT";

struct AsyncStd;

impl Plugin for AsyncStd {
    const RUNTIME: &'static str = "async-std";
    const RUNTIME_VERSION: &'static str = env!("RUNTIME_VERSION");
    /// HTTP/1.1 through smol-hyper's `FuturesIo`.
    const WORKLOADS: u32 = WORKLOAD_ALL | runbench_plugin_abi::WORKLOAD_HTTP1;
    const HTTP_STACK: &'static str = concat!(
        "hyper ",
        env!("HYPER_VERSION"),
        " + smol-hyper ",
        env!("SMOL_HYPER_VERSION"),
        " FuturesIo"
    );

    fn serve(config: &Config, host: &HostHandle) -> Result<(), String> {
        // Must happen before the first async-std call in this process (a serve child calls
        // `serve` once). The host's other threads are parked on locks, not reading the
        // environment, so changing it here races with nothing.
        std::env::set_var(THREAD_COUNT_VAR, config.threads.to_string());
        let listener = TcpListener::from(config.listen()?);
        async_std::task::block_on(async {
            host.ready();
            Server::new(config, host).serve(Rt, listener).await;
        });
        Ok(())
    }
}

export_plugin!(AsyncStd);

/// async-std as the shared request handling sees it: detached tasks on its global executor,
/// counted by the senders they hold (its `JoinHandle`s cannot say whether a task has finished,
/// so a list of them could not be pruned), its timer and sockets, and tokio's FIFO-fair
/// semaphore (see the crate docs).
#[derive(Clone)]
struct Rt;

impl Timer for Rt {
    fn sleep(&self, d: Duration) -> impl Future<Output = ()> {
        async_std::task::sleep(d)
    }
}

/// The workload's parts on async-std's own primitives: `task::spawn` per fan-out task or hop
/// relay (its `JoinHandle` is the join; dropping one detaches its task), `task::spawn_blocking`
/// (the `blocking` crate's pool) and `async_std::channel` (async-channel) for hops.
impl Primitives for Rt {
    type Channel = Chan;

    fn spawn_job(&self, job: Job<Self>) -> impl Future<Output = ()> {
        async_std::task::spawn(job.run())
    }

    fn blocking(&self, job: BlockingJob) -> impl Future<Output = ()> {
        async_std::task::spawn_blocking(move || job.run())
    }
}

/// async-std's bounded channel, as the hops' [`Channel`].
struct Chan;
struct Tx(Sender<u64>);
struct Rx(Receiver<u64>);

impl Channel for Chan {
    type Sender = Tx;
    type Receiver = Rx;
    fn bounded(capacity: usize) -> (Tx, Rx) {
        let (tx, rx) = async_std::channel::bounded(capacity);
        (Tx(tx), Rx(rx))
    }
}

impl HopSender for Tx {
    async fn send(&self, msg: u64) -> bool {
        self.0.send(msg).await.is_ok()
    }
}

impl HopReceiver for Rx {
    async fn recv(&mut self) -> Option<u64> {
        self.0.recv().await.ok()
    }
}

impl Runtime for Rt {
    type Listener = TcpListener;
    type Stream = FuturesIo<TcpStream>;
    /// Every task holds a clone of the sender; `recv` fails once all are gone.
    type Tasks = (Sender<()>, Receiver<()>);
    type Semaphore = tokio::sync::Semaphore;

    async fn accept(&self, listener: &TcpListener) -> io::Result<Self::Stream> {
        Ok(FuturesIo(listener.accept().await?.0))
    }
    /// smol-hyper's futures-io adapter on the stream itself.
    fn http_io(&self, stream: Self::Stream) -> Option<impl runbench_plugin_abi::http::HttpIo> {
        Some(smol_hyper::rt::FuturesIo::new(stream.0))
    }
    fn tasks(&self) -> Self::Tasks {
        async_std::channel::bounded(1)
    }
    fn spawn(&self, (alive, _): &mut Self::Tasks, connection: Connection<Self>) {
        let alive = alive.clone();
        async_std::task::spawn(async move {
            connection.serve().await;
            drop(alive);
        });
    }
    async fn join_all(&self, (alive, all_closed): Self::Tasks) {
        drop(alive);
        let _ = all_closed.recv().await;
    }
}
