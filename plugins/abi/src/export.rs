//! The plugin side of the boundary: turns a safe [`Plugin`] into the C entry point.

use crate::{
    Config, HostApi, Outcome, Plugin, RStr, ServeConfig, ServeReport, Status, StopToken, Workload,
};
use std::any::Any;
use std::ffi::c_void;
use std::mem::{offset_of, size_of};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Connection counters, shared by all of a plugin's threads and read live by the host (see
/// [`HostApi::publish_counters`]): `#[repr(C)]`, append-only like every struct of the ABI, and
/// `size` says how many bytes the plugin's version has.
#[repr(C)]
pub struct Stats {
    pub size: u64,
    accepted: AtomicU64,
    peer_closed: AtomicU64,
    closed_clean: AtomicU64,
    cut: AtomicU64,
    io_errors: AtomicU64,
    accept_errors: AtomicU64,
    bytes_echoed: AtomicU64,
    serving: AtomicU64,
    max_concurrent: AtomicU64,
    pub(crate) requests: AtomicU64,
    pub(crate) spun_ns: AtomicU64,
    pub(crate) timers: AtomicU64,
    pub(crate) timers_early: AtomicU64,
    pub(crate) tasks_spawned: AtomicU64,
    pub(crate) tasks_joined: AtomicU64,
    pub(crate) fanouts_overlapped: AtomicU64,
    pub(crate) fanouts_checked: AtomicU64,
    pub(crate) blocking_jobs: AtomicU64,
    pub(crate) blocking_off_thread: AtomicU64,
    pub(crate) hop_messages: AtomicU64,
    /// Appended: how long the timers slept past their time, summed.
    pub(crate) timers_late_ns: AtomicU64,
}

/// Held while a connection is being served (after any `max_connections` permit).
pub struct Serving<'a>(&'a Stats);

impl Drop for Serving<'_> {
    fn drop(&mut self) {
        self.0.serving.fetch_sub(1, Relaxed);
    }
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            size: size_of::<Stats>() as u64,
            accepted: AtomicU64::new(0),
            peer_closed: AtomicU64::new(0),
            closed_clean: AtomicU64::new(0),
            cut: AtomicU64::new(0),
            io_errors: AtomicU64::new(0),
            accept_errors: AtomicU64::new(0),
            bytes_echoed: AtomicU64::new(0),
            serving: AtomicU64::new(0),
            max_concurrent: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            spun_ns: AtomicU64::new(0),
            timers: AtomicU64::new(0),
            timers_early: AtomicU64::new(0),
            tasks_spawned: AtomicU64::new(0),
            tasks_joined: AtomicU64::new(0),
            fanouts_overlapped: AtomicU64::new(0),
            fanouts_checked: AtomicU64::new(0),
            blocking_jobs: AtomicU64::new(0),
            blocking_off_thread: AtomicU64::new(0),
            hop_messages: AtomicU64::new(0),
            timers_late_ns: AtomicU64::new(0),
        }
    }
}

impl Stats {
    /// Counts an accepted connection; returns its ordinal on this server (0 first), which
    /// seeds the connection's draws ([`crate::Rng`]).
    pub fn accepted(&self) -> u64 {
        self.accepted.fetch_add(1, Relaxed)
    }
    /// Counts `timers` sleeps armed at `started` for `asked` as fired now, and as early when
    /// `asked` has not passed (a timer that did not wait: the witness of the workload's sleeps).
    /// `timers` sleeps of `asked` (one timer's wait, or one wait that stood for several) that
    /// began at `started` have ended: counted, and how early or late they came back.
    pub(crate) fn timers_fired(&self, timers: u64, started: Instant, asked: Duration) {
        Stats::add(&self.timers, timers);
        let took = started.elapsed();
        if took < asked {
            Stats::add(&self.timers_early, timers);
        } else {
            let late = u64::try_from((took - asked).as_nanos()).unwrap_or(u64::MAX);
            Stats::add(&self.timers_late_ns, late.saturating_mul(timers));
        }
    }
    /// Adds `n` to one of the workload's witness counters.
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }
    pub fn accept_error(&self) {
        self.accept_errors.fetch_add(1, Relaxed);
    }
    pub fn echoed(&self, bytes: usize) {
        self.bytes_echoed.fetch_add(bytes as u64, Relaxed);
    }
    /// Marks a connection as served until the guard drops; tracks the peak.
    pub fn serving(&self) -> Serving<'_> {
        let now = self.serving.fetch_add(1, Relaxed) + 1;
        self.max_concurrent.fetch_max(now, Relaxed);
        Serving(self)
    }
    pub fn finished(&self, outcome: Outcome) {
        let counter = match outcome {
            Outcome::PeerClosed => &self.peer_closed,
            Outcome::Clean => &self.closed_clean,
            Outcome::Cut => &self.cut,
            Outcome::IoError => &self.io_errors,
        };
        counter.fetch_add(1, Relaxed);
    }
    /// The counters as they are now (the host's live reading; the final one is `serve`'s report).
    pub fn report(&self) -> ServeReport {
        ServeReport {
            size: size_of::<ServeReport>() as u32,
            accepted: self.accepted.load(Relaxed),
            peer_closed: self.peer_closed.load(Relaxed),
            closed_clean: self.closed_clean.load(Relaxed),
            cut: self.cut.load(Relaxed),
            io_errors: self.io_errors.load(Relaxed),
            accept_errors: self.accept_errors.load(Relaxed),
            bytes_echoed: self.bytes_echoed.load(Relaxed),
            max_concurrent: self.max_concurrent.load(Relaxed),
            requests: self.requests.load(Relaxed),
            spun_ns: self.spun_ns.load(Relaxed),
            timers: self.timers.load(Relaxed),
            timers_early: self.timers_early.load(Relaxed),
            tasks_spawned: self.tasks_spawned.load(Relaxed),
            tasks_joined: self.tasks_joined.load(Relaxed),
            fanouts_overlapped: self.fanouts_overlapped.load(Relaxed),
            fanouts_checked: self.fanouts_checked.load(Relaxed),
            blocking_jobs: self.blocking_jobs.load(Relaxed),
            blocking_off_thread: self.blocking_off_thread.load(Relaxed),
            hop_messages: self.hop_messages.load(Relaxed),
            timers_late_ns: self.timers_late_ns.load(Relaxed),
        }
    }
}

struct Inner {
    api: HostApi,
    /// Leaked: the host may read it after `serve` returned (see [`HostApi::publish_counters`]).
    stats: &'static Stats,
    stop: StopToken,
}

// SAFETY: the host documents its callbacks as callable from any thread, and `ctx` stays valid
// for the whole `serve` call.
unsafe impl Send for Inner {}
unsafe impl Sync for Inner {}

/// What a running plugin gets from the host: logging, readiness, the stop signal, counters.
/// Cheap to clone into tasks.
#[derive(Clone)]
pub struct HostHandle(Arc<Inner>);

impl HostHandle {
    pub fn log(&self, level: u32, msg: &str) {
        (self.0.api.log)(self.0.api.ctx, level, RStr::new(msg));
    }
    pub fn info(&self, msg: &str) {
        self.log(3, msg);
    }
    pub fn warn(&self, msg: &str) {
        self.log(2, msg);
    }
    /// Tell the host every listener is accepting. Call once.
    pub fn ready(&self) {
        (self.0.api.ready)(self.0.api.ctx);
    }
    pub fn stop(&self) -> &StopToken {
        &self.0.stop
    }
    pub fn stats(&self) -> &Stats {
        self.0.stats
    }
}

/// A host for the crate's own tests: logs nowhere, and `ready` adds one to the `AtomicU64` the
/// handle's context points at (leaked, like the counters).
#[cfg(test)]
pub(crate) fn test_host() -> (HostHandle, &'static AtomicU64) {
    extern "C" fn log(_: *mut c_void, _: u32, _: RStr) {}
    extern "C" fn ready(ctx: *mut c_void) {
        // SAFETY: the context is the leaked counter below.
        unsafe { &*(ctx as *const AtomicU64) }.fetch_add(1, Relaxed);
    }
    extern "C" fn wait_stop(_: *mut c_void) {}
    extern "C" fn fail(_: *mut c_void, _: RStr) {}
    let readied: &'static AtomicU64 = Box::leak(Box::new(AtomicU64::new(0)));
    let api = HostApi {
        size: size_of::<HostApi>() as u32,
        ctx: readied as *const AtomicU64 as *mut c_void,
        log,
        ready,
        wait_stop,
        fail,
        publish_counters: None,
    };
    let handle = HostHandle(Arc::new(Inner {
        api,
        stats: Box::leak(Box::default()),
        stop: StopToken::new(),
    }));
    (handle, readied)
}

fn read_config(raw: &ServeConfig) -> Result<Config, String> {
    let size = raw.size as usize;
    // Fields added after v1 must be read only when `end_of(field) <= size` (append-only rule).
    if size < offset_of!(ServeConfig, sleep_ns) + size_of::<u64>() {
        return Err(format!(
            "host passed a ServeConfig of {size} bytes; this plugin needs v1"
        ));
    }
    // SAFETY: the host keeps these alive for the call.
    let addr_text = unsafe { raw.addr.as_str() };
    let addr = addr_text
        .parse()
        .map_err(|e| format!("bad listen address {addr_text:?}: {e}"))?;
    let cpus = if raw.cpus_len == 0 {
        Vec::new()
    } else {
        // SAFETY: as above.
        unsafe { std::slice::from_raw_parts(raw.cpus, raw.cpus_len) }
            .iter()
            .map(|&c| c as usize)
            .collect()
    };
    Ok(Config {
        threads: raw.threads.max(1) as usize,
        addr,
        cpus,
        max_connections: (raw.max_connections > 0).then_some(raw.max_connections as usize),
        grace: Duration::from_millis(raw.grace_ms),
        workload: Workload::read_from(raw),
    })
}

fn panic_text(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_string()
    }
}

/// Waits for the host's stop signal on a helper thread, raises `stopping`, and `forced` once
/// the grace period is over. Detached: the process ends soon after `serve` returns.
fn spawn_stop_watcher(api: &HostApi, stop: StopToken, grace: Duration) {
    let wait_stop = api.wait_stop;
    let ctx = api.ctx as usize;
    std::thread::Builder::new()
        .name("runbench-stop".into())
        .spawn(move || {
            wait_stop(ctx as *mut c_void);
            stop.raise_stopping();
            std::thread::sleep(grace);
            stop.raise_forced();
        })
        .expect("spawning the stop-watcher thread");
}

/// The host's `HostApi`, as much of it as the host has: fields appended after its version stay
/// `None` (the appended fields are all nullable).
///
/// # Safety
/// `host` must point at a `HostApi` of at least `(*host).size` bytes.
unsafe fn read_host_api(host: *const HostApi) -> Result<HostApi, String> {
    // SAFETY: upheld by the caller.
    let size = unsafe { (*host).size } as usize;
    if size < HostApi::V1_SIZE {
        return Err(format!(
            "host passed a HostApi of {size} bytes; this plugin needs at least {}",
            HostApi::V1_SIZE
        ));
    }
    let mut api = std::mem::MaybeUninit::<HostApi>::zeroed();
    // SAFETY: copies the bytes the host has (the v1 fields at least, so every non-nullable field
    // is written); the rest stays zero, which is `None` for the nullable appended fields.
    unsafe {
        std::ptr::copy_nonoverlapping(
            host.cast::<u8>(),
            api.as_mut_ptr().cast::<u8>(),
            size.min(size_of::<HostApi>()),
        );
        Ok(api.assume_init())
    }
}

/// The body of every plugin's `serve` symbol (used by [`crate::export_plugin!`]).
///
/// # Safety
/// `config`, `host` and `report` must be valid for the duration of the call.
pub unsafe fn serve_entry<P: Plugin>(
    config: *const ServeConfig,
    host: *const HostApi,
    report: *mut ServeReport,
) -> Status {
    // SAFETY: upheld by the caller.
    let raw_config = unsafe { &*config };
    // SAFETY: as above.
    let api = match unsafe { read_host_api(host) } {
        Ok(api) => api,
        // Without a readable HostApi there is no `fail` to call.
        Err(_) => return Status::Failed,
    };
    let fail = |msg: &str| (api.fail)(api.ctx, RStr::new(msg));
    let result = catch_unwind(AssertUnwindSafe(|| {
        let config = read_config(raw_config)?;
        let stats: &'static Stats = Box::leak(Box::default());
        if let Some(publish) = api.publish_counters {
            publish(api.ctx, stats);
        }
        let handle = HostHandle(Arc::new(Inner {
            // SAFETY: HostApi is plain data (pointers); the copy is never dropped specially.
            api: unsafe { std::ptr::read(&api) },
            stats,
            stop: StopToken::new(),
        }));
        spawn_stop_watcher(&api, handle.stop().clone(), config.grace);
        P::serve(&config, &handle)?;
        Ok::<_, String>(handle.stats().report())
    }));
    match result {
        Ok(Ok(r)) => {
            // SAFETY: upheld by the caller; write no more than the host's struct holds.
            unsafe {
                let host_size = (*report).size as usize;
                let n = host_size.min(size_of::<ServeReport>());
                std::ptr::copy_nonoverlapping(
                    (&r as *const ServeReport).cast::<u8>(),
                    report.cast::<u8>(),
                    n,
                );
                (*report).size = n as u32;
            }
            Status::Ok
        }
        Ok(Err(msg)) => {
            fail(&msg);
            Status::Failed
        }
        Err(payload) => {
            fail(&format!("panicked: {}", panic_text(&*payload)));
            Status::Panicked
        }
    }
}

/// For plugin build scripts: the version of `krate` in the workspace's Cargo.lock, so results
/// name the exact runtime version that was built. Emits `rerun-if-changed` for the lock file.
/// When the lock holds several versions of `krate`, this is the first; use
/// [`locked_version_matching`] to pick the one a plugin depends on.
pub fn locked_version(krate: &str) -> String {
    locked_version_matching(krate, "")
}

/// Like [`locked_version`], for a crate locked at several versions (mio 0.8 for monoio, mio 1
/// for others): the first locked version that starts with `prefix`, e.g. `"1."`.
pub fn locked_version_matching(krate: &str, prefix: &str) -> String {
    let (lock, text) = read_lock();
    find_locked(&lock, &text, krate, prefix)
}

/// For plugin build scripts: sets each `(VAR, crate)`'s environment variable for the crate's
/// compilation to the crate's version in Cargo.lock (`env!("VAR")`), reading the lock once:
/// the runtime's version (`RUNTIME_VERSION`) and those of what serves its HTTP
/// (`Plugin::HTTP_STACK`).
pub fn export_locked_versions(vars: &[(&str, &str)]) {
    let (lock, text) = read_lock();
    for (var, krate) in vars {
        let v = find_locked(&lock, &text, krate, "");
        println!("cargo:rustc-env={var}={v}");
    }
}

/// The workspace's Cargo.lock (its path and text), with `rerun-if-changed` emitted for it.
fn read_lock() -> (std::path::PathBuf, String) {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("run from a build script");
    let lock = std::path::Path::new(&dir)
        .ancestors()
        .map(|d| d.join("Cargo.lock"))
        .find(|p| p.exists())
        .expect("Cargo.lock above the plugin");
    println!("cargo:rerun-if-changed={}", lock.display());
    let text = std::fs::read_to_string(&lock).expect("reading Cargo.lock");
    (lock, text)
}

/// The first version of `krate` in the lock's `text` that starts with `prefix`.
fn find_locked(lock: &std::path::Path, text: &str, krate: &str, prefix: &str) -> String {
    let wanted = format!("name = \"{krate}\"");
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim() == wanted {
            if let Some(v) = lines
                .next()
                .and_then(|l| l.trim().strip_prefix("version = "))
                .map(|v| v.trim_matches('"'))
                .filter(|v| v.starts_with(prefix))
            {
                return v.to_string();
            }
        }
    }
    panic!(
        "{krate} (version {prefix}*) not found in {}",
        lock.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A timer's wait is counted with how late it came back (or that it came back early):
    /// a sleep of 1 ms begun 3 ms ago is at least 2 ms late; one of 10 ms is early, not late.
    #[test]
    fn timers_are_counted_with_their_lateness() {
        let stats = Stats::default();
        let started = Instant::now() - Duration::from_millis(3);
        stats.timers_fired(2, started, Duration::from_millis(1));
        let r = stats.report();
        assert_eq!((r.timers, r.timers_early), (2, 0));
        assert!(r.timers_late_ns >= 2 * 2_000_000, "{r:?}");
        let before = r.timers_late_ns;
        stats.timers_fired(1, started, Duration::from_millis(10));
        let r = stats.report();
        assert_eq!((r.timers, r.timers_early, r.timers_late_ns), (3, 1, before));
    }
}
