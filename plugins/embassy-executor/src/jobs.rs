//! Fan-out tasks and hop relays on the embassy executor, shared by both embassy plugins (the
//! `embassy` plugin includes this file): the join of a job task spawned into a static pool, and
//! embassy-sync's `Channel` as the hops' channel. Each plugin declares its own job task (a task
//! function cannot be generic) of [`JOB_POOL`] and spawns it through [`spawn`].

use embassy_executor::{SpawnError, SpawnToken, Spawner};
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use embassy_sync::signal::Signal;
use runbench_plugin_abi::{race, Channel, Either, HopReceiver, HopSender, HOP_CHANNEL_CAPACITY};
use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// Job tasks in their static pool: fan-out tasks and hop relays alive at once (the relays live
/// as long as their connection). Untouched slots cost address space, not memory.
pub const JOB_POOL: usize = 16_384;

/// Spawns the job task `task` makes (given its end to signal) **now**, and returns its join. A
/// full pool refuses the spawn at once: the job is dropped unrun, counted in `refused`, and the
/// join resolves (the server's counters then show the job's work missing).
pub fn spawn<S>(
    task: impl FnOnce(Rc<Done>) -> Result<SpawnToken<S>, SpawnError>,
    spawner: Spawner,
    refused: &Cell<u64>,
) -> Join {
    let done = Rc::new(Done::default());
    match task(done.clone()) {
        Ok(token) => spawner.spawn(token),
        Err(_) => {
            refused.set(refused.get() + 1);
            done.finish();
        }
    }
    Join(done)
}

/// A job task's end, as its join sees it (everything is on the executor's thread).
#[derive(Default)]
pub struct Done {
    finished: Cell<bool>,
    waker: Cell<Option<Waker>>,
}

impl Done {
    pub fn finish(&self) {
        self.finished.set(true);
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}

/// [`Primitives::spawn_job`]'s join: resolves once the job task has ended.
pub struct Join(Rc<Done>);

impl Future for Join {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0.finished.get() {
            return Poll::Ready(());
        }
        self.0.waker.set(Some(cx.waker().clone()));
        Poll::Pending
    }
}

/// embassy-sync's bounded `Channel` as the hops' [`Channel`], with the end of either side
/// made visible to the other (embassy's channels never close: a relay must see its sender go
/// to end, and a sender whose receiver is gone must not wait for room forever).
pub struct Chan;

struct Ring {
    channel: embassy_sync::channel::Channel<NoopRawMutex, u64, HOP_CHANNEL_CAPACITY>,
    sender_gone: Cell<bool>,
    receiver_gone: Cell<bool>,
    /// Raised when either side goes.
    gone: Signal<NoopRawMutex, ()>,
}

pub struct Tx(Rc<Ring>);
pub struct Rx(Rc<Ring>);

impl Channel for Chan {
    type Sender = Tx;
    type Receiver = Rx;
    fn bounded(_capacity: usize) -> (Tx, Rx) {
        let ring = Rc::new(Ring {
            channel: embassy_sync::channel::Channel::new(),
            sender_gone: Cell::new(false),
            receiver_gone: Cell::new(false),
            gone: Signal::new(),
        });
        (Tx(ring.clone()), Rx(ring))
    }
}

impl HopSender for Tx {
    async fn send(&self, msg: u64) -> bool {
        if self.0.receiver_gone.get() {
            return false;
        }
        matches!(
            race(self.0.channel.send(msg), self.0.gone.wait()).await,
            Either::Left(())
        )
    }
}

impl HopReceiver for Rx {
    async fn recv(&mut self) -> Option<u64> {
        loop {
            if let Ok(msg) = self.0.channel.try_receive() {
                return Some(msg);
            }
            if self.0.sender_gone.get() {
                return None;
            }
            if let Either::Left(msg) = race(self.0.channel.receive(), self.0.gone.wait()).await {
                return Some(msg);
            }
        }
    }
}

impl Drop for Tx {
    fn drop(&mut self) {
        self.0.sender_gone.set(true);
        self.0.gone.signal(());
    }
}

impl Drop for Rx {
    fn drop(&mut self) {
        self.0.receiver_gone.set(true);
        self.0.gone.signal(());
    }
}
