//! [`Tasks`]: the worker's own executor for its accept loops, connections and HTTP/2 streams.
//!
//! A tokio task costs each wake a reference-counted state machine of atomics, the `LocalSet`'s
//! queue and the task harness around every poll, and tokio-uring wakes a connection's task at
//! least twice a request (its receive, then its send). Here every connection is an entry in a
//! slab, run by one tokio task ([`Tasks::run`]): a wake pushes the connection's index on a
//! per-thread queue (once, however often it is woken before it runs), and that task polls what
//! the queue holds. Everything else stays tokio's: the executor task parks through tokio's
//! runtime with the ring's completions, and a connection may use tokio's timers and channels as
//! any task may (its handlers do).
//!
//! Invariants:
//! - A slab entry's future and waker are taken out while it is polled, so a task that spawns or
//!   wakes tasks (HTTP/2 streams) never finds the slab borrowed.
//! - A wake is never lost: a task's `queued` flag is cleared before each poll, so a wake during
//!   or after the poll queues it again; the executor task is woken whenever a task is queued
//!   while the executor does not run.
//! - A waker that outlives its task (its index reused) costs the new task a spurious poll,
//!   which futures allow; an index with no task is skipped.
//! - The executor polls at most [`BUDGET`] tasks before it lets tokio run the rest of the
//!   worker (accepts, the sweeper, timers) and goes on.
//! - Tokio's per-task budget for its own resources does not apply (each connection was a task
//!   with a budget of its own; here they share one task): the executor runs unconstrained, and
//!   [`BUDGET`] is the fairness.
//! - A task that panics is dropped, as tokio drops a panicked task; the worker goes on.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Instant;

use slab::Slab;

/// Tasks polled per turn of the executor before tokio gets the thread back.
const BUDGET: usize = 256;

/// Reaps per turn at most (each may find completions that wake no task).
const REAPS: usize = 8;

type Task = Pin<Box<dyn Future<Output = ()>>>;

/// The worker's connection tasks. One per worker thread.
pub(crate) struct Tasks {
    inner: Rc<Inner>,
}

struct Inner {
    /// The tasks; an entry's future (and waker) is `None` while it is being polled.
    slab: RefCell<Slab<Entry>>,
    shared: Arc<Shared>,
    /// Wakers of ended tasks that nothing else holds, for the next tasks (a connection or a
    /// stream would otherwise allocate one and free it).
    spare: RefCell<Vec<Arc<TaskWaker>>>,
}

/// Spare wakers kept at most.
const SPARE: usize = 1024;

struct Entry {
    /// The future and the task's `Waker`, taken out while the task is polled: the poll lends
    /// the waker it moved out, so a poll costs no reference count (two atomic operations).
    run: Option<(Task, Waker)>,
    /// The waker's state, for its flag and for keeping it for another task.
    waker: Arc<TaskWaker>,
}

/// What a waker on another thread reaches.
struct Shared {
    /// Tasks woken from other threads.
    remote: Mutex<Vec<usize>>,
    has_remote: AtomicBool,
    /// The executor task's tokio waker, once it has run.
    executor: Mutex<Option<Waker>>,
}

struct TaskWaker {
    id: usize,
    queued: AtomicBool,
    shared: Arc<Shared>,
}

thread_local! {
    /// The `Shared` of the executor of this thread (its address), to tell a wake on the
    /// worker's thread from one on another thread.
    static OWNER: Cell<usize> = const { Cell::new(0) };
    /// The tasks woken on this thread, in order.
    static READY: RefCell<VecDeque<usize>> = const { RefCell::new(VecDeque::new()) };
    /// Whether the executor is polling tasks now (a wake then needs no tokio wake).
    static RUNNING: Cell<bool> = const { Cell::new(false) };
    /// Whether the executor task was woken and has not run since.
    static NOTIFIED: Cell<bool> = const { Cell::new(false) };
    /// When the executor's current (or last) turn started.
    static TURN_STARTED: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// When this thread's executor began its current turn (the present, off the executor): a
/// clock for deadlines counted in seconds, behind the present by at most the tasks polled so
/// far in the turn ([`BUDGET`] at most), read once a turn instead of once an event.
pub(crate) fn turn_started() -> Instant {
    TURN_STARTED.get().unwrap_or_else(Instant::now)
}

impl Tasks {
    /// The executor of the current thread; [`Tasks::run`] must be spawned on it.
    pub(crate) fn new() -> Tasks {
        let shared = Arc::new(Shared {
            remote: Mutex::new(Vec::new()),
            has_remote: AtomicBool::new(false),
            executor: Mutex::new(None),
        });
        OWNER.set(Arc::as_ptr(&shared) as usize);
        Tasks {
            inner: Rc::new(Inner {
                slab: RefCell::new(Slab::new()),
                shared,
                spare: RefCell::new(Vec::new()),
            }),
        }
    }

    /// Runs `future` as a task of this executor.
    pub(crate) fn spawn(&self, future: impl Future<Output = ()> + 'static) {
        self.spawn_boxed(Box::pin(future));
    }

    /// [`Tasks::spawn`] for a future already on the heap.
    pub(crate) fn spawn_boxed(&self, future: Task) {
        let mut slab = self.inner.slab.borrow_mut();
        let entry = slab.vacant_entry();
        let id = entry.key();
        let waker = match self.inner.spare.borrow_mut().pop() {
            Some(mut waker) => {
                // Spare wakers have no other holder (checked when they were kept).
                let w = Arc::get_mut(&mut waker).expect("a spare waker is unshared");
                w.id = id;
                *w.queued.get_mut() = false;
                waker
            }
            None => Arc::new(TaskWaker {
                id,
                queued: AtomicBool::new(false),
                shared: self.inner.shared.clone(),
            }),
        };
        let queue = waker.clone();
        entry.insert(Entry {
            run: Some((future, Waker::from(waker.clone()))),
            waker,
        });
        drop(slab);
        queue.wake_by_ref();
    }

    /// How many tasks are alive.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.inner.slab.borrow().len()
    }

    /// The executor: spawn it on the worker's runtime; it runs as long as the worker. `reap`
    /// submits the operations the tasks queued and dispatches the completions already there
    /// (waking their tasks), returning how many there were: when the woken tasks have run, the
    /// executor reaps, and goes on with what that woke instead of waiting for tokio's next park
    /// (a send usually completes as it is submitted). `ring_ready` is the wait for the ring's
    /// completions (`tokio_uring::poll_ring_ready`): `true` when some may have arrived (reap
    /// again), else the executor's waker is registered for them, so completions wake the
    /// executor directly rather than a task of the runtime that would wake it.
    pub(crate) fn run(
        &self,
        reap: impl Fn() -> usize + 'static,
        ring_ready: impl Fn(&mut Context<'_>) -> bool + 'static,
    ) -> impl Future<Output = ()> + 'static {
        let inner = self.inner.clone();
        tokio::task::unconstrained(std::future::poll_fn(move |cx| inner.turn(cx, &reap, &ring_ready)))
    }
}

impl Inner {
    /// One turn: polls the woken tasks, at most [`BUDGET`] of them, reaping completions (at
    /// most [`REAPS`] times) whenever none is left. It never returns `Pending` without either
    /// its waker registered with the ring's wait or a wake of its own already sent.
    fn turn(
        &self,
        cx: &mut Context<'_>,
        reap: &dyn Fn() -> usize,
        ring_ready: &dyn Fn(&mut Context<'_>) -> bool,
    ) -> Poll<()> {
        {
            let mut executor = self.shared.executor.lock().unwrap_or_else(|e| e.into_inner());
            if !executor.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *executor = Some(cx.waker().clone());
            }
        }
        NOTIFIED.set(false);
        RUNNING.set(true);
        TURN_STARTED.set(Some(Instant::now()));
        if self.shared.has_remote.swap(false, Ordering::Acquire) {
            let woken = std::mem::take(&mut *self.shared.remote.lock().unwrap_or_else(|e| e.into_inner()));
            READY.with_borrow_mut(|ready| ready.extend(woken));
        }
        // The completions most turns are woken for are reaped once the queue is empty (below,
        // always within the turn or the next): the ring's readiness is taken now, so that it
        // does not call for a second reap after them.
        ring_ready(cx);
        let mut reaps = 0;
        let mut polled = 0;
        while polled < BUDGET {
            let Some(id) = READY.with_borrow_mut(VecDeque::pop_front) else {
                if reaps == REAPS {
                    break;
                }
                reaps += 1;
                if reap() > 0 || ring_ready(cx) {
                    continue;
                }
                // Nothing reaped and the ring not ready: the waker is registered for it.
                RUNNING.set(false);
                return Poll::Pending;
            };
            self.poll_task(id);
            polled += 1;
        }
        RUNNING.set(false);
        // Out of budget or reaps: come back after tokio's other work if tasks are still queued
        // or the ring is ready (its readiness is taken here, so nothing else would wake the
        // executor for those completions); else the waker is registered for the ring.
        if READY.with_borrow(|ready| !ready.is_empty()) || ring_ready(cx) {
            NOTIFIED.set(true);
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }

    fn poll_task(&self, id: usize) {
        let (mut future, handle) = {
            let mut slab = self.slab.borrow_mut();
            let Some(entry) = slab.get_mut(id) else { return };
            let Some(run) = entry.run.take() else { return };
            entry.waker.queued.store(false, Ordering::Release);
            run
        };
        let polled = catch_unwind(AssertUnwindSafe(|| {
            future.as_mut().poll(&mut Context::from_waker(&handle))
        }));
        match polled {
            Ok(Poll::Pending) => {
                if let Some(entry) = self.slab.borrow_mut().get_mut(id) {
                    entry.run = Some((future, handle));
                }
            }
            // Done, or panicked (the panic hook has reported it): the task ends. Its future is
            // dropped after the slab is let go (dropping it may wake or spawn tasks).
            Ok(Poll::Ready(())) | Err(_) => {
                let Entry { run: _, mut waker } = self.slab.borrow_mut().remove(id);
                drop(future);
                drop(handle);
                // Kept for another task only if no clone of it is left anywhere (an operation
                // or a timer may still hold one: it would wake the next task spuriously).
                let mut spare = self.spare.borrow_mut();
                if Arc::get_mut(&mut waker).is_some() && spare.len() < SPARE {
                    spare.push(waker);
                }
            }
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The tasks' futures may hold io_uring operations: they are dropped with the executor,
        // on its thread, while the ring still runs (the worker's runtime outlives it).
        let entries: Vec<Entry> = self.slab.get_mut().drain().collect();
        drop(entries);
    }
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.queued.swap(true, Ordering::AcqRel) {
            return;
        }
        if OWNER.get() == Arc::as_ptr(&self.shared) as usize {
            READY.with_borrow_mut(|ready| ready.push_back(self.id));
            if !RUNNING.get() && !NOTIFIED.get() {
                NOTIFIED.set(true);
                self.shared.wake_executor();
            }
        } else {
            self.shared
                .remote
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(self.id);
            self.shared.has_remote.store(true, Ordering::Release);
            self.shared.wake_executor();
        }
    }
}

impl Shared {
    fn wake_executor(&self) {
        let waker = self.executor.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Runs `f` with an executor on a current-thread tokio runtime with a `LocalSet`, as a
    /// worker runs.
    fn with_tasks<F: Future<Output = ()>>(f: impl FnOnce(Rc<Tasks>) -> F) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let local = tokio::task::LocalSet::new();
        local.block_on(&rt, async move {
            let tasks = Rc::new(Tasks::new());
            tokio::task::spawn_local(tasks.run(|| 0, |_| false));
            f(tasks).await;
        });
    }

    #[test]
    fn tasks_run_to_completion_and_leave_the_slab() {
        with_tasks(|tasks| async move {
            let done = Rc::new(Cell::new(0));
            for _ in 0..10 {
                let done = done.clone();
                tasks.spawn(async move {
                    tokio::task::yield_now().await;
                    done.set(done.get() + 1);
                });
            }
            while done.get() < 10 {
                tokio::task::yield_now().await;
            }
            assert_eq!(tasks.len(), 0);
        });
    }

    #[test]
    fn tasks_use_tokio_timers_and_wakes_from_other_threads() {
        with_tasks(|tasks| async move {
            let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
            let (done_tx, done_rx) = tokio::sync::oneshot::channel::<u32>();
            tasks.spawn(async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                let v = rx.await.unwrap();
                let _ = done_tx.send(v + 1);
            });
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                let _ = tx.send(41);
            });
            assert_eq!(done_rx.await.unwrap(), 42);
        });
    }

    #[test]
    fn a_task_may_spawn_tasks_and_a_panic_ends_only_its_task() {
        with_tasks(|tasks| async move {
            let done = Rc::new(Cell::new(false));
            let inner = tasks.clone();
            let flag = done.clone();
            tasks.spawn(async move {
                inner.spawn(async { panic!("a task panics") });
                tokio::task::yield_now().await;
                inner.spawn(async move { flag.set(true) });
            });
            while !done.get() {
                tokio::task::yield_now().await;
            }
            tokio::task::yield_now().await;
            assert_eq!(tasks.len(), 0);
        });
    }

    #[test]
    fn an_ended_tasks_waker_serves_the_next_task_unless_someone_holds_it() {
        with_tasks(|tasks| async move {
            let kept: Rc<RefCell<Option<Waker>>> = Rc::default();
            let spares = || tasks.inner.spare.borrow().len();
            tasks.spawn(async {});
            tokio::task::yield_now().await;
            assert_eq!(spares(), 1, "an ended task's waker nobody holds is kept");
            tasks.spawn(async {});
            assert_eq!(spares(), 0, "and taken by the next task");
            tokio::task::yield_now().await;
            assert_eq!(spares(), 1);
            let hold = kept.clone();
            tasks.spawn(std::future::poll_fn(move |cx| {
                *hold.borrow_mut() = Some(cx.waker().clone());
                Poll::Ready(())
            }));
            tokio::task::yield_now().await;
            assert_eq!(spares(), 0, "a waker someone still holds is not reused");
            // Waking it now queues an index with no task: skipped.
            kept.borrow_mut().take().unwrap().wake();
            tokio::task::yield_now().await;
            assert_eq!(tasks.len(), 0);
        });
    }

    #[test]
    fn more_tasks_than_the_budget_all_run() {
        with_tasks(|tasks| async move {
            let done = Rc::new(Cell::new(0));
            for _ in 0..BUDGET * 3 {
                let done = done.clone();
                tasks.spawn(async move {
                    for _ in 0..3 {
                        tokio::task::yield_now().await;
                    }
                    done.set(done.get() + 1);
                });
            }
            while done.get() < BUDGET * 3 {
                tokio::task::yield_now().await;
            }
        });
    }
}
