//! Conformance of the embassy plugins through the real serve child: `embassy` (embassy-net over
//! a TAP device) inside a network namespace each test creates with `runbench::os::netns`, where the
//! test's client thread joins it (setns moves only the calling thread); and `embassy-executor`
//! (the same executor on kernel sockets) on loopback.
//!
//! Needs root (or CAP_NET_ADMIN + CAP_SYS_ADMIN), /dev/net/tun and iproute2, and the plugins
//! built next to the runbench binary (`cargo build --workspace`, as `just test` does).

mod support;

use runbench::os::netns::TapNamespace;
use runbench::protocol::{ServeReport, ServeSpec};
use runbench::supervise::server::{Servers, ServersExit};
use runbench_plugin_abi::Workload;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// `POOL_SIZE` of plugins/embassy/src/lib.rs; `pool_serves_its_size_at_once_and_refuses_beyond`
/// fails if the two drift apart.
const POOL_SIZE: usize = 256;
const IO_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Debug)]
enum Which {
    /// embassy-net on a TAP device, in a namespace.
    Embassy,
    /// The embassy executor on kernel sockets, on loopback.
    Executor,
}

impl Which {
    fn runtime(self) -> &'static str {
        match self {
            Which::Embassy => "embassy",
            Which::Executor => "embassy-executor",
        }
    }

    fn plugin(self) -> PathBuf {
        support::runtime_plugin(self.runtime())
    }
}

/// A free loopback port, kept reserved (bound with SO_REUSEPORT, not listening) until dropped,
/// as the runner does.
fn reserve_loopback_port() -> (socket2::Socket, SocketAddr) {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_reuse_port(true).unwrap();
    socket
        .bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())
        .unwrap();
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    (socket, addr)
}

struct Options {
    max_connections: usize,
    message_bytes: u64,
    grace: Duration,
    /// Overrides `message_bytes` with a whole workload.
    workload: Option<Workload>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_connections: 0,
            message_bytes: 0,
            grace: Duration::from_secs(2),
            workload: None,
        }
    }
}

/// A running server, in its namespace when it needs one. Fields drop in order: the server is
/// killed before its namespace is deleted.
struct Rig {
    servers: Option<Servers>,
    ns: Option<TapNamespace>,
    addr: SocketAddr,
    grace: Duration,
}

impl Rig {
    fn start(which: Which, opts: Options) -> Rig {
        let (ns, reservation, addr) = match which {
            Which::Embassy => {
                let ns = TapNamespace::create().expect("creating the test's network namespace");
                let addr = ns.server_addr();
                (Some(ns), None, addr)
            }
            Which::Executor => {
                let (reservation, addr) = reserve_loopback_port();
                (None, Some(reservation), addr)
            }
        };
        let spec = ServeSpec {
            plugin: which.plugin(),
            addr,
            threads: 1,
            cpus: Vec::new(),
            max_connections: opts.max_connections,
            grace_ms: opts.grace.as_millis() as u64,
            workload: opts.workload.unwrap_or(Workload {
                request_bytes: (opts.message_bytes > 0).then_some(opts.message_bytes),
                ..Workload::default()
            }),
            netns: ns.as_ref().map(|ns| ns.name().to_string()),
        };
        let servers = Servers::start(
            &support::bin(),
            &spec,
            1,
            &runbench::cluster::Placement::local(),
            which.runtime(),
            runbench::supervise::server::READY_TIMEOUT,
        )
        .expect("the server starts");
        drop(reservation);
        Rig {
            servers: Some(servers),
            ns,
            addr,
            grace: opts.grace,
        }
    }

    /// Puts the calling thread where the server is reachable (its namespace, if any).
    fn join_fn(&self) -> impl FnOnce() + Send + 'static {
        let name = self.ns.as_ref().map(|ns| ns.name().to_string());
        move || {
            if let Some(name) = name {
                runbench::os::netns::enter(&name).expect("entering the namespace");
            }
        }
    }

    /// Runs `client` on a thread that can reach the server, with the server's address.
    fn client<T: Send>(&self, client: impl FnOnce(SocketAddr) -> T + Send) -> T {
        let (join, addr) = (self.join_fn(), self.addr);
        std::thread::scope(|s| {
            s.spawn(move || {
                join();
                client(addr)
            })
            .join()
            .expect("client thread")
        })
    }

    /// Sends the stop command and waits for the server's report.
    fn stop(&mut self) -> ServersExit {
        let exit = self.servers.take().expect("running").stop(self.grace);
        assert!(exit.failure.is_none(), "server failed: {:?}", exit.failure);
        exit
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT).expect("connect");
    s.set_nodelay(true).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    s
}

fn pattern(conn: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + conn * 7) as u8).collect()
}

/// Writes `msg` from a second thread while reading the echo here, so a message larger than the
/// socket buffers cannot deadlock; returns what came back.
fn echo(stream: &TcpStream, msg: &[u8]) -> Vec<u8> {
    let mut writer = stream.try_clone().unwrap();
    let mut back = vec![0u8; msg.len()];
    std::thread::scope(|s| {
        s.spawn(|| writer.write_all(msg).expect("write"));
        (&*stream).read_exact(&mut back).expect("read echo");
    });
    back
}

/// Closes our side and waits for the server's FIN: once it has come, the server has read the
/// close (its outcome is peer-closed, whatever a later stop signal does).
fn hang_up(stream: TcpStream) {
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let (rest, end) = read_to_end(&stream);
    assert!(rest.is_empty() && end.is_ok(), "hang-up: {end:?}");
}

/// Reads until EOF or error; returns the bytes and how it ended.
fn read_to_end(mut stream: &TcpStream) -> (Vec<u8>, Result<(), ErrorKind>) {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return (data, Ok(())),
            Ok(n) => data.extend_from_slice(&buf[..n]),
            Err(e) => return (data, Err(e.kind())),
        }
    }
}

#[test]
fn embassy_echo_is_byte_exact_from_one_byte_to_many_segments() {
    echo_is_byte_exact_from_one_byte_to_many_segments(Which::Embassy);
}

#[test]
fn executor_echo_is_byte_exact_from_one_byte_to_many_segments() {
    echo_is_byte_exact_from_one_byte_to_many_segments(Which::Executor);
}

fn echo_is_byte_exact_from_one_byte_to_many_segments(which: Which) {
    // 1460 is one full segment on the TAP's 1500-byte MTU; the larger sizes span many segments
    // and, past 16 KiB, more than the stack's receive window.
    let sizes = [1usize, 64, 1460, 1461, 4096, 65_536, 300_000];
    let mut rig = Rig::start(which, Options::default());
    let sent: usize = rig.client(|addr| {
        let mut total = 0;
        for (c, &size) in sizes.iter().enumerate() {
            let stream = connect(addr);
            for round in 0..3 {
                let msg = pattern(c * 3 + round, size);
                assert!(echo(&stream, &msg) == msg, "echo of {size} B differs");
                total += size;
            }
            hang_up(stream);
        }
        total
    });
    let exit = rig.stop();
    let c = exit.counts;
    assert_eq!(c.accepted, sizes.len() as u64);
    assert_eq!(c.peer_closed, sizes.len() as u64);
    assert_eq!(c.bytes_echoed, sent as u64);
    assert_eq!((c.cut, c.io_errors, c.accept_errors), (0, 0, 0));
}

#[test]
fn pool_serves_its_size_at_once_and_refuses_beyond_counting_it() {
    let mut rig = Rig::start(Which::Embassy, Options::default());
    let refused = rig.client(|addr| {
        let streams: Vec<TcpStream> = (0..POOL_SIZE).map(|_| connect(addr)).collect();
        for (c, s) in streams.iter().enumerate() {
            let msg = pattern(c, 100);
            assert!(echo(s, &msg) == msg, "connection {c} echoed wrong bytes");
        }
        // Every socket of the pool is serving: smoltcp answers the next SYN with a reset.
        let extra = TcpStream::connect_timeout(&addr, IO_TIMEOUT);
        let refused = matches!(&extra, Err(e) if e.kind() == ErrorKind::ConnectionRefused);
        drop(streams);
        refused
    });
    assert!(refused, "connection {} was not refused", POOL_SIZE + 1);
    let c = rig.stop().counts;
    assert_eq!(c.accepted, POOL_SIZE as u64);
    assert_eq!(c.max_concurrent, POOL_SIZE as u64);
    assert_eq!(
        c.accept_errors, 1,
        "the refusal is counted as an accept error"
    );
}

#[test]
fn embassy_max_connections_limits_concurrent_service_and_the_rest_wait() {
    max_connections_limits_concurrent_service_and_the_rest_wait(Which::Embassy);
}

#[test]
fn executor_max_connections_limits_concurrent_service_and_the_rest_wait() {
    max_connections_limits_concurrent_service_and_the_rest_wait(Which::Executor);
}

fn max_connections_limits_concurrent_service_and_the_rest_wait(which: Which) {
    let mut rig = Rig::start(
        which,
        Options {
            max_connections: 2,
            ..Options::default()
        },
    );
    rig.client(|addr| {
        // Two connections take the two permits (served: their echoes come back) ...
        let served: Vec<TcpStream> = (0..2)
            .map(|c| {
                let s = connect(addr);
                let msg = pattern(c, 64);
                assert!(echo(&s, &msg) == msg);
                s
            })
            .collect();
        // ... so the next ones are accepted and wait for a permit.
        let third = connect(addr);
        let fourth = connect(addr);
        (&third).write_all(b"waiting").unwrap();
        third
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut buf = [0u8; 7];
        let early = (&third).read(&mut buf);
        assert!(
            matches!(&early, Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut),
            "a third connection was served beyond max_connections: {early:?}"
        );
        third.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        drop(served);
        (&third)
            .read_exact(&mut buf)
            .expect("served once a permit is free");
        assert_eq!(&buf, b"waiting");
        let msg = pattern(4, 64);
        assert!(echo(&fourth, &msg) == msg);
    });
    let c = rig.stop().counts;
    assert_eq!(c.accepted, 4);
    assert_eq!(c.max_concurrent, 2);
}

#[test]
fn embassy_shutdown_closes_idle_finishes_started_messages_and_cuts_at_grace() {
    shutdown_closes_idle_finishes_started_messages_and_cuts_at_grace(Which::Embassy);
}

#[test]
fn executor_shutdown_closes_idle_finishes_started_messages_and_cuts_at_grace() {
    shutdown_closes_idle_finishes_started_messages_and_cuts_at_grace(Which::Executor);
}

fn shutdown_closes_idle_finishes_started_messages_and_cuts_at_grace(which: Which) {
    const MESSAGE: usize = 1000;
    let grace = Duration::from_millis(1500);
    let mut rig = Rig::start(
        which,
        Options {
            message_bytes: MESSAGE as u64,
            grace,
            ..Options::default()
        },
    );
    let (join, addr) = (rig.join_fn(), rig.addr);
    let (stopped_tx, stopped_rx) = mpsc::channel::<Instant>();
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let client = std::thread::spawn(move || {
        join();
        let msg = pattern(1, MESSAGE);
        let idle = connect(addr);
        assert!(echo(&idle, &msg) == msg);
        let finishing = connect(addr);
        let stuck = connect(addr);
        // Half a message each: the server has read (and echoed) it and is inside a message.
        for s in [&finishing, &stuck] {
            (&*s).write_all(&msg[..MESSAGE / 2]).unwrap();
            let mut half = vec![0u8; MESSAGE / 2];
            (&*s).read_exact(&mut half).unwrap();
            assert!(half == msg[..MESSAGE / 2]);
        }
        ready_tx.send(()).unwrap();
        let stopped = stopped_rx.recv().unwrap();
        // The idle connection is closed at once, cleanly.
        let (rest, end) = read_to_end(&idle);
        assert!(rest.is_empty() && end.is_ok(), "idle: {end:?}");
        let idle_closed_after = stopped.elapsed();
        // Within the grace period the started message may still be finished.
        std::thread::sleep(Duration::from_millis(300));
        (&finishing).write_all(&msg[MESSAGE / 2..]).unwrap();
        let (rest, end) = read_to_end(&finishing);
        assert!(
            rest == msg[MESSAGE / 2..],
            "the finished message came back whole"
        );
        assert!(
            end.is_ok(),
            "finishing: closed cleanly after its message, got {end:?}"
        );
        // The stuck one is closed when the grace period is over: embassy resets it; a kernel
        // socket with nothing left unread sends FIN.
        let (rest, end) = read_to_end(&stuck);
        let stuck_closed_after = stopped.elapsed();
        assert!(rest.is_empty());
        let closed = match which {
            Which::Embassy => end == Err(ErrorKind::ConnectionReset),
            Which::Executor => matches!(end, Ok(()) | Err(ErrorKind::ConnectionReset)),
        };
        assert!(closed, "stuck: closed at the deadline, got {end:?}");
        (idle_closed_after, stuck_closed_after)
    });
    ready_rx.recv().expect("client set up");
    stopped_tx.send(Instant::now()).unwrap();
    let exit = rig.stop();
    let (idle_after, stuck_after) = client.join().expect("client checks");
    assert!(
        idle_after < Duration::from_millis(500),
        "idle took {idle_after:?}"
    );
    assert!(
        stuck_after >= grace - Duration::from_millis(100),
        "cut before the deadline: {stuck_after:?}"
    );
    assert!(!exit.overran);
    assert!(exit.shutdown >= grace - Duration::from_millis(100));
    let c = exit.counts;
    assert_eq!((c.closed_clean, c.cut, c.accepted), (2, 1, 3), "{c:?}");
}

#[test]
fn embassy_a_reset_mid_message_ends_only_that_connection() {
    a_reset_mid_message_ends_only_that_connection(Which::Embassy);
}

#[test]
fn executor_a_reset_mid_message_ends_only_that_connection() {
    a_reset_mid_message_ends_only_that_connection(Which::Executor);
}

fn a_reset_mid_message_ends_only_that_connection(which: Which) {
    let mut rig = Rig::start(
        which,
        Options {
            message_bytes: 512,
            ..Options::default()
        },
    );
    rig.client(|addr| {
        let steady = connect(addr);
        let doomed = connect(addr);
        let msg = pattern(2, 512);
        assert!(echo(&steady, &msg) == msg);
        (&doomed).write_all(&msg[..200]).unwrap();
        let mut part = [0u8; 200];
        (&doomed).read_exact(&mut part).unwrap();
        // SO_LINGER 0: close sends RST instead of FIN.
        socket2::SockRef::from(&doomed)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(doomed);
        for round in 0..20 {
            let msg = pattern(round, 512);
            assert!(echo(&steady, &msg) == msg, "round {round} after the reset");
        }
        // The reset slot listens again.
        let later = connect(addr);
        assert!(echo(&later, &msg) == msg);
        hang_up(steady);
        hang_up(later);
    });
    let c: ServeReport = rig.stop().counts;
    assert_eq!(c.io_errors, 1, "{c:?}");
    assert_eq!(c.peer_closed, 2, "{c:?}");
    assert_eq!(c.accepted, 3);
}

/// The whole runner path: a namespace per run, serve and loadgen children inside it, an ok row,
/// and nothing left behind; embassy-executor beside it on loopback.
#[test]
fn run_writes_ok_rows_and_removes_its_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("emb.toml");
    std::fs::write(
        &scenario,
        "name = \"emb\"\nruntimes = [\"embassy\", \"embassy-executor\"]\n[load]\nconnections = 20\npayload_bytes = 2000\n\
         warmup = \"200ms\"\nduration = \"1s\"\n[shutdown]\ngrace = \"1s\"\n",
    )
    .unwrap();
    let child = std::process::Command::new(support::bin())
        .arg("run")
        .arg(&scenario)
        .arg("--out")
        .arg(dir.path().join("out"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "runbench run failed:\n{log}");
    let summary =
        std::fs::read_to_string(dir.path().join("out/emb/latest/summary.csv")).expect("summary");
    let mut rows = csv::Reader::from_reader(summary.as_bytes());
    let headers = rows.headers().unwrap().clone();
    let rows: Vec<csv::StringRecord> = rows.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 2);
    let runtime_col = headers.iter().position(|h| h == "runtime").unwrap();
    for runtime in ["embassy", "embassy-executor"] {
        // The order of runtimes is shuffled per trial.
        let row = rows
            .iter()
            .find(|r| &r[runtime_col] == runtime)
            .expect("a row per runtime");
        let field = |name: &str| &row[headers.iter().position(|h| h == name).unwrap()];
        assert_eq!(field("status"), "ok", "{runtime}: {}", field("error"));
        assert_eq!(field("mismatched_bytes"), "0");
        assert_eq!(field("server_accepted"), "20");
    }
    let leftovers: Vec<String> = std::fs::read_dir("/run/netns")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter(|n| n.starts_with(&format!("runbench-{pid}-")))
                .collect()
        })
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "namespaces left: {leftovers:?}");
}

/// Without iproute2 the embassy row fails with the reason and the other runtimes still run.
#[test]
fn without_ip_the_embassy_row_fails_and_tokio_still_runs() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("noip.toml");
    std::fs::write(
        &scenario,
        "name = \"noip\"\nruntimes = [\"embassy\", \"tokio\"]\n[load]\nconnections = 4\n\
         payload_bytes = 64\nwarmup = \"0s\"\nduration = \"300ms\"\n[shutdown]\ngrace = \"1s\"\n",
    )
    .unwrap();
    let empty = dir.path().join("empty-path");
    std::fs::create_dir(&empty).unwrap();
    let out = std::process::Command::new(support::bin())
        .arg("run")
        .arg(&scenario)
        .arg("--out")
        .arg(dir.path().join("out"))
        .env("PATH", &empty)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "some runtime failed, others ran"
    );
    let summary = std::fs::read_to_string(dir.path().join("out/noip/latest/summary.csv")).unwrap();
    let mut rows = csv::Reader::from_reader(summary.as_bytes());
    let headers = rows.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = rows.records().map(Result::unwrap).collect();
    let embassy = rows
        .iter()
        .find(|r| &r[col("runtime")] == "embassy")
        .unwrap();
    let tokio = rows.iter().find(|r| &r[col("runtime")] == "tokio").unwrap();
    assert_eq!(&embassy[col("status")], "failed");
    assert!(
        embassy[col("error")].contains("iproute2"),
        "{}",
        &embassy[col("error")]
    );
    assert_eq!(&tokio[col("status")], "ok", "{}", &tokio[col("error")]);
}

/// The workload parts embassy (its own TCP stack, over the TAP) declares: one sized answer per
/// complete request, and the seeded `cpu` draws (busy time exactly the sum of connection 0's
/// draws); then fan-out tasks and hop relays from its job pool. `blocking`, which it lacks, is
/// checked off in its header, with the host's skip reason; `embassy-executor` runs every case
/// on loopback in tests/workload_parts.rs.
#[test]
fn embassy_serves_its_workload_parts_and_declares_no_blocking() {
    use runbench_plugin_abi::{Dist, Fanout, Rng, WORKLOAD_ALL, WORKLOAD_BLOCKING, WORKLOAD_HTTP1};
    let has = runbench::plugin::load(&Which::Embassy.plugin())
        .expect("loading the embassy plugin")
        .workloads();
    assert_eq!(
        has,
        (WORKLOAD_ALL & !WORKLOAD_BLOCKING) | WORKLOAD_HTTP1,
        "embassy's header: {has:#b}"
    );
    let blocking = Workload {
        blocking: Duration::from_micros(100),
        ..Workload::echo(64)
    };
    assert_eq!(
        blocking.unsupported(has).as_deref(),
        Some("the plugin does not serve the workload's blocking per request")
    );

    let cpu = Dist::Exp {
        mean: Duration::from_micros(300),
    };
    let w = Workload {
        request_bytes: Some(64),
        response_bytes: Some(1000),
        cpu,
        seed: 5,
        ..Workload::default()
    };
    let mut rig = Rig::start(
        Which::Embassy,
        Options {
            workload: Some(w),
            ..Options::default()
        },
    );
    let want: Vec<u8> = (0..1000).map(Workload::response_byte).collect();
    rig.client(|addr| {
        let mut s = connect(addr);
        // Two requests and part of a third in one write, then the rest of the third.
        s.write_all(&[1u8; 2 * 64 + 10]).unwrap();
        let mut got = vec![0u8; 2000];
        s.read_exact(&mut got).expect("two answers");
        assert!(got[..1000] == want[..] && got[1000..] == want[..]);
        s.write_all(&[1u8; 64 - 10]).unwrap();
        let mut got = vec![0u8; 1000];
        s.read_exact(&mut got).expect("the split request's answer");
        assert!(got == want);
        hang_up(s);
    });
    let c = rig.stop().counts;
    let mut draws = Rng::new(5, 0);
    let spun: u64 = (0..3).map(|_| cpu.draw(&mut draws).as_nanos() as u64).sum();
    assert_eq!(
        (c.requests, c.bytes_echoed, c.spun_ns),
        (3, 3000, spun),
        "{c:?}"
    );

    // Four tasks of 20 ms per request, then two hops, on a second server.
    let w = Workload {
        fanout: Some(Fanout {
            tasks: 4,
            cpu: Duration::ZERO,
            sleep: Duration::from_millis(20),
        }),
        hops: 2,
        ..Workload::echo(64)
    };
    let mut rig = Rig::start(
        Which::Embassy,
        Options {
            workload: Some(w),
            ..Options::default()
        },
    );
    rig.client(|addr| {
        let s = connect(addr);
        for round in 0..3 {
            let msg = pattern(round, 64);
            assert!(echo(&s, &msg) == msg, "answer {round} differs");
        }
        hang_up(s);
    });
    let c = rig.stop().counts;
    assert_eq!(
        (
            c.requests,
            c.tasks_spawned,
            c.tasks_joined,
            c.timers,
            c.timers_early
        ),
        (3, 12, 12, 12, 0),
        "{c:?}"
    );
    assert_eq!((c.fanouts_checked, c.fanouts_overlapped), (3, 3), "{c:?}");
    assert_eq!(c.hop_messages, 3 * 2, "{c:?}");
}

/// embassy-executor spawns fan-out tasks into a static job pool (`JOB_POOL` of
/// plugins/embassy-executor/src/lib.rs): a fan-out wider than the pool runs what fits and drops
/// the rest unrun, and the counters show the shortfall (fewer timers fired than tasks spawned)
/// for the audit, rather than the request passing as done.
#[test]
fn executor_fanout_beyond_its_job_pool_shows_the_work_missing() {
    const JOB_POOL: u32 = 16_384;
    let tasks = JOB_POOL + 100;
    let w = Workload {
        fanout: Some(runbench_plugin_abi::Fanout {
            tasks,
            cpu: Duration::ZERO,
            sleep: Duration::from_millis(1),
        }),
        ..Workload::echo(64)
    };
    let mut rig = Rig::start(
        Which::Executor,
        Options {
            workload: Some(w),
            ..Options::default()
        },
    );
    rig.client(|addr| {
        let s = connect(addr);
        let msg = pattern(0, 64);
        assert!(echo(&s, &msg) == msg, "the fan-out request's echo differs");
        hang_up(s);
    });
    let c = rig.stop().counts;
    let tasks = u64::from(tasks);
    assert_eq!(
        (c.requests, c.tasks_spawned, c.tasks_joined),
        (1, tasks, tasks),
        "{c:?}"
    );
    assert_eq!(
        (c.timers, c.timers_early),
        (u64::from(JOB_POOL), 0),
        "{c:?}"
    );
}
