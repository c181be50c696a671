//! One connection's loop: read, answer every complete request in what was read, send all the
//! answers in one write, repeat.
//!
//! The read buffer is a plain `Vec`: a waiting plain connection receives into a buffer of the
//! worker's receive ring and the bytes are copied into it (taken from a per-worker free list,
//! given back once empty); other reads lend it to the read operation (tokio-uring's
//! ownership-passing I/O). Request heads are parsed in place: headers are slices of
//! that buffer, handed to the handler without copies. Responses are encoded into an [`OutBuf`]
//! (a registered fixed buffer while it fits), so that a batch of pipelined requests costs one send.
//!
//! A request whose body has not fully arrived is answered in two steps: its head is parsed,
//! the body is read (sending `100 Continue` first when asked for and wanted), and the head is
//! parsed again from the same bytes. That second parse only happens on that slow path; it keeps
//! the borrows simple (no head outlives a read) and costs far less than the read itself.

use std::future::Future;
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ringd_core::{
    parse_request, write_chunk_header, write_head_common, write_last_chunk, BodyFraming, BodyLength, ChunkProgress,
    ChunkedDecoder, CommonLines, Method, ParseError, Parsed, RequestHead, ResponseFraming, ResponseHead, Target,
    Version, WriteBuf, CONTINUE_100,
};
use tokio_uring::net::TcpStream;

use crate::app::handler::{Body, Params, Reply, Request, Response};
use crate::app::router::Routed;
use crate::boxed::boxed;
use crate::header_pool::HeaderSlots;
use crate::io::buf::OutBuf;
use crate::io::conns::Phase;
use crate::io::listener::ListenerKind;
use crate::io::stream::Transport;
use crate::ops::access_log::Entry;
use crate::tls::session::TlsSession;
use crate::worker::Worker;

/// The read buffer's starting size, and its growth step: nginx's `client_header_buffer_size`.
/// Without the receive ring a connection keeps its buffer (grown once for larger requests, at
/// most this while idle); with it, the buffer goes back to the worker's free list once every
/// request in it is answered (see `Worker::give_read_buf`).
const READ_BUF: usize = 1024;
/// Reads that fill the buffer grow it, up to this.
const READ_BUF_BUSY: usize = 16 * 1024;
/// Above this, the read buffer is shrunk back once empty, so one large body does not stay pinned
/// to an idle connection.
const READ_BUF_KEEP: usize = 64 * 1024;
/// Bodies up to this size are copied next to their head, so head and body leave in one send.
const INLINE_BODY: usize = 16 * 1024;
/// Chunked output is sent once this much is buffered.
const STREAM_FLUSH: usize = 64 * 1024;
/// How long a closing connection may keep sending before it is cut (nginx `lingering_timeout`).
const LINGER: Duration = Duration::from_secs(5);
/// How much a closing connection may send before it is cut (nginx stops after `lingering_time`).
const LINGER_BYTES: usize = 1 << 20;

/// Sets up one accepted connection and returns the future that serves it until it closes
/// (`None`: it could not be set up, and is closed).
///
/// Not an `async fn`: the connection is built here and moved into the future once, where an
/// `async fn` would keep its arguments beside the connection made from them, in every
/// connection's task for as long as it lives.
pub(crate) fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    worker: Rc<Worker>,
    kind: ListenerKind,
) -> Option<impl Future<Output = ()>> {
    let (io, out) = match kind {
        ListenerKind::Tls => {
            // The configuration in force when the client connected: a reload changes the
            // certificate for new handshakes only.
            let config = worker.tls()?;
            match TlsSession::new(config) {
                Ok(session) => (
                    Transport::tls(stream, session),
                    Some(Box::new(OutBuf::heap_only(
                        worker.pool.clone(),
                        worker.config().buffers.size,
                        worker.stats.clone(),
                    ))),
                ),
                Err(e) => {
                    tracing::error!("cannot start a TLS session: {e}");
                    return None;
                }
            }
        }
        // A plain connection takes an output buffer from the worker when it answers.
        ListenerKind::Plain | ListenerKind::Redirect => (Transport::plain(stream), None),
    };
    // The slot goes when the connection does (`Conn`'s `Drop`).
    let key = worker.conns.insert(io.stream().clone());
    worker.stats.open.set(worker.conns.len() as u64);
    let redirect = (kind == ListenerKind::Redirect).then(|| worker.https_port);
    // With the worker's receive ring, a plain connection holds a read buffer only while a
    // request is in it (see `Conn::read_head`).
    let rbuf = match io.provided(&worker) {
        Some(_) => Vec::new(),
        None => Vec::with_capacity(READ_BUF),
    };
    let conn = Conn {
        out,
        worker,
        io,
        redirect,
        key,
        peer,
        rbuf,
        start: 0,
        served: 0,
        head_started: None,
        now: Instant::now(),
        body: None,
        body_state: BodyState::Unread,
    };
    Some(conn.run())
}

/// Answers a connection over the worker's limit with a canned 503 (or closes it, as configured),
/// then closes it lingering briefly so the answer is not lost to a reset.
pub(crate) async fn shed(stream: TcpStream, worker: Rc<Worker>, kind: ListenerKind) {
    const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 24\r\nConnection: close\r\n\r\n503 Service Unavailable\n";
    // A TLS client cannot read a plain answer, and a handshake is the work being shed.
    if worker.config().shed == crate::config::Shed::Close || kind == ListenerKind::Tls {
        return;
    }
    let key = worker.conns.insert(stream.clone());
    let _slot = SlotGuard {
        worker: worker.clone(),
        key,
    };
    worker.conns.set(key, Phase::Write(None), Some(Instant::now() + LINGER));
    let (res, _) = stream.write_all(BUSY).await;
    if res.is_err() || stream.shutdown(Shutdown::Write).is_err() {
        return;
    }
    worker.conns.set(key, Phase::Closing, Some(Instant::now() + LINGER));
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

struct SlotGuard {
    worker: Rc<Worker>,
    key: usize,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.worker.forget_conn(self.key);
    }
}

/// Where the body of the request at `start` stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyState {
    /// Not read yet (or in the read buffer right after the head).
    Unread,
    /// De-chunked into `Conn::body`; the chunked encoding took this many bytes after the head.
    Chunked(usize),
    /// Not read: the handler does not want it and the client is waiting for `100 Continue`.
    /// The response closes the connection (RFC 9110 §10.1.1).
    Skipped,
}

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

/// What reading a body needs to know, copied out of the head before the head's borrow ends.
#[derive(Debug, Clone, Copy)]
struct PendingBody {
    head_len: usize,
    framing: BodyFraming,
    expect_continue: bool,
    reads_body: bool,
}

/// How a connection ends.
enum Close {
    /// Cleanly, after a response that said `Connection: close`, or because the client left.
    Now,
    /// After an error response: drain what the client still sends before closing, so that our
    /// response is not destroyed by a reset (unread data at close makes the kernel send RST).
    Linger,
}

struct Conn {
    worker: Rc<Worker>,
    io: Transport,
    /// A plain listener that sends every request to `https://` on this port.
    redirect: Option<u16>,
    key: usize,
    peer: SocketAddr,
    /// Bytes read and not yet consumed are `rbuf[start..]`.
    rbuf: Vec<u8>,
    start: usize,
    served: u64,
    /// When the first byte of the current, incomplete head arrived (header timeout).
    head_started: Option<Instant>,
    /// This connection's clock, for its deadlines, its handlers' latency and the `Date` value:
    /// read when a read completes, when a handler has answered and when a send has finished,
    /// not for every use (three readings a request where there were five).
    now: Instant,
    /// A de-chunked request body (boxed: most connections never see one, and every idle
    /// connection would hold the empty vector).
    #[expect(clippy::box_collection, reason = "8 bytes in every connection, where a Vec is 24")]
    body: Option<Box<Vec<u8>>>,
    body_state: BodyState,
    /// The output buffer: a plain connection takes one from the worker's free list when it
    /// answers and gives it back once it has sent everything (an idle connection holds none);
    /// a TLS connection keeps its own.
    out: Option<Box<OutBuf>>,
}

impl Drop for Conn {
    /// Removes the connection's slot however it ends, a panic included: the slot holds a handle
    /// to the socket, so a slot left behind would be a connection that never closes. This runs
    /// before the fields drop, so the socket closes once the slot is gone (and once the last
    /// operation in flight on it has completed).
    fn drop(&mut self) {
        self.worker.forget_conn(self.key);
    }
}

impl Conn {
    /// Serves the connection until it ends. Not an `async fn`: one would keep its argument and
    /// a copy of it (the whole connection twice) in its future; the block captures it once.
    #[expect(clippy::manual_async_fn, reason = "an async fn would hold the connection twice")]
    fn run(mut self) -> impl Future<Output = ()> {
        async move {
            let close = loop {
                match self.read_head().await {
                    Ok(0) | Err(_) => break Close::Now,
                    Ok(_) => {}
                }
                // Answering runs boxed: its states are a connection's largest, and a task keeps room
                // for its future's largest state all the time, so unboxed they would be held by
                // every idle connection too (1,888 bytes a connection; 760 with this and the TLS
                // paths boxed). One allocation per batch of requests pays for it.
                if let Some(close) = boxed(|| self.answer_and_send()).await {
                    break close;
                }
                self.compact();
                // Everything is sent: a plain connection gives its output buffer back while it waits.
                if !self.io.is_tls() {
                    if let Some(out) = self.out.take_if(|o| o.is_empty() && o.fixed_index().is_none()) {
                        self.worker.give_out_buf(out);
                    }
                }
            };
            match close {
                Close::Linger => boxed(|| self.linger()).await,
                Close::Now => self.io.close_notify(&self.worker, self.key).await,
            }
        }
    }

    /// What the connection waits for now, and until when.
    fn wait(&self) -> (Phase, Instant) {
        let t = self.worker.config().timeouts;
        if self.start == self.rbuf.len() && self.worker.draining.get() {
            // Draining: one last request may still be on its way (RFC 9112 §9.6).
            (Phase::Idle, self.now + t.drain_idle)
        } else if self.start == self.rbuf.len() && self.served > 0 {
            (Phase::Idle, self.now + t.keepalive)
        } else if self.start == self.rbuf.len() {
            // A new connection's first request is timed like a head, as nginx's
            // client_header_timeout: a client that connects and says nothing is not idle.
            (Phase::Fresh, self.now + t.header)
        } else {
            // `read_head` records when the head started.
            (Phase::Head, self.head_started.unwrap_or(self.now) + t.header)
        }
    }

    /// Reads more of a request head (or the first byte of the next request). Not an `async fn`
    /// (which would keep `self` twice): every idle connection waits in this future.
    #[expect(clippy::manual_async_fn, reason = "an async fn would hold `self` twice")]
    fn read_head(&mut self) -> impl Future<Output = io::Result<usize>> + '_ {
        async move {
            if self.start == self.rbuf.len() {
                if let Some(ring) = self.io.provided(&self.worker) {
                    // Waits holding no read buffer: the kernel picks one from the worker's ring when
                    // the request arrives, and its bytes are copied into `rbuf` (empty, and with no
                    // memory, while the connection waited). Only the operation is kept across the
                    // wait (the phase and deadline are worked out again if it falls back).
                    let (phase, deadline) = self.wait();
                    let received = self
                        .io
                        .recv_provided(ring, &self.worker, self.key, phase, deadline)
                        .await;
                    Transport::received(&self.worker, self.key, &received);
                    self.now = Instant::now();
                    match received {
                        Ok(Some(buf)) => {
                            // `rbuf` was given back by `compact` once the last batch was answered.
                            if self.rbuf.capacity() == 0 {
                                self.rbuf = self.worker.take_read_buf(buf.len().max(READ_BUF));
                            }
                            self.rbuf.extend_from_slice(&buf);
                            return Ok(buf.len());
                        }
                        Ok(None) => return Ok(0),
                        // The ring is empty for now: a plain read, below.
                        Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => self.worker.stats.receive_empty.add(1),
                        Err(e) => return Err(e),
                    }
                }
            }
            if self.start < self.rbuf.len() {
                self.head_started.get_or_insert(self.now);
            }
            let (phase, deadline) = self.wait();
            if self.rbuf.capacity() - self.rbuf.len() < 512 {
                self.rbuf.reserve(self.rbuf.capacity().max(READ_BUF));
            }
            // Boxed: unboxed, a plain read's state (an owned buffer in flight) would make every
            // connection's future larger than the wait on the ring that idle connections are in.
            boxed(|| self.read(phase, deadline)).await
        }
    }

    /// One read into the spare capacity of `rbuf`.
    async fn read(&mut self, phase: Phase, deadline: Instant) -> io::Result<usize> {
        if self.rbuf.capacity() == self.rbuf.len() {
            self.rbuf.reserve(READ_BUF);
        }
        let spare = self.rbuf.capacity() - self.rbuf.len();
        let res = self
            .io
            .read(&mut self.rbuf, &self.worker, self.key, phase, deadline)
            .await;
        self.now = Instant::now();
        // A read that filled the buffer suggests more is queued (pipelined requests): a larger
        // buffer takes more of them per read and answers them in one send.
        if matches!(res, Ok(n) if n >= spare) && self.rbuf.capacity() < READ_BUF_BUSY {
            self.rbuf.reserve(self.rbuf.capacity());
        }
        res
    }

    /// Answers every complete request in the buffer and sends what is queued. `Some` when the
    /// connection must close.
    async fn answer_and_send(&mut self) -> Option<Close> {
        let close = self.answer_all().await;
        if !out_is_empty(&self.out) && self.flush().await.is_err() {
            return Some(Close::Now);
        }
        close
    }

    /// Answers every complete request in the buffer. `Some` when the connection must close.
    async fn answer_all(&mut self) -> Option<Close> {
        loop {
            if self.start == self.rbuf.len() {
                return None;
            }
            match self.answer_one().await {
                Step::Answered { consumed, close } => {
                    self.start += consumed;
                    self.served += 1;
                    self.head_started = None;
                    self.body_state = BodyState::Unread;
                    if close.is_some() {
                        return close;
                    }
                    if self.out.as_ref().map_or(0, |o| o.len()) >= STREAM_FLUSH && self.flush().await.is_err() {
                        return Some(Close::Now);
                    }
                }
                Step::NeedHead => return None,
                Step::NeedBody(pending) => match boxed(|| self.read_body(pending)).await {
                    Ok(()) => {}
                    Err(Some(e)) => return Some(self.malformed(e)),
                    Err(None) => return Some(Close::Now),
                },
                Step::Malformed(e) => return Some(self.malformed(e)),
                Step::Broken => return Some(Close::Now),
            }
        }
    }

    /// Parses the request at `start` and, when its body is here, answers it.
    async fn answer_one(&mut self) -> Step {
        let worker = &*self.worker;
        let config = worker.config();
        let buf = &self.rbuf[self.start..];
        let mut slots = HeaderSlots::take();
        let head = match parse_request(buf, &config.limits, slots.as_mut()) {
            Ok(Parsed::Complete(head)) => head,
            Ok(Parsed::Partial) => return Step::NeedHead,
            Err(e) => return Step::Malformed(e),
        };
        let head_len = head.head_len;
        let (body, consumed): (&[u8], usize) = match (head.body, self.body_state) {
            (_, BodyState::Skipped) => (&[], buf.len()),
            (BodyFraming::None, _) => (&[], head_len),
            (BodyFraming::Length(n), _) if (buf.len() - head_len) as u64 >= n => {
                let end = head_len + n as usize;
                (&buf[head_len..end], end)
            }
            (BodyFraming::Chunked, BodyState::Chunked(used)) => {
                (self.body.as_deref().map_or(&[], |b| &b[..]), head_len + used)
            }
            (framing, _) => {
                let reads_body = match worker
                    .router()
                    .find_with(head.method, &head.path, &mut Params::default())
                {
                    Routed::Found(handler) => handler.reads_body(),
                    _ => false,
                };
                return Step::NeedBody(PendingBody {
                    head_len,
                    framing,
                    expect_continue: head.expect_continue,
                    reads_body,
                });
            }
        };
        let skipped = self.body_state == BodyState::Skipped;
        let keep_alive =
            head.keep_alive && !skipped && self.served + 1 < config.max_requests_per_conn && !worker.draining.get();
        let response = match (self.redirect, config.timeouts.handler) {
            (Some(port), _) => to_https(&head, port),
            (None, None) => respond(worker, &head, body, &self.peer, self.now).await,
            (None, Some(limit)) => {
                match boxed(|| tokio::time::timeout(limit, respond(worker, &head, body, &self.peer, self.now))).await {
                    Ok(response) => response,
                    Err(_) => {
                        if worker.log_budget.allow() {
                            tracing::warn!(method = head.method.as_str(), path = %head.path, "handler took longer than timeouts.handler; answered 503");
                        }
                        Response::error(503)
                            .header("Retry-After", "1")
                            .header("Connection", "close")
                    }
                }
            }
        };
        // The handler is timed from the last reading of this connection's clock (the read that
        // completed its request, or the end of the previous answer of the batch): one clock
        // read per request instead of a start and an end.
        let answered = Instant::now();
        let took = answered.saturating_duration_since(self.now);
        self.now = answered;
        let common = worker.common_lines(self.now);
        let handler_status = response.status;
        let body_bytes = if head.method == Method::Head {
            Some(0)
        } else {
            response.body.len()
        };
        let (encoded, status) = encode(
            out_buf(&mut self.out, worker),
            response,
            &head,
            keep_alive,
            &common,
            worker,
        );
        // What was sent (a 500 replaces a response the handler got wrong).
        let body_bytes = if status == handler_status { body_bytes } else { None };
        worker.stats.request(head.method, status, took);
        if let Some(log) = &worker.access_log {
            let entry = Entry {
                peer: self.peer,
                request: request_line(buf),
                status,
                body_bytes,
                referer: head.header("referer"),
                user_agent: head.header("user-agent"),
            };
            if log.record(&entry) {
                crate::worker::spawn_log_flush(&self.worker);
            }
        }
        let keep_alive = match encoded {
            Encoded::Done { keep_alive } => keep_alive,
            // Boxed: these states (a stream, a file being spliced) would otherwise be part of
            // the answering state of every request.
            rest => match boxed(|| {
                send_rest(
                    rest,
                    out_buf(&mut self.out, worker),
                    &mut self.io,
                    worker,
                    self.key,
                    self.now,
                )
            })
            .await
            {
                Ok(keep_alive) => {
                    // A send may wait up to the send timeout; what follows counts from its end.
                    self.now = Instant::now();
                    keep_alive
                }
                Err(_) => return Step::Broken,
            },
        };
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
    }

    /// Reads the body of the request at `start`. `Err(Some)` is a malformed body, `Err(None)` a
    /// client that went away.
    async fn read_body(&mut self, pending: PendingBody) -> Result<(), Option<ParseError>> {
        let limits = self.worker.config().limits;
        let body_timeout = self.worker.config().timeouts.body;
        let mut continue_sent = false;
        match pending.framing {
            BodyFraming::Length(n) => {
                if pending.expect_continue {
                    if !pending.reads_body {
                        self.body_state = BodyState::Skipped;
                        return Ok(());
                    }
                    self.send_continue().await.map_err(|_| None)?;
                }
                let need = self.start + pending.head_len + n as usize;
                self.rbuf.reserve(need.saturating_sub(self.rbuf.len()));
                while self.rbuf.len() < need {
                    match self.read(Phase::Body, self.now + body_timeout).await {
                        Ok(0) | Err(_) => return Err(None),
                        Ok(_) => {}
                    }
                }
            }
            BodyFraming::Chunked => {
                let mut decoder = ChunkedDecoder::new(limits.max_body, limits.max_header_bytes);
                let body_at = self.start + pending.head_len;
                self.body.get_or_insert_default().clear();
                loop {
                    let body = self.body.as_mut().expect("set above");
                    match decoder.decode(&self.rbuf[body_at..], body)? {
                        ChunkProgress::Done { consumed } => {
                            self.body_state = BodyState::Chunked(consumed);
                            break;
                        }
                        ChunkProgress::NeedMore { consumed } => {
                            // The decoded bytes are in `body`; drop their encoding so the read
                            // buffer holds only the head and what is still to decode.
                            self.rbuf.drain(body_at..body_at + consumed);
                        }
                    }
                    if pending.expect_continue && !continue_sent {
                        if !pending.reads_body {
                            self.body_state = BodyState::Skipped;
                            return Ok(());
                        }
                        self.send_continue().await.map_err(|_| None)?;
                        continue_sent = true;
                    }
                    if self.rbuf.capacity() - self.rbuf.len() < 1024 {
                        self.rbuf.reserve(READ_BUF);
                    }
                    match self.read(Phase::Body, self.now + body_timeout).await {
                        Ok(0) | Err(_) => return Err(None),
                        Ok(_) => {}
                    }
                }
            }
            BodyFraming::None => {}
        }
        Ok(())
    }

    /// Sends what is queued, then `100 Continue` (responses to earlier pipelined requests first).
    async fn send_continue(&mut self) -> io::Result<()> {
        out_buf(&mut self.out, &self.worker).put(CONTINUE_100);
        self.flush().await
    }

    /// Sends what is queued; the connection's clock is read again afterwards, since a send may
    /// wait (up to the send timeout) and what follows times itself from the clock.
    async fn flush(&mut self) -> io::Result<()> {
        let res = self
            .io
            .flush(out_buf(&mut self.out, &self.worker), &self.worker, self.key, self.now)
            .await;
        self.now = Instant::now();
        res
    }

    /// Queues the error response for a malformed request; the connection then closes.
    fn malformed(&mut self, e: ParseError) -> Close {
        self.worker.stats.request(Method::Other(""), e.status(), Duration::ZERO);
        if let Some(log) = &self.worker.access_log {
            log.record(&Entry {
                peer: self.peer,
                request: request_line(&self.rbuf[self.start..]),
                status: e.status(),
                body_bytes: None,
                referer: None,
                user_agent: None,
            });
        }
        let body = Bytes::from(format!("{} {}: {}\n", e.status(), e.reason(), e.message()));
        let response = Response::new(e.status())
            .content_type_static(crate::app::type_lines::TEXT_PLAIN)
            .body(Body::Full(body));
        let common = self.worker.common_lines(self.now);
        encode_simple(
            out_buf(&mut self.out, &self.worker),
            &response,
            Version::Http11,
            false,
            false,
            &common,
            &self.worker,
        );
        Close::Linger
    }

    /// Moves an incomplete request to the front of the buffer and returns memory after a large
    /// request.
    fn compact(&mut self) {
        if self.start == self.rbuf.len() && self.io.provided(&self.worker).is_some() {
            // The next request arrives in a buffer of the worker's ring.
            self.worker.give_read_buf(std::mem::take(&mut self.rbuf));
        } else if self.start == self.rbuf.len() {
            self.rbuf.clear();
            if self.rbuf.capacity() > READ_BUF_KEEP {
                self.rbuf.shrink_to(READ_BUF);
            }
        } else if self.start > 0 {
            self.rbuf.drain(..self.start);
        }
        self.start = 0;
        if self.body.as_ref().is_some_and(|b| b.capacity() > READ_BUF_KEEP) {
            self.body = None;
        }
    }

    /// Half-closes and discards what the client still sends, for at most [`LINGER`] and
    /// [`LINGER_BYTES`], so the error response reaches it instead of a reset.
    async fn linger(&mut self) {
        if !out_is_empty(&self.out) && self.flush().await.is_err() {
            return;
        }
        self.io.close_notify(&self.worker, self.key).await;
        if self.io.shutdown_write().is_err() {
            return;
        }
        let deadline = Instant::now() + LINGER;
        let mut discarded = 0;
        self.rbuf.clear();
        self.start = 0;
        while discarded < LINGER_BYTES {
            match self.read(Phase::Closing, deadline).await {
                Ok(0) | Err(_) => return,
                Ok(n) => discarded += n,
            }
            self.rbuf.clear();
        }
    }
}

/// The connection's output buffer, taken from the worker's free list if it holds none.
fn out_buf<'a>(out: &'a mut Option<Box<OutBuf>>, worker: &Worker) -> &'a mut OutBuf {
    out.get_or_insert_with(|| worker.take_out_buf())
}

/// Whether nothing waits to be sent (no output buffer, or an empty one).
fn out_is_empty(out: &Option<Box<OutBuf>>) -> bool {
    out.as_ref().is_none_or(|o| o.is_empty())
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

/// Runs the router and the handler for one request. A handler that panics gets a 500.
async fn respond(
    worker: &Worker,
    head: &RequestHead<'_, '_>,
    body: &[u8],
    peer: &SocketAddr,
    now: Instant,
) -> Response {
    let router = worker.router();
    match head.target {
        Target::Asterisk => {
            let mut allow = router.all_methods();
            allow.push("OPTIONS");
            return Response::new(204).header("Allow", allow.join(", "));
        }
        // Tunnels are not served; what a client sends after CONNECT is not HTTP, so close.
        Target::Authority(_) => return Response::error(501).header("Connection", "close"),
        Target::Origin | Target::Absolute { .. } => {}
    }
    let mut params = Params::default();
    let handler = match router.find_with(head.method, &head.path, &mut params) {
        Routed::Found(handler) => handler,
        Routed::MethodNotAllowed(allow) if head.method == Method::Options => {
            return Response::new(204).header("Allow", format!("{allow}, OPTIONS"));
        }
        Routed::MethodNotAllowed(allow) => return Response::error(405).header("Allow", allow),
        Routed::NotFound => return Response::error(404),
    };
    let req = Request {
        head,
        body,
        params: &params,
        peer: *peer,
        now,
    };
    // Only the handler's future is kept across the wait (not the reply it came in): this
    // state is part of the boxed answering state, whose size decides whether its allocation
    // is served from malloc's per-thread cache (at most 1,032 bytes).
    let mut future = match catch_unwind(AssertUnwindSafe(|| handler.call(&req))) {
        Ok(Reply::Ready(response)) => return response,
        Ok(Reply::Pending(future)) => future,
        Err(_) => return handler_panicked(worker, head),
    };
    let caught = std::future::poll_fn(|cx| match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
        Ok(Poll::Ready(r)) => Poll::Ready(Ok(r)),
        Ok(Poll::Pending) => Poll::Pending,
        Err(panic) => Poll::Ready(Err(panic)),
    })
    .await;
    caught.unwrap_or_else(|_| handler_panicked(worker, head))
}

fn handler_panicked(worker: &Worker, head: &RequestHead<'_, '_>) -> Response {
    if worker.log_budget.allow() {
        tracing::error!(method = head.method.as_str(), path = %head.path, "handler panicked; answered 500");
    }
    Response::error(500).header("Connection", "close")
}

/// The answer of a redirecting listener: the same target on `https://`, permanently (301 for
/// GET and HEAD, which every client follows; 308 otherwise, which keeps the method and body).
fn to_https(head: &RequestHead<'_, '_>, port: u16) -> Response {
    let host = match head.host.and_then(|h| std::str::from_utf8(h).ok()) {
        Some(host) => host,
        None => return Response::error(400),
    };
    // The host without its port: `[v6]:port`, `name:port`.
    let host = match host.strip_prefix('[') {
        Some(rest) => match rest.find(']') {
            Some(end) => &host[..end + 2],
            None => return Response::error(400),
        },
        None => host.split(':').next().unwrap_or(host),
    };
    let valid = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'[' | b']' | b':'));
    if !valid {
        return Response::error(400);
    }
    let path = match head.target {
        Target::Origin => head.raw_target,
        Target::Absolute { authority, .. } => {
            let after = head
                .raw_target
                .find(authority)
                .map_or("", |i| &head.raw_target[i + authority.len()..]);
            if after.starts_with('/') {
                after
            } else {
                "/"
            }
        }
        Target::Asterisk | Target::Authority(_) => "/",
    };
    let location = if port == 443 {
        format!("https://{host}{path}")
    } else {
        format!("https://{host}:{port}{path}")
    };
    let status = if matches!(head.method, Method::Get | Method::Head) {
        301
    } else {
        308
    };
    Response::new(status)
        .content_type_static(crate::app::type_lines::TEXT_PLAIN)
        .body(Body::Full(Bytes::from(format!("moved to {location}\n"))))
        .header("Location", location)
}

/// What is left to send after the head (and a small body) went into the output buffer.
enum Encoded {
    /// Everything is queued.
    Done { keep_alive: bool },
    /// A large in-memory body, to be sent on its own after the queue.
    Large { bytes: Bytes, keep_alive: bool },
    /// A range of a file, sent after the queue.
    File {
        file: crate::app::handler::FileBody,
        keep_alive: bool,
    },
    /// A streamed body, framed as said.
    Stream {
        stream: Box<dyn crate::app::handler::BodyStream>,
        framing: ResponseFraming,
        keep_alive: bool,
    },
}

/// Encodes `response` to the request `head`. An invalid handler header becomes a 500.
fn encode(
    out: &mut OutBuf,
    response: Response,
    head: &RequestHead<'_, '_>,
    keep_alive: bool,
    common: &CommonLines,
    worker: &Worker,
) -> (Encoded, u16) {
    let is_head = head.method == Method::Head;
    let status = response.status;
    // A handler asking to close (as the panic path does) is honoured, and never written as a header.
    let keep_alive = keep_alive
        && !response
            .headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("connection") && v.eq_ignore_ascii_case(b"close"));
    let framing = match encode_head(out, &response, head.version, keep_alive, is_head, common, worker) {
        Some(f) => f,
        None => {
            encode_simple(out, &Response::error(500), head.version, false, is_head, common, worker);
            return (Encoded::Done { keep_alive: false }, 500);
        }
    };
    let keep_alive = keep_alive && framing != ResponseFraming::CloseDelimited;
    let encoded = match (framing, response.body) {
        (ResponseFraming::NoBody, _) | (_, Body::Empty) => Encoded::Done { keep_alive },
        (_, Body::Full(bytes)) if bytes.len() <= INLINE_BODY => {
            out.put(&bytes);
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

/// Encodes a response the server made itself (errors): head and body, no streaming.
fn encode_simple(
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
                && !response.block.as_ref().is_some_and(|b| b.has(n))
        })
        .map(|(n, v)| (n.as_str(), v.as_bytes()));
    let only_type: [(&str, &[u8]); 1];
    let mut inline: [(&str, &[u8]); INLINE];
    let heap: Vec<(&str, &[u8])>;
    let count = response.headers.len() + 1 + config.headers.len();
    let mut block = response.block.as_deref();
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
        if worker.log_budget.allow() {
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
            if worker.log_budget.allow() {
                tracing::error!(
                    header = name,
                    "handler returned an invalid or reserved header; answered 500"
                );
            }
            None
        }
    }
}

/// Sends what [`encode`] left after the queue: the queue (the head and the answers before it)
/// and then the body, streamed, from a file, or large in memory. Returns whether the connection
/// stays open.
async fn send_rest(
    encoded: Encoded,
    out: &mut OutBuf,
    io: &mut Transport,
    worker: &Worker,
    key: usize,
    now: Instant,
) -> io::Result<bool> {
    match encoded {
        Encoded::Done { keep_alive } => Ok(keep_alive),
        Encoded::Stream {
            stream,
            framing,
            keep_alive,
        } => send_stream(out, io, worker, key, stream, framing)
            .await
            .map(|()| keep_alive),
        Encoded::File { file, keep_alive } => {
            io.cork(true);
            io.flush(out, worker, key, now).await?;
            io.send_file(file, worker, key).await?;
            io.cork(false);
            Ok(keep_alive)
        }
        Encoded::Large { bytes, keep_alive } => {
            io.flush(out, worker, key, now).await?;
            io.send_bytes(bytes, worker, key).await?;
            Ok(keep_alive)
        }
    }
}

/// Sends a streamed body: the queued head first, then each piece, chunk-framed when asked.
async fn send_stream(
    out: &mut OutBuf,
    io: &mut Transport,
    worker: &Worker,
    key: usize,
    mut body: Box<dyn crate::app::handler::BodyStream>,
    framing: ResponseFraming,
) -> io::Result<()> {
    let mut sent: u64 = 0;
    loop {
        // Nothing is held while the stream works: a stream that stalls must not pin a fixed
        // buffer (the pool is shared by every connection of this core).
        if !out.is_empty() {
            io.flush(out, worker, key, Instant::now()).await?;
        }
        worker.conns.set(key, Phase::Handler, None);
        let mut next = body.next_chunk();
        let piece = std::future::poll_fn(|cx| match catch_unwind(AssertUnwindSafe(|| next.as_mut().poll(cx))) {
            Ok(poll) => poll,
            Err(_) => Poll::Ready(Err(io::Error::other("response body stream panicked"))),
        })
        .await;
        drop(next);
        let piece = match piece {
            Ok(piece) => piece,
            Err(e) => {
                if worker.log_budget.allow() {
                    tracing::error!("response body failed mid-stream: {e}; closing the connection");
                }
                return Err(e);
            }
        };
        let Some(piece) = piece else { break };
        if piece.is_empty() {
            continue;
        }
        sent += piece.len() as u64;
        match framing {
            ResponseFraming::Chunked => {
                write_chunk_header(out, piece.len());
                out.put(&piece);
                out.put(b"\r\n");
            }
            ResponseFraming::Length(n) if sent > n => {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "body longer than announced"));
            }
            _ => {
                io.flush(out, worker, key, Instant::now()).await?;
                io.send_bytes(piece, worker, key).await?;
            }
        }
    }
    match framing {
        ResponseFraming::Chunked => write_last_chunk(out),
        ResponseFraming::Length(n) if sent != n => {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "body shorter than announced",
            ));
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringd_core::{header_slots, Limits};

    fn redirect(raw: &[u8], port: u16) -> (u16, Option<String>) {
        let mut slots = header_slots();
        let head = match parse_request(raw, &Limits::default(), &mut slots) {
            Ok(Parsed::Complete(head)) => head,
            other => panic!("not a request: {other:?}"),
        };
        let r = to_https(&head, port);
        let location = r
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("location"))
            .map(|(_, v)| String::from_utf8(v.to_vec()).unwrap());
        (r.status, location)
    }

    #[test]
    fn redirects_keep_host_path_and_query() {
        // (Hosts the parser refuses never get here: 400 InvalidHost.)
        let cases: [(&[u8], u16, u16, Option<&str>); 6] = [
            (
                b"GET /a?b=1 HTTP/1.1\r\nHost: example.org\r\n\r\n",
                443,
                301,
                Some("https://example.org/a?b=1"),
            ),
            (
                b"HEAD / HTTP/1.1\r\nHost: example.org:80\r\n\r\n",
                8443,
                301,
                Some("https://example.org:8443/"),
            ),
            (
                b"POST /f HTTP/1.1\r\nHost: [::1]:80\r\nContent-Length: 0\r\n\r\n",
                443,
                308,
                Some("https://[::1]/f"),
            ),
            (
                b"GET http://h.example/p?q HTTP/1.1\r\nHost: h.example\r\n\r\n",
                443,
                301,
                Some("https://h.example/p?q"),
            ),
            (
                b"GET http://h.example HTTP/1.1\r\nHost: h.example\r\n\r\n",
                443,
                301,
                Some("https://h.example/"),
            ),
            (b"GET / HTTP/1.0\r\n\r\n", 443, 400, None),
        ];
        for (raw, port, status, location) in cases {
            let (s, l) = redirect(raw, port);
            assert_eq!(
                (s, l.as_deref()),
                (status, location),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
    }
}
