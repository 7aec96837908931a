//! Small OS facts and knobs: descriptor limits, CPU affinity, process resource usage.

use std::io;

/// (soft, hard) limit on open files.
pub fn nofile_limit() -> io::Result<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscall into a local struct.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((lim.rlim_cur, lim.rlim_max))
}

/// Raises the soft open-files limit to the hard limit (children inherit it); returns it.
pub fn raise_nofile() -> io::Result<u64> {
    let (_, hard) = nofile_limit()?;
    let lim = libc::rlimit {
        rlim_cur: hard,
        rlim_max: hard,
    };
    // SAFETY: as above.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(hard)
}

/// Restricts the whole calling process (threads created later inherit it) to `cpus`.
pub fn pin_process(cpus: &[usize]) -> io::Result<()> {
    if cpus.is_empty() {
        return Ok(());
    }
    // SAFETY: cpu_set_t is plain data.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cpus {
            libc::CPU_SET(c, &mut set);
        }
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// How a reaped child ended, with its resource usage.
#[derive(Clone, Copy, Debug, Default)]
pub struct Reaped {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub user_s: f64,
    pub sys_s: f64,
    pub max_rss_bytes: u64,
}

/// Non-blocking wait4 on `pid`: `Some` once it has exited.
pub fn try_reap(pid: u32) -> io::Result<Option<Reaped>> {
    let mut status = 0;
    // SAFETY: rusage is plain data, filled by the kernel.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 on our own child.
    let r = unsafe { libc::wait4(pid as i32, &mut status, libc::WNOHANG, &mut usage) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    if r == 0 {
        return Ok(None);
    }
    let (user_s, sys_s) = cpu_seconds(&usage);
    Ok(Some(Reaped {
        exit_code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        signal: libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status)),
        user_s,
        sys_s,
        max_rss_bytes: usage.ru_maxrss as u64 * 1024,
    }))
}

pub fn kill(pid: u32, signal: i32) {
    // SAFETY: signalling our own child; a stale pid of ours is reaped only by us.
    unsafe {
        libc::kill(pid as i32, signal);
    }
}

/// Signals every process of group `pgid` (a target command and whatever it started).
pub fn kill_group(pgid: u32, signal: i32) {
    // SAFETY: signalling a group led by our own child; kill(-pgid) only reaches that group.
    unsafe {
        libc::kill(-(pgid as i32), signal);
    }
}

/// CLOCK_MONOTONIC in nanoseconds: one clock for every process on the machine (Rust's `Instant`
/// reads the same clock but cannot cross a process boundary).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime into a local struct.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The `Instant` of a CLOCK_MONOTONIC reading (possibly another process's).
pub fn instant_at(monotonic: u64) -> std::time::Instant {
    let (now_i, now_ns) = (std::time::Instant::now(), monotonic_ns());
    if monotonic >= now_ns {
        now_i + std::time::Duration::from_nanos(monotonic - now_ns)
    } else {
        now_i - std::time::Duration::from_nanos(now_ns - monotonic)
    }
}

/// The CLOCK_MONOTONIC reading of an `Instant` (to tell another process about it).
pub fn ns_at(t: std::time::Instant) -> u64 {
    let (now_i, now_ns) = (std::time::Instant::now(), monotonic_ns());
    if t >= now_i {
        now_ns + (t - now_i).as_nanos() as u64
    } else {
        now_ns.saturating_sub((now_i - t).as_nanos() as u64)
    }
}

/// Prepares a child command so that it belongs to the runner alone:
/// - its own process group, so the terminal's Ctrl-C reaches only the runner, which then stops
///   the child in order (stop command, grace, report) instead of the child dying mid-report;
/// - SIGKILL when the runner dies (PR_SET_PDEATHSIG), so even a runner killed with SIGKILL
///   leaves nothing running: a serve child would stop on stdin EOF anyway, but a plugin that
///   ignores the stop signal, or a load generator in the middle of its load, would not.
///
/// The death signal follows the *thread* that spawned the child: spawn from a thread that
/// outlives the child (runbench spawns from the thread that runs the plan).
pub fn tie_to_runner(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: getpid has no preconditions.
    let runner = unsafe { libc::getpid() };
    cmd.process_group(0);
    // SAFETY: the closure runs between fork and exec and only makes async-signal-safe
    // syscalls (prctl, getppid) without allocating.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The runner may have died before prctl took effect; then nobody would kill us.
            if libc::getppid() != runner {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// CPU seconds (user, system) this process has used, from getrusage.
pub fn own_cpu_time() -> (f64, f64) {
    // SAFETY: getrusage into a zeroed local struct.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    cpu_seconds(&u)
}

/// (user, system) seconds of an rusage.
fn cpu_seconds(u: &libc::rusage) -> (f64, f64) {
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (secs(u.ru_utime), secs(u.ru_stime))
}

/// CPU time the calling thread has used (user + system), from CLOCK_THREAD_CPUTIME_ID.
pub fn thread_cpu_time() -> std::time::Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime into a local struct.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Opens `path` for reading if it is a regular file, refusing anything else before a byte is
/// read: a FIFO with no writer would block in `open` (and Ctrl-C only sets a flag while a
/// command runs, so it would wait forever), a device could stream without end. Opened
/// non-blocking and checked on the descriptor, so the check and the read see the same file
/// (O_NONBLOCK does nothing to a regular file's reads).
pub fn open_regular(path: &std::path::Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let ft = file.metadata()?.file_type();
    if ft.is_file() {
        return Ok(file);
    }
    let what = if ft.is_fifo() {
        "a FIFO (named pipe)"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_char_device() || ft.is_block_device() {
        "a device"
    } else {
        "not a regular file"
    };
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("it is {what}; give a regular file"),
    ))
}

/// Turns on an integer socket option (`setsockopt(fd, level, name, 1)`).
pub fn set_flag(
    socket: &impl std::os::fd::AsRawFd,
    level: libc::c_int,
    name: libc::c_int,
) -> io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: setsockopt with a pointer to a live c_int of the stated size.
    let r = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
