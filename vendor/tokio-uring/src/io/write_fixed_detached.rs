//! ringd patch: a write of a fixed buffer whose completion wakes no one
//! ([`TcpStream::write_fixed_detached`](crate::net::TcpStream::write_fixed_detached)).
//!
//! The driver keeps the socket and the buffer in its table of detached writes until the write
//! has sent every byte: a short write is submitted again for the rest by the driver itself, as
//! its completion is dispatched. A write that sent everything gives its buffer back to its pool
//! and leaves the driver at once, waking no task; one that failed keeps its error in its slot
//! until its [`DetachedWrite`] is finished (and wakes the task that waits to finish it, if one
//! does).

use std::future::Future;
use std::io;
use std::mem::ManuallyDrop;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use io_uring::{opcode, squeue};

use crate::buf::fixed::FixedBuf;
use crate::buf::{BoundedBuf, Slice};
use crate::io::{on_file, SharedFd};
use crate::runtime::CONTEXT;

/// What the driver keeps of a detached write in flight.
pub(crate) struct DetachedData {
    /// Keeps the file open until the write is done.
    pub(crate) fd: SharedFd,
    /// What is left to write (`None` only while it is being moved).
    pub(crate) buf: Option<Slice<FixedBuf>>,
    /// The task waiting to finish the write, if one is.
    pub(crate) waker: Option<Waker>,
    /// The write's `DetachedWrite` was dropped unfinished: no one will ask for the outcome.
    pub(crate) abandoned: bool,
}

impl DetachedData {
    /// The entry that writes what is left.
    pub(crate) fn sqe(&self) -> squeue::Entry {
        let buf = self.buf.as_ref().expect("a detached write holds its buffer");
        let ptr = buf.stable_ptr();
        let len = buf.bytes_init();
        let index = buf.get_buf().buf_index();
        on_file!(self.fd, |file| opcode::WriteFixed::new(file, ptr, len as _, index)
            .offset(0)
            .build())
    }
}

/// A detached write in flight or done: its operation's slot and the number that tells it from
/// the slot's later operations. It must be finished ([`DetachedWrite::finish`],
/// [`DetachedWrite::try_finish`]) to learn whether every byte was sent; dropped unfinished, the
/// write goes on (a short write is not resumed) and its outcome is dropped.
#[derive(Debug)]
pub struct DetachedWrite {
    pub(crate) index: u32,
    pub(crate) gen: NonZeroU32,
}

impl DetachedWrite {
    /// The outcome if the write is over: `Ok(Ok(()))` when every byte was sent, `Ok(Err(_))`
    /// when it failed; `Err(self)` while it is still in flight.
    pub fn try_finish(self) -> Result<io::Result<()>, DetachedWrite> {
        match self.poll(None) {
            Poll::Ready(res) => {
                // The driver is done with the slot: nothing to give back on drop.
                let _ = ManuallyDrop::new(self);
                Ok(res)
            }
            Poll::Pending => Err(self),
        }
    }

    /// Waits until the write is over: `Ok` when every byte was sent.
    pub fn finish(self) -> Finish {
        Finish { write: Some(self) }
    }

    fn poll(&self, cx: Option<&mut Context<'_>>) -> Poll<io::Result<()>> {
        CONTEXT
            .try_with(|x| x.with_driver(|driver| driver.poll_detached(self.index, self.gen, cx.map(|cx| cx.waker()))))
            .ok()
            .flatten()
            // The driver is gone, and with it every write it had.
            .unwrap_or_else(|| Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())))
    }
}

impl Drop for DetachedWrite {
    fn drop(&mut self) {
        // Nothing to do once the driver (or the thread's context, as the thread ends) is gone:
        // the driver's drop let go of every write it had.
        let _ = CONTEXT.try_with(|x| x.with_driver(|driver| driver.abandon_detached(self.index, self.gen)));
    }
}

/// The future of [`DetachedWrite::finish`].
#[derive(Debug)]
pub struct Finish {
    write: Option<DetachedWrite>,
}

impl Future for Finish {
    type Output = io::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let write = this.write.as_ref().expect("a finished write polled again");
        let res = ready!(write.poll(Some(cx)));
        // The driver is done with the slot: nothing to give back on drop.
        let _ = ManuallyDrop::new(this.write.take());
        Poll::Ready(res)
    }
}
