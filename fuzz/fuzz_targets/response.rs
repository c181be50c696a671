//! `write_head` with handler-supplied headers from the input. Input: status (2 bytes, mapped
//! into the documented 100..=999), flags byte, body length (8 bytes), then headers as
//! `[name_len][value_len][name][value]` records (names lossily made UTF-8).
//!
//! Invariants (beyond "never panics"):
//! - `write_head_common` with the same `Date` and `Server` lines writes the same bytes;
//! - `Err(InvalidHeader { index })`: nothing was written, header `index` is bad (not a token,
//!   a writer-owned name, or a CTL other than HTAB in the value) and all before it are good;
//! - `Ok(framing)`: the bytes are one complete response head that plain `httparse` parses to
//!   exactly its length, with the same status code, the handler's headers in order, one
//!   `Date`, at most one framing header, and a framing that matches the headers sent
//!   (Content-Length n <=> `Length(n)` unless HEAD; chunked <=> `Chunked`; `CloseDelimited`
//!   => `Connection: close`; no Content-Length on 1xx/204/304).
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringd_core::{
    write_head, write_head_common, BodyLength, CommonLines, HeaderBlock, ResponseFraming, ResponseHead, Version,
};

const DATE: &[u8] = b"Sun, 06 Nov 1994 08:49:37 GMT";

fn valid_header(name: &str, value: &[u8]) -> bool {
    let token = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    let reserved = ["content-length", "transfer-encoding", "connection", "date", "server"]
        .iter()
        .any(|r| name.eq_ignore_ascii_case(r));
    let value_ok = value.iter().all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f));
    token && !reserved && value_ok
}

fuzz_target!(|data: &[u8]| {
    let [s0, s1, flags, l0, l1, l2, l3, l4, l5, l6, l7, tail @ ..] = data else {
        return;
    };
    let mut rest: &[u8] = tail;
    let status = 100 + u16::from_le_bytes([*s0, *s1]) % 900;
    let len = u64::from_le_bytes([*l0, *l1, *l2, *l3, *l4, *l5, *l6, *l7]);
    let owned: Vec<(String, Vec<u8>)> = {
        let mut v = Vec::new();
        while let [nl, vl, tail @ ..] = rest {
            let (nl, vl) = (usize::from(*nl % 32), usize::from(*vl % 64));
            if tail.len() < nl + vl {
                break;
            }
            v.push((
                String::from_utf8_lossy(&tail[..nl]).into_owned(),
                tail[nl..nl + vl].to_vec(),
            ));
            rest = &tail[nl + vl..];
        }
        v
    };
    let headers: Vec<(&str, &[u8])> = owned.iter().map(|(n, v)| (n.as_str(), v.as_slice())).collect();
    let head = ResponseHead {
        status,
        headers: &headers,
        block: None,
        body: if flags & 1 == 0 {
            BodyLength::Known(len)
        } else {
            BodyLength::Streamed
        },
        request_version: if flags & 2 == 0 {
            Version::Http11
        } else {
            Version::Http10
        },
        keep_alive: flags & 4 != 0,
        head_request: flags & 8 != 0,
    };
    let server: &[u8] = if flags & 16 == 0 { b"ringd" } else { b"" };
    let mut out = Vec::new();
    match write_head(&mut out, &head, DATE, server) {
        Err(e) => {
            assert!(out.is_empty(), "wrote bytes before refusing");
            assert!(
                !valid_header(headers[e.index].0, headers[e.index].1),
                "refused a good header"
            );
            assert!(headers[..e.index].iter().all(|(n, v)| valid_header(n, v)));
        }
        Ok(framing) => {
            assert!(headers.iter().all(|(n, v)| valid_header(n, v)), "accepted a bad header");
            check_output(&out, &head, framing, !server.is_empty());
        }
    }
    // With the `Date` and `Server` lines rendered beforehand (the server's way): the same
    // bytes, or the same refusal with nothing written.
    let mut common = Vec::new();
    let lines = CommonLines::new(DATE, server);
    assert_eq!(
        write_head_common(&mut common, &head, &lines).ok(),
        write_head(&mut Vec::new(), &head, DATE, server).ok()
    );
    assert_eq!(common, out, "write_head_common wrote other bytes than write_head");
    // The same headers as a block checked once: refused alike, written alike.
    let mut from_block = Vec::new();
    match HeaderBlock::new(&headers) {
        Ok(block) => {
            let blocked = ResponseHead {
                headers: &[],
                block: Some(&block),
                ..head
            };
            let framing = write_head(&mut from_block, &blocked, DATE, server);
            assert_eq!(framing.ok(), write_head(&mut Vec::new(), &head, DATE, server).ok());
            assert_eq!(from_block, out, "a block wrote other bytes than its headers");
        }
        Err(e) => assert!(!valid_header(headers[e.index].0, headers[e.index].1)),
    }
});

fn check_output(out: &[u8], head: &ResponseHead<'_>, framing: ResponseFraming, server: bool) {
    let mut slots = vec![httparse::EMPTY_HEADER; 2048]; // every record is >= 3 input bytes
    let mut resp = httparse::Response::new(&mut slots);
    let parsed = resp.parse(out);
    assert_eq!(
        parsed,
        Ok(httparse::Status::Complete(out.len())),
        "{:?}",
        String::from_utf8_lossy(out)
    );
    assert_eq!(resp.code, Some(head.status));
    assert_eq!(resp.version, Some(1));
    let got = resp.headers;
    let named = |n: &'static str| got.iter().filter(move |h| h.name.eq_ignore_ascii_case(n));
    assert_eq!(named("date").count(), 1);
    assert_eq!(named("server").count(), usize::from(server));
    // The handler's headers appear in order, unchanged.
    let handler: Vec<_> = got
        .iter()
        .filter(|h| {
            !["date", "server", "content-length", "transfer-encoding", "connection"]
                .iter()
                .any(|r| h.name.eq_ignore_ascii_case(r))
        })
        .map(|h| (h.name, h.value))
        .collect();
    // httparse trims surrounding whitespace of values; the writer sends them as given.
    let want: Vec<_> = head.headers.iter().map(|&(n, v)| (n, trim(v))).collect();
    assert_eq!(handler, want);

    let cl: Vec<_> = named("content-length").collect();
    let te: Vec<_> = named("transfer-encoding").collect();
    let close = named("connection").any(|h| h.value == b"close");
    assert!(cl.len() + te.len() <= 1, "two framing headers");
    let no_body_status = head.status < 200 || head.status == 204 || head.status == 304;
    if no_body_status {
        assert!(cl.is_empty() && te.is_empty());
        assert_eq!(framing, ResponseFraming::NoBody);
    }
    if head.head_request {
        assert_eq!(framing, ResponseFraming::NoBody);
    }
    match framing {
        ResponseFraming::Length(n) => {
            assert_eq!(cl.len(), 1);
            assert_eq!(cl[0].value, n.to_string().as_bytes());
            assert_eq!(head.body, BodyLength::Known(n));
        }
        ResponseFraming::Chunked => {
            assert_eq!(te.len(), 1);
            assert_eq!(te[0].value, b"chunked");
            assert_eq!(head.request_version, Version::Http11);
        }
        ResponseFraming::CloseDelimited => {
            assert!(close, "close-delimited body without Connection: close");
            assert!(cl.is_empty() && te.is_empty());
        }
        ResponseFraming::NoBody => {}
    }
    if !head.keep_alive {
        assert!(close, "keep_alive false without Connection: close");
    }
}

fn trim(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', r @ ..] = v {
        v = r;
    }
    while let [r @ .., b' ' | b'\t'] = v {
        v = r;
    }
    v
}
