//! A connection's byte stream: plain TCP, or TLS over it. Either way reading fills the
//! connection's read buffer with plaintext, and sending takes plaintext.
//!
//! The plain path is the one ringd always had: reads into the read buffer's spare capacity,
//! responses sent from a registered fixed buffer. For TLS, ciphertext goes through the same
//! io_uring reads and writes, in buffers the session owns; plaintext is decrypted into the read
//! buffer and responses are encrypted from heap memory (a TLS connection's [`OutBuf`] never
//! takes a fixed buffer: the kernel sends ciphertext, not the response bytes).
//!
//! Deadlines work as for plain connections: every read and write records its phase and
//! deadline in the worker's connection table first, so a client that stalls mid-handshake is
//! cut off by the sweeper at the header timeout (the handshake is read as part of the first
//! request head).

use std::io;
use std::net::Shutdown;
use std::time::Instant;

use tokio_uring::buf::{BoundedBuf, BufRing, ProvidedBuf, ProvidedRecv};
use tokio_uring::net::TcpStream;

use super::buf::OutBuf;
use super::conn_io::{ConnIo, WorkerIo};
use super::conns::Phase;
use super::file::{read_pieces, send_file};
use crate::app::handler::FileBody;
use crate::heap::boxed;
use crate::ops::stats::{Op, Sent};
use crate::tls::session::{Failure, TlsSession};

/// Plaintext encrypted per write: large enough that a big body costs few writes, small enough
/// that its ciphertext buffer is not a burden.
const TLS_WRITE_BATCH: usize = 64 * 1024;
/// Plain sends of a large body go in pieces, each with a fresh send deadline.
const PLAIN_PIECE: usize = 256 * 1024;

/// nginx answers the same way: a browser told `http://` for an HTTPS port sees why.
const PLAIN_HTTP_ON_TLS: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 56\r\nConnection: close\r\n\r\n400 Bad Request: this port speaks HTTPS; use https://.\n";

pub(crate) struct Transport {
    stream: TcpStream,
    tls: Option<Box<TlsSession>>,
}

impl Transport {
    pub(crate) fn plain(stream: TcpStream) -> Transport {
        Transport { stream, tls: None }
    }

    pub(crate) fn tls(stream: TcpStream, session: TlsSession) -> Transport {
        Transport {
            stream,
            tls: Some(Box::new(session)),
        }
    }

    /// The socket (a handle to it: see `ConnTable`).
    pub(crate) fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Places a plain socket in the ring's file table, so that its receives and sends skip the
    /// kernel's lookup of the file (and its reference count) each time; the slot is emptied
    /// when the socket closes. For a connection expected to serve more than one request:
    /// placing and emptying cost an operation each. TLS streams are left as they are.
    pub(crate) async fn register_fixed(&self, conn: ConnIo<'_>) {
        if self.tls.is_none() {
            match self.stream.register_fixed().await {
                Ok(true) => conn.stats().fixed_files.add(1),
                Ok(false) => {}
                Err(e) => tracing::debug!("socket not placed in the file table: {e}"),
            }
        }
    }

    pub(crate) fn shutdown_write(&self) -> io::Result<()> {
        self.stream.shutdown(Shutdown::Write)
    }

    /// One read: plain bytes into the spare capacity of `rbuf`, or, for TLS, as many ciphertext
    /// reads as it takes to get plaintext (handshake included), appended to `rbuf`. `Ok(0)` is
    /// the end of the stream (or the deadline: the sweeper shut the socket down).
    pub(crate) async fn read(
        &mut self,
        rbuf: &mut Vec<u8>,
        conn: ConnIo<'_>,
        phase: Phase,
        deadline: Instant,
    ) -> io::Result<usize> {
        conn.arm(phase, deadline);
        let res = match &mut self.tls {
            None => {
                let buf = std::mem::take(rbuf);
                let filled = buf.len();
                conn.stats().op(Op::Read);
                let (res, slice) = self.stream.read(buf.slice(filled..)).await;
                *rbuf = slice.into_inner();
                if let Ok(n) = res {
                    conn.stats().bytes_in.add(n as u64);
                }
                res
            }
            // Boxed, here and for the other TLS paths: a connection's future is as large as its
            // largest state, and a TLS state would make every plain connection pay for it
            // while it waits (see `http1::conn`).
            Some(session) => boxed(|| read_tls(&self.stream, session, rbuf, conn, phase, deadline)).await,
        };
        // What follows a read is parsing and the handler: the read's deadline must not cut them
        // short.
        conn.disarm();
        res
    }

    /// Whether the TLS handshake chose HTTP/2 (ALPN `h2`).
    pub(crate) fn alpn_h2(&self) -> bool {
        self.tls.as_ref().is_some_and(|s| s.conn.alpn_protocol() == Some(b"h2"))
    }

    /// The socket and, for TLS, the session: for a protocol that drives its own I/O (HTTP/2).
    pub(crate) fn into_parts(self) -> (TcpStream, Option<Box<TlsSession>>) {
        (self.stream, self.tls)
    }

    /// Whether this is TLS (else plain TCP).
    pub(crate) fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The worker's receive ring, for a plain connection (TLS reads ciphertext into its
    /// session's buffers).
    pub(crate) fn provided<'w>(&self, io: &'w WorkerIo) -> Option<&'w BufRing> {
        match self.tls {
            None => io.buffers.receive_ring(),
            Some(_) => None,
        }
    }

    /// One receive into a buffer the kernel picks from `ring` when data arrives, so that
    /// nothing is held while the connection waits. `Ok(None)` is the end of the stream (or the
    /// deadline); an empty ring fails with `ENOBUFS`. Its result goes through
    /// [`Transport::received`].
    ///
    /// The receive is submitted here and the operation is all the caller awaits: every idle
    /// plain connection waits in it, so it is kept as small as it can be (the worker and the
    /// key, which the caller holds anyway, are not in it).
    pub(crate) fn recv_provided(
        &self,
        ring: &BufRing,
        conn: ConnIo<'_>,
        phase: Phase,
        deadline: Instant,
    ) -> ProvidedRecv {
        conn.arm(phase, deadline);
        conn.stats().op(Op::Read);
        self.stream.recv_provided(ring)
    }

    /// Books a completed [`Transport::recv_provided`]: the bytes in, and the connection's
    /// deadline lifted (parsing and the handler have none yet: the read's must not cut them
    /// short).
    pub(crate) fn received(conn: ConnIo<'_>, res: &io::Result<Option<ProvidedBuf>>) {
        if let Ok(Some(buf)) = res {
            conn.stats().bytes_in.add(buf.len() as u64);
        }
        conn.disarm();
    }

    /// The socket of a plain stream (`None` for TLS), for a caller that sends a plain
    /// connection's buffer itself as [`Transport::flush`] would: the send timeout armed with
    /// `ConnIo::arm_send`, then `OutBuf::flush`.
    #[inline]
    pub(crate) fn plain_stream(&self) -> Option<&TcpStream> {
        match self.tls {
            None => Some(&self.stream),
            Some(_) => None,
        }
    }

    /// Sends what `out` holds, with the send timeout armed from `now` (the caller's clock).
    pub(crate) async fn flush(&mut self, out: &mut OutBuf, conn: ConnIo<'_>, now: Instant) -> io::Result<()> {
        match &mut self.tls {
            None => {
                conn.arm_send(out.fixed_index(), now);
                out.flush(&self.stream).await
            }
            Some(session) => {
                let plain = out.take_heap();
                let res = boxed(|| send_tls(&self.stream, session, &plain, conn)).await;
                out.return_heap(plain);
                res
            }
        }
    }

    /// Sends a large body in pieces, re-arming the send timeout for each (nginx's `send_timeout`
    /// is between writes, so a slow but live client is not cut off).
    pub(crate) async fn send_bytes(&mut self, mut bytes: bytes::Bytes, conn: ConnIo<'_>) -> io::Result<()> {
        if let Some(session) = &mut self.tls {
            return send_tls(&self.stream, session, &bytes, conn).await;
        }
        while !bytes.is_empty() {
            let piece = bytes.split_to(bytes.len().min(PLAIN_PIECE));
            conn.arm_send(None, Instant::now());
            let len = piece.len() as u64;
            conn.stats().op(Op::Write);
            let (res, _) = self.stream.write_all(piece).await;
            res?;
            conn.stats().bytes_out.add(len);
        }
        Ok(())
    }

    /// Sends a range of a file: with `sendfile` or spliced on plain TCP (or copied, see
    /// `crate::io::file`), read and encrypted a batch at a time over TLS. The send timeout is
    /// armed for each write, none while the file is read.
    pub(crate) async fn send_file(&mut self, body: FileBody, conn: ConnIo<'_>) -> io::Result<()> {
        // No deadline while the file is read (the send timeout is for the client).
        let disarm = || conn.disarm();
        let res = match &mut self.tls {
            None => {
                let arm = || conn.arm_send(None, Instant::now());
                let mut sent = Sent::default();
                let res = send_file(
                    &self.stream,
                    &body.file,
                    body.start,
                    body.len,
                    conn.io.settings().sendfile,
                    arm,
                    disarm,
                    &mut sent,
                )
                .await;
                conn.stats().file_send(sent);
                res.map(|()| conn.stats().bytes_out.add(body.len))
            }
            Some(session) => {
                let stream = &self.stream;
                let end = body.start + body.len;
                read_pieces(&body.file, body.start, end, TLS_WRITE_BATCH, disarm, async |piece| {
                    (send_tls(stream, session, &piece, conn).await, piece)
                })
                .await
            }
        };
        if let Err(e) = &res {
            if e.kind() == io::ErrorKind::UnexpectedEof && conn.io.log_budget.allow() {
                tracing::error!("{e}; closing the connection");
            }
        }
        res
    }

    /// Plain TCP: holds partial segments back (`TCP_CORK`, nginx's `tcp_nopush`) while a head
    /// and the file after it are sent, so they leave in full segments instead of a small one per
    /// piece; `false` sends what is held. Best effort; nothing for TLS.
    pub(crate) fn cork(&self, on: bool) {
        if self.tls.is_none() {
            let _ = socket2::SockRef::from(&self.stream).set_cork(on);
        }
    }

    /// TLS: tells the client that the server closes (`close_notify`), so that it can tell a
    /// complete response from a truncated one. Best effort; nothing for plain TCP.
    pub(crate) async fn close_notify(&mut self, conn: ConnIo<'_>) {
        if let Some(session) = &mut self.tls {
            if !session.conn.is_handshaking() {
                session.conn.send_close_notify();
                let _ = boxed(|| send_tls(&self.stream, session, &[], conn)).await;
            }
        }
    }
}

async fn read_tls(
    stream: &TcpStream,
    session: &mut TlsSession,
    rbuf: &mut Vec<u8>,
    conn: ConnIo<'_>,
    phase: Phase,
    deadline: Instant,
) -> io::Result<usize> {
    let stats = conn.stats();
    loop {
        if session.conn.wants_write() {
            // Handshake messages, session tickets or a key update, as soon as rustls has them
            // (a client may close right after its Finished; its tickets must not wait).
            send_tls(stream, session, &[], conn).await?;
            conn.arm(phase, deadline);
        }
        if session.peer_closed {
            return Ok(0);
        }
        // Ciphertext that came with a PROXY protocol header is taken before the socket's.
        let n = match session.take_preloaded() {
            0 => {
                let buf = session.read_buf();
                stats.op(Op::Read);
                let (res, buf) = stream.read(buf).await;
                let n = *res.as_ref().unwrap_or(&0);
                session.return_read_buf(buf, n);
                let n = res?;
                stats.bytes_in.add(n as u64);
                if n == 0 {
                    // The client left (or the sweeper cut it off), with or without close_notify:
                    // either way the request in progress cannot complete.
                    return Ok(0);
                }
                n
            }
            n => n,
        };
        let handshaking = session.conn.is_handshaking();
        let received = session.receive(n, rbuf);
        if handshaking && !session.conn.is_handshaking() {
            match session.conn.handshake_kind() {
                Some(rustls::HandshakeKind::Resumed) => stats.tls_resumed.add(1),
                _ => stats.tls_full.add(1),
            }
        }
        if received.is_err() {
            stats.tls_failed.add(1);
        }
        match received {
            Ok(0) => continue,
            Ok(got) => return Ok(got),
            Err(Failure::PlainHttp) => {
                conn.arm_send(None, Instant::now());
                let _ = stream.write_all(PLAIN_HTTP_ON_TLS).await;
                return Err(io::Error::new(io::ErrorKind::InvalidData, "plain HTTP on a TLS port"));
            }
            Err(Failure::Tls(e)) => {
                // rustls queued an alert saying what went wrong; the client may as well hear it.
                let _ = send_tls(stream, session, &[], conn).await;
                tracing::debug!("TLS failed: {e}");
                return Err(io::Error::new(io::ErrorKind::InvalidData, e));
            }
            Err(Failure::Io(e)) => return Err(e),
        }
    }
}

/// Encrypts `plain` (none: only what rustls has queued) and sends it, one batch per write, each
/// write with a fresh send deadline.
async fn send_tls(stream: &TcpStream, session: &mut TlsSession, mut plain: &[u8], conn: ConnIo<'_>) -> io::Result<()> {
    loop {
        let n = session.encrypt(plain, TLS_WRITE_BATCH)?;
        plain = &plain[n..];
        let out = session.take_ciphertext()?;
        if out.is_empty() {
            session.return_write_buf(out);
            if plain.is_empty() {
                return Ok(());
            }
            return Err(io::Error::other("TLS refused to encrypt the response"));
        }
        conn.arm_send(None, Instant::now());
        let len = out.len() as u64;
        conn.stats().op(Op::Write);
        let (res, out) = stream.write_all(out).await;
        session.return_write_buf(out);
        res?;
        conn.stats().bytes_out.add(len);
        if plain.is_empty() && !session.conn.wants_write() {
            return Ok(());
        }
    }
}
