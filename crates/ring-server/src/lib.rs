//! ring-server: ringd's per-core io_uring HTTP/1.1 server.
//!
//! One worker thread per core, each pinned, each with its own io_uring ring (tokio-uring's
//! driver) and an executor that parks in it, its own `SO_REUSEPORT` listener and its own pool of
//! io_uring registered fixed buffers. Connections on a core never leave it. `DESIGN.md` at the
//! workspace root follows a request through these modules.
#![deny(unsafe_code, unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

/// The handler API and the router: what users of the library see.
pub mod app;
/// Validated server configuration.
pub mod config;
/// Protocol-neutral: route a request, call its handler, count and log it.
mod dispatch;
/// Typed start-up and runtime errors.
pub mod error;
/// Memory the crate lays out itself: page-aligned buffers, futures boxed in place or in
/// recycled memory.
mod heap;
/// One HTTP/1.1 connection: read, parse, answer, encode, send.
mod http1;
/// HTTP/2: h2 over TLS and h2c, on the same dispatch.
mod http2;
/// The ring, listeners, buffers, byte streams, file sending and connection deadlines.
mod io;
/// Counters, the admin listener, access logs.
pub mod ops;
/// A worker thread's executor, parked in its ring, and its timers.
mod runtime;
/// Starting the workers, running their loops, reloading and draining them.
pub mod server;
/// Static files: safe path mapping, conditional requests, ranges, a hot-file cache.
pub mod static_files;
/// HTTPS: certificates, SNI, resumption, and the record layer on io_uring's buffers.
pub mod tls;
/// Traffic control: rate and connection limits per client, on-the-fly compression.
pub mod traffic;
/// A worker's per-core state: what the connections on one core share.
mod worker;

pub use app::handler::{
    handler_async, Body, BodyStream, ChunkFuture, FileBody, Handler, IgnoresBody, Reply, Request, Response,
};
pub use app::router::{Router, RouterError};
pub use bytes::Bytes;
pub use config::{BufferConfig, Http2Config, ServerConfig, Shed, Timeouts, Workers, RECEIVE_BUFFER_SIZE, RESTART_ONLY};
pub use error::ServerError;
pub use ops::access_log::{AccessLogConfig, LogFormat, LogTarget};
pub use ops::admin::serve_metrics;
pub use ops::stats::Metrics;
pub use ringd_core::Limits;
pub use server::{Heartbeats, RunningServer, Server, WorkerWatch};
pub use static_files::{CacheOptions, StaticFiles, StaticOptions};
pub use tls::{CertFiles, SniCert, TlsConfig, TlsError};
pub use traffic::config::{ClientKey, Coding, Compression, ConnLimit, Per, Rate, RateZone};
