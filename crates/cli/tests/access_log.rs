//! Access logs: nginx `combined` and JSON lines for good and bad requests, buffered per worker
//! and flushed within a second and at shutdown, to a file reopened on SIGUSR1 or to stderr.

mod common;

use std::time::{Duration, Instant};

use common::{roundtrip, Server, TempDir};

/// Polls (bounded) until `path` holds at least `n` lines.
fn lines(path: &std::path::Path, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        if lines.len() >= n {
            return lines;
        }
        assert!(
            Instant::now() < deadline,
            "{} lines of {n} after 10 s:\n{text}",
            lines.len()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Splits a combined line into (addr, time, request, status, bytes, referer, user agent).
fn parse_combined(line: &str) -> (String, String, String, u16, String, String, String) {
    let (addr, rest) = line.split_once(" - - [").unwrap_or_else(|| panic!("{line}"));
    let (time, rest) = rest.split_once("] \"").unwrap();
    let (request, rest) = rest.split_once("\" ").unwrap();
    let mut parts = rest.splitn(3, ' ');
    let status = parts.next().unwrap().parse().unwrap();
    let bytes = parts.next().unwrap().to_owned();
    let quoted = parts.next().unwrap();
    let (referer, ua) = quoted
        .trim_start_matches('"')
        .trim_end_matches('"')
        .split_once("\" \"")
        .unwrap();
    // dd/Mon/yyyy:hh:mm:ss +0000
    assert_eq!(time.len(), 26, "{time}");
    assert!(
        time.ends_with(" +0000") && &time[2..3] == "/" && &time[6..7] == "/",
        "{time}"
    );
    (
        addr.to_owned(),
        time.to_owned(),
        request.to_owned(),
        status,
        bytes,
        referer.to_owned(),
        ua.to_owned(),
    )
}

#[test]
fn combined_lines_for_good_and_bad_requests() {
    let dir = TempDir::new("access-combined");
    let log = dir.join("access.log");
    let server = Server::start(&["--access-log", log.to_str().unwrap()]);
    let a = server.addr;
    roundtrip(
        a,
        b"GET /plaintext HTTP/1.1\r\nHost: t\r\nReferer: http://r.example/\r\nUser-Agent: test \"agent\"\r\n\r\n",
    );
    roundtrip(a, b"HEAD /json HTTP/1.1\r\nHost: t\r\n\r\n");
    roundtrip(a, b"GET /missing HTTP/1.1\r\nHost: t\r\n\r\n");
    roundtrip(a, b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello");
    roundtrip(a, b"DELETE /plaintext HTTP/1.0\r\n\r\n");
    roundtrip(a, b"GET / HTTP/1.1\r\n\r\n");
    roundtrip(a, b"NOT A REQUEST\r\n\r\n");
    let got = lines(&log, 7);
    let parsed: Vec<_> = got.iter().map(|l| parse_combined(l)).collect();
    let expect: [(&str, u16, &str); 7] = [
        ("GET /plaintext HTTP/1.1", 200, "13"),
        ("HEAD /json HTTP/1.1", 200, "0"),
        ("GET /missing HTTP/1.1", 404, "14"),
        ("POST /echo HTTP/1.1", 200, "5"),
        ("DELETE /plaintext HTTP/1.0", 405, "23"),
        ("GET / HTTP/1.1", 400, "-"),
        ("NOT A REQUEST", 400, "-"),
    ];
    for ((addr, _, request, status, bytes, _, _), (want_req, want_status, want_bytes)) in parsed.iter().zip(expect) {
        assert_eq!(addr, "127.0.0.1");
        assert_eq!(
            (request.as_str(), *status, bytes.as_str()),
            (want_req, want_status, want_bytes),
            "{got:#?}"
        );
    }
    assert_eq!(parsed[0].5, "http://r.example/");
    assert_eq!(parsed[0].6, "test \\x22agent\\x22", "quotes are escaped as nginx does");
    assert_eq!((parsed[1].5.as_str(), parsed[1].6.as_str()), ("-", "-"));
}

#[test]
fn json_lines_parse() {
    let dir = TempDir::new("access-json");
    let log = dir.join("access.json");
    let server = Server::start(&["--access-log", log.to_str().unwrap(), "--access-log-format", "json"]);
    roundtrip(
        server.addr,
        b"GET /json?x=\"1\" HTTP/1.1\r\nHost: t\r\nUser-Agent: a\\b\r\n\r\n",
    );
    roundtrip(server.addr, b"GET / HTTP/2.0\r\nHost: t\r\n\r\n");
    let got = lines(&log, 2);
    let first: serde_json::Value = serde_json::from_str(&got[0]).unwrap();
    assert_eq!(first["request"], "GET /json?x=\"1\" HTTP/1.1");
    assert_eq!(first["status"], 200);
    assert_eq!(first["body_bytes_sent"], 27);
    assert_eq!(first["http_user_agent"], "a\\b");
    assert_eq!(first["remote_addr"], "127.0.0.1");
    assert!(first["time"].as_str().unwrap().ends_with('Z'));
    let second: serde_json::Value = serde_json::from_str(&got[1]).unwrap();
    assert_eq!(second["status"], 505);
    assert!(second["body_bytes_sent"].is_null());
}

#[test]
fn sigusr1_reopens_the_file_after_logrotate_moved_it() {
    let dir = TempDir::new("access-rotate");
    let log = dir.join("access.log");
    let rotated = dir.join("access.log.1");
    let server = Server::start(&["--access-log", log.to_str().unwrap()]);
    roundtrip(server.addr, b"GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n");
    lines(&log, 1);
    std::fs::rename(&log, &rotated).unwrap();
    server.signal("USR1");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !log.exists() {
        assert!(
            Instant::now() < deadline,
            "access.log was not reopened:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    roundtrip(server.addr, b"GET /json HTTP/1.1\r\nHost: t\r\n\r\n");
    let new = lines(&log, 1);
    assert!(new[0].contains("\"GET /json HTTP/1.1\" 200"), "{new:?}");
    let old = std::fs::read_to_string(&rotated).unwrap();
    assert_eq!(old.lines().count(), 1);
    assert!(old.contains("\"GET /plaintext HTTP/1.1\" 200"), "{old}");
}

#[test]
fn every_line_is_written_before_a_drained_exit_and_stderr_works() {
    let mut server = Server::start(&["--access-log", "stderr", "--workers", "2"]);
    for _ in 0..50 {
        roundtrip(
            server.addr,
            b"GET /plaintext HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        );
    }
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(30)).success());
    // The drain flushed what the once-a-second flush had not yet written.
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.log().matches("\"GET /plaintext HTTP/1.1\" 200 13").count() < 50 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let log = server.log();
    assert_eq!(log.matches("\"GET /plaintext HTTP/1.1\" 200 13").count(), 50, "{log}");
}

#[test]
fn an_unwritable_access_log_is_a_startup_error() {
    let err = Server::try_start(&["--access-log", "/nonexistent-dir/access.log"])
        .err()
        .unwrap();
    assert!(
        err.contains("error: cannot open the access log") && err.contains("/nonexistent-dir/access.log"),
        "{err}"
    );
}
