//! Static files: validators (ETag, Last-Modified), conditional requests (304, 412) and byte
//! ranges (206, 416, If-Range), on small files and on large ones streamed from an offset.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{require_tool, roundtrip, run_bounded, Server, TempDir};

fn site() -> (TempDir, Vec<u8>, Vec<u8>) {
    let dir = TempDir::new("conditional");
    let small: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    let large: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    dir.write("small.bin", &small);
    dir.write("large.bin", &large);
    (dir, small, large)
}

fn get(server: &Server, path: &str, extra: &str) -> common::Response {
    let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\n{extra}\r\n");
    roundtrip(server.addr, req.as_bytes())
}

#[test]
fn validators_and_conditional_requests() {
    let (dir, small, _) = site();
    // The hot-file cache checks the file on every request, so the change below shows at once.
    let conf_dir = TempDir::new("conditional-conf");
    let server = Server::start_site(&conf_dir, &dir.path, "[static_files]\ncache_revalidate = 0\n");
    let r = get(&server, "/small.bin", "");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, small);
    let etag = r.header("etag").expect("ETag").to_owned();
    let modified = r.header("last-modified").expect("Last-Modified").to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
    assert_eq!(r.header("accept-ranges"), Some("bytes"));

    let r = get(&server, "/small.bin", &format!("If-None-Match: {etag}\r\n"));
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    assert_eq!(r.header("content-length"), None);
    let r = roundtrip(
        server.addr,
        format!("HEAD /small.bin HTTP/1.1\r\nHost: t\r\nIf-None-Match: \"x\", W/{etag}\r\n\r\n").as_bytes(),
    );
    assert_eq!(r.status, 304);
    assert_eq!(get(&server, "/small.bin", "If-None-Match: \"other\"\r\n").status, 200);

    assert_eq!(
        get(&server, "/small.bin", &format!("If-Modified-Since: {modified}\r\n")).status,
        304
    );
    let r = get(
        &server,
        "/small.bin",
        "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n",
    );
    assert_eq!((r.status, r.body.len()), (200, small.len()));

    assert_eq!(get(&server, "/small.bin", "If-Match: \"nope\"\r\n").status, 412);
    assert_eq!(get(&server, "/small.bin", &format!("If-Match: {etag}\r\n")).status, 200);
    assert_eq!(
        get(
            &server,
            "/small.bin",
            "If-Unmodified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
        )
        .status,
        412
    );

    // A changed file has a new tag: the old one no longer matches.
    dir.write("small.bin", &small[..500]);
    let r = get(&server, "/small.bin", &format!("If-None-Match: {etag}\r\n"));
    assert_eq!((r.status, r.body.len()), (200, 500));
    assert_ne!(r.header("etag"), Some(etag.as_str()));
}

#[test]
fn byte_ranges_small_and_large() {
    let (dir, small, large) = site();
    let server = Server::start(&["--root", dir.path.to_str().unwrap()]);

    let r = get(&server, "/small.bin", "Range: bytes=0-9\r\n");
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range"), Some("bytes 0-9/1000"));
    assert_eq!(r.body, &small[..10]);
    let r = get(&server, "/small.bin", "Range: bytes=-5\r\n");
    assert_eq!((r.status, r.body.as_slice()), (206, &small[995..]));
    let r = get(&server, "/small.bin", "Range: bytes=990-\r\n");
    assert_eq!(r.header("content-range"), Some("bytes 990-999/1000"));
    let r = get(&server, "/small.bin", "Range: bytes=1000-\r\n");
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range"), Some("bytes */1000"));
    // Several ranges: the whole file, as RFC 9110 allows.
    let r = get(&server, "/small.bin", "Range: bytes=0-1,5-6\r\n");
    assert_eq!((r.status, r.body.len()), (200, 1000));

    // If-Range: a current tag keeps the range, a stale one gets the whole file.
    let etag = get(&server, "/small.bin", "").header("etag").unwrap().to_owned();
    let r = get(
        &server,
        "/small.bin",
        &format!("Range: bytes=0-9\r\nIf-Range: {etag}\r\n"),
    );
    assert_eq!(r.status, 206);
    let r = get(&server, "/small.bin", "Range: bytes=0-9\r\nIf-Range: \"stale\"\r\n");
    assert_eq!((r.status, r.body.len()), (200, 1000));

    // HEAD ignores Range.
    let r = roundtrip(
        server.addr,
        b"HEAD /small.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=0-9\r\n\r\n",
    );
    assert_eq!((r.status, r.header("content-length")), (200, Some("1000")));

    // A range in the middle of a large file is streamed from its offset.
    let r = get(&server, "/large.bin", "Range: bytes=1000000-2499999\r\n");
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range"), Some("bytes 1000000-2499999/3000000"));
    assert!(r.body == large[1_000_000..2_500_000], "large range differs");
}

#[test]
fn curl_resumes_a_download_with_a_range() {
    require_tool("curl", "curl");
    let (dir, _, large) = site();
    let server = Server::start(&["--root", dir.path.to_str().unwrap()]);
    let out_dir = TempDir::new("curl-range");
    let part = out_dir.write("large.bin", &large[..1_234_567]);
    // `-C -` continues from the size of the partial file.
    let out = run_bounded(
        Command::new("curl")
            .args(["-sS", "-C", "-", "-o"])
            .arg(&part)
            .arg(server.url("/large.bin")),
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", out.stderr);
    assert!(std::fs::read(&part).unwrap() == large, "resumed download differs");
}

#[test]
fn curl_ranges_and_time_conditions() {
    require_tool("curl", "curl");
    let (dir, small, large) = site();
    let server = Server::start(&["--root", dir.path.to_str().unwrap()]);
    let curl = |args: &[&str]| {
        let out = run_bounded(Command::new("curl").arg("-sS").args(args), Duration::from_secs(60));
        assert!(out.status.success(), "curl {args:?}: {}", out.stderr);
        out.stdout
    };
    // -r: one range of a small (cached) file and of a large (streamed) one.
    assert_eq!(curl(&["-r", "10-109", &server.url("/small.bin")]), small[10..110]);
    assert!(curl(&["-r", "-5000", &server.url("/large.bin")]) == large[large.len() - 5000..]);
    // -z DATE sends If-Modified-Since: the file's own Last-Modified gets 304 (no body), a date
    // before it the file; -z -DATE sends If-Unmodified-Since.
    let code = |args: &[&str]| {
        let mut all = vec!["-o", "/dev/null", "-w", "%{http_code}"];
        all.extend_from_slice(args);
        String::from_utf8(curl(&all)).unwrap()
    };
    let url = server.url("/small.bin");
    let last_modified = get(&server, "/small.bin", "")
        .header("last-modified")
        .unwrap()
        .to_owned();
    assert_eq!(code(&["-z", &last_modified, &url]), "304");
    assert_eq!(code(&["-z", "1 Jan 2000", &url]), "200");
    assert_eq!(code(&["-z", "-1 Jan 2000", &url]), "412");
    assert!(curl(&["-z", &last_modified, &url]).is_empty());
    assert_eq!(curl(&["-z", "1 Jan 2000", &url]), small);
}
