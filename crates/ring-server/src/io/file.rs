//! Sending a range of a file on a connection.
//!
//! Three ways, the cheapest that is safe first:
//! - **`sendfile(2)` on the worker's thread**, when every page of the range is in the page cache
//!   (`crate::io::page_cache`): nothing is copied through memory, no other thread is involved, and
//!   nothing can wait on the disk. The socket is made non-blocking for the send, so a full socket
//!   buffer returns at once and the connection waits for room in an io_uring poll, with the send
//!   timeout armed, as nginx's `sendfile on` does with epoll; cheaper than splicing (measured:
//!   `benches/results/HISTORY.md`).
//! - **`splice` through io_uring**, for a range not all in memory (or when residency cannot be
//!   known, before Linux 6.5): file → pipe → socket moves page references and copies nothing,
//!   and the kernel runs each splice on one of the ring's io-wq worker threads, so a disk read
//!   waits there, not on the worker. A splice into a full socket waits there too, so a worker
//!   keeps at most [`MAX_SPLICING`] of them in flight (the ring's io-wq is capped to match, see
//!   `server/thread.rs`).
//! - **Copying**: past that many splices, or when no pipe can be had, `read` into memory and
//!   `send`, a [`PIECE`] at a time.
//!
//! Every way holds a small, fixed amount of memory however slowly the client reads.

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::OwnedFd;
use std::rc::Rc;

use tokio_uring::fs::File;

use crate::ops::stats::{Sent, Way};
use tokio_uring::net::TcpStream;

/// The most splicing sends one worker has in flight.
pub(crate) const MAX_SPLICING: usize = 64;
/// The size asked of each pipe: one request of the common "large file" size in one splice.
const PIPE_SIZE: usize = 1 << 20;
/// The piece size of the copying way.
pub(crate) const PIECE: usize = 256 * 1024;
/// Idle pipes kept for reuse per worker.
const IDLE_PIPES: usize = 16;

struct Pipe {
    read: Rc<OwnedFd>,
    write: Rc<OwnedFd>,
    capacity: usize,
}

thread_local! {
    static IDLE: RefCell<Vec<Pipe>> = const { RefCell::new(Vec::new()) };
    static SPLICING: Cell<usize> = const { Cell::new(0) };
}

/// A pipe for one send, and a place among the worker's splicing sends; both go back on drop
/// (the pipe only if it was left empty).
struct Lease {
    pipe: Option<Pipe>,
    clean: bool,
}

impl Lease {
    fn take() -> Option<Lease> {
        if SPLICING.get() >= MAX_SPLICING {
            return None;
        }
        let pipe = match IDLE.with_borrow_mut(Vec::pop) {
            Some(pipe) => pipe,
            None => new_pipe().ok()?,
        };
        SPLICING.set(SPLICING.get() + 1);
        Some(Lease {
            pipe: Some(pipe),
            clean: false,
        })
    }

    fn pipe(&self) -> &Pipe {
        self.pipe.as_ref().expect("a lease holds its pipe until dropped")
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        SPLICING.set(SPLICING.get() - 1);
        if let (true, Some(pipe)) = (self.clean, self.pipe.take()) {
            IDLE.with_borrow_mut(|idle| {
                if idle.len() < IDLE_PIPES {
                    idle.push(pipe);
                }
            });
        }
    }
}

fn new_pipe() -> io::Result<Pipe> {
    let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
    // A larger pipe may be refused (fs.pipe-max-size, or the user's pipe page budget): the
    // default size still works, in more steps.
    let capacity =
        rustix::pipe::fcntl_setpipe_size(&write, PIPE_SIZE).or_else(|_| rustix::pipe::fcntl_getpipe_size(&write))?;
    Ok(Pipe {
        read: Rc::new(read),
        write: Rc::new(write),
        capacity,
    })
}

/// Sends `len` bytes of `file` from `start` on `stream`. `arm` is called before each operation
/// that waits on the socket (to set the send deadline), `disarm` before each file operation.
/// `sent` records the way taken and the operations made, whether or not the send succeeds.
/// Without `sendfile` (the setting of that name), every range is spliced or copied.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn send_file(
    stream: &TcpStream,
    file: &File,
    start: u64,
    len: u64,
    sendfile: bool,
    mut arm: impl FnMut(),
    mut disarm: impl FnMut(),
    sent: &mut Sent,
) -> io::Result<()> {
    let end = start + len;
    // A stretch at a time, so that finding out stays cheap for a large file, which may also be
    // only partly in memory: from the first stretch that is not, the rest is spliced.
    let mut pos = start;
    while sendfile && pos < end {
        let stretch = (end - pos).min(STRETCH);
        if crate::io::page_cache::resident(file, pos, stretch) != Some(true) {
            break;
        }
        send_resident(stream, file, pos, pos + stretch, &mut arm, sent).await?;
        pos += stretch;
    }
    if pos == end {
        return Ok(());
    }
    let Some(mut lease) = Lease::take() else {
        return copy_file(stream, file, pos, end, arm, disarm, sent).await;
    };
    sent.way = Way::Splice;
    let pipe = lease.pipe();
    let mut in_pipe = 0usize;
    while pos < end || in_pipe > 0 {
        if in_pipe == 0 {
            disarm();
            let want = (end - pos).min(pipe.capacity as u64) as u32;
            let n = file.splice_to_pipe(pos, &pipe.write, want).await?;
            if n == 0 {
                return Err(shrank());
            }
            pos += n as u64;
            in_pipe = n;
        }
        arm();
        sent.socket_ops += 1;
        let n = stream.splice_from_pipe(&pipe.read, in_pipe as u32).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        in_pipe -= n;
    }
    lease.clean = true;
    Ok(())
}

/// How much of a file is checked for residency at a time (`cachestat` walks the range's pages:
/// a few microseconds for 8 MiB, against milliseconds to send it).
const STRETCH: u64 = 8 << 20;

/// The `sendfile` way, for a range whose pages are all in memory (so no call waits on the disk).
/// A send that took this way for its first stretches and another for the rest counts as the
/// other (see [`Way`]).
async fn send_resident(
    stream: &TcpStream,
    file: &File,
    mut pos: u64,
    end: u64,
    arm: &mut impl FnMut(),
    sent: &mut Sent,
) -> io::Result<()> {
    sent.way = Way::Sendfile;
    let _nonblocking = NonBlocking::set(stream)?;
    while pos < end {
        // At most a stretch: well under the most one call moves (2 GiB less a page).
        let want = (end - pos) as usize;
        match rustix::fs::sendfile(stream, file, Some(&mut pos), want) {
            Ok(0) => return Err(shrank()),
            Ok(_) => sent.socket_ops += 1,
            // The socket's buffer is full: wait for room, with the send timeout armed (the
            // sweeper's shutdown ends the wait, and the next call fails).
            Err(rustix::io::Errno::AGAIN) => {
                arm();
                sent.polls += 1;
                stream.ready(libc::POLLOUT as u32).await?;
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The socket in non-blocking mode for as long as this lives: it goes back however the send
/// ends, so that the ring's later operations on it see the mode it was accepted in.
struct NonBlocking<'a>(&'a TcpStream);

impl<'a> NonBlocking<'a> {
    fn set(stream: &'a TcpStream) -> io::Result<NonBlocking<'a>> {
        rustix::io::ioctl_fionbio(stream, true)?;
        Ok(NonBlocking(stream))
    }
}

impl Drop for NonBlocking<'_> {
    fn drop(&mut self) {
        let _ = rustix::io::ioctl_fionbio(self.0, false);
    }
}

/// The copying way: a piece at a time through memory.
async fn copy_file(
    stream: &TcpStream,
    file: &File,
    pos: u64,
    end: u64,
    mut arm: impl FnMut(),
    disarm: impl FnMut(),
    sent: &mut Sent,
) -> io::Result<()> {
    sent.way = Way::Copy;
    read_pieces(file, pos, end, PIECE, disarm, async |piece| {
        arm();
        sent.socket_ops += 1;
        stream.write_all(piece).await
    })
    .await
}

/// Reads bytes `pos..end` of `file` into one reused buffer, at most `size` at a time, and hands
/// each piece to `send`, which gives the buffer back. `disarm` runs before each read (no send
/// deadline while the disk is read). A file that ends early is an error.
pub(crate) async fn read_pieces(
    file: &File,
    mut pos: u64,
    end: u64,
    size: usize,
    mut disarm: impl FnMut(),
    mut send: impl AsyncFnMut(Vec<u8>) -> tokio_uring::BufResult<(), Vec<u8>>,
) -> io::Result<()> {
    let mut buf = Vec::with_capacity((end - pos).min(size as u64) as usize);
    while pos < end {
        disarm();
        buf.clear();
        let want = (end - pos).min(size as u64) as usize;
        let (res, slice) = file
            .read_at(tokio_uring::buf::BoundedBuf::slice(buf, 0..want), pos)
            .await;
        buf = slice.into_inner();
        let n = res?;
        if n == 0 {
            return Err(shrank());
        }
        // `buf` now holds the `n` bytes read.
        let (res, back) = send(buf).await;
        buf = back;
        res?;
        pos += n as u64;
    }
    Ok(())
}

fn shrank() -> io::Error {
    // The length is already on the wire: the connection closes.
    io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank while being sent")
}
