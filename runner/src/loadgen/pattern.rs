//! Payload bytes: pseudo-random, different per connection, checkable without storing a copy per
//! connection. Connection `i` sends `bytes[offset(i)..][..payload]` of one shared buffer.

/// Distinct starting offsets; connections sharing one still differ from their neighbours.
const OFFSETS: usize = 251;

pub struct Pattern {
    bytes: Vec<u8>,
    payload: usize,
}

impl Pattern {
    pub fn new(payload: usize) -> Self {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let bytes = (0..payload + OFFSETS)
            .map(|_| {
                // xorshift64: cheap and not a repeating short cycle, so shifted copies differ.
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect();
        Pattern { bytes, payload }
    }

    /// The message connection `conn` sends.
    pub fn message(&self, conn: usize) -> &[u8] {
        let off = conn % OFFSETS;
        &self.bytes[off..off + self.payload]
    }

    /// Bytes of `got` that differ from the expected echo at position `pos` of the message.
    pub fn mismatches(&self, conn: usize, pos: usize, got: &[u8]) -> u64 {
        let want = &self.message(conn)[pos..pos + got.len()];
        if want == got {
            return 0;
        }
        want.iter().zip(got).filter(|(a, b)| a != b).count() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbours_differ_and_mismatches_are_counted() {
        let p = Pattern::new(64);
        assert_ne!(p.message(0), p.message(1));
        let msg = p.message(7).to_vec();
        assert_eq!(p.mismatches(7, 0, &msg), 0);
        let mut bad = msg[10..20].to_vec();
        bad[3] ^= 0xff;
        bad[4] ^= 0x01;
        assert_eq!(p.mismatches(7, 10, &bad), 2);
    }
}
