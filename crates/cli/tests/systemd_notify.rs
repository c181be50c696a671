//! `Type=notify`: ringd tells the service manager when every worker listens, and when it stops.

mod common;

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use common::Server;

#[test]
fn ready_then_stopping_on_notify_socket() {
    let dir = common::TempDir::new("notify");
    let path = dir.join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let server = Server::start_with_env(
        &["--listen", "127.0.0.1:0"],
        &[("NOTIFY_SOCKET", path.to_str().unwrap())],
    );
    let mut buf = [0u8; 1024];
    let n = socket.recv(&mut buf).expect("no READY=1 from ringd within 10 s");
    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(msg.lines().any(|l| l == "READY=1"), "{msg:?}");
    assert!(msg.contains(&format!("MAINPID={}", server.pid())), "{msg:?}");
    assert!(msg.contains(&server.addr.to_string()), "{msg:?}");
    let mut server = server;
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(10)).success());
    let n = socket.recv(&mut buf).expect("no STOPPING=1 after SIGTERM");
    assert_eq!(&buf[..n], b"STOPPING=1");
}

#[test]
fn watchdog_is_fed_while_workers_run() {
    let dir = common::TempDir::new("watchdog");
    let path = dir.join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _server = Server::start_with_env(
        &["--listen", "127.0.0.1:0", "--workers", "2"],
        &[("NOTIFY_SOCKET", path.to_str().unwrap()), ("WATCHDOG_USEC", "3000000")],
    );
    let mut buf = [0u8; 1024];
    let mut seen = Vec::new();
    // READY=1 first, then WATCHDOG=1 every 1.5 s; two feeds prove it repeats.
    while seen.iter().filter(|m: &&String| m.as_str() == "WATCHDOG=1").count() < 2 {
        let n = socket
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no watchdog feed within 10 s ({e}); got {seen:?}"));
        seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert!(seen[0].starts_with("READY=1"), "{seen:?}");
}

#[test]
fn watchdog_meant_for_another_process_is_ignored() {
    let dir = common::TempDir::new("watchdog-other");
    let path = dir.join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let server = Server::start_with_env(
        &["--listen", "127.0.0.1:0"],
        &[
            ("NOTIFY_SOCKET", path.to_str().unwrap()),
            ("WATCHDOG_USEC", "2000000"),
            ("WATCHDOG_PID", "1"),
        ],
    );
    let mut buf = [0u8; 1024];
    let n = socket.recv(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"READY=1"));
    assert!(
        !server.log().contains("feeding the systemd watchdog"),
        "{}",
        server.log()
    );
}

/// Socket activation: systemd (here its `systemd-socket-activate` tool) owns the listening socket
/// and passes it as descriptor 3 with LISTEN_FDS; ringd serves on it with every worker.
#[test]
fn serves_on_a_socket_passed_by_socket_activation() {
    use std::io::{Read, Write};
    use std::process::{Command, Stdio};

    common::require_tool("systemd-socket-activate", "systemd");
    // systemd-socket-activate binds the port itself, and takes no port 0: pick a free one, and
    // connect only once this child is seen listening on it. Connecting as soon as the port
    // answers could reach whatever else took the port in between (another test's server, which
    // would count our connection as its own); if something did, the child cannot bind, exits,
    // and another port is tried.
    let (mut child, port, log) = (0..10)
        .find_map(|_| {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut child = Command::new("systemd-socket-activate")
                .args([
                    "-l",
                    &format!("127.0.0.1:{port}"),
                    common::bin(),
                    "serve",
                    "--workers",
                    "2",
                ])
                .args(["--listen", "127.0.0.1:1"]) // ignored under socket activation
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let log = common::LogBuf::default();
            log.drain_from(child.stderr.take().unwrap());
            let listening = common::poll_until(Duration::from_secs(10), || {
                let mine = common::tcp_sockets(child.id())
                    .iter()
                    .any(|s| s.local_port == port && s.state == 0x0A);
                mine || child.try_wait().unwrap().is_some()
            });
            if listening && child.try_wait().unwrap().is_none() {
                return Some((child, port, log));
            }
            let _ = child.kill();
            let _ = child.wait();
            None
        })
        .expect("systemd-socket-activate could not listen on a free port in ten tries");
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream
        .write_all(b"GET /plaintext HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut got = String::new();
    let read = stream.read_to_string(&mut got);
    // The workers answer as soon as they run; the main thread logs `listening on` just after.
    let want = format!("listening on 127.0.0.1:{port} with 2 workers");
    log.wait_for(Duration::from_secs(10), |t| t.contains(&want));
    let _ = child.kill();
    let _ = child.wait();
    read.unwrap_or_else(|e| panic!("no answer ({e}); log:\n{}", log.text()));
    assert!(
        got.starts_with("HTTP/1.1 200 OK\r\n") && got.ends_with("Hello, World!"),
        "{got}"
    );
    let text = log.text();
    assert!(text.contains("socket activation: serving 1 inherited socket"), "{text}");
    assert!(text.contains(&want), "{text}");
}
