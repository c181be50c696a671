//! Property tests: the request parser and the chunked decoder give the same answer however
//! their input is split, and never panic on random or mutated input.

use proptest::prelude::*;
use ringd_core::{header_slots, parse_request, ChunkProgress, ChunkedDecoder, Limits, ParseError, Parsed};

/// The parse result in comparable form (the head rendered with `Debug`).
type Outcome = Result<Option<(String, usize)>, ParseError>;

fn parse(buf: &[u8], limits: &Limits) -> Outcome {
    let mut slots = header_slots();
    match parse_request(buf, limits, &mut slots)? {
        Parsed::Complete(head) => Ok(Some((format!("{head:?}"), head.head_len))),
        Parsed::Partial => Ok(None),
    }
}

// ---------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------

fn limits() -> impl Strategy<Value = Limits> {
    prop_oneof![
        3 => Just(Limits::default()),
        1 => Just(Limits { max_request_line: 16, max_header_bytes: 64, max_headers: 2, max_body: 10 }),
        1 => Just(Limits { max_request_line: 40, max_header_bytes: 120, max_headers: 4, max_body: 1000 }),
        1 => (1usize..60, 1usize..200, 0usize..6, 0u64..50).prop_map(|(l, h, n, b)| Limits {
            max_request_line: l,
            max_header_bytes: h,
            max_headers: n,
            max_body: b,
        }),
    ]
}

fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        12 => prop::sample::select(vec![
            "GET", "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "CONNECT", "PATCH", "TRACE",
            "get", "PROPFIND",
        ])
        .prop_map(str::to_owned),
        1 => prop::sample::select(vec!["G(T", ""]).prop_map(str::to_owned),
        1 => "[!-~]{1,8}",
    ]
}

fn target() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "/", "/index.html", "/a/b/../c?x=1", "//a//b/", "/%41%2f..", "*", "example.com:443",
            "[::1]:8443", "http://example.com/x", "HTTPS://h:8/?q", "http://u@h/", "ftp://h/",
            "/../x", "/a/..%2f..%2fetc", "/a%00", "/%zz", "/%ff", "/é", "/a#f", "/a?b?c", "",
        ])
        .prop_map(str::to_owned),
        2 => "/[a-z0-9/.%?=&]{0,30}",
    ]
}

fn version() -> impl Strategy<Value = &'static str> {
    prop_oneof![
        8 => prop::sample::select(vec!["HTTP/1.1", "HTTP/1.0"]),
        1 => prop::sample::select(vec!["HTTP/2.0", "HTTP/1.2", "HTTP/0.9", "http/1.1", "HTTP/1.10", "HTTP/2"]),
    ]
}

fn header() -> impl Strategy<Value = (String, String)> {
    let named = |name: &'static str, values: Vec<&'static str>| {
        prop::sample::select(values).prop_map(move |v| (name.to_owned(), v.to_owned()))
    };
    prop_oneof![
        1 => named("Host", vec!["example.com", "h:8080", "[::1]", "", "a b", "u@h"]),
        2 => named("Content-Length", vec!["0", "5", "10", "5, 5", "5, 6", "+5", "5a", "", "99999999999999999999"]),
        2 => named("Transfer-Encoding", vec!["chunked", "gzip, chunked", "chunked, gzip", "CHUNKED", "", "foo"]),
        1 => named("Connection", vec!["close", "keep-alive", "Upgrade, close", "x"]),
        1 => named("Expect", vec!["100-continue", "100-Continue", "foo"]),
        3 => ("X-[A-Za-z0-9-]{1,8}", "[ -~\t]{0,20}"),
    ]
}

fn request() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(vec!["", "", "", "\r\n", "\n"]),
        method(),
        target(),
        version(),
        prop::bool::weighted(0.8),
        prop::collection::vec(header(), 0..6),
        prop::bool::weighted(0.9),
        prop::collection::vec(any::<u8>(), 0..8),
    )
        .prop_map(|(lead, m, t, v, host, headers, crlf, body)| {
            let eol = if crlf { "\r\n" } else { "\n" };
            let mut s = format!("{lead}{m} {t} {v}{eol}");
            if host {
                s.push_str(&format!("Host: example.com{eol}"));
            }
            for (name, value) in headers {
                s.push_str(&format!("{name}: {value}{eol}"));
            }
            s.push_str(eol);
            let mut buf = s.into_bytes();
            buf.extend_from_slice(&body);
            buf
        })
}

#[derive(Debug, Clone)]
enum Mutation {
    Set(usize, u8),
    Insert(usize, u8),
    Delete(usize),
}

fn interesting_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        3 => prop::sample::select(vec![
            b'\r', b'\n', b' ', b'\t', b':', 0, 0x7f, 0xff, 0x80, b'/', b'%', b'.', b'?', b'"',
            b';', b'=', b',', b'0', b'a',
        ]),
        1 => any::<u8>(),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), interesting_byte()).prop_map(|(p, b)| Mutation::Set(p, b)),
        (any::<usize>(), interesting_byte()).prop_map(|(p, b)| Mutation::Insert(p, b)),
        any::<usize>().prop_map(Mutation::Delete),
    ]
}

fn mutate(mut buf: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        match *m {
            Mutation::Set(p, b) if !buf.is_empty() => {
                let i = p % buf.len();
                buf[i] = b;
            }
            Mutation::Insert(p, b) => buf.insert(p % (buf.len() + 1), b),
            Mutation::Delete(p) if !buf.is_empty() => {
                let i = p % buf.len();
                buf.remove(i);
            }
            _ => {}
        }
    }
    buf
}

fn mutated_request() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => request(),
        4 => (request(), prop::collection::vec(mutation(), 1..4)).prop_map(|(b, m)| mutate(b, &m)),
        1 => prop::collection::vec(any::<u8>(), 0..64),
        1 => prop::collection::vec(interesting_byte(), 0..64),
    ]
}

// ---------------------------------------------------------------------------------------
// Parser properties
// ---------------------------------------------------------------------------------------

/// Every prefix is `Partial` or gives exactly the whole buffer's answer; a complete head is
/// never reported before all of it is present.
fn check_prefixes(buf: &[u8], limits: &Limits) -> Result<(), TestCaseError> {
    let whole = parse(buf, limits);
    for i in 0..=buf.len() {
        let prefix = parse(&buf[..i], limits);
        match &prefix {
            Ok(None) => {}
            _ => prop_assert_eq!(&prefix, &whole, "prefix of {} bytes disagrees", i),
        }
        if let Ok(Some((_, head_len))) = &prefix {
            prop_assert!(*head_len <= i);
        }
        if let Ok(Some((_, head_len))) = &whole {
            if i < *head_len {
                prop_assert_eq!(&prefix, &Ok(None), "strict prefix {} of a complete head", i);
            }
        }
    }
    Ok(())
}

/// Feeding growing prefixes at the given split points yields the whole buffer's answer at
/// the first non-`Partial` step.
fn check_growing(buf: &[u8], limits: &Limits, mut cuts: Vec<usize>) -> Result<(), TestCaseError> {
    let whole = parse(buf, limits);
    cuts.iter_mut().for_each(|c| *c %= buf.len() + 1);
    cuts.push(buf.len());
    cuts.sort_unstable();
    for cut in cuts {
        let r = parse(&buf[..cut], limits);
        if r != Ok(None) {
            prop_assert_eq!(r, whole);
            return Ok(());
        }
    }
    prop_assert_eq!(whole, Ok(None));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn parser_prefix_consistent(buf in mutated_request(), limits in limits()) {
        check_prefixes(&buf, &limits)?;
    }

    #[test]
    fn parser_growing_prefixes(
        buf in mutated_request(),
        limits in limits(),
        cuts in prop::collection::vec(any::<usize>(), 0..6),
    ) {
        check_growing(&buf, &limits, cuts)?;
    }

    #[test]
    fn parser_random_bytes_never_panic(buf in prop::collection::vec(any::<u8>(), 0..512), limits in limits()) {
        let _ = parse(&buf, &limits);
    }

    #[test]
    fn valid_requests_parse(body in prop::collection::vec(any::<u8>(), 0..8), path in "/[a-z0-9]{0,12}", n in 0usize..5) {
        let mut buf = format!("GET {path} HTTP/1.1\r\nHost: example.com\r\n").into_bytes();
        for i in 0..n {
            buf.extend_from_slice(format!("X-{i}: v{i}\r\n").as_bytes());
        }
        buf.extend_from_slice(b"\r\n");
        let head_len = buf.len();
        buf.extend_from_slice(&body);
        let whole = parse(&buf, &Limits::default());
        match whole {
            Ok(Some((_, len))) => prop_assert_eq!(len, head_len),
            other => prop_assert!(false, "{:?}", other),
        }
        check_prefixes(&buf, &Limits::default())?;
    }
}

#[test]
fn long_requests_prefix_consistent() {
    // Beyond what the generators reach: the default limits themselves.
    let limits = Limits::default();
    let mut line = b"GET /".to_vec();
    line.resize(limits.max_request_line + 10, b'a');
    line.extend_from_slice(b" HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(parse(&line, &limits), Err(ParseError::UriTooLong));
    for cut in [0, 5, limits.max_request_line, limits.max_request_line + 1, line.len()] {
        let r = parse(&line[..cut], &limits);
        assert!(r == Ok(None) || r == Err(ParseError::UriTooLong), "{cut}: {r:?}");
    }
    let mut head = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
    while head.len() <= limits.max_header_bytes {
        head.extend_from_slice(format!("X-Filler: {}\r\n", "0".repeat(1000)).as_bytes());
    }
    head.extend_from_slice(b"\r\n");
    assert_eq!(parse(&head, &limits), Err(ParseError::HeadersTooLarge));
}

// ---------------------------------------------------------------------------------------
// Chunked decoder properties
// ---------------------------------------------------------------------------------------

/// The decoder's answer in comparable form: result (with total consumed), decoded body.
type ChunkOutcome = (Result<ChunkProgress, ParseError>, Vec<u8>);

fn decode_whole(input: &[u8], max_body: u64, max_trailer: usize) -> ChunkOutcome {
    let mut d = ChunkedDecoder::new(max_body, max_trailer);
    let mut out = Vec::new();
    let r = d.decode(input, &mut out);
    if let Ok(ChunkProgress::Done { .. }) = r {
        assert!(d.is_done());
    }
    assert_eq!(d.body_len(), out.len() as u64);
    (r, out)
}

/// Decodes `input` in pieces cut at `cuts`, re-feeding nothing (NeedMore consumes all).
fn decode_split(input: &[u8], max_body: u64, max_trailer: usize, mut cuts: Vec<usize>) -> ChunkOutcome {
    cuts.iter_mut().for_each(|c| *c %= input.len() + 1);
    cuts.push(input.len());
    cuts.sort_unstable();
    let mut d = ChunkedDecoder::new(max_body, max_trailer);
    let mut out = Vec::new();
    let mut start = 0;
    let mut total = 0;
    for cut in cuts {
        let piece = &input[start..cut];
        match d.decode(piece, &mut out) {
            Ok(ChunkProgress::NeedMore { consumed }) => {
                assert_eq!(consumed, piece.len(), "NeedMore must consume everything");
                total += consumed;
            }
            Ok(ChunkProgress::Done { consumed }) => {
                return (
                    Ok(ChunkProgress::Done {
                        consumed: total + consumed,
                    }),
                    out,
                );
            }
            Err(e) => return (Err(e), out),
        }
        start = cut;
    }
    (Ok(ChunkProgress::NeedMore { consumed: total }), out)
}

fn hex_size(n: usize, upper: bool, zeros: usize) -> String {
    let digits = if upper { format!("{n:X}") } else { format!("{n:x}") };
    format!("{}{digits}", "0".repeat(zeros))
}

fn chunk_ext() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["", "", "", ";a", ";a=b", " ;a = \"q;\\\"x\"", ";x;y=z", "\t;k=v"])
}

/// A valid chunked body (with the bytes of the next request after it) and its decoding.
fn chunked_body() -> impl Strategy<Value = (Vec<u8>, Vec<u8>)> {
    (
        prop::collection::vec(
            (
                prop::collection::vec(any::<u8>(), 1..40),
                any::<bool>(),
                0usize..3,
                chunk_ext(),
            ),
            0..6,
        ),
        chunk_ext(),
        prop::sample::select(vec!["", "", "X: 1\r\n", "Expires: never\r\nA:b\r\n"]),
        prop::sample::select(vec!["", "GET / HTTP/1.1\r\n", "0\r\n\r\n"]),
    )
        .prop_map(|(chunks, last_ext, trailers, next)| {
            let mut wire = Vec::new();
            let mut body = Vec::new();
            for (data, upper, zeros, ext) in chunks {
                wire.extend_from_slice(format!("{}{ext}\r\n", hex_size(data.len(), upper, zeros)).as_bytes());
                wire.extend_from_slice(&data);
                wire.extend_from_slice(b"\r\n");
                body.extend_from_slice(&data);
            }
            wire.extend_from_slice(format!("0{last_ext}\r\n{trailers}\r\n{next}").as_bytes());
            (wire, body)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn chunked_valid_bodies_decode(
        (wire, body) in chunked_body(),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let whole = decode_whole(&wire, 1 << 20, 1024);
        prop_assert_eq!(&whole.1, &body);
        prop_assert!(matches!(whole.0, Ok(ChunkProgress::Done { .. })), "{:?}", whole.0);
        let split = decode_split(&wire, 1 << 20, 1024, cuts);
        prop_assert_eq!(split, whole);
    }

    #[test]
    fn chunked_split_independent(
        wire in prop_oneof![
            2 => chunked_body().prop_map(|(w, _)| w),
            4 => (chunked_body(), prop::collection::vec(mutation(), 1..4)).prop_map(|((w, _), m)| mutate(w, &m)),
            1 => prop::collection::vec(interesting_byte(), 0..64),
        ],
        max_body in prop_oneof![Just(1u64 << 20), 0u64..64],
        max_trailer in prop_oneof![Just(1024usize), 0usize..16],
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let whole = decode_whole(&wire, max_body, max_trailer);
        let split = decode_split(&wire, max_body, max_trailer, cuts);
        prop_assert_eq!(&split, &whole);
        // Byte by byte too, the most extreme split.
        let every: Vec<usize> = (0..wire.len()).collect();
        prop_assert_eq!(decode_split(&wire, max_body, max_trailer, every), whole);
    }

    #[test]
    fn chunked_random_bytes_never_panic(input in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode_whole(&input, 1 << 20, 64);
    }
}
