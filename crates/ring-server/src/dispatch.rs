//! What happens to a request whatever protocol brought it: check it against the rate limits
//! (a refusal is a 429), route it, call the handler (a panic becomes a 500, a handler past
//! `timeouts.handler` a 503), compress the answer, then count it and log it.
//!
//! A protocol layer parses a request into a [`RequestHead`] and a body, takes the steps
//! ([`respond_here`] in its own future, [`respond`] or [`respond_within`] in one of theirs),
//! encodes the [`Response`] its own way, and calls [`record`] with what it sent.

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
use crate::runtime::timer;
use crate::worker::{spawn_log_flush, Worker};

/// The steps of answering one request, in their order: the rate limits (a delay is waited
/// out, a refusal is the answer), the router ([`route`]: the handler, or the answer when there
/// is none), the handler ([`call`]; a future it returns is awaited by [`finish`]; a panic
/// gets a 500), compression ([`compressed`]). Evaluates to the [`Response`], in an async
/// context.
///
/// A macro, so that the one list of steps is taken inside the caller's own future: HTTP/1.1
/// takes them in its answering loop, where a handler that answers at once then costs no
/// future of its own (one set up, polled, its response moved out and dropped, for every
/// request); [`respond`] takes them in a future of their own, for HTTP/2 and the handler
/// timeout. `router` is the worker's router (`Worker::router`) as the caller took it for this
/// request: HTTP/1.1 parsed the head with it, and the head may borrow its paths.
macro_rules! respond_here {
    // The arguments are places (a variable, a field), read where they are used: bound to
    // variables of the macro's own, they would be copied into the caller's future, which
    // costs stores on every request.
    ($worker:expr, $router:expr, $head:expr, $body:expr, $peer:expr, $now:expr) => {
        'steps: {
            match $worker.traffic.check(&$head.path, $peer, $now, $worker.log_budget()) {
                $crate::traffic::Verdict::Pass => {}
                // Boxed: the timer's state would otherwise be part of every request's.
                $crate::traffic::Verdict::Delay(wait) => {
                    $crate::heap::boxed(|| $crate::runtime::timer::sleep(wait)).await
                }
                $crate::traffic::Verdict::Refuse(response) => break 'steps response,
            }
            let router: &$crate::app::router::Router = &$router;
            let mut params = $crate::app::handler::Params::default();
            let mut response = match $crate::dispatch::route(router, $head, &mut params) {
                Err(response) => response,
                Ok(handler) => {
                    let req = $crate::app::handler::Request {
                        head: $head,
                        body: $body,
                        params: &params,
                        peer: *$peer,
                        now: $now,
                    };
                    // Bound first: the answer borrows `req`, which this block drops.
                    let answer = $crate::dispatch::call($worker, handler, &req);
                    match answer {
                        $crate::app::handler::Reply::Ready(response) => response,
                        $crate::app::handler::Reply::Pending(future) => {
                            $crate::dispatch::finish(future, $worker, $head).await
                        }
                    }
                }
            };
            $crate::dispatch::compress($worker, &mut response, $head);
            response
        }
    };
}
pub(crate) use respond_here;

/// Answers one request ([`respond_here`]'s steps) in a future of its own.
pub(crate) async fn respond(
    worker: &Worker,
    head: &RequestHead<'_, '_>,
    body: &[u8],
    peer: &SocketAddr,
    now: Instant,
) -> Response {
    let router = worker.router();
    respond_here!(worker, router, head, body, peer, now)
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

/// Calls `handler` with `req`; a handler that panics gets a 500.
#[inline(always)]
pub(crate) fn call<'a>(worker: &Worker, handler: &'a dyn Handler, req: &'a Request<'a>) -> Reply<'a> {
    catch_unwind(AssertUnwindSafe(|| handler.call(req)))
        .unwrap_or_else(|_| Reply::Ready(handler_panicked(worker, req.head)))
}

/// Awaits a handler's future ([`Reply::Pending`]); a handler that panics gets a 500.
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

/// Compresses the handler's response in place when the worker compresses and the request
/// allows (in place: the response is not moved through a call when nothing is compressed).
#[inline(always)]
pub(crate) fn compress(worker: &Worker, response: &mut Response, head: &RequestHead<'_, '_>) {
    if worker.traffic.compressing() {
        compress_now(worker, response, head);
    }
}

/// [`compress`] where the worker compresses.
#[inline(never)]
fn compress_now(worker: &Worker, response: &mut Response, head: &RequestHead<'_, '_>) {
    let handler = std::mem::replace(response, Response::new(response.status));
    *response = worker.traffic.compress(handler, head, &worker.config().compression);
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
    match boxed(|| timer::timeout(limit, respond(worker, head, body, peer, now))).await {
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

/// Counts an answered request (by method and the status sent, with the time it took to answer,
/// and by protocol version) and, if the worker logs, logs it; `entry` is made only then.
#[inline]
pub(crate) fn record<'a>(
    worker: &Rc<Worker>,
    method: Method<'_>,
    version: Version,
    status: u16,
    took: Duration,
    entry: impl FnOnce() -> Entry<'a>,
) {
    worker.stats().latency(1, took);
    record_untimed(worker, method, version, status, entry);
}

/// [`record`] without the latency, which the caller counts with others' (HTTP/1.1 reads the
/// clock once for the answers of a batch).
#[inline]
pub(crate) fn record_untimed<'a>(
    worker: &Rc<Worker>,
    method: Method<'_>,
    version: Version,
    status: u16,
    entry: impl FnOnce() -> Entry<'a>,
) {
    let stats = worker.stats();
    stats.request(method, status);
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
