//! The receive ring (`buffers.receive`): idle plain connections wait for their next request
//! holding no read buffer, and the kernel picks one from the worker's ring when it arrives.
//! These tests check what a client could notice: every request is answered whatever the ring's
//! size, when it runs empty, when a request is larger than a ring buffer, and with it off. On a
//! kernel without provided-buffer rings (before 5.19, or where a filter refuses them) ringd runs
//! without one: the tests then check it reports none, and that every request is still answered.

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
    let expected = if kernel::provided_buffer_rings() { 512.0 } else { 0.0 };
    assert_eq!(s.metric("ringd_receive_buffers"), expected);
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
    if kernel::provided_buffer_rings() {
        assert!(
            s.metric("ringd_receive_ring_empty_total") >= 1.0,
            "32 requests arriving together never found a one-buffer ring empty"
        );
    } else {
        assert_eq!(s.metric("ringd_receive_buffers"), 0.0);
    }
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

/// A receive that holds whole requests and the start of the next: the whole ones are answered
/// from the ring buffer, and the start of the next waits (outside the ring) for its rest. The
/// first answer is read before the rest is sent, so the rest arrives in a receive of its own.
#[test]
fn a_batch_that_ends_mid_request_is_completed_by_the_next_receive() {
    let s = Server::start(&[]);
    let mut c = Conn::open(s.addr);
    let second = "GET /json HTTP/1.1\r\nHost: x\r\nX-Pad: 0123456789\r\n\r\n";
    for cut in [1, 10, 20, second.len() - 1] {
        let mut first = b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
        first.extend_from_slice(&second.as_bytes()[..cut]);
        c.send(&first);
        let r = c.read_response(false);
        assert_eq!(r.status, 200, "cut at {cut}: {}", r.raw_head);
        assert_eq!(r.body_str(), HELLO, "cut at {cut}");
        c.send(&second.as_bytes()[cut..]);
        let r = c.read_response(false);
        assert_eq!(r.status, 200, "cut at {cut}: {}", r.raw_head);
        assert!(r.body_str().starts_with('{'), "cut at {cut}: {}", r.body_str());
    }
    // The connection goes on waiting on the ring.
    c.send(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.read_response(false).body_str(), HELLO);
    s.assert_no_panic();
}

#[test]
fn a_ring_size_that_is_not_a_power_of_two_is_refused_at_startup() {
    let err = Server::try_start(&["--receive-buffers", "500"])
        .err()
        .expect("500 buffers accepted");
    assert!(err.contains("buffers.receive"), "{err}");
}

/// A connection the server closes (the client asked to, or the per-connection limit) while the
/// client keeps its side open must still close (the client sees the end of the stream) and free
/// its descriptor.
#[test]
fn connections_the_server_closes_are_closed_and_freed() {
    let s = Server::start(&["--max-requests-per-conn", "2"]);
    let mut clients = Vec::new();
    for i in 0..100 {
        let mut c = Conn::open(s.addr);
        clients.push(c.stream.local_addr().unwrap());
        if i % 2 == 0 {
            c.send(b"GET /plaintext HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            assert_eq!(c.read_response(false).status, 200);
        } else {
            for _ in 0..2 {
                c.send(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n");
                assert_eq!(c.read_response(false).status, 200);
            }
        }
        // Open on our side until the server's close (and its cancelled receive) ends it.
        c.expect_eof();
    }
    // The server's descriptors for these connections, not its whole table: a worker may open
    // other descriptors of its own meanwhile (and counting them made this test fail at times).
    assert!(
        poll_until(std::time::Duration::from_secs(10), || s.connections_from(&clients) == 0),
        "the server still holds {} of the connections it closed",
        s.connections_from(&clients)
    );
    s.assert_no_panic();
}

/// A body larger than the whole ring arrives intact, in ring buffers while there are some and
/// in plain reads when the ring runs empty.
#[test]
fn a_body_larger_than_the_ring_arrives_intact() {
    let s = Server::start(&["--admin", "127.0.0.1:0", "--receive-buffers", "4"]);
    let body: Vec<u8> = (0..900 * 1024u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut c = Conn::open(s.addr);
    for round in 0..2 {
        let head = format!(
            "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        c.send(head.as_bytes());
        c.send(&body);
        let r = c.read_response(false);
        assert_eq!(r.status, 200, "round {round}: {}", r.raw_head);
        assert!(
            r.body == body,
            "round {round}: the echoed body differs ({} bytes back)",
            r.body.len()
        );
    }
    // The connection and the ring still work for ordinary requests.
    keepalive_rounds(&s, 8, 3);
    s.assert_no_panic();
}

/// A client that pipelines without reading its answers ends up waiting in a send, holding no
/// ring buffer: the others are still answered, and when the send timeout cuts it off the ring
/// has all its buffers.
#[test]
fn a_client_that_never_reads_cannot_stop_the_others() {
    let s = Server::start(&[
        "--admin",
        "127.0.0.1:0",
        "--receive-buffers",
        "8",
        "--send-timeout",
        "2",
        "--max-requests-per-conn",
        "1000000",
    ]);
    let mut hog = Conn::open(s.addr);
    let batch = b"GET /json HTTP/1.1\r\nHost: x\r\n\r\n".repeat(2000);
    // Writes until the socket buffers on both sides are full; never reads.
    hog.stream
        .set_write_timeout(Some(std::time::Duration::from_millis(500)))
        .unwrap();
    for _ in 0..200 {
        if hog.try_send(&batch).is_err() {
            break;
        }
    }
    keepalive_rounds(&s, 16, 5);
    // The hog is cut off once its answers have waited the send timeout.
    assert!(
        poll_until(std::time::Duration::from_secs(20), || s
            .metric("ringd_connections_timed_out_total")
            >= 1.0),
        "the connection that never read was not timed out"
    );
    drop(hog);
    assert!(
        poll_until(std::time::Duration::from_secs(10), || s
            .metric("ringd_connections_open")
            == 0.0),
        "connections still open after the hog and the others left"
    );
    // The ring has its buffers back: with the server stopped, 8 requests arrive at once and each
    // is received into a ring buffer.
    let mut cs: Vec<Conn> = (0..8).map(|_| Conn::open(s.addr)).collect();
    for c in &mut cs {
        c.send(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(c.read_response(false).status, 200);
    }
    let empty_before = s.metric("ringd_receive_ring_empty_total");
    s.signal("STOP");
    for c in &mut cs {
        c.send(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n");
    }
    s.signal("CONT");
    for c in &mut cs {
        assert_eq!(c.read_response(false).status, 200);
    }
    assert_eq!(
        s.metric("ringd_receive_ring_empty_total"),
        empty_before,
        "8 receives found an 8-buffer ring empty: buffers were not given back"
    );
    s.assert_no_panic();
}
