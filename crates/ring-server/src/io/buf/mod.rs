//! A worker's buffers, from registration to reuse, owned in one place ([`Buffers`]):
//!
//! - **Fixed buffers** (io_uring registered, page-aligned [`PageBuf`]s): responses are copied
//!   into one and sent from it. A connection holds one only between its first response byte
//!   and the end of the send that carries it, so a small pool serves many connections; when the
//!   pool is empty the bytes go to the heap instead ([`OutBuf`]).
//! - **The receive ring** (provided buffers): a plain connection waiting for its next request
//!   holds no read buffer; the kernel picks one of the ring's when the request arrives.
//! - **Free lists** of read buffers ([`ReadBuf`]'s memory) and output buffers, taken by a
//!   connection while it works and given back when it goes idle: at a few hundred requests a
//!   tick, malloc's per-thread cache would overflow into its slow path.

mod out;
mod page;
mod read;

use std::cell::RefCell;
use std::io;
use std::sync::Arc;

use tokio_uring::buf::fixed::FixedBufPool;
use tokio_uring::buf::BufRing;

pub(crate) use out::OutBuf;
pub(crate) use page::{PageBuf, PAGE};
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
    stats: Arc<WorkerStats>,
}

impl Buffers {
    /// Registers the fixed buffers and, if configured and supported, the receive ring, with the
    /// ring of the calling thread's runtime. A receive ring that cannot be registered is not
    /// an error (the worker runs without it; worker 0 says why); fixed buffers that cannot be
    /// are (the error says how much locked memory they need).
    pub(crate) fn register(
        config: BufferConfig,
        worker: usize,
        workers: usize,
        stats: Arc<WorkerStats>,
    ) -> Result<Buffers, ServerError> {
        let pool = FixedBufPool::new(std::iter::repeat_with(|| PageBuf::zeroed(config.size)).take(config.count));
        pool.register().map_err(|e| register_error(config, workers, e))?;
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
        stats.fixed_total.set(config.count as u64);
        stats
            .receive_total
            .set(receive.as_ref().map_or(0, |_| config.receive) as u64);
        Ok(Buffers {
            pool,
            size: config.size,
            receive,
            read_bufs: RefCell::new(Vec::new()),
            out_bufs: RefCell::new(Vec::new()),
            stats,
        })
    }

    /// The receive ring, if the worker has one.
    #[inline]
    pub(crate) fn receive_ring(&self) -> Option<&BufRing> {
        self.receive.as_ref()
    }

    /// An empty read buffer that holds at least `len` bytes.
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
    pub(crate) fn give_read_buf(&self, mut buf: Vec<u8>) {
        let mut kept = self.read_bufs.borrow_mut();
        if buf.capacity() != 0 && buf.capacity() <= READ_BUF_KEPT_MAX && kept.len() < READ_BUFS_KEPT {
            buf.clear();
            kept.push(buf);
        }
    }

    /// An empty output buffer for a plain connection.
    pub(crate) fn take_out_buf(&self) -> Box<OutBuf> {
        self.out_bufs
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| Box::new(OutBuf::new(self.pool.clone(), self.size, self.stats.clone())))
    }

    /// Keeps an empty output buffer (holding no fixed buffer) for
    /// [`take_out_buf`](Self::take_out_buf), unless enough are kept.
    pub(crate) fn give_out_buf(&self, mut out: Box<OutBuf>) {
        let mut kept = self.out_bufs.borrow_mut();
        if kept.len() < OUT_BUFS_KEPT {
            out.shrink_spill(OUT_SPILL_KEPT_MAX);
            kept.push(out);
        }
    }

    /// An output buffer that never takes a fixed buffer, for a TLS connection to keep (the
    /// kernel sends ciphertext, so the response bytes only need to reach the encryption).
    pub(crate) fn tls_out_buf(&self) -> Box<OutBuf> {
        Box::new(OutBuf::heap_only(self.pool.clone(), self.size, self.stats.clone()))
    }
}

/// Turns a failed `io_uring_register(REGISTER_BUFFERS)` into an error that says what to change.
pub(crate) fn register_error(buffers: BufferConfig, workers: usize, e: io::Error) -> ServerError {
    if e.raw_os_error() == Some(libc::ENOMEM) || e.raw_os_error() == Some(libc::EPERM) {
        // Buffers are page-aligned (`PageBuf`), so each pins exactly its size in whole pages.
        let per_worker_kib = buffers.count * buffers.size.div_ceil(PAGE) * PAGE / 1024;
        ServerError::Memlock {
            what: format!(
                "registering {} fixed buffers of {} bytes ({per_worker_kib} KiB per worker, {} KiB for {workers} workers, plus each worker's ring; the limit covers all of this user's processes)",
                buffers.count,
                buffers.size,
                per_worker_kib * workers,
            ),
            limit: memlock_limit(),
        }
    } else {
        ServerError::RegisterBuffers { cause: e }
    }
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
    fn enomem_on_register_is_memlock_advice() {
        let e = register_error(
            BufferConfig {
                count: 4,
                size: 8192,
                receive: 0,
            },
            3,
            io::Error::from_raw_os_error(libc::ENOMEM),
        );
        let msg = e.to_string();
        assert!(msg.contains("RLIMIT_MEMLOCK") && msg.contains("LimitMEMLOCK"), "{msg}");
        assert!(msg.contains("32 KiB per worker, 96 KiB for 3 workers"), "{msg}");
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
