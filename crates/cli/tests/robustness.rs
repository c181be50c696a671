//! Holding ground: the connection cap and shedding, running out of file descriptors, half-closed
//! clients, and graceful shutdown under load without losing a request.

mod common;

use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{read_to_close, require_tool, Conn, Server, TempDir};

const PLAINTEXT: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n";

#[test]
fn connections_past_the_cap_get_503_and_the_others_keep_being_served() {
    let server = Server::start(&["--max-connections", "5"]);
    let mut held: Vec<Conn> = (0..5).map(|_| Conn::open(server.addr)).collect();
    for c in held.iter_mut() {
        c.send(PLAINTEXT);
        assert_eq!(c.read_response(false).status, 200);
    }
    let mut extra = server.connect();
    let _ = extra.write_all(PLAINTEXT);
    let got = String::from_utf8_lossy(&read_to_close(&mut extra)).into_owned();
    assert!(got.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{got}");
    assert!(
        got.contains("\r\nRetry-After: 1\r\n") && got.contains("\r\nConnection: close\r\n"),
        "{got}"
    );
    // The five are unaffected.
    for c in held.iter_mut() {
        c.send(PLAINTEXT);
        assert_eq!(c.read_response(false).status, 200);
    }
    // Freeing slots lets new connections in again.
    held.truncate(2);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut s = server.connect();
        s.write_all(b"GET /plaintext HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .unwrap();
        if String::from_utf8_lossy(&read_to_close(&mut s)).starts_with("HTTP/1.1 200 ") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still shedding after connections were closed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    server.assert_no_panic();
}

#[test]
fn shed_close_mode_closes_without_an_answer() {
    let dir = TempDir::new("shed-close");
    let conf = dir.write("ringd.toml", b"max_connections = 1\nshed = \"close\"\n");
    let server = Server::start(&["--config", conf.to_str().unwrap()]);
    let mut first = Conn::open(server.addr);
    first.send(PLAINTEXT);
    assert_eq!(first.read_response(false).status, 200);
    let mut extra = server.connect();
    let _ = extra.write_all(PLAINTEXT);
    assert!(read_to_close(&mut extra).is_empty());
    first.send(PLAINTEXT);
    assert_eq!(first.read_response(false).status, 200);
}

#[test]
fn a_half_closed_client_still_gets_its_response() {
    let server = Server::start(&[]);
    let mut s = server.connect();
    s.write_all(PLAINTEXT).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let got = String::from_utf8_lossy(&read_to_close(&mut s)).into_owned();
    assert!(
        got.starts_with("HTTP/1.1 200 OK\r\n") && got.ends_with("Hello, World!"),
        "{got}"
    );
}

#[test]
fn out_of_file_descriptors_backs_off_and_recovers() {
    require_tool("prlimit", "util-linux");
    let server = Server::start_wrapped(&["prlimit", "--nofile=128:128", "--"], &[]);
    // 300 idle connections: the server can hold ~110 (128 descriptors); accepting the next fails
    // with EMFILE and the rest wait in the listen backlog.
    let mut conns: Vec<TcpStream> = (0..300).map(|_| server.connect()).collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.log().contains("out of file descriptors") {
        assert!(Instant::now() < deadline, "no EMFILE reported:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(10));
    }
    // As answered connections close, descriptors free up and the backlog is served: all 300.
    for c in conns.iter_mut() {
        c.write_all(b"GET /plaintext HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .unwrap();
    }
    let ok = conns
        .iter_mut()
        .map(read_to_close)
        .filter(|got| String::from_utf8_lossy(got).ends_with("Hello, World!"))
        .count();
    assert_eq!(ok, 300);
    let log = server.log();
    assert!(log.contains("out of file descriptors"), "{log}");
    // Said once (rate-limited), not once per failed accept.
    assert!(log.matches("out of file descriptors").count() <= 3, "{log}");
    server.assert_no_panic();
    let mut c = Conn::open(server.addr);
    c.send(PLAINTEXT);
    assert_eq!(c.read_response(false).status, 200);
}

#[test]
fn sigterm_under_load_finishes_every_request_and_exits_0() {
    let mut server = Server::start(&["--workers", "2"]);
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, closed_by_server, failed) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    // Closed-loop keep-alive clients: each request sent must be answered; a `Connection: close`
    // answer ends the client (the drain's way of saying goodbye).
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let addr = server.addr;
            let (stop, ok, closed_by_server, failed) =
                (stop.clone(), ok.clone(), closed_by_server.clone(), failed.clone());
            std::thread::spawn(move || {
                let mut c = Conn::open(addr);
                while !stop.load(Ordering::SeqCst) {
                    if c.try_send(PLAINTEXT).is_err() {
                        failed.fetch_add(1, Ordering::SeqCst);
                        return;
                    }
                    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| c.read_response(false))) {
                        Ok(r) if r.status == 200 => {
                            ok.fetch_add(1, Ordering::SeqCst);
                            if r.connection_has("close") {
                                closed_by_server.fetch_add(1, Ordering::SeqCst);
                                return;
                            }
                        }
                        _ => {
                            failed.fetch_add(1, Ordering::SeqCst);
                            return;
                        }
                    }
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    while ok.load(Ordering::SeqCst) < 2000 {
        assert!(Instant::now() < deadline, "the clients are not getting answers");
        std::thread::sleep(Duration::from_millis(5));
    }
    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(30));
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().unwrap();
    }
    assert!(status.success(), "exit status {status}");
    assert_eq!(failed.load(Ordering::SeqCst), 0, "requests sent but not answered");
    assert_eq!(
        closed_by_server.load(Ordering::SeqCst),
        8,
        "every client was told Connection: close"
    );
    assert!(server.log().contains("drained in"), "{}", server.log());
}

#[test]
fn an_idle_connection_may_still_send_one_request_while_draining() {
    let dir = TempDir::new("drain-idle");
    let conf = dir.write("ringd.toml", b"[timeouts]\ndrain_idle = 30\n");
    let mut server = Server::start(&["--config", conf.to_str().unwrap()]);
    let mut c = Conn::open(server.addr);
    c.send(PLAINTEXT);
    assert_eq!(c.read_response(false).status, 200);
    server.signal("TERM");
    let deadline = Instant::now() + Duration::from_secs(10);
    // Logged by the worker itself once it is draining (the main thread's line comes earlier).
    while !server.log().contains("draining: stopped accepting") {
        assert!(Instant::now() < deadline, "no drain logged:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(10));
    }
    // New connections are refused now; this one, idle when the drain began, is still heard.
    c.send(PLAINTEXT);
    let r = c.read_response(false);
    assert_eq!(r.status, 200);
    assert!(r.connection_has("close"));
    c.expect_eof();
    // Closing our side ends the server's lingering close at once.
    drop(c);
    assert!(server.wait_exit(Duration::from_secs(10)).success());
}

#[test]
fn a_silent_connection_does_not_hold_up_the_drain() {
    let mut server = Server::start(&[]);
    // Connected, never a byte: it is idle, so the drain's one-second grace applies, not the
    // 60 s header timeout (nor the 20 s drain timeout).
    let silent = TcpStream::connect(server.addr).unwrap();
    let mut c = Conn::open(server.addr);
    c.send(PLAINTEXT);
    assert_eq!(c.read_response(false).status, 200);
    let started = Instant::now();
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(30)).success());
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the drain waited {:?} for a silent connection",
        started.elapsed()
    );
    assert!(server.log().contains("drained in"), "{}", server.log());
    drop(silent);
}

#[test]
fn an_access_log_target_that_stops_reading_does_not_stop_the_timeouts() {
    // A FIFO whose reader never reads: once its 64 KiB are full, every access log write waits.
    let dir = TempDir::new("stuck-log");
    let fifo = dir.join("access.fifo");
    let st = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(st.success(), "mkfifo");
    use std::os::unix::fs::OpenOptionsExt;
    let _reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    let server = Server::start(&[
        "--access-log",
        fifo.to_str().unwrap(),
        "--keepalive-timeout",
        "1",
        "--max-requests-per-conn",
        "100000",
    ]);
    let mut c = Conn::open(server.addr);
    for _ in 0..3000 {
        c.send(PLAINTEXT);
        assert_eq!(c.read_response(false).status, 200);
    }
    // More than a second later the log is stuck, yet the idle connection is still timed out.
    c.expect_eof();
    let mut fresh = Conn::open(server.addr);
    fresh.send(PLAINTEXT);
    assert_eq!(fresh.read_response(false).status, 200);
    server.assert_no_panic();
}
