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

use crate::error::ParseError;
use crate::framing::{list_elements, request_framing, BodyFraming};
use crate::limits::Limits;
use crate::method::Method;
use crate::target::{is_host, split_target, Target};
use crate::version::Version;

/// The most header slots [`parse_request`] will use, whatever `Limits::max_headers` says.
pub const MAX_HEADERS: usize = 256;

/// Stack storage for parsed header fields; make one with [`header_slots`].
pub type HeaderSlots<'b> = [MaybeUninit<Header<'b>>; MAX_HEADERS];

/// Uninitialised header slots for [`parse_request`] (nothing to initialise: httparse writes
/// each slot before handing it back).
pub fn header_slots<'b>() -> HeaderSlots<'b> {
    [const { MaybeUninit::uninit() }; MAX_HEADERS]
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
/// Header fields are stored in `slots` (at most `limits.max_headers`, clamped to
/// [`MAX_HEADERS`] and `slots.len()`). Nothing is allocated unless the path needs
/// normalizing.
pub fn parse_request<'h, 'b>(
    buf: &'b [u8],
    limits: &Limits,
    slots: &'h mut [MaybeUninit<Header<'b>>],
) -> Result<Parsed<RequestHead<'h, 'b>>, ParseError> {
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

    let n_slots = limits.max_headers.min(MAX_HEADERS).min(slots.len());
    let mut req = httparse::Request::new(&mut []);
    let status = req.parse_with_uninit_headers(scanned, &mut slots[..n_slots]);
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
    let headers: &'h [Header<'b>] = req.headers;
    let method = Method::parse(method);
    let version = if minor == 0 { Version::Http10 } else { Version::Http11 };

    let split = split_target(raw_target, method)?;
    // One pass over the names finds the fields acted on below; each rule then reads the
    // headers again only if its field is there (most requests carry none but `Host`).
    let fields = Fields::scan(headers);
    let host = host_of(&fields, version, &split.target)?;
    let expect_continue = fields.expect && expect_continue(headers, version)?;
    let body = if fields.framing {
        request_framing(headers, version, limits)?
    } else {
        BodyFraming::None
    };
    let keep_alive = if fields.connection {
        keep_alive(headers, version)
    } else {
        version == Version::Http11
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

/// Where the request line starts: after any `CRLF` / `LF` empty lines (RFC 9112 §2.2).
/// A lone trailing `CR` is left for httparse to judge.
fn leading_empty_lines(buf: &[u8]) -> usize {
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
/// and how many there are, and whether `Expect`, `Connection`, or a framing field
/// (`Content-Length`, `Transfer-Encoding`) is present.
#[derive(Default)]
struct Fields<'b> {
    host: Option<&'b [u8]>,
    hosts: usize,
    expect: bool,
    connection: bool,
    framing: bool,
}

impl<'b> Fields<'b> {
    fn scan(headers: &[Header<'b>]) -> Fields<'b> {
        let mut f = Fields::default();
        for h in headers {
            // The length first: most names are none of these, and differ from them in length.
            match h.name.len() {
                4 if h.name.eq_ignore_ascii_case("host") => {
                    f.host = f.host.or(Some(h.value));
                    f.hosts += 1;
                }
                6 if h.name.eq_ignore_ascii_case("expect") => f.expect = true,
                10 if h.name.eq_ignore_ascii_case("connection") => f.connection = true,
                14 if h.name.eq_ignore_ascii_case("content-length") => f.framing = true,
                17 if h.name.eq_ignore_ascii_case("transfer-encoding") => f.framing = true,
                _ => {}
            }
        }
        f
    }
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
        Version::Http11 => !close,
        Version::Http10 => keep && !close,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_with(buf: &[u8], limits: Limits) -> Result<Option<String>, ParseError> {
        let mut slots = header_slots();
        match parse_request(buf, &limits, &mut slots)? {
            Parsed::Complete(h) => Ok(Some(format!("{h:?}"))),
            Parsed::Partial => Ok(None),
        }
    }

    fn err(buf: &[u8]) -> ParseError {
        parse_with(buf, Limits::default()).expect_err(&String::from_utf8_lossy(buf))
    }

    fn partial(buf: &[u8]) {
        assert_eq!(
            parse_with(buf, Limits::default()),
            Ok(None),
            "{:?}",
            String::from_utf8_lossy(buf)
        );
    }

    /// Runs `f` on the complete head of `buf`.
    fn with_head(buf: &[u8], f: impl FnOnce(&RequestHead<'_, '_>)) {
        let mut slots = header_slots();
        match parse_request(buf, &Limits::default(), &mut slots) {
            Ok(Parsed::Complete(h)) => f(&h),
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(buf)),
        }
    }

    #[test]
    fn simple_get() {
        let buf = b"GET /index.html?x=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\nBODY";
        with_head(buf, |h| {
            assert_eq!(h.method, Method::Get);
            assert_eq!(h.target, Target::Origin);
            assert_eq!(h.raw_target, "/index.html?x=1");
            assert_eq!(h.path, "/index.html");
            assert!(matches!(h.path, Cow::Borrowed(_)));
            assert_eq!(h.query, Some("x=1"));
            assert_eq!(h.version, Version::Http11);
            assert_eq!(h.headers.len(), 2);
            assert_eq!(h.host, Some(&b"example.com"[..]));
            assert_eq!(h.body, BodyFraming::None);
            assert!(h.keep_alive);
            assert!(!h.expect_continue);
            assert_eq!(h.head_len, buf.len() - 4);
            assert_eq!(h.header("accept"), Some(&b"*/*"[..]));
            assert_eq!(h.header("missing"), None);
        });
    }

    #[test]
    fn headers_named_iterates_all() {
        with_head(
            b"GET / HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nx-a: 2\r\nX-B: 3\r\n\r\n",
            |h| {
                let v: Vec<_> = h.headers_named("X-A").collect();
                assert_eq!(v, [&b"1"[..], b"2"]);
                assert_eq!(h.header("X-A"), Some(&b"1"[..]));
            },
        );
    }

    #[test]
    fn partial_prefixes() {
        let buf = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";
        for i in 0..buf.len() {
            partial(&buf[..i]);
        }
        partial(b"");
        partial(b"\r\n");
    }

    #[test]
    fn leading_empty_lines_counted() {
        let buf = b"\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";
        with_head(buf, |h| assert_eq!(h.head_len, buf.len()));
        let buf = b"\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";
        with_head(buf, |h| assert_eq!(h.head_len, buf.len()));
    }

    #[test]
    fn http10_defaults() {
        with_head(b"GET / HTTP/1.0\r\n\r\n", |h| {
            assert_eq!(h.version, Version::Http10);
            assert_eq!(h.host, None);
            assert!(!h.keep_alive);
        });
    }

    #[test]
    fn keep_alive_rules() {
        let cases: [(&[u8], bool); 8] = [
            (b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", true),
            (b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", false),
            (
                b"GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, CLOSE\r\n\r\n",
                false,
            ),
            (
                b"GET / HTTP/1.1\r\nHost: h\r\nConnection: x\r\nConnection: close\r\n\r\n",
                false,
            ),
            (b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true),
            (b"GET / HTTP/1.0\r\nConnection: foo,keep-alive\r\n\r\n", true),
            (b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", false),
            (b"GET / HTTP/1.0\r\nConnection: closed\r\n\r\n", false),
        ];
        for (buf, ka) in cases {
            with_head(buf, |h| {
                assert_eq!(h.keep_alive, ka, "{:?}", String::from_utf8_lossy(buf))
            });
        }
    }

    #[test]
    fn request_line_syntax() {
        for bad in [
            &b"GET  / HTTP/1.1\r\n\r\n"[..],
            b"GET / HTTP/1.1 \r\n\r\n",
            b" GET / HTTP/1.1\r\n\r\n",
            b"GET /\r\n\r\n",
            b"GET\r\n\r\n",
            b"G(T / HTTP/1.1\r\n\r\n",
            b"GET /a b HTTP/1.1\r\n\r\n",
            b"GET / http/1.1\r\n\r\n",
            b"GET / HTTP/1.1x\r\n\r\n",
            b"GET / HTTP/1.1\rx",
            b"GET / HTTP/11\r\n\r\n",
            b"GET / HTTP/1.\r\n\r\n",
            b"GET / HTTP/2\r\n\r\n",
            b"GET / HTTP/2.0 \r\n\r\n",
            b"GET / HTTP/a.b\r\n\r\n",
            b"GET /\x7f HTTP/1.1\r\n\r\n",
            b"GET /\x00 HTTP/1.1\r\n\r\n",
            b"GET \xff HTTP/1.1\r\n\r\n",
            b"\rGET / HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(
                err(bad),
                ParseError::BadRequestLine,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn http09_style_line() {
        assert_eq!(err(b"GET /index.html\r\n"), ParseError::BadRequestLine);
    }

    #[test]
    fn unsupported_versions() {
        for v in ["HTTP/2.0", "HTTP/1.2", "HTTP/3.0", "HTTP/0.9", "HTTP/9.9"] {
            let buf = format!("GET / {v}\r\nHost: h\r\n\r\n");
            assert_eq!(err(buf.as_bytes()), ParseError::UnsupportedVersion, "{v}");
        }
        // Decided at the line end, even before the head is complete.
        assert_eq!(err(b"GET / HTTP/2.0\r"), ParseError::UnsupportedVersion);
        assert_eq!(err(b"GET / HTTP/2.0\n"), ParseError::UnsupportedVersion);
        // Undecided until then.
        partial(b"GET / HTTP/2");
        partial(b"GET / HTTP/2.0");
        partial(b"GET / HTTP/1.");
    }

    #[test]
    fn uri_too_long() {
        let limits = Limits {
            max_request_line: 20,
            ..Limits::default()
        };
        // "GET /" + 11 + " HTTP/1.1" = 25 > 20
        let buf = b"GET /aaaaaaaaaaa HTTP/1.1\r\nHost: h\r\n\r\n";
        assert_eq!(parse_with(buf, limits), Err(ParseError::UriTooLong));
        // Reported while still partial, once 21 line bytes are present.
        assert_eq!(parse_with(&buf[..21], limits), Err(ParseError::UriTooLong));
        assert_eq!(parse_with(&buf[..20], limits), Ok(None));
        // Exactly at the limit is fine.
        let ok = b"GET /aaaaaa HTTP/1.1\r\nHost: h\r\n\r\n";
        assert!(matches!(parse_with(ok, limits), Ok(Some(_))));
        // Leading empty lines don't count toward the line.
        let ok = b"\r\n\r\nGET /aaaaaa HTTP/1.1\r\nHost: h\r\n\r\n";
        assert!(matches!(parse_with(ok, limits), Ok(Some(_))));
    }

    #[test]
    fn syntax_error_before_line_limit_wins() {
        let limits = Limits {
            max_request_line: 20,
            ..Limits::default()
        };
        let buf = b"G\x01T /aaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\n\r\n";
        assert_eq!(parse_with(buf, limits), Err(ParseError::BadRequestLine));
        // ... and a syntax error after the limit loses.
        let buf = b"GET /aaaaaaaaaaaaaaaaaaaaaaaaaaa\x01 HTTP/1.1\r\n\r\n";
        assert_eq!(parse_with(buf, limits), Err(ParseError::UriTooLong));
    }

    #[test]
    fn headers_too_large() {
        let limits = Limits {
            max_header_bytes: 40,
            ..Limits::default()
        };
        let buf = b"GET / HTTP/1.1\r\nHost: h\r\nX-Long: aaaaaaaaaaaaaaaaaaaa\r\n\r\n";
        assert_eq!(parse_with(buf, limits), Err(ParseError::HeadersTooLarge));
        assert_eq!(parse_with(&buf[..41], limits), Err(ParseError::HeadersTooLarge));
        assert_eq!(parse_with(&buf[..40], limits), Ok(None));
        // A head of exactly the limit is fine, whatever follows it.
        let ok = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";
        let limits = Limits {
            max_header_bytes: ok.len(),
            ..Limits::default()
        };
        assert!(matches!(parse_with(ok, limits), Ok(Some(_))));
        let mut more = ok.to_vec();
        more.extend_from_slice(b"body bytes");
        assert!(matches!(parse_with(&more, limits), Ok(Some(_))));
        // Endless empty lines are bounded too.
        let limits = Limits {
            max_header_bytes: 10,
            ..Limits::default()
        };
        assert_eq!(parse_with(&b"\r\n".repeat(6), limits), Err(ParseError::HeadersTooLarge));
    }

    #[test]
    fn too_many_headers() {
        let limits = Limits {
            max_headers: 2,
            ..Limits::default()
        };
        let ok = b"GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\n\r\n";
        assert!(matches!(parse_with(ok, limits), Ok(Some(_))));
        let bad = b"GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n";
        assert_eq!(parse_with(bad, limits), Err(ParseError::TooManyHeaders));
        // Clamped to MAX_HEADERS.
        let limits = Limits {
            max_headers: 10_000,
            ..Limits::default()
        };
        let mut buf = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
        for i in 0..MAX_HEADERS {
            buf.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        buf.extend_from_slice(b"\r\n");
        assert_eq!(parse_with(&buf, limits), Err(ParseError::TooManyHeaders));
        // Clamped to the slots given.
        let mut few = [const { MaybeUninit::uninit() }; 1];
        assert_eq!(
            parse_request(ok, &Limits::default(), &mut few).unwrap_err(),
            ParseError::TooManyHeaders
        );
    }

    #[test]
    fn invalid_header_syntax() {
        for bad in [
            &b"GET / HTTP/1.1\r\nHost : h\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nHost\t: h\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n\tb\r\n\r\n",
            b"GET / HTTP/1.1\r\n Host: h\r\n\r\n",
            b"GET / HTTP/1.1\r\nHo(st: h\r\n\r\n",
            b"GET / HTTP/1.1\r\n: h\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost h\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\rx\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x01b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x1fb\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x7fb\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\nX: \x00\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\n\rx",
            b"GET / HTTP/1.1\r\nHost\xff: h\r\n\r\n",
        ] {
            assert_eq!(
                err(bad),
                ParseError::InvalidHeader,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn header_values_tab_and_obs_text_allowed() {
        with_head(b"GET / HTTP/1.1\r\nHost: h\r\nX: a\tb \xe9\xff \t\r\n\r\n", |h| {
            assert_eq!(h.header("x"), Some(&b"a\tb \xe9\xff"[..]));
        });
        with_head(b"GET / HTTP/1.1\r\nHost: h\r\nX:\r\n\r\n", |h| {
            assert_eq!(h.header("x"), Some(&b""[..]));
        });
    }

    #[test]
    fn bare_lf_line_endings_accepted() {
        // RFC 9112 §2.2: a recipient MAY recognize a single LF as a line terminator.
        with_head(b"GET / HTTP/1.1\nHost: h\n\n", |h| assert_eq!(h.head_len, 24));
    }

    #[test]
    fn host_rules() {
        assert_eq!(err(b"GET / HTTP/1.1\r\n\r\n"), ParseError::MissingHost);
        assert_eq!(
            err(b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"),
            ParseError::DuplicateHost
        );
        assert_eq!(
            err(b"GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n"),
            ParseError::DuplicateHost
        );
        for bad in [&b"a b"[..], b"a@b", b"a/b", b"a\tb", b"h\xff", b"a?b", b"a#b", b"\"h\""] {
            let mut buf = b"GET / HTTP/1.1\r\nHost: ".to_vec();
            buf.extend_from_slice(bad);
            buf.extend_from_slice(b"\r\n\r\n");
            assert_eq!(err(&buf), ParseError::InvalidHost, "{bad:?}");
        }
        for ok in [
            "",
            "example.com",
            "example.com:8080",
            "[::1]:80",
            "xn--bcher-kva.example",
            "a%20b",
        ] {
            let buf = format!("GET / HTTP/1.1\r\nHost: {ok}\r\n\r\n");
            with_head(buf.as_bytes(), |h| assert_eq!(h.host, Some(ok.as_bytes())));
        }
    }

    #[test]
    fn absolute_form_host_takes_precedence() {
        with_head(
            b"GET http://a.example:81/x?y HTTP/1.1\r\nHost: b.example\r\n\r\n",
            |h| {
                assert_eq!(
                    h.target,
                    Target::Absolute {
                        scheme: "http",
                        authority: "a.example:81"
                    }
                );
                assert_eq!(h.host, Some(&b"a.example:81"[..]));
                assert_eq!(h.path, "/x");
                assert_eq!(h.query, Some("y"));
            },
        );
        // Host is still required in HTTP/1.1 (RFC 9112 §3.2).
        assert_eq!(err(b"GET http://a/ HTTP/1.1\r\n\r\n"), ParseError::MissingHost);
        with_head(b"GET http://a/ HTTP/1.0\r\n\r\n", |h| {
            assert_eq!(h.host, Some(&b"a"[..]))
        });
    }

    #[test]
    fn target_form_rules() {
        assert_eq!(err(b"GET * HTTP/1.1\r\nHost: h\r\n\r\n"), ParseError::InvalidTarget);
        with_head(b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", |h| {
            assert_eq!(h.target, Target::Asterisk);
            assert_eq!(h.path, "/");
        });
        assert_eq!(err(b"GET h:80 HTTP/1.1\r\nHost: h\r\n\r\n"), ParseError::InvalidTarget);
        assert_eq!(err(b"CONNECT / HTTP/1.1\r\nHost: h\r\n\r\n"), ParseError::InvalidTarget);
        with_head(b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", |h| {
            assert_eq!(h.method, Method::Connect);
            assert_eq!(h.target, Target::Authority("h:443"));
            assert_eq!(h.path, "/");
            assert_eq!(h.query, None);
        });
        assert_eq!(
            err(b"GET index.html HTTP/1.1\r\nHost: h\r\n\r\n"),
            ParseError::InvalidTarget
        );
        assert_eq!(
            err(b"GET ftp://h/ HTTP/1.1\r\nHost: h\r\n\r\n"),
            ParseError::InvalidTarget
        );
        assert_eq!(
            err(b"GET http://u@h/ HTTP/1.1\r\nHost: h\r\n\r\n"),
            ParseError::InvalidTarget
        );
    }

    #[test]
    fn target_path_rules() {
        for bad in [
            &b"/../etc/passwd"[..],
            b"/a/..%2f..%2fetc",
            b"/%00",
            b"/%zz",
            b"/%ff",
            b"/a#frag",
        ] {
            let mut buf = b"GET ".to_vec();
            buf.extend_from_slice(bad);
            buf.extend_from_slice(b" HTTP/1.1\r\nHost: h\r\n\r\n");
            assert_eq!(
                err(&buf),
                ParseError::InvalidTarget,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        with_head(b"GET //a/./b/../c%20d/?q=%2e HTTP/1.1\r\nHost: h\r\n\r\n", |h| {
            assert_eq!(h.path, "/a/c d/");
            assert_eq!(h.query, Some("q=%2e"));
            assert_eq!(h.raw_target, "//a/./b/../c%20d/?q=%2e");
        });
    }

    #[test]
    fn extension_methods_are_case_sensitive() {
        with_head(b"get / HTTP/1.1\r\nHost: h\r\n\r\n", |h| {
            assert_eq!(h.method, Method::Other("get"))
        });
    }

    #[test]
    fn expect_rules() {
        with_head(
            b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n",
            |h| {
                assert!(h.expect_continue);
                assert_eq!(h.body, BodyFraming::Length(3));
            },
        );
        assert_eq!(
            err(b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\n\r\n"),
            ParseError::ExpectationFailed
        );
        assert_eq!(
            err(b"POST / HTTP/1.1\r\nHost: h\r\nExpect:\r\n\r\n"),
            ParseError::ExpectationFailed
        );
        // HTTP/1.0: ignored.
        with_head(b"POST / HTTP/1.0\r\nExpect: 200-ok\r\n\r\n", |h| {
            assert!(!h.expect_continue)
        });
        with_head(b"POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n", |h| {
            assert!(!h.expect_continue)
        });
    }

    #[test]
    fn framing_is_applied() {
        with_head(
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
            |h| {
                assert_eq!(h.body, BodyFraming::Chunked);
            },
        );
        assert_eq!(
            err(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            ParseError::ConflictingContentLength
        );
        assert_eq!(
            err(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n"),
            ParseError::TransferEncodingWithContentLength
        );
        assert_eq!(
            err(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"),
            ParseError::ChunkedNotFinal
        );
        let limits = Limits {
            max_body: 4,
            ..Limits::default()
        };
        assert_eq!(
            parse_with(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n", limits),
            Err(ParseError::PayloadTooLarge)
        );
    }

    #[test]
    fn no_allocation_for_normal_path() {
        with_head(b"GET /a/b.css HTTP/1.1\r\nHost: h\r\n\r\n", |h| {
            assert!(matches!(h.path, Cow::Borrowed("/a/b.css")));
        });
    }
}
