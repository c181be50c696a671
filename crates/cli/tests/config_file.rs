//! A config file with every section: listeners, workers, limits, buffers, timeouts, static roots
//! per prefix, added headers, access log, logging, metrics — loaded by `ringd serve` and in force.

mod common;

use std::time::{Duration, Instant};

use common::{roundtrip, Server, TempDir};

#[test]
fn a_config_with_every_section_is_in_force() {
    let dir = TempDir::new("full-config");
    let site = dir.write("site/index.html", b"<h1>root site</h1>");
    let assets = dir.write("assets/app.css", b"body { color: teal }\n");
    let log = dir.join("access.log");
    let toml = format!(
        r#"
listen = ["127.0.0.1:0"]
workers = 2
root = {root:?}
backlog = 512
max_requests_per_connection = 50
max_connections = 1000
shed = "503"
server_name = "edge"
ring_entries = 256
log = "info"
log_format = "json"
admin = "127.0.0.1:0"

[limits]
max_request_line = 4096
max_header_bytes = 16384
max_headers = 50
max_body = 1000

[buffers]
count = 16
size = 8192

[timeouts]
header = 10
body = 10
keepalive = 10
send = 10
handler = 5
drain = 5
drain_idle = 1

[access_log]
path = {log:?}
format = "combined"

[headers]
X-Frame-Options = "DENY"
Strict-Transport-Security = "max-age=63072000"

[[static]]
prefix = "/assets/"
root = {assets:?}
"#,
        root = site.parent().unwrap(),
        assets = assets.parent().unwrap(),
        log = log,
    );
    let conf = dir.write("ringd.toml", toml.as_bytes());
    // The harness adds --listen/--workers only when missing; the file's values stand here.
    let server = Server::start(&[
        "--config",
        conf.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--workers",
        "2",
    ]);
    assert!(server.log().contains("with 2 workers"), "{}", server.log());

    let r = roundtrip(server.addr, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.body_str(), "<h1>root site</h1>");
    assert_eq!(r.header("server"), Some("edge"));
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert_eq!(r.header("strict-transport-security"), Some("max-age=63072000"));

    let css = roundtrip(server.addr, b"GET /assets/app.css HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(css.body_str(), "body { color: teal }\n");
    assert_eq!(css.header("content-type"), Some("text/css; charset=utf-8"));
    assert_eq!(css.header("x-frame-options"), Some("DENY"));

    // Added to error responses too, and the limits are the file's.
    let big = roundtrip(
        server.addr,
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 2000\r\n\r\n",
    );
    assert_eq!(big.status, 413);
    assert_eq!(big.header("x-frame-options"), Some("DENY"));
    let long = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(5000));
    assert_eq!(roundtrip(server.addr, long.as_bytes()).status, 414);

    // JSON logs, the metrics listener, the access log.
    let line = server
        .log()
        .lines()
        .find(|l| l.contains("metrics on"))
        .map(str::to_owned);
    assert!(line.as_deref().is_some_and(|l| l.starts_with('{')), "{}", server.log());
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(&log).unwrap_or_default().lines().count() < 4 {
        assert!(
            Instant::now() < deadline,
            "access log: {:?}",
            std::fs::read_to_string(&log)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(std::fs::read_to_string(&log)
        .unwrap()
        .contains("\"GET /assets/app.css HTTP/1.1\" 200 21"));
}

#[test]
fn added_headers_that_could_split_a_response_are_refused() {
    let dir = TempDir::new("bad-headers");
    let conf = dir.write("ringd.toml", b"[headers]\n\"X-A\" = \"1\\r\\nSet-Cookie: x\"\n");
    let err = Server::try_start(&["--config", conf.to_str().unwrap()]).err().unwrap();
    assert!(
        err.contains("error: invalid configuration: headers: the value of X-A has control characters"),
        "{err}"
    );
}
