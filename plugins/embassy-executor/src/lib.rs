//! runbench plugin `embassy-executor`: the embassy executor alone, on kernel sockets through
//! async-io. It is a control for the `embassy` plugin, not a way embassy runs on a device: with
//! the same executor and kernel TCP over loopback, like the other rows, the difference between
//! `embassy` and `embassy-executor` is the cost of smoltcp and the TAP device, and the
//! difference between `embassy-executor` and a one-thread tokio is the executor's.
//!
//! # What runs where
//! - One thread runs the embassy executor (`platform-std`, `executor-thread`): an accept task and
//!   one task per connection from a static pool of [`TASK_POOL`]. The scenario's server
//!   `threads` is ignored (always 1).
//! - async-io's reactor runs on a second thread: it waits in epoll and wakes a task through the
//!   embassy std pender (a mutex and condition variable) for each readiness event, so every
//!   wake-up from I/O crosses threads. That is the price of embassy's executor on a host, and it
//!   is in these numbers; on a device the pender is an interrupt.
//! - embassy-time's std driver has a third thread for timers (`sleep`, accept back-off).
//!
//! # Connections
//! Same contract as the other plugins (see [`Plugin::serve`]), served by the ABI crate's shared
//! request handling through [`Rt`]. Tasks come from a static pool, as embassy requires: with
//! [`TASK_POOL`] connections being served, the accept loop waits for a task to end before it
//! accepts the next connection (which waits in the kernel's accept queue meanwhile).
//! `max_connections` is embassy-sync's `FairSemaphore`, held while serving. Like the `embassy`
//! plugin, it serves once per process (the executor and task pools are process-wide statics).
//!
//! # Workload parts
//! `cpu` and `sleep` (fixed or drawn from the seeded sequence) on the executor's thread and
//! embassy-time's timer, and sized answers (`response_bytes`), through the ABI crate's shared
//! echo loop. Fan-out tasks and hop relays are spawned by the spawner into a static pool of
//! [`JOB_POOL`] job tasks, as embassy spawns everything; the hops cross embassy-sync
//! `Channel`s. A pool has the size it was built with: a spawn that finds it full fails at once
//! (waiting for a slot would not be the spawn the part measures), the job is dropped unrun, the
//! refusals are logged at the end, and the server's counters (timers, busy time, hop messages)
//! show the work missing, so the host's audit flags such a row rather than report it. Not
//! `blocking`: embassy has no blocking pool (a device has no other thread), so that bit is off
//! and the host skips such rows with that reason.
//!
//! # HTTP/1.1
//! The ABI crate's hyper server over smol-hyper's `FuturesIo` on async-io's stream, the same
//! stack as the `smol` row: this row is a host control, so its HTTP differs from the others'
//! only by the executor. (On a device, embassy serves HTTP with a `no_std` server such as
//! picoserve over embassy-net; that belongs to the `embassy` row.)

// Shared with the `embassy` plugin, which includes the file.
mod jobs;

use async_io::Async;
use embassy_executor::{Executor, Spawner};
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use embassy_sync::semaphore::{FairSemaphore, Semaphore};
use embassy_sync::signal::Signal;
use embassy_time::Timer as EmbassyTimer;
use jobs::JOB_POOL;
use runbench_plugin_abi::{
    export_plugin, Config, Connection, FuturesIo, HostHandle, Job, Outcome, Plugin, Primitives,
    Runtime, Server, Timer, WORKLOAD_ALL, WORKLOAD_BLOCKING, WORKLOAD_HTTP1,
};
use static_cell::StaticCell;
use std::cell::Cell;
use std::future::Future;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Connection tasks in the static pool: the most connections served at once. Untouched slots
/// cost address space, not memory; 16384 is near the open-files limit of one server process.
pub const TASK_POOL: usize = 16_384;

struct EmbassyExecutor;

impl Plugin for EmbassyExecutor {
    const RUNTIME: &'static str = "embassy-executor";
    const RUNTIME_VERSION: &'static str = env!("RUNTIME_VERSION");
    /// Every part but `blocking` (embassy has no blocking pool), and HTTP/1.1.
    const WORKLOADS: u32 = (WORKLOAD_ALL & !WORKLOAD_BLOCKING) | WORKLOAD_HTTP1;
    const HTTP_STACK: &'static str = concat!(
        "hyper ",
        env!("HYPER_VERSION"),
        " + smol-hyper ",
        env!("SMOL_HYPER_VERSION"),
        " FuturesIo over async-io"
    );
    // Connections beyond the static task pool wait, in the accept queue, for a task to end.
    const CONNECTION_LIMIT: u64 = TASK_POOL as u64;

    fn serve(config: &Config, host: &HostHandle) -> Result<(), String> {
        serve(config, host)
    }
}

export_plugin!(EmbassyExecutor);

/// The connection tasks' bookkeeping; everything runs on the executor's thread, hence `Cell`s.
#[derive(Default)]
struct Tasks {
    /// Connection tasks spawned and not yet ended.
    live: Cell<usize>,
    /// Raised when a connection task ends; awaited by the accept task.
    changed: Signal<NoopRawMutex, ()>,
    /// Set when the accept task has seen every connection end; ends `run_until`.
    done: Cell<bool>,
    /// Jobs (fan-out tasks, hop relays) dropped unrun because the job pool was full.
    jobs_refused: Cell<u64>,
}

impl Tasks {
    async fn until(&self, cond: impl Fn(&Tasks) -> bool) {
        while !cond(self) {
            self.changed.wait().await;
        }
    }
}

static SERVED: AtomicBool = AtomicBool::new(false);
static EXECUTOR: StaticCell<Executor> = StaticCell::new();

fn serve(config: &Config, host: &HostHandle) -> Result<(), String> {
    if SERVED.swap(true, Ordering::SeqCst) {
        return Err(
            "the embassy-executor plugin serves once per process (its executor and \
                    task pool are process-wide statics); start a new process"
                .into(),
        );
    }
    if config.threads != 1 {
        host.info(&format!(
            "server threads = {} ignored: the embassy executor runs on one thread",
            config.threads
        ));
    }
    let listener = Async::new(config.listen()?)
        .map_err(|e| format!("registering the listener with async-io: {e}"))?;
    let tasks: &'static Tasks = Box::leak(Box::default());
    let server = Server::new(config, host);
    let failure = Cell::new(None);
    let executor = EXECUTOR.init(Executor::new());
    executor.run_until(
        |spawner| match accept_task(Rt { spawner, tasks }, listener, server) {
            Ok(token) => spawner.spawn(token),
            Err(e) => {
                failure.set(Some(format!("spawning the accept task: {e:?}")));
                tasks.done.set(true);
            }
        },
        || tasks.done.get(),
    );
    match failure.take() {
        Some(msg) => Err(msg),
        None => Ok(()),
    }
}

#[embassy_executor::task]
async fn accept_task(rt: Rt, listener: Async<TcpListener>, server: Server<Rt>) {
    // The kernel queues connections from here on.
    server.host().ready();
    server.serve(rt, listener).await;
    let refused = rt.tasks.jobs_refused.get();
    if refused > 0 {
        server.host().warn(&format!(
            "embassy-executor: {refused} fan-out task(s) or hop relay(s) found the job pool \
             ({JOB_POOL} tasks) full and did not run; the counters show their work missing"
        ));
    }
    rt.tasks.done.set(true);
}

// A path, not the bare name: the macro defines its own `POOL_SIZE` from this expression.
#[embassy_executor::task(pool_size = crate::jobs::JOB_POOL)]
async fn job_task(job: Job<Rt>, done: Rc<jobs::Done>) {
    job.run().await;
    done.finish();
}

// A path, not the bare name: the macro defines its own `POOL_SIZE` from this expression.
#[embassy_executor::task(pool_size = crate::TASK_POOL)]
async fn connection_task(connection: Connection<Rt>, tasks: &'static Tasks) {
    connection.serve().await;
    tasks.live.set(tasks.live.get() - 1);
    tasks.changed.signal(());
}

/// The embassy executor as the shared request handling sees it: tasks from the static pool,
/// embassy-time's timer, async-io's sockets, and embassy-sync's `FairSemaphore`.
#[derive(Clone, Copy)]
struct Rt {
    spawner: Spawner,
    tasks: &'static Tasks,
}

impl Timer for Rt {
    fn sleep(&self, d: Duration) -> impl Future<Output = ()> {
        // Rounds up to the 1 µs tick, so a requested delay is never shortened to zero.
        EmbassyTimer::after(embassy_time::Duration::from_nanos(
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
        ))
    }
}

/// Fan-out tasks and hop relays from the static job pool through the spawner, hops over
/// embassy-sync channels; no blocking pool (see the crate docs).
impl Primitives for Rt {
    type Channel = jobs::Chan;

    fn spawn_job(&self, job: Job<Self>) -> impl Future<Output = ()> {
        jobs::spawn(
            |done| job_task(job, done),
            self.spawner,
            &self.tasks.jobs_refused,
        )
    }
}

impl Runtime for Rt {
    type Listener = Async<TcpListener>;
    type Stream = FuturesIo<Async<TcpStream>>;
    /// The live count in [`Rt::tasks`]; nothing per accept loop.
    type Tasks = ();
    type Semaphore = Fair;

    async fn accept(&self, listener: &Self::Listener) -> io::Result<Self::Stream> {
        // A full pool: the next connection waits in the accept queue for a task to end. A
        // task's slot is free once its body has returned, which is before `live` is read.
        self.tasks.until(|t| t.live.get() < TASK_POOL).await;
        Ok(FuturesIo(listener.accept().await?.0))
    }
    /// smol-hyper's futures-io adapter on async-io's stream, as the smol row: the same hyper
    /// server on a kernel socket, so against a one-thread tokio the difference is the executor.
    fn http_io(&self, stream: Self::Stream) -> Option<impl runbench_plugin_abi::http::HttpIo> {
        Some(smol_hyper::rt::FuturesIo::new(stream.0))
    }
    fn tasks(&self) {}
    fn spawn(&self, _: &mut (), connection: Connection<Self>) {
        let host = connection.host().clone();
        match connection_task(connection, self.tasks) {
            Ok(token) => {
                self.tasks.live.set(self.tasks.live.get() + 1);
                self.spawner.spawn(token);
            }
            Err(e) => {
                host.stats().finished(Outcome::IoError);
                host.warn(&format!("no task for a connection: {e:?}"));
            }
        }
    }
    async fn join_all(&self, _: ()) {
        self.tasks.until(|t| t.live.get() == 0).await;
    }
}

/// embassy-sync's `FairSemaphore`, as the ABI crate's [`runbench_plugin_abi::FairSemaphore`].
struct Fair(FairSemaphore<NoopRawMutex, TASK_POOL>);

impl runbench_plugin_abi::FairSemaphore for Fair {
    type Permit = Permit;

    fn new(permits: usize) -> Self {
        Fair(FairSemaphore::new(permits))
    }

    async fn acquire(self: &Arc<Self>) -> Option<Permit> {
        // The wait queue has room for every task of the pool, so it is never full.
        self.0.acquire(1).await.ok()?.disarm();
        Some(Permit(self.clone()))
    }
}

/// One `max_connections` slot of [`Fair`], given back when dropped.
struct Permit(Arc<Fair>);

impl Drop for Permit {
    fn drop(&mut self) {
        self.0 .0.release(1);
    }
}
