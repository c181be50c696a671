//! Deadlines: idle keep-alive, slow heads (slowloris), stalled bodies. tokio-uring cannot cancel
//! a pending read, so ringd shuts the socket down from its per-worker sweeper; these tests check
//! that the client sees a clean close and that nothing (fds) is left behind.

mod common;

use std::time::{Duration, Instant};

use common::{Conn, Server};

const PLAINTEXT: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n";

#[test]
fn idle_keepalive_connection_is_closed_after_the_timeout() {
    let server = Server::start(&["--keepalive-timeout", "2"]);
    let mut c = Conn::open(server.addr);
    c.send(PLAINTEXT);
    assert_eq!(c.read_response(false).status, 200);
    let idle_since = Instant::now();
    // Closed by the server (read returns 0) well before the 10 s read timeout of `expect_eof`.
    c.expect_eof();
    // A whole second of slack: this only checks the close is the timeout, not an immediate one.
    assert!(
        idle_since.elapsed() >= Duration::from_secs(1),
        "closed long before the 2 s timeout"
    );
}

#[test]
fn keepalive_connection_stays_open_within_the_timeout() {
    let server = Server::start(&["--keepalive-timeout", "30"]);
    let mut c = Conn::open(server.addr);
    for _ in 0..3 {
        c.send(PLAINTEXT);
        assert_eq!(c.read_response(false).status, 200);
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn slow_head_is_cut_at_the_header_timeout() {
    let server = Server::start(&["--header-timeout", "1", "--keepalive-timeout", "60"]);
    let mut c = Conn::open(server.addr);
    c.send(b"GET /plaintext HTTP/1.1\r\nHost: t\r\n");
    c.expect_eof();
}

#[test]
fn stalled_body_is_cut_at_the_body_timeout() {
    let server = Server::start(&["--body-timeout", "1"]);
    let mut c = Conn::open(server.addr);
    c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nonly a part");
    c.expect_eof();
}

#[test]
fn many_timed_out_connections_leave_no_fds_behind() {
    let server = Server::start(&["--header-timeout", "1", "--keepalive-timeout", "1"]);
    // Warm up, then take the baseline.
    let mut c = Conn::open(server.addr);
    c.send(PLAINTEXT);
    assert_eq!(c.read_response(false).status, 200);
    drop(c);
    let baseline = server.fd_count();
    let mut conns = Vec::new();
    for i in 0..300 {
        let mut c = Conn::open(server.addr);
        if i % 2 == 0 {
            c.send(b"GET /plaintext HTTP/1.1\r\nHost: t\r\nX-Slow: ");
        }
        conns.push(c);
    }
    for c in conns.iter_mut() {
        c.expect_eof();
    }
    drop(conns);
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.fd_count() > baseline + 2 {
        assert!(
            Instant::now() < deadline,
            "fds did not return to the baseline: {} now, {baseline} before",
            server.fd_count()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut c = Conn::open(server.addr);
    c.send(PLAINTEXT);
    assert_eq!(c.read_response(false).status, 200);
    server.assert_no_panic();
}
