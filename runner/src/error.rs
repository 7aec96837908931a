//! What a command ends with, and the one table of exit codes (README.md, "Exit codes", says the
//! same in words). Every command returns `Result<Exit, Error>`; `cli::main` prints the error and
//! exits with its kind's code, so an error can never claim a code that does not describe it
//! (a full disk after measuring is not "bad input; nothing was run").

use std::path::{Path, PathBuf};

/// How a command ended; [`Exit::code`] is the process's exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Everything ran (every runtime, trial and chart).
    Ok,
    /// Some runtimes, trials or charts failed; what they say is in their rows (or on stderr),
    /// and everything else was measured and written.
    SomeFailed,
    /// Bad input (scenario, arguments, plugin, output folder) or a preflight refusal: nothing
    /// was run and nothing was written.
    BadInput,
    /// `nightly` / `compare`: a confirmed regression; results and reports were written.
    Regression,
    /// A file could not be written (disk full, quota, file size limit, permissions). The
    /// message names the file; files written before are whole, and no temporary file is left.
    WriteFailed,
    /// The system refused something runbench needs that no input controls (its own
    /// executable, signal handlers); nothing was run.
    System,
    /// `run`: every runtime ran, but a row broke the scenario's `[slo]` thresholds.
    SloFailed,
    /// Across machines: the agents did not join, or an agent lost its controller.
    Cluster,
    /// Stopped by a signal (SIGHUP, SIGINT, SIGTERM): 128 + its number. What was measured was
    /// written and marked interrupted.
    Signal(i32),
}

impl Exit {
    pub fn code(self) -> i32 {
        match self {
            Exit::Ok => 0,
            Exit::SomeFailed => 1,
            Exit::BadInput => 2,
            Exit::Regression => 3,
            Exit::WriteFailed => 4,
            Exit::System => 5,
            Exit::SloFailed => 6,
            Exit::Cluster => 7,
            Exit::Signal(sig) => crate::os::interrupt::exit_code(sig),
        }
    }
}

/// A failed write of an output file. Kept as a type (not text) so that any command that meets
/// one, however deep, exits with [`Exit::WriteFailed`].
#[derive(Debug, thiserror::Error)]
// Not `source`: the reason would then be printed twice by `{:#}`.
#[error("could not write {}: {reason}", path.display())]
pub struct WriteError {
    pub path: PathBuf,
    pub reason: std::io::Error,
}

impl WriteError {
    pub fn new(path: &Path, reason: std::io::Error) -> WriteError {
        WriteError {
            path: path.to_path_buf(),
            reason,
        }
    }
}

/// Why a command failed. The variant alone decides the exit code ([`Error::kind`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0:#}")]
    BadInput(anyhow::Error),
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("{0:#}")]
    System(anyhow::Error),
    #[error("{0:#}")]
    Cluster(anyhow::Error),
}

impl Error {
    pub fn kind(&self) -> Exit {
        match self {
            Error::BadInput(_) => Exit::BadInput,
            Error::Write(_) => Exit::WriteFailed,
            Error::System(_) => Exit::System,
            Error::Cluster(_) => Exit::Cluster,
        }
    }

    /// Bad input, unless a write failure is somewhere in the chain: that is always reported as
    /// one, whoever wrapped it.
    pub fn input(e: impl Into<anyhow::Error>) -> Error {
        Self::unless_write(e.into(), Error::BadInput)
    }

    /// A system failure, unless a write failure is in the chain (see [`Error::input`]).
    pub fn system(e: impl Into<anyhow::Error>) -> Error {
        Self::unless_write(e.into(), Error::System)
    }

    fn unless_write(e: anyhow::Error, otherwise: fn(anyhow::Error) -> Error) -> Error {
        match e.downcast::<WriteError>() {
            Ok(w) => Error::Write(w),
            Err(e) => otherwise(e),
        }
    }
}

impl From<crate::scenario::ScenarioError> for Error {
    fn from(e: crate::scenario::ScenarioError) -> Self {
        Error::BadInput(e.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_readme_table() {
        let table = [
            (Exit::Ok, 0),
            (Exit::SomeFailed, 1),
            (Exit::BadInput, 2),
            (Exit::Regression, 3),
            (Exit::WriteFailed, 4),
            (Exit::System, 5),
            (Exit::SloFailed, 6),
            (Exit::Cluster, 7),
            (Exit::Signal(libc::SIGHUP), 129),
            (Exit::Signal(libc::SIGINT), 130),
            (Exit::Signal(libc::SIGTERM), 143),
        ];
        for (exit, code) in table {
            assert_eq!(exit.code(), code, "{exit:?}");
        }
    }

    #[test]
    fn a_write_failure_keeps_its_kind_through_context_and_any_wrapper() {
        let w = || {
            WriteError::new(
                Path::new("/out/summary.csv"),
                std::io::Error::from_raw_os_error(libc::ENOSPC),
            )
        };
        let wrapped = anyhow::Error::from(w()).context("nightly: recording tonight");
        for e in [Error::input(wrapped), Error::system(w())] {
            assert_eq!(e.kind(), Exit::WriteFailed);
            assert!(e.to_string().contains("/out/summary.csv"), "{e}");
        }
        assert_eq!(
            Error::input(anyhow::anyhow!("bad scenario")).kind(),
            Exit::BadInput
        );
    }
}
