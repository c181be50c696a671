//! Tests of `request.rs`, with byte strings.

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
    let cases: [(&[u8], bool); 13] = [
        (b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", true),
        (b"GET / HTTP/1.1\r\nHost: h\r\nconnection: CLOSE\r\n\r\n", false),
        (b"GET / HTTP/1.0\r\nConnection: close\r\n\r\n", false),
        (b"GET / HTTP/1.1\r\nHost: h\r\nConnection: clos\r\n\r\n", true),
        (
            b"GET / HTTP/1.0\r\nConnection: close\r\nConnection: keep-alive\r\n\r\n",
            false,
        ),
        (
            b"GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close \r\n\r\n",
            false,
        ),
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
    let mut few = Vec::with_capacity(1);
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

/// The one comparison of [`is_host_name`] agrees with `eq_ignore_ascii_case("host")` on every
/// name of any length up to 5 whose bytes are each a letter of `host` in either case or any one
/// other byte in one position.
#[test]
fn is_host_name_is_eq_ignore_ascii_case() {
    let check = |name: &[u8]| {
        assert_eq!(
            is_host_name(name),
            name.eq_ignore_ascii_case(b"host"),
            "{:?}",
            String::from_utf8_lossy(name)
        );
    };
    for len in 0..=5usize {
        for cases in 0..1u32 << len {
            let base: Vec<u8> = b"hostx"[..len]
                .iter()
                .enumerate()
                .map(|(i, &b)| if cases >> i & 1 == 1 { b.to_ascii_uppercase() } else { b })
                .collect();
            check(&base);
            for at in 0..len {
                for other in 0..=u8::MAX {
                    let mut name = base.clone();
                    name[at] = other;
                    check(&name);
                }
            }
        }
    }
}

proptest::proptest! {
    /// [`is_host_name`] agrees with `eq_ignore_ascii_case("host")` on any bytes.
    #[test]
    fn is_host_name_on_any_bytes(name in proptest::collection::vec(proptest::num::u8::ANY, 0..6)) {
        proptest::prop_assert_eq!(is_host_name(&name), name.eq_ignore_ascii_case(b"host"));
    }

    /// The first-byte check of [`leading_empty_lines`] gives what the loop gives.
    #[test]
    fn leading_empty_lines_fast_check(buf in proptest::collection::vec(
        proptest::prop_oneof![proptest::strategy::Just(b'\r'), proptest::strategy::Just(b'\n'), proptest::num::u8::ANY],
        0..8,
    )) {
        let mut i = 0;
        loop {
            match buf.get(i..) {
                Some([b'\n', ..]) => i += 1,
                Some([b'\r', b'\n', ..]) => i += 2,
                _ => break,
            }
        }
        proptest::prop_assert_eq!(leading_empty_lines(&buf), i);
    }
}

/// Bytes a generated head is made of: each part's usual bytes and the ones next to them that
/// httparse refuses or reads differently.
const TARGET_BYTES: &[u8] = b"/a.%?#*:F \t\x7f\x80\xc3\xa9";
const VALUE_BYTES: &[u8] = b"a1.: \t\x7f\x80\x1f";

fn pick(from: &'static [&'static str]) -> impl proptest::strategy::Strategy<Value = &'static str> {
    proptest::sample::select(from)
}

fn bytes_of(from: &'static [u8], len: std::ops::Range<usize>) -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
    proptest::collection::vec(proptest::sample::select(from), len)
}

/// A request head near the shape `simple_head` reads, or slightly off it in one of the ways
/// httparse tells apart, possibly cut short, with what follows it.
fn near_simple_head() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
    use proptest::strategy::Strategy;
    let method = pick(&[
        "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE", "get", "GETS", "FOO", "",
    ]);
    let sp = || pick(&[" ", " ", " ", "  ", "\t"]);
    let target = (pick(&["/", "/", "", "*", "http://h/"]), bytes_of(TARGET_BYTES, 0..12));
    let version = pick(&[
        "HTTP/1.1",
        "HTTP/1.1",
        "HTTP/1.0",
        "HTTP/2.0",
        "HTTP/1.1 ",
        "HTTP/1.",
        "http/1.1",
    ]);
    let eol = || pick(&["\r\n", "\r\n", "\r\n", "\n", "\r"]);
    let field = (
        pick(&[
            "Host",
            "Host",
            "host",
            "HOST",
            "X-Y",
            "Content-Length",
            "Connection",
            "Expect",
            "Transfer-Encoding",
            "User-Agent",
            "Accept",
            "Bad Name",
            "",
        ]),
        pick(&[":", ": ", ": ", ":  ", ":\t", " :"]),
        bytes_of(VALUE_BYTES, 0..10),
        eol(),
    );
    let fields = proptest::collection::vec(field, 0..6);
    let end = pick(&["\r\n", "\r\n", "\n", ""]);
    let tail = pick(&["", "GET / HTTP/1.1\r\n", "xyz", "\r\n"]);
    let prefix = pick(&["", "", "", "\r\n", "\n"]);
    let cut = proptest::option::weighted(0.2, proptest::num::usize::ANY);
    (
        prefix,
        method,
        sp(),
        target,
        sp(),
        version,
        eol(),
        fields,
        end,
        tail,
        cut,
    )
        .prop_map(
            |(prefix, method, sp, (start, rest), sp2, version, eol, fields, end, tail, cut)| {
                let mut buf = Vec::new();
                buf.extend_from_slice(prefix.as_bytes());
                buf.extend_from_slice(method.as_bytes());
                buf.extend_from_slice(sp.as_bytes());
                buf.extend_from_slice(start.as_bytes());
                buf.extend_from_slice(&rest);
                buf.extend_from_slice(sp2.as_bytes());
                buf.extend_from_slice(version.as_bytes());
                buf.extend_from_slice(eol.as_bytes());
                for (name, colon, value, eol) in fields {
                    buf.extend_from_slice(name.as_bytes());
                    buf.extend_from_slice(colon.as_bytes());
                    buf.extend_from_slice(&value);
                    buf.extend_from_slice(eol.as_bytes());
                }
                buf.extend_from_slice(end.as_bytes());
                buf.extend_from_slice(tail.as_bytes());
                if let Some(cut) = cut {
                    buf.truncate(cut % (buf.len() + 1));
                }
                buf
            },
        )
}

/// A head of the shape `simple_head` reads, with one byte possibly replaced by one that
/// httparse refuses or reads differently, possibly cut short.
fn simple_shape() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
    use proptest::strategy::Strategy;
    let method = pick(&[
        "GET", "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE",
    ]);
    let target = proptest::prop_oneof![
        3 => bytes_of(b"/abz09.-~!", 0..20),
        1 => bytes_of(b"/abz09.%?#~!", 0..20),
    ];
    let version = pick(&["HTTP/1.1", "HTTP/1.0"]);
    // Values the parser reads (mostly good ones) or any of the value bytes.
    let value = || {
        proptest::prop_oneof![
            pick(&[
                "0",
                "5",
                "chunked",
                "close",
                "keep-alive",
                "100-continue",
                "curl/8.5.0",
                "*/*",
                "gzip, deflate"
            ])
            .prop_map(|v| v.as_bytes().to_vec()),
            bytes_of(b"a1.:- ,/", 1..20),
        ]
    };
    let host = proptest::option::weighted(0.8, (pick(&["Host: ", "Host:", "host: "]), bytes_of(b"a1.:-", 1..12)));
    let field = || {
        (
            pick(&[
                "host",
                "X-Y",
                "Content-Length",
                "Connection",
                "Expect",
                "Transfer-Encoding",
                "User-Agent",
                "Accept",
                "Accept-Encoding",
            ]),
            pick(&[":", ": ", ":  "]),
            value(),
        )
    };
    // Mostly one to four fields, as clients send; up to seven, beyond the slots and limits
    // `small_limits` gives.
    let fields = proptest::prop_oneof![
        1 => proptest::collection::vec(field(), 0..2),
        3 => proptest::collection::vec(field(), 0..8),
    ];
    let tail = pick(&["", "GET / HTTP/1.1\r\n", "\r\n", "a"]);
    let swap = proptest::option::weighted(
        0.4,
        (
            proptest::num::usize::ANY,
            proptest::sample::select(&b" \t\r\n\x00\x7f\x80\xff:/?#%.Aa"[..]),
        ),
    );
    let cut = proptest::option::weighted(0.1, proptest::num::usize::ANY);
    let head = (method, target, version, host, fields);
    (head, tail, swap, cut).prop_map(|((method, target, version, host, fields), tail, swap, cut)| {
        let mut buf = Vec::new();
        buf.extend_from_slice(method.as_bytes());
        buf.extend_from_slice(b" /");
        buf.extend_from_slice(&target);
        buf.push(b' ');
        buf.extend_from_slice(version.as_bytes());
        buf.extend_from_slice(b"\r\n");
        if let Some((name, value)) = host {
            buf.extend_from_slice(name.as_bytes());
            buf.extend_from_slice(&value);
            buf.extend_from_slice(b"\r\n");
        }
        for (name, colon, value) in fields {
            buf.extend_from_slice(name.as_bytes());
            buf.extend_from_slice(colon.as_bytes());
            buf.extend_from_slice(&value);
            buf.extend_from_slice(b"\r\n");
        }
        buf.extend_from_slice(b"\r\n");
        buf.extend_from_slice(tail.as_bytes());
        if let Some((at, byte)) = swap {
            let at = at % buf.len();
            buf[at] = byte;
        }
        if let Some(cut) = cut {
            buf.truncate(cut % (buf.len() + 1));
        }
        buf
    })
}

fn small_limits() -> impl proptest::strategy::Strategy<Value = (Limits, usize)> {
    use proptest::strategy::Strategy;
    let limits = proptest::prop_oneof![
        3 => proptest::strategy::Just(Limits::default()),
        1 => (10usize..40, 10usize..120, 0usize..6).prop_map(|(line, head, fields)| Limits {
            max_request_line: line,
            max_header_bytes: head,
            max_headers: fields,
            ..Limits::default()
        }),
    ];
    // Mostly room for every field generated; else small capacities, a head with more fields
    // than slots included.
    let slots = proptest::prop_oneof![1 => proptest::strategy::Just(16usize), 1 => 0usize..9];
    (limits, slots)
}

/// `parse_request` with and without `simple_head`, with room for `n_slots` fields, the head
/// rendered with `Debug`. The vectors are handed over dirty, as a reused one would be.
fn both_ways(buf: &[u8], limits: &Limits, n_slots: usize) -> (String, String) {
    let stale = Header {
        name: "Stale",
        value: b"x",
    };
    let (mut a, mut b) = (Vec::with_capacity(n_slots), Vec::with_capacity(n_slots));
    let (cap_a, cap_b) = (a.capacity(), b.capacity());
    if n_slots > 0 {
        a.push(stale);
        b.push(stale);
    }
    let fast = format!("{:?}", parse_head(buf, limits, &mut a, Some(&KNOWN)));
    let slow = format!("{:?}", parse_head(buf, limits, &mut b, None));
    // Never grown.
    assert_eq!((a.capacity(), b.capacity()), (cap_a, cap_b));
    (fast, slow)
}

/// Targets the generated heads often have, and some that are not kept (they do not split to
/// themselves): `simple_head` takes the kept ones as these strings and skips their split, and
/// the head must be the same as when it checks their bytes and splits them.
static KNOWN: std::sync::LazyLock<KnownTargets> = std::sync::LazyLock::new(|| {
    let mut known = KnownTargets::new();
    for target in [
        "/",
        "/a",
        "/a%",
        "/aa",
        "/plaintext",
        "/%2e",
        "/a?b",
        "/é",
        "*",
        "http://h/",
    ] {
        known.insert(target);
    }
    known
});

/// A target is known by its bytes and length, whatever else is known.
#[test]
fn known_targets_are_found_by_their_bytes() {
    assert_eq!(KNOWN.get(b"/a"), Some("/a"));
    assert_eq!(KNOWN.get(b"/plaintext"), Some("/plaintext"));
    assert_eq!(KNOWN.get(b"/b"), None);
    assert_eq!(KNOWN.get(b"/plaintexT"), None);
    assert_eq!(KNOWN.get(b""), None);
    let long = "/".repeat(KnownTargets::LONGEST + 1);
    let mut known = KnownTargets::new();
    known.insert(&long);
    assert_eq!(known.get(long.as_bytes()), None, "longer targets are not kept");
    // Same length, same first and last eight bytes only when the same.
    for a in [
        "/123456789abcdef",
        "/123456789abcdeF",
        "/0234567",
        "/1234567",
        "/12345678",
    ] {
        let mut known = KnownTargets::new();
        known.insert(a);
        for b in [
            "/123456789abcdef",
            "/123456789abcdeF",
            "/0234567",
            "/1234567",
            "/12345678",
            "/123456",
        ] {
            assert_eq!(known.get(b.as_bytes()), (a == b).then_some(a), "{a} {b}");
        }
    }
}

/// Only a target that is its own path (origin-form, no query, nothing to normalize) is kept:
/// a known target skips the split, so any other would be taken wrongly.
#[test]
fn only_targets_that_split_to_themselves_are_known() {
    for target in [
        "/a%",
        "/%2e",
        "/a?b",
        "/a/../b",
        "/./a",
        "/a/.",
        "*",
        "http://h/",
        "a",
        "",
    ] {
        let mut known = KnownTargets::new();
        known.insert(target);
        assert_eq!(known.get(target.as_bytes()), None, "{target}");
    }
    for target in ["/", "/a", "/plaintext", "/a/b.json", "/é"] {
        let mut known = KnownTargets::new();
        known.insert(target);
        assert_eq!(known.get(target.as_bytes()), Some(target), "{target}");
        let split = split_target(target, Method::Get).unwrap();
        assert_eq!((split.path.as_ref(), split.query), (target, None), "{target}");
    }
}

/// `simple_head` with room for `n_slots` fields: the request line and the fields it read.
fn simple<'b>(buf: &'b [u8], limits: &Limits, n_slots: usize) -> Option<(SimpleHead<'b>, Vec<Header<'b>>)> {
    let mut slots = Vec::with_capacity(n_slots);
    let head = simple_head(buf, limits, &mut slots, n_slots, &KNOWN)?;
    Some((head, slots))
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(20_000))]

    /// Whether or not `simple_head` reads the head, `parse_request`'s answer is the same: every
    /// field of the head, or the error, or `Partial`.
    #[test]
    fn simple_head_changes_no_answer(
        buf in proptest::prop_oneof![near_simple_head(), simple_shape()],
        (limits, n_slots) in small_limits(),
    ) {
        let (fast, slow) = both_ways(&buf, &limits, n_slots);
        proptest::prop_assert_eq!(fast, slow, "{:?}", String::from_utf8_lossy(&buf));
    }

    /// `visible_run`'s words give what a byte loop gives.
    #[test]
    fn visible_run_is_the_byte_loop(
        bytes in bytes_of(b"a /~\x20\x21\x7e\x7f\x80\xff\x1f\x00\r\n", 0..40),
        lo in proptest::sample::select(&[0x20u8, 0x21][..]),
    ) {
        let expected = bytes.iter().take_while(|&&b| (lo..=0x7e).contains(&b)).count();
        proptest::prop_assert_eq!(visible_run(&bytes, lo), expected);
    }
}

/// The shapes `simple_head` is for are read by it (so the test above compares both ways on
/// them), and give the same answer as httparse's way.
#[test]
fn simple_head_reads_the_common_shapes() {
    for (buf, fields) in [
        (&b"GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"[..], 1),
        (
            b"GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGET /plaintext HTTP/1.1\r\n",
            1,
        ),
        (b"HEAD /a/b.css?x=1 HTTP/1.0\r\n\r\n", 0),
        (b"POST /x HTTP/1.1\r\nhost:a b\r\n\r\n", 1),
        (b"GET /%2e%2e/x HTTP/1.1\r\nHost: h\r\n\r\n", 1),
        (b"GET /x#y HTTP/1.1\r\nHost: h\r\n\r\n", 1),
        (b"CONNECT /x HTTP/1.1\r\nHost: h\r\n\r\n", 1),
        (b"GET / HTTP/1.1\r\nHost: bad/host\r\n\r\n", 1),
        (b"GET / HTTP/1.1\r\nContent-Length: 1\r\n\r\n", 1),
        // curl.
        (
            b"GET /x HTTP/1.1\r\nHost: h\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n",
            3,
        ),
        // A browser.
        (
            b"GET /index.html HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: Mozilla/5.0 (X11; \
              Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0\r\nAccept: text/html,application/\
              xhtml+xml,*/*;q=0.8\r\nAccept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, \
              deflate, br\r\nConnection: keep-alive\r\nUpgrade-Insecure-Requests: 1\r\n\
              If-Modified-Since: Mon, 01 Jan 2024 00:00:00 GMT\r\n\r\n",
            8,
        ),
        // Fields the parser acts on, and ones it refuses later (the same way as httparse's).
        (
            b"POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello",
            3,
        ),
        (
            b"POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
            3,
        ),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 2),
        (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\nX:y\r\n\r\n", 2),
    ] {
        let limits = Limits::default();
        let (_, read) =
            simple(buf, &limits, MAX_HEADERS).unwrap_or_else(|| panic!("{:?}", String::from_utf8_lossy(buf)));
        assert_eq!(read.len(), fields, "{:?}", String::from_utf8_lossy(buf));
        // Exactly as many slots as fields is enough.
        assert!(simple(buf, &limits, fields).is_some());
        let (fast, slow) = both_ways(buf, &limits, 100);
        assert_eq!(fast, slow);
    }
    // Shapes it leaves to httparse.
    for buf in [
        &b"GET /x HTTP/1.1\r\nHost: h \r\n\r\n"[..],
        b"GET /x HTTP/1.1\r\nHost:\th\r\n\r\n",
        b"GET /x HTTP/1.1\nHost: h\n\n",
        b"GET /x HTTP/1.1\r\nHost: h\r\nAccept: */*\n\r\n",
        b"GET /x HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\n",
        b"GET /x HTTP/1.1\r\nHost: h\r\nAccept: a\r\n b\r\n\r\n",
        b"GET /x HTTP/1.1\r\nHost: h\r\nAccept:\r\n\r\n",
        b"GET /x HTTP/1.1\r\nHost: h\r\nAccept : a\r\n\r\n",
        b"GET /x HTTP/1.1\r\nHost: h\r\nAccept: \xc3\xa9\r\n\r\n",
        b"\r\nGET /x HTTP/1.1\r\nHost: h\r\n\r\n",
        b"get /x HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET /\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n",
        b"GET /x HTTP/1.1\r\nHost: h\r\n",
        b"GET /x HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n",
    ] {
        assert_eq!(
            simple(buf, &Limits::default(), MAX_HEADERS),
            None,
            "{:?}",
            String::from_utf8_lossy(buf)
        );
    }
    // More fields than slots, or than `max_headers`: httparse's `TooManyHeaders`.
    let curl = b"GET /x HTTP/1.1\r\nHost: h\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n";
    assert_eq!(simple(curl, &Limits::default(), 2), None);
    let mut two = Vec::with_capacity(2);
    assert_eq!(
        parse_request(curl, &Limits::default(), &mut two).unwrap_err(),
        ParseError::TooManyHeaders
    );
    assert_eq!(two.capacity(), 2);
    let limits = Limits {
        max_headers: 2,
        ..Limits::default()
    };
    assert_eq!(
        parse_request(curl, &limits, &mut header_slots()).unwrap_err(),
        ParseError::TooManyHeaders
    );
}

/// A vector passed again is cleared first, and is not grown.
#[test]
fn slots_are_reused() {
    let one = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";
    let three = b"GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n";
    let odd = b"GET / HTTP/1.1\r\nHost: h\r\nA:\t1\r\n\r\n";
    let mut slots = header_slots();
    for (buf, n) in [(&three[..], 3), (one, 1), (three, 3), (odd, 2), (one, 1)] {
        match parse_request(buf, &Limits::default(), &mut slots) {
            Ok(Parsed::Complete(h)) => assert_eq!(h.headers.len(), n),
            other => panic!("{other:?}"),
        }
        assert_eq!(slots.capacity(), MAX_HEADERS);
    }
}

/// `field_name` gives the name's own bytes as a `str` (a static one for the names it knows)
/// and the name's `Kind`, for those names and ones near them.
#[test]
fn field_name_is_from_utf8() {
    for name in [
        "Host",
        "host",
        "HOST",
        "Hos",
        "Hostt",
        "Accept",
        "accept",
        "Cookie",
        "Origin",
        "Referer",
        "Connection",
        "connection",
        "User-Agent",
        "user-agent",
        "Content-Type",
        "Authorization",
        "Cache-Control",
        "If-None-Match",
        "Content-Length",
        "content-length",
        "Accept-Encoding",
        "Accept-Language",
        "If-Modified-Since",
        "Transfer-Encoding",
        "X-Y",
        "!",
        "Accept-Encodinh",
    ] {
        assert_eq!(field_name(name.as_bytes()), Some((name, Kind::of(name))));
    }
}

/// The word-wise checks of `Fields::scan` and `keep_alive`'s shortcut say what
/// `eq_ignore_ascii_case` says, for the names themselves and every one-byte change of them.
#[test]
fn connection_and_close_checks_are_exact() {
    for (word, check) in [
        (&b"connection"[..], is_connection_name as fn(&[u8]) -> bool),
        (&b"close"[..], is_close),
    ] {
        let mut cases = vec![word.to_vec(), word.to_ascii_uppercase(), word[1..].to_vec()];
        cases.push([word, b"x"].concat());
        for i in 0..word.len() {
            for b in 0..=255u8 {
                let mut w = word.to_vec();
                w[i] = b;
                cases.push(w);
            }
        }
        for case in cases {
            assert_eq!(check(&case), case.eq_ignore_ascii_case(word), "{case:?}");
        }
    }
}

/// The target taken as a `str` is the target's bytes wherever the head stands in memory (the
/// UTF-8 check starts at an address that is a multiple of eight when there is one before it),
/// and a target with a byte that is not UTF-8 is refused.
#[test]
fn ascii_str_is_the_target_at_every_alignment() {
    let head = b"GET /static/a-longer-path/4k.bin HTTP/1.1\r\n";
    let end = head.len() - 11;
    for shift in 0..16 {
        let mut mem = vec![b'x'; shift];
        mem.extend_from_slice(head);
        let buf = &mem[shift..];
        for at in 0..8 {
            for stop in at..=end {
                assert_eq!(ascii_str(buf, at, stop), std::str::from_utf8(&buf[at..stop]).ok());
            }
        }
        let mut bad = mem.clone();
        bad[shift + 9] = 0xc3;
        assert_eq!(ascii_str(&bad[shift..], 4, end), None, "{shift}");
    }
}
