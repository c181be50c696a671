//! Path traversal battery: every way of spelling "go above the root" that clients and scanners
//! use, against a root with a secret file right next to it. None may reveal the secret.

mod common;

use common::{roundtrip, Server, TempDir};

const SECRET: &str = "TOP-SECRET-9f86d081";

#[test]
fn no_encoding_of_dot_dot_reaches_a_file_outside_the_root() {
    let dir = TempDir::new("traversal");
    dir.write("secret.txt", SECRET.as_bytes());
    dir.write("site/index.html", b"<p>inside</p>");
    dir.write("site/sub/page.html", b"<p>sub</p>");
    std::os::unix::fs::symlink(dir.join("secret.txt"), dir.join("site/link.txt")).unwrap();
    std::os::unix::fs::symlink(dir.path.clone(), dir.join("site/up")).unwrap();
    let root = dir.join("site");
    let server = Server::start(&["--root", root.to_str().unwrap()]);

    let targets = [
        "/../secret.txt",
        "/sub/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/.%2e/secret.txt",
        "/%2e./secret.txt",
        "/..%2fsecret.txt",
        "/..%2Fsecret.txt",
        "/sub/..%2f..%2fsecret.txt",
        "/%2e%2e%2fsecret.txt",
        "/%252e%252e/secret.txt",
        "/%252e%252e%252fsecret.txt",
        "/..%5csecret.txt",
        "/..\\secret.txt",
        "/%c0%ae%c0%ae/secret.txt",
        "/%e0%80%ae%e0%80%ae/secret.txt",
        "/..%00/secret.txt",
        "/secret.txt%00.html",
        "/./../secret.txt",
        "//../secret.txt",
        "/sub//..//..//secret.txt",
        "/..;/secret.txt",
        "/link.txt",
        "/up/secret.txt",
        "/up/site/../secret.txt",
        &format!("{}", dir.join("secret.txt").display()),
        &format!("/{}", dir.join("secret.txt").display()),
        "http://t/../secret.txt",
        "http://t/%2e%2e/secret.txt",
    ];
    for target in targets {
        for method in ["GET", "HEAD"] {
            let req = format!("{method} {target} HTTP/1.1\r\nHost: t\r\n\r\n");
            let r = roundtrip(server.addr, req.as_bytes());
            let body = r.body_str();
            assert!(!body.contains(SECRET), "{method} {target} revealed the secret");
            assert!(
                matches!(r.status, 400 | 403 | 404),
                "{method} {target}: expected 400/403/404, got {} {:?}",
                r.status,
                body
            );
        }
    }
    // Sanity: the files inside the root are served.
    assert_eq!(
        roundtrip(server.addr, b"GET /sub/page.html HTTP/1.1\r\nHost: t\r\n\r\n").status,
        200
    );
    assert_eq!(
        roundtrip(server.addr, b"GET /sub/../index.html HTTP/1.1\r\nHost: t\r\n\r\n").body_str(),
        "<p>inside</p>"
    );
    server.assert_no_panic();
}
