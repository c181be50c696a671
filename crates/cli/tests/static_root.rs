//! `--root DIR`: static files, content types, directories, and escapes.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

const SECRET: &[u8] = b"TOP-SECRET-OUTSIDE-THE-ROOT-4f1c9a";

struct Site {
    root: TempDir,
    outside: TempDir,
    big: Vec<u8>,
    png: Vec<u8>,
}

fn site() -> Site {
    let root = TempDir::new("root");
    let outside = TempDir::new("outside");
    outside.write("secret.txt", SECRET);
    // Also a secret right next to the root dir (reachable with one `..`).
    let sibling_name = format!("{}-secret.txt", root.path.file_name().unwrap().to_str().unwrap());
    std::fs::write(root.path.parent().unwrap().join(&sibling_name), SECRET).unwrap();

    root.write("index.html", b"<!doctype html><title>root index</title>");
    root.write("style.css", b"body { color: red; }\n");
    let png = {
        let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
        v.extend(pseudo_random(3000, 1));
        v
    };
    root.write("img/pic.png", &png);
    root.write("data.json", br#"{"a":[1,2,3]}"#);
    root.write("page.html", b"<p>page</p>");
    root.write("docs/index.html", b"<h1>docs index</h1>");
    root.write("docs/readme.txt", b"readme");
    let big = pseudo_random((1 << 20) + 12345, 42);
    root.write("big.bin", &big);
    std::os::unix::fs::symlink(outside.join("secret.txt"), root.join("link.txt")).unwrap();
    std::os::unix::fs::symlink(outside.path.clone(), root.join("linkdir")).unwrap();
    Site {
        root,
        outside,
        big,
        png,
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let sibling_name = format!("{}-secret.txt", self.root.path.file_name().unwrap().to_str().unwrap());
        let _ = std::fs::remove_file(self.root.path.parent().unwrap().join(sibling_name));
    }
}

fn sibling_secret_name(site: &Site) -> String {
    format!("{}-secret.txt", site.root.path.file_name().unwrap().to_str().unwrap())
}

fn get(s: &Server, target: &str) -> Response {
    roundtrip(s.addr, format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
}

#[test]
fn files_with_content_types() {
    let site = site();
    let s = Server::start(&["--root", site.root.path_str()]);
    let cases: [(&str, &str, Vec<u8>); 5] = [
        ("/page.html", "text/html; charset=utf-8", b"<p>page</p>".to_vec()),
        (
            "/style.css",
            "text/css; charset=utf-8",
            b"body { color: red; }\n".to_vec(),
        ),
        ("/img/pic.png", "image/png", site.png.clone()),
        ("/data.json", "application/json", br#"{"a":[1,2,3]}"#.to_vec()),
        ("/docs/readme.txt", "text/plain; charset=utf-8", b"readme".to_vec()),
    ];
    let mut c = Conn::open(s.addr);
    for (path, ct, bytes) in &cases {
        c.send(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
        let r = c.read_response(false);
        assert_eq!(r.status, 200, "GET {path}: {}", r.raw_head);
        r.assert_common();
        if *path == "/docs/readme.txt" {
            // .txt is not in the spec's list; only require a text/plain type.
            assert!(
                r.header("content-type").unwrap_or("").starts_with("text/plain"),
                "GET {path}: {}",
                r.raw_head
            );
        } else {
            assert_eq!(r.header("content-type"), Some(*ct), "GET {path}: {}", r.raw_head);
        }
        assert_eq!(
            r.header("content-length"),
            Some(bytes.len().to_string().as_str()),
            "GET {path}"
        );
        assert!(&r.body == bytes, "GET {path}: body differs");

        c.send(format!("HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
        let h = c.read_response(true);
        assert_eq!(h.status, 200, "HEAD {path}: {}", h.raw_head);
        assert_eq!(h.header("content-type"), r.header("content-type"), "HEAD {path}");
        assert_eq!(
            h.header("content-length"),
            Some(bytes.len().to_string().as_str()),
            "HEAD {path}"
        );
    }
    // No body bytes leaked after the HEADs: one more request parses cleanly.
    c.send(b"GET /page.html HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.read_response(false);
    assert_eq!(r.status, 200, "{}", r.raw_head);
    assert_eq!(r.body, b"<p>page</p>");
    s.assert_no_panic();
}

#[test]
fn big_binary_file_is_byte_identical() {
    require_tool("curl", "curl");
    let site = site();
    let s = Server::start(&["--root", site.root.path_str()]);
    // Raw TCP.
    let r = get(&s, "/big.bin");
    assert_eq!(r.status, 200, "{}", r.raw_head);
    assert_eq!(r.header("content-length"), Some(site.big.len().to_string().as_str()));
    assert!(r.body == site.big, "raw GET of big.bin differs");
    // curl -o and compare.
    let dl = TempDir::new("dl");
    let out_path = dl.join("big.bin");
    let out = run_bounded(
        Command::new("curl").args([
            "-sS",
            "--max-time",
            "30",
            "-o",
            out_path.to_str().unwrap(),
            &s.url("/big.bin"),
        ]),
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "curl failed: {}", out.stderr);
    let got = std::fs::read(&out_path).unwrap();
    assert_eq!(got.len(), site.big.len());
    assert!(got == site.big, "curl download of big.bin differs");

    // Several in parallel on their own connections.
    let addr = s.addr;
    let handles: Vec<_> = (0..4)
        .map(|_| std::thread::spawn(move || roundtrip(addr, b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n").body))
        .collect();
    for h in handles {
        assert!(h.join().unwrap() == site.big, "parallel download differs");
    }
}

#[test]
fn directory_index_and_redirect() {
    let site = site();
    let s = Server::start(&["--root", site.root.path_str()]);
    let r = get(&s, "/");
    assert_eq!(r.status, 200, "{}", r.raw_head);
    assert_eq!(r.body, b"<!doctype html><title>root index</title>");
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));

    let r = get(&s, "/docs/");
    assert_eq!(r.status, 200, "{}", r.raw_head);
    assert_eq!(r.body, b"<h1>docs index</h1>");

    let mut c = Conn::open(s.addr);
    c.send(b"GET /docs HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.read_response(false);
    assert_eq!(r.status, 301, "{}", r.raw_head);
    r.assert_common();
    let loc = r
        .header("location")
        .unwrap_or_else(|| panic!("301 without Location: {}", r.raw_head));
    assert!(loc.ends_with("/docs/"), "Location {loc:?} should end in /docs/");
    // Still usable (a 301 is not an error).
    c.send(b"GET /docs/readme.txt HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.read_response(false);
    assert_eq!(r.status, 200, "{}", r.raw_head);
    assert_eq!(r.body, b"readme");
}

#[test]
fn missing_file_is_404() {
    let site = site();
    let s = Server::start(&["--root", site.root.path_str()]);
    for p in ["/nope.html", "/docs/nope", "/img/", "/page.html/extra"] {
        let r = get(&s, p);
        if p == "/img/" {
            // A directory without index.html: anything but a 200 listing of
            // secrets is acceptable; the spec does not fix the status.
            assert_ne!(r.status, 500, "GET {p}: {}", r.raw_head);
            continue;
        }
        assert_eq!(r.status, 404, "GET {p}: {}", r.raw_head);
    }
}

#[test]
fn escapes_never_serve_outside_files() {
    let site = site();
    let s = Server::start(&["--root", site.root.path_str()]);
    let sib = sibling_secret_name(&site);
    let outside_name = site.outside.path.file_name().unwrap().to_str().unwrap().to_string();
    let targets = vec![
        format!("/../{sib}"),
        format!("/docs/../../{sib}"),
        format!("/%2e%2e%2f{sib}"),
        format!("/%2e%2e/{sib}"),
        format!("/docs/%2e%2e/%2e%2e/{sib}"),
        format!("/..%2f{sib}"),
        format!("/../{outside_name}/secret.txt"),
        "/link.txt".to_string(),
        "/linkdir/secret.txt".to_string(),
        format!("/{}", site.outside.join("secret.txt").display()),
    ];
    for t in &targets {
        let mut c = Conn::open(s.addr);
        c.send(format!("GET {t} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
        let r = c.read_response(false);
        assert!(
            find(&r.body, SECRET).is_none(),
            "GET {t} served the outside file! {}",
            r.raw_head
        );
        assert!(
            r.status == 400 || r.status == 404,
            "GET {t}: expected 400 or 404, got {}",
            r.raw_head
        );
    }
    s.assert_no_panic();
}

#[test]
fn post_on_file_is_405() {
    let site = site();
    let s = Server::start(&["--root", site.root.path_str()]);
    let mut c = Conn::open(s.addr);
    c.send(b"POST /page.html HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc");
    let r = c.read_response(false);
    assert_eq!(r.status, 405, "{}", r.raw_head);
    r.assert_common();
    let allow = r.allow_set();
    assert!(
        allow == set_of(&["GET", "HEAD"]) || allow == set_of(&["GET", "HEAD", "OPTIONS"]),
        "Allow: {}",
        r.raw_head
    );
    // Connection stays usable.
    c.send(b"GET /page.html HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.read_response(false);
    assert_eq!(r.status, 200, "{}", r.raw_head);
}

#[test]
fn pipelined_large_responses_stay_in_order() {
    let site = site();
    let s = Server::start(&["--root", site.root.path_str()]);
    let mut c = Conn::open(s.addr);
    c.send(
        b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n\
HEAD /big.bin HTTP/1.1\r\nHost: x\r\n\r\n\
GET /style.css HTTP/1.1\r\nHost: x\r\n\r\n\
GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n\
GET /page.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let r = c.read_response(false);
    assert_eq!(r.status, 200, "{}", r.raw_head);
    assert!(r.body == site.big, "1st big.bin differs");
    let r = c.read_response(true);
    assert_eq!(r.status, 200, "{}", r.raw_head);
    assert_eq!(r.header("content-length"), Some(site.big.len().to_string().as_str()));
    let r = c.read_response(false);
    assert_eq!(r.body, b"body { color: red; }\n", "{}", r.raw_head);
    let r = c.read_response(false);
    assert!(r.body == site.big, "2nd big.bin differs");
    let r = c.read_response(false);
    assert_eq!(r.body, b"<p>page</p>", "{}", r.raw_head);
    assert!(r.connection_has("close"), "{}", r.raw_head);
    c.expect_eof();
}
