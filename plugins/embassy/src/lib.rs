//! runbench plugin for embassy, the embedded async runtime, run as a device would run it: the
//! embassy executor on one thread driving embassy-net, a userspace TCP/IP stack (smoltcp), on a
//! TAP device that plays the NIC.
//!
//! # Why a TAP device
//! embassy is `no_std` and single-threaded; its I/O comes from hardware interrupts and its TCP
//! from embassy-net, not from an operating system. On a Linux host the faithful equivalent of that
//! system is the whole stack over a TAP device (`embassy-net-tuntap`): the kernel sits on the
//! other end of the virtual cable as the client's network. The plugin declares
//! [`NEEDS_TAP`], and runbench creates a network namespace for the run with a TAP device named
//! [`TAP_DEVICE`]; the server and the load generators run inside it (see the runner's `netns`
//! module). The stack takes `config.addr` on a /[`TAP_PREFIX_LEN`] subnet.
//!
//! # What the numbers mean, and what they do not
//! - They measure a whole system, not an executor: a userspace TCP stack on one thread against
//!   the kernel's TCP over loopback in the other rows. Every packet crosses the TAP (one read or
//!   write system call, plus a wake-up of the executor through async-io's reactor thread), and
//!   the stack's own work (checksums, segmenting, timers) runs on the executor's thread, between
//!   the echo tasks.
//! - smoltcp walks its whole socket set for each incoming segment and on each poll, so the cost
//!   per packet grows with [`POOL_SIZE`], whether the sockets are busy or only listening.
//! - Each socket has [`SOCKET_RX_BYTES`] of receive buffer (the advertised window: 16 KiB needs
//!   no window scaling) and [`SOCKET_TX_BYTES`] of send buffer. 16 KiB matches the read buffer
//!   every plugin uses ([`ECHO_BUFFER_BYTES`]), so one read always fits the send buffer, and it
//!   keeps the pool's buffers near 8 MiB; a message larger than the window takes several round
//!   trips over the TAP, which the numbers for large payloads include. Nagle is off (the
//!   TCP_NODELAY of the other plugins); smoltcp's delayed ACK (10 ms) stays on, since each echo
//!   carries the ACK.
//! - There is no kernel socket for the server, so server CPU time is all user time plus the TAP
//!   system calls, and RSS includes the static socket and task pools.
//!
//! # Connections: a fixed pool of listening sockets
//! smoltcp has no accept backlog: a socket listens for one connection, serves it, and must be
//! put back to listening. So the plugin runs [`POOL_SIZE`] tasks from a static embassy task pool,
//! each owning one socket slot: listen, serve, close, listen again. At most [`POOL_SIZE`]
//! connections are served at once, and [`POOL_SIZE`] sockets must all listen before the plugin
//! reports ready. A connection attempt that finds every socket busy is refused by the stack with
//! a reset; the plugin sees that reset leave through the TAP (see the `tap` module), counts it in
//! the report's `accept_errors` and logs the first one, and the load generator counts the refused
//! connect on its side, so the row says how many connections were not established.
//! `max_connections` works as for the other plugins (a fair semaphore: accepted connections wait
//! for a permit); above [`POOL_SIZE`] the pool is the limit.
//!
//! # One thread, one serve per process
//! The scenario's server `threads` is ignored: the executor runs every task on the thread that
//! calls `serve` (async-io's reactor and embassy-time's alarm thread only wake it). The
//! executor, the task pools and the stack's resources are process-wide statics, as on a device,
//! so `serve` runs once per process; runbench's serve child hosts exactly one plugin once.
//!
//! # Stopping
//! embassy's `Executor::run` never returns; the plugin uses `Executor::run_until`, whose flag a
//! supervisor task raises once every pool task has ended. On the stop signal each idle socket
//! stops listening, a connection between messages sends FIN and closes (`closed_clean`), one
//! inside a message finishes it first, and at the grace deadline the rest are reset (`cut`).
//! A closing socket is dropped only after its FIN or RST has left the stack.
//!
//! # Workload parts
//! `cpu` and `sleep` (fixed or drawn from the seeded sequence) on the executor's thread and
//! embassy-time's timer, and sized answers (`response_bytes`), all through the ABI crate's
//! shared echo loop. Fan-out tasks and hop relays are spawned into a static pool of
//! [`jobs::JOB_POOL`] job tasks and the hops cross embassy-sync `Channel`s, as in the
//! `embassy-executor` plugin (the same code): a spawn that finds the pool full fails at once,
//! the job is dropped unrun, the refusals are logged at the end and the counters show the work
//! missing for the host's audit. Not `blocking`: embassy has no blocking pool (a device has no
//! other thread), so that bit is off and the host skips such rows with that reason.

//!
//! [`ECHO_BUFFER_BYTES`]: runbench_plugin_abi::ECHO_BUFFER_BYTES

mod conn;
mod http;
// The embassy-executor plugin's job pool and hop channel.
#[path = "../../embassy-executor/src/jobs.rs"]
mod jobs;
mod tap;

use embassy_executor::{Executor, Spawner};
use embassy_net::{Ipv4Cidr, Stack, StackResources, StaticConfigV4};
use embassy_net_tuntap::TunTapDevice;
use embassy_sync::blocking_mutex::raw::NoopRawMutex;
use embassy_sync::semaphore::FairSemaphore;
use embassy_sync::signal::Signal;
use runbench_plugin_abi::{
    export_plugin, Config, HostHandle, Job, Plugin, NEEDS_TAP, TAP_DEVICE, TAP_PREFIX_LEN,
    WORKLOAD_ALL, WORKLOAD_BLOCKING, WORKLOAD_HTTP1,
};
use static_cell::StaticCell;
use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Sockets (and tasks) in the pool: the most connections served at once. Larger pools cost
/// every packet (smoltcp scans all sockets) and 32 KiB of buffers per slot. Keep in step with
/// `EMBASSY_NOTE` in runner/src/notes.rs.
pub const POOL_SIZE: usize = 256;
/// Receive buffer per socket, which is also the TCP window it advertises.
pub const SOCKET_RX_BYTES: usize = 16 * 1024;
/// Send buffer per socket.
pub const SOCKET_TX_BYTES: usize = 16 * 1024;

struct Embassy;

impl Plugin for Embassy {
    const RUNTIME: &'static str = "embassy";
    const RUNTIME_VERSION: &'static str = env!("RUNTIME_VERSION");
    /// Every part but `blocking` (embassy has no blocking pool), and HTTP/1.1.
    const WORKLOADS: u32 = (WORKLOAD_ALL & !WORKLOAD_BLOCKING) | WORKLOAD_HTTP1;
    const HTTP_STACK: &'static str = concat!(
        "picoserve ",
        env!("PICOSERVE_VERSION"),
        " over embassy-net ",
        env!("EMBASSY_NET_VERSION"),
        " (smoltcp) on the TAP"
    );
    const NEEDS: u32 = NEEDS_TAP;
    const CONNECTION_LIMIT: u64 = POOL_SIZE as u64;

    fn serve(config: &Config, host: &HostHandle) -> Result<(), String> {
        serve(config, host)
    }
}

export_plugin!(Embassy);

/// What the tasks share. Everything runs on the executor's one thread, hence `Cell`s.
struct Shared {
    config: Config,
    host: HostHandle,
    port: u16,
    permits: Option<FairSemaphore<NoopRawMutex, POOL_SIZE>>,
    /// Pool tasks whose first socket is listening (or that stopped before it could).
    listening: Cell<usize>,
    /// Pool tasks still running.
    live: Cell<usize>,
    /// Raised by pool tasks when `listening` or `live` changes; awaited by the supervisor.
    changed: Signal<NoopRawMutex, ()>,
    refusals: tap::Refusals,
    /// Set by the supervisor when every pool task has ended; ends `run_until`.
    done: Cell<bool>,
    /// Jobs (fan-out tasks, hop relays) dropped unrun because the job pool was full.
    jobs_refused: Cell<u64>,
    failure: Cell<Option<String>>,
}

impl Shared {
    fn now_listening(&self) {
        self.listening.set(self.listening.get() + 1);
        self.changed.signal(());
    }

    fn task_ended(&self) {
        self.live.set(self.live.get() - 1);
        self.changed.signal(());
    }

    async fn until(&self, cond: impl Fn(&Shared) -> bool) {
        while !cond(self) {
            self.changed.wait().await;
        }
    }

    fn fail(&self, msg: String) {
        self.failure.set(Some(msg));
        self.done.set(true);
    }
}

static SERVED: AtomicBool = AtomicBool::new(false);
static EXECUTOR: StaticCell<Executor> = StaticCell::new();
static RESOURCES: StaticCell<StackResources<POOL_SIZE>> = StaticCell::new();

fn serve(config: &Config, host: &HostHandle) -> Result<(), String> {
    if SERVED.swap(true, Ordering::SeqCst) {
        return Err(
            "the embassy plugin serves once per process (its executor and socket \
                    pools are process-wide statics); start a new process"
                .into(),
        );
    }
    let SocketAddr::V4(addr) = config.addr else {
        return Err(format!(
            "listen address {} is not IPv4; this embassy-net build has IPv4 only",
            config.addr
        ));
    };
    if addr.port() == 0 {
        return Err("listen address needs a port: smoltcp cannot listen on port 0".into());
    }
    if config.threads != 1 {
        host.info(&format!(
            "server threads = {} ignored: the embassy executor runs on one thread",
            config.threads
        ));
    }
    // Attaching by name would create the device where none exists, outside any namespace
    // made for the run; only attach to the one the host prepared.
    if !device_exists(TAP_DEVICE) {
        return Err(format!(
            "no network device {TAP_DEVICE} in this network namespace: runbench creates it, in \
             a namespace of the run's own, for plugins that need a TAP (is this runbench older \
             than the plugin?)"
        ));
    }
    let device = TunTapDevice::new(TAP_DEVICE)
        .map_err(|e| format!("attaching to TAP device {TAP_DEVICE}: {e}"))?;
    let shared: &'static Shared = Box::leak(Box::new(Shared {
        config: config.clone(),
        host: host.clone(),
        port: addr.port(),
        permits: config.max_connections.map(FairSemaphore::new),
        listening: Cell::new(0),
        live: Cell::new(POOL_SIZE),
        changed: Signal::new(),
        refusals: tap::Refusals::new(host.clone(), POOL_SIZE),
        done: Cell::new(false),
        jobs_refused: Cell::new(0),
        failure: Cell::new(None),
    }));
    let net_config = embassy_net::Config::ipv4_static(StaticConfigV4 {
        address: Ipv4Cidr::new(*addr.ip(), TAP_PREFIX_LEN),
        gateway: None,
        dns_servers: Default::default(),
    });
    let (stack, runner) = embassy_net::new(
        tap::CountingTap::new(device, addr.port(), &shared.refusals),
        net_config,
        RESOURCES.init(StackResources::new()),
        random_seed(),
    );

    let executor = EXECUTOR.init(Executor::new());
    executor.run_until(
        |spawner| {
            let spawned = (|| {
                spawner.spawn(net_task(runner)?);
                for _ in 0..POOL_SIZE {
                    spawner.spawn(pool_task(stack, shared, spawner)?);
                }
                spawner.spawn(supervisor(stack, shared)?);
                Ok::<_, embassy_executor::SpawnError>(())
            })();
            if let Err(e) = spawned {
                shared.fail(format!("spawning the embassy tasks: {e:?}"));
            }
        },
        || shared.done.get(),
    );
    if let Some(msg) = shared.failure.take() {
        return Err(msg);
    }
    let refused = shared.refusals.count();
    if refused > 0 {
        host.warn(&format!(
            "{refused} connection attempt(s) refused while all {POOL_SIZE} sockets were busy"
        ));
    }
    let jobs_refused = shared.jobs_refused.get();
    if jobs_refused > 0 {
        host.warn(&format!(
            "{jobs_refused} fan-out task(s) or hop relay(s) found the job pool ({} tasks) full \
             and did not run; the counters show their work missing",
            jobs::JOB_POOL
        ));
    }
    Ok(())
}

/// Moves packets between the TAP device and the sockets; never ends (the executor is left,
/// not drained, when `serve` returns).
#[embassy_executor::task]
async fn net_task(mut runner: embassy_net::Runner<'static, tap::CountingTap>) -> ! {
    runner.run().await
}

// A path, not the bare name: the macro defines its own `POOL_SIZE` from this expression.
#[embassy_executor::task(pool_size = crate::POOL_SIZE)]
async fn pool_task(stack: Stack<'static>, shared: &'static Shared, spawner: Spawner) {
    conn::pool_slot(stack, shared, spawner).await;
    shared.task_ended();
}

// A path, not the bare name: the macro defines its own `POOL_SIZE` from this expression.
#[embassy_executor::task(pool_size = crate::jobs::JOB_POOL)]
async fn job_task(job: Job<conn::Ticks>, done: Rc<jobs::Done>) {
    job.run().await;
    done.finish();
}

/// Reports ready once the stack is configured and every pool socket listens, then ends the
/// executor's run once every pool task has ended.
#[embassy_executor::task]
async fn supervisor(stack: Stack<'static>, shared: &'static Shared) {
    stack.wait_config_up().await;
    shared.until(|s| s.listening.get() == POOL_SIZE).await;
    shared.host.ready();
    shared.until(|s| s.live.get() == 0).await;
    shared.done.set(true);
}

/// Whether the calling thread's network namespace has a device named `name`.
fn device_exists(name: &str) -> bool {
    let Ok(name) = std::ffi::CString::new(name) else {
        return false;
    };
    // SAFETY: a NUL-terminated name; the call only reads it.
    unsafe { libc::if_nametoindex(name.as_ptr()) != 0 }
}

/// smoltcp's seed for initial sequence numbers and local ports; need not be secret here.
fn random_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    nanos ^ (u64::from(std::process::id()) << 32)
}
