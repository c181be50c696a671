//! ringd patch: `IORING_OP_SPLICE` between a file or socket and a pipe (zero-copy file sends).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::Rc;

use io_uring::{opcode, types};

use crate::{
    io::SharedFd,
    runtime::{
        driver::op::{Completable, CqeResult, Op},
        CONTEXT,
    },
};

/// Keeps both descriptors open until the kernel is done with the operation.
pub(crate) struct Splice {
    _fd: SharedFd,
    _pipe: Rc<OwnedFd>,
}

/// Which way the bytes move.
pub(crate) enum Direction {
    /// From `fd` at an offset into the pipe.
    IntoPipe(u64),
    /// From the pipe into `fd` (a socket: no offset).
    OutOfPipe,
}

impl Op<Splice> {
    pub(crate) fn splice(
        fd: &SharedFd,
        pipe: &Rc<OwnedFd>,
        direction: Direction,
        len: u32,
    ) -> io::Result<Op<Splice>> {
        CONTEXT.with(|x| {
            x.handle().expect("not in a runtime context").submit_op(
                Splice {
                    _fd: fd.clone(),
                    _pipe: pipe.clone(),
                },
                |_| {
                    let (fd_in, off_in, fd_out) = match direction {
                        Direction::IntoPipe(offset) => (fd.raw_fd(), offset as i64, pipe.as_raw_fd()),
                        Direction::OutOfPipe => (pipe.as_raw_fd(), -1, fd.raw_fd()),
                    };
                    opcode::Splice::new(types::Fd(fd_in), off_in, types::Fd(fd_out), -1, len)
                        .flags(libc::SPLICE_F_MOVE)
                        .build()
                },
            )
        })
    }
}

impl Completable for Splice {
    type Output = io::Result<usize>;

    fn complete(self, cqe: CqeResult) -> Self::Output {
        cqe.result.map(|n| n as usize)
    }
}
