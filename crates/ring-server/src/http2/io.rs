//! [`H2Io`]: tokio's `AsyncRead + AsyncWrite` over a connection's io_uring socket (plain or
//! TLS), for the `h2` engine, which drives its I/O by polling.
//!
//! tokio-uring's operations own their buffers and are not cancelled when their future is
//! dropped (tokio-uring issue #318: an adapter that makes a new read each poll loses data). So:
//!
//! - At most one read is in flight, kept here across polls until it completes; what it brought
//!   is handed out over as many `poll_read` calls as the engine's (sometimes tiny) buffers take.
//!   Plain reads come from the worker's receive ring when it has one, like HTTP/1.1's.
//! - At most one write is in flight. `poll_write` copies into `wbuf` (plain) or encrypts into
//!   the TLS session (bounded by rustls' buffer limit); `poll_flush` submits what is queued when
//!   nothing is in flight and keeps the operation until it completes, sending the rest of a
//!   short write. Past [`WRITE_HIGH_WATER`] queued bytes `poll_write` waits.
//! - Dropping the adapter with an operation in flight shuts the socket down, so that the
//!   operation completes and lets go of the descriptor.
//!
//! Every read and write tells the connection's [`ConnState`], which keeps the connection's
//! deadline. The frames going each way are followed by their 9-byte headers ([`FrameScan`]),
//! which counts `GOAWAY` and `RST_STREAM` in `/metrics` and rations the control frames a peer
//! may send (the engine answers every `SETTINGS` and `PING`, without limit).

use std::future::Future;
use std::io;
use std::net::Shutdown;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_uring::buf::{BoundedBuf, ProvidedBuf, ProvidedRecv, Slice};
use tokio_uring::net::TcpStream;
use tokio_uring::{InFlightOneshot, WriteData, WriteTransform};

use super::state::ConnState;
use crate::ops::stats::{Op, WorkerStats};
use crate::tls::session::TlsSession;

/// Bytes `poll_write` queues beyond the write in flight before it waits.
const WRITE_HIGH_WATER: usize = 256 * 1024;
/// An owned read's buffer (no receive ring, the ring empty, or plaintext of TLS records).
const OWNED_READ: usize = 16 * 1024;
/// The client connection preface (RFC 9113 §3.4), which precedes the first frame.
pub(crate) const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

type OwnedRead = Pin<Box<dyn Future<Output = tokio_uring::BufResult<usize, Vec<u8>>>>>;
type InFlightWrite = InFlightOneshot<WriteData<Slice<Vec<u8>>>, WriteTransform<Slice<Vec<u8>>>>;

enum ReadState {
    /// Nothing in flight, nothing buffered.
    Idle,
    /// A receive into a buffer of the worker's ring.
    Provided(ProvidedRecv),
    /// A read into an owned buffer (ciphertext, for TLS).
    Owned(OwnedRead),
    /// Received bytes not yet handed out: `buf[pos..]`.
    Ring { buf: ProvidedBuf, pos: usize },
    /// Bytes not yet handed out: `buf[pos..]` (an owned read's, TLS plaintext, or what the
    /// HTTP/1.1 side had read before it handed the connection over).
    Heap { buf: Vec<u8>, pos: usize },
    /// The peer closed its side.
    Eof,
}

/// The I/O of one HTTP/2 connection.
pub(super) struct H2Io {
    state: Rc<ConnState>,
    stream: TcpStream,
    tls: Option<Box<TlsSession>>,
    read: ReadState,
    /// An emptied owned buffer, for the next owned read.
    read_spare: Vec<u8>,
    /// Plain: bytes accepted by `poll_write`, not yet submitted.
    wbuf: Vec<u8>,
    inflight: Option<InFlightWrite>,
    /// An emptied buffer that was in flight, for the next `wbuf`.
    wspare: Vec<u8>,
    /// A write failed: every later write fails the same way.
    write_error: Option<io::ErrorKind>,
    inbound: FrameScan,
    outbound: FrameScan,
    control: ControlBudget,
}

impl H2Io {
    /// The I/O of a connection whose first `read` bytes (the preface among them) were already
    /// read, in plaintext.
    pub(super) fn new(state: Rc<ConnState>, stream: TcpStream, tls: Option<Box<TlsSession>>, read: Vec<u8>) -> H2Io {
        let rate = state.worker().config().http2.control_frames_per_second;
        H2Io {
            state,
            stream,
            tls,
            read: ReadState::Heap { buf: read, pos: 0 },
            read_spare: Vec::new(),
            wbuf: Vec::new(),
            inflight: None,
            wspare: Vec::new(),
            write_error: None,
            inbound: FrameScan {
                skip: PREFACE.len(),
                ..FrameScan::default()
            },
            outbound: FrameScan::default(),
            control: ControlBudget::new(rate),
        }
    }

    fn stats(&self) -> &WorkerStats {
        self.state.worker().stats()
    }

    /// Starts the next read: ciphertext into the session's buffer, or plain bytes from the ring
    /// (or into an owned buffer without one).
    fn submit_read(&mut self) {
        self.stats().op(Op::Read);
        let ring = match &self.tls {
            None => self.state.worker().io.buffers.receive_ring(),
            Some(_) => None,
        };
        if let Some(ring) = ring {
            self.read = ReadState::Provided(self.stream.recv_provided(ring));
            return;
        }
        let buf = match &mut self.tls {
            Some(session) => session.read_buf(),
            None => {
                let mut buf = std::mem::take(&mut self.read_spare);
                buf.clear();
                buf.reserve(OWNED_READ);
                buf
            }
        };
        let stream = self.stream.clone();
        self.read = ReadState::Owned(Box::pin(async move { stream.read(buf).await }));
    }

    /// Turns what an owned read brought into bytes to hand out (decrypting TLS records).
    fn owned_read_done(&mut self, res: io::Result<usize>, buf: Vec<u8>) -> io::Result<()> {
        self.state.read_done();
        let n = match res {
            Ok(n) => n,
            Err(e) => {
                self.give_back(buf, 0);
                self.read = ReadState::Idle;
                return Err(e);
            }
        };
        self.stats().bytes_in.add(n as u64);
        let Some(session) = &mut self.tls else {
            self.read = if n == 0 {
                self.read_spare = buf;
                ReadState::Eof
            } else {
                ReadState::Heap { buf, pos: 0 }
            };
            return Ok(());
        };
        session.return_read_buf(buf, n);
        if n == 0 {
            self.read = ReadState::Eof;
            return Ok(());
        }
        let mut plain = std::mem::take(&mut self.read_spare);
        plain.clear();
        let received = session.receive(n, &mut plain);
        let peer_closed = session.peer_closed;
        match received {
            Ok(_) if !plain.is_empty() => self.read = ReadState::Heap { buf: plain, pos: 0 },
            Ok(_) if peer_closed => self.read = ReadState::Eof,
            // Only TLS messages (a ticket, a key update): read on.
            Ok(_) => {
                self.read_spare = plain;
                self.read = ReadState::Idle;
            }
            Err(e) => {
                self.read = ReadState::Idle;
                return Err(io::Error::new(io::ErrorKind::InvalidData, format!("{e:?}")));
            }
        }
        Ok(())
    }

    fn give_back(&mut self, buf: Vec<u8>, n: usize) {
        match &mut self.tls {
            Some(session) => session.return_read_buf(buf, n),
            None => self.read_spare = buf,
        }
    }

    /// Hands out up to `out`'s room of `bytes`; returns how many. Frames are followed as they go
    /// to the engine, and a peer over its control-frame budget is flooded (nothing more is read).
    fn hand_out(&mut self, bytes: &[u8], out: &mut ReadBuf<'_>) -> usize {
        let n = bytes.len().min(out.remaining());
        out.put_slice(&bytes[..n]);
        let (stats, control, state) = (self.state.worker().stats(), &mut self.control, &self.state);
        self.inbound.feed(&bytes[..n], |kind, flags| match kind {
            GOAWAY => stats.h2_goaway[RECEIVED].add(1),
            RST_STREAM => stats.h2_rst_stream[RECEIVED].add(1),
            // Control frames the engine answers or acts on, whatever their number.
            SETTINGS | PING | PRIORITY if (kind == PRIORITY || flags & ACK == 0) && !control.take() => state.flood(),
            _ => {}
        });
        n
    }

    /// Polls the write in flight, if any. `Ready(Ok)`: nothing is in flight any more.
    fn poll_inflight(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let Some(op) = self.inflight.as_mut() else {
                return Poll::Ready(Ok(()));
            };
            let (res, slice) = ready!(Pin::new(op).poll(cx));
            self.inflight = None;
            let (begin, end) = (slice.begin(), slice.end());
            let buf = slice.into_inner();
            match res {
                Ok(n) if n > 0 && begin + n < end => {
                    self.stats().bytes_out.add(n as u64);
                    self.stats().op(Op::Write);
                    self.state.writing(true);
                    self.inflight = Some(self.stream.write(buf.slice(begin + n..end)).submit());
                }
                Ok(n) if n > 0 => {
                    self.stats().bytes_out.add(n as u64);
                    self.state.writing(false);
                    self.write_done(buf);
                    return Poll::Ready(Ok(()));
                }
                Ok(_) => {
                    self.write_error = Some(io::ErrorKind::WriteZero);
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                Err(e) => {
                    self.write_error = Some(e.kind());
                    return Poll::Ready(Err(e));
                }
            }
        }
    }

    /// Takes back the buffer of a completed write. A connection with no stream open keeps no
    /// write buffer while it waits (the next write makes one): idle connections are most of
    /// them.
    fn write_done(&mut self, mut buf: Vec<u8>) {
        match &mut self.tls {
            Some(session) => session.return_write_buf(buf),
            None if self.state.is_idle() && self.wbuf.is_empty() => {
                self.wbuf = Vec::new();
                self.wspare = Vec::new();
            }
            None => {
                buf.clear();
                if buf.capacity() <= WRITE_HIGH_WATER {
                    self.wspare = buf;
                }
            }
        }
    }

    /// Whether bytes wait to be submitted.
    fn has_queued(&self) -> bool {
        match &self.tls {
            Some(session) => session.conn.wants_write(),
            None => !self.wbuf.is_empty(),
        }
    }

    /// Submits what is queued if nothing is in flight, and polls the write in flight (so that
    /// its completion wakes this task). `Ready(Ok)`: nothing is in flight.
    fn submit_write(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.inflight.is_none() && self.has_queued() {
            let buf = match &mut self.tls {
                Some(session) => session.take_ciphertext()?,
                None => std::mem::replace(&mut self.wbuf, std::mem::take(&mut self.wspare)),
            };
            let len = buf.len();
            self.stats().op(Op::Write);
            self.state.writing(true);
            self.inflight = Some(self.stream.write(buf.slice(0..len)).submit());
        }
        self.poll_inflight(cx)
    }

    fn check_write_error(&self) -> io::Result<()> {
        match self.write_error {
            Some(kind) => Err(kind.into()),
            None => Ok(()),
        }
    }

    /// Follows the frames of `bytes` on their way out.
    fn scan_out(&mut self, bytes: &[u8]) {
        let stats = self.state.worker().stats();
        self.outbound.feed(bytes, |kind, _| match kind {
            GOAWAY => stats.h2_goaway[SENT].add(1),
            RST_STREAM => stats.h2_rst_stream[SENT].add(1),
            _ => {}
        });
    }
}

impl AsyncRead for H2Io {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.state.is_flooded() {
            // Nothing more of this peer's input is looked at; the GOAWAY goes out and the
            // connection closes.
            return Poll::Pending;
        }
        // TLS messages the session wants sent (tickets, key updates) go out as they come.
        if this.tls.is_some() && this.inflight.is_none() && this.has_queued() {
            if let Poll::Ready(Err(e)) = this.submit_write(cx) {
                return Poll::Ready(Err(e));
            }
        } else if this.inflight.is_some() {
            let _ = this.poll_inflight(cx);
        }
        loop {
            match std::mem::replace(&mut this.read, ReadState::Idle) {
                ReadState::Ring { buf, pos } => {
                    let n = this.hand_out(&buf[pos..], out);
                    if pos + n < buf.len() {
                        this.read = ReadState::Ring { buf, pos: pos + n };
                    }
                    // Else dropping `buf` gives it back to the ring.
                    return Poll::Ready(Ok(()));
                }
                ReadState::Heap { buf, pos } => {
                    let n = this.hand_out(&buf[pos..], out);
                    if pos + n < buf.len() {
                        this.read = ReadState::Heap { buf, pos: pos + n };
                    } else if buf.capacity() <= 2 * OWNED_READ {
                        this.read_spare = buf;
                    }
                    return Poll::Ready(Ok(()));
                }
                ReadState::Eof => {
                    this.read = ReadState::Eof;
                    return Poll::Ready(Ok(()));
                }
                ReadState::Idle => this.submit_read(),
                ReadState::Provided(mut op) => match Pin::new(&mut op).poll(cx) {
                    Poll::Pending => {
                        this.read = ReadState::Provided(op);
                        return Poll::Pending;
                    }
                    Poll::Ready(Ok(Some(buf))) => {
                        this.state.read_done();
                        this.stats().bytes_in.add(buf.len() as u64);
                        this.read = ReadState::Ring { buf, pos: 0 };
                    }
                    Poll::Ready(Ok(None)) => {
                        this.state.read_done();
                        this.read = ReadState::Eof;
                    }
                    Poll::Ready(Err(e)) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                        // The ring is empty for now: this one read goes into an owned buffer.
                        this.stats().receive_empty.add(1);
                        let mut buf = std::mem::take(&mut this.read_spare);
                        buf.clear();
                        buf.reserve(OWNED_READ);
                        let stream = this.stream.clone();
                        this.read = ReadState::Owned(Box::pin(async move { stream.read(buf).await }));
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                },
                ReadState::Owned(mut op) => match op.as_mut().poll(cx) {
                    Poll::Pending => {
                        this.read = ReadState::Owned(op);
                        return Poll::Pending;
                    }
                    Poll::Ready((res, buf)) => this.owned_read_done(res, buf)?,
                },
            }
        }
    }
}

impl AsyncWrite for H2Io {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[io::IoSlice::new(data)])
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        this.check_write_error()?;
        if this.inflight.is_some() {
            // Reaped now, so that a finished write's buffer can take the next batch.
            if let Poll::Ready(Err(e)) = this.poll_inflight(cx) {
                return Poll::Ready(Err(e));
            }
        }
        let mut taken = 0;
        if let Some(session) = &mut this.tls {
            for b in bufs {
                let n = session.encrypt(b, b.len())?;
                taken += n;
                if n < b.len() {
                    break;
                }
            }
        } else {
            if this.wbuf.len() >= WRITE_HIGH_WATER {
                ready!(this.submit_write(cx))?;
                if this.wbuf.len() >= WRITE_HIGH_WATER {
                    return Poll::Pending;
                }
            }
            let room = WRITE_HIGH_WATER - this.wbuf.len();
            for b in bufs {
                let n = b.len().min(room - taken);
                this.wbuf.extend_from_slice(&b[..n]);
                taken += n;
                if taken == room {
                    break;
                }
            }
        }
        if taken == 0 && bufs.iter().any(|b| !b.is_empty()) {
            // The session's buffer is full: send what it holds, then take more.
            ready!(this.submit_write(cx))?;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let mut left = taken;
        for b in bufs {
            let n = b.len().min(left);
            this.scan_out(&b[..n]);
            left -= n;
            if left == 0 {
                break;
            }
        }
        Poll::Ready(Ok(taken))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        this.check_write_error()?;
        loop {
            ready!(this.submit_write(cx))?;
            if !this.has_queued() {
                return Poll::Ready(Ok(()));
            }
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Some(session) = &mut this.tls {
            if !session.conn.is_handshaking() && !session.sent_close_notify {
                session.conn.send_close_notify();
                session.sent_close_notify = true;
            }
        }
        loop {
            this.check_write_error()?;
            ready!(this.submit_write(cx))?;
            if !this.has_queued() && this.inflight.is_none() {
                break;
            }
        }
        Poll::Ready(this.stream.shutdown(Shutdown::Write))
    }
}

impl Drop for H2Io {
    fn drop(&mut self) {
        // An operation in flight keeps the socket open until it completes: a silent peer would
        // never complete a read, a peer that never reads never a write.
        let reading = matches!(self.read, ReadState::Provided(_) | ReadState::Owned(_));
        if reading || self.inflight.is_some() {
            let _ = self.stream.shutdown(Shutdown::Both);
        }
    }
}

const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const PRIORITY: u8 = 0x2;
const ACK: u8 = 0x1;
const SENT: usize = 0;
const RECEIVED: usize = 1;

/// Follows the frames of one direction of a connection by their 9-byte headers (RFC 9113 §4.1),
/// skipping payloads without looking at them.
#[derive(Default)]
struct FrameScan {
    /// Payload (or preface) bytes still to skip.
    skip: usize,
    head: [u8; 9],
    have: usize,
}

impl FrameScan {
    /// Feeds the next bytes; `frame(type, flags)` is called for each frame header completed.
    fn feed(&mut self, mut bytes: &[u8], mut frame: impl FnMut(u8, u8)) {
        while !bytes.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(bytes.len());
                self.skip -= n;
                bytes = &bytes[n..];
                continue;
            }
            let n = (9 - self.have).min(bytes.len());
            self.head[self.have..self.have + n].copy_from_slice(&bytes[..n]);
            self.have += n;
            bytes = &bytes[n..];
            if self.have == 9 {
                self.have = 0;
                let h = self.head;
                self.skip = usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]);
                frame(h[3], h[4]);
            }
        }
    }
}

/// A token bucket for the control frames a peer sends: `rate` a second on average, ten times
/// that at once.
struct ControlBudget {
    tokens: f64,
    rate: f64,
    at: Option<Instant>,
}

impl ControlBudget {
    fn new(rate: u32) -> ControlBudget {
        let rate = f64::from(rate);
        ControlBudget {
            tokens: rate * 10.0,
            rate,
            at: None,
        }
    }

    /// Takes one token; `false` when none is left.
    fn take(&mut self) -> bool {
        let now = Instant::now();
        if let Some(at) = self.at {
            let refill = now.duration_since(at).as_secs_f64() * self.rate;
            self.tokens = (self.tokens + refill).min(self.rate * 10.0);
        }
        self.at = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, len: usize) -> Vec<u8> {
        let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags, 0, 0, 0, 1];
        f.extend(std::iter::repeat_n(0xAB, len));
        f
    }

    #[test]
    fn frames_are_followed_whatever_the_pieces() {
        let mut stream = PREFACE.to_vec();
        for (kind, flags, len) in [
            (SETTINGS, 0, 12),
            (PING, 0, 8),
            (GOAWAY, 0, 8),
            (0, 1, 300),
            (RST_STREAM, 0, 4),
        ] {
            stream.extend(frame(kind, flags, len));
        }
        for piece in [1, 2, 7, 9, 10, 64, stream.len()] {
            let mut scan = FrameScan {
                skip: PREFACE.len(),
                ..FrameScan::default()
            };
            let mut seen = Vec::new();
            for chunk in stream.chunks(piece) {
                scan.feed(chunk, |k, f| seen.push((k, f)));
            }
            assert_eq!(
                seen,
                [(SETTINGS, 0), (PING, 0), (GOAWAY, 0), (0, 1), (RST_STREAM, 0)],
                "pieces of {piece}"
            );
        }
    }

    #[test]
    fn the_control_budget_allows_a_burst_then_the_rate() {
        let mut budget = ControlBudget::new(10);
        let burst = (0..1000).take_while(|_| budget.take()).count();
        assert_eq!(burst, 100);
        assert!(!budget.take());
    }
}
