//! Answering the requests in a connection's read buffer, one after another, as named steps:
//! parse the head, find its body, decide whether the connection stays open, dispatch (route and
//! handler), record (count and log), encode, send what the head leaves, decide how to close.

use std::time::{Duration, Instant};

use bytes::Bytes;
use ringd_core::{parse_request_known, BodyFraming, Method, ParseError, Parsed, RequestHead, Version};

use super::body::PendingBody;
use super::conn::{out_buf, BodyState, Close, Conn};
use super::encode::{discard, encode, encode_simple, Encoded};
use super::header_pool::HeaderSlots;
use super::redirect::to_https;
use super::send::send_rest;
use crate::app::handler::{Body, Params, Response};
use crate::app::router::Routed;
use crate::dispatch;
use crate::heap::boxed;
use crate::ops::access_log::Entry;
use crate::worker::{clock_ns, turn_ns, Worker};

/// Chunked output is sent once this much is buffered.
pub(super) const STREAM_FLUSH: usize = 64 * 1024;

/// What answering the request at the front of the buffer led to.
enum Step {
    /// Answered; this many bytes were the request.
    Answered { consumed: usize, close: Option<Close> },
    /// The head is incomplete: read more.
    NeedHead,
    /// The head is complete but the body is not here yet.
    NeedBody(PendingBody),
    /// The request is malformed: answer with this error and close.
    Malformed(ParseError),
    /// Writing failed: the client is gone.
    Broken,
}

impl Conn {
    /// Answers every complete request in the buffer and sends the answers. `Some` when the
    /// connection must close.
    ///
    /// The clock is read once for the batch, not once a request: every request answered is
    /// timed (the latency histogram) from the turn clock of the turn its answering started in
    /// (the turn its read completed in) to the end of the batch's answers, read once
    /// when the batch is done or before queued answers are sent mid-batch; its answer leaves
    /// with the batch's, so that is when it is ready to send. A handler that awaits, or a
    /// heavy synchronous one, counts its whole time, and so does every other request of the
    /// batch (all are timed to its end: their answers leave together).
    pub(super) async fn answer_and_send(&mut self) -> Option<Close> {
        // Requests answered since the clock was last read. One future for the whole batch: a
        // loop of its own in an inner `async fn` would be one more state set up, polled and
        // dropped for every batch.
        let mut untimed = 0;
        // When they are timed from ([`time_answered`]): the turn clock, in nanoseconds.
        let mut since = turn_ns();
        let close = 'batch: loop {
            // The bytes read and not answered yet, looked up once a request.
            let buf = self.rbuf.pending();
            if buf.is_empty() {
                break 'batch None;
            }
            // Parse the request at the front of the buffer and, when its body is here, answer
            // it (a block, not an async fn: a future of its own would be set up, polled and
            // dropped for every request).
            // The router in force for this request: its exact routes' paths are targets the
            // parser takes as they are (the head may borrow them), and it routes the request.
            let router = self.slot.worker().router();
            // Given back after the block, on every way out of it.
            let mut slots = HeaderSlots::take();
            let step = 'one: {
                let worker = self.slot.worker();
                let config = worker.config();
                // 1. Parse the head.
                // The head is used where the parser left it: moving it out of the result is a copy.
                let parsed = parse_request_known(buf, &config.limits, slots.as_mut(), router.known_targets());
                let head = match &parsed {
                    Ok(Parsed::Complete(head)) => head,
                    Ok(Parsed::Partial) => break 'one Step::NeedHead,
                    Err(e) => break 'one Step::Malformed(*e),
                };
                // 2. Find its body, or say what reading it needs.
                let (body, consumed) = match body_of(head, buf, self.body_state, self.body.as_deref(), worker) {
                    Ok(found) => found,
                    Err(pending) => break 'one Step::NeedBody(pending),
                };
                // 3. Whether the connection stays open after this answer.
                let skipped = self.body_state == BodyState::Skipped;
                let keep_alive = head.keep_alive
                    && !skipped
                    && self.served + 1 < config.max_requests_per_conn
                    && !worker.is_draining();
                // 4. Dispatch: the handler's answer (or the redirect of a redirecting listener).
                // Without a handler timeout, dispatch's steps are taken here, in this future: a
                // handler that answers at once then costs no future of its own.
                let mut response = match (self.redirect, config.timeouts.handler) {
                    (Some(port), _) => to_https(head, port),
                    (None, None) => dispatch::respond_here!(worker, router, head, body, &self.peer, self.now),
                    (None, Some(limit)) => {
                        dispatch::respond_within(limit, worker, head, body, &self.peer, self.now).await
                    }
                };
                // 5. Encode the head (and a small body) behind the answers before it.
                let common = worker.common_lines(self.now);
                let handler_status = response.status;
                let body_bytes = if head.method == Method::Head {
                    Some(0)
                } else {
                    response.body.len()
                };
                let (encoded, status) = encode(
                    out_buf(&mut self.out, &self.slot),
                    &mut response,
                    head,
                    keep_alive,
                    !config.headers.is_empty(),
                    &common,
                    worker,
                );
                discard(response);
                // 6. Record what was sent (a 500 replaces a response the handler got wrong).
                let body_bytes = if status == handler_status { body_bytes } else { None };
                // Its latency is counted with the batch's (`answer_and_send`).
                untimed += 1;
                dispatch::record_untimed(worker, head.method, head.version, status, || Entry {
                    peer: self.peer,
                    request: request_line(buf),
                    status,
                    body_bytes,
                    referer: head.header("referer"),
                    user_agent: head.header("user-agent"),
                });
                // 7. Send what the head leaves (a large body, a file, a stream).
                let keep_alive = match encoded {
                    Encoded::Done { keep_alive } => {
                        // `Done` owns nothing: forgetting it frees nothing, where its drop is a call.
                        std::mem::forget(encoded);
                        keep_alive
                    }
                    // Boxed: these states (a stream, a file being spliced) would otherwise be part of
                    // the answering state of every request.
                    rest => {
                        let out = out_buf(&mut self.out, &self.slot);
                        match boxed(|| send_rest(rest, out, &mut self.io, worker, self.slot.io(), self.now)).await {
                            Ok(keep_alive) => {
                                // A send may wait up to the send timeout: this request (and those
                                // answered before it) count up to its end, what follows from there.
                                time_answered(&mut since, &mut self.now, worker, &mut untimed);
                                keep_alive
                            }
                            Err(_) => break 'one Step::Broken,
                        }
                    }
                };
                // 8. How the connection goes on.
                let close = if keep_alive {
                    None
                } else if !head.keep_alive && !skipped {
                    // The client asked to close: it sends nothing more.
                    Some(Close::Now)
                } else {
                    // We chose to close (a limit, a skipped body, a handler's wish): the client may still
                    // be sending, and unread input at close would reset the connection.
                    Some(Close::Linger)
                };
                Step::Answered { consumed, close }
            };
            slots.give_back();
            match step {
                Step::Answered { consumed, close } => {
                    self.rbuf.consume(consumed);
                    self.served += 1;
                    self.head_started = None;
                    self.body_state = BodyState::Unread;
                    if close.is_some() {
                        break 'batch close;
                    }
                    if self.out.as_ref().map_or(0, |o| o.len()) >= STREAM_FLUSH {
                        time_answered(&mut since, &mut self.now, self.slot.worker(), &mut untimed);
                        if self.flush().await.is_err() {
                            break 'batch Some(Close::Now);
                        }
                        since = clock_ns();
                    }
                }
                Step::NeedHead => break 'batch None,
                Step::NeedBody(pending) => {
                    // Reading moves the connection's clock: the answers before are timed first.
                    time_answered(&mut since, &mut self.now, self.slot.worker(), &mut untimed);
                    match boxed(|| self.read_body(pending)).await {
                        // Timed from the turn the body's last read completed in, as a head.
                        Ok(()) => since = turn_ns(),
                        Err(Some(e)) => break 'batch Some(self.malformed(e)),
                        Err(None) => break 'batch Some(Close::Now),
                    }
                }
                Step::Malformed(e) => break 'batch Some(self.malformed(e)),
                Step::Broken => break 'batch Some(Close::Now),
            }
        };
        time_answered(&mut since, &mut self.now, self.slot.worker(), &mut untimed);
        // A buffer of the receive ring is not held while the answers are sent (a slow client
        // would keep it from the ring for up to the send timeout).
        self.rbuf.release(&self.slot.worker().io.buffers);
        // 9. Send the batch: one future for answering and sending (an inner one would be set up,
        // polled and dropped for every batch), the send awaited only when it cannot go on alone.
        match self.send_batch_detached(close) {
            Ok(close) => close,
            Err(close) => self.send_batch(close).await,
        }
    }

    /// Queues the error response for a malformed request; the connection then closes.
    fn malformed(&mut self, e: ParseError) -> Close {
        let worker = self.slot.worker();
        dispatch::record(
            worker,
            Method::Other(""),
            Version::Http11,
            e.status(),
            Duration::ZERO,
            || Entry {
                peer: self.peer,
                request: request_line(self.rbuf.pending()),
                status: e.status(),
                body_bytes: None,
                referer: None,
                user_agent: None,
            },
        );
        let body = Bytes::from(format!("{} {}: {}\n", e.status(), e.reason(), e.message()));
        let response = Response::new(e.status())
            .content_type_static(crate::app::type_lines::TEXT_PLAIN)
            .body(Body::Full(body));
        let common = worker.common_lines(self.now);
        encode_simple(
            out_buf(&mut self.out, &self.slot),
            &response,
            Version::Http11,
            false,
            false,
            &common,
            worker,
        );
        Close::Linger
    }
}

/// Reads the clock and counts the latency of the `untimed` requests answered since `since` (a
/// [`clock_ns`] reading), which becomes the reading. The connection's clock `now` (deadlines,
/// `Date`) is read again only when that took [`SLOW_ANSWER_NS`] or more: otherwise it stays
/// within that of the present, as good as a clock read once a turn.
#[inline(always)]
fn time_answered(since: &mut u64, now: &mut Instant, worker: &Worker, untimed: &mut u64) {
    if *untimed == 0 {
        return;
    }
    let answered = clock_ns();
    let took = answered.saturating_sub(*since);
    worker.stats().latency_ns(std::mem::take(untimed), took);
    *since = answered;
    if took >= SLOW_ANSWER_NS {
        *now = Instant::now();
    }
}

/// Answering that takes this long moves the connection's clock on ([`time_answered`]).
const SLOW_ANSWER_NS: u64 = 1_000_000;

/// The body of the request `head` at the front of `buf` (de-chunked into `dechunked` if it was
/// chunked), and how many bytes the request takes; or, when the body is not all here yet, what
/// reading it needs.
#[inline]
fn body_of<'b>(
    head: &RequestHead<'_, '_>,
    buf: &'b [u8],
    state: BodyState,
    dechunked: Option<&'b Vec<u8>>,
    worker: &Worker,
) -> Result<(&'b [u8], usize), PendingBody> {
    let head_len = head.head_len;
    Ok(match (head.body, state) {
        (_, BodyState::Skipped) => (&[], buf.len()),
        (BodyFraming::None, _) => (&[], head_len),
        (BodyFraming::Length(n), _) if (buf.len() - head_len) as u64 >= n => {
            let end = head_len + n as usize;
            (&buf[head_len..end], end)
        }
        (BodyFraming::Chunked, BodyState::Chunked(used)) => {
            (dechunked.map_or(&[], |b| &b[..]), head_len + used as usize)
        }
        (framing, _) => {
            // Whether the handler reads bodies decides whether `100 Continue` is sent.
            let reads_body = match worker
                .router()
                .find_with(head.method, &head.path, &mut Params::default())
            {
                Routed::Found(handler) => handler.reads_body(),
                _ => false,
            };
            return Err(PendingBody {
                head_len,
                framing,
                expect_continue: head.expect_continue,
                reads_body,
            });
        }
    })
}

/// The request line at the front of `buf` (after any empty lines), without its line end; at most
/// 1 KiB of it, for the access log.
fn request_line(buf: &[u8]) -> &[u8] {
    let start = buf.iter().position(|b| *b != b'\r' && *b != b'\n').unwrap_or(buf.len());
    let rest = &buf[start..];
    let end = rest
        .iter()
        .position(|b| *b == b'\r' || *b == b'\n')
        .unwrap_or(rest.len())
        .min(1024);
    &rest[..end]
}
