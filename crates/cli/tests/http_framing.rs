//! Built-in routes, common response headers, and RFC 9112 message framing
//! (Content-Length, Transfer-Encoding, chunked bodies, Expect: 100-continue),
//! exercised over raw TCP against the real binary.

mod common;

use common::*;

const HELLO: &str = "Hello, World!";
const JSON: &str = r#"{"message":"Hello, World!"}"#;

// ---------------------------------------------------------------------------
// Built-in routes
// ---------------------------------------------------------------------------

#[test]
fn get_root_is_html_mentioning_ringd() {
    let s = Server::start(&[]);
    let r = roundtrip(s.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 200, "{}", r.raw_head);
    r.assert_common();
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(r.header("content-length"), Some(r.body.len().to_string().as_str()));
    assert!(r.body_str().contains("ringd"), "body: {}", r.body_str());
    s.assert_no_panic();
}

#[test]
fn get_plaintext() {
    let s = Server::start(&[]);
    let r = roundtrip(s.addr, b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 200, "{}", r.raw_head);
    r.assert_common();
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r.header("content-length"), Some("13"));
    assert_eq!(r.body_str(), HELLO);
}

#[test]
fn get_json() {
    let s = Server::start(&[]);
    let r = roundtrip(s.addr, b"GET /json HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 200, "{}", r.raw_head);
    r.assert_common();
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.body_str(), JSON);
    assert_eq!(r.header("content-length"), Some(JSON.len().to_string().as_str()));
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["message"], HELLO);
}

#[test]
fn head_matches_get_headers_without_body() {
    let s = Server::start(&[]);
    for path in ["/", "/plaintext", "/json"] {
        let mut c = Conn::open(s.addr);
        c.send(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
        let g = c.read_response(false);
        c.send(format!("HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
        let h = c.read_response(true);
        // If HEAD wrongly carried a body, its bytes would show up before the
        // next response's status line.
        c.send(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n");
        let after = c.read_response(false);
        assert_eq!(
            after.status, 200,
            "response after HEAD {path} is garbled (HEAD sent body bytes?): {:?}",
            after.raw_head
        );
        assert_eq!(after.body_str(), HELLO);
        assert_eq!(h.status, 200, "HEAD {path}: {}", h.raw_head);
        h.assert_common();
        assert_eq!(h.header("content-type"), g.header("content-type"), "{path}");
        assert_eq!(
            h.header("content-length"),
            Some(g.body.len().to_string().as_str()),
            "HEAD {path} must carry the GET Content-Length: {}",
            h.raw_head
        );
    }
}

#[test]
fn echo_post_and_put() {
    let s = Server::start(&[]);
    let mut c = Conn::open(s.addr);
    c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/x-test\r\nContent-Length: 11\r\n\r\nhello world");
    let r = c.read_response(false);
    assert_eq!(r.status, 200, "{}", r.raw_head);
    r.assert_common();
    assert_eq!(r.body_str(), "hello world");
    assert_eq!(r.header("content-type"), Some("text/x-test"));
    assert_eq!(r.header("content-length"), Some("11"));

    // PUT without Content-Type -> application/octet-stream; binary-safe.
    let body: Vec<u8> = (0u8..=255).collect();
    let mut req = format!(
        "PUT /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    c.send(&req);
    let r = c.read_response(false);
    assert_eq!(r.status, 200, "{}", r.raw_head);
    assert_eq!(r.body, body);
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));

    // Empty body.
    c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    let r = c.read_response(false);
    assert_eq!(r.status, 200, "{}", r.raw_head);
    assert_eq!(r.header("content-length"), Some("0"));
    assert!(r.body.is_empty());
}

#[test]
fn echo_large_body_in_many_writes() {
    let s = Server::start(&[]);
    let body = pseudo_random(300_000, 7);
    let r = common::echo_in_pieces(s.addr, &body, 7001);
    assert_eq!(r.status, 200, "{}", r.raw_head);
    assert_eq!(r.body.len(), body.len());
    assert!(r.body == body, "echoed body differs");
}

#[test]
fn method_not_allowed_lists_allow_and_keeps_connection() {
    let s = Server::start(&[]);
    let mut c = Conn::open(s.addr);
    c.send(b"POST /plaintext HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    let r = c.read_response(false);
    assert_eq!(r.status, 405, "{}", r.raw_head);
    r.assert_common();
    let allow = r.allow_set();
    assert!(
        allow.is_superset(&set_of(&["GET", "HEAD"])) && !allow.contains("POST"),
        "Allow for /plaintext: {:?}",
        r.raw_head
    );
    assert!(!r.connection_has("close"), "405 must keep the connection");

    c.send(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.read_response(false);
    assert_eq!(r.status, 405, "{}", r.raw_head);
    let allow = r.allow_set();
    assert!(
        allow.is_superset(&set_of(&["POST", "PUT"])) && !allow.contains("GET"),
        "Allow for /echo: {:?}",
        r.raw_head
    );

    c.send(b"DELETE /json HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.read_response(false);
    assert_eq!(r.status, 405, "{}", r.raw_head);

    // Still open: a good request works.
    c.send(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.read_response(false);
    assert_eq!(r.status, 200);
    assert_eq!(r.body_str(), HELLO);
}

#[test]
fn not_found_keeps_connection() {
    let s = Server::start(&[]);
    let mut c = Conn::open(s.addr);
    c.send(b"GET /no/such/thing HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.read_response(false);
    assert_eq!(r.status, 404, "{}", r.raw_head);
    r.assert_common();
    assert!(r.header("content-length").is_some(), "{}", r.raw_head);
    assert!(!r.connection_has("close"), "404 must keep the connection");
    c.send(b"HEAD /nope HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.read_response(true);
    assert_eq!(r.status, 404, "{}", r.raw_head);
    c.send(b"GET /json HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.read_response(false);
    assert_eq!(r.status, 200);
    assert_eq!(r.body_str(), JSON);
}

#[test]
fn options_asterisk_and_path() {
    let s = Server::start(&[]);
    let mut c = Conn::open(s.addr);
    c.send(b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.read_response(false);
    assert_eq!(r.status, 204, "{}", r.raw_head);
    r.assert_common();
    assert!(!r.allow_set().is_empty(), "OPTIONS * needs Allow: {}", r.raw_head);

    c.send(b"OPTIONS /plaintext HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.read_response(false);
    assert_eq!(r.status, 204, "{}", r.raw_head);
    assert_eq!(r.allow_set(), set_of(&["GET", "HEAD", "OPTIONS"]), "{}", r.raw_head);
    if let Some(cl) = r.header("content-length") {
        panic!("204 must not carry Content-Length (got {cl})");
    }
    // A 204 has no body: the next response must parse cleanly.
    c.send(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.read_response(false);
    assert_eq!(r.status, 200, "{}", r.raw_head);
    assert_eq!(r.body_str(), HELLO);
}

// ---------------------------------------------------------------------------
// Content-Length
// ---------------------------------------------------------------------------

fn post_echo_with_cl(cl: &str) -> Vec<u8> {
    format!("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {cl}\r\n\r\nhello").into_bytes()
}

#[test]
fn content_length_invalid_values_are_400() {
    let s = Server::start(&[]);
    for bad in ["+5", "5a", "-1", "", "99999999999999999999999", "0x5", "5 5"] {
        expect_error(s.addr, &post_echo_with_cl(bad), 400);
    }
    s.assert_no_panic();
}

#[test]
fn content_length_conflicting_values_are_400() {
    let s = Server::start(&[]);
    expect_error(
        s.addr,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        400,
    );
    expect_error(s.addr, &post_echo_with_cl("5, 6"), 400);
}

#[test]
fn content_length_repeated_same_value_is_accepted() {
    let s = Server::start(&[]);
    let r = roundtrip(s.addr, &post_echo_with_cl("5, 5"));
    assert_eq!(r.status, 200, "{}", r.raw_head);
    assert_eq!(r.body_str(), "hello");
}

// ---------------------------------------------------------------------------
// Transfer-Encoding
// ---------------------------------------------------------------------------

#[test]
fn te_chunked_with_content_length_is_400() {
    let s = Server::start(&[]);
    expect_error(
        s.addr,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        400,
    );
    expect_error(
        s.addr,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        400,
    );
}

#[test]
fn te_chunked_not_final_is_400() {
    let s = Server::start(&[]);
    for te in ["chunked, gzip", "foo"] {
        let req = format!("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: {te}\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
        expect_error(s.addr, req.as_bytes(), 400);
    }
}

#[test]
fn te_unsupported_coding_is_501() {
    let s = Server::start(&[]);
    expect_error(
        s.addr,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        501,
    );
}

#[test]
fn te_in_http10_is_400() {
    let s = Server::start(&[]);
    expect_error(
        s.addr,
        b"POST /echo HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        400,
    );
}

// ---------------------------------------------------------------------------
// Chunked bodies
// ---------------------------------------------------------------------------

#[test]
fn chunked_echo_decodes_chunks_extensions_and_trailers() {
    let s = Server::start(&[]);
    let mut c = Conn::open(s.addr);
    // Several chunks, upper/lower-case hex sizes.
    c.send(
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n\
          5\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\na\r\nabcdefghij\r\n0\r\n\r\n",
    );
    let r = c.read_response(false);
    assert_eq!(r.status, 200, "{}", r.raw_head);
    assert_eq!(r.body_str(), "hello 0123456789abcdefghij");
    assert_eq!(r.header("content-type"), Some("text/plain"));

    // Chunk extensions.
    c.send(
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
          3;a=b\r\nabc\r\n3 ; name=\"quoted value\"\r\ndef\r\n0;last\r\n\r\n",
    );
    let r = c.read_response(false);
    assert_eq!(r.status, 200, "{}", r.raw_head);
    assert_eq!(r.body_str(), "abcdef");

    // Trailers.
    c.send(
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
          4\r\nwxyz\r\n0\r\nX-Trailer: one\r\nX-Other: two\r\n\r\n",
    );
    let r = c.read_response(false);
    assert_eq!(r.status, 200, "{}", r.raw_head);
    assert_eq!(r.body_str(), "wxyz");

    // Connection still in sync after all that.
    c.send(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.read_response(false);
    assert_eq!(r.status, 200, "{}", r.raw_head);
    assert_eq!(r.body_str(), HELLO);
}

#[test]
fn chunked_echo_large_body_split_across_writes() {
    let s = Server::start(&[]);
    let body = pseudo_random(200_000, 99);
    let mut raw = b"PUT /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for chunk in body.chunks(4093) {
        raw.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        raw.extend_from_slice(chunk);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    let mut c = Conn::open(s.addr);
    let mut w = c.stream.try_clone().unwrap();
    let t = std::thread::spawn(move || {
        use std::io::Write;
        // Odd write sizes so chunk headers straddle reads.
        for piece in raw.chunks(1777) {
            w.write_all(piece).unwrap();
        }
    });
    let r = c.read_response(false);
    t.join().unwrap();
    assert_eq!(r.status, 200, "{}", r.raw_head);
    assert_eq!(r.body.len(), body.len());
    assert!(r.body == body, "de-chunked body differs");
}

#[test]
fn chunked_bad_size_is_400() {
    let s = Server::start(&[]);
    expect_error(
        s.addr,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        400,
    );
}

#[test]
fn chunked_bare_lf_framing_is_400() {
    let s = Server::start(&[]);
    expect_error(
        s.addr,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n",
        400,
    );
}

#[test]
fn chunked_missing_crlf_after_data_is_400() {
    let s = Server::start(&[]);
    expect_error(
        s.addr,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
        400,
    );
}

// ---------------------------------------------------------------------------
// Expect: 100-continue
// ---------------------------------------------------------------------------

#[test]
fn expect_100_continue_on_echo() {
    let s = Server::start(&[]);
    let mut c = Conn::open(s.addr);
    c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    let interim = b"HTTP/1.1 100 Continue\r\n\r\n";
    let got = c.read_exact_raw(interim.len());
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(interim),
        "server must send exactly `100 Continue` before the body is sent"
    );
    c.send(b"hello");
    let r = c.read_response(false);
    assert_eq!(r.status, 200, "{}", r.raw_head);
    assert_eq!(r.body_str(), "hello");
}

#[test]
fn expect_100_continue_on_405_answers_directly() {
    let s = Server::start(&[]);
    let mut c = Conn::open(s.addr);
    c.send(b"POST /plaintext HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    let r = c.read_response(false);
    assert_eq!(
        r.status, 405,
        "expected a direct 405 without 100 Continue, got {:?}",
        r.raw_head
    );
}

#[test]
fn expect_100_continue_over_limit_is_413_without_100() {
    let s = Server::start(&["--max-body", "1000"]);
    let mut c = Conn::open(s.addr);
    c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5000\r\n\r\n");
    let r = c.read_response(false);
    assert_eq!(
        r.status, 413,
        "expected a direct 413 without 100 Continue, got {:?}",
        r.raw_head
    );
    assert!(r.connection_has("close"), "{}", r.raw_head);
    c.expect_eof();
}

#[test]
fn expect_unknown_is_417() {
    let s = Server::start(&[]);
    let mut c = Conn::open(s.addr);
    c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: something-else\r\nContent-Length: 5\r\n\r\n");
    let r = c.read_response(false);
    assert_eq!(r.status, 417, "{}", r.raw_head);
    r.assert_common();
}
