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
    /// What is left to write of the fixed buffer (`None` only while it is being moved).
    pub(crate) buf: Option<Slice<FixedBuf>>,
    /// A body written after the fixed buffer's bytes, from its own memory (`writev`).
    pub(crate) gather: Option<Box<Gather>>,
    /// The task waiting to finish the write, if one is.
    pub(crate) waker: Option<Waker>,
    /// The write's `DetachedWrite` was dropped unfinished: no one will ask for the outcome.
    pub(crate) abandoned: bool,
}

/// The body of a gathered detached write, and the two pieces as the kernel reads them. Boxed:
/// the kernel may read the `iovec`s until the write completes, so they must not move with
/// the table's slots.
pub(crate) struct Gather {
    iov: [libc::iovec; 2],
    body: bytes::Bytes,
    /// How much of `body` is sent.
    sent: usize,
}

impl Gather {
    pub(crate) fn new(body: bytes::Bytes) -> Box<Gather> {
        let empty = libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        };
        Box::new(Gather {
            iov: [empty, empty],
            body,
            sent: 0,
        })
    }

    /// Makes a spare box the one of a write of `body`.
    pub(crate) fn reuse(&mut self, body: bytes::Bytes) {
        self.body = body;
        self.sent = 0;
    }

    /// Lets go of the body, to keep the box spare.
    pub(crate) fn release(&mut self) {
        self.body = bytes::Bytes::new();
    }
}

impl DetachedData {
    /// The entry that writes what is left.
    #[inline(always)]
    pub(crate) fn sqe(&mut self) -> squeue::Entry {
        if self.gather.is_some() {
            return self.gathered_sqe();
        }
        let buf = self.buf.as_ref().expect("a detached write holds its buffer");
        let ptr = buf.stable_ptr();
        let len = buf.bytes_init();
        let index = buf.get_buf().buf_index();
        on_file!(self.fd, |file| opcode::WriteFixed::new(file, ptr, len as _, index)
            .offset(0)
            .build())
    }

    /// [`sqe`](Self::sqe) of a gathered write: a `writev` of what is left of the fixed buffer
    /// and of the body.
    #[inline(never)]
    fn gathered_sqe(&mut self) -> squeue::Entry {
        let buf = self.buf.as_ref().expect("a detached write holds its buffer");
        let g = self.gather.as_mut().expect("a gathered write");
        let rest = &g.body[g.sent..];
        g.iov = [
            libc::iovec {
                iov_base: buf.stable_ptr() as *mut _,
                iov_len: buf.bytes_init(),
            },
            libc::iovec {
                iov_base: rest.as_ptr() as *mut _,
                iov_len: rest.len(),
            },
        ];
        let iov = g.iov.as_ptr();
        on_file!(self.fd, |file| opcode::Writev::new(file, iov, 2).offset(0).build())
    }

    /// Takes `written` bytes off what is left; whether anything is left.
    #[inline(always)]
    pub(crate) fn advance(&mut self, written: usize) -> bool {
        if self.gather.is_some() {
            return self.advance_gathered(written);
        }
        let buf = self.buf.take().expect("a detached write holds its buffer");
        if written >= buf.bytes_init() {
            // Dropped here: the buffer goes back to its pool.
            return false;
        }
        self.buf = Some(buf.slice(written..));
        true
    }

    /// [`advance`](Self::advance) of a gathered write.
    #[inline(never)]
    fn advance_gathered(&mut self, written: usize) -> bool {
        let buf = self.buf.take().expect("a detached write holds its buffer");
        let g = self.gather.as_mut().expect("a gathered write");
        let head = buf.bytes_init();
        if written >= head + (g.body.len() - g.sent) {
            // Dropped here: the buffer goes back to its pool.
            return false;
        }
        let taken = written.min(head);
        self.buf = Some(buf.slice(taken..));
        g.sent += written - taken;
        true
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
    // ringd patch: inlined, with the lookup below: a keep-alive connection finishes one a
    // request.
    #[inline]
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

    #[inline]
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::fixed::FixedBufPool;
    use std::os::fd::IntoRawFd;

    /// What the next entry of `data` writes: the two pieces of a gathered write.
    fn pieces(data: &mut DetachedData) -> Vec<u8> {
        let _ = data.sqe();
        let g = data.gather.as_ref().unwrap();
        let mut out = Vec::new();
        for iov in &g.iov {
            // SAFETY: the entry's `iovec`s point into the fixed buffer and the body, both held
            // by `data`, for their lengths.
            out.extend_from_slice(unsafe { std::slice::from_raw_parts(iov.iov_base as *const u8, iov.iov_len) });
        }
        out
    }

    #[test]
    fn a_gathered_write_goes_on_where_the_kernel_stopped() {
        let pool = FixedBufPool::new([b"HEAD:12345".to_vec()]);
        let body = bytes::Bytes::from_static(b"the body that follows");
        let whole = [&b"HEAD:12345"[..], &body[..]].concat();
        // Every way the kernel can cut it: within the head, at its end, within the body.
        for first in 1..whole.len() {
            for second in 1..=(whole.len() - first) {
                let buf = pool.try_next(10).unwrap();
                let fd = std::fs::File::open("/dev/null").unwrap().into_raw_fd();
                let mut data = DetachedData {
                    fd: SharedFd::new(fd),
                    buf: Some(buf.slice(0..10)),
                    gather: Some(Gather::new(body.clone())),
                    waker: None,
                    abandoned: false,
                };
                assert_eq!(pieces(&mut data), whole);
                assert!(data.advance(first));
                assert_eq!(pieces(&mut data), whole[first..], "after {first}");
                let left = whole.len() - first - second;
                assert_eq!(data.advance(second), left > 0, "after {first} + {second}");
                if left > 0 {
                    assert_eq!(pieces(&mut data), whole[first + second..]);
                    assert!(!data.advance(left));
                }
                // Everything is written: the fixed buffer is back in the pool.
                assert!(data.buf.is_none());
                drop(data);
            }
        }
        assert!(pool.try_next(10).is_some());
    }
}
