//! A minimal hyper 1.x server for `benches/compare-nginx`: one of the fast Rust servers ringd is
//! measured against (`--peers hyper`).
//!
//! ```text
//! hyper-peer ADDR:PORT [WORKERS]
//! ```
//!
//! Each worker is a thread with its own tokio `current_thread` runtime accepting on the one
//! listener (one worker by default, which the harness gives for one server CPU). It answers the
//! TechEmpower way: `GET /plaintext` is `Hello, World!` (`text/plain`), `GET /json` is
//! `{"message":"Hello, World!"}` (`application/json`, serialised for every request), with
//! `Server` and `Date` (hyper adds `date`, rendered once a second); anything else is 404.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE, SERVER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;

const HELLO: &[u8] = b"Hello, World!";

#[derive(Serialize)]
struct Message {
    message: &'static str,
}

async fn answer(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, content_type, body) = match req.uri().path() {
        "/plaintext" => (StatusCode::OK, "text/plain", Bytes::from_static(HELLO)),
        "/json" => {
            let body = serde_json::to_vec(&Message {
                message: "Hello, World!",
            })
            .expect("a plain struct");
            (StatusCode::OK, "application/json", Bytes::from(body))
        }
        _ => (StatusCode::NOT_FOUND, "text/plain", Bytes::new()),
    };
    let mut res = Response::new(Full::new(body));
    *res.status_mut() = status;
    let headers = res.headers_mut();
    headers.insert(SERVER, HeaderValue::from_static("hyper"));
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(res)
}

async fn serve(listener: std::net::TcpListener) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::from_std(listener)?;
    // pipeline_flush: answers to requests that arrived together go out in one write, as in
    // TechEmpower's hyper entry (wrk's `pipelined` scenario sends 16 at a time).
    let mut http = http1::Builder::new();
    http.pipeline_flush(true);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(conn) => conn,
            // out of descriptors and the like: the client retries, the server goes on
            Err(_) => continue,
        };
        let _ = stream.set_nodelay(true);
        let conn = http.serve_connection(TokioIo::new(stream), service_fn(answer));
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}

fn worker(listener: std::net::TcpListener) -> std::io::Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?
        .block_on(serve(listener))
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: hyper-peer ADDR:PORT [WORKERS]";
    let addr: SocketAddr = args
        .next()
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| std::io::Error::other(usage))?;
    let workers: usize = match args.next() {
        Some(n) => n
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| std::io::Error::other(usage))?,
        None => 1,
    };
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    eprintln!("hyper-peer listening on {addr} with {workers} worker(s)");
    let threads: Vec<_> = (1..workers)
        .map(|_| {
            let listener = listener.try_clone()?;
            Ok(std::thread::spawn(move || worker(listener)))
        })
        .collect::<std::io::Result<_>>()?;
    worker(listener)?;
    for t in threads {
        t.join().expect("a worker panicked")?;
    }
    Ok(())
}
