//! The worker's timers: [`sleep`], [`sleep_until`] and [`timeout`] for its own tasks, kept in a
//! per-thread ordered map that the executor fires at the start of each turn ([`fire`]) and
//! whose earliest deadline bounds its park in the ring ([`next_deadline`]).
//!
//! Invariants:
//! - A registered timer is one entry, keyed by its deadline and a number of its own, holding
//!   the waker of its last poll; its future's drop removes it, so the map never holds more
//!   than the timers alive (a timeout that did not fire leaves nothing behind).
//! - A timer is due when the executor's turn clock has reached its deadline; [`fire`] wakes
//!   every due timer of the turn, and a due timer's poll reads the same clock, so a woken timer
//!   always completes.
//! - Off the executor (no turn running) timers read the clock itself and are never fired: only
//!   the worker's threads use them.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

type Key = (Instant, u64);

thread_local! {
    /// The timers waiting on this thread, earliest first.
    static TIMERS: RefCell<BTreeMap<Key, Waker>> = const { RefCell::new(BTreeMap::new()) };
    /// The number the next timer registered takes.
    static NEXT: Cell<u64> = const { Cell::new(0) };
    /// When the executor's current (or last) turn started.
    static TURN_STARTED: Cell<Option<Instant>> = const { Cell::new(None) };
    /// The same, as [`clock_ns`] read it (0 before the first turn: never a reading, the clock
    /// counts from boot).
    static TURN_NS: Cell<u64> = const { Cell::new(0) };
}

/// Sets the turn clock: the executor's, as each turn starts.
pub(crate) fn start_turn(now: Instant) {
    TURN_STARTED.set(Some(now));
    TURN_NS.set(clock_ns());
}

/// The monotonic clock (`Instant`'s, `CLOCK_MONOTONIC`) in nanoseconds: read at the cost of
/// `Instant::now`, and the time between two readings is one subtraction, where between two
/// `Instant`s it is a call that checks and normalises (for the latency of every batch of
/// answers).
#[inline]
pub(crate) fn clock_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    // Both fields are non-negative (the clock counts from boot).
    (t.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(t.tv_nsec as u64)
}

/// [`turn_started`] as [`clock_ns`] read it (`clock_ns()` off the executor).
#[inline]
pub(crate) fn turn_ns() -> u64 {
    match TURN_NS.get() {
        0 => clock_ns(),
        ns => ns,
    }
}

/// When this thread's executor began its current turn (the present, off the executor): a
/// clock for deadlines counted in seconds, behind the present by at most the tasks polled so
/// far in the turn, read once a turn instead of once an event.
pub(crate) fn turn_started() -> Instant {
    TURN_STARTED.get().unwrap_or_else(Instant::now)
}

/// Wakes every timer due at `now`; called by the executor once a turn.
pub(crate) fn fire(now: Instant) {
    loop {
        let due = TIMERS.with_borrow_mut(|timers| match timers.first_entry() {
            Some(first) if first.key().0 <= now => Some(first.remove()),
            _ => None,
        });
        match due {
            Some(waker) => waker.wake(),
            None => return,
        }
    }
}

/// The earliest deadline of this thread's timers, if any.
pub(crate) fn next_deadline() -> Option<Instant> {
    TIMERS.with_borrow(|timers| timers.first_key_value().map(|(key, _)| key.0))
}

/// Completes once `duration` has passed.
pub(crate) fn sleep(duration: Duration) -> Sleep {
    sleep_until(turn_started() + duration)
}

/// Completes at `deadline` (at once if it has passed).
pub(crate) fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        key: None,
        _thread: PhantomData,
    }
}

/// A timer of this thread's executor.
#[must_use = "a timer does nothing unless awaited"]
pub(crate) struct Sleep {
    deadline: Instant,
    /// Its entry in the map, once registered.
    key: Option<Key>,
    /// Registered on one thread's map: never sent to another.
    _thread: PhantomData<Rc<()>>,
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if turn_started() >= self.deadline {
            self.unregister();
            return Poll::Ready(());
        }
        let key = match self.key {
            Some(key) => key,
            None => {
                let key = (self.deadline, NEXT.get());
                NEXT.set(key.1.wrapping_add(1));
                self.key = Some(key);
                key
            }
        };
        TIMERS.with_borrow_mut(|timers| match timers.get_mut(&key) {
            Some(waker) => waker.clone_from(cx.waker()),
            None => {
                timers.insert(key, cx.waker().clone());
            }
        });
        Poll::Pending
    }
}

impl Sleep {
    fn unregister(&mut self) {
        if let Some(key) = self.key.take() {
            // `try_with`: a timer dropped as the thread ends finds its map gone.
            let _ = TIMERS.try_with(|timers| timers.borrow_mut().remove(&key));
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.unregister();
    }
}

/// [`timeout`]'s error: the time ran out first.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Elapsed;

/// Runs `future` for at most `duration`.
pub(crate) async fn timeout<F: Future>(duration: Duration, future: F) -> Result<F::Output, Elapsed> {
    let mut future = std::pin::pin!(future);
    let mut sleep = sleep(duration);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = future.as_mut().poll(cx) {
            return Poll::Ready(Ok(out));
        }
        Pin::new(&mut sleep).poll(cx).map(|()| Err(Elapsed))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    /// Counts its wakes.
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn counter() -> (Arc<Count>, Waker) {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        (count.clone(), Waker::from(count))
    }

    fn poll(sleep: &mut Sleep, waker: &Waker) -> Poll<()> {
        Pin::new(sleep).poll(&mut Context::from_waker(waker))
    }

    fn timers() -> usize {
        TIMERS.with_borrow(BTreeMap::len)
    }

    #[test]
    fn timers_fire_in_deadline_order_and_never_early() {
        let t0 = Instant::now();
        start_turn(t0);
        let ms = Duration::from_millis;
        let mut sleeps: Vec<(Sleep, Arc<Count>, Waker)> = [30, 10, 20]
            .into_iter()
            .map(|d| {
                let (count, waker) = counter();
                (sleep(ms(d)), count, waker)
            })
            .collect();
        for (s, _, w) in &mut sleeps {
            assert!(poll(s, w).is_pending());
        }
        assert_eq!(timers(), 3);
        assert_eq!(next_deadline(), Some(t0 + ms(10)));
        let woken = |sleeps: &[(Sleep, Arc<Count>, Waker)]| -> Vec<usize> {
            sleeps.iter().map(|(_, c, _)| c.0.load(Ordering::Relaxed)).collect()
        };
        start_turn(t0 + ms(9));
        fire(t0 + ms(9));
        assert_eq!(woken(&sleeps), [0, 0, 0], "nothing is due yet");
        start_turn(t0 + ms(20));
        fire(t0 + ms(20));
        assert_eq!(woken(&sleeps), [0, 1, 1], "10 and 20 ms are due, 30 is not");
        assert_eq!(next_deadline(), Some(t0 + ms(30)));
        for (i, (s, _, w)) in sleeps.iter_mut().enumerate() {
            assert_eq!(
                poll(s, w).is_ready(),
                i != 0,
                "a woken timer completes; the other waits"
            );
        }
        assert_eq!(timers(), 1);
        drop(sleeps);
        assert_eq!(timers(), 0, "a timer dropped before it fires leaves the map");
        assert_eq!(next_deadline(), None);
    }

    #[test]
    fn a_timer_polled_again_keeps_one_entry_and_the_newest_waker() {
        let t0 = Instant::now();
        start_turn(t0);
        let mut s = sleep(Duration::from_secs(3600));
        let (first, w1) = counter();
        let (second, w2) = counter();
        assert!(poll(&mut s, &w1).is_pending());
        assert!(poll(&mut s, &w2).is_pending());
        assert_eq!(timers(), 1);
        fire(t0 + Duration::from_secs(3600));
        assert_eq!(first.0.load(Ordering::Relaxed), 0);
        assert_eq!(second.0.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_timeout_gives_the_output_or_elapsed_and_leaves_no_timer() {
        let t0 = Instant::now();
        start_turn(t0);
        let (_, waker) = counter();
        let mut cx = Context::from_waker(&waker);
        let mut ready = std::pin::pin!(timeout(Duration::from_secs(60), async { 7 }));
        assert_eq!(ready.as_mut().poll(&mut cx), Poll::Ready(Ok(7)));
        let mut slow = Box::pin(timeout(Duration::from_millis(5), sleep(Duration::from_secs(60))));
        assert!(slow.as_mut().poll(&mut cx).is_pending());
        assert_eq!(timers(), 2, "the inner timer and the timeout's");
        start_turn(t0 + Duration::from_millis(5));
        assert_eq!(slow.as_mut().poll(&mut cx), Poll::Ready(Err(Elapsed)));
        drop(slow);
        assert_eq!(timers(), 0, "both left the map");
    }

    #[test]
    fn a_deadline_in_the_past_completes_at_once() {
        start_turn(Instant::now());
        let (_, waker) = counter();
        assert!(poll(&mut sleep_until(Instant::now() - Duration::from_secs(1)), &waker).is_ready());
        assert!(poll(&mut sleep(Duration::ZERO), &waker).is_ready());
        assert_eq!(timers(), 0);
    }
}
