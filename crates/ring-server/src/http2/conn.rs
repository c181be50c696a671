//! One HTTP/2 connection: the engine's handshake with the settings of the configuration, then
//! each stream on a task of its own, until the peer or the server goes away.
//!
//! The server goes away with `GOAWAY`: gracefully (the streams in flight finish) when the
//! worker drains or the connection has been idle for the keep-alive timeout; at once with
//! `ENHANCE_YOUR_CALM` when the peer floods it with control frames. The engine itself answers
//! protocol errors (with the right `GOAWAY` or `RST_STREAM` code), rapid resets, CONTINUATION
//! floods and empty-DATA floods.

use std::net::SocketAddr;
use std::rc::Rc;

use bytes::Bytes;
use h2::Reason;

use super::io::H2Io;
use super::state::ConnState;
use super::stream::answer;
use crate::heap::boxed;
use crate::io::stream::Transport;
use crate::worker::ConnSlot;

/// Responses go out at most this far ahead of the peer's windows, per stream.
const SEND_BUFFER: usize = 256 * 1024;
/// Streams reset by the peer before they were answered, tolerated at once (the engine's
/// defence against rapid reset, CVE-2023-44487; hyper's default).
const PENDING_ACCEPT_RESETS: usize = 20;

/// A connection the HTTP/1.1 side found to speak HTTP/2 (ALPN `h2`, or the h2c preface), with
/// what it had read of it already.
pub(crate) struct Handoff {
    pub(crate) slot: ConnSlot,
    pub(crate) transport: Transport,
    pub(crate) read: Vec<u8>,
    pub(crate) peer: SocketAddr,
}

/// Serves an HTTP/2 connection until it closes.
pub(crate) async fn serve(handoff: Handoff) {
    let Handoff {
        slot,
        transport,
        read,
        peer,
    } = handoff;
    let worker = slot.worker().clone();
    let config = worker.config();
    let stats = worker.stats();
    stats.h2_connections.add(1);
    stats.h2_open.add(1);
    // An HTTP/2 connection is made to last: its socket takes a slot of the ring's file table
    // (boxed: the registration's state is not kept for the connection's life).
    boxed(|| transport.register_fixed(slot.io())).await;
    let (stream, tls) = transport.into_parts();
    let state = Rc::new(ConnState::new(slot));
    state.arm();
    let io = H2Io::new(state.clone(), stream, tls, read);
    let h2c = config.http2;
    let mut builder = h2::server::Builder::new();
    builder
        .max_concurrent_streams(h2c.max_concurrent_streams)
        .initial_window_size(h2c.initial_window_size)
        .initial_connection_window_size(h2c.connection_window_size)
        .max_frame_size(h2c.max_frame_size)
        .max_header_list_size(u32::try_from(config.limits.max_header_bytes).unwrap_or(u32::MAX))
        .max_send_buffer_size(SEND_BUFFER)
        .max_pending_accept_reset_streams(PENDING_ACCEPT_RESETS);
    drop(config);
    let mut conn = match builder.handshake::<_, Bytes>(io).await {
        Ok(conn) => conn,
        Err(e) => {
            tracing::debug!("HTTP/2 handshake failed: {e}");
            stats.h2_open.set(stats.h2_open.get().saturating_sub(1));
            return;
        }
    };
    let mut going_away = false;
    loop {
        if !going_away && worker.is_draining() {
            // GOAWAY(2^31-1) and a PING, then, after the PING's answer, GOAWAY with the last
            // stream taken: streams already on their way are still served.
            conn.graceful_shutdown();
            going_away = true;
        }
        let idle_at = (state.is_idle() && !going_away).then(|| state.idle_deadline());
        let next = tokio::select! {
            biased;
            _ = state.wake.notified() => {
                if state.is_flooded() && !going_away {
                    conn.abrupt_shutdown(Reason::ENHANCE_YOUR_CALM);
                    going_away = true;
                }
                continue;
            }
            _ = worker.drain_started(), if !going_away => continue,
            _ = sleep_until(idle_at), if idle_at.is_some() => {
                conn.graceful_shutdown();
                going_away = true;
                continue;
            }
            // Dropping this future (another branch won) is harmless: the read in flight is the
            // adapter's, not the future's.
            next = conn.accept() => next,
        };
        match next {
            Some(Ok((request, respond))) => {
                state.stream_opened();
                let state = state.clone();
                worker
                    .tasks
                    .spawn_boxed(boxed(|| answer(request, respond, state, peer)));
            }
            Some(Err(e)) => {
                if !e.is_io() {
                    tracing::debug!("HTTP/2 connection error: {e}");
                }
                break;
            }
            None => break,
        }
    }
    stats.h2_open.set(stats.h2_open.get().saturating_sub(1));
}

/// Completes at `at` (never, for `None`; the branch is disabled then anyway).
async fn sleep_until(at: Option<std::time::Instant>) {
    match at {
        Some(at) => crate::runtime::timer::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
