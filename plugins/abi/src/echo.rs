//! Runtime-independent pieces of the echo protocol that every plugin shares.

use std::time::{Duration, Instant};

/// How a connection ended; each maps to one [`crate::ServeReport`] counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    PeerClosed,
    Clean,
    Cut,
    IoError,
}

/// Tracks where a connection is within the fixed-size messages of the load, so the server knows
/// whether a stop signal finds it between messages (close now) or inside one (finish first).
#[derive(Clone, Debug)]
pub struct MessageTracker {
    message_bytes: Option<u64>,
    pos: u64,
}

impl MessageTracker {
    pub fn new(message_bytes: Option<u64>) -> Self {
        MessageTracker {
            message_bytes,
            pos: 0,
        }
    }

    /// True when every byte read so far belongs to a complete message.
    pub fn at_boundary(&self) -> bool {
        self.pos == 0
    }

    /// Accounts for `n` bytes read; returns how many messages started in them (the number of
    /// times per-message work must be done).
    pub fn consumed(&mut self, n: usize) -> u64 {
        let n = n as u64;
        match self.message_bytes {
            None => u64::from(n > 0),
            Some(size) => {
                let starts = if self.pos == 0 {
                    n.div_ceil(size)
                } else {
                    (n + self.pos).div_ceil(size) - 1
                };
                self.pos = (self.pos + n) % size;
                starts
            }
        }
    }
}

/// Busy-spins the calling thread for `d` (CPU work per request, not yielding to the runtime).
pub fn spin_for(d: Duration) {
    if d.is_zero() {
        return;
    }
    let start = Instant::now();
    while start.elapsed() < d {
        std::hint::spin_loop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracker_counts_message_starts_across_split_reads() {
        let mut t = MessageTracker::new(Some(64));
        assert_eq!(t.consumed(10), 1);
        assert!(!t.at_boundary());
        assert_eq!(t.consumed(54), 0);
        assert!(t.at_boundary());
        assert_eq!(t.consumed(128), 2);
        assert_eq!(t.consumed(70), 2);
        assert_eq!(t.consumed(58), 0);
        assert!(t.at_boundary());
    }

    #[test]
    fn unknown_size_treats_each_read_as_a_message() {
        let mut t = MessageTracker::new(None);
        assert_eq!(t.consumed(5), 1);
        assert!(t.at_boundary());
    }
}
