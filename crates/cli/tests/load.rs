//! Robustness and load: a barrage of bad inputs must not crash the server or
//! leak file descriptors; concurrent clients across several workers all get
//! correct answers; wrk against several workers sees no errors.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::io::AsRawFd;
use std::process::Command;
use std::time::Duration;

const HELLO: &str = "Hello, World!";
const JSON: &str = r#"{"message":"Hello, World!"}"#;

/// Close with an RST: SO_LINGER {on, 0} then drop.
fn reset(s: TcpStream) {
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &l as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "setsockopt(SO_LINGER)");
    drop(s);
}

/// Read until EOF/error/timeout, discarding; never fails.
fn drain_quietly(s: &mut TcpStream) {
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut buf = [0u8; 8192];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
    }
}

fn one_bad_connection(addr: SocketAddr, i: usize) {
    let mut s = connect(addr);
    match i % 8 {
        // Random bytes, then read whatever comes back.
        0 => {
            let _ = s.write_all(&pseudo_random(1 + (i * 37) % 4000, i as u64 + 1));
            let _ = s.shutdown(std::net::Shutdown::Write);
            drain_quietly(&mut s);
        }
        // Truncated request, then close.
        1 => {
            let _ = s.write_all(b"GET /plaintext HTTP/1.1\r\nHo");
            drop(s);
        }
        // Huge headers.
        2 => {
            let mut req = b"GET /plaintext HTTP/1.1\r\nHost: x\r\n".to_vec();
            for k in 0..50 {
                req.extend_from_slice(format!("X-{k}: {}\r\n", "y".repeat(1000)).as_bytes());
            }
            req.extend_from_slice(b"\r\n");
            let _ = s.write_all(&req);
            drain_quietly(&mut s);
        }
        // Connect and close.
        3 => drop(s),
        // Reset right after connect.
        4 => reset(s),
        // Reset in the middle of a request body.
        5 => {
            let _ = s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\npartial");
            reset(s);
        }
        // Truncated chunked body, then half-close.
        6 => {
            let _ = s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc");
            let _ = s.shutdown(std::net::Shutdown::Write);
            drain_quietly(&mut s);
        }
        // Pipelined good requests, then reset before reading responses.
        _ => {
            let _ = s.write_all(&b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n".repeat(20));
            reset(s);
        }
    }
}

#[test]
fn barrage_of_bad_inputs() {
    let s = Server::start(&[]);
    // Warm up so lazily created fds (if any) are in the baseline.
    let r = roundtrip(
        s.addr,
        b"GET /plaintext HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    let settled = |s: &Server, limit: usize| poll_until(Duration::from_secs(10), || s.fd_count() <= limit);
    let baseline = s.fd_count();

    let addr = s.addr;
    let threads: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..50 {
                    one_bad_connection(addr, t * 50 + i);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }

    // Still answers a good request.
    let r = roundtrip(s.addr, b"GET /json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 200, "{}", r.raw_head);
    assert_eq!(r.body_str(), JSON);

    let ok = settled(&s, baseline + 3);
    assert!(
        ok,
        "fd count did not return near baseline {baseline}: now {} ({:?})",
        s.fd_count(),
        std::fs::read_dir(format!("/proc/{}/fd", s.pid()))
            .unwrap()
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .collect::<Vec<_>>()
    );
    s.assert_no_panic();
}

/// Counts exactly these connections in the server (by their client ports), not its descriptors
/// in total: those also hold whatever else is open in it, such as a connection another program
/// made to its port, which once made a baseline taken from the total one too high.
#[test]
fn idle_connections_are_released_on_close() {
    let s = Server::start(&[]);
    let conns: Vec<_> = (0..100).map(|_| connect(s.addr)).collect();
    let clients: Vec<SocketAddr> = conns.iter().map(|c| c.local_addr().unwrap()).collect();
    // All 100 are accepted, each a descriptor in the server (bounded poll).
    assert!(
        poll_until(Duration::from_secs(10), || s.connections_from(&clients) == 100),
        "the server holds {} of the 100 connections",
        s.connections_from(&clients)
    );
    // Each one still works.
    let mut conns: Vec<Conn> = conns.into_iter().map(Conn::new).collect();
    for c in conns.iter_mut() {
        c.send(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n");
    }
    for c in conns.iter_mut() {
        let r = c.read_response(false);
        assert_eq!(r.status, 200);
    }
    drop(conns);
    assert!(
        poll_until(Duration::from_secs(10), || s.connections_from(&clients) == 0),
        "descriptors not released: the server still holds {} of the closed connections",
        s.connections_from(&clients)
    );
}

#[test]
fn concurrent_clients_two_workers() {
    let s = Server::start(&["--workers", "2"]);
    assert_eq!(
        s.addrs.len(),
        1,
        "one `listening on` line per address expected, log:\n{}",
        s.log()
    );
    let addr = s.addr;
    let threads: Vec<_> = (0..8)
        .map(|t| {
            std::thread::spawn(move || {
                let mut c = Conn::open(addr);
                for i in 0..200 {
                    match (t + i) % 3 {
                        0 => {
                            c.send(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n");
                            let r = c.read_response(false);
                            assert_eq!((r.status, r.body_str()), (200, HELLO.to_string()));
                        }
                        1 => {
                            c.send(b"GET /json HTTP/1.1\r\nHost: x\r\n\r\n");
                            let r = c.read_response(false);
                            assert_eq!((r.status, r.body_str()), (200, JSON.to_string()));
                        }
                        _ => {
                            let body = format!("t{t}-i{i}");
                            c.send(
                                format!(
                                    "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
                                    body.len()
                                )
                                .as_bytes(),
                            );
                            let r = c.read_response(false);
                            assert_eq!((r.status, r.body_str()), (200, body));
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread failed");
    }
    s.assert_no_panic();
}

#[test]
fn wrk_two_workers_many_connections() {
    require_tool("wrk", "wrk");
    let s = Server::start(&["--workers", "2"]);
    let out = run_bounded(
        Command::new("wrk").args(["-t2", "-c200", "-d3s", "--timeout", "5s", &s.url("/json")]),
        Duration::from_secs(60),
    );
    let text = format!("{}{}", out.stdout_str(), out.stderr);
    assert!(out.status.success(), "wrk failed:\n{text}");
    assert!(!text.contains("Socket errors"), "wrk saw socket errors:\n{text}");
    assert!(!text.contains("Non-2xx"), "wrk saw non-2xx responses:\n{text}");
    let n: u64 = text
        .lines()
        .find_map(|l| {
            let (n, rest) = l.trim().split_once(' ')?;
            rest.starts_with("requests in").then(|| n.parse().ok()).flatten()
        })
        .unwrap_or_else(|| panic!("no `requests in` line:\n{text}"));
    assert!(n > 0, "{text}");
    s.assert_no_panic();
}

#[test]
fn sigterm_after_barrage_exits_0() {
    let mut s = Server::start(&["--workers", "2"]);
    for i in 0..40 {
        one_bad_connection(s.addr, i);
    }
    let r = roundtrip(s.addr, b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 200);
    s.assert_alive();
    s.signal("TERM");
    let st = s.wait_exit(Duration::from_secs(20));
    assert_eq!(st.code(), Some(0), "{st}; log:\n{}", s.log());
    s.assert_no_panic();
}

#[test]
fn few_small_buffers_many_connections() {
    // More concurrent connections than registered buffers, and bodies much
    // larger than one buffer: every request must still be answered correctly.
    let s = Server::start(&["--buffers", "16", "--buffer-size", "4096"]);
    let addr = s.addr;
    let threads: Vec<_> = (0..40u64)
        .map(|t| {
            std::thread::spawn(move || {
                let mut c = Conn::open(addr);
                let body = pseudo_random(50_000 + t as usize * 13, t + 100);
                let mut req = format!(
                    "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                )
                .into_bytes();
                req.extend_from_slice(&body);
                req.extend_from_slice(&b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n".repeat(5));
                let mut w = c.stream.try_clone().unwrap();
                let writer = std::thread::spawn(move || w.write_all(&req).unwrap());
                let r = c.read_response(false);
                assert_eq!(r.status, 200, "conn {t}: {}", r.raw_head);
                assert!(r.body == body, "conn {t}: echoed body differs");
                for k in 0..5 {
                    let r = c.read_response(false);
                    assert_eq!(r.status, 200, "conn {t} pipelined #{k}: {}", r.raw_head);
                    assert_eq!(r.body_str(), HELLO);
                }
                writer.join().unwrap();
            })
        })
        .collect();
    for t in threads {
        t.join().expect("client thread failed");
    }
    let r = roundtrip(s.addr, b"GET /json HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 200);
    s.assert_no_panic();
}
