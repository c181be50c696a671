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

/// One round of `crowd` connections that all end by a timeout: silent ones (header timeout for
/// the first request), half-sent heads, idle keep-alive ones, and clients that never read a large
/// response (send timeout, with the write in flight when the socket is shut down).
fn time_out_a_crowd(server: &Server, crowd: usize, unread_responses: bool) {
    let mut conns = Vec::new();
    for i in 0..crowd {
        let mut c = Conn::open(server.addr);
        match i % 4 {
            0 => {}
            1 => c.send(b"GET /plaintext HTTP/1.1\r\nHost: t\r\nX-Slow: "),
            2 => {
                c.send(PLAINTEXT);
                assert_eq!(c.read_response(false).status, 200);
            }
            _ if unread_responses && i % 100 == 3 => {
                let body = vec![b'x'; 1 << 20];
                let head = format!(
                    "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                c.send(head.as_bytes());
                let _ = c.try_send(&body);
            }
            _ => {}
        }
        conns.push(c);
    }
    for (i, c) in conns.iter_mut().enumerate() {
        if unread_responses && i % 100 == 3 {
            // Its unread response fills the socket buffers: the server gives up on the send.
            continue;
        }
        c.expect_eof();
    }
}

#[test]
fn thousands_of_timed_out_connections_leave_no_fds_or_memory_behind() {
    // glibc may give freed memory back to the OS at any moment, which makes RSS a noisy
    // measure; with trimming off it is a high-water mark, and a round that reuses what the
    // previous one freed does not move it. Growth then means memory that was not given back.
    let no_trim = [(
        "GLIBC_TUNABLES",
        "glibc.malloc.trim_threshold=4294967295:glibc.malloc.mmap_threshold=33554432",
    )];
    // Each of the crowd's connections is a descriptor here and one in the server, which inherits
    // this process's limit: 3,000 of them need more than the 1024 a user gets by default. Raise
    // the soft limit; where the hard limit is lower, the crowd fits itself to it (less the
    // descriptors the processes and the other tests of this binary hold).
    let nofile = common::limits::raise_nofile(3000 + 1024);
    let crowd = 3000.min(nofile.saturating_sub(256) as usize);
    eprintln!("RLIMIT_NOFILE {nofile}: crowds of {crowd} connections");
    let server = Server::start_with_env(
        &[
            "--header-timeout",
            "1",
            "--keepalive-timeout",
            "1",
            "--send-timeout",
            "1",
            "--max-body",
            "2000000",
            "--admin",
            "127.0.0.1:0",
        ],
        &no_trim,
    );
    let mut c = Conn::open(server.addr);
    c.send(PLAINTEXT);
    assert_eq!(c.read_response(false).status, 200);
    drop(c);
    let baseline = server.fd_count();
    let wait_for_baseline = || {
        let deadline = Instant::now() + Duration::from_secs(30);
        while server.fd_count() > baseline + 2 {
            assert!(
                Instant::now() < deadline,
                "fds did not return to the baseline: {} now, {baseline} before",
                server.fd_count()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    // A first round with every kind (the allocator's high-water mark), then two without the
    // 1 MiB bodies: the many small connections must reuse memory round after round.
    time_out_a_crowd(&server, crowd, true);
    wait_for_baseline();
    time_out_a_crowd(&server, crowd, false);
    wait_for_baseline();
    let rss_after_second = server.rss_kib();
    time_out_a_crowd(&server, crowd, false);
    wait_for_baseline();
    let rss_after_third = server.rss_kib();
    assert!(
        rss_after_third <= rss_after_second + 4096,
        "RSS grew from {rss_after_second} KiB to {rss_after_third} KiB over a third round"
    );
    // And the unread responses once more, after which no registered buffer may be in use.
    time_out_a_crowd(&server, crowd, true);
    wait_for_baseline();
    // No registered buffer is left parked in a write that was cut off.
    let metrics = scrape(&server);
    assert!(
        metrics.contains("\nringd_fixed_buffers_in_use{worker=\"0\"} 0\n"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("ringd_connections_timed_out_total{worker=\"0\"} 0\n"),
        "{metrics}"
    );
    let mut c = Conn::open(server.addr);
    c.send(PLAINTEXT);
    assert_eq!(c.read_response(false).status, 200);
    server.assert_no_panic();
}

/// `GET /metrics` from the admin listener the server logged.
fn scrape(server: &Server) -> String {
    let log = server.log();
    let at = log.find("metrics on http://").expect("admin address logged") + "metrics on http://".len();
    let addr: String = log[at..].chars().take_while(|c| *c != '/').collect();
    let mut s = std::net::TcpStream::connect(addr.as_str()).unwrap();
    std::io::Write::write_all(&mut s, b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
    let mut out = String::new();
    std::io::Read::read_to_string(&mut s, &mut out).unwrap();
    out
}
