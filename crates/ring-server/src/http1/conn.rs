//! [`Conn`]: one HTTP/1.1 connection's state and loop.
//!
//! A connection's task keeps room for its future's largest state for as long as it lives, idle
//! or not, so the states of answering a request, of TLS and of a plain read are boxed where
//! they are awaited, and the wait on the worker's receive ring (where idle connections are) is
//! kept as small as it can be. For the same reason [`serve`], [`Conn::run`] and
//! [`Conn::read_head`] are plain functions returning `async` blocks: an `async fn` keeps its
//! arguments and a copy of `self` in its future.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio_uring::net::TcpStream;

use crate::heap::{boxed, recycled};
use crate::http2;
use crate::io::buf::{DetachedSend, OutBuf, ReadBuf, READ_BUF_KEEP};
use crate::io::conns::Phase;
use crate::io::listener::ListenerKind;
use crate::io::stream::Transport;
use crate::tls::session::TlsSession;
use crate::worker::{turn_started, ConnSlot, Worker};

/// How long a closing connection may keep sending before it is cut (nginx `lingering_timeout`).
const LINGER: Duration = Duration::from_secs(5);
/// How much a closing connection may send before it is cut (nginx stops after `lingering_time`).
const LINGER_BYTES: usize = 1 << 20;

/// Sets up one accepted connection and returns the future that serves it until it closes
/// (`None`: it could not be set up, and is closed). `initial` is what was already read from
/// the connection (after a PROXY protocol header): the start of its byte stream.
pub(crate) fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    worker: std::rc::Rc<Worker>,
    kind: ListenerKind,
    initial: &[u8],
) -> Option<impl Future<Output = ()>> {
    let (io, out) = match kind {
        ListenerKind::Tls => {
            // The configuration in force when the client connected: a reload changes the
            // certificate for new handshakes only.
            let config = worker.tls()?;
            match TlsSession::new(config) {
                Ok(mut session) => {
                    session.preload(initial);
                    (Transport::tls(stream, session), Some(worker.io.buffers.tls_out_buf()))
                }
                Err(e) => {
                    tracing::error!("cannot start a TLS session: {e}");
                    return None;
                }
            }
        }
        // A plain connection takes an output buffer from the worker when it answers.
        ListenerKind::Plain | ListenerKind::Redirect => (Transport::plain(stream), None),
    };
    let redirect = (kind == ListenerKind::Redirect).then_some(worker.https_port);
    // With the worker's receive ring, a plain connection holds a read buffer only while a
    // request is in it (see `Conn::read_head`).
    let mut rbuf = ReadBuf::new(io.provided(&worker.io).is_some());
    if !io.is_tls() && !initial.is_empty() {
        rbuf.receive(&worker.io.buffers, initial);
    }
    let conn = Conn {
        slot: ConnSlot::open(worker, io.stream()),
        io,
        out,
        redirect,
        peer,
        rbuf,
        served: 0,
        head_started: None,
        // Set up on the executor as its accept is served: its turn clock is the present, to
        // within a turn.
        now: turn_started(),
        body: None,
        body_state: BodyState::Unread,
        sending: None,
    };
    Some(conn.run())
}

/// Where the body of the request at the front of the read buffer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BodyState {
    /// Not read yet (or in the read buffer right after the head).
    Unread,
    /// De-chunked into `Conn::body`; the chunked encoding took this many bytes after the head
    /// (4 bytes, not 8: every connection holds this state).
    Chunked(u32),
    /// Not read: the handler does not want it and the client is waiting for `100 Continue`.
    /// The response closes the connection (RFC 9110 §10.1.1).
    Skipped,
}

/// How a connection ends.
pub(super) enum Close {
    /// Cleanly, after a response that said `Connection: close`, or because the client left.
    Now,
    /// After an error response: drain what the client still sends before closing, so that our
    /// response is not destroyed by a reset (unread data at close makes the kernel send RST).
    Linger,
    /// The client speaks HTTP/2: the connection goes to the HTTP/2 side.
    Http2,
}

pub(super) struct Conn {
    /// First, so that it drops first: the slot's handle to the socket goes before the socket
    /// itself (which closes once the last operation in flight on it has completed).
    pub(super) slot: ConnSlot,
    pub(super) io: Transport,
    /// The output buffer: a plain connection takes one from the worker's free list when it
    /// answers and gives it back once it has sent everything (an idle connection holds none);
    /// a TLS connection keeps its own.
    pub(super) out: Option<Box<OutBuf>>,
    /// A plain listener that sends every request to `https://` on this port.
    pub(super) redirect: Option<u16>,
    pub(super) peer: SocketAddr,
    pub(super) rbuf: ReadBuf,
    pub(super) served: u64,
    /// When the first byte of the current, incomplete head arrived (header timeout).
    pub(super) head_started: Option<Instant>,
    /// This connection's clock, for its deadlines, its requests' latency and the `Date` value:
    /// moved to the executor's turn clock (read once a turn) when a read completes and when a
    /// batch's send has finished, read once the answers of a batch are done
    /// (`Conn::answer_and_send`); not read for every use.
    pub(super) now: Instant,
    /// A de-chunked request body (boxed: most connections never see one, and every idle
    /// connection would hold the empty vector).
    #[expect(clippy::box_collection, reason = "8 bytes in every connection, where a Vec is 24")]
    pub(super) body: Option<Box<Vec<u8>>>,
    pub(super) body_state: BodyState,
    /// A plain connection's last batch of answers, sent from its fixed buffer without waiting
    /// for the send (`OutBuf::send_detached`): finished as soon as the next read completes,
    /// before anything else is sent and before the connection closes (`Conn::try_finish_send`,
    /// `Conn::wait_send`).
    pub(super) sending: Option<DetachedSend>,
}

impl Conn {
    /// The worker's state.
    #[inline]
    pub(super) fn worker(&self) -> &Worker {
        self.slot.worker()
    }

    /// Serves the connection until it ends.
    #[expect(clippy::manual_async_fn, reason = "an async fn would hold the connection twice")]
    fn run(mut self) -> impl Future<Output = ()> {
        async move {
            // Bytes handed over with the connection may hold whole requests: answer them
            // before waiting for more.
            let mut read_first = self.rbuf.is_drained();
            let close = loop {
                if read_first {
                    let ended = !matches!(self.read_head().await, Ok(n) if n > 0);
                    // The last batch's send is finished before anything else is sent, and before
                    // the connection closes: a client that half-closed after its requests still
                    // gets every answer. Boxed where it waits: a connection waits there only when
                    // its client is slow to read its answers.
                    if self.sending.is_some() {
                        let sent = match self.try_finish_send() {
                            Some(res) => res.is_ok(),
                            None => boxed(|| self.wait_send()).await.is_ok(),
                        };
                        if !sent {
                            break Close::Now;
                        }
                    }
                    if ended {
                        break Close::Now;
                    }
                }
                read_first = true;
                if self.served == 0 {
                    match self.speaks_h2() {
                        Some(true) => break Close::Http2,
                        // The start of the HTTP/2 preface, so far: read the rest.
                        None => continue,
                        Some(false) => {}
                    }
                }
                let first = self.served == 0;
                // Answering runs on the heap: its states are a connection's largest, and an idle
                // connection holds none of them. The memory is the worker's, reused batch after
                // batch (`recycled`).
                if let Some(close) = recycled(|| self.answer_and_send()).await {
                    break close;
                }
                self.compact();
                // Kept open after its first answers: likely to serve more, so worth a slot in the
                // ring's file table (boxed: an idle connection holds none of this state).
                if first && self.served > 0 {
                    boxed(|| self.io.register_fixed(self.slot.io())).await;
                }
                // Everything is sent: a plain connection gives its output buffer back while it waits.
                self.give_out_back();
            };
            // Only a wait for the next request leaves a send unfinished, and the loop finishes it
            // after every read.
            debug_assert!(self.sending.is_none());
            match close {
                Close::Linger => boxed(|| self.linger()).await,
                Close::Now => {
                    self.io.close_notify(self.slot.io()).await;
                    self.give_back();
                }
                Close::Http2 => {
                    // Everything HTTP/1.1 held goes now, not when the HTTP/2 connection ends.
                    let Conn {
                        slot,
                        io,
                        rbuf,
                        peer,
                        out,
                        body,
                        ..
                    } = self;
                    drop((out, body));
                    let handoff = http2::Handoff {
                        read: rbuf.into_pending(),
                        slot,
                        transport: io,
                        peer,
                    };
                    boxed(|| http2::serve(handoff)).await
                }
            }
        }
    }

    /// As a plain connection ends: its read buffer and its output buffer (sent, holding no fixed
    /// buffer) go back to the worker's free lists, as between requests, for the next connection
    /// to take instead of allocating (dropping them would free what the next one allocates).
    /// Nothing read and not consumed is kept: the connection is done with it.
    fn give_back(&mut self) {
        if self.io.is_tls() {
            return;
        }
        self.rbuf.clear();
        self.rbuf.compact(&self.slot.worker().io.buffers, true);
        self.give_out_back();
    }

    /// A plain connection's output buffer, once sent and holding no fixed buffer, goes back to
    /// the worker's free list (a TLS connection keeps its own, a heap-only one: `OutBuf::heap_only`).
    #[inline]
    fn give_out_back(&mut self) {
        if self.io.is_tls() {
            return;
        }
        if let Some(out) = self.out.take_if(|o| o.is_empty() && o.fixed_index().is_none()) {
            self.worker().io.buffers.give_out_buf(out);
        }
    }

    /// Whether a new connection speaks HTTP/2: TLS that chose `h2` by ALPN, or, where h2c is
    /// on, a plain connection that opens with the HTTP/2 preface (RFC 9113 §3.3, prior
    /// knowledge). `None` while what arrived is the start of the preface.
    fn speaks_h2(&self) -> Option<bool> {
        if self.io.is_tls() {
            return Some(self.io.alpn_h2());
        }
        if self.redirect.is_some() || !self.worker().config().http2.cleartext {
            return Some(false);
        }
        let read = self.rbuf.pending();
        let n = read.len().min(http2::PREFACE.len());
        if read[..n] != http2::PREFACE[..n] {
            Some(false)
        } else if n < http2::PREFACE.len() {
            None
        } else {
            Some(true)
        }
    }

    /// What the connection waits for now, and until when.
    fn wait(&self) -> (Phase, Instant) {
        // The timeouts in force, from the worker's I/O settings (a reload replaces them with the
        // configuration): no `Rc` of the configuration taken and dropped for every receive.
        let worker = self.worker();
        let t = worker.io.settings();
        let idle = self.rbuf.is_drained();
        if idle && worker.is_draining() {
            // Draining: one last request may still be on its way (RFC 9112 §9.6).
            (Phase::Idle, self.now + t.drain_idle_timeout)
        } else if idle && self.served > 0 {
            (Phase::Idle, self.now + t.keepalive_timeout)
        } else if idle {
            // A new connection's first request is timed like a head, as nginx's
            // client_header_timeout: a client that connects and says nothing is not idle.
            (Phase::Fresh, self.now + t.header_timeout)
        } else {
            // `read_head` records when the head started.
            (Phase::Head, self.head_started.unwrap_or(self.now) + t.header_timeout)
        }
    }

    /// Reads more of a request head (or the first byte of the next request). Every idle
    /// connection waits in this future.
    #[expect(clippy::manual_async_fn, reason = "an async fn would hold `self` twice")]
    fn read_head(&mut self) -> impl Future<Output = io::Result<usize>> + '_ {
        async move {
            if self.rbuf.is_drained() {
                if let Some(ring) = self.io.provided(&self.slot.worker().io) {
                    // Waits holding no read buffer: the kernel picks one from the worker's ring when
                    // the request arrives, and `rbuf` holds it while the requests in it are answered.
                    // Only the operation is kept across the wait (the phase and deadline are worked
                    // out again if it falls back).
                    let (phase, deadline) = self.wait();
                    let conn = self.slot.io();
                    let received = self.io.recv_provided(ring, conn, phase, deadline).await;
                    Transport::received(conn, &received);
                    self.now = turn_started();
                    match received {
                        Ok(Some(buf)) => {
                            let n = buf.len();
                            self.rbuf.adopt(&conn.io.buffers, buf);
                            return Ok(n);
                        }
                        Ok(None) => return Ok(0),
                        // The ring is empty for now: a plain read, below.
                        Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => conn.stats().receive_empty.add(1),
                        Err(e) => return Err(e),
                    }
                }
            }
            if !self.rbuf.is_drained() {
                self.head_started.get_or_insert(self.now);
            }
            let (phase, deadline) = self.wait();
            self.rbuf.make_head_room();
            // Boxed: unboxed, a plain read's state (an owned buffer in flight) would make every
            // connection's future larger than the wait on the ring that idle connections are in.
            boxed(|| self.read(phase, deadline)).await
        }
    }

    /// One read into the spare room of the read buffer.
    pub(super) async fn read(&mut self, phase: Phase, deadline: Instant) -> io::Result<usize> {
        let (buf, room) = self.rbuf.for_read();
        let res = self.io.read(buf, self.slot.io(), phase, deadline).await;
        self.now = turn_started();
        if let Ok(n) = res {
            self.rbuf.after_read(n, room);
        }
        res
    }

    /// Submits the send of a batch's answers without waiting for it when it can (a plain
    /// connection that waits for its next request, its answers all in the fixed buffer): `Ok`
    /// with how the connection goes on. `Err(close)` when the send must be awaited
    /// ([`Conn::send_batch`]).
    #[inline]
    pub(super) fn send_batch_detached(&mut self, close: Option<Close>) -> Result<Option<Close>, Option<Close>> {
        if out_is_empty(&self.out) {
            return Ok(close);
        }
        if close.is_none() && self.sending.is_none() {
            if let Some(stream) = self.io.plain_stream() {
                // The send goes on without the task (its completion wakes no one), finished
                // after the next read.
                if let Some(send) = out_buf(&mut self.out, &self.slot).send_detached(stream) {
                    self.sending = Some(send);
                    return Ok(None);
                }
            }
        }
        Err(close)
    }

    /// Sends a batch's answers and waits until they are sent; `Some` when the connection must
    /// close.
    pub(super) async fn send_batch(&mut self, close: Option<Close>) -> Option<Close> {
        let out = out_buf(&mut self.out, &self.slot);
        let conn = self.slot.io();
        let sent = match self.io.plain_stream() {
            // Plain: the buffer's own send, one future layer less than through
            // `Transport::flush` (which does the same for a plain stream).
            Some(stream) => {
                conn.arm_send(out.fixed_index(), self.now);
                out.flush(stream).await
            }
            None => self.io.flush(out, conn, self.now).await,
        };
        // What follows is a wait for the next request (or the close), whose deadline is
        // counted in seconds: the executor's turn clock is enough (the send may have waited,
        // so the clock moves on; the next request's handler is timed from its own read).
        self.now = self.now.max(turn_started());
        if sent.is_err() {
            return Some(Close::Now);
        }
        close
    }

    /// Finishes the last batch's detached send if it is over (it nearly always is by the next
    /// read): `Some` with its outcome, `None` while it is in flight (then `Conn::wait_send`).
    #[inline]
    fn try_finish_send(&mut self) -> Option<io::Result<()>> {
        let send = self.sending.take()?;
        match send.try_finish(self.slot.io().stats()) {
            Ok(res) => Some(res),
            Err(send) => {
                self.sending = Some(send);
                None
            }
        }
    }

    /// Waits for the detached send in flight, with the send timeout armed.
    async fn wait_send(&mut self) -> io::Result<()> {
        let Some(send) = self.sending.take() else {
            return Ok(());
        };
        let conn = self.slot.io();
        conn.arm_send(None, turn_started());
        let res = send.finish(conn.stats()).await;
        conn.disarm();
        res
    }

    /// Sends what is queued; the connection's clock is read again afterwards, since a send may
    /// wait (up to the send timeout) and what follows times itself from the clock.
    pub(super) async fn flush(&mut self) -> io::Result<()> {
        let res = self.send_queued().await;
        self.now = Instant::now();
        res
    }

    /// Sends what is queued, leaving the connection's clock as it was. A plain function
    /// returning the transport's future: an `async fn` would be one more state around it,
    /// moved into place and polled in turn.
    fn send_queued(&mut self) -> impl Future<Output = io::Result<()>> + '_ {
        let out = out_buf(&mut self.out, &self.slot);
        self.io.flush(out, self.slot.io(), self.now)
    }

    /// Moves an incomplete request to the front of the buffer and returns memory after a large
    /// request.
    #[inline]
    fn compact(&mut self) {
        let ring = self.io.provided(&self.slot.worker().io).is_some();
        self.rbuf.compact(&self.slot.worker().io.buffers, ring);
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
        self.io.close_notify(self.slot.io()).await;
        if self.io.shutdown_write().is_err() {
            return;
        }
        let deadline = Instant::now() + LINGER;
        let mut discarded = 0;
        self.rbuf.clear();
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
#[inline]
pub(super) fn out_buf<'a>(out: &'a mut Option<Box<OutBuf>>, slot: &ConnSlot) -> &'a mut OutBuf {
    out.get_or_insert_with(|| slot.worker().io.buffers.take_out_buf())
}

/// Whether nothing waits to be sent (no output buffer, or an empty one).
pub(super) fn out_is_empty(out: &Option<Box<OutBuf>>) -> bool {
    out.as_ref().is_none_or(|o| o.is_empty())
}
