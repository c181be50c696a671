//! ringd patch: a receive whose buffer the kernel selects from a [`BufRing`] when data arrives.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::io;
use std::rc::Rc;

use io_uring::{cqueue, opcode, squeue};

use crate::buf::provided::{ProvidedBuf, RingInner};
use crate::buf::BufRing;
use crate::io::{on_file, SharedFd};
use crate::runtime::driver::op::{Completable, CqeResult, Op};
use crate::runtime::CONTEXT;

pub(crate) struct RecvProvided {
    /// Holds a strong ref to the FD, preventing the file from being closed
    /// while the operation is in-flight.
    #[allow(dead_code)]
    fd: SharedFd,
    ring: Rc<RingInner>,
}

impl Op<RecvProvided> {
    #[inline]
    pub(crate) fn recv_provided(fd: &SharedFd, ring: &BufRing) -> io::Result<Op<RecvProvided>> {
        let ring = ring.inner().clone();
        let bgid = ring.bgid();
        CONTEXT.with(|x| {
            x.handle().expect("Not in a runtime context").submit_op(
                RecvProvided {
                    fd: fd.clone(),
                    ring,
                },
                |_| {
                    // Length 0: as much as the selected buffer holds.
                    // ringd patch: the file by its table slot, if it has one.
                    on_file!(fd, |file| opcode::Recv::new(file, std::ptr::null_mut(), 0)
                        .buf_group(bgid)
                        .build())
                    .flags(squeue::Flags::BUFFER_SELECT)
                },
            )
        })
    }
}

impl Completable for RecvProvided {
    /// `Ok(None)`: the end of the stream.
    type Output = io::Result<Option<ProvidedBuf>>;

    #[inline]
    fn complete(self, cqe: CqeResult) -> Self::Output {
        let buf = cqueue::buffer_select(cqe.flags).map(|bid| ProvidedBuf::new(self.ring, bid, 0));
        match cqe.result? {
            0 => Ok(None),
            n => match buf {
                Some(buf) => Ok(Some(buf.with_len(n))),
                None => Err(io::Error::other("a receive completed without its buffer")),
            },
        }
    }
}

/// A submitted receive into a provided buffer (see `TcpStream::recv_provided`): the operation
/// and nothing else, so that a connection waiting in it costs little memory.
pub struct ProvidedRecv {
    op: Result<Op<RecvProvided>, Option<io::Error>>,
}

impl ProvidedRecv {
    #[inline]
    pub(crate) fn new(fd: &SharedFd, ring: &BufRing) -> ProvidedRecv {
        ProvidedRecv {
            op: Op::recv_provided(fd, ring).map_err(Some),
        }
    }
}

impl Future for ProvidedRecv {
    type Output = io::Result<Option<ProvidedBuf>>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match &mut this.op {
            // Completed: the driver has let go of the op's slot, which the next op may take; the
            // op is not polled again (and its drop leaves the driver alone).
            Ok(op) if op.is_complete() => Poll::Ready(Err(io::Error::other("polled after completion"))),
            Ok(op) => Pin::new(op).poll(cx),
            Err(e) => Poll::Ready(Err(e
                .take()
                .unwrap_or_else(|| io::Error::other("polled after completion")))),
        }
    }
}

/// Gives back the buffer of a completion that no one will claim (its operation was dropped).
pub(crate) fn recycle_unclaimed(data: &dyn Any, flags: u32) {
    if let Some(bid) = cqueue::buffer_select(flags) {
        if let Some(Some(op)) = data.downcast_ref::<Option<RecvProvided>>() {
            op.ring.recycle(bid);
        }
    }
}
