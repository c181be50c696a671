//! The admin listener: `GET /metrics` (Prometheus text format) on its own address, off the
//! public port, served by one plain thread. Scrapes are rare and tiny; keeping them out of the
//! workers means a scrape never competes with traffic and a flood on the public port never
//! blinds the scraper.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use ringd_core::{header_slots, parse_request, Limits, Method, Parsed};

use crate::stats::Metrics;

/// Binds `addr` and serves `/metrics` from `metrics` on a background thread; returns the bound
/// address (port 0 resolved).
pub fn serve_metrics(addr: SocketAddr, metrics: Metrics) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let local = listener.local_addr()?;
    std::thread::Builder::new()
        .name("ringd-admin".to_owned())
        .spawn(move || {
            for stream in listener.incoming().flatten() {
                if let Err(e) = answer(stream, &metrics) {
                    tracing::debug!("admin connection: {e}");
                }
            }
        })?;
    Ok(local)
}

fn answer(mut stream: TcpStream, metrics: &Metrics) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut buf = vec![0u8; 8192];
    let mut filled = 0;
    let limits = Limits::default();
    let (status, body): (&str, String) = loop {
        let n = stream.read(&mut buf[filled..])?;
        if n == 0 {
            return Ok(());
        }
        filled += n;
        let mut slots = header_slots();
        match parse_request(&buf[..filled], &limits, &mut slots) {
            Ok(Parsed::Complete(head)) => {
                break match (head.method, head.path.as_ref()) {
                    (Method::Get | Method::Head, "/metrics") => ("200 OK", metrics.render()),
                    (_, "/metrics") => ("405 Method Not Allowed", "405 Method Not Allowed\n".to_owned()),
                    _ => (
                        "404 Not Found",
                        "404 Not Found: the admin listener serves /metrics\n".to_owned(),
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
