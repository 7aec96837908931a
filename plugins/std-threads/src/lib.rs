//! runbench plugin for plain threads, the baseline every async row should be read against: one
//! blocking `std::net` thread per connection, no runtime, no reactor. Each connection thread has
//! a small stack ([`STACK_BYTES`]); its echo buffer is on the heap like every plugin's.
//!
//! Threads: `threads` acceptor threads (`std-threads-<i>`), each with its own SO_REUSEPORT
//! listener, plus one thread per open connection (`std-conn`), including connections waiting
//! for a `max_connections` slot. So the scenario's `threads` sets only how many threads accept;
//! the serving threads are as many as the connections. One helper: `std-threads-stop`, which
//! brings the stop to threads blocked in the kernel ([`kick`]). A workload adds threads only
//! when it asks for them: a fixed blocking pool of `threads` workers (`std-blocking`) for a
//! workload with `blocking`, started with the server; one thread per fan-out task
//! (`std-job`, started per request and joined before the answer); one relay thread per hop per
//! connection (`std-job`, for the connection's life).
//!
//! Workload parts: the ABI crate's [`SyncHandler`] (the async plugins' `Handler` for a thread
//! that blocks) with std's primitives ([`Std`]): `thread::sleep` as the timer, a thread per
//! fan-out task, the pool for `blocking`, std's bounded `mpsc` between relay threads for hops.
//! Sized answers (`response_bytes`) go out once per complete request.
//!
//! I/O: a blocking read and a blocking write per message, as a plain blocking server does. The
//! stop reaches a thread parked in `read` or `write` as a signal that interrupts the call (see
//! [`kick`]); the thread then reads the stop flags. Data that is ready wins over the stop
//! signal, as in every plugin.
//!
//! Limits: a thread is a kernel task and a stack mapping, so the connection count is bounded by
//! `kernel.threads-max`, `kernel.pid_max`, RLIMIT_NPROC, the cgroup's `pids.max`,
//! `vm.max_map_count` (a stack and its guard page are two mappings) and memory. They are read at
//! start and logged; when a connection's thread cannot be spawned the connection is closed,
//! counted as an accept error, the first refusal is logged as a warning (error and connections
//! open), and `serve` fails at the end with how many were refused and the limits in force, so
//! the row says why it could not reach its connection count. The header declares
//! [`NEEDS_THREAD_PER_CONNECTION`], so the runner skips a point these limits cannot hold before
//! it starts (in one 50k run without that, the servers died of a SIGKILL whose source was not
//! found before `serve` returned).
//!
//! `max_connections` uses tokio's `sync::Semaphore` (FIFO-fair, runtime-independent; only
//! tokio's `sync` feature is built): a waiting connection's thread blocks on it.

mod http;
mod kick;

use runbench_plugin_abi::os::ThreadLimits;
use runbench_plugin_abi::{
    export_plugin, os, serve_connection, serve_on_threads, BlockingJob, Bound, Config, HostHandle,
    MessageTracker, Outcome, Plugin, SizedAnswer, StopWait, SyncHandler, SyncJob, SyncJoin,
    SyncPrimitives, ACCEPT_BACKOFF, ECHO_BUFFER_BYTES, NEEDS_THREAD_PER_CONNECTION, WORKLOAD_ALL,
};
use std::future::Future;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::pin::pin;
use std::sync::atomic::{
    AtomicBool, AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};
use std::sync::mpsc::{self, sync_channel, SyncSender};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::Semaphore;

const STACK_BYTES: usize = runbench_plugin_abi::os::CONNECTION_STACK_KIB * 1024;

struct StdThreads;

impl Plugin for StdThreads {
    const RUNTIME: &'static str = "std-threads";
    const RUNTIME_VERSION: &'static str = env!("RUNTIME_VERSION");
    const NEEDS: u32 = NEEDS_THREAD_PER_CONNECTION;
    /// HTTP/1.1 by hand (the ABI crate's responder).
    const WORKLOADS: u32 = WORKLOAD_ALL | runbench_plugin_abi::WORKLOAD_HTTP1;
    const HTTP_STACK: &'static str = concat!(
        "runbench responder over httparse ",
        env!("HTTPARSE_VERSION"),
        " on blocking threads"
    );

    fn serve(config: &Config, host: &HostHandle) -> Result<(), String> {
        let limits = ThreadLimits::read();
        host.info(&format!("std-threads: {}", limits.describe()));
        let pool = if config.workload.blocking.is_zero() {
            None
        } else {
            Some(Arc::new(Pool::start(config.threads.max(1)).map_err(
                |e| format!("starting the blocking pool's threads: {e}"),
            )?))
        };
        let server = Arc::new(Server {
            prims: Std {
                pool: pool.clone(),
                host: host.clone(),
                refused_jobs: Arc::new(AtomicU64::new(0)),
            },
            config: config.clone(),
            host: host.clone(),
            stop: StopFds::new(host).map_err(|e| format!("creating the stop eventfds: {e}"))?,
            permits: config.max_connections.map(|n| Arc::new(Semaphore::new(n))),
            live: (Mutex::new(0), Condvar::new()),
            refused: AtomicU64::new(0),
            first_refusal: Mutex::new(None),
            flags: kick::Flags::default(),
            threads: kick::Registry::default(),
            done: AtomicBool::new(false),
        });
        kick::install().map_err(|e| format!("installing the stop signal's handler: {e}"))?;
        let kicker_server = server.clone();
        let kicker = std::thread::Builder::new()
            .name("std-threads-stop".into())
            .spawn(move || {
                let s = &kicker_server;
                kick::run(
                    &s.threads,
                    &s.flags,
                    &s.stop.stopping,
                    &s.stop.forced,
                    &s.done,
                )
            })
            .map_err(|e| format!("starting the stop thread: {e}"))?;
        let worker_server = server.clone();
        let served = serve_on_threads(config, host, "std-threads", move |_, bound| {
            accept_loop(&worker_server, bound)
        });
        server.done.store(true, Release);
        let _ = kicker.join();
        if let Some(pool) = pool {
            pool.stop();
        }
        served?;
        let refused = server.refused.load(Relaxed);
        if refused > 0 {
            let why = server
                .first_refusal
                .lock()
                .unwrap()
                .take()
                .unwrap_or_default();
            return Err(format!(
                "std-threads could not start a thread for {refused} connection(s) (first: {why}); \
                 limits: {}",
                limits.describe()
            ));
        }
        Ok(())
    }
}

export_plugin!(StdThreads);

struct Server {
    prims: Std,
    config: Config,
    host: HostHandle,
    stop: StopFds,
    permits: Option<Arc<Semaphore>>,
    /// Open connection threads, so `serve` returns only once all are done.
    live: (Mutex<usize>, Condvar),
    refused: AtomicU64,
    first_refusal: Mutex<Option<String>>,
    /// The stop as the connection threads see it, those threads, and the end of `serve`.
    flags: kick::Flags,
    threads: kick::Registry,
    done: AtomicBool,
}

/// Two eventfds that become (and stay) readable when the stop signal comes and when the grace
/// period is over, so any number of threads blocked in `poll` wake on them.
struct StopFds {
    // Kept registered with the stop token: their wakers write the eventfds. Declared first so
    // they unregister before the fds close.
    _waits: [StopWait; 2],
    stopping: OwnedFd,
    forced: OwnedFd,
}

impl StopFds {
    fn new(host: &HostHandle) -> io::Result<Self> {
        let stopping = os::eventfd()?;
        let forced = os::eventfd()?;
        let waits = [
            signal_fd_on(host.stop().stopping(), &stopping),
            signal_fd_on(host.stop().forced(), &forced),
        ];
        Ok(StopFds {
            _waits: waits,
            stopping,
            forced,
        })
    }
}

/// Polls `wait` once with a waker that sets `fd`, and returns it to keep that waker registered.
fn signal_fd_on(mut wait: StopWait, fd: &OwnedFd) -> StopWait {
    let waker = Waker::from(Arc::new(os::EventFdWaker(fd.as_raw_fd())));
    if std::pin::Pin::new(&mut wait)
        .poll(&mut Context::from_waker(&waker))
        .is_ready()
    {
        waker.wake_by_ref();
    }
    wait
}

/// Runs a future on the calling thread, parking between polls: used only for the semaphore
/// wait and [`serve_connection`]'s bookkeeping around the blocking echo loop.
fn block_on<F: Future>(fut: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

enum Ready {
    Socket,
    Stop,
}

/// Blocks until `fd` has `events` or `stop_fd` is set; the socket wins a tie.
fn wait_for(fd: RawFd, events: libc::c_short, stop_fd: &OwnedFd) -> io::Result<Ready> {
    let mut fds = [
        libc::pollfd {
            fd,
            events,
            revents: 0,
        },
        libc::pollfd {
            fd: stop_fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    loop {
        // SAFETY: `fds` is a live array of two pollfds.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        // Errors and hang-ups count as the socket being ready: the next read or write sees them.
        if fds[0].revents != 0 {
            return Ok(Ready::Socket);
        }
        if fds[1].revents != 0 {
            return Ok(Ready::Stop);
        }
    }
}

fn accept_loop(server: &Arc<Server>, bound: Bound) -> Result<(), String> {
    let listener: TcpListener = server.config.listen()?;
    let _ = bound.send(Ok(()));
    drop(bound);
    let host = &server.host;
    loop {
        match wait_for(listener.as_raw_fd(), libc::POLLIN, &server.stop.stopping) {
            Ok(Ready::Socket) => {}
            Ok(Ready::Stop) => break,
            Err(e) => {
                host.warn(&format!("poll on the listener failed: {e}"));
                break;
            }
        }
        match listener.accept() {
            Ok((stream, _)) => {
                let ordinal = host.stats().accepted();
                if let Err(e) = spawn_connection(server, stream, ordinal) {
                    refuse(server, e);
                }
            }
            // Another wake-up took it (the listener is non-blocking).
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => {
                host.stats().accept_error();
                host.warn(&format!("accept failed: {e}"));
                std::thread::sleep(ACCEPT_BACKOFF);
            }
        }
    }
    drop(listener);
    let (count, closed) = &server.live;
    let mut live = count.lock().unwrap();
    while *live > 0 {
        live = closed.wait(live).unwrap();
    }
    Ok(())
}

/// A connection whose thread could not start: closed, counted, and reported by `serve`.
fn refuse(server: &Server, e: io::Error) {
    server.host.stats().accept_error();
    if server.refused.fetch_add(1, Relaxed) == 0 {
        let why = format!(
            "{e} with {} connections open",
            *server.live.0.lock().unwrap()
        );
        server.host.warn(&format!(
            "std-threads: cannot spawn a connection thread: {why}"
        ));
        *server.first_refusal.lock().unwrap() = Some(why);
    }
    std::thread::sleep(ACCEPT_BACKOFF);
}

fn spawn_connection(server: &Arc<Server>, stream: TcpStream, ordinal: u64) -> io::Result<()> {
    *server.live.0.lock().unwrap() += 1;
    let conn_server = server.clone();
    let spawned = std::thread::Builder::new()
        .name("std-conn".into())
        .stack_size(STACK_BYTES)
        .spawn(move || {
            let s = &conn_server;
            let entry = s.threads.enter();
            block_on(serve_connection(
                &s.host,
                s.host.stop().stopping(),
                s.permits
                    .as_ref()
                    .map(|sem| async { sem.acquire().await.ok() }),
                async { echo(stream, s, &entry.turns, ordinal) },
            ));
            drop(entry);
            let (count, closed) = &s.live;
            *count.lock().unwrap() -= 1;
            closed.notify_all();
        });
    if let Err(e) = spawned {
        *server.live.0.lock().unwrap() -= 1;
        return Err(e);
    }
    Ok(())
}

fn echo(mut stream: TcpStream, server: &Server, turns: &AtomicU64, ordinal: u64) -> Outcome {
    if stream.set_nodelay(true).is_err() {
        return Outcome::IoError;
    }
    let workload = &server.config.workload;
    let mut handler = SyncHandler::new(&server.prims, &server.host, workload, ordinal);
    let outcome = answer(&mut stream, server, turns, &mut handler);
    handler.finish();
    outcome
}

/// The echo loop: read, do each request's work, answer (the bytes read, or one sized answer
/// per complete request), until the peer closes, the stop or an error.
fn answer(
    stream: &mut TcpStream,
    server: &Server,
    turns: &AtomicU64,
    handler: &mut SyncHandler<Std>,
) -> Outcome {
    let (config, host, flags) = (&server.config, &server.host, &server.flags);
    if config.workload.protocol == runbench_plugin_abi::Protocol::Http1 {
        let stop = (&flags.stopping, &flags.forced);
        return http::serve(stream, handler, config, host, stop, turns);
    }
    let fd = stream.as_raw_fd();
    let mut buf = vec![0u8; ECHO_BUFFER_BYTES];
    let sized = (!config.workload.is_echo()).then(|| SizedAnswer::new(&config.workload));
    let mut out = Vec::new();
    let mut tracker = MessageTracker::new(config.workload.request_bytes);
    let has_work = handler.has_work();
    loop {
        turns.fetch_add(1, Release);
        // At a message boundary the stop ends the connection cleanly; inside a message only the
        // end of the grace period does, cutting it. Data that is ready wins either way.
        let stop = if tracker.at_boundary() {
            &flags.stopping
        } else {
            &flags.forced
        };
        if stop.load(Acquire) && !kick::readable(fd, Duration::ZERO) {
            return if tracker.at_boundary() {
                Outcome::Clean
            } else {
                Outcome::Cut
            };
        }
        let n = match stream.read(&mut buf) {
            Ok(0) => return Outcome::PeerClosed,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Outcome::IoError,
        };
        let requests = match &sized {
            None => tracker.consumed(n),
            Some(_) => tracker.completed(n),
        };
        if has_work {
            for _ in 0..requests {
                handler.request();
            }
        } else {
            handler.done(requests);
        }
        let mut data = match &sized {
            None => &buf[..n],
            Some(_) if requests == 0 => continue,
            Some(s) => {
                let len = s.fill(&mut out, requests);
                &out[..len]
            }
        };
        let len = data.len();
        while !data.is_empty() {
            match stream.write(data) {
                Ok(0) => return Outcome::IoError,
                Ok(k) => data = &data[k..],
                // A client that does not read holds the write until the grace period is over.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    if flags.forced.load(Acquire) {
                        return Outcome::Cut;
                    }
                }
                Err(_) => return Outcome::IoError,
            }
        }
        host.stats().echoed(len);
    }
}

/// std's primitives for the workload's parts (see the crate docs).
#[derive(Clone)]
pub(crate) struct Std {
    pool: Option<Arc<Pool>>,
    host: HostHandle,
    /// Jobs whose thread could not start (the first is logged).
    refused_jobs: Arc<AtomicU64>,
}

/// A job's thread, or none if it could not start (then the job did not run, and the counters
/// show the work missing).
struct Joined(Option<JoinHandle<()>>);

impl SyncJoin for Joined {
    fn join(self) {
        if let Some(thread) = self.0 {
            let _ = thread.join();
        }
    }
}

impl SyncPrimitives for Std {
    type Join = Joined;

    fn spawn_job(&self, job: SyncJob<Self>) -> Joined {
        let spawned = std::thread::Builder::new()
            .name("std-job".into())
            .stack_size(STACK_BYTES)
            .spawn(move || job.run());
        match spawned {
            Ok(thread) => Joined(Some(thread)),
            Err(e) => {
                if self.refused_jobs.fetch_add(1, Relaxed) == 0 {
                    self.host.warn(&format!(
                        "std-threads: cannot start a fan-out task's or hop relay's thread ({e}); \
                         its work is not done, and the counters show it missing"
                    ));
                }
                Joined(None)
            }
        }
    }

    fn blocking(&self, job: BlockingJob) {
        if let Some(pool) = &self.pool {
            pool.run(job);
        }
    }

    fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
    }
}

type PoolJob = (BlockingJob, SyncSender<()>);

/// The blocking pool: a fixed set of worker threads taking jobs from one queue.
struct Pool {
    jobs: Mutex<Option<mpsc::Sender<PoolJob>>>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

impl Pool {
    fn start(workers: usize) -> io::Result<Pool> {
        let (tx, rx) = mpsc::channel::<PoolJob>();
        let rx = Arc::new(Mutex::new(rx));
        let pool = Pool {
            jobs: Mutex::new(Some(tx)),
            workers: Mutex::new(Vec::with_capacity(workers)),
        };
        for _ in 0..workers {
            let rx = rx.clone();
            let worker = std::thread::Builder::new()
                .name("std-blocking".into())
                .spawn(move || loop {
                    let next = rx.lock().unwrap().recv();
                    let Ok((job, done)) = next else {
                        return;
                    };
                    job.run();
                    let _ = done.send(());
                });
            match worker {
                Ok(w) => pool.workers.lock().unwrap().push(w),
                Err(e) => {
                    pool.stop();
                    return Err(e);
                }
            }
        }
        Ok(pool)
    }

    /// Runs `job` on a worker and returns once it has run (or was dropped unrun: the pool
    /// stopped).
    fn run(&self, job: BlockingJob) {
        let (done, ran) = sync_channel(1);
        let queued = match &*self.jobs.lock().unwrap() {
            Some(jobs) => jobs.send((job, done)).is_ok(),
            None => false,
        };
        if queued {
            let _ = ran.recv();
        }
    }

    /// Closes the queue and joins the workers.
    fn stop(&self) {
        self.jobs.lock().unwrap().take();
        for w in std::mem::take(&mut *self.workers.lock().unwrap()) {
            let _ = w.join();
        }
    }
}
