//! The start-up every thread-per-core plugin shares: one worker thread per listener, each pinned
//! to its CPU, ready only once every listener accepts, one `max_connections` semaphore for all.

use crate::{os, Config, HostHandle, Runtime, Server};
use std::sync::{mpsc, Arc};

/// A worker sends `Ok(())` once its listener accepts connections, or `Err(why)` if it cannot
/// start, at most once; a worker that drops it unsent is not ready, and says why by the error
/// it ends with.
pub type Bound = mpsc::Sender<Result<(), String>>;

/// One worker thread of a thread-per-core server, as [`serve_per_core`] hands it to the plugin:
/// the plugin builds its runtime and its listener on this thread and calls [`PerCore::serve`]
/// inside the runtime.
pub struct PerCore<R: Runtime> {
    /// The worker's number, from 0.
    pub index: usize,
    server: Server<R>,
    bound: Bound,
}

impl<R: Runtime> PerCore<R> {
    pub fn config(&self) -> &Config {
        self.server.config()
    }

    pub fn host(&self) -> &HostHandle {
        self.server.host()
    }

    /// Reports this worker's listener as accepting, then serves it until the stop signal
    /// ([`Server::serve`]) and waits for its connections.
    pub async fn serve(self, rt: R, listener: R::Listener) -> Result<(), String> {
        let _ = self.bound.send(Ok(()));
        drop(self.bound);
        self.server.serve(rt, listener).await;
        Ok(())
    }
}

/// The thread-per-core start-up: `config.threads` threads named `<name>-<i>`, each pinned to
/// [`Config::cpu_for_worker`], each calling `worker` with its [`PerCore`]; `host.ready()` once
/// every worker's listener accepts (see [`serve_on`] for a worker that fails first). The
/// `max_connections` semaphore is made once and shared by all workers.
pub fn serve_per_core<R, F>(
    config: &Config,
    host: &HostHandle,
    name: &str,
    worker: F,
) -> Result<(), String>
where
    R: Runtime,
    R::Semaphore: Send + Sync,
    F: Fn(PerCore<R>) -> Result<(), String> + Send + Sync + 'static,
{
    let server = Server::<R>::new(config, host);
    serve_on_threads(config, host, name, move |index, bound| {
        worker(server.per_core(index, bound))
    })
}

/// [`serve_per_core`] for a runtime that starts (and pins) its own threads (glommio's
/// executors): `start` launches a worker with its [`PerCore`], `join` waits for it.
pub fn start_per_core<R: Runtime, H>(
    config: &Config,
    host: &HostHandle,
    mut start: impl FnMut(PerCore<R>) -> Result<H, String>,
    join: impl Fn(usize, H) -> Result<(), String>,
) -> Result<(), String> {
    let server = Server::<R>::new(config, host);
    let start = |index, bound| start(server.per_core(index, bound));
    serve_on(host, config.threads, start, join)
}

impl<R: Runtime> Server<R> {
    fn per_core(&self, index: usize, bound: Bound) -> PerCore<R> {
        PerCore {
            index,
            server: self.clone(),
            bound,
        }
    }
}

/// Runs `config.threads` threads named `<name>-<i>`, each pinned to
/// [`Config::cpu_for_worker`] and then calling `worker(i, bound)`. Calls `host.ready()` when
/// every worker reported bound; otherwise forces the stop so the workers that did start wind
/// down, and reports why the others failed (a worker that fails before it is bound returns
/// why). Returns when every thread has ended.
pub fn serve_on_threads<F>(
    config: &Config,
    host: &HostHandle,
    name: &str,
    worker: F,
) -> Result<(), String>
where
    F: Fn(usize, Bound) -> Result<(), String> + Send + Sync + 'static,
{
    let cpus: Vec<Option<usize>> = (0..config.threads)
        .map(|i| config.cpu_for_worker(i))
        .collect();
    let worker = Arc::new(worker);
    serve_on(
        host,
        config.threads,
        |i, bound| {
            let (worker, cpu) = (worker.clone(), cpus[i]);
            let thread = format!("{name}-{i}");
            std::thread::Builder::new()
                .name(thread.clone())
                .spawn(move || {
                    if let Some(cpu) = cpu {
                        os::pin_current_thread(cpu)
                            .map_err(|e| format!("pinning {thread} to CPU {cpu}: {e}"))?;
                    }
                    worker(i, bound)
                })
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
    // A worker's own error (it ended before it was bound) is the reason; it comes first.
    let mut joined = Ok(());
    for (i, handle) in workers.into_iter().enumerate() {
        joined = joined.and(join(i, handle));
    }
    let result = joined.and(result);
    if ready < count && result.is_ok() {
        return Err(format!(
            "{} worker(s) ended before listening",
            count - ready
        ));
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Workload;
    use std::sync::atomic::Ordering::Relaxed;
    use std::time::Duration;

    fn config(threads: usize, cpus: Vec<usize>) -> Config {
        Config {
            threads,
            addr: "127.0.0.1:0".parse().unwrap(),
            cpus,
            max_connections: None,
            grace: Duration::ZERO,
            workload: Workload::echo(1),
        }
    }

    /// The CPUs the calling thread may run on.
    fn allowed_cpus() -> Vec<usize> {
        // SAFETY: sched_getaffinity of this thread into a zeroed, correctly sized set.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            assert_eq!(
                libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set),
                0
            );
            (0..libc::CPU_SETSIZE as usize)
                .filter(|&c| libc::CPU_ISSET(c, &set))
                .collect()
        }
    }

    #[test]
    fn a_worker_that_ends_unbound_without_an_error_fails_the_start_up() {
        let (host, readied) = crate::export::test_host();
        let result = serve_on(
            &host,
            2,
            |i, bound: Bound| {
                Ok(std::thread::spawn(move || {
                    if i == 0 {
                        let _ = bound.send(Ok(()));
                    }
                }))
            },
            |_, t| t.join().map_err(|_| "panicked".to_string()),
        );
        assert_eq!(
            result,
            Err("1 worker(s) ended before listening".to_string())
        );
        assert_eq!(readied.load(Relaxed), 0, "ready without every listener");
        assert!(
            host.stop().is_forced(),
            "the bound workers were not stopped"
        );
    }

    #[test]
    fn a_worker_error_is_reported_and_ready_never_comes() {
        let (host, readied) = crate::export::test_host();
        let result = serve_on_threads(&config(2, vec![]), &host, "t", |i, bound| {
            if i == 1 {
                return Err("no listener for worker 1".into());
            }
            let _ = bound.send(Ok(()));
            Ok(())
        });
        assert_eq!(result, Err("no listener for worker 1".to_string()));
        assert_eq!(readied.load(Relaxed), 0);
    }

    #[test]
    fn each_worker_runs_pinned_to_its_cpu_and_ready_comes_once_all_are_bound() {
        let cpu = *allowed_cpus()
            .first()
            .expect("this thread may run somewhere");
        let (host, readied) = crate::export::test_host();
        let result = serve_on_threads(&config(2, vec![cpu]), &host, "t", move |_, bound| {
            let cpus = allowed_cpus();
            let _ = bound.send(Ok(()));
            match cpus == [cpu] {
                true => Ok(()),
                false => Err(format!("worker runs on {cpus:?}, not [{cpu}]")),
            }
        });
        assert_eq!(result, Ok(()));
        assert_eq!(readied.load(Relaxed), 1);
    }
}
