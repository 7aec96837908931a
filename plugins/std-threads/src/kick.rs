//! Waking connection threads blocked in `read` or `write` for the stop signal, without a
//! `poll(2)` before every read: a plain blocking server does a read and a write per message,
//! and the poll measured 11% of its throughput (plugin/plain std echo 0.890, and 0.989 against
//! the same std echo with a poll added; `benchmarks/upstream-echo`, 2026-12-02).
//!
//! After the stop signal a kicker thread sends a real-time signal, whose handler does nothing and
//! is installed without SA_RESTART, to every connection thread, so a blocked read or write
//! returns EINTR and the thread looks at the stop flags. A thread can read the flags, be kicked,
//! and only then enter `read`: so every 5 ms the kicker kicks again each thread whose loop has
//! not turned since the last kick (its `turns` counter), and only those: a thread that is
//! serving data is left alone.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{
    AtomicBool, AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// How often threads still blocked are kicked again after the stop.
const AGAIN: Duration = Duration::from_millis(5);

fn signal() -> libc::c_int {
    libc::SIGRTMIN() + 4
}

extern "C" fn nothing(_: libc::c_int) {}

/// Installs the do-nothing handler (once per process), without SA_RESTART so blocking calls
/// return EINTR.
pub fn install() -> io::Result<()> {
    static INSTALLED: OnceLock<Result<(), i32>> = OnceLock::new();
    let installed = INSTALLED.get_or_init(|| {
        // SAFETY: a zeroed sigaction with a handler that touches nothing is valid; sigaction
        // only reads it.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = nothing as extern "C" fn(libc::c_int) as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            sa.sa_flags = 0;
            if libc::sigaction(signal(), &sa, std::ptr::null_mut()) != 0 {
                return Err(io::Error::last_os_error().raw_os_error().unwrap_or(-1));
            }
        }
        Ok(())
    });
    installed.map_err(io::Error::from_raw_os_error)
}

/// The stop flags the connection threads read on every turn of their loop.
#[derive(Default)]
pub struct Flags {
    pub stopping: AtomicBool,
    pub forced: AtomicBool,
}

/// The connection threads, so the kicker can reach them.
#[derive(Default)]
pub struct Registry {
    threads: Mutex<HashMap<u64, (libc::pthread_t, Arc<AtomicU64>)>>,
    next: AtomicU64,
}

/// A connection thread's place in the registry; counts its loop's turns.
pub struct Entry<'a> {
    registry: &'a Registry,
    id: u64,
    pub turns: Arc<AtomicU64>,
}

impl Registry {
    /// Registers the calling thread until the entry is dropped.
    pub fn enter(&self) -> Entry<'_> {
        let id = self.next.fetch_add(1, Relaxed);
        let turns = Arc::new(AtomicU64::new(0));
        // SAFETY: pthread_self has no preconditions.
        let me = unsafe { libc::pthread_self() };
        self.threads.lock().unwrap().insert(id, (me, turns.clone()));
        Entry {
            registry: self,
            id,
            turns,
        }
    }

    /// Kicks every thread new to `seen` or whose loop has not turned since the last round.
    fn kick_still_blocked(&self, seen: &mut HashMap<u64, u64>) {
        let threads = self.threads.lock().unwrap();
        seen.retain(|id, _| threads.contains_key(id));
        for (id, (thread, turns)) in threads.iter() {
            let now = turns.load(Acquire);
            if seen.insert(*id, now).is_none_or(|before| before == now) {
                // SAFETY: the thread is registered, so alive: it leaves the registry (under this
                // lock) before it ends.
                unsafe { libc::pthread_kill(*thread, signal()) };
            }
        }
    }
}

impl Drop for Entry<'_> {
    fn drop(&mut self) {
        self.registry.threads.lock().unwrap().remove(&self.id);
    }
}

/// The kicker: waits for the stop signal (`stopping` becomes readable), sets the flags, and
/// kicks blocked threads until `done`.
pub fn run(
    registry: &Registry,
    flags: &Flags,
    stopping: &OwnedFd,
    forced: &OwnedFd,
    done: &AtomicBool,
) {
    // Before the stop there is nothing to do but wait for it (bounded, to notice `done`).
    while !readable(stopping.as_raw_fd(), Duration::from_millis(50)) {
        if done.load(Acquire) {
            return;
        }
    }
    flags.stopping.store(true, Release);
    let mut seen = HashMap::new();
    while !done.load(Acquire) {
        if !flags.forced.load(Acquire) && readable(forced.as_raw_fd(), Duration::ZERO) {
            flags.forced.store(true, Release);
            // A new flag: every thread must see it, serving or not.
            seen.clear();
        }
        registry.kick_still_blocked(&mut seen);
        if flags.forced.load(Acquire) {
            std::thread::sleep(AGAIN);
        } else {
            readable(forced.as_raw_fd(), AGAIN);
        }
    }
}

/// Whether `fd` is readable (data, an error or a hang-up) within `timeout`; with a zero timeout,
/// whether it is now (data that is ready wins over a stop).
pub fn readable(fd: RawFd, timeout: Duration) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one live pollfd.
    let n = unsafe { libc::poll(&mut p, 1, timeout.as_millis() as libc::c_int) };
    n > 0 && p.revents != 0
}
