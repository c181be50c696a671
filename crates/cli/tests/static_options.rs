//! Static-file options from the config file: precompressed siblings (gzip_static), Cache-Control
//! rules, the default type, and the optional directory listing with escaped names.

mod common;

use std::io::Write;
use std::process::Command;
use std::time::Duration;

use common::{require_tool, roundtrip, run_bounded, Server, TempDir};

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut child = Command::new("gzip")
        .args(["-c", "-9"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("gzip");
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    out.stdout
}

fn server_with(dir: &TempDir, extra: &str) -> Server {
    Server::start_site(dir, &dir.join("site"), extra)
}

#[test]
fn precompressed_siblings_go_to_clients_that_accept_them() {
    require_tool("curl", "curl");
    let dir = TempDir::new("gzip-static");
    let css = b"body { color: teal }\n".repeat(200);
    dir.write("site/app.css", &css);
    dir.write("site/app.css.gz", &gzip(&css));
    let server = server_with(&dir, "[static_files]\nprecompressed = true\n");

    let r = roundtrip(
        server.addr,
        b"GET /app.css HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip, br\r\n\r\n",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(r.header("content-type"), Some("text/css; charset=utf-8"));
    assert_eq!(r.header("vary"), Some("Accept-Encoding"));
    assert!(r.body.len() < css.len() / 4);

    let plain = roundtrip(server.addr, b"GET /app.css HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(
        (plain.header("content-encoding"), plain.body.as_slice()),
        (None, css.as_slice())
    );
    assert_eq!(plain.header("vary"), Some("Accept-Encoding"));
    assert_ne!(
        plain.header("etag"),
        r.header("etag"),
        "each representation has its own tag"
    );

    // curl --compressed asks for it and decodes it back to the original bytes.
    let out = run_bounded(
        Command::new("curl").args(["-sS", "--compressed", &server.url("/app.css")]),
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "{}", out.stderr);
    assert!(out.stdout == css);
}

#[test]
fn cache_control_rules_and_default_type() {
    let dir = TempDir::new("cache-control");
    dir.write("site/assets/logo.svg", b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>");
    dir.write("site/index.html", b"<p>hi</p>");
    dir.write("site/blob", b"no extension");
    let server = server_with(
        &dir,
        "[static_files]\ndefault_type = \"text/plain\"\n\n[[cache_control]]\nmatch = \"/assets/\"\nvalue = \"max-age=31536000, immutable\"\n\n[[cache_control]]\nmatch = \"*.html\"\nvalue = \"no-cache\"\n",
    );
    let r = roundtrip(server.addr, b"GET /assets/logo.svg HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.header("cache-control"), Some("max-age=31536000, immutable"));
    let r = roundtrip(server.addr, b"GET /index.html HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.header("cache-control"), Some("no-cache"));
    // 304s carry it too.
    let etag = r.header("etag").unwrap().to_owned();
    let r = roundtrip(
        server.addr,
        format!("GET /index.html HTTP/1.1\r\nHost: t\r\nIf-None-Match: {etag}\r\n\r\n").as_bytes(),
    );
    assert_eq!((r.status, r.header("cache-control")), (304, Some("no-cache")));
    let r = roundtrip(server.addr, b"GET /blob HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.header("content-type"), Some("text/plain"));
    assert_eq!(r.header("cache-control"), None);
}

#[test]
fn directory_listing_is_off_by_default_and_escapes_names() {
    let dir = TempDir::new("listing");
    dir.write("site/files/a <b>&\"c\".txt", b"x");
    dir.write("site/files/sub/deeper.txt", b"y");
    let off = server_with(&dir, "");
    assert_eq!(
        roundtrip(off.addr, b"GET /files/ HTTP/1.1\r\nHost: t\r\n\r\n").status,
        403
    );
    drop(off);

    let on = server_with(&dir, "[static_files]\nlisting = true\n");
    let r = roundtrip(on.addr, b"GET /files/ HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(r.status, 200);
    let page = r.body_str();
    assert!(page.contains("&lt;b&gt;&amp;&quot;c&quot;.txt"), "{page}");
    assert!(!page.contains("<b>"), "{page}");
    assert!(page.contains("href=\"a%20%3Cb%3E&amp;%22c%22.txt\""), "{page}");
    assert!(page.contains("href=\"sub/\">sub/</a>"), "{page}");
    // The link works.
    let r = roundtrip(
        on.addr,
        b"GET /files/a%20%3Cb%3E&%22c%22.txt HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    assert_eq!((r.status, r.body_str().as_str()), (200, "x"));
}
