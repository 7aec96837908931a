//! runbench plugin for kimojio (Microsoft's thread-per-core io_uring runtime): one
//! `kimojio::Runtime` per server CPU, each with its own SO_REUSEPORT listener, accepting,
//! reading and writing through io_uring (`operations::accept`, `read`, `write`), one
//! `spawn_task`ed task per connection.
//!
//! Threads: exactly `threads` runtime threads (`kimojio-<i>`); the calling thread only joins.
//! kimojio starts no helper threads (io_uring may start kernel `iou-wrk` workers for operations
//! it cannot complete inline; none show up for socket I/O here).
//!
//! I/O driver: io_uring only; kimojio has no fallback. It needs Linux 5.15 or later and an
//! io_uring that is not disabled (`sysctl kernel.io_uring_disabled`, container seccomp
//! profiles); without it the runtime cannot be built and `serve` fails saying so. Built
//! without kimojio's default `tls` feature, so OpenSSL is not needed.
//!
//! Cross-thread wake-ups: kimojio's `Waker`s are thread-local (an `Rc` to the task, queued on
//! the runtime's own ready list), so they must never be woken from another thread, and both the
//! host's stop signal (woken on the host's stop-watcher thread) and the server-wide
//! `max_connections` semaphore (woken by whichever runtime freed a permit) do exactly that.
//! Each runtime therefore has a [`Relay`]: a future that must wake from another thread is polled
//! with a thread-safe waker that queues its id and bumps an eventfd; a task on the runtime reads
//! that eventfd through io_uring and wakes the real, local waker. This costs nothing per message
//! (only the stop and a permit hand-over go through it).
//!
//! `max_connections` is one limit for the whole server: a tokio `sync::Semaphore` (FIFO-fair,
//! runtime-independent; only tokio's `sync` feature is built) shared by all runtimes, waited on
//! through the relay. kimojio's own `AsyncSemaphore` is single-threaded.

use kimojio::configuration::Configuration;
use kimojio::{operations, OwnedFd, Runtime};
use runbench_plugin_abi::{
    echo_stream_with, export_plugin, os, race, serve_connection_with, serve_on_threads, Bound,
    Config, EchoStream, Either, HostHandle, Outcome, Plugin, StopSource, StopToken, StopWait,
};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use tokio::sync::Semaphore;

struct Kimojio;

impl Plugin for Kimojio {
    const RUNTIME: &'static str = "kimojio";
    const RUNTIME_VERSION: &'static str = env!("RUNTIME_VERSION");

    fn serve(config: &Config, host: &HostHandle) -> Result<(), String> {
        let (major, minor) = operations::kernel_version();
        if (major, minor) < (5, 15) {
            return Err(format!(
                "kimojio needs Linux 5.15 or later for io_uring; this kernel is {major}.{minor}"
            ));
        }
        let config = Arc::new(config.clone());
        let permits = config.max_connections.map(|n| Arc::new(Semaphore::new(n)));
        let (threads, worker_host) = (config.threads, host.clone());
        // Each thread reports once its listener accepts, or why it could not start.
        serve_on_threads(host, threads, "kimojio", move |i, bound| {
            worker(i, &config, worker_host.clone(), permits.clone(), bound);
            Ok(())
        })
    }
}

export_plugin!(Kimojio);

fn worker(
    index: usize,
    config: &Arc<Config>,
    host: HostHandle,
    permits: Option<Arc<Semaphore>>,
    bound: Bound,
) {
    let setup = || -> Result<(Runtime, std::net::TcpListener, Arc<Relay>), String> {
        if let Some(cpu) = config.cpu_for_worker(index) {
            os::pin_current_thread(cpu)
                .map_err(|e| format!("pinning runtime {index} to CPU {cpu}: {e}"))?;
        }
        // kimojio panics when io_uring cannot be set up; report why instead.
        let thread_index = u8::try_from(index).unwrap_or(u8::MAX);
        let runtime = std::panic::catch_unwind(|| Runtime::new(thread_index, Configuration::new()))
            .map_err(|p| {
                let why = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                format!(
                    "building kimojio runtime {index} (needs a working io_uring: check \
                         `sysctl kernel.io_uring_disabled` and any seccomp profile): {why}"
                )
            })?;
        let listener = os::reuseport_listener(config.addr)
            .map_err(|e| format!("listening on {}: {e}", config.addr))?;
        // io_uring waits for a connection itself; a non-blocking listener could make it fail
        // the accept with EAGAIN instead.
        listener
            .set_nonblocking(false)
            .map_err(|e| format!("making the listener blocking: {e}"))?;
        let relay = Relay::new().map_err(|e| format!("creating the wake-up eventfd: {e}"))?;
        Ok((runtime, listener, relay))
    };
    let (mut runtime, listener, relay) = match setup() {
        Ok(s) => s,
        Err(e) => {
            let _ = bound.send(Err(e));
            return;
        }
    };
    let _ = bound.send(Ok(()));
    drop(bound);
    let config = config.clone();
    let result = runtime.block_on(async move {
        let local = Rc::new(Local {
            relay,
            wakers: RefCell::default(),
            next_id: Cell::new(0),
        });
        // The relay runs for as long as the server; `race` drops it once the server is done.
        let server = accept_loop(
            OwnedFd::from(listener),
            host,
            config,
            permits,
            local.clone(),
        );
        race(server, local.run()).await;
    });
    if let Some(Err(p)) = result {
        std::panic::resume_unwind(p);
    }
}

async fn accept_loop(
    listener: OwnedFd,
    host: HostHandle,
    config: Arc<Config>,
    permits: Option<Arc<Semaphore>>,
    local: Rc<Local>,
) {
    let stop = LocalStop {
        token: host.stop().clone(),
        local: local.clone(),
    };
    let mut tasks = Vec::new();
    let mut stopping = stop.stopping();
    loop {
        let accepted = match race(operations::accept(&listener), &mut stopping).await {
            Either::Left(r) => r,
            Either::Right(()) => break,
        };
        match accepted {
            Ok(fd) => {
                host.stats().accepted();
                let (host, config, permits, stop) =
                    (host.clone(), config.clone(), permits.clone(), stop.clone());
                tasks.push(operations::spawn_task(async move {
                    connection(fd, &host, &stop, &config, permits).await;
                }));
            }
            Err(e) => {
                host.stats().accept_error();
                host.warn(&format!("accept failed: {e}"));
                let _ = operations::sleep(runbench_plugin_abi::ACCEPT_BACKOFF).await;
            }
        }
        // Forget finished tasks so the list does not grow with connection churn.
        tasks.retain(|t| !t.is_complete());
    }
    drop(listener);
    for t in tasks {
        let _ = t.await;
    }
}

async fn connection(
    fd: OwnedFd,
    host: &HostHandle,
    stop: &LocalStop,
    config: &Config,
    permits: Option<Arc<Semaphore>>,
) {
    let acquire = permits.map(|sem| {
        let wait: Pin<Box<dyn Future<Output = _>>> = Box::pin(sem.acquire_owned());
        stop.local.relayed(wait)
    });
    serve_connection_with(host, stop, acquire, echo(fd, host, stop, config)).await;
}

async fn echo(fd: OwnedFd, host: &HostHandle, stop: &LocalStop, config: &Config) -> Outcome {
    if socket2::SockRef::from(&fd).set_tcp_nodelay(true).is_err() {
        return Outcome::IoError;
    }
    echo_stream_with(&mut Stream(fd), host, stop, config).await
}

/// A connection for [`echo_stream_with`]. kimojio's reads borrow a slice (its future blocks in
/// `drop` until a cancelled read is done with it), so they go straight into the loop's buffer,
/// which stays borrowed for as long as the read future lives.
struct Stream(OwnedFd);

fn io_error(e: kimojio::Errno) -> io::Error {
    io::Error::from_raw_os_error(e.raw_os_error())
}

impl EchoStream for Stream {
    async fn read(&mut self, mut buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        match operations::read(&self.0, &mut buf[..]).await {
            Ok(n) => (Ok(n), buf),
            Err(e) => (Err(io_error(e)), buf),
        }
    }
    async fn write_all(&mut self, buf: Vec<u8>, n: usize) -> (io::Result<()>, Vec<u8>) {
        let mut done = 0;
        while done < n {
            match operations::write(&self.0, &buf[done..n]).await {
                Ok(0) => return (Err(io::ErrorKind::WriteZero.into()), buf),
                Ok(n) => done += n,
                Err(e) => return (Err(io_error(e)), buf),
            }
        }
        (Ok(()), buf)
    }
    async fn sleep(&self, d: std::time::Duration) {
        let _ = operations::sleep(d).await;
    }
}

/// The thread-safe half of a runtime's relay: ids of futures woken from another thread, and the
/// eventfd that tells the runtime there are some.
struct Relay {
    eventfd: std::os::fd::OwnedFd,
    woken: Mutex<Vec<u64>>,
}

impl Relay {
    fn new() -> io::Result<Arc<Self>> {
        Ok(Arc::new(Relay {
            eventfd: os::eventfd()?,
            woken: Mutex::new(Vec::new()),
        }))
    }
}

/// What a relayed future is polled with: any thread may wake it.
struct RemoteWaker {
    id: u64,
    relay: Arc<Relay>,
}

impl Wake for RemoteWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.relay.woken.lock().unwrap().push(self.id);
        Arc::new(os::EventFdWaker(self.relay.eventfd.as_raw_fd())).wake();
    }
}

/// The runtime-side half: the local wakers of the relayed futures, by id.
struct Local {
    relay: Arc<Relay>,
    wakers: RefCell<HashMap<u64, Waker>>,
    next_id: Cell<u64>,
}

impl Local {
    fn relayed<F: Future + Unpin>(self: &Rc<Self>, inner: F) -> Relayed<F> {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        Relayed {
            inner,
            id,
            remote: Waker::from(Arc::new(RemoteWaker {
                id,
                relay: self.relay.clone(),
            })),
            local: self.clone(),
            registered: None,
        }
    }

    /// Wakes, on this runtime's thread, the local waker of every future woken from elsewhere.
    async fn run(self: Rc<Self>) {
        let mut count = [0u8; 8];
        loop {
            if operations::read(&self.relay.eventfd, &mut count)
                .await
                .is_err()
            {
                // Not expected for an eventfd; without the relay nothing could stop, so say so.
                panic!("kimojio relay: reading the wake-up eventfd failed");
            }
            let ids = std::mem::take(&mut *self.relay.woken.lock().unwrap());
            let wakers: Vec<Waker> = {
                let map = self.wakers.borrow();
                ids.iter().filter_map(|id| map.get(id).cloned()).collect()
            };
            for w in wakers {
                w.wake();
            }
        }
    }
}

/// A future that may be woken from another thread, polled so that it never sees (and so never
/// wakes) a kimojio waker.
struct Relayed<F> {
    inner: F,
    id: u64,
    remote: Waker,
    local: Rc<Local>,
    registered: Option<Waker>,
}

impl<F: Future + Unpin> Future for Relayed<F> {
    type Output = F::Output;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        if !this
            .registered
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            this.local
                .wakers
                .borrow_mut()
                .insert(this.id, cx.waker().clone());
            this.registered = Some(cx.waker().clone());
        }
        Pin::new(&mut this.inner).poll(&mut Context::from_waker(&this.remote))
    }
}

impl<F> Drop for Relayed<F> {
    fn drop(&mut self) {
        self.local.wakers.borrow_mut().remove(&self.id);
    }
}

/// The host's stop signal as seen from one runtime: through its relay.
#[derive(Clone)]
struct LocalStop {
    token: StopToken,
    local: Rc<Local>,
}

impl StopSource for LocalStop {
    type Wait = Relayed<StopWait>;
    fn stopping(&self) -> Self::Wait {
        self.local.relayed(self.token.stopping())
    }
    fn forced(&self) -> Self::Wait {
        self.local.relayed(self.token.forced())
    }
}
