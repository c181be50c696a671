//! The request-head parser: `httparse` for the syntax, then the HTTP/1.1 rules it leaves to
//! us (limits, target forms, Host, Expect, framing).
//!
//! Design rule, checked by `tests/proptest_parser.rs`: every error is decided by a bounded
//! prefix of the input, and the parser looks at nothing past the point where it decides. So
//! feeding a head in pieces gives `Partial` on each prefix and then exactly the answer the
//! whole buffer gives.

use std::borrow::Cow;
use std::mem::MaybeUninit;

use httparse::Header;

use crate::chunked::is_tchar;
use crate::error::ParseError;
use crate::framing::{list_elements, request_framing, BodyFraming};
use crate::limits::Limits;
use crate::method::Method;
use crate::target::{is_host, split_target, KnownTargets, SplitTarget, Target};
use crate::version::Version;

/// The most header slots [`parse_request`] will use, whatever `Limits::max_headers` says.
pub const MAX_HEADERS: usize = 256;

/// Storage for parsed header fields; make one with [`header_slots`], or pass any vector (see
/// [`parse_request`]).
pub type HeaderSlots<'b> = Vec<Header<'b>>;

/// An empty vector with room for [`MAX_HEADERS`] fields, for [`parse_request`] (one
/// allocation; keep it and pass it again to parse the next request without another).
pub fn header_slots<'b>() -> HeaderSlots<'b> {
    Vec::with_capacity(MAX_HEADERS)
}

/// The outcome of a parse that may need more bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed<T> {
    /// The whole head was present.
    Complete(T),
    /// The head is incomplete and nothing seen so far is wrong: read more and parse again.
    Partial,
}

/// A parsed and validated request head, borrowing from the read buffer.
#[derive(Debug)]
pub struct RequestHead<'h, 'b> {
    /// The request method.
    pub method: Method<'b>,
    /// The request-target form.
    pub target: Target<'b>,
    /// The request-target exactly as sent.
    pub raw_target: &'b str,
    /// [`crate::target::normalize_path`] of the path part: `"/"` for `*` and authority-form;
    /// for absolute-form the path after the authority (`"/"` if empty).
    pub path: Cow<'b, str>,
    /// The query after the first `'?'`, without it.
    pub query: Option<&'b str>,
    /// The protocol version.
    pub version: Version,
    /// All header fields in order; values have surrounding whitespace trimmed.
    pub headers: &'h [Header<'b>],
    /// The authority of an absolute-form target if present (RFC 9112 §3.2.2), else the `Host`
    /// field value.
    pub host: Option<&'b [u8]>,
    /// How the body is framed.
    pub body: BodyFraming,
    /// Whether the connection may stay open after the response (RFC 9112 §9.3).
    pub keep_alive: bool,
    /// HTTP/1.1 with `Expect: 100-continue`: send [`crate::CONTINUE_100`] before reading
    /// the body.
    pub expect_continue: bool,
    /// Bytes of the buffer the head occupies (leading empty lines, request line, fields and
    /// the blank line); the body starts here.
    pub head_len: usize,
}

impl<'h, 'b> RequestHead<'h, 'b> {
    /// The value of the first field called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'b [u8]> {
        self.headers_named(name).next()
    }

    /// The values of every field called `name` (case-insensitive), in order.
    pub fn headers_named<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'b [u8]> + 's {
        self.headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }
}

/// Parses a request head from the start of `buf`.
///
/// Returns `Partial` while the head is incomplete and valid so far. Errors are returned as
/// soon as they are decidable: a request line longer than `limits.max_request_line` is
/// [`ParseError::UriTooLong`] even before its end arrives, and a head that has not ended
/// within `limits.max_header_bytes` bytes is [`ParseError::HeadersTooLarge`]. Checks that need
/// the whole head (target form, Host, Expect, framing) run once it is complete.
///
/// Header fields are stored in `slots`, which is cleared first: at most `limits.max_headers`
/// of them, clamped to [`MAX_HEADERS`] and to `slots.capacity()`; a head with more fields is
/// [`ParseError::TooManyHeaders`]. The vector never grows (so pass one with the capacity you
/// want, such as [`header_slots`]'s), and nothing is allocated unless the path needs
/// normalizing. The fields are in `RequestHead::headers`; the vector's length afterwards is
/// unspecified.
pub fn parse_request<'h, 'b>(
    buf: &'b [u8],
    limits: &Limits,
    slots: &'h mut Vec<Header<'b>>,
) -> Result<Parsed<RequestHead<'h, 'b>>, ParseError> {
    static NONE: KnownTargets = KnownTargets::new();
    parse_request_known(buf, limits, slots, &NONE)
}

/// [`parse_request`], where a target that is one of `known` (as a server's exact routes' paths
/// are) is taken as that string, its bytes not checked again to be UTF-8: the head is the same,
/// its strings may be `known`'s.
pub fn parse_request_known<'h, 'b>(
    buf: &'b [u8],
    limits: &Limits,
    slots: &'h mut Vec<Header<'b>>,
    known: &'b KnownTargets,
) -> Result<Parsed<RequestHead<'h, 'b>>, ParseError> {
    parse_head(buf, limits, slots, Some(known))
}

/// [`parse_request_known`], and with `simple` `None` the same without [`simple_head`] (for the
/// tests that check the two agree).
#[inline(always)]
fn parse_head<'h, 'b>(
    buf: &'b [u8],
    limits: &Limits,
    slots: &'h mut Vec<Header<'b>>,
    simple: Option<&'b KnownTargets>,
) -> Result<Parsed<RequestHead<'h, 'b>>, ParseError> {
    let n_slots = limits.max_headers.min(MAX_HEADERS).min(slots.capacity());
    slots.clear();
    // `simple_head` pushes its fields into `slots` and returns no borrow of it, so either
    // branch below can then lend `slots` for `'h`.
    let simple = if let Some(known) = simple {
        simple_head(buf, limits, slots, n_slots, known)
    } else {
        None
    };
    // The fields acted on below are found in one pass over the names (`simple_head`'s own, or
    // one over httparse's); each rule then reads the headers again only if its field is there
    // (most requests carry none but `Host`).
    let (method, raw_target, known, version, headers, head_len, fields) = if let Some(simple) = simple {
        let headers: &'h [Header<'b>] = slots;
        (
            simple.method,
            simple.target,
            simple.known,
            simple.version,
            headers,
            simple.head_len,
            simple.fields,
        )
    } else {
        // Fields `simple_head` pushed before it gave up are dropped (a length reset: `Header`
        // has no destructor); httparse writes into the spare capacity.
        slots.clear();
        match httparse_head(buf, limits, &mut slots.spare_capacity_mut()[..n_slots])? {
            Parsed::Complete((method, target, version, headers, head_len)) => {
                (method, target, false, version, headers, head_len, Fields::scan(headers))
            }
            Parsed::Partial => return Ok(Parsed::Partial),
        }
    };

    let split = if known && method != Method::Connect {
        SplitTarget::known(raw_target)
    } else {
        split_target(raw_target, method)?
    };
    let host = host_of(&fields, version, &split.target)?;
    let expect_continue = fields.expect && expect_continue(headers, version)?;
    let body = if fields.framing {
        request_framing(headers, version, limits)?
    } else {
        BodyFraming::None
    };
    let keep_alive = match fields.connection {
        None => version == Version::Http11,
        // `Connection: close` alone, as clients send it: no version keeps the connection.
        Some(value) if is_close(value) => false,
        Some(_) => keep_alive(headers, version),
    };

    Ok(Parsed::Complete(RequestHead {
        method,
        target: split.target,
        raw_target,
        path: split.path,
        query: split.query,
        version,
        headers,
        host,
        body,
        keep_alive,
        expect_continue,
        head_len,
    }))
}

/// The request line's parts and the fields, as [`parse_request`] takes them from
/// [`httparse_head`] or [`simple_head`]: method, target, version, fields, head length.
type Head<'h, 'b> = (Method<'b>, &'b str, Version, &'h [Header<'b>], usize);

/// The head as httparse reads it, with the limits applied (see [`parse_request`]).
fn httparse_head<'h, 'b>(
    buf: &'b [u8],
    limits: &Limits,
    slots: &'h mut [MaybeUninit<Header<'b>>],
) -> Result<Parsed<Head<'h, 'b>>, ParseError> {
    // RFC 9112 §2.2: empty lines before the request line are skipped (httparse does so too).
    let start = leading_empty_lines(buf);
    let line = &buf[start..];
    // Decidable as soon as `max_request_line + 1` bytes of the line are present. The line is
    // only searched for its end when the buffer is long enough to hold a line that long (the
    // limit is 8 KiB by default; a read of one request or a short pipeline is shorter).
    let uri_too_long = line.len() > limits.max_request_line
        && line
            .iter()
            .position(|&b| b == b'\r' || b == b'\n')
            .unwrap_or(line.len())
            > limits.max_request_line;
    let uri_cut = start.saturating_add(limits.max_request_line);

    // httparse only ever sees the bytes before the first limit, so what it reports is what
    // happened before that limit was crossed, and a limit is reported only if httparse found
    // nothing wrong before it. This keeps the outcome independent of how much was read.
    let mut scan = buf.len().min(limits.max_header_bytes);
    if uri_too_long {
        scan = scan.min(uri_cut);
    }
    let scanned = &buf[..scan];

    let mut req = httparse::Request::new(&mut []);
    let status = req.parse_with_uninit_headers(scanned, slots);
    let head_len = match status {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return partial_or_limit(buf, limits, uri_too_long, uri_cut);
        }
        Err(e) => match map_httparse_error(e, scanned, start)? {
            Parsed::Partial => return partial_or_limit(buf, limits, uri_too_long, uri_cut),
            Parsed::Complete(never) => match never {},
        },
    };

    // httparse only returns Complete with all three request-line parts set.
    let (Some(method), Some(raw_target), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(ParseError::BadRequestLine);
    };
    let version = if minor == 0 { Version::Http10 } else { Version::Http11 };
    Ok(Parsed::Complete((
        Method::parse(method),
        raw_target,
        version,
        req.headers,
        head_len,
    )))
}

/// The request line of a head [`simple_head`] read; its fields are in the slots, and what
/// [`Fields::scan`] would find in them is in `fields`.
#[derive(Debug, PartialEq, Eq)]
struct SimpleHead<'b> {
    method: Method<'b>,
    target: &'b str,
    /// `target` is one of the [`KnownTargets`], so it splits to itself.
    known: bool,
    version: Version,
    head_len: usize,
    fields: Fields<'b>,
}

/// The head nearly every request sends, read without httparse, or `None` for anything else
/// (which httparse then reads): a known method, one SP, a target of visible ASCII bytes
/// starting with `/`, one SP, `HTTP/1.1` or `HTTP/1.0`, CRLF; then any number of fields, each
/// a token, `:`, any SPs, and a value of visible ASCII bytes and SPs ending in a visible byte,
/// CRLF; then CRLF. It starts at the buffer's start, its request line is within
/// `max_request_line`, the whole head within `max_header_bytes`, and it has at most `n_slots`
/// fields (`n_slots` at most `slots.capacity()`). The fields are pushed onto `slots` (empty
/// when called) in order, so the vector never grows; on `None`, `slots` holds whatever was
/// pushed before it gave up. A name clients commonly send is a static string of the same
/// bytes ([`field_name`]).
///
/// Hand-written because this is the hot path of every request and must be ours: httparse's
/// general machinery (its state for every field and every run of bytes, the run-time choice
/// of its SIMD code for each run) costs more than the rest of the parse on such a short head.
/// httparse stays the parser of record for everything else (every error, a partial head,
/// obs-fold, HTAB, bare LF, trailing whitespace, empty values, bytes outside ASCII, a head
/// with more fields than slots) and the judge in the tests. This reader accepts only bytes
/// httparse accepts and reads them as httparse does, so on every head it returns, httparse's
/// parse within the limits is `Complete` with the same method, target, version, fields
/// (httparse trims the values' SPs, and there are none to trim here) and length, and
/// [`parse_request`] goes on from there the same way; the unit tests check this against
/// httparse on generated heads.
fn simple_head<'b>(
    buf: &'b [u8],
    limits: &Limits,
    slots: &mut Vec<Header<'b>>,
    n_slots: usize,
    known: &'b KnownTargets,
) -> Option<SimpleHead<'b>> {
    let (method, sp) = if buf.starts_with(b"GET ") {
        (Method::Get, 3)
    } else {
        let sp = buf.iter().take(8).position(|&b| b == b' ')?;
        let method = match &buf[..sp] {
            b"HEAD" => Method::Head,
            b"POST" => Method::Post,
            b"PUT" => Method::Put,
            b"DELETE" => Method::Delete,
            b"OPTIONS" => Method::Options,
            b"PATCH" => Method::Patch,
            b"CONNECT" => Method::Connect,
            b"TRACE" => Method::Trace,
            _ => return None,
        };
        (method, sp)
    };
    let target_at = sp + 1;
    if buf.get(target_at) != Some(&b'/') {
        return None;
    }
    let version_at = target_at + visible_run(&buf[target_at..], 0x21);
    // The version and its CRLF, 11 bytes, as two words that overlap in three.
    let end = buf.get(version_at..version_at + 11)?;
    let word = |at: usize| {
        let mut eight = [0; 8];
        eight.copy_from_slice(&end[at..at + 8]);
        u64::from_le_bytes(eight)
    };
    if word(0) != u64::from_le_bytes(*b" HTTP/1.") {
        return None;
    }
    let version = match word(3) {
        w if w == u64::from_le_bytes(*b"TP/1.1\r\n") => Version::Http11,
        w if w == u64::from_le_bytes(*b"TP/1.0\r\n") => Version::Http10,
        _ => return None,
    };
    // The request line without its CRLF.
    if version_at + 9 > limits.max_request_line {
        return None;
    }
    // Every byte is visible ASCII: a known target is the same string, with no UTF-8 check.
    let target = &buf[target_at..version_at];
    let (target, known) = match known.get(target) {
        Some(target) => (target, true),
        None => (ascii_str(buf, target_at, version_at)?, false),
    };
    let mut line_at = version_at + 11;
    let mut fields = Fields::default();
    if buf.get(line_at..line_at + 2)? == b"\r\n" {
        return simple_end(method, target, known, version, line_at + 2, limits, fields);
    }
    loop {
        // No slot left: httparse says `TooManyHeaders` (the vector must not grow).
        if slots.len() >= n_slots {
            return None;
        }
        // `Host:` as nearly every client sends it is one comparison, and so is `Connection:`
        // (many clients send it too), each also saying what the field is to `fields`; any
        // other name is checked a byte at a time.
        let (name, colon, kind) = if buf.get(line_at..line_at + 5) == Some(b"Host:") {
            ("Host", line_at + 4, Kind::Host)
        } else if buf.get(line_at..line_at + 11) == Some(b"Connection:") {
            ("Connection", line_at + 10, Kind::Connection)
        } else {
            let name_len = buf[line_at..].iter().position(|&b| !TCHAR[usize::from(b)])?;
            let colon = line_at + name_len;
            if name_len == 0 || buf[colon] != b':' {
                return None;
            }
            let (name, kind) = field_name(&buf[line_at..colon])?;
            (name, colon, kind)
        };
        let mut value_at = colon + 1;
        while buf.get(value_at) == Some(&b' ') {
            value_at += 1;
        }
        let value_len = visible_run(&buf[value_at..], 0x20);
        let value_end = value_at + value_len;
        if value_len == 0 || buf[value_end - 1] == b' ' {
            return None;
        }
        let value = &buf[value_at..value_end];
        slots.push(Header { name, value });
        fields.note(kind, value);
        // The field's CRLF and the empty line's in one look: the last field is the usual case.
        let rest = &buf[value_end..];
        if rest.starts_with(b"\r\n\r\n") {
            return simple_end(method, target, known, version, value_end + 4, limits, fields);
        }
        if !rest.starts_with(b"\r\n") {
            return None;
        }
        line_at = value_end + 2;
    }
}

/// The [`SimpleHead`] of a head `head_len` bytes long, if within `max_header_bytes`.
#[inline(always)]
fn simple_end<'b>(
    method: Method<'b>,
    target: &'b str,
    known: bool,
    version: Version,
    head_len: usize,
    limits: &Limits,
    fields: Fields<'b>,
) -> Option<SimpleHead<'b>> {
    if head_len > limits.max_header_bytes {
        return None;
    }
    Some(SimpleHead {
        method,
        target,
        known,
        version,
        head_len,
        fields,
    })
}

/// `name` (a token, so ASCII) as a `str`: the names clients send, spelled as they spell them,
/// are static strings of the same bytes (so what reads the head cannot tell them apart), which
/// costs a comparison or two rather than a UTF-8 check (a call and a loop over the bytes).
/// With it, what the field is to [`Fields`] ([`Kind::of`] the name), known for those names.
/// Out of line: [`simple_head`] reads `Host:` itself, and most requests send nothing else.
#[inline(never)]
fn field_name(name: &[u8]) -> Option<(&str, Kind)> {
    Some(match name {
        b"Host" => ("Host", Kind::Host),
        b"Accept" => ("Accept", Kind::Other),
        b"Cookie" => ("Cookie", Kind::Other),
        b"Origin" => ("Origin", Kind::Other),
        b"Referer" => ("Referer", Kind::Other),
        b"Connection" => ("Connection", Kind::Connection),
        b"User-Agent" => ("User-Agent", Kind::Other),
        b"Content-Type" => ("Content-Type", Kind::Other),
        b"Authorization" => ("Authorization", Kind::Other),
        b"Cache-Control" => ("Cache-Control", Kind::Other),
        b"If-None-Match" => ("If-None-Match", Kind::Other),
        b"Content-Length" => ("Content-Length", Kind::Framing),
        b"Accept-Encoding" => ("Accept-Encoding", Kind::Other),
        b"Accept-Language" => ("Accept-Language", Kind::Other),
        b"If-Modified-Since" => ("If-Modified-Since", Kind::Other),
        _ => {
            let name = std::str::from_utf8(name).ok()?;
            (name, Kind::of(name))
        }
    })
}

/// `buf[at..end]` as a `str`, for a caller that has found every byte of `buf[..end]` to be
/// ASCII (`None` if some byte is not UTF-8). std's UTF-8 check takes a byte at a time until it
/// reaches an address that is a multiple of eight, and from there a word or two at a time, so
/// it starts at the last such address at or before `at` when `buf` has one (the bytes before
/// `at` are the method's and the SP).
#[inline]
fn ascii_str(buf: &[u8], at: usize, end: usize) -> Option<&str> {
    let back = buf.as_ptr().addr().wrapping_add(at) % 8;
    if back <= at {
        std::str::from_utf8(&buf[at - back..end]).ok()?.get(back..)
    } else {
        std::str::from_utf8(&buf[at..end]).ok()
    }
}

/// [`is_tchar`] as a table.
const TCHAR: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = is_tchar(b as u8);
        b += 1;
    }
    table
};

/// How many bytes at the start of `bytes` are in `lo..=0x7e`, for `lo` 0x21 (visible ASCII,
/// `VCHAR`) or 0x20 (that or SP): a word of eight bytes at a time, then byte by byte in the
/// last piece shorter than a word. Hand-written because a byte loop costs several times more
/// on every request's target and field value.
fn visible_run(bytes: &[u8], lo: u8) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut words = bytes.chunks_exact(8);
    let mut run = 0;
    for word in &mut words {
        let mut eight = [0; 8];
        eight.copy_from_slice(word);
        let x = u64::from_le_bytes(eight);
        // Some byte is below `lo` (at most 0x80) iff a high bit survives: the lowest such byte
        // borrows into its own high bit, which it does not have; bytes at or above `lo` do not
        // borrow, and a high bit of theirs is cleared by `!x`.
        let below = x.wrapping_sub(ONES * u64::from(lo)) & !x & HIGH;
        // Some byte is above 0x7e iff a high bit is set: adding one sets it in 0x7f, and bytes
        // from 0x80 have it; a byte up to 0x7e stays below 0x80, and a carry only leaves a
        // byte 0xff, itself above.
        let above = (x.wrapping_add(ONES) | x) & HIGH;
        // The lowest flagged byte is the first outside: nothing borrows or carries into it
        // from below, where every byte is inside.
        let outside = below | above;
        if outside != 0 {
            return run + (outside.trailing_zeros() / 8) as usize;
        }
        run += 8;
    }
    run + words
        .remainder()
        .iter()
        .take_while(|&&b| (lo..=0x7e).contains(&b))
        .count()
}

/// Where the request line starts: after any `CRLF` / `LF` empty lines (RFC 9112 §2.2).
/// A lone trailing `CR` is left for httparse to judge.
fn leading_empty_lines(buf: &[u8]) -> usize {
    // Nearly every request line starts at once: one look at the first byte.
    if !matches!(buf.first(), Some(b'\r' | b'\n')) {
        return 0;
    }
    let mut i = 0;
    loop {
        match buf.get(i..) {
            Some([b'\n', ..]) => i += 1,
            Some([b'\r', b'\n', ..]) => i += 2,
            _ => return i,
        }
    }
}

/// httparse saw nothing wrong in what it was shown: report the first limit crossed, if any.
fn partial_or_limit<T>(
    buf: &[u8],
    limits: &Limits,
    uri_too_long: bool,
    uri_cut: usize,
) -> Result<Parsed<T>, ParseError> {
    if uri_too_long && uri_cut <= limits.max_header_bytes {
        Err(ParseError::UriTooLong)
    } else if buf.len() > limits.max_header_bytes {
        Err(ParseError::HeadersTooLarge)
    } else {
        Ok(Parsed::Partial)
    }
}

/// An uninhabited type: `Parsed<Never>` can only be `Partial`.
enum Never {}

/// Maps an httparse error on `scanned` to ours, or to `Partial` when the error is only
/// httparse being stricter than "not yet decidable" (an unknown version token that may still
/// turn out to be a well-formed `HTTP/x.y`).
fn map_httparse_error(e: httparse::Error, scanned: &[u8], start: usize) -> Result<Parsed<Never>, ParseError> {
    match e {
        httparse::Error::TooManyHeaders => Err(ParseError::TooManyHeaders),
        httparse::Error::HeaderName | httparse::Error::HeaderValue => Err(ParseError::InvalidHeader),
        httparse::Error::Token | httparse::Error::Status => Err(ParseError::BadRequestLine),
        httparse::Error::Version => classify_version(scanned, start),
        httparse::Error::NewLine => {
            if request_line_ok(scanned, start) {
                Err(ParseError::InvalidHeader)
            } else {
                Err(ParseError::BadRequestLine)
            }
        }
    }
}

/// httparse rejected the version token: 505 for a well-formed `HTTP/DIGIT.DIGIT` (RFC 9112
/// §2.3, RFC 9110 §15.6.6), 400 for anything else, `Partial` while it could still be the former.
fn classify_version(scanned: &[u8], start: usize) -> Result<Parsed<Never>, ParseError> {
    let line = scanned.get(start..).unwrap_or_default();
    // method SP target SP version: httparse accepted the first two (single SPs, strict mode).
    let version_at = line
        .iter()
        .enumerate()
        .filter(|&(_, &b)| b == b' ')
        .nth(1)
        .map(|(i, _)| i + 1);
    let Some(version_at) = version_at else {
        return Err(ParseError::BadRequestLine);
    };
    let token = &line[version_at..];
    const PATTERN: &[u8] = b"HTTP/0.0";
    let matches_at = |i: usize, b: u8| match PATTERN[i] {
        b'0' => b.is_ascii_digit(),
        p => b == p,
    };
    for (i, &b) in token.iter().enumerate() {
        if i == PATTERN.len() {
            return if b == b'\r' || b == b'\n' {
                Err(ParseError::UnsupportedVersion)
            } else {
                Err(ParseError::BadRequestLine)
            };
        }
        if !matches_at(i, b) {
            return Err(ParseError::BadRequestLine);
        }
    }
    Ok(Parsed::Partial)
}

/// Whether httparse accepts the request line of `scanned` (so a later `NewLine` error is in
/// the header section).
fn request_line_ok(scanned: &[u8], start: usize) -> bool {
    let line = scanned.get(start..).unwrap_or_default();
    let Some(lf) = line.iter().position(|&b| b == b'\n') else {
        return false;
    };
    let mut no_slots: [MaybeUninit<Header<'_>>; 0] = [];
    let mut req = httparse::Request::new(&mut []);
    // Cut right after the line: a good line leaves httparse waiting for the fields.
    matches!(
        req.parse_with_uninit_headers(&scanned[..start + lf + 1], &mut no_slots),
        Ok(httparse::Status::Partial)
    )
}

/// RFC 9112 §3.2: HTTP/1.1 needs exactly one Host; no version may send two. The value must be
/// `uri-host [ ":" port ]` (RFC 9110 §7.2); an absolute-form authority takes precedence.
fn host_of<'b>(fields: &Fields<'b>, version: Version, target: &Target<'b>) -> Result<Option<&'b [u8]>, ParseError> {
    if fields.hosts > 1 {
        return Err(ParseError::DuplicateHost);
    }
    match fields.host {
        None if version == Version::Http11 => return Err(ParseError::MissingHost),
        Some(v) if !is_host(v) => return Err(ParseError::InvalidHost),
        _ => {}
    }
    if let Target::Absolute { authority, .. } = target {
        return Ok(Some(authority.as_bytes()));
    }
    Ok(fields.host)
}

/// The fields the parser acts on, found in one pass over the header names: the first `Host`
/// and how many there are, whether `Expect` or a framing field (`Content-Length`,
/// `Transfer-Encoding`) is present, and `Connection`'s value if there is one such field (an
/// empty value if there are more: [`keep_alive`] then reads them all).
#[derive(Debug, Default, PartialEq, Eq)]
struct Fields<'b> {
    host: Option<&'b [u8]>,
    hosts: usize,
    connection: Option<&'b [u8]>,
    expect: bool,
    framing: bool,
}

/// What a field is to [`Fields`], by its name (case-insensitive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Host,
    Connection,
    Expect,
    /// `Content-Length` or `Transfer-Encoding`.
    Framing,
    Other,
}

impl Kind {
    #[inline]
    fn of(name: &str) -> Kind {
        // The length first: most names are none of these, and differ from them in length.
        match name.len() {
            4 if is_host_name(name.as_bytes()) => Kind::Host,
            6 if name.eq_ignore_ascii_case("expect") => Kind::Expect,
            10 if is_connection_name(name.as_bytes()) => Kind::Connection,
            14 if name.eq_ignore_ascii_case("content-length") => Kind::Framing,
            17 if name.eq_ignore_ascii_case("transfer-encoding") => Kind::Framing,
            _ => Kind::Other,
        }
    }
}

impl<'b> Fields<'b> {
    fn scan(headers: &[Header<'b>]) -> Fields<'b> {
        let mut f = Fields::default();
        for h in headers {
            f.note(Kind::of(h.name), h.value);
        }
        f
    }

    /// Takes in the next field, a `kind` one with this value.
    #[inline(always)]
    fn note(&mut self, kind: Kind, value: &'b [u8]) {
        match kind {
            Kind::Host => {
                self.host = self.host.or(Some(value));
                self.hosts += 1;
            }
            Kind::Expect => self.expect = true,
            Kind::Connection => {
                self.connection = Some(if self.connection.is_none() { value } else { b"" });
            }
            Kind::Framing => self.framing = true,
            Kind::Other => {}
        }
    }
}

/// `name.eq_ignore_ascii_case("host")`, as one comparison of four bytes (every request has a
/// `Host`). Exact: each of `h`, `o`, `s`, `t` is a letter, so a byte with bit 0x20 set equals
/// it only if the byte is that letter in either case.
#[inline]
fn is_host_name(name: &[u8]) -> bool {
    match <[u8; 4]>::try_from(name) {
        Ok(four) => u32::from_le_bytes(four) | 0x2020_2020 == u32::from_le_bytes(*b"host"),
        Err(_) => false,
    }
}

/// `name.eq_ignore_ascii_case("connection")`, as two comparisons (eight bytes, then two).
/// Exact for the reason [`is_host_name`] is: every byte of `connection` is a letter.
#[inline]
fn is_connection_name(name: &[u8]) -> bool {
    let Ok(ten) = <[u8; 10]>::try_from(name) else {
        return false;
    };
    let (head, tail) = ten.split_at(8);
    let mut eight = [0; 8];
    eight.copy_from_slice(head);
    u64::from_le_bytes(eight) | 0x2020_2020_2020_2020 == u64::from_le_bytes(*b"connecti")
        && u16::from_le_bytes([tail[0], tail[1]]) | 0x2020 == u16::from_le_bytes(*b"on")
}

/// `value.eq_ignore_ascii_case(b"close")`: a `Connection` value of the one option `close`, as
/// clients send it (no list, no whitespace), which [`keep_alive`] would read as not keeping
/// the connection in any version. Exact: every byte of `close` is a letter.
#[inline]
fn is_close(value: &[u8]) -> bool {
    let Ok(five) = <[u8; 5]>::try_from(value) else {
        return false;
    };
    u32::from_le_bytes([five[0], five[1], five[2], five[3]]) | 0x2020_2020 == u32::from_le_bytes(*b"clos")
        && five[4] | 0x20 == b'e'
}

/// RFC 9110 §10.1.1: the only expectation is `100-continue`; anything else gets 417. An
/// HTTP/1.0 server ignores Expect, so we do too for HTTP/1.0 requests.
fn expect_continue(headers: &[Header<'_>], version: Version) -> Result<bool, ParseError> {
    if version == Version::Http10 {
        return Ok(false);
    }
    let mut expect = false;
    for h in headers.iter().filter(|h| h.name.eq_ignore_ascii_case("expect")) {
        if !h.value.eq_ignore_ascii_case(b"100-continue") {
            return Err(ParseError::ExpectationFailed);
        }
        expect = true;
    }
    Ok(expect)
}

/// RFC 9112 §9.3: HTTP/1.1 is persistent unless `close`; HTTP/1.0 only with `keep-alive`.
/// `close` wins over `keep-alive` when both are sent.
fn keep_alive(headers: &[Header<'_>], version: Version) -> bool {
    let mut close = false;
    let mut keep = false;
    for h in headers.iter().filter(|h| h.name.eq_ignore_ascii_case("connection")) {
        for token in list_elements(h.value) {
            close |= token.eq_ignore_ascii_case(b"close");
            keep |= token.eq_ignore_ascii_case(b"keep-alive");
        }
    }
    match version {
        Version::Http11 | Version::Http2 => !close,
        Version::Http10 => keep && !close,
    }
}

#[cfg(test)]
mod tests;
