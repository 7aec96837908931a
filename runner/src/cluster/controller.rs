//! The controller: `runbench run SCENARIO --agents N --listen ADDR:PORT --token-file F`. Binds
//! exactly the address it is given, admits N agents (one server agent, the rest load agents)
//! within a deadline, refuses version mismatches and late joiners, and then lends the run loop
//! the agents' hosts: children started where [`super::Placement::server`] and
//! [`super::Placement::loadgen`] say run there.

use super::handshake::{self, HandshakeError};
use super::link::{measure_clock, AgentLink, Measured};
use super::msg::{Handshake, Role, ToAgent};
use super::token::Token;
use super::wire::{Deadline, FrameReader, FrameWriter, WireError};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
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
    /// How long one agent's handshake and clock measurement may take, all told (a connection
    /// that has not finished by then is closed; the others are not held up meanwhile).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub handshake_timeout: Duration,
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

    /// Tells every agent the run is over; `error`: why it failed (the agents exit non-zero).
    pub fn shut_down(&self, error: Option<String>) {
        for a in self.all() {
            if a.lost().is_none() {
                a.send(&ToAgent::Bye {
                    error: error.clone(),
                });
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
    let door = Door::new(listener, token, args.handshake_timeout)
        .map_err(|e| Error::Cluster(anyhow::anyhow!("listening on {listen}: {e}")))?;
    let mut cluster =
        admit(&door, n, args.join_timeout).map_err(|e| Error::Cluster(anyhow::anyhow!(e)))?;
    cluster.start_lead = args.start_lead;
    door.refuse_latecomers(n);
    Ok(cluster)
}

/// How many handshakes may be under way at once, and from one address; a connection beyond
/// them is told to try again and closed, so idle or slow peers cannot fill the listen queue,
/// nor one host every place.
const MAX_PENDING: usize = 32;
const MAX_PENDING_PER_ADDRESS: usize = 8;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// An agent that proved itself and whose clock was measured, not yet admitted.
struct Greeted {
    hello: handshake::Hello,
    addr: SocketAddr,
    reader: FrameReader<TcpStream>,
    writer: FrameWriter<TcpStream>,
    clock: Measured,
}

/// The listening socket: it accepts without waiting, and each connection's handshake and clock
/// measurement run on a thread of their own, by one deadline; the agents that come through
/// arrive on a channel.
struct Door {
    listener: TcpListener,
    token: Arc<Token>,
    within: Duration,
    /// Handshakes under way, per peer address.
    pending: Arc<Mutex<HashMap<IpAddr, usize>>>,
    tx: Sender<Greeted>,
    rx: Receiver<Greeted>,
    /// Once the run has its agents, how many (0 before).
    full: Arc<AtomicUsize>,
}

impl Door {
    fn new(listener: TcpListener, token: Token, within: Duration) -> std::io::Result<Door> {
        listener.set_nonblocking(true)?;
        let (tx, rx) = mpsc::channel();
        Ok(Door {
            listener,
            token: Arc::new(token),
            within,
            pending: Default::default(),
            tx,
            rx,
            full: Default::default(),
        })
    }

    /// Takes every connection waiting, starting its handshake or turning it away.
    fn accept_waiting(&self) -> Result<(), String> {
        loop {
            let (stream, addr) = match self.listener.accept() {
                Ok(s) => s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionAborted => continue,
                Err(e) => return Err(format!("accepting agents: {e}")),
            };
            if let Some(reason) = self.busy(addr.ip()) {
                crate::console::log(&format!("connection from {addr} turned away: {reason}"));
                let busy = Handshake::Refused {
                    reason,
                    retry: true,
                };
                let d = Deadline::after(Duration::from_millis(100), "telling it to retry");
                let _ = stream
                    .set_nonblocking(false)
                    .map_err(WireError::from)
                    .and_then(|()| super::wire::write_plain(&stream, &json(&busy), d));
                continue;
            }
            *lock(&self.pending).entry(addr.ip()).or_default() += 1;
            let (token, pending, tx) = (self.token.clone(), self.pending.clone(), self.tx.clone());
            let (within, full) = (self.within, self.full.clone());
            std::thread::spawn(move || {
                if let Some(g) = greet(stream, addr, &token, within, &full) {
                    let _ = tx.send(g);
                }
                let mut p = lock(&pending);
                if let Some(k) = p.get_mut(&addr.ip()) {
                    *k -= 1;
                    if *k == 0 {
                        p.remove(&addr.ip());
                    }
                }
            });
        }
    }

    /// Why a new connection from `ip` cannot have a handshake now, if it cannot: too many
    /// under way in all, or from that address (so one host cannot take every place).
    fn busy(&self, ip: IpAddr) -> Option<String> {
        let p = lock(&self.pending);
        let all: usize = p.values().sum();
        if all >= MAX_PENDING {
            return Some(format!("{MAX_PENDING} handshakes are under way"));
        }
        let from = p.get(&ip).copied().unwrap_or(0);
        (from >= MAX_PENDING_PER_ADDRESS)
            .then(|| format!("{MAX_PENDING_PER_ADDRESS} handshakes from {ip} are under way"))
    }

    /// The next agent through its handshake, waiting at most `wait`.
    fn next(&self, wait: Duration) -> Option<Greeted> {
        self.rx.recv_timeout(wait).ok()
    }

    /// After the run is full, every further agent is told so right after its handshake and
    /// turned away (so are those whose clock was still being measured).
    fn refuse_latecomers(self, n: usize) {
        self.full.store(n, Ordering::SeqCst);
        let _ = self.listener.set_nonblocking(false);
        let Door {
            listener,
            token,
            within,
            pending,
            tx,
            rx,
            full,
        } = self;
        std::thread::spawn(move || {
            for mut g in rx {
                refuse_late(&g.hello, g.addr, &mut g.writer, n);
            }
        });
        let door = Door {
            listener,
            token,
            within,
            pending,
            tx,
            rx: mpsc::channel().1,
            full,
        };
        std::thread::spawn(move || {
            // Blocking now: it returns only when accepting fails.
            if let Err(e) = door.accept_waiting() {
                crate::console::log(&format!("no longer accepting latecomers: {e}"));
            }
        });
    }
}

fn refuse_late(hello: &handshake::Hello, addr: SocketAddr, w: &mut FrameWriter, n: usize) {
    let reason = format!("the run already has its {n} agents and has started");
    crate::console::log(&format!("agent {} ({addr}) refused: {reason}", hello.name));
    let _ = w.send(&ToAgent::Refused { reason });
}

fn json(m: &Handshake) -> Vec<u8> {
    serde_json::to_vec(m).expect("a handshake message serialises")
}

/// Waits for `n` agents (lost ones do not count) until `within` has passed or a signal came;
/// the agents already admitted hear heartbeats meanwhile, and are told why when it fails.
fn admit(door: &Door, n: usize, within: Duration) -> Result<Cluster, String> {
    let deadline = Instant::now() + within;
    let mut seats = Seats::default();
    loop {
        seats.forget_lost();
        if seats.count() == n {
            break;
        }
        let stop = if let Some(sig) = crate::os::interrupt::requested() {
            Some(format!(
                "interrupted ({}) while waiting for agents",
                crate::os::interrupt::name(sig)
            ))
        } else if Instant::now() >= deadline {
            Some(format!(
                "{} of {n} agents joined within {} (server agent: {}); nothing was run",
                seats.count(),
                humantime::format_duration(within),
                if seats.server.is_some() {
                    "joined"
                } else {
                    "missing"
                }
            ))
        } else {
            door.accept_waiting().err()
        };
        if let Some(why) = stop {
            seats.dismiss(&why);
            return Err(why);
        }
        if let Some(g) = door.next(Duration::from_millis(20)) {
            seats.seat(g, n);
        }
    }
    let Seats { server, mut loads } = seats;
    // Agents that asked for a shard hold it; the others follow in the order they joined.
    loads.sort_by_key(|a| a.shard.unwrap_or(usize::MAX));
    Ok(Cluster {
        server: server.expect("the loop ends with a server agent"),
        loads,
        start_lead: None,
    })
}

/// The agents admitted so far.
#[derive(Default)]
struct Seats {
    server: Option<Arc<AgentLink>>,
    loads: Vec<Arc<AgentLink>>,
}

impl Seats {
    fn count(&self) -> usize {
        self.loads.len() + usize::from(self.server.is_some())
    }

    /// An agent lost while waiting for the others gives its place back.
    fn forget_lost(&mut self) {
        let open = |a: &Arc<AgentLink>| {
            crate::console::log(&format!(
                "{} left before the run started; its place is open again",
                a.label()
            ));
        };
        if let Some(s) = self.server.as_ref().filter(|s| s.lost().is_some()) {
            open(s);
            self.server = None;
        }
        self.loads.retain(|a| {
            let lost = a.lost().is_some();
            if lost {
                open(a);
            }
            !lost
        });
    }

    /// Tells the agents admitted that nothing will run, and why.
    fn dismiss(&self, why: &str) {
        for a in self.server.iter().chain(self.loads.iter()) {
            a.send(&ToAgent::Bye {
                error: Some(why.to_string()),
            });
        }
    }

    /// Admits `g` or tells it why not.
    fn seat(&mut self, mut g: Greeted, n: usize) {
        let shards: Vec<Option<usize>> = self.loads.iter().map(|a| a.shard).collect();
        if let Some(reason) = refusal(&g.hello, self.server.is_some(), &shards, n) {
            crate::console::log(&format!(
                "agent {} ({}) refused: {reason}",
                g.hello.name, g.addr
            ));
            let _ = g.writer.send(&ToAgent::Refused { reason });
            return;
        }
        let index = match g.hello.role {
            Role::Server => 0,
            Role::Load => self.loads.len(),
        };
        let offset = g.clock.offset;
        let link = AgentLink::start(g.hello, g.addr, offset, g.reader, g.writer);
        link.send(&ToAgent::Welcome {
            index,
            offset_ns: offset.offset_ns,
            rtt_ns: offset.rtt_ns,
        });
        link.beat();
        crate::console::log(&format!(
            "{} joined (version {}): clock offset {:+.6} s (within {:.3} ms), round trip \
             {:.3} ms (fastest of 16 pings; slowest {:.3} ms)",
            link.label(),
            link.version,
            offset.offset_ns as f64 / 1e9,
            offset.error_bound_ns() as f64 / 1e6,
            offset.rtt_ns as f64 / 1e6,
            g.clock.slowest_rtt_ns as f64 / 1e6,
        ));
        match link.role {
            Role::Server => self.server = Some(link),
            Role::Load => self.loads.push(link),
        }
    }
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

/// The handshake with one connection and its clock measurement, by one deadline; logged when
/// it fails.
fn greet(
    stream: TcpStream,
    addr: SocketAddr,
    token: &Token,
    within: Duration,
    full: &AtomicUsize,
) -> Option<Greeted> {
    let d = Deadline::after(within, "the handshake and clock measurement");
    if let Err(e) = stream
        .set_nonblocking(false)
        .and_then(|()| stream.set_nodelay(true))
    {
        crate::console::log(&format!("agent connection from {addr}: {e}"));
        return None;
    }
    let (hello, (mut reader, mut writer)) = match handshake::controller(&stream, token, d) {
        Ok(h) => h,
        Err(e) => {
            let what = match e {
                HandshakeError::AgentProof => format!("refused: {e}"),
                HandshakeError::Wire(WireError::Closed) => "it closed the connection during \
                     the handshake (an agent that gave up waiting, or not an agent)"
                    .to_string(),
                e => format!("handshake failed: {e}"),
            };
            crate::console::log(&format!("connection from {addr}: {what}"));
            return None;
        }
    };
    let n = full.load(Ordering::SeqCst);
    if n > 0 {
        refuse_late(&hello, addr, &mut writer, n);
        return None;
    }
    match measure_clock(&mut reader, &mut writer, d) {
        Ok(clock) => Some(Greeted {
            hello,
            addr,
            reader,
            writer,
            clock,
        }),
        Err(e) => {
            crate::console::log(&format!(
                "{} agent {} ({addr}) not admitted: {e}",
                hello.role, hello.name
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshakes_under_way_are_bounded_in_all_and_per_address() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let door = Door::new(l, Token::generate().unwrap(), Duration::from_secs(1)).unwrap();
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        lock(&door.pending).insert(a, MAX_PENDING_PER_ADDRESS - 1);
        assert_eq!(door.busy(a), None);
        lock(&door.pending).insert(a, MAX_PENDING_PER_ADDRESS);
        assert_eq!(
            door.busy(a).unwrap(),
            "8 handshakes from 10.0.0.1 are under way"
        );
        assert_eq!(door.busy(b), None);
        for k in 0..MAX_PENDING as u8 {
            lock(&door.pending).insert(IpAddr::from([10, 1, 0, k]), 1);
        }
        assert_eq!(door.busy(b).unwrap(), "32 handshakes are under way");
    }

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
