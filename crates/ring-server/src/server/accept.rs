//! A worker's accept loop: each accepted connection is served on its own task, or shed past the
//! worker's limit; running out of descriptors pauses accepting.

use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio_uring::net::{TcpListener, TcpStream};

use crate::http1;
use crate::io::listener::ListenerKind;
use crate::ops::stats::Op;
use crate::traffic::{Admit, ConnPermit};
use crate::worker::Worker;

/// Starts serving an accepted connection on its own task. The connection's future is boxed:
/// tokio moves a task's future by value as it spawns and finishes it, several copies of the
/// whole future per connection, where a box moves a pointer (`benches/results/HISTORY.md`).
/// A connection counted against the connection limit holds its permit until it ends.
fn spawn_conn(
    stream: TcpStream,
    peer: std::net::SocketAddr,
    worker: &Rc<Worker>,
    kind: ListenerKind,
    permit: Option<ConnPermit>,
) {
    if let Some(conn) = http1::serve(stream, peer, worker.clone(), kind) {
        match permit {
            None => tokio_uring::spawn(Box::pin(conn)),
            Some(permit) => tokio_uring::spawn(Box::pin(async move {
                conn.await;
                drop(permit);
            })),
        };
    }
}

pub(super) async fn accept_loop(id: usize, listener: TcpListener, kind: ListenerKind, worker: Rc<Worker>) {
    let mut last_warning: Option<Instant> = None;
    loop {
        worker.stats().op(Op::Accept);
        let accepted = listener.accept().await;
        if worker.is_draining() {
            // The listener was shut down; a connection accepted in the same instant is still
            // served (with `Connection: close`), never dropped.
            if let Ok((stream, peer)) = accepted {
                spawn_conn(stream, peer, &worker, kind, None);
            }
            return;
        }
        match accepted {
            Ok((stream, _)) if worker.io.conns.len() >= worker.config().max_connections => {
                worker.stats().shed.add(1);
                tokio_uring::spawn(http1::shed(stream, worker.clone(), kind));
            }
            Ok((stream, peer)) => {
                worker.stats().accepted.add(1);
                match worker.traffic.admit(&peer, worker.log_budget()) {
                    Admit::Serve(permit) => spawn_conn(stream, peer, &worker, kind, permit),
                    Admit::Refuse(status) => {
                        tokio_uring::spawn(http1::refuse(stream, worker.clone(), kind, status));
                    }
                }
            }
            Err(e) => {
                let fd_exhausted = matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE));
                let transient = matches!(
                    e.raw_os_error(),
                    Some(libc::ECONNABORTED) | Some(libc::EINTR) | Some(libc::EAGAIN) | Some(libc::EPROTO)
                );
                if transient {
                    continue;
                }
                // One line per 10 s at most: a flood of identical errors helps nobody.
                if last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                    last_warning = Some(Instant::now());
                    if fd_exhausted {
                        tracing::warn!(
                            worker = id,
                            open = worker.io.conns.len(),
                            "accept: out of file descriptors ({e}); pausing accepts; raise LimitNOFILE / ulimit -n"
                        );
                    } else {
                        tracing::warn!(worker = id, "accept failed: {e}");
                    }
                }
                // Back off instead of spinning; connections wait in the backlog meanwhile.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
