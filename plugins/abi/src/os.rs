//! Operating-system glue shared by plugins.

use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

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

/// Turns TCP_NODELAY on for a runtime's TCP stream, given its descriptor.
pub fn set_nodelay(stream: &impl AsRawFd) -> io::Result<()> {
    // SAFETY: the descriptor belongs to `stream`, which is borrowed for the whole call.
    let fd = unsafe { BorrowedFd::borrow_raw(stream.as_raw_fd()) };
    socket2::SockRef::from(&fd).set_tcp_nodelay(true)
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

/// Stack of each connection thread of a thread-per-connection server (std-threads): its loop
/// needs a few KiB; 64 KiB leaves room for the formatting and panic paths. The host plans with
/// the same figure.
pub const CONNECTION_STACK_KIB: usize = 64;

/// What bounds the number of threads this process can have, as the kernel reports it.
#[derive(Clone, Debug, Default)]
pub struct ThreadLimits {
    pub threads_max: Option<u64>,
    pub pid_max: Option<u64>,
    pub max_map_count: Option<u64>,
    pub pids_max: Option<String>,
    pub nproc: Option<u64>,
    pub mem_available_kib: Option<u64>,
}

impl ThreadLimits {
    /// Reads them now.
    pub fn read() -> Self {
        let num = |path: &str| {
            std::fs::read_to_string(path)
                .ok()
                .and_then(|s| s.trim().parse().ok())
        };
        let mut rl = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: writes into a live rlimit.
        let nproc = (unsafe { libc::getrlimit(libc::RLIMIT_NPROC, &mut rl) } == 0)
            .then_some(rl.rlim_cur)
            .filter(|&n| n != libc::RLIM_INFINITY);
        let mem_available_kib = std::fs::read_to_string("/proc/meminfo").ok().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemAvailable:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        });
        ThreadLimits {
            threads_max: num("/proc/sys/kernel/threads-max"),
            pid_max: num("/proc/sys/kernel/pid_max"),
            max_map_count: num("/proc/sys/vm/max_map_count"),
            pids_max: std::fs::read_to_string("/sys/fs/cgroup/pids.max")
                .ok()
                .map(|s| s.trim().to_string()),
            nproc,
            mem_available_kib,
        }
    }

    /// The most threads the machine allows in all (kernel.threads-max, kernel.pid_max,
    /// RLIMIT_NPROC, the cgroup's pids.max), if any is known.
    pub fn machine_ceiling(&self) -> Option<u64> {
        let pids_max = self.pids_max.as_deref().and_then(|p| p.parse::<u64>().ok());
        [self.threads_max, self.pid_max, self.nproc, pids_max]
            .into_iter()
            .flatten()
            .min()
    }

    /// The most threads one process can have: two mappings per thread stack (the stack and its
    /// guard page) under vm.max_map_count.
    pub fn process_ceiling(&self) -> Option<u64> {
        self.max_map_count.map(|m| m / 2)
    }

    /// The limits in words, with the ceiling they give for connection threads.
    pub fn describe(&self) -> String {
        let show = |v: Option<u64>| v.map_or("unknown".to_string(), |v| v.to_string());
        let ceiling = [self.machine_ceiling(), self.process_ceiling()]
            .into_iter()
            .flatten()
            .min();
        format!(
            "kernel.threads-max {}, kernel.pid_max {}, RLIMIT_NPROC {}, cgroup pids.max {}, \
             vm.max_map_count {} (two per thread stack), MemAvailable {} KiB; at most about {} \
             connection threads ({CONNECTION_STACK_KIB} KiB stacks)",
            show(self.threads_max),
            show(self.pid_max),
            self.nproc
                .map_or("unlimited".to_string(), |v| v.to_string()),
            self.pids_max.as_deref().unwrap_or("none"),
            show(self.max_map_count),
            show(self.mem_available_kib),
            show(ceiling),
        )
    }
}
