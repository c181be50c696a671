//! Reading the PROXY protocol header a connection on a `proxy_protocol` listener starts with,
//! before anything else (TLS included), under the header timeout.
//!
//! io_uring has no "read up to CRLF": a read brings whatever has arrived, which is often the
//! header and the request after it in one segment. So the header is read into a buffer that
//! is returned whole, and the bytes after the header belong to the connection: the caller
//! hands them over as already read (into the read buffer for HTTP, into the session for TLS).

use std::io;
use std::time::Instant;

use ringd_core::{parse_proxy_header, Parsed, ProxyError, ProxyHeader};
use tokio_uring::buf::BoundedBuf;
use tokio_uring::net::TcpStream;

use super::conn_io::ConnIo;
use super::conns::Phase;
use crate::ops::stats::Op;

/// The longest v2 header accepted, TLVs included. HAProxy's own TLVs (ALPN, authority, unique
/// id, TLS details) fit in a few hundred bytes; the protocol allows 64 KiB.
pub(crate) const MAX_HEADER: usize = 4096;
/// Room for each read: a v1 header and a typical request head after it.
const READ: usize = 1024;

/// Why no header was read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProxyReadError {
    /// The bytes are not a valid PROXY header.
    #[error("{0}")]
    Invalid(#[from] ProxyError),
    /// The client closed, or the sweeper closed it at the deadline, before a whole header.
    #[error("closed before a whole PROXY header arrived")]
    Closed,
    /// The read failed.
    #[error("reading the PROXY header: {0}")]
    Io(#[from] io::Error),
}

/// Reads until `buf` (empty, lent for the reads and returned) holds a whole PROXY header, or
/// `deadline` passes (the sweeper shuts the socket down then). Returns the header and every
/// byte read: `buf[header.len..]` is the start of the connection's own stream.
pub(crate) async fn read_header(
    stream: &TcpStream,
    conn: ConnIo<'_>,
    deadline: Instant,
    mut buf: Vec<u8>,
) -> (Result<ProxyHeader, ProxyReadError>, Vec<u8>) {
    loop {
        // Bounded: the parser answers Partial only below 107 bytes (v1) or the length a v2
        // header announced, which it checked against MAX_HEADER.
        if buf.capacity() - buf.len() < READ / 2 {
            buf.reserve(READ);
        }
        let filled = buf.len();
        conn.arm(Phase::Fresh, deadline);
        conn.stats().op(Op::Read);
        let (res, slice) = stream.read(buf.slice(filled..)).await;
        buf = slice.into_inner();
        conn.disarm();
        match res {
            Ok(0) => return (Err(ProxyReadError::Closed), buf),
            Ok(n) => conn.stats().bytes_in.add(n as u64),
            Err(e) => return (Err(e.into()), buf),
        }
        match parse_proxy_header(&buf, MAX_HEADER) {
            Ok(Parsed::Complete(header)) => return (Ok(header), buf),
            Ok(Parsed::Partial) => {}
            Err(e) => return (Err(e.into()), buf),
        }
    }
}
