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
    let (bound_tx, bound_rx) = mpsc::channel();
    let mut threads = Vec::with_capacity(count);
    for i in 0..count {
        let (worker, bound) = (worker.clone(), bound_tx.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("{name}-{i}"))
            .spawn(move || worker(i, bound));
        match spawned {
            Ok(handle) => threads.push(handle),
            Err(e) => {
                host.stop().raise_forced();
                return Err(format!("spawning {name} thread {i}: {e}"));
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
        host.stop().raise_forced();
    }
    for t in threads {
        match t.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => result = result.and(Err(e)),
            Err(_) => result = result.and(Err(format!("a {name} thread panicked"))),
        }
    }
    result
}
