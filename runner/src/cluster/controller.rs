//! The controller: `runbench run SCENARIO --agents N --listen ADDR:PORT --token-file F`. Binds
//! exactly the address it is given, admits N agents (one server agent, the rest load agents)
//! within a deadline, refuses version mismatches and late joiners, and then lends the run loop
//! the agents' hosts: children started through [`super::place_server`] and
//! [`super::place_loadgen`] run there.

use super::handshake::{self, HandshakeError};
use super::link::AgentLink;
use super::msg::{Role, ToAgent};
use super::token::Token;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Debug, Default, clap::Args)]
pub struct ControllerArgs {
    /// Run across machines: wait for this many agents (one `--role server`, the others
    /// `--role load`) and run the server and the load on them.
    #[arg(long)]
    pub agents: Option<usize>,
    /// Where agents connect, ADDR:PORT (bound exactly; see --listen-any).
    #[arg(long, requires = "agents")]
    pub listen: Option<SocketAddr>,
    /// Allow --listen on 0.0.0.0 or [::] (every interface of this host).
    #[arg(long)]
    pub listen_any: bool,
    /// The shared 256-bit token (hex, mode 0600).
    #[arg(long, requires = "agents")]
    pub token_file: Option<PathBuf>,
    /// How long to wait for the agents.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    pub join_timeout: Duration,
    /// How far ahead start instants are announced (default: from the round trips; tests use
    /// 0s to see agents refuse a start that reached them too late).
    #[arg(long, hide = true, value_parser = humantime::parse_duration)]
    pub start_lead: Option<Duration>,
}

/// The admitted agents.
pub struct Cluster {
    pub server: Arc<AgentLink>,
    pub loads: Vec<Arc<AgentLink>>,
    /// `--start-lead`, when given.
    pub start_lead: Option<Duration>,
}

impl Cluster {
    pub fn all(&self) -> impl Iterator<Item = &Arc<AgentLink>> {
        std::iter::once(&self.server).chain(self.loads.iter())
    }

    /// Tells every agent the run is over.
    pub fn shut_down(&self) {
        for a in self.all() {
            if a.lost().is_none() {
                a.send(&ToAgent::Bye);
            }
        }
    }
}

/// Checks the arguments, binds, and waits for the agents. Errors are the person's to fix
/// (bad input) or the cluster's (agents missing).
pub fn start(args: &ControllerArgs) -> Result<Cluster, crate::error::Error> {
    use crate::error::Error;
    let n = args.agents.unwrap_or(0);
    if n < 2 {
        return Err(Error::input(anyhow::anyhow!(
            "--agents {n}: a run across machines needs one server agent and at least one load \
             agent (--agents 2 or more)"
        )));
    }
    let listen = args.listen.ok_or_else(|| {
        Error::input(anyhow::anyhow!(
            "--agents needs --listen ADDR:PORT (where agents connect)"
        ))
    })?;
    if listen.ip().is_unspecified() && !args.listen_any {
        return Err(Error::input(anyhow::anyhow!(
            "--listen {listen} would accept agents on every interface of this host; give the \
             address agents reach, or add --listen-any"
        )));
    }
    let token_file = args.token_file.as_ref().ok_or_else(|| {
        Error::input(anyhow::anyhow!(
            "--agents needs --token-file F (the shared token)"
        ))
    })?;
    let token = Token::read(token_file).map_err(Error::input)?;
    let listener = TcpListener::bind(listen)
        .map_err(|e| Error::input(anyhow::anyhow!("binding --listen {listen}: {e}")))?;
    crate::console::log(&format!(
        "controller listening on {listen}: waiting {} for {n} agents (1 server, {} load)",
        humantime::format_duration(args.join_timeout),
        n - 1
    ));
    let mut cluster = admit(&listener, &token, n, args.join_timeout)
        .map_err(|e| Error::Cluster(anyhow::anyhow!(e)))?;
    cluster.start_lead = args.start_lead;
    refuse_latecomers(listener, token, n);
    for a in cluster.all() {
        a.beat();
    }
    Ok(cluster)
}

fn admit(
    listener: &TcpListener,
    token: &Token,
    n: usize,
    within: Duration,
) -> Result<Cluster, String> {
    let deadline = Instant::now() + within;
    listener.set_nonblocking(true).map_err(|e| e.to_string())?;
    let mut server: Option<Arc<AgentLink>> = None;
    let mut loads: Vec<Arc<AgentLink>> = Vec::new();
    while loads.len() + usize::from(server.is_some()) < n {
        if let Some(sig) = crate::os::interrupt::requested() {
            return Err(format!(
                "interrupted ({}) while waiting for agents",
                crate::os::interrupt::name(sig)
            ));
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{} of {n} agents joined within {} (server agent: {}); nothing was run",
                loads.len() + usize::from(server.is_some()),
                humantime::format_duration(within),
                if server.is_some() {
                    "joined"
                } else {
                    "missing"
                }
            ));
        }
        let (stream, addr) = match listener.accept() {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            Err(e) => return Err(format!("accepting agents: {e}")),
        };
        let Some((hello, reader, mut writer)) = greet(&stream, addr, token) else {
            continue;
        };
        let shards: Vec<Option<usize>> = loads.iter().map(|a| a.shard).collect();
        let refusal = refusal(&hello, server.is_some(), &shards, n);
        if let Some(reason) = refusal {
            crate::console::log(&format!("agent {} ({addr}) refused: {reason}", hello.name));
            let _ = writer.send(&ToAgent::Refused { reason });
            continue;
        }
        let index = match hello.role {
            Role::Server => 0,
            Role::Load => loads.len(),
        };
        if let Err(e) = writer.send(&ToAgent::Welcome { index }) {
            crate::console::log(&format!(
                "agent {} ({addr}) lost while joining: {e}",
                hello.name
            ));
            continue;
        }
        let link = match AgentLink::start(hello, addr, reader, writer) {
            Ok(l) => l,
            Err(e) => {
                crate::console::log(&format!("agent at {addr} lost while joining: {e}"));
                continue;
            }
        };
        crate::console::log(&format!(
            "{} joined (version {}): clock offset {:+.6} s, round trip {:.3} ms",
            link.label(),
            link.version,
            link.offset.offset_ns as f64 / 1e9,
            link.offset.rtt_ns as f64 / 1e6
        ));
        match link.role {
            Role::Server => server = Some(link),
            Role::Load => loads.push(link),
        }
    }
    // Agents that asked for a shard hold it; the others follow in the order they joined.
    loads.sort_by_key(|a| a.shard.unwrap_or(usize::MAX));
    Ok(Cluster {
        server: server.expect("the loop ends with a server agent"),
        loads,
        start_lead: None,
    })
}

/// Why an authenticated agent may not join, if it may not: another version, a second server,
/// a shard taken or beyond the run's, or no place left for its role.
fn refusal(
    hello: &handshake::Hello,
    have_server: bool,
    load_shards: &[Option<usize>],
    n: usize,
) -> Option<String> {
    if hello.version != handshake::version() {
        return Some(format!(
            "version {} differs from the controller's {}",
            hello.version,
            handshake::version()
        ));
    }
    match hello.role {
        Role::Server if have_server => Some("the run already has its server agent".into()),
        Role::Server => None,
        Role::Load if load_shards.len() + 1 >= n => Some(
            "the run's other places are for load agents; it still needs its server agent".into(),
        ),
        Role::Load => match hello.shard {
            Some(k) if k >= n - 1 => Some(format!(
                "shard {k} is beyond this run's {} load agents (0 to {})",
                n - 1,
                n - 2
            )),
            Some(k) if load_shards.contains(&Some(k)) => {
                Some(format!("another load agent already holds shard {k}"))
            }
            _ => None,
        },
    }
}

type Greeted = (
    handshake::Hello,
    super::wire::FrameReader<TcpStream>,
    super::wire::FrameWriter<TcpStream>,
);

/// The handshake with one connection, logged when it fails.
fn greet(stream: &TcpStream, addr: SocketAddr, token: &Token) -> Option<Greeted> {
    let setup = stream
        .set_nonblocking(false)
        .and_then(|()| stream.set_nodelay(true))
        .and_then(|()| stream.set_read_timeout(Some(super::HANDSHAKE_TIMEOUT)))
        .and_then(|()| stream.set_write_timeout(Some(super::LOST_AFTER)));
    if let Err(e) = setup {
        crate::console::log(&format!("agent connection from {addr}: {e}"));
        return None;
    }
    match handshake::controller(stream, token) {
        Ok((hello, (reader, writer))) => {
            let _ = stream.set_read_timeout(Some(super::HEARTBEAT));
            Some((hello, reader, writer))
        }
        Err(e) => {
            let what = match e {
                HandshakeError::AgentProof => "refused: it does not hold the token".to_string(),
                e => format!("handshake failed: {e}"),
            };
            crate::console::log(&format!("connection from {addr}: {what}"));
            None
        }
    }
}

/// After the run is full, every further agent is told so and turned away.
fn refuse_latecomers(listener: TcpListener, token: Token, n: usize) {
    let _ = listener.set_nonblocking(false);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let Ok(addr) = stream.peer_addr() else {
                continue;
            };
            if let Some((hello, _, mut w)) = greet(&stream, addr, &token) {
                let reason = format!("the run already has its {n} agents and has started");
                crate::console::log(&format!("agent {} ({addr}) refused: {reason}", hello.name));
                let _ = w.send(&ToAgent::Refused { reason });
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(role: Role, shard: Option<usize>, version: &str) -> handshake::Hello {
        handshake::Hello {
            version: version.into(),
            role,
            name: "x".into(),
            shard,
        }
    }

    #[test]
    fn agents_are_refused_for_their_version_role_or_shard() {
        let v = handshake::version();
        let ok =
            |h: &handshake::Hello, server, shards: &[Option<usize>]| refusal(h, server, shards, 3);
        assert!(ok(&hello(Role::Load, None, "0.0.1+wire0"), false, &[])
            .unwrap()
            .contains("version 0.0.1+wire0 differs"));
        assert!(ok(&hello(Role::Server, None, &v), false, &[]).is_none());
        assert!(ok(&hello(Role::Server, None, &v), true, &[])
            .unwrap()
            .contains("already has its server"));
        assert!(ok(&hello(Role::Load, Some(1), &v), false, &[None]).is_none());
        assert!(ok(&hello(Role::Load, None, &v), false, &[None, None])
            .unwrap()
            .contains("needs its server"));
        assert!(ok(&hello(Role::Load, Some(2), &v), true, &[])
            .unwrap()
            .contains("beyond"));
        assert!(ok(&hello(Role::Load, Some(0), &v), true, &[Some(0)])
            .unwrap()
            .contains("holds shard 0"));
    }
}
