//! A worker's buffers, from registration to reuse, owned in one place ([`Buffers`]):
//!
//! - **Fixed buffers** (io_uring registered, page-aligned [`PageBuf`]s): responses are copied
//!   into one and sent from it. A connection holds one only between its first response byte
//!   and the end of the send that carries it, so a small pool serves many connections; when the
//!   pool is empty the bytes go to the heap instead ([`OutBuf`]).
//! - **The receive ring** (provided buffers): a plain connection waiting for its next request
//!   holds no read buffer; the kernel picks one of the ring's when the request arrives, and it
//!   is the connection's read buffer until the requests in it are answered.
//! - **Free lists** of read buffers ([`ReadBuf`]'s memory) and output buffers, taken by a
//!   connection while it works and given back when it goes idle: at a few hundred requests a
//!   tick, malloc's per-thread cache would overflow into its slow path.

mod out;
mod read;

use std::cell::{Cell, RefCell};
use std::io;
use std::sync::Arc;

use tokio_uring::buf::fixed::FixedBufPool;
use tokio_uring::buf::BufRing;

pub(crate) use crate::heap::{PageBuf, PAGE};
pub(crate) use out::{DetachedSend, OutBuf};
pub(crate) use read::{ReadBuf, KEEP as READ_BUF_KEEP};

use crate::config::{BufferConfig, RECEIVE_BUFFER_SIZE};
use crate::error::ServerError;
use crate::io::ring::memlock_limit;
use crate::ops::stats::WorkerStats;

/// Read buffers kept for reuse per worker, and the largest kept.
const READ_BUFS_KEPT: usize = 256;
const READ_BUF_KEPT_MAX: usize = 4096;
/// Output buffers kept for reuse per worker, and the largest heap spill one keeps.
const OUT_BUFS_KEPT: usize = 256;
const OUT_SPILL_KEPT_MAX: usize = 4096;

/// Every buffer of one worker.
pub(crate) struct Buffers {
    pool: FixedBufPool<PageBuf>,
    /// Bytes per fixed buffer.
    size: usize,
    /// `None`: configured off or not supported; each connection then keeps a read buffer.
    receive: Option<BufRing>,
    read_bufs: RefCell<Vec<Vec<u8>>>,
    /// Boxed: a connection holds its buffer as a box (8 bytes of its state), and passing it back
    /// and forth moves only the pointer.
    #[allow(clippy::vec_box)]
    out_bufs: RefCell<Vec<Box<OutBuf>>>,
    /// The output buffer given back last, outside `out_bufs`: connections answer one batch
    /// after another on a worker, so the one a batch gives back is the one the next takes.
    out_spare: Cell<Option<Box<OutBuf>>>,
    stats: Arc<WorkerStats>,
}

impl Buffers {
    /// Registers the fixed buffers and, if configured and supported, the receive ring, with the
    /// ring of the calling thread's runtime. Neither failing for want of locked memory is an
    /// error: the worker registers as many fixed buffers as `RLIMIT_MEMLOCK` lets it (the
    /// others' responses go out from the heap, `ringd_fixed_buffers` says how many it has) and
    /// runs without a receive ring (worker 0 says why). Only another kernel error is.
    pub(crate) fn register(
        config: BufferConfig,
        worker: usize,
        stats: Arc<WorkerStats>,
    ) -> Result<Buffers, ServerError> {
        let (pool, count) = register_fixed(config)?;
        // The pool counts its buffers out and back, wherever they come back (a detached send's
        // completion, in the driver, included).
        pool.count_in_use(stats.fixed_in_use.clone());
        let receive = match config.receive {
            0 => None,
            n => match BufRing::register(0, n as u16, RECEIVE_BUFFER_SIZE) {
                Ok(ring) => Some(ring),
                Err(e) => {
                    if worker == 0 {
                        tracing::warn!("{}", buf_ring_error(&e));
                    }
                    None
                }
            },
        };
        stats.fixed_total.set(count as u64);
        stats.fixed_configured.set(config.count as u64);
        stats
            .receive_total
            .set(receive.as_ref().map_or(0, |_| config.receive) as u64);
        Ok(Buffers {
            pool,
            size: config.size,
            receive,
            read_bufs: RefCell::new(Vec::new()),
            out_bufs: RefCell::new(Vec::new()),
            out_spare: Cell::new(None),
            stats,
        })
    }

    /// The receive ring, if the worker has one.
    #[inline]
    pub(crate) fn receive_ring(&self) -> Option<&BufRing> {
        self.receive.as_ref()
    }

    /// An empty read buffer that holds at least `len` bytes.
    #[inline]
    pub(crate) fn take_read_buf(&self, len: usize) -> Vec<u8> {
        match self.read_bufs.borrow_mut().pop() {
            Some(mut buf) => {
                buf.reserve(len);
                buf
            }
            None => Vec::with_capacity(len),
        }
    }

    /// Keeps a read buffer for [`take_read_buf`](Self::take_read_buf), unless enough are kept
    /// or it is large.
    #[inline]
    pub(crate) fn give_read_buf(&self, mut buf: Vec<u8>) {
        let mut kept = self.read_bufs.borrow_mut();
        if buf.capacity() != 0 && buf.capacity() <= READ_BUF_KEPT_MAX && kept.len() < READ_BUFS_KEPT {
            buf.clear();
            kept.push(buf);
        }
    }

    /// An empty output buffer for a plain connection.
    #[inline]
    pub(crate) fn take_out_buf(&self) -> Box<OutBuf> {
        match self.out_spare.take() {
            Some(out) => out,
            None => self.kept_out_buf(),
        }
    }

    /// [`take_out_buf`](Self::take_out_buf) with no spare: one from the list, or a new one.
    #[inline(never)]
    fn kept_out_buf(&self) -> Box<OutBuf> {
        match self.out_bufs.borrow_mut().pop() {
            Some(out) => out,
            None => self.new_out_buf(),
        }
    }

    /// [`take_out_buf`](Self::take_out_buf) with none kept.
    #[cold]
    #[inline(never)]
    fn new_out_buf(&self) -> Box<OutBuf> {
        Box::new(OutBuf::new(self.pool.clone(), self.size, self.stats.clone()))
    }

    /// Keeps an empty output buffer (holding no fixed buffer) for
    /// [`take_out_buf`](Self::take_out_buf), unless enough are kept.
    #[inline]
    pub(crate) fn give_out_buf(&self, mut out: Box<OutBuf>) {
        out.shrink_spill(OUT_SPILL_KEPT_MAX);
        if let Some(before) = self.out_spare.replace(Some(out)) {
            self.keep_out_buf(before);
        }
    }

    /// Keeps an output buffer in the list, unless enough are kept.
    #[inline(never)]
    fn keep_out_buf(&self, out: Box<OutBuf>) {
        let mut kept = self.out_bufs.borrow_mut();
        if kept.len() < OUT_BUFS_KEPT {
            kept.push(out);
        }
    }

    /// An output buffer that never takes a fixed buffer, for a TLS connection to keep (the
    /// kernel sends ciphertext, so the response bytes only need to reach the encryption).
    pub(crate) fn tls_out_buf(&self) -> Box<OutBuf> {
        Box::new(OutBuf::heap_only(self.pool.clone(), self.size, self.stats.clone()))
    }
}

/// Registers `config.count` fixed buffers, or, when the locked memory limit (`RLIMIT_MEMLOCK`,
/// shared by all of this user's processes) does not allow that many, as many as it allows,
/// halving the count until registration succeeds (none at worst). Returns the pool and how many
/// it holds.
fn register_fixed(config: BufferConfig) -> Result<(FixedBufPool<PageBuf>, usize), ServerError> {
    let mut count = config.count;
    while count > 0 {
        let pool = FixedBufPool::new(std::iter::repeat_with(|| PageBuf::zeroed(config.size)).take(count));
        match pool.register() {
            Ok(()) => return Ok((pool, count)),
            Err(e) if is_memlock(&e) => count /= 2,
            Err(e) => return Err(ServerError::RegisterBuffers { cause: e }),
        }
    }
    // Never registered: `try_next` finds it empty, and every response goes out from the heap.
    Ok((FixedBufPool::new(std::iter::empty()), 0))
}

/// Whether a registration failed for want of locked memory.
fn is_memlock(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOMEM) | Some(libc::EPERM))
}

/// The one line that says the workers registered fewer fixed buffers than configured
/// (`registered` of `configured` in all), and what to change.
pub(crate) fn memlock_shortfall(registered: u64, configured: u64, config: BufferConfig) -> String {
    // Buffers are page-aligned (`PageBuf`), so each pins exactly its size in whole pages.
    let per_buffer_kib = config.size.div_ceil(PAGE) * PAGE / 1024;
    format!(
        "RLIMIT_MEMLOCK (now {}; it covers all of this user's processes) allowed {registered} of {configured} fixed buffers of {} bytes ({per_buffer_kib} KiB each); the others' responses are sent from the heap. For all of them, raise it (systemd: LimitMEMLOCK=, shell: ulimit -l) or lower buffers.count or buffers.size",
        memlock_limit(),
        config.size,
    )
}

/// What to say when a worker cannot register its receive-buffer ring: the server runs on,
/// each connection keeping a read buffer, and the line says how to get the ring.
pub(crate) fn buf_ring_error(e: &io::Error) -> String {
    let fix = match e.raw_os_error() {
        Some(libc::ENOMEM) | Some(libc::EPERM) => format!(
            "raise RLIMIT_MEMLOCK (now {}; LimitMEMLOCK= in the systemd unit) or lower buffers.count",
            memlock_limit()
        ),
        Some(libc::EINVAL) | Some(libc::ENOSYS) => "the kernel needs Linux 5.19 or later for it".to_owned(),
        _ => "set buffers.receive = 0 to stop trying".to_owned(),
    };
    format!("cannot register the receive-buffer ring ({e}); idle connections keep a 1 KiB read buffer each: {fix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shortfall_is_one_line_that_says_what_to_do() {
        let config = BufferConfig {
            count: 64,
            size: 16 * 1024 + 1,
            receive: 0,
        };
        let line = memlock_shortfall(96, 128, config);
        assert!(
            line.contains("96 of 128 fixed buffers of 16385 bytes (20 KiB each)"),
            "{line}"
        );
        assert!(
            line.contains("LimitMEMLOCK") && line.contains("buffers.count"),
            "{line}"
        );
        assert!(!line.contains('\n'), "{line}");
    }

    #[test]
    fn a_limit_too_small_for_the_pool_is_not_an_error() {
        // Only memory errors are taken as the limit; another errno stays an error.
        assert!(is_memlock(&io::Error::from_raw_os_error(libc::ENOMEM)));
        assert!(is_memlock(&io::Error::from_raw_os_error(libc::EPERM)));
        assert!(!is_memlock(&io::Error::from_raw_os_error(libc::EINVAL)));
    }

    #[test]
    fn a_ring_that_cannot_be_registered_is_one_line_that_says_what_to_do() {
        let memlock = buf_ring_error(&io::Error::from_raw_os_error(libc::ENOMEM));
        assert!(
            memlock.contains("LimitMEMLOCK") && memlock.contains("1 KiB read buffer"),
            "{memlock}"
        );
        let old_kernel = buf_ring_error(&io::Error::from_raw_os_error(libc::EINVAL));
        assert!(old_kernel.contains("5.19"), "{old_kernel}");
        let other = buf_ring_error(&io::Error::from_raw_os_error(libc::EIO));
        assert!(other.contains("buffers.receive = 0"), "{other}");
        for line in [memlock, old_kernel, other] {
            assert!(!line.contains('\n'), "{line}");
        }
    }
}
