//! A runtime-independent stop signal: two one-way flags (`stopping`, then `forced` once the
//! grace period is over) that any executor can await, because waking goes through plain
//! `Waker`s rather than one runtime's primitives.

use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

#[derive(Default)]
struct Flag {
    set: AtomicBool,
    wakers: Mutex<(u64, HashMap<u64, Waker>)>,
}

impl Flag {
    fn raise(&self) {
        self.set.store(true, Ordering::SeqCst);
        let wakers = std::mem::take(&mut self.wakers.lock().unwrap().1);
        for waker in wakers.into_values() {
            waker.wake();
        }
    }
}

/// Cloneable handle to the server's stop signal.
#[derive(Clone, Default)]
pub struct StopToken {
    stopping: Arc<Flag>,
    forced: Arc<Flag>,
}

impl StopToken {
    pub fn new() -> Self {
        Self::default()
    }
    /// Stop accepting; finish the current message on each connection.
    pub fn is_stopping(&self) -> bool {
        self.stopping.set.load(Ordering::SeqCst)
    }
    /// The grace period is over: close everything.
    pub fn is_forced(&self) -> bool {
        self.forced.set.load(Ordering::SeqCst)
    }
    /// Resolves once the stop signal has come. Keep one per connection and await it by
    /// `&mut` in a loop: it registers its waker once, so the hot path takes no lock.
    pub fn stopping(&self) -> StopWait {
        StopWait::new(self.stopping.clone())
    }
    /// Resolves once the grace period after the stop signal is over.
    pub fn forced(&self) -> StopWait {
        StopWait::new(self.forced.clone())
    }
    pub fn raise_stopping(&self) {
        self.stopping.raise();
    }
    pub fn raise_forced(&self) {
        self.stopping.raise();
        self.forced.raise();
    }
}

/// Future of one flag; see [`StopToken::stopping`].
pub struct StopWait {
    flag: Arc<Flag>,
    key: Option<u64>,
    registered: Option<Waker>,
}

impl StopWait {
    fn new(flag: Arc<Flag>) -> Self {
        StopWait {
            flag,
            key: None,
            registered: None,
        }
    }
}

impl Future for StopWait {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.flag.set.load(Ordering::SeqCst) {
            return Poll::Ready(());
        }
        if self
            .registered
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            return Poll::Pending;
        }
        let flag = self.flag.clone();
        let mut guard = flag.wakers.lock().unwrap();
        // Re-check under the lock: `raise` sets the flag before it takes the wakers.
        if flag.set.load(Ordering::SeqCst) {
            return Poll::Ready(());
        }
        let (next, map) = &mut *guard;
        let key = *self.key.get_or_insert_with(|| {
            *next += 1;
            *next
        });
        map.insert(key, cx.waker().clone());
        self.registered = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for StopWait {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            self.flag.wakers.lock().unwrap().1.remove(&key);
        }
    }
}

/// Which of two raced futures finished first.
#[derive(Debug, PartialEq, Eq)]
pub enum Either<A, B> {
    Left(A),
    Right(B),
}

/// Polls `a` then `b` until one is ready; `a` wins a tie, so data already readable is served
/// before a stop is noticed.
pub async fn race<A: Future, B: Future>(a: A, b: B) -> Either<A::Output, B::Output> {
    let mut a = pin!(a);
    let mut b = pin!(b);
    poll_fn(|cx| {
        if let Poll::Ready(v) = a.as_mut().poll(cx) {
            return Poll::Ready(Either::Left(v));
        }
        if let Poll::Ready(v) = b.as_mut().poll(cx) {
            return Poll::Ready(Either::Right(v));
        }
        Poll::Pending
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    struct CountWake(AtomicUsize);
    impl Wake for CountWake {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn stopping_wakes_registered_waiter_once_and_forced_implies_stopping() {
        let token = StopToken::new();
        let counter = Arc::new(CountWake(AtomicUsize::new(0)));
        let waker = Waker::from(counter.clone());
        let mut cx = Context::from_waker(&waker);
        let mut wait = token.stopping();
        for _ in 0..3 {
            assert!(Pin::new(&mut wait).poll(&mut cx).is_pending());
        }
        assert_eq!(token.stopping.wakers.lock().unwrap().1.len(), 1);
        token.raise_forced();
        assert_eq!(counter.0.load(Ordering::SeqCst), 1);
        assert!(Pin::new(&mut wait).poll(&mut cx).is_ready());
        assert!(token.is_stopping() && token.is_forced());
    }

    #[test]
    fn dropped_waiter_unregisters() {
        let token = StopToken::new();
        let waker = Waker::from(Arc::new(CountWake(AtomicUsize::new(0))));
        let mut cx = Context::from_waker(&waker);
        let mut wait = token.forced();
        assert!(Pin::new(&mut wait).poll(&mut cx).is_pending());
        drop(wait);
        assert!(token.forced.wakers.lock().unwrap().1.is_empty());
    }
}
