//! What operators see of a running server: counters, the admin listener, access logs, and the
//! budget for log lines that clients can cause.

/// Access logs: combined or JSON, buffered per worker, written through io_uring.
pub mod access_log;
/// The admin listener: `/metrics` for Prometheus, `/healthz` and `/readyz`, off the public port.
pub mod admin;
/// A per-worker budget for log lines that clients can cause.
pub(crate) mod log_budget;
/// Per-worker counters and their Prometheus exposition.
pub mod stats;
