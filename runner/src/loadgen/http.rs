//! The load generator's HTTP/1.1 answers, parsed incrementally: a byte-level state machine fed
//! whatever each read brought (an answer may be split anywhere, several may come in one read),
//! holding no buffer and allocating nothing per answer. It reads the status line, finds
//! `Content-Length` or `Transfer-Encoding: chunked` among the headers, and walks the body
//! (chunks and trailers included), handing the body's bytes back for checking. Anything else
//! is malformed, with the reason.

use std::ops::Range;

/// The longest head (status line and headers) an answer may have.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

const CONTENT_LENGTH: &[u8] = b"content-length";
const TRANSFER_ENCODING: &[u8] = b"transfer-encoding";
const CHUNKED: &[u8] = b"chunked";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Matching `HTTP/1.` (index into it).
    Version(u8),
    Minor,
    SpaceBeforeCode,
    Code(u8),
    /// The reason phrase, up to its LF.
    Reason,
    /// At the start of a header line (or the blank line ending the head).
    LineStart,
    /// After the CR of the blank line.
    HeadEndLf,
    Name,
    Value,
    Body,
    ChunkSize,
    ChunkExt,
    ChunkSizeLf,
    ChunkData,
    ChunkDataCr,
    ChunkDataLf,
    /// A trailer line (after the last chunk), or the blank line ending them.
    TrailerStart,
    Trailer,
    TrailerEndLf,
}

/// Which header the current line is, as far as its name has been read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Header {
    Other,
    ContentLength,
    TransferEncoding,
}

/// What one [`Parser::feed`] did with the bytes it was given.
#[derive(Debug, PartialEq, Eq)]
pub struct Fed {
    /// Bytes consumed (all of them, unless an answer ended before).
    pub used: usize,
    /// The body bytes among them (a range of the fed slice; several chunks' data in one feed
    /// are reported one range per call: `feed` stops at a chunk's end).
    pub body: Range<usize>,
    /// The answer ended at `used`: its status code.
    pub done: Option<u16>,
}

/// One connection's parser, reused answer after answer.
#[derive(Clone, Debug)]
pub struct Parser {
    state: State,
    status: u16,
    head_bytes: usize,
    header: Header,
    /// Bytes of the current header name matched against the known names.
    name_len: usize,
    content_length: Option<u64>,
    chunked: bool,
    /// Of the current Transfer-Encoding value: bytes matched of its last token against
    /// `chunked` (None once it cannot be), and whether a digit of Content-Length was seen.
    te_match: Option<usize>,
    digits: bool,
    /// Body (or chunk) bytes still to come.
    remaining: u64,
    /// Body bytes of this answer seen so far (for checking them).
    pub body_pos: u64,
}

impl Default for Parser {
    fn default() -> Self {
        Parser::new()
    }
}

impl Parser {
    pub fn new() -> Self {
        Parser {
            state: State::Version(0),
            status: 0,
            head_bytes: 0,
            header: Header::Other,
            name_len: 0,
            content_length: None,
            chunked: false,
            te_match: Some(0),
            digits: false,
            remaining: 0,
            body_pos: 0,
        }
    }

    /// The status code of the answer being read (0 before its status line is whole).
    pub fn status(&self) -> u16 {
        if matches!(
            self.state,
            State::Version(_) | State::Minor | State::SpaceBeforeCode | State::Code(_)
        ) {
            0
        } else {
            self.status
        }
    }

    /// Whether no byte of an answer has been read since the last one ended.
    pub fn between_answers(&self) -> bool {
        self.state == State::Version(0) && self.head_bytes == 0
    }

    fn reset(&mut self) {
        *self = Parser::new();
    }

    /// Feeds `data`: consumes up to the end of the current answer (so the caller can account
    /// for it before the next), or up to the end of a body run. `Err` names what is wrong.
    pub fn feed(&mut self, data: &[u8]) -> Result<Fed, &'static str> {
        let mut i = 0;
        while i < data.len() {
            match self.state {
                State::Body | State::ChunkData => {
                    let take = (data.len() - i).min(self.remaining as usize);
                    let start = i;
                    i += take;
                    self.remaining -= take as u64;
                    self.body_pos += take as u64;
                    if self.remaining == 0 {
                        if self.state == State::Body {
                            let status = self.status;
                            self.reset();
                            return Ok(Fed {
                                used: i,
                                body: start..i,
                                done: Some(status),
                            });
                        }
                        self.state = State::ChunkDataCr;
                    }
                    return Ok(Fed {
                        used: i,
                        body: start..i,
                        done: None,
                    });
                }
                _ => {}
            }
            let b = data[i];
            i += 1;
            if matches!(
                self.state,
                State::Version(_)
                    | State::Minor
                    | State::SpaceBeforeCode
                    | State::Code(_)
                    | State::Reason
                    | State::LineStart
                    | State::HeadEndLf
                    | State::Name
                    | State::Value
            ) {
                self.head_bytes += 1;
                if self.head_bytes > MAX_HEAD_BYTES {
                    return Err("a head longer than 64 KiB");
                }
            }
            if let Some(status) = self.step(b)? {
                self.reset();
                return Ok(Fed {
                    used: i,
                    body: i..i,
                    done: Some(status),
                });
            }
        }
        Ok(Fed {
            used: i,
            body: i..i,
            done: None,
        })
    }

    /// One byte outside a body run; `Some(status)` when it ends the answer.
    fn step(&mut self, b: u8) -> Result<Option<u16>, &'static str> {
        const VERSION: &[u8] = b"HTTP/1.";
        match self.state {
            State::Version(k) => {
                if b != VERSION[k as usize] {
                    return Err("not an HTTP/1.x status line");
                }
                self.state = if k as usize + 1 == VERSION.len() {
                    State::Minor
                } else {
                    State::Version(k + 1)
                };
            }
            State::Minor => {
                if !b.is_ascii_digit() {
                    return Err("not an HTTP/1.x status line");
                }
                self.state = State::SpaceBeforeCode;
            }
            State::SpaceBeforeCode => {
                if b != b' ' {
                    return Err("no space before the status code");
                }
                self.state = State::Code(0);
            }
            State::Code(k) => {
                if !b.is_ascii_digit() {
                    return Err("a status code that is not three digits");
                }
                self.status = self.status * 10 + u16::from(b - b'0');
                self.state = if k == 2 {
                    State::Reason
                } else {
                    State::Code(k + 1)
                };
                if k == 2 && !(100..=599).contains(&self.status) {
                    return Err("a status code outside 100..=599");
                }
            }
            State::Reason => {
                if b == b'\n' {
                    self.state = State::LineStart;
                } else if b != b'\r' && b != b'\t' && !(b' '..=b'~').contains(&b) && b < 0x80 {
                    return Err("a control byte in the reason phrase");
                }
            }
            State::LineStart => match b {
                b'\r' => self.state = State::HeadEndLf,
                b'\n' => return self.head_end(),
                b' ' | b'\t' => return Err("an obsolete folded header line"),
                _ => {
                    self.state = State::Name;
                    self.header = Header::Other;
                    self.name_len = 0;
                    return self.name_byte(b);
                }
            },
            State::HeadEndLf => {
                if b != b'\n' {
                    return Err("a CR without LF ending the head");
                }
                return self.head_end();
            }
            State::Name => return self.name_byte(b),
            State::Value => return self.value_byte(b),
            State::ChunkSize => match b {
                b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                    let digit = (b as char).to_digit(16).expect("a hex digit") as u64;
                    self.remaining = self
                        .remaining
                        .checked_mul(16)
                        .and_then(|r| r.checked_add(digit))
                        .ok_or("a chunk size beyond 64 bits")?;
                    self.digits = true;
                }
                b';' | b' ' | b'\t' if self.digits => self.state = State::ChunkExt,
                b'\r' if self.digits => self.state = State::ChunkSizeLf,
                b'\n' if self.digits => return self.chunk_start(),
                _ => return Err("a malformed chunk size"),
            },
            State::ChunkExt => match b {
                b'\r' => self.state = State::ChunkSizeLf,
                b'\n' => return self.chunk_start(),
                _ => {}
            },
            State::ChunkSizeLf => {
                if b != b'\n' {
                    return Err("a chunk size line without LF");
                }
                return self.chunk_start();
            }
            State::ChunkDataCr => match b {
                b'\r' => self.state = State::ChunkDataLf,
                b'\n' => self.next_chunk(),
                _ => return Err("a chunk longer than its size"),
            },
            State::ChunkDataLf => {
                if b != b'\n' {
                    return Err("a chunk's CR without LF");
                }
                self.next_chunk();
            }
            State::TrailerStart => match b {
                b'\r' => self.state = State::TrailerEndLf,
                b'\n' => return Ok(Some(self.status)),
                _ => self.state = State::Trailer,
            },
            State::Trailer => {
                if b == b'\n' {
                    self.state = State::TrailerStart;
                }
            }
            State::TrailerEndLf => {
                if b != b'\n' {
                    return Err("a CR without LF ending the trailers");
                }
                return Ok(Some(self.status));
            }
            State::Body | State::ChunkData => unreachable!("body runs are taken whole"),
        }
        Ok(None)
    }

    fn name_byte(&mut self, b: u8) -> Result<Option<u16>, &'static str> {
        if b == b':' {
            self.header = match self.name_len {
                n if n == CONTENT_LENGTH.len() && self.header == Header::ContentLength => {
                    if self.content_length.is_some() {
                        return Err("two Content-Length headers");
                    }
                    self.content_length = Some(0);
                    self.digits = false;
                    Header::ContentLength
                }
                n if n == TRANSFER_ENCODING.len() && self.header == Header::TransferEncoding => {
                    self.te_match = Some(0);
                    Header::TransferEncoding
                }
                _ => Header::Other,
            };
            self.state = State::Value;
            return Ok(None);
        }
        if !(b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)) {
            return Err("a byte not allowed in a header name");
        }
        let lower = b.to_ascii_lowercase();
        let k = self.name_len;
        self.header = match self.header {
            _ if k == 0 && lower == CONTENT_LENGTH[0] => Header::ContentLength,
            _ if k == 0 && lower == TRANSFER_ENCODING[0] => Header::TransferEncoding,
            Header::ContentLength if CONTENT_LENGTH.get(k) == Some(&lower) => Header::ContentLength,
            Header::TransferEncoding if TRANSFER_ENCODING.get(k) == Some(&lower) => {
                Header::TransferEncoding
            }
            _ => Header::Other,
        };
        if k > 0 && self.header == Header::Other {
            // Stays Other: mark the length past both names.
            self.name_len = usize::MAX / 2;
        } else {
            self.name_len += 1;
        }
        Ok(None)
    }

    fn value_byte(&mut self, b: u8) -> Result<Option<u16>, &'static str> {
        if b == b'\n' {
            match self.header {
                Header::ContentLength if !self.digits => {
                    return Err("a Content-Length without digits")
                }
                Header::TransferEncoding => {
                    // The last coding must be chunked for the body to be framed by chunks.
                    self.chunked = self.te_match == Some(CHUNKED.len());
                    if !self.chunked {
                        return Err("a Transfer-Encoding other than chunked");
                    }
                }
                _ => {}
            }
            self.state = State::LineStart;
            return Ok(None);
        }
        if b == b'\r' {
            return Ok(None);
        }
        match self.header {
            Header::Other => {}
            Header::ContentLength => match b {
                b'0'..=b'9' => {
                    let n = self.content_length.unwrap_or(0);
                    let n = n
                        .checked_mul(10)
                        .and_then(|n| n.checked_add(u64::from(b - b'0')))
                        .ok_or("a Content-Length beyond 64 bits")?;
                    self.content_length = Some(n);
                    self.digits = true;
                }
                b' ' | b'\t' => {}
                _ => return Err("a Content-Length that is not a number"),
            },
            Header::TransferEncoding => {
                let lower = b.to_ascii_lowercase();
                self.te_match = match (lower, self.te_match) {
                    (b',', _) => Some(0),
                    (b' ' | b'\t', m) => m,
                    (c, Some(k)) if CHUNKED.get(k) == Some(&c) => Some(k + 1),
                    _ => None,
                };
            }
        }
        Ok(None)
    }

    /// The head ended: the body is framed by chunks, by Content-Length, or absent.
    fn head_end(&mut self) -> Result<Option<u16>, &'static str> {
        let bodiless = self.status < 200 || self.status == 204 || self.status == 304;
        if bodiless {
            return Ok(Some(self.status));
        }
        if self.chunked {
            self.state = State::ChunkSize;
            self.remaining = 0;
            self.digits = false;
            return Ok(None);
        }
        match self.content_length {
            Some(0) => Ok(Some(self.status)),
            Some(n) => {
                self.remaining = n;
                self.state = State::Body;
                Ok(None)
            }
            None => Err("neither Content-Length nor chunked (a body until close)"),
        }
    }

    fn chunk_start(&mut self) -> Result<Option<u16>, &'static str> {
        if self.remaining == 0 {
            self.state = State::TrailerStart;
        } else {
            self.state = State::ChunkData;
        }
        Ok(None)
    }

    fn next_chunk(&mut self) {
        self.state = State::ChunkSize;
        self.remaining = 0;
        self.digits = false;
    }
}

/// `bytes` for a message: printable ASCII as is, the rest escaped, at most 200 of them.
pub fn show(bytes: &[u8]) -> String {
    let shown: String = bytes
        .iter()
        .take(200)
        .flat_map(|&b| std::ascii::escape_default(b))
        .map(char::from)
        .collect();
    if bytes.len() > 200 {
        format!("{shown}... ({} bytes)", bytes.len())
    } else {
        shown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every answer in `stream`, fed in pieces of `piece` bytes: (status, body).
    fn parse_all(stream: &[u8], piece: usize) -> Result<Vec<(u16, Vec<u8>)>, &'static str> {
        let mut p = Parser::new();
        let mut out = Vec::new();
        let mut body = Vec::new();
        for chunk in stream.chunks(piece) {
            let mut at = 0;
            while at < chunk.len() {
                let fed = p.feed(&chunk[at..])?;
                body.extend_from_slice(&chunk[at..][fed.body.clone()]);
                at += fed.used;
                if let Some(status) = fed.done {
                    out.push((status, std::mem::take(&mut body)));
                }
            }
        }
        assert!(p.between_answers(), "a partial answer left");
        Ok(out)
    }

    const PLAIN: &[u8] = b"HTTP/1.1 200 OK\r\nServer: x\r\nContent-Type: text/plain\r\n\
        Content-Length: 13\r\nDate: Sun, 06 Dec 2026 08:00:00 GMT\r\n\r\nHello, World!";
    const CHUNKED_ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, Chunked\r\n\r\n\
        5;ext=1\r\nHello\r\n8\r\n, World!\r\n0\r\nX-Trailer: y\r\n\r\n";

    #[test]
    fn answers_split_anywhere_parse_the_same() {
        let mut stream = Vec::new();
        stream.extend_from_slice(PLAIN);
        stream.extend_from_slice(b"HTTP/1.1 503 Busy\r\ncontent-length: 0\r\n\r\n");
        stream.extend_from_slice(CHUNKED_ANSWER);
        stream.extend_from_slice(b"HTTP/1.0 204 No Content\n\n");
        let want = vec![
            (200, b"Hello, World!".to_vec()),
            (503, Vec::new()),
            (200, b"Hello, World!".to_vec()),
            (204, Vec::new()),
        ];
        for piece in 1..=stream.len() {
            assert_eq!(
                parse_all(&stream, piece).unwrap(),
                want,
                "pieces of {piece}"
            );
        }
    }

    #[test]
    fn malformed_answers_say_why() {
        let cases: [(&[u8], &str); 7] = [
            (b"HTTP/2 200 OK\r\n\r\n", "not an HTTP/1.x status line"),
            (
                b"HTTP/1.1 20x OK\r\n",
                "a status code that is not three digits",
            ),
            (
                b"HTTP/1.1 200 OK\r\n\r\n",
                "neither Content-Length nor chunked",
            ),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n", "not a number"),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\ncontent-length: 1\r\n",
                "two Content-Length",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n",
                "other than chunked",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                "malformed chunk size",
            ),
        ];
        for (bytes, why) in cases {
            let err = parse_all(bytes, bytes.len()).unwrap_err();
            assert!(err.contains(why), "{}: {err}", show(bytes));
        }
        let long = [
            b"HTTP/1.1 200 OK\r\nX: ".as_slice(),
            &[b'a'; MAX_HEAD_BYTES],
        ]
        .concat();
        assert_eq!(
            parse_all(&long, 4096).unwrap_err(),
            "a head longer than 64 KiB"
        );
    }

    #[test]
    fn lookalike_header_names_are_not_taken_for_the_framing_ones() {
        let stream = b"HTTP/1.1 200 OK\r\nContent-Lengthy: 99\r\nTransfer-Encodings: x\r\n\
            Content-Length: 2\r\n\r\nok";
        assert_eq!(parse_all(stream, 3).unwrap(), vec![(200, b"ok".to_vec())]);
    }
}
