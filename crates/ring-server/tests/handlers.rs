//! The library API end to end: a real `Server` (io_uring workers on loopback) with handlers the
//! built-in site does not have: slow ones, panicking streams, handlers that ask to close.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use ring_server::{
    handler_async, Body, BodyStream, BufferConfig, Bytes, ChunkFuture, Request, Response, Router, Server, ServerConfig,
    Workers,
};

/// Starts a one-worker server on a free port; it runs until the test process exits.
///
/// Each server locks its registered buffers (`RLIMIT_MEMLOCK`, which an ordinary user has 8 MiB
/// of, for all of that user's processes together), and this binary keeps all of its servers:
/// with the default pool (64 × 16 KiB) eight of them would fill the limit. Four buffers each
/// (64 KiB) are plenty for these tests' few connections.
fn start(config: ServerConfig, routes: impl Fn(&mut Router) + Send + Sync + 'static) -> SocketAddr {
    let config = ServerConfig {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        workers: Workers::Count(1),
        buffers: BufferConfig {
            count: 4,
            ..config.buffers
        },
        ..config
    };
    let server = Server::new(config, move |_| {
        let mut r = Router::new();
        routes(&mut r);
        r
    })
    .start()
    .expect("server starts");
    let addr = server.local_addrs()[0];
    // The workers run until the test process exits.
    std::mem::forget(server);
    addr
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Reads until the server closes; panics if it does not within the read timeout.
fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return all,
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return all,
            // A signal handled elsewhere in this process interrupts a read with a timeout
            // (signal(7): never restarted); the server has not answered yet.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => panic!(
                "no close within the read timeout ({e}); got {:?}",
                String::from_utf8_lossy(&all)
            ),
        }
    }
}

fn count(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

/// Server-side sockets on `port` that still hold a connection open (anything but the listener
/// and TIME-WAIT, which holds no fd). Counted with `ss`, since the tests share one process.
fn live_server_sockets(port: u16) -> Vec<String> {
    let out = std::process::Command::new("ss")
        .args(["-Htan", &format!("sport = :{port}")])
        .output()
        .expect("run ss (apt-get install -y iproute2)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with("LISTEN") && !l.starts_with("TIME-WAIT"))
        .map(str::to_owned)
        .collect()
}

struct PanickingStream;

impl BodyStream for PanickingStream {
    fn length(&self) -> Option<u64> {
        Some(10)
    }
    fn next_chunk(&mut self) -> ChunkFuture<'_> {
        Box::pin(async { panic!("stream failure (expected by the test)") })
    }
}

#[test]
fn a_panicking_body_stream_closes_its_connection_and_leaks_nothing() {
    let addr = start(ServerConfig::default(), |r| {
        r.route("GET /panic", |_: &Request<'_>| {
            Response::new(200).body(Body::Stream(Box::new(PanickingStream)))
        })
        .unwrap();
        r.route("GET /ok", |_: &Request<'_>| Response::text("ok")).unwrap();
    });
    let mut warm = connect(addr);
    warm.write_all(b"GET /ok HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    read_to_close(&mut warm);
    drop(warm);
    for _ in 0..20 {
        let mut s = connect(addr);
        s.write_all(b"GET /panic HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        let got = read_to_close(&mut s);
        // The head went out, then the body failed: the connection must close, not hang.
        assert!(
            got.starts_with(b"HTTP/1.1 200 OK\r\n"),
            "{:?}",
            String::from_utf8_lossy(&got)
        );
    }
    // Every server-side socket must be closed again (a leaked slot would sit in CLOSE-WAIT).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let live = live_server_sockets(addr.port());
        if live.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "server sockets still open: {live:#?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut s = connect(addr);
    s.write_all(b"GET /ok HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert!(read_to_close(&mut s).ends_with(b"ok"));
}

#[test]
fn a_slow_handler_is_not_cut_by_the_idle_deadline_of_the_read_before_it() {
    let config = ServerConfig {
        timeouts: ring_server::Timeouts {
            keepalive: Duration::from_secs(2),
            ..Default::default()
        },
        ..Default::default()
    };
    let addr = start(config, |r| {
        r.route(
            "GET /slow",
            handler_async(async |_: &Request<'_>| {
                tokio::time::sleep(Duration::from_secs(2)).await;
                Response::text("slow")
            }),
        )
        .unwrap();
        r.route("GET /ok", |_: &Request<'_>| Response::text("ok")).unwrap();
    });
    let mut s = connect(addr);
    s.write_all(b"GET /ok HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let mut buf = [0u8; 1024];
    let n = s.read(&mut buf).unwrap();
    assert!(buf[..n].ends_with(b"ok"));
    // Idle for most of the keep-alive timeout, then a request whose handler outlasts the rest.
    std::thread::sleep(Duration::from_millis(1500));
    s.write_all(b"GET /slow HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let got = read_to_close(&mut s);
    assert!(got.ends_with(b"slow"), "{:?}", String::from_utf8_lossy(&got));
}

#[test]
fn a_handler_asking_to_close_is_obeyed_even_with_a_large_body() {
    let big = Bytes::from(vec![b'x'; 100_000]);
    let addr = start(ServerConfig::default(), move |r| {
        let big = big.clone();
        r.route("GET /big", move |_: &Request<'_>| {
            Response::new(200)
                .header("Connection", "close")
                .body(Body::Full(big.clone()))
        })
        .unwrap();
        r.route("GET /ok", |_: &Request<'_>| Response::text("ok")).unwrap();
    });
    let mut s = connect(addr);
    s.write_all(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\nGET /ok HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let got = read_to_close(&mut s);
    assert_eq!(
        count(&got, b"HTTP/1.1 "),
        1,
        "the request after the close must not be answered"
    );
    assert_eq!(count(&got, b"Connection: close\r\n"), 1);
    assert!(got.ends_with(&[b'x'; 1000]));
}

#[test]
fn connect_is_refused_and_the_connection_closed() {
    let addr = start(ServerConfig::default(), |r| {
        r.route("/", |_: &Request<'_>| Response::text("catch-all")).unwrap();
    });
    let mut s = connect(addr);
    s.write_all(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
        .unwrap();
    let got = read_to_close(&mut s);
    assert!(got.starts_with(b"HTTP/1.1 501 "), "{:?}", String::from_utf8_lossy(&got));
}

#[test]
fn a_silent_new_connection_gets_the_header_timeout_not_the_keepalive_one() {
    let config = ServerConfig {
        timeouts: ring_server::Timeouts {
            header: Duration::from_secs(1),
            keepalive: Duration::from_secs(600),
            ..Default::default()
        },
        ..Default::default()
    };
    let addr = start(config, |r| {
        r.route("GET /ok", |_: &Request<'_>| Response::text("ok")).unwrap();
    });
    let mut s = connect(addr);
    assert!(read_to_close(&mut s).is_empty());
}

#[test]
fn handlers_read_forms_json_params_and_queries() {
    let addr = start(ServerConfig::default(), |r| {
        r.route("POST /form", |req: &Request<'_>| {
            let pairs: Vec<String> = req.form().map(|(k, v)| format!("{k}={v}")).collect();
            Response::text("").body(Body::Full(Bytes::from(pairs.join("|"))))
        })
        .unwrap();
        r.route("POST /json", |req: &Request<'_>| {
            match req.json::<serde_json::Value>() {
                Ok(v) => Response::json(&serde_json::json!({ "n": v["n"].as_i64().map(|n| n * 2) })),
                Err(_) => Response::error(400),
            }
        })
        .unwrap();
        r.route("GET /users/{id}/files/{path...}", |req: &Request<'_>| {
            let q: Vec<String> = req.query_pairs().map(|(k, v)| format!("{k}={v}")).collect();
            let text = format!(
                "{} {} {}",
                req.param("id").unwrap(),
                req.param("path").unwrap(),
                q.join("&")
            );
            Response::text("").body(Body::Full(Bytes::from(text)))
        })
        .unwrap();
    });
    let ask = |raw: &[u8]| {
        let mut s = connect(addr);
        s.write_all(raw).unwrap();
        String::from_utf8(read_to_close(&mut s)).unwrap()
    };
    let form = ask(b"POST /form HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 27\r\n\r\nname=J%C3%B6rg+K&lang=rust&");
    assert!(form.ends_with("\r\n\r\nname=Jörg K|lang=rust"), "{form}");
    let json = ask(b"POST /json HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 8\r\n\r\n{\"n\":21}");
    assert!(
        json.ends_with("\r\n\r\n{\"n\":42}") && json.contains("Content-Type: application/json\r\n"),
        "{json}"
    );
    let bad = ask(b"POST /json HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 3\r\n\r\n{{{");
    assert!(bad.starts_with("HTTP/1.1 400 "), "{bad}");
    let params =
        ask(b"GET /users/7/files/a/b%20c.txt?x=1&y=two+words HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert!(params.ends_with("\r\n\r\n7 a/b c.txt x=1&y=two words"), "{params}");
}

#[test]
fn a_handler_past_its_deadline_gets_the_client_a_503() {
    let config = ServerConfig {
        timeouts: ring_server::Timeouts {
            handler: Some(Duration::from_secs(1)),
            ..Default::default()
        },
        ..Default::default()
    };
    let addr = start(config, |r| {
        r.route(
            "GET /stuck",
            handler_async(async |_: &Request<'_>| {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Response::text("never")
            }),
        )
        .unwrap();
    });
    let mut s = connect(addr);
    s.write_all(b"GET /stuck HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let got = String::from_utf8(read_to_close(&mut s)).unwrap();
    assert!(got.starts_with("HTTP/1.1 503 "), "{got}");
    assert!(
        got.contains("\r\nRetry-After: 1\r\n") && got.contains("\r\nConnection: close\r\n"),
        "{got}"
    );
}

/// Log lines written by the workers of this test process (a global subscriber, set once).
fn captured_log() -> &'static std::sync::Mutex<Vec<u8>> {
    use std::sync::{Mutex, OnceLock};
    static LOG: OnceLock<&'static Mutex<Vec<u8>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let log: &'static Mutex<Vec<u8>> = Box::leak(Box::new(Mutex::new(Vec::new())));
        struct W(&'static Mutex<Vec<u8>>);
        impl std::io::Write for W {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let _ = tracing_subscriber::fmt()
            .with_writer(move || W(log))
            .with_ansi(false)
            .try_init();
        log
    })
}

#[test]
fn a_flood_of_panicking_requests_is_not_a_flood_of_log_lines() {
    let log = captured_log();
    // The default hook would print every one of these panics; this test is about ringd's own
    // lines. Other panics (a failing assertion anywhere) still reach the default hook.
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let expected = info
            .payload()
            .downcast_ref::<&str>()
            .is_some_and(|m| m.contains("expected by the test"));
        if !expected {
            default(info);
        }
    }));
    let addr = start(ServerConfig::default(), |r| {
        r.route("GET /boom", |_: &Request<'_>| -> Response {
            panic!("boom (expected by the test)")
        })
        .unwrap();
    });
    let started = Instant::now();
    for _ in 0..300 {
        let mut s = connect(addr);
        s.write_all(b"GET /boom HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
        assert!(read_to_close(&mut s).starts_with(b"HTTP/1.1 500 "));
    }
    let seconds = started.elapsed().as_secs() + 1;
    // Wait for the sweeper's once-a-second summary of what was suppressed.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !String::from_utf8_lossy(&log.lock().unwrap()).contains("suppressed") {
        assert!(Instant::now() < deadline, "no suppression summary logged");
        std::thread::sleep(Duration::from_millis(20));
    }
    let text = String::from_utf8_lossy(&log.lock().unwrap()).into_owned();
    let lines = text.matches("handler panicked").count() as u64;
    assert!(lines >= 1, "{text}");
    assert!(
        lines <= 10 * (seconds + 1),
        "{lines} lines for 300 panics in {seconds} s:\n{text}"
    );
}

/// `curl -sS -i --http2-prior-knowledge` with `args`: its output, and whether it succeeded.
fn h2c(args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new("curl")
        .args(["-sS", "-i", "--max-time", "20", "--http2-prior-knowledge"])
        .args(args)
        .output()
        .expect("run curl (apt-get install -y curl)");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The same handlers over HTTP/2: forms, JSON, parameters; a panic is a 500 and a handler past
/// its deadline a 503, on its stream only (the connection-specific `Connection: close` those
/// carry over HTTP/1.1 is never sent); a panicking body stream resets its stream.
#[test]
fn handlers_answer_the_same_over_http2() {
    let config = ServerConfig {
        http2: ring_server::Http2Config {
            cleartext: true,
            ..Default::default()
        },
        timeouts: ring_server::Timeouts {
            handler: Some(Duration::from_secs(1)),
            ..Default::default()
        },
        ..Default::default()
    };
    let addr = start(config, |r| {
        r.route("POST /form", |req: &Request<'_>| {
            let pairs: Vec<String> = req.form().map(|(k, v)| format!("{k}={v}")).collect();
            Response::text("").body(Body::Full(Bytes::from(pairs.join("|"))))
        })
        .unwrap();
        r.route(
            "POST /json",
            handler_async(async |req: &Request<'_>| match req.json::<serde_json::Value>() {
                Ok(v) => Response::json(&serde_json::json!({ "n": v["n"].as_i64().map(|n| n * 2) })),
                Err(_) => Response::error(400),
            }),
        )
        .unwrap();
        r.route("GET /users/{id}", |req: &Request<'_>| {
            Response::text("").body(Body::Full(Bytes::from(format!(
                "{} {}",
                req.param("id").unwrap(),
                req.version().as_str()
            ))))
        })
        .unwrap();
        r.route("GET /panic", |_: &Request<'_>| -> Response {
            panic!("handler failure (expected by the test)")
        })
        .unwrap();
        r.route(
            "GET /stuck",
            handler_async(async |_: &Request<'_>| {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Response::text("never")
            }),
        )
        .unwrap();
        r.route("GET /stream-panic", |_: &Request<'_>| {
            Response::new(200).body(Body::Stream(Box::new(PanickingStream)))
        })
        .unwrap();
    });
    let url = |p: &str| format!("http://{addr}{p}");
    let (ok, form) = h2c(&["--data-binary", "name=J%C3%B6rg+K&lang=rust&", &url("/form")]);
    assert!(
        ok && form.starts_with("HTTP/2 200") && form.ends_with("name=Jörg K|lang=rust"),
        "{form}"
    );
    let (ok, json) = h2c(&["--data-binary", "{\"n\":21}", &url("/json")]);
    assert!(
        ok && json.ends_with("{\"n\":42}") && json.contains("content-type: application/json"),
        "{json}"
    );
    let (ok, user) = h2c(&[&url("/users/7")]);
    assert!(ok && user.ends_with("7 HTTP/2.0"), "{user}");
    let (ok, panic) = h2c(&[&url("/panic")]);
    assert!(ok && panic.starts_with("HTTP/2 500"), "{panic}");
    let (ok, stuck) = h2c(&[&url("/stuck")]);
    assert!(
        ok && stuck.starts_with("HTTP/2 503") && stuck.contains("retry-after: 1"),
        "{stuck}"
    );
    for answer in [&panic, &stuck] {
        assert!(!answer.to_ascii_lowercase().contains("connection:"), "{answer}");
    }
    let (ok, reset) = h2c(&[&url("/stream-panic")]);
    assert!(!ok, "a body that failed mid-stream must not look complete: {reset}");
    // And the server serves on.
    let (ok, user) = h2c(&[&url("/users/8")]);
    assert!(ok && user.ends_with("8 HTTP/2.0"), "{user}");
}

#[test]
fn behind_a_proxy_peer_addr_is_the_client_the_proxy_protocol_header_names() {
    let config = ServerConfig {
        proxy_protocol: vec!["127.0.0.1:0".parse().unwrap()],
        ..ServerConfig::default()
    };
    let addr = start(config, |r| {
        r.route("GET /peer", |req: &Request<'_>| {
            Response::text("").body(Body::Full(Bytes::from(req.peer_addr().to_string())))
        })
        .unwrap();
    });
    let body = |response: &[u8]| {
        let text = String::from_utf8_lossy(response).into_owned();
        assert!(text.starts_with("HTTP/1.1 200 "), "{text}");
        text.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned()
    };
    const GET: &[u8] = b"GET /peer HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    // v1, the request in the same write.
    let mut s = connect(addr);
    s.write_all(&[&b"PROXY TCP4 192.0.2.1 198.51.100.7 54321 80\r\n"[..], GET].concat())
        .unwrap();
    assert_eq!(body(&read_to_close(&mut s)), "192.0.2.1:54321");
    // v2 over IPv6, header and request in separate writes.
    let mut v2 = b"\r\n\r\n\0\r\nQUIT\n\x21\x21\x00\x24".to_vec();
    v2.extend_from_slice(&"2001:db8::7".parse::<std::net::Ipv6Addr>().unwrap().octets());
    v2.extend_from_slice(&"2001:db8::1".parse::<std::net::Ipv6Addr>().unwrap().octets());
    v2.extend_from_slice(&[0xc0, 0x01, 0x01, 0xbb]);
    let mut s = connect(addr);
    s.write_all(&v2).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    s.write_all(GET).unwrap();
    assert_eq!(body(&read_to_close(&mut s)), "[2001:db8::7]:49153");
    // v2 LOCAL (a health check): the connection's own address.
    let mut s = connect(addr);
    let local = s.local_addr().unwrap();
    s.write_all(&[&b"\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00"[..], GET].concat())
        .unwrap();
    assert_eq!(body(&read_to_close(&mut s)), local.to_string());
}

/// Handlers run on the worker's own executor, not on tokio: tokio's timers, `tokio::spawn` (on
/// the process's tokio thread) and channels still work in them, and what they wake comes back
/// to the worker.
#[test]
fn a_handler_may_use_tokio_timers_spawn_and_channels() {
    let addr = start(ServerConfig::default(), |r| {
        r.route(
            "GET /tokio",
            handler_async(async |_: &Request<'_>| {
                let (tx, rx) = tokio::sync::oneshot::channel();
                let spawned = tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    let _ = tx.send(40u32);
                    std::thread::current().name().map(str::to_owned)
                });
                let got = rx.await.unwrap_or(0);
                let thread = spawned.await.ok().flatten().unwrap_or_default();
                tokio::time::sleep(Duration::from_millis(5)).await;
                Response::new(200).body(Body::Full(Bytes::from(format!("{} on {thread}", got + 2))))
            }),
        )
        .unwrap();
    });
    for _ in 0..3 {
        let mut s = connect(addr);
        s.write_all(b"GET /tokio HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .unwrap();
        let got = read_to_close(&mut s);
        assert!(
            got.ends_with(b"42 on ringd-tokio"),
            "{:?}",
            String::from_utf8_lossy(&got)
        );
    }
}
