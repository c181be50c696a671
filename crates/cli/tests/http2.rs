//! HTTP/2 end to end, with real clients: curl (`--http2-prior-knowledge` for h2c, `--http2`
//! over TLS), nghttp, and Python's `h2` for many streams on one connection. Everything above the
//! wire behaves as over HTTP/1.1: routes, 404/405, the built-in handlers, static files with
//! their conditions and ranges, limits, the access log and the counters.

mod common;

use std::process::Command;
use std::time::Duration;

use common::pki::{KeyKind, Pki};
use common::*;

/// `curl -sS` with `args`, bounded.
fn curl(args: &[&str]) -> Output {
    require_tool("curl", "curl");
    run_bounded(
        Command::new("curl").args(["-sS", "--max-time", "60"]).args(args),
        Duration::from_secs(90),
    )
}

/// The status line and fields of `curl -i` output, and its body.
fn split_response(out: &Output) -> (String, Vec<u8>) {
    let raw = &out.stdout;
    let at = find(raw, b"\r\n\r\n").unwrap_or_else(|| panic!("no head in curl's output:\n{}", out.stdout_str()));
    (String::from_utf8_lossy(&raw[..at]).into_owned(), raw[at + 4..].to_vec())
}

fn field<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn h2c(server: &Server, extra: &[&str], path: &str) -> (String, Vec<u8>) {
    let url = server.url(path);
    let mut args = vec!["-i", "--http2-prior-knowledge"];
    args.extend_from_slice(extra);
    args.push(&url);
    let out = curl(&args);
    out.assert_success("curl --http2-prior-knowledge");
    split_response(&out)
}

/// Fields an HTTP/2 response must never carry (RFC 9113 §8.2.2).
fn assert_no_connection_fields(head: &str) {
    for name in [
        "connection",
        "keep-alive",
        "transfer-encoding",
        "upgrade",
        "proxy-connection",
    ] {
        assert!(field(head, name).is_none(), "{name} in an HTTP/2 response:\n{head}");
    }
}

#[test]
fn h2c_speaks_http2_next_to_http1_on_one_port() {
    let server = Server::start(&["--h2c", "true", "--admin", "127.0.0.1:0"]);
    let (head, body) = h2c(&server, &[], "/plaintext");
    assert!(head.starts_with("HTTP/2 200"), "{head}");
    assert_eq!(body, b"Hello, World!");
    assert_eq!(field(&head, "content-length"), Some("13"));
    assert_eq!(field(&head, "server"), Some("ringd"));
    assert_imf_fixdate(field(&head, "date").expect("a date"));
    assert_no_connection_fields(&head);
    // The same port still speaks HTTP/1.1 to everyone else.
    let r = roundtrip(server.addr, b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!((r.status, r.body_str().as_str()), (200, "Hello, World!"));
    // Routing answers as over HTTP/1.1.
    let (head, _) = h2c(&server, &[], "/nope");
    assert!(head.starts_with("HTTP/2 404"), "{head}");
    let (head, _) = h2c(&server, &["-X", "DELETE"], "/plaintext");
    assert!(head.starts_with("HTTP/2 405"), "{head}");
    assert!(field(&head, "allow").is_some_and(|a| a.contains("GET")), "{head}");
    // A body, echoed.
    let (head, body) = h2c(&server, &["--data-binary", "a body of some length"], "/echo");
    assert!(head.starts_with("HTTP/2 200"), "{head}");
    assert_eq!(body, b"a body of some length");
    // HEAD: the length GET would get, no body.
    let (head, body) = h2c(&server, &["-I"], "/json");
    assert!(head.starts_with("HTTP/2 200"), "{head}");
    assert_eq!(field(&head, "content-length"), Some("27"));
    assert!(body.is_empty());
    assert_eq!(server.metric("ringd_http2_connections_total"), 5.0);
    assert_eq!(
        server.metric("ringd_http_requests_by_protocol_total{protocol=\"HTTP/2.0\"}"),
        5.0
    );
    assert_eq!(
        server.metric("ringd_http_requests_by_protocol_total{protocol=\"HTTP/1.1\"}"),
        1.0
    );
    server.assert_no_panic();
}

#[test]
fn h2c_is_off_unless_asked_for() {
    let server = Server::start(&[]);
    let out = curl(&["--http2-prior-knowledge", &server.url("/plaintext")]);
    assert!(!out.status.success(), "h2c answered while off:\n{}", out.stdout_str());
    let r = roundtrip(server.addr, b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 200);
}

#[test]
fn tls_offers_h2_by_alpn_unless_turned_off() {
    let pki = Pki::new();
    let leaf = pki.issue("h2", &["localhost"], KeyKind::EcPkcs8);
    for (h2, want) in [(None, "2"), (Some("false"), "1.1")] {
        let mut args = vec!["--tls-cert", leaf.cert_str(), "--tls-key", leaf.key_str()];
        if let Some(v) = h2 {
            args.extend(["--h2", v]);
        }
        let server = Server::start(&args);
        let resolve = format!("localhost:{}:127.0.0.1", server.port());
        let url = format!("https://localhost:{}/plaintext", server.port());
        let out = curl(&[
            "--http2",
            "--cacert",
            pki.ca_str(),
            "--resolve",
            &resolve,
            "-w",
            "\n%{http_version}",
            &url,
        ]);
        out.assert_success("curl --http2 over TLS");
        assert_eq!(out.stdout_str(), format!("Hello, World!\n{want}"), "--h2 {h2:?}");
    }
}

#[test]
fn nghttp_negotiates_h2_and_gets_every_page() {
    require_tool("nghttp", "nghttp2-client");
    let pki = Pki::new();
    let leaf = pki.issue("nghttp", &["localhost"], KeyKind::EcPkcs8);
    let server = Server::start(&["--tls-cert", leaf.cert_str(), "--tls-key", leaf.key_str()]);
    let url = format!("https://127.0.0.1:{}", server.port());
    let out = run_bounded(
        Command::new("nghttp").args([
            "-nv",
            &format!("{url}/"),
            &format!("{url}/json"),
            &format!("{url}/plaintext"),
        ]),
        Duration::from_secs(60),
    );
    out.assert_success("nghttp");
    let text = out.stdout_str();
    assert!(text.contains("The negotiated protocol: h2"), "{text}");
    assert_eq!(text.matches(":status: 200").count(), 3, "{text}");
}

#[test]
fn static_files_answer_conditions_and_ranges_over_h2() {
    let dir = TempDir::new("h2static");
    let root = dir.join("site");
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    dir.write("site/big.bin", &big);
    dir.write("site/a.css", b"body { color: red }\n");
    dir.write("site/a.css.gz", b"not really gzip, but the sibling");
    let server = Server::start_site(
        &dir,
        &root,
        "[static_files]\nprecompressed = true\n[http2]\ncleartext = true\n",
    );
    let (head, body) = h2c(&server, &[], "/big.bin");
    assert!(head.starts_with("HTTP/2 200"), "{head}");
    assert_eq!(body.len(), big.len());
    assert!(body == big, "the file arrived changed");
    let etag = field(&head, "etag").expect("an etag").to_owned();
    let inm = format!("If-None-Match: {etag}");
    let (head, body) = h2c(&server, &["-H", &inm], "/big.bin");
    assert!(head.starts_with("HTTP/2 304"), "{head}");
    assert!(body.is_empty());
    let (head, body) = h2c(&server, &["-H", "Range: bytes=100-199"], "/big.bin");
    assert!(head.starts_with("HTTP/2 206"), "{head}");
    assert_eq!(field(&head, "content-range"), Some("bytes 100-199/300000"));
    assert_eq!(body, &big[100..200]);
    let (head, body) = h2c(&server, &["-H", "Accept-Encoding: gzip"], "/a.css");
    assert_eq!(field(&head, "content-encoding"), Some("gzip"), "{head}");
    assert_eq!(field(&head, "vary"), Some("Accept-Encoding"), "{head}");
    assert_eq!(body, b"not really gzip, but the sibling");
    server.assert_no_panic();
}

#[test]
fn limits_give_the_http1_statuses_over_h2() {
    let server = Server::start(&[
        "--h2c",
        "true",
        "--max-body",
        "1000",
        "--max-headers",
        "20",
        "--max-header-bytes",
        "4096",
        "--max-request-line",
        "2048",
    ]);
    let big = "x".repeat(2000);
    let (head, _) = h2c(&server, &["--data-binary", &big], "/echo");
    assert!(head.starts_with("HTTP/2 413"), "{head}");
    let mut args: Vec<String> = Vec::new();
    for i in 0..30 {
        args.push("-H".into());
        args.push(format!("X-Field-{i}: {i}"));
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let (head, _) = h2c(&server, &refs, "/plaintext");
    assert!(head.starts_with("HTTP/2 431"), "{head}");
    let long = format!("X-Long: {}", "v".repeat(5000));
    let (head, _) = h2c(&server, &["-H", &long], "/plaintext");
    assert!(head.starts_with("HTTP/2 431"), "{head}");
    // The connection-level limits did not harm the next request.
    let (head, _) = h2c(&server, &[], "/plaintext");
    assert!(head.starts_with("HTTP/2 200"), "{head}");
}

#[test]
fn the_access_log_says_http2() {
    let dir = TempDir::new("h2log");
    let log = dir.join("access.log");
    let mut server = Server::start(&["--h2c", "true", "--access-log", log.to_str().unwrap()]);
    let (head, _) = h2c(&server, &["-A", "h2-test-agent"], "/json?x=1");
    assert!(head.starts_with("HTTP/2 200"), "{head}");
    server.signal("TERM");
    server.wait_exit(Duration::from_secs(30));
    let text = std::fs::read_to_string(&log).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("h2-test-agent"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.contains("\"GET /json?x=1 HTTP/2.0\" 200 27"), "{line}");
}

/// A Python client (Debian's python3-h2) opens one connection and runs 100 streams on it at
/// once; every one gets its own answer, and the server saw one connection.
#[test]
fn many_concurrent_streams_share_one_connection() {
    let server = Server::start(&["--h2c", "true", "--admin", "127.0.0.1:0"]);
    let script = r#"
import socket, sys
import h2.connection, h2.events
port = int(sys.argv[1])
s = socket.create_connection(("127.0.0.1", port), timeout=30)
c = h2.connection.H2Connection()
c.initiate_connection()
paths = ["/plaintext", "/json", "/nope"]
want = {}
for i in range(100):
    sid = c.get_next_available_stream_id()
    path = paths[i % 3]
    c.send_headers(sid, [(":method", "GET"), (":path", path), (":scheme", "http"), (":authority", "t")], end_stream=True)
    want[sid] = path
s.sendall(c.data_to_send())
status, bodies, done = {}, {}, set()
while len(done) < len(want):
    data = s.recv(65536)
    if not data:
        sys.exit("closed early after %d streams" % len(done))
    for e in c.receive_data(data):
        if isinstance(e, h2.events.ResponseReceived):
            status[e.stream_id] = dict(e.headers)[b":status"]
        elif isinstance(e, h2.events.DataReceived):
            bodies[e.stream_id] = bodies.get(e.stream_id, b"") + e.data
            c.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
        elif isinstance(e, h2.events.StreamEnded):
            done.add(e.stream_id)
    s.sendall(c.data_to_send())
for sid, path in want.items():
    body = bodies.get(sid, b"")
    expect = {"/plaintext": (b"200", b"Hello, World!"), "/json": (b"200", b'{"message":"Hello, World!"}'), "/nope": (b"404", None)}[path]
    assert status[sid] == expect[0], (sid, path, status[sid])
    if expect[1] is not None:
        assert body == expect[1], (sid, path, body)
print("ok", len(done))
"#;
    let out = run_bounded(
        Command::new(debian_python()).args(["-c", script, &server.port().to_string()]),
        Duration::from_secs(60),
    );
    out.assert_success("the Python h2 client (apt-get install -y python3-h2)");
    assert_eq!(out.stdout_str().trim(), "ok 100");
    assert_eq!(server.metric("ringd_http2_connections_total"), 1.0);
    assert_eq!(
        server.metric("ringd_http_requests_by_protocol_total{protocol=\"HTTP/2.0\"}"),
        100.0
    );
}

/// A 1 GiB file goes out within the peer's windows, read a piece at a time: the server's memory
/// does not grow with the file.
#[test]
fn a_large_file_streams_with_bounded_memory() {
    let dir = TempDir::new("h2big");
    let root = dir.join("site");
    std::fs::create_dir_all(&root).unwrap();
    let file = std::fs::File::create(root.join("huge.bin")).unwrap();
    file.set_len(1 << 30).unwrap();
    let server = Server::start(&["--h2c", "true", "--root", root.to_str().unwrap()]);
    let before = server.rss_kib();
    let out = curl(&[
        "--http2-prior-knowledge",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{size_download} %{http_version}",
        &server.url("/huge.bin"),
    ]);
    out.assert_success("curl of 1 GiB over h2c");
    assert_eq!(out.stdout_str(), format!("200 {} 2", 1u64 << 30));
    let after = server.rss_kib();
    assert!(
        after < before + 64 * 1024,
        "RSS grew from {before} KiB to {after} KiB sending a 1 GiB file"
    );
}

/// An HTTP/2 connection with nothing open is told `GOAWAY(NO_ERROR)` at the keep-alive timeout
/// after its last stream, and closed; before its first request, at the header timeout.
#[test]
fn idle_h2_connections_get_goaway_at_their_timeouts() {
    use common::h2raw::*;
    let server = Server::start(&["--h2c", "true", "--keepalive-timeout", "2", "--header-timeout", "2"]);
    // Kept alive after a request.
    let mut c = Raw::open(server.addr);
    c.frame(HEADERS, END_HEADERS | END_STREAM, 1, &get("/plaintext"));
    let mut answered = false;
    while !answered {
        match c.read_frame(Duration::from_secs(10)) {
            Some((DATA, flags, 1, _)) if flags & END_STREAM != 0 => answered = true,
            Some(_) => {}
            None => panic!("no answer"),
        }
    }
    let idle = std::time::Instant::now();
    assert_eq!(c.goaway(Duration::from_secs(20)), Some(0), "GOAWAY(NO_ERROR)");
    assert!(
        idle.elapsed() >= Duration::from_secs(1),
        "closed before the keep-alive timeout"
    );
    // Silent after the preface.
    let mut c = Raw::open(server.addr);
    let silent = std::time::Instant::now();
    assert_eq!(c.goaway(Duration::from_secs(20)), Some(0), "GOAWAY(NO_ERROR)");
    assert!(
        silent.elapsed() >= Duration::from_secs(1),
        "closed before the header timeout"
    );
    // Both are closed by the server after their GOAWAY.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !c.closed() {
        assert!(std::time::Instant::now() < deadline, "still open after GOAWAY");
        std::thread::sleep(Duration::from_millis(100));
    }
    server.assert_no_panic();
}

/// SIGHUP applies `[http2]` to new connections: h2c turned off, a prior-knowledge client is
/// no longer served HTTP/2, HTTP/1.1 is.
#[test]
fn sighup_turns_h2c_off_for_new_connections() {
    let dir = TempDir::new("h2reload");
    let conf = dir.write("ringd.toml", b"[http2]\ncleartext = true\n");
    let server = Server::start(&["--config", conf.to_str().unwrap()]);
    let (head, _) = h2c(&server, &[], "/plaintext");
    assert!(head.starts_with("HTTP/2 200"), "{head}");
    dir.write("ringd.toml", b"[http2]\ncleartext = false\n");
    server.signal("HUP");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let out = curl(&["--http2-prior-knowledge", &server.url("/plaintext")]);
        if !out.status.success() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "h2c still served after the reload"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = roundtrip(server.addr, b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 200);
    server.assert_no_panic();
}
