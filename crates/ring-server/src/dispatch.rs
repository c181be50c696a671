//! What happens to a request whatever protocol brought it: check it against the rate limits
//! (a refusal is a 429), route it, call the handler (a panic becomes a 500, a handler past
//! `timeouts.handler` a 503), compress the answer, then count it and log it.
//!
//! A protocol layer parses a request into a [`RequestHead`] and a body, calls [`respond`] (or
//! [`respond_within`]), encodes the [`Response`] its own way, and calls [`record`] with what it
//! sent.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ringd_core::{Method, RequestHead, Target, Version};

use crate::app::handler::{BodyStream, Handler, Params, Reply, Request, Response};
use crate::app::router::{Routed, Router};
use crate::heap::boxed;
use crate::ops::access_log::Entry;
use crate::traffic::Verdict;
use crate::worker::{spawn_log_flush, Worker};

/// Answers one request: the rate limits, the router and the handler (a handler that panics
/// gets a 500), then compression. The HTTP/1.1 side takes the same steps ([`route`], [`call`],
/// [`finish`], [`compressed`]) in its own answering future, so that a handler that answers at
/// once costs no future of its own.
pub(crate) async fn respond(
    worker: &Worker,
    head: &RequestHead<'_, '_>,
    body: &[u8],
    peer: &SocketAddr,
    now: Instant,
) -> Response {
    match worker.traffic.check(&head.path, peer, now, worker.log_budget()) {
        Verdict::Pass => {}
        // Boxed: the timer's state would otherwise be part of every request's.
        Verdict::Delay(wait) => boxed(|| tokio::time::sleep(wait)).await,
        Verdict::Refuse(response) => return response,
    }
    let router = worker.router();
    let mut params = Params::default();
    let response = match route(&router, head, &mut params) {
        Err(response) => response,
        Ok(handler) => {
            let req = Request {
                head,
                body,
                params: &params,
                peer: *peer,
                now,
            };
            let answer = call(worker, handler, &req);
            match answer {
                Answer::Ready(response) => response,
                Answer::Pending(future) => finish(future, worker, head).await,
            }
        }
    };
    compressed(worker, response, head)
}

/// The handler for a request, its wildcards captured into `params`; or, when no handler is
/// for it, the answer ([`unrouted`]). Inlined: the found handler is the common case, and the
/// answers are made out of line.
#[inline(always)]
pub(crate) fn route<'r, 'p>(
    router: &'r Router,
    head: &'p RequestHead<'_, '_>,
    params: &mut Params<'p>,
) -> Result<&'r dyn Handler, Response>
where
    'r: 'p,
{
    let routed = match head.target {
        Target::Origin | Target::Absolute { .. } => router.find_with(head.method, &head.path, params),
        Target::Asterisk | Target::Authority(_) => Routed::NotFound,
    };
    match routed {
        Routed::Found(handler) => Ok(handler),
        unrouted => Err(self::unrouted(router, head, unrouted)),
    }
}

/// The answer to a request no handler is for: `OPTIONS *`, a tunnel (`CONNECT`, not served:
/// what a client sends after it is not HTTP, so the connection closes), 405 (204 to
/// `OPTIONS`) and 404.
#[cold]
#[inline(never)]
fn unrouted(router: &Router, head: &RequestHead<'_, '_>, routed: Routed<'_>) -> Response {
    match (head.target, routed) {
        (Target::Asterisk, _) => {
            let mut allow = router.all_methods();
            allow.push("OPTIONS");
            Response::new(204).header("Allow", allow.join(", "))
        }
        (Target::Authority(_), _) => Response::error(501).header("Connection", "close"),
        (_, Routed::MethodNotAllowed(allow)) if head.method == Method::Options => {
            Response::new(204).header("Allow", format!("{allow}, OPTIONS"))
        }
        (_, Routed::MethodNotAllowed(allow)) => Response::error(405).header("Allow", allow),
        (_, Routed::NotFound | Routed::Found(_)) => Response::error(404),
    }
}

/// What a handler returned ([`call`]).
pub(crate) enum Answer<'a> {
    /// The response.
    Ready(Response),
    /// The handler needs I/O first: its future, for [`finish`]. Only the future is kept across
    /// the wait (not the reply it came in).
    Pending(Pin<Box<dyn Future<Output = Response> + 'a>>),
}

/// Calls `handler` with `req`; a handler that panics gets a 500.
#[inline]
pub(crate) fn call<'a>(worker: &Worker, handler: &'a dyn Handler, req: &'a Request<'a>) -> Answer<'a> {
    match catch_unwind(AssertUnwindSafe(|| handler.call(req))) {
        Ok(Reply::Ready(response)) => Answer::Ready(response),
        Ok(Reply::Pending(future)) => Answer::Pending(future),
        Err(_) => Answer::Ready(handler_panicked(worker, req.head)),
    }
}

/// Awaits a handler's future ([`Answer::Pending`]); a handler that panics gets a 500.
pub(crate) async fn finish(
    mut future: Pin<Box<dyn Future<Output = Response> + '_>>,
    worker: &Worker,
    head: &RequestHead<'_, '_>,
) -> Response {
    let caught = std::future::poll_fn(|cx| match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
        Ok(Poll::Ready(r)) => Poll::Ready(Ok(r)),
        Ok(Poll::Pending) => Poll::Pending,
        Err(panic) => Poll::Ready(Err(panic)),
    })
    .await;
    caught.unwrap_or_else(|_| handler_panicked(worker, head))
}

/// The handler's response, compressed when the worker compresses and the request allows.
#[inline(always)]
pub(crate) fn compressed(worker: &Worker, response: Response, head: &RequestHead<'_, '_>) -> Response {
    if worker.traffic.compressing() {
        return worker.traffic.compress(response, head, &worker.config().compression);
    }
    response
}

/// [`respond`], with the handler given at most `limit`: past it the client gets 503 (with
/// `Retry-After`, and the connection closes). The handler's future is dropped then: handlers
/// own no io_uring operation, so nothing stays in flight.
pub(crate) async fn respond_within(
    limit: Duration,
    worker: &Worker,
    head: &RequestHead<'_, '_>,
    body: &[u8],
    peer: &SocketAddr,
    now: Instant,
) -> Response {
    // Boxed: the timer's state would otherwise be part of every connection's answering state.
    match boxed(|| tokio::time::timeout(limit, respond(worker, head, body, peer, now))).await {
        Ok(response) => response,
        Err(_) => {
            if worker.log_budget().allow() {
                tracing::warn!(method = head.method.as_str(), path = %head.path, "handler took longer than timeouts.handler; answered 503");
            }
            Response::error(503)
                .header("Retry-After", "1")
                .header("Connection", "close")
        }
    }
}

fn handler_panicked(worker: &Worker, head: &RequestHead<'_, '_>) -> Response {
    if worker.log_budget().allow() {
        tracing::error!(method = head.method.as_str(), path = %head.path, "handler panicked; answered 500");
    }
    Response::error(500).header("Connection", "close")
}

/// Counts an answered request (by method and the status sent, with the handler's time, and by
/// protocol version) and, if the worker logs, logs it; `entry` is made only then.
#[inline]
pub(crate) fn record<'a>(
    worker: &Rc<Worker>,
    method: Method<'_>,
    version: Version,
    status: u16,
    took: Duration,
    entry: impl FnOnce() -> Entry<'a>,
) {
    let stats = worker.stats();
    stats.request(method, status, took);
    stats.protocol(version);
    if let Some(log) = &worker.access_log {
        if log.record(&entry()) {
            spawn_log_flush(worker);
        }
    }
}

/// The next piece of a streamed response body; a stream that fails or panics is an error
/// (logged within the worker's budget), and the response cannot end well.
pub(crate) async fn next_piece(body: &mut dyn BodyStream, worker: &Worker) -> io::Result<Option<Bytes>> {
    let mut next = body.next_chunk();
    let piece = std::future::poll_fn(|cx| match catch_unwind(AssertUnwindSafe(|| next.as_mut().poll(cx))) {
        Ok(poll) => poll,
        Err(_) => Poll::Ready(Err(io::Error::other("response body stream panicked"))),
    })
    .await;
    if let Err(e) = &piece {
        if worker.log_budget().allow() {
            tracing::error!("response body failed mid-stream: {e}; ending the response");
        }
    }
    piece
}
