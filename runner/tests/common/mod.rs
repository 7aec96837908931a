//! Test harness for plugin conformance: a real `runbench serve` child per test, std TCP clients,
//! a seeded RNG, and one global lock so servers pinned to CPU 0 do not run side by side.

#![allow(dead_code)] // each test binary uses a different part of this module

use runbench::protocol::{ServeReport, ServeSpec, ServerEvent, ServerSnapshot, WindowEdge, STOP};
use runbench_plugin_abi::{Dist, Workload};
use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long a plugin may take to report ready (debug builds, a loaded 2-core machine).
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long any single expected client event (an echo, an EOF) may take.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Beyond the grace period, how long a stopping server may take to exit (the runner allows the
/// same before it kills one: `supervise::server::EXIT_MARGIN`).
pub const EXIT_MARGIN: Duration = Duration::from_secs(2);
/// Threads of the serve child that are not the plugin's: main, `runbench-stdin`, `runbench-stop`.
pub const HOST_THREADS: usize = 3;

/// Holds every other conformance test off while one runs: each starts a server pinned to CPU 0,
/// and timing checks (shutdown, waiting connections) must not compete with another server.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    // A failed test poisons the lock; the next one still runs.
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The plugin library for `runtime`, next to the runbench binary cargo built for this test.
pub fn plugin_path(runtime: &str) -> PathBuf {
    crate::support::runtime_plugin(runtime)
}

/// A loopback address of its own for each server: 127.<pid>.<n>.<n>, so parallel test processes
/// (and other tools on 127.0.0.1) never share a port with it, even through SO_REUSEPORT.
pub fn fresh_addr() -> SocketAddr {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    let ip = Ipv4Addr::new(
        127,
        100 + (pid % 100) as u8,
        (n / 250) as u8,
        1 + (n % 250) as u8,
    );
    // The kernel picks a free port on that address; nobody else binds it.
    let probe = TcpListener::bind((IpAddr::V4(ip), 0)).expect("binding a loopback probe");
    probe.local_addr().expect("probe address")
}

/// What to run; defaults are one worker on CPU 0, no limit, 2 s grace.
#[derive(Clone, Debug)]
pub struct Options {
    pub threads: usize,
    pub cpus: Vec<usize>,
    pub max_connections: usize,
    pub message_bytes: u64,
    pub grace: Duration,
    pub work: Duration,
    pub sleep: Duration,
    /// The whole workload, when a case needs more than `message_bytes`, `work` and `sleep`
    /// (which it then replaces).
    pub workload: Option<Workload>,
    /// The network namespace and address the server serves in (a TAP plugin's), instead of a
    /// fresh loopback address.
    pub netns: Option<(String, SocketAddr)>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            threads: 1,
            cpus: vec![0],
            max_connections: 0,
            message_bytes: 0,
            grace: Duration::from_secs(2),
            work: Duration::ZERO,
            sleep: Duration::ZERO,
            workload: None,
            netns: None,
        }
    }
}

/// The final report and how the process ended.
#[derive(Debug)]
pub struct Finished {
    pub counts: ServeReport,
    /// Snapshots sent after [`Server::watch_window`].
    pub snapshots: Vec<(WindowEdge, ServerSnapshot)>,
    /// From the stop command to the process's exit.
    pub exit_after: Duration,
}

/// A running `runbench serve` child. Killed if dropped while running.
pub struct Server {
    pub runtime: String,
    pub addr: SocketAddr,
    pub options: Options,
    child: Child,
    stdin: Option<ChildStdin>,
    events: Receiver<ServerEvent>,
    stderr: Arc<Mutex<Vec<String>>>,
    stopped_at: Option<Instant>,
}

impl Server {
    pub fn start(runtime: &str, options: Options) -> Server {
        Server::start_plugin(runtime, plugin_path(runtime), options)
    }

    /// [`Server::start`] with the plugin library at `plugin` (a test fixture's), named `runtime`
    /// in messages.
    pub fn start_plugin(runtime: &str, plugin: PathBuf, options: Options) -> Server {
        let addr = options
            .netns
            .as_ref()
            .map_or_else(fresh_addr, |(_, addr)| *addr);
        let spec = ServeSpec {
            plugin,
            addr,
            threads: options.threads,
            cpus: options.cpus.clone(),
            max_connections: options.max_connections,
            grace_ms: options.grace.as_millis() as u64,
            workload: options.workload.unwrap_or(Workload {
                request_bytes: (options.message_bytes > 0).then_some(options.message_bytes),
                cpu: Dist::Fixed(options.work),
                sleep: Dist::Fixed(options.sleep),
                ..Workload::default()
            }),
            netns: options.netns.as_ref().map(|(name, _)| name.clone()),
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_runbench"))
            .arg("serve")
            .arg("--spec")
            .arg(serde_json::to_string(&spec).unwrap())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning runbench serve");
        let (tx, events) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                match serde_json::from_str::<ServerEvent>(&line) {
                    Ok(ServerEvent::Log { .. }) => {}
                    Ok(ev) => {
                        let _ = tx.send(ev);
                    }
                    Err(e) => panic!("serve child wrote a non-protocol line {line:?}: {e}"),
                }
            }
        });
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let sink = stderr.clone();
        let err_pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err_pipe).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let mut server = Server {
            runtime: runtime.to_string(),
            addr,
            options,
            stdin: child.stdin.take(),
            child,
            events,
            stderr,
            stopped_at: None,
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match self.next_event(deadline) {
                Some(ServerEvent::Ready { runtime, .. }) => {
                    assert_eq!(
                        runtime, self.runtime,
                        "plugin reported another runtime name"
                    );
                    return;
                }
                Some(ServerEvent::Failed { stage, message }) => {
                    panic!(
                        "{} server failed to start ({stage}): {message}",
                        self.runtime
                    )
                }
                Some(_) => {}
                None => panic!(
                    "{} server not ready within {READY_TIMEOUT:?}; stderr: {:?}",
                    self.runtime,
                    self.stderr_lines()
                ),
            }
        }
    }

    fn next_event(&self, deadline: Instant) -> Option<ServerEvent> {
        let left = deadline.saturating_duration_since(Instant::now());
        self.events.recv_timeout(left).ok()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// Asks for snapshots at two CLOCK_MONOTONIC instants (the runner's `window` command).
    pub fn watch_window(&mut self, start_ns: u64, end_ns: u64) {
        if let Some(stdin) = self.stdin.as_mut() {
            let _ = writeln!(stdin, "{} {start_ns} {end_ns}", runbench::protocol::WINDOW);
            let _ = stdin.flush();
        }
    }

    /// Sends the stop command (the grace period starts now).
    pub fn stop(&mut self) {
        if let Some(stdin) = self.stdin.as_mut() {
            let _ = writeln!(stdin, "{STOP}");
            let _ = stdin.flush();
        }
        self.stopped_at.get_or_insert_with(Instant::now);
    }

    /// Stops (if not yet) and waits for the report and the exit, which must come within grace
    /// plus [`EXIT_MARGIN`].
    pub fn finish(mut self) -> Finished {
        self.stop();
        let stopped_at = self.stopped_at.unwrap();
        let limit = self.options.grace + EXIT_MARGIN;
        let deadline = stopped_at + limit;
        let mut snapshots = Vec::new();
        let counts = loop {
            match self.next_event(deadline) {
                Some(ServerEvent::Report { counts, .. }) => break counts,
                Some(ServerEvent::Snapshot { edge, snapshot }) => snapshots.push((edge, snapshot)),
                Some(ServerEvent::Failed { stage, message }) => {
                    panic!("{} server failed ({stage}): {message}", self.runtime)
                }
                Some(_) => {}
                None => panic!(
                    "{} server sent no report within grace + margin ({limit:?}) of the stop; \
                     stderr: {:?}",
                    self.runtime,
                    self.stderr_lines()
                ),
            }
        };
        loop {
            match self.child.try_wait().expect("waiting for the serve child") {
                Some(status) => {
                    assert!(
                        status.success(),
                        "{} server exited with {status}",
                        self.runtime
                    );
                    break;
                }
                None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
                None => panic!(
                    "{} server reported but did not exit within grace + margin ({limit:?})",
                    self.runtime
                ),
            }
        }
        Finished {
            counts,
            snapshots,
            exit_after: stopped_at.elapsed(),
        }
    }

    /// Names of the process's threads (from /proc), for counts and for failure messages.
    pub fn thread_names(&self) -> Vec<String> {
        let dir = format!("/proc/{}/task", self.pid());
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("reading {dir}: {e}"))
            .filter_map(|e| e.ok())
            .map(|e| {
                std::fs::read_to_string(e.path().join("comm"))
                    .map(|s| s.trim().to_string())
                    .unwrap_or_else(|_| "?".into())
            })
            .collect();
        names.sort();
        names
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// xorshift64*: deterministic payloads and split points without a crate.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform-ish in `1..=max` (max >= 1).
    pub fn up_to(&mut self, max: usize) -> usize {
        1 + (self.next_u64() % max as u64) as usize
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// A client connection with timeouts, so a broken server fails a test instead of hanging it.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
        .unwrap_or_else(|e| panic!("connecting to {addr}: {e}"));
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Sends `payload` in several random pieces from a writer thread while reading the echo in
/// random-sized reads, and checks every byte. Writing and reading at once keeps a large echo
/// from filling both directions' socket buffers.
pub fn echo_split(stream: &TcpStream, payload: &[u8], rng: &mut Rng) {
    let mut writer = stream.try_clone().unwrap();
    let mut pieces = Vec::new();
    let mut rest = payload;
    while !rest.is_empty() {
        let n = rng.up_to(rest.len().div_ceil(3).max(1)).min(rest.len());
        pieces.push(rest[..n].to_vec());
        rest = &rest[n..];
    }
    let sender = std::thread::spawn(move || {
        for piece in pieces {
            writer.write_all(&piece)?;
        }
        writer.flush()
    });
    let mut reader = stream;
    let mut got = vec![0u8; payload.len()];
    let mut at = 0;
    while at < payload.len() {
        let want = rng.up_to(payload.len() - at);
        match reader.read(&mut got[at..at + want]) {
            Ok(0) => panic!("server closed after {at} of {} echoed bytes", payload.len()),
            Ok(n) => at += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!(
                "reading the echo after {at} of {} bytes: {e}",
                payload.len()
            ),
        }
    }
    sender.join().unwrap().expect("writing the payload");
    if let Some(i) = got.iter().zip(payload).position(|(a, b)| a != b) {
        panic!("echo differs at byte {i} of {}", payload.len());
    }
}

/// Writes `payload` and reads exactly its echo, checking every byte.
pub fn echo_once(stream: &mut TcpStream, payload: &[u8]) {
    stream.write_all(payload).expect("writing a message");
    expect_echo(stream, payload);
}

pub fn expect_echo(stream: &mut TcpStream, payload: &[u8]) {
    let mut got = vec![0u8; payload.len()];
    stream
        .read_exact(&mut got)
        .unwrap_or_else(|e| panic!("reading a {}-byte echo: {e}", payload.len()));
    assert!(got == payload, "echo of {} bytes differs", payload.len());
}

/// Whether the echo of `payload` starts to arrive within `wait`: `false` if nothing came; the
/// whole echo is read and checked when it does.
pub fn echo_arrives_within(stream: &mut TcpStream, payload: &[u8], wait: Duration) -> bool {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut first = [0u8; 1];
    let arrived = match stream.read(&mut first) {
        Ok(0) => panic!("server closed a connection that should wait or be served"),
        Ok(_) => true,
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => false,
        Err(e) => panic!("reading: {e}"),
    };
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    if arrived {
        assert_eq!(first[0], payload[0], "first echoed byte differs");
        expect_echo(stream, &payload[1..]);
    }
    arrived
}

/// Reads until the server closes the connection; returns how long that took. Fails on data.
pub fn expect_closed(stream: &mut TcpStream, within: Duration) -> Duration {
    let start = Instant::now();
    stream.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 64];
    match stream.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("expected the server to close, got {n} more bytes"),
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        Err(e) => panic!("expected the server to close within {within:?}: {e}"),
    }
    start.elapsed()
}

/// Closes with an RST instead of a FIN (SO_LINGER 0).
pub fn reset(stream: TcpStream) {
    let socket = socket2::Socket::from(stream);
    socket.set_linger(Some(Duration::ZERO)).unwrap();
    drop(socket);
}

/// Opens `n` connections (the test process's open-files limit raised first).
pub fn connect_many(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    runbench::os::sys::raise_nofile().expect("raising the open-files limit");
    (0..n).map(|_| connect(addr)).collect()
}

/// `io::Result` helper: a connect after stop may be refused, or accepted then closed.
pub fn connect_refused_or_closed(addr: SocketAddr) -> io::Result<()> {
    match TcpStream::connect_timeout(&addr, IO_TIMEOUT) {
        // Refused, or reset when the listener closed during the handshake.
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::ConnectionRefused | ErrorKind::ConnectionReset
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(e),
        // Accepted just before the listener closed: it must then be closed, unserved.
        Ok(mut s) => {
            expect_closed(&mut s, IO_TIMEOUT);
            Ok(())
        }
    }
}
