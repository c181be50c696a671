//! [`ConnState`]: what an HTTP/2 connection is doing, shared by its connection task, its stream
//! tasks and its I/O, and the one deadline that follows from it.
//!
//! A connection has one slot in the worker's connection table, so one phase and one deadline at
//! a time, however many streams it carries. [`ConnState::arm`] works them out again from the
//! whole state whenever any part of it changes, in this order:
//!
//! 1. a write in flight, or a stream waiting for the peer's flow-control window: the send
//!    timeout, from when that began (a peer that stops reading, or never opens its window, is
//!    cut like an HTTP/1.1 client that stops reading);
//! 2. a request body still arriving: the body timeout, from the last read;
//! 3. requests being answered: no deadline (a handler's own limit is `timeouts.handler`);
//! 4. nothing open: the header timeout from the connection's start until its first request,
//!    then the keep-alive timeout from the last stream's end. Control frames (PING, SETTINGS)
//!    do not move it: they cannot keep a connection alive that asks for nothing.
//!
//! The connection task says goodbye with GOAWAY at the keep-alive timeout; the deadline here
//! is the sweeper's backstop, a little later.

use std::cell::Cell;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::io::conns::Phase;
use crate::worker::{ConnSlot, Worker};

/// How long after its keep-alive timeout an idle connection that did not close after its
/// GOAWAY is cut.
pub(super) const GOAWAY_GRACE: Duration = Duration::from_secs(2);

/// An HTTP/2 connection's state (one thread: `Cell`s).
pub(super) struct ConnState {
    slot: ConnSlot,
    started: Instant,
    /// Streams accepted and not finished.
    streams: Cell<usize>,
    /// Of those, streams whose request body is still arriving.
    receiving: Cell<usize>,
    /// Of those, streams waiting for flow-control window, and since when the first began.
    stalled: Cell<usize>,
    stalled_since: Cell<Option<Instant>>,
    /// A write in flight since.
    writing_since: Cell<Option<Instant>>,
    /// The last read that completed.
    last_read: Cell<Instant>,
    /// When the last stream ended (or the connection started).
    last_stream: Cell<Instant>,
    /// Streams served so far.
    served: Cell<u64>,
    /// The peer sent control frames faster than allowed: the connection is to be closed with
    /// `GOAWAY(ENHANCE_YOUR_CALM)`, and no more of its input is read.
    flooded: Cell<bool>,
    /// Wakes the connection task: a flood, or the last open stream ended (its idle timer starts).
    pub(super) wake: Notify,
}

impl ConnState {
    pub(super) fn new(slot: ConnSlot) -> ConnState {
        let now = Instant::now();
        ConnState {
            slot,
            started: now,
            streams: Cell::new(0),
            receiving: Cell::new(0),
            stalled: Cell::new(0),
            stalled_since: Cell::new(None),
            writing_since: Cell::new(None),
            last_read: Cell::new(now),
            last_stream: Cell::new(now),
            served: Cell::new(0),
            flooded: Cell::new(false),
            wake: Notify::new(),
        }
    }

    /// The worker's state.
    #[inline]
    pub(super) fn worker(&self) -> &std::rc::Rc<Worker> {
        self.slot.worker()
    }

    /// Records the phase and deadline that the state calls for (see the module's docs).
    pub(super) fn arm(&self) {
        let io = self.slot.io();
        let t = self.worker().config().timeouts;
        if self.flooded.get() {
            // Only the GOAWAY is still to go out.
            io.arm(Phase::Closing, Instant::now() + Duration::from_secs(1));
        } else if let Some(since) = earliest(self.writing_since.get(), self.stalled_since.get()) {
            io.arm(Phase::Write(None), since + t.send);
        } else if self.receiving.get() > 0 {
            io.arm(Phase::Body, self.last_read.get() + t.body);
        } else if self.streams.get() > 0 {
            io.disarm();
        } else {
            // The connection task says GOAWAY at the idle deadline; this cuts one that has not
            // closed a little later.
            let phase = if self.served.get() == 0 {
                Phase::Fresh
            } else {
                Phase::Idle
            };
            io.arm(phase, self.idle_deadline() + GOAWAY_GRACE);
        }
    }

    /// When an idle connection says goodbye: the keep-alive timeout after its last stream, or
    /// the drain's grace.
    pub(super) fn idle_deadline(&self) -> Instant {
        let t = self.worker().config().timeouts;
        let wait = if self.worker().is_draining() {
            t.drain_idle
        } else if self.served.get() == 0 {
            t.header
        } else {
            t.keepalive
        };
        let from = if self.served.get() == 0 {
            self.started
        } else {
            self.last_stream.get()
        };
        from + wait
    }

    /// Whether no stream is open.
    pub(super) fn is_idle(&self) -> bool {
        self.streams.get() == 0
    }

    pub(super) fn stream_opened(&self) {
        self.streams.set(self.streams.get() + 1);
        self.served.set(self.served.get() + 1);
        let stats = self.worker().stats();
        stats.h2_streams.set(stats.h2_streams.get() + 1);
        self.arm();
    }

    pub(super) fn stream_closed(&self) {
        self.streams.set(self.streams.get().saturating_sub(1));
        self.last_stream.set(Instant::now());
        let stats = self.worker().stats();
        stats.h2_streams.set(stats.h2_streams.get().saturating_sub(1));
        self.arm();
        if self.streams.get() == 0 {
            // The connection task times the keep-alive from now.
            self.wake.notify_one();
        }
    }

    /// A stream starts (`true`) or stops (`false`) reading its request body.
    pub(super) fn receiving(&self, on: bool) {
        let n = self.receiving.get();
        self.receiving.set(if on { n + 1 } else { n.saturating_sub(1) });
        self.arm();
    }

    /// A stream starts (`true`) or stops (`false`) waiting for flow-control window.
    pub(super) fn stalled(&self, on: bool) {
        let n = self.stalled.get();
        if on {
            if n == 0 {
                self.stalled_since.set(Some(Instant::now()));
            }
            self.stalled.set(n + 1);
        } else {
            self.stalled.set(n.saturating_sub(1));
            if n <= 1 {
                self.stalled_since.set(None);
            }
        }
        self.arm();
    }

    /// A write was submitted (`true`) or completed (`false`).
    pub(super) fn writing(&self, on: bool) {
        self.writing_since.set(on.then(Instant::now));
        self.arm();
    }

    /// A read completed.
    pub(super) fn read_done(&self) {
        self.last_read.set(Instant::now());
        if self.receiving.get() > 0 {
            self.arm();
        }
    }

    /// Marks the connection flooded and wakes its task to send `GOAWAY(ENHANCE_YOUR_CALM)`.
    pub(super) fn flood(&self) {
        if !self.flooded.replace(true) {
            self.worker().stats().h2_floods.add(1);
            self.arm();
            self.wake.notify_one();
        }
    }

    pub(super) fn is_flooded(&self) -> bool {
        self.flooded.get()
    }
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
