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

/// Pipelined requests whose answers are far more than the socket buffers hold, from a client
/// that starts reading late: the server's sends are cut short by the full socket and must go on
/// with the rest, in order, as the client reads. Every answer arrives, whole.
#[test]
fn a_pipelined_flood_to_a_client_that_reads_late_arrives_whole() {
    const N: usize = 100_000;
    let s = Server::start(&["--max-requests-per-conn", "1000000"]);
    let stream = s.connect();
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let mut batch = Vec::new();
        for i in 0..N {
            let close = if i + 1 == N { "Connection: close\r\n" } else { "" };
            batch.extend_from_slice(format!("GET /plaintext HTTP/1.1\r\nHost: x\r\n{close}\r\n").as_bytes());
        }
        writer.write_all(&batch).unwrap();
    });
    // The answers fill the socket buffers meanwhile.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let mut reader = stream;
    let got = read_to_close(&mut reader);
    sender.join().unwrap();
    let ok = got.windows(17).filter(|w| w == b"HTTP/1.1 200 OK\r\n").count();
    let bodies = got.windows(HELLO.len()).filter(|w| *w == HELLO.as_bytes()).count();
    assert_eq!((ok, bodies), (N, N), "{} bytes", got.len());
    assert!(got.ends_with(HELLO.as_bytes()));
    s.assert_no_panic();
}

/// Clients that send a flood of pipelined requests, read none of the answers and reset the
/// connection while the server is still sending them: every connection's descriptor is closed,
/// and the server goes on serving.
#[test]
fn clients_that_reset_with_answers_in_flight_leave_no_descriptor() {
    let s = Server::start(&[]);
    let mut c = Conn::open(s.addr);
    c.send(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.read_response(false).status, 200);
    drop(c);
    let baseline = s.fd_count();
    let request = b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n".repeat(20_000);
    for _ in 0..10 {
        let stream = s.connect();
        let mut writer = stream.try_clone().unwrap();
        let request = request.clone();
        // The writer blocks once the server stops reading (its answers fill the socket).
        let sender = std::thread::spawn(move || {
            let _ = writer.write_all(&request);
        });
        std::thread::sleep(std::time::Duration::from_millis(100));
        // Unread answers in the receive queue: closing resets the connection.
        let _ = stream.shutdown(std::net::Shutdown::Both);
        sender.join().unwrap();
        drop(stream);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while s.fd_count() > baseline {
        assert!(
            std::time::Instant::now() < deadline,
            "descriptors did not return to {baseline}: {} now",
            s.fd_count()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mut c = Conn::open(s.addr);
    c.send(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.read_response(false).status, 200);
    s.assert_no_panic();
}
