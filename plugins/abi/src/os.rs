//! Operating-system glue shared by plugins.

use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// A non-blocking listener on `addr` with SO_REUSEPORT, so several listeners (threads or
/// processes) can share one port and the kernel spreads connections over them.
pub fn reuseport_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(crate::LISTEN_BACKLOG)?;
    Ok(socket.into())
}

/// Pins the calling thread to one CPU.
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    // SAFETY: cpu_set_t is plain data; sched_setaffinity(0) affects the calling thread only.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// A non-blocking eventfd.
pub fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; the fd is owned from here on.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A `Waker` that adds one to an eventfd: how a thread blocked in `poll`, or a runtime that can
/// only be woken from its own thread, learns of a wake-up from another thread. The fd must stay
/// open for as long as the waker can be woken.
pub struct EventFdWaker(pub RawFd);

impl std::task::Wake for EventFdWaker {
    fn wake(self: std::sync::Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        let one = 1u64;
        // SAFETY: writes 8 bytes from a live u64 to an fd the owner keeps open (see above). A full
        // counter (EAGAIN) already means "woken".
        unsafe { libc::write(self.0, (&one as *const u64).cast(), 8) };
    }
}
