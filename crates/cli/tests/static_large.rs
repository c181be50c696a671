//! Large files: several slow clients downloading at once hold a small, fixed amount of server
//! memory each and all get the exact bytes; a file that shrinks or is replaced mid-response
//! closes that connection, and the server goes on serving everyone else.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{kernel, poll_until, pseudo_random, roundtrip, Server, TempDir};

/// Sends a GET and reads the head; returns the stream, the announced length and the body bytes
/// that came with the head.
fn start_download(server: &Server, path: &str) -> (TcpStream, usize, Vec<u8>) {
    let mut s = server.connect();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 16384];
    let head_end = loop {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed before the head");
        got.extend_from_slice(&buf[..n]);
        if let Some(i) = common::find(&got, b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&got[..head_end]).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .expect("Content-Length")
        .trim()
        .parse()
        .unwrap();
    (s, len, got.split_off(head_end))
}

/// Reads until `body` holds `len` bytes or the server closes; returns the body.
fn finish_download(mut s: TcpStream, len: usize, mut body: Vec<u8>) -> Vec<u8> {
    let mut buf = vec![0u8; 1 << 16];
    while body.len() < len {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&buf[..n]),
        }
    }
    body
}

/// A whole download: the body, which must be as long as the head announced.
fn download(server: &Server, path: &str) -> Vec<u8> {
    let (s, len, first) = start_download(server, path);
    let body = finish_download(s, len, first);
    assert_eq!(body.len(), len, "{path}: cut short");
    body
}

/// The server's open descriptors whose link starts with `kind` (`socket:`, `pipe:`).
fn descriptors(server: &Server, kind: &str) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", server.pid()))
        .unwrap()
        .flatten()
        .filter(|e| std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy().starts_with(kind)))
        .count()
}

#[test]
fn slow_clients_of_a_large_file_hold_bounded_memory_and_get_exact_bytes() {
    const SIZE: usize = 64 << 20;
    const CLIENTS: usize = 8;
    let dir = TempDir::new("large-slow");
    let data = pseudo_random(SIZE, 7);
    dir.write("big.bin", &data);
    let server = Server::start(&["--root", dir.path_str()]);
    // Warm up: one small request, so that the baseline includes a worker's normal memory.
    assert_eq!(
        roundtrip(server.addr, b"GET /nope HTTP/1.1\r\nHost: t\r\n\r\n").status,
        404
    );
    let rss_before = server.rss_kib();

    // Every client asks for the file, reads the head, then stops reading.
    let downloads: Vec<_> = (0..CLIENTS).map(|_| start_download(&server, "/big.bin")).collect();
    let clients: Vec<_> = downloads.iter().map(|(s, _, _)| s.local_addr().unwrap()).collect();
    for (_, len, _) in &downloads {
        assert_eq!(*len, SIZE);
    }
    // The server fills the socket buffers and must then wait; were it to buffer the file, it
    // would read all of it from the page cache within this time (8 × 64 MiB).
    std::thread::sleep(Duration::from_secs(1));
    let rss_stalled = server.rss_kib();
    let growth = rss_stalled.saturating_sub(rss_before);
    eprintln!("RSS {rss_before} KiB before, {rss_stalled} KiB with {CLIENTS} stalled downloads");
    assert!(
        growth < 16 * 1024,
        "RSS grew by {growth} KiB with {CLIENTS} stalled downloads of a {} MiB file",
        SIZE >> 20
    );

    // Now they all read to the end, at once, and get exactly the file.
    let threads: Vec<_> = downloads
        .into_iter()
        .map(|(s, len, body)| std::thread::spawn(move || finish_download(s, len, body)))
        .collect();
    for t in threads {
        let body = t.join().unwrap();
        assert_eq!(body.len(), SIZE);
        assert!(body == data, "a download's bytes differ from the file");
    }
    assert!(
        poll_until(Duration::from_secs(10), || server.connections_from(&clients) == 0),
        "the server still holds {} of the finished downloads' connections",
        server.connections_from(&clients)
    );
    // Pipes used for splicing are kept for reuse, a bounded number of them.
    let pipes = descriptors(&server, "pipe:");
    assert!(pipes <= 2 * 16, "{pipes} pipe ends left open");
    server.assert_no_panic();
}

#[test]
fn a_file_that_shrinks_or_goes_mid_response_closes_only_that_connection() {
    const SIZE: usize = 32 << 20;
    let dir = TempDir::new("large-shrink");
    let data = pseudo_random(SIZE, 9);
    dir.write("big.bin", &data);
    dir.write("other.bin", &data);
    dir.write("small.txt", b"still here\n");
    let server = Server::start(&["--root", dir.path_str()]);

    // Shrunk in place while a client is mid-download: the server cannot send the announced
    // length, so it closes the connection early.
    let (s, len, body) = start_download(&server, "/big.bin");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join("big.bin"))
        .unwrap();
    file.set_len(1 << 20).unwrap();
    let body = finish_download(s, len, body);
    assert!(body.len() < SIZE, "got all {SIZE} bytes of a file cut to 1 MiB");
    assert!(
        data.starts_with(&body[..body.len().min(1 << 20)]),
        "the bytes sent were not the file's"
    );

    // Deleted mid-download: the open file lives on, so the client gets it whole.
    let (s, len, body) = start_download(&server, "/other.bin");
    std::fs::remove_file(dir.join("other.bin")).unwrap();
    let body = finish_download(s, len, body);
    assert!(body == data, "a deleted file's download differs");

    // Everyone else is served as before.
    let r = roundtrip(server.addr, b"GET /small.txt HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.body, b"still here\n");
    // The deleted file is gone for new requests once the cache revalidates (within a second).
    assert!(
        poll_until(Duration::from_secs(10), || {
            roundtrip(server.addr, b"GET /other.bin HTTP/1.1\r\nHost: t\r\n\r\n").status == 404
        }),
        "a deleted file is still served"
    );
    server.assert_no_panic();
}

/// Reads the rest of a download and checks it against `data` as it comes, keeping nothing.
fn verify_download(mut s: TcpStream, first: Vec<u8>, data: &[u8]) -> Result<(), String> {
    let mut at = first.len();
    if data[..at] != first[..] {
        return Err("the first bytes differ".into());
    }
    let mut buf = vec![0u8; 1 << 16];
    while at < data.len() {
        match s.read(&mut buf) {
            Ok(0) => return Err(format!("closed after {at} bytes")),
            Err(e) => return Err(format!("{e} after {at} bytes")),
            Ok(n) => {
                if data.get(at..at + n) != Some(&buf[..n]) {
                    return Err(format!("bytes {at}..{} differ", at + n));
                }
                at += n;
            }
        }
    }
    Ok(())
}

#[test]
fn more_stalled_downloads_than_splice_slots_are_copied_instead_and_all_complete() {
    // One worker splices at most 64 sends at once (sendfile.rs); these 72 all stall at once.
    const SIZE: usize = 32 << 20;
    const CLIENTS: usize = 72;
    let dir = TempDir::new("large-many");
    let data = std::sync::Arc::new(pseudo_random(SIZE, 11));
    dir.write("big.bin", &data);
    // Every download spliced (or copied), however much of the file is in memory.
    let server = Server::start(&[
        "--root",
        dir.path_str(),
        "--admin",
        "127.0.0.1:0",
        "--sendfile",
        "false",
    ]);
    assert_eq!(
        roundtrip(server.addr, b"GET /nope HTTP/1.1\r\nHost: t\r\n\r\n").status,
        404
    );
    let rss_before = server.rss_kib();
    let downloads: Vec<_> = (0..CLIENTS).map(|_| start_download(&server, "/big.bin")).collect();
    std::thread::sleep(Duration::from_secs(1));
    let growth = server.rss_kib().saturating_sub(rss_before);
    eprintln!("RSS grew by {growth} KiB with {CLIENTS} stalled downloads");
    assert!(growth < 32 * 1024, "RSS grew by {growth} KiB");
    let threads: Vec<_> = downloads
        .into_iter()
        .map(|(s, _, first)| {
            let data = data.clone();
            std::thread::spawn(move || verify_download(s, first, &data))
        })
        .collect();
    for t in threads {
        t.join().unwrap().unwrap();
    }
    let spliced = server.metric("ringd_file_sends_total{way=\"splice\"}");
    let copied = server.metric("ringd_file_sends_total{way=\"copy\"}");
    assert_eq!(spliced + copied, CLIENTS as f64, "every download spliced or copied");
    assert!(spliced > 0.0, "no splice");
    assert!(copied > 0.0, "no copy");
    assert!(server.metric("ringd_io_uring_submissions_total{op=\"splice\"}") > 0.0);
    assert!(server.metric("ringd_io_uring_submissions_total{op=\"write\"}") > 0.0);
    assert_eq!(server.metric("ringd_file_sends_total{way=\"sendfile\"}"), 0.0);
    server.assert_no_panic();
}

/// A range wholly in the page cache goes out with `sendfile` on the worker's thread; one that
/// is not is spliced through io_uring (whose threads wait for the disk instead of the worker).
/// Once a file has been read it is in memory, and the next send of it uses `sendfile`. Where
/// `cachestat` is missing (before Linux 6.5, or refused by a container's filter) residency
/// cannot be known, and every range is spliced: the test expects the way this kernel allows.
#[test]
fn a_file_in_the_page_cache_is_sent_with_sendfile_and_one_on_disk_is_spliced() {
    const SIZE: usize = 3 << 20;
    let cachestat = kernel::cachestat();
    eprintln!("cachestat available: {cachestat}");
    let dir = TempDir::new("large-ways");
    let hot = pseudo_random(SIZE, 21);
    let cold = pseudo_random(SIZE, 22);
    dir.write("hot.bin", &hot);
    let evicted = dir.write_evicted("cold.bin", &cold);
    let server = Server::start(&["--root", dir.path_str(), "--admin", "127.0.0.1:0"]);
    let way = |w: &str| server.metric(&format!("ringd_file_sends_total{{way=\"{w}\"}}"));
    // The sends so far by way, as this kernel allows: (sendfile, splice).
    let mut expected = (0.0, 0.0);
    let mut sent = |resident: bool| {
        if cachestat && resident {
            expected.0 += 1.0;
        } else {
            expected.1 += 1.0;
        }
        expected
    };
    let get = |path: &str| {
        let body = download(&server, path);
        assert_eq!(body.len(), SIZE);
        body
    };
    assert!(get("/hot.bin") == hot, "hot.bin arrived altered");
    assert_eq!((way("sendfile"), way("splice")), sent(true), "hot.bin");
    assert!(get("/cold.bin") == cold, "cold.bin arrived altered");
    assert_eq!((way("sendfile"), way("splice")), sent(!evicted), "cold.bin");
    if evicted {
        assert!(server.metric("ringd_io_uring_submissions_total{op=\"splice\"}") >= 1.0);
    }
    // Read in full once, it is in memory now.
    assert!(get("/cold.bin") == cold, "cold.bin arrived altered the second time");
    assert_eq!((way("sendfile"), way("splice")), sent(true), "cold.bin again");
    // Ranges take the same ways.
    let mut s = server.connect();
    s.write_all(b"GET /hot.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=1000-1999999\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    let at = common::find(&got, b"\r\n\r\n").unwrap() + 4;
    assert!(
        got.starts_with(b"HTTP/1.1 206"),
        "{}",
        String::from_utf8_lossy(&got[..at])
    );
    assert!(got[at..] == hot[1000..2_000_000], "the range arrived altered");
    assert_eq!((way("sendfile"), way("splice")), sent(true), "a range of hot.bin");
    // A file only partly in memory: its first 8 MiB (the stretch checked at a time) go out
    // with `sendfile`, the rest is spliced (the send counts as spliced, the way of its last
    // bytes); the bytes arrive intact either way.
    let part = pseudo_random(20 << 20, 23);
    if dir.write_evicted("part.bin", &part) {
        let mut f = std::fs::File::open(dir.path.join("part.bin")).unwrap();
        // Exactly those 8 MiB: no read-ahead past them.
        rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::Random).unwrap();
        let mut head = vec![0u8; 8 << 20];
        f.read_exact(&mut head).unwrap();
        let splices = server.metric("ringd_io_uring_submissions_total{op=\"splice\"}");
        assert!(download(&server, "/part.bin") == part, "part.bin arrived altered");
        assert_eq!((way("sendfile"), way("splice")), sent(false), "part.bin");
        assert!(server.metric("ringd_io_uring_submissions_total{op=\"splice\"}") > splices);
    }
    assert_eq!(way("copy"), 0.0);
    server.assert_no_panic();
}

/// Clients that vanish in the middle of a download, one way or the other (a reset while the
/// socket buffer is full, a close after part of the body), cost the server only those
/// connections: no panic, no descriptor or connection left behind, and the next client gets
/// the whole file. Both ways of sending a file are exercised.
#[test]
fn clients_that_vanish_mid_download_leave_nothing_behind() {
    const SIZE: usize = 16 << 20;
    let dir = TempDir::new("large-vanish");
    let data = pseudo_random(SIZE, 31);
    dir.write("big.bin", &data);
    for sendfile in ["true", "false"] {
        let server = Server::start(&["--root", dir.path_str(), "--sendfile", sendfile]);
        let pipes_before = descriptors(&server, "pipe:");
        // The first download caches the open file (a descriptor, not a socket, that it keeps).
        assert!(download(&server, "/big.bin") == data, "sendfile={sendfile}: altered");
        let mut vanished = Vec::new();
        for i in 0..20 {
            let (mut s, _, _) = start_download(&server, "/big.bin");
            vanished.push(s.local_addr().unwrap());
            if i % 2 == 0 {
                // Unread bytes at close make the kernel send a reset.
                let mut buf = vec![0u8; 1 << 16];
                let _ = s.read(&mut buf);
            }
            drop(s);
        }
        assert!(
            poll_until(Duration::from_secs(30), || server.connections_from(&vanished) == 0),
            "sendfile={sendfile}: {} connections of vanished clients were not closed",
            server.connections_from(&vanished)
        );
        assert!(
            download(&server, "/big.bin") == data,
            "sendfile={sendfile}: altered after the resets"
        );
        // A worker keeps at most 16 idle pipes (two descriptors each) for later splices.
        let pipes = descriptors(&server, "pipe:");
        assert!(
            pipes <= pipes_before + 2 * 16,
            "{pipes} pipe descriptors, {pipes_before} at start"
        );
        server.assert_no_panic();
    }
}

#[test]
fn a_stalled_download_is_cut_off_by_the_send_timeout_and_does_not_hold_up_exit() {
    // In the page cache: `sendfile` fills the socket, and the connection waits in a poll.
    stalled_download(true);
}

#[test]
fn a_stalled_spliced_download_is_cut_off_by_the_send_timeout_and_does_not_hold_up_exit() {
    // The splice into the full socket waits in the kernel, on an io-wq thread.
    stalled_download(false);
}

fn stalled_download(sendfile: bool) {
    const SIZE: usize = 64 << 20;
    let dir = TempDir::new("large-stall");
    dir.write("big.bin", &pseudo_random(SIZE, 13));
    let mut server = Server::start(&[
        "--sendfile",
        if sendfile { "true" } else { "false" },
        "--root",
        dir.path_str(),
        "--send-timeout",
        "1",
        "--drain-timeout",
        "2",
        "--admin",
        "127.0.0.1:0",
    ]);
    // Never reads past the head: the send into the full socket waits until the send timeout.
    let (s, len, first) = start_download(&server, "/big.bin");
    // The server closes its end once the send timeout passes (the sweeper checks each second).
    // Only this connection is watched: the server's other sockets (listeners, and whatever
    // another program may have connected to its port) say nothing about it.
    let client = s.local_addr().unwrap();
    assert!(
        poll_until(Duration::from_secs(30), || server.connections_from(&[client]) == 0),
        "the stalled connection was not closed"
    );
    let body = finish_download(s, len, first).len();
    assert!(body < SIZE, "the whole file arrived to a client that stalled");
    let way = |w: &str| server.metric(&format!("ringd_file_sends_total{{way=\"{w}\"}}"));
    // The file was just written, so it is in the page cache: sendfile, where cachestat can say so.
    if sendfile && kernel::cachestat() {
        assert_eq!((way("sendfile"), way("splice")), (1.0, 0.0));
        assert!(
            server.metric("ringd_io_uring_submissions_total{op=\"poll\"}") >= 1.0,
            "no wait for room"
        );
    } else {
        assert_eq!((way("sendfile"), way("splice")), (0.0, 1.0));
    }
    // Another stalled download when the server is told to stop: it exits once the drain
    // timeout runs out, with the splice still waiting in the kernel.
    let (_stalled, _, _) = start_download(&server, "/big.bin");
    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(20));
    assert!(status.success(), "{status:?}");
}

/// The keep-alive timeout runs from the end of a response, not from its request: a download
/// that outlasts the timeout (the client stalls while the server's send waits on it) leaves the
/// connection ready for the next request.
#[test]
fn a_download_longer_than_the_keepalive_timeout_keeps_its_connection() {
    const SIZE: usize = 48 << 20; // more than the socket buffers and the pipe hold
    let dir = TempDir::new("large-keepalive");
    let data = pseudo_random(SIZE, 11);
    dir.write("big.bin", &data);
    dir.write("small.txt", b"small\n");
    let server = Server::start(&["--root", dir.path_str(), "--keepalive-timeout", "3"]);
    let (mut s, len, mut body) = start_download(&server, "/big.bin");
    assert_eq!(len, SIZE);
    // The send waits on this client for longer than the keep-alive timeout.
    std::thread::sleep(Duration::from_secs(5));
    let mut buf = vec![0u8; 1 << 16];
    while body.len() < len {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed after {} of {len} bytes", body.len());
        body.extend_from_slice(&buf[..n]);
    }
    assert!(body == data, "the file arrived altered");
    // Past a sweep of the server's timeouts (once a second) but well inside the 3 s that start
    // when the response ended: the connection must still answer.
    std::thread::sleep(Duration::from_millis(1500));
    s.write_all(b"GET /small.txt HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let mut got = Vec::new();
    while common::find(&got, b"small\n").is_none() {
        let n = s.read(&mut buf).unwrap_or(0);
        assert!(
            n > 0,
            "the connection was closed before its keep-alive timeout: {:?}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    assert!(got.starts_with(b"HTTP/1.1 200"), "{:?}", String::from_utf8_lossy(&got));
}
