//! Compressing what handlers stream, through the library: each piece a handler yields reaches
//! the client decodable before the next exists, and a body far larger than memory goes out
//! with the server's memory bounded by one encoder and one piece.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ring_server::{
    Body, BodyStream, Bytes, ChunkFuture, Compression, Request, Response, Router, Server, ServerConfig, Workers,
};

fn start(routes: impl Fn(&mut Router) + Send + Sync + 'static) -> SocketAddr {
    let config = ServerConfig {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        workers: Workers::Count(1),
        compression: Compression {
            enabled: true,
            ..Compression::default()
        },
        ..ServerConfig::default()
    };
    let server = Server::new(config, move |_| {
        let mut r = Router::new();
        routes(&mut r);
        r
    })
    .start()
    .expect("server starts");
    let addr = server.local_addrs()[0];
    // The workers run until the test process exits.
    std::mem::forget(server);
    addr
}

/// Two pieces, the second only once `release` is notified.
struct TwoPieces {
    sent: usize,
    release: Arc<tokio::sync::Notify>,
}

const FIRST: &[u8] = b"event: first\ndata: the first piece of a stream, which must arrive alone\n\n";
const SECOND: &[u8] = b"event: second\ndata: the second piece, after the client has read the first\n\n";

impl BodyStream for TwoPieces {
    fn length(&self) -> Option<u64> {
        None
    }
    fn next_chunk(&mut self) -> ChunkFuture<'_> {
        Box::pin(async move {
            self.sent += 1;
            Ok(match self.sent {
                1 => Some(Bytes::from_static(FIRST)),
                2 => {
                    self.release.notified().await;
                    Some(Bytes::from_static(SECOND))
                }
                _ => None,
            })
        })
    }
}

/// Reads one chunk of a chunked body (`None` at the last chunk).
fn read_chunk(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    let line_end = loop {
        if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
            break i;
        }
        fill(s, buf);
    };
    let size = usize::from_str_radix(std::str::from_utf8(&buf[..line_end]).unwrap(), 16).unwrap();
    buf.drain(..line_end + 2);
    if size == 0 {
        return None;
    }
    while buf.len() < size + 2 {
        fill(s, buf);
    }
    let chunk = buf[..size].to_vec();
    buf.drain(..size + 2);
    Some(chunk)
}

fn fill(s: &mut TcpStream, buf: &mut Vec<u8>) {
    let mut piece = [0u8; 16384];
    let n = s.read(&mut piece).expect("read within the timeout");
    assert!(n > 0, "closed early; got {:?}", String::from_utf8_lossy(buf));
    buf.extend_from_slice(&piece[..n]);
}

#[test]
fn each_piece_of_a_stream_arrives_compressed_and_decodable_before_the_next() {
    let release = Arc::new(tokio::sync::Notify::new());
    let handler_release = release.clone();
    let addr = start(move |r| {
        let release = handler_release.clone();
        r.route("GET /events", move |_: &Request<'_>| {
            Response::new(200)
                .content_type_static("text/event-stream")
                .body(Body::Stream(Box::new(TwoPieces {
                    sent: 0,
                    release: release.clone(),
                })))
        })
        .unwrap();
    });
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /events HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n\r\n")
        .unwrap();
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        fill(&mut s, &mut buf);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    buf.drain(..head_end);
    assert!(head.contains("content-encoding: gzip\r\n"), "{head}");
    assert!(head.contains("transfer-encoding: chunked\r\n"), "{head}");
    let mut decoder = flate2::write::GzDecoder::new(Vec::new());
    // The first piece decodes in full while the handler still waits to make the second.
    while decoder.get_ref().len() < FIRST.len() {
        let chunk = read_chunk(&mut s, &mut buf).expect("the stream ended early");
        decoder.write_all(&chunk).unwrap();
        decoder.flush().unwrap();
    }
    assert_eq!(decoder.get_ref(), FIRST);
    release.notify_one();
    while let Some(chunk) = read_chunk(&mut s, &mut buf) {
        decoder.write_all(&chunk).unwrap();
    }
    let all = decoder.finish().unwrap();
    assert_eq!(all, [FIRST, SECOND].concat());
}

/// Pieces of generated JSON lines, `total` bytes in all, none kept after it is yielded.
struct Generated {
    left: u64,
    line: u64,
}

impl BodyStream for Generated {
    fn length(&self) -> Option<u64> {
        Some(self.left)
    }
    fn next_chunk(&mut self) -> ChunkFuture<'_> {
        Box::pin(async move {
            if self.left == 0 {
                return Ok(None);
            }
            let mut piece = Vec::with_capacity(64 * 1024);
            while piece.len() < 64 * 1024 && (piece.len() as u64) < self.left {
                self.line += 1;
                piece.extend_from_slice(
                    format!(
                        "{{\"line\":{},\"value\":{}}}\n",
                        self.line,
                        self.line.wrapping_mul(2654435761) % 99991
                    )
                    .as_bytes(),
                );
            }
            piece.truncate(self.left.min(piece.len() as u64) as usize);
            self.left -= piece.len() as u64;
            Ok(Some(Bytes::from(piece)))
        })
    }
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Counts what is written to it.
struct Counting(Arc<AtomicU64>);

impl Write for Counting {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.fetch_add(b.len() as u64, Ordering::Relaxed);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Reads a chunked, compressed response to its end, decoding as it goes; returns the bytes on
/// the wire and the bytes decoded.
fn read_decoded(s: &mut TcpStream, coding: &str) -> (u64, u64) {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        fill(s, &mut buf);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    assert!(head.contains(&format!("content-encoding: {coding}\r\n")), "{head}");
    buf.drain(..head_end);
    let decoded = Arc::new(AtomicU64::new(0));
    let sink = Counting(decoded.clone());
    let mut decoder: Box<dyn Write> = match coding {
        "gzip" => Box::new(flate2::write::GzDecoder::new(sink)),
        "br" => Box::new(brotli::DecompressorWriter::new(sink, 65536)),
        _ => Box::new(zstd::stream::write::Decoder::new(sink).unwrap()),
    };
    let mut wire = 0;
    while let Some(chunk) = read_chunk(s, &mut buf) {
        wire += chunk.len() as u64;
        decoder.write_all(&chunk).unwrap();
    }
    decoder.flush().unwrap();
    drop(decoder);
    (wire, decoded.load(Ordering::Relaxed))
}

#[test]
fn a_stream_far_larger_than_its_pieces_is_compressed_in_bounded_memory() {
    const TOTAL: u64 = 24 << 20;
    let addr = start(|r| {
        r.route("GET /export", |_: &Request<'_>| {
            Response::new(200)
                .content_type_static("application/json")
                .body(Body::Stream(Box::new(Generated { left: TOTAL, line: 0 })))
        })
        .unwrap();
    });
    let before = peak_rss_kib();
    for coding in ["zstd", "gzip", "br"] {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        s.write_all(format!("GET /export HTTP/1.1\r\nHost: t\r\nAccept-Encoding: {coding}\r\n\r\n").as_bytes())
            .unwrap();
        let (wire, decoded) = read_decoded(&mut s, coding);
        assert_eq!(decoded, TOTAL, "{coding}");
        assert!(wire < TOTAL / 4, "{coding}: {wire} bytes on the wire");
    }
    // Client and server share this process: its peak grew by the encoders' and decoders'
    // windows and a few pieces, never by the body.
    let grown = peak_rss_kib().saturating_sub(before);
    eprintln!("peak RSS grew by {grown} KiB for three {} MiB bodies", TOTAL >> 20);
    assert!(
        grown < 12 * 1024,
        "peak RSS grew by {grown} KiB for {} MiB bodies",
        TOTAL >> 20
    );
}
