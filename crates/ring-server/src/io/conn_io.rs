//! The I/O state a worker's connections share ([`WorkerIo`]) and one connection's handle on it
//! ([`ConnIo`]).
//!
//! tokio-uring cannot cancel an operation whose future is dropped, so no operation is ever timed
//! out by dropping it. Instead, before each operation that waits on the client, a connection
//! records in the worker's [`ConnTable`] what it waits for and until when ([`ConnIo::arm`]), and
//! lifts the deadline when it goes back to work ([`ConnIo::disarm`]); the worker's sweeper shuts
//! down the socket of a connection past its deadline, which makes the pending operation
//! complete. Those two calls are the only way a connection's deadline changes.

use std::cell::Cell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::buf::Buffers;
use super::conns::{ConnTable, Phase};
use crate::config::ServerConfig;
use crate::ops::log_budget::LogBudget;
use crate::ops::stats::WorkerStats;

/// What a worker's connections share for their I/O.
pub(crate) struct WorkerIo {
    /// Fixed buffers, the receive ring, and the free lists of read and output buffers.
    pub(crate) buffers: Buffers,
    /// Every open connection, with what it waits for and until when.
    pub(crate) conns: ConnTable,
    /// This worker's counters (it is their only writer).
    pub(crate) stats: Arc<WorkerStats>,
    /// Limits the log lines that clients can cause.
    pub(crate) log_budget: LogBudget,
    /// The settings the byte stream needs; a reload replaces them.
    settings: Cell<IoSettings>,
}

/// The settings of the configuration that the I/O layer reads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IoSettings {
    /// A write the client does not read is cut after this (nginx `send_timeout`).
    pub(crate) send_timeout: Duration,
    /// Send file ranges that are in the page cache with `sendfile(2)`.
    pub(crate) sendfile: bool,
    /// The waits of an HTTP/1.1 connection between requests (`timeouts.header`,
    /// `timeouts.keepalive`, `timeouts.drain_idle`): read here, a copy, rather than through an
    /// `Rc` of the whole configuration before every receive.
    pub(crate) header_timeout: Duration,
    pub(crate) keepalive_timeout: Duration,
    pub(crate) drain_idle_timeout: Duration,
}

impl From<&ServerConfig> for IoSettings {
    fn from(config: &ServerConfig) -> IoSettings {
        IoSettings {
            send_timeout: config.timeouts.send,
            sendfile: config.sendfile,
            header_timeout: config.timeouts.header,
            keepalive_timeout: config.timeouts.keepalive,
            drain_idle_timeout: config.timeouts.drain_idle,
        }
    }
}

impl WorkerIo {
    pub(crate) fn new(buffers: Buffers, stats: Arc<WorkerStats>, settings: IoSettings) -> WorkerIo {
        WorkerIo {
            buffers,
            conns: ConnTable::default(),
            stats,
            log_budget: LogBudget::new(),
            settings: Cell::new(settings),
        }
    }

    /// The settings in force.
    #[inline]
    pub(crate) fn settings(&self) -> IoSettings {
        self.settings.get()
    }

    /// Replaces the settings (a reload).
    pub(crate) fn set_settings(&self, settings: IoSettings) {
        self.settings.set(settings);
    }

    /// A connection's handle, for the slot `key` of the connection table.
    #[inline]
    pub(crate) fn conn(&self, key: usize) -> ConnIo<'_> {
        ConnIo { io: self, key }
    }
}

/// One connection's handle on its worker's I/O state: its key in the connection table, and the
/// state itself.
#[derive(Clone, Copy)]
pub(crate) struct ConnIo<'w> {
    pub(crate) io: &'w WorkerIo,
    pub(crate) key: usize,
}

impl<'w> ConnIo<'w> {
    /// The connection now waits on its client in `phase`, until `deadline`.
    #[inline]
    pub(crate) fn arm(self, phase: Phase, deadline: Instant) {
        self.io.conns.set(self.key, phase, Some(deadline));
    }

    /// The connection now sends (holding fixed buffer `fixed`, if any), with the send timeout
    /// counted from `now`. nginx's `send_timeout` runs between writes, so each write re-arms it:
    /// a slow but live client is not cut off.
    #[inline]
    pub(crate) fn arm_send(self, fixed: Option<u16>, now: Instant) {
        self.arm(Phase::Write(fixed), now + self.io.settings().send_timeout);
    }

    /// The connection works (parses, runs a handler, reads a file): no deadline, so that a
    /// read's deadline never cuts the work after it short.
    #[inline]
    pub(crate) fn disarm(self) {
        self.io.conns.set(self.key, Phase::Working, None);
    }

    /// The worker's counters.
    #[inline]
    pub(crate) fn stats(self) -> &'w WorkerStats {
        &self.io.stats
    }
}
