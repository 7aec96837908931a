//! What one short sleep costs this thread, measured once per worker before the load starts.
//!
//! A sleep is not free: it arms a timer, gives up the CPU, and the wake-up programs the timer
//! again. On bare metal that is a few microseconds; in a virtual machine each timer write can
//! exit to the hypervisor (measured on the 2-core Firecracker VM of 2026-12-02: 7 µs per timer
//! write, 46-52 µs of CPU per sleep, ~26 µs when the CPU does not go idle). A wait shorter than
//! half that cost is cheaper spent awake, and it ends on time where the sleep would overshoot.

use std::time::Duration;

/// Sleeps measured (the mean; ~16 × (10 µs + the overshoot): a few milliseconds at most).
const SAMPLES: u32 = 16;
const SLEEP: Duration = Duration::from_micros(10);
/// Spinning is bounded whatever the measurement says: a preempted calibration would otherwise
/// make the generator spin through long gaps.
const SPIN_AT_MOST: Duration = Duration::from_micros(25);

/// The CPU time one short sleep costs the calling thread.
pub fn measure() -> Duration {
    let cpu = crate::os::sys::thread_cpu_time();
    for _ in 0..SAMPLES {
        std::thread::sleep(SLEEP);
    }
    crate::os::sys::thread_cpu_time().saturating_sub(cpu) / SAMPLES
}

/// Waits shorter than this are spent polling instead of sleeping.
pub fn spin_below(sleep_cost: Duration) -> Duration {
    (sleep_cost / 2).min(SPIN_AT_MOST)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sleep_costs_some_cpu_but_less_than_it_lasts_plus_a_millisecond() {
        // Thread CPU time, not wall time: a sleeping thread is charged only for arming and
        // waking, so the cost is far below the sleep's own wall time on any machine.
        let cost = measure();
        assert!(cost > Duration::ZERO, "{cost:?}");
        assert!(cost < Duration::from_millis(1), "{cost:?}");
    }

    #[test]
    fn spinning_is_bounded() {
        assert_eq!(
            spin_below(Duration::from_micros(10)),
            Duration::from_micros(5)
        );
        assert_eq!(spin_below(Duration::from_millis(5)), SPIN_AT_MOST);
    }
}
