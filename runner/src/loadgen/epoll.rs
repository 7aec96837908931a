//! The load generator's event source: edge-triggered epoll whose wait takes a nanosecond
//! timeout (`epoll_pwait2`, Linux 5.11+, through rustix). The open model's sends wake on time
//! from the wait itself; an earlier timerfd re-armed per send cost a syscall and a wake-up more
//! per request.

use rustix::event::{epoll, Timespec};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

/// What one event says about one connection (its token is its slot).
#[derive(Clone, Copy, Debug)]
pub struct Ready {
    pub slot: usize,
    pub readable: bool,
    pub writable: bool,
    /// Error or hang-up: a read will say which.
    pub closed: bool,
}

pub struct Epoll {
    fd: OwnedFd,
    events: Vec<epoll::Event>,
}

impl Epoll {
    pub fn new() -> io::Result<Epoll> {
        Ok(Epoll {
            fd: epoll::create(epoll::CreateFlags::CLOEXEC)?,
            events: Vec::with_capacity(1024),
        })
    }

    /// Watches `fd` for reads, writes and hang-ups, edge-triggered, as `slot`.
    pub fn add(&self, fd: impl AsFd, slot: usize) -> io::Result<()> {
        use epoll::EventFlags as F;
        epoll::add(
            &self.fd,
            fd,
            epoll::EventData::new_u64(slot as u64),
            F::IN | F::OUT | F::RDHUP | F::ET,
        )?;
        Ok(())
    }

    pub fn remove(&self, fd: impl AsFd) {
        // Closing the socket removes it too; this only keeps a reused slot's events apart.
        let _ = epoll::delete(&self.fd, fd);
    }

    /// Waits at most `timeout` for events; returns how many there are (see [`Epoll::ready`]).
    pub fn wait(&mut self, timeout: Duration) -> io::Result<usize> {
        let ts = Timespec {
            tv_sec: timeout.as_secs() as _,
            tv_nsec: timeout.subsec_nanos() as _,
        };
        self.events.clear();
        match epoll::wait(
            &self.fd,
            rustix::buffer::spare_capacity(&mut self.events),
            Some(&ts),
        ) {
            Ok(_) => Ok(self.events.len()),
            Err(rustix::io::Errno::INTR) => Ok(0),
            Err(e) => Err(e.into()),
        }
    }

    /// Event `n` of the last wait.
    pub fn ready(&self, n: usize) -> Ready {
        use epoll::EventFlags as F;
        let e = self.events[n];
        let flags = e.flags;
        Ready {
            slot: e.data.u64() as usize,
            readable: flags.intersects(F::IN),
            writable: flags.intersects(F::OUT),
            closed: flags.intersects(F::ERR | F::HUP | F::RDHUP),
        }
    }
}
