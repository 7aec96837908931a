//! The handshake: Noise `NNpsk0` (25519, ChaCha20-Poly1305, SHA-256) with the token as the
//! pre-shared key, through the `snow` crate. The agent sends its hello in the clear, then the
//! first Noise message; the hello's exact bytes are the Noise prologue, so both sides hash them
//! into every key and tag: a hello changed on the way (another role, name, shard or version)
//! fails the handshake like a wrong token. Each side proves it holds the token (the agent with
//! its first message, the controller with its answer), fresh ephemeral keys make every
//! connection's keys new (a recorded one cannot be replayed), and every frame after is
//! encrypted and authenticated ([`super::wire`]).
//!
//! Everything here happens by one absolute deadline ([`Deadline`]) and reads at most
//! [`MAX_HANDSHAKE_FRAME`] bytes a frame: a peer without the token cannot hold a side longer.

use super::msg::{Handshake, Role};
use super::token::{from_hex, to_hex, Token};
use super::wire::{read_plain, write_plain, Deadline, FrameReader, FrameWriter, WireError};
use snow::HandshakeState;
use std::net::TcpStream;
use std::sync::Arc;

/// runbench's version and the wire protocol's: a mismatch is refused. Wire 2: the Noise
/// handshake and encrypted frames (wire 1 was HMAC challenge-response, authenticated frames).
pub fn version() -> String {
    format!("{}+wire{}", env!("CARGO_PKG_VERSION"), WIRE_VERSION)
}
const WIRE_VERSION: u32 = 2;

/// The Noise protocol name.
pub const PATTERN: &str = "Noise_NNpsk0_25519_ChaChaPoly_SHA256";
/// Before the hello's bytes in the prologue.
const PROLOGUE: &[u8] = b"runbench controller-agent handshake\n";
/// The largest frame either side reads before the keys exist.
pub const MAX_HANDSHAKE_FRAME: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("{0}")]
    Wire(#[from] WireError),
    #[error(
        "the controller could not prove it holds the token (another token on one side, or this \
         agent's hello was changed on the way)"
    )]
    ControllerProof,
    #[error(
        "it could not prove it holds the token (another token on one side, or its hello was \
         changed on the way)"
    )]
    AgentProof,
    #[error("the controller refused the handshake: {reason}")]
    Refused { reason: String, retry: bool },
    #[error("unexpected handshake message: {0}")]
    Unexpected(String),
    #[error("the Noise handshake: {0}")]
    Noise(String),
}

fn noise(e: snow::Error) -> HandshakeError {
    HandshakeError::Noise(e.to_string())
}

/// What an agent said of itself.
#[derive(Clone, Debug)]
pub struct Hello {
    pub version: String,
    pub role: Role,
    pub name: String,
    pub shard: Option<usize>,
}

pub type Halves = (FrameReader<TcpStream>, FrameWriter<TcpStream>);

fn state(token: &Token, hello: &[u8], initiator: bool) -> Result<HandshakeState, HandshakeError> {
    let params = PATTERN.parse().map_err(noise)?;
    let prologue = [PROLOGUE, hello].concat();
    let b = snow::Builder::new(params)
        .psk(0, &token.0)
        .map_err(noise)?
        .prologue(&prologue)
        .map_err(noise)?;
    match initiator {
        true => b.build_initiator(),
        false => b.build_responder(),
    }
    .map_err(noise)
}

fn send(stream: &TcpStream, m: &Handshake, d: Deadline) -> Result<(), WireError> {
    write_plain(stream, &serde_json::to_vec(m)?, d)
}

fn recv(stream: &TcpStream, d: Deadline) -> Result<Handshake, WireError> {
    Ok(serde_json::from_slice(&read_plain(
        stream,
        MAX_HANDSHAKE_FRAME,
        d,
    )?)?)
}

/// Writes the handshake's next Noise message (no payload: everything said is in the prologue)
/// and sends it.
fn send_noise(
    stream: &TcpStream,
    hs: &mut HandshakeState,
    d: Deadline,
) -> Result<(), HandshakeError> {
    let mut buf = [0u8; 1024];
    let n = hs.write_message(&[], &mut buf).map_err(noise)?;
    let msg = to_hex(&buf[..n]);
    Ok(send(stream, &Handshake::Noise { msg }, d)?)
}

fn halves(stream: &TcpStream, hs: HandshakeState) -> Result<Halves, HandshakeError> {
    let keys = Arc::new(hs.into_stateless_transport_mode().map_err(noise)?);
    let clone = || stream.try_clone().map_err(WireError::Io);
    Ok((
        FrameReader::new(clone()?, keys.clone()),
        FrameWriter::new(clone()?, keys),
    ))
}

/// The agent's side, on a connected stream, all by `d`.
pub fn agent(
    stream: &TcpStream,
    token: &Token,
    hello: &Hello,
    d: Deadline,
) -> Result<Halves, HandshakeError> {
    let said = serde_json::to_vec(&Handshake::Hello {
        version: hello.version.clone(),
        role: hello.role,
        name: hello.name.clone(),
        shard: hello.shard,
    })
    .map_err(WireError::Json)?;
    write_plain(stream, &said, d)?;
    let mut hs = state(token, &said, true)?;
    send_noise(stream, &mut hs, d)?;
    let mut buf = [0u8; 1024];
    match recv(stream, d)? {
        Handshake::Noise { msg } => {
            let msg = from_hex(&msg).ok_or(HandshakeError::ControllerProof)?;
            hs.read_message(&msg, &mut buf)
                .map_err(|_| HandshakeError::ControllerProof)?;
        }
        Handshake::Refused { reason, retry } => {
            return Err(HandshakeError::Refused { reason, retry })
        }
        other => return Err(HandshakeError::Unexpected(format!("{other:?}"))),
    }
    halves(stream, hs)
}

/// The controller's side, on an accepted stream, all by `d`.
pub fn controller(
    stream: &TcpStream,
    token: &Token,
    d: Deadline,
) -> Result<(Hello, Halves), HandshakeError> {
    let said = read_plain(stream, MAX_HANDSHAKE_FRAME, d)?;
    let hello = match serde_json::from_slice(&said).map_err(WireError::Json)? {
        Handshake::Hello {
            version,
            role,
            name,
            shard,
        } => Hello {
            version,
            role,
            name,
            shard,
        },
        other => return Err(HandshakeError::Unexpected(format!("{other:?}"))),
    };
    let mut hs = state(token, &said, false)?;
    let first = match recv(stream, d)? {
        Handshake::Noise { msg } => from_hex(&msg)
            .ok_or_else(|| HandshakeError::Unexpected("a Noise message that is not hex".into()))?,
        other => return Err(HandshakeError::Unexpected(format!("{other:?}"))),
    };
    let mut buf = [0u8; 1024];
    if hs.read_message(&first, &mut buf).is_err() {
        let refused = Handshake::Refused {
            reason: "this agent could not prove it holds the token (another token on one side, \
                     or its hello was changed on the way)"
                .into(),
            retry: false,
        };
        let _ = send(stream, &refused, d);
        return Err(HandshakeError::AgentProof);
    }
    send_noise(stream, &mut hs, d)?;
    Ok((hello, halves(stream, hs)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::time::Duration;

    fn d() -> Deadline {
        Deadline::after(Duration::from_secs(5), "the test handshake")
    }

    fn hello(role: Role) -> Hello {
        Hello {
            version: version(),
            role,
            name: "a".into(),
            shard: None,
        }
    }

    /// The controller's result (the role it saw) and the agent's.
    fn run(
        agent_token: Token,
        controller_token: Token,
        rewrite: Option<fn(Vec<u8>) -> Vec<u8>>,
    ) -> (Result<(), String>, Result<Role, String>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let ctl = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            controller(&s, &controller_token, d()).map(|(h, (mut r, mut w))| {
                w.send(&"to agent").unwrap();
                assert_eq!(r.recv::<String>().unwrap(), "to controller");
                h.role
            })
        });
        let s = TcpStream::connect(addr).unwrap();
        let a = match rewrite {
            None => agent(&s, &agent_token, &hello(Role::Load), d()),
            // A man in the middle who changes the hello: played here by writing the changed
            // hello and then the agent's own Noise message for the original.
            Some(f) => {
                let said = serde_json::to_vec(&Handshake::Hello {
                    version: version(),
                    role: Role::Load,
                    name: "a".into(),
                    shard: None,
                })
                .unwrap();
                write_plain(&s, &f(said.clone()), d()).unwrap();
                let mut hs = state(&agent_token, &said, true).unwrap();
                let mut buf = [0u8; 1024];
                let n = hs.write_message(&[], &mut buf).unwrap();
                let msg = to_hex(&buf[..n]);
                send(&s, &Handshake::Noise { msg }, d()).unwrap();
                match recv(&s, d()).unwrap() {
                    Handshake::Refused { reason, .. } => Err(HandshakeError::Unexpected(reason)),
                    other => panic!("{other:?}"),
                }
            }
        }
        .map(|(mut r, mut w)| {
            assert_eq!(r.recv::<String>().unwrap(), "to agent");
            w.send(&"to controller").unwrap();
        });
        let c = ctl.join().unwrap();
        drop(s);
        (a.map_err(|e| e.to_string()), c.map_err(|e| e.to_string()))
    }

    #[test]
    fn the_same_token_joins_and_frames_flow_both_ways() {
        let t = Token::generate().unwrap();
        let (a, c) = run(t.clone(), t, None);
        assert!(a.is_ok() && c == Ok(Role::Load), "{a:?} {c:?}");
    }

    #[test]
    fn a_wrong_token_is_refused_on_both_sides() {
        let (a, c) = run(Token::generate().unwrap(), Token::generate().unwrap(), None);
        let a = a.unwrap_err();
        assert!(
            a.contains("refused the handshake: this agent could not prove"),
            "{a}"
        );
        assert!(c
            .unwrap_err()
            .contains("could not prove it holds the token"));
    }

    #[test]
    fn a_hello_changed_on_the_way_fails_the_handshake() {
        let t = Token::generate().unwrap();
        let to_server = |b: Vec<u8>| {
            String::from_utf8(b)
                .unwrap()
                .replace("\"load\"", "\"server\"")
                .into_bytes()
        };
        let (a, c) = run(t.clone(), t, Some(to_server));
        assert!(a.unwrap_err().contains("could not prove"));
        assert!(c.unwrap_err().contains("hello was changed"));
    }
}
