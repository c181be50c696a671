//! A real browser (headless Chromium) loads the pages ringd serves: the built-in page, and a
//! static site whose stylesheet, script, image and JSON must all arrive intact for the page's
//! own script to report success.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{require_tool, run_bounded, Server, TempDir};

/// Loads `url` in headless Chromium and returns the DOM after the page's scripts ran.
fn dump_dom(url: &str) -> String {
    dump_dom_with(url, &[])
}

fn dump_dom_with(url: &str, extra: &[&str]) -> String {
    require_tool("chromium", "chromium");
    let profile = TempDir::new("chromium-profile");
    let out = run_bounded(
        Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--virtual-time-budget=5000",
                &format!("--user-data-dir={}", profile.path.display()),
            ])
            .args(extra)
            .args(["--dump-dom", url]),
        Duration::from_secs(90),
    );
    out.assert_success("chromium").stdout_str()
}

#[test]
fn browser_renders_the_builtin_page() {
    let server = Server::start(&[]);
    let dom = dump_dom(&server.url("/"));
    assert!(dom.contains("<title>ringd is running</title>"), "{dom}");
    assert!(dom.contains("<h1>ringd is running</h1>"), "{dom}");
    assert!(
        dom.contains(r#"href="/plaintext""#) && dom.contains(r#"href="/json""#),
        "{dom}"
    );
    assert!(dom.contains(r#"<code id="protocol">http/1.1</code>"#), "{dom}");
    assert!(dom.contains(r#"<code id="encoding">as it is</code>"#), "{dom}");
    server.assert_no_panic();
}

/// With compression on, the browser gets the built-in page compressed (it offers gzip, br and
/// zstd) and renders it the same; the page reports its bytes on the wire against its size
/// (Resource Timing's `encodedBodySize` and `decodedBodySize`).
#[test]
fn browser_renders_the_builtin_page_compressed() {
    let dir = TempDir::new("browser-compression");
    let conf = dir.write("ringd.toml", b"[compression]\nenabled = true\n");
    let server = Server::start(&["--config", conf.to_str().unwrap()]);
    let dom = dump_dom(&server.url("/"));
    assert!(dom.contains("<h1>ringd is running</h1>"), "{dom}");
    if !dom.contains(r#"<code id="encoding">compressed: "#) {
        // Say which side is wrong: what ringd answers a client that offers what Chromium offers.
        let head = run_bounded(
            Command::new("curl")
                .args(["-s", "-o", "/dev/null", "-D", "-"])
                .args(["-H", "Accept-Encoding: gzip, deflate, br, zstd"])
                .arg(server.url("/")),
            Duration::from_secs(30),
        );
        let version = run_bounded(Command::new("chromium").arg("--version"), Duration::from_secs(30));
        panic!(
            "the page did not report a compressed navigation\n{}\nringd answers:\n{}\n{dom}",
            version.stdout_str().trim(),
            head.stdout_str()
        );
    }
    server.assert_no_panic();
}

/// Over TLS the browser chooses HTTP/2 by ALPN: the built-in page reports the protocol its own
/// navigation used (`performance.getEntriesByType("navigation")[0].nextHopProtocol`).
#[test]
fn browser_uses_http2_over_tls() {
    let pki = common::pki::Pki::new();
    let leaf = pki.issue("browser", &["localhost"], common::pki::KeyKind::EcPkcs8);
    let server = Server::start(&["--tls-cert", leaf.cert_str(), "--tls-key", leaf.key_str()]);
    let url = format!("https://localhost:{}/", server.port());
    // The test CA is not in Chromium's store; the certificate itself is checked by tls.rs.
    let dom = dump_dom_with(&url, &["--ignore-certificate-errors"]);
    assert!(dom.contains("<h1>ringd is running</h1>"), "{dom}");
    assert!(dom.contains(r#"<code id="protocol">h2</code>"#), "{dom}");
    server.assert_no_panic();
}

#[test]
fn browser_loads_a_static_site_with_all_its_parts() {
    let site = TempDir::new("browser-site");
    site.write(
        "index.html",
        br#"<!doctype html>
<html><head><meta charset="utf-8"><title>site</title>
<link rel="stylesheet" href="css/style.css">
<script src="js/app.js"></script>
</head><body>
<div id="probe">probe</div>
<img id="logo" src="img/logo.svg" alt="logo">
<p id="result">not run</p>
</body></html>"#,
    );
    site.write("css/style.css", b"#probe { width: 123px; color: rgb(1, 2, 3); }\n");
    site.write(
        "img/logo.svg",
        br#"<svg xmlns="http://www.w3.org/2000/svg" width="40" height="30"><rect width="40" height="30" fill="teal"/></svg>"#,
    );
    site.write("data/info.json", br#"{"greeting":"h\u00e9llo"}"#);
    site.write(
        "js/app.js",
        br#"window.addEventListener('load', async () => {
  const probe = getComputedStyle(document.getElementById('probe'));
  const img = document.getElementById('logo');
  const data = await (await fetch('/data/info.json')).json();
  document.getElementById('result').textContent =
    `css=${probe.width}/${probe.color} img=${img.naturalWidth}x${img.naturalHeight} json=${data.greeting}`;
});
"#,
    );
    let root = site.path.to_str().unwrap().to_owned();
    let server = Server::start(&["--root", &root]);
    let dom = dump_dom(&server.url("/"));
    assert!(
        dom.contains("css=123px/rgb(1, 2, 3) img=40x30 json=h\u{e9}llo"),
        "the page's script did not see every resource:\n{dom}"
    );
    server.assert_no_panic();
}
