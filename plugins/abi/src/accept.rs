//! The accept loop of the contract, once for every plugin on an async runtime.

use crate::{race, Either, HostHandle, ACCEPT_BACKOFF};
use std::future::Future;
use std::io;
use std::time::Duration;

/// Accepts until the stop signal: each connection is counted and handed to `serve` (which
/// spawns its task, or waits for room first); a failed accept (EMFILE and friends) is counted,
/// warned about, and followed by [`ACCEPT_BACKOFF`] on the runtime's own `sleep`, so a full
/// process backs off instead of spinning. Returns when the stop signal comes; the caller then
/// closes the listener and waits for its connections.
pub async fn accept_until_stopped<T, Accept, AcceptFut, Serve, ServeFut, Sleep, SleepFut>(
    host: &HostHandle,
    mut accept: Accept,
    mut serve: Serve,
    sleep: Sleep,
) where
    Accept: FnMut() -> AcceptFut,
    AcceptFut: Future<Output = io::Result<T>>,
    Serve: FnMut(T) -> ServeFut,
    ServeFut: Future<Output = ()>,
    Sleep: Fn(Duration) -> SleepFut,
    SleepFut: Future<Output = ()>,
{
    let mut stopping = host.stop().stopping();
    loop {
        let accepted = match race(accept(), &mut stopping).await {
            Either::Left(r) => r,
            Either::Right(()) => return,
        };
        match accepted {
            Ok(connection) => {
                host.stats().accepted();
                serve(connection).await;
            }
            Err(e) => {
                host.stats().accept_error();
                host.warn(&format!("accept failed: {e}"));
                sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}
