use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::mem::ManuallyDrop;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use tokio::io::unix::AsyncFd;
use tokio::task::LocalSet;

mod context;
pub(crate) mod driver;

pub(crate) use context::RuntimeContext;

thread_local! {
    pub(crate) static CONTEXT: RuntimeContext = RuntimeContext::new();
    /// ringd patch: the runtime's wait for completions, for an executor that waits on it
    /// itself (`crate::poll_ring_ready`).
    static RING: RefCell<RingWait> = const {
        RefCell::new(RingWait { fd: None, waiter: None, waiting: false })
    };
    /// ringd patch: an executor waits on `RING` itself: the runtime's own task no longer does.
    static RING_TAKEN: Cell<bool> = const { Cell::new(false) };
}

/// ringd patch: an executor's wait for the ring's completions.
struct RingWait {
    /// The driver's descriptor registered with tokio.
    fd: Option<Rc<AsyncFd<driver::Handle>>>,
    /// The executor's waker, kept for `wake_ring_waiter`.
    waiter: Option<Waker>,
    /// Whether the executor waits now: its last `poll_ring_ready` found nothing.
    waiting: bool,
}

/// ringd patch: runs as tokio's park ends. A park that ends with completions in the queue but
/// no event for the ring (the kernel posts completions as task work, which interrupts the
/// thread's `epoll_wait` with `EINTR` before the ring's descriptor is reported readable) would
/// wake nobody, and tokio would park again only to be told of the ring at once. The executor
/// waiting on the ring is woken here instead: it dispatches them, and by the next park the
/// queue is empty, so the ring's stale readiness ends no wait (epoll checks it again).
fn wake_ring_waiter() {
    RING.with_borrow_mut(|ring| {
        if !ring.waiting {
            return;
        }
        let Some(fd) = &ring.fd else { return };
        if fd.get_ref().has_completions() {
            ring.waiting = false;
            if let Some(waker) = &ring.waiter {
                waker.wake_by_ref();
            }
        }
    })
}

/// ringd patch: see `crate::poll_ring_ready`.
pub(crate) fn poll_ring_ready(cx: &mut Context<'_>) -> bool {
    RING.with_borrow_mut(|ring| {
        let RingWait {
            fd: Some(fd),
            waiter,
            waiting,
        } = ring
        else {
            return false;
        };
        RING_TAKEN.set(true);
        match fd.poll_read_ready(cx) {
            Poll::Ready(Ok(mut guard)) => {
                guard.clear_ready();
                *waiting = false;
                true
            }
            Poll::Pending => {
                if !waiter.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    *waiter = Some(cx.waker().clone());
                }
                *waiting = true;
                false
            }
            // Tokio's I/O driver is gone: the runtime is shutting down.
            Poll::Ready(Err(_)) => false,
        }
    })
}

/// The Runtime Executor
///
/// This is the Runtime for `tokio-uring`.
/// It wraps the default [`Runtime`] using the platform-specific Driver.
///
/// This executes futures and tasks within the current-thread only.
///
/// [`Runtime`]: tokio::runtime::Runtime
pub struct Runtime {
    /// Tokio runtime, always current-thread
    tokio_rt: ManuallyDrop<tokio::runtime::Runtime>,

    /// LocalSet for !Send tasks
    local: ManuallyDrop<LocalSet>,

    /// Strong reference to the driver.
    driver: driver::Handle,
}

/// Spawns a new asynchronous task, returning a [`JoinHandle`] for it.
///
/// Spawning a task enables the task to execute concurrently to other tasks.
/// There is no guarantee that a spawned task will execute to completion. When a
/// runtime is shutdown, all outstanding tasks are dropped, regardless of the
/// lifecycle of that task.
///
/// This function must be called from the context of a `tokio-uring` runtime.
///
/// [`JoinHandle`]: tokio::task::JoinHandle
///
/// # Examples
///
/// In this example, a server is started and `spawn` is used to start a new task
/// that processes each received connection.
///
/// ```no_run
/// tokio_uring::start(async {
///     let handle = tokio_uring::spawn(async {
///         println!("hello from a background task");
///     });
///
///     // Let the task complete
///     handle.await.unwrap();
/// });
/// ```
pub fn spawn<T: Future + 'static>(task: T) -> tokio::task::JoinHandle<T::Output> {
    tokio::task::spawn_local(task)
}

impl Runtime {
    /// Creates a new tokio_uring runtime on the current thread.
    ///
    /// This takes the tokio-uring [`Builder`](crate::Builder) as a parameter.
    pub fn new(b: &crate::Builder) -> io::Result<Runtime> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .on_thread_park(|| {
                CONTEXT.with(|x| {
                    let _ = x
                        .handle()
                        .expect("Internal error, driver context not present when invoking hooks")
                        .flush();
                });
            })
            // ringd patch: see `wake_ring_waiter`.
            .on_thread_unpark(wake_ring_waiter)
            .enable_all()
            .build()?;

        let tokio_rt = ManuallyDrop::new(rt);
        let local = ManuallyDrop::new(LocalSet::new());
        let driver = driver::Handle::new(b)?;

        start_uring_wakes_task(&tokio_rt, &local, driver.clone());

        Ok(Runtime {
            local,
            tokio_rt,
            driver,
        })
    }

    /// Runs a future to completion on the tokio-uring runtime. This is the
    /// runtime's entry point.
    ///
    /// This runs the given future on the current thread, blocking until it is
    /// complete, and yielding its resolved result. Any tasks, futures, or timers
    /// which the future spawns internally will be executed on this runtime.
    ///
    /// Any spawned tasks will be suspended after `block_on` returns. Calling
    /// `block_on` again will resume previously spawned tasks.
    ///
    /// # Panics
    ///
    /// This function panics if the provided future panics, or if called within an
    /// asynchronous execution context.
    /// Runs a future to completion on the current runtime.
    pub fn block_on<F>(&self, future: F) -> F::Output
    where
        F: Future,
    {
        struct ContextGuard;

        impl Drop for ContextGuard {
            fn drop(&mut self) {
                CONTEXT.with(|cx| cx.unset_driver());
            }
        }

        CONTEXT.with(|cx| cx.set_handle(self.driver.clone()));

        let _guard = ContextGuard;

        tokio::pin!(future);

        let res = self
            .tokio_rt
            .block_on(self.local.run_until(std::future::poll_fn(|cx| {
                // assert!(drive.as_mut().poll(cx).is_pending());
                future.as_mut().poll(cx)
            })));

        res
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        // ringd patch: the wait registered with this runtime's tokio goes with it.
        RING.with_borrow_mut(|ring| {
            ring.fd = None;
            ring.waiter = None;
            ring.waiting = false;
        });
        RING_TAKEN.set(false);
        // drop tasks in correct order
        unsafe {
            ManuallyDrop::drop(&mut self.local);
            ManuallyDrop::drop(&mut self.tokio_rt);
        }
    }
}

fn start_uring_wakes_task(
    tokio_rt: &tokio::runtime::Runtime,
    local: &LocalSet,
    driver: driver::Handle,
) {
    let _guard = tokio_rt.enter();
    // ringd patch: tokio 1.54 deprecates `AsyncFd::new` for types that may give up their
    // descriptor while registered; the handle keeps the driver, and so the ring's descriptor,
    // alive for as long as this `AsyncFd` holds it.
    // ringd patch: read interest only: the wait descriptor may be an eventfd, which is always
    // writable, and a writable event would end the thread's wait for nothing.
    #[allow(deprecated)]
    let async_driver_handle =
        Rc::new(AsyncFd::with_interest(driver, tokio::io::Interest::READABLE).unwrap());
    RING.with_borrow_mut(|ring| ring.fd = Some(async_driver_handle.clone()));

    local.spawn_local(drive_uring_wakes(async_driver_handle));
}

async fn drive_uring_wakes(driver: Rc<AsyncFd<driver::Handle>>) {
    loop {
        // Wait for read-readiness
        let mut guard = driver.readable().await.unwrap();

        // ringd patch: an executor waits for the completions itself now (it was woken by the
        // same readiness, and dispatches them): this task ends, so that a completion wakes one
        // task, not two.
        if RING_TAKEN.get() {
            return;
        }

        guard.get_inner().dispatch_completions();

        guard.clear_ready();
    }
}

#[cfg(test)]
mod test {

    use super::*;
    use crate::builder;

    #[test]
    fn block_on() {
        let rt = Runtime::new(&builder()).unwrap();
        rt.block_on(async move { () });
    }

    #[test]
    fn block_on_twice() {
        let rt = Runtime::new(&builder()).unwrap();
        rt.block_on(async move { () });
        rt.block_on(async move { () });
    }
}
