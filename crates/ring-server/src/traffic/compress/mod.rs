//! On-the-fly compression: a handler's response, after the handler, whatever the protocol.
//!
//! A response is compressed when its status has a body that may be encoded (not 1xx, 204,
//! 206, 304), its type is one of the configured types and its body (when its length is known)
//! is at least `min_length`, the handler has not negotiated itself (no `Content-Encoding`, no
//! `Vary: Accept-Encoding`, no `Cache-Control: no-transform`), and the client accepts one of
//! the offered codings ([`negotiate`]). Such a response says `Vary: Accept-Encoding` whichever
//! coding it gets; compressed, its strong `ETag` becomes weak (it is not the same bytes: RFC
//! 9110 §8.8.1, as nginx does) and `Accept-Ranges` goes (ranges are of the uncompressed
//! body). A client that refuses `identity` gets any body compressed if it accepts a coding.
//! HEAD is answered as it is (nginx does the same): its length is the uncompressed body's.
//!
//! Bodies up to [`ONE_GO`] in memory are compressed at once with the worker's reusable
//! contexts and keep a `Content-Length`; longer ones, files and streams are compressed a piece
//! at a time as they are sent ([`CompressStream`]), at most `MAX_STREAMS` at once per worker.
//! Static files compress themselves and keep the result in their cache (`static_files`).

mod encoder;
mod negotiate;
mod stream;

use std::borrow::Cow;

use bytes::Bytes;
use ringd_core::{Method, RequestHead};

pub(crate) use encoder::{Encoder, Encoders};
pub(crate) use negotiate::negotiate;
pub(crate) use stream::{CompressStream, Source, StreamSlot};

use crate::app::handler::{Body, Response};
use crate::traffic::config::{Coding, Compression};

/// In-memory bodies up to this size are compressed in one go on the worker's thread; longer ones
/// a piece at a time, letting other requests run in between (what a body costs:
/// `benches/results/HISTORY.md`, 2026-12-07).
pub(crate) const ONE_GO: usize = 256 * 1024;

/// Whether a response with this status may carry a compressed body.
fn status_allows(status: u16) -> bool {
    !(status < 200 || status == 204 || status == 206 || status == 304)
}

/// What the response's own headers say about compressing it.
struct Said<'a> {
    content_type: Option<&'a [u8]>,
    /// `Content-Encoding`, `Content-Range`, `Vary: Accept-Encoding` or `no-transform`.
    hands_off: bool,
}

fn said(response: &Response) -> Said<'_> {
    let mut s = Said {
        content_type: response.content_type.as_deref(),
        hands_off: false,
    };
    let block = response.header_block().into_iter().flat_map(|b| b.iter());
    for (name, value) in response.headers.iter().map(|(n, v)| (&**n, &v[..])).chain(block) {
        match name.len() {
            12 if name.eq_ignore_ascii_case("content-type") => {
                s.content_type.get_or_insert(value);
            }
            16 if name.eq_ignore_ascii_case("content-encoding") => s.hands_off = true,
            13 if name.eq_ignore_ascii_case("content-range") => s.hands_off = true,
            4 if name.eq_ignore_ascii_case("vary") => {
                s.hands_off |= has_token(value, b"accept-encoding") || has_token(value, b"*");
            }
            13 if name.eq_ignore_ascii_case("cache-control") => s.hands_off |= has_token(value, b"no-transform"),
            _ => {}
        }
    }
    s
}

/// Whether a comma-separated list holds `token` (ASCII case-insensitive).
pub(crate) fn has_token(list: &[u8], token: &[u8]) -> bool {
    list.split(|b| *b == b',')
        .any(|item| item.trim_ascii().eq_ignore_ascii_case(token))
}

/// `response` as the client of `head` should get it under `config` (see the module's doc).
/// `encoders` are the worker's contexts for bodies compressed in one go.
pub(crate) fn compress_response(
    mut response: Response,
    head: &RequestHead<'_, '_>,
    config: &Compression,
    encoders: &mut Encoders,
) -> Response {
    if !status_allows(response.status) || response.body.is_empty() {
        return response;
    }
    let said = said(&response);
    if said.hands_off {
        return response;
    }
    let fits = said.content_type.is_some_and(|t| config.compresses_type(t))
        && response.body.len().is_none_or(|n| n >= config.min_length);
    let choice = negotiate(head.headers, &config.encodings);
    let coding = match (fits, choice.coding) {
        (true, coding) => coding,
        // A client that refuses an uncompressed answer gets any body compressed.
        (false, Some(coding)) if !choice.identity => Some(coding),
        (false, _) => return response,
    };
    response.unblock();
    add_vary(&mut response);
    let Some(coding) = coding else { return response };
    if head.method == Method::Head {
        return response;
    }
    encode_body(response, coding, config.level(coding), encoders)
}

/// `response` with its body compressed with `coding` at `level` (in one go, or as it is sent)
/// and its headers saying so: `Content-Encoding`, a weak `ETag`, no `Accept-Ranges`. `Vary` is
/// the caller's; the headers must be out of any block. On an encoder failure the response is
/// left as it was.
pub(crate) fn encode_body(mut response: Response, coding: Coding, level: i32, encoders: &mut Encoders) -> Response {
    let body = match std::mem::replace(&mut response.body, Body::Empty) {
        Body::Full(bytes) if bytes.len() <= ONE_GO => match encoders.compress(coding, level, &bytes) {
            Ok(out) => Body::Full(Bytes::from(out)),
            Err(_) => {
                response.body = Body::Full(bytes);
                return response;
            }
        },
        body => {
            let source = match body {
                Body::Full(bytes) => Source::Memory(bytes),
                Body::Stream(stream) => Source::Pieces(stream),
                Body::File(file) => Source::File(file),
                Body::Empty => return response,
            };
            match StreamSlot::take().map(|slot| Encoder::new(coding, level).map(|e| (e, slot))) {
                Some(Ok((encoder, slot))) => Body::Stream(Box::new(CompressStream::new(source, encoder, slot))),
                // Every place taken (or no memory for an encoder): sent as it is.
                _ => {
                    response.body = match source {
                        Source::Memory(bytes) => Body::Full(bytes),
                        Source::Pieces(stream) => Body::Stream(stream),
                        Source::File(file) => Body::File(file),
                    };
                    return response;
                }
            }
        }
    };
    response.body = body;
    mark_encoded(&mut response, coding);
    response
}

/// `input` compressed whole with `coding` at `level`, for keeping (a static file's variant):
/// in one go up to [`ONE_GO`], otherwise a piece at a time, letting the worker's other tasks run
/// in between (taking one of the worker's places for streams: `Err` when none is free).
pub(crate) async fn compress_whole(input: &[u8], coding: Coding, level: i32) -> std::io::Result<Bytes> {
    if input.len() <= ONE_GO {
        return Encoders::default().compress(coding, level, input).map(Bytes::from);
    }
    let _slot = StreamSlot::take().ok_or_else(|| std::io::Error::other("every compression place is taken"))?;
    let mut encoder = Encoder::new(coding, level)?;
    let mut out = Vec::with_capacity(input.len() / 3);
    for piece in input.chunks(stream::PIECE) {
        encoder.write(piece)?;
        out.extend(encoder.take());
        tokio::task::yield_now().await;
    }
    out.extend(encoder.finish()?);
    Ok(Bytes::from(out))
}

/// Adds `Accept-Encoding` to the response's `Vary` (the headers are out of any block).
fn add_vary(response: &mut Response) {
    match response
        .headers
        .iter_mut()
        .find(|(n, _)| n.eq_ignore_ascii_case("vary"))
    {
        Some((_, value)) => {
            let mut joined = value.to_vec();
            joined.extend_from_slice(b", Accept-Encoding");
            *value = Bytes::from(joined);
        }
        None => response
            .headers
            .push((Cow::Borrowed("Vary"), Bytes::from_static(b"Accept-Encoding"))),
    }
}

/// The headers of a response whose body is now `coding`-encoded: `Content-Encoding`, a weak
/// `ETag`, no `Accept-Ranges`.
fn mark_encoded(response: &mut Response, coding: Coding) {
    response
        .headers
        .retain(|(n, _)| !n.eq_ignore_ascii_case("accept-ranges"));
    for (name, value) in response.headers.iter_mut() {
        if name.eq_ignore_ascii_case("etag") && value.starts_with(b"\"") {
            *value = weak(value);
        }
    }
    response.headers.push((
        Cow::Borrowed("Content-Encoding"),
        Bytes::from_static(coding.token().as_bytes()),
    ));
}

/// `W/` + a strong entity tag.
pub(crate) fn weak(etag: &[u8]) -> Bytes {
    let mut w = Vec::with_capacity(etag.len() + 2);
    w.extend_from_slice(b"W/");
    w.extend_from_slice(etag);
    Bytes::from(w)
}

#[cfg(test)]
mod tests {
    use ringd_core::{header_slots, parse_request, Limits, Parsed};

    use super::*;

    fn with_head<T>(request: &[u8], f: impl FnOnce(&RequestHead<'_, '_>) -> T) -> T {
        let mut slots = header_slots();
        match parse_request(request, &Limits::default(), &mut slots) {
            Ok(Parsed::Complete(head)) => f(&head),
            other => panic!("{other:?}"),
        }
    }

    fn on() -> Compression {
        Compression {
            enabled: true,
            ..Compression::default()
        }
    }

    fn json(len: usize) -> Response {
        let body: Vec<u8> = (0..len).map(|i| b"{\"a\":1}"[i % 7]).collect();
        Response::new(200)
            .content_type_static("application/json")
            .header("ETag", "\"v1\"")
            .header("Accept-Ranges", "bytes")
            .body(Body::Full(Bytes::from(body)))
    }

    fn header<'a>(r: &'a Response, name: &str) -> Option<&'a [u8]> {
        r.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| &v[..])
    }

    fn run(request: &[u8], response: Response) -> Response {
        with_head(request, |head| {
            compress_response(response, head, &on(), &mut Encoders::default())
        })
    }

    #[test]
    fn a_json_body_is_compressed_with_the_chosen_coding_and_its_headers_follow() {
        let r = run(
            b"GET / HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip, br\r\n\r\n",
            json(4000),
        );
        assert_eq!(header(&r, "content-encoding"), Some(&b"gzip"[..]));
        assert_eq!(header(&r, "vary"), Some(&b"Accept-Encoding"[..]));
        assert_eq!(header(&r, "etag"), Some(&b"W/\"v1\""[..]));
        assert_eq!(header(&r, "accept-ranges"), None);
        let Body::Full(bytes) = &r.body else {
            panic!("not in one piece")
        };
        assert_eq!(
            encoder::tests::decode(Coding::Gzip, bytes),
            &json(4000).body_bytes()[..]
        );
    }

    #[test]
    fn what_is_not_compressed_is_left_alone() {
        let plain = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        let gzip = b"GET / HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\n\r\n";
        // No Accept-Encoding: not compressed, but the answer varies with it.
        let r = run(plain, json(4000));
        assert_eq!(
            (header(&r, "content-encoding"), header(&r, "vary")),
            (None, Some(&b"Accept-Encoding"[..]))
        );
        // Too short, a type not listed, 206, already encoded, no-transform: untouched.
        for response in [
            json(100),
            json(4000).content_type_static("image/png"),
            json(4000).status(206),
            json(4000).header("Content-Encoding", "br"),
            json(4000).header("Cache-Control", "public, no-transform"),
            json(4000).header("Vary", "accept-encoding"),
        ] {
            let before = response.headers.len();
            let r = run(gzip, response);
            assert_eq!(r.headers.len(), before);
            assert_eq!(header(&r, "etag"), Some(&b"\"v1\""[..]));
        }
        // HEAD: the uncompressed length, and the Vary a GET would have.
        let r = run(
            b"HEAD / HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\n\r\n",
            json(4000),
        );
        assert_eq!(header(&r, "content-encoding"), None);
        assert_eq!(r.body.len(), Some(4000));
        assert_eq!(header(&r, "vary"), Some(&b"Accept-Encoding"[..]));
    }

    #[test]
    fn a_client_refusing_identity_gets_even_a_short_body_compressed() {
        let r = run(
            b"GET / HTTP/1.1\r\nHost: a\r\nAccept-Encoding: br, identity;q=0\r\n\r\n",
            json(10),
        );
        assert_eq!(header(&r, "content-encoding"), Some(&b"br"[..]));
    }

    #[test]
    fn an_existing_vary_is_extended() {
        let r = run(
            b"GET / HTTP/1.1\r\nHost: a\r\nAccept-Encoding: zstd\r\n\r\n",
            json(4000).header("Vary", "Origin"),
        );
        assert_eq!(header(&r, "vary"), Some(&b"Origin, Accept-Encoding"[..]));
        assert_eq!(header(&r, "content-encoding"), Some(&b"zstd"[..]));
    }

    #[test]
    fn long_bodies_and_streams_become_compressed_streams_while_places_last() {
        let request = b"GET / HTTP/1.1\r\nHost: a\r\nAccept-Encoding: gzip\r\n\r\n";
        let mut streams: Vec<Response> = (0..stream::MAX_STREAMS)
            .map(|_| run(request, json(ONE_GO + 1)))
            .collect();
        assert!(streams
            .iter()
            .all(|r| matches!(r.body, Body::Stream(_)) && r.body.len().is_none()));
        // Every place taken: the next goes out as it is (still saying it varies).
        let r = run(request, json(ONE_GO + 1));
        assert_eq!(r.body.len(), Some(ONE_GO as u64 + 1));
        assert_eq!(
            (header(&r, "content-encoding"), header(&r, "vary")),
            (None, Some(&b"Accept-Encoding"[..]))
        );
        // A finished stream gives its place back.
        streams.pop();
        assert!(matches!(run(request, json(ONE_GO + 1)).body, Body::Stream(_)));
    }

    impl Response {
        fn body_bytes(&self) -> Bytes {
            match &self.body {
                Body::Full(b) => b.clone(),
                _ => panic!("not a full body"),
            }
        }
    }
}
