//! The PROXY protocol on a listener, end to end: v1 and v2 headers in one write with the
//! requests after them or in pieces, over HTTP and TLS; the client they name in the access log;
//! what is refused (no header, a bad one, an untrusted source, a header that never ends), each
//! closed and counted; the settings as `ringd check` prints them.

mod common;

use std::net::Ipv6Addr;
use std::process::Command;
use std::time::{Duration, Instant};

use common::pki::{KeyKind, Pki};
use common::*;

const GET: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: a\r\nUser-Agent: proxied\r\n\r\n";
const GET_CLOSE: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: a\r\nUser-Agent: proxied\r\nConnection: close\r\n\r\n";

fn v1(client: &str, port: u16) -> Vec<u8> {
    format!("PROXY TCP4 {client} 198.51.100.7 {port} 80\r\n").into_bytes()
}

/// A v2 PROXY header for a TCP6 connection from `client`, with an ALPN TLV.
fn v2_tcp6(client: &str, port: u16) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n\x21\x21".to_vec();
    let tlv = b"\x01\x00\x08http/1.1";
    h.extend_from_slice(&((36 + tlv.len()) as u16).to_be_bytes());
    h.extend_from_slice(&client.parse::<Ipv6Addr>().unwrap().octets());
    h.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
    h.extend_from_slice(&port.to_be_bytes());
    h.extend_from_slice(&443u16.to_be_bytes());
    h.extend_from_slice(tlv);
    h
}

/// A v2 LOCAL header (a balancer's own health check).
const V2_LOCAL: &[u8] = b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00";

fn start(dir: &TempDir, extra: &[&str]) -> Server {
    let log = dir.join("access.log");
    let mut args = vec![
        "--proxy-protocol",
        "--admin",
        "127.0.0.1:0",
        "--access-log",
        log.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    Server::start(&args)
}

/// The access log's lines once it holds at least `n` (bounded wait: it is flushed each second).
fn log_lines(dir: &TempDir, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(dir.join("access.log")).unwrap_or_default();
        let lines: Vec<String> = text.lines().map(str::to_owned).collect();
        if lines.len() >= n {
            return lines;
        }
        assert!(Instant::now() < deadline, "{} of {n} log lines:\n{text}", lines.len());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn refused(server: &Server, reason: &str) -> f64 {
    server.metric(&format!("ringd_proxy_protocol_refused_total{{reason=\"{reason}\"}}"))
}

#[test]
fn the_client_the_header_names_is_logged_whatever_the_version_and_the_writes() {
    let dir = TempDir::new("proxy-log");
    let server = start(&dir, &[]);

    // v1, with two pipelined requests in the same write: both answered without another read.
    let mut c = Conn::open(server.addr);
    c.send(&[&v1("192.0.2.1", 50001)[..], GET, GET].concat());
    assert_eq!(c.read_response(false).status, 200);
    assert_eq!(c.read_response(false).status, 200);

    // v2 over IPv6 with a TLV, the header alone, then the request byte by byte.
    let mut c = Conn::open(server.addr);
    c.send(&v2_tcp6("2001:db8::7", 50002));
    std::thread::sleep(Duration::from_millis(50));
    for b in GET_CLOSE {
        c.send(&[*b]);
    }
    assert_eq!(c.read_response(false).status, 200);

    // The header itself in pieces.
    let mut c = Conn::open(server.addr);
    let header = v1("203.0.113.9", 50003);
    for piece in header.chunks(7) {
        c.send(piece);
        std::thread::sleep(Duration::from_millis(5));
    }
    c.send(GET_CLOSE);
    assert_eq!(c.read_response(false).status, 200);

    // LOCAL: the connection's own address stands.
    let mut c = Conn::open(server.addr);
    c.send(&[V2_LOCAL, GET_CLOSE].concat());
    assert_eq!(c.read_response(false).status, 200);

    let lines = log_lines(&dir, 5);
    let addrs: Vec<&str> = lines.iter().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(
        addrs,
        ["192.0.2.1", "192.0.2.1", "2001:db8::7", "203.0.113.9", "127.0.0.1"],
        "{lines:#?}"
    );
    assert!(
        lines.iter().all(|l| l.contains("\"GET /plaintext HTTP/1.1\" 200 ")),
        "{lines:#?}"
    );
    for reason in ["untrusted", "invalid", "incomplete"] {
        assert_eq!(refused(&server, reason), 0.0, "{reason}");
    }
    server.assert_no_panic();
}

#[test]
fn a_connection_without_a_valid_header_is_closed_unanswered_and_counted() {
    let dir = TempDir::new("proxy-invalid");
    let server = start(&dir, &["--header-timeout", "1"]);
    let cases: [&[u8]; 5] = [
        b"GET /plaintext HTTP/1.1\r\nHost: a\r\n\r\n",
        b"PROXY TCP4 192.0.2.1 198.51.100.7 054321 80\r\nGET / HTTP/1.1\r\n\r\n",
        b"PROXY TCP4 192.0.2.1 198.51.100.7 1 80\nGET / HTTP/1.1\r\n\r\n",
        b"\r\n\r\n\0\r\nQUIT\n\x21\x12\x00\x0c\xc0\x00\x02\x01\xc6\x33\x64\x07\x00\x01\x00\x50",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
    ];
    for (i, bytes) in cases.iter().enumerate() {
        let mut s = server.connect();
        // The server may close before it has read everything: a failed write is fine.
        let _ = std::io::Write::write_all(&mut s, bytes);
        let got = read_to_close(&mut s);
        assert!(got.is_empty(), "case {i}: answered {:?}", String::from_utf8_lossy(&got));
        assert_eq!(refused(&server, "invalid"), (i + 1) as f64, "case {i}");
    }

    // Half a header, then silence: closed at the header timeout (1 s; the sweeper looks once a
    // second), not served.
    let mut s = server.connect();
    std::io::Write::write_all(&mut s, b"PROXY TCP4 192.0.2.1 ").unwrap();
    let started = Instant::now();
    assert!(read_to_close(&mut s).is_empty());
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    // Counted by the connection's task when the sweeper's shutdown ends its read, which this
    // client may see first (a busy machine preempts the worker in between): waited for, bounded.
    assert!(
        poll_until(Duration::from_secs(10), || refused(&server, "incomplete") >= 1.0),
        "the incomplete header was not counted"
    );
    assert_eq!(refused(&server, "incomplete"), 1.0);

    // Nothing was served, logged or leaked; a good header still works.
    let mut c = Conn::open(server.addr);
    c.send(&[&v1("192.0.2.44", 1)[..], GET_CLOSE].concat());
    assert_eq!(c.read_response(false).status, 200);
    let lines = log_lines(&dir, 1);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(lines[0].starts_with("192.0.2.44 "), "{lines:#?}");
    // Its slot goes once the answer is sent, which this client may read first.
    assert!(
        poll_until(Duration::from_secs(10), || server.metric("ringd_connections_open")
            == 0.0),
        "a connection is still counted open"
    );
    server.assert_no_panic();
}

#[test]
fn only_trusted_sources_may_send_a_header() {
    let dir = TempDir::new("proxy-trust");
    // Loopback is not in the list: every connection is refused before a byte is read.
    let server = start(&dir, &["--proxy-protocol-trusted", "10.0.0.0/8,2001:db8::/32"]);
    for _ in 0..3 {
        let mut s = server.connect();
        let _ = std::io::Write::write_all(&mut s, &[&v1("192.0.2.1", 1)[..], GET_CLOSE].concat());
        assert!(read_to_close(&mut s).is_empty());
    }
    assert_eq!(refused(&server, "untrusted"), 3.0);
    // Each refusal is logged, naming the source and the setting (written before the close, read
    // through the log's pipe).
    assert!(
        server.wait_log(|log| log
            .lines()
            .filter(|l| l.contains("127.0.0.1") && l.contains("is not in proxy_protocol.trusted"))
            .count()
            == 3),
        "{}",
        server.log()
    );
    drop(server);

    let server = start(&dir, &["--proxy-protocol-trusted", "10.0.0.0/8,127.0.0.0/8"]);
    let mut c = Conn::open(server.addr);
    c.send(&[&v1("192.0.2.1", 1)[..], GET_CLOSE].concat());
    assert_eq!(c.read_response(false).status, 200);
    assert_eq!(refused(&server, "untrusted"), 0.0);
}

/// Sends the header and the TLS ClientHello in one write (so that the server reads them in one
/// read, the ClientHello after the header), completes the handshake and asks for /plaintext.
const PY_TLS_AFTER_HEADER: &str = r#"
import json, socket, ssl, sys
port, ca, header = int(sys.argv[1]), sys.argv[2], bytes.fromhex(sys.argv[3])
ctx = ssl.create_default_context(cafile=ca)
incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
tls = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
s = socket.create_connection(("127.0.0.1", port), timeout=20)
def pump():
    data = outgoing.read()
    if data:
        s.sendall(data)
    chunk = s.recv(65536)
    if not chunk:
        sys.exit("the server closed")
    incoming.write(chunk)
try:
    tls.do_handshake()
except ssl.SSLWantReadError:
    pass
s.sendall(header + outgoing.read())
while True:
    try:
        tls.do_handshake()
        break
    except ssl.SSLWantReadError:
        pump()
tls.write(b"GET /plaintext HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
s.sendall(outgoing.read())
response = b""
while b"\r\n\r\n" not in response:
    try:
        response += tls.read(65536)
    except ssl.SSLWantReadError:
        pump()
print(json.dumps({"status": int(response.split(b" ")[1]), "version": tls.version()}))
"#;

#[test]
fn over_tls_the_header_comes_first_and_the_handshake_after_it() {
    let pki = Pki::new();
    let leaf = pki.issue("localhost", &["localhost"], KeyKind::EcPkcs8);
    let dir = TempDir::new("proxy-tls");
    let server = start(&dir, &["--tls-cert", leaf.cert_str(), "--tls-key", leaf.key_str()]);
    let port = server.port().to_string();
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let got = python_json(
        PY_TLS_AFTER_HEADER,
        &[&port, pki.ca_str(), &hex(&v1("192.0.2.81", 4433))],
    );
    assert_eq!(got["status"], 200, "{got}");
    let got = python_json(
        PY_TLS_AFTER_HEADER,
        &[&port, pki.ca_str(), &hex(&v2_tcp6("2001:db8::81", 4434))],
    );
    assert_eq!(got["status"], 200, "{got}");
    let lines = log_lines(&dir, 2);
    let addrs: Vec<&str> = lines.iter().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(addrs, ["192.0.2.81", "2001:db8::81"], "{lines:#?}");
    // A TLS client without the header is refused like any other.
    let mut s = server.connect();
    let _ = std::io::Write::write_all(&mut s, b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03");
    assert!(read_to_close(&mut s).is_empty());
    assert_eq!(refused(&server, "invalid"), 1.0);
    assert_eq!(server.metric("ringd_tls_handshakes_full_total"), 2.0);
}

#[test]
fn check_prints_the_settings_back_and_refuses_bad_ones() {
    let dir = TempDir::new("proxy-check");
    let conf = dir.write(
        "ringd.toml",
        b"listen = [\"127.0.0.1:8081\", { address = \"127.0.0.1:8082\", proxy_protocol = true }]\n\n[proxy_protocol]\ntrusted = [\"10.0.0.0/8\", \"2001:db8::/32\", \"192.0.2.7\"]\n",
    );
    let check = |args: &[&str]| run_bounded(Command::new(bin()).arg("check").args(args), Duration::from_secs(30));
    let out = check(&["--config", conf.to_str().unwrap()]);
    out.assert_success("ringd check");
    let text = out.stdout_str();
    assert!(
        text.contains("listen = [\"127.0.0.1:8081\", { address = \"127.0.0.1:8082\", proxy_protocol = true }]"),
        "{text}"
    );
    assert!(
        text.contains("[proxy_protocol]\ntrusted = [\"10.0.0.0/8\", \"2001:db8::/32\", \"192.0.2.7/32\"]"),
        "{text}"
    );
    // What check prints reads back to itself.
    let again = dir.write("again.toml", text.as_bytes());
    let out = check(&["--config", again.to_str().unwrap()]);
    out.assert_success("ringd check (its own output)");
    assert_eq!(out.stdout_str(), text);
    // The flag turns it on for every --listen address (and the flags' listen replaces the file's).
    let out = check(&[
        "--config",
        conf.to_str().unwrap(),
        "--listen",
        "127.0.0.1:9,127.0.0.1:10",
        "--proxy-protocol",
    ]);
    let text = out.stdout_str();
    assert_eq!(text.matches("proxy_protocol = true").count(), 2, "{text}");
    let out = check(&["--config", conf.to_str().unwrap(), "--proxy-protocol", "false"]);
    assert!(
        !out.stdout_str().contains("proxy_protocol = true"),
        "{}",
        out.stdout_str()
    );

    for (bad, says) in [
        ("[proxy_protocol]\ntrusted = [\"10.1.2.3/8\"]\n", "write 10.0.0.0/8"),
        ("[proxy_protocol]\ntrusted = [\"10.0.0.0/33\"]\n", "prefix length"),
        ("[proxy_protocol]\ntrusted = [\"lb.example\"]\n", "not an IP address"),
        ("[proxy_protocol]\ntrusted = \"10.0.0.0/8\"\n", "line 2"),
        (
            "listen = [{ addres = \"127.0.0.1:1\" }]\n",
            "{ address = \"HOST:PORT\", proxy_protocol = true }",
        ),
        (
            "listen = [{ address = \"127.0.0.1:1\", proxy_protocol = \"yes\" }]\n",
            "listen entries are",
        ),
    ] {
        let conf = dir.write("bad.toml", bad.as_bytes());
        let out = check(&["--config", conf.to_str().unwrap()]);
        assert!(!out.status.success(), "{bad}");
        assert!(out.stderr.contains(says), "{bad}: {}", out.stderr);
        assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
    }
}

#[test]
fn sighup_changes_who_is_trusted() {
    let dir = TempDir::new("proxy-reload");
    let conf = dir.write("ringd.toml", b"[proxy_protocol]\ntrusted = [\"10.0.0.0/8\"]\n");
    let server = start(&dir, &["--config", conf.to_str().unwrap()]);
    let ask = || {
        let mut s = server.connect();
        let _ = std::io::Write::write_all(&mut s, &[&v1("192.0.2.5", 5)[..], GET_CLOSE].concat());
        read_to_close(&mut s)
    };
    assert!(ask().is_empty(), "loopback is not trusted yet");
    dir.write(
        "ringd.toml",
        b"[proxy_protocol]\ntrusted = [\"10.0.0.0/8\", \"127.0.0.1\"]\n",
    );
    server.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.log().contains("changed: proxy_protocol.trusted") {
        assert!(Instant::now() < deadline, "no reload logged:\n{}", server.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(ask().starts_with(b"HTTP/1.1 200 "));
    assert_eq!(refused(&server, "untrusted"), 1.0);
}

#[test]
fn http2_follows_the_header_in_the_clear_and_over_tls() {
    use common::h2raw::{get, Raw, END_HEADERS, END_STREAM, HEADERS, SETTINGS};
    let pki = Pki::new();
    let leaf = pki.issue("localhost", &["localhost"], KeyKind::EcPkcs8);
    let dir = TempDir::new("proxy-h2c");
    let server = start(&dir, &["--h2c", "true"]);
    // The header, the HTTP/2 preface and a request in one write: h2c with prior knowledge is
    // recognised in the bytes that followed the header.
    let mut s = server.connect();
    let mut bytes = v1("192.0.2.20", 2020);
    bytes.extend_from_slice(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    bytes.extend(Raw::encode(SETTINGS, 0, 0, &[]));
    bytes.extend(Raw::encode(HEADERS, END_STREAM | END_HEADERS, 1, &get("/plaintext")));
    std::io::Write::write_all(&mut s, &bytes).unwrap();
    let line = log_lines(&dir, 1).remove(0);
    assert!(
        line.starts_with("192.0.2.20 ") && line.contains("\"GET /plaintext HTTP/2.0\" 200 "),
        "{line}"
    );
    drop(s);

    // curl sends a v1 header (with its own addresses), then TLS with ALPN h2.
    let dir = TempDir::new("proxy-h2");
    let server = start(&dir, &["--tls-cert", leaf.cert_str(), "--tls-key", leaf.key_str()]);
    require_tool("curl", "curl");
    let resolve = format!("localhost:{}:127.0.0.1", server.port());
    let url = format!("https://localhost:{}/plaintext", server.port());
    let out = run_bounded(
        Command::new("curl").args([
            "-sS",
            "-i",
            "--max-time",
            "20",
            "--haproxy-protocol",
            "--http2",
            "--cacert",
            pki.ca_str(),
            "--resolve",
            &resolve,
            &url,
        ]),
        Duration::from_secs(30),
    );
    out.assert_success("curl --haproxy-protocol --http2");
    assert!(out.stdout_str().starts_with("HTTP/2 200"), "{}", out.stdout_str());
    let line = log_lines(&dir, 1).remove(0);
    assert!(
        line.starts_with("127.0.0.1 ") && line.contains("HTTP/2.0\" 200 "),
        "{line}"
    );
    assert_eq!(refused(&server, "invalid"), 0.0);
}
