//! Micro-benchmarks for ringd-core: request-head parsing and response-head writing.
//!
//! Run with `cargo bench -p ringd-core`. Each parse benchmark has a twin that runs plain
//! `httparse::Request::parse` on the same bytes: the floor that ringd's checks (limits,
//! target form, Host, framing) add to. Throughput is reported per request, so criterion's
//! `elem/s` is requests per second and its time is ns per request (for the pipelined batch,
//! the batch time divided by the batch size is ns per request).

use std::hint::black_box;
use std::time::SystemTime;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ringd_core::{
    header_slots, parse_request, write_head, BodyLength, DateCache, HeaderSlots, Limits, Parsed, ResponseHead, Version,
};

/// A typical browser navigation: GET with 10 header fields.
const BROWSER_GET: &[u8] = b"GET /articles/2024/io-uring-servers?page=2&sort=new HTTP/1.1\r\n\
Host: www.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Referer: https://www.example.com/articles/2024/\r\n\
Connection: keep-alive\r\n\
Cookie: session=7f3a9c2e41d84b0f; theme=dark; _ga=GA1.2.1234567890.1700000000\r\n\
Upgrade-Insecure-Requests: 1\r\n\
If-None-Match: \"5f2b-1a2b3c4d\"\r\n\
\r\n";

/// A small JSON API call: POST with a Content-Length body (only the head is parsed).
const API_POST: &[u8] = b"POST /api/v1/orders HTTP/1.1\r\n\
Host: api.example.com\r\n\
Content-Type: application/json\r\n\
Content-Length: 48\r\n\
Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJl\r\n\
Accept: application/json\r\n\
\r\n\
{\"item\":\"widget\",\"quantity\":3,\"price_cents\":1299}";

/// The request wrk sends in the plaintext scenario; repeated for the pipelined batch.
const WRK_GET: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";

/// Requests per pipelined batch, as in benches/pipeline.lua.
const DEPTH: usize = 16;

/// Parses with `slots` made once, as a connection reuses its slots (an allocation a request
/// would otherwise be measured).
fn ringd_parse_one<'b>(buf: &'b [u8], limits: &Limits, slots: &mut HeaderSlots<'b>) -> usize {
    match parse_request(buf, limits, slots) {
        Ok(Parsed::Complete(head)) => head.head_len,
        other => panic!("benchmark request did not parse: {other:?}"),
    }
}

fn httparse_one(buf: &[u8]) -> usize {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        other => panic!("benchmark request did not parse: {other:?}"),
    }
}

fn bench_parse(c: &mut Criterion) {
    let limits = Limits::default();
    let mut group = c.benchmark_group("parse");
    for (name, bytes) in [
        ("browser_get", BROWSER_GET),
        ("api_post", API_POST),
        ("wrk_get", WRK_GET),
    ] {
        group.throughput(Throughput::Elements(1));
        let mut slots = header_slots();
        group.bench_function(format!("{name}/ringd"), |b| {
            b.iter(|| ringd_parse_one(black_box(bytes), &limits, &mut slots))
        });
        group.bench_function(format!("{name}/httparse"), |b| {
            b.iter(|| httparse_one(black_box(bytes)))
        });
    }

    // A pipelined batch: DEPTH requests in one read buffer, parsed one after the other the
    // way a connection drains its buffer.
    let batch: Vec<u8> = WRK_GET.repeat(DEPTH);
    group.throughput(Throughput::Elements(DEPTH as u64));
    let mut slots = header_slots();
    group.bench_function(format!("pipelined_{DEPTH}/ringd"), |b| {
        b.iter(|| {
            let buf = black_box(&batch[..]);
            let mut at = 0;
            while at < buf.len() {
                at += ringd_parse_one(&buf[at..], &limits, &mut slots);
            }
            at
        })
    });
    group.bench_function(format!("pipelined_{DEPTH}/httparse"), |b| {
        b.iter(|| {
            let buf = black_box(&batch[..]);
            let mut at = 0;
            while at < buf.len() {
                at += httparse_one(&buf[at..]);
            }
            at
        })
    });
    group.finish();
}

fn bench_write(c: &mut Criterion) {
    let mut group = c.benchmark_group("write_head");
    group.throughput(Throughput::Elements(1));
    let mut dates = DateCache::new();
    let mut out = Vec::with_capacity(1024);

    let plaintext: &[(&str, &[u8])] = &[("Content-Type", b"text/plain; charset=utf-8")];
    let static_file: &[(&str, &[u8])] = &[
        ("Content-Type", b"application/octet-stream"),
        ("Last-Modified", b"Wed, 21 Oct 2015 07:28:00 GMT"),
        ("ETag", b"\"5f2b-1a2b3c4d\""),
        ("Accept-Ranges", b"bytes"),
        ("Cache-Control", b"public, max-age=3600"),
    ];
    for (name, headers, body, keep_alive) in [
        ("plaintext", plaintext, 13u64, true),
        ("static_file", static_file, 4096, true),
        ("plaintext_close", plaintext, 13, false),
    ] {
        let head = ResponseHead {
            status: 200,
            headers,
            block: None,
            body: BodyLength::Known(body),
            request_version: Version::Http11,
            keep_alive,
            head_request: false,
        };
        // The server's path: look up the cached Date (one clock read), then write the head.
        group.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                let date = dates.get(SystemTime::now());
                write_head(&mut out, black_box(&head), date, b"ringd").expect("valid head");
                out.len()
            })
        });
    }

    let streamed = ResponseHead {
        status: 404,
        headers: &[("Content-Type", b"text/html")],
        block: None,
        body: BodyLength::Streamed,
        request_version: Version::Http11,
        keep_alive: true,
        head_request: false,
    };
    group.bench_function("chunked_404", |b| {
        b.iter(|| {
            out.clear();
            let date = dates.get(SystemTime::now());
            write_head(&mut out, black_box(&streamed), date, b"ringd").expect("valid head");
            out.len()
        })
    });
    group.bench_function("date_cache_get", |b| {
        b.iter(|| dates.get(black_box(SystemTime::now())).len())
    });
    group.finish();
}

criterion_group!(benches, bench_parse, bench_write);
criterion_main!(benches);
