//! [`ReadBuf`]: a connection's read buffer and the rules for its size.
//!
//! A plain `Vec`, lent to each read operation and returned with its result (tokio-uring's
//! ownership passing). With the worker's receive ring a waiting connection holds none: the
//! buffer the kernel picked from the ring for a receive becomes the read buffer while the
//! requests in it are answered ([`ReadBuf::adopt`]), and goes back to the ring once they are
//! ([`ReadBuf::release`]); only an incomplete request left in it is copied into a buffer of the
//! worker's free list, for reads to append to.

use tokio_uring::buf::ProvidedBuf;

use super::Buffers;

/// The starting size, and the growth step: nginx's `client_header_buffer_size`. Without the
/// receive ring a connection keeps its buffer (grown once for larger requests, at most this
/// while idle).
const START: usize = 1024;
/// Reads that fill the buffer grow it, up to this.
const BUSY: usize = 16 * 1024;
/// Above this, the buffer is shrunk back once empty, so one large body does not stay pinned to
/// an idle connection.
pub(crate) const KEEP: usize = 64 * 1024;
/// A head read is given at least this much room.
const HEAD_ROOM: usize = 512;
/// A chunked body read is given at least this much room.
const BODY_ROOM: usize = 1024;

/// Bytes read and not yet consumed are `bytes[start..]`.
pub(crate) struct ReadBuf {
    bytes: Storage,
    start: usize,
}

/// Where the bytes read are.
enum Storage {
    /// Memory of the connection's own (or none), which reads append to.
    Owned(Vec<u8>),
    /// A buffer of the worker's receive ring, filled by one receive; nothing is appended to it.
    Ring(ProvidedBuf),
}

impl Storage {
    #[inline]
    fn as_slice(&self) -> &[u8] {
        match self {
            Storage::Owned(v) => v,
            Storage::Ring(b) => b,
        }
    }
}

impl ReadBuf {
    /// An empty buffer: with no memory when the connection waits on the receive ring, else with
    /// room for a typical head.
    pub(crate) fn new(receive_ring: bool) -> ReadBuf {
        ReadBuf {
            bytes: Storage::Owned(if receive_ring {
                Vec::new()
            } else {
                Vec::with_capacity(START)
            }),
            start: 0,
        }
    }

    /// Whether every byte read has been consumed.
    #[inline]
    pub(crate) fn is_drained(&self) -> bool {
        self.start == self.bytes.as_slice().len()
    }

    /// The bytes read and not yet consumed.
    #[inline]
    pub(crate) fn pending(&self) -> &[u8] {
        &self.bytes.as_slice()[self.start..]
    }

    /// Marks the first `n` pending bytes consumed.
    #[inline]
    pub(crate) fn consume(&mut self, n: usize) {
        self.start += n;
    }

    /// Appends what a receive from the ring brought, taking memory from the worker's free list
    /// if the buffer holds none (it gave it back when its last request was answered).
    pub(crate) fn receive(&mut self, buffers: &Buffers, data: &[u8]) {
        let bytes = self.owned();
        if bytes.capacity() == 0 {
            *bytes = buffers.take_read_buf(data.len().max(START));
        }
        bytes.extend_from_slice(data);
    }

    /// Takes a buffer a receive from the ring filled as the read buffer, which must be drained
    /// (its memory, if any, goes back to the free list). It goes back to the ring when the
    /// requests in it are answered ([`ReadBuf::release`]) or anything is appended.
    #[inline]
    pub(crate) fn adopt(&mut self, buffers: &Buffers, buf: ProvidedBuf) {
        debug_assert!(self.is_drained());
        if let Storage::Owned(old) = std::mem::replace(&mut self.bytes, Storage::Ring(buf)) {
            if old.capacity() != 0 {
                buffers.give_read_buf(old);
            }
        }
        self.start = 0;
    }

    /// Gives a ring buffer back to the ring, once the requests in it are answered: an
    /// incomplete request left in it moves to a buffer of the free list first.
    #[inline]
    pub(crate) fn release(&mut self, buffers: &Buffers) {
        if let Storage::Ring(ring) = &self.bytes {
            if self.start == ring.len() {
                self.bytes = Storage::Owned(Vec::new());
                self.start = 0;
            } else {
                self.release_rest(buffers);
            }
        }
    }

    /// [`ReadBuf::release`] of a ring buffer that holds the start of a request.
    #[cold]
    #[inline(never)]
    fn release_rest(&mut self, buffers: &Buffers) {
        self.copy_out_into(|len| buffers.take_read_buf(len));
    }

    /// Moves the pending bytes of a ring buffer into memory of its own, from `take` (given the
    /// capacity wanted), at the front; the ring buffer goes back to the ring.
    fn copy_out_into(&mut self, take: impl FnOnce(usize) -> Vec<u8>) {
        if let Storage::Ring(ring) = &self.bytes {
            let rest = &ring[self.start..];
            let mut owned = take(rest.len().max(START));
            owned.extend_from_slice(rest);
            self.bytes = Storage::Owned(owned);
            self.start = 0;
        }
    }

    /// The buffer as memory of its own, for appending to: the pending bytes of a ring buffer
    /// are copied out of it (to the front: `start` is 0 afterwards, so a caller reads `start`
    /// only after this), and it goes back to the ring.
    #[inline]
    fn owned(&mut self) -> &mut Vec<u8> {
        if let Storage::Ring(_) = &self.bytes {
            self.copy_out();
        }
        match &mut self.bytes {
            Storage::Owned(v) => v,
            Storage::Ring(_) => unreachable!("copied out above"),
        }
    }

    /// [`ReadBuf::owned`] of a ring buffer.
    #[cold]
    #[inline(never)]
    fn copy_out(&mut self) {
        self.copy_out_into(Vec::with_capacity);
    }

    /// Makes room for reading more of a head: at least [`HEAD_ROOM`], doubling.
    pub(crate) fn make_head_room(&mut self) {
        let bytes = self.owned();
        if bytes.capacity() - bytes.len() < HEAD_ROOM {
            bytes.reserve(bytes.capacity().max(START));
        }
    }

    /// Makes room for reading more of a chunked body.
    pub(crate) fn make_body_room(&mut self) {
        let bytes = self.owned();
        if bytes.capacity() - bytes.len() < BODY_ROOM {
            bytes.reserve(START);
        }
    }

    /// Makes room for `n` pending bytes in all (a body of known length after its head).
    pub(crate) fn make_room_for(&mut self, n: usize) {
        self.owned();
        let need = self.start + n;
        let bytes = self.owned();
        bytes.reserve(need.saturating_sub(bytes.len()));
    }

    /// The buffer to lend to a read, which appends to it; returns the room it has. Call
    /// [`ReadBuf::after_read`] with that room once the read is back.
    pub(crate) fn for_read(&mut self) -> (&mut Vec<u8>, usize) {
        let bytes = self.owned();
        if bytes.capacity() == bytes.len() {
            bytes.reserve(START);
        }
        let room = bytes.capacity() - bytes.len();
        (bytes, room)
    }

    /// After a read of `n` bytes into `room`: a read that filled the buffer suggests more is
    /// queued (pipelined requests), and a larger buffer takes more of them per read and answers
    /// them in one send.
    pub(crate) fn after_read(&mut self, n: usize, room: usize) {
        let bytes = self.owned();
        if n >= room && bytes.capacity() < BUSY {
            bytes.reserve(bytes.capacity());
        }
    }

    /// Removes `range` of the pending bytes (a chunked body's encoding, once decoded).
    pub(crate) fn remove(&mut self, from: usize, len: usize) {
        self.owned();
        let at = self.start + from;
        self.owned().drain(at..at + len);
    }

    /// The bytes read and not yet consumed, in a buffer of their own size (the read buffer's
    /// memory goes with it).
    pub(crate) fn into_pending(self) -> Vec<u8> {
        self.pending().to_vec()
    }

    /// Forgets everything read.
    pub(crate) fn clear(&mut self) {
        match &mut self.bytes {
            Storage::Owned(v) => v.clear(),
            Storage::Ring(_) => self.bytes = Storage::Owned(Vec::new()),
        }
        self.start = 0;
    }

    /// After a batch of requests is answered: an incomplete request moves to the front; an
    /// empty buffer goes back to the free list (`receive_ring`: the next request arrives in a
    /// ring buffer), or is shrunk back after a large request.
    #[inline]
    pub(crate) fn compact(&mut self, buffers: &Buffers, receive_ring: bool) {
        match &self.bytes {
            // Nothing read since the last compaction (or a ring buffer given back whole).
            Storage::Owned(bytes) if bytes.capacity() == 0 => {}
            Storage::Owned(_) => self.compact_owned(buffers, receive_ring),
            Storage::Ring(_) => self.release(buffers),
        }
    }

    /// [`ReadBuf::compact`] of memory of its own.
    #[inline(never)]
    fn compact_owned(&mut self, buffers: &Buffers, receive_ring: bool) {
        let Storage::Owned(bytes) = &mut self.bytes else {
            return;
        };
        let drained = self.start == bytes.len();
        if drained && receive_ring {
            buffers.give_read_buf(std::mem::take(bytes));
        } else if drained {
            bytes.clear();
            if bytes.capacity() > KEEP {
                bytes.shrink_to(START);
            }
        } else if self.start > 0 {
            bytes.drain(..self.start);
        }
        self.start = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ring_buffer_costs_a_connection_no_more_than_a_vec() {
        // Every connection holds a `ReadBuf`, idle or not.
        assert_eq!(std::mem::size_of::<ReadBuf>(), std::mem::size_of::<(Vec<u8>, usize)>());
    }
}
