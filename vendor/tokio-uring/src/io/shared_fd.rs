use std::future::poll_fn;

use std::{
    cell::{Cell, RefCell},
    io,
    os::unix::io::{FromRawFd, RawFd},
    rc::Rc,
    task::Waker,
};

use crate::runtime::driver::op::Op;

/// ringd patch: `$build`, an operation's entry, made with `$target` naming the file of `$fd`
/// (a `SharedFd`): its slot of the ring's file table when it has one (`types::Fixed`), else its
/// descriptor (`types::Fd`). io-uring's constructors take either type but name no type that
/// is both, so `$build` is expanded for each.
macro_rules! on_file {
    ($fd:expr, |$target:ident| $build:expr) => {
        match $fd.fixed_slot() {
            Some(slot) => {
                let $target = io_uring::types::Fixed(slot);
                $build
            }
            None => {
                let $target = io_uring::types::Fd($fd.raw_fd());
                $build
            }
        }
    };
}
pub(crate) use on_file;

// Tracks in-flight operations on a file descriptor. Ensures all in-flight
// operations complete before submitting the close.
//
// When closing the file descriptor because it is going out of scope, a synchronous close is
// employed.
//
// The closed state is tracked so close calls after the first are ignored.
// Only the first close call returns the true result of closing the file descriptor.
#[derive(Clone)]
pub(crate) struct SharedFd {
    inner: Rc<Inner>,
}

struct Inner {
    // Open file descriptor
    fd: RawFd,

    // Track the sharing state of the file descriptor:
    // normal, being waited on to allow a close by the parent's owner, or already closed.
    state: RefCell<State>,

    /// ringd patch: the slot of the ring's file table that also holds this file, if any
    /// (`TcpStream::register_fixed`); given back when the descriptor closes.
    slot: Cell<Option<u32>>,
}

enum State {
    /// Initial state
    Init,

    /// Waiting for the number of strong Rc pointers to drop to 1.
    WaitingForUniqueness(Waker),

    /// The close has been triggered by the parent owner.
    Closed,
}

impl SharedFd {
    pub(crate) fn new(fd: RawFd) -> SharedFd {
        SharedFd {
            inner: Rc::new(Inner {
                fd,
                state: RefCell::new(State::Init),
                slot: Cell::new(None),
            }),
        }
    }

    /// Returns the RawFd
    pub(crate) fn raw_fd(&self) -> RawFd {
        self.inner.fd
    }

    /// ringd patch: the file-table slot that holds this file, if it was registered.
    pub(crate) fn fixed_slot(&self) -> Option<u32> {
        self.inner.slot.get()
    }

    /// ringd patch: records the file-table slot that now holds this file.
    pub(crate) fn set_fixed_slot(&self, slot: u32) {
        self.inner.slot.set(Some(slot));
    }

    /// An FD cannot be closed until all in-flight operation have completed.
    /// This prevents bugs where in-flight reads could operate on the incorrect
    /// file descriptor.
    ///
    pub(crate) async fn close(&mut self) -> io::Result<()> {
        loop {
            // Get a mutable reference to Inner, indicating there are no
            // in-flight operations on the FD.
            if let Some(inner) = Rc::get_mut(&mut self.inner) {
                // Wait for the close operation.
                return inner.async_close_op().await;
            }

            self.sharedfd_is_unique().await;
        }
    }

    /// Completes when the SharedFd's Inner Rc strong count is 1.
    /// Gets polled any time a SharedFd is dropped.
    async fn sharedfd_is_unique(&self) {
        use std::task::Poll;

        poll_fn(|cx| {
            if Rc::<Inner>::strong_count(&self.inner) == 1 {
                return Poll::Ready(());
            }

            let mut state = self.inner.state.borrow_mut();

            match &mut *state {
                State::Init => {
                    *state = State::WaitingForUniqueness(cx.waker().clone());
                    Poll::Pending
                }
                State::WaitingForUniqueness(waker) => {
                    if !waker.will_wake(cx.waker()) {
                        waker.clone_from(cx.waker());
                    }

                    Poll::Pending
                }
                State::Closed => Poll::Ready(()),
            }
        })
        .await;
    }
}

impl Inner {
    async fn async_close_op(&mut self) -> io::Result<()> {
        // &mut self implies there are no outstanding operations.
        // If state already closed, the user closed multiple times; simply return Ok.
        // Otherwise, set state to closed and then submit and await the uring close operation.
        {
            // Release state guard before await.
            let state = RefCell::get_mut(&mut self.state);

            if let State::Closed = *state {
                return Ok(());
            }

            *state = State::Closed;
        }
        // ringd patch: the table's hold on the file goes before the descriptor does.
        self.release_slot();
        Op::close(self.fd)?.await
    }

    /// ringd patch: empties this file's table slot, if it has one, with the ring's next
    /// submission (`crate::runtime::driver::release_fixed_slot`).
    fn release_slot(&self) {
        if let Some(slot) = self.slot.take() {
            crate::runtime::driver::release_fixed_slot(slot);
        }
    }
}

impl Drop for SharedFd {
    fn drop(&mut self) {
        // If the SharedFd state is Waiting
        // The job of the SharedFd's drop is to possibly wake a task that is waiting for the
        // reference count to go down.
        use std::mem;

        // ringd patch: only the drop that leaves a single handle can end a wait for uniqueness
        // (`sharedfd_is_unique` waits for a count of 1), so every other drop (each operation's,
        // as it completes, while the stream's own handles remain) leaves the state alone.
        if Rc::strong_count(&self.inner) != 2 {
            return;
        }
        let mut state = self.inner.state.borrow_mut();
        if let State::WaitingForUniqueness(_) = *state {
            let state = &mut *state;
            if let State::WaitingForUniqueness(waker) = mem::replace(state, State::Init) {
                // Wake the task wanting to close this SharedFd and let it try again. If it finds
                // there are no more outstanding clones, it will succeed. Otherwise it will start a new
                // Future, waiting for another SharedFd to be dropped.
                waker.wake()
            }
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // ringd patch: no operation holds this file any more (each holds a `SharedFd`): its
        // table slot is emptied before the ring's next submission, which is when the file,
        // and so the socket, is really closed.
        self.release_slot();
        // If the inner state isn't `Closed`, the user hasn't called close().await
        // so do it synchronously.

        let state = self.state.borrow_mut();

        if let State::Closed = *state {
            return;
        }
        let _ = unsafe { std::fs::File::from_raw_fd(self.fd) };
    }
}
