//! Connection management: persistent connections, `Connection: close`,
//! HTTP/1.0 semantics, --max-requests-per-conn, pipelining and requests
//! split across many small writes.

mod common;

use common::*;
use std::io::Write;

const HELLO: &str = "Hello, World!";
const JSON: &str = r#"{"message":"Hello, World!"}"#;

#[test]
fn http11_keeps_connection_by_default() {
    let s = Server::start(&[]);
    let mut c = Conn::open(s.addr);
    for i in 0..20 {
        let path = if i % 2 == 0 { "/plaintext" } else { "/json" };
        c.send(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
        let r = c.read_response(false);
        assert_eq!(r.status, 200, "request #{i}: {}", r.raw_head);
        assert!(!r.connection_has("close"), "request #{i}: {}", r.raw_head);
        assert_eq!(r.body_str(), if i % 2 == 0 { HELLO } else { JSON });
    }
}

#[test]
fn connection_close_request_closes() {
    let s = Server::start(&[]);
    let mut c = Conn::open(s.addr);
    c.send(b"GET /plaintext HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let r = c.read_response(false);
    assert_eq!(r.status, 200, "{}", r.raw_head);
    assert_eq!(r.body_str(), HELLO);
    assert!(r.connection_has("close"), "{}", r.raw_head);
    c.expect_eof();
}

#[test]
fn connection_close_token_in_list_closes() {
    let s = Server::start(&[]);
    let mut c = Conn::open(s.addr);
    c.send(b"GET /json HTTP/1.1\r\nHost: x\r\nConnection: X-Other, Close\r\nX-Other: 1\r\n\r\n");
    let r = c.read_response(false);
    assert_eq!(r.status, 200, "{}", r.raw_head);
    assert!(r.connection_has("close"), "{}", r.raw_head);
    c.expect_eof();
}

#[test]
fn http10_closes_by_default() {
    let s = Server::start(&[]);
    let mut c = Conn::open(s.addr);
    c.send(b"GET /plaintext HTTP/1.0\r\nHost: x\r\n\r\n");
    let r = c.read_response(false);
    assert_eq!(r.status, 200, "{}", r.raw_head);
    assert_eq!(r.body_str(), HELLO);
    assert!(
        !r.connection_has("keep-alive"),
        "HTTP/1.0 without keep-alive must not be kept: {}",
        r.raw_head
    );
    c.expect_eof();
}

#[test]
fn http10_keep_alive_stays_open() {
    let s = Server::start(&[]);
    let mut c = Conn::open(s.addr);
    for i in 0..3 {
        c.send(b"GET /plaintext HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n");
        let r = c.read_response(false);
        assert_eq!(r.status, 200, "request #{i}: {}", r.raw_head);
        assert_eq!(r.body_str(), HELLO);
        assert!(
            r.connection_has("keep-alive"),
            "HTTP/1.0 keep-alive response must say `Connection: keep-alive`: {}",
            r.raw_head
        );
        assert!(
            r.header("content-length").is_some(),
            "a kept HTTP/1.0 response needs Content-Length"
        );
    }
    // And a final 1.0 request without keep-alive closes it.
    c.send(b"GET /json HTTP/1.0\r\n\r\n");
    let r = c.read_response(false);
    assert_eq!(r.status, 200, "{}", r.raw_head);
    assert_eq!(r.body_str(), JSON);
    c.expect_eof();
}

#[test]
fn max_requests_per_conn() {
    let s = Server::start(&["--max-requests-per-conn", "3"]);
    let mut c = Conn::open(s.addr);
    for i in 1..=3 {
        c.send(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n");
        let r = c.read_response(false);
        assert_eq!(r.status, 200, "request #{i}: {}", r.raw_head);
        assert_eq!(r.body_str(), HELLO);
        if i < 3 {
            assert!(!r.connection_has("close"), "request #{i}: {}", r.raw_head);
        } else {
            assert!(
                r.connection_has("close"),
                "3rd response must carry Connection: close: {}",
                r.raw_head
            );
        }
    }
    c.expect_eof();
}

#[test]
fn max_requests_per_conn_with_pipelining() {
    let s = Server::start(&["--max-requests-per-conn", "3"]);
    let mut c = Conn::open(s.addr);
    // Send 3 at once (no extra request, so the server's close is clean).
    c.send(&b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n".repeat(3));
    for i in 1..=3 {
        let r = c.read_response(false);
        assert_eq!(r.status, 200, "request #{i}: {}", r.raw_head);
        assert_eq!(r.connection_has("close"), i == 3, "request #{i}: {}", r.raw_head);
    }
    c.expect_eof();
}

#[test]
fn pipelining_16_requests_in_one_write() {
    let s = Server::start(&[]);
    let mut paths = Vec::new();
    for i in 0..16 {
        paths.push(match i {
            8 => "/does-not-exist",
            i if i % 2 == 0 => "/plaintext",
            _ => "/json",
        });
    }
    let mut raw = Vec::new();
    for p in &paths {
        raw.extend_from_slice(format!("GET {p} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
    }
    let mut c = Conn::open(s.addr);
    c.stream.write_all(&raw).unwrap();
    for (i, p) in paths.iter().enumerate() {
        let r = c.read_response(false);
        match *p {
            "/plaintext" => {
                assert_eq!(r.status, 200, "#{i} {p}: {}", r.raw_head);
                assert_eq!(r.body_str(), HELLO, "#{i} {p}");
            }
            "/json" => {
                assert_eq!(r.status, 200, "#{i} {p}: {}", r.raw_head);
                assert_eq!(r.body_str(), JSON, "#{i} {p}");
            }
            _ => assert_eq!(r.status, 404, "#{i} {p}: {}", r.raw_head),
        }
        r.assert_common();
    }
    // Still usable afterwards.
    c.send(b"GET /plaintext HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let r = c.read_response(false);
    assert_eq!(r.status, 200);
    c.expect_eof();
}

#[test]
fn pipelining_mixed_methods_and_bodies() {
    let s = Server::start(&[]);
    let raw = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc\
HEAD /plaintext HTTP/1.1\r\nHost: x\r\n\r\n\
POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nde\r\n0\r\n\r\n\
DELETE /plaintext HTTP/1.1\r\nHost: x\r\n\r\n\
GET /json HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut c = Conn::open(s.addr);
    c.send(raw);
    let r = c.read_response(false);
    assert_eq!((r.status, r.body_str().as_str()), (200, "abc"), "{}", r.raw_head);
    let r = c.read_response(true);
    assert_eq!(r.status, 200, "{}", r.raw_head);
    assert_eq!(r.header("content-length"), Some("13"));
    let r = c.read_response(false);
    assert_eq!((r.status, r.body_str().as_str()), (200, "de"), "{}", r.raw_head);
    let r = c.read_response(false);
    assert_eq!(r.status, 405, "{}", r.raw_head);
    let r = c.read_response(false);
    assert_eq!((r.status, r.body_str().as_str()), (200, JSON), "{}", r.raw_head);
}

#[test]
fn request_split_byte_by_byte() {
    let s = Server::start(&[]);
    let mut c = Conn::open(s.addr);
    let req = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/x-bytes\r\nContent-Length: 7\r\n\r\nbyte-by";
    for b in req.iter() {
        c.stream.write_all(std::slice::from_ref(b)).unwrap();
        c.stream.flush().unwrap();
    }
    let r = c.read_response(false);
    assert_eq!(r.status, 200, "{}", r.raw_head);
    assert_eq!(r.body_str(), "byte-by");
    assert_eq!(r.header("content-type"), Some("text/x-bytes"));

    let req = b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n";
    for b in req.iter() {
        c.stream.write_all(std::slice::from_ref(b)).unwrap();
    }
    let r = c.read_response(false);
    assert_eq!(r.status, 200, "{}", r.raw_head);
    assert_eq!(r.body_str(), HELLO);
}

#[test]
fn chunked_request_split_byte_by_byte() {
    let s = Server::start(&[]);
    let mut c = Conn::open(s.addr);
    let req = b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\nabcd\r\n3\r\nefg\r\n0\r\nT: 1\r\n\r\n";
    for b in req.iter() {
        c.stream.write_all(std::slice::from_ref(b)).unwrap();
    }
    let r = c.read_response(false);
    assert_eq!(r.status, 200, "{}", r.raw_head);
    assert_eq!(r.body_str(), "abcdefg");
}

#[test]
fn many_sequential_connections() {
    let s = Server::start(&[]);
    for i in 0..200 {
        let r = roundtrip(
            s.addr,
            b"GET /plaintext HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(r.status, 200, "connection #{i}: {}", r.raw_head);
        assert_eq!(r.body_str(), HELLO);
    }
    s.assert_no_panic();
}
