//! HTTP/2 (RFC 9113) on ringd's io_uring I/O: h2 over TLS (ALPN) and h2c with prior knowledge,
//! handed over by the HTTP/1.1 side once it sees which protocol a connection speaks.
//!
//! The `h2` crate (hyper's engine: framing, HPACK, flow control, stream states, and the
//! defences against rapid reset and CONTINUATION floods) runs on [`io::H2Io`], which adapts a
//! connection's owned-buffer io_uring operations to the poll-style I/O the engine wants. Each
//! stream becomes a [`ringd_core::RequestHead`] like an HTTP/1.1 request's and goes through the
//! same dispatch, handlers, static files, logs and counters.

/// The connection: the engine's settings, its streams, GOAWAY.
mod conn;
/// The engine's I/O on io_uring (plain or TLS), and the frames it sees.
mod io;
/// Responses as HEADERS and DATA within flow control.
mod send;
/// The connection's shared state and its deadline.
mod state;
/// One stream: body, head, dispatch, response, record.
mod stream;

pub(crate) use conn::{serve, Handoff};
pub(crate) use io::PREFACE;
