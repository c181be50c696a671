//! ring-server: ringd's per-core io_uring HTTP/1.1 server.
//!
//! One worker thread per core, each pinned, each with its own `tokio-uring` runtime, its own
//! `SO_REUSEPORT` listener and its own pool of io_uring registered fixed buffers. Connections on a
//! core never leave it. `DESIGN.md` at the workspace root follows a request through these modules.
#![deny(unsafe_code, unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

/// Access logs: combined or JSON, buffered per worker, written through io_uring.
pub mod access_log;
/// The admin listener: `/metrics` for Prometheus, off the public port.
pub mod admin;
/// Boxing a future where it is built, not on the stack first.
mod boxed;
/// Registered fixed buffers and the output buffer that falls back to the heap.
mod buf;
/// Validated server configuration.
pub mod config;
/// One connection's request/response loop.
mod conn;
/// The per-core table of live connections (a slab) and its deadline sweeper.
mod conn_table;
/// Typed start-up and runtime errors.
pub mod error;
/// The handler API: requests, responses, bodies, and the `Handler` trait.
pub mod handler;
/// Header slots for the parser, lent per request from a per-worker pool.
mod header_pool;
/// Listening sockets built with socket2 (`SO_REUSEPORT`, backlog, `TCP_NODELAY`).
mod listener;
/// A per-worker budget for log lines that clients can cause.
mod log_budget;
/// Whether a file range is in the page cache (`cachestat(2)`), for choosing how to send it.
mod page_cache;
/// Method + path pattern routing in the manner of Go 1.22's `ServeMux`.
pub mod router;
/// Sending file ranges: `sendfile` from the page cache, splice file → pipe → socket, or copy.
mod sendfile;
/// Starting the workers and waiting for them.
pub mod server;
/// Static files: safe path mapping, conditional requests, ranges, a hot-file cache.
pub mod static_files;
/// Per-worker counters and their Prometheus exposition.
pub mod stats;
/// HTTPS: certificates, SNI, resumption, and the record layer on io_uring's buffers.
pub mod tls;
/// A connection's byte stream: plain TCP, or TLS over it.
mod transport;
/// The `Content-Type` lines of ringd's own responses, rendered once.
mod type_lines;
/// io_uring availability checks that turn kernel errors into advice.
mod uring;
/// A worker: one pinned thread, one runtime, its listeners and connections.
mod worker;

pub use access_log::{AccessLogConfig, LogFormat, LogTarget};
pub use bytes::Bytes;
pub use config::{BufferConfig, ServerConfig, Shed, Timeouts, Workers, RECEIVE_BUFFER_SIZE};
pub use error::ServerError;
pub use handler::{handler_async, Body, BodyStream, FileBody, Handler, IgnoresBody, Reply, Request, Response};
pub use ringd_core::Limits;
pub use router::{Router, RouterError};
pub use server::{Heartbeats, RunningServer, Server, WorkerWatch, RESTART_ONLY};
pub use static_files::{CacheOptions, StaticFiles, StaticOptions};
pub use stats::Metrics;
pub use tls::{CertFiles, SniCert, TlsConfig, TlsError};
