//! `defer_accept` (`TCP_DEFER_ACCEPT`, nginx `listen ... deferred`): the kernel hands ringd a
//! connection only once its first bytes have arrived. Checked through what the server itself
//! counts: a client that connects and says nothing is never accepted, and one that then speaks
//! is served like any other.

mod common;

use std::time::{Duration, Instant};

use common::{Conn, Server};

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n";

#[test]
fn silent_connections_wait_in_the_kernel_until_they_speak() {
    let server = Server::start(&["--workers", "1", "--admin", "127.0.0.1:0", "--defer-accept", "true"]);
    // Connected as far as the clients can tell (the handshake is done), but silent. The kernel
    // holds them for the header timeout (60 s) before it would hand them over without data.
    let mut silent: Vec<Conn> = (0..3).map(|_| Conn::open(server.addr)).collect();

    // A client that speaks at once is served, and only it has been accepted since.
    let mut talking = Conn::open(server.addr);
    talking.send(GET);
    assert_eq!(talking.read_response(false).status, 200);
    assert_eq!(server.metric("ringd_connections_accepted_total"), 1.0);
    assert_eq!(server.metric("ringd_connections_open"), 1.0);

    // A silent client that speaks now is accepted and answered on the same connection.
    silent[1].send(GET);
    assert_eq!(silent[1].read_response(false).status, 200);
    assert_eq!(server.metric("ringd_connections_accepted_total"), 2.0);
    assert_eq!(server.metric("ringd_connections_open"), 2.0);
    drop(silent);
    drop(talking);
    // The closes are noticed (bounded poll: the worker sees each as its read ending).
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.metric("ringd_connections_open") != 0.0 {
        assert!(Instant::now() < deadline, "a closed connection is still counted open");
        std::thread::sleep(Duration::from_millis(20));
    }
    server.assert_no_panic();
}

#[test]
fn without_it_a_silent_connection_is_accepted_on_the_handshake() {
    let server = Server::start(&["--workers", "1", "--admin", "127.0.0.1:0"]);
    let _silent = Conn::open(server.addr);
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.metric("ringd_connections_accepted_total") < 1.0 {
        assert!(Instant::now() < deadline, "a silent connection was not accepted");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(server.metric("ringd_connections_open"), 1.0);
}
