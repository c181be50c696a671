//! A raw HTTP/2 client for tests: frames written by hand (and HPACK literals), frames read back
//! undecoded, so that a test can send what no well-behaved client would.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const CONTINUATION: u8 = 0x9;
pub const END_STREAM: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;

pub const PROTOCOL_ERROR: u32 = 0x1;
pub const FLOW_CONTROL_ERROR: u32 = 0x3;
pub const ENHANCE_YOUR_CALM: u32 = 0xb;

/// A frame as read: type, flags, stream, payload.
pub type Frame = (u8, u8, u32, Vec<u8>);

/// A client that writes frames by hand and reads the server's frames back.
pub struct Raw {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    /// Connects and sends the preface and an empty SETTINGS.
    pub fn open(addr: SocketAddr) -> Raw {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        s.set_nodelay(true).unwrap();
        let mut raw = Raw { s, buf: Vec::new() };
        raw.send_bytes(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        raw.frame(SETTINGS, 0, 0, &[]);
        raw
    }

    pub fn send_bytes(&mut self, bytes: &[u8]) -> bool {
        self.s.write_all(bytes).is_ok()
    }

    pub fn encode(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let n = payload.len();
        let mut f = vec![(n >> 16) as u8, (n >> 8) as u8, n as u8, kind, flags];
        f.extend_from_slice(&stream.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    pub fn frame(&mut self, kind: u8, flags: u8, stream: u32, payload: &[u8]) -> bool {
        self.send_bytes(&Self::encode(kind, flags, stream, payload))
    }

    /// Many frames in one write (a flood arrives faster than one frame a write).
    pub fn frames(&mut self, frames: impl IntoIterator<Item = Vec<u8>>) -> bool {
        let all: Vec<u8> = frames.into_iter().flatten().collect();
        all.chunks(64 * 1024).all(|c| self.send_bytes(c))
    }

    /// The next frame, waiting up to `wait`; `None` at the end of the stream or the wait.
    pub fn read_frame(&mut self, wait: Duration) -> Option<Frame> {
        let deadline = Instant::now() + wait;
        loop {
            if self.buf.len() >= 9 {
                let n = (usize::from(self.buf[0]) << 16) | (usize::from(self.buf[1]) << 8) | usize::from(self.buf[2]);
                if self.buf.len() >= 9 + n {
                    let f: Vec<u8> = self.buf.drain(..9 + n).collect();
                    let stream = u32::from_be_bytes([f[5], f[6], f[7], f[8]]) & 0x7fff_ffff;
                    return Some((f[3], f[4], stream, f[9..].to_vec()));
                }
            }
            if Instant::now() >= deadline {
                return None;
            }
            let mut chunk = [0u8; 65536];
            match self.s.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => return None,
            }
        }
    }

    /// Reads frames until a GOAWAY (its error code) or the end of the connection (`None`),
    /// within `wait`. Panics if the connection is still open and silent after it.
    pub fn goaway(&mut self, wait: Duration) -> Option<u32> {
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            match self.read_frame(Duration::from_millis(500)) {
                Some((GOAWAY, _, _, p)) => return Some(u32::from_be_bytes([p[4], p[5], p[6], p[7]])),
                Some(_) => {}
                None if self.closed() => return None,
                None => {}
            }
        }
        panic!("no GOAWAY and no close within {wait:?}");
    }

    /// Whether the server closed the connection (a read gives EOF or a reset).
    pub fn closed(&mut self) -> bool {
        let mut b = [0u8; 1024];
        match self.s.read(&mut b) {
            Ok(0) => true,
            Ok(n) => {
                self.buf.extend_from_slice(&b[..n]);
                false
            }
            Err(e) => !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        }
    }
}

/// An HPACK header block of literal fields without indexing (RFC 7541 §6.2.2), names new.
pub fn block(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut b = Vec::new();
    for (name, value) in fields {
        b.push(0x00);
        hpack_string(&mut b, name.as_bytes());
        hpack_string(&mut b, value.as_bytes());
    }
    b
}

pub fn hpack_string(b: &mut Vec<u8>, s: &[u8]) {
    hpack_int(b, 0, 7, s.len());
    b.extend_from_slice(s);
}

pub fn hpack_int(b: &mut Vec<u8>, first: u8, prefix: u32, mut n: usize) {
    let max = (1usize << prefix) - 1;
    if n < max {
        b.push(first | n as u8);
        return;
    }
    b.push(first | max as u8);
    n -= max;
    while n >= 128 {
        b.push((n % 128 + 128) as u8);
        n /= 128;
    }
    b.push(n as u8);
}

pub fn get(path: &str) -> Vec<u8> {
    block(&[
        (":method", "GET"),
        (":scheme", "http"),
        (":path", path),
        (":authority", "t"),
    ])
}
