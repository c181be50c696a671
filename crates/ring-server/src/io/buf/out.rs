//! [`OutBuf`]: the bytes of one batch of responses, in a fixed buffer while they fit.

use std::io;

use bytes::Bytes;

use tokio_uring::buf::fixed::{FixedBuf, FixedBufPool};

use super::PageBuf;
use crate::ops::stats::{Op, WorkerStats};
use std::sync::Arc;
use tokio_uring::buf::BoundedBuf;
use tokio_uring::net::TcpStream;
use tokio_uring::DetachedWrite;

/// Response bytes waiting to be sent, in order: first into a registered fixed buffer, then,
/// once that is full or when the pool had none, into a heap `Vec` (`spill`). A body in memory
/// that follows bytes in the fixed buffer may stay where it is (`gathered`, see
/// [`OutBuf::put_body`]).
///
/// The pool's buffers are zero-filled [`PageBuf`]s, so a `FixedBuf` derefs to its whole capacity
/// and copying into it needs no `unsafe`.
pub(crate) struct OutBuf {
    pool: FixedBufPool<PageBuf>,
    buf_size: usize,
    fixed: Option<FixedBuf>,
    fixed_len: usize,
    spill: Vec<u8>,
    /// The fixed buffer (its first `fixed_len` bytes queued) and a body that follows them,
    /// sent from its own memory. While it is set `fixed` is `None`, so that a later `put`
    /// takes the slow path, which copies the body in first (the order stays the queue's).
    /// `spill` is empty while it is set.
    gathered: Option<(FixedBuf, Bytes)>,
    /// Whether this batch already asked the pool (so an empty pool is asked once per batch).
    asked: bool,
    stats: Arc<WorkerStats>,
}

/// A spill buffer above this is released after its send, so that one large response does not
/// keep memory pinned to an idle connection.
const SPILL_KEEP: usize = 64 * 1024;

/// A body shorter than this is copied after its head ([`OutBuf::put_body`]): below about a
/// kilobyte, copying costs less than what a gathered send adds (its box, its second `iovec`).
const GATHER_MIN: usize = 1024;

impl OutBuf {
    pub(crate) fn new(pool: FixedBufPool<PageBuf>, buf_size: usize, stats: Arc<WorkerStats>) -> OutBuf {
        OutBuf {
            pool,
            buf_size,
            fixed: None,
            fixed_len: 0,
            spill: Vec::new(),
            gathered: None,
            asked: false,
            stats,
        }
    }

    /// An output buffer that never takes a fixed buffer (TLS: what the kernel sends is the
    /// ciphertext, so the response bytes only need to reach the encryption).
    pub(crate) fn heap_only(pool: FixedBufPool<PageBuf>, buf_size: usize, stats: Arc<WorkerStats>) -> OutBuf {
        OutBuf {
            // Never asks the pool: `put` goes straight to `spill`, and `take_heap` keeps it so.
            asked: true,
            ..OutBuf::new(pool, buf_size, stats)
        }
    }

    /// The queued bytes of a [`OutBuf::heap_only`] buffer, leaving it empty; hand the `Vec`
    /// back with [`OutBuf::return_heap`] to reuse its memory.
    pub(crate) fn take_heap(&mut self) -> Vec<u8> {
        debug_assert!(self.fixed.is_none() && self.asked);
        std::mem::take(&mut self.spill)
    }

    pub(crate) fn return_heap(&mut self, mut spill: Vec<u8>) {
        spill.clear();
        if spill.capacity() <= SPILL_KEEP && self.spill.is_empty() {
            self.spill = spill;
        }
    }

    /// Releases the heap buffer if it holds more than `max` bytes of capacity (before the
    /// buffer is kept for another connection).
    pub(crate) fn shrink_spill(&mut self, max: usize) {
        if self.spill.capacity() > max {
            self.spill = Vec::new();
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.fixed_len + self.spill.len() + self.gathered.as_ref().map_or(0, |(_, body)| body.len())
    }

    pub(crate) fn is_empty(&self) -> bool {
        // A gathered body always follows bytes in the fixed buffer.
        self.fixed_len + self.spill.len() == 0
    }

    /// The index of the fixed buffer held, if any.
    pub(crate) fn fixed_index(&self) -> Option<u16> {
        self.fixed
            .as_ref()
            .or(self.gathered.as_ref().map(|(fixed, _)| fixed))
            .map(FixedBuf::buf_index)
    }

    /// Queues `body` after what is queued. Unless it is short, it is not copied when what is
    /// queued is all in the fixed buffer: [`OutBuf::send_detached`] sends it from its own
    /// memory after the buffer's bytes. A `put` after it, or a [`OutBuf::flush`], copies it in
    /// after all.
    #[inline(always)]
    pub(crate) fn put_body(&mut self, body: &Bytes) {
        if body.len() < GATHER_MIN || !self.gather(|| body.clone()) {
            ringd_core::WriteBuf::put(self, body);
        }
    }

    /// [`OutBuf::put_body`] of a body its caller is done with: kept, it is taken out of `body`
    /// (left empty), not cloned (a reference count up now and down as `body` drops).
    #[inline(always)]
    pub(crate) fn take_body(&mut self, body: &mut Bytes) {
        if body.len() < GATHER_MIN || !self.gather(|| std::mem::take(body)) {
            ringd_core::WriteBuf::put(self, body);
        }
    }

    /// Keeps the body `body` gives to send after the fixed buffer's bytes, if everything
    /// queued is in it.
    #[inline(never)]
    fn gather(&mut self, body: impl FnOnce() -> Bytes) -> bool {
        if self.fixed_len == 0 || !self.spill.is_empty() {
            return false;
        }
        let Some(fixed) = self.fixed.take() else {
            return false;
        };
        self.gathered = Some((fixed, body()));
        true
    }

    /// Submits the send of the queued bytes and returns without waiting for it, when they are
    /// all in the fixed buffer (else `None`, and nothing is sent): the driver gives the buffer
    /// back to the pool once everything is sent, waking no one. The send must be finished
    /// ([`DetachedSend`]) before anything else is sent on `stream`.
    #[inline]
    pub(crate) fn send_detached(&mut self, stream: &TcpStream) -> Option<DetachedSend> {
        if !self.spill.is_empty() || self.fixed_len == 0 {
            return None;
        }
        let Some(fixed) = self.fixed.take() else {
            return self.send_gathered(stream);
        };
        self.asked = false;
        let len = std::mem::take(&mut self.fixed_len);
        self.stats.op(Op::WriteFixed);
        Some(DetachedSend {
            write: stream.write_fixed_detached(fixed.slice(0..len)),
            // A fixed buffer is far smaller than 4 GiB.
            len: len as u32,
        })
    }

    /// [`send_detached`](Self::send_detached) of the fixed buffer's bytes and a gathered body
    /// (`None` if there is none).
    #[inline(never)]
    fn send_gathered(&mut self, stream: &TcpStream) -> Option<DetachedSend> {
        let (fixed, body) = self.gathered.take()?;
        self.asked = false;
        let len = std::mem::take(&mut self.fixed_len);
        self.stats.op(Op::WriteFixed);
        // A fixed buffer and a body of at most `encode::INLINE_BODY`: far below 4 GiB.
        let sent = (len + body.len()) as u32;
        Some(DetachedSend {
            write: stream.write_fixed_detached_then(fixed.slice(0..len), body),
            len: sent,
        })
    }

    /// Sends everything, in order, and gives the fixed buffer back to the pool.
    pub(crate) async fn flush(&mut self, stream: &TcpStream) -> io::Result<()> {
        if self.gathered.is_some() {
            self.ungather();
        }
        self.asked = false;
        if let Some(fixed) = self.fixed.take() {
            let len = std::mem::take(&mut self.fixed_len);
            let res = if len > 0 {
                // A flat loop of single writes rather than `write_fixed_all`: its nested futures
                // made this future (and so a connection's) hundreds of bytes larger, and each
                // layer copies its state on the way in.
                let mut rest = fixed.slice(0..len);
                loop {
                    self.stats.op(Op::WriteFixed);
                    let (res, slice) = stream.write_fixed_op(rest).await;
                    match res {
                        Ok(0) => break Err(io::ErrorKind::WriteZero.into()),
                        Ok(n) if n < slice.bytes_init() => rest = slice.slice(n..),
                        Ok(_) => break Ok(()),
                        Err(e) => break Err(e),
                    }
                }
            } else {
                drop(fixed);
                Ok(())
            };
            // The slice (or the buffer) is dropped by now: it is back in the pool (which keeps
            // `fixed_in_use`, see `Buffers::register`).
            res?;
            self.stats.bytes_out.add(len as u64);
        }
        if !self.spill.is_empty() {
            let spill = std::mem::take(&mut self.spill);
            let len = spill.len() as u64;
            self.stats.op(Op::Write);
            let (res, mut spill) = stream.write_all(spill).await;
            res?;
            self.stats.bytes_out.add(len);
            spill.clear();
            if spill.capacity() <= SPILL_KEEP {
                self.spill = spill;
            }
        }
        Ok(())
    }
}

/// A send submitted by [`OutBuf::send_detached`], in flight or over: finished, it says whether
/// every byte was sent (and counts them out). Dropped unfinished (its connection's task is
/// dropped), the send goes on in the driver.
#[derive(Debug)]
pub(crate) struct DetachedSend {
    write: DetachedWrite,
    len: u32,
}

impl DetachedSend {
    /// The outcome if the send is over (`Err(self)` while it is in flight).
    #[inline]
    pub(crate) fn try_finish(self, stats: &WorkerStats) -> Result<io::Result<()>, DetachedSend> {
        let len = self.len;
        match self.write.try_finish() {
            Ok(res) => Ok(res.map(|()| stats.bytes_out.add(u64::from(len)))),
            Err(write) => Err(DetachedSend { write, len }),
        }
    }

    /// Waits until the send is over: `Ok` when every byte was sent.
    pub(crate) async fn finish(self, stats: &WorkerStats) -> io::Result<()> {
        self.write.finish().await?;
        stats.bytes_out.add(u64::from(self.len));
        Ok(())
    }
}

impl OutBuf {
    /// `put` when the bytes do not simply go into the fixed buffer already held: the first put
    /// of a batch asks the pool for one, and what does not fit spills to the heap.
    #[cold]
    fn put_slow(&mut self, bytes: &[u8]) {
        if self.gathered.is_some() {
            self.ungather();
            return ringd_core::WriteBuf::put(self, bytes);
        }
        if self.spill.is_empty() && !self.asked {
            self.asked = true;
            self.fixed = self.pool.try_next(self.buf_size);
            if self.fixed.is_none() {
                self.stats.fixed_fallbacks.add(1);
            }
            if self.try_put_fixed(bytes) {
                return;
            }
        }
        self.spill.extend_from_slice(bytes);
    }

    /// Copies a gathered body in after all: something is put after it, or the queue is
    /// flushed (only a detached send gathers).
    #[inline(never)]
    fn ungather(&mut self) {
        if let Some((fixed, body)) = self.gathered.take() {
            self.fixed = Some(fixed);
            ringd_core::WriteBuf::put(self, &body);
        }
    }

    /// Appends to the fixed buffer if one is held, nothing has spilled, and the bytes fit.
    #[inline(always)]
    fn try_put_fixed(&mut self, bytes: &[u8]) -> bool {
        if !self.spill.is_empty() {
            return false;
        }
        let Some(fixed) = self.fixed.as_mut() else {
            return false;
        };
        let end = self.fixed_len + bytes.len();
        match fixed.get_mut(self.fixed_len..end) {
            Some(dst) => {
                dst.copy_from_slice(bytes);
                self.fixed_len = end;
                true
            }
            None => false,
        }
    }
}

impl ringd_core::WriteBuf for OutBuf {
    // Always: every head and small body goes through here, and a call costs more than the copy.
    #[inline(always)]
    fn put(&mut self, bytes: &[u8]) {
        if !self.try_put_fixed(bytes) {
            self.put_slow(bytes);
        }
    }
}
