//! The server-wide `max_connections` limit, shared by all event-loop threads: a counter of free
//! slots, and the threads' wakers so a slot freed on one thread is taken up at once by a
//! connection waiting on another.

use mio::Waker;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

pub struct Limit {
    free: AtomicUsize,
    /// Connections waiting for a slot, over all threads.
    waiting: AtomicUsize,
    wakers: Mutex<Vec<Arc<Waker>>>,
}

impl Limit {
    pub fn new(slots: usize) -> Self {
        Limit {
            free: AtomicUsize::new(slots),
            waiting: AtomicUsize::new(0),
            wakers: Mutex::new(Vec::new()),
        }
    }

    /// Registers a thread's waker, called when a slot frees while connections wait.
    pub fn add_waker(&self, waker: Arc<Waker>) {
        self.wakers.lock().unwrap().push(waker);
    }

    /// Takes a slot if one is free.
    pub fn try_acquire(&self) -> bool {
        self.free
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok()
    }

    pub fn release(&self) {
        self.free.fetch_add(1, Ordering::AcqRel);
        if self.waiting.load(Ordering::Acquire) > 0 {
            for waker in self.wakers.lock().unwrap().iter() {
                let _ = waker.wake();
            }
        }
    }

    /// `n` more (or fewer, negative) connections wait on this thread.
    pub fn waiting_changed(&self, added: usize, removed: usize) {
        if added > 0 {
            self.waiting.fetch_add(added, Ordering::AcqRel);
        }
        if removed > 0 {
            self.waiting.fetch_sub(removed, Ordering::AcqRel);
        }
    }
}
