//! ringd patch: a multishot receive whose buffers the kernel selects from a [`BufRing`] as
//! data arrives.

use std::any::Any;
use std::io;
use std::rc::Rc;
use std::task::{Context, Poll};

use io_uring::{cqueue, opcode, types};

use crate::buf::provided::{ProvidedBuf, RingInner};
use crate::buf::BufRing;
use crate::io::SharedFd;
use crate::runtime::driver::op::{Completable, CqeResult, MultiCQEStream, Op};
use crate::runtime::CONTEXT;

pub(crate) struct RecvProvided {
    /// Holds a strong ref to the FD, preventing the file from being closed
    /// while the operation is in-flight.
    #[allow(dead_code)]
    fd: SharedFd,
    ring: Rc<RingInner>,
}

impl Completable for RecvProvided {
    type Output = ();

    /// Not used: a multishot receive's completions are taken one at a time
    /// (`MultiRecv::poll_next`). Should one arrive here, its buffer goes back to the ring.
    fn complete(self, cqe: CqeResult) {
        if let Some(bid) = cqueue::buffer_select(cqe.flags) {
            self.ring.recycle(bid);
        }
    }
}

/// ringd patch: a receive that stays armed (`IORING_RECV_MULTISHOT`): each arrival of data
/// takes a buffer from the ring and posts one completion, with no new submission per read.
/// It ends when the stream does, on an error, or when the ring is empty (`ENOBUFS`); polled
/// again after that, it arms a new one. Dropped while armed, it is cancelled.
pub struct MultiRecv {
    fd: SharedFd,
    ring: BufRing,
    op: Option<Op<RecvProvided, MultiCQEStream>>,
    /// The armed operation posted its last completion.
    finished: bool,
}

impl MultiRecv {
    pub(crate) fn new(fd: &SharedFd, ring: &BufRing) -> MultiRecv {
        MultiRecv {
            fd: fd.clone(),
            ring: ring.clone(),
            op: None,
            finished: false,
        }
    }

    /// Whether a receive is armed now (polling will not submit one).
    pub fn is_armed(&self) -> bool {
        self.op.is_some() && !self.finished
    }

    /// The next arrival of data: `Ok(None)` is the end of the stream, `ENOBUFS` an empty ring
    /// (nothing was lost: the data waits in the socket).
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<ProvidedBuf>>> {
        if self.op.is_none() || self.finished {
            self.finished = false;
            self.op = None;
            let ring = self.ring.inner().clone();
            let bgid = ring.bgid();
            let fd = &self.fd;
            let op = CONTEXT.with(|x| {
                x.handle().expect("Not in a runtime context").submit_op(
                    RecvProvided { fd: fd.clone(), ring },
                    |_| {
                        opcode::RecvMulti::new(types::Fd(fd.raw_fd()), bgid).build()
                    },
                )
            });
            match op {
                Ok(op) => self.op = Some(op),
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        let op = self.op.as_ref().expect("armed above");
        let cqe = ready!(op.poll_next_cqe(cx));
        if !cqueue::more(cqe.flags) {
            self.finished = true;
        }
        let ring = op.data().expect("an armed op has its data").ring.clone();
        let buf = cqueue::buffer_select(cqe.flags).map(|bid| ProvidedBuf::new(ring, bid, 0));
        Poll::Ready(match cqe.result {
            Ok(0) => Ok(None),
            Ok(n) => match buf {
                Some(buf) => Ok(Some(buf.with_len(n))),
                None => Err(io::Error::other("a receive completed without its buffer")),
            },
            Err(e) => Err(e),
        })
    }
}

impl Drop for MultiRecv {
    fn drop(&mut self) {
        if let Some(op) = &self.op {
            if !self.finished {
                op.cancel();
            }
        }
    }
}

impl std::fmt::Debug for MultiRecv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiRecv").field("armed", &self.is_armed()).finish()
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
