//! [`Tasks`]: the worker's own executor for everything its thread runs: accept loops,
//! connections, HTTP/2 streams, the sweeper and the controller.
//!
//! A tokio task costs each wake a reference-counted state machine of atomics, a `LocalSet`'s
//! queue and the task harness around every poll, and tokio parks in `epoll_wait` on the ring's
//! descriptor, then enters the ring: two system calls where one does. Here every task is an
//! entry in a slab, a wake pushes the task's index on a per-thread queue (once, however often it
//! is woken before it runs), and [`Tasks::run`] polls what the queue holds; with nothing left to
//! run it submits the operations the tasks queued and waits for their completions, or for the
//! earliest of its timers (`super::timer`), in one `io_uring_enter` (`tokio_uring::Ring::park`).
//!
//! Invariants:
//! - A slab entry's future and waker are taken out while it is polled, so a task that spawns or
//!   wakes tasks (HTTP/2 streams) never finds the slab borrowed.
//! - A wake is never lost: a task's `queued` flag is cleared before each poll, so a wake during
//!   or after the poll queues it again. A wake on the executor's thread only queues; one from
//!   another thread (a channel's sender, a timer of tokio's) queues the index in `Shared` and,
//!   the first time since the executor last took them, writes the eventfd the executor always
//!   has a read in flight on, which ends its park.
//! - A waker that outlives its task (its index reused) costs the new task a spurious poll,
//!   which futures allow; an index with no task is skipped.
//! - A turn polls at most [`BUDGET`] tasks, then submits and reaps without waiting, fires the
//!   timers due and takes the other threads' wakes, and goes on.
//! - A task that panics is dropped, as tokio drops a panicked task; the worker goes on.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::io::{self, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use slab::Slab;

use super::timer;

/// Tasks polled per turn before the executor reaps completions and fires timers.
const BUDGET: usize = 256;

type Task = Pin<Box<dyn Future<Output = ()>>>;

/// The worker's tasks. One per worker thread.
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
    /// Set with the first index queued in `remote` since the executor took them.
    has_remote: AtomicBool,
    /// The eventfd the executor reads through its ring, once it runs.
    wake_fd: OnceLock<std::fs::File>,
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
}

impl Tasks {
    /// The executor of the current thread; [`Tasks::run`] runs it.
    pub(crate) fn new() -> Tasks {
        let shared = Arc::new(Shared {
            remote: Mutex::new(Vec::new()),
            has_remote: AtomicBool::new(false),
            wake_fd: OnceLock::new(),
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

    /// Makes the eventfd through which wakes from other threads reach the executor, and the
    /// task that reads it. A worker does this before it says it is ready: the executor's loop
    /// then opens no descriptor, so a process out of descriptors (or whose limit was lowered
    /// after start) keeps running and only pauses its accepts. Idempotent.
    pub(crate) fn open_wakes(&self) -> io::Result<()> {
        if self.inner.shared.wake_fd.get().is_some() {
            return Ok(());
        }
        // Blocking: io_uring answers a read of a non-blocking descriptor with nothing to read
        // by `EAGAIN` instead of waiting for it. Writers never block on it (the count only
        // blocks past 2^64 - 2).
        let fd = std::fs::File::from(rustix::event::eventfd(0, rustix::event::EventfdFlags::CLOEXEC)?);
        let reader = tokio_uring::fs::File::from_std(fd.try_clone()?);
        // The executor is this thread's only: no other call can have set it meanwhile.
        let _ = self.inner.shared.wake_fd.set(fd);
        self.spawn(wakes_from_other_threads(reader));
        Ok(())
    }

    /// Runs the executor on this thread, on `ring` (this thread's), until `stop` says so after
    /// a turn; a worker's never stops. Fails only if the ring fails, or if the eventfd for
    /// wakes from other threads was not made before ([`Tasks::open_wakes`]) and cannot be.
    pub(crate) fn run(&self, ring: &tokio_uring::Ring, stop: &dyn Fn() -> bool) -> io::Result<()> {
        let inner = &*self.inner;
        self.open_wakes()?;
        loop {
            let now = Instant::now();
            timer::start_turn(now);
            if inner.shared.has_remote.swap(false, Ordering::Acquire) {
                let woken = std::mem::take(&mut *inner.shared.remote.lock().unwrap_or_else(|e| e.into_inner()));
                READY.with_borrow_mut(|ready| ready.extend(woken));
            }
            timer::fire(now);
            for _ in 0..BUDGET {
                let Some(id) = READY.with_borrow_mut(VecDeque::pop_front) else {
                    break;
                };
                inner.poll_task(id);
            }
            if stop() {
                return Ok(());
            }
            // Tasks still queued (out of budget): reap without waiting. Otherwise wait for a
            // completion, a wake from another thread (its eventfd read completes) or the
            // earliest timer, counted from the turn's start (not the clock read again: a timer
            // fires late by at most the turn's work, which its wait is long beside).
            let wait = if READY.with_borrow(|ready| !ready.is_empty()) {
                Some(Duration::ZERO)
            } else {
                timer::next_deadline().map(|at| at.saturating_duration_since(now))
            };
            ring.park(wait)?;
        }
    }
}

/// Reads the eventfd that wakes from other threads write, so that each ends the executor's
/// park; the executor takes the tasks they queued as its next turn starts.
async fn wakes_from_other_threads(fd: tokio_uring::fs::File) {
    let mut buf = vec![0u8; 8];
    loop {
        let (read, back) = fd.read_at(buf, 0).await;
        buf = back;
        if let Err(e) = read {
            if e.kind() != io::ErrorKind::Interrupted {
                tracing::error!(
                    "the worker's wake descriptor failed ({e}); wakes from other threads wait for the next event"
                );
                return;
            }
        }
    }
}

impl Inner {
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
        } else {
            self.shared
                .remote
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(self.id);
            if !self.shared.has_remote.swap(true, Ordering::AcqRel) {
                if let Some(mut fd) = self.shared.wake_fd.get() {
                    // Fails only if the count would pass 2^64 - 2: the executor is awake then.
                    let _ = fd.write(&1u64.to_ne_bytes());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Runs `f` as a task of an executor on a ring of its own, as a worker runs, until it ends;
    /// then drops every task left, before the ring.
    fn with_tasks<F: Future<Output = ()> + 'static>(f: impl FnOnce(Rc<Tasks>) -> F) {
        let ring = tokio_uring::Ring::new(&tokio_uring::builder()).unwrap();
        let tasks = Rc::new(Tasks::new());
        let done = Rc::new(Cell::new(false));
        let flag = done.clone();
        let main = f(tasks.clone());
        tasks.spawn(async move {
            main.await;
            flag.set(true);
        });
        tasks.run(&ring, &|| done.get()).unwrap();
        let left: Vec<Entry> = tasks.inner.slab.borrow_mut().drain().collect();
        drop(left);
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
            assert_eq!(tasks.len(), 2, "this task and the reader of wakes from other threads");
        });
    }

    #[test]
    fn wakes_from_other_threads_end_the_park() {
        with_tasks(|tasks| async move {
            let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
            let (done_tx, done_rx) = tokio::sync::oneshot::channel::<u32>();
            tasks.spawn(async move {
                crate::runtime::timer::sleep(Duration::from_millis(5)).await;
                let v = rx.await.unwrap();
                let _ = done_tx.send(v + 1);
            });
            // The executor parks with nothing to do (no operation, no timer) until this wake.
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                let _ = tx.send(41);
            });
            assert_eq!(done_rx.await.unwrap(), 42);
        });
    }

    #[test]
    fn many_wakes_from_other_threads_all_arrive() {
        with_tasks(|tasks| async move {
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u32>();
            let got = Rc::new(Cell::new(0u32));
            let seen = got.clone();
            tasks.spawn(async move {
                while let Some(v) = rx.recv().await {
                    seen.set(seen.get() + v);
                }
            });
            let senders: Vec<_> = (0..4)
                .map(|_| {
                    let tx = tx.clone();
                    std::thread::spawn(move || {
                        for _ in 0..2_000 {
                            tx.send(1).unwrap();
                        }
                    })
                })
                .collect();
            drop(tx);
            for s in senders {
                s.join().unwrap();
            }
            while got.get() < 8_000 {
                crate::runtime::timer::sleep(Duration::from_millis(1)).await;
            }
            assert_eq!(got.get(), 8_000);
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
            assert_eq!(tasks.len(), 2, "this task and the reader of wakes from other threads");
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
            assert_eq!(tasks.len(), 2, "this task and the reader of wakes from other threads");
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
