//! SIGINT (Ctrl-C), SIGTERM and SIGHUP (a closed terminal or ssh session), for every command.
//! The first one only sets a flag: the run loops check it, stop the current server cleanly,
//! write what was measured (marked interrupted) and return, and the process exits with 128 +
//! the signal number (129 SIGHUP, 130 SIGINT, 143 SIGTERM); a short command (plot, validate)
//! finishes its atomic writes first. A second one exits at once with the same code; the child
//! processes then die with the runner (see [`crate::os::sys::tie_to_runner`]).

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

pub use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

/// The signals that stop a command cleanly.
pub const SIGNALS: [i32; 3] = [SIGHUP, SIGINT, SIGTERM];

struct Flags {
    any: Arc<AtomicBool>,
    which: Arc<AtomicUsize>,
    /// Kept open for the SIGHUP handler (see [`install`]).
    _null: Option<OwnedFd>,
}

static FLAGS: OnceLock<Flags> = OnceLock::new();

/// Installs the handlers (once per process; later calls do nothing).
pub fn install() -> std::io::Result<()> {
    if FLAGS.get().is_some() {
        return Ok(());
    }
    let any = Arc::new(AtomicBool::new(false));
    let which = Arc::new(AtomicUsize::new(0));
    for sig in SIGNALS {
        // Registered first, so it sees the flag as it was before this signal: a second signal
        // exits, the first one does not.
        signal_hook::flag::register_conditional_shutdown(sig, exit_code(sig), any.clone())?;
        // Actions run in registration order: `which` is set before `any` says to look at it.
        signal_hook::flag::register_usize(sig, which.clone(), sig as usize)?;
        signal_hook::flag::register(sig, any.clone())?;
    }
    let null = silence_terminal_on_hangup()?;
    let _ = FLAGS.set(Flags {
        any,
        which,
        _null: null,
    });
    Ok(())
}

/// After a hangup the terminal is gone and every write to it fails (EIO); `eprintln!` panics on
/// a failed write, which would kill the run before it marks its files. So on SIGHUP, stdout and
/// stderr, where they are that terminal, are pointed at /dev/null (dup2 is async-signal-safe).
/// Output redirected to a file or pipe is left alone.
fn silence_terminal_on_hangup() -> std::io::Result<Option<OwnedFd>> {
    // SAFETY: isatty has no preconditions.
    let ttys: Vec<i32> = [libc::STDOUT_FILENO, libc::STDERR_FILENO]
        .into_iter()
        .filter(|&fd| unsafe { libc::isatty(fd) } == 1)
        .collect();
    if ttys.is_empty() {
        return Ok(None);
    }
    let null: OwnedFd = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")?
        .into();
    let raw = null.as_raw_fd();
    // SAFETY: the action only calls dup2 (async-signal-safe) on descriptors it owns or that
    // stay open for the life of the process (`null` lives in FLAGS).
    unsafe {
        signal_hook::low_level::register(SIGHUP, move || {
            for &fd in &ttys {
                libc::dup2(raw, fd);
            }
        })?;
    }
    Ok(Some(null))
}

/// The signal that asked the run to stop, if one has.
pub fn requested() -> Option<i32> {
    let flags = FLAGS.get()?;
    if !flags.any.load(Ordering::SeqCst) {
        return None;
    }
    match flags.which.load(Ordering::SeqCst) {
        0 => Some(SIGINT),
        sig => Some(sig as i32),
    }
}

/// The shell convention for "ended by signal `sig`" (`crate::error::Exit::Signal`'s code).
pub fn exit_code(sig: i32) -> i32 {
    128 + sig
}

/// `SIGHUP`, `SIGINT`, `SIGTERM`, or the number.
pub fn name(sig: i32) -> String {
    match sig {
        SIGHUP => "SIGHUP".into(),
        SIGINT => "SIGINT".into(),
        SIGTERM => "SIGTERM".into(),
        n => format!("signal {n}"),
    }
}
