use crate::io::{SharedFd, Socket};
use crate::runtime::driver::op;
use crate::runtime::driver::op::{Completable, Op};
use crate::runtime::CONTEXT;
use std::net::SocketAddr;
use std::{boxed::Box, io};

pub(crate) struct Accept {
    fd: SharedFd,
    pub(crate) socketaddr: Box<(libc::sockaddr_storage, libc::socklen_t)>,
}

thread_local! {
    /// ringd patch: the address buffer of the last accept completed on this thread, for the
    /// next one (an accept allocated one and freed it each time). A buffer of an accept dropped
    /// in flight stays with its operation until the kernel is done with it.
    static SPARE_ADDR: std::cell::Cell<Option<Box<(libc::sockaddr_storage, libc::socklen_t)>>> =
        const { std::cell::Cell::new(None) };
}

impl Op<Accept> {
    pub(crate) fn accept(fd: &SharedFd) -> io::Result<Op<Accept>> {
        use io_uring::{opcode, types};

        // ringd patch: the spare buffer if there is one; the kernel writes the address and
        // its length, reading the length as the buffer's size first.
        let socketaddr = match SPARE_ADDR.take() {
            Some(mut spare) => {
                spare.1 = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
                spare
            }
            None => Box::new((
                // SAFETY: `sockaddr_storage` is plain data: all zeroes is a valid value.
                unsafe { std::mem::zeroed() },
                std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t,
            )),
        };
        CONTEXT.with(|x| {
            x.handle().expect("Not in a runtime context").submit_op(
                Accept {
                    fd: fd.clone(),
                    socketaddr,
                },
                |accept| {
                    opcode::Accept::new(
                        types::Fd(accept.fd.raw_fd()),
                        &mut accept.socketaddr.0 as *mut _ as *mut _,
                        &mut accept.socketaddr.1,
                    )
                    .flags(libc::O_CLOEXEC)
                    .build()
                },
            )
        })
    }
}

impl Completable for Accept {
    type Output = io::Result<(Socket, Option<SocketAddr>)>;

    fn complete(self, cqe: op::CqeResult) -> Self::Output {
        // ringd patch: the address buffer goes back for the next accept, whatever the result.
        let Accept { fd: _, socketaddr } = self;
        let stored = *socketaddr;
        SPARE_ADDR.set(Some(socketaddr));
        let fd = cqe.result?;
        let fd = SharedFd::new(fd as i32);
        let socket = Socket { fd };
        let (_, addr) = unsafe {
            socket2::SockAddr::init(move |addr_storage, len| {
                stored.0.clone_into(&mut *addr_storage);
                *len = stored.1;
                Ok(())
            })?
        };
        Ok((socket, addr.as_socket()))
    }
}
