//! The handler API: what a handler sees ([`Request`]), what it returns ([`Response`]), and the
//! [`Handler`] trait itself.
//!
//! Handlers run on the worker that accepted the connection and are never moved between threads,
//! so they need not be `Send`: per-core state can live in an `Rc<RefCell<_>>`.

use std::borrow::Cow;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Instant;

use arrayvec::ArrayVec;
use bytes::Bytes;
use ringd_core::{HeaderBlock, Method, RequestHead, Version};

use crate::app::type_lines::{APPLICATION_JSON, TEXT_HTML, TEXT_PLAIN};

/// A request as a handler sees it: the parsed head (borrowed from the connection's read buffer),
/// the path parameters the route captured, and the body, read in full up to the body limit.
pub struct Request<'a> {
    pub(crate) head: &'a RequestHead<'a, 'a>,
    pub(crate) body: &'a [u8],
    pub(crate) params: &'a Params<'a>,
    pub(crate) peer: SocketAddr,
    /// The connection's clock when the request was read (the turn clock of the turn its read
    /// completed in, or the last reading before it): a recent reading for code that must not
    /// read the clock per request.
    pub(crate) now: Instant,
}

impl<'a> Request<'a> {
    /// The request method.
    pub fn method(&self) -> Method<'a> {
        self.head.method
    }

    /// The percent-decoded, normalised path (no `.`/`..` segments, no repeated slashes).
    pub fn path(&self) -> &'a str {
        match &self.head.path {
            Cow::Borrowed(p) => p,
            Cow::Owned(p) => p.as_str(),
        }
    }

    /// The raw query string, without the `?`.
    pub fn query(&self) -> Option<&'a str> {
        self.head.query
    }

    /// The request target exactly as the client sent it.
    pub fn raw_target(&self) -> &'a str {
        self.head.raw_target
    }

    /// The HTTP version of the request.
    pub fn version(&self) -> Version {
        self.head.version
    }

    /// The first value of a header (name compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.head.header(name)
    }

    /// Every header, in order, as sent.
    pub fn headers(&self) -> &'a [ringd_core::Header<'a>] {
        self.head.headers
    }

    /// The `Host` (or the authority of an absolute-form target).
    pub fn host(&self) -> Option<&'a [u8]> {
        self.head.host
    }

    /// The request body (de-chunked), empty when there is none.
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// A path parameter captured by the route (`{id}` or `{rest...}`), percent-decoded.
    pub fn param(&self, name: &str) -> Option<&'a str> {
        self.params.get(name)
    }

    /// The client's address: the connection's peer, or on a `proxy_protocol` listener the
    /// client its PROXY header names (the connection's own peer for a `LOCAL` or `UNKNOWN`
    /// header).
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// The body decoded as `application/x-www-form-urlencoded` pairs.
    pub fn form(&self) -> impl Iterator<Item = (Cow<'a, str>, Cow<'a, str>)> {
        form_urlencoded_pairs(self.body)
    }

    /// The query string decoded as `application/x-www-form-urlencoded` pairs.
    pub fn query_pairs(&self) -> impl Iterator<Item = (Cow<'a, str>, Cow<'a, str>)> {
        form_urlencoded_pairs(self.head.query.unwrap_or("").as_bytes())
    }

    /// The body parsed as JSON.
    pub fn json<T: serde::Deserialize<'a>>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(self.body)
    }
}

/// Path parameters captured by a route. At most [`Params::MAX`]; stored inline so that matching
/// a route never allocates (and, unfilled, never written: a request whose route captures
/// nothing pays nothing for them).
#[derive(Debug, Default)]
pub struct Params<'a> {
    slots: ArrayVec<(&'a str, &'a str), { Params::MAX }>,
}

impl<'a> Params<'a> {
    /// The most wildcards one pattern may hold.
    pub const MAX: usize = 8;

    pub(crate) fn push(&mut self, name: &'a str, value: &'a str) {
        // Beyond `MAX` (which a pattern cannot reach) the capture is dropped.
        let _ = self.slots.try_push((name, value));
    }

    pub(crate) fn clear(&mut self) {
        self.slots.clear();
    }

    /// The value captured for `name`.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.slots.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }
}

fn form_urlencoded_pairs(input: &[u8]) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> {
    input.split(|b| *b == b'&').filter(|p| !p.is_empty()).map(|pair| {
        let mut kv = pair.splitn(2, |b| *b == b'=');
        let k = kv.next().unwrap_or_default();
        let v = kv.next().unwrap_or_default();
        (form_decode(k), form_decode(v))
    })
}

/// Decodes `+` as space and `%XX`; invalid escapes are kept literally, invalid UTF-8 replaced.
fn form_decode(s: &[u8]) -> Cow<'_, str> {
    if !s.iter().any(|b| *b == b'+' || *b == b'%') {
        return String::from_utf8_lossy(s);
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < s.len() && hex(s[i + 1]).is_some() && hex(s[i + 2]).is_some() => {
                out.push(hex(s[i + 1]).unwrap_or(0) * 16 + hex(s[i + 2]).unwrap_or(0));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// A response body.
pub enum Body {
    /// No body.
    Empty,
    /// A body held in memory. `Bytes::from_static` makes fixed bodies free to send.
    Full(Bytes),
    /// A body produced piece by piece (a generator). Sent with `Content-Length` when its
    /// length is known, chunked otherwise.
    Stream(Box<dyn BodyStream>),
    /// A range of an open file, sent with `splice` (no copy) where it can be.
    File(FileBody),
}

/// A range of an open file, as a response body.
pub struct FileBody {
    pub(crate) file: std::rc::Rc<tokio_uring::fs::File>,
    pub(crate) start: u64,
    pub(crate) len: u64,
}

impl FileBody {
    /// `len` bytes of `file` from `start`. If the file turns out shorter, the connection closes
    /// (the length is on the wire by then).
    pub fn new(file: std::rc::Rc<tokio_uring::fs::File>, start: u64, len: u64) -> FileBody {
        FileBody { file, start, len }
    }
}

impl Body {
    /// The body's length if it is known in advance.
    pub fn len(&self) -> Option<u64> {
        match self {
            Body::Empty => Some(0),
            Body::Full(b) => Some(b.len() as u64),
            Body::Stream(s) => s.length(),
            Body::File(f) => Some(f.len),
        }
    }

    /// Whether the body is known to be empty.
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }
}

/// The future a [`BodyStream`] returns for its next piece.
pub type ChunkFuture<'a> = Pin<Box<dyn Future<Output = io::Result<Option<Bytes>>> + 'a>>;

/// A body produced piece by piece.
pub trait BodyStream {
    /// The total length, when known before the first byte is sent. A stream that yields a
    /// different number of bytes than it announced makes the server close the connection.
    fn length(&self) -> Option<u64>;
    /// The next piece; `Ok(None)` at the end. An error closes the connection (the status line is
    /// already on the wire).
    fn next_chunk(&mut self) -> ChunkFuture<'_>;
}

/// A response: status, content type, extra headers, body.
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The `Content-Type` value, if any. Kept apart from `headers` so that the common response
    /// (a status, a type and a body) needs no allocation.
    pub content_type: Option<Bytes>,
    /// Further headers. The server writes `Date`, `Server`, `Content-Length`,
    /// `Transfer-Encoding` and `Connection` itself; a handler that sets one of those, or a value
    /// with CR, LF or NUL in it, gets a 500 instead of a response that could split.
    pub headers: Vec<(Cow<'static, str>, Bytes)>,
    /// The body.
    pub body: Body,
    /// Header lines the server checked and rendered once for many responses (a cached file's
    /// `Content-Type`, `ETag` and the rest), written after `headers`; see
    /// [`Response::header_block`].
    pub(crate) block: Option<Rc<SharedHeaders>>,
}

/// Header fields checked and rendered once for many responses: the lines HTTP/1.1 writes as
/// they are, and, made at the first HTTP/2 answer and kept, the same fields as the HTTP/2
/// engine takes them (names and values it would otherwise parse and copy per response).
#[derive(Debug)]
pub(crate) struct SharedHeaders {
    pub(crate) lines: HeaderBlock,
    h2: std::cell::OnceCell<Option<Box<[H2Field]>>>,
}

/// A field as the HTTP/2 engine takes it.
pub(crate) type H2Field = (http::HeaderName, http::HeaderValue);

impl SharedHeaders {
    pub(crate) fn new(lines: HeaderBlock) -> SharedHeaders {
        SharedHeaders {
            lines,
            h2: std::cell::OnceCell::new(),
        }
    }

    /// The fields as HTTP/2 takes them; `None` if one is not a valid HTTP/2 field (it passed
    /// HTTP/1.1's checks, which are the same, so never in practice).
    pub(crate) fn h2_fields(&self) -> Option<&[H2Field]> {
        self.h2
            .get_or_init(|| {
                self.lines
                    .iter()
                    .map(|(name, value)| {
                        Some((
                            http::HeaderName::from_bytes(name.as_bytes()).ok()?,
                            http::HeaderValue::from_bytes(value).ok()?,
                        ))
                    })
                    .collect()
            })
            .as_deref()
    }
}

impl Response {
    /// A response with this status and no body.
    #[inline]
    pub fn new(status: u16) -> Response {
        Response {
            status,
            content_type: None,
            headers: Vec::new(),
            body: Body::Empty,
            block: None,
        }
    }

    /// Adds header lines rendered once (see [`HeaderBlock`]).
    pub(crate) fn block(mut self, block: Rc<SharedHeaders>) -> Response {
        self.block = Some(block);
        self
    }

    /// Headers the server rendered once for many responses and sends after
    /// [`headers`](Self::headers): a whole cached file answered by [`crate::StaticFiles`]
    /// carries its `Content-Type`, `ETag`, `Last-Modified` and the rest here, not in
    /// `content_type` and `headers`. Setting a content type moves them back into `headers`.
    pub fn header_block(&self) -> Option<&HeaderBlock> {
        self.block.as_deref().map(|b| &b.lines)
    }

    /// Turns a header block back into ordinary headers, its `Content-Type` into `content_type`.
    #[inline]
    pub(crate) fn unblock(&mut self) {
        if self.block.is_some() {
            self.unblock_slow();
        }
    }

    #[cold]
    fn unblock_slow(&mut self) {
        if let Some(block) = self.block.take() {
            for (name, value) in block.lines.iter() {
                if name.eq_ignore_ascii_case("content-type") {
                    self.content_type = Some(Bytes::copy_from_slice(value));
                } else {
                    self.headers
                        .push((Cow::Owned(name.to_owned()), Bytes::copy_from_slice(value)));
                }
            }
        }
    }

    /// `200` with a static `text/plain; charset=utf-8` body; allocates nothing.
    pub fn text(body: &'static str) -> Response {
        Response::typed(200, TEXT_PLAIN, Bytes::from_static(body.as_bytes()))
    }

    /// `200` with a static `text/html; charset=utf-8` body; allocates nothing.
    pub fn html(body: &'static str) -> Response {
        Response::typed(200, TEXT_HTML, Bytes::from_static(body.as_bytes()))
    }

    /// `200` with a JSON body serialised from `value`.
    pub fn json<T: serde::Serialize>(value: &T) -> Response {
        match serde_json::to_vec(value) {
            Ok(v) => Response::typed(200, APPLICATION_JSON, Bytes::from(v)),
            Err(_) => Response::error(500),
        }
    }

    /// A small `text/plain` error page for `status` (its reason phrase).
    pub fn error(status: u16) -> Response {
        Response::typed(status, TEXT_PLAIN, error_body(status))
    }

    /// A response with a static content type and a body in memory, built in one piece: the
    /// builder methods would move the whole response once per step.
    #[inline]
    fn typed(status: u16, content_type: &'static str, body: Bytes) -> Response {
        Response {
            status,
            content_type: Some(Bytes::from_static(content_type.as_bytes())),
            headers: Vec::new(),
            body: Body::Full(body),
            block: None,
        }
    }

    /// Sets the status.
    #[inline]
    pub fn status(mut self, status: u16) -> Response {
        self.status = status;
        self
    }

    /// Sets a static `Content-Type`.
    #[inline]
    pub fn content_type_static(mut self, value: &'static str) -> Response {
        self.unblock();
        self.content_type = Some(Bytes::from_static(value.as_bytes()));
        self
    }

    /// Sets `Content-Type`.
    #[inline]
    pub fn content_type(mut self, value: impl Into<Bytes>) -> Response {
        self.unblock();
        self.content_type = Some(value.into());
        self
    }

    /// Adds a header.
    #[inline]
    pub fn header(mut self, name: impl Into<Cow<'static, str>>, value: impl Into<Bytes>) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    #[inline]
    pub fn body(mut self, body: Body) -> Response {
        self.body = body;
        self
    }
}

/// Pre-rendered error bodies ("404 Not Found\n"), so that error responses allocate nothing.
fn error_body(status: u16) -> Bytes {
    macro_rules! bodies {
        ($($code:literal $text:literal),* $(,)?) => {
            match status {
                $($code => Bytes::from_static(concat!($code, " ", $text, "\n").as_bytes()),)*
                _ => Bytes::from(format!("{} {}\n", status, ringd_core::reason_phrase(status))),
            }
        };
    }
    bodies!(
        400 "Bad Request", 403 "Forbidden", 404 "Not Found", 405 "Method Not Allowed",
        408 "Request Timeout", 411 "Length Required", 413 "Content Too Large", 414 "URI Too Long",
        416 "Range Not Satisfiable", 417 "Expectation Failed", 429 "Too Many Requests",
        431 "Request Header Fields Too Large",
        500 "Internal Server Error", 501 "Not Implemented", 503 "Service Unavailable",
        505 "HTTP Version Not Supported",
    )
}

/// What a handler returns: a response at once (no allocation), or a future of one.
pub enum Reply<'a> {
    /// The response is ready.
    Ready(Response),
    /// The response needs I/O first.
    Pending(Pin<Box<dyn Future<Output = Response> + 'a>>),
}

/// Something that answers requests. Closures `Fn(&Request) -> Response` are handlers; wrap an
/// async closure with [`handler_async`].
///
/// A handler's future runs on its worker's own executor (one thread per core, parked in its
/// io_uring ring), not on a tokio runtime. tokio's timers, channels, I/O and `tokio::spawn` work
/// in it: the worker enters the handle of a tokio runtime that runs on a thread of its own, and
/// what that runtime wakes comes back to the worker. `tokio::task::spawn_local` does not (there is
/// no `LocalSet`), and neither does anything that blocks the thread: the worker's other
/// connections wait meanwhile.
pub trait Handler: 'static {
    /// Answers one request.
    fn call<'a>(&'a self, req: &'a Request<'a>) -> Reply<'a>;

    /// Whether this handler reads the request body. When it does not, `Expect: 100-continue`
    /// is answered with the final response directly, and the connection closes if the body has
    /// not arrived (RFC 9110 §10.1.1).
    fn reads_body(&self) -> bool {
        true
    }
}

impl<F> Handler for F
where
    F: Fn(&Request<'_>) -> Response + 'static,
{
    fn call<'a>(&'a self, req: &'a Request<'a>) -> Reply<'a> {
        Reply::Ready(self(req))
    }
}

/// A handler made from an async closure, e.g. `handler_async(async |req: &Request<'_>| ...)`.
pub struct AsyncHandler<F>(F);

/// Wraps an async closure as a [`Handler`].
pub fn handler_async<F>(f: F) -> AsyncHandler<F>
where
    F: for<'a> AsyncFn(&'a Request<'a>) -> Response + 'static,
{
    AsyncHandler(f)
}

impl<F> Handler for AsyncHandler<F>
where
    F: for<'a> AsyncFn(&'a Request<'a>) -> Response + 'static,
{
    fn call<'a>(&'a self, req: &'a Request<'a>) -> Reply<'a> {
        Reply::Pending(Box::pin((self.0)(req)))
    }
}

/// A handler that ignores the body (`reads_body` is false); see [`Handler::reads_body`].
pub struct IgnoresBody<H>(pub H);

impl<H: Handler> Handler for IgnoresBody<H> {
    fn call<'a>(&'a self, req: &'a Request<'a>) -> Reply<'a> {
        self.0.call(req)
    }
    fn reads_body(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A wrapper that sets a content type on a cached file's response replaces the file's
    /// (the block turns back into ordinary headers) instead of sending two.
    #[test]
    fn setting_a_content_type_unblocks_the_header_block() {
        let block = HeaderBlock::new(&[("Content-Type", b"text/css"), ("ETag", b"\"x\"")]).unwrap();
        let r = Response::new(200).block(Rc::new(SharedHeaders::new(block)));
        assert_eq!(r.header_block().map(|b| b.iter().count()), Some(2));
        let r = r.content_type_static("text/plain");
        assert!(r.header_block().is_none());
        assert_eq!(r.content_type.as_deref(), Some(&b"text/plain"[..]));
        assert_eq!(r.headers.len(), 1);
        assert_eq!((&*r.headers[0].0, &r.headers[0].1[..]), ("ETag", &b"\"x\""[..]));
    }

    #[test]
    fn form_pairs_decode() {
        let pairs: Vec<_> = form_urlencoded_pairs(b"a=1&b=hello+world&c=%41%zz&&d").collect();
        assert_eq!(
            pairs,
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "hello world".into()),
                ("c".into(), "A%zz".into()),
                ("d".into(), "".into()),
            ]
        );
    }

    #[test]
    fn error_bodies_are_static_for_common_codes() {
        assert_eq!(&error_body(404)[..], b"404 Not Found\n");
        assert_eq!(&error_body(599)[..], b"599 \n");
    }

    #[test]
    fn params_lookup() {
        let mut p = Params::default();
        p.push("id", "42");
        assert_eq!(p.get("id"), Some("42"));
        assert_eq!(p.get("x"), None);
        p.clear();
        assert_eq!(p.get("id"), None);
    }
}
