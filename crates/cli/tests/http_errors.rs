//! Malformed requests (RFC 9112 / 9110): each must get the right status, a
//! small text body, `Connection: close`, and then a clean close. Also the
//! size limits (414/431/413) and request-target handling.

mod common;

use common::*;

// ---------------------------------------------------------------------------
// Host
// ---------------------------------------------------------------------------

#[test]
fn http11_without_host_is_400() {
    let s = Server::start(&[]);
    expect_error(s.addr, b"GET /plaintext HTTP/1.1\r\n\r\n", 400);
}

#[test]
fn two_host_headers_is_400() {
    let s = Server::start(&[]);
    expect_error(s.addr, b"GET /plaintext HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
}

#[test]
fn http10_without_host_is_fine() {
    let s = Server::start(&[]);
    let mut c = Conn::open(s.addr);
    c.send(b"GET /plaintext HTTP/1.0\r\n\r\n");
    let r = c.read_response(false);
    assert_eq!(r.status, 200, "{}", r.raw_head);
    r.assert_common();
    assert_eq!(r.body_str(), "Hello, World!");
}

// ---------------------------------------------------------------------------
// Header syntax
// ---------------------------------------------------------------------------

#[test]
fn whitespace_before_colon_is_400() {
    let s = Server::start(&[]);
    expect_error(s.addr, b"GET /plaintext HTTP/1.1\r\nHost : x\r\n\r\n", 400);
    expect_error(s.addr, b"GET /plaintext HTTP/1.1\r\nHost: x\r\nX-Foo\t: y\r\n\r\n", 400);
}

#[test]
fn obs_fold_is_400() {
    let s = Server::start(&[]);
    expect_error(
        s.addr,
        b"GET /plaintext HTTP/1.1\r\nHost: x\r\nX-Long: part one\r\n part two\r\n\r\n",
        400,
    );
    expect_error(
        s.addr,
        b"GET /plaintext HTTP/1.1\r\nHost: x\r\nX-Long: part one\r\n\tpart two\r\n\r\n",
        400,
    );
}

#[test]
fn nul_in_header_value_is_400() {
    let s = Server::start(&[]);
    expect_error(
        s.addr,
        b"GET /plaintext HTTP/1.1\r\nHost: x\r\nX-Bad: a\x00b\r\n\r\n",
        400,
    );
}

#[test]
fn bare_cr_in_header_value_is_400() {
    let s = Server::start(&[]);
    expect_error(
        s.addr,
        b"GET /plaintext HTTP/1.1\r\nHost: x\r\nX-Bad: a\rb\r\n\r\n",
        400,
    );
}

#[test]
fn header_line_without_colon_is_400() {
    let s = Server::start(&[]);
    expect_error(
        s.addr,
        b"GET /plaintext HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n",
        400,
    );
}

// ---------------------------------------------------------------------------
// Request line / version
// ---------------------------------------------------------------------------

#[test]
fn unsupported_versions_are_505() {
    let s = Server::start(&[]);
    expect_error(s.addr, b"GET /plaintext HTTP/2.0\r\nHost: x\r\n\r\n", 505);
    expect_error(s.addr, b"GET /plaintext HTTP/1.2\r\nHost: x\r\n\r\n", 505);
}

#[test]
fn garbage_version_is_400() {
    let s = Server::start(&[]);
    expect_error(s.addr, b"GET /plaintext HTTP/x.y\r\nHost: x\r\n\r\n", 400);
    expect_error(s.addr, b"GET /plaintext FTP/1.1\r\nHost: x\r\n\r\n", 400);
}

#[test]
fn garbage_request_line_is_400() {
    let s = Server::start(&[]);
    expect_error(s.addr, b"this is not http\r\n\r\n", 400);
    expect_error(s.addr, b"GET\r\nHost: x\r\n\r\n", 400);
    expect_error(s.addr, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400);
}

#[test]
fn request_line_over_default_limit_is_414() {
    let s = Server::start(&[]);
    let target = format!("/{}", "a".repeat(9000));
    let req = format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n");
    expect_error(s.addr, req.as_bytes(), 414);
}

#[test]
fn request_line_under_default_limit_is_not_414() {
    let s = Server::start(&[]);
    let target = format!("/{}", "a".repeat(7000));
    let req = format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = roundtrip(s.addr, req.as_bytes());
    assert_eq!(r.status, 404, "{}", r.raw_head);
}

#[test]
fn max_request_line_flag() {
    let s = Server::start(&["--max-request-line", "100"]);
    let target = format!("/{}", "b".repeat(199));
    let req = format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n");
    expect_error(s.addr, req.as_bytes(), 414);
    // A short line still works.
    let r = roundtrip(s.addr, b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 200, "{}", r.raw_head);
}

// ---------------------------------------------------------------------------
// Header limits
// ---------------------------------------------------------------------------

#[test]
fn headers_over_32k_is_431() {
    let s = Server::start(&[]);
    let mut req = String::from("GET /plaintext HTTP/1.1\r\nHost: x\r\n");
    for i in 0..40 {
        req.push_str(&format!("X-Fill-{i}: {}\r\n", "v".repeat(1000)));
    }
    req.push_str("\r\n");
    expect_error(s.addr, req.as_bytes(), 431);
}

#[test]
fn one_huge_header_is_431() {
    let s = Server::start(&[]);
    let req = format!(
        "GET /plaintext HTTP/1.1\r\nHost: x\r\nX-Huge: {}\r\n\r\n",
        "h".repeat(40_000)
    );
    expect_error(s.addr, req.as_bytes(), 431);
}

#[test]
fn more_than_100_headers_is_431() {
    let s = Server::start(&[]);
    let mut req = String::from("GET /plaintext HTTP/1.1\r\nHost: x\r\n");
    for i in 0..101 {
        req.push_str(&format!("X-H{i}: v\r\n"));
    }
    req.push_str("\r\n");
    expect_error(s.addr, req.as_bytes(), 431);

    // 99 headers (+Host = 100) are fine.
    let mut req = String::from("GET /plaintext HTTP/1.1\r\nHost: x\r\n");
    for i in 0..99 {
        req.push_str(&format!("X-H{i}: v\r\n"));
    }
    req.push_str("\r\n");
    let r = roundtrip(s.addr, req.as_bytes());
    assert_eq!(r.status, 200, "100 headers must be accepted: {}", r.raw_head);
}

#[test]
fn max_headers_flag() {
    let s = Server::start(&["--max-headers", "10"]);
    let mut req = String::from("GET /plaintext HTTP/1.1\r\nHost: x\r\n");
    for i in 0..10 {
        req.push_str(&format!("X-H{i}: v\r\n"));
    }
    req.push_str("\r\n");
    expect_error(s.addr, req.as_bytes(), 431);

    let mut req = String::from("GET /plaintext HTTP/1.1\r\nHost: x\r\n");
    for i in 0..9 {
        req.push_str(&format!("X-H{i}: v\r\n"));
    }
    req.push_str("\r\n");
    let r = roundtrip(s.addr, req.as_bytes());
    assert_eq!(r.status, 200, "10 headers must be accepted: {}", r.raw_head);
}

#[test]
fn max_header_bytes_flag() {
    let s = Server::start(&["--max-header-bytes", "1024", "--max-request-line", "512"]);
    let req = format!(
        "GET /plaintext HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "z".repeat(2000)
    );
    expect_error(s.addr, req.as_bytes(), 431);
    let r = roundtrip(s.addr, b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 200, "{}", r.raw_head);
}

// ---------------------------------------------------------------------------
// Body limit
// ---------------------------------------------------------------------------

#[test]
fn content_length_over_default_max_body_is_413_without_body() {
    let s = Server::start(&[]);
    // No body bytes are sent: the server must answer from the head alone.
    expect_error(
        s.addr,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1048577\r\n\r\n",
        413,
    );
}

#[test]
fn content_length_at_default_max_body_is_accepted() {
    let s = Server::start(&[]);
    let body = pseudo_random(1 << 20, 5);
    let r = common::echo_in_pieces(s.addr, &body, body.len());
    assert_eq!(r.status, 200, "{}", r.raw_head);
    assert!(r.body == body, "echoed 1 MiB body differs");
}

#[test]
fn max_body_flag_content_length() {
    let s = Server::start(&["--max-body", "100"]);
    expect_error(
        s.addr,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n",
        413,
    );
    let req = format!(
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{}",
        "q".repeat(100)
    );
    let r = roundtrip(s.addr, req.as_bytes());
    assert_eq!(r.status, 200, "{}", r.raw_head);
    assert_eq!(r.body.len(), 100);
}

#[test]
fn max_body_flag_chunked_is_413() {
    let s = Server::start(&["--max-body", "1000"]);
    let mut req = b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..4 {
        req.extend_from_slice(b"190\r\n");
        req.extend_from_slice(&[b'c'; 0x190]);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    expect_error(s.addr, &req, 413);

    // Under the limit chunked is fine.
    let r = roundtrip(
        s.addr,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    );
    assert_eq!(r.status, 200, "{}", r.raw_head);
    assert_eq!(r.body_str(), "abc");
}

#[test]
fn default_max_body_chunked_is_413() {
    let s = Server::start(&[]);
    let mut req = b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    let chunk = vec![b'd'; 65536];
    for _ in 0..17 {
        req.extend_from_slice(b"10000\r\n");
        req.extend_from_slice(&chunk);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let mut c = Conn::open(s.addr);
    let mut w = c.stream.try_clone().unwrap();
    let t = std::thread::spawn(move || {
        use std::io::Write;
        // The server may close early; ignore write errors.
        let _ = w.write_all(&req);
    });
    let r = c.read_response(false);
    assert_eq!(r.status, 413, "{}", r.raw_head);
    assert!(r.connection_has("close"), "{}", r.raw_head);
    t.join().unwrap();
}

// ---------------------------------------------------------------------------
// Request target
// ---------------------------------------------------------------------------

#[test]
fn asterisk_with_get_is_400() {
    let s = Server::start(&[]);
    expect_error(s.addr, b"GET * HTTP/1.1\r\nHost: x\r\n\r\n", 400);
}

#[test]
fn absolute_form_is_accepted() {
    let s = Server::start(&[]);
    let r = roundtrip(
        s.addr,
        b"GET http://example.com/plaintext HTTP/1.1\r\nHost: example.com\r\n\r\n",
    );
    assert_eq!(r.status, 200, "{}", r.raw_head);
    assert_eq!(r.body_str(), "Hello, World!");
}

#[test]
fn dotdot_above_root_is_400() {
    let s = Server::start(&[]);
    expect_error(s.addr, b"GET /../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n", 400);
}

#[test]
fn nul_in_path_is_400() {
    let s = Server::start(&[]);
    expect_error(s.addr, b"GET /plain%00text HTTP/1.1\r\nHost: x\r\n\r\n", 400);
}

#[test]
fn percent_decoding_and_slash_merging() {
    let s = Server::start(&[]);
    let mut c = Conn::open(s.addr);
    for target in ["/plain%74ext", "/%70laintext", "//plaintext", "/plaintext?x=1&y=2"] {
        c.send(format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
        let r = c.read_response(false);
        assert_eq!(r.status, 200, "GET {target}: {}", r.raw_head);
        assert_eq!(r.body_str(), "Hello, World!", "GET {target}");
    }
}
