//! HTTP/2 attacks, each from a raw-frame client: the offender gets the right `GOAWAY` (or
//! `RST_STREAM`), its cost to the server stays bounded in memory, and the server keeps serving
//! everyone else (checked after each attack with a fresh connection).

mod common;

use std::time::{Duration, Instant};

use common::h2raw::*;
use common::*;

/// The server still answers a well-behaved client, on a new connection, at once.
fn still_serves(server: &Server) {
    still_serves_path(server, "/plaintext", b"Hello, World!");
}

fn still_serves_path(server: &Server, path: &str, want: &[u8]) {
    let mut c = Raw::open(server.addr);
    c.frame(HEADERS, END_HEADERS | END_STREAM, 1, &get(path));
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match c.read_frame(Duration::from_millis(500)) {
            Some((DATA, _, 1, body)) => {
                assert_eq!(body, want);
                return;
            }
            Some(_) => {}
            None => assert!(!c.closed(), "a well-behaved client's connection was closed"),
        }
    }
    panic!("a well-behaved client got no answer while the server was attacked");
}

fn start() -> Server {
    start_with(&[])
}

/// [`start`], with more arguments after its own.
fn start_with(extra: &[&str]) -> Server {
    let mut args = vec!["--h2c", "true", "--admin", "127.0.0.1:0", "--send-timeout", "2"];
    args.extend_from_slice(extra);
    Server::start(&args)
}

/// A server on a site of a large file (`/big.bin`, `len` bytes of `fill`) and a small one
/// (`/small.txt`, "small"); the directory lives as long as the server must.
fn start_on_big_file(name: &str, fill: u8, len: usize) -> (TempDir, Server) {
    let dir = TempDir::new(name);
    dir.write("site/big.bin", &vec![fill; len]);
    dir.write("site/small.txt", b"small");
    let root = dir.join("site");
    let server = start_with(&["--root", root.to_str().unwrap()]);
    (dir, server)
}

/// Memory the attack may cost the server, at most.
const RSS_BOUND_KIB: u64 = 32 * 1024;

#[test]
fn rapid_reset_gets_enhance_your_calm() {
    let server = start();
    let before = server.rss_kib();
    let mut c = Raw::open(server.addr);
    let frames = (0..5000u32).flat_map(|i| {
        let id = 1 + 2 * i;
        [
            Raw::encode(HEADERS, END_HEADERS | END_STREAM, id, &get("/plaintext")),
            Raw::encode(RST_STREAM, 0, id, &8u32.to_be_bytes()),
        ]
    });
    c.frames(frames);
    assert_eq!(c.goaway(Duration::from_secs(20)), Some(ENHANCE_YOUR_CALM));
    assert!(server.rss_kib() < before + RSS_BOUND_KIB);
    still_serves(&server);
    server.assert_no_panic();
}

#[test]
fn a_continuation_flood_is_cut() {
    let server = start();
    let before = server.rss_kib();
    let mut c = Raw::open(server.addr);
    c.frame(HEADERS, 0, 1, &get("/plaintext"));
    let junk = block(&[("x-junk", &"j".repeat(1000))]);
    let sent = c.frames((0..20_000).map(|_| Raw::encode(CONTINUATION, 0, 1, &junk)));
    let code = c.goaway(Duration::from_secs(20));
    assert!(
        matches!(code, Some(ENHANCE_YOUR_CALM | PROTOCOL_ERROR) | None),
        "GOAWAY {code:?} (the flood was {} on the wire)",
        if sent { "all" } else { "not all" }
    );
    assert!(
        server.rss_kib() < before + RSS_BOUND_KIB,
        "the server kept the flood's headers"
    );
    still_serves(&server);
}

#[test]
fn an_oversized_header_list_and_an_hpack_bomb_are_refused() {
    let server = start();
    let before = server.rss_kib();
    // One 4 KiB field into the dynamic table (literal with incremental indexing), then the
    // same field referenced by index thousands of times: 24 MiB decoded from 2 KiB sent.
    let mut c = Raw::open(server.addr);
    let mut b = get("/plaintext");
    b.push(0x40);
    hpack_string(&mut b, b"x-bomb");
    hpack_string(&mut b, "b".repeat(4000).as_bytes());
    for _ in 0..6000 {
        b.push(0x80 | 62);
    }
    for (i, piece) in b.chunks(16_000).enumerate() {
        let last = (i + 1) * 16_000 >= b.len();
        let kind = if i == 0 { HEADERS } else { CONTINUATION };
        let flags = if last { END_HEADERS } else { 0 } | if i == 0 { END_STREAM } else { 0 };
        c.frame(kind, flags, 1, piece);
    }
    // A 431 answer (HEADERS carrying the status), a stream reset, or a GOAWAY: never the
    // decoded list in memory.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut outcome = None;
    while Instant::now() < deadline && outcome.is_none() {
        match c.read_frame(Duration::from_millis(500)) {
            Some((HEADERS, _, 1, p)) if p.windows(3).any(|w| w == b"431") => outcome = Some("431"),
            Some((HEADERS, _, 1, p)) => panic!("the bomb was answered: {p:?}"),
            Some((RST_STREAM, _, 1, _)) => outcome = Some("RST_STREAM"),
            Some((GOAWAY, ..)) => outcome = Some("GOAWAY"),
            Some(_) => {}
            None if c.closed() => outcome = Some("closed"),
            None => {}
        }
    }
    assert!(outcome.is_some(), "the bomb got no answer");
    assert!(server.rss_kib() < before + RSS_BOUND_KIB);
    still_serves(&server);
}

#[test]
fn settings_and_ping_floods_get_enhance_your_calm() {
    let server = start();
    for kind in [SETTINGS, PING] {
        let before = server.metric("ringd_http2_floods_total");
        let mut c = Raw::open(server.addr);
        let payload: &[u8] = if kind == PING { &[7; 8] } else { &[] };
        c.frames((0..20_000).map(|_| Raw::encode(kind, 0, 0, payload)));
        assert_eq!(
            c.goaway(Duration::from_secs(20)),
            Some(ENHANCE_YOUR_CALM),
            "flood of type {kind}"
        );
        assert_eq!(server.metric("ringd_http2_floods_total"), before + 1.0);
        still_serves(&server);
    }
    // A client pinging now and then is not a flood.
    let mut c = Raw::open(server.addr);
    for _ in 0..20 {
        c.frame(PING, 0, 0, &[1; 8]);
    }
    c.frame(HEADERS, END_HEADERS | END_STREAM, 1, &get("/plaintext"));
    let mut answered = false;
    for _ in 0..50 {
        match c.read_frame(Duration::from_millis(500)) {
            Some((GOAWAY, ..)) => panic!("a few PINGs were taken for a flood"),
            Some((DATA, _, 1, _)) => {
                answered = true;
                break;
            }
            _ => {}
        }
    }
    assert!(answered);
}

#[test]
fn an_empty_data_flood_is_cut() {
    let server = start();
    let mut c = Raw::open(server.addr);
    let post = block(&[
        (":method", "POST"),
        (":scheme", "http"),
        (":path", "/echo"),
        (":authority", "t"),
    ]);
    c.frame(HEADERS, END_HEADERS, 1, &post);
    c.frames((0..20_000).map(|_| Raw::encode(DATA, 0, 1, &[])));
    assert_eq!(c.goaway(Duration::from_secs(20)), Some(ENHANCE_YOUR_CALM));
    still_serves(&server);
}

#[test]
fn a_window_update_past_the_maximum_is_a_flow_control_error() {
    let server = start();
    let mut c = Raw::open(server.addr);
    c.frame(WINDOW_UPDATE, 0, 0, &0x7fff_ffffu32.to_be_bytes());
    assert_eq!(c.goaway(Duration::from_secs(20)), Some(FLOW_CONTROL_ERROR));
    // On a stream: that stream is reset, the connection lives on.
    let mut c = Raw::open(server.addr);
    let post = block(&[
        (":method", "POST"),
        (":scheme", "http"),
        (":path", "/echo"),
        (":authority", "t"),
    ]);
    c.frame(HEADERS, END_HEADERS, 1, &post);
    c.frame(WINDOW_UPDATE, 0, 1, &0x7fff_ffffu32.to_be_bytes());
    let mut reset = None;
    for _ in 0..40 {
        match c.read_frame(Duration::from_millis(500)) {
            Some((RST_STREAM, _, 1, p)) => {
                reset = Some(u32::from_be_bytes([p[0], p[1], p[2], p[3]]));
                break;
            }
            Some((GOAWAY, _, _, p)) => {
                reset = Some(u32::from_be_bytes([p[4], p[5], p[6], p[7]]));
                break;
            }
            _ => {}
        }
    }
    assert_eq!(reset, Some(FLOW_CONTROL_ERROR));
    still_serves(&server);
}

#[test]
fn stream_ids_the_client_may_not_use_are_protocol_errors() {
    let server = start();
    // An even stream id is the server's.
    let mut c = Raw::open(server.addr);
    c.frame(HEADERS, END_HEADERS | END_STREAM, 2, &get("/plaintext"));
    assert_eq!(c.goaway(Duration::from_secs(20)), Some(PROTOCOL_ERROR));
    // Stream ids only grow.
    let mut c = Raw::open(server.addr);
    c.frame(HEADERS, END_HEADERS | END_STREAM, 5, &get("/plaintext"));
    c.frame(HEADERS, END_HEADERS | END_STREAM, 3, &get("/plaintext"));
    assert_eq!(c.goaway(Duration::from_secs(20)), Some(PROTOCOL_ERROR));
    still_serves(&server);
}

/// A client that announces a zero window and never opens it holds a response the server cannot
/// send: the send timeout (2 s here) cuts it, as it cuts an HTTP/1.1 client that stops reading.
#[test]
fn a_zero_window_stall_is_cut_by_the_send_timeout() {
    let (_dir, server) = start_on_big_file("h2stall", 7, 1 << 20);
    let mut c = Raw::open(server.addr);
    // SETTINGS_INITIAL_WINDOW_SIZE = 0.
    c.frame(SETTINGS, 0, 0, &[0, 4, 0, 0, 0, 0]);
    c.frame(HEADERS, END_HEADERS | END_STREAM, 1, &get("/big.bin"));
    let started = Instant::now();
    // The sweeper shuts the socket down: the connection ends (a GOAWAY may or may not make it
    // out first), not before the send timeout and not long after it.
    c.goaway(Duration::from_secs(30));
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "cut before the send timeout"
    );
    // Counted by the worker's sweeper just after it shuts the socket down, which this client
    // may see first (a busy machine preempts the worker in between): waited for, not read once.
    assert!(
        poll_until(Duration::from_secs(10), || server
            .metric("ringd_connections_timed_out_total")
            >= 1.0),
        "the stalled connection was not counted as timed out"
    );
    still_serves_path(&server, "/small.txt", b"small");
}

/// Many streams of large files to a client that reads nothing: the server's memory stays
/// bounded (each stream sends only what the windows allow, a file is read a piece at a time)
/// and the send timeout ends the connection; everyone else is served meanwhile.
#[test]
fn a_slow_reader_with_many_streams_is_bounded_and_cut() {
    let (_dir, server) = start_on_big_file("h2slow", 9, 4 << 20);
    let before = server.rss_kib();
    let mut c = Raw::open(server.addr);
    // The client opens the connection window wide, then never reads.
    c.frame(WINDOW_UPDATE, 0, 0, &0x7fff_0000u32.to_be_bytes());
    c.frames((0..100u32).map(|i| Raw::encode(HEADERS, END_HEADERS | END_STREAM, 1 + 2 * i, &get("/big.bin"))));
    still_serves_path(&server, "/small.txt", b"small");
    assert!(
        server.rss_kib() < before + RSS_BOUND_KIB,
        "RSS {} KiB after {before} KiB",
        server.rss_kib()
    );
    // The connection is cut: the server stops holding it (its slot goes, counted as timed out).
    let deadline = Instant::now() + Duration::from_secs(30);
    while server.metric("ringd_connections_timed_out_total") < 1.0 {
        assert!(Instant::now() < deadline, "the stalled connection was never cut");
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(c);
    still_serves_path(&server, "/small.txt", b"small");
    server.assert_no_panic();
}
