//! Large files: several slow clients downloading at once hold a small, fixed amount of server
//! memory each and all get the exact bytes; a file that shrinks or is replaced mid-response
//! closes that connection, and the server goes on serving everyone else.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{poll_until, pseudo_random, roundtrip, Server, TempDir};

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
    let fds_before = server.fd_count();
    let rss_before = server.rss_kib();

    // Every client asks for the file, reads the head, then stops reading.
    let downloads: Vec<_> = (0..CLIENTS).map(|_| start_download(&server, "/big.bin")).collect();
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
        poll_until(Duration::from_secs(10), || server.fd_count() <= fds_before),
        "descriptors: {} before, {} after",
        fds_before,
        server.fd_count()
    );
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
    assert_eq!(
        roundtrip(server.addr, b"GET /other.bin HTTP/1.1\r\nHost: t\r\n\r\n").status,
        404
    );
    server.assert_no_panic();
}
