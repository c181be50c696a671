//! SIGHUP: the configuration file is read again and what can change live (the site root, limits,
//! timeouts, logging) changes without dropping a connection; what cannot (listen, workers,
//! buffers, backlog) is named in the log; a broken file changes nothing.

mod common;

use std::time::{Duration, Instant};

use common::{poll_until, roundtrip, Conn, Server, TempDir};

const GET_ROOT: &[u8] = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n";

fn config(dir: &TempDir, root: &str, max_body: u64, backlog: u32) {
    let text = format!("root = {root:?}\nbacklog = {backlog}\n[limits]\nmax_body = {max_body}\n");
    dir.write("ringd.toml", text.as_bytes());
}

/// Polls (bounded) until `GET /` on a new connection answers `want`.
fn wait_for_body(server: &Server, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = roundtrip(server.addr, GET_ROOT);
        if r.body_str() == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "still {:?} 10 s after SIGHUP; log:\n{}",
            r.body_str(),
            server.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sighup_reloads_root_and_limits_without_dropping_connections() {
    let dir = TempDir::new("reload");
    let a = dir.write("a/index.html", b"site A");
    let b = dir.write("b/index.html", b"site B");
    let (a, b) = (
        a.parent().unwrap().to_str().unwrap(),
        b.parent().unwrap().to_str().unwrap(),
    );
    config(&dir, a, 1000, 4096);
    let conf = dir.join("ringd.toml");
    let mut server = Server::start(&["--config", conf.to_str().unwrap()]);
    assert_eq!(roundtrip(server.addr, GET_ROOT).body_str(), "site A");

    // A keep-alive connection opened before the reload.
    let mut kept = Conn::open(server.addr);
    kept.send(GET_ROOT);
    assert_eq!(kept.read_response(false).body_str(), "site A");

    config(&dir, b, 10, 99);
    server.signal("HUP");
    wait_for_body(&server, "site B");

    // The old connection is still open and now sees the new site.
    kept.send(GET_ROOT);
    let r = kept.read_response(false);
    assert_eq!(r.body_str(), "site B");
    assert!(!r.connection_has("close"));

    // The new body limit is in force.
    let r = roundtrip(server.addr, b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 20\r\n\r\n");
    assert_eq!(r.status, 413);

    // The main thread logs the reload after handing it to the workers, so a worker can serve
    // the new site before the lines are written.
    let logged = poll_until(Duration::from_secs(10), || {
        let log = server.log();
        log.contains("changed: root, limits") && log.contains("backlog cannot change while ringd runs")
    });
    assert!(logged, "{}", server.log());

    // A broken file: logged, and the running configuration stays.
    dir.write("ringd.toml", b"root = \"/nonexistent-ringd-root\"\n");
    server.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.log().contains("reload failed") {
        assert!(Instant::now() < deadline, "no reload failure logged:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(server.log().contains("/nonexistent-ringd-root"));
    assert_eq!(roundtrip(server.addr, GET_ROOT).body_str(), "site B");
    server.assert_alive();
    server.assert_no_panic();
}

/// The `Server` line is rendered once a second per worker with the `Date` line; a reload that
/// changes `server_name` shows on a connection opened before it.
#[test]
fn sighup_changes_the_server_header() {
    let dir = TempDir::new("reload-server-name");
    dir.write("ringd.toml", b"server_name = \"alpha\"\n");
    let conf = dir.join("ringd.toml");
    let server = Server::start(&["--config", conf.to_str().unwrap()]);
    let mut kept = Conn::open(server.addr);
    kept.send(b"GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(kept.read_response(false).header("server"), Some("alpha"));

    dir.write("ringd.toml", b"server_name = \"beta\"\n");
    server.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        kept.send(b"GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n");
        let r = kept.read_response(false);
        assert_eq!(r.status, 200);
        match r.header("server") {
            Some("beta") => break,
            Some("alpha") => {}
            other => panic!("Server: {other:?}"),
        }
        assert!(
            Instant::now() < deadline,
            "still alpha 10 s after SIGHUP:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Later requests keep the new name, beside a valid date.
    kept.send(b"GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n");
    let r = kept.read_response(false);
    assert_eq!(r.header("server"), Some("beta"));
    common::assert_imf_fixdate(r.header("date").expect("a Date header"));
}
