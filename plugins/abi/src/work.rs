//! The work of one request, written once for every runtime: [`Handler`] does a [`Workload`]'s
//! parts in order (`cpu`, `sleep`, `fanout`, `blocking`, `hops`) with the primitives a plugin
//! states in [`Primitives`] (spawn and join, blocking pool, channel, and the [`Timer`]), and
//! counts each part's witness in the server's counters ([`crate::ServeReport`]) so the host's
//! audit can check that the work claimed was done.

use crate::{spin_for, Fanout, HostHandle, Rng, Stats, Timer, Workload};
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::ThreadId;
use std::time::{Duration, Instant};

/// Relay capacity of each hop's channel (a connection has one request in flight at a time on
/// the echo protocol; a pipelining client still finds room).
pub const HOP_CHANNEL_CAPACITY: usize = 16;

/// The runtime's primitives the per-request work needs beyond its timer. A plugin implements
/// the ones whose [`crate::WORKLOAD_FANOUT`], [`crate::WORKLOAD_BLOCKING`] and
/// [`crate::WORKLOAD_HOPS`] bits its [`crate::Plugin::WORKLOADS`] declares; the shared code
/// never asks for a part the plugin did not declare (the host skips the row first), and the
/// defaults say so if it ever did.
pub trait Primitives: Timer + Clone + 'static {
    /// The runtime's channel for [`Workload::hops`]; [`NoChannel`] where the plugin has none.
    type Channel: Channel;

    /// Spawns `job.run()` as a task of the runtime **now** (before the returned future is
    /// polled) and returns its join: a future that resolves once the task has finished. The
    /// task runs to its end whether or not the join is awaited or dropped (a hop's relay is
    /// never joined: it ends when its channel closes).
    fn spawn_job(&self, job: Job<Self>) -> impl Future<Output = ()> {
        drop(job);
        async { unreachable!("spawn_job on a plugin that declares no fan-out or hops") }
    }

    /// Runs `job.run()` on the runtime's blocking pool (a thread that is not serving
    /// connections) and resolves once it has run.
    fn blocking(&self, job: BlockingJob) -> impl Future<Output = ()> {
        drop(job);
        async { unreachable!("blocking on a plugin that declares no blocking pool") }
    }
}

/// A runtime's bounded multi-producer channel of request ordinals (tokio's `mpsc`,
/// async-channel, glommio's shared channels, ...).
pub trait Channel {
    type Sender: HopSender;
    type Receiver: HopReceiver;
    fn bounded(capacity: usize) -> (Self::Sender, Self::Receiver);
}

pub trait HopSender {
    /// Sends `msg`, waiting for room; false once the receiver is gone.
    fn send(&self, msg: u64) -> impl Future<Output = bool>;
}

pub trait HopReceiver {
    /// The next message; `None` once every sender is gone.
    fn recv(&mut self) -> impl Future<Output = Option<u64>>;
}

/// The [`Primitives::Channel`] of a plugin without [`crate::WORKLOAD_HOPS`].
pub enum NoChannel {}

impl Channel for NoChannel {
    type Sender = NoChannel;
    type Receiver = NoChannel;
    fn bounded(_: usize) -> (NoChannel, NoChannel) {
        unreachable!("hops on a plugin that declares no channel")
    }
}

impl HopSender for NoChannel {
    async fn send(&self, _: u64) -> bool {
        match *self {}
    }
}

impl HopReceiver for NoChannel {
    async fn recv(&mut self) -> Option<u64> {
        match *self {}
    }
}

type Tx<R> = <<R as Primitives>::Channel as Channel>::Sender;
type Rx<R> = <<R as Primitives>::Channel as Channel>::Receiver;

/// A task the shared code asks a runtime to spawn ([`Primitives::spawn_job`]): one fan-out
/// task, or one hop's relay.
pub struct Job<R: Primitives>(JobKind<R>);

enum JobKind<R: Primitives> {
    Part {
        rt: R,
        part: Fanout,
        host: HostHandle,
        in_flight: Arc<InFlight>,
    },
    Relay {
        rx: Rx<R>,
        tx: Tx<R>,
        host: HostHandle,
    },
}

impl<R: Primitives> Job<R> {
    /// The task's body.
    pub async fn run(self) {
        match self.0 {
            JobKind::Part {
                rt,
                part,
                host,
                in_flight,
            } => {
                let stats = host.stats();
                in_flight.enter();
                spin(stats, part.cpu);
                if !part.sleep.is_zero() {
                    sleep(&rt, stats, part.sleep).await;
                }
                in_flight.leave();
            }
            JobKind::Relay { mut rx, tx, host } => {
                while let Some(msg) = rx.recv().await {
                    Stats::add(&host.stats().hop_messages, 1);
                    if !tx.send(msg).await {
                        break;
                    }
                }
            }
        }
    }
}

/// Work handed to a blocking pool ([`Primitives::blocking`], [`crate::SyncPrimitives::blocking`]).
pub struct BlockingJob {
    work: Duration,
    origin: ThreadId,
    host: HostHandle,
}

impl BlockingJob {
    /// The job of one request whose connection is served on the calling thread.
    pub(crate) fn here(work: Duration, host: &HostHandle) -> Self {
        BlockingJob {
            work,
            origin: std::thread::current().id(),
            host: host.clone(),
        }
    }

    /// The job's body: spins `work` on the calling thread and counts whether that thread is
    /// another than the connection's.
    pub fn run(self) {
        let stats = self.host.stats();
        spin(stats, self.work);
        Stats::add(&stats.blocking_jobs, 1);
        if std::thread::current().id() != self.origin {
            Stats::add(&stats.blocking_off_thread, 1);
        }
    }
}

/// Fan-out tasks of one request in flight now, and the most at once.
#[derive(Default)]
pub(crate) struct InFlight {
    now: AtomicU32,
    peak: AtomicU32,
}

impl InFlight {
    pub(crate) fn enter(&self) {
        let now = self.now.fetch_add(1, Relaxed) + 1;
        self.peak.fetch_max(now, Relaxed);
    }
    pub(crate) fn leave(&self) {
        self.now.fetch_sub(1, Relaxed);
    }
    /// Counts one fan-out of `tasks` tasks that each slept `sleep` once all have ended: checked
    /// when two or more slept, overlapped when two were in flight at once.
    pub(crate) fn count(&self, stats: &Stats, tasks: u32, sleep: Duration) {
        if tasks >= 2 && !sleep.is_zero() {
            Stats::add(&stats.fanouts_checked, 1);
            if self.peak.load(Relaxed) >= 2 {
                Stats::add(&stats.fanouts_overlapped, 1);
            }
        }
    }
}

pub(crate) fn spin(stats: &Stats, d: Duration) {
    if !d.is_zero() {
        spin_for(d);
        Stats::add(&stats.spun_ns, d.as_nanos() as u64);
    }
}

async fn sleep(timer: &impl Timer, stats: &Stats, d: Duration) {
    let start = Instant::now();
    timer.sleep(d).await;
    stats.timers_fired(1, start, d);
}

/// One connection's request work: its draws, its hop relays, its counters.
pub struct Handler<R: Primitives> {
    rt: R,
    host: HostHandle,
    workload: Workload,
    rng: Rng,
    /// Where a request enters the hop ring and where it comes back.
    hops: Option<(Tx<R>, Rx<R>)>,
    sent: u64,
}

impl<R: Primitives> Handler<R> {
    /// The handler of the server's `ordinal`-th connection (its draws are that connection's
    /// part of the run's seeded sequence); spawns the hop relays if the workload has hops.
    pub fn new(rt: &R, host: &HostHandle, workload: &Workload, ordinal: u64) -> Self {
        let mut handler = Handler {
            rt: rt.clone(),
            host: host.clone(),
            workload: *workload,
            rng: Rng::new(workload.seed, ordinal),
            hops: None,
            sent: 0,
        };
        if workload.hops > 0 {
            let (first_tx, mut rx) = R::Channel::bounded(HOP_CHANNEL_CAPACITY);
            for _ in 0..workload.hops {
                let (tx, next_rx) = R::Channel::bounded(HOP_CHANNEL_CAPACITY);
                let job = Job(JobKind::Relay {
                    rx,
                    tx,
                    host: host.clone(),
                });
                drop(rt.spawn_job(job));
                rx = next_rx;
            }
            handler.hops = Some((first_tx, rx));
        }
        handler
    }

    /// Whether a request needs anything beyond writing its answer.
    pub fn has_work(&self) -> bool {
        self.workload.needs() & !crate::WORKLOAD_RESPONSE != 0
    }

    /// Does one request's work, part by part, and counts it.
    pub async fn request(&mut self) {
        let w = self.workload;
        let stats = self.host.stats();
        spin(stats, w.cpu.draw(&mut self.rng));
        let nap = w.sleep.draw(&mut self.rng);
        if !nap.is_zero() {
            sleep(&self.rt, stats, nap).await;
        }
        if let Some(part) = w.fanout() {
            self.fan_out(part).await;
        }
        if !w.blocking.is_zero() {
            self.rt
                .blocking(BlockingJob::here(w.blocking, &self.host))
                .await;
        }
        if let Some((tx, rx)) = &mut self.hops {
            self.sent += 1;
            if tx.send(self.sent).await {
                let _ = rx.recv().await;
            }
        }
        Stats::add(&stats.requests, 1);
    }

    async fn fan_out(&self, part: Fanout) {
        let stats = self.host.stats();
        let in_flight = Arc::new(InFlight::default());
        let mut joins = Vec::with_capacity(part.tasks as usize);
        for _ in 0..part.tasks {
            let job = Job(JobKind::Part {
                rt: self.rt.clone(),
                part,
                host: self.host.clone(),
                in_flight: in_flight.clone(),
            });
            joins.push(self.rt.spawn_job(job));
            Stats::add(&stats.tasks_spawned, 1);
        }
        for join in joins {
            join.await;
            Stats::add(&stats.tasks_joined, 1);
        }
        in_flight.count(stats, part.tasks, part.sleep);
    }

    /// Closes the hop ring and waits until every relay has ended (each drops its sender as it
    /// ends, so the ring's last receiver sees the end once all have).
    pub async fn finish(self) {
        if let Some((tx, mut rx)) = self.hops {
            drop(tx);
            while rx.recv().await.is_some() {}
        }
    }
}

/// tokio's bounded `mpsc` as a [`Channel`] (feature `tokio`; runtime-independent, so any plugin
/// may use it, though each should use its own runtime's channel where it has one).
#[cfg(feature = "tokio")]
pub struct TokioMpsc;

#[cfg(feature = "tokio")]
impl Channel for TokioMpsc {
    type Sender = tokio::sync::mpsc::Sender<u64>;
    type Receiver = tokio::sync::mpsc::Receiver<u64>;
    fn bounded(capacity: usize) -> (Self::Sender, Self::Receiver) {
        tokio::sync::mpsc::channel(capacity)
    }
}

#[cfg(feature = "tokio")]
impl HopSender for tokio::sync::mpsc::Sender<u64> {
    async fn send(&self, msg: u64) -> bool {
        tokio::sync::mpsc::Sender::send(self, msg).await.is_ok()
    }
}

#[cfg(feature = "tokio")]
impl HopReceiver for tokio::sync::mpsc::Receiver<u64> {
    async fn recv(&mut self) -> Option<u64> {
        tokio::sync::mpsc::Receiver::recv(self).await
    }
}

/// The join [`Primitives::spawn_job`] returns on a runtime whose task handle cancels its task
/// when dropped (smol's `Task`, compio's `JoinHandle`): awaits the handle, and if dropped before
/// the task ended, detaches it with `detach` instead, so the task runs to its end either way.
pub struct DetachOnDrop<H> {
    handle: Option<H>,
    detach: fn(H),
}

impl<H> DetachOnDrop<H> {
    pub fn new(handle: H, detach: fn(H)) -> Self {
        DetachOnDrop {
            handle: Some(handle),
            detach,
        }
    }
}

impl<H: Future + Unpin> Future for DetachOnDrop<H> {
    type Output = ();
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        let Some(handle) = self.handle.as_mut() else {
            return std::task::Poll::Ready(());
        };
        match std::pin::Pin::new(handle).poll(cx) {
            std::task::Poll::Ready(_) => {
                self.handle = None;
                std::task::Poll::Ready(())
            }
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    }
}

impl<H> Drop for DetachOnDrop<H> {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            (self.detach)(handle);
        }
    }
}
