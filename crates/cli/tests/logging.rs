//! ringd's own log: JSON lines when stderr is not a terminal (journald), human lines on request,
//! and a flood of bad clients is not a flood of log lines.

mod common;

use std::io::Write;
use std::net::TcpStream;

use common::Server;

#[test]
fn logs_are_json_lines_off_a_terminal() {
    let server = Server::start(&[]);
    let log = server.log();
    let line = log.lines().find(|l| l.contains("listening on")).unwrap();
    let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(v["level"], "INFO");
    assert!(
        v["message"].as_str().unwrap().starts_with("listening on 127.0.0.1:"),
        "{v}"
    );
    assert!(v["timestamp"].as_str().unwrap().ends_with('Z'), "{v}");
}

#[test]
fn human_format_on_request() {
    let server = Server::start(&["--log-format", "human"]);
    let log = server.log();
    let line = log.lines().find(|l| l.contains("listening on")).unwrap();
    assert!(line.contains(" INFO ") && !line.starts_with('{'), "{line}");
}

#[test]
fn a_thousand_bad_clients_do_not_write_a_thousand_lines() {
    let server = Server::start(&[]);
    let before = server.log().lines().count();
    for i in 0..1000 {
        let mut s = TcpStream::connect(server.addr).unwrap();
        let _ = s.write_all(if i % 2 == 0 {
            b"GARBAGE\r\n\r\n" as &[u8]
        } else {
            b"GET / HTTP/1.1\r\n\r\n"
        });
        // Dropped without reading: the server answers 400 and closes.
    }
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.write_all(b"GET /plaintext HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut got = String::new();
    std::io::Read::read_to_string(&mut s, &mut got).unwrap();
    assert!(got.ends_with("Hello, World!"));
    let after = server.log().lines().count();
    assert!(
        after - before <= 5,
        "{} log lines for 1000 bad clients:\n{}",
        after - before,
        server.log()
    );
}
