//! One TLS connection's record layer, on byte buffers: rustls never touches the socket. The
//! connection's own io_uring reads bring ciphertext here ([`TlsSession::receive`]) and take
//! ciphertext away ([`TlsSession::take_ciphertext`]); `io/stream.rs` does that I/O.

use std::io::{self, BufRead, Write};
use std::sync::Arc;

use rustls::ServerConnection;

/// The smallest ciphertext read; it grows when reads fill it, up to one full record.
const CIPHER_IN_START: usize = 4096;
/// A TLS record: 16 KiB of plaintext, plus header, padding and tag.
const CIPHER_IN_MAX: usize = 16 * 1024 + 256 + 5;
/// A ciphertext write buffer above this is not kept after its send: small responses reuse it,
/// and an idle connection does not hold what a large one needed (rustls' own state, not this
/// buffer, is most of an idle TLS connection's memory).
const CIPHER_OUT_KEEP: usize = 16 * 1024;

/// Why feeding ciphertext failed.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The first bytes are a plain HTTP request, sent to a TLS port.
    PlainHttp,
    /// The TLS protocol failed (garbage, a bad handshake, a bad record); an alert is queued.
    Tls(rustls::Error),
    /// rustls refused the bytes (buffers full: the peer sends faster than the protocol allows).
    Io(io::Error),
}

pub(crate) struct TlsSession {
    pub(crate) conn: ServerConnection,
    /// Lent to each ciphertext read.
    pub(crate) cipher_in: Vec<u8>,
    /// Lent to each ciphertext write.
    cipher_out: Vec<u8>,
    /// Whether the client has sent anything yet (only its first bytes can be plain HTTP).
    started: bool,
    /// The client sent `close_notify`: it sends nothing more.
    pub(crate) peer_closed: bool,
    /// The server queued its `close_notify`.
    pub(crate) sent_close_notify: bool,
    /// Ciphertext at the front of `cipher_in` that was read before the session started (it
    /// followed a PROXY protocol header), for the first read to take instead of the socket's.
    preloaded: usize,
}

impl TlsSession {
    pub(crate) fn new(config: Arc<rustls::ServerConfig>) -> Result<TlsSession, rustls::Error> {
        Ok(TlsSession {
            conn: ServerConnection::new(config)?,
            cipher_in: Vec::with_capacity(CIPHER_IN_START),
            cipher_out: Vec::new(),
            started: false,
            peer_closed: false,
            sent_close_notify: false,
            preloaded: 0,
        })
    }

    /// Takes ciphertext that was read before the session started; the next read feeds it to
    /// rustls ([`TlsSession::take_preloaded`]) before reading the socket again.
    pub(crate) fn preload(&mut self, cipher: &[u8]) {
        self.cipher_in.clear();
        self.cipher_in.extend_from_slice(cipher);
        self.preloaded = cipher.len();
    }

    /// How many preloaded bytes are at the front of the read buffer, for
    /// [`TlsSession::receive`] (0: none, read the socket); they are taken once.
    pub(crate) fn take_preloaded(&mut self) -> usize {
        std::mem::take(&mut self.preloaded)
    }

    /// Takes the ciphertext read buffer for the next read, empty.
    pub(crate) fn read_buf(&mut self) -> Vec<u8> {
        let mut buf = std::mem::take(&mut self.cipher_in);
        buf.clear();
        if buf.capacity() == 0 {
            buf.reserve(CIPHER_IN_START);
        }
        buf
    }

    /// Gives the read buffer back after a read of `n` bytes; a read that filled it doubles it.
    pub(crate) fn return_read_buf(&mut self, mut buf: Vec<u8>, n: usize) {
        if n == buf.capacity() && buf.capacity() < CIPHER_IN_MAX {
            buf.reserve((buf.capacity() * 2).min(CIPHER_IN_MAX) - buf.len());
        }
        self.cipher_in = buf;
    }

    /// Feeds the first `n` bytes of the read buffer to rustls and appends the plaintext they
    /// carried to `plain`. Returns how many plaintext bytes were appended (0 while handshaking).
    pub(crate) fn receive(&mut self, n: usize, plain: &mut Vec<u8>) -> Result<usize, Failure> {
        let mut cipher = &self.cipher_in[..n];
        if !self.started && !cipher.is_empty() {
            self.started = true;
            // A TLS connection starts with a handshake record (0x16); a plain request with a
            // method name.
            if cipher[0].is_ascii_uppercase() {
                return Err(Failure::PlainHttp);
            }
        }
        let mut got = 0;
        while !cipher.is_empty() {
            let taken = self.conn.read_tls(&mut cipher).map_err(Failure::Io)?;
            let state = self.conn.process_new_packets().map_err(Failure::Tls)?;
            let mut ready = state.plaintext_bytes_to_read();
            while ready > 0 {
                let mut reader = self.conn.reader();
                let chunk = reader.fill_buf().map_err(Failure::Io)?;
                let len = chunk.len().min(ready);
                plain.extend_from_slice(&chunk[..len]);
                reader.consume(len);
                ready -= len;
                got += len;
            }
            if state.peer_has_closed() {
                self.peer_closed = true;
            }
            if taken == 0 {
                // Cannot happen while rustls has room; never spin if it does.
                return Err(Failure::Io(io::Error::other("TLS input not accepted")));
            }
        }
        Ok(got)
    }

    /// Encrypts up to `max` bytes of `plain`; returns how many were taken.
    pub(crate) fn encrypt(&mut self, plain: &[u8], max: usize) -> io::Result<usize> {
        let mut taken = 0;
        while taken < plain.len() && taken < max {
            let end = plain.len().min(max);
            let n = self.conn.writer().write(&plain[taken..end])?;
            if n == 0 {
                break;
            }
            taken += n;
        }
        Ok(taken)
    }

    /// Everything rustls wants to send (handshake messages, alerts, encrypted records), in a
    /// buffer to lend to a write; empty when there is nothing.
    pub(crate) fn take_ciphertext(&mut self) -> io::Result<Vec<u8>> {
        let mut out = std::mem::take(&mut self.cipher_out);
        out.clear();
        while self.conn.wants_write() {
            self.conn.write_tls(&mut out)?;
        }
        Ok(out)
    }

    /// Gives the write buffer back after its send.
    pub(crate) fn return_write_buf(&mut self, buf: Vec<u8>) {
        if buf.capacity() <= CIPHER_OUT_KEEP {
            self.cipher_out = buf;
        }
    }
}
