//! Request bodies that did not arrive with their head.
//!
//! Such a request is answered in two steps: its head is parsed, the body is read (sending
//! `100 Continue` first when asked for and wanted), and the head is parsed again from the same
//! bytes. That second parse only happens on this slow path; it keeps the borrows simple (no head
//! outlives a read) and costs far less than the read itself.

use std::io;

use ringd_core::{BodyFraming, ChunkProgress, ChunkedDecoder, ParseError, WriteBuf, CONTINUE_100};

use super::conn::{out_buf, BodyState, Conn};
use crate::io::conns::Phase;

/// What reading a body needs to know, copied out of the head before the head's borrow ends.
#[derive(Debug, Clone, Copy)]
pub(super) struct PendingBody {
    pub(super) head_len: usize,
    pub(super) framing: BodyFraming,
    pub(super) expect_continue: bool,
    pub(super) reads_body: bool,
}

impl Conn {
    /// Reads the body of the request at the front of the read buffer. `Err(Some)` is a malformed
    /// body, `Err(None)` a client that went away.
    pub(super) async fn read_body(&mut self, pending: PendingBody) -> Result<(), Option<ParseError>> {
        let config = self.worker().config();
        let (limits, body_timeout) = (config.limits, config.timeouts.body);
        let mut continue_sent = false;
        match pending.framing {
            BodyFraming::Length(n) => {
                if pending.expect_continue {
                    if !pending.reads_body {
                        self.body_state = BodyState::Skipped;
                        return Ok(());
                    }
                    self.send_continue().await.map_err(|_| None)?;
                }
                let need = pending.head_len + n as usize;
                self.rbuf.make_room_for(need);
                while self.rbuf.pending().len() < need {
                    match self.read(Phase::Body, self.now + body_timeout).await {
                        Ok(0) | Err(_) => return Err(None),
                        Ok(_) => {}
                    }
                }
            }
            BodyFraming::Chunked => {
                let mut decoder = ChunkedDecoder::new(limits.max_body, limits.max_header_bytes);
                self.body.get_or_insert_default().clear();
                loop {
                    let body = self.body.as_mut().expect("set above");
                    match decoder.decode(&self.rbuf.pending()[pending.head_len..], body)? {
                        ChunkProgress::Done { consumed } => {
                            // The encoding left in the read buffer after a read: far below 4 GiB.
                            let consumed = u32::try_from(consumed).map_err(|_| Some(ParseError::PayloadTooLarge))?;
                            self.body_state = BodyState::Chunked(consumed);
                            break;
                        }
                        ChunkProgress::NeedMore { consumed } => {
                            // The decoded bytes are in `body`; drop their encoding so the read
                            // buffer holds only the head and what is still to decode.
                            self.rbuf.remove(pending.head_len, consumed);
                        }
                    }
                    if pending.expect_continue && !continue_sent {
                        if !pending.reads_body {
                            self.body_state = BodyState::Skipped;
                            return Ok(());
                        }
                        self.send_continue().await.map_err(|_| None)?;
                        continue_sent = true;
                    }
                    self.rbuf.make_body_room();
                    match self.read(Phase::Body, self.now + body_timeout).await {
                        Ok(0) | Err(_) => return Err(None),
                        Ok(_) => {}
                    }
                }
            }
            BodyFraming::None => {}
        }
        Ok(())
    }

    /// Sends what is queued, then `100 Continue` (responses to earlier pipelined requests first).
    async fn send_continue(&mut self) -> io::Result<()> {
        out_buf(&mut self.out, &self.slot).put(CONTINUE_100);
        self.flush().await
    }
}
