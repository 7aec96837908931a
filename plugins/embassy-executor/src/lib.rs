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
//! Same contract as the other plugins (see [`Plugin::serve`]). Tasks come from a static pool,
//! as embassy requires: with [`TASK_POOL`] connections being served, the accept loop holds the
//! next accepted connection until a task ends (later ones wait in the kernel's accept queue).
//! `max_connections` is a fair semaphore held while serving. Like the `embassy` plugin, it
//! serves once per process (the executor and task pools are process-wide statics).

use async_io::Async;
use embassy_executor::{Executor, Spawner};
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use embassy_sync::semaphore::{FairSemaphore, Semaphore};
use embassy_sync::signal::Signal;
use embassy_time::Timer;
use runbench_plugin_abi::{
    accept_until_stopped, echo_stream, export_plugin, race, Config, EchoStream, Either, FuturesIo,
    HostHandle, Outcome, Plugin, Timer as _,
};
use static_cell::StaticCell;
use std::cell::Cell;
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};

/// Connection tasks in the static pool: the most connections served at once. Untouched slots
/// cost address space, not memory; 16384 is near the open-files limit of one server process.
pub const TASK_POOL: usize = 16_384;

struct EmbassyExecutor;

impl Plugin for EmbassyExecutor {
    const RUNTIME: &'static str = "embassy-executor";
    const RUNTIME_VERSION: &'static str = env!("RUNTIME_VERSION");
    // Connections beyond the static task pool wait, accepted, for a task to end.
    const CONNECTION_LIMIT: u64 = TASK_POOL as u64;

    fn serve(config: &Config, host: &HostHandle) -> Result<(), String> {
        serve(config, host)
    }
}

export_plugin!(EmbassyExecutor);

/// What the tasks share; everything runs on the executor's thread, hence `Cell`s.
struct Shared {
    config: Config,
    host: HostHandle,
    permits: Option<FairSemaphore<NoopRawMutex, TASK_POOL>>,
    /// Connection tasks spawned and not yet ended.
    live: Cell<usize>,
    /// Raised when a connection task ends; awaited by the accept task.
    changed: Signal<NoopRawMutex, ()>,
    /// Set when the accept task has seen every connection end; ends `run_until`.
    done: Cell<bool>,
}

impl Shared {
    async fn until(&self, cond: impl Fn(&Shared) -> bool) {
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
    let listener = config.listen()?;
    let listener =
        Async::new(listener).map_err(|e| format!("registering the listener with async-io: {e}"))?;
    let shared: &'static Shared = Box::leak(Box::new(Shared {
        config: config.clone(),
        host: host.clone(),
        permits: config.max_connections.map(FairSemaphore::new),
        live: Cell::new(0),
        changed: Signal::new(),
        done: Cell::new(false),
    }));
    let failure = Cell::new(None);
    let executor = EXECUTOR.init(Executor::new());
    executor.run_until(
        |spawner| match accept_task(spawner, listener, shared) {
            Ok(token) => spawner.spawn(token),
            Err(e) => {
                failure.set(Some(format!("spawning the accept task: {e:?}")));
                shared.done.set(true);
            }
        },
        || shared.done.get(),
    );
    match failure.take() {
        Some(msg) => Err(msg),
        None => Ok(()),
    }
}

#[embassy_executor::task]
async fn accept_task(spawner: Spawner, listener: Async<TcpListener>, shared: &'static Shared) {
    // The kernel queues connections from here on.
    shared.host.ready();
    accept_until_stopped(
        &shared.host,
        || listener.accept(),
        |(stream, _)| async move {
            // A full pool: this connection waits, accepted, for a task to end. A task's slot is
            // free once its body has returned, which is before `live` is read.
            shared.until(|s| s.live.get() < TASK_POOL).await;
            shared.live.set(shared.live.get() + 1);
            match connection_task(stream, shared) {
                Ok(token) => spawner.spawn(token),
                Err(e) => {
                    shared.live.set(shared.live.get() - 1);
                    shared.host.stats().finished(Outcome::IoError);
                    shared
                        .host
                        .warn(&format!("no task for a connection: {e:?}"));
                }
            }
        },
        |d| EmbassyTimer.sleep(d),
    )
    .await;
    drop(listener);
    shared.until(|s| s.live.get() == 0).await;
    shared.done.set(true);
}

// A path, not the bare name: the macro defines its own `POOL_SIZE` from this expression.
#[embassy_executor::task(pool_size = crate::TASK_POOL)]
async fn connection_task(stream: Async<TcpStream>, shared: &'static Shared) {
    let outcome = connection(stream, shared).await;
    shared.host.stats().finished(outcome);
    shared.live.set(shared.live.get() - 1);
    shared.changed.signal(());
}

async fn connection(stream: Async<TcpStream>, shared: &Shared) -> Outcome {
    let _permit = match &shared.permits {
        Some(permits) => match race(permits.acquire(1), shared.host.stop().stopping()).await {
            Either::Left(Ok(p)) => Some(p),
            // The wait queue has room for every task of the pool, so it is never full.
            Either::Left(Err(_)) | Either::Right(()) => return Outcome::Clean,
        },
        None => None,
    };
    let _serving = shared.host.stats().serving();
    echo(stream, shared).await
}

async fn echo(stream: Async<TcpStream>, shared: &Shared) -> Outcome {
    let mut stream = FuturesIo(stream);
    if stream.set_nodelay().is_err() {
        return Outcome::IoError;
    }
    let (host, workload) = (&shared.host, &shared.config.workload);
    let (stopping, forced) = (host.stop().stopping(), host.stop().forced());
    echo_stream(&mut stream, &EmbassyTimer, stopping, forced, host, workload).await
}

/// embassy-time's timer, for the shared echo loop and the accept back-off.
struct EmbassyTimer;

impl runbench_plugin_abi::Timer for EmbassyTimer {
    fn sleep(&self, d: std::time::Duration) -> impl std::future::Future<Output = ()> {
        // Rounds up to the 1 µs tick, so a requested delay is never shortened to zero.
        Timer::after(embassy_time::Duration::from_nanos(
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX),
        ))
    }
}
