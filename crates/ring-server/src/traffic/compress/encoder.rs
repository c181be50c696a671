//! The three encoders behind one interface: [`Encoder`] for a body compressed piece by piece
//! (its state bounded by a fixed window), and [`Encoders`], a worker's contexts reused for
//! bodies compressed in one go.
//!
//! gzip is deflate (zlib-rs) with the RFC 1952 header and trailer written here, so that one
//! deflate context per level serves every response of a worker: allocating a context costs a
//! good part of compressing a small body (`benches/results/HISTORY.md`, 2026-12-07). zstd keeps
//! its context the same way; Brotli's encoder cannot be reset and is made per body.

use std::io::{self, Write};

use super::super::config::Coding;

/// The window of a body compressed piece by piece: what bounds an encoder's memory (gzip's
/// is fixed at 32 KiB; zstd's and Brotli's grow to this, 512 KiB).
const STREAM_WINDOW_LOG: u32 = 19;

/// gzip's header (RFC 1952 §2.3): deflate, no name or time, no extra flags, OS "unknown".
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// An encoder for one body compressed as it goes. Output accumulates in the encoder until
/// [`Encoder::take`] drains it.
pub(crate) struct Encoder(Inner);

enum Inner {
    Gzip(flate2::write::GzEncoder<Vec<u8>>),
    Brotli(Box<brotli::CompressorWriter<Vec<u8>>>),
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
}

impl Encoder {
    /// An encoder of `coding` at `level` (valid per `validate_compression`).
    pub(crate) fn new(coding: Coding, level: i32) -> io::Result<Encoder> {
        Ok(Encoder(match coding {
            Coding::Gzip => Inner::Gzip(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::new(level.clamp(1, 9) as u32),
            )),
            Coding::Brotli => Inner::Brotli(Box::new(brotli::CompressorWriter::new(
                Vec::new(),
                16 * 1024,
                level.clamp(0, 11) as u32,
                STREAM_WINDOW_LOG,
            ))),
            Coding::Zstd => {
                let mut e = zstd::stream::write::Encoder::new(Vec::new(), level)?;
                e.set_parameter(zstd::zstd_safe::CParameter::WindowLog(STREAM_WINDOW_LOG))?;
                Inner::Zstd(e)
            }
        }))
    }

    /// Compresses `input`.
    pub(crate) fn write(&mut self, input: &[u8]) -> io::Result<()> {
        match &mut self.0 {
            Inner::Gzip(e) => e.write_all(input),
            Inner::Brotli(e) => e.write_all(input),
            Inner::Zstd(e) => e.write_all(input),
        }
    }

    /// Makes everything written so far decodable by the client (a sync flush), at a cost of a
    /// few bytes: what a piece of a streamed body needs to arrive without waiting for the next.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        match &mut self.0 {
            Inner::Gzip(e) => e.flush(),
            Inner::Brotli(e) => e.flush(),
            Inner::Zstd(e) => e.flush(),
        }
    }

    /// The output so far, leaving the encoder's buffer empty.
    pub(crate) fn take(&mut self) -> Vec<u8> {
        std::mem::take(match &mut self.0 {
            Inner::Gzip(e) => e.get_mut(),
            Inner::Brotli(e) => e.get_mut(),
            Inner::Zstd(e) => e.get_mut(),
        })
    }

    /// Ends the stream; returns the rest of the output.
    pub(crate) fn finish(self) -> io::Result<Vec<u8>> {
        match self.0 {
            Inner::Gzip(e) => e.finish(),
            Inner::Brotli(e) => Ok(e.into_inner()),
            Inner::Zstd(e) => e.finish(),
        }
    }
}

/// A worker's reusable contexts for bodies compressed in one go (one per coding, remade when
/// the level changes).
#[derive(Default)]
pub(crate) struct Encoders {
    deflate: Option<(i32, flate2::Compress)>,
    zstd: Option<(i32, zstd::bulk::Compressor<'static>)>,
}

impl Encoders {
    /// `input` compressed whole with `coding` at `level`.
    pub(crate) fn compress(&mut self, coding: Coding, level: i32, input: &[u8]) -> io::Result<Vec<u8>> {
        match coding {
            Coding::Gzip => {
                let deflate = match &mut self.deflate {
                    Some((l, d)) if *l == level => {
                        d.reset();
                        d
                    }
                    slot => {
                        let compression = flate2::Compression::new(level.clamp(1, 9) as u32);
                        &mut slot.insert((level, flate2::Compress::new(compression, false))).1
                    }
                };
                gzip_with(deflate, input)
            }
            Coding::Zstd => {
                let zstd = match &mut self.zstd {
                    Some((l, c)) if *l == level => c,
                    slot => &mut slot.insert((level, zstd::bulk::Compressor::new(level)?)).1,
                };
                zstd.compress(input)
            }
            Coding::Brotli => {
                let params = brotli::enc::BrotliEncoderParams {
                    quality: level.clamp(0, 11),
                    // A window just large enough for the body: less memory, the same output.
                    lgwin: (usize::BITS - input.len().max(1).leading_zeros()).clamp(16, 22) as i32,
                    size_hint: input.len(),
                    ..Default::default()
                };
                let mut out = Vec::with_capacity(input.len() / 3 + 64);
                brotli::BrotliCompress(&mut &input[..], &mut out, &params)?;
                Ok(out)
            }
        }
    }
}

/// `input` as a gzip member (RFC 1952), deflated by a raw-deflate context.
fn gzip_with(deflate: &mut flate2::Compress, input: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len() / 2 + 64);
    out.extend_from_slice(&GZIP_HEADER);
    loop {
        let consumed = deflate.total_in() as usize;
        let status = deflate
            .compress_vec(&input[consumed..], &mut out, flate2::FlushCompress::Finish)
            .map_err(io::Error::other)?;
        if status == flate2::Status::StreamEnd {
            break;
        }
        out.reserve(out.capacity().max(4096));
    }
    let mut crc = flate2::Crc::new();
    crc.update(input);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&(input.len() as u32).to_le_bytes());
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Read;

    use super::*;

    fn sample() -> Vec<u8> {
        let mut text = Vec::new();
        for i in 0..4000 {
            text.extend_from_slice(format!("{{\"id\":{i},\"name\":\"item {}\"}},", i % 37).as_bytes());
        }
        text
    }

    pub(crate) fn decode(coding: Coding, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        match coding {
            Coding::Gzip => flate2::read::MultiGzDecoder::new(bytes).read_to_end(&mut out).unwrap(),
            Coding::Brotli => brotli::Decompressor::new(bytes, 4096).read_to_end(&mut out).unwrap(),
            Coding::Zstd => zstd::stream::read::Decoder::new(bytes)
                .unwrap()
                .read_to_end(&mut out)
                .unwrap(),
        };
        out
    }

    #[test]
    fn one_go_with_reused_contexts_round_trips() {
        let input = sample();
        let mut encoders = Encoders::default();
        for coding in Coding::ALL {
            for level in [1, 5, 1] {
                let out = encoders.compress(coding, level, &input).unwrap();
                assert!(out.len() < input.len() / 4, "{coding:?} {level}: {}", out.len());
                assert_eq!(decode(coding, &out), input, "{coding:?} {level}");
            }
            let empty = encoders.compress(coding, 3, b"").unwrap();
            assert_eq!(decode(coding, &empty), b"");
        }
    }

    #[test]
    fn piece_by_piece_with_flushes_round_trips_and_each_flush_is_decodable() {
        let input = sample();
        for coding in Coding::ALL {
            let mut e = Encoder::new(coding, 3).unwrap();
            let mut out = Vec::new();
            for (i, piece) in input.chunks(10_000).enumerate() {
                e.write(piece).unwrap();
                e.flush().unwrap();
                out.extend(e.take());
                if coding == Coding::Gzip {
                    // What the client has after a flush decodes to what was written.
                    let mut partial = Vec::new();
                    let _ = flate2::read::GzDecoder::new(&out[..]).read_to_end(&mut partial);
                    assert_eq!(partial, input[..(10_000 * (i + 1)).min(input.len())]);
                }
            }
            out.extend(e.finish().unwrap());
            assert_eq!(decode(coding, &out), input, "{coding:?}");
        }
    }
}
