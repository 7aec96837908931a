//! runbench plugin for smol: one multi-threaded `async_executor::Executor` run by `threads` OS
//! threads, async-io as the reactor, one detached task per connection. This is the shape smol's
//! own docs give for a multi-threaded server (`Executor::run` on N threads until a shutdown
//! channel closes).
//!
//! Threads: `threads` executor threads named `smol-<i>`, plus one helper that async-io always
//! starts, its reactor thread (`async-io`), which polls epoll whenever no thread blocked in
//! `block_on` is doing so. The calling thread only waits for the server task (parked, not
//! polling the reactor). The `blocking` crate's pool (`smol::unblock`) adds threads only for a
//! workload with `blocking`: it starts them on the first job and lets idle ones exit.
//!
//! `max_connections` uses tokio's `sync::Semaphore` (runtime-independent; only tokio's `sync`
//! feature is built), not smol's re-export of async-lock's `Semaphore`: that one is not fair (a
//! newly accepted connection's `acquire` takes a freed permit before the woken waiter does),
//! and the contract is first-come first-served. tokio's hands permits out FIFO.

use runbench_plugin_abi::{
    export_plugin, BlockingJob, Channel, Config, Connection, DetachOnDrop, FuturesIo, HopReceiver,
    HopSender, HostHandle, Job, JoinHandles, Plugin, Primitives, Runtime, Server, Timer,
    WORKLOAD_ALL,
};
use smol::net::{TcpListener, TcpStream};
use smol::{Executor, Task};
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

struct Smol;

impl Plugin for Smol {
    const RUNTIME: &'static str = "smol";
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
        let server = ex.spawn(serve(Rt(ex.clone()), config.clone(), host.clone()));
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

async fn serve(rt: Rt, config: Config, host: HostHandle) -> Result<(), String> {
    let listener = TcpListener::try_from(config.listen()?)
        .map_err(|e| format!("registering the listener with async-io: {e}"))?;
    host.ready();
    Server::new(&config, &host).serve(rt, listener).await;
    Ok(())
}

/// smol as the shared request handling sees it: tasks on the one multi-threaded executor,
/// async-io's timer and sockets, and tokio's FIFO-fair semaphore (see the crate docs).
#[derive(Clone)]
struct Rt(Arc<Executor<'static>>);

impl Timer for Rt {
    async fn sleep(&self, d: Duration) {
        smol::Timer::after(d).await;
    }
}

/// The workload's parts on smol's own primitives: a task on the same executor per fan-out task
/// or hop relay (its `Task` is the join; dropped unawaited, it is detached, never cancelled),
/// `smol::unblock` (the `blocking` crate's pool) and async-channel (`smol::channel`) for hops.
impl Primitives for Rt {
    type Channel = Chan;

    fn spawn_job(&self, job: Job<Self>) -> impl Future<Output = ()> {
        DetachOnDrop::new(self.0.spawn(job.run()), Task::detach)
    }

    async fn blocking(&self, job: BlockingJob) {
        smol::unblock(move || job.run()).await;
    }
}

/// smol's bounded async-channel, as the hops' [`Channel`].
struct Chan;
struct Tx(smol::channel::Sender<u64>);
struct Rx(smol::channel::Receiver<u64>);

impl Channel for Chan {
    type Sender = Tx;
    type Receiver = Rx;
    fn bounded(capacity: usize) -> (Tx, Rx) {
        let (tx, rx) = smol::channel::bounded(capacity);
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
    type Tasks = JoinHandles<Task<()>>;
    type Semaphore = tokio::sync::Semaphore;

    async fn accept(&self, listener: &TcpListener) -> io::Result<Self::Stream> {
        Ok(FuturesIo(listener.accept().await?.0))
    }
    /// smol-hyper's futures-io adapter on the stream itself.
    fn http_io(&self, stream: Self::Stream) -> Option<impl runbench_plugin_abi::http::HttpIo> {
        Some(smol_hyper::rt::FuturesIo::new(stream.0))
    }
    fn tasks(&self) -> Self::Tasks {
        JoinHandles::default()
    }
    fn spawn(&self, tasks: &mut Self::Tasks, connection: Connection<Self>) {
        tasks.push(self.0.spawn(connection.serve()), Task::is_finished);
    }
    async fn join_all(&self, tasks: Self::Tasks) {
        tasks.join().await;
    }
}
