//! One event-loop thread: its own SO_REUSEPORT listener and epoll instance (through mio), a slab
//! of connections, and the drain logic. The stop signal is polled: epoll waits at most
//! [`STOP_POLL`], which is plenty for a baseline.

use crate::conn::{Conn, Step, Work};
use crate::limit::Limit;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use runbench_plugin_abi::{Config, HostHandle, Outcome, ACCEPT_BACKOFF};
use slab::Slab;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often an idle loop looks at the stop signal.
pub const STOP_POLL: Duration = Duration::from_millis(10);
const LISTENER: Token = Token(usize::MAX - 1);
pub const WAKER: Token = Token(usize::MAX);
const EVENTS_PER_POLL: usize = 1024;

/// A connection named by slab slot and id, so a queued reference to a closed connection is not
/// taken for a newer one in the same slot.
pub type ConnRef = (usize, u64);

pub struct EventLoop<'a> {
    poll: Poll,
    listener: Option<TcpListener>,
    conns: Slab<Conn<'a>>,
    next_id: u64,
    sleepers: BinaryHeap<Reverse<(Instant, ConnRef)>>,
    /// Drive again without waiting for an edge (their read budget ran out).
    runnable: Vec<ConnRef>,
    accept_paused_until: Option<Instant>,
    stopping: bool,
    config: &'a Config,
    host: &'a HostHandle,
    /// Accepted connections not yet served wait in `limit`'s server-wide FIFO queue.
    limit: Option<&'a Limit>,
    /// This thread's index in `limit` (0 without a limit).
    thread: usize,
    /// What each request asks (its answer, whether it has work), worked out once.
    work: Work,
}

impl<'a> EventLoop<'a> {
    /// Sets up the epoll instance and registers the listener; `waker` goes to the shared limit.
    pub fn new(
        listener: std::net::TcpListener,
        config: &'a Config,
        host: &'a HostHandle,
        limit: Option<&'a Limit>,
    ) -> io::Result<Self> {
        let poll = Poll::new()?;
        let mut listener = TcpListener::from_std(listener);
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let thread = match limit {
            Some(limit) => limit.add_thread(Arc::new(Waker::new(poll.registry(), WAKER)?)),
            None => 0,
        };
        Ok(EventLoop {
            poll,
            listener: Some(listener),
            conns: Slab::new(),
            next_id: 0,
            sleepers: BinaryHeap::new(),
            runnable: Vec::new(),
            accept_paused_until: None,
            stopping: false,
            config,
            host,
            limit,
            thread,
            work: Work::new(config),
        })
    }

    /// Serves until stopped and every connection is closed.
    pub fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(EVENTS_PER_POLL);
        let mut ready = Vec::with_capacity(EVENTS_PER_POLL);
        loop {
            let timeout = self.timeout();
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            ready.clear();
            ready.extend(events.iter().map(|e| e.token()));
            for &token in &ready {
                match token {
                    LISTENER => self.accept(),
                    WAKER => {} // a slot was handed to a waiting connection: see `grant`
                    Token(key) => {
                        if let Some(id) = self.conns.get(key).map(|c| c.id) {
                            self.drive((key, id));
                        }
                    }
                }
            }
            if self
                .accept_paused_until
                .is_some_and(|t| Instant::now() >= t)
            {
                self.accept_paused_until = None;
                self.accept();
            }
            self.wake_sleepers();
            for conn in std::mem::take(&mut self.runnable) {
                self.drive(conn);
            }
            self.grant();
            if !self.stopping && self.host.stop().is_stopping() {
                self.begin_drain();
            }
            if self.host.stop().is_forced() {
                self.close_all(Outcome::Cut);
            }
            if self.stopping && self.conns.is_empty() {
                return Ok(());
            }
        }
    }

    fn timeout(&self) -> Duration {
        if !self.runnable.is_empty() {
            return Duration::ZERO;
        }
        let mut timeout = STOP_POLL;
        if let Some(Reverse((at, _))) = self.sleepers.peek() {
            timeout = timeout.min(at.saturating_duration_since(Instant::now()));
        }
        if let Some(at) = self.accept_paused_until {
            timeout = timeout.min(at.saturating_duration_since(Instant::now()));
        }
        timeout
    }

    fn accept(&mut self) {
        while self.accept_paused_until.is_none() {
            let Some(listener) = &self.listener else {
                return;
            };
            match listener.accept() {
                Ok((stream, _)) => {
                    let ordinal = self.host.stats().accepted();
                    self.admit(stream, ordinal);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.host.stats().accept_error();
                    self.host.warn(&format!("accept failed: {e}"));
                    self.accept_paused_until = Some(Instant::now() + ACCEPT_BACKOFF);
                }
            }
        }
    }

    /// Registers a new connection; serves it now if a slot is free and nobody waits, else queues
    /// it behind the connections already waiting, on every thread.
    fn admit(&mut self, stream: TcpStream, ordinal: u64) {
        let id = self.next_id;
        self.next_id += 1;
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        let conn = entry.insert(Conn::new(id, stream, self.config, ordinal));
        let registered = self.poll.registry().register(
            conn.stream_mut(),
            Token(key),
            Interest::READABLE | Interest::WRITABLE,
        );
        if registered.is_err() {
            self.close((key, id), Outcome::IoError);
            return;
        }
        match self.limit {
            Some(limit) if !limit.acquire(self.thread, (key, id)) => {}
            limit => {
                self.conns[key].has_slot = limit.is_some();
                self.start((key, id));
            }
        }
    }

    fn start(&mut self, (key, id): ConnRef) {
        let serving = self.host.stats().serving();
        if self.conns[key].start(serving, self.config).is_err() {
            self.close((key, id), Outcome::IoError);
            return;
        }
        // Data may have arrived before it was served; no new edge would announce it.
        self.drive((key, id));
    }

    /// Serves this thread's waiting connections that the limit handed a freed slot (it hands
    /// slots out in accept order, over all threads).
    fn grant(&mut self) {
        let Some(limit) = self.limit else {
            return;
        };
        for conn in limit.take_granted(self.thread) {
            if self.is_current(conn) {
                self.conns[conn.0].has_slot = true;
                self.start(conn);
            } else {
                limit.release();
            }
        }
    }

    /// Takes this thread's connections out of the limit's queue; those already handed a slot
    /// keep it until closed (`close` releases it).
    fn withdraw_waiting(&mut self) {
        let Some(limit) = self.limit else {
            return;
        };
        for conn in limit.withdraw(self.thread) {
            if self.is_current(conn) {
                self.conns[conn.0].has_slot = true;
            } else {
                limit.release();
            }
        }
    }

    fn is_current(&self, (key, id): ConnRef) -> bool {
        self.conns.get(key).is_some_and(|c| c.id == id)
    }

    fn drive(&mut self, conn: ConnRef) {
        if !self.is_current(conn) || !self.conns[conn.0].is_served() {
            return;
        }
        let mut echoed = 0;
        let step = self.conns[conn.0].drive(
            self.config,
            self.host,
            &self.work,
            self.stopping,
            &mut echoed,
        );
        if echoed > 0 {
            self.host.stats().echoed(echoed as usize);
        }
        match step {
            Step::Idle => {}
            Step::Yielded => self.runnable.push(conn),
            Step::Sleeping(until) => self.sleepers.push(Reverse((until, conn))),
            Step::Closed(outcome) => self.close(conn, outcome),
        }
    }

    fn wake_sleepers(&mut self) {
        let now = Instant::now();
        while let Some(&Reverse((at, conn))) = self.sleepers.peek() {
            if at > now {
                return;
            }
            self.sleepers.pop();
            self.drive(conn);
        }
    }

    fn close(&mut self, (key, id): ConnRef, outcome: Outcome) {
        if !self.is_current((key, id)) {
            return;
        }
        let conn = self.conns.remove(key);
        self.host.stats().finished(outcome);
        if conn.has_slot {
            if let Some(limit) = self.limit {
                limit.release();
            }
        }
        // Dropping the stream closes it, which also removes it from the epoll set.
    }

    /// Stop accepting, close waiting and idle connections, let the others finish their message.
    fn begin_drain(&mut self) {
        self.stopping = true;
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
        self.withdraw_waiting();
        let waiting: Vec<ConnRef> = (self.conns.iter())
            .filter(|(_, c)| !c.is_served())
            .map(|(k, c)| (k, c.id))
            .collect();
        for conn in waiting {
            self.close(conn, Outcome::Clean);
        }
        let served: Vec<ConnRef> = self.conns.iter().map(|(k, c)| (k, c.id)).collect();
        for conn in served {
            self.drive(conn);
        }
    }

    fn close_all(&mut self, outcome: Outcome) {
        self.withdraw_waiting();
        let all: Vec<ConnRef> = self.conns.iter().map(|(k, c)| (k, c.id)).collect();
        for conn in all {
            self.close(conn, outcome);
        }
    }
}
