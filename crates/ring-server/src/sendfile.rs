//! Sending a range of a file on a connection.
//!
//! The fast way is `splice` through io_uring: file → pipe → socket moves page references and
//! copies nothing (what nginx's `sendfile on` gets). The kernel runs each splice on one of the
//! ring's io-wq worker threads, and a splice into a full socket waits there, so a worker keeps
//! at most [`MAX_SPLICING`] of them in flight (the ring's io-wq is capped to match, see
//! `worker.rs`); past that, or when no pipe can be had, the range goes the copying way: `read`
//! into memory and `send`, a [`PIECE`] at a time. Either way a download holds a small, fixed
//! amount of memory however slowly the client reads.

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::OwnedFd;
use std::rc::Rc;

use tokio_uring::fs::File;
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

/// What a send did, for the worker's counters.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Sent {
    /// Operations that moved bytes to the socket.
    pub(crate) socket_ops: u64,
    /// Whether the bytes were spliced (else copied).
    pub(crate) spliced: bool,
}

/// Sends `len` bytes of `file` from `start` on `stream`. `arm` is called before each operation
/// that waits on the socket (to set the send deadline), `disarm` before each file operation.
pub(crate) async fn send_file(
    stream: &TcpStream,
    file: &File,
    start: u64,
    len: u64,
    mut arm: impl FnMut(),
    mut disarm: impl FnMut(),
) -> io::Result<Sent> {
    let end = start + len;
    let mut sent = Sent::default();
    let Some(mut lease) = Lease::take() else {
        return copy_file(stream, file, start, end, arm, disarm, sent).await;
    };
    sent.spliced = true;
    let pipe = lease.pipe();
    let (mut pos, mut in_pipe) = (start, 0usize);
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
    Ok(sent)
}

/// The copying way: a piece at a time through memory.
async fn copy_file(
    stream: &TcpStream,
    file: &File,
    pos: u64,
    end: u64,
    mut arm: impl FnMut(),
    disarm: impl FnMut(),
    mut sent: Sent,
) -> io::Result<Sent> {
    read_pieces(file, pos, end, PIECE, disarm, async |piece| {
        arm();
        sent.socket_ops += 1;
        stream.write_all(piece).await
    })
    .await?;
    Ok(sent)
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
