//! [`CompressStream`]: a body compressed as it is sent, a piece at a time, so that memory stays
//! at one encoder and one piece whatever the body's length; and at most [`MAX_STREAMS`] of them
//! per worker, since an encoder's state is large (up to 2 MiB for Brotli,
//! `benches/results/HISTORY.md`): past that, bodies go out uncompressed.

use std::cell::Cell;
use std::io;

use bytes::Bytes;
use tokio_uring::buf::BoundedBuf;

use super::encoder::Encoder;
use crate::app::handler::{BodyStream, ChunkFuture, FileBody};

/// How much of an in-memory body or a file is compressed before the output is handed on (and
/// the worker gets to run other tasks).
pub(crate) const PIECE: usize = 64 * 1024;

/// Bodies one worker compresses as they are sent at once.
pub(crate) const MAX_STREAMS: usize = 32;

thread_local! {
    /// This worker's compressed streams (each worker is one thread).
    static STREAMS: Cell<usize> = const { Cell::new(0) };
}

/// A place among this worker's [`MAX_STREAMS`], given back when dropped.
pub(crate) struct StreamSlot(());

impl StreamSlot {
    /// A place, if one is free.
    pub(crate) fn take() -> Option<StreamSlot> {
        STREAMS.with(|n| {
            (n.get() < MAX_STREAMS)
                .then(|| n.set(n.get() + 1))
                .map(|()| StreamSlot(()))
        })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        STREAMS.with(|n| n.set(n.get() - 1));
    }
}

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
    _slot: StreamSlot,
}

impl CompressStream {
    pub(crate) fn new(source: Source, encoder: Encoder, slot: StreamSlot) -> CompressStream {
        CompressStream {
            source,
            encoder: Some(encoder),
            _slot: slot,
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
