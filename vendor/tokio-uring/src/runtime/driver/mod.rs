use crate::buf::fixed::FixedBuffers;
use crate::runtime::driver::op::{Completable, Lifecycle, OpState, Updateable}; // ringd patch: OpState
use io_uring::opcode::AsyncCancel;
use io_uring::{cqueue, squeue, IoUring};
use slab::Slab;
use std::cell::RefCell;
use std::os::unix::io::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::task::{Context, Poll};
use std::{io, mem};

pub(crate) use handle::*;

mod handle;
pub(crate) mod op;

pub(crate) struct Driver {
    /// In-flight operations
    ops: Ops,

    /// IoUring bindings
    uring: IoUring,

    /// Reference to the currently registered buffers.
    /// Ensures that the buffers are not dropped until
    /// after the io-uring runtime has terminated.
    fixed_buffers: Option<Rc<RefCell<dyn FixedBuffers>>>,

    /// ringd patch: registered provided-buffer rings, kept until the ring has stopped (declared
    /// after `uring`, so dropped after it).
    buf_rings: Vec<Rc<crate::buf::provided::RingInner>>,

    /// ringd patch: the free slots of the ring's sparse file table, once registered
    /// (`crate::register_files_sparse`).
    free_slots: Option<Vec<u32>>,

    /// ringd patch: with deferred task work (`crate::Builder::defer_taskrun`), the eventfd the
    /// kernel signals when it has completion work queued for this thread: what the runtime
    /// waits on instead of the ring, whose descriptor does not become readable for such work.
    wake_fd: Option<OwnedFd>,

    /// ringd patch: the ring defers its task work (`crate::Builder::defer_taskrun`): completions
    /// are posted only as this thread enters the ring with `IORING_ENTER_GETEVENTS`.
    defer: bool,

    /// ringd patch: `crate::Builder::park_in_poll`.
    poll_park: bool,
}

/// ringd patch: `io_uring_enter` runs the deferred task work and posts its completions.
const IORING_ENTER_GETEVENTS: u32 = 1;

thread_local! {
    /// ringd patch: file-table slots whose files closed, to be emptied with the ring's next
    /// submission. A file closes when its last `SharedFd` drops, which may be inside a borrow of
    /// the driver (an ignored operation's data dropped as its completion is dispatched), so the
    /// slot waits here rather than taking the driver.
    static RELEASED_SLOTS: std::cell::RefCell<Vec<u32>> = const { std::cell::RefCell::new(Vec::new()) };
    /// Whether `RELEASED_SLOTS` may hold slots: every submission and park asks, and a flag is
    /// cheaper to read than the list.
    static ANY_RELEASED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// ringd patch: empties `slot` of the file table with the next submission and frees it then.
pub(crate) fn release_fixed_slot(slot: u32) {
    RELEASED_SLOTS.with_borrow_mut(|released| released.push(slot));
    ANY_RELEASED.set(true);
}

/// ringd patch: what a released slot is updated with (-1: empty), read by the kernel as the
/// operation is issued; static, so it outlives every such operation.
static EMPTY_SLOT: [RawFd; 1] = [-1];

struct Ops {
    // When dropping the driver, all in-flight operations must have completed. This
    // type wraps the slab and ensures that, on drop, the slab is empty.
    // ringd patch: `OpSlots` instead of `slab::Slab`.
    lifecycle: OpSlots,

    /// Received but unserviced Op completions
    completions: Slab<op::Completion>,

    /// ringd patch: the detached writes in flight (see `crate::io::DetachedWrite`), by the
    /// `data` of their `Lifecycle::Detached`.
    detached: Slab<crate::io::DetachedData>,

    /// ringd patch: the slots of detached writes whose completion was short, to be submitted
    /// again for the rest once the completion queue is released.
    resubmit: Vec<usize>,

    /// ringd patch: the boxes of gathered detached writes that are over, for the next ones
    /// (an allocation and a free cost more than the rest of such a write's submission).
    spare_gathers: Vec<Box<crate::io::Gather>>,

    /// ringd patch: the number given to the next detached write (never 0).
    gen: u32,
}

impl Driver {
    /// ringd patch: `wake_fd`: with deferred task work, register the eventfd a thread that
    /// waits outside the ring needs (tokio's park); an executor that parks in the ring itself
    /// (`crate::Ring`) needs none.
    pub(crate) fn new(b: &crate::Builder, wake_fd: bool) -> io::Result<Driver> {
        // ringd patch: deferred task work, on request (see `crate::Builder::defer_taskrun`).
        let mut urb = b.urb.clone();
        if b.defer_taskrun {
            urb.setup_single_issuer()
                .setup_defer_taskrun()
                .setup_taskrun_flag();
        }
        let uring = urb.build(b.entries)?;
        // A kernel before 5.11 takes no timeout in `io_uring_enter` (`IORING_FEAT_EXT_ARG`).
        let poll_park = (b.park_in_poll || !uring.params().is_feature_ext_arg()) && !b.defer_taskrun;
        let wake_fd = if b.defer_taskrun && wake_fd {
            // SAFETY: eventfd(2) reads no memory of ours; it returns a new descriptor or -1.
            let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `fd` was just opened, and nothing else owns it.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            uring.submitter().register_eventfd(fd.as_raw_fd())?;
            Some(fd)
        } else {
            None
        };

        Ok(Driver {
            ops: Ops::new(),
            uring,
            fixed_buffers: None,
            buf_rings: Vec::new(),
            free_slots: None,
            wake_fd,
            defer: b.defer_taskrun,
            poll_park,
        })
    }

    /// ringd patch: registers a sparse file table of `slots` entries on the ring.
    pub(crate) fn register_files_sparse(&mut self, slots: u32) -> io::Result<()> {
        self.uring.submitter().register_files_sparse(slots)?;
        self.free_slots = Some((0..slots).rev().collect());
        Ok(())
    }

    /// ringd patch: a free slot of the file table, if it has one.
    pub(crate) fn take_fixed_slot(&mut self) -> Option<u32> {
        self.free_slots.as_mut()?.pop()
    }

    /// ringd patch: a slot taken and not used (its registration failed).
    pub(crate) fn return_fixed_slot(&mut self, slot: u32) {
        if let Some(free) = &mut self.free_slots {
            free.push(slot);
        }
    }

    /// ringd patch: queues the emptying of every released slot, ahead of anything queued
    /// after it (submission entries are issued in order, and an update is issued inline), and
    /// frees the slots for new files: a registration queued later lands after the emptying.
    #[inline]
    pub(crate) fn queue_released_slots(&mut self) {
        if ANY_RELEASED.replace(false) {
            self.queue_released_slots_now();
        }
    }

    #[cold]
    fn queue_released_slots_now(&mut self) {
        let mut released = RELEASED_SLOTS.with_borrow_mut(std::mem::take);
        while let Some(slot) = released.pop() {
            let sqe = io_uring::opcode::FilesUpdate::new(EMPTY_SLOT.as_ptr(), 1)
                .offset(slot as i32)
                .build()
                .user_data(u64::MAX);
            // SAFETY: the update reads one descriptor from `EMPTY_SLOT`, a static.
            while unsafe { self.uring.submission().push(&sqe).is_err() } {
                if self.submit_queued().is_err() {
                    // The queue is full and cannot be submitted now: these slots wait for the
                    // next submission (a slot is freed only once its emptying is queued).
                    released.push(slot);
                    RELEASED_SLOTS.with_borrow_mut(|later| later.append(&mut released));
                    ANY_RELEASED.set(true);
                    return;
                }
            }
            self.return_fixed_slot(slot);
        }
    }

    /// ringd patch: whether slots wait to be emptied (a reason to enter the kernel).
    pub(crate) fn has_released_slots() -> bool {
        ANY_RELEASED.get()
    }

    /// ringd patch: whether the ring must be entered before this thread waits or reads the
    /// completion queue: entries queued, slots to empty, overflowed completions to flush, or,
    /// with deferred task work, work the kernel has queued for this thread (it flags that
    /// work, and flags it again when one entry leaves some of it for the next).
    pub(crate) fn must_enter(&mut self) -> bool {
        let deferred = self.defer;
        let sq = self.uring.submission();
        !sq.is_empty() || sq.cq_overflow() || Self::has_released_slots() || (deferred && sq.taskrun())
    }

    /// ringd patch: with deferred task work, takes the eventfd's count before the thread waits,
    /// if every completion posted has been dispatched. The kernel signals it for every batch of
    /// completions posted too, most of them while this thread runs and dispatches them itself;
    /// a signal taken here ends no wait (epoll reports an eventfd only while its count is not
    /// zero). Completions are posted only while this thread is in the ring, so none can arrive
    /// between the look at the queue and the read; work queued before the count was taken is
    /// flagged (see `Driver::must_enter`), work queued after signals again. Completions left in
    /// the queue (posted by a submission that dispatched nothing) keep their signal, so the
    /// wait ends at once and dispatches them.
    pub(crate) fn drain_wake_fd(&mut self) {
        if self.wake_fd.is_none() || !self.uring.completion().is_empty() {
            return;
        }
        if let Some(fd) = &self.wake_fd {
            let mut count = 0u64;
            // SAFETY: reads at most 8 bytes into `count`, which outlives the call; the descriptor
            // is non-blocking, so an eventfd whose count is zero fails with `EAGAIN` at once.
            let _ = unsafe {
                libc::read(
                    fd.as_raw_fd(),
                    (&mut count as *mut u64).cast(),
                    std::mem::size_of::<u64>(),
                )
            };
        }
    }

    /// ringd patch: whether this ring defers its task work (see `crate::Builder::defer_taskrun`).
    pub(crate) fn defers_task_work(&self) -> bool {
        self.defer
    }

    /// ringd patch: submits what is queued, and with deferred task work runs that work too, so
    /// the completions it makes are in the queue when this returns. Waits for nothing.
    pub(crate) fn enter(&mut self) -> io::Result<usize> {
        if !self.defer {
            return self.uring.submit();
        }
        let queued = self.uring.submission().len() as u32;
        // SAFETY: no argument is passed (a null pointer of size zero); the entries submitted
        // are the ones pushed to the queue, whose data the driver keeps until they complete.
        unsafe {
            self.uring
                .submitter()
                .enter::<libc::sigset_t>(queued, 0, IORING_ENTER_GETEVENTS, None)
        }
    }

    /// ringd patch: see `crate::Ring::park`. Completions already in the queue with nothing to
    /// submit are dispatched without entering the ring; otherwise one `io_uring_enter` submits
    /// what is queued and waits for a completion, at most `timeout` (`None`: without limit;
    /// zero: no wait).
    pub(crate) fn park(&mut self, timeout: Option<std::time::Duration>) -> io::Result<usize> {
        let posted = {
            let mut cq = self.uring.completion();
            cq.sync();
            !cq.is_empty()
        };
        if posted || timeout == Some(std::time::Duration::ZERO) {
            return self.submit_and_dispatch();
        }
        if self.poll_park {
            return self.park_in_poll(timeout);
        }
        self.queue_released_slots();
        // Waiting for one completion asks for `IORING_ENTER_GETEVENTS`, which also runs
        // deferred task work.
        let entered = match timeout {
            None => self.uring.submit_and_wait(1),
            Some(limit) => {
                let ts = io_uring::types::Timespec::from(limit);
                let args = io_uring::types::SubmitArgs::new().timespec(&ts);
                self.uring.submitter().submit_with_args(1, &args)
            }
        };
        match entered {
            Ok(_) => {}
            // A timeout, a signal, completions waiting to be flushed, or no memory for the
            // submission this time: the wait ends as on a completion, the queue stays for the
            // next park.
            Err(e) if matches!(e.raw_os_error(), Some(libc::ETIME | libc::EINTR | libc::EBUSY | libc::EAGAIN)) => {}
            Err(e) => return Err(e),
        }
        self.uring.submission().sync();
        Ok(self.dispatch_completions())
    }

    /// ringd patch: the park of `crate::Builder::park_in_poll`: submits, then waits in `poll(2)`
    /// on the ring's descriptor if nothing completed (task work ends the wait with `EINTR`, as
    /// it ends any wait of this thread, and posts its completions on the way out).
    #[cold]
    fn park_in_poll(&mut self, timeout: Option<std::time::Duration>) -> io::Result<usize> {
        let done = self.submit_and_dispatch()?;
        if done > 0 {
            return Ok(done);
        }
        let ms = timeout.map_or(-1, |t| std::convert::TryFrom::try_from(t.as_nanos().div_ceil(1_000_000)).unwrap_or(i32::MAX));
        let mut ring = libc::pollfd {
            fd: self.uring.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `poll` reads and writes the one `pollfd` given, which outlives the call. Its
        // outcome (ready, timed out, interrupted) is read from the completion queue instead.
        let _ = unsafe { libc::poll(&mut ring, 1, ms) };
        Ok(self.dispatch_completions())
    }

    fn wait(&self) -> io::Result<usize> {
        self.uring.submit_and_wait(1)
    }

    // only used in tests rn
    #[allow(unused)]
    pub(super) fn num_operations(&self) -> usize {
        self.ops.lifecycle.len()
    }

    pub(crate) fn submit(&mut self) -> io::Result<()> {
        self.queue_released_slots();
        self.submit_queued()
    }

    /// `submit` without queuing the released slots first.
    fn submit_queued(&mut self) -> io::Result<()> {
        loop {
            // ringd patch: `enter` (which runs deferred task work) instead of `submit`.
            match self.enter() {
                Ok(_) => {
                    self.uring.submission().sync();
                    return Ok(());
                }
                Err(ref e) if e.raw_os_error() == Some(libc::EBUSY) => {
                    self.dispatch_completions();
                }
                Err(e) if e.raw_os_error() != Some(libc::EINTR) => {
                    return Err(e);
                }
                _ => continue,
            }
        }
    }

    /// ringd patch: returns how many completions there were.
    pub(crate) fn dispatch_completions(&mut self) -> usize {
        let mut cq = self.uring.completion();
        cq.sync();
        let mut count = 0;

        for cqe in cq {
            count += 1;
            if cqe.user_data() == u64::MAX {
                // Result of the cancellation action. There isn't anything we
                // need to do here. We must wait for the CQE for the operation
                // that was canceled.
                continue;
            }

            let index = cqe.user_data() as _;

            self.ops.complete(index, cqe);
        }
        // ringd patch: short detached writes go on with the rest.
        if !self.ops.resubmit.is_empty() {
            self.resubmit_detached();
        }
        count
    }

    /// ringd patch: submits a write of `buf` (all of it, resumed by the driver after a short
    /// write) to `fd`, followed by the body in `gather` if there is one; its completion wakes
    /// no one (see `crate::io::DetachedWrite`). Always inlined: into
    /// `TcpStream::write_fixed_detached` (a keep-alive answer's send, where `gather` is `None`
    /// and its checks fold away) and `submit_detached_then`.
    #[inline(always)]
    pub(crate) fn submit_detached(
        &mut self,
        fd: &crate::io::SharedFd,
        buf: crate::buf::Slice<crate::buf::fixed::FixedBuf>,
        gather: Option<Box<crate::io::Gather>>,
    ) -> crate::io::DetachedWrite {
        let gen = match std::num::NonZeroU32::new(self.ops.gen) {
            Some(gen) => gen,
            None => std::num::NonZeroU32::MIN,
        };
        self.ops.gen = gen.get().wrapping_add(1);
        let mut data = crate::io::DetachedData {
            fd: fd.clone(),
            buf: Some(buf),
            gather,
            waker: None,
            abandoned: false,
        };
        let sqe = data.sqe();
        let key = self.ops.detached.insert(data) as u32;
        let index = self.ops.lifecycle.insert(Lifecycle::Detached { data: key, gen });
        let sqe = sqe.user_data(index as _);
        // SAFETY: the entry reads the fixed buffer (and a gathered body, with its `iovec`s in
        // their box) held in the driver's table of detached writes until its completion, and
        // names a file whose `SharedFd` the table holds too.
        while unsafe { self.uring.submission().push(&sqe).is_err() } {
            if let Err(e) = self.submit() {
                // The kernel never saw the entry: the write fails at once.
                self.ops.detached.remove(key as usize);
                let errno = e.raw_os_error().unwrap_or(libc::EIO);
                if let Some(lifecycle) = self.ops.lifecycle.get_mut(index) {
                    *lifecycle = Lifecycle::DetachedFailed { gen, errno };
                }
                break;
            }
        }
        crate::io::DetachedWrite {
            index: index as u32,
            gen,
        }
    }

    /// ringd patch: `submit_detached` of `buf` followed by `body` (one `writev` that reads the
    /// body where it is), in a box kept spare if there is one.
    pub(crate) fn submit_detached_then(
        &mut self,
        fd: &crate::io::SharedFd,
        buf: crate::buf::Slice<crate::buf::fixed::FixedBuf>,
        body: bytes::Bytes,
    ) -> crate::io::DetachedWrite {
        let gather = self.ops.gather(body);
        self.submit_detached(fd, buf, Some(gather))
    }

    /// ringd patch: submits the rest of every short detached write, in the slot it had.
    #[cold]
    fn resubmit_detached(&mut self) {
        let mut resubmit = mem::take(&mut self.ops.resubmit);
        for index in resubmit.drain(..) {
            let Some(&Lifecycle::Detached { data, gen }) = self.ops.lifecycle.get(index) else {
                continue;
            };
            let sqe = self.ops.detached[data as usize].sqe().user_data(index as _);
            // SAFETY: as in `submit_detached`: the table holds the buffer and the file.
            while unsafe { self.uring.submission().push(&sqe).is_err() } {
                if let Err(e) = self.submit_queued() {
                    let errno = e.raw_os_error().unwrap_or(libc::EIO);
                    self.ops.fail_detached(index, data, gen, errno);
                    break;
                }
            }
        }
        // The vector's memory is kept for the next time.
        if self.ops.resubmit.is_empty() {
            self.ops.resubmit = resubmit;
        }
    }

    /// ringd patch: the outcome of the detached write `index`/`gen` if it is over (its slot is
    /// freed then); while it is in flight, `waker` (if any) is woken when it is over.
    #[inline]
    pub(crate) fn poll_detached(
        &mut self,
        index: u32,
        gen: std::num::NonZeroU32,
        waker: Option<&std::task::Waker>,
    ) -> Poll<io::Result<()>> {
        let index = index as usize;
        match self.ops.lifecycle.get(index) {
            Some(&Lifecycle::Detached { data, gen: g }) if g == gen => {
                if let Some(waker) = waker {
                    let slot = &mut self.ops.detached[data as usize].waker;
                    if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
                        *slot = Some(waker.clone());
                    }
                }
                Poll::Pending
            }
            Some(&Lifecycle::DetachedFailed { gen: g, errno }) if g == gen => {
                self.ops.lifecycle.remove(index);
                Poll::Ready(Err(match errno {
                    0 => io::ErrorKind::WriteZero.into(),
                    errno => io::Error::from_raw_os_error(errno),
                }))
            }
            // Done: it left the driver as it completed (the slot may be another's by now).
            _ => Poll::Ready(Ok(())),
        }
    }

    /// ringd patch: the `DetachedWrite` of `index`/`gen` was dropped unfinished: a write in
    /// flight leaves the driver as it completes, a failed one now.
    pub(crate) fn abandon_detached(&mut self, index: u32, gen: std::num::NonZeroU32) {
        let index = index as usize;
        match self.ops.lifecycle.get(index) {
            Some(&Lifecycle::Detached { data, gen: g }) if g == gen => {
                let data = &mut self.ops.detached[data as usize];
                data.abandoned = true;
                data.waker = None;
            }
            Some(&Lifecycle::DetachedFailed { gen: g, .. }) if g == gen => {
                self.ops.lifecycle.remove(index);
            }
            _ => {}
        }
    }

    /// ringd patch: submits what is queued (if anything) and dispatches the completions
    /// already posted, waking their tasks; returns how many there were (`Ring::park`'s no-wait
    /// case).
    pub(crate) fn submit_and_dispatch(&mut self) -> io::Result<usize> {
        if self.must_enter() {
            self.submit()?;
        }
        Ok(self.dispatch_completions())
    }

    pub(crate) fn register_buffers(
        &mut self,
        buffers: Rc<RefCell<dyn FixedBuffers>>,
    ) -> io::Result<()> {
        unsafe {
            self.uring
                .submitter()
                .register_buffers(buffers.borrow().iovecs())
        }?;

        self.fixed_buffers = Some(buffers);
        Ok(())
    }

    /// ringd patch: see `crate::buf::BufRing::register`.
    pub(crate) fn register_buf_ring(
        &mut self,
        ring: Rc<crate::buf::provided::RingInner>,
        count: u16,
    ) -> io::Result<()> {
        // SAFETY: the ring's memory lives as long as `ring`, which the driver keeps until its
        // io_uring has stopped.
        unsafe {
            self.uring
                .submitter()
                .register_buf_ring(ring.ring_addr(), count, ring.bgid())
        }?;
        self.buf_rings.push(ring);
        Ok(())
    }

    pub(crate) fn unregister_buffers(
        &mut self,
        buffers: Rc<RefCell<dyn FixedBuffers>>,
    ) -> io::Result<()> {
        if let Some(currently_registered) = &self.fixed_buffers {
            if Rc::ptr_eq(&buffers, currently_registered) {
                self.uring.submitter().unregister_buffers()?;
                self.fixed_buffers = None;
                return Ok(());
            }
        }
        Err(io::Error::new(
            io::ErrorKind::Other,
            "fixed buffers are not currently registered",
        ))
    }

    pub(crate) fn submit_op_2(&mut self, sqe: squeue::Entry) -> usize {
        let index = self.ops.insert();

        // Configure the SQE
        let sqe = sqe.user_data(index as _);

        // Push the new operation
        while unsafe { self.uring.submission().push(&sqe).is_err() } {
            // If the submission queue is full, flush it to the kernel
            self.submit().expect("Internal error, failed to submit ops");
        }

        index
    }

    // ringd patch: returns the operation's index; the handle builds the `Op` around it (it used
    // to be built here, and dropped here when the submission failed, while the driver was
    // borrowed). A submission that fails frees its slot: the kernel never saw the entry.
    pub(crate) fn submit_op<T, F>(&mut self, data: &mut T, f: F) -> io::Result<usize>
    where
        T: Completable,
        F: FnOnce(&mut T) -> squeue::Entry,
    {
        let index = self.ops.insert();

        // Configure the SQE
        let sqe = f(data).user_data(index as _);

        // Push the new operation
        while unsafe { self.uring.submission().push(&sqe).is_err() } {
            // If the submission queue is full, flush it to the kernel
            if let Err(e) = self.submit() {
                self.ops.remove(index);
                return Err(e);
            }
        }

        Ok(index)
    }

    // ringd patch: works on the operation's `OpState` (the driver is borrowed through its handle).
    pub(crate) fn remove_op<T>(&mut self, op: &mut OpState<T>) {
        // Get the Op Lifecycle state from the driver
        let (lifecycle, completions) = match self.ops.get_mut(op.index()) {
            Some(val) => val,
            None => {
                // Op dropped after the driver
                return;
            }
        };

        match mem::replace(lifecycle, Lifecycle::Submitted) {
            Lifecycle::Submitted | Lifecycle::Waiting(_) => {
                *lifecycle = Lifecycle::Ignored(Box::new(op.take_data()));
            }
            Lifecycle::Completed(cqe) => {
                // ringd patch: a completion no one will claim gives its provided buffer back.
                crate::io::recycle_unclaimed(&op.take_data(), cqe.flags());
                self.ops.remove(op.index());
            }
            Lifecycle::CompletionList(indices) => {
                // Deallocate list entries, recording if more CQE's are expected
                let more = {
                    let mut list = indices.into_list(completions);
                    cqueue::more(list.peek_end().unwrap().flags)
                    // Dropping list deallocates the list entries
                };
                if more {
                    // If more are expected, we have to keep the op around
                    *lifecycle = Lifecycle::Ignored(Box::new(op.take_data()));
                } else {
                    self.ops.remove(op.index());
                }
            }
            // ringd patch: a detached write is never an `Op`.
            Lifecycle::Ignored(..) | Lifecycle::Detached { .. } | Lifecycle::DetachedFailed { .. } => unreachable!(),
        }
    }

    pub(crate) fn remove_op_2<T: 'static>(&mut self, index: usize, data: T) {
        // Get the Op Lifecycle state from the driver
        let (lifecycle, completions) = match self.ops.get_mut(index) {
            Some(val) => val,
            None => {
                // Op dropped after the driver
                return;
            }
        };

        match mem::replace(lifecycle, Lifecycle::Submitted) {
            Lifecycle::Submitted | Lifecycle::Waiting(_) => {
                *lifecycle = Lifecycle::Ignored(Box::new(data));
            }
            Lifecycle::Completed(..) => {
                self.ops.remove(index);
            }
            Lifecycle::CompletionList(indices) => {
                // Deallocate list entries, recording if more CQE's are expected
                let more = {
                    let mut list = indices.into_list(completions);
                    cqueue::more(list.peek_end().unwrap().flags)
                    // Dropping list deallocates the list entries
                };
                if more {
                    // If more are expected, we have to keep the op around
                    *lifecycle = Lifecycle::Ignored(Box::new(data));
                } else {
                    self.ops.remove(index);
                }
            }
            // ringd patch: a detached write is never an `Op`.
            Lifecycle::Ignored(..) | Lifecycle::Detached { .. } | Lifecycle::DetachedFailed { .. } => unreachable!(),
        }
    }

    pub(crate) fn poll_op_2(&mut self, index: usize, cx: &mut Context<'_>) -> Poll<cqueue::Entry> {
        let (lifecycle, _) = self.ops.get_mut(index).expect("invalid internal state");

        // ringd patch: the state is looked at in place (it was moved out and back each poll).
        match lifecycle {
            Lifecycle::Submitted => {
                *lifecycle = Lifecycle::Waiting(cx.waker().clone());
                Poll::Pending
            }
            Lifecycle::Waiting(waker) => {
                if !waker.will_wake(cx.waker()) {
                    *waker = cx.waker().clone();
                }
                Poll::Pending
            }
            // ringd patch: a detached write is never an `Op`.
            Lifecycle::Ignored(..) | Lifecycle::Detached { .. } | Lifecycle::DetachedFailed { .. } => unreachable!(),
            Lifecycle::Completed(cqe) => {
                let cqe = cqe.clone();
                self.ops.remove(index);
                Poll::Ready(cqe)
            }
            Lifecycle::CompletionList(..) => {
                unreachable!("No `more` flag set for SingleCQE")
            }
        }
    }

    // ringd patch: works on the operation's `OpState` (the driver is borrowed through its handle).
    pub(crate) fn poll_op<T>(&mut self, op: &mut OpState<T>, cx: &mut Context<'_>) -> Poll<T::Output>
    where
        T: Unpin + 'static + Completable,
    {
        let (lifecycle, _) = self
            .ops
            .get_mut(op.index())
            .expect("invalid internal state");

        // ringd patch: the state is looked at in place (it was moved out and back each poll).
        match lifecycle {
            Lifecycle::Submitted => {
                *lifecycle = Lifecycle::Waiting(cx.waker().clone());
                Poll::Pending
            }
            Lifecycle::Waiting(waker) => {
                if !waker.will_wake(cx.waker()) {
                    *waker = cx.waker().clone();
                }
                Poll::Pending
            }
            // ringd patch: a detached write is never an `Op`.
            Lifecycle::Ignored(..) | Lifecycle::Detached { .. } | Lifecycle::DetachedFailed { .. } => unreachable!(),
            Lifecycle::Completed(cqe) => {
                let cqe = cqe.clone();
                self.ops.remove(op.index());
                Poll::Ready(op.take_data().unwrap().complete(cqe.into()))
            }
            Lifecycle::CompletionList(..) => {
                unreachable!("No `more` flag set for SingleCQE")
            }
        }
    }

    // ringd patch: works on the operation's `OpState` (the driver is borrowed through its handle).
    pub(crate) fn poll_multishot_op<T>(
        &mut self,
        op: &mut OpState<T>,
        cx: &mut Context<'_>,
    ) -> Poll<T::Output>
    where
        T: Unpin + 'static + Completable + Updateable,
    {
        let (lifecycle, completions) = self
            .ops
            .get_mut(op.index())
            .expect("invalid internal state");

        match mem::replace(lifecycle, Lifecycle::Submitted) {
            Lifecycle::Submitted => {
                *lifecycle = Lifecycle::Waiting(cx.waker().clone());
                Poll::Pending
            }
            Lifecycle::Waiting(waker) if !waker.will_wake(cx.waker()) => {
                *lifecycle = Lifecycle::Waiting(cx.waker().clone());
                Poll::Pending
            }
            Lifecycle::Waiting(waker) => {
                *lifecycle = Lifecycle::Waiting(waker);
                Poll::Pending
            }
            // ringd patch: a detached write is never an `Op`.
            Lifecycle::Ignored(..) | Lifecycle::Detached { .. } | Lifecycle::DetachedFailed { .. } => unreachable!(),
            Lifecycle::Completed(cqe) => {
                // This is possible. We may have previously polled a CompletionList,
                // and the final CQE registered as Completed
                self.ops.remove(op.index());
                Poll::Ready(op.take_data().unwrap().complete(cqe.into()))
            }
            Lifecycle::CompletionList(indices) => {
                let mut data = op.take_data().unwrap();
                let mut status = Poll::Pending;
                // Consume the CqeResult list, calling update on the Op on all Cqe's flagged `more`
                // If the final Cqe is present, clean up and return Poll::Ready
                for cqe in indices.into_list(completions) {
                    if cqueue::more(cqe.flags) {
                        data.update(cqe);
                    } else {
                        status = Poll::Ready(cqe);
                        break;
                    }
                }
                match status {
                    Poll::Pending => {
                        // We need more CQE's. Restore the op state
                        op.insert_data(data);
                        *lifecycle = Lifecycle::Waiting(cx.waker().clone());
                        Poll::Pending
                    }
                    Poll::Ready(cqe) => {
                        self.ops.remove(op.index());
                        Poll::Ready(data.complete(cqe))
                    }
                }
            }
        }
    }
}

/// What the runtime waits on for completions: the ring, or with deferred task work the
/// eventfd the kernel signals instead (ringd patch).
impl AsRawFd for Driver {
    fn as_raw_fd(&self) -> RawFd {
        match &self.wake_fd {
            Some(fd) => fd.as_raw_fd(),
            None => self.uring.as_raw_fd(),
        }
    }
}

/// Drop the driver, cancelling any in-progress ops and waiting for them to terminate.
///
/// This first cancels all ops and then waits for them to be moved to the completed lifecycle phase.
///
/// It is possible for this to be run without previously dropping the runtime, but this should only
/// be possible in the case of [`std::process::exit`].
///
/// This depends on us knowing when ops are completed and done firing.
/// When multishot ops are added (support exists but none are implemented), a way to know if such
/// an op is finished MUST be added, otherwise our shutdown process is unsound.
impl Drop for Driver {
    fn drop(&mut self) {
        // get all ops in flight for cancellation
        while !self.uring.submission().is_empty() {
            self.submit().expect("Internal error when dropping driver");
        }

        // Pre-determine what to cancel
        // After this pass, all LifeCycles will be marked either as Completed or Ignored, as appropriate
        for (_, cycle) in self.ops.lifecycle.iter_mut() {
            match std::mem::replace(cycle, Lifecycle::Ignored(Box::new(()))) {
                lc @ Lifecycle::Completed(_) => {
                    // don't cancel completed items
                    *cycle = lc;
                }

                // ringd patch: a failed detached write is no longer the kernel's (the loop below
                // removes it).
                lc @ Lifecycle::DetachedFailed { .. } => {
                    *cycle = lc;
                }

                Lifecycle::CompletionList(indices) => {
                    let mut list = indices.clone().into_list(&mut self.ops.completions);
                    if !io_uring::cqueue::more(list.peek_end().unwrap().flags) {
                        // This op is complete. Replace with a null Completed entry
                        // safety: zeroed memory is entirely valid with this underlying
                        // representation
                        *cycle = Lifecycle::Completed(unsafe { mem::zeroed() });
                    }
                }

                _ => {
                    // All other states need cancelling.
                    // The mem::replace means these are now marked Ignored.
                }
            }
        }

        // Submit cancellation for all ops marked Ignored
        for (id, cycle) in self.ops.lifecycle.iter_mut() {
            if let Lifecycle::Ignored(..) = cycle {
                unsafe {
                    while self
                        .uring
                        .submission()
                        .push(&AsyncCancel::new(id as u64).build().user_data(u64::MAX))
                        .is_err()
                    {
                        self.uring
                            .submit_and_wait(1)
                            .expect("Internal error when dropping driver");
                    }
                }
            }
        }

        // Wait until all Lifetimes have been removed from the slab.
        //
        // Ignored entries will be removed from the Lifecycle slab
        // by the complete logic called by `tick()`
        //
        // Completed Entries are removed here directly
        let mut id = 0;
        loop {
            if self.ops.lifecycle.is_empty() {
                break;
            }
            // Cycles are either all ignored or complete
            // If there is at least one Ignored still to process, call wait
            match self.ops.lifecycle.get(id) {
                Some(Lifecycle::Ignored(..)) => {
                    // If waiting fails, ignore the error. The wait will be attempted
                    // again on the next loop.
                    let _ = self.wait();
                    self.dispatch_completions();
                }

                Some(_) => {
                    // Remove Completed entries
                    // ringd patch: `OpSlots::remove` returns nothing.
                    self.ops.lifecycle.remove(id);
                    id += 1;
                }

                None => {
                    id += 1;
                }
            }
        }
        // ringd patch: every detached write has completed or been cancelled: the kernel reads
        // their buffers no more.
        self.ops.detached.clear();
    }
}

// ringd patch: `OpSlots` for the lifecycles, and every method inlined.
impl Ops {
    fn new() -> Ops {
        Ops {
            lifecycle: OpSlots::with_capacity(64),
            completions: Slab::with_capacity(64),
            detached: Slab::new(),
            resubmit: Vec::new(),
            spare_gathers: Vec::new(),
            gen: 1,
        }
    }

    #[inline]
    fn get_mut(&mut self, index: usize) -> Option<(&mut op::Lifecycle, &mut Slab<op::Completion>)> {
        let completions = &mut self.completions;
        self.lifecycle
            .get_mut(index)
            .map(|lifecycle| (lifecycle, completions))
    }

    // Insert a new operation
    #[inline(always)]
    fn insert(&mut self) -> usize {
        self.lifecycle.insert(op::Lifecycle::Submitted)
    }

    // Remove an operation
    #[inline]
    fn remove(&mut self, index: usize) {
        self.lifecycle.remove(index);
    }

    #[inline]
    fn complete(&mut self, index: usize, cqe: cqueue::Entry) {
        let completions = &mut self.completions;
        let Some(lifecycle) = self.lifecycle.get_mut(index) else {
            panic!("a completion for no operation ({})", index);
        };
        // ringd patch: the common case first, in place: a task waits for its one completion.
        if !cqueue::more(cqe.flags()) {
            if let Lifecycle::Waiting(_) = lifecycle {
                if let Lifecycle::Waiting(waker) =
                    mem::replace(lifecycle, Lifecycle::Completed(cqe))
                {
                    waker.wake();
                }
                return;
            }
            // ringd patch: a detached write, which wakes no one unless it failed.
            if let Lifecycle::Detached { data, gen } = *lifecycle {
                self.complete_detached(index, data, gen, cqe.result());
                return;
            }
        }
        if lifecycle.complete(completions, cqe) {
            self.lifecycle.remove(index);
        }
    }

    /// ringd patch: the box of a gathered detached write of `body`, a spare one if there is.
    #[inline(never)]
    fn gather(&mut self, body: bytes::Bytes) -> Box<crate::io::Gather> {
        match self.spare_gathers.pop() {
            Some(mut gather) => {
                gather.reuse(body);
                gather
            }
            None => crate::io::Gather::new(body),
        }
    }

    /// ringd patch: keeps the box of a gathered detached write that is over, for the next.
    #[inline(never)]
    fn keep_gather(&mut self, mut gather: Box<crate::io::Gather>) {
        if self.spare_gathers.len() < SPARE_GATHERS {
            gather.release();
            self.spare_gathers.push(gather);
        }
    }

    /// ringd patch: the completion of the detached write in slot `index` (its data at `data`):
    /// a short write is queued to go on with the rest; one that sent everything leaves the
    /// driver (its buffer goes back to its pool); a failed one keeps its error.
    #[inline]
    fn complete_detached(&mut self, index: usize, data: u32, gen: std::num::NonZeroU32, res: i32) {
        let entry = &mut self.detached[data as usize];
        if res > 0 {
            if entry.advance(res as usize) {
                if !entry.abandoned {
                    self.resubmit.push(index);
                    return;
                }
            } else {
                // Everything is sent: the buffer went back, no one is woken unless it waits.
                let mut entry = self.detached.remove(data as usize);
                if let Some(gather) = entry.gather.take() {
                    self.keep_gather(gather);
                }
                self.lifecycle.remove(index);
                if let Some(waker) = entry.waker {
                    waker.wake();
                }
                return;
            }
        }
        let errno = if res < 0 { -res } else { 0 };
        self.fail_detached(index, data, gen, errno);
    }

    /// ringd patch: the detached write in slot `index` is over without sending everything: its
    /// data goes, and its error stays for its `DetachedWrite` (unless that was dropped).
    #[cold]
    fn fail_detached(&mut self, index: usize, data: u32, gen: std::num::NonZeroU32, errno: i32) {
        let entry = self.detached.remove(data as usize);
        if entry.abandoned {
            self.lifecycle.remove(index);
        } else if let Some(lifecycle) = self.lifecycle.get_mut(index) {
            *lifecycle = Lifecycle::DetachedFailed { gen, errno };
        }
        drop(entry.fd);
        drop(entry.buf);
        if let Some(waker) = entry.waker {
            waker.wake();
        }
    }
}

/// ringd patch: the boxes of gathered detached writes kept for reuse at most
/// (`Ops::spare_gathers`).
const SPARE_GATHERS: usize = 64;

/// ringd patch: the lifecycles of the operations in flight, by index (their entries'
/// `user_data`): a vector whose vacant entries link the free indices, as in `slab::Slab`, with
/// only what the driver needs, every step small enough to inline into its paths.
struct OpSlots {
    entries: Vec<OpSlot>,
    /// The first vacant index (`entries.len()` when none is).
    next: usize,
    len: usize,
}

enum OpSlot {
    /// Free; holds the next free index.
    Vacant(usize),
    Used(op::Lifecycle),
}

impl OpSlots {
    fn with_capacity(capacity: usize) -> OpSlots {
        OpSlots {
            entries: Vec::with_capacity(capacity),
            next: 0,
            len: 0,
        }
    }

    fn len(&self) -> usize {
        self.len
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline(always)]
    fn insert(&mut self, lifecycle: op::Lifecycle) -> usize {
        let index = self.next;
        let Some(slot) = self.entries.get_mut(index) else {
            return self.push(lifecycle);
        };
        let OpSlot::Vacant(next) = *slot else {
            unreachable!("the free list names a used slot")
        };
        self.next = next;
        *slot = OpSlot::Used(lifecycle);
        self.len += 1;
        index
    }

    /// `insert` with no slot free: a new one.
    #[cold]
    fn push(&mut self, lifecycle: op::Lifecycle) -> usize {
        let index = self.entries.len();
        self.entries.push(OpSlot::Used(lifecycle));
        self.next = index + 1;
        self.len += 1;
        index
    }

    #[inline]
    fn get(&self, index: usize) -> Option<&op::Lifecycle> {
        match self.entries.get(index) {
            Some(OpSlot::Used(lifecycle)) => Some(lifecycle),
            _ => None,
        }
    }

    #[inline]
    fn get_mut(&mut self, index: usize) -> Option<&mut op::Lifecycle> {
        match self.entries.get_mut(index) {
            Some(OpSlot::Used(lifecycle)) => Some(lifecycle),
            _ => None,
        }
    }

    /// Frees `index` (a used slot) and drops its lifecycle.
    #[inline]
    fn remove(&mut self, index: usize) {
        let slot = &mut self.entries[index];
        if let OpSlot::Used(_) = slot {
            drop(mem::replace(slot, OpSlot::Vacant(self.next)));
            self.next = index;
            self.len -= 1;
        }
    }

    fn iter(&self) -> impl Iterator<Item = (usize, &op::Lifecycle)> {
        self.entries
            .iter()
            .enumerate()
            .filter_map(|(i, slot)| match slot {
                OpSlot::Used(lifecycle) => Some((i, lifecycle)),
                OpSlot::Vacant(_) => None,
            })
    }

    fn iter_mut(&mut self) -> impl Iterator<Item = (usize, &mut op::Lifecycle)> {
        self.entries
            .iter_mut()
            .enumerate()
            .filter_map(|(i, slot)| match slot {
                OpSlot::Used(lifecycle) => Some((i, lifecycle)),
                OpSlot::Vacant(_) => None,
            })
    }

    #[cfg(test)]
    fn clear(&mut self) {
        self.entries.clear();
        self.next = 0;
        self.len = 0;
    }
}

impl Drop for Ops {
    fn drop(&mut self) {
        assert!(self
            .lifecycle
            .iter()
            .all(|(_, cycle)| matches!(cycle, Lifecycle::Completed(_))))
    }
}

#[cfg(test)]
mod test {
    use std::rc::Rc;

    use crate::runtime::driver::op::{Completable, CqeResult, Op};
    use crate::runtime::CONTEXT;
    use tokio_test::{assert_pending, assert_ready, task};

    use super::*;

    #[derive(Debug)]
    pub(crate) struct Completion {
        result: io::Result<u32>,
        flags: u32,
        data: Rc<()>,
    }

    impl Completable for Rc<()> {
        type Output = Completion;

        fn complete(self, cqe: CqeResult) -> Self::Output {
            Completion {
                result: cqe.result,
                flags: cqe.flags,
                data: self.clone(),
            }
        }
    }

    #[test]
    fn op_stays_in_slab_on_drop() {
        let (op, data) = init();
        drop(op);

        assert_eq!(2, Rc::strong_count(&data));

        assert_eq!(1, num_operations());
        release();
    }

    #[test]
    fn poll_op_once() {
        let (op, data) = init();
        let mut op = task::spawn(op);
        assert_pending!(op.poll());
        assert_eq!(2, Rc::strong_count(&data));

        complete(&op);
        assert_eq!(1, num_operations());
        assert_eq!(2, Rc::strong_count(&data));

        assert!(op.is_woken());
        let Completion {
            result,
            flags,
            data: d,
        } = assert_ready!(op.poll());
        assert_eq!(2, Rc::strong_count(&data));
        assert_eq!(0, result.unwrap());
        assert_eq!(0, flags);

        drop(d);
        assert_eq!(1, Rc::strong_count(&data));

        drop(op);
        assert_eq!(0, num_operations());

        release();
    }

    #[test]
    fn poll_op_twice() {
        {
            let (op, ..) = init();
            let mut op = task::spawn(op);
            assert_pending!(op.poll());
            assert_pending!(op.poll());

            complete(&op);

            assert!(op.is_woken());
            let Completion { result, flags, .. } = assert_ready!(op.poll());
            assert_eq!(0, result.unwrap());
            assert_eq!(0, flags);
        }

        release();
    }

    #[test]
    fn poll_change_task() {
        {
            let (op, ..) = init();
            let mut op = task::spawn(op);
            assert_pending!(op.poll());

            let op = op.into_inner();
            let mut op = task::spawn(op);
            assert_pending!(op.poll());

            complete(&op);

            assert!(op.is_woken());
            let Completion { result, flags, .. } = assert_ready!(op.poll());
            assert_eq!(0, result.unwrap());
            assert_eq!(0, flags);
        }

        release();
    }

    #[test]
    fn complete_before_poll() {
        let (op, data) = init();
        let mut op = task::spawn(op);
        complete(&op);
        assert_eq!(1, num_operations());
        assert_eq!(2, Rc::strong_count(&data));

        let Completion { result, flags, .. } = assert_ready!(op.poll());
        assert_eq!(0, result.unwrap());
        assert_eq!(0, flags);

        drop(op);
        assert_eq!(0, num_operations());

        release();
    }

    #[test]
    fn complete_after_drop() {
        let (op, data) = init();
        let index = op.index();
        drop(op);

        assert_eq!(2, Rc::strong_count(&data));

        assert_eq!(1, num_operations());

        CONTEXT.with(|cx| {
            cx.handle()
                .unwrap()
                .inner
                .borrow_mut()
                .ops
                .complete(index, unsafe { mem::zeroed() })
        });

        assert_eq!(1, Rc::strong_count(&data));
        assert_eq!(0, num_operations());

        release();
    }

    fn init() -> (Op<Rc<()>>, Rc<()>) {
        let driver = Driver::new(&crate::builder(), true).unwrap();
        let data = Rc::new(());

        let op = CONTEXT.with(|cx| {
            cx.set_handle(driver.into());

            let driver = cx.handle().unwrap();

            let index = driver.inner.borrow_mut().ops.insert();

            // ringd patch: the operation takes the strong handle.
            Op::new(driver, data.clone(), index)
        });

        (op, data)
    }

    fn num_operations() -> usize {
        CONTEXT.with(|cx| cx.handle().unwrap().inner.borrow().num_operations())
    }

    fn complete(op: &Op<Rc<()>>) {
        let cqe = unsafe { mem::zeroed() };

        CONTEXT.with(|cx| {
            let driver = cx.handle().unwrap();

            driver.inner.borrow_mut().ops.complete(op.index(), cqe);
        });
    }

    fn release() {
        CONTEXT.with(|cx| {
            let driver = cx.handle().unwrap();

            driver.inner.borrow_mut().ops.lifecycle.clear();
            driver.inner.borrow_mut().ops.completions.clear();

            cx.unset_driver();
        });
    }
}
