//! Sending what a response's head leaves: a large body from memory, a file range, or a stream,
//! each after the queued heads before it.

use std::io;
use std::time::Instant;

use ringd_core::{write_chunk_header, write_last_chunk, ResponseFraming, WriteBuf};

use super::encode::Encoded;
use crate::app::handler::BodyStream;
use crate::dispatch;
use crate::io::buf::OutBuf;
use crate::io::conn_io::ConnIo;
use crate::io::stream::Transport;
use crate::worker::Worker;

/// Sends what [`encode`] left after the queue: the queue (the head and the answers before it)
/// and then the body, streamed, from a file, or large in memory. Returns whether the connection
/// stays open.
pub(super) async fn send_rest(
    encoded: Encoded,
    out: &mut OutBuf,
    io: &mut Transport,
    worker: &Worker,
    conn: ConnIo<'_>,
    now: Instant,
) -> io::Result<bool> {
    match encoded {
        Encoded::Done { keep_alive } => Ok(keep_alive),
        Encoded::Stream {
            stream,
            framing,
            keep_alive,
        } => send_stream(out, io, worker, conn, stream, framing)
            .await
            .map(|()| keep_alive),
        Encoded::File { file, keep_alive } => {
            io.cork(true);
            io.flush(out, conn, now).await?;
            io.send_file(file, conn).await?;
            io.cork(false);
            Ok(keep_alive)
        }
        Encoded::Large { bytes, keep_alive } => {
            io.flush(out, conn, now).await?;
            io.send_bytes(bytes, conn).await?;
            Ok(keep_alive)
        }
    }
}

/// Sends a streamed body: the queued head first, then each piece, chunk-framed when asked.
async fn send_stream(
    out: &mut OutBuf,
    io: &mut Transport,
    worker: &Worker,
    conn: ConnIo<'_>,
    mut body: Box<dyn BodyStream>,
    framing: ResponseFraming,
) -> io::Result<()> {
    let mut sent: u64 = 0;
    loop {
        // Nothing is held while the stream works: a stream that stalls must not pin a fixed
        // buffer (the pool is shared by every connection of this core).
        if !out.is_empty() {
            io.flush(out, conn, Instant::now()).await?;
        }
        conn.disarm();
        let piece = dispatch::next_piece(&mut *body, worker).await?;
        let Some(piece) = piece else { break };
        if piece.is_empty() {
            continue;
        }
        sent += piece.len() as u64;
        match framing {
            ResponseFraming::Chunked => {
                write_chunk_header(out, piece.len());
                out.put(&piece);
                out.put(b"\r\n");
            }
            ResponseFraming::Length(n) if sent > n => {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "body longer than announced"));
            }
            _ => {
                io.flush(out, conn, Instant::now()).await?;
                io.send_bytes(piece, conn).await?;
            }
        }
    }
    match framing {
        ResponseFraming::Chunked => write_last_chunk(out),
        ResponseFraming::Length(n) if sent != n => {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "body shorter than announced",
            ));
        }
        _ => {}
    }
    Ok(())
}
