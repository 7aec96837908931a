//! The one request-handling path of every plugin on an async runtime, generic over the runtime:
//! the accept loop ([`Server::serve`]), the connection under the contract
//! ([`Connection::serve`]: permit, [`crate::Serving`] guard, outcome) and the echo loop with the
//! workload's per-request work ([`crate::echo_stream`]). The code here never names a runtime; a
//! plugin states its runtime's primitives by implementing [`Runtime`] (and [`Timer`], and
//! [`EchoStream`] for its stream), as hyper's core asks only for `rt::Executor`, `rt::Timer`
//! and `rt::Read`/`rt::Write`.

use crate::ACCEPT_BACKOFF;
use crate::{
    echo_stream, race, serve_connection, Config, EchoStream, Either, HostHandle, Primitives,
};
use std::future::{Future, IntoFuture};
use std::io;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::time::Duration;

/// The runtime's own timer (hyper's `rt::Timer`): the workload's per-request `sleep` and the
/// back-off after a failed accept.
pub trait Timer {
    /// Resolves once `d` has passed.
    fn sleep(&self, d: Duration) -> impl Future<Output = ()>;
}

/// What the shared request handling needs from one async runtime: its listener and accepted
/// stream (whose I/O is an [`EchoStream`]), its way to spawn a connection task and wait for all
/// of them at the end, and its FIFO-fair semaphore for `max_connections` (see
/// [`crate::Plugin::serve`]: a freed permit goes to the connection that waited longest). A value
/// of the type is a handle to the runtime as one accepting thread sees it (usually a unit
/// struct); it is cloned into every connection task.
///
/// A complete implementation (smol's plugin: its streams have the `futures-io` traits, its
/// tasks run on one multi-threaded `Executor`, and it borrows tokio's FIFO-fair semaphore):
///
/// ```ignore
/// #[derive(Clone)]
/// struct Rt(Arc<smol::Executor<'static>>);
///
/// impl Timer for Rt {
///     async fn sleep(&self, d: Duration) {
///         smol::Timer::after(d).await;
///     }
/// }
///
/// impl Runtime for Rt {
///     type Listener = smol::net::TcpListener;
///     type Stream = FuturesIo<smol::net::TcpStream>;
///     type Tasks = JoinHandles<smol::Task<()>>;
///     type Semaphore = tokio::sync::Semaphore; // its FairSemaphore impl: feature `tokio`
///
///     async fn accept(&self, listener: &Self::Listener) -> io::Result<Self::Stream> {
///         Ok(FuturesIo(listener.accept().await?.0))
///     }
///     fn tasks(&self) -> Self::Tasks {
///         JoinHandles::default()
///     }
///     fn spawn(&self, tasks: &mut Self::Tasks, connection: Connection<Self>) {
///         tasks.push(self.0.spawn(connection.serve()), smol::Task::is_finished);
///     }
///     async fn join_all(&self, tasks: Self::Tasks) {
///         tasks.join().await;
///     }
/// }
/// ```
///
/// A plugin then binds its listener, calls `host.ready()` and runs
/// `Server::<Rt>::new(config, host).serve(rt, listener).await` (or, thread-per-core,
/// [`crate::serve_per_core`]).
pub trait Runtime: Primitives {
    /// A bound, listening socket registered with the runtime.
    type Listener;
    /// An accepted connection.
    type Stream: EchoStream;
    /// The connection tasks one accept loop spawned and has not seen finish.
    type Tasks;
    /// The FIFO-fair semaphore that holds `max_connections` for the whole server; shared by
    /// every accepting thread, so it must wake tasks on other threads.
    type Semaphore: FairSemaphore;

    /// Accepts the next connection.
    fn accept(&self, listener: &Self::Listener) -> impl Future<Output = io::Result<Self::Stream>>;
    /// An empty set of connection tasks.
    fn tasks(&self) -> Self::Tasks;
    /// Spawns `connection.serve()` as a task of the runtime, adds it to `tasks`, and forgets
    /// the tasks that have finished, so the set does not grow with connection churn.
    fn spawn(&self, tasks: &mut Self::Tasks, connection: Connection<Self>);
    /// Resolves once every task in `tasks` has finished.
    fn join_all(&self, tasks: Self::Tasks) -> impl Future<Output = ()>;
    /// `fut` as the runtime's tasks may await it though it is woken from another thread (the
    /// host's stop signal from the host's stop-watcher thread, a permit freed on another
    /// thread). The default is `fut` itself, which suits every runtime whose wakers may be woken
    /// from any thread; one with thread-local wakers (kimojio) relays the wake-up to its own
    /// thread.
    fn cross_thread<F: Future>(&self, fut: F) -> impl Future<Output = F::Output> {
        fut
    }

    /// The accept still in flight when the stop signal came (`pending`): by default dropped,
    /// which cancels it. A runtime on which a cancelled accept can still take a connection
    /// (glommio's io_uring accept) ends it in the kernel instead and returns the connection it
    /// got, if any; that connection is served (and, stopping, closes clean at once).
    fn stop_accepting<F>(
        &self,
        listener: &Self::Listener,
        pending: Pin<&mut F>,
    ) -> impl Future<Output = Option<Self::Stream>>
    where
        F: Future<Output = io::Result<Self::Stream>>,
    {
        let _ = (listener, pending);
        std::future::ready(None)
    }

    /// The accepted stream as hyper's I/O, for [`crate::Protocol::Http1`] (feature `http`): the
    /// runtime's own adapter (hyper-util's `TokioIo`, smol-hyper's `FuturesIo`, ...). `None`,
    /// the default, for a plugin without an HTTP stack: it does not declare
    /// [`crate::WORKLOAD_HTTP1`], so the host never asks it for HTTP.
    #[cfg(feature = "http")]
    fn http_io(&self, stream: Self::Stream) -> Option<impl crate::http::HttpIo> {
        drop(stream);
        None::<crate::http::NoHttp>
    }
}

/// A FIFO-fair semaphore (see [`Runtime::Semaphore`]): a freed permit goes to the connection
/// that has waited longest, never to one that asked later. With the `tokio` feature, tokio's
/// `sync::Semaphore` is one (runtime-independent, and its wakers may be woken from any thread),
/// which the plugins whose runtime has no fair cross-thread semaphore use.
pub trait FairSemaphore: Sized {
    /// One slot; given back when dropped.
    type Permit;
    /// A semaphore of `permits` slots.
    fn new(permits: usize) -> Self;
    /// Waits, first come first served, for a slot; `None` if the semaphore was closed.
    fn acquire(self: &Arc<Self>) -> impl Future<Output = Option<Self::Permit>>;
}

#[cfg(feature = "tokio")]
impl FairSemaphore for tokio::sync::Semaphore {
    type Permit = tokio::sync::OwnedSemaphorePermit;

    fn new(permits: usize) -> Self {
        tokio::sync::Semaphore::new(permits)
    }

    async fn acquire(self: &Arc<Self>) -> Option<Self::Permit> {
        self.clone().acquire_owned().await.ok()
    }
}

/// [`Runtime::Tasks`] for a runtime whose join handles say whether their task has finished
/// (smol, monoio, compio, kimojio): the handles of the tasks not yet seen finished.
pub struct JoinHandles<H>(Vec<H>);

impl<H> Default for JoinHandles<H> {
    fn default() -> Self {
        JoinHandles(Vec::new())
    }
}

impl<H: IntoFuture> JoinHandles<H> {
    /// Adds `handle`, forgetting those whose task has `finished`, so the list does not grow
    /// with connection churn.
    pub fn push(&mut self, handle: H, finished: impl Fn(&H) -> bool) {
        self.0.retain(|h| !finished(h));
        self.0.push(handle);
    }

    /// Waits for every task (whatever it returned).
    pub async fn join(self) {
        for handle in self.0 {
            let _ = handle.await;
        }
    }
}

/// What every connection of one server shares: the host, the settings and the
/// `max_connections` semaphore (one for all threads). Cheap to clone.
pub struct Server<R: Runtime> {
    host: HostHandle,
    config: Arc<Config>,
    permits: Option<Arc<R::Semaphore>>,
}

impl<R: Runtime> Clone for Server<R> {
    fn clone(&self) -> Self {
        Server {
            host: self.host.clone(),
            config: self.config.clone(),
            permits: self.permits.clone(),
        }
    }
}

impl<R: Runtime> Server<R> {
    /// The server of one `serve` call, with its `max_connections` semaphore if it has a limit.
    pub fn new(config: &Config, host: &HostHandle) -> Self {
        Server {
            host: host.clone(),
            config: Arc::new(config.clone()),
            permits: (config.max_connections).map(|n| Arc::new(R::Semaphore::new(n))),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn host(&self) -> &HostHandle {
        &self.host
    }

    /// The accept loop of the contract, on one listener: until the stop signal, count each
    /// connection and spawn its task; count a failed accept (EMFILE and friends), warn, and
    /// back off [`ACCEPT_BACKOFF`] on the runtime's timer so a full process does not spin. Then
    /// close the listener and wait for every connection task.
    pub async fn serve(&self, rt: R, listener: R::Listener) {
        let mut stopping = pin!(rt.cross_thread(self.host.stop().stopping()));
        let mut tasks = rt.tasks();
        loop {
            let mut accept = pin!(rt.accept(&listener));
            let accepted = match race(accept.as_mut(), stopping.as_mut()).await {
                Either::Left(r) => r,
                Either::Right(()) => {
                    if let Some(stream) = rt.stop_accepting(&listener, accept).await {
                        self.start(&rt, &mut tasks, stream);
                    }
                    break;
                }
            };
            match accepted {
                Ok(stream) => self.start(&rt, &mut tasks, stream),
                Err(e) => {
                    self.host.stats().accept_error();
                    self.host.warn(&format!("accept failed: {e}"));
                    rt.sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
        drop(listener);
        rt.join_all(tasks).await;
    }

    fn start(&self, rt: &R, tasks: &mut R::Tasks, stream: R::Stream) {
        let ordinal = self.host.stats().accepted();
        let connection = Connection {
            rt: rt.clone(),
            stream,
            server: self.clone(),
            ordinal,
        };
        rt.spawn(tasks, connection);
    }
}

/// One accepted connection, handed to [`Runtime::spawn`] to run [`Connection::serve`] as a task.
pub struct Connection<R: Runtime> {
    rt: R,
    stream: R::Stream,
    server: Server<R>,
    /// The server's count of connections accepted before this one.
    ordinal: u64,
}

impl<R: Runtime> Connection<R> {
    pub fn host(&self) -> &HostHandle {
        &self.server.host
    }

    /// Serves the connection under the contract: wait for a `max_connections` slot, TCP_NODELAY
    /// on, echo with the workload until the peer closes, the stop or an error, and count how it
    /// ended.
    pub async fn serve(self) {
        let Connection {
            rt,
            mut stream,
            server,
            ordinal,
        } = self;
        let (host, stop) = (&server.host, server.host.stop());
        let acquire = server
            .permits
            .as_ref()
            .map(|sem| rt.cross_thread(sem.acquire()));
        let echo = async {
            if stream.set_nodelay().is_err() {
                return crate::Outcome::IoError;
            }
            let (stopping, forced) = (stop.stopping(), stop.forced());
            let (stopping, forced) = (rt.cross_thread(stopping), rt.cross_thread(forced));
            let workload = &server.config.workload;
            if workload.protocol == crate::Protocol::Http1 {
                return serve_http(&rt, stream, ordinal, stopping, forced, host, workload).await;
            }
            echo_stream(&mut stream, &rt, ordinal, stopping, forced, host, workload).await
        };
        let stopping = rt.cross_thread(stop.stopping());
        serve_connection(host, stopping, acquire, echo).await;
    }
}

/// HTTP/1.1 on `stream` through the runtime's adapter ([`Runtime::http_io`]); a plugin built
/// without one (which the host never asks for HTTP) fails the connection, saying so.
async fn serve_http<R: Runtime>(
    rt: &R,
    stream: R::Stream,
    ordinal: u64,
    stopping: impl Future<Output = ()>,
    forced: impl Future<Output = ()>,
    host: &HostHandle,
    workload: &crate::Workload,
) -> crate::Outcome {
    #[cfg(feature = "http")]
    if let Some(io) = rt.http_io(stream) {
        return crate::http::serve_http(io, rt, ordinal, stopping, forced, host, workload).await;
    }
    #[cfg(not(feature = "http"))]
    let _ = (rt, stream, ordinal, stopping, forced, workload);
    host.warn("asked for HTTP/1.1, which this plugin does not serve (no WORKLOAD_HTTP1)");
    crate::Outcome::IoError
}
