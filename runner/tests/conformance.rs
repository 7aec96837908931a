//! Every plugin behaves the same from outside: the same cases run against each through the real
//! `runbench serve` child and std TCP clients on loopback. A failing test is named
//! `<runtime>::<case>`. Plugins must be built first (`cargo build --workspace`); a missing one
//! fails its tests.

mod common;
mod support;

use common::*;
use std::io::Write;
use std::time::Duration;

/// The plugins under test, with the threads each runtime adds beyond its `threads` workers
/// (documented in each plugin's crate docs), as a function of `threads`.
macro_rules! conformance {
    ($($module:ident => $runtime:literal, helper_threads: $helpers:expr;)*) => {$(
        mod $module {
            use super::cases;
            const RUNTIME: &str = $runtime;
            fn helper_threads(threads: usize) -> usize {
                let helpers: fn(usize) -> usize = $helpers;
                helpers(threads)
            }

            #[test]
            fn echo_integrity_1b() {
                cases::echo_integrity(RUNTIME, 1);
            }
            #[test]
            fn echo_integrity_64b() {
                cases::echo_integrity(RUNTIME, 64);
            }
            #[test]
            fn echo_integrity_1kib() {
                cases::echo_integrity(RUNTIME, 1024);
            }
            #[test]
            fn echo_integrity_64kib() {
                cases::echo_integrity(RUNTIME, 64 * 1024);
            }
            #[test]
            fn echo_integrity_1mib() {
                cases::echo_integrity(RUNTIME, 1024 * 1024);
            }
            #[test]
            fn concurrent_1() {
                cases::concurrent(RUNTIME, 1);
            }
            #[test]
            fn concurrent_100() {
                cases::concurrent(RUNTIME, 100);
            }
            #[test]
            fn concurrent_2000() {
                cases::concurrent(RUNTIME, 2000);
            }
            #[test]
            fn threads_honoured() {
                cases::threads_honoured(RUNTIME, helper_threads(2));
            }
            #[test]
            fn max_connections_honoured() {
                cases::max_connections_honoured(RUNTIME);
            }
            #[test]
            fn max_connections_fifo() {
                cases::max_connections_fifo(RUNTIME);
            }
            #[test]
            fn shutdown_drains_gracefully() {
                cases::shutdown_drains_gracefully(RUNTIME);
            }
            #[test]
            fn shutdown_cuts_silent_connection_at_grace() {
                cases::shutdown_cuts_silent_connection_at_grace(RUNTIME);
            }
            #[test]
            fn work_and_sleep_delay_each_message() {
                cases::work_and_sleep_delay_each_message(RUNTIME);
            }
            #[test]
            fn reset_mid_message_does_not_disturb_others() {
                cases::reset_mid_message_does_not_disturb_others(RUNTIME);
            }
            #[test]
            fn live_counters_match_what_was_echoed() {
                cases::live_counters_match_what_was_echoed(RUNTIME);
            }
        }
    )*};
}

conformance! {
    tokio => "tokio", helper_threads: |_| 0;
    tokio_per_core => "tokio-per-core", helper_threads: |_| 0;
    // async-io's reactor thread ("async-io").
    async_std => "async-std", helper_threads: |_| 1;
    // async-io's reactor thread ("async-io").
    smol => "smol", helper_threads: |_| 1;
    // One blocking-pool thread per executor.
    glommio => "glommio", helper_threads: |threads| threads;
    monoio => "monoio", helper_threads: |_| 0;
    epoll => "epoll", helper_threads: |_| 0;
    compio => "compio", helper_threads: |_| 0;
    kimojio => "kimojio", helper_threads: |_| 0;
    // One thread per open connection (`threads_honoured` holds 8 open) and the stop thread.
    std_threads => "std-threads", helper_threads: |_| 8 + 1;
}

mod cases {
    use super::*;
    use runbench::protocol::WindowEdge;

    const MESSAGE: usize = 64;

    fn message(seed: usize) -> Vec<u8> {
        Rng::new(seed as u64 + 1).bytes(MESSAGE)
    }

    /// One connection; each payload written in random pieces and read back at random split
    /// points; small payloads several times over the same connection.
    pub fn echo_integrity(runtime: &str, size: usize) {
        let _serial = serial();
        let server = Server::start(runtime, Options::default());
        let mut rng = Rng::new(0x5eed ^ size as u64);
        let stream = connect(server.addr);
        let rounds = if size <= 1024 { 3 } else { 1 };
        for _ in 0..rounds {
            let payload = rng.bytes(size);
            echo_split(&stream, &payload, &mut rng);
        }
        drop(stream);
        let c = server.finish().counts;
        assert_eq!(c.accepted, 1, "{c:?}");
        assert_eq!(c.bytes_echoed, (rounds * size) as u64, "{c:?}");
        assert_eq!(c.peer_closed + c.closed_clean, 1, "{c:?}");
        assert_eq!((c.cut, c.io_errors), (0, 0), "{c:?}");
    }

    /// `n` connections open at once, three messages each, every byte checked.
    pub fn concurrent(runtime: &str, n: usize) {
        let _serial = serial();
        let server = Server::start(runtime, Options::default());
        let mut conns = connect_many(server.addr, n);
        const ROUNDS: usize = 3;
        for round in 0..ROUNDS {
            for (i, c) in conns.iter_mut().enumerate() {
                c.write_all(&message(i * ROUNDS + round))
                    .expect("writing a message");
            }
            for (i, c) in conns.iter_mut().enumerate() {
                expect_echo(c, &message(i * ROUNDS + round));
            }
        }
        drop(conns);
        let c = server.finish().counts;
        assert_eq!(c.accepted, n as u64, "{c:?}");
        assert_eq!(c.max_concurrent, n as u64, "all {n} served at once: {c:?}");
        assert_eq!(c.bytes_echoed, (n * ROUNDS * MESSAGE) as u64, "{c:?}");
        assert_eq!(c.peer_closed + c.closed_clean, n as u64, "{c:?}");
        assert_eq!((c.cut, c.io_errors), (0, 0), "{c:?}");
    }

    /// With `threads = 2` the process has the host's threads, two workers, and the runtime's
    /// documented helpers, nothing more.
    pub fn threads_honoured(runtime: &str, helpers: usize) {
        let _serial = serial();
        let threads = 2;
        let server = Server::start(
            runtime,
            Options {
                threads,
                cpus: vec![0, 1],
                ..Options::default()
            },
        );
        // Serve a few connections first: some runtimes start helper threads on first use.
        let mut conns = connect_many(server.addr, 8);
        for (i, c) in conns.iter_mut().enumerate() {
            echo_once(c, &message(i));
        }
        std::thread::sleep(Duration::from_millis(100));
        let names = server.thread_names();
        let expected = HOST_THREADS + threads + helpers;
        assert_eq!(
            names.len(),
            expected,
            "{runtime} with threads=2 runs {} threads, expected {HOST_THREADS} host + {threads} \
             workers + {helpers} documented helpers: {names:?}",
            names.len()
        );
        drop(conns);
        server.finish();
    }

    /// `max_connections = 2` with five clients: two are served, three are accepted and wait
    /// (no echo), and each close lets exactly one more in, until all five were served.
    pub fn max_connections_honoured(runtime: &str) {
        let _serial = serial();
        let server = Server::start(
            runtime,
            Options {
                max_connections: 2,
                ..Options::default()
            },
        );
        let mut waiting: Vec<(usize, std::net::TcpStream)> = Vec::new();
        for i in 0..5 {
            let mut c = connect(server.addr);
            c.write_all(&message(i)).expect("writing a message");
            waiting.push((i, c));
        }
        let mut served = Vec::new();
        let newly = admit(&mut waiting, 2);
        assert_eq!(newly.len(), 2, "{runtime}: exactly 2 of 5 served at first");
        served.extend(newly);
        while !waiting.is_empty() {
            // Free one slot: exactly one waiting client must get its echo.
            drop(served.remove(0));
            let newly = admit(&mut waiting, 1);
            assert_eq!(
                newly.len(),
                1,
                "{runtime}: one closed connection must let exactly one waiting client in"
            );
            served.extend(newly);
        }
        drop(served);
        let c = server.finish().counts;
        assert_eq!(c.accepted, 5, "{c:?}");
        assert_eq!(
            c.max_concurrent, 2,
            "never more than 2 served at once: {c:?}"
        );
        assert_eq!(c.bytes_echoed, 5 * MESSAGE as u64, "{c:?}");
        assert_eq!(c.peer_closed + c.closed_clean, 5, "{c:?}");
        assert_eq!((c.cut, c.io_errors), (0, 0), "{c:?}");
    }

    /// `max_connections = 1`, one worker (so one listener accepts in connect order): while A is
    /// served, B, C and D connect in that order and each sends a message. Each close must let
    /// in the client that has waited longest: B's echo comes first, then (B closed) C's, then
    /// D's, and while one is served the later ones get nothing.
    pub fn max_connections_fifo(runtime: &str) {
        let _serial = serial();
        let server = Server::start(
            runtime,
            Options {
                threads: 1,
                max_connections: 1,
                ..Options::default()
            },
        );
        let mut served = connect(server.addr);
        echo_once(&mut served, &message(0));
        let names = ["A", "B", "C", "D"];
        let mut waiting: Vec<(usize, std::net::TcpStream)> = Vec::new();
        for i in 1..names.len() {
            let mut c = connect(server.addr);
            c.write_all(&message(i)).expect("writing a message");
            waiting.push((i, c));
            // Let the server accept (and queue) it before the next one connects.
            std::thread::sleep(Duration::from_millis(50));
        }
        for (i, c) in waiting.iter_mut() {
            assert!(
                !echo_arrives_within(c, &message(*i), Duration::from_millis(50)),
                "{runtime}: {} was served while A held the only slot",
                names[*i]
            );
        }
        let mut holder = 0;
        while !waiting.is_empty() {
            // Free the slot: the longest-waiting client, and no other, must be served.
            drop(served);
            let (next, mut c) = waiting.remove(0);
            let deadline = std::time::Instant::now() + IO_TIMEOUT;
            loop {
                if echo_arrives_within(&mut c, &message(next), Duration::from_millis(20)) {
                    break;
                }
                for (i, other) in waiting.iter_mut() {
                    assert!(
                        !echo_arrives_within(other, &message(*i), Duration::from_millis(5)),
                        "{runtime}: after {} closed, {} was served before {}, which connected \
                         earlier (the wait for a slot must be first-come first-served)",
                        names[holder],
                        names[*i],
                        names[next]
                    );
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "{runtime}: {} not served within {IO_TIMEOUT:?} after {} closed",
                    names[next],
                    names[holder]
                );
            }
            for (i, other) in waiting.iter_mut() {
                assert!(
                    !echo_arrives_within(other, &message(*i), Duration::from_millis(50)),
                    "{runtime}: {} was served while {} held the only slot",
                    names[*i],
                    names[next]
                );
            }
            served = c;
            holder = next;
        }
        drop(served);
        let c = server.finish().counts;
        assert_eq!(c.accepted, 4, "{c:?}");
        assert_eq!(
            c.max_concurrent, 1,
            "never more than 1 served at once: {c:?}"
        );
        assert_eq!(c.bytes_echoed, 4 * MESSAGE as u64, "{c:?}");
        assert_eq!(c.peer_closed + c.closed_clean, 4, "{c:?}");
        assert_eq!((c.cut, c.io_errors), (0, 0), "{c:?}");
    }

    /// Waits for `expected` of the waiting clients to get their echo, then checks that no
    /// other one does for a while; returns the newly served.
    fn admit(
        waiting: &mut Vec<(usize, std::net::TcpStream)>,
        expected: usize,
    ) -> Vec<std::net::TcpStream> {
        let mut served = Vec::new();
        let deadline = std::time::Instant::now() + IO_TIMEOUT;
        while served.len() < expected && std::time::Instant::now() < deadline {
            let mut i = 0;
            while i < waiting.len() {
                let (seed, c) = &mut waiting[i];
                if echo_arrives_within(c, &message(*seed), Duration::from_millis(20)) {
                    served.push(waiting.remove(i).1);
                } else {
                    i += 1;
                }
            }
        }
        // The slots are taken now: nobody else may be served.
        let quiet = Duration::from_millis(300) / waiting.len().max(1) as u32;
        for (seed, c) in waiting.iter_mut() {
            assert!(
                !echo_arrives_within(c, &message(*seed), quiet),
                "a client beyond max_connections was served"
            );
        }
        served
    }

    /// After `stop`: an idle connection is closed at once, a new connect is refused or
    /// closed, a connection inside a message gets its whole echo and then a close, and the
    /// process exits without waiting for the grace period.
    pub fn shutdown_drains_gracefully(runtime: &str) {
        let _serial = serial();
        let grace = Duration::from_secs(3);
        let mut server = Server::start(
            runtime,
            Options {
                message_bytes: MESSAGE as u64,
                grace,
                ..Options::default()
            },
        );
        let mut idle = connect(server.addr);
        echo_once(&mut idle, &message(0));
        let mut inside = connect(server.addr);
        echo_once(&mut inside, &message(1));
        let second = message(2);
        inside
            .write_all(&second[..MESSAGE / 2])
            .expect("writing half a message");
        std::thread::sleep(Duration::from_millis(50));

        server.stop();
        let took = expect_closed(&mut idle, grace);
        assert!(
            took < Duration::from_secs(1),
            "{runtime}: idle connection closed {took:?} after stop; expected at once"
        );
        connect_refused_or_closed(server.addr).expect("connecting after stop");
        inside
            .write_all(&second[MESSAGE / 2..])
            .expect("writing the rest of the message");
        expect_echo(&mut inside, &second);
        expect_closed(&mut inside, grace);

        let f = server.finish();
        assert!(
            f.exit_after < grace,
            "{runtime}: exited {:?} after stop although no connection was left",
            f.exit_after
        );
        let c = f.counts;
        assert!((2..=3).contains(&c.accepted), "{c:?}");
        assert_eq!(
            c.closed_clean, c.accepted,
            "every connection closed clean: {c:?}"
        );
        assert_eq!(c.bytes_echoed, 3 * MESSAGE as u64, "{c:?}");
        assert_eq!((c.cut, c.io_errors, c.peer_closed), (0, 0, 0), "{c:?}");
    }

    /// A connection that goes silent inside a message is closed by force at the grace deadline
    /// (not before), counted as cut, and the process exits within grace + margin.
    pub fn shutdown_cuts_silent_connection_at_grace(runtime: &str) {
        let _serial = serial();
        let grace = Duration::from_millis(500);
        let mut server = Server::start(
            runtime,
            Options {
                message_bytes: MESSAGE as u64,
                grace,
                ..Options::default()
            },
        );
        let mut silent = connect(server.addr);
        let half = &message(0)[..MESSAGE / 2];
        echo_once(&mut silent, half);
        server.stop();
        let took = expect_closed(&mut silent, grace + EXIT_MARGIN);
        assert!(
            took + Duration::from_millis(50) >= grace,
            "{runtime}: a connection inside a message was closed {took:?} after stop, before \
             the {grace:?} grace period was over"
        );
        let c = server.finish().counts;
        assert_eq!((c.accepted, c.cut), (1, 1), "{c:?}");
        assert_eq!(c.bytes_echoed, (MESSAGE / 2) as u64, "{c:?}");
        assert_eq!(
            (c.closed_clean, c.peer_closed, c.io_errors),
            (0, 0, 0),
            "{c:?}"
        );
    }

    /// Per-message `work` (spin) and `sleep` (timer) both come before the echo, once per
    /// message: two messages in one write take at least twice their sum.
    pub fn work_and_sleep_delay_each_message(runtime: &str) {
        let _serial = serial();
        let (work, sleep) = (Duration::from_millis(10), Duration::from_millis(20));
        let server = Server::start(
            runtime,
            Options {
                message_bytes: MESSAGE as u64,
                work,
                sleep,
                ..Options::default()
            },
        );
        let mut c = connect(server.addr);
        let two: Vec<u8> = [message(0), message(1)].concat();
        let start = std::time::Instant::now();
        echo_once(&mut c, &two);
        let took = start.elapsed();
        assert!(
            took >= 2 * (work + sleep),
            "{runtime}: two messages echoed after {took:?}, expected at least {:?}",
            2 * (work + sleep)
        );
        drop(c);
        let c = server.finish().counts;
        assert_eq!(c.bytes_echoed, 2 * MESSAGE as u64, "{c:?}");
    }

    /// A client that resets its connection inside a message leaves another connection's
    /// echoes untouched.
    pub fn reset_mid_message_does_not_disturb_others(runtime: &str) {
        let _serial = serial();
        let server = Server::start(
            runtime,
            Options {
                message_bytes: MESSAGE as u64,
                ..Options::default()
            },
        );
        let mut good = connect(server.addr);
        echo_once(&mut good, &message(0));
        let mut bad = connect(server.addr);
        echo_once(&mut bad, &message(1));
        bad.write_all(&message(2)[..MESSAGE / 2])
            .expect("writing half a message");
        std::thread::sleep(Duration::from_millis(20));
        reset(bad);
        std::thread::sleep(Duration::from_millis(50));
        for i in 3..6 {
            echo_once(&mut good, &message(i));
        }
        let c = server.finish().counts;
        assert_eq!(c.accepted, 2, "{c:?}");
        assert_eq!(
            c.closed_clean, 1,
            "the good connection closes at stop: {c:?}"
        );
        assert_eq!(
            c.io_errors + c.peer_closed,
            1,
            "the reset connection ends by error (or EOF): {c:?}"
        );
        assert_eq!(c.cut, 0, "{c:?}");
    }

    /// The counters the runner reads live (at the measured window's edges) are the plugin's
    /// own and up to date: what was echoed before, between and after the two instants.
    pub fn live_counters_match_what_was_echoed(runtime: &str) {
        let _serial = serial();
        let mut server = Server::start(runtime, Options::default());
        let stream = connect(server.addr);
        let mut rng = Rng::new(7);
        let echo = |n: usize, rng: &mut Rng| {
            for _ in 0..n {
                echo_split(&stream, &rng.bytes(MESSAGE), rng);
            }
        };
        echo(10, &mut rng);
        let now = runbench::os::sys::monotonic_ns();
        let (start, end) = (now + 100_000_000, now + 700_000_000);
        server.watch_window(start, end);
        let until = |ns: u64| std::time::Instant::now() + Duration::from_nanos(ns - now);
        std::thread::sleep(
            until(start + 100_000_000).saturating_duration_since(std::time::Instant::now()),
        );
        echo(20, &mut rng);
        std::thread::sleep(
            until(end + 100_000_000).saturating_duration_since(std::time::Instant::now()),
        );
        echo(5, &mut rng);
        drop(stream);
        let f = server.finish();
        let at = |edge: WindowEdge| {
            f.snapshots
                .iter()
                .find(|(e, _)| *e == edge)
                .unwrap_or_else(|| panic!("no {edge:?} snapshot: {:?}", f.snapshots))
                .1
                .counts
                .expect("the plugin publishes live counters")
        };
        let (a, b) = (at(WindowEdge::Start), at(WindowEdge::End));
        assert_eq!(
            (a.accepted, a.bytes_echoed),
            (1, 10 * MESSAGE as u64),
            "{a:?}"
        );
        assert_eq!(
            b.bytes_echoed - a.bytes_echoed,
            20 * MESSAGE as u64,
            "{b:?}"
        );
        assert_eq!(f.counts.bytes_echoed, 35 * MESSAGE as u64);
    }
}
