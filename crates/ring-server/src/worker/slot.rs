//! [`ConnSlot`]: a connection's place in its worker.

use std::rc::Rc;

use tokio_uring::net::TcpStream;

use super::Worker;
use crate::io::conn_io::ConnIo;

/// A connection's place in its worker: the worker's state, and the connection's key in the
/// worker's connection table (which keeps a handle to the socket, to shut it down past a
/// deadline). Dropping it removes the slot, however the connection ends, a panic included: a
/// slot left behind would be a connection that never closes.
pub(crate) struct ConnSlot {
    worker: Rc<Worker>,
    key: usize,
}

impl ConnSlot {
    /// Enters the connection on `stream` in the worker's table.
    pub(crate) fn open(worker: Rc<Worker>, stream: &TcpStream) -> ConnSlot {
        let key = worker.io.conns.insert(stream.clone());
        worker.stats().open.set(worker.io.conns.len() as u64);
        ConnSlot { worker, key }
    }

    /// The worker's state.
    #[inline]
    pub(crate) fn worker(&self) -> &Rc<Worker> {
        &self.worker
    }

    /// The connection's handle on the worker's I/O: deadlines, buffers, counters.
    #[inline]
    pub(crate) fn io(&self) -> ConnIo<'_> {
        self.worker.io.conn(self.key)
    }
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        let conns = &self.worker.io.conns;
        conns.remove(self.key);
        self.worker.stats().open.set(conns.len() as u64);
    }
}
