//! Mutual challenge-response: each side sends a fresh 256-bit nonce, and each proves it holds
//! the token with an HMAC-SHA256 over both nonces (the controller first, so an agent never
//! answers a peer that has not proved itself). The connection's key is a third HMAC over both
//! nonces, so it is new for every connection and a recorded one cannot be replayed.

use super::msg::{Handshake, Role};
use super::token::{from_hex, random_bytes, to_hex, Token};
use super::wire::{mac, verify, Direction, FrameReader, FrameWriter, WireError};
use std::net::TcpStream;

/// runbench's version and the wire protocol's: a mismatch is refused.
pub fn version() -> String {
    format!("{}+wire{}", env!("CARGO_PKG_VERSION"), WIRE_VERSION)
}
const WIRE_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("{0}")]
    Wire(#[from] WireError),
    #[error("the controller could not prove it holds the token (wrong token on one side?)")]
    ControllerProof,
    #[error("the agent could not prove it holds the token (wrong token on one side?)")]
    AgentProof,
    #[error("unexpected handshake message: {0}")]
    Unexpected(String),
    #[error("reading /dev/urandom: {0}")]
    Random(std::io::Error),
}

fn controller_proof(t: &Token, agent_nonce: &[u8], controller_nonce: &[u8]) -> [u8; 32] {
    mac(
        &t.0,
        &[b"runbench controller", agent_nonce, controller_nonce],
    )
}
fn agent_parts<'a>(agent_nonce: &'a [u8], controller_nonce: &'a [u8]) -> [&'a [u8]; 3] {
    [b"runbench agent", controller_nonce, agent_nonce]
}
fn session_key(t: &Token, agent_nonce: &[u8], controller_nonce: &[u8]) -> [u8; 32] {
    mac(&t.0, &[b"runbench key", agent_nonce, controller_nonce])
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

fn halves(stream: &TcpStream, rx: Direction, tx: Direction) -> std::io::Result<Halves> {
    Ok((
        FrameReader::new(stream.try_clone()?, rx),
        FrameWriter::new(stream.try_clone()?, tx),
    ))
}

/// The agent's side, on a connected stream.
pub fn agent(stream: &TcpStream, token: &Token, hello: &Hello) -> Result<Halves, HandshakeError> {
    let (mut r, mut w) =
        halves(stream, Direction::ToAgent, Direction::ToController).map_err(WireError::Io)?;
    let na = random_bytes().map_err(HandshakeError::Random)?;
    w.send(&Handshake::Hello {
        version: hello.version.clone(),
        role: hello.role,
        name: hello.name.clone(),
        nonce: to_hex(&na),
        shard: hello.shard,
    })?;
    let (nc, proof) = match r.recv::<Handshake>()? {
        Handshake::Challenge { nonce, proof } => (nonce, proof),
        other => return Err(HandshakeError::Unexpected(format!("{other:?}"))),
    };
    let nc = from_hex(&nc).ok_or(HandshakeError::ControllerProof)?;
    let proof = from_hex(&proof).ok_or(HandshakeError::ControllerProof)?;
    if !verify(&token.0, &[b"runbench controller", &na, &nc], &proof) {
        return Err(HandshakeError::ControllerProof);
    }
    let mine = mac(&token.0, &agent_parts(&na, &nc));
    w.send(&Handshake::Proof {
        proof: to_hex(&mine),
    })?;
    let key = session_key(token, &na, &nc);
    r.authenticate(key);
    w.authenticate(key);
    Ok((r, w))
}

/// The controller's side, on an accepted stream.
pub fn controller(stream: &TcpStream, token: &Token) -> Result<(Hello, Halves), HandshakeError> {
    let (mut r, mut w) =
        halves(stream, Direction::ToController, Direction::ToAgent).map_err(WireError::Io)?;
    let (hello, na) = match r.recv::<Handshake>()? {
        Handshake::Hello {
            version,
            role,
            name,
            nonce,
            shard,
        } => (
            Hello {
                version,
                role,
                name,
                shard,
            },
            from_hex(&nonce).filter(|n| n.len() == 32).ok_or_else(|| {
                HandshakeError::Unexpected("a hello without a 256-bit nonce".into())
            })?,
        ),
        other => return Err(HandshakeError::Unexpected(format!("{other:?}"))),
    };
    let nc = random_bytes().map_err(HandshakeError::Random)?;
    w.send(&Handshake::Challenge {
        nonce: to_hex(&nc),
        proof: to_hex(&controller_proof(token, &na, &nc)),
    })?;
    let proof = match r.recv::<Handshake>() {
        Ok(Handshake::Proof { proof }) => proof,
        Ok(other) => return Err(HandshakeError::Unexpected(format!("{other:?}"))),
        // An agent with another token hangs up on the challenge.
        Err(WireError::Closed) => return Err(HandshakeError::AgentProof),
        Err(e) => return Err(e.into()),
    };
    let proof = from_hex(&proof).ok_or(HandshakeError::AgentProof)?;
    if !verify(&token.0, &agent_parts(&na, &nc), &proof) {
        return Err(HandshakeError::AgentProof);
    }
    let key = session_key(token, &na, &nc);
    r.authenticate(key);
    w.authenticate(key);
    Ok((hello, (r, w)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn run(
        agent_token: Token,
        controller_token: Token,
    ) -> (Result<(), String>, Result<(), String>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let ctl = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            controller(&s, &controller_token).map(|(_, (mut r, mut w))| {
                w.send(&"to agent").unwrap();
                assert_eq!(r.recv::<String>().unwrap(), "to controller");
            })
        });
        let s = TcpStream::connect(addr).unwrap();
        let hello = Hello {
            version: version(),
            role: Role::Load,
            name: "a".into(),
            shard: None,
        };
        let a = agent(&s, &agent_token, &hello).map(|(mut r, mut w)| {
            assert_eq!(r.recv::<String>().unwrap(), "to agent");
            w.send(&"to controller").unwrap();
        });
        drop(s);
        let c = ctl.join().unwrap();
        (a.map_err(|e| e.to_string()), c.map_err(|e| e.to_string()))
    }

    #[test]
    fn the_same_token_joins_and_frames_flow_both_ways() {
        let t = Token::generate().unwrap();
        let (a, c) = run(t.clone(), t);
        assert!(a.is_ok() && c.is_ok(), "{a:?} {c:?}");
    }

    #[test]
    fn a_wrong_token_is_refused_on_both_sides() {
        let (a, c) = run(Token::generate().unwrap(), Token::generate().unwrap());
        assert!(a.unwrap_err().contains("controller could not prove"));
        assert!(c.unwrap_err().contains("agent could not prove"));
    }
}
