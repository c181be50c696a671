//! [`ReadBuf`]: a connection's read buffer and the rules for its size.
//!
//! A plain `Vec`, lent to each read operation and returned with its result (tokio-uring's
//! ownership passing). With the worker's receive ring a waiting connection holds none: the
//! bytes of a receive are copied into a buffer taken from the worker's free list at that moment,
//! and the buffer goes back once every request in it is answered ([`ReadBuf::compact`]).

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
    bytes: Vec<u8>,
    start: usize,
}

impl ReadBuf {
    /// An empty buffer: with no memory when the connection waits on the receive ring, else with
    /// room for a typical head.
    pub(crate) fn new(receive_ring: bool) -> ReadBuf {
        ReadBuf {
            bytes: if receive_ring {
                Vec::new()
            } else {
                Vec::with_capacity(START)
            },
            start: 0,
        }
    }

    /// Whether every byte read has been consumed.
    #[inline]
    pub(crate) fn is_drained(&self) -> bool {
        self.start == self.bytes.len()
    }

    /// The bytes read and not yet consumed.
    #[inline]
    pub(crate) fn pending(&self) -> &[u8] {
        &self.bytes[self.start..]
    }

    /// Marks the first `n` pending bytes consumed.
    #[inline]
    pub(crate) fn consume(&mut self, n: usize) {
        self.start += n;
    }

    /// Appends what a receive from the ring brought, taking memory from the worker's free list
    /// if the buffer holds none (it gave it back when its last request was answered).
    pub(crate) fn receive(&mut self, buffers: &Buffers, data: &[u8]) {
        if self.bytes.capacity() == 0 {
            self.bytes = buffers.take_read_buf(data.len().max(START));
        }
        self.bytes.extend_from_slice(data);
    }

    /// Makes room for reading more of a head: at least [`HEAD_ROOM`], doubling.
    pub(crate) fn make_head_room(&mut self) {
        if self.bytes.capacity() - self.bytes.len() < HEAD_ROOM {
            self.bytes.reserve(self.bytes.capacity().max(START));
        }
    }

    /// Makes room for reading more of a chunked body.
    pub(crate) fn make_body_room(&mut self) {
        if self.bytes.capacity() - self.bytes.len() < BODY_ROOM {
            self.bytes.reserve(START);
        }
    }

    /// Makes room for `n` pending bytes in all (a body of known length after its head).
    pub(crate) fn make_room_for(&mut self, n: usize) {
        let need = self.start + n;
        self.bytes.reserve(need.saturating_sub(self.bytes.len()));
    }

    /// The buffer to lend to a read, which appends to it; returns the room it has. Call
    /// [`ReadBuf::after_read`] with that room once the read is back.
    pub(crate) fn for_read(&mut self) -> (&mut Vec<u8>, usize) {
        if self.bytes.capacity() == self.bytes.len() {
            self.bytes.reserve(START);
        }
        let room = self.bytes.capacity() - self.bytes.len();
        (&mut self.bytes, room)
    }

    /// After a read of `n` bytes into `room`: a read that filled the buffer suggests more is
    /// queued (pipelined requests), and a larger buffer takes more of them per read and answers
    /// them in one send.
    pub(crate) fn after_read(&mut self, n: usize, room: usize) {
        if n >= room && self.bytes.capacity() < BUSY {
            self.bytes.reserve(self.bytes.capacity());
        }
    }

    /// Removes `range` of the pending bytes (a chunked body's encoding, once decoded).
    pub(crate) fn remove(&mut self, from: usize, len: usize) {
        let at = self.start + from;
        self.bytes.drain(at..at + len);
    }

    /// The bytes read and not yet consumed, in a buffer of their own size (the read buffer's
    /// memory goes with it).
    pub(crate) fn into_pending(self) -> Vec<u8> {
        self.pending().to_vec()
    }

    /// Forgets everything read.
    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
        self.start = 0;
    }

    /// After a batch of requests is answered: an incomplete request moves to the front; an
    /// empty buffer goes back to the free list (`receive_ring`: the next request arrives in a
    /// ring buffer), or is shrunk back after a large request.
    pub(crate) fn compact(&mut self, buffers: &Buffers, receive_ring: bool) {
        if self.is_drained() && receive_ring {
            buffers.give_read_buf(std::mem::take(&mut self.bytes));
        } else if self.is_drained() {
            self.bytes.clear();
            if self.bytes.capacity() > KEEP {
                self.bytes.shrink_to(START);
            }
        } else if self.start > 0 {
            self.bytes.drain(..self.start);
        }
        self.start = 0;
    }
}
