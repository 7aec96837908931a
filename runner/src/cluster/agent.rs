//! `runbench agent`: connects out to a controller (it never listens), proves itself, then runs
//! the `serve` or `loadgen` children the controller asks for and relays their lines. What it
//! refuses: a load target outside `--allow-target`, a plugin whose SHA-256 differs from the
//! controller's, a start instant that reached it too late. A controller silent past
//! [`super::LOST_AFTER`] (or gone) stops every child at once; nothing restarts.

use super::cidr::Cidr;
use super::handshake::{self, HandshakeError, Hello};
use super::msg::{ChildKind, Exit, Role, ToAgent, ToController};
use super::token::Token;
use super::wire::{Deadline, FrameReader, FrameWriter, WireError};
use crate::error::Exit as Code;
use crate::protocol::{LoadgenSpec, ServeSpec};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Debug, clap::Args)]
pub struct AgentArgs {
    /// The controller, HOST:PORT (`runbench run ... --listen`).
    #[arg(long)]
    pub controller: String,
    /// The shared 256-bit token (hex, mode 0600; `runbench token FILE` writes one).
    #[arg(long)]
    pub token_file: PathBuf,
    /// What this agent runs: the servers (one server agent per run) or load generators.
    #[arg(long, value_enum, default_value = "load")]
    pub role: Role,
    /// This agent's name in logs and meta.json (default: hostname-role-pid).
    #[arg(long)]
    pub name: Option<String>,
    /// Where load may go (repeatable). Default: the controller's own /24 (IPv6: /64).
    #[arg(long)]
    pub allow_target: Vec<Cidr>,
    /// A load agent's shard (0-based; e.g. a Job's completion index, or SLURM_PROCID in the
    /// load agents' own step as `slurm render` writes it):
    /// load process i runs on the agent with shard i mod agents.
    #[arg(long)]
    pub shard: Option<usize>,
    /// Where the plugins are on this host (default: next to this binary).
    #[arg(long)]
    pub plugin_dir: Option<PathBuf>,
    /// How long to keep trying to reach the controller.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub connect_timeout: Duration,
    /// How long the handshake, the clock measurement and the controller's answer may take, all
    /// told, once connected.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub handshake_timeout: Duration,
}

/// A start instant must reach the agent at least this long before it.
const MIN_LEAD: Duration = Duration::from_millis(2);

struct Child {
    pid: u32,
    stdin: Option<ChildStdin>,
}

type Writer = Arc<Mutex<FrameWriter<TcpStream>>>;
type Children = Arc<Mutex<HashMap<u64, Child>>>;

/// What the agent checks against.
struct Rules {
    name: String,
    role: Role,
    allow: Vec<Cidr>,
    plugin_dir: PathBuf,
    own_ip: IpAddr,
    exe: PathBuf,
}

fn say(name: &str, what: &str) {
    eprintln!("runbench agent {name}: {what}");
}

pub fn main(args: &AgentArgs) -> i32 {
    let name = args.name.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        format!("{}-{}-{}", host.trim(), args.role, std::process::id())
    });
    let token = match Token::read(&args.token_file) {
        Ok(t) => t,
        Err(e) => {
            say(&name, &format!("{e:#}"));
            return Code::BadInput.code();
        }
    };
    match serve_controller(args, &name, &token) {
        Ok(()) => Code::Ok.code(),
        Err(e) => {
            say(&name, &e);
            Code::Cluster.code()
        }
    }
}

/// A connection to the controller, tried until `by`.
fn connect(target: &str, by: Instant, within: Duration) -> Result<TcpStream, String> {
    loop {
        let addrs: Vec<SocketAddr> = match target.to_socket_addrs() {
            Ok(a) => a.collect(),
            Err(e) if Instant::now() >= by => {
                return Err(format!("resolving the controller {target}: {e}"))
            }
            Err(_) => Vec::new(),
        };
        for a in &addrs {
            let left = by.saturating_duration_since(Instant::now());
            let wait = left.clamp(Duration::from_millis(10), Duration::from_secs(2));
            if let Ok(s) = TcpStream::connect_timeout(a, wait) {
                return Ok(s);
            }
        }
        if Instant::now() >= by {
            return Err(format!(
                "could not reach the controller {target} within {}",
                humantime::format_duration(within)
            ));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Whether a failed handshake is worth another try: the controller was busy, or hung up
/// before answering (when busy it closes without reading the hello, which can reset the
/// connection before its notice is read).
fn again(e: &HandshakeError) -> bool {
    match e {
        HandshakeError::Refused { retry, .. } => *retry,
        HandshakeError::Wire(WireError::Closed) => true,
        HandshakeError::Wire(WireError::Io(e)) => e.kind() == std::io::ErrorKind::ConnectionReset,
        _ => false,
    }
}

/// What joining gave: the connection and its two halves.
struct Joined {
    stream: TcpStream,
    reader: FrameReader<TcpStream>,
    writer: FrameWriter<TcpStream>,
}

/// Connects, proves itself and waits to be admitted; a controller with too many handshakes
/// under way is tried again until `--connect-timeout`.
fn join(args: &AgentArgs, name: &str, token: &Token) -> Result<Joined, String> {
    let by = Instant::now() + args.connect_timeout;
    let hello = Hello {
        version: handshake::version(),
        role: args.role,
        name: name.to_string(),
        shard: args.shard,
    };
    loop {
        let stream = connect(&args.controller, by, args.connect_timeout)?;
        let _ = stream.set_nodelay(true);
        let d = Deadline::after(args.handshake_timeout, "the handshake with the controller");
        let (mut reader, mut writer) = match handshake::agent(&stream, token, &hello, d) {
            Ok(h) => h,
            Err(e) if again(&e) && Instant::now() < by => {
                say(
                    name,
                    &format!("handshake with {}: {e}; trying again", args.controller),
                );
                std::thread::sleep(Duration::from_millis(250));
                continue;
            }
            Err(e) => return Err(format!("handshake with {}: {e}", args.controller)),
        };
        let d = d.renamed("joining (the clock measurement and the controller's answer)");
        loop {
            match reader.recv_by::<ToAgent>(d) {
                Ok(ToAgent::Ping { t0 }) => writer
                    .send(&ToController::Pong {
                        t0,
                        agent_ns: crate::os::sys::monotonic_ns(),
                    })
                    .map_err(|e| format!("answering the clock measurement: {e}"))?,
                Ok(ToAgent::Welcome {
                    index,
                    offset_ns,
                    rtt_ns,
                }) => {
                    say(
                        name,
                        &format!(
                            "joined {} as {} agent {index}: clock offset {:+.6} s, round trip \
                             {:.3} ms (as the controller measured); waiting for the run",
                            args.controller,
                            args.role,
                            offset_ns as f64 / 1e9,
                            rtt_ns as f64 / 1e6
                        ),
                    );
                    return Ok(Joined {
                        stream,
                        reader,
                        writer,
                    });
                }
                Ok(ToAgent::Refused { reason }) => {
                    return Err(format!("refused by the controller: {reason}"))
                }
                Ok(ToAgent::Bye { error }) => {
                    return Err(format!(
                        "the controller ended the run before admitting this agent{}",
                        error.map(|e| format!(": {e}")).unwrap_or_default()
                    ))
                }
                Ok(_) => {}
                Err(WireError::Closed) => {
                    return Err(
                        "the controller closed the connection before admitting this \
                         agent (see its log)"
                            .into(),
                    )
                }
                Err(e) => return Err(format!("waiting to be admitted: {e}")),
            }
        }
    }
}

fn serve_controller(args: &AgentArgs, name: &str, token: &Token) -> Result<(), String> {
    let Joined {
        stream,
        mut reader,
        writer,
    } = join(args, name, token)?;
    let writer: Writer = Arc::new(Mutex::new(writer));
    let peer = stream.peer_addr().map_err(|e| e.to_string())?;
    let rules = Rules {
        name: name.to_string(),
        role: args.role,
        allow: match args.allow_target.is_empty() {
            true => vec![Cidr::around(peer.ip())],
            false => args.allow_target.clone(),
        },
        plugin_dir: match &args.plugin_dir {
            Some(d) => d.clone(),
            None => crate::plugin::plugin_dir().map_err(|e| e.to_string())?,
        },
        own_ip: stream.local_addr().map_err(|e| e.to_string())?.ip(),
        exe: std::env::current_exe().map_err(|e| format!("finding runbench itself: {e}"))?,
    };
    stream
        .set_read_timeout(Some(super::HEARTBEAT))
        .and_then(|()| stream.set_write_timeout(Some(super::LOST_AFTER)))
        .map_err(|e| e.to_string())?;
    let children: Children = Default::default();
    let beating = heartbeat(writer.clone());
    let end = follow(&mut reader, &writer, &children, &rules);
    beating.store(false, std::sync::atomic::Ordering::Relaxed);
    // Whatever ended the connection, no load outlives it.
    let stopped = stop_all(&children);
    match end {
        Ok(()) => {
            say(name, "the run is over");
            Ok(())
        }
        Err(why) => Err(format!("{why}; stopped {stopped} child process(es)")),
    }
}

fn heartbeat(writer: Writer) -> Arc<std::sync::atomic::AtomicBool> {
    let on = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let flag = on.clone();
    std::thread::spawn(move || {
        while flag.load(std::sync::atomic::Ordering::Relaxed) {
            if send(&writer, &ToController::Heartbeat).is_err() {
                break;
            }
            std::thread::sleep(super::HEARTBEAT);
        }
    });
    on
}

fn send(w: &Writer, m: &ToController) -> Result<(), WireError> {
    w.lock().unwrap_or_else(|e| e.into_inner()).send(m)
}

fn stop_all(children: &Children) -> usize {
    let map = children.lock().unwrap_or_else(|e| e.into_inner());
    for c in map.values() {
        crate::os::sys::kill(c.pid, libc::SIGKILL);
    }
    map.len()
}

/// The controller's messages until `Bye` (Ok) or until the link fails (Err: why).
fn follow(
    reader: &mut super::wire::FrameReader<TcpStream>,
    w: &Writer,
    children: &Children,
    rules: &Rules,
) -> Result<(), String> {
    let mut heard = Instant::now();
    // Held (bound, not listening) until the next reservation, so nothing else takes the port
    // before the servers bind it with SO_REUSEPORT.
    let mut _reservation = None;
    loop {
        let msg = match reader.recv::<ToAgent>() {
            Ok(m) => m,
            Err(e) if e.is_timeout() => {
                if heard.elapsed() > super::LOST_AFTER {
                    return Err(format!(
                        "the controller was silent for {:.1}s",
                        heard.elapsed().as_secs_f64()
                    ));
                }
                continue;
            }
            Err(WireError::Closed) => return Err("the controller closed the connection".into()),
            Err(e) => return Err(format!("the connection to the controller failed: {e}")),
        };
        heard = Instant::now();
        let sent = match msg {
            ToAgent::Heartbeat | ToAgent::Welcome { .. } => Ok(()),
            ToAgent::Bye { error: None } => return Ok(()),
            ToAgent::Bye { error: Some(e) } => {
                return Err(format!("the controller ended the run: {e}"))
            }
            ToAgent::Refused { reason } => return Err(format!("refused: {reason}")),
            ToAgent::Ping { t0 } => send(
                w,
                &ToController::Pong {
                    t0,
                    agent_ns: crate::os::sys::monotonic_ns(),
                },
            ),
            ToAgent::Spawn {
                id,
                kind,
                spec,
                plugin_sha256,
            } => {
                match admit(kind, &spec, plugin_sha256.as_deref(), rules)
                    .and_then(|spec| spawn(id, kind, &spec, rules, w, children))
                {
                    Ok(()) => Ok(()),
                    Err(why) => {
                        say(&rules.name, &format!("refused child {id}: {why}"));
                        refuse(w, id, &why)
                    }
                }
            }
            ToAgent::Line { id, line } => command(w, children, id, &line, &rules.name),
            ToAgent::CloseStdin { id } => {
                if let Some(c) = children.lock().unwrap().get_mut(&id) {
                    c.stdin = None;
                }
                Ok(())
            }
            ToAgent::Kill { id } => {
                if let Some(c) = children.lock().unwrap().get(&id) {
                    crate::os::sys::kill(c.pid, libc::SIGKILL);
                }
                Ok(())
            }
            ToAgent::Sample { ids } => {
                let pids: Vec<Option<u32>> = {
                    let map = children.lock().unwrap();
                    ids.iter().map(|id| map.get(id).map(|c| c.pid)).collect()
                };
                let mut sum = crate::os::procfs::ProcSample::default();
                let mut complete = true;
                for pid in pids {
                    match pid.and_then(crate::os::procfs::sample) {
                        Some(s) => sum.add(&s),
                        None => complete = false,
                    }
                }
                send(w, &ToController::Sampled { sum, complete })
            }
            ToAgent::ReservePort => {
                let r = reserve_port(rules.own_ip);
                let port = r.as_ref().map(|(_, p)| *p).map_err(|e| e.to_string());
                _reservation = r.ok().map(|(s, _)| s);
                send(w, &ToController::Port { port })
            }
        };
        sent.map_err(|e| format!("writing to the controller: {e}"))?;
    }
}

/// Answers for a child that was not started: a `failed` line its supervisor understands (as
/// a server's or a load generator's), then its exit.
fn refuse(w: &Writer, id: u64, why: &str) -> Result<(), WireError> {
    send(
        w,
        &ToController::Event {
            id,
            line: failed_line(why),
        },
    )?;
    send(
        w,
        &ToController::Exited {
            id,
            exit: Exit {
                exit_code: Some(Code::Cluster.code()),
                ..Exit::default()
            },
        },
    )
}

/// A `failed` event in the child protocol: `ServerEvent::Failed` and `LoadEvent::Failed` both
/// read it.
pub fn failed_line(message: &str) -> String {
    serde_json::json!({"event": "failed", "stage": "agent", "message": message}).to_string()
}

/// Checks a child's spec against this agent's rules; returns the spec to run here.
fn admit(kind: ChildKind, spec: &str, sha: Option<&str>, rules: &Rules) -> Result<String, String> {
    match (kind, rules.role) {
        (ChildKind::Loadgen, Role::Server) => {
            return Err("this is a server agent: it runs no load".into())
        }
        (ChildKind::Serve, Role::Load) => {
            return Err("this is a load agent: it runs no server".into())
        }
        _ => {}
    }
    match kind {
        ChildKind::Loadgen => {
            let s: LoadgenSpec =
                serde_json::from_str(spec).map_err(|e| format!("bad spec: {e}"))?;
            if s.netns.is_some() {
                return Err("a network namespace is not for remote load".into());
            }
            if !rules.allow.iter().any(|c| c.contains(s.target.ip())) {
                return Err(format!(
                    "target {} is outside --allow-target {}",
                    s.target,
                    rules
                        .allow
                        .iter()
                        .map(|c| c.to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                ));
            }
            Ok(spec.to_string())
        }
        ChildKind::Serve => {
            let mut s: ServeSpec =
                serde_json::from_str(spec).map_err(|e| format!("bad spec: {e}"))?;
            if s.netns.is_some() {
                return Err("a TAP namespace is not for a remote server".into());
            }
            if s.addr.ip() != rules.own_ip {
                return Err(format!(
                    "asked to listen on {}, which is not this agent's address {}",
                    s.addr, rules.own_ip
                ));
            }
            s.plugin = local_plugin(&s.plugin, &rules.plugin_dir, sha)?;
            Ok(serde_json::to_string(&s).expect("spec serialises"))
        }
    }
}

/// The plugin of the same file name in this host's plugin folder, if its SHA-256 is the one
/// the controller loaded.
fn local_plugin(path: &Path, dir: &Path, sha: Option<&str>) -> Result<PathBuf, String> {
    let file = path
        .file_name()
        .ok_or_else(|| format!("plugin path {} has no file name", path.display()))?;
    let local = dir.join(file);
    let want = sha.ok_or("the controller sent no plugin SHA-256")?;
    let have = crate::plugin::sha256_file(&local);
    if have != want {
        return Err(format!(
            "plugin {} has SHA-256 {have}, the controller's has {want}; refusing to run another \
             build",
            local.display()
        ));
    }
    Ok(local)
}

fn spawn(
    id: u64,
    kind: ChildKind,
    spec: &str,
    rules: &Rules,
    w: &Writer,
    children: &Children,
) -> Result<(), String> {
    let mut cmd = Command::new(&rules.exe);
    cmd.arg(kind.subcommand())
        .arg("--spec")
        .arg(spec)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Its own process group, killed with the agent: no load outlives the agent.
    crate::os::sys::tie_to_runner(&mut cmd);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("starting {}: {e}", kind.subcommand()))?;
    let pid = child.id();
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    children.lock().unwrap().insert(
        id,
        Child {
            pid,
            stdin: child.stdin.take(),
        },
    );
    let lw = w.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if send(&lw, &ToController::Log { id, line }).is_err() {
                break;
            }
        }
    });
    let (ew, map) = (w.clone(), children.clone());
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = send(&ew, &ToController::Event { id, line });
        }
        // stdout closed: the child is exiting; its exit goes after its last line.
        let reaped = loop {
            match crate::os::sys::try_reap(pid) {
                Ok(Some(r)) => break r,
                Ok(None) => std::thread::sleep(Duration::from_millis(2)),
                Err(_) => break crate::os::sys::Reaped::default(),
            }
        };
        drop(child);
        map.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        let _ = send(
            &ew,
            &ToController::Exited {
                id,
                exit: reaped.into(),
            },
        );
    });
    Ok(())
}

/// A command for a child. A start instant too close (or past) fails the child before it
/// measures anything: starting late would skew this agent against the others.
fn command(
    w: &Writer,
    children: &Children,
    id: u64,
    line: &str,
    name: &str,
) -> Result<(), WireError> {
    let mut map = children.lock().unwrap();
    let Some(c) = map.get_mut(&id) else {
        return Ok(());
    };
    if let Some(at) = super::clock::start_instant(line) {
        if let Some(late_ms) = too_late(at, crate::os::sys::monotonic_ns()) {
            let why = format!(
                "the start instant reached agent {name} {late_ms:+.3} ms after it \
                 (it needs {} ms of lead); not started",
                MIN_LEAD.as_millis()
            );
            // The reason goes out before the kill: the child's exit, reported by another
            // thread, must not reach the controller first and read as a crash.
            let sent = send(
                w,
                &ToController::Event {
                    id,
                    line: failed_line(&why),
                },
            );
            crate::os::sys::kill(c.pid, libc::SIGKILL);
            return sent;
        }
    }
    if let Some(stdin) = c.stdin.as_mut() {
        let _ = writeln!(stdin, "{line}").and_then(|()| stdin.flush());
    }
    Ok(())
}

/// How late (ms; negative: too little ahead) a start instant `at` is at `now`, when it leaves
/// less than [`MIN_LEAD`].
fn too_late(at: u64, now: u64) -> Option<f64> {
    (at < now + MIN_LEAD.as_nanos() as u64).then(|| (now as f64 - at as f64) / 1e6)
}

fn reserve_port(ip: IpAddr) -> std::io::Result<(socket2::Socket, u16)> {
    let probe = runbench_plugin_abi::os::reuseport_listener(SocketAddr::new(ip, 0))?;
    let port = probe.local_addr()?.port();
    drop(probe);
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(SocketAddr::new(ip, 0)),
        socket2::Type::STREAM,
        None,
    )?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&SocketAddr::new(ip, port).into())?;
    Ok((socket, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_instant_too_close_or_past_is_late() {
        let ms = 1_000_000;
        assert_eq!(too_late(100 * ms, 50 * ms), None);
        assert_eq!(too_late(50 * ms, 60 * ms), Some(10.0));
        assert_eq!(too_late(51 * ms, 50 * ms), Some(-1.0));
    }

    #[test]
    fn load_outside_allow_target_and_another_plugin_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut rules = Rules {
            name: "a".into(),
            role: Role::Load,
            allow: vec!["10.1.0.0/16".parse().unwrap()],
            plugin_dir: dir.path().to_path_buf(),
            own_ip: "10.1.0.5".parse().unwrap(),
            exe: PathBuf::new(),
        };
        let spec = |target: &str| {
            let mut v: serde_json::Value = serde_json::json!({
                "target": target, "first_connection": 0, "connections": 1, "run": 0,
                "workload": runbench_plugin_abi::Workload::echo(1), "warmup_ms": 0, "duration_ms": 1, "threads": 1, "cpus": [],
                "connect_timeout_ms": 1, "model": "closed",
                "open_connections": {"start": 1.0, "phases": []}, "rate": null,
                "requests_per_connection": null, "interval_ms": 1, "signal_at_ms": null
            });
            v["target"] = target.into();
            v.to_string()
        };
        assert!(admit(ChildKind::Loadgen, &spec("10.1.2.3:80"), None, &rules).is_ok());
        let e = admit(ChildKind::Loadgen, &spec("192.168.0.1:80"), None, &rules).unwrap_err();
        assert!(e.contains("outside --allow-target 10.1.0.0/16"), "{e}");
        let serve = r#"{"addr":"10.1.0.5:80"}"#;
        let e = admit(ChildKind::Serve, serve, None, &rules).unwrap_err();
        assert!(e.contains("a load agent: it runs no server"), "{e}");
        rules.role = Role::Server;
        let e = admit(ChildKind::Loadgen, &spec("10.1.2.3:80"), None, &rules).unwrap_err();
        assert!(e.contains("a server agent: it runs no load"), "{e}");
        std::fs::write(dir.path().join("libp.so"), b"one build").unwrap();
        let e = local_plugin(Path::new("/elsewhere/libp.so"), dir.path(), Some("00")).unwrap_err();
        assert!(e.contains("refusing to run another build"), "{e}");
        let sha = crate::plugin::sha256_file(&dir.path().join("libp.so"));
        assert!(local_plugin(Path::new("/elsewhere/libp.so"), dir.path(), Some(&sha)).is_ok());
    }
}
