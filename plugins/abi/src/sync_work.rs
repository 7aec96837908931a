//! The work of one request for servers without an async runtime, written once beside
//! [`crate::Handler`] and counted in the same witness counters, in the same order and with the
//! same draws: [`Steps`], a request's drawn `cpu` and `sleep` for any loop (the epoll reference's
//! state machine sleeps on its own timer heap), and [`SyncHandler`], every part on the calling
//! thread with the [`SyncPrimitives`] a plugin states (std-threads: threads, a pool, `mpsc`).

use crate::work::{spin, InFlight};
use crate::{BlockingJob, Fanout, HostHandle, Rng, Stats, Workload, HOP_CHANNEL_CAPACITY};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A connection's draws, and the counting of its `cpu`, `sleep` and requests: what a request
/// costs before any part that needs another task or thread. Holds only the connection's seeded
/// sequence (8 bytes), so a hand-written server keeps one per connection at no cost; the host
/// and the workload are the server's, passed in.
pub struct Steps {
    rng: Rng,
}

impl Steps {
    /// The steps of the server's `ordinal`-th connection (its part of the run's seeded draws).
    pub fn new(workload: &Workload, ordinal: u64) -> Self {
        Steps {
            rng: Rng::new(workload.seed, ordinal),
        }
    }

    /// Whether a request of `workload` needs anything beyond writing its answer.
    pub fn has_work(workload: &Workload) -> bool {
        workload.needs() & !crate::WORKLOAD_RESPONSE != 0
    }

    /// The start of one request: spins its drawn `cpu` on the calling thread (counted) and
    /// returns its drawn `sleep` (zero without one), which the caller waits on its own timer
    /// and then counts with [`Steps::fired`].
    pub fn begin(&mut self, host: &HostHandle, workload: &Workload) -> Duration {
        spin(host.stats(), workload.cpu.draw(&mut self.rng));
        workload.sleep.draw(&mut self.rng)
    }

    /// Counts `timers` timers armed at `started` to fire `d` later as fired now (early if `d`
    /// has not passed).
    pub fn fired(host: &HostHandle, timers: u64, started: Instant, d: Duration) {
        host.stats().timers_fired(timers, started, d);
    }

    /// Counts `n` requests done.
    pub fn done(host: &HostHandle, n: u64) {
        if n > 0 {
            Stats::add(&host.stats().requests, n);
        }
    }
}

/// The primitives of a server whose connections block their own thread (std-threads): what
/// [`SyncHandler`] needs for fan-out, the blocking pool and the hops' relays, and its timer.
/// The hops go through std's bounded `mpsc` (`sync_channel`), the one channel std has.
pub trait SyncPrimitives: Clone + Send + 'static {
    /// What [`SyncPrimitives::spawn_job`] returns.
    type Join: SyncJoin;
    /// Starts `job.run()` on another thread than the caller's **now** and returns its join.
    fn spawn_job(&self, job: SyncJob<Self>) -> Self::Join;
    /// Runs `job.run()` on the blocking pool (a thread that serves no connection) and returns
    /// once it has run.
    fn blocking(&self, job: BlockingJob);
    /// Blocks the calling thread for `d` on the server's timer.
    fn sleep(&self, d: Duration);
}

/// The join of a job [`SyncPrimitives::spawn_job`] started.
pub trait SyncJoin {
    /// Returns once the job has ended.
    fn join(self);
}

impl SyncJoin for std::thread::JoinHandle<()> {
    fn join(self) {
        // A job that panicked has ended too; its counters say what it did not do.
        let _ = std::thread::JoinHandle::join(self);
    }
}

/// A job [`SyncPrimitives::spawn_job`] runs: one fan-out task, or one hop's relay.
pub struct SyncJob<P>(JobKind<P>);

enum JobKind<P> {
    Part {
        rt: P,
        part: Fanout,
        host: HostHandle,
        in_flight: Arc<InFlight>,
    },
    Relay {
        rx: Receiver<u64>,
        tx: SyncSender<u64>,
        host: HostHandle,
    },
}

impl<P: SyncPrimitives> SyncJob<P> {
    /// The job's body.
    pub fn run(self) {
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
                    sleep(&rt, stats, part.sleep);
                }
                in_flight.leave();
            }
            JobKind::Relay { rx, tx, host } => {
                while let Ok(msg) = rx.recv() {
                    Stats::add(&host.stats().hop_messages, 1);
                    if tx.send(msg).is_err() {
                        break;
                    }
                }
            }
        }
    }
}

fn sleep(rt: &impl SyncPrimitives, stats: &Stats, d: Duration) {
    let start = Instant::now();
    rt.sleep(d);
    stats.timers_fired(1, start, d);
}

/// One connection's request work on its own thread: [`crate::Handler`]'s parts in the same
/// order, blocking the calling thread instead of awaiting.
pub struct SyncHandler<P: SyncPrimitives> {
    rt: P,
    host: HostHandle,
    workload: Workload,
    steps: Steps,
    /// Where a request enters the hop ring and where it comes back.
    hops: Option<(SyncSender<u64>, Receiver<u64>)>,
    relays: Vec<P::Join>,
    sent: u64,
}

impl<P: SyncPrimitives> SyncHandler<P> {
    /// The handler of the server's `ordinal`-th connection; starts the hop relays if the
    /// workload has hops.
    pub fn new(rt: &P, host: &HostHandle, workload: &Workload, ordinal: u64) -> Self {
        let mut handler = SyncHandler {
            rt: rt.clone(),
            host: host.clone(),
            workload: *workload,
            steps: Steps::new(workload, ordinal),
            hops: None,
            relays: Vec::new(),
            sent: 0,
        };
        if workload.hops > 0 {
            let (first_tx, mut rx) = sync_channel(HOP_CHANNEL_CAPACITY);
            for _ in 0..workload.hops {
                let (tx, next_rx) = sync_channel(HOP_CHANNEL_CAPACITY);
                let job = SyncJob(JobKind::Relay {
                    rx,
                    tx,
                    host: host.clone(),
                });
                handler.relays.push(rt.spawn_job(job));
                rx = next_rx;
            }
            handler.hops = Some((first_tx, rx));
        }
        handler
    }

    /// Whether a request needs anything beyond writing its answer.
    pub fn has_work(&self) -> bool {
        Steps::has_work(&self.workload)
    }

    /// Counts `n` requests that needed no work (see [`SyncHandler::has_work`]).
    pub fn done(&self, n: u64) {
        Steps::done(&self.host, n);
    }

    /// Does one request's work, part by part, and counts it.
    pub fn request(&mut self) {
        let w = self.workload;
        let nap = self.steps.begin(&self.host, &w);
        let host = &self.host;
        if !nap.is_zero() {
            sleep(&self.rt, host.stats(), nap);
        }
        if let Some(part) = w.fanout() {
            self.fan_out(part);
        }
        if !w.blocking.is_zero() {
            self.rt.blocking(BlockingJob::here(w.blocking, host));
        }
        if let Some((tx, rx)) = &self.hops {
            self.sent += 1;
            if tx.send(self.sent).is_ok() {
                let _ = rx.recv();
            }
        }
        Steps::done(&self.host, 1);
    }

    fn fan_out(&self, part: Fanout) {
        let host = &self.host;
        let stats = host.stats();
        let in_flight = Arc::new(InFlight::default());
        let mut joins = Vec::with_capacity(part.tasks as usize);
        for _ in 0..part.tasks {
            let job = SyncJob(JobKind::Part {
                rt: self.rt.clone(),
                part,
                host: host.clone(),
                in_flight: in_flight.clone(),
            });
            joins.push(self.rt.spawn_job(job));
            Stats::add(&stats.tasks_spawned, 1);
        }
        for join in joins {
            join.join();
            Stats::add(&stats.tasks_joined, 1);
        }
        in_flight.count(stats, part.tasks, part.sleep);
    }

    /// Closes the hop ring and waits until every relay has ended.
    pub fn finish(self) {
        if let Some((tx, rx)) = self.hops {
            drop(tx);
            while rx.recv().is_ok() {}
        }
        for relay in self.relays {
            relay.join();
        }
    }
}
