//! One HTTP/1.1 connection: read, answer every complete request in what was read, send all the
//! answers in one write, repeat.
//!
//! The read buffer ([`ReadBuf`](crate::io::buf::ReadBuf)) is filled from the worker's receive
//! ring or by reads lent the buffer; request heads are parsed in place (headers are slices of
//! it, handed to the handler without copies); responses are encoded into an
//! [`OutBuf`](crate::io::buf::OutBuf) (a registered fixed buffer while it fits), so that a batch
//! of pipelined requests costs one send.

/// The steps of answering one request: parse, frame, dispatch, record, encode, send.
mod answer;
/// Request bodies that did not arrive with their head, and `100 Continue`.
mod body;
/// The connection's loop, its read buffer and its deadlines.
mod conn;
/// Response heads and what is left to send after them.
mod encode;
/// Header slots for the parser, lent per request from a per-worker pool.
mod header_pool;
/// The answer of a listener that sends every request to `https://`.
mod redirect;
/// Sending what the head leaves: large bodies, files, streams.
mod send;
/// The canned answer to a connection over the worker's limit.
mod shed;

pub(crate) use conn::serve;
pub(crate) use shed::{refuse, shed};
