//! ringd on a kernel without the newer features it uses when they are there. Each is made
//! unavailable the way an older kernel, or a container's seccomp filter, makes it unavailable
//! (`common::seccomp`), on the real ringd, which must then take its other way and still serve
//! everything correctly:
//! - `cachestat(2)` (Linux 6.5) answers `ENOSYS`: no file range can be known to be in the page
//!   cache, so none is sent with `sendfile` on the worker's thread; every one is spliced;
//! - `IORING_REGISTER_PBUF_RING` (5.19) answers `EINVAL`: no receive ring; each connection reads
//!   into a buffer of its own, and the log says once how to get the ring;
//! - `IORING_SETUP_COOP_TASKRUN` (5.19) and `SINGLE_ISSUER` (6.0) make `io_uring_setup` answer
//!   `EINVAL`: each worker's ring is made again without them.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::seccomp::{Filter, SETUP_COOP_TASKRUN, SETUP_SINGLE_ISSUER};
use common::{poll_until, pseudo_random, roundtrip, Conn, Server, TempDir};

/// `GET path` on a fresh connection: the status and the body.
fn get(server: &Server, path: &str) -> (u16, Vec<u8>) {
    let r = roundtrip(
        server.addr,
        format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes(),
    );
    (r.status, r.body)
}

fn file_sends(server: &Server, way: &str) -> f64 {
    server.metric(&format!("ringd_file_sends_total{{way=\"{way}\"}}"))
}

#[test]
fn without_cachestat_every_file_range_is_spliced_and_arrives_whole() {
    let dir = TempDir::new("no-cachestat");
    let big = pseudo_random(3 << 20, 41);
    dir.write("big.bin", &big);
    dir.write("small.txt", b"small\n");
    let server = Filter::new()
        .without_cachestat()
        .start(&["--root", dir.path_str(), "--admin", "127.0.0.1:0"]);
    // After the first download the file is in the page cache: with cachestat, the next ones
    // would go out with sendfile. Without it ringd cannot know, and splices every time.
    for round in 0..3 {
        let (status, body) = get(&server, "/big.bin");
        assert_eq!(status, 200, "round {round}");
        assert!(body == big, "round {round}: big.bin arrived altered");
    }
    let mut c = Conn::open(server.addr);
    c.send(b"GET /big.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=1000-1999999\r\n\r\n");
    let r = c.read_response(false);
    assert_eq!(r.status, 206, "{}", r.raw_head);
    assert!(r.body == big[1000..2_000_000], "the range arrived altered");
    // Small files come from the worker's memory cache, not through either way.
    assert_eq!(get(&server, "/small.txt"), (200, b"small\n".to_vec()));
    assert_eq!(file_sends(&server, "sendfile"), 0.0);
    assert_eq!(file_sends(&server, "splice"), 4.0);
    assert_eq!(file_sends(&server, "copy"), 0.0);
    assert!(server.metric("ringd_io_uring_submissions_total{op=\"splice\"}") >= 4.0);
    server.assert_no_panic();
}

/// A filter may refuse `cachestat` with `EPERM` rather than `ENOSYS` (Docker's profile does for
/// calls it blocks), which the kernel also answers for a file this process may not write:
/// ringd tells the two apart on a file of its own, and here splices, as without the call.
#[test]
fn cachestat_refused_with_eperm_by_a_filter_is_taken_as_missing() {
    let dir = TempDir::new("cachestat-eperm");
    let big = pseudo_random(1 << 20, 43);
    dir.write("big.bin", &big);
    let server = Filter::new().deny(common::seccomp::CACHESTAT, libc::EPERM).start(&[
        "--root",
        dir.path_str(),
        "--admin",
        "127.0.0.1:0",
    ]);
    for round in 0..2 {
        let (status, body) = get(&server, "/big.bin");
        assert_eq!(status, 200, "round {round}");
        assert!(body == big, "round {round}: big.bin arrived altered");
    }
    assert_eq!(file_sends(&server, "sendfile"), 0.0);
    assert_eq!(file_sends(&server, "splice"), 2.0);
    server.assert_no_panic();
}

#[test]
fn without_cachestat_a_stalled_download_is_cut_off_by_the_send_timeout() {
    const SIZE: usize = 32 << 20; // more than the socket buffers and the pipe hold
    let dir = TempDir::new("no-cachestat-stall");
    dir.write("big.bin", &pseudo_random(SIZE, 43));
    let mut server = Filter::new().without_cachestat().start(&[
        "--root",
        dir.path_str(),
        "--send-timeout",
        "1",
        "--admin",
        "127.0.0.1:0",
    ]);
    let mut s = server.connect();
    s.write_all(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let mut head = [0u8; 1024];
    assert!(s.read(&mut head).unwrap() > 0);
    let client = s.local_addr().unwrap();
    // Never read again: the splice into the full socket waits until the send timeout shuts the
    // socket down, and the server lets go of the connection.
    assert!(
        poll_until(Duration::from_secs(30), || server.connections_from(&[client]) == 0),
        "the stalled connection was not closed"
    );
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(rest.len() < SIZE, "the whole file arrived to a client that stalled");
    assert_eq!(file_sends(&server, "sendfile"), 0.0);
    assert_eq!(file_sends(&server, "splice"), 1.0);
    assert!(server.metric("ringd_connections_timed_out_total") >= 1.0);
    // And the server is still there for everyone else, and stops when told.
    assert_eq!(get(&server, "/nope").0, 404);
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(30)).success());
    server.assert_no_panic();
}

#[test]
fn without_provided_buffer_rings_each_connection_reads_into_its_own_buffer() {
    let server = Filter::new()
        .without_provided_buffer_rings()
        .start(&["--workers", "2", "--admin", "127.0.0.1:0"]);
    // Said once (by the first worker), with what to do about it.
    let warnings: Vec<String> = server
        .log()
        .lines()
        .filter(|l| l.contains("cannot register the receive-buffer ring"))
        .map(str::to_owned)
        .collect();
    assert_eq!(warnings.len(), 1, "{}", server.log());
    assert!(warnings[0].contains("5.19"), "{}", warnings[0]);
    assert_eq!(server.metric("ringd_receive_buffers"), 0.0);
    // Many connections kept alive at once, each with requests that arrive whole, in pieces and
    // pipelined, and bodies larger than a read buffer.
    let mut conns: Vec<Conn> = (0..100).map(|_| Conn::open(server.addr)).collect();
    for round in 0..3 {
        for (i, c) in conns.iter_mut().enumerate() {
            let body = pseudo_random(1 + (i * 997 + round * 31) % 20_000, (i + round) as u64);
            let mut req = format!(
                "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .into_bytes();
            req.extend_from_slice(&body);
            req.extend_from_slice(b"GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n");
            let (first, second) = req.split_at(req.len() / 3);
            c.send(first);
            c.send(second);
            let r = c.read_response(false);
            assert_eq!(r.status, 200, "round {round}, connection {i}: {}", r.raw_head);
            assert!(r.body == body, "round {round}, connection {i}: echo differs");
            let r = c.read_response(false);
            assert_eq!(r.body_str(), "Hello, World!", "round {round}, connection {i}");
        }
    }
    drop(conns);
    assert_eq!(server.metric("ringd_receive_ring_empty_total"), 0.0);
    server.assert_no_panic();
}

#[test]
fn without_coop_taskrun_and_single_issuer_each_ring_is_made_without_them() {
    let dir = TempDir::new("no-coop");
    let decisions = dir.join("setup.log");
    let server = Filter::new()
        .deny_setup_flags(SETUP_COOP_TASKRUN | SETUP_SINGLE_ISSUER, libc::EINVAL, &decisions)
        .start(&["--workers", "2"]);
    for _ in 0..20 {
        assert_eq!(get(&server, "/plaintext"), (200, b"Hello, World!".to_vec()));
    }
    // Each worker asked for the flags, was refused, and made its ring without them.
    let log = std::fs::read_to_string(&decisions).unwrap();
    let refused = log.lines().filter(|l| l.ends_with("-> errno 22")).count();
    let allowed: Vec<&str> = log.lines().filter(|l| l.ends_with("-> allowed")).collect();
    assert_eq!(refused, 2, "{log}");
    assert_eq!(allowed.len(), 2, "{log}");
    for line in allowed {
        let flags = line
            .strip_prefix("setup flags=0x")
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|hex| u32::from_str_radix(hex, 16).ok())
            .unwrap_or_else(|| panic!("unexpected line {line:?}"));
        assert_eq!(flags & (SETUP_COOP_TASKRUN | SETUP_SINGLE_ISSUER), 0, "{log}");
    }
    server.assert_no_panic();
}

/// All three missing at once, as on a Linux 5.15 kernel: static files small and large, ranges,
/// conditional and HEAD requests, a chunked body, keep-alive, metrics, and a clean exit.
#[test]
fn without_all_three_everything_is_served() {
    let dir = TempDir::new("no-newer-features");
    let big = pseudo_random(5 << 20, 47);
    dir.write("big.bin", &big);
    dir.write("index.html", b"<!doctype html><title>t</title>\n");
    let decisions = dir.join("setup.log");
    let mut server = Filter::new()
        .without_cachestat()
        .without_provided_buffer_rings()
        .deny_setup_flags(SETUP_COOP_TASKRUN | SETUP_SINGLE_ISSUER, libc::EINVAL, &decisions)
        .start(&["--root", dir.path_str(), "--workers", "2", "--admin", "127.0.0.1:0"]);
    let (status, body) = get(&server, "/");
    assert_eq!(
        (status, body.as_slice()),
        (200, &b"<!doctype html><title>t</title>\n"[..])
    );
    let mut c = Conn::open(server.addr);
    c.send(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = c.read_response(false);
    assert!(r.body == big, "big.bin arrived altered");
    let etag = r.header("etag").expect("ETag").to_owned();
    c.send(format!("GET /big.bin HTTP/1.1\r\nHost: t\r\nIf-None-Match: {etag}\r\n\r\n").as_bytes());
    assert_eq!(c.read_response(false).status, 304);
    c.send(b"GET /big.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=-100000\r\n\r\n");
    let r = c.read_response(false);
    assert_eq!(r.status, 206, "{}", r.raw_head);
    assert!(r.body == big[big.len() - 100_000..], "the suffix range arrived altered");
    c.send(b"HEAD /big.bin HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = c.read_response(true);
    assert_eq!(r.header("content-length"), Some(big.len().to_string().as_str()));
    // A chunked body the server must read through (and refuse: files take no POST).
    c.send(b"POST /big.bin HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
    assert_eq!(c.read_response(false).status, 405);
    drop(c);
    assert_eq!(server.metric("ringd_file_sends_total{way=\"sendfile\"}"), 0.0);
    assert!(server.metric("ringd_file_sends_total{way=\"splice\"}") >= 2.0);
    assert_eq!(server.metric("ringd_receive_buffers"), 0.0);
    let log = std::fs::read_to_string(&decisions).unwrap();
    assert_eq!(log.lines().filter(|l| l.ends_with("-> errno 22")).count(), 2, "{log}");
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(30)).success());
    server.assert_no_panic();
}
