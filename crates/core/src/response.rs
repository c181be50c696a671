//! Response head writer. The writer owns the framing headers (Content-Length,
//! Transfer-Encoding, Connection) and Date/Server, so a handler can never produce a response
//! whose framing disagrees with what the server actually sends.

use std::cell::RefCell;

use crate::version::Version;

/// The interim response sent before reading a body announced with `Expect: 100-continue`
/// (RFC 9110 §10.1.1).
pub const CONTINUE_100: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// The reason phrase of `status` (RFC 9110 §15); `""` for codes the RFC doesn't define.
/// The phrase is informational only (RFC 9112 §4), so an empty one is valid.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        305 => "Use Proxy",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        426 => "Upgrade Required",
        // RFC 6585, widely used alongside RFC 9110.
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// A sink for response bytes (the server's write buffer).
pub trait WriteBuf {
    /// Appends `bytes`.
    fn put(&mut self, bytes: &[u8]);
}

impl WriteBuf for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// What the handler knows about the body length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLength {
    /// Exactly this many bytes.
    Known(u64),
    /// Unknown up front; produced piece by piece.
    Streamed,
}

/// How the caller must put the body on the wire after [`write_head`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFraming {
    /// Send no body bytes (HEAD, 1xx, 204, 304).
    NoBody,
    /// Send exactly this many bytes.
    Length(u64),
    /// Send chunks with [`write_chunk_header`] and finish with [`write_last_chunk`].
    Chunked,
    /// Send the bytes, then close the connection (HTTP/1.0 with unknown length,
    /// RFC 9112 §6.3 item 8).
    CloseDelimited,
}

/// A handler header that [`write_head`] refused; `index` is its position in
/// [`ResponseHead::headers`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid response header {index}")]
pub struct InvalidHeader {
    /// Index into [`ResponseHead::headers`].
    pub index: usize,
}

/// Everything [`write_head`] needs to write a response head.
#[derive(Debug, Clone, Copy)]
pub struct ResponseHead<'a> {
    /// Status code, 100..=999.
    pub status: u16,
    /// Extra headers from the handler (Content-Type etc.). Content-Length,
    /// Transfer-Encoding, Connection, Date and Server belong to the writer and are refused.
    pub headers: &'a [(&'a str, &'a [u8])],
    /// Header lines checked and rendered once for many responses (a cached file's validators
    /// and type), written after `headers` as they are.
    pub block: Option<&'a HeaderBlock>,
    /// The body length as the handler knows it.
    pub body: BodyLength,
    /// The version of the request being answered.
    pub request_version: Version,
    /// Whether the connection will stay open after this response.
    pub keep_alive: bool,
    /// Answering HEAD: headers as for GET, no body bytes (RFC 9110 §9.3.2).
    pub head_request: bool,
}

/// Header lines checked and rendered once, to be written into many responses as they are: for
/// headers that stay the same from one response to the next (a cached file's `ETag`,
/// `Last-Modified` and `Content-Type`), the per-response checks and formatting of
/// [`ResponseHead::headers`] happen once, here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderBlock {
    /// The rendered lines; for a block made [`with_length`](HeaderBlock::with_length), followed
    /// by its `Content-Length` line and the empty line.
    bytes: Box<[u8]>,
    /// How many of `bytes` are the lines.
    lines_len: usize,
    /// The body length a block made [`with_length`](HeaderBlock::with_length) is framed for.
    length: Option<u64>,
    names: Box<[Box<str>]>,
}

impl HeaderBlock {
    /// Checks and renders `headers` as [`write_head`] would (`Name: value` lines). `Err` names
    /// the first invalid or reserved header, as `write_head` does.
    pub fn new(headers: &[(&str, &[u8])]) -> Result<HeaderBlock, InvalidHeader> {
        Self::render(headers, None)
    }

    /// [`new`](HeaderBlock::new), and the framing of a body of `len` bytes rendered after the
    /// lines, for [`CommonLines::write_block_ok_head`] to write the rest of a `200` head with
    /// such a body in one piece.
    pub fn with_length(headers: &[(&str, &[u8])], len: u64) -> Result<HeaderBlock, InvalidHeader> {
        Self::render(headers, Some(len))
    }

    fn render(headers: &[(&str, &[u8])], length: Option<u64>) -> Result<HeaderBlock, InvalidHeader> {
        let mut lines = Vec::new();
        for (index, (name, value)) in headers.iter().enumerate() {
            if !is_token(name) || is_reserved(name) || !is_field_value(value) {
                return Err(InvalidHeader { index });
            }
            lines.extend_from_slice(name.as_bytes());
            lines.extend_from_slice(b": ");
            lines.extend_from_slice(value);
            lines.extend_from_slice(b"\r\n");
        }
        let lines_len = lines.len();
        if let Some(len) = length {
            put_ok_end(&mut lines, len, true);
        }
        Ok(HeaderBlock {
            bytes: lines.into(),
            lines_len,
            length,
            names: headers.iter().map(|(name, _)| Box::from(*name)).collect(),
        })
    }

    /// Whether the block has a header of this name (ASCII case-insensitive).
    pub fn has(&self, name: &str) -> bool {
        self.names.iter().any(|n| n.eq_ignore_ascii_case(name))
    }

    /// The rendered lines, each ending in CRLF.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.lines_len]
    }

    /// The lines, the `Content-Length` line and the empty line, when the block was made
    /// [`with_length`](HeaderBlock::with_length) `len`.
    fn framed(&self, len: u64) -> Option<&[u8]> {
        (self.length == Some(len)).then_some(&*self.bytes)
    }

    /// The headers, as given to [`HeaderBlock::new`].
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        // Each line is `name: value\r\n`, the name a token (no ':') as `new` checked.
        self.names
            .iter()
            .zip(
                self.as_bytes()
                    .split(|&b| b == b'\n')
                    .filter(|line| !line.is_empty())
                    .map(|line| {
                        let start = line.iter().position(|&b| b == b':').map_or(line.len(), |i| i + 2);
                        &line[start.min(line.len())..line.len().saturating_sub(1)]
                    }),
            )
            .map(|(name, value)| (&**name, value))
    }
}

/// The `Date` and `Server` lines of a response head, rendered once for every response of a
/// second (the date changes once a second): [`write_head_common`] writes them as one piece,
/// where [`write_head`] writes the same bytes in six; a `200` response's status line is kept in
/// front of them, so that its head starts with one piece.
#[derive(Debug, Clone)]
pub struct CommonLines {
    /// `HTTP/1.1 200 OK`, then the lines.
    lines: Vec<u8>,
    /// Whole heads of `200` responses, one per content-type line a caller numbers and per
    /// connection outcome (see [`CommonLines::write_ok_head`]; the first [`OK_HEADS`] keep the
    /// connection open, the others close it): each is `with_ok_status()`, that line, the
    /// `Content-Length` of `len`, `Connection: close` for the others, and the empty line, and
    /// is emptied whenever the lines are rendered again.
    ok_heads: RefCell<[OkHead; 2 * OK_HEADS]>,
}

/// How many content-type lines [`CommonLines::write_ok_head`] keeps whole heads for.
pub const OK_HEADS: usize = 4;

/// One whole `200` head kept by [`CommonLines`]: `bytes` is the head for a body of `len` bytes,
/// or nothing yet when `bytes` is empty.
#[derive(Debug, Clone, Default)]
struct OkHead {
    len: u64,
    bytes: Vec<u8>,
}

impl PartialEq for CommonLines {
    /// The same lines (the heads kept are made from them).
    fn eq(&self, other: &CommonLines) -> bool {
        self.lines == other.lines
    }
}

impl Eq for CommonLines {}

/// The status line that [`CommonLines`] keeps in front of its lines.
const OK_LINE: &[u8] = b"HTTP/1.1 200 OK\r\n";

impl Default for CommonLines {
    fn default() -> CommonLines {
        CommonLines {
            lines: OK_LINE.to_vec(),
            ok_heads: RefCell::default(),
        }
    }
}

impl CommonLines {
    /// The lines for `date` (an IMF-fixdate) and `server` (empty: no `Server` line).
    pub fn new(date: &[u8], server: &[u8]) -> CommonLines {
        let mut lines = CommonLines::default();
        lines.set(date, server);
        lines
    }

    /// Renders the lines again, in the same memory.
    pub fn set(&mut self, date: &[u8], server: &[u8]) {
        self.lines.truncate(OK_LINE.len());
        put_common(&mut self.lines, date, server);
        for head in self.ok_heads.get_mut() {
            head.bytes.clear();
        }
    }

    /// Writes the head of a `200` response whose only header is `type_line` (a rendered
    /// `Content-Type` line, such as a [`HeaderBlock`] of it) with a body of `len` bytes, on a
    /// connection that stays open and needs no `Connection` line (HTTP/1.1): the bytes
    /// [`write_head_common`] writes for that head, `type_line` as its block. `slot` names the
    /// type line (a caller gives each line its own, below [`OK_HEADS`]): the whole head is
    /// rendered once and copied as one piece for every response of the same slot and length
    /// until the lines are rendered again. A slot out of range is written without keeping it.
    pub fn write_ok_head(&self, out: &mut impl WriteBuf, slot: usize, type_line: &[u8], len: u64) {
        self.write_kept(out, slot, type_line, len, true);
    }

    /// [`write_ok_head`](Self::write_ok_head) for a connection that closes after the response
    /// (either version): the head ends with `Connection: close`, as [`write_head_common`]
    /// writes it. Kept apart from the heads of connections that stay open.
    pub fn write_ok_close_head(&self, out: &mut impl WriteBuf, slot: usize, type_line: &[u8], len: u64) {
        self.write_kept(out, slot, type_line, len, false);
    }

    /// Writes the head of a `200` response whose only headers are `block`'s, with a body of
    /// `len` bytes: the bytes [`write_head_common`] writes for that head, in two pieces (three
    /// when a `Connection` line is due). `false`, with nothing written, unless `block` was made
    /// [`with_length`](HeaderBlock::with_length) `len`.
    #[inline]
    pub fn write_block_ok_head(
        &self,
        out: &mut impl WriteBuf,
        block: &HeaderBlock,
        len: u64,
        keep_alive: bool,
        version: Version,
    ) -> bool {
        let Some(framed) = block.framed(len) else {
            return false;
        };
        out.put(self.with_ok_status());
        match connection_line(keep_alive, version) {
            None => out.put(framed),
            Some(line) => {
                // The framing ends with the empty line; the `Connection` line goes before it.
                out.put(&framed[..framed.len() - 2]);
                out.put(line);
                out.put(b"\r\n");
            }
        }
        true
    }

    /// The kept head of `slot` for connections that stay open (`keep_alive`) or close.
    #[inline(always)]
    fn write_kept(&self, out: &mut impl WriteBuf, slot: usize, type_line: &[u8], len: u64, keep_alive: bool) {
        let mut heads = self.ok_heads.borrow_mut();
        let kept = if slot >= OK_HEADS {
            None
        } else if keep_alive {
            heads.get_mut(slot)
        } else {
            heads.get_mut(OK_HEADS + slot)
        };
        let Some(head) = kept else {
            drop(heads);
            out.put(self.with_ok_status());
            out.put(type_line);
            put_ok_end(out, len, keep_alive);
            return;
        };
        if head.len != len || head.bytes.is_empty() {
            head.len = len;
            head.bytes.clear();
            head.bytes.extend_from_slice(self.with_ok_status());
            head.bytes.extend_from_slice(type_line);
            put_ok_end(&mut head.bytes, len, keep_alive);
        }
        out.put(&head.bytes);
    }

    /// The lines, each ending in CRLF.
    pub fn as_bytes(&self) -> &[u8] {
        &self.lines[OK_LINE.len()..]
    }

    /// `HTTP/1.1 200 OK` and the lines: the start of a `200` response's head.
    pub fn with_ok_status(&self) -> &[u8] {
        &self.lines
    }
}

/// The `Date` and `Server` lines as [`write_head`] writes them.
fn put_common(out: &mut impl WriteBuf, date: &[u8], server: &[u8]) {
    out.put(b"Date: ");
    out.put(date);
    out.put(b"\r\n");
    if !server.is_empty() {
        out.put(b"Server: ");
        out.put(server);
        out.put(b"\r\n");
    }
}

/// Pre-rendered status lines for common codes: no formatting on the hot path.
fn static_status_line(status: u16) -> Option<&'static [u8]> {
    Some(match status {
        200 => b"HTTP/1.1 200 OK\r\n",
        201 => b"HTTP/1.1 201 Created\r\n",
        204 => b"HTTP/1.1 204 No Content\r\n",
        206 => b"HTTP/1.1 206 Partial Content\r\n",
        301 => b"HTTP/1.1 301 Moved Permanently\r\n",
        302 => b"HTTP/1.1 302 Found\r\n",
        304 => b"HTTP/1.1 304 Not Modified\r\n",
        400 => b"HTTP/1.1 400 Bad Request\r\n",
        403 => b"HTTP/1.1 403 Forbidden\r\n",
        404 => b"HTTP/1.1 404 Not Found\r\n",
        405 => b"HTTP/1.1 405 Method Not Allowed\r\n",
        408 => b"HTTP/1.1 408 Request Timeout\r\n",
        411 => b"HTTP/1.1 411 Length Required\r\n",
        413 => b"HTTP/1.1 413 Content Too Large\r\n",
        414 => b"HTTP/1.1 414 URI Too Long\r\n",
        416 => b"HTTP/1.1 416 Range Not Satisfiable\r\n",
        417 => b"HTTP/1.1 417 Expectation Failed\r\n",
        431 => b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
        500 => b"HTTP/1.1 500 Internal Server Error\r\n",
        501 => b"HTTP/1.1 501 Not Implemented\r\n",
        503 => b"HTTP/1.1 503 Service Unavailable\r\n",
        505 => b"HTTP/1.1 505 HTTP Version Not Supported\r\n",
        _ => return None,
    })
}

/// Decimal digits of `n` in a stack buffer; returns the used tail.
fn decimal(n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    let mut n = n;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}

/// Whether a handler may send the header `name: value`: a token name that is not one of the
/// headers the server writes itself (framing, `Connection`, `Date`, `Server`), and a value with
/// no CR, LF, NUL or other control byte. The rule [`write_head`] applies, for other encoders
/// (HTTP/2) to apply too.
pub fn is_valid_response_header(name: &str, value: &[u8]) -> bool {
    is_token(name) && !is_reserved(name) && is_field_value(value)
}

/// Headers the writer owns; a handler copy would contradict the framing we send.
fn is_reserved(name: &str) -> bool {
    let reserved = match name.len() {
        14 => "content-length",
        17 => "transfer-encoding",
        10 => "connection",
        4 => "date",
        6 => "server",
        _ => return false,
    };
    name.eq_ignore_ascii_case(reserved)
}

/// Which bytes may appear in a `token` (RFC 9110 §5.6.2): a table, since every handler header
/// name is checked on every response.
const TOKEN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_' | b'`' | b'|' | b'~'
            );
        b += 1;
    }
    table
};

/// `token` (RFC 9110 §5.6.2).
fn is_token(s: &str) -> bool {
    // No early exit: one branch for the whole name, not one a byte.
    !s.is_empty() && s.bytes().fold(true, |ok, b| ok & TOKEN[usize::from(b)])
}

/// field-value bytes (RFC 9110 §5.5): VCHAR, obs-text, SP and HTAB; no other CTL, so no
/// CR/LF/NUL that could split the response.
fn is_field_value(v: &[u8]) -> bool {
    // No early exit, so the loop vectorises: every value is checked on every response.
    v.iter()
        .fold(true, |ok, &b| ok & ((b == b'\t') | ((b >= 0x20) & (b != 0x7f))))
}

/// Writes the status line and header section. Returns how the body must be framed on the wire.
///
/// The status line is always `HTTP/1.1` (RFC 9110 §6.2: a server sends its own highest
/// version, also to HTTP/1.0 clients). Then `Date`, `Server` (omitted when `server` is
/// empty), the handler headers, the framing header and `Connection`. Handler headers are all
/// validated before anything is written, so on `Err` nothing was written.
///
/// Framing: 1xx, 204 and 304 never carry Content-Length or a body (RFC 9110 §8.6, §15.3.5,
/// §15.4.5). HEAD gets the headers GET would get but [`ResponseFraming::NoBody`]. An
/// unknown length is chunked for HTTP/1.1 and close-delimited for HTTP/1.0, which forces
/// `Connection: close` (RFC 9112 §6.3 item 8).
pub fn write_head(
    out: &mut impl WriteBuf,
    head: &ResponseHead<'_>,
    date: &[u8],
    server: &[u8],
) -> Result<ResponseFraming, InvalidHeader> {
    write_head_with(out, head, |out| {
        put_status_line(out, head.status);
        put_common(out, date, server);
    })
}

/// [`write_head`] with the `Date` and `Server` lines rendered beforehand: the same bytes.
pub fn write_head_common(
    out: &mut impl WriteBuf,
    head: &ResponseHead<'_>,
    common: &CommonLines,
) -> Result<ResponseFraming, InvalidHeader> {
    write_head_with(out, head, |out| {
        if head.status == 200 {
            out.put(common.with_ok_status());
        } else {
            put_status_line(out, head.status);
            out.put(common.as_bytes());
        }
    })
}

/// The status line: pre-rendered for common codes, formatted otherwise.
fn put_status_line(out: &mut impl WriteBuf, status: u16) {
    match static_status_line(status) {
        Some(line) => out.put(line),
        None => {
            let mut digits = [0u8; 20];
            out.put(b"HTTP/1.1 ");
            out.put(decimal(u64::from(status), &mut digits));
            out.put(b" ");
            out.put(reason_phrase(status).as_bytes());
            out.put(b"\r\n");
        }
    }
}

fn write_head_with<W: WriteBuf>(
    out: &mut W,
    head: &ResponseHead<'_>,
    start: impl FnOnce(&mut W),
) -> Result<ResponseFraming, InvalidHeader> {
    for (index, (name, value)) in head.headers.iter().enumerate() {
        if !is_token(name) || is_reserved(name) || !is_field_value(value) {
            return Err(InvalidHeader { index });
        }
    }

    // The status line, `Date` and `Server`.
    start(out);
    for (name, value) in head.headers {
        out.put(name.as_bytes());
        out.put(b": ");
        out.put(value);
        out.put(b"\r\n");
    }
    if let Some(block) = head.block {
        out.put(block.as_bytes());
    }

    let mut keep_alive = head.keep_alive;
    // Whether the empty line that ends the head is written (with `Content-Length`).
    let mut ended = false;
    let no_body_status = head.status < 200 || head.status == 204 || head.status == 304;
    let framing = if no_body_status {
        ResponseFraming::NoBody
    } else {
        match head.body {
            BodyLength::Known(n) => {
                // One piece: "Content-Length: " (16) + at most 20 digits + CRLF, and the empty
                // line that ends the head when no `Connection` line follows.
                let mut digits = [0u8; 20];
                let mut line = [0u8; 40];
                line[..16].copy_from_slice(b"Content-Length: ");
                let digits = decimal(n, &mut digits);
                let mut end = 16 + digits.len();
                line[16..end].copy_from_slice(digits);
                line[end..end + 2].copy_from_slice(b"\r\n");
                end += 2;
                if connection_line(keep_alive, head.request_version).is_none() {
                    line[end..end + 2].copy_from_slice(b"\r\n");
                    end += 2;
                    ended = true;
                }
                out.put(&line[..end]);
                ResponseFraming::Length(n)
            }
            BodyLength::Streamed if head.request_version == Version::Http11 => {
                out.put(b"Transfer-Encoding: chunked\r\n");
                ResponseFraming::Chunked
            }
            BodyLength::Streamed => {
                // HTTP/1.0 has no chunked coding: only closing the connection ends the body.
                // For HEAD there is no body to end, so the connection may stay.
                if !head.head_request {
                    keep_alive = false;
                }
                ResponseFraming::CloseDelimited
            }
        }
    };

    if !ended {
        if let Some(line) = connection_line(keep_alive, head.request_version) {
            out.put(line);
        }
        out.put(b"\r\n");
    }

    Ok(if head.head_request {
        ResponseFraming::NoBody
    } else {
        framing
    })
}

/// The end of a kept `200` head, as one piece: `Content-Length: len`, `Connection: close`
/// unless `keep_alive`, and the empty line.
fn put_ok_end(out: &mut impl WriteBuf, len: u64, keep_alive: bool) {
    const LENGTH: &[u8] = b"Content-Length: ";
    let end: &[u8] = if keep_alive {
        b"\r\n\r\n"
    } else {
        b"\r\nConnection: close\r\n\r\n"
    };
    let mut digits = [0u8; 20];
    let digits = decimal(len, &mut digits);
    // 16 + at most 20 digits + at most 23: fits.
    let mut line = [0u8; 64];
    let mut at = 0;
    for piece in [LENGTH, digits, end] {
        line[at..at + piece.len()].copy_from_slice(piece);
        at += piece.len();
    }
    out.put(&line[..at]);
}

/// The `Connection` line a head ends with, if any: `close` when the connection will not stay
/// open, and for HTTP/1.0 `keep-alive` when it will (RFC 9112 §9.3: HTTP/1.0 persistence must be
/// announced).
fn connection_line(keep_alive: bool, version: Version) -> Option<&'static [u8]> {
    match (keep_alive, version) {
        (false, _) => Some(b"Connection: close\r\n"),
        (true, Version::Http10) => Some(b"Connection: keep-alive\r\n"),
        (true, Version::Http11 | Version::Http2) => None,
    }
}

/// Writes a chunk-size line, `"{hex}\r\n"` (RFC 9112 §7.1). Follow it with `len` bytes and
/// `"\r\n"`. A zero `len` would end the body; use [`write_last_chunk`] for that.
pub fn write_chunk_header(out: &mut impl WriteBuf, len: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; 18];
    let mut i = 16;
    let mut n = len as u64;
    loop {
        i -= 1;
        buf[i] = HEX[(n & 0xf) as usize];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    buf[16] = b'\r';
    buf[17] = b'\n';
    out.put(&buf[i..]);
}

/// Writes the last chunk and an empty trailer section, `"0\r\n\r\n"` (RFC 9112 §7.1).
pub fn write_last_chunk(out: &mut impl WriteBuf) {
    out.put(b"0\r\n\r\n");
}

#[cfg(test)]
mod tests;
