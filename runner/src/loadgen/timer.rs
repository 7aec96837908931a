//! A timerfd in the load generator's epoll set: the open model's send schedule needs wake-ups
//! finer than epoll_wait's whole milliseconds.

use mio::{Interest, Poll, Token};
use std::io;
use std::time::Instant;

/// The token of the open model's timerfd (connection tokens are indices).
pub const TIMER_TOKEN: Token = Token(usize::MAX);

/// A timerfd in the epoll set: wake-ups at nanosecond resolution.
pub struct Timer {
    fd: std::os::fd::OwnedFd,
    armed: Option<Instant>,
}

impl Timer {
    pub fn new(poll: &Poll) -> io::Result<Timer> {
        use std::os::fd::{AsRawFd, FromRawFd};
        // SAFETY: timerfd_create returns a new descriptor or -1.
        let raw = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is ours. Timer slack (50 us by default) would blur the schedule.
        let fd = unsafe {
            libc::prctl(libc::PR_SET_TIMERSLACK, 1);
            std::os::fd::OwnedFd::from_raw_fd(raw)
        };
        poll.registry().register(
            &mut mio::unix::SourceFd(&fd.as_raw_fd()),
            TIMER_TOKEN,
            Interest::READABLE,
        )?;
        Ok(Timer { fd, armed: None })
    }

    /// Fires at `at` (once); re-arming for the same instant costs nothing.
    pub fn arm(&mut self, at: Instant) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        if self.armed == Some(at) {
            return Ok(());
        }
        self.armed = Some(at);
        let ns = crate::sys::monotonic_ns()
            + at.saturating_duration_since(Instant::now()).as_nanos() as u64;
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: (ns / 1_000_000_000) as i64,
                tv_nsec: (ns % 1_000_000_000) as i64,
            },
        };
        // SAFETY: valid fd and itimerspec.
        let r = unsafe {
            libc::timerfd_settime(
                self.fd.as_raw_fd(),
                libc::TFD_TIMER_ABSTIME,
                &spec,
                std::ptr::null_mut(),
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Consumes the expiry so edge-triggered epoll reports the next one.
    pub fn clear(&self) {
        use std::os::fd::AsRawFd;
        let mut buf = [0u8; 8];
        // SAFETY: reading 8 bytes into a local buffer.
        unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), 8) };
    }
}
