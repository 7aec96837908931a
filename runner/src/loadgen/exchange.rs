//! The load generator's side of a [`Workload`]: the bytes of each request, how many answer
//! bytes a connection may expect for what it wrote, and whether they are right. The one place
//! that knows the request shape on the client's side.
//!
//! Request bytes are pseudo-random, different per connection, checkable without storing a copy
//! per connection: connection `i` sends `bytes[offset(i)..][..request]` of one shared buffer, and
//! an echo answers with the same bytes, as they arrive. A sized answer
//! ([`Workload::response_bytes`]) comes once per complete request, its byte `pos` being
//! [`Workload::response_byte`]`(pos)`.

use runbench_plugin_abi::Workload;

/// Distinct starting offsets; connections sharing one still differ from their neighbours.
const OFFSETS: usize = 251;

pub struct Exchange {
    bytes: Vec<u8>,
    payload: usize,
    /// Bytes of a sized answer; `None`: an echo.
    sized: Option<usize>,
}

impl Exchange {
    /// The exchange of `workload` (its request size, an unknown size being one byte, and the
    /// answer's).
    pub fn of(workload: &Workload) -> Self {
        let mut x = Exchange::new(workload.request_bytes.unwrap_or(1).max(1) as usize);
        if !workload.is_echo() {
            x.sized = workload.response_bytes().map(|n| n.max(1) as usize);
        }
        x
    }

    fn new(payload: usize) -> Self {
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
        Exchange {
            bytes,
            payload,
            sized: None,
        }
    }

    /// The request connection `conn` sends.
    pub fn message(&self, conn: usize) -> &[u8] {
        let off = conn % OFFSETS;
        &self.bytes[off..off + self.payload]
    }

    /// Bytes of one complete answer.
    pub fn answer_len(&self) -> usize {
        self.sized.unwrap_or(self.payload)
    }

    /// Answer bytes the server may have sent for `written` whole requests and `write_pos` bytes
    /// of the next (an echo answers bytes as they arrive, a sized answer once its request is
    /// complete).
    pub fn answerable(&self, written: usize, write_pos: usize) -> usize {
        match self.sized {
            Some(answer) => written * answer,
            None => written * self.payload + write_pos,
        }
    }

    /// Bytes of `got` that differ from the expected answer at position `pos` of the answer.
    pub fn mismatches(&self, conn: usize, pos: usize, got: &[u8]) -> u64 {
        if self.sized.is_some() {
            return (got.iter().enumerate())
                .filter(|&(i, &b)| b != Workload::response_byte(pos + i))
                .count() as u64;
        }
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
        let p = Exchange::of(&Workload::echo(64));
        assert_ne!(p.message(0), p.message(1));
        let msg = p.message(7).to_vec();
        assert_eq!(p.mismatches(7, 0, &msg), 0);
        let mut bad = msg[10..20].to_vec();
        bad[3] ^= 0xff;
        bad[4] ^= 0x01;
        assert_eq!(p.mismatches(7, 10, &bad), 2);
    }

    #[test]
    fn a_sized_answer_is_checked_against_its_pattern_once_the_request_is_whole() {
        let w = Workload {
            response_bytes: Some(1000),
            ..Workload::echo(64)
        };
        let x = Exchange::of(&w);
        assert_eq!(x.answer_len(), 1000);
        // Half a request written: no answer is due yet; two whole ones: two answers.
        assert_eq!(x.answerable(0, 32), 0);
        assert_eq!(x.answerable(2, 10), 2000);
        let good: Vec<u8> = (500..600).map(Workload::response_byte).collect();
        assert_eq!(x.mismatches(3, 500, &good), 0);
        // The echo's bytes are not a sized answer.
        assert_ne!(x.mismatches(3, 0, &x.message(3)[..10]), 0);
        let mut bad = good.clone();
        bad[7] ^= 0x40;
        assert_eq!(x.mismatches(3, 500, &bad), 1);
        // An answer the size of the request is an echo.
        let same = Workload {
            response_bytes: Some(64),
            ..Workload::echo(64)
        };
        assert_eq!(Exchange::of(&same).answerable(1, 5), 69);
    }
}
