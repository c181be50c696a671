//! Helpers shared by the fuzz targets (included with `#[path]`, not a crate).
#![allow(dead_code)]

use ringd_core::{header_slots, parse_request, Limits, ParseError, Parsed, RequestHead};

/// Number of leading bytes [`limits_from`] consumes.
pub const LIMIT_BYTES: usize = 4;

/// Limits from four bytes. A zero byte keeps the default, so `\0\0\0\0` + a request is the
/// server's configuration; other values give small limits (including 0) so that every
/// limit is reached with short inputs, and 0xff gives the extreme.
pub fn limits_from(b: [u8; 4]) -> Limits {
    let d = Limits::default();
    Limits {
        max_request_line: match b[0] {
            0 => d.max_request_line,
            0xff => usize::MAX,
            n => usize::from(n - 1),
        },
        max_header_bytes: match b[1] {
            0 => d.max_header_bytes,
            0xff => usize::MAX,
            n => usize::from(n - 1) * 4,
        },
        max_headers: match b[2] {
            0 => d.max_headers,
            0xff => 100_000, // clamped to MAX_HEADERS by the parser
            n => usize::from(n - 1),
        },
        max_body: match b[3] {
            0 => d.max_body,
            0xff => u64::MAX,
            n => u64::from(n - 1) * 7,
        },
    }
}

/// Splits `data` into the four limit bytes and the rest (short inputs: defaults).
pub fn split_limits(data: &[u8]) -> (Limits, &[u8]) {
    match data {
        [a, b, c, d, rest @ ..] => (limits_from([*a, *b, *c, *d]), rest),
        _ => (Limits::default(), data),
    }
}

/// A parse outcome in comparable form: the head rendered with `Debug` (every field,
/// including `head_len`).
pub type Outcome = Result<Option<String>, ParseError>;

pub fn outcome(head: &Result<Parsed<RequestHead<'_, '_>>, ParseError>) -> Outcome {
    match head {
        Ok(Parsed::Complete(h)) => Ok(Some(format!("{h:?}"))),
        Ok(Parsed::Partial) => Ok(None),
        Err(e) => Err(*e),
    }
}

/// Parses `buf` with fresh slots and returns the comparable outcome.
pub fn parse_outcome(buf: &[u8], limits: &Limits) -> Outcome {
    let mut slots = header_slots();
    outcome(&parse_request(buf, limits, &mut slots))
}

/// `tchar` (RFC 9110 §5.6.2).
pub fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Optional whitespace trimmed (RFC 9110 §5.6.3).
pub fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}
