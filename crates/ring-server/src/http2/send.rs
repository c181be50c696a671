//! Sending a [`Response`] on an HTTP/2 stream: its head as HEADERS (the worker's `date` and
//! `server`, the handler's and the configured fields, `content-length`), its body as DATA
//! within the peer's flow-control windows.
//!
//! Fields that are about the HTTP/1.1 connection (`Connection`, `Keep-Alive`,
//! `Proxy-Connection`, `Transfer-Encoding`, `Upgrade`) are never sent (RFC 9113 §8.2.2): a
//! handler's `Connection: close`, which closes an HTTP/1.1 connection, just ends the stream
//! here. Any other field a handler sets is checked as for HTTP/1.1, and a bad one makes the
//! answer a 500.
//!
//! Bodies leave a window's worth at a time: the stream asks for capacity, waits for the peer to
//! grant it (counted as a stall, under the send timeout), and sends only that much, so memory
//! per stream stays bounded whatever the body (a file is read a piece at a time, never whole).

use bytes::Bytes;
use h2::server::SendResponse;
use h2::SendStream;
use http::header::{HeaderName, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, DATE, SERVER};
use ringd_core::is_valid_response_header;
use tokio_uring::buf::BoundedBuf;

use super::state::ConnState;
use crate::app::handler::{Body, BodyStream, FileBody, Response};
use crate::dispatch;

/// The most a file or stream body sends in one DATA write (the engine splits it into frames).
const PIECE: usize = 64 * 1024;

/// What was sent, for the counters and the access log.
pub(super) struct Sent {
    pub(super) status: u16,
    /// Body bytes sent, when all of them were.
    pub(super) body_bytes: Option<u64>,
}

/// Sends `response` (`head_request`: its head only, with the length a GET would get).
pub(super) async fn send_response(
    response: Response,
    head_request: bool,
    mut respond: SendResponse<Bytes>,
    state: &ConnState,
) -> Sent {
    let (head, body) = match encode_head(&response, state) {
        Some(head) => (head, response.body),
        None => {
            let error = Response::error(500);
            let head = encode_head(&error, state).expect("the server's own error response is valid");
            (head, error.body)
        }
    };
    let status = head.status().as_u16();
    let no_body = head_request || matches!(status, 204 | 304) || body.is_empty();
    let mut stream = match respond.send_response(head, no_body) {
        Ok(stream) => stream,
        Err(_) => {
            return Sent {
                status,
                body_bytes: None,
            }
        }
    };
    if no_body {
        return Sent {
            status,
            body_bytes: Some(0),
        };
    }
    let sent = match body {
        Body::Empty => Ok(0),
        Body::Full(bytes) => send_bytes(&mut stream, bytes, true, state).await,
        Body::File(file) => send_file(&mut stream, file, state).await,
        Body::Stream(body) => send_stream(&mut stream, body, state).await,
    };
    match sent {
        Ok(n) => Sent {
            status,
            body_bytes: Some(n),
        },
        Err(e) => {
            if e.kind() == std::io::ErrorKind::UnexpectedEof && state.worker().log_budget().allow() {
                tracing::error!("{e}; resetting the stream");
            }
            // The length was announced: the stream cannot end well.
            stream.send_reset(h2::Reason::INTERNAL_ERROR);
            Sent {
                status,
                body_bytes: None,
            }
        }
    }
}

/// The response's head; `None` when a handler field (or the status) is invalid.
fn encode_head(response: &Response, state: &ConnState) -> Option<http::Response<()>> {
    let worker = state.worker();
    let status = http::StatusCode::from_u16(response.status)
        .ok()
        .filter(|s| !s.is_informational());
    let Some(status) = status else {
        if worker.log_budget().allow() {
            tracing::error!(
                status = response.status,
                "handler returned an invalid status; answered 500"
            );
        }
        return None;
    };
    let config = worker.config();
    let shared = match &response.block {
        Some(block) => block.h2_fields()?,
        None => &[],
    };
    let mut head = http::Response::new(());
    *head.status_mut() = status;
    let fields = head.headers_mut();
    // Sized once: growing the map as fields come costs more than the fields.
    fields.reserve(4 + shared.len() + response.headers.len() + config.headers.len());
    let (date, server) = worker.h2_fields(std::time::Instant::now());
    fields.append(DATE, date);
    if let Some(server) = server {
        fields.append(SERVER, server);
    }
    for (name, value) in shared {
        fields.append(name.clone(), value.clone());
    }
    if let Some(content_type) = &response.content_type {
        if !is_valid_response_header("content-type", content_type) {
            return invalid(state, "content-type");
        }
        fields.append(CONTENT_TYPE, HeaderValue::from_maybe_shared(content_type.clone()).ok()?);
    }
    for (name, value) in &response.headers {
        if connection_specific(name) {
            continue;
        }
        if !is_valid_response_header(name, value) {
            return invalid(state, name);
        }
        let (Some(name), Ok(value)) = (field_name(name), HeaderValue::from_maybe_shared(value.clone())) else {
            return invalid(state, name);
        };
        fields.append(name, value);
    }
    for (name, value) in &config.headers {
        let set = response.headers.iter().any(|(h, _)| h.eq_ignore_ascii_case(name))
            || response.header_block().is_some_and(|b| b.has(name));
        if !set {
            if let (Some(name), Ok(value)) = (field_name(name), HeaderValue::from_str(value)) {
                fields.append(name, value);
            }
        }
    }
    let bodiless = matches!(status.as_u16(), 204 | 304);
    if let (false, Some(len)) = (bodiless, response.body.len()) {
        fields.append(CONTENT_LENGTH, HeaderValue::from(len));
    }
    Some(head)
}

fn invalid<T>(state: &ConnState, name: &str) -> Option<T> {
    if state.worker().log_budget().allow() {
        tracing::error!(
            header = name,
            "handler returned an invalid or reserved header; answered 500"
        );
    }
    None
}

/// A field name for HTTP/2: lowercase (RFC 9113 §8.2.1).
fn field_name(name: &str) -> Option<HeaderName> {
    HeaderName::from_bytes(name.as_bytes()).ok()
}

/// Fields about an HTTP/1.1 connection, which HTTP/2 never carries (RFC 9113 §8.2.2).
fn connection_specific(name: &str) -> bool {
    [
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "upgrade",
    ]
    .iter()
    .any(|n| name.eq_ignore_ascii_case(n))
}

/// Waits until the stream may send some of `want` bytes; returns how many (0: never, the
/// stream or the connection is gone).
async fn capacity(stream: &mut SendStream<Bytes>, want: usize, state: &ConnState) -> usize {
    stream.reserve_capacity(want);
    let now = stream.capacity();
    if now > 0 {
        return now.min(want);
    }
    // The peer's window is closed: this waits for it under the send timeout.
    state.stalled(true);
    let granted = std::future::poll_fn(|cx| stream.poll_capacity(cx)).await;
    state.stalled(false);
    match granted {
        Some(Ok(n)) => n.min(want),
        _ => 0,
    }
}

/// Sends `bytes` as far as the windows allow, waiting for them; ends the stream with the last
/// piece if `end`.
async fn send_bytes(
    stream: &mut SendStream<Bytes>,
    mut bytes: Bytes,
    end: bool,
    state: &ConnState,
) -> std::io::Result<u64> {
    let total = bytes.len() as u64;
    while !bytes.is_empty() {
        let n = capacity(stream, bytes.len(), state).await;
        if n == 0 {
            return Err(gone());
        }
        let piece = bytes.split_to(n);
        stream.send_data(piece, end && bytes.is_empty()).map_err(|_| gone())?;
    }
    if end && total == 0 {
        stream.send_data(Bytes::new(), true).map_err(|_| gone())?;
    }
    Ok(total)
}

/// Sends a range of a file, read a granted window's worth at a time through io_uring.
async fn send_file(stream: &mut SendStream<Bytes>, file: FileBody, state: &ConnState) -> std::io::Result<u64> {
    let end = file.start + file.len;
    let mut pos = file.start;
    while pos < end {
        let want = (end - pos).min(PIECE as u64) as usize;
        let n = capacity(stream, want, state).await;
        if n == 0 {
            return Err(gone());
        }
        let buf = Vec::with_capacity(n);
        let (res, slice) = file.file.read_at(buf.slice(0..n), pos).await;
        let read = res?;
        if read == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "file shrank while being sent",
            ));
        }
        let mut buf = slice.into_inner();
        buf.truncate(read);
        pos += read as u64;
        stream.send_data(Bytes::from(buf), pos == end).map_err(|_| gone())?;
    }
    Ok(file.len)
}

/// Sends a streamed body piece by piece; a stream that yields more or fewer bytes than it
/// announced is an error.
async fn send_stream(
    stream: &mut SendStream<Bytes>,
    mut body: Box<dyn BodyStream>,
    state: &ConnState,
) -> std::io::Result<u64> {
    let announced = body.length();
    let mut sent = 0u64;
    loop {
        let piece = dispatch::next_piece(&mut *body, state.worker()).await?;
        let Some(piece) = piece else { break };
        sent += piece.len() as u64;
        if announced.is_some_and(|n| sent > n) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "body longer than announced",
            ));
        }
        send_bytes(stream, piece, false, state).await?;
    }
    if announced.is_some_and(|n| sent != n) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "body shorter than announced",
        ));
    }
    stream.send_data(Bytes::new(), true).map_err(|_| gone())?;
    Ok(sent)
}

fn gone() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::BrokenPipe,
        "the HTTP/2 stream was reset or the connection closed",
    )
}
