//! Real third-party clients against the real server: curl, Python's
//! http.client, and wrk.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

const HELLO: &str = "Hello, World!";
const JSON: &str = r#"{"message":"Hello, World!"}"#;
const TOOL_TIMEOUT: Duration = Duration::from_secs(60);

fn curl(args: &[&str]) -> Output {
    require_tool("curl", "curl");
    let out = run_bounded(Command::new("curl").args(["--max-time", "20"]).args(args), TOOL_TIMEOUT);
    out.assert_success(format_args!("curl {args:?}"));
    out
}

/// Split `curl -i` output into (head, body).
fn split_i(out: &[u8]) -> (String, Vec<u8>) {
    let i = find(out, b"\r\n\r\n").expect("curl -i output has a head");
    (String::from_utf8_lossy(&out[..i]).into_owned(), out[i + 4..].to_vec())
}

fn head_has(head: &str, name: &str, value: &str) -> bool {
    head.lines().any(|l| {
        l.split_once(':')
            .is_some_and(|(k, v)| k.trim().eq_ignore_ascii_case(name) && v.trim() == value)
    })
}

// ---------------------------------------------------------------------------
// curl
// ---------------------------------------------------------------------------

#[test]
fn curl_get_plaintext_and_json() {
    let s = Server::start(&[]);
    let out = curl(&["-sS", "-i", &s.url("/plaintext")]);
    let (head, body) = split_i(&out.stdout);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head_has(&head, "Content-Type", "text/plain; charset=utf-8"), "{head}");
    assert!(head_has(&head, "Server", "ringd"), "{head}");
    assert!(head_has(&head, "Content-Length", "13"), "{head}");
    assert_eq!(String::from_utf8_lossy(&body), HELLO);

    let out = curl(&["-sS", &s.url("/json")]);
    assert_eq!(out.stdout_str(), JSON);
    s.assert_no_panic();
}

#[test]
fn curl_http10() {
    let s = Server::start(&[]);
    let out = curl(&["-sS", "-i", "--http1.0", &s.url("/plaintext")]);
    let (head, body) = split_i(&out.stdout);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(String::from_utf8_lossy(&body), HELLO);
}

#[test]
fn curl_head() {
    let s = Server::start(&[]);
    let out = curl(&["-sS", "-I", &s.url("/json")]);
    let text = out.stdout_str();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        head_has(&text, "Content-Length", &JSON.len().to_string()),
        "HEAD must carry the GET Content-Length: {text}"
    );
    assert!(head_has(&text, "Content-Type", "application/json"), "{text}");
    assert!(text.ends_with("\r\n\r\n"), "HEAD must have no body: {text:?}");
}

#[test]
fn curl_post_data_binary() {
    let s = Server::start(&[]);
    let dir = TempDir::new("curl-post");
    let data = pseudo_random(50_000, 3);
    let f = dir.write("upload.bin", &data);
    let out_file = dir.join("out.bin");
    let out = curl(&[
        "-sS",
        "-D",
        "-",
        "-o",
        out_file.to_str().unwrap(),
        "-H",
        "Content-Type: application/x-test",
        "--data-binary",
        &format!("@{}", f.display()),
        &s.url("/echo"),
    ]);
    let head = out.stdout_str();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head_has(&head, "Content-Type", "application/x-test"), "{head}");
    let got = std::fs::read(&out_file).unwrap();
    assert!(
        got == data,
        "echoed body differs ({} vs {} bytes)",
        got.len(),
        data.len()
    );

    // Small inline body, PUT.
    let out = curl(&["-sS", "-X", "PUT", "--data-binary", "inline body", &s.url("/echo")]);
    assert_eq!(out.stdout_str(), "inline body");
}

#[test]
fn curl_chunked_upload() {
    let s = Server::start(&[]);
    let dir = TempDir::new("curl-chunked");
    let data = pseudo_random(150_000, 11);
    let f = dir.write("upload.bin", &data);
    let out_file = dir.join("out.bin");
    let out = curl(&[
        "-sS",
        "-v",
        "-o",
        out_file.to_str().unwrap(),
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        &format!("@{}", f.display()),
        &s.url("/echo"),
    ]);
    assert!(
        out.stderr.contains("Transfer-Encoding: chunked"),
        "curl did not send chunked:\n{}",
        out.stderr
    );
    assert!(out.stderr.contains("< HTTP/1.1 200"), "{}", out.stderr);
    let got = std::fs::read(&out_file).unwrap();
    assert!(
        got == data,
        "echoed chunked body differs ({} vs {} bytes)",
        got.len(),
        data.len()
    );
}

#[test]
fn curl_expect_100_continue() {
    let s = Server::start(&[]);
    let out = curl(&[
        "-sS",
        "-v",
        "-H",
        "Expect: 100-continue",
        "--expect100-timeout",
        "15",
        "--data-binary",
        "continue me",
        &s.url("/echo"),
    ]);
    assert!(
        out.stderr.contains("< HTTP/1.1 100 Continue"),
        "no 100 Continue seen by curl:\n{}",
        out.stderr
    );
    assert_eq!(out.stdout_str(), "continue me");
}

#[test]
fn curl_two_urls_reuse_connection() {
    let s = Server::start(&[]);
    let out = curl(&["-sS", "-v", &s.url("/plaintext"), &s.url("/json")]);
    assert_eq!(out.stdout_str(), format!("{HELLO}{JSON}"));
    let err = &out.stderr;
    assert!(
        err.contains("Re-using existing connection") || err.contains("left intact"),
        "curl did not keep the connection:\n{err}"
    );
    assert!(
        !err.contains("Connection #1"),
        "curl opened a second connection instead of reusing the first:\n{err}"
    );
}

#[test]
fn curl_status_codes() {
    let s = Server::start(&[]);
    let codes = curl(&[
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}\n",
        &s.url("/missing"),
        "-o",
        "/dev/null",
        "-X",
        "DELETE",
        &s.url("/plaintext"),
    ]);
    let codes: Vec<_> = codes.stdout_str().lines().map(str::to_string).collect();
    assert_eq!(codes, vec!["404", "405"]);
}

// ---------------------------------------------------------------------------
// Python http.client
// ---------------------------------------------------------------------------

const PY_SCRIPT: &str = r#"
import http.client, json, sys
port = int(sys.argv[1])
out = {}
c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

c.request("GET", "/plaintext")
r = c.getresponse()
out["get"] = {"status": r.status, "body": r.read().decode(), "ct": r.getheader("Content-Type"),
              "server": r.getheader("Server"), "version": r.version}

c.request("HEAD", "/json")
r = c.getresponse()
b = r.read()
out["head"] = {"status": r.status, "len": len(b), "cl": r.getheader("Content-Length")}

c.request("POST", "/echo", body=b"hello from python", headers={"Content-Type": "text/x-py"})
r = c.getresponse()
out["post"] = {"status": r.status, "body": r.read().decode(), "ct": r.getheader("Content-Type")}

def gen():
    yield b"chunk-one;"
    yield b"chunk-two;"
    yield b"x" * 5000
c.request("POST", "/echo", body=gen(), encode_chunked=True)
r = c.getresponse()
body = r.read()
out["chunked"] = {"status": r.status, "len": len(body), "ok": body == b"chunk-one;chunk-two;" + b"x" * 5000}
c.close()

# five requests on one keep-alive connection
c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
ports = []
statuses = []
will_close = []
for i in range(5):
    c.request("GET", "/json" if i % 2 else "/plaintext")
    r = c.getresponse()
    r.read()
    statuses.append(r.status)
    will_close.append(r.will_close)
    ports.append(c.sock.getsockname()[1] if c.sock else None)
out["keepalive"] = {"statuses": statuses, "ports": ports, "will_close": will_close}
c.close()
print(json.dumps(out))
"#;

#[test]
fn python_http_client() {
    let s = Server::start(&[]);
    let v = python_json(PY_SCRIPT, &[&s.port().to_string()]);
    assert_eq!(v["get"]["status"], 200, "{v}");
    assert_eq!(v["get"]["body"], HELLO, "{v}");
    assert_eq!(v["get"]["ct"], "text/plain; charset=utf-8", "{v}");
    assert_eq!(v["get"]["server"], "ringd", "{v}");
    assert_eq!(v["get"]["version"], 11, "{v}");

    assert_eq!(v["head"]["status"], 200, "{v}");
    assert_eq!(v["head"]["len"], 0, "{v}");
    assert_eq!(v["head"]["cl"], JSON.len().to_string(), "{v}");

    assert_eq!(v["post"]["status"], 200, "{v}");
    assert_eq!(v["post"]["body"], "hello from python", "{v}");
    assert_eq!(v["post"]["ct"], "text/x-py", "{v}");

    assert_eq!(v["chunked"]["status"], 200, "{v}");
    assert_eq!(v["chunked"]["ok"], true, "{v}");

    let ka = &v["keepalive"];
    assert_eq!(ka["statuses"], serde_json::json!([200, 200, 200, 200, 200]), "{v}");
    assert_eq!(
        ka["will_close"],
        serde_json::json!([false, false, false, false, false]),
        "{v}"
    );
    let ports = ka["ports"].as_array().unwrap();
    assert!(ports[0].is_u64(), "{v}");
    assert!(
        ports.iter().all(|p| p == &ports[0]),
        "python reconnected between requests: {v}"
    );
    s.assert_no_panic();
}

// ---------------------------------------------------------------------------
// wrk
// ---------------------------------------------------------------------------

/// Parse `N requests in ...` from wrk output.
pub fn wrk_requests(out: &str) -> u64 {
    out.lines()
        .find_map(|l| {
            let l = l.trim();
            let (n, rest) = l.split_once(' ')?;
            if rest.starts_with("requests in") {
                n.parse().ok()
            } else {
                None
            }
        })
        .unwrap_or_else(|| panic!("no `requests in` line in wrk output:\n{out}"))
}

#[test]
fn wrk_smoke() {
    require_tool("wrk", "wrk");
    let s = Server::start(&[]);
    let out = run_bounded(
        Command::new("wrk").args(["-t1", "-c50", "-d2s", "--timeout", "5s", &s.url("/plaintext")]),
        TOOL_TIMEOUT,
    );
    let text = format!("{}{}", out.stdout_str(), out.stderr);
    assert!(out.status.success(), "wrk failed ({}):\n{text}", out.status);
    assert!(!text.contains("Socket errors"), "wrk saw socket errors:\n{text}");
    assert!(!text.contains("Non-2xx"), "wrk saw non-2xx responses:\n{text}");
    let n = wrk_requests(&text);
    assert!(n > 0, "wrk completed no requests:\n{text}");
    // Server still fine afterwards.
    let r = roundtrip(s.addr, b"GET /json HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 200);
    assert_eq!(r.body_str(), JSON);
    s.assert_no_panic();
}
