//! Short notes on what a runtime's numbers mean, for reports to print beside its rows. The long
//! version of each lives in the plugin's crate docs.

/// What the `embassy` row measures (see plugins/embassy/src/lib.rs for the full note).
pub const EMBASSY_NOTE: &str = "\
embassy is measured as an embedded device would run it: the embassy executor on one thread \
driving embassy-net, a userspace TCP/IP stack (smoltcp), on a TAP device inside a network \
namespace of its own, with the kernel on the other end of the TAP playing the client's network. \
Every packet crosses the TAP (a read or write system call and a wake-up of the executor), and \
the stack runs on the same single thread as the echo tasks, so its numbers compare whole \
systems, not executors: kernel TCP over loopback (the other rows) against smoltcp over a \
virtual NIC. Each connection has 16 KiB receive and send windows (no window scaling), \
connections are served by a fixed pool of 256 listening sockets (smoltcp has no accept \
backlog: attempts beyond the pool are refused with a reset and counted as accept errors), and \
the scenario's server threads setting does not apply (always 1).";

/// What the `embassy-executor` row measures (see plugins/embassy-executor/src/lib.rs).
pub const EMBASSY_EXECUTOR_NOTE: &str = "\
embassy-executor is a control for the embassy row, not how embassy runs on a device: the same \
embassy executor on one thread, but on kernel sockets over loopback like the other rows, with \
async-io's reactor on a second thread waking the executor for every readiness event. The gap \
between embassy and embassy-executor is the userspace stack and the TAP device; the gap between \
embassy-executor and a one-thread tokio is mostly the executor and its cross-thread wake-ups. \
The scenario's server threads setting does not apply (always 1).";

/// What the `compio` row measures (see plugins/compio/src/lib.rs).
pub const COMPIO_NOTE: &str = "\
compio runs one pinned runtime per server thread on its fusion driver: io_uring when the kernel \
has every operation compio needs, otherwise polling (epoll), chosen when each runtime is built \
and logged by the server (a fallback as a warning, because the row then does not measure \
io_uring). io_uring is missing before Linux 5.6, with `kernel.io_uring_disabled` set, or under a \
seccomp profile that blocks it.";

/// What the `kimojio` row measures (see plugins/kimojio/src/lib.rs).
pub const KIMOJIO_NOTE: &str = "\
kimojio runs one pinned runtime per server thread on io_uring only (Linux 5.15+, no fallback: \
without io_uring the server fails saying so), built without its TLS feature. Its wakers are \
thread-local, so the stop signal and the server-wide max_connections semaphore reach it through \
an eventfd relay per runtime; the echo path does not use it.";

/// What the `std-threads` row measures (see plugins/std-threads/src/lib.rs).
pub const STD_THREADS_NOTE: &str = "\
std-threads is the blocking baseline: one std::net thread per connection (64 KiB stacks) plus \
the scenario's server threads as acceptors, so that setting does not bound its threads. Its \
connection count is bounded by kernel.threads-max, kernel.pid_max, RLIMIT_NPROC, the cgroup's \
pids.max, vm.max_map_count and memory: a point these limits cannot hold is skipped before it \
runs, naming them, and a connection whose thread still cannot start fails the row with the \
limits in force.";

/// The note for `runtime`, if its numbers need one.
pub fn runtime_note(runtime: &str) -> Option<&'static str> {
    match runtime {
        "embassy" => Some(EMBASSY_NOTE),
        "embassy-executor" => Some(EMBASSY_EXECUTOR_NOTE),
        "compio" => Some(COMPIO_NOTE),
        "kimojio" => Some(KIMOJIO_NOTE),
        "std-threads" => Some(STD_THREADS_NOTE),
        _ => None,
    }
}
