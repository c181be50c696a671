//! HTTPS end to end: a test CA made with `openssl`, then real clients (curl over TLS 1.3 and 1.2,
//! Python's `ssl` + `http.client`, `openssl s_client` for ALPN, SNI and resumption), a certificate
//! reload under a live keep-alive connection, the redirect listener, and bad input on the TLS
//! port (plain HTTP, garbage, a truncated or stalled handshake), each ending cleanly.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::pki::{Issued, KeyKind, Pki};
use common::*;

fn tls_args<'a>(leaf: &'a Issued, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["--tls-cert", leaf.cert_str(), "--tls-key", leaf.key_str()];
    args.extend_from_slice(extra);
    args
}

/// `curl -sS` with the test CA, `localhost` pinned to the server's address.
fn curl(pki: &Pki, server: &Server, args: &[&str]) -> Output {
    require_tool("curl", "curl");
    let resolve = format!("localhost:{}:127.0.0.1", server.port());
    run_bounded(
        Command::new("curl")
            .args([
                "-sS",
                "--max-time",
                "20",
                "--cacert",
                pki.ca_str(),
                "--resolve",
                &resolve,
            ])
            .args(args),
        Duration::from_secs(30),
    )
}

fn https(server: &Server, path: &str) -> String {
    format!("https://localhost:{}{path}", server.port())
}

/// `openssl s_client` sending `input` (and reading until the server closes).
fn s_client(args: &[&str], input: &[u8]) -> Output {
    require_tool("openssl", "openssl");
    run_bounded_with_input(
        Command::new("openssl").arg("s_client").arg("-ign_eof").args(args),
        Some(input),
        Duration::from_secs(30),
    )
}

/// The sum over workers of a counter on the admin listener's `/metrics`.
fn metric(server: &Server, name: &str) -> u64 {
    server.metric(name) as u64
}

const GET_CLOSE: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";

#[test]
fn curl_over_tls13_and_tls12_with_small_and_large_bodies() {
    let pki = Pki::new();
    let leaf = pki.issue("localhost", &["localhost"], KeyKind::EcPkcs8);
    let site = TempDir::new("tls-site");
    site.write("index.html", b"hello over TLS");
    let big = pseudo_random(3 << 20, 11);
    site.write("big.bin", &big);
    let server = Server::start(&tls_args(&leaf, &["--root", site.path_str()]));
    for (flags, version) in [
        (&["--tlsv1.3"][..], "TLSv1.3"),
        (&["--tlsv1.2", "--tls-max", "1.2"][..], "TLSv1.2"),
    ] {
        let mut args = vec!["-v"];
        args.extend_from_slice(flags);
        args.push("--http1.1");
        let url = https(&server, "/");
        args.push(&url);
        let out = curl(&pki, &server, &args);
        assert!(out.status.success(), "curl {flags:?} failed:\n{}", out.stderr);
        assert_eq!(out.stdout_str(), "hello over TLS");
        assert!(
            out.stderr.contains(&format!("SSL connection using {version}")),
            "{}",
            out.stderr
        );
        assert!(out.stderr.contains("SSL certificate verify ok"), "{}", out.stderr);

        // 3 MiB: many TLS records, several io_uring writes, byte for byte.
        let url = https(&server, "/big.bin");
        let out = curl(&pki, &server, &[flags, &[url.as_str()]].concat());
        assert!(out.status.success(), "{}", out.stderr);
        assert!(
            out.stdout == big,
            "big.bin differs over {version} ({} bytes)",
            out.stdout.len()
        );
    }
    // Plain HTTP clients are not served on the TLS port.
    let out = curl(&pki, &server, &[&server.url("/")]);
    assert!(!out.stdout_str().contains("hello over TLS"));
    server.assert_no_panic();
}

#[test]
fn uploads_chunked_and_with_100_continue_over_tls() {
    let pki = Pki::new();
    let leaf = pki.issue("localhost", &["localhost"], KeyKind::EcPkcs8);
    let server = Server::start(&tls_args(&leaf, &["--max-body", "4000000"]));
    let dir = TempDir::new("tls-upload");
    let body = pseudo_random(700_000, 5);
    let file = dir.write("body.bin", &body);
    let data = format!("@{}", file.to_str().unwrap());
    let url = https(&server, "/echo");
    // HTTP/1.1's own ways of uploading (curl would take HTTP/2 by ALPN otherwise).
    for header in ["Transfer-Encoding: chunked", "Expect: 100-continue"] {
        let out = curl(
            &pki,
            &server,
            &["-v", "--http1.1", "--data-binary", &data, "-H", header, &url],
        );
        assert!(out.status.success(), "{header}: {}", out.stderr);
        assert!(
            out.stdout == body,
            "{header}: the echo differs ({} bytes)",
            out.stdout.len()
        );
        if header.starts_with("Expect") {
            assert!(out.stderr.contains("HTTP/1.1 100 Continue"), "{}", out.stderr);
        }
    }
    server.assert_no_panic();
}

const PY_CLIENT: &str = r#"
import http.client, json, ssl, sys
port, ca, maxver = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
ctx.set_alpn_protocols(["http/1.1"])
if maxver == "1.2":
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
c = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=20)
out = {}
c.request("GET", "/plaintext")
r = c.getresponse()
out["plain"] = r.read().decode()
sock = c.sock
body = bytes(range(256)) * 1200
c.request("POST", "/echo", body=body)
r = c.getresponse()
out["echo_status"] = r.status
out["echo_ok"] = r.read() == body
c.request("GET", "/json")
r = c.getresponse()
out["json"] = json.loads(r.read())
out["same_connection"] = c.sock is sock
out["version"] = c.sock.version()
out["alpn"] = c.sock.selected_alpn_protocol()
print(json.dumps(out))
"#;

#[test]
fn python_keeps_one_tls_connection_for_several_requests() {
    let pki = Pki::new();
    let leaf = pki.issue("localhost", &["localhost"], KeyKind::EcSec1);
    let server = Server::start(&tls_args(&leaf, &[]));
    for (max, version) in [("1.3", "TLSv1.3"), ("1.2", "TLSv1.2")] {
        let port = server.port().to_string();
        let v = python_json(PY_CLIENT, &[&port, pki.ca_str(), max]);
        assert_eq!(v["plain"], "Hello, World!", "{v}");
        assert_eq!(v["echo_status"], 200, "{v}");
        assert_eq!(v["echo_ok"], true, "{v}");
        assert_eq!(v["json"]["message"], "Hello, World!", "{v}");
        assert_eq!(v["same_connection"], true, "{v}");
        assert_eq!(v["version"], version, "{v}");
        assert_eq!(v["alpn"], "http/1.1", "{v}");
    }
    server.assert_no_panic();
}

#[test]
fn every_key_form_serves() {
    let pki = Pki::new();
    for (tag, kind) in [
        ("pkcs8", KeyKind::EcPkcs8),
        ("sec1", KeyKind::EcSec1),
        ("rsa", KeyKind::RsaPkcs1),
    ] {
        let leaf = pki.issue(tag, &["localhost"], kind);
        // The environment stands in for the flags, as for every other flag.
        let server = Server::start_with_env(
            &[],
            &[("RINGD_TLS_CERT", leaf.cert_str()), ("RINGD_TLS_KEY", leaf.key_str())],
        );
        let out = curl(&pki, &server, &[&https(&server, "/plaintext")]);
        assert!(out.status.success(), "{tag}: {}", out.stderr);
        assert_eq!(out.stdout_str(), "Hello, World!", "{tag}");
    }
}

fn subject_of(out: &Output) -> String {
    let text = out.stdout_str();
    text.lines()
        .find_map(|l| l.strip_prefix("subject="))
        .unwrap_or_else(|| panic!("no subject in s_client output:\n{text}\n{}", out.stderr))
        .trim()
        .to_owned()
}

#[test]
fn sni_chooses_the_certificate_and_alpn_the_protocol() {
    let pki = Pki::new();
    let default = pki.issue("default", &["localhost"], KeyKind::EcPkcs8);
    let a = pki.issue("a", &["a.test"], KeyKind::EcSec1);
    let b = pki.issue("b", &["*.b.test"], KeyKind::RsaPkcs1);
    let dir = TempDir::new("tls-sni");
    let config = format!(
        "[tls]\ncert = {:?}\nkey = {:?}\n\n[[tls.sni]]\nnames = [\"a.test\"]\ncert = {:?}\nkey = {:?}\n\n[[tls.sni]]\nnames = [\"*.b.test\"]\ncert = {:?}\nkey = {:?}\n",
        default.cert_str(),
        default.key_str(),
        a.cert_str(),
        a.key_str(),
        b.cert_str(),
        b.key_str()
    );
    let conf = dir.write("ringd.toml", config.as_bytes());
    let server = Server::start(&["--config", conf.to_str().unwrap()]);
    let connect = server.addr.to_string();
    for (name, subject) in [
        (Some("a.test"), "CN = a.test"),
        (Some("x.b.test"), "CN = *.b.test"),
        (Some("other.test"), "CN = localhost"),
        (None, "CN = localhost"),
    ] {
        // A client that speaks only HTTP/1.1 gets it (HTTP/2 clients get h2: tests/http2.rs).
        let mut args = vec!["-connect", &connect, "-CAfile", pki.ca_str(), "-alpn", "http/1.1"];
        match name {
            Some(n) => args.extend_from_slice(&["-servername", n]),
            None => args.push("-noservername"),
        }
        let out = s_client(&args, GET_CLOSE);
        let text = out.stdout_str();
        assert_eq!(subject_of(&out), subject, "server name {name:?}");
        assert!(text.contains("ALPN protocol: http/1.1"), "{name:?}:\n{text}");
        assert!(text.contains("Verify return code: 0 (ok)"), "{name:?}:\n{text}");
        assert!(
            text.contains("HTTP/1.1 200 OK") && text.contains("Hello, World!"),
            "{name:?}:\n{text}"
        );
    }
    server.assert_no_panic();
}

#[test]
fn returning_clients_resume_on_any_worker() {
    let pki = Pki::new();
    let leaf = pki.issue("localhost", &["localhost"], KeyKind::EcPkcs8);
    let server = Server::start(&tls_args(&leaf, &["--workers", "2", "--admin", "127.0.0.1:0"]));
    let connect = server.addr.to_string();
    for (flag, version) in [("-tls1_3", "TLSv1.3"), ("-tls1_2", "TLSv1.2")] {
        let session = pki.dir.join(&format!("session{flag}"));
        let session = session.to_str().unwrap();
        let base = [
            "-connect",
            &connect,
            "-servername",
            "localhost",
            "-CAfile",
            pki.ca_str(),
            flag,
        ];
        let out = s_client(&[&base[..], &["-sess_out", session]].concat(), GET_CLOSE);
        let text = out.stdout_str();
        assert!(text.contains(&format!("New, {version}")), "{text}");
        assert!(text.contains("Hello, World!"), "{text}");
        // New connections land on either worker (SO_REUSEPORT); the ticket keys are shared.
        for _ in 0..4 {
            let out = s_client(&[&base[..], &["-sess_in", session]].concat(), GET_CLOSE);
            let text = out.stdout_str();
            assert!(text.contains(&format!("Reused, {version}")), "{text}");
            assert!(text.contains("Hello, World!"), "{text}");
        }
    }
    assert_eq!(metric(&server, "ringd_tls_handshakes_full_total"), 2);
    assert_eq!(metric(&server, "ringd_tls_handshakes_resumed_total"), 8);
    assert_eq!(metric(&server, "ringd_tls_failures_total"), 0);
    server.assert_no_panic();
}

const PY_KEEPALIVE: &str = r#"
import http.client, json, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)
def cn(sock):
    return dict(x[0] for x in sock.getpeercert()["subject"])["commonName"]
c = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=30)
c.request("GET", "/plaintext")
r = c.getresponse(); r.read()
sock = c.sock
print(json.dumps({"step": 1, "status": r.status, "cn": cn(c.sock)}), flush=True)
sys.stdin.readline()
c.request("GET", "/plaintext")
r = c.getresponse(); body = r.read().decode()
print(json.dumps({"step": 2, "status": r.status, "body": body, "cn": cn(c.sock), "same": c.sock is sock}), flush=True)
"#;

/// Starts the `PY_KEEPALIVE` client against `port` and reads its first answer: the client, the
/// rest of its output and that answer. A line on its stdin makes it ask again on the same
/// connection. Its stderr is left to the test's.
fn keepalive_client(
    port: &str,
    pki: &Pki,
) -> (
    std::process::Child,
    std::io::Lines<BufReader<std::process::ChildStdout>>,
    serde_json::Value,
) {
    let mut client = Command::new("python3")
        .args(["-c", PY_KEEPALIVE, port, pki.ca_str()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(client.stdout.take().unwrap()).lines();
    let first = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    (client, lines, first)
}

const PY_SUBJECT: &str = r#"
import json, socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20) as s:
    with ctx.wrap_socket(s, server_hostname="localhost") as t:
        print(json.dumps(dict(x[0] for x in t.getpeercert()["subject"])["commonName"]))
"#;

#[test]
fn sighup_swaps_the_certificate_and_keeps_open_connections() {
    require_tool("python3", "python3");
    let pki = Pki::new();
    let alpha = pki.issue("alpha", &["alpha.test", "localhost"], KeyKind::EcPkcs8);
    let beta = pki.issue("beta", &["beta.test", "localhost"], KeyKind::RsaPkcs1);
    let dir = TempDir::new("tls-reload");
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    std::fs::copy(&alpha.cert, &cert).unwrap();
    std::fs::copy(&alpha.key, &key).unwrap();
    let config = format!(
        "[tls]\ncert = {:?}\nkey = {:?}\n",
        cert.to_str().unwrap(),
        key.to_str().unwrap()
    );
    let conf = dir.write("ringd.toml", config.as_bytes());
    let mut server = Server::start(&["--config", conf.to_str().unwrap()]);
    let port = server.port().to_string();
    let subject = || python_json(PY_SUBJECT, &[&port, pki.ca_str()]);
    assert_eq!(subject(), "alpha.test");

    // A keep-alive connection made with the old certificate.
    let (mut kept, mut lines, first) = keepalive_client(&port, &pki);
    assert_eq!(first["status"], 200, "{first}");
    assert_eq!(first["cn"], "alpha.test", "{first}");

    std::fs::copy(&beta.cert, &cert).unwrap();
    std::fs::copy(&beta.key, &key).unwrap();
    server.signal("HUP");
    assert!(
        poll_until(Duration::from_secs(10), || server
            .log()
            .contains("TLS certificate(s) reloaded")),
        "{}",
        server.log()
    );
    assert_eq!(subject(), "beta.test");

    // The old connection is still open, still on the old certificate, and answers.
    kept.stdin.as_mut().unwrap().write_all(b"\n").unwrap();
    let second: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(second["status"], 200, "{second}");
    assert_eq!(second["body"], "Hello, World!", "{second}");
    assert_eq!(second["cn"], "alpha.test", "{second}");
    assert_eq!(second["same"], true, "{second}");
    assert!(kept.wait().unwrap().success());

    // A key that is not the certificate's: the reload fails, the running certificate stays.
    std::fs::copy(&alpha.key, &key).unwrap();
    server.signal("HUP");
    assert!(
        poll_until(Duration::from_secs(10), || server.log().contains("reload failed")),
        "{}",
        server.log()
    );
    let log = server.log();
    let line = log.lines().find(|l| l.contains("reload failed")).unwrap();
    assert!(
        line.contains("does not match") && line.contains(key.to_str().unwrap()),
        "{line}"
    );
    assert_eq!(subject(), "beta.test");

    // TLS cannot be switched off by a reload: named in the log, and HTTPS goes on.
    std::fs::copy(&beta.key, &key).unwrap();
    dir.write("ringd.toml", b"log = \"info\"\n");
    server.signal("HUP");
    assert!(
        poll_until(Duration::from_secs(10), || server
            .log()
            .contains("tls cannot change while ringd runs")),
        "{}",
        server.log()
    );
    assert_eq!(subject(), "beta.test");
    server.assert_alive();
    server.assert_no_panic();
}

#[test]
fn sigterm_drains_an_idle_tls_connection_and_exits_0() {
    require_tool("python3", "python3");
    let pki = Pki::new();
    let leaf = pki.issue("localhost", &["localhost"], KeyKind::EcPkcs8);
    let mut server = Server::start(&tls_args(&leaf, &[]));
    let port = server.port().to_string();
    let (mut kept, _lines, first) = keepalive_client(&port, &pki);
    assert_eq!(first["status"], 200, "{first}");
    // The idle keep-alive connection gets `timeouts.drain_idle` (1 s), then the server exits.
    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(15));
    assert_eq!(status.code(), Some(0), "{}", server.log());
    assert!(server.log().contains("drained"), "{}", server.log());
    drop(kept.stdin.take());
    let _ = kept.kill();
    let _ = kept.wait();
}

#[test]
fn plain_port_redirects_to_https_and_hsts_is_a_header() {
    let pki = Pki::new();
    let leaf = pki.issue("localhost", &["localhost"], KeyKind::EcPkcs8);
    let dir = TempDir::new("tls-redirect");
    let config = format!(
        "[tls]\ncert = {:?}\nkey = {:?}\nredirect = [\"127.0.0.1:0\"]\n\n[headers]\nStrict-Transport-Security = \"max-age=63072000\"\n",
        leaf.cert_str(),
        leaf.key_str()
    );
    let conf = dir.write("ringd.toml", config.as_bytes());
    let server = Server::start(&["--config", conf.to_str().unwrap()]);
    assert!(
        poll_until(Duration::from_secs(10), || server.log().contains("redirecting")),
        "{}",
        server.log()
    );
    let log = server.log();
    let line = log.lines().find(|l| l.contains("redirecting")).unwrap();
    let plain = parse_listen_addrs(line)[0];
    let port = server.port();

    let r = roundtrip(plain, b"GET /a/b?c=d HTTP/1.1\r\nHost: localhost:1234\r\n\r\n");
    assert_eq!(r.status, 301);
    assert_eq!(
        r.header("location"),
        Some(format!("https://localhost:{port}/a/b?c=d").as_str())
    );
    let r = roundtrip(
        plain,
        b"POST /form HTTP/1.1\r\nHost: [::1]:80\r\nContent-Length: 2\r\n\r\nok",
    );
    assert_eq!(r.status, 308);
    assert_eq!(
        r.header("location"),
        Some(format!("https://[::1]:{port}/form").as_str())
    );
    let r = roundtrip(plain, b"GET http://example.org/x HTTP/1.1\r\nHost: example.org\r\n\r\n");
    assert_eq!(
        r.header("location"),
        Some(format!("https://example.org:{port}/x").as_str())
    );
    // No host, no redirect: there is nowhere to send the client.
    let r = roundtrip(plain, b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(r.status, 400);

    // curl follows the redirect to the TLS port (and speaks HTTP/2 there, by ALPN); the HTTPS
    // answer carries HSTS.
    let out = curl(
        &pki,
        &server,
        &["-L", "-i", &format!("http://localhost:{}/plaintext", plain.port())],
    );
    assert!(out.status.success(), "{}", out.stderr);
    let text = out.stdout_str();
    assert!(text.contains("HTTP/1.1 301") && text.contains("HTTP/2 200"), "{text}");
    assert!(text.ends_with("Hello, World!"), "{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains("strict-transport-security: max-age=63072000"),
        "{text}"
    );
    server.assert_no_panic();
}

// ---------------------------------------------------------------------------
// Bad input on the TLS port
// ---------------------------------------------------------------------------

/// Connects, sends what `mode` says, then reads until the server closes; reports how long the
/// server took, what it sent and how the connection ended.
const PY_RAW: &str = r#"
import json, os, socket, ssl, sys, time
port, mode = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
i, o = ssl.MemoryBIO(), ssl.MemoryBIO()
obj = ctx.wrap_bio(i, o, server_hostname="localhost")
try:
    obj.do_handshake()
except ssl.SSLWantReadError:
    pass
hello = o.read()
s = socket.create_connection(("127.0.0.1", port))
s.settimeout(60)
if mode == "plain":
    s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
elif mode == "garbage":
    s.sendall(bytes((i * 37 + 11) % 256 for i in range(200)))
elif mode == "bad-record":
    s.sendall(b"\x16\x03\x01\x00\x40" + bytes(64))
elif mode == "half-then-close":
    s.sendall(hello[: len(hello) // 2])
    s.shutdown(socket.SHUT_WR)
elif mode == "half-then-stall":
    s.sendall(hello[: len(hello) // 2])
elif mode == "hello-then-stall":
    s.sendall(hello)
elif mode == "silent":
    pass
t = time.monotonic()
got = b""
end = "eof"
try:
    while True:
        d = s.recv(65536)
        if not d:
            break
        got += d
except ConnectionResetError:
    end = "reset"
except socket.timeout:
    end = "timeout"
print(json.dumps({"elapsed": time.monotonic() - t, "bytes": len(got), "first": got[0] if got else None, "text": got[:200].decode("latin-1"), "end": end}))
"#;

fn raw(server: &Server, mode: &str) -> serde_json::Value {
    python_json(PY_RAW, &[&server.port().to_string(), mode])
}

#[test]
fn bad_input_is_closed_promptly_and_never_stops_the_server() {
    let pki = Pki::new();
    let leaf = pki.issue("localhost", &["localhost"], KeyKind::EcPkcs8);
    // The default header timeout (60 s): these closes are the server's answer, not a timeout.
    let mut server = Server::start(&tls_args(&leaf, &["--admin", "127.0.0.1:0"]));
    let v = raw(&server, "plain");
    assert!(
        v["text"].as_str().unwrap().starts_with("HTTP/1.1 400 Bad Request"),
        "{v}"
    );
    assert!(v["text"].as_str().unwrap().contains("https://"), "{v}");
    for mode in ["garbage", "bad-record", "half-then-close"] {
        let v = raw(&server, mode);
        assert_ne!(v["end"], "timeout", "{mode}: {v}");
        assert!(v["elapsed"].as_f64().unwrap() < 30.0, "{mode}: {v}");
        // Nothing, or a TLS alert record (content type 21).
        assert!(v["bytes"] == 0 || v["first"] == 21, "{mode}: {v}");
    }
    let out = curl(&pki, &server, &[&https(&server, "/plaintext")]);
    assert_eq!(out.stdout_str(), "Hello, World!", "{}", out.stderr);
    // plain, garbage and bad-record failed; half-then-close just left.
    assert_eq!(metric(&server, "ringd_tls_failures_total"), 3);
    assert_eq!(metric(&server, "ringd_tls_handshakes_full_total"), 1);
    server.assert_alive();
    server.assert_no_panic();
}

#[test]
fn stalled_handshakes_are_cut_at_the_header_timeout() {
    let pki = Pki::new();
    let leaf = pki.issue("localhost", &["localhost"], KeyKind::EcPkcs8);
    let mut server = Server::start(&tls_args(&leaf, &["--header-timeout", "2"]));
    // Run the stalls side by side: each must end at the header timeout, not one after another.
    let port = server.port();
    let stalls: Vec<_> = ["silent", "half-then-stall", "hello-then-stall"]
        .into_iter()
        .map(|mode| {
            std::thread::spawn(move || {
                let v = python_json(PY_RAW, &[&port.to_string(), mode]);
                (mode, v)
            })
        })
        .collect();
    // Meanwhile others are served.
    let out = curl(&pki, &server, &[&https(&server, "/plaintext")]);
    assert_eq!(out.stdout_str(), "Hello, World!", "{}", out.stderr);
    for stall in stalls {
        let (mode, v) = stall.join().unwrap();
        assert_ne!(v["end"], "timeout", "{mode}: {v}");
        let elapsed = v["elapsed"].as_f64().unwrap();
        // The sweeper runs once a second: the cut comes between 2 and about 3 s; the upper bound
        // only says "not a hang".
        assert!((1.0..30.0).contains(&elapsed), "{mode}: {v}");
    }
    let out = curl(&pki, &server, &[&https(&server, "/plaintext")]);
    assert_eq!(out.stdout_str(), "Hello, World!", "{}", out.stderr);
    server.assert_alive();
    server.assert_no_panic();
}

/// The server's own connection count comes back to zero after bad input (no leaked slot).
#[test]
fn bad_input_leaks_no_descriptor() {
    let pki = Pki::new();
    let leaf = pki.issue("localhost", &["localhost"], KeyKind::EcPkcs8);
    let server = Server::start(&tls_args(&leaf, &[]));
    let out = curl(&pki, &server, &[&https(&server, "/plaintext")]);
    assert!(out.status.success());
    let before = server.fd_count();
    for mode in ["plain", "garbage", "bad-record", "half-then-close"] {
        raw(&server, mode);
    }
    for _ in 0..5 {
        let mut s = server.connect();
        s.write_all(&pseudo_random(300, 5)).unwrap();
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink);
    }
    assert!(
        poll_until(Duration::from_secs(10), || server.fd_count() <= before),
        "descriptors: {} before, {} after",
        before,
        server.fd_count()
    );
}
