//! [`CompressStream`]: a body compressed as it is sent, a piece at a time, so that memory stays
//! at one encoder and one piece whatever the body's length.

use std::io;

use bytes::Bytes;
use tokio_uring::buf::BoundedBuf;

use super::encoder::Encoder;
use crate::app::handler::{BodyStream, ChunkFuture, FileBody};

/// How much of an in-memory body or a file is compressed before the output is handed on (and
/// the worker gets to run other tasks).
pub(crate) const PIECE: usize = 64 * 1024;

/// Where the uncompressed bytes come from.
pub(crate) enum Source {
    /// A handler's stream: each of its pieces is flushed through the encoder, so that what the
    /// handler produces reaches the client without waiting for what it has not produced yet.
    Pieces(Box<dyn BodyStream>),
    /// A body in memory, too large to compress in one go on the worker's thread.
    Memory(Bytes),
    /// A range of a file, read a piece at a time through io_uring.
    File(FileBody),
}

/// A compressed body of unknown length (chunked in HTTP/1.1).
pub(crate) struct CompressStream {
    source: Source,
    /// `None` once the stream has ended.
    encoder: Option<Encoder>,
}

impl CompressStream {
    pub(crate) fn new(source: Source, encoder: Encoder) -> CompressStream {
        CompressStream {
            source,
            encoder: Some(encoder),
        }
    }

    /// The next piece of uncompressed input, and whether to flush after it; `None` at the end.
    async fn input(&mut self) -> io::Result<Option<(Bytes, bool)>> {
        Ok(match &mut self.source {
            Source::Pieces(stream) => stream.next_chunk().await?.map(|p| (p, true)),
            Source::Memory(rest) if rest.is_empty() => None,
            Source::Memory(rest) => {
                // Let the worker's other tasks run between pieces of a long body.
                tokio::task::yield_now().await;
                Some((rest.split_to(rest.len().min(PIECE)), false))
            }
            Source::File(file) if file.len == 0 => None,
            Source::File(file) => {
                let want = file.len.min(PIECE as u64) as usize;
                let (res, slice) = file
                    .file
                    .read_at(Vec::with_capacity(want).slice(0..want), file.start)
                    .await;
                let read = res?;
                if read == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "file shrank while being compressed",
                    ));
                }
                let mut buf = slice.into_inner();
                buf.truncate(read);
                file.start += read as u64;
                file.len -= read as u64;
                Some((Bytes::from(buf), false))
            }
        })
    }
}

impl BodyStream for CompressStream {
    fn length(&self) -> Option<u64> {
        None
    }

    fn next_chunk(&mut self) -> ChunkFuture<'_> {
        Box::pin(async move {
            loop {
                if self.encoder.is_none() {
                    return Ok(None);
                }
                match self.input().await? {
                    Some((piece, flush)) => {
                        let Some(encoder) = self.encoder.as_mut() else {
                            return Ok(None);
                        };
                        encoder.write(&piece)?;
                        if flush {
                            encoder.flush()?;
                        }
                        let out = encoder.take();
                        if !out.is_empty() {
                            return Ok(Some(Bytes::from(out)));
                        }
                    }
                    None => {
                        let Some(encoder) = self.encoder.take() else {
                            return Ok(None);
                        };
                        return Ok(Some(Bytes::from(encoder.finish()?)));
                    }
                }
            }
        })
    }
}
