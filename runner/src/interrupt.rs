//! Ctrl-C (SIGINT) and SIGTERM during `runbench run`. The first one only sets a flag: the run
//! loops check it, stop the current server cleanly, write what was measured (marked
//! interrupted) and return, and the process exits with 128 + the signal number (130 for
//! SIGINT, 143 for SIGTERM). A second one exits at once with the same code; the child processes
//! then die with the runner (see [`crate::sys::tie_to_runner`]).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

pub use signal_hook::consts::{SIGINT, SIGTERM};

struct Flags {
    any: Arc<AtomicBool>,
    which: Arc<AtomicUsize>,
}

static FLAGS: OnceLock<Flags> = OnceLock::new();

/// Installs the handlers (once per process; later calls do nothing).
pub fn install() -> std::io::Result<()> {
    if FLAGS.get().is_some() {
        return Ok(());
    }
    let flags = Flags {
        any: Arc::new(AtomicBool::new(false)),
        which: Arc::new(AtomicUsize::new(0)),
    };
    for sig in [SIGINT, SIGTERM] {
        // Registered first, so it sees the flag as it was before this signal: a second signal
        // exits, the first one does not.
        signal_hook::flag::register_conditional_shutdown(sig, exit_code(sig), flags.any.clone())?;
        // Actions run in registration order: `which` is set before `any` says to look at it.
        signal_hook::flag::register_usize(sig, flags.which.clone(), sig as usize)?;
        signal_hook::flag::register(sig, flags.any.clone())?;
    }
    let _ = FLAGS.set(flags);
    Ok(())
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

/// The shell convention for "ended by signal `sig`".
pub fn exit_code(sig: i32) -> i32 {
    128 + sig
}

/// `SIGINT`, `SIGTERM`, or the number.
pub fn name(sig: i32) -> String {
    match sig {
        SIGINT => "SIGINT".into(),
        SIGTERM => "SIGTERM".into(),
        n => format!("signal {n}"),
    }
}
