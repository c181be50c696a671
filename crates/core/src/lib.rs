//! ringd's HTTP/1.1 core: request-head parsing, body framing, chunked decoding and
//! response-head writing.
//!
//! Pure code: no I/O, no runtime, no `unsafe`. The server crate owns sockets and buffers
//! and calls into this crate with byte slices. Every rule here cites RFC 9112 (HTTP/1.1
//! message syntax) or RFC 9110 (HTTP semantics).
//!
//! Every [`ParseError`] means the connection must be closed after the error response.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

/// Incremental decoder for the chunked transfer coding (RFC 9112 §7.1).
pub mod chunked;
/// IP networks in CIDR notation, for lists of trusted sources.
pub mod cidr;
/// Conditional requests and byte ranges (RFC 9110 §13, §14).
pub mod conditional;
/// Cached rendering of the `Date` header value.
pub mod date;
/// Parse errors, each mapped to the status code of the response that reports it.
pub mod error;
/// Request body framing from Content-Length / Transfer-Encoding (RFC 9112 §6).
pub mod framing;
/// A request head from HTTP/2's pseudo-header fields (RFC 9113 §8.3).
pub mod h2_head;
/// Size limits applied while parsing (request line, head, header count, body).
pub mod limits;
/// The request method token.
pub mod method;
/// The PROXY protocol header (versions 1 and 2) a load balancer sends before the request.
pub mod proxy;
/// The request-head parser built on `httparse`.
pub mod request;
/// Response status line and header section writer.
pub mod response;
/// Request-target forms (RFC 9112 §3.2) and path normalization.
pub mod target;
/// The HTTP version of a request.
pub mod version;

pub use chunked::{ChunkProgress, ChunkedDecoder};
pub use cidr::{Cidr, CidrError};
pub use date::DateCache;
pub use error::ParseError;
pub use framing::BodyFraming;
pub use h2_head::{h2_request_head, H2Request};
pub use httparse::Header;
pub use limits::Limits;
pub use method::Method;
pub use proxy::{parse_proxy_header, ProxyAddresses, ProxyError, ProxyHeader, ProxyVersion};
pub use request::{header_slots, parse_request, parse_request_known, HeaderSlots, Parsed, RequestHead, MAX_HEADERS};
pub use response::{
    is_valid_response_header, reason_phrase, write_chunk_header, write_head, write_head_common, write_last_chunk,
    BodyLength, CommonLines, HeaderBlock, InvalidHeader, ResponseFraming, ResponseHead, WriteBuf, CONTINUE_100,
    OK_HEADS,
};
pub use target::{KnownTargets, Target, Words};
pub use version::Version;
