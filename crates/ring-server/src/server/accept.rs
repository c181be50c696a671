//! A worker's accept loop: each accepted connection is served on its own task, or shed past the
//! worker's limit; running out of descriptors pauses accepting. On a `proxy_protocol` listener
//! a connection's task first reads its PROXY header.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use tokio_uring::net::{TcpListener, TcpStream};

use crate::http1;
use crate::io::listener::ListenerKind;
use crate::io::proxy::{self, ProxyReadError};
use crate::ops::stats::{Op, ProxyRefusal};
use crate::traffic::Admit;
use crate::worker::{ConnSlot, Worker};

/// Starts serving an accepted connection on its own task of the worker's executor
/// (`worker::Tasks`), which keeps the connection's future in the box it was built in.
fn spawn_conn(stream: TcpStream, peer: SocketAddr, worker: &Rc<Worker>, kind: ListenerKind, proxy: bool) {
    if proxy {
        worker.tasks.spawn(proxied(stream, peer, worker.clone(), kind));
    } else {
        serve_admitted(stream, peer, worker, kind, &[]);
    }
}

/// Serves a connection from `client` on its own task, if the connection limit admits it (the
/// connection then holds its permit until it ends), else answers it as refused. `read`: bytes
/// that arrived before (after a PROXY header).
fn serve_admitted(stream: TcpStream, client: SocketAddr, worker: &Rc<Worker>, kind: ListenerKind, read: &[u8]) {
    match worker.traffic.admit(&client, worker.log_budget()) {
        Admit::Serve(permit) => {
            if let Some(conn) = http1::serve(stream, client, worker.clone(), kind, read) {
                match permit {
                    None => worker.tasks.spawn_boxed(Box::pin(conn)),
                    Some(permit) => worker.tasks.spawn(async move {
                        conn.await;
                        drop(permit);
                    }),
                };
            }
        }
        Admit::Refuse(status) => {
            worker.tasks.spawn(http1::refuse(stream, worker.clone(), kind, status));
        }
    }
}

/// Reads the PROXY header of a connection from `peer` (the load balancer), then serves the
/// connection as one from the client the header names, with the bytes that followed the
/// header. The header is read in the connection table under the header timeout, like a
/// request head; a source outside `proxy_protocol.trusted` is closed without a read.
async fn proxied(stream: TcpStream, peer: SocketAddr, worker: Rc<Worker>, kind: ListenerKind) {
    let config = worker.config();
    if !config.proxy_trusted.is_empty() && !config.proxy_trusted.iter().any(|net| net.contains(peer.ip())) {
        worker.stats().proxy_refused(ProxyRefusal::Untrusted);
        if worker.log_budget().allow() {
            tracing::warn!("PROXY protocol: {peer} is not in proxy_protocol.trusted; connection closed");
        }
        return;
    }
    let slot = ConnSlot::open(worker.clone(), &stream);
    let buf = worker.io.buffers.take_read_buf(0);
    let deadline = Instant::now() + config.timeouts.header;
    let (read, buf) = proxy::read_header(&stream, slot.io(), deadline, buf).await;
    // `serve` enters the connection in the table again; the slot goes before the socket.
    drop(slot);
    match read {
        Ok(header) => {
            // The connection limit counts the client the header names, not the balancer.
            serve_admitted(
                stream,
                header.source().unwrap_or(peer),
                &worker,
                kind,
                &buf[header.len..],
            );
        }
        Err(ProxyReadError::Invalid(e)) => {
            worker.stats().proxy_refused(ProxyRefusal::Invalid);
            if worker.log_budget().allow() {
                tracing::warn!("PROXY protocol: {peer} sent no valid PROXY header ({e}); connection closed");
            }
        }
        Err(e) => {
            worker.stats().proxy_refused(ProxyRefusal::Incomplete);
            tracing::debug!("PROXY protocol: {peer}: {e}");
        }
    }
    worker.io.buffers.give_read_buf(buf);
}

/// Accepts on `listener` until the worker drains; `proxy`: its connections start with a PROXY
/// protocol header.
pub(super) async fn accept_loop(id: usize, listener: TcpListener, kind: ListenerKind, proxy: bool, worker: Rc<Worker>) {
    let mut last_warning: Option<Instant> = None;
    loop {
        worker.stats().op(Op::Accept);
        let accepted = listener.accept().await;
        if worker.is_draining() {
            // The listener was shut down; a connection accepted in the same instant is still
            // served (with `Connection: close`), never dropped.
            if let Ok((stream, peer)) = accepted {
                spawn_conn(stream, peer, &worker, kind, proxy);
            }
            return;
        }
        match accepted {
            Ok((stream, _)) if worker.io.conns.len() >= worker.config().max_connections => {
                worker.stats().shed.add(1);
                worker.tasks.spawn(http1::shed(stream, worker.clone(), kind));
            }
            Ok((stream, peer)) => {
                worker.stats().accepted.add(1);
                spawn_conn(stream, peer, &worker, kind, proxy);
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
                crate::runtime::timer::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
