//! What the user sees while a run goes on: a live bar on a terminal, plain log lines otherwise
//! (CI). Every other module logs through [`log`], so lines never tear the bar.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// Phases of one runtime's run, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Starting,
    Connecting,
    Warmup,
    Measure,
    Shutdown,
}

impl Phase {
    fn label(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Connecting => "connecting",
            Phase::Warmup => "warmup",
            Phase::Measure => "measure",
            Phase::Shutdown => "shutdown",
        }
    }
}

/// Progress of one runtime's run.
pub struct RunProgress {
    runtime: String,
    bar: Option<ProgressBar>,
    phase: Phase,
    load_total: Duration,
    last_plain: Instant,
    last_rate: Instant,
}

impl RunProgress {
    pub fn start(runtime: &str, load_total: Duration) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            // Hidden until the screen takes it: a bar with a target of its own draws itself
            // once on `set_prefix`, outside the screen's count of lines, which leaves a stale
            // copy of the overall line in the scrollback.
            let bar = ProgressBar::with_draw_target(
                Some(load_total.as_millis() as u64),
                ProgressDrawTarget::hidden(),
            );
            bar.set_style(
                ProgressStyle::with_template("{prefix:>14.bold} {msg:<28} [{bar:30}] {elapsed}")
                    .expect("static template")
                    .progress_chars("=> "),
            );
            bar.set_prefix(runtime.to_string());
            let bar = super::show(bar, false);
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        let mut p = RunProgress {
            runtime: runtime.to_string(),
            bar,
            phase: Phase::Starting,
            load_total,
            last_plain: Instant::now(),
            last_rate: Instant::now(),
        };
        p.phase(Phase::Starting);
        p
    }

    pub fn phase(&mut self, phase: Phase) {
        self.phase = phase;
        match &self.bar {
            Some(bar) => bar.set_message(phase.label()),
            None => eprintln!("[{}] {}", self.runtime, phase.label()),
        }
    }

    /// Load progress: time since the load started; `rate` gives requests/s since its last call
    /// (measured by the load processes' own clocks), asked at most twice a second.
    pub fn load(&mut self, elapsed: Duration, warmup: Duration, rate: impl FnOnce() -> f64) {
        let want = if elapsed < warmup {
            Phase::Warmup
        } else {
            Phase::Measure
        };
        if want != self.phase {
            self.phase(want);
        }
        if self.last_rate.elapsed() < Duration::from_millis(500) {
            return;
        }
        self.last_rate = Instant::now();
        let rate = rate();
        match &self.bar {
            Some(bar) => {
                bar.set_position(elapsed.min(self.load_total).as_millis() as u64);
                let rate = super::format::thousands(rate);
                bar.set_message(format!("{} {rate:>10} req/s", self.phase.label()));
            }
            None if self.last_plain.elapsed() >= Duration::from_secs(5) => {
                self.last_plain = Instant::now();
                eprintln!(
                    "[{}] {} {:.0}s/{:.0}s {} req/s",
                    self.runtime,
                    self.phase.label(),
                    elapsed.as_secs_f64(),
                    self.load_total.as_secs_f64(),
                    super::format::thousands(rate)
                );
            }
            None => {}
        }
    }

    pub fn finish(self) {}
}

/// The bar leaves the screen however the step ends (finished, failed, interrupted): a dropped
/// bar would otherwise stay frozen under the lines that follow.
impl Drop for RunProgress {
    fn drop(&mut self) {
        if let Some(bar) = self.bar.take() {
            super::hide(&bar, false);
        }
    }
}
