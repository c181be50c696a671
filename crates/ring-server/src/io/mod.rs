//! The I/O layer: the ring, listening sockets, buffers, a connection's byte stream (plain or
//! TLS), sending files, and the table of connections with their deadlines. Nothing here knows
//! HTTP.

/// Every buffer of a worker: fixed buffers, the receive ring, read and output buffers.
pub(crate) mod buf;
/// The I/O state a worker's connections share, and a connection's handle on it.
pub(crate) mod conn_io;
/// The per-core table of live connections (a slab) and its deadline sweeper.
pub(crate) mod conns;
/// Sending file ranges: `sendfile` from the page cache, splice file → pipe → socket, or copy.
pub(crate) mod file;
/// Listening sockets built with socket2 (`SO_REUSEPORT`, backlog, `TCP_NODELAY`).
pub(crate) mod listener;
/// Whether a file range is in the page cache (`cachestat(2)`), for choosing how to send it.
pub(crate) mod page_cache;
/// Reading the PROXY protocol header a connection starts with, keeping what follows it.
pub(crate) mod proxy;
/// Creating a worker's ring, with kernel errors turned into advice.
pub(crate) mod ring;
/// A connection's byte stream: plain TCP, or TLS over it.
pub(crate) mod stream;
/// The system calls without a safe wrapper: every `unsafe` block but `crate::heap`'s.
mod sys;
