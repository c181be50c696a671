//! One HTTP/2 stream: read the request's body (within the body limit), make its head what an
//! HTTP/1.1 request's would be, dispatch it, send the response, record it.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use h2::server::SendResponse;
use h2::RecvStream;
use ringd_core::{h2_request_head, H2Request, Header, Method, ParseError, Version};

use super::send::{send_response, Sent};
use super::state::ConnState;
use crate::app::handler::{Body, Response};
use crate::dispatch;
use crate::ops::access_log::Entry;

/// Closes the stream in the connection's state however the stream's task ends.
struct Open(Rc<ConnState>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.stream_closed();
    }
}

/// Why a request body was not read.
enum BodyError {
    /// Larger than the body limit: 413.
    TooLarge,
    /// The stream or the connection failed (the engine already answered with `RST_STREAM`).
    Gone,
}

/// Answers one request.
pub(super) async fn answer(
    request: http::Request<RecvStream>,
    respond: SendResponse<Bytes>,
    state: Rc<ConnState>,
    peer: SocketAddr,
) {
    let open = Open(state);
    let state = &*open.0;
    let worker = state.worker().clone();
    let config = worker.config();
    let (parts, mut recv) = request.into_parts();
    let content_length = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let fields: Vec<Header<'_>> = parts
        .headers
        .iter()
        .map(|(name, value)| Header {
            name: name.as_str(),
            value: value.as_bytes(),
        })
        .collect();
    let head = h2_request_head(
        H2Request {
            method: parts.method.as_str(),
            // A CONNECT has no `:path` (RFC 9113 §8.5); the engine's URI shows one anyway.
            path: (parts.method != http::Method::CONNECT)
                .then(|| parts.uri.path_and_query().map(|p| p.as_str()))
                .flatten(),
            authority: parts.uri.authority().map(|a| a.as_str()),
            headers: &fields,
            content_length,
        },
        &config.limits,
    );
    let head = match head {
        Ok(head) => head,
        Err(e) if malformed(e, &parts) => {
            // RFC 9113 §8.1.1: a malformed request is a stream error, and nothing reaches the
            // handler.
            let mut respond = respond;
            respond.send_reset(h2::Reason::PROTOCOL_ERROR);
            return;
        }
        Err(e) => {
            refuse(e, respond, state, &parts, peer).await;
            return discard(&mut recv, state).await;
        }
    };
    let body = if recv.is_end_stream() {
        Bytes::new()
    } else {
        state.receiving(true);
        let body = read_body(&mut recv, config.limits.max_body).await;
        state.receiving(false);
        match body {
            Ok(body) => body,
            Err(BodyError::TooLarge) => {
                refuse(ParseError::PayloadTooLarge, respond, state, &parts, peer).await;
                return discard(&mut recv, state).await;
            }
            Err(BodyError::Gone) => return,
        }
    };
    // The stream's request is read: a peer that sends more gets RST_STREAM(NO_ERROR) from the
    // engine once the response ends (RFC 9113 §8.1).
    drop(recv);
    let now = Instant::now();
    let response = match config.timeouts.handler {
        None => dispatch::respond(&worker, &head, &body, &peer, now).await,
        Some(limit) => dispatch::respond_within(limit, &worker, &head, &body, &peer, now).await,
    };
    let took = now.elapsed();
    let sent = send_response(response, head.method == Method::Head, respond, state).await;
    record(state, head.method, &sent, took, &parts, &head, peer);
}

/// Whether a refused head is malformed in HTTP/2's terms (RFC 9113 §8.1.1): a field value with
/// surrounding whitespace or a control byte (§8.2.1), a host that contradicts `:authority`
/// (§8.3.1), a `:path` that is not a path (or none, or a CONNECT without `:authority`). Other
/// refusals (a limit, a path that climbs out of `/`) are answered with their status, as in
/// HTTP/1.1.
fn malformed(e: ParseError, parts: &http::request::Parts) -> bool {
    let path = parts.uri.path_and_query().map(|p| p.as_str());
    let not_a_path = match path {
        _ if parts.method == http::Method::CONNECT => parts.uri.authority().is_none(),
        None => true,
        Some(p) => !(p.starts_with('/') || p == "*"),
    };
    matches!(
        e,
        ParseError::InvalidHeader | ParseError::InvalidHost | ParseError::DuplicateHost
    ) || (e == ParseError::InvalidTarget && not_a_path)
}

/// The most of a refused request's body that is read and thrown away, so that a client still
/// sending it reads the answer instead of a reset (HTTP/1.1 lingers for as much).
const DISCARD_MAX: usize = 1 << 20;

/// Reads and throws away what is left of a refused request's body, up to [`DISCARD_MAX`] and
/// under the body timeout; past that, the engine resets the stream when `recv` drops.
async fn discard(recv: &mut RecvStream, state: &ConnState) {
    if recv.is_end_stream() {
        return;
    }
    state.receiving(true);
    let mut discarded = 0;
    while discarded < DISCARD_MAX {
        match recv.data().await {
            Some(Ok(chunk)) => {
                discarded += chunk.len();
                let _ = recv.flow_control().release_capacity(chunk.len());
            }
            _ => break,
        }
    }
    state.receiving(false);
}

/// Reads a request body whole, giving its flow-control window back as it is consumed.
async fn read_body(recv: &mut RecvStream, limit: u64) -> Result<Bytes, BodyError> {
    let mut body = BytesMut::new();
    while let Some(chunk) = recv.data().await {
        let chunk = chunk.map_err(|_| BodyError::Gone)?;
        let _ = recv.flow_control().release_capacity(chunk.len());
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    // Trailers are read (and checked by the engine) but not passed on, as for HTTP/1.1.
    recv.trailers().await.map_err(|_| BodyError::Gone)?;
    Ok(body.freeze())
}

/// Answers a request refused before dispatch with the status HTTP/1.1 would answer it with.
async fn refuse(
    e: ParseError,
    respond: SendResponse<Bytes>,
    state: &ConnState,
    parts: &http::request::Parts,
    peer: SocketAddr,
) {
    let body = Bytes::from(format!("{} {}: {}\n", e.status(), e.reason(), e.message()));
    let response = Response::new(e.status())
        .content_type_static(crate::app::type_lines::TEXT_PLAIN)
        .body(Body::Full(body));
    let sent = send_response(response, parts.method == http::Method::HEAD, respond, state).await;
    let method = Method::parse(parts.method.as_str());
    let worker = state.worker();
    dispatch::record(worker, method, Version::Http2, sent.status, Default::default(), || {
        Entry {
            peer,
            request: b"",
            status: sent.status,
            body_bytes: sent.body_bytes,
            referer: None,
            user_agent: None,
        }
    });
    let _ = parts;
}

/// Counts and logs an answered stream (the request line as nginx logs HTTP/2's).
fn record(
    state: &ConnState,
    method: Method<'_>,
    sent: &Sent,
    took: std::time::Duration,
    parts: &http::request::Parts,
    head: &ringd_core::RequestHead<'_, '_>,
    peer: SocketAddr,
) {
    let worker = state.worker();
    let line = worker
        .access_log
        .as_ref()
        .map(|_| format!("{} {} HTTP/2.0", parts.method, head.raw_target));
    dispatch::record(worker, method, Version::Http2, sent.status, took, || Entry {
        peer,
        request: line.as_deref().unwrap_or_default().as_bytes(),
        status: sent.status,
        body_bytes: sent.body_bytes,
        referer: head.header("referer"),
        user_agent: head.header("user-agent"),
    });
}
