//! Every part of a `[workload]` is done by each plugin that declares it, and its witnesses in the
//! server's counters say so: the sized answer's bytes, the seeded draws (the server's busy time
//! is exactly the sum of connection 0's draws; the requests take at least the sum of its sleep
//! draws, each on a timer that did not fire early), the fan-out's tasks spawned, joined and in
//! flight together, the blocking jobs on another thread, the hops' messages. Through the real
//! `runbench serve` child and std TCP clients on loopback; a failing test is named
//! `<runtime>::<case>`. A case whose part a plugin does not declare checks instead that its
//! header leaves exactly the expected bits off and that the host's skip reason names them
//! ([`serves`]), so no part is skipped in silence. Then fixtures that claim a part and cheat at
//! it ([`cheats`]): their counters show the cheat.

mod common;
mod support;

use common::*;
use runbench_plugin_abi::{
    Dist, Fanout, Rng as Draws, Workload, WORKLOAD_BLOCKING, WORKLOAD_FANOUT, WORKLOAD_HOPS,
};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

macro_rules! workload_parts {
    ($($module:ident => $runtime:literal, lacks $lacks:expr;)*) => {$(
        mod $module {
            use super::*;
            const RUNTIME: &str = $runtime;
            /// The parts this plugin's header must leave off (each such case then checks the
            /// header and the host's skip reason instead of running).
            const LACKS: u32 = $lacks;

            #[test]
            fn sized_answer_per_request() {
                cases::sized_answer_per_request(RUNTIME, LACKS);
            }
            #[test]
            fn drawn_cpu_follows_the_seed() {
                cases::drawn_cpu_follows_the_seed(RUNTIME, LACKS);
            }
            #[test]
            fn drawn_sleep_waits_each_draw_on_the_timer() {
                cases::drawn_sleep_waits_each_draw_on_the_timer(RUNTIME, LACKS);
            }
            #[test]
            fn fanout_spawns_joins_and_overlaps() {
                cases::fanout_spawns_joins_and_overlaps(RUNTIME, LACKS);
            }
            #[test]
            fn blocking_runs_off_the_connection_thread() {
                cases::blocking_runs_off_the_connection_thread(RUNTIME, LACKS);
            }
            #[test]
            fn hops_cross_tasks_and_back() {
                cases::hops_cross_tasks_and_back(RUNTIME, LACKS);
            }
        }
    )*};
}

const NO_TASKS: u32 = WORKLOAD_FANOUT | WORKLOAD_BLOCKING | WORKLOAD_HOPS;

// `embassy` (its own TCP stack on a TAP device) is covered in tests/embassy.rs, in a namespace.
workload_parts! {
    tokio => "tokio", lacks 0;
    tokio_per_core => "tokio-per-core", lacks 0;
    smol => "smol", lacks 0;
    async_std => "async-std", lacks 0;
    glommio => "glommio", lacks 0;
    monoio => "monoio", lacks 0;
    compio => "compio", lacks 0;
    kimojio => "kimojio", lacks WORKLOAD_BLOCKING;
    std_threads => "std-threads", lacks 0;
    epoll => "epoll", lacks NO_TASKS;
    embassy_executor => "embassy-executor", lacks WORKLOAD_BLOCKING;
}

/// Whether `runtime` serves `w`: true if its header declares every part `w` needs. Otherwise
/// the parts it lacks must be exactly those of `w` the test expects it to lack (`lacks`), and
/// the host's skip reason names them; a plugin that drops a part, or gains one its tests do not
/// run, fails here rather than being skipped in silence.
fn serves(runtime: &str, w: &Workload, lacks: u32) -> bool {
    let has = {
        let _g = support::load_lock();
        runbench::plugin::load(&support::runtime_plugin(runtime))
            .unwrap_or_else(|e| panic!("{runtime}: loading the plugin: {e}"))
            .workloads()
    };
    let missing = w.needs() & !has;
    assert_eq!(
        missing,
        w.needs() & lacks,
        "{runtime}: its header declares {has:#b}; the parts this case needs ({:#b}) that it \
         lacks differ from those its tests expect it to lack",
        w.needs()
    );
    if missing == 0 {
        return true;
    }
    let reason = w.unsupported(has).expect("a skip reason");
    assert!(
        reason.starts_with("the plugin does not serve the workload's"),
        "{runtime}: {reason}"
    );
    false
}

mod cases {
    use super::*;

    const REQUEST: u64 = 64;

    fn start(runtime: &str, workload: Workload) -> Server {
        Server::start(
            runtime,
            Options {
                threads: 2,
                cpus: vec![0, 1],
                workload: Some(workload),
                ..Options::default()
            },
        )
    }

    /// Sends `n` requests one at a time and reads each answer of `answer` bytes whole.
    fn requests(server: &Server, n: usize, answer: usize) -> Vec<Vec<u8>> {
        let mut c = connect(server.addr);
        let mut out = Vec::new();
        for i in 0..n {
            c.write_all(&vec![i as u8; REQUEST as usize])
                .expect("writing a request");
            let mut got = vec![0u8; answer];
            c.read_exact(&mut got).expect("reading an answer");
            out.push(got);
        }
        out
    }

    /// `response_bytes` of the shared pattern per complete request, one answer per request
    /// even when two arrive in one write and one is split over two.
    pub fn sized_answer_per_request(runtime: &str, lacks: u32) {
        let _serial = serial();
        let w = Workload {
            response_bytes: Some(1000),
            ..Workload::echo(REQUEST)
        };
        if !serves(runtime, &w, lacks) {
            return;
        }
        let server = start(runtime, w);
        let mut c = connect(server.addr);
        let want: Vec<u8> = (0..1000).map(Workload::response_byte).collect();
        c.write_all(&[1u8; 2 * REQUEST as usize + 10]).unwrap();
        let mut got = vec![0u8; 2000];
        c.read_exact(&mut got).expect("two answers");
        assert!(
            got[..1000] == want[..] && got[1000..] == want[..],
            "{runtime}"
        );
        c.write_all(&[1u8; REQUEST as usize - 10]).unwrap();
        let mut got = vec![0u8; 1000];
        c.read_exact(&mut got).expect("the split request's answer");
        assert!(got == want, "{runtime}");
        drop(c);
        let c = server.finish().counts;
        assert_eq!((c.bytes_echoed, c.requests), (3000, 3), "{runtime}: {c:?}");
    }

    /// An exponential `cpu`: the server's busy time is exactly the sum of the first draws of
    /// connection 0's sequence under the seed (the same on every runtime).
    pub fn drawn_cpu_follows_the_seed(runtime: &str, lacks: u32) {
        let _serial = serial();
        let cpu = Dist::Exp {
            mean: Duration::from_micros(300),
        };
        let w = Workload {
            cpu,
            seed: 99,
            ..Workload::echo(REQUEST)
        };
        if !serves(runtime, &w, lacks) {
            return;
        }
        let server = start(runtime, w);
        requests(&server, 20, REQUEST as usize);
        let c = server.finish().counts;
        let mut draws = Draws::new(99, 0);
        let want: u64 = (0..20)
            .map(|_| cpu.draw(&mut draws).as_nanos() as u64)
            .sum();
        assert_eq!((c.requests, c.spun_ns), (20, want), "{runtime}: {c:?}");
    }

    /// An exponential `sleep`: every request's draw is awaited on the runtime's timer (one
    /// timer per request, none early), so the requests take at least the sum of connection 0's
    /// draws under the seed, and the server spins nothing.
    pub fn drawn_sleep_waits_each_draw_on_the_timer(runtime: &str, lacks: u32) {
        let _serial = serial();
        let sleep = Dist::Exp {
            mean: Duration::from_millis(3),
        };
        let w = Workload {
            sleep,
            seed: 7,
            ..Workload::echo(REQUEST)
        };
        if !serves(runtime, &w, lacks) {
            return;
        }
        let server = start(runtime, w);
        let started = Instant::now();
        requests(&server, 10, REQUEST as usize);
        let took = started.elapsed();
        let mut draws = Draws::new(7, 0);
        let want: Duration = (0..10).map(|_| sleep.draw(&mut draws)).sum();
        assert!(
            took >= want,
            "{runtime}: 10 requests in {took:?}, draws {want:?}"
        );
        let c = server.finish().counts;
        assert_eq!(
            (c.requests, c.timers, c.timers_early, c.spun_ns),
            (10, 10, 0, 0),
            "{runtime}: {c:?}"
        );
    }

    /// Four tasks per request, each sleeping 30 ms: all spawned and joined, their timers fired
    /// (none early), two or more in flight at once in every request, and the request took at
    /// least one task's sleep.
    pub fn fanout_spawns_joins_and_overlaps(runtime: &str, lacks: u32) {
        let _serial = serial();
        let part = Fanout {
            tasks: 4,
            cpu: Duration::from_micros(200),
            sleep: Duration::from_millis(30),
        };
        let w = Workload {
            fanout: Some(part),
            ..Workload::echo(REQUEST)
        };
        if !serves(runtime, &w, lacks) {
            return;
        }
        let server = start(runtime, w);
        let started = Instant::now();
        requests(&server, 3, REQUEST as usize);
        let took = started.elapsed();
        assert!(took >= 3 * part.sleep, "{runtime}: 3 requests in {took:?}");
        let c = server.finish().counts;
        assert_eq!(
            (c.tasks_spawned, c.tasks_joined, c.timers, c.timers_early),
            (12, 12, 12, 0),
            "{runtime}: {c:?}"
        );
        assert_eq!(
            (c.fanouts_checked, c.fanouts_overlapped),
            (3, 3),
            "{runtime}: {c:?}"
        );
        assert_eq!(c.spun_ns, 12 * 200_000, "{runtime}: {c:?}");
        // What the host's audit expects per request is what was counted.
        let per = w.per_request();
        assert_eq!((c.tasks_spawned, c.timers), (3 * per.tasks, 3 * per.timers));
    }

    /// Each request's blocking job runs on another thread than the connection's.
    pub fn blocking_runs_off_the_connection_thread(runtime: &str, lacks: u32) {
        let _serial = serial();
        let w = Workload {
            blocking: Duration::from_millis(2),
            ..Workload::echo(REQUEST)
        };
        if !serves(runtime, &w, lacks) {
            return;
        }
        let server = start(runtime, w);
        requests(&server, 5, REQUEST as usize);
        let c = server.finish().counts;
        assert_eq!(
            (
                c.requests,
                c.blocking_jobs,
                c.blocking_off_thread,
                c.spun_ns
            ),
            (5, 5, 5, 10_000_000),
            "{runtime}: {c:?}"
        );
        assert_eq!(c.blocking_jobs, 5 * w.per_request().blocking_jobs);
    }

    /// Three hops: each request passes three relay tasks and comes back, answered whole.
    pub fn hops_cross_tasks_and_back(runtime: &str, lacks: u32) {
        let _serial = serial();
        let w = Workload {
            hops: 3,
            ..Workload::echo(REQUEST)
        };
        if !serves(runtime, &w, lacks) {
            return;
        }
        let server = start(runtime, w);
        let answers = requests(&server, 5, REQUEST as usize);
        assert!(answers
            .iter()
            .enumerate()
            .all(|(i, a)| a.iter().all(|&b| b == i as u8)));
        let c = server.finish().counts;
        assert_eq!((c.requests, c.hop_messages), (5, 15), "{runtime}: {c:?}");
        // What the host's audit expects per request is what the relays count.
        assert_eq!(c.hop_messages, 5 * w.per_request().hop_messages);
    }
}

/// Fixtures that claim a part and cheat at it, on the same shared request handling as the
/// shipped plugins: the witness counters show each cheat (the runner's audit reads them).
mod cheats {
    use super::*;

    const REQUEST: u64 = 64;

    /// Starts the test plugin `name`, sends `n` requests one at a time (echo answers) and
    /// returns the server's counters.
    fn run(name: &str, w: Workload, n: usize) -> runbench::protocol::ServeReport {
        let _serial = serial();
        let plugin =
            support::plugin_file(&format!("runbench_testplugin_{}", name.replace('-', "_")));
        let server = Server::start_plugin(
            name,
            plugin,
            Options {
                threads: 2,
                cpus: vec![0, 1],
                workload: Some(w),
                ..Options::default()
            },
        );
        let mut c = connect(server.addr);
        for i in 0..n {
            let request = vec![i as u8; REQUEST as usize];
            c.write_all(&request).expect("writing a request");
            let mut got = vec![0u8; REQUEST as usize];
            c.read_exact(&mut got).expect("reading an answer");
            assert!(got == request, "{name}: answer {i} is not the request");
        }
        drop(c);
        server.finish().counts
    }

    /// Spawning nothing: every task is "spawned" and "joined", but no two of a request's tasks
    /// were ever in flight at once.
    #[test]
    fn inline_fanout_never_overlaps() {
        let w = Workload {
            fanout: Some(Fanout {
                tasks: 4,
                cpu: Duration::ZERO,
                sleep: Duration::from_millis(5),
            }),
            ..Workload::echo(REQUEST)
        };
        let c = run("inline-fanout", w, 3);
        assert_eq!(
            (c.requests, c.tasks_spawned, c.tasks_joined),
            (3, 12, 12),
            "{c:?}"
        );
        assert_eq!((c.fanouts_checked, c.fanouts_overlapped), (3, 0), "{c:?}");
    }

    /// A timer that returns at once: every timer counted fired early.
    #[test]
    fn early_timer_fires_every_timer_early() {
        let w = Workload {
            sleep: Dist::Fixed(Duration::from_millis(20)),
            ..Workload::echo(REQUEST)
        };
        let c = run("early-timer", w, 3);
        assert_eq!((c.requests, c.timers, c.timers_early), (3, 3, 3), "{c:?}");
    }

    /// Blocking jobs on the connection's own thread: each ran, none off that thread.
    #[test]
    fn inline_blocking_never_leaves_the_connection_thread() {
        let w = Workload {
            blocking: Duration::from_millis(1),
            ..Workload::echo(REQUEST)
        };
        let c = run("inline-blocking", w, 3);
        assert_eq!(
            (c.requests, c.blocking_jobs, c.blocking_off_thread),
            (3, 3, 0),
            "{c:?}"
        );
    }

    /// Answers one byte short while counting them whole: the client receives fewer bytes than
    /// the server's `bytes_echoed` claims (the connection closes once the client has hung up,
    /// so the short answer is all there is).
    #[test]
    fn short_answer_counts_bytes_it_never_sent() {
        let _serial = serial();
        let w = Workload {
            response_bytes: Some(1000),
            ..Workload::echo(REQUEST)
        };
        let plugin = support::plugin_file("runbench_testplugin_short_answer");
        let server = Server::start_plugin(
            "short-answer",
            plugin,
            Options {
                threads: 2,
                cpus: vec![0, 1],
                workload: Some(w),
                ..Options::default()
            },
        );
        let mut c = connect(server.addr);
        c.write_all(&[1u8; REQUEST as usize]).unwrap();
        c.shutdown(std::net::Shutdown::Write).unwrap();
        let mut got = Vec::new();
        c.read_to_end(&mut got)
            .expect("the answer, then the server's close");
        let counts = server.finish().counts;
        assert_eq!(got.len(), 999);
        assert_eq!(
            (counts.requests, counts.bytes_echoed),
            (1, 1000),
            "{counts:?}"
        );
    }
}
