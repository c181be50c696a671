//! On-the-fly compression end to end: static files and handler answers in gzip, Brotli and
//! zstd, decoded by curl (`--compressed`) and by Python (stdlib gzip, Debian's python3-brotli
//! and python3-zstandard) back to the original bytes; `Accept-Encoding` quality values; ranges,
//! conditional requests and HEAD with compression on; no compression bomb; HTTP/2.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{debian_python, require_tool, roundtrip, run_bounded, Conn, Server, TempDir};

/// Text that compresses like real JavaScript (about 3–5×): statements built from a small
/// vocabulary, with varied identifiers and numbers.
fn javascript(len: usize) -> Vec<u8> {
    const WORDS: [&str; 16] = [
        "element", "options", "callback", "value", "length", "index", "event", "target", "state", "render", "update",
        "query", "node", "data", "result", "handler",
    ];
    let random = common::pseudo_random(len, 7);
    let mut out = String::new();
    let mut i = 0;
    while out.len() < len {
        let r = |k: usize| random[(i * 5 + k) % len] as usize;
        out.push_str(&format!(
            "function {}{}({}, {}) {{ var {} = {}.{}({}); if ({} > {}) {{ return {}; }} }}\n",
            WORDS[r(0) % 16],
            r(1),
            WORDS[r(2) % 16],
            WORDS[r(3) % 16],
            WORDS[r(4) % 16],
            WORDS[r(0) % 16],
            WORDS[r(1) % 16],
            r(2) * 7,
            WORDS[r(3) % 16],
            r(4),
            WORDS[r(2) % 16]
        ));
        i += 1;
    }
    out.truncate(len);
    out.into_bytes()
}

/// A site: the built-in pages, and files below `/files/`.
struct Site {
    dir: TempDir,
    server: Server,
    js: Vec<u8>,
}

fn site(extra: &str, args: &[&str]) -> Site {
    let dir = TempDir::new("compression");
    let js = javascript(100 * 1024);
    dir.write("files/app.js", &js);
    dir.write("files/data.json", &javascript(30 * 1024));
    dir.write("files/tiny.css", b"body{}");
    dir.write("files/photo.png", &common::pseudo_random(10 * 1024, 3));
    let files = dir.join("files");
    let conf = dir.write(
        "ringd.toml",
        format!("[[static]]\nprefix = \"/files/\"\nroot = {files:?}\n\n[compression]\nenabled = true\n{extra}")
            .as_bytes(),
    );
    let mut all = vec!["--config", conf.to_str().unwrap()];
    all.extend_from_slice(args);
    Site {
        server: Server::start(&all),
        dir,
        js,
    }
}

fn get(path: &str, headers: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: t\r\n{headers}\r\n").into_bytes()
}

/// Python fetches `path` with `Accept-Encoding: ae`, decodes the body by its
/// `Content-Encoding` and compares it with the file `reference`.
const FETCH: &str = r#"
import http.client, json, sys, gzip, brotli, zstandard
port, method, path, ae, ref = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
body = open(ref, "rb").read() if method == "POST" else None
c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
c.request(method, path, body=body, headers={"Accept-Encoding": ae, "Content-Type": "application/json"})
r = c.getresponse()
raw = r.read()
coding = r.getheader("Content-Encoding")
if coding == "gzip":
    data = gzip.decompress(raw)
elif coding == "br":
    data = brotli.decompress(raw)
elif coding == "zstd":
    data = zstandard.ZstdDecompressor().decompressobj().decompress(raw)
else:
    data = raw
print(json.dumps({
    "status": r.status, "coding": coding, "vary": r.getheader("Vary"), "etag": r.getheader("ETag"),
    "chunked": r.getheader("Transfer-Encoding") == "chunked", "wire": len(raw), "decoded": len(data),
    "same": data == open(ref, "rb").read(),
}))
"#;

fn python_fetch(port: u16, method: &str, path: &str, ae: &str, reference: &std::path::Path) -> serde_json::Value {
    let out = run_bounded(
        Command::new(debian_python()).args([
            "-c",
            FETCH,
            &port.to_string(),
            method,
            path,
            ae,
            reference.to_str().unwrap(),
        ]),
        Duration::from_secs(60),
    );
    out.assert_success("python3 (needs python3-brotli and python3-zstandard)");
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn every_coding_decodes_to_the_original_for_files_and_handler_answers() {
    let s = site("", &[]);
    let port = s.server.port();
    // What the handlers answer uncompressed, for comparison.
    let records = s
        .dir
        .write("records.json", &roundtrip(s.server.addr, &get("/json/20k", "")).body);
    let page = s.dir.write("page.html", &roundtrip(s.server.addr, &get("/", "")).body);
    // Larger than the in-one-go limit (256 KiB): compressed as it is sent, chunked.
    let upload = s.dir.write("upload.json", &javascript(300 * 1024));
    let cases: [(&str, &str, std::path::PathBuf); 5] = [
        ("GET", "/files/app.js", s.dir.join("files/app.js")),
        ("GET", "/files/data.json", s.dir.join("files/data.json")),
        ("GET", "/json/20k", records),
        ("GET", "/", page),
        ("POST", "/echo", upload),
    ];
    for coding in ["gzip", "br", "zstd"] {
        for (method, path, reference) in &cases {
            let r = python_fetch(port, method, path, coding, reference);
            let what = format!("{method} {path} with {coding}: {r}");
            assert_eq!(r["status"], 200, "{what}");
            assert_eq!(r["coding"], coding, "{what}");
            assert_eq!(r["same"], true, "{what}");
            assert_eq!(r["vary"], "Accept-Encoding", "{what}");
            assert!(r["wire"].as_u64() < r["decoded"].as_u64(), "{what}");
            assert_eq!(r["chunked"], *method == "POST", "{what}");
            if path.starts_with("/files/") {
                assert!(r["etag"].as_str().unwrap().starts_with("W/\""), "{what}");
            }
        }
    }
    // The compressed file is 3–5 times smaller, like JavaScript.
    let r = python_fetch(port, "GET", "/files/app.js", "gzip", &s.dir.join("files/app.js"));
    let ratio = r["decoded"].as_f64().unwrap() / r["wire"].as_f64().unwrap();
    assert!((2.5..8.0).contains(&ratio), "{r}");
    s.server.assert_no_panic();
}

#[test]
fn curl_compressed_gets_the_original_bytes_in_every_coding() {
    require_tool("curl", "curl");
    let s = site("", &[]);
    let records = roundtrip(s.server.addr, &get("/json/20k", "")).body;
    for coding in ["gzip", "br", "zstd"] {
        for (path, expected) in [("/files/app.js", &s.js), ("/json/20k", &records)] {
            let out_file = s.dir.join("curl.out");
            let head = run_bounded(
                Command::new("curl").args([
                    "-s",
                    "--compressed",
                    "-H",
                    &format!("Accept-Encoding: {coding}"),
                    "-D",
                    "-",
                    "-o",
                    out_file.to_str().unwrap(),
                    &s.server.url(path),
                ]),
                Duration::from_secs(30),
            );
            let head = head
                .assert_success("curl --compressed")
                .stdout_str()
                .to_ascii_lowercase();
            assert!(
                head.contains(&format!("content-encoding: {coding}\r\n")),
                "{path} {coding}:\n{head}"
            );
            assert_eq!(&std::fs::read(&out_file).unwrap(), expected, "{path} {coding}");
        }
    }
}

#[test]
fn quality_values_choose_the_coding_and_what_is_not_worth_it_stays_as_it_is() {
    let s = site("encodings = [\"zstd\", \"gzip\", \"br\"]\n", &[]);
    let coding = |path: &str, ae: &str| {
        let r = roundtrip(s.server.addr, &get(path, &format!("Accept-Encoding: {ae}\r\n")));
        assert_eq!(r.status, 200, "{path} {ae}: {}", r.raw_head);
        (
            r.header("content-encoding").map(str::to_owned),
            r.header("vary").map(str::to_owned),
        )
    };
    let enc = |path: &str, ae: &str| coding(path, ae).0;
    // Equal qualities: the server's order; otherwise the client's.
    assert_eq!(enc("/json/20k", "gzip, deflate, br, zstd").as_deref(), Some("zstd"));
    assert_eq!(enc("/json/20k", "gzip, br").as_deref(), Some("gzip"));
    assert_eq!(enc("/json/20k", "gzip;q=0.5, br;q=0.9").as_deref(), Some("br"));
    assert_eq!(enc("/json/20k", "*, zstd;q=0").as_deref(), Some("gzip"));
    assert_eq!(enc("/json/20k", "x-gzip").as_deref(), Some("gzip"));
    assert_eq!(enc("/files/app.js", "br;q=1, gzip;q=0.1").as_deref(), Some("br"));
    // Nothing acceptable: as it is, saying it varies.
    assert_eq!(
        coding("/json/20k", "deflate"),
        (None, Some("Accept-Encoding".to_owned()))
    );
    assert_eq!(
        coding("/json/20k", "gzip;q=0"),
        (None, Some("Accept-Encoding".to_owned()))
    );
    // Too short (13 bytes, under min_length), or not a compressible type: untouched.
    assert_eq!(coding("/plaintext", "gzip"), (None, None));
    assert_eq!(coding("/files/tiny.css", "gzip").0, None);
    assert_eq!(coding("/files/photo.png", "gzip"), (None, None));
    // A client that refuses an uncompressed answer gets even a short one compressed.
    assert_eq!(enc("/plaintext", "gzip, identity;q=0").as_deref(), Some("gzip"));
    assert_eq!(enc("/plaintext", "br, *;q=0").as_deref(), Some("br"));
    // No Accept-Encoding: no compression.
    let r = roundtrip(s.server.addr, &get("/json/20k", ""));
    assert_eq!((r.header("content-encoding"), r.body.len()), (None, 20 * 1024));
}

#[test]
fn ranges_conditional_requests_and_head_keep_working_with_compression_on() {
    let s = site("[static_files]\ncache_revalidate = 0\n", &[]);
    let addr = s.server.addr;
    let gzip = "Accept-Encoding: gzip\r\n";
    let full = roundtrip(addr, &get("/files/app.js", gzip));
    assert_eq!(full.header("content-encoding"), Some("gzip"));
    assert_eq!(full.header("accept-ranges"), None);
    let etag = full.header("etag").unwrap().to_owned();
    let strong = etag.strip_prefix("W/").expect("a weak tag").to_owned();
    // The plain file's tag is the strong one.
    let plain = roundtrip(addr, &get("/files/app.js", ""));
    assert_eq!(plain.header("etag"), Some(strong.as_str()));
    assert_eq!(plain.header("vary"), Some("Accept-Encoding"));
    assert_eq!(plain.body, s.js);
    // If-None-Match compares weakly: either tag is the current one.
    for tag in [&etag, &strong] {
        let r = roundtrip(addr, &get("/files/app.js", &format!("{gzip}If-None-Match: {tag}\r\n")));
        assert_eq!(r.status, 304, "{tag}: {}", r.raw_head);
        assert_eq!(r.header("etag"), Some(etag.as_str()));
        assert_eq!(r.header("vary"), Some("Accept-Encoding"));
    }
    // A range is of the uncompressed file, under its strong tag (never 206 compressed).
    let r = roundtrip(addr, &get("/files/app.js", &format!("{gzip}Range: bytes=100-199\r\n")));
    assert_eq!(r.status, 206, "{}", r.raw_head);
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(r.header("etag"), Some(strong.as_str()));
    assert_eq!(r.body, &s.js[100..200]);
    // If-Range compares strongly: the weak tag gets the whole file.
    let r = roundtrip(
        addr,
        &get(
            "/files/app.js",
            &format!("{gzip}Range: bytes=0-9\r\nIf-Range: {etag}\r\n"),
        ),
    );
    assert_eq!((r.status, r.body.len()), (200, s.js.len()), "{}", r.raw_head);
    let r = roundtrip(
        addr,
        &get(
            "/files/app.js",
            &format!("{gzip}Range: bytes=0-9\r\nIf-Range: {strong}\r\n"),
        ),
    );
    assert_eq!((r.status, &r.body[..]), (206, &s.js[..10]));
    // HEAD says what GET sends: for the file, the compressed length (kept from the GET).
    let mut c = Conn::open(addr);
    c.send(format!("HEAD /files/app.js HTTP/1.1\r\nHost: t\r\n{gzip}\r\n").as_bytes());
    let head = c.read_response(true);
    assert_eq!(head.header("content-encoding"), Some("gzip"));
    assert_eq!(
        head.header("content-length"),
        Some(full.body.len().to_string().as_str())
    );
    // For a handler's answer, HEAD is as nginx answers it: the uncompressed length.
    c.send(format!("HEAD /json/20k HTTP/1.1\r\nHost: t\r\n{gzip}\r\n").as_bytes());
    let head = c.read_response(true);
    assert_eq!(head.header("content-encoding"), None);
    assert_eq!(head.header("content-length"), Some("20480"));
    assert_eq!(head.header("vary"), Some("Accept-Encoding"));
    // A new version of the file is compressed again, with a new tag.
    let new = javascript(50 * 1024);
    s.dir.write("files/app.js", &new);
    let r = python_fetch(
        s.server.port(),
        "GET",
        "/files/app.js",
        "gzip",
        &s.dir.join("files/app.js"),
    );
    assert_eq!(
        (r["same"].as_bool(), r["decoded"].as_u64()),
        (Some(true), Some(new.len() as u64)),
        "{r}"
    );
    assert_ne!(r["etag"].as_str(), Some(etag.as_str()));
    s.server.assert_no_panic();
}

/// The server never inflates what it is sent (a request body stays as sent), and what it sends
/// decodes to exactly the handler's body: no more, however compressible.
#[test]
fn no_compression_bomb_comes_from_the_server() {
    let s = site("", &[]);
    // A gzip bomb as a request body: 8 MiB of zeros in about 8 KiB.
    let bomb = {
        let out = run_bounded(
            Command::new(debian_python()).args([
                "-c",
                "import gzip, sys; sys.stdout.buffer.write(gzip.compress(bytes(8 << 20), 9))",
            ]),
            Duration::from_secs(30),
        );
        out.assert_success("python3").stdout.clone()
    };
    assert!(bomb.len() < 64 * 1024);
    let rss_before = s.server.rss_kib();
    let mut c = Conn::open(s.server.addr);
    c.send(
        format!(
            "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/gzip\r\nContent-Encoding: gzip\r\nAccept-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
            bomb.len()
        )
        .as_bytes(),
    );
    c.send(&bomb);
    let r = c.read_response(false);
    assert_eq!(r.status, 200);
    // application/gzip is not a compressible type: the bytes come back as they were sent.
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(r.body, bomb);
    assert!(s.server.rss_kib() < rss_before + 4096, "the server inflated the body");
    // Incompressible text is not made larger than a few bytes of framing per 16 KiB.
    let noise: Vec<u8> = common::pseudo_random(100 * 1024, 9)
        .into_iter()
        .map(|b| b'!' + b % 90)
        .collect();
    let noise_file = s.dir.write("noise.json", &noise);
    for coding in ["gzip", "br", "zstd"] {
        let r = python_fetch(s.server.port(), "POST", "/echo", coding, &noise_file);
        assert_eq!(r["same"], true, "{coding}: {r}");
        assert!(r["wire"].as_u64().unwrap() < noise.len() as u64 + 1024, "{coding}: {r}");
    }
}

#[test]
fn http2_answers_are_compressed_the_same_way() {
    require_tool("curl", "curl");
    let s = site("", &["--h2c", "true"]);
    let records = roundtrip(s.server.addr, &get("/json/20k", "")).body;
    for (path, expected) in [("/files/app.js", &s.js), ("/json/20k", &records)] {
        for coding in ["gzip", "br", "zstd"] {
            let out_file = s.dir.join("h2.out");
            let out = run_bounded(
                Command::new("curl").args([
                    "-s",
                    "--http2-prior-knowledge",
                    "--compressed",
                    "-H",
                    &format!("Accept-Encoding: {coding}"),
                    "-D",
                    "-",
                    "-o",
                    out_file.to_str().unwrap(),
                    &s.server.url(path),
                ]),
                Duration::from_secs(30),
            );
            let head = out.assert_success("curl --http2-prior-knowledge").stdout_str();
            assert!(head.starts_with("HTTP/2 200"), "{head}");
            assert!(head.contains(&format!("content-encoding: {coding}\r\n")), "{head}");
            assert!(head.contains("vary: Accept-Encoding\r\n"), "{head}");
            assert_eq!(&std::fs::read(&out_file).unwrap(), expected, "{path} {coding}");
        }
    }
}

/// `deploy/examples/traffic.toml` runs as it is: the built-in site, one zone on every path (10
/// r/s, a burst of 5, nodelay, 429), compression on.
#[test]
fn the_traffic_example_runs_as_it_is() {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/examples/traffic.toml");
    let example = example.to_str().unwrap();
    let check = run_bounded(
        Command::new(common::bin()).args(["check", "--config", example]),
        Duration::from_secs(30),
    );
    check.assert_success("ringd check deploy/examples/traffic.toml");
    let server = Server::start(&["--config", example, "--listen", "127.0.0.1:0"]);
    let started = std::time::Instant::now();
    let mut c = Conn::open(server.addr);
    c.send(&get("/", "Accept-Encoding: gzip, br, zstd\r\n"));
    let page = c.read_response(false);
    assert_eq!(page.status, 200);
    assert!(page.header("content-encoding").is_some(), "{}", page.raw_head);
    // Twenty requests at once: the rest of the burst (six, the page was one), then one every
    // 100 ms of however long it all took; the others refused.
    c.send(&get("/plaintext", "").repeat(20));
    let statuses: Vec<u16> = (0..20).map(|_| c.read_response(false).status).collect();
    let refills = (started.elapsed().as_millis() / 100) as usize + 1;
    let allowed = statuses.iter().filter(|s| **s == 200).count();
    assert!(statuses.iter().all(|s| *s == 200 || *s == 429), "{statuses:?}");
    assert!(
        (5..=5 + refills).contains(&allowed),
        "{statuses:?} in {:?}",
        started.elapsed()
    );
}
