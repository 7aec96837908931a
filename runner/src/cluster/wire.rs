//! Frames on a controller-agent connection: a 4-byte big-endian length, then a JSON payload,
//! then (once the handshake set a key) a 32-byte HMAC-SHA256 tag over the direction, the
//! frame's sequence number and the payload. Each side counts the frames it sent and received,
//! so a replayed, reordered, reflected, dropped or altered frame fails its tag and ends the
//! connection.

use hmac::{Hmac, Mac};
use serde::{de::DeserializeOwned, Serialize};
use sha2::Sha256;
use std::io::{self, BufReader, Read, Write};
use std::net::TcpStream;

type HmacSha256 = Hmac<Sha256>;

/// Larger frames are refused before they are read (the biggest real one is a load result's
/// histograms, well under this).
pub const MAX_FRAME: usize = 16 << 20;
pub const TAG_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("connection closed")]
    Closed,
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("a frame of {0} bytes is over the {MAX_FRAME}-byte limit")]
    TooLarge(usize),
    #[error("frame {0} failed its authentication tag (tampered, replayed or reordered)")]
    BadTag(u64),
    #[error("a frame that is not a message: {0}")]
    Json(#[from] serde_json::Error),
}

impl WireError {
    /// A read that timed out (the socket's read timeout), as opposed to a broken connection.
    pub fn is_timeout(&self) -> bool {
        matches!(self, WireError::Io(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut))
    }
}

/// Which way a frame goes: part of every tag, so a frame cannot be reflected to its sender.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    ToAgent = 1,
    ToController = 2,
}

/// HMAC-SHA256 of `parts` under `key`.
pub fn mac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

/// Constant-time check of `tag` against the HMAC of `parts`.
pub fn verify(key: &[u8], parts: &[&[u8]], tag: &[u8]) -> bool {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        m.update(p);
    }
    m.verify_slice(tag).is_ok()
}

fn frame_tag(key: &[u8; 32], dir: Direction, seq: u64, payload: &[u8]) -> [u8; 32] {
    mac(key, &[&[dir as u8], &seq.to_be_bytes(), payload])
}

/// The sending half of a connection.
pub struct FrameWriter<W: Write = TcpStream> {
    out: W,
    key: Option<[u8; 32]>,
    dir: Direction,
    seq: u64,
}

impl<W: Write> FrameWriter<W> {
    pub fn new(out: W, dir: Direction) -> Self {
        FrameWriter {
            out,
            key: None,
            dir,
            seq: 0,
        }
    }

    /// From now on every frame carries a tag under `key`.
    pub fn authenticate(&mut self, key: [u8; 32]) {
        self.key = Some(key);
    }

    pub fn send<T: Serialize>(&mut self, msg: &T) -> Result<(), WireError> {
        let payload = serde_json::to_vec(msg)?;
        self.send_raw(&payload)
    }

    pub(super) fn send_raw(&mut self, payload: &[u8]) -> Result<(), WireError> {
        if payload.len() > MAX_FRAME {
            return Err(WireError::TooLarge(payload.len()));
        }
        let mut buf = Vec::with_capacity(4 + payload.len() + TAG_LEN);
        buf.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        buf.extend_from_slice(payload);
        if let Some(key) = &self.key {
            buf.extend_from_slice(&frame_tag(key, self.dir, self.seq, payload));
            self.seq += 1;
        }
        self.out.write_all(&buf)?;
        self.out.flush()?;
        Ok(())
    }
}

/// The receiving half of a connection.
pub struct FrameReader<R: Read = TcpStream> {
    input: BufReader<R>,
    key: Option<[u8; 32]>,
    dir: Direction,
    seq: u64,
}

impl<R: Read> FrameReader<R> {
    /// `dir`: the direction of the frames this side receives.
    pub fn new(input: R, dir: Direction) -> Self {
        FrameReader {
            input: BufReader::new(input),
            key: None,
            dir,
            seq: 0,
        }
    }

    pub fn authenticate(&mut self, key: [u8; 32]) {
        self.key = Some(key);
    }

    pub fn recv<T: DeserializeOwned>(&mut self) -> Result<T, WireError> {
        let payload = self.recv_raw()?;
        Ok(serde_json::from_slice(&payload)?)
    }

    pub(super) fn recv_raw(&mut self) -> Result<Vec<u8>, WireError> {
        // A timeout before the first byte is the caller's (nothing came); after it, the rest of
        // the frame is awaited so its boundary is never lost.
        let mut len = [0u8; 4];
        let first = loop {
            match self.input.read(&mut len) {
                Ok(0) => return Err(WireError::Closed),
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        };
        match self.read_rest(&mut len[first..]) {
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(WireError::Closed),
            r => r?,
        }
        let len = u32::from_be_bytes(len) as usize;
        if len > MAX_FRAME {
            return Err(WireError::TooLarge(len));
        }
        let mut payload = vec![0u8; len];
        self.read_rest(&mut payload)?;
        if let Some(key) = self.key {
            let mut tag = [0u8; TAG_LEN];
            self.read_rest(&mut tag)?;
            let parts: [&[u8]; 3] = [&[self.dir as u8], &self.seq.to_be_bytes(), &payload];
            if !verify(&key, &parts, &tag) {
                return Err(WireError::BadTag(self.seq));
            }
            self.seq += 1;
        }
        Ok(payload)
    }

    /// The rest of a frame whose length arrived: a timeout here would lose the frame's
    /// boundary, so it waits through timeouts (the sender wrote the frame in one piece).
    fn read_rest(&mut self, buf: &mut [u8]) -> io::Result<()> {
        let mut at = 0;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while at < buf.len() {
            match self.input.read(&mut buf[at..]) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => at += n,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) && std::time::Instant::now() < deadline => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(key: Option<[u8; 32]>, bytes: &mut Vec<u8>, msgs: &[&str]) {
        let mut w = FrameWriter::new(bytes, Direction::ToAgent);
        if let Some(k) = key {
            w.authenticate(k);
        }
        for m in msgs {
            w.send(m).unwrap();
        }
    }

    fn reader(bytes: &[u8], key: [u8; 32], dir: Direction) -> FrameReader<&[u8]> {
        let mut r = FrameReader::new(bytes, dir);
        r.authenticate(key);
        r
    }

    #[test]
    fn authenticated_frames_read_back_in_order() {
        let mut bytes = Vec::new();
        pair(Some([7; 32]), &mut bytes, &["a", "b"]);
        let mut r = reader(&bytes, [7; 32], Direction::ToAgent);
        assert_eq!(r.recv::<String>().unwrap(), "a");
        assert_eq!(r.recv::<String>().unwrap(), "b");
        assert!(matches!(r.recv::<String>(), Err(WireError::Closed)));
    }

    #[test]
    fn a_tampered_frame_is_refused() {
        let mut bytes = Vec::new();
        pair(Some([7; 32]), &mut bytes, &["start 100"]);
        bytes[10] ^= 1;
        let mut r = reader(&bytes, [7; 32], Direction::ToAgent);
        assert!(matches!(r.recv::<String>(), Err(WireError::BadTag(0))));
    }

    #[test]
    fn a_replayed_or_reordered_frame_is_refused() {
        let mut bytes = Vec::new();
        pair(Some([7; 32]), &mut bytes, &["one"]);
        let frame = bytes.clone();
        bytes.extend_from_slice(&frame); // the same frame again: its sequence number is 0
        let mut r = reader(&bytes, [7; 32], Direction::ToAgent);
        assert!(r.recv::<String>().is_ok());
        assert!(matches!(r.recv::<String>(), Err(WireError::BadTag(1))));

        let mut two = Vec::new();
        pair(Some([7; 32]), &mut two, &["one", "two"]);
        let first_len = 4 + 5 + TAG_LEN; // "\"one\"" is 5 bytes
        let swapped = [&two[first_len..], &two[..first_len]].concat();
        let mut r = reader(&swapped, [7; 32], Direction::ToAgent);
        assert!(matches!(r.recv::<String>(), Err(WireError::BadTag(0))));
    }

    #[test]
    fn a_frame_under_another_key_or_reflected_is_refused() {
        let mut bytes = Vec::new();
        pair(Some([7; 32]), &mut bytes, &["x"]);
        let mut r = reader(&bytes, [8; 32], Direction::ToAgent);
        assert!(matches!(r.recv::<String>(), Err(WireError::BadTag(0))));
        let mut r = reader(&bytes, [7; 32], Direction::ToController);
        assert!(matches!(r.recv::<String>(), Err(WireError::BadTag(0))));
    }

    /// A reader that hands out one byte per call, as a slow network might.
    struct Trickle<'a>(&'a [u8]);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(1).min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn frames_arriving_a_byte_at_a_time_read_whole() {
        let mut bytes = Vec::new();
        pair(Some([7; 32]), &mut bytes, &["one", "two"]);
        let mut r = FrameReader::new(Trickle(&bytes), Direction::ToAgent);
        r.authenticate([7; 32]);
        assert_eq!(r.recv::<String>().unwrap(), "one");
        assert_eq!(r.recv::<String>().unwrap(), "two");
    }

    #[test]
    fn an_oversized_length_is_refused_before_reading() {
        let bytes = (u32::MAX).to_be_bytes();
        let mut r = FrameReader::new(&bytes[..], Direction::ToAgent);
        assert!(matches!(r.recv::<String>(), Err(WireError::TooLarge(_))));
    }
}
