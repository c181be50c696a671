//! Dispatch's steps (rate limits, router, handler, compression) answer the same whichever way
//! they are taken: inside HTTP/1.1's answering loop (no handler timeout) or in a future of
//! their own (`timeouts.handler` set, as HTTP/2 takes them). Two servers with the same routes,
//! zones and compression, one of each kind, must give byte-identical answers but for `Date`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use ring_server::{
    handler_async, Body, BufferConfig, Bytes, Compression, Per, Rate, RateZone, Request, Response, Router, Server,
    ServerConfig, Timeouts, Workers,
};

/// A body long enough to be compressed (256 bytes and more).
const TEXT: &str = concat!(
    "the same words again and again, the same words again and again, the same words again\n",
    "the same words again and again, the same words again and again, the same words again\n",
    "the same words again and again, the same words again and again, the same words again\n",
    "the same words again and again, the same words again and again, the same words again\n",
);

fn start(handler_timeout: Option<Duration>) -> SocketAddr {
    let refuse = RateZone {
        paths: vec!["/refused/".to_owned()],
        ..RateZone::new(
            "refused",
            Rate {
                requests: 1,
                per: Per::Minute,
            },
        )
    };
    // Twenty a second with a burst of one, delayed (not refused): a second request right after
    // the first waits its turn, about 50 ms.
    let delay = RateZone {
        paths: vec!["/delayed/".to_owned()],
        burst: 1,
        ..RateZone::new(
            "delayed",
            Rate {
                requests: 20,
                per: Per::Second,
            },
        )
    };
    let config = ServerConfig {
        timeouts: Timeouts {
            handler: handler_timeout,
            ..Default::default()
        },
        rate_limits: vec![refuse, delay],
        compression: Compression {
            enabled: true,
            ..Compression::default()
        },
        ..one_worker()
    };
    let server = Server::new(config, |_| {
        let mut r = Router::new();
        r.route("GET /sync", |_: &Request<'_>| Response::text(TEXT)).unwrap();
        r.route(
            "GET /async",
            handler_async(async |req: &Request<'_>| {
                Response::text("").body(Body::Full(Bytes::from(format!("{}{TEXT}", req.path()))))
            }),
        )
        .unwrap();
        r.route("GET /panic", |_: &Request<'_>| -> Response {
            panic!("handler failure (expected by the test)")
        })
        .unwrap();
        r.route(
            "GET /async-panic",
            handler_async(async |_: &Request<'_>| -> Response { panic!("handler failure (expected by the test)") }),
        )
        .unwrap();
        r.route("POST /only-post", |_: &Request<'_>| Response::text("posted"))
            .unwrap();
        r.route("GET /refused/{x}", |_: &Request<'_>| Response::text("allowed"))
            .unwrap();
        r.route("GET /delayed/{x}", |_: &Request<'_>| Response::text("served"))
            .unwrap();
        r
    })
    .start()
    .expect("server starts");
    let addr = server.local_addrs()[0];
    // The workers run until the test process exits.
    std::mem::forget(server);
    addr
}

/// Sends `request` on a new connection and reads the answer until the server closes; the
/// `Date` line is blanked (the two servers answer at different instants).
fn ask(addr: SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => all.extend_from_slice(&buf[..n]),
            // A signal handled elsewhere in this process interrupts a read with a timeout.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => panic!("no close within the read timeout ({e}); got {all:?}"),
        }
    }
    let text = String::from_utf8_lossy(&all).into_owned();
    let mut out = String::new();
    for line in text.split_inclusive("\r\n") {
        out.push_str(if line.starts_with("Date: ") {
            "Date: -\r\n"
        } else {
            line
        });
    }
    out
}

#[test]
fn the_steps_answer_the_same_in_the_answering_loop_and_in_a_future_of_their_own() {
    let inline = start(None);
    let own = start(Some(Duration::from_secs(30)));
    let get = |path: &str, extra: &str| format!("GET {path} HTTP/1.1\r\nHost: t\r\n{extra}Connection: close\r\n\r\n");
    let cases = [
        get("/sync", ""),
        get("/async", ""),
        get("/sync", "Accept-Encoding: gzip\r\n"),
        get("/async", "Accept-Encoding: gzip\r\n"),
        get("/panic", ""),
        get("/async-panic", ""),
        get("/nowhere", ""),
        get("/only-post", ""),
        "OPTIONS /only-post HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".to_owned(),
        "OPTIONS * HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".to_owned(),
        get("/refused/a", ""),
        get("/refused/a", ""),
    ];
    let mut answers = Vec::new();
    for request in &cases {
        let a = ask(inline, request);
        let b = ask(own, request);
        assert_eq!(a, b, "answered differently: {request:?}");
        answers.push(a);
    }
    let status = |a: &str| a.split(' ').nth(1).unwrap_or("").to_owned();
    let statuses: Vec<String> = answers.iter().map(|a| status(a)).collect();
    assert_eq!(
        statuses,
        ["200", "200", "200", "200", "500", "500", "404", "405", "204", "204", "200", "429"],
        "{answers:#?}"
    );
    assert!(answers[1].ends_with(&format!("/async{TEXT}")), "{}", answers[1]);
    for compressed in &answers[2..4] {
        assert!(compressed.contains("\r\nContent-Encoding: gzip\r\n"), "{compressed}");
    }
    assert!(answers[7].contains("\r\nAllow: POST\r\n"), "{}", answers[7]);

    // A delayed request (the second of two at twice the zone's rate) is served, after its wait.
    for addr in [inline, own] {
        let started = Instant::now();
        for _ in 0..2 {
            let a = ask(addr, &get("/delayed/a", ""));
            assert!(a.starts_with("HTTP/1.1 200 ") && a.ends_with("served"), "{a}");
        }
        assert!(
            started.elapsed() >= Duration::from_millis(20),
            "the second request was not delayed: {:?}",
            started.elapsed()
        );
    }
}

/// A request is timed to the end of its handler, also when the handler answers at once: one
/// that keeps the worker busy for 30 ms is counted above the 25 ms bucket, whether it is the
/// first request of a read or behind another in the same read (pipelined).
#[test]
fn a_heavy_synchronous_handler_counts_its_time() {
    let config = one_worker();
    let server = Server::new(config, |_| {
        let mut r = Router::new();
        r.route("GET /heavy", |_: &Request<'_>| {
            std::thread::sleep(Duration::from_millis(30));
            Response::text("done")
        })
        .unwrap();
        r
    })
    .start()
    .expect("server starts");
    let addr = server.local_addrs()[0];
    let metrics = server.metrics();
    std::mem::forget(server);
    let line = |text: &str, name: &str| -> f64 {
        let line = text
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name}:\n{text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let heavy = "GET /heavy HTTP/1.1\r\nHost: t\r\n\r\n";
    let answer = ask(
        addr,
        &format!("{heavy}{heavy}GET /heavy HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(answer.matches("HTTP/1.1 200 ").count(), 3, "{answer}");
    let text = metrics.render();
    assert_eq!(line(&text, "ringd_http_request_duration_seconds_count"), 3.0, "{text}");
    assert_eq!(
        line(&text, "ringd_http_request_duration_seconds_bucket{le=\"0.025\"}"),
        0.0,
        "a heavy handler was counted as quick:\n{text}"
    );
    assert!(line(&text, "ringd_http_request_duration_seconds_sum") >= 0.09, "{text}");
}

/// One worker on a free loopback port, with few registered buffers: every server of this
/// binary keeps its locked memory.
fn one_worker() -> ServerConfig {
    ServerConfig {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        workers: Workers::Count(1),
        buffers: BufferConfig {
            count: 4,
            ..Default::default()
        },
        ..ServerConfig::default()
    }
}
