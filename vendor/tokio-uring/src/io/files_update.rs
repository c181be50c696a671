//! ringd patch: placing a socket's file in a slot of the ring's file table
//! (`IORING_OP_FILES_UPDATE`), so that operations name the slot instead of the descriptor and
//! the kernel skips looking the file up (and counting a reference to it) for each.

use std::io;
use std::os::unix::io::RawFd;

use io_uring::opcode;

use crate::io::SharedFd;
use crate::runtime::driver::op::{Completable, CqeResult, Op};
use crate::runtime::CONTEXT;

pub(crate) struct FilesUpdate {
    /// The descriptor the kernel reads as it issues the update; boxed, so that it stays where
    /// it is when the operation moves.
    fds: Box<[RawFd; 1]>,
    /// Keeps the descriptor open until the update is done.
    #[allow(dead_code)]
    fd: SharedFd,
}

impl Op<FilesUpdate> {
    pub(crate) fn register_fixed(fd: &SharedFd, slot: u32) -> io::Result<Op<FilesUpdate>> {
        CONTEXT.with(|x| {
            x.handle().expect("Not in a runtime context").submit_op(
                FilesUpdate {
                    fds: Box::new([fd.raw_fd()]),
                    fd: fd.clone(),
                },
                |update| {
                    opcode::FilesUpdate::new(update.fds.as_ptr(), 1)
                        .offset(slot as i32)
                        .build()
                },
            )
        })
    }
}

impl Completable for FilesUpdate {
    type Output = io::Result<()>;

    fn complete(self, cqe: CqeResult) -> Self::Output {
        match cqe.result? {
            1 => Ok(()),
            n => Err(io::Error::other(format!("file table update placed {n} files, not 1"))),
        }
    }
}
