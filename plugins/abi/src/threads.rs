//! The start-up every thread-per-core plugin shares: one worker thread per listener, ready only
//! once every listener accepts.

use crate::HostHandle;
use std::sync::{mpsc, Arc};

/// A worker sends `Ok(())` once its listener accepts connections, or `Err(why)` if it cannot
/// start, exactly once.
pub type Bound = mpsc::Sender<Result<(), String>>;

/// Runs `count` threads named `<name>-<i>`, each calling `worker(i, bound)`. Calls `host.ready()`
/// when every worker reported bound; otherwise forces the stop so the workers that did start wind
/// down, and reports why the others failed. Returns when every thread has ended.
pub fn serve_on_threads<F>(
    host: &HostHandle,
    count: usize,
    name: &str,
    worker: F,
) -> Result<(), String>
where
    F: Fn(usize, Bound) -> Result<(), String> + Send + Sync + 'static,
{
    let worker = Arc::new(worker);
    serve_on(
        host,
        count,
        |i, bound| {
            let worker = worker.clone();
            std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || worker(i, bound))
                .map_err(|e| format!("spawning {name} thread {i}: {e}"))
        },
        |_, handle| match handle.join() {
            Ok(result) => result,
            Err(_) => Err(format!("a {name} thread panicked")),
        },
    )
}

/// [`serve_on_threads`] for a runtime that starts its own threads (glommio's executors): `start`
/// launches worker `i` with its [`Bound`], `join` waits for it and says how it ended.
pub fn serve_on<H>(
    host: &HostHandle,
    count: usize,
    mut start: impl FnMut(usize, Bound) -> Result<H, String>,
    join: impl Fn(usize, H) -> Result<(), String>,
) -> Result<(), String> {
    let (bound_tx, bound_rx) = mpsc::channel();
    let mut workers = Vec::with_capacity(count);
    for i in 0..count {
        match start(i, bound_tx.clone()) {
            Ok(handle) => workers.push(handle),
            Err(e) => {
                host.stop().raise_forced();
                return Err(e);
            }
        }
    }
    drop(bound_tx);
    let mut result = Ok(());
    let mut ready = 0;
    for bound in bound_rx.iter() {
        match bound {
            Ok(()) => ready += 1,
            Err(e) => result = result.and(Err(e)),
        }
    }
    if ready == count {
        host.ready();
    } else {
        // Let the workers that did start wind down before reporting the failure.
        host.stop().raise_forced();
    }
    for (i, handle) in workers.into_iter().enumerate() {
        result = result.and(join(i, handle));
    }
    result
}
