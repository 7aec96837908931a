//! What glommio needs from the machine, checked up front so a missing piece is reported with its
//! fix instead of as a raw OS error from deep inside an executor thread.

use std::io;

/// glommio refuses to create a reactor below this much RLIMIT_MEMLOCK (`sys/uring.rs`).
const GLOMMIO_MIN_MEMLOCK: u64 = 512 * 1024;
/// The most `io_memory` this plugin asks for. glommio's default is 10 MiB, but the memory is
/// for storage I/O (DMA buffers) that an echo server never uses, and it is allocated up front,
/// so a large value only inflates RSS.
const MAX_IO_MEMORY: u64 = 512 * 1024;
/// glommio's floor for `io_memory`.
const GLOMMIO_MIN_IO_MEMORY: u64 = 64 * 1024;
/// Each executor registers its `io_memory` with three rings (main, latency, poll); every
/// registration is charged to RLIMIT_MEMLOCK separately.
const RINGS_PER_EXECUTOR: u64 = 3;

/// Checks io_uring and the locked-memory limit (raising the soft limit to the hard one), and
/// returns the `io_memory` per executor that keeps all registrations within the limit.
pub fn check_system(executors: usize) -> Result<usize, String> {
    probe_io_uring()?;
    let memlock = raise_memlock()?;
    if memlock < GLOMMIO_MIN_MEMLOCK {
        return Err(format!(
            "glommio needs at least {} KiB of locked memory (RLIMIT_MEMLOCK), but this process \
             may lock only {} KiB (hard limit). Raise it before starting runbench, e.g. \
             `ulimit -l 8192` in the shell, `LimitMEMLOCK=8M` for a systemd unit, \
             `--ulimit memlock=8388608` for docker, or a `memlock` line in \
             /etc/security/limits.conf",
            GLOMMIO_MIN_MEMLOCK / 1024,
            memlock / 1024
        ));
    }
    let per_ring = memlock / (RINGS_PER_EXECUTOR * executors.max(1) as u64);
    let io_memory = (per_ring & !4095).clamp(GLOMMIO_MIN_IO_MEMORY, MAX_IO_MEMORY);
    Ok(io_memory as usize)
}

/// Sets up (and closes) a tiny ring, so a kernel without io_uring, or one where it is switched
/// off, is named as such.
fn probe_io_uring() -> Result<(), String> {
    // io_uring_params is 120 bytes on every kernel that has the syscall; zeroed means defaults.
    let mut params = [0u8; 120];
    // SAFETY: io_uring_setup writes at most sizeof(io_uring_params) into `params`.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 2u32, params.as_mut_ptr()) };
    if fd >= 0 {
        // SAFETY: closing the ring we just created.
        unsafe { libc::close(fd as i32) };
        return Ok(());
    }
    let err = io::Error::last_os_error();
    let why = match err.raw_os_error() {
        Some(libc::ENOSYS) => "this kernel has no io_uring (it needs Linux 5.8 or newer)",
        Some(libc::EPERM) => {
            "io_uring is not permitted here: check `sysctl kernel.io_uring_disabled` (must be 0, \
             or 1 with this user in kernel.io_uring_group) and any seccomp profile of the \
             container (docker's default blocks io_uring)"
        }
        Some(libc::ENOMEM) => {
            "the kernel could not allocate the ring; on kernels before 5.12 rings count against \
             RLIMIT_MEMLOCK: raise it (`ulimit -l`)"
        }
        _ => "io_uring_setup failed",
    };
    Err(format!("glommio needs io_uring: {why} ({err})"))
}

/// Raises the soft RLIMIT_MEMLOCK to the hard limit; returns the new soft limit in bytes.
fn raise_memlock() -> Result<u64, String> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) != 0 {
            return Err(format!(
                "reading RLIMIT_MEMLOCK: {}",
                io::Error::last_os_error()
            ));
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_MEMLOCK, &raised) == 0 {
                lim = raised;
            }
        }
    }
    Ok(if lim.rlim_cur == libc::RLIM_INFINITY {
        u64::MAX
    } else {
        lim.rlim_cur
    })
}
