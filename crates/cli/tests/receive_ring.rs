//! The receive ring (`buffers.receive`): idle plain connections wait for their next request
//! holding no read buffer, and the kernel picks one from the worker's ring when it arrives.
//! These tests check what a client could notice: every request is answered whatever the ring's
//! size, when it runs empty, when a request is larger than a ring buffer, and with it off.

mod common;

use common::*;

const HELLO: &str = "Hello, World!";

/// Keep-alive requests on `conns` connections, `rounds` times each, every answer checked.
fn keepalive_rounds(s: &Server, conns: usize, rounds: usize) {
    let mut cs: Vec<Conn> = (0..conns).map(|_| Conn::open(s.addr)).collect();
    for round in 0..rounds {
        for c in &mut cs {
            c.send(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n");
        }
        for (i, c) in cs.iter_mut().enumerate() {
            let r = c.read_response(false);
            assert_eq!(r.status, 200, "round {round}, connection {i}: {}", r.raw_head);
            assert_eq!(r.body_str(), HELLO, "round {round}, connection {i}");
        }
    }
}

#[test]
fn the_ring_is_on_by_default_and_serves_keepalive_connections() {
    let s = Server::start(&["--admin", "127.0.0.1:0"]);
    assert_eq!(s.metric("ringd_receive_buffers"), 512.0);
    keepalive_rounds(&s, 20, 10);
    assert_eq!(s.metric("ringd_receive_ring_empty_total"), 0.0);
    s.assert_no_panic();
}

#[test]
fn with_the_ring_off_connections_keep_their_own_buffer_and_are_served() {
    let s = Server::start(&["--admin", "127.0.0.1:0", "--receive-buffers", "0"]);
    assert_eq!(s.metric("ringd_receive_buffers"), 0.0);
    keepalive_rounds(&s, 20, 10);
    s.assert_no_panic();
}

/// A ring of one buffer and many requests arriving at once: the receives that find it empty
/// read into their connection's own buffer, and every request is still answered. The server is
/// stopped while the requests are sent, so they all arrive before it receives any of them.
#[test]
fn receives_that_find_the_ring_empty_fall_back_and_lose_nothing() {
    let s = Server::start(&["--admin", "127.0.0.1:0", "--receive-buffers", "1"]);
    let mut cs: Vec<Conn> = (0..32).map(|_| Conn::open(s.addr)).collect();
    // Each connection is accepted and answered once, so it now waits on the ring.
    for c in &mut cs {
        c.send(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(c.read_response(false).status, 200);
    }
    for round in 0..3 {
        s.signal("STOP");
        for c in &mut cs {
            c.send(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n");
        }
        s.signal("CONT");
        for (i, c) in cs.iter_mut().enumerate() {
            let r = c.read_response(false);
            assert_eq!(r.status, 200, "round {round}, connection {i}: {}", r.raw_head);
            assert_eq!(r.body_str(), HELLO, "round {round}, connection {i}");
        }
    }
    assert!(
        s.metric("ringd_receive_ring_empty_total") >= 1.0,
        "32 requests arriving together never found a one-buffer ring empty"
    );
    // The connections are still good, and the one buffer went back to the ring each time.
    keepalive_rounds(&s, 4, 5);
    s.assert_no_panic();
}

/// A head larger than a ring buffer (2 KiB) arrives in a ring buffer and then plain reads; a
/// pipelined batch larger than one is answered in full and in order.
#[test]
fn requests_larger_than_a_ring_buffer_are_answered() {
    let s = Server::start(&[]);
    let mut c = Conn::open(s.addr);
    let pad = "a".repeat(6000);
    for i in 0..3 {
        c.send(format!("GET /plaintext HTTP/1.1\r\nHost: x\r\nX-Pad: {pad}\r\n\r\n").as_bytes());
        let r = c.read_response(false);
        assert_eq!(r.status, 200, "large head #{i}: {}", r.raw_head);
        assert_eq!(r.body_str(), HELLO);
    }
    let mut batch = Vec::new();
    for i in 0..200 {
        let path = if i % 2 == 0 { "/plaintext" } else { "/json" };
        batch.extend_from_slice(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
    }
    assert!(batch.len() > 2048 * 3);
    c.send(&batch);
    for i in 0..200 {
        let r = c.read_response(false);
        assert_eq!(r.status, 200, "pipelined #{i}: {}", r.raw_head);
        let json = r.body_str().starts_with('{');
        assert_eq!(
            json,
            i % 2 == 1,
            "pipelined #{i} answered out of order: {}",
            r.body_str()
        );
    }
    s.assert_no_panic();
}

#[test]
fn a_ring_size_that_is_not_a_power_of_two_is_refused_at_startup() {
    let err = Server::try_start(&["--receive-buffers", "500"])
        .err()
        .expect("500 buffers accepted");
    assert!(err.contains("buffers.receive"), "{err}");
}
