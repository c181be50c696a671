//! A worker's controller: applies what the main thread asks (reloads, drains, reopening logs).

use std::net::TcpListener as StdListener;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedReceiver;

use super::control::Control;
use crate::runtime::timer;
use crate::worker::{spawn_log_flush, Worker};

/// Applies what the main thread asks: reloads (the new routes are built on this thread, then
/// swapped in; requests already being answered finish with what they started with) and drains.
/// `listeners` are this worker's listening sockets, to shut down when draining (none when they
/// were inherited from the service manager: the next instance inherits them too).
pub(super) async fn controller(
    id: usize,
    worker: Rc<Worker>,
    mut control: UnboundedReceiver<Control>,
    listeners: Vec<StdListener>,
) {
    while let Some(msg) = control.recv().await {
        match msg {
            Control::Reload {
                config,
                factory,
                tls,
                limits,
            } => match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| factory(id))) {
                Ok(router) => worker.reload(&config, router, tls, limits),
                Err(_) => tracing::error!(worker = id, "building the new routes panicked; keeping the old ones"),
            },
            Control::Drain { drained } => {
                drain(id, &worker, &listeners).await;
                if let Some(log) = &worker.access_log {
                    // Bounded: a target that stopped taking data must not hold up the exit.
                    let _ = timer::timeout(Duration::from_secs(2), log.flush()).await;
                }
                drained.fetch_add(1, Ordering::SeqCst);
            }
            Control::ReopenLogs => {
                if let Some(log) = &worker.access_log {
                    if timer::timeout(Duration::from_secs(5), log.reopen()).await.is_err() {
                        tracing::error!(
                            worker = id,
                            "the access log did not take its pending lines; not reopened"
                        );
                    }
                }
            }
        }
    }
}

/// Stops accepting and waits until every connection of this worker has closed. Connections
/// close themselves: each answers its current request with `Connection: close`, and idle ones
/// get `timeouts.drain_idle` to send one last request.
async fn drain(id: usize, worker: &Rc<Worker>, listeners: &[StdListener]) {
    worker.start_draining();
    for l in listeners {
        let _ = socket2::SockRef::from(l).shutdown(std::net::Shutdown::Both);
    }
    let grace = Instant::now() + worker.config().timeouts.drain_idle;
    let conns = &worker.io.conns;
    conns.shorten_idle(grace);
    let open = conns.len();
    tracing::info!(worker = id, open, "draining: stopped accepting");
    while conns.len() > 0 {
        // Lines are written as the drain goes, so an exit at the drain timeout loses little.
        spawn_log_flush(worker);
        timer::sleep(Duration::from_millis(20)).await;
    }
}
