//! What a person sees of a run: log lines from any thread ([`log`]), the step's live bar
//! ([`progress`]), the overall line and the final table ([`terminal`]).
//!
//! On a terminal the bars share one screen (indicatif's `MultiProgress`), and every line logged
//! while it is shown goes above the bars so lines never tear them; elsewhere (CI, a pipe) lines
//! are printed plainly. The screen is the process's stderr, written from the run's thread and
//! from the agents' link threads alike, so it is this module's one piece of state; the bars
//! themselves belong to whoever draws them ([`progress::RunProgress`], [`terminal::Overall`]).

pub mod format;
pub mod progress;
pub mod terminal;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget};
use std::io::IsTerminal;
use std::sync::{Mutex, MutexGuard};

/// The bars on screen and the overall line, below which a step's bar is drawn.
struct Screen {
    bars: MultiProgress,
    overall: Option<ProgressBar>,
    /// The terminal's settings before the screen turned the echo of control keys off.
    echoctl: Option<libc::termios>,
}

/// Turns off the terminal's echo of control keys (ECHOCTL) while bars are shown: the `^C` a
/// Ctrl-C echoes moves the cursor under the bars without their knowing, so the next redraw
/// leaves the step's bar frozen in the scrollback. Returns the settings to restore.
fn quiet_control_keys() -> Option<libc::termios> {
    let fd = libc::STDERR_FILENO;
    // SAFETY: tcgetattr/tcsetattr on stderr with a zeroed termios they fill in.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(fd, &mut t) != 0 || t.c_lflag & libc::ECHOCTL == 0 {
            return None;
        }
        let before = t;
        t.c_lflag &= !libc::ECHOCTL;
        (libc::tcsetattr(fd, libc::TCSANOW, &t) == 0).then_some(before)
    }
}

fn restore_control_keys(before: &libc::termios) {
    // SAFETY: as above, with the settings tcgetattr gave.
    unsafe {
        libc::tcsetattr(libc::STDERR_FILENO, libc::TCSANOW, before);
    }
}

static SCREEN: Mutex<Option<Screen>> = Mutex::new(None);

fn screen() -> MutexGuard<'static, Option<Screen>> {
    SCREEN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Prints a log line above the bars, or plainly when there are none; on a terminal wrapped at
/// word boundaries to its width (continuation lines indented), so no word is cut and the bars
/// below know how many rows it took.
pub fn log(line: &str) {
    let line = match width() {
        Some(w) => format::wrap(line, w, "    "),
        None => line.to_string(),
    };
    match screen().as_ref() {
        // `suspend` clears the bars, prints, and draws them again below; `println` leaves a
        // stale copy of the bars in the scrollback now and then (indicatif's "zombie bar",
        // console-rs/indicatif#474).
        Some(s) => s.bars.suspend(|| eprintln!("{line}")),
        None => eprintln!("{line}"),
    }
}

/// Columns of the terminal stderr is, if it is one.
pub fn width() -> Option<usize> {
    std::io::stderr()
        .is_terminal()
        .then(|| ::console::Term::stderr().size_checked())
        .flatten()
        .map(|(_, cols)| usize::from(cols))
}

/// Shows `bar` on the screen (made on first use): a step's bar above the overall line, the
/// overall line (`overall`) at the bottom.
fn show(bar: ProgressBar, overall: bool) -> ProgressBar {
    let mut guard = screen();
    let s = guard.get_or_insert_with(|| Screen {
        bars: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
        overall: None,
        echoctl: quiet_control_keys(),
    });
    if overall {
        let bar = s.bars.add(bar);
        s.overall = Some(bar.clone());
        return bar;
    }
    match &s.overall {
        Some(o) => s.bars.insert_before(o, bar),
        None => s.bars.add(bar),
    }
}

/// Takes `bar` off the screen; the screen goes once the overall line does.
fn hide(bar: &ProgressBar, overall: bool) {
    bar.finish_and_clear();
    let mut guard = screen();
    if let Some(s) = guard.as_ref() {
        s.bars.remove(bar);
    }
    if overall {
        if let Some(before) = guard.take().and_then(|s| s.echoctl) {
            restore_control_keys(&before);
        }
    }
}
