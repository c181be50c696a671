//! Reading files through io_uring: a whole range at once, or piece by piece as a body stream.

use std::io;

use bytes::Bytes;
use tokio_uring::fs::File;

use crate::handler::{BodyStream, ChunkFuture};

/// Larger files are sent in pieces of this size: one piece per client is all the memory a
/// download holds, however slowly the client reads.
pub(super) const PIECE: usize = 256 * 1024;

/// Reads `len` bytes from `start`.
pub(super) async fn read_range(file: &File, start: u64, len: u64) -> io::Result<Bytes> {
    let mut buf = Vec::with_capacity(len as usize);
    while (buf.len() as u64) < len {
        let filled = buf.len();
        let (res, slice) = file
            .read_at(
                tokio_uring::buf::BoundedBuf::slice(buf, filled..),
                start + filled as u64,
            )
            .await;
        buf = slice.into_inner();
        if res? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shrank while being read",
            ));
        }
    }
    Ok(Bytes::from(buf))
}

/// Bytes `pos..end` of a file, sent in pieces, with their length known up front.
pub(super) struct FileStream {
    pub(super) file: File,
    pub(super) pos: u64,
    pub(super) end: u64,
}

impl BodyStream for FileStream {
    fn length(&self) -> Option<u64> {
        Some(self.end - self.pos)
    }

    fn next_chunk(&mut self) -> ChunkFuture<'_> {
        Box::pin(async move {
            if self.pos >= self.end {
                return Ok(None);
            }
            let want = (self.end - self.pos).min(PIECE as u64) as usize;
            let (res, buf) = self.file.read_at(Vec::with_capacity(want), self.pos).await;
            let n = res?;
            if n == 0 {
                // The file shrank: the connection closes, since the length is already sent.
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "file shrank while being sent",
                ));
            }
            self.pos += n as u64;
            Ok(Some(Bytes::from(buf)))
        })
    }
}
