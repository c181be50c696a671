//! ringd's `parse_request` (default limits) against plain `httparse` (default config, the
//! same number of header slots) on the same raw bytes.
//!
//! - httparse rejects (syntax error)         => ringd rejects (only exception: ringd may
//!   still say Partial for a version token that could become a valid `HTTP/x.y`, to answer
//!   505 instead of 400);
//! - httparse says Partial                   => ringd Partial or a size limit (414/431);
//! - httparse accepts                        => ringd never reports a *syntax* error
//!   (400 request line / header), only semantic ones (Host, target, framing, Expect);
//! - ringd accepts                           => httparse accepts, with the same head length,
//!   method, raw target bytes, version, header count, names and values;
//! - ringd's framing agrees with a naive reading of httparse's raw fields: `Length(n)` iff
//!   only Content-Length fields, all of whose elements are the decimal `n`; `Chunked` iff only
//!   Transfer-Encoding whose last coding is `chunked`; `None` iff neither.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringd_core::{header_slots, parse_request, BodyFraming, Limits, ParseError, Parsed, Version};

#[path = "common.rs"]
mod common;
use common::trim_ows;

fuzz_target!(|buf: &[u8]| {
    let limits = Limits::default();
    let mut hp_headers = [httparse::EMPTY_HEADER; 100];
    assert_eq!(hp_headers.len(), limits.max_headers);
    let mut hp = httparse::Request::new(&mut hp_headers);
    let hp_res = hp.parse(buf);

    let mut slots = header_slots();
    let ringd = parse_request(buf, &limits, &mut slots);

    match (&hp_res, &ringd) {
        (Err(e), Ok(Parsed::Complete(_))) => panic!("httparse rejects ({e:?}), ringd accepts"),
        (Err(e), Ok(Parsed::Partial)) => {
            assert_eq!(
                *e,
                httparse::Error::Version,
                "httparse rejects ({e:?}), ringd says Partial"
            )
        }
        (Err(_), Err(_)) => {}
        (Ok(httparse::Status::Partial), Ok(Parsed::Partial)) => {}
        (Ok(httparse::Status::Partial), Err(ParseError::UriTooLong | ParseError::HeadersTooLarge)) => {}
        (Ok(httparse::Status::Partial), r) => panic!("httparse Partial, ringd {r:?}"),
        (Ok(httparse::Status::Complete(_)), Err(e)) => assert!(
            !matches!(
                e,
                ParseError::BadRequestLine | ParseError::InvalidHeader | ParseError::UnsupportedVersion
            ),
            "httparse accepts, ringd reports a syntax error {e:?}"
        ),
        (Ok(httparse::Status::Complete(_)), Ok(Parsed::Partial)) => panic!("httparse Complete, ringd Partial"),
        (Ok(httparse::Status::Complete(n)), Ok(Parsed::Complete(h))) => {
            assert_eq!(*n, h.head_len, "head length");
            assert_eq!(hp.method, Some(h.method.as_str()), "method");
            assert_eq!(hp.path.map(str::as_bytes), Some(h.raw_target.as_bytes()), "raw target");
            let v = match hp.version {
                Some(0) => Version::Http10,
                Some(1) => Version::Http11,
                other => panic!("httparse version {other:?}"),
            };
            assert_eq!(v, h.version, "version");
            assert_eq!(hp.headers.len(), h.headers.len(), "header count");
            for (a, b) in hp.headers.iter().zip(h.headers) {
                assert_eq!(a.name, b.name, "header name");
                assert_eq!(a.value, b.value, "header value of {}", a.name);
            }
            check_framing(hp.headers, h.body);
        }
    }
});

/// Framing from the raw fields, written independently of `ringd_core::framing`.
fn check_framing(headers: &[httparse::Header<'_>], body: BodyFraming) {
    let named = |n: &'static str| headers.iter().filter(move |h| h.name.eq_ignore_ascii_case(n));
    let te: Vec<&[u8]> = named("transfer-encoding")
        .flat_map(|h| h.value.split(|&b| b == b','))
        .map(trim_ows)
        .filter(|c| !c.is_empty())
        .collect();
    let has_te = named("transfer-encoding").next().is_some();
    let cl: Vec<&[u8]> = named("content-length")
        .flat_map(|h| h.value.split(|&b| b == b','))
        .map(trim_ows)
        .collect();
    match body {
        BodyFraming::None => assert!(!has_te && cl.is_empty(), "None with framing fields"),
        BodyFraming::Chunked => {
            assert!(cl.is_empty(), "Chunked with Content-Length");
            assert_eq!(te.len(), 1, "Chunked needs exactly one coding: {te:?}");
            assert!(te[0].eq_ignore_ascii_case(b"chunked"));
        }
        BodyFraming::Length(n) => {
            assert!(!has_te, "Length with Transfer-Encoding");
            assert!(!cl.is_empty());
            for e in cl {
                assert!(
                    !e.is_empty() && e.iter().all(u8::is_ascii_digit),
                    "Content-Length element {e:?}"
                );
                let digits = std::str::from_utf8(e).unwrap().trim_start_matches('0');
                let want = if n == 0 { String::new() } else { n.to_string() };
                assert_eq!(digits, want, "Content-Length {n}");
            }
        }
    }
}
