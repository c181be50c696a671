//! The answer to a connection over the worker's `max_connections`, or over the connection
//! limit of its client.

use std::net::Shutdown;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio_uring::net::TcpStream;

use crate::config::Shed;
use crate::io::conns::Phase;
use crate::io::listener::ListenerKind;
use crate::worker::{ConnSlot, Worker};

/// How long a shed connection may keep sending before it is cut.
const LINGER: Duration = Duration::from_secs(5);

/// Answers a connection over the worker's limit with a canned 503 (or closes it, as configured),
/// then closes it lingering briefly so the answer is not lost to a reset.
pub(crate) async fn shed(stream: TcpStream, worker: Rc<Worker>, kind: ListenerKind) {
    const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 24\r\nConnection: close\r\n\r\n503 Service Unavailable\n";
    if worker.config().shed == Shed::Close {
        return;
    }
    answer_and_close(stream, worker, kind, BUSY.to_vec()).await;
}

/// Answers a connection over its client's connection limit with `status` (and `Retry-After`),
/// then closes it as [`shed`] does.
pub(crate) async fn refuse(stream: TcpStream, worker: Rc<Worker>, kind: ListenerKind, status: u16) {
    let reason = ringd_core::reason_phrase(status);
    let body = format!("{status} {reason}\n");
    let answer = format!(
        "HTTP/1.1 {status} {reason}\r\nRetry-After: 1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    answer_and_close(stream, worker, kind, answer.into_bytes()).await;
}

/// Writes a canned answer, half-closes, and reads what the client still sends for a while, so
/// that the answer is not lost to a reset.
async fn answer_and_close(stream: TcpStream, worker: Rc<Worker>, kind: ListenerKind, answer: Vec<u8>) {
    // A TLS client cannot read a plain answer, and a handshake is the work being refused.
    if kind == ListenerKind::Tls {
        return;
    }
    let slot = ConnSlot::open(worker, &stream);
    slot.io().arm(Phase::Write(None), Instant::now() + LINGER);
    let (res, _) = stream.write_all(answer).await;
    if res.is_err() || stream.shutdown(Shutdown::Write).is_err() {
        return;
    }
    slot.io().arm(Phase::Closing, Instant::now() + LINGER);
    let mut buf = Vec::with_capacity(1024);
    loop {
        let (res, b) = stream.read(buf).await;
        match res {
            Ok(0) | Err(_) => return,
            Ok(_) => buf = b,
        }
        buf.clear();
    }
}
