//! A worker's thread: pinned to its CPU, its own io_uring ring and executor, its buffers
//! registered, its state built, and its tasks started: an accept loop per listener, the sweeper
//! and the controller. It runs until the process exits.

use std::net::TcpListener as StdListener;
use std::rc::Rc;
use std::sync::mpsc::Sender;
use std::sync::Arc;

use tokio::sync::mpsc::UnboundedReceiver;
use tokio_uring::net::TcpListener;

use super::accept::accept_loop;
use super::control::{Control, Heartbeats, RouterFactory, WorkerEvent};
use super::controller::controller;
use super::sweeper::sweeper;
use crate::config::ServerConfig;
use crate::error::ServerError;
use crate::io::buf::Buffers;
use crate::io::conn_io::WorkerIo;
use crate::io::listener::ListenerKind;
use crate::io::ring;
use crate::ops::access_log::{AccessLog, AccessLogConfig};
use crate::ops::stats::WorkerStats;
use crate::traffic::{LimitSet, WorkerTraffic};
use crate::worker::Worker;

/// Sends `Died` if the worker's thread ends, however it ends.
struct ExitGuard {
    id: usize,
    events: Sender<WorkerEvent>,
}

impl Drop for ExitGuard {
    fn drop(&mut self) {
        let reason = if std::thread::panicking() {
            "it panicked (see the log line above)"
        } else {
            "its runtime returned"
        };
        let _ = self.events.send(WorkerEvent::Died(self.id, reason.to_owned()));
    }
}

/// Everything a worker starts with.
pub(crate) struct WorkerSetup {
    pub(crate) id: usize,
    pub(crate) core: Option<core_affinity::CoreId>,
    /// Each listener, what it speaks, and whether its connections start with a PROXY header.
    pub(crate) listeners: Vec<(StdListener, ListenerKind, bool)>,
    /// The listeners came from the service manager: a drain must not shut them down (the next
    /// instance inherits the same sockets), only stop accepting.
    pub(crate) inherited: bool,
    pub(crate) config: Arc<ServerConfig>,
    pub(crate) factory: RouterFactory,
    pub(crate) events: Sender<WorkerEvent>,
    pub(crate) control: UnboundedReceiver<Control>,
    pub(crate) heartbeats: Heartbeats,
    pub(crate) stats: Arc<WorkerStats>,
    pub(crate) access_log: Option<(AccessLogConfig, std::fs::File)>,
    pub(crate) tls: Option<Arc<rustls::ServerConfig>>,
    pub(crate) https_port: u16,
    /// The rate and connection limits in force at start-up.
    pub(crate) limits: Arc<LimitSet>,
    /// The process's tokio runtime, for handlers (see [`start_tokio`]).
    pub(crate) tokio: tokio::runtime::Handle,
}

/// Runs a worker on the calling thread; returns only if it fails.
pub(crate) fn run(setup: WorkerSetup) {
    let WorkerSetup {
        id,
        core,
        listeners,
        inherited,
        config,
        factory,
        events,
        control,
        heartbeats,
        stats,
        access_log,
        tls,
        https_port,
        limits,
        tokio,
    } = setup;
    let _guard = ExitGuard {
        id,
        events: events.clone(),
    };
    if let Some(core) = core {
        if !core_affinity::set_for_current(core) {
            tracing::warn!(
                worker = id,
                cpu = core.id,
                "could not pin worker to its CPU; running unpinned"
            );
        }
    }
    let ring = match ring::ring(config.ring_entries) {
        Ok(ring) => ring,
        Err(e) => {
            let _ = events.send(WorkerEvent::Failed(e));
            return;
        }
    };
    // Tokio's timers, I/O and `tokio::spawn` in handlers run on the process's tokio thread; what
    // they wake here comes back through the executor's wakes from other threads.
    let _tokio = tokio.enter();
    let buffers = match Buffers::register(config.buffers, id, stats.clone()) {
        Ok(buffers) => buffers,
        Err(e) => {
            let _ = events.send(WorkerEvent::Failed(e));
            return;
        }
    };
    // Splices run on io-wq threads; cap them to what `sendfile` keeps in flight (the others
    // are ops that may block on disk).
    let mut io_workers = [0, (crate::io::file::MAX_SPLICING + 8) as u32];
    if let Err(e) = tokio_uring::limit_io_workers(&mut io_workers, None) {
        tracing::debug!(worker = id, "cannot cap io_uring worker threads: {e}");
    }
    register_file_table(id, config.max_connections);
    // Duplicates of the listening sockets, to shut them down when draining (a pending accept
    // cannot be cancelled; `shutdown` makes it fail, and with `net.ipv4.tcp_migrate_req=1` the
    // kernel hands queued connections to another listener of the port).
    let mut dups: Vec<StdListener> = Vec::with_capacity(listeners.len());
    for (l, _, _) in listeners.iter().filter(|_| !inherited) {
        match l.try_clone() {
            Ok(d) => dups.push(d),
            Err(e) => tracing::warn!(worker = id, "cannot keep a handle on a listener for draining: {e}"),
        }
    }
    let io = WorkerIo::new(buffers, stats, (&*config).into());
    let worker = Rc::new(Worker::new(
        io,
        &config,
        factory(id),
        tls,
        access_log.map(|(config, file)| AccessLog::new(config, file)),
        https_port,
        WorkerTraffic::new(id, limits, &config.compression),
    ));
    for (listener, kind, proxy) in listeners {
        let listener = TcpListener::from_std(listener);
        worker
            .tasks
            .spawn(accept_loop(id, listener, kind, proxy, worker.clone()));
    }
    worker.tasks.spawn(sweeper(id, worker.clone(), heartbeats));
    worker.tasks.spawn(controller(id, worker.clone(), control, dups));
    // Every descriptor the worker needs is open before it is ready: from here on, running out
    // of them pauses accepts and never stops the worker.
    if let Err(cause) = worker.tasks.open_wakes() {
        let _ = events.send(WorkerEvent::Failed(ServerError::WakeFd { worker: id, cause }));
        // The server stops on that error; its tasks are left as they are, never dropped
        // outside the executor that owns them.
        std::mem::forget(worker);
        std::mem::forget(ring);
        return;
    }
    let _ = events.send(WorkerEvent::Ready);
    // The ring must never be dropped while operations are in flight (the kernel would write
    // into freed buffers), so the worker runs until the process exits.
    if let Err(e) = worker.tasks.run(&ring, &|| false) {
        tracing::error!(worker = id, "the worker's ring failed: {e}");
    }
    std::mem::forget(worker);
    std::mem::forget(ring);
}

/// Starts the process's tokio runtime on a thread of its own, for what handlers use of tokio
/// (timers, I/O, `tokio::spawn`): workers run no tokio runtime (their executor parks in their
/// ring), so they enter this one's handle. It runs until the process exits.
pub(crate) fn start_tokio() -> std::io::Result<tokio::runtime::Handle> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let handle = rt.handle().clone();
    std::thread::Builder::new()
        .name("ringd-tokio".to_owned())
        .spawn(move || rt.block_on(std::future::pending::<()>()))?;
    Ok(handle)
}

/// A file table on the worker's ring, for the sockets of its keep-alive connections (see
/// `Transport::register_fixed`): as many slots as connections, halved while the kernel refuses
/// (it allows no more than `RLIMIT_NOFILE`; kernels before 5.19 have no sparse tables). Without
/// one, operations name the socket by its descriptor, as they always did.
fn register_file_table(id: usize, max_connections: usize) {
    let mut slots = u32::try_from(max_connections).unwrap_or(u32::MAX);
    while slots >= 64 {
        match tokio_uring::register_files_sparse(slots) {
            Ok(()) => {
                tracing::debug!(worker = id, slots, "registered a file table");
                return;
            }
            Err(e) => {
                tracing::debug!(worker = id, slots, "no file table of this size: {e}");
                slots /= 2;
            }
        }
    }
}
