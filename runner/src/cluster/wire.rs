//! Frames on a controller-agent connection.
//!
//! Before the keys exist (the handshake, [`super::handshake`]) a frame is a 4-byte big-endian
//! length and its bytes, read against one absolute deadline and a small size limit: nothing a
//! peer without the token sends can hold a reader longer or make it allocate more.
//!
//! After the handshake every frame is encrypted and authenticated with the Noise transport
//! keys (ChaCha20-Poly1305): its plaintext (a 4-byte length, then the JSON payload) is cut
//! into Noise messages of at most 65,535 bytes, each on the wire as a 2-byte length and the
//! ciphertext. Each side counts the messages it sent and received and uses the count as the
//! nonce, so a replayed, reordered, reflected, dropped or altered message fails its tag and
//! ends the connection; the payload's length is inside the first message, so a frame cannot
//! be cut short either.

use serde::{de::DeserializeOwned, Serialize};
use snow::StatelessTransportState;
use std::io::{self, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Larger frames are refused before they are read (the biggest real one is a load result's
/// histograms, well under this).
pub const MAX_FRAME: usize = 16 << 20;
/// A Noise message's largest size and its tag.
pub const NOISE_MAX: usize = 65_535;
pub const TAG_LEN: usize = 16;
/// The most plaintext one Noise message carries.
const CHUNK: usize = NOISE_MAX - TAG_LEN;
/// How long the rest of a frame whose first bytes arrived may take, outside a deadline.
const REST_WITHIN: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("connection closed")]
    Closed,
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("{what} did not finish within {}", humantime::format_duration(*within))]
    TimedOut {
        what: &'static str,
        within: Duration,
    },
    #[error("the peer took no more bytes within the write timeout (it stopped reading)")]
    WriteStalled,
    #[error("a frame of {0} bytes is over the {1}-byte limit")]
    TooLarge(usize, usize),
    #[error("message {0} failed its authentication tag (tampered, replayed, reordered or under another key)")]
    BadTag(u64),
    #[error("a malformed frame: {0}")]
    Malformed(&'static str),
    #[error("a frame that is not a message: {0}")]
    Json(#[from] serde_json::Error),
}

impl WireError {
    /// A read that found nothing before the socket's read timeout (polling), as opposed to a
    /// broken connection.
    pub fn is_timeout(&self) -> bool {
        matches!(self, WireError::Io(e) if is_timeout(e))
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// The time left before `deadline`, or the timeout error naming what was awaited.
fn left(deadline: Instant, what: &'static str, within: Duration) -> Result<Duration, WireError> {
    let now = Instant::now();
    if now >= deadline {
        return Err(WireError::TimedOut { what, within });
    }
    Ok(deadline - now)
}

/// A wait with one absolute end: every read and write on the way is bounded by what is left.
#[derive(Clone, Copy, Debug)]
pub struct Deadline {
    pub at: Instant,
    /// How long it was when it was set (for the message).
    pub within: Duration,
    pub what: &'static str,
}

impl Deadline {
    pub fn after(within: Duration, what: &'static str) -> Deadline {
        Deadline {
            at: Instant::now() + within,
            within,
            what,
        }
    }

    pub fn renamed(self, what: &'static str) -> Deadline {
        Deadline { what, ..self }
    }

    fn left(&self) -> Result<Duration, WireError> {
        left(self.at, self.what, self.within)
    }
}

/// Reads exactly `buf` from `s` by `d`.
fn read_exact_by(mut s: &TcpStream, buf: &mut [u8], d: Deadline) -> Result<(), WireError> {
    let mut at = 0;
    while at < buf.len() {
        s.set_read_timeout(Some(d.left()?))?;
        match s.read(&mut buf[at..]) {
            Ok(0) => return Err(WireError::Closed),
            Ok(n) => at += n,
            Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// A frame before the keys: its length, then at most `limit` bytes, all by `d`.
pub fn read_plain(s: &TcpStream, limit: usize, d: Deadline) -> Result<Vec<u8>, WireError> {
    let mut len = [0u8; 4];
    read_exact_by(s, &mut len, d)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > limit {
        return Err(WireError::TooLarge(len, limit));
    }
    let mut payload = vec![0u8; len];
    read_exact_by(s, &mut payload, d)?;
    Ok(payload)
}

/// Sends a frame before the keys, by `d`.
pub fn write_plain(mut s: &TcpStream, payload: &[u8], d: Deadline) -> Result<(), WireError> {
    s.set_write_timeout(Some(d.left()?))?;
    let mut buf = Vec::with_capacity(4 + payload.len());
    buf.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    buf.extend_from_slice(payload);
    match s.write_all(&buf).and_then(|()| s.flush()) {
        Err(e) if is_timeout(&e) => Err(WireError::TimedOut {
            what: d.what,
            within: d.within,
        }),
        r => Ok(r?),
    }
}

/// The sending half of a connection.
pub struct FrameWriter<W: Write = TcpStream> {
    out: W,
    keys: Arc<StatelessTransportState>,
    nonce: u64,
}

impl<W: Write> FrameWriter<W> {
    pub fn new(out: W, keys: Arc<StatelessTransportState>) -> Self {
        FrameWriter {
            out,
            keys,
            nonce: 0,
        }
    }

    pub fn send<T: Serialize>(&mut self, msg: &T) -> Result<(), WireError> {
        let payload = serde_json::to_vec(msg)?;
        self.send_raw(&payload)
    }

    pub(super) fn send_raw(&mut self, payload: &[u8]) -> Result<(), WireError> {
        if payload.len() > MAX_FRAME {
            return Err(WireError::TooLarge(payload.len(), MAX_FRAME));
        }
        let plain = [&(payload.len() as u32).to_be_bytes()[..], payload].concat();
        let chunks = plain.len().div_ceil(CHUNK);
        let mut buf = Vec::with_capacity(plain.len() + chunks * (2 + TAG_LEN));
        let mut sealed = vec![0u8; NOISE_MAX];
        for chunk in plain.chunks(CHUNK) {
            let n = self
                .keys
                .write_message(self.nonce, chunk, &mut sealed)
                .map_err(|_| WireError::Malformed("a message the cipher would not seal"))?;
            self.nonce += 1;
            buf.extend_from_slice(&(n as u16).to_be_bytes());
            buf.extend_from_slice(&sealed[..n]);
        }
        match self.out.write_all(&buf).and_then(|()| self.out.flush()) {
            Err(e) if is_timeout(&e) => Err(WireError::WriteStalled),
            r => Ok(r?),
        }
    }
}

impl FrameWriter<TcpStream> {
    /// The connection (its socket options are both halves').
    pub fn stream(&self) -> &TcpStream {
        &self.out
    }
}

/// The receiving half of a connection.
pub struct FrameReader<R: Read = TcpStream> {
    input: BufReader<R>,
    keys: Arc<StatelessTransportState>,
    nonce: u64,
}

impl FrameReader<TcpStream> {
    /// The next message, waiting through read timeouts until `d`.
    pub fn recv_by<T: DeserializeOwned>(&mut self, d: Deadline) -> Result<T, WireError> {
        loop {
            self.input.get_ref().set_read_timeout(Some(d.left()?))?;
            match self.recv_within(d.at) {
                // Nothing yet: the loop checks the deadline.
                Err(e) if e.is_timeout() => {}
                Err(WireError::TimedOut { .. }) => {
                    return Err(WireError::TimedOut {
                        what: d.what,
                        within: d.within,
                    })
                }
                r => return r.and_then(|p| Ok(serde_json::from_slice(&p)?)),
            }
        }
    }
}

impl<R: Read> FrameReader<R> {
    pub fn new(input: R, keys: Arc<StatelessTransportState>) -> Self {
        FrameReader {
            input: BufReader::new(input),
            keys,
            nonce: 0,
        }
    }

    /// The next message; a read timeout before its first byte is the caller's (nothing came).
    pub fn recv<T: DeserializeOwned>(&mut self) -> Result<T, WireError> {
        let payload = self.recv_raw()?;
        Ok(serde_json::from_slice(&payload)?)
    }

    pub(super) fn recv_raw(&mut self) -> Result<Vec<u8>, WireError> {
        self.recv_within(Instant::now() + REST_WITHIN)
    }

    /// A frame; once its first byte came, the rest is awaited until `rest_by`.
    fn recv_within(&mut self, rest_by: Instant) -> Result<Vec<u8>, WireError> {
        let first = self.message(true, rest_by)?;
        if first.len() < 4 {
            return Err(WireError::Malformed(
                "a first message without the frame's length",
            ));
        }
        let len = u32::from_be_bytes(first[..4].try_into().expect("4 bytes")) as usize;
        if len > MAX_FRAME {
            return Err(WireError::TooLarge(len, MAX_FRAME));
        }
        let mut payload = first[4..].to_vec();
        while payload.len() < len {
            payload.extend_from_slice(&self.message(false, rest_by)?);
        }
        if payload.len() != len {
            return Err(WireError::Malformed("a frame longer than its length"));
        }
        Ok(payload)
    }

    /// One Noise message, opened.
    fn message(&mut self, first: bool, rest_by: Instant) -> Result<Vec<u8>, WireError> {
        let mut len = [0u8; 2];
        let got = if first {
            // A timeout before the first byte is the caller's; after it, the rest of the frame
            // is awaited so its boundary is never lost.
            loop {
                match self.input.read(&mut len) {
                    Ok(0) => return Err(WireError::Closed),
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e.into()),
                }
            }
        } else {
            0
        };
        self.read_rest(&mut len[got..], rest_by)?;
        let n = u16::from_be_bytes(len) as usize;
        if n < TAG_LEN {
            return Err(WireError::Malformed("a message shorter than its tag"));
        }
        let mut sealed = vec![0u8; n];
        self.read_rest(&mut sealed, rest_by)?;
        let mut plain = vec![0u8; n];
        let m = self
            .keys
            .read_message(self.nonce, &sealed, &mut plain)
            .map_err(|_| WireError::BadTag(self.nonce))?;
        self.nonce += 1;
        plain.truncate(m);
        Ok(plain)
    }

    /// The rest of a frame whose first byte arrived: a timeout here would lose the frame's
    /// boundary, so it waits through read timeouts until `by`.
    fn read_rest(&mut self, buf: &mut [u8], by: Instant) -> Result<(), WireError> {
        let mut at = 0;
        while at < buf.len() {
            match self.input.read(&mut buf[at..]) {
                Ok(0) => return Err(WireError::Closed),
                Ok(n) => at += n,
                Err(e) if is_timeout(&e) && Instant::now() < by => {}
                Err(e) if is_timeout(&e) => {
                    return Err(WireError::TimedOut {
                        what: "the rest of a frame",
                        within: REST_WITHIN,
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Transport keys of both ends of one Noise NNpsk0 handshake under `psk`.
    pub fn keys(psk: [u8; 32]) -> (Arc<StatelessTransportState>, Arc<StatelessTransportState>) {
        let params: snow::params::NoiseParams = super::super::handshake::PATTERN.parse().unwrap();
        let mut i = snow::Builder::new(params.clone())
            .psk(0, &psk)
            .unwrap()
            .build_initiator()
            .unwrap();
        let mut r = snow::Builder::new(params)
            .psk(0, &psk)
            .unwrap()
            .build_responder()
            .unwrap();
        let (mut a, mut b) = ([0u8; 1024], [0u8; 1024]);
        let n = i.write_message(&[], &mut a).unwrap();
        r.read_message(&a[..n], &mut b).unwrap();
        let n = r.write_message(&[], &mut a).unwrap();
        i.read_message(&a[..n], &mut b).unwrap();
        (
            Arc::new(i.into_stateless_transport_mode().unwrap()),
            Arc::new(r.into_stateless_transport_mode().unwrap()),
        )
    }

    fn sent(k: &Arc<StatelessTransportState>, msgs: &[&str]) -> Vec<u8> {
        let mut bytes = Vec::new();
        let mut w = FrameWriter::new(&mut bytes, k.clone());
        for m in msgs {
            w.send(m).unwrap();
        }
        bytes
    }

    #[test]
    fn frames_read_back_in_order_and_large_ones_span_messages() {
        let (i, r) = keys([7; 32]);
        let big = "x".repeat(200_000);
        let bytes = sent(&i, &["a", &big, "b"]);
        let mut rd = FrameReader::new(&bytes[..], r);
        assert_eq!(rd.recv::<String>().unwrap(), "a");
        assert_eq!(rd.recv::<String>().unwrap(), big);
        assert_eq!(rd.recv::<String>().unwrap(), "b");
        assert!(matches!(rd.recv::<String>(), Err(WireError::Closed)));
    }

    #[test]
    fn a_tampered_frame_is_refused() {
        let (i, r) = keys([7; 32]);
        let mut bytes = sent(&i, &["start 100"]);
        bytes[10] ^= 1;
        let mut rd = FrameReader::new(&bytes[..], r);
        assert!(matches!(rd.recv::<String>(), Err(WireError::BadTag(0))));
    }

    #[test]
    fn a_replayed_reordered_or_cut_frame_is_refused() {
        let (i, r) = keys([7; 32]);
        let one = sent(&i, &["one"]);
        let twice = [&one[..], &one[..]].concat();
        let mut rd = FrameReader::new(&twice[..], r.clone());
        assert!(rd.recv::<String>().is_ok());
        assert!(matches!(rd.recv::<String>(), Err(WireError::BadTag(1))));

        let two = sent(&i, &["one", "two"]);
        let first_len = one.len();
        let swapped = [&two[first_len..], &two[..first_len]].concat();
        let mut rd = FrameReader::new(&swapped[..], r.clone());
        assert!(matches!(rd.recv::<String>(), Err(WireError::BadTag(0))));

        // A frame of two messages with its second left out: the length inside says so.
        let big = sent(&i, &[&"y".repeat(70_000)]);
        let cut = 2 + NOISE_MAX;
        let mut rd = FrameReader::new(&big[..cut], r);
        assert!(matches!(rd.recv::<String>(), Err(WireError::Closed)));
    }

    #[test]
    fn a_frame_under_another_key_or_reflected_is_refused() {
        let (i, r) = keys([7; 32]);
        let bytes = sent(&i, &["x"]);
        let (_, other) = keys([8; 32]);
        let mut rd = FrameReader::new(&bytes[..], other);
        assert!(matches!(rd.recv::<String>(), Err(WireError::BadTag(0))));
        // The sender's own receiving key (the other direction) does not open it.
        let mut rd = FrameReader::new(&bytes[..], i.clone());
        assert!(matches!(rd.recv::<String>(), Err(WireError::BadTag(0))));
        let mut rd = FrameReader::new(&bytes[..], r);
        assert_eq!(rd.recv::<String>().unwrap(), "x");
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
        let (i, r) = keys([7; 32]);
        let bytes = sent(&i, &["one", "two"]);
        let mut rd = FrameReader::new(Trickle(&bytes), r);
        assert_eq!(rd.recv::<String>().unwrap(), "one");
        assert_eq!(rd.recv::<String>().unwrap(), "two");
    }

    #[test]
    fn garbage_is_refused_before_anything_large_is_read() {
        let (_, r) = keys([7; 32]);
        let bytes = [0xffu8; 64];
        let mut rd = FrameReader::new(&bytes[..], r);
        assert!(matches!(rd.recv::<String>(), Err(WireError::Closed)));
        let (_, r) = keys([7; 32]);
        let bytes = [[0xffu8, 0xff].as_slice(), &[0u8; NOISE_MAX]].concat();
        let mut rd = FrameReader::new(&bytes[..], r);
        assert!(matches!(rd.recv::<String>(), Err(WireError::BadTag(0))));
    }
}
