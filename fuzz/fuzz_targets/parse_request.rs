//! `parse_request` on arbitrary bytes. Input: 4 bytes of limits (see `common::limits_from`;
//! `\0\0\0\0` = defaults), then the request buffer.
//!
//! Invariants (beyond "never panics"):
//! - a Complete head: `head_len <= buf.len()`, `<= max_header_bytes`, ends with an empty
//!   line, request line `<= max_request_line`, at most `max_headers` fields;
//! - prefix consistency: every strict prefix of a Complete head is Partial, every prefix
//!   that contains it gives the same head; a prefix of an erroring buffer is Partial or the
//!   same error; a prefix of a Partial buffer is Partial (checked at every line terminator,
//!   around each limit, and everywhere for short inputs);
//! - `path` starts with '/', has no empty inner, "." or ".." segment, no NUL;
//! - field names are tokens; values have no CR/LF/NUL and no surrounding SP/HTAB;
//! - framing agrees with the fields: `Length(n)` has `n <= max_body` and no
//!   Transfer-Encoding, `Chunked` is HTTP/1.1 without Content-Length, `None` has neither;
//! - HTTP/1.1 has a Host, never two Hosts; CONNECT <=> authority-form; `*` only with OPTIONS;
//!   `Connection: close` => not keep-alive; `expect_continue` only for HTTP/1.1.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringd_core::{
    header_slots, parse_request, BodyFraming, Limits, Method, Parsed, RequestHead, Target, Version, MAX_HEADERS,
};

#[path = "common.rs"]
mod common;
use common::{is_tchar, outcome, parse_outcome, split_limits, trim_ows, Outcome};

fuzz_target!(|data: &[u8]| {
    let (limits, buf) = split_limits(data);
    let mut slots = header_slots();
    let res = parse_request(buf, &limits, &mut slots);
    if let Ok(Parsed::Complete(head)) = &res {
        check_head(head, buf, &limits);
    }
    let full = outcome(&res);
    drop(res);
    for n in prefix_points(buf, &limits) {
        check_prefix(&buf[..n], &limits, &full);
    }
});

/// Prefix lengths (< buf.len()) where parser decisions change: everywhere for short input,
/// else around every line terminator, around the limits, and a few fixed points.
fn prefix_points(buf: &[u8], limits: &Limits) -> Vec<usize> {
    let len = buf.len();
    if len <= 64 {
        return (0..len).collect();
    }
    let mut pts = vec![0, 1, len / 2, len - 1];
    for (i, &b) in buf.iter().enumerate() {
        if b == b'\r' || b == b'\n' {
            pts.extend([i, i + 1]);
        }
        if pts.len() > 64 {
            break;
        }
    }
    let start = buf.iter().take_while(|&&b| b == b'\r' || b == b'\n').count();
    for base in [start.saturating_add(limits.max_request_line), limits.max_header_bytes] {
        pts.extend([base.saturating_sub(1), base, base.saturating_add(1)]);
    }
    pts.retain(|&n| n < len);
    pts.sort_unstable();
    pts.dedup();
    pts
}

fn check_prefix(prefix: &[u8], limits: &Limits, full: &Outcome) {
    let got = parse_outcome(prefix, limits);
    let ok = match (full, &got) {
        (_, Ok(None)) => {
            // Partial is fine unless the full head already fits in the prefix.
            !matches!(full, Ok(Some(_))) || prefix.len() < head_len_of(full)
        }
        (Ok(Some(_)), Ok(Some(_))) => got == *full && prefix.len() >= head_len_of(full),
        (Err(e), Err(g)) => e == g,
        _ => false,
    };
    assert!(
        ok,
        "prefix of {} bytes gave {got:?}, full buffer gave {full:?}\nprefix: {:?}",
        prefix.len(),
        String::from_utf8_lossy(prefix)
    );
}

/// `head_len` from the Debug rendering (last field).
fn head_len_of(o: &Outcome) -> usize {
    let s = o.as_ref().ok().and_then(|s| s.as_ref()).expect("complete");
    let at = s.rfind("head_len: ").expect("head_len in Debug") + "head_len: ".len();
    s[at..].trim_end_matches([' ', '}']).parse().expect("head_len number")
}

fn check_head(h: &RequestHead<'_, '_>, buf: &[u8], limits: &Limits) {
    let n = h.head_len;
    assert!(n > 0 && n <= buf.len(), "head_len {n} of {}", buf.len());
    assert!(n <= limits.max_header_bytes, "head_len {n} > max_header_bytes");
    let head = &buf[..n];
    assert!(
        head.ends_with(b"\n\n") || head.ends_with(b"\n\r\n"),
        "head does not end in an empty line"
    );
    let start = head.iter().take_while(|&&b| b == b'\r' || b == b'\n').count();
    let line_len = head[start..].iter().position(|&b| b == b'\r' || b == b'\n').unwrap();
    assert!(line_len <= limits.max_request_line, "request line {line_len} > limit");
    assert!(h.headers.len() <= limits.max_headers.min(MAX_HEADERS));

    // Request line.
    let m = h.method.as_str();
    assert!(!m.is_empty() && m.bytes().all(is_tchar), "method {m:?}");
    let raw = h.raw_target.as_bytes();
    assert!(!raw.is_empty() && !raw.contains(&b'#'));
    assert!(raw.iter().all(|&b| b > b' ' && b != 0x7f), "raw target {raw:?}");
    if let Some(q) = h.query {
        assert!(h.raw_target.ends_with(q) && h.raw_target.contains('?'));
    }
    match h.target {
        Target::Authority(a) => assert!(h.method == Method::Connect && a == h.raw_target),
        Target::Asterisk => assert!(h.method == Method::Options && h.raw_target == "*"),
        Target::Origin => assert!(h.method != Method::Connect && h.raw_target.starts_with('/')),
        Target::Absolute { scheme, authority } => {
            assert!(h.method != Method::Connect);
            assert!(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https"));
            assert!(!authority.is_empty() && !authority.contains('@'));
            assert_eq!(h.host, Some(authority.as_bytes()));
        }
    }
    check_path(&h.path);

    // Fields.
    for f in h.headers {
        assert!(!f.name.is_empty() && f.name.bytes().all(is_tchar), "name {:?}", f.name);
        assert!(
            !f.value.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0),
            "value {:?}",
            f.value
        );
        assert_eq!(trim_ows(f.value), f.value, "value not trimmed");
    }
    let named = |name: &'static str| h.headers.iter().filter(move |f| f.name.eq_ignore_ascii_case(name));
    let hosts = named("host").count();
    assert!(hosts <= 1);
    if h.version == Version::Http11 {
        assert!(hosts == 1 && h.host.is_some(), "HTTP/1.1 without Host");
    }
    let has_te = named("transfer-encoding").next().is_some();
    let has_cl = named("content-length").next().is_some();
    match h.body {
        BodyFraming::Length(len) => {
            assert!(len <= limits.max_body, "Length({len}) > max_body {}", limits.max_body);
            assert!(has_cl && !has_te);
        }
        BodyFraming::Chunked => assert!(has_te && !has_cl && h.version == Version::Http11),
        BodyFraming::None => assert!(!has_te && !has_cl),
    }
    let close = named("connection").any(|f| {
        f.value
            .split(|&b| b == b',')
            .any(|e| trim_ows(e).eq_ignore_ascii_case(b"close"))
    });
    if close {
        assert!(!h.keep_alive, "keep-alive despite Connection: close");
    }
    if h.expect_continue {
        assert_eq!(h.version, Version::Http11);
    }
}

/// A normalized path: starts with '/', no NUL, no `//`, no `.`/`..` segment (a trailing
/// slash is allowed).
fn check_path(path: &str) {
    assert!(path.starts_with('/'), "path {path:?}");
    assert!(!path.contains('\0'), "NUL in path {path:?}");
    for bad in ["//", "/./", "/../"] {
        assert!(!path.contains(bad), "{bad} in path {path:?}");
    }
    assert!(
        !path.ends_with("/.") && !path.ends_with("/.."),
        "dot segment at end of {path:?}"
    );
}
