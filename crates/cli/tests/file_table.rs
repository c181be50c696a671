//! The worker's file table. A plain keep-alive connection's socket is placed in its worker's
//! ring's file table after its first answers, so that its receives and sends name the slot and
//! the kernel skips looking the file up for each. The table holds the socket open as long as the
//! slot does: every way a connection ends must empty its slot, or the socket would never close.
//! Each test reads the tables from the kernel (`/proc/PID/fdinfo` of the ring's descriptor lists
//! the files in its table) and checks the client sees the end of the stream.

mod common;

use std::time::Duration;

use common::seccomp::Filter;
use common::{poll_until, Conn, Server};

/// `IORING_REGISTER_FILES2` (the sparse table's registration, Linux 5.19).
const REGISTER_FILES2: u32 = 13;

/// How many sockets the file tables of `pid`'s rings hold.
fn sockets_in_file_tables(pid: u32) -> usize {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return 0;
    };
    let mut sockets = 0;
    for fd in fds.flatten() {
        let is_ring = std::fs::read_link(fd.path()).is_ok_and(|target| target.to_string_lossy().contains("io_uring"));
        if !is_ring {
            continue;
        }
        let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{}", fd.file_name().to_string_lossy()))
            .unwrap_or_default();
        // "UserFiles:\tN" then one line a file in the table, up to "UserBufs:".
        if let Some(files) = info.split("UserFiles:").nth(1) {
            let files = files.split("UserBufs:").next().unwrap_or("");
            sockets += files.lines().filter(|line| line.contains("socket:[")).count();
        }
    }
    sockets
}

/// Waits until the tables hold `n` sockets; false after 10 s.
fn tables_hold(server: &Server, n: usize) -> bool {
    poll_until(Duration::from_secs(10), || sockets_in_file_tables(server.pid()) == n)
}

/// Two requests on a new connection (the first answers place its socket in the table).
fn open_and_use(server: &Server) -> Conn {
    let mut c = Conn::open(server.addr);
    for _ in 0..2 {
        c.send(b"GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n");
        let r = c.read_response(false);
        assert_eq!(r.status, 200, "{}", r.raw_head);
        assert_eq!(r.body_str(), "Hello, World!");
    }
    c
}

#[test]
fn keepalive_sockets_take_a_slot_and_give_it_back_when_the_client_closes() {
    let server = Server::start(&["--admin", "127.0.0.1:0"]);
    let clients: Vec<Conn> = (0..20).map(|_| open_and_use(&server)).collect();
    assert!(
        tables_hold(&server, 20),
        "20 keep-alive connections, {} sockets in the file table",
        sockets_in_file_tables(server.pid())
    );
    // Counted as the registration's completion is handled, which can come after the kernel's
    // table shows the socket.
    let registered = || server.metric("ringd_fixed_files_total{worker=\"0\"}");
    assert!(
        poll_until(Duration::from_secs(10), || registered() >= 20.0),
        "{} registrations counted",
        registered()
    );
    assert_eq!(registered(), 20.0);
    drop(clients);
    assert!(
        tables_hold(&server, 0),
        "the clients closed, {} sockets still in the file table",
        sockets_in_file_tables(server.pid())
    );
    // A connection that closes after one answer never takes a slot (`Connection: close`).
    let mut c = Conn::open(server.addr);
    c.send(b"GET /plaintext HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(c.read_response(false).status, 200);
    c.expect_eof();
    assert_eq!(registered(), 20.0);
    server.assert_no_panic();
}

/// Each way the server ends a connection that holds a slot: the client sees the end of the
/// stream (the socket really closed), and the slot is empty again.
#[test]
fn every_way_the_server_ends_a_connection_empties_its_slot() {
    let server = Server::start(&["--keepalive-timeout", "1", "--max-requests-per-conn", "4"]);
    let ways: [(&str, &[u8]); 4] = [
        ("the idle timeout", b""),
        (
            "Connection: close",
            b"GET /plaintext HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        ),
        (
            "a malformed request",
            b"GET /plaintext HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n",
        ),
        (
            "the per-connection limit",
            b"GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\nGET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n",
        ),
    ];
    for (way, last) in ways {
        let mut c = open_and_use(&server);
        assert!(tables_hold(&server, 1), "{way}: the socket is not in the file table");
        if !last.is_empty() {
            c.send(last);
            let answers = if way == "the per-connection limit" { 2 } else { 1 };
            for _ in 0..answers {
                c.read_response(false);
            }
        }
        c.expect_eof();
        assert!(
            tables_hold(&server, 0),
            "{way}: {} sockets left in the file table",
            sockets_in_file_tables(server.pid())
        );
    }
    server.assert_no_panic();
}

/// A kernel without sparse file tables (before 5.19), or a filter that refuses them: no table,
/// and every connection is served by its descriptor as before.
#[test]
fn without_a_file_table_connections_are_served_by_their_descriptors() {
    let server = Filter::new()
        .deny_register(REGISTER_FILES2, libc::EINVAL)
        .start(&["--admin", "127.0.0.1:0"]);
    let clients: Vec<Conn> = (0..5).map(|_| open_and_use(&server)).collect();
    assert_eq!(sockets_in_file_tables(server.pid()), 0);
    assert_eq!(server.metric("ringd_fixed_files_total{worker=\"0\"}"), 0.0);
    drop(clients);
    server.assert_no_panic();
}

/// The kernel allows no larger table than `RLIMIT_NOFILE`: under a low limit the table is made
/// smaller, and used.
#[test]
fn under_a_low_descriptor_limit_the_table_is_smaller_and_used() {
    let server = Server::start_wrapped(&["prlimit", "--nofile=300:300", "--"], &["--admin", "127.0.0.1:0"]);
    let clients: Vec<Conn> = (0..3).map(|_| open_and_use(&server)).collect();
    assert!(
        tables_hold(&server, 3),
        "{} sockets in the file table",
        sockets_in_file_tables(server.pid())
    );
    drop(clients);
    assert!(tables_hold(&server, 0));
    server.assert_no_panic();
}

/// An h2c connection takes a slot as it starts (it is made to last), serves streams through it,
/// and gives it back when the client goes, or when the server ends it (a GOAWAY for a protocol
/// error, then the close).
#[test]
fn http2_connections_take_a_slot_and_give_it_back() {
    use common::h2raw::{get, Raw, DATA, END_HEADERS, END_STREAM, HEADERS};
    let server = Server::start(&["--h2c", "true"]);
    for server_ends_it in [false, true] {
        let mut c = Raw::open(server.addr);
        assert!(
            tables_hold(&server, 1),
            "the h2c connection's socket is not in the file table"
        );
        for id in [1u32, 3] {
            c.frame(HEADERS, END_HEADERS | END_STREAM, id, &get("/plaintext"));
            let body = loop {
                match c.read_frame(Duration::from_secs(10)) {
                    Some((DATA, _, stream, body)) if stream == id => break body,
                    Some(_) => {}
                    None => panic!("no answer on stream {id}"),
                }
            };
            assert_eq!(body, b"Hello, World!");
        }
        if server_ends_it {
            // DATA on stream 0 is a connection error (RFC 9113 §6.1).
            c.frame(DATA, 0, 0, b"x");
            assert!(c.goaway(Duration::from_secs(10)).is_some(), "no GOAWAY");
            assert!(c.closed(), "the server did not close after its GOAWAY");
        }
        drop(c);
        assert!(
            tables_hold(&server, 0),
            "{} sockets left in the file table",
            sockets_in_file_tables(server.pid())
        );
    }
    server.assert_no_panic();
}
