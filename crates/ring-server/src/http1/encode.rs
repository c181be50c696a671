//! Encoding a response for HTTP/1.1: the head (status line, the worker's `Date` and `Server`
//! lines, the handler's and the configured headers, framing) and, when small, the body, queued
//! behind the answers before it; what is left to send afterwards is an [`Encoded`].

use bytes::Bytes;
use ringd_core::{
    write_head_common, BodyLength, CommonLines, Method, RequestHead, ResponseFraming, ResponseHead, Version, WriteBuf,
};

use crate::app::handler::{Body, BodyStream, FileBody, Response};
use crate::io::buf::OutBuf;
use crate::worker::Worker;

/// Bodies up to this size are copied next to their head, so head and body leave in one send.
const INLINE_BODY: usize = 16 * 1024;

/// What is left to send after the head (and a small body) went into the output buffer.
pub(super) enum Encoded {
    /// Everything is queued.
    Done { keep_alive: bool },
    /// A large in-memory body, to be sent on its own after the queue.
    Large { bytes: Bytes, keep_alive: bool },
    /// A range of a file, sent after the queue.
    File { file: FileBody, keep_alive: bool },
    /// A streamed body, framed as said.
    Stream {
        stream: Box<dyn BodyStream>,
        framing: ResponseFraming,
        keep_alive: bool,
    },
}

/// Encodes `response` to the request `head`, taking its body if it has still to be sent (by
/// reference: moving a response copies it; the caller [`discard`]s it). An invalid handler
/// header becomes a 500. `config_headers` says whether the configuration adds `[headers]`.
#[inline]
pub(super) fn encode(
    out: &mut OutBuf,
    response: &mut Response,
    head: &RequestHead<'_, '_>,
    keep_alive: bool,
    config_headers: bool,
    common: &CommonLines,
    worker: &Worker,
) -> (Encoded, u16) {
    let is_head = head.method == Method::Head;
    if !config_headers && encode_common(out, response, head.version, keep_alive, is_head, common, worker) {
        return (Encoded::Done { keep_alive }, 200);
    }
    encode_any(out, response, head, keep_alive, config_headers, common, worker)
}

/// [`encode`] for every response (by reference: moving a response copies its bytes; the body is
/// taken out of it).
#[inline(never)]
fn encode_any(
    out: &mut OutBuf,
    response: &mut Response,
    head: &RequestHead<'_, '_>,
    keep_alive: bool,
    config_headers: bool,
    common: &CommonLines,
    worker: &Worker,
) -> (Encoded, u16) {
    let is_head = head.method == Method::Head;
    if !config_headers
        && response.block.is_some()
        && encode_block(out, response, head.version, keep_alive, is_head, common)
    {
        return (Encoded::Done { keep_alive }, 200);
    }
    let status = response.status;
    // A handler asking to close (as the panic path does) is honoured, and never written as a header.
    let keep_alive = keep_alive
        && !response
            .headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("connection") && v.eq_ignore_ascii_case(b"close"));
    let framing = match encode_head(out, response, head.version, keep_alive, is_head, common, worker) {
        Some(f) => f,
        None => {
            encode_simple(out, &Response::error(500), head.version, false, is_head, common, worker);
            return (Encoded::Done { keep_alive: false }, 500);
        }
    };
    let keep_alive = keep_alive && framing != ResponseFraming::CloseDelimited;
    let encoded = match (framing, std::mem::replace(&mut response.body, Body::Empty)) {
        (ResponseFraming::NoBody, _) | (_, Body::Empty) => Encoded::Done { keep_alive },
        (_, Body::Full(bytes)) if bytes.len() <= INLINE_BODY => {
            out.put_body(&bytes);
            Encoded::Done { keep_alive }
        }
        (_, Body::Full(bytes)) => Encoded::Large { bytes, keep_alive },
        (framing, Body::Stream(stream)) => Encoded::Stream {
            stream,
            framing,
            keep_alive,
        },
        (_, Body::File(file)) => Encoded::File { file, keep_alive },
    };
    (encoded, status)
}

/// The common answer, written from the worker's whole heads (`CommonLines::write_ok_head`): a
/// `200` with one of ringd's own content types and no other header, a body in memory that goes
/// next to its head, to an HTTP/1.1 request on a connection that stays open, or to any request
/// on a connection that closes after it (`Connection: close`). The caller has checked that the
/// configuration adds no header. `false`, with nothing written, for any other response; then
/// the rest of [`encode`] writes the same bytes this would have.
#[inline]
fn encode_common(
    out: &mut OutBuf,
    response: &Response,
    version: Version,
    keep_alive: bool,
    is_head: bool,
    common: &CommonLines,
    worker: &Worker,
) -> bool {
    // HTTP/1.0 kept open would need `Connection: keep-alive`: not a kept head.
    if response.status != 200 || (keep_alive && version != Version::Http11) || !response.headers.is_empty() {
        return false;
    }
    let (Body::Full(bytes), Some(content_type), None) = (&response.body, &response.content_type, &response.block)
    else {
        return false;
    };
    if bytes.len() > INLINE_BODY {
        return false;
    }
    let Some((slot, line)) = worker.type_lines.find(content_type) else {
        return false;
    };
    if keep_alive {
        common.write_ok_head(out, slot, line.as_bytes(), bytes.len() as u64);
    } else {
        common.write_ok_close_head(out, slot, line.as_bytes(), bytes.len() as u64);
    }
    if !is_head {
        out.put_body(bytes);
    }
    true
}

/// A cached file's answer, written from its header block rendered with the body's length
/// (`CommonLines::write_block_ok_head`): a `200` with no header but the block and a body in
/// memory that goes next to its head. The caller has checked that the configuration adds no
/// header. `false`, with nothing written, for any other response; then the rest of
/// [`encode_any`] writes the same bytes this would have.
#[inline]
fn encode_block(
    out: &mut OutBuf,
    response: &mut Response,
    version: Version,
    keep_alive: bool,
    is_head: bool,
    common: &CommonLines,
) -> bool {
    if response.status != 200 || !response.headers.is_empty() || response.content_type.is_some() {
        return false;
    }
    let (Body::Full(bytes), Some(block)) = (&response.body, response.header_block()) else {
        return false;
    };
    if bytes.len() > INLINE_BODY || !common.write_block_ok_head(out, block, bytes.len() as u64, keep_alive, version) {
        return false;
    }
    if !is_head {
        if let Body::Full(bytes) = &mut response.body {
            // The caller is done with the body: a kept one is moved, not counted up and down.
            out.take_body(bytes);
        }
    }
    true
}

/// Drops a written response field by field; an unallocated header list (most responses have
/// none) is forgotten instead: it owns nothing, so forgetting it frees nothing, and dropping it
/// (or the whole response) is a call.
#[inline(always)]
pub(super) fn discard(response: Response) {
    let Response {
        status: _,
        content_type,
        headers,
        body,
        block,
    } = response;
    if headers.capacity() == 0 {
        std::mem::forget(headers);
    } else {
        drop(headers);
    }
    drop((content_type, body, block));
}

/// Encodes a response the server made itself (errors): head and body, no streaming.
pub(super) fn encode_simple(
    out: &mut OutBuf,
    response: &Response,
    version: Version,
    keep_alive: bool,
    is_head: bool,
    common: &CommonLines,
    worker: &Worker,
) {
    if let Some(framing) = encode_head(out, response, version, keep_alive, is_head, common, worker) {
        if let (ResponseFraming::Length(_), Body::Full(bytes)) = (framing, &response.body) {
            out.put(bytes);
        }
    }
}

/// Writes the status line and headers; `None` when a handler header is invalid (nothing written).
fn encode_head(
    out: &mut OutBuf,
    response: &Response,
    version: Version,
    keep_alive: bool,
    is_head: bool,
    common: &CommonLines,
    worker: &Worker,
) -> Option<ResponseFraming> {
    const INLINE: usize = 16;
    let extra = response
        .headers
        .iter()
        .filter(|(n, _)| !n.eq_ignore_ascii_case("connection"))
        .map(|(n, v)| (n.as_ref(), v.as_ref()));
    let content_type = response.content_type.as_ref().map(|v| ("Content-Type", v.as_ref()));
    // The configured `[headers]`, unless the handler set the same one.
    let config = worker.config();
    let configured = config
        .headers
        .iter()
        .filter(|(n, _)| {
            !response.headers.iter().any(|(h, _)| h.eq_ignore_ascii_case(n))
                && !response.header_block().is_some_and(|b| b.has(n))
        })
        .map(|(n, v)| (n.as_str(), v.as_bytes()));
    let only_type: [(&str, &[u8]); 1];
    let mut inline: [(&str, &[u8]); INLINE];
    let heap: Vec<(&str, &[u8])>;
    let count = response.headers.len() + 1 + config.headers.len();
    let mut block = response.header_block();
    let headers: &[(&str, &[u8])] = if response.headers.is_empty() && config.headers.is_empty() {
        // The common answer (a content type, no other header): no array to fill and no
        // chain of iterators to walk; and for the types of ringd's own responses, a line
        // checked and rendered once.
        match content_type {
            Some(pair) => match (block, worker.type_lines.get(pair.1)) {
                (None, Some(line)) => {
                    block = Some(line);
                    &[]
                }
                _ => {
                    only_type = [pair];
                    &only_type
                }
            },
            None => &[],
        }
    } else if count <= INLINE {
        inline = [("", &[]); INLINE];
        let mut n = 0;
        for h in content_type.into_iter().chain(extra).chain(configured) {
            inline[n] = h;
            n += 1;
        }
        &inline[..n]
    } else {
        heap = content_type.into_iter().chain(extra).chain(configured).collect();
        &heap
    };
    let status = if (200..=999).contains(&response.status) {
        response.status
    } else {
        if worker.log_budget().allow() {
            tracing::error!(
                status = response.status,
                "handler returned an invalid status; answered 500"
            );
        }
        return None;
    };
    let body = match response.body.len() {
        Some(n) => BodyLength::Known(n),
        None => BodyLength::Streamed,
    };
    let head = ResponseHead {
        status,
        headers,
        block,
        body,
        request_version: version,
        keep_alive,
        head_request: is_head,
    };
    match write_head_common(out, &head, common) {
        Ok(framing) => Some(framing),
        Err(e) => {
            let name = headers.get(e.index).map_or("?", |h| h.0);
            if worker.log_budget().allow() {
                tracing::error!(
                    header = name,
                    "handler returned an invalid or reserved header; answered 500"
                );
            }
            None
        }
    }
}
