//! The per-core table of live connections: a `slab` whose key is the connection's id.
//!
//! It exists because tokio-uring cannot cancel an operation whose future is dropped: a timeout
//! cannot simply abandon a read. Instead each connection records its phase and deadline here, and
//! the worker's sweeper, once a second, shuts down the socket of every connection past its
//! deadline. The pending read or write then completes at once (0 bytes or `EPIPE`), the
//! connection's own loop sees it and closes, and every buffer comes back to its owner.

use std::cell::RefCell;
use std::net::Shutdown;
use std::time::Instant;

use slab::Slab;
use tokio_uring::net::TcpStream;

/// What a connection is waiting for, which decides its deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Waiting for the first byte of the next request (keep-alive timeout).
    Idle,
    /// A new connection waiting for its first byte (header timeout).
    Fresh,
    /// Reading a request head (header timeout, from its first byte).
    Head,
    /// Reading a request body (body timeout, between reads).
    Body,
    /// Parsing, running the handler, reading a file: no deadline (a handler's own limit is
    /// `timeouts.handler`, enforced where it is called).
    Working,
    /// Sending, holding this fixed buffer if any (send timeout).
    Write(Option<u16>),
    /// Draining the client's last bytes before close.
    Closing,
}

struct Slot {
    stream: TcpStream,
    phase: Phase,
    deadline: Option<Instant>,
}

/// The live connections of one worker.
#[derive(Default)]
pub(crate) struct ConnTable {
    slots: RefCell<Slab<Slot>>,
}

impl ConnTable {
    /// Registers a new connection; its key is removed by [`ConnTable::remove`].
    pub(crate) fn insert(&self, stream: TcpStream) -> usize {
        self.slots.borrow_mut().insert(Slot {
            stream,
            phase: Phase::Idle,
            deadline: None,
        })
    }

    pub(crate) fn remove(&self, key: usize) {
        self.slots.borrow_mut().try_remove(key);
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.borrow().len()
    }

    /// Records what `key` waits for and until when.
    pub(crate) fn set(&self, key: usize, phase: Phase, deadline: Option<Instant>) {
        if let Some(slot) = self.slots.borrow_mut().get_mut(key) {
            slot.phase = phase;
            slot.deadline = deadline;
        }
    }

    /// Brings the deadline of every idle connection forward to `at` (a drain's grace period).
    pub(crate) fn shorten_idle(&self, at: Instant) {
        for (_, slot) in self.slots.borrow_mut().iter_mut() {
            // A fresh connection is as idle as a kept-alive one: it has not sent a byte.
            if matches!(slot.phase, Phase::Idle | Phase::Fresh) && slot.deadline.is_none_or(|d| d > at) {
                slot.deadline = Some(at);
            }
        }
    }

    /// Shuts down every connection past its deadline; returns how many.
    pub(crate) fn sweep(&self, now: Instant) -> usize {
        let mut expired = 0;
        for (_, slot) in self.slots.borrow_mut().iter_mut() {
            if slot.deadline.is_some_and(|d| d <= now) {
                // Both directions: a pending read completes with 0 and a pending write with an
                // error, so the connection's loop wakes up and closes.
                let _ = slot.stream.shutdown(Shutdown::Both);
                slot.deadline = None;
                expired += 1;
            }
        }
        expired
    }
}
