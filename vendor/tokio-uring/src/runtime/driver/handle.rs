//! Internal, reference-counted handle to the driver.
//!
//! The driver was previously managed exclusively by thread-local context, but this proved
//! untenable.
//!
//! The new system uses a handle which reference-counts the driver to track ownership and access to
//! the driver.
//!
//! There are two handles.
//! The strong handle is owning, and the weak handle is non-owning.
//! This is important for avoiding reference cycles.
//! The weak handle should be used by anything which is stored in the driver or does not need to
//! keep the driver alive for it's duration.
//!
//! ringd patch: only the strong handle is left; operations hold one (see `Op::driver`).

use io_uring::{cqueue, squeue};
use std::cell::RefCell;
use std::io;
// ringd patch: `std::ops::Deref` no longer used (it was for the weak handle).
use std::os::unix::io::{AsRawFd, RawFd};
use std::rc::Rc; // ringd patch: no `Weak`
use std::task::{Context, Poll};

use crate::buf::fixed::FixedBuffers;
use crate::runtime::driver::op::{Completable, Op, OpState, Updateable}; // ringd patch: OpState
use crate::runtime::driver::Driver;

#[derive(Clone)]
pub(crate) struct Handle {
    // ringd patch: seen by the runtime's context too (`RuntimeContext::with_driver`).
    pub(in crate::runtime) inner: Rc<RefCell<Driver>>,
}

// ringd patch: the weak handle is gone: operations hold a strong one (see `Op::driver`).

impl Handle {
    pub(crate) fn new(b: &crate::Builder) -> io::Result<Self> {
        Ok(Self {
            inner: Rc::new(RefCell::new(Driver::new(b, true)?)),
        })
    }

    /// ringd patch: a driver for an executor that parks in the ring itself (`crate::Ring`).
    pub(crate) fn new_parking(b: &crate::Builder) -> io::Result<Self> {
        Ok(Self {
            inner: Rc::new(RefCell::new(Driver::new(b, false)?)),
        })
    }

    /// ringd patch: see `crate::Ring::park`.
    pub(crate) fn park(&self, timeout: Option<std::time::Duration>) -> io::Result<usize> {
        self.inner.borrow_mut().park(timeout)
    }

    pub(crate) fn dispatch_completions(&self) {
        let mut driver = self.inner.borrow_mut();
        if !driver.defers_task_work() {
            driver.dispatch_completions();
            return;
        }
        // ringd patch: with deferred task work the completions are made as the ring is entered,
        // a bounded batch of work at a time (the kernel flags what it leaves): enter until none
        // is left, since the eventfd is not signalled again for work already queued.
        loop {
            if driver.submit_and_dispatch().is_err() || !driver.must_enter() {
                return;
            }
        }
    }

    pub(crate) fn flush(&self) -> io::Result<usize> {
        let mut driver = self.inner.borrow_mut();
        // ringd patch: nothing queued and no overflowed completions to flush: no system call
        // (an executor may have submitted everything already, see `Driver::submit_and_dispatch`).
        // With deferred task work, work the kernel queued is run here too: the thread is about
        // to wait on the eventfd, which is not signalled again for work already queued (the
        // completions the work posts signal it, so the wait ends at once and dispatches them).
        driver.drain_wake_fd();
        if !driver.must_enter() {
            return Ok(0);
        }
        driver.queue_released_slots();
        driver.enter()
    }

    /// ringd patch: see `crate::register_files_sparse`.
    pub(crate) fn register_files_sparse(&self, slots: u32) -> io::Result<()> {
        self.inner.borrow_mut().register_files_sparse(slots)
    }

    /// ringd patch: a free slot of the ring's file table, if it has one.
    pub(crate) fn take_fixed_slot(&self) -> Option<u32> {
        self.inner.borrow_mut().take_fixed_slot()
    }

    /// ringd patch: a slot taken and not used.
    pub(crate) fn return_fixed_slot(&self, slot: u32) {
        self.inner.borrow_mut().return_fixed_slot(slot)
    }

    /// ringd patch: see `crate::limit_io_workers`.
    pub(crate) fn limit_io_workers(
        &self,
        max: &mut [u32; 2],
        cpus: Option<&libc::cpu_set_t>,
    ) -> io::Result<()> {
        let driver = self.inner.borrow();
        let submitter = driver.uring.submitter();
        submitter.register_iowq_max_workers(max)?;
        if let Some(cpus) = cpus {
            submitter.register_iowq_aff(cpus)?;
        }
        Ok(())
    }

    pub(crate) fn register_buffers(
        &self,
        buffers: Rc<RefCell<dyn FixedBuffers>>,
    ) -> io::Result<()> {
        self.inner.borrow_mut().register_buffers(buffers)
    }

    /// ringd patch: see `crate::buf::BufRing::register`.
    pub(crate) fn register_buf_ring(
        &self,
        ring: Rc<crate::buf::provided::RingInner>,
        count: u16,
    ) -> io::Result<()> {
        self.inner.borrow_mut().register_buf_ring(ring, count)
    }

    pub(crate) fn unregister_buffers(
        &self,
        buffers: Rc<RefCell<dyn FixedBuffers>>,
    ) -> io::Result<()> {
        self.inner.borrow_mut().unregister_buffers(buffers)
    }

    pub(crate) fn submit_op_2(&self, sqe: squeue::Entry) -> usize {
        self.inner.borrow_mut().submit_op_2(sqe)
    }

    // ringd patch: the handle is moved into the operation (see `Op::driver`).
    pub(crate) fn submit_op<T, S, F>(self, mut data: T, f: F) -> io::Result<Op<T, S>>
    where
        T: Completable,
        F: FnOnce(&mut T) -> squeue::Entry,
    {
        let index = self.inner.borrow_mut().submit_op(&mut data, f)?;
        Ok(Op::new(self, data, index))
    }

    // ringd patch: works on the operation's `OpState`.
    pub(crate) fn poll_op<T>(&self, op: &mut OpState<T>, cx: &mut Context<'_>) -> Poll<T::Output>
    where
        T: Unpin + 'static + Completable,
    {
        self.inner.borrow_mut().poll_op(op, cx)
    }

    pub(crate) fn poll_op_2(&self, index: usize, cx: &mut Context<'_>) -> Poll<cqueue::Entry> {
        self.inner.borrow_mut().poll_op_2(index, cx)
    }

    // ringd patch: works on the operation's `OpState`.
    pub(crate) fn poll_multishot_op<T>(
        &self,
        op: &mut OpState<T>,
        cx: &mut Context<'_>,
    ) -> Poll<T::Output>
    where
        T: Unpin + 'static + Completable + Updateable,
    {
        self.inner.borrow_mut().poll_multishot_op(op, cx)
    }

    // ringd patch: works on the operation's `OpState`.
    pub(crate) fn remove_op<T>(&self, op: &mut OpState<T>) {
        self.inner.borrow_mut().remove_op(op)
    }

    pub(crate) fn remove_op_2<T: 'static>(&self, index: usize, data: T) {
        self.inner.borrow_mut().remove_op_2(index, data)
    }
}

impl AsRawFd for Handle {
    fn as_raw_fd(&self) -> RawFd {
        // ringd patch: the driver's wait descriptor (the ring, or its eventfd).
        self.inner.borrow().as_raw_fd()
    }
}

impl From<Driver> for Handle {
    fn from(driver: Driver) -> Self {
        Self {
            inner: Rc::new(RefCell::new(driver)),
        }
    }
}
