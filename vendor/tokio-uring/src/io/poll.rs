//! ringd patch: `IORING_OP_POLL_ADD`, a one-shot wait for a descriptor's readiness.

use std::io;

use io_uring::{opcode, types};

use crate::{
    io::SharedFd,
    runtime::{
        driver::op::{Completable, CqeResult, Op},
        CONTEXT,
    },
};

/// Keeps the descriptor open until the kernel is done with the operation.
pub(crate) struct Poll {
    _fd: SharedFd,
}

impl Op<Poll> {
    pub(crate) fn poll(fd: &SharedFd, events: u32) -> io::Result<Op<Poll>> {
        CONTEXT.with(|x| {
            x.handle().expect("not in a runtime context").submit_op(
                Poll { _fd: fd.clone() },
                |_| opcode::PollAdd::new(types::Fd(fd.raw_fd()), events).build(),
            )
        })
    }
}

impl Completable for Poll {
    type Output = io::Result<u32>;

    fn complete(self, cqe: CqeResult) -> Self::Output {
        cqe.result
    }
}
