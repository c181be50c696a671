//! The admin listener, on its own address, off the public port, served by one plain thread:
//! `GET /metrics` (Prometheus text format), `/healthz` (liveness: 200 while the process runs)
//! and `/readyz` (readiness: 200 while ringd takes new connections, 503 from the moment a
//! drain starts, so that a load balancer's health check takes the backend out before its
//! connections close). Requests are rare and tiny; keeping them out of the workers means a
//! scrape or a check never competes with traffic and a flood on the public port never blinds
//! them.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use ringd_core::{header_slots, parse_request, Limits, Method, Parsed};

use crate::ops::stats::Metrics;

/// Binds `addr` and serves `/metrics` from `metrics`, `/healthz` and `/readyz` (from
/// [`Metrics::is_ready`]) on a background thread; returns the bound address (port 0 resolved).
pub fn serve_metrics(addr: SocketAddr, metrics: Metrics) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let local = listener.local_addr()?;
    std::thread::Builder::new()
        .name("ringd-admin".to_owned())
        .spawn(move || {
            let slots = Arc::new(Slots::default());
            loop {
                // Each scrape on its own short-lived thread, a few at a time, so one slow client
                // cannot hold the others up; beyond that, a connection waits in the listen
                // backlog until one of them ends (a slow client is cut after EXCHANGE).
                // Refusing it instead would refuse a client that asks one request after another
                // whenever the threads of its earlier requests have sent their answers but not
                // yet ended, as a busy machine leaves them.
                let slot = Slots::acquire(&slots);
                let stream = match listener.accept() {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::debug!("admin accept: {e}");
                        drop(slot);
                        std::thread::sleep(Duration::from_millis(100));
                        continue;
                    }
                };
                let metrics = metrics.clone();
                // A failed spawn drops the closure, and with it the slot.
                let _ = std::thread::Builder::new()
                    .name("ringd-scrape".to_owned())
                    .spawn(move || {
                        if let Err(e) = answer(stream, &metrics) {
                            tracing::debug!("admin connection: {e}");
                        }
                        drop(slot);
                    });
            }
        })?;
    Ok(local)
}

/// Scrapes answered at once; more wait for one of them to end.
const MAX_CONCURRENT: usize = 4;

/// The admin connections being answered, at most [`MAX_CONCURRENT`].
#[derive(Default)]
struct Slots {
    busy: Mutex<usize>,
    freed: Condvar,
}

/// One of the [`Slots`], given back when dropped.
struct Slot(Arc<Slots>);

impl Slots {
    /// Waits until fewer than [`MAX_CONCURRENT`] connections are being answered, and takes a slot.
    fn acquire(slots: &Arc<Slots>) -> Slot {
        let mut busy = slots.busy.lock().unwrap_or_else(|e| e.into_inner());
        while *busy >= MAX_CONCURRENT {
            busy = slots.freed.wait(busy).unwrap_or_else(|e| e.into_inner());
        }
        *busy += 1;
        Slot(slots.clone())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        *self.0.busy.lock().unwrap_or_else(|e| e.into_inner()) -= 1;
        self.0.freed.notify_one();
    }
}

/// A whole admin exchange must fit in this, however slowly the client sends.
const EXCHANGE: Duration = Duration::from_secs(5);

fn answer(mut stream: TcpStream, metrics: &Metrics) -> io::Result<()> {
    let deadline = Instant::now() + EXCHANGE;
    stream.set_write_timeout(Some(EXCHANGE))?;
    let mut buf = vec![0u8; 8192];
    let mut filled = 0;
    let limits = Limits::default();
    let (status, body): (&str, String) = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "admin request too slow"));
        }
        stream.set_read_timeout(Some(left))?;
        let n = stream.read(&mut buf[filled..])?;
        if n == 0 {
            return Ok(());
        }
        filled += n;
        let mut slots = header_slots();
        match parse_request(&buf[..filled], &limits, &mut slots) {
            Ok(Parsed::Complete(head)) => {
                let get = matches!(head.method, Method::Get | Method::Head);
                break match head.path.as_ref() {
                    "/metrics" | "/healthz" | "/readyz" if !get => {
                        ("405 Method Not Allowed", "405 Method Not Allowed\n".to_owned())
                    }
                    "/metrics" => ("200 OK", metrics.render()),
                    "/healthz" => ("200 OK", "ok\n".to_owned()),
                    "/readyz" if metrics.is_ready() => ("200 OK", "ready\n".to_owned()),
                    "/readyz" => (
                        "503 Service Unavailable",
                        "draining: not taking new connections\n".to_owned(),
                    ),
                    _ => (
                        "404 Not Found",
                        "404 Not Found: the admin listener serves /metrics, /healthz and /readyz\n".to_owned(),
                    ),
                };
            }
            Ok(Parsed::Partial) if filled < buf.len() => continue,
            _ => break ("400 Bad Request", "400 Bad Request\n".to_owned()),
        }
    };
    let allow = if status.starts_with("405") {
        "Allow: GET, HEAD\r\n"
    } else {
        ""
    };
    let head = format!(
        "HTTP/1.1 {status}\r\n{allow}Content-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    if !buf[..filled].starts_with(b"HEAD ") {
        stream.write_all(body.as_bytes())?;
    }
    Ok(())
}
