//! Traffic control: per-client rate limits (429), a per-client limit on open connections, and
//! on-the-fly compression (gzip, Brotli, zstd). Protocol-neutral: dispatch checks requests and
//! compresses responses, the accept loop counts connections, for HTTP/1.1 and HTTP/2 alike.

/// A client's key for a limit and its place in a table.
mod client;
/// Compressing responses: negotiation, encoders, compressed streams.
pub(crate) mod compress;
/// The settings: zones, the connection limit, compression.
pub mod config;
/// Open connections per client, shared by the workers.
mod conn_limit;
/// The limits in force, kept across reloads, and their counters.
pub(crate) mod limits;
/// One zone's clients: GCRA buckets in a shared table of atomic words.
mod rate;
/// A worker's handle: checks, admission, compression contexts.
pub(crate) mod worker_traffic;

pub(crate) use limits::{LimitSet, Limits};
pub(crate) use worker_traffic::{Admit, Verdict, WorkerTraffic};
