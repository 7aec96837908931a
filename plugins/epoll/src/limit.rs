//! The server-wide `max_connections` limit, shared by all event-loop threads: under one lock, the
//! count of free slots and one FIFO queue of the connections waiting for a slot, over all
//! threads, in the order they were accepted. A freed slot is handed straight to the connection
//! at the front of the queue (never left free for a newly accepted connection to take while
//! others wait), and its thread is woken to start serving it.

use crate::worker::ConnRef;
use mio::Waker;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

pub struct Limit {
    state: Mutex<State>,
}

struct State {
    free: usize,
    /// Waiting connections, oldest first, each with the index of its thread.
    queue: VecDeque<(usize, ConnRef)>,
    /// Per thread: connections handed a slot, not yet taken up by their thread.
    granted: Vec<Vec<ConnRef>>,
    wakers: Vec<Arc<Waker>>,
}

impl Limit {
    pub fn new(slots: usize) -> Self {
        Limit {
            state: Mutex::new(State {
                free: slots,
                queue: VecDeque::new(),
                granted: Vec::new(),
                wakers: Vec::new(),
            }),
        }
    }

    /// Registers a thread's waker, woken when one of its connections is handed a slot. Returns
    /// the thread's index for the other calls.
    pub fn add_thread(&self, waker: Arc<Waker>) -> usize {
        let mut state = self.state.lock().unwrap();
        state.wakers.push(waker);
        state.granted.push(Vec::new());
        state.wakers.len() - 1
    }

    /// Takes a slot for `conn` (on thread `thread`) if one is free and nobody waits; otherwise
    /// queues it behind the connections already waiting and returns false.
    pub fn acquire(&self, thread: usize, conn: ConnRef) -> bool {
        let mut state = self.state.lock().unwrap();
        if state.free > 0 && state.queue.is_empty() {
            state.free -= 1;
            true
        } else {
            state.queue.push_back((thread, conn));
            false
        }
    }

    /// Frees a slot: it goes to the longest-waiting connection, if any, else back to the count.
    pub fn release(&self) {
        let mut state = self.state.lock().unwrap();
        match state.queue.pop_front() {
            Some((thread, conn)) => {
                state.granted[thread].push(conn);
                let _ = state.wakers[thread].wake();
            }
            None => state.free += 1,
        }
    }

    /// The connections of `thread` handed a slot since the last call, oldest first. Each owns
    /// its slot: the caller serves it or releases the slot.
    pub fn take_granted(&self, thread: usize) -> Vec<ConnRef> {
        std::mem::take(&mut self.state.lock().unwrap().granted[thread])
    }

    /// Removes `thread`'s connections from the queue (it is stopping and closes them); returns
    /// those already handed a slot, which the caller must release.
    pub fn withdraw(&self, thread: usize) -> Vec<ConnRef> {
        let mut state = self.state.lock().unwrap();
        state.queue.retain(|&(t, _)| t != thread);
        std::mem::take(&mut state.granted[thread])
    }
}
