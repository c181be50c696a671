//! A worker: one thread pinned to one CPU, one tokio-uring runtime, its own listeners, fixed
//! buffers, router and connections. Nothing in here is shared with other workers.

use std::cell::{Cell, RefCell};
use std::net::TcpListener as StdListener;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ringd_core::{CommonLines, DateCache};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_uring::buf::fixed::FixedBufPool;
use tokio_uring::buf::BufRing;
use tokio_uring::net::{TcpListener, TcpStream};

use crate::app::router::Router;
use crate::app::type_lines::TypeLines;
use crate::config::ServerConfig;
use crate::conn;
use crate::error::ServerError;
use crate::io::buf::{OutBuf, PageBuf};
use crate::io::conns::ConnTable;
use crate::io::listener::ListenerKind;
use crate::io::ring;
use crate::ops::access_log::{AccessLog, AccessLogConfig};
use crate::ops::log_budget::LogBudget;
use crate::ops::stats::{Op, WorkerStats};
use crate::server::{Heartbeats, RouterFactory};

/// What a worker reports to the thread that started it.
pub(crate) enum WorkerEvent {
    /// Listening on every address.
    Ready,
    /// Failed to start.
    Failed(ServerError),
    /// Stopped (it should never): a panic or a runtime failure.
    Died(usize, String),
}

/// A worker's state, shared by its tasks through an `Rc` (single thread).
pub(crate) struct Worker {
    /// Replaced as a whole by a reload; connections take an `Rc` of it per request.
    config: RefCell<Rc<ServerConfig>>,
    router: RefCell<Rc<Router>>,
    pub(crate) pool: FixedBufPool<PageBuf>,
    /// The provided-buffer ring that idle plain connections receive into (`None`: configured
    /// off or not supported; each connection then keeps a read buffer).
    pub(crate) recv_ring: Option<BufRing>,
    /// Read buffers of connections that went idle, for the next request that arrives (a
    /// free list: at a few hundred requests a tick, malloc's per-thread cache overflows).
    read_bufs: RefCell<Vec<Vec<u8>>>,
    /// Output buffers of plain connections that have sent everything, for the next one that
    /// answers (an idle connection holds none). Boxed: a connection holds its buffer as a box
    /// (8 bytes of its state), and passing it back and forth moves only the pointer.
    #[allow(clippy::vec_box)]
    out_bufs: RefCell<Vec<Box<OutBuf>>>,
    pub(crate) conns: ConnTable,
    date: RefCell<WorkerDate>,
    /// The `Content-Type` lines of the types ringd's own responses use.
    pub(crate) type_lines: TypeLines,
    /// Set by a drain: answer with `Connection: close`, give idle connections a short grace.
    pub(crate) draining: Cell<bool>,
    /// Duplicates of the listening sockets, to shut them down when draining (a pending accept
    /// cannot be cancelled; `shutdown` makes it fail, and with `net.ipv4.tcp_migrate_req=1` the
    /// kernel hands queued connections to another listener of the port).
    listeners: Vec<StdListener>,
    /// This worker's counters (it is their only writer).
    pub(crate) stats: Arc<WorkerStats>,
    /// This worker's access log buffer and file, if logging.
    pub(crate) access_log: Option<AccessLog>,
    /// Limits log lines caused by clients (failing handlers, bad responses).
    pub(crate) log_budget: LogBudget,
    /// The TLS configuration for new handshakes (a reload replaces it; a connection keeps the
    /// one it started with).
    tls: RefCell<Option<Arc<rustls::ServerConfig>>>,
    /// The port redirecting listeners send clients to.
    pub(crate) https_port: u16,
}

/// Read buffers kept for reuse per worker, and the largest kept.
const READ_BUFS_KEPT: usize = 256;
const READ_BUF_KEPT_MAX: usize = 4096;
/// Output buffers kept for reuse per worker, and the largest heap spill one keeps.
const OUT_BUFS_KEPT: usize = 256;
const OUT_SPILL_KEPT_MAX: usize = 4096;

impl Worker {
    /// An empty read buffer that holds at least `len` bytes.
    pub(crate) fn take_read_buf(&self, len: usize) -> Vec<u8> {
        match self.read_bufs.borrow_mut().pop() {
            Some(mut buf) => {
                buf.reserve(len);
                buf
            }
            None => Vec::with_capacity(len),
        }
    }

    /// Removes a connection's slot from the table (when the connection ends).
    pub(crate) fn forget_conn(&self, key: usize) {
        self.conns.remove(key);
        self.stats.open.set(self.conns.len() as u64);
    }

    /// An empty output buffer for a plain connection.
    pub(crate) fn take_out_buf(&self) -> Box<OutBuf> {
        self.out_bufs.borrow_mut().pop().unwrap_or_else(|| {
            Box::new(OutBuf::new(
                self.pool.clone(),
                self.config().buffers.size,
                self.stats.clone(),
            ))
        })
    }

    /// Keeps an empty output buffer (holding no fixed buffer) for
    /// [`take_out_buf`](Self::take_out_buf), unless enough are kept.
    pub(crate) fn give_out_buf(&self, mut out: Box<OutBuf>) {
        let mut kept = self.out_bufs.borrow_mut();
        if kept.len() < OUT_BUFS_KEPT {
            out.shrink_spill(OUT_SPILL_KEPT_MAX);
            kept.push(out);
        }
    }

    /// Keeps a read buffer for [`take_read_buf`](Self::take_read_buf), unless enough are kept
    /// or it is large.
    pub(crate) fn give_read_buf(&self, mut buf: Vec<u8>) {
        let mut kept = self.read_bufs.borrow_mut();
        if buf.capacity() != 0 && buf.capacity() <= READ_BUF_KEPT_MAX && kept.len() < READ_BUFS_KEPT {
            buf.clear();
            kept.push(buf);
        }
    }

    /// The configuration in force (reloads replace it; a request in progress keeps its copy).
    pub(crate) fn config(&self) -> Rc<ServerConfig> {
        self.config.borrow().clone()
    }

    /// The TLS configuration for a new connection.
    pub(crate) fn tls(&self) -> Option<Arc<rustls::ServerConfig>> {
        self.tls.borrow().clone()
    }

    /// The routes in force.
    pub(crate) fn router(&self) -> Rc<Router> {
        self.router.borrow().clone()
    }

    /// The `Date` and `Server` lines at `now` (a recent reading of the monotonic clock, which
    /// callers already have): the wall clock is read and the lines re-rendered only once `now`
    /// reaches the next whole second (or a reload made them stale), not per response.
    pub(crate) fn common_lines(&self, now: Instant) -> Rc<CommonLines> {
        let mut date = self.date.borrow_mut();
        let date = &mut *date;
        if date.until.is_none_or(|until| now >= until) {
            let wall = std::time::SystemTime::now();
            date.cache.get(wall);
            let into_second = wall
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            date.until = Some(now + Duration::from_nanos(u64::from(1_000_000_000 - into_second)));
            let server = &self.config.borrow().server_name;
            // In place unless a response being written still holds the old lines.
            Rc::make_mut(&mut date.lines).set(date.cache.last(), server.as_bytes());
        }
        date.lines.clone()
    }
}

/// A worker's `Date` value, the `Date` and `Server` lines made from it, and until when (on the
/// monotonic clock) they hold.
struct WorkerDate {
    cache: DateCache,
    lines: Rc<CommonLines>,
    until: Option<Instant>,
}

/// What the main thread asks of a running worker.
pub(crate) enum Control {
    /// New configuration and routes (SIGHUP).
    Reload {
        config: Arc<ServerConfig>,
        factory: RouterFactory,
        tls: Option<Arc<rustls::ServerConfig>>,
    },
    /// Stop accepting, finish what is open, then count itself in `drained`.
    Drain { drained: Arc<AtomicUsize> },
    /// Flush the access log and reopen its file (SIGUSR1, after logrotate).
    ReopenLogs,
}

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
    /// How many workers the server runs (for memlock advice).
    pub(crate) workers_total: usize,
    pub(crate) core: Option<core_affinity::CoreId>,
    pub(crate) listeners: Vec<(StdListener, ListenerKind)>,
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
}

/// Runs a worker on the calling thread; returns only if it fails.
pub(crate) fn run(setup: WorkerSetup) {
    let WorkerSetup {
        id,
        workers_total,
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
    let rt = match ring::runtime(config.ring_entries) {
        Ok(rt) => rt,
        Err(e) => {
            let _ = events.send(WorkerEvent::Failed(e));
            return;
        }
    };
    rt.block_on(async move {
        let buffers = config.buffers;
        let workers = workers_total;
        let pool = FixedBufPool::new(std::iter::repeat_with(|| PageBuf::zeroed(buffers.size)).take(buffers.count));
        if let Err(e) = pool.register() {
            let _ = events.send(WorkerEvent::Failed(ring::register_error(buffers, workers, e)));
            return;
        }
        // Splices run on io-wq threads; cap them to what `sendfile` keeps in flight (the
        // others are ops that may block on disk).
        let mut io_workers = [0, (crate::io::file::MAX_SPLICING + 8) as u32];
        if let Err(e) = tokio_uring::limit_io_workers(&mut io_workers, None) {
            tracing::debug!(worker = id, "cannot cap io_uring worker threads: {e}");
        }
        let recv_ring = match buffers.receive {
            0 => None,
            n => match BufRing::register(0, n as u16, crate::config::RECEIVE_BUFFER_SIZE) {
                Ok(ring) => Some(ring),
                Err(e) => {
                    if id == 0 {
                        tracing::warn!("{}", ring::buf_ring_error(&e));
                    }
                    None
                }
            },
        };
        let mut dups = Vec::with_capacity(listeners.len());
        for (l, _) in listeners.iter().filter(|_| !inherited) {
            match l.try_clone() {
                Ok(d) => dups.push(d),
                Err(e) => tracing::warn!(worker = id, "cannot keep a handle on a listener for draining: {e}"),
            }
        }
        let worker = Rc::new(Worker {
            router: RefCell::new(Rc::new(factory(id))),
            config: RefCell::new(Rc::new((*config).clone())),
            pool,
            recv_ring,
            read_bufs: RefCell::new(Vec::new()),
            out_bufs: RefCell::new(Vec::new()),
            conns: ConnTable::default(),
            date: RefCell::new(WorkerDate {
                cache: DateCache::new(),
                lines: Rc::default(),
                until: None,
            }),
            type_lines: TypeLines::new(),
            draining: Cell::new(false),
            listeners: dups,
            stats,
            access_log: access_log.map(|(config, file)| AccessLog::new(config, file)),
            log_budget: LogBudget::new(),
            tls: RefCell::new(tls),
            https_port,
        });
        worker.stats.fixed_total.set(buffers.count as u64);
        let receive = worker.recv_ring.as_ref().map_or(0, |_| buffers.receive);
        worker.stats.receive_total.set(receive as u64);
        for (listener, kind) in listeners {
            tokio_uring::spawn(accept_loop(id, TcpListener::from_std(listener), kind, worker.clone()));
        }
        tokio_uring::spawn(sweeper(id, worker.clone(), heartbeats));
        tokio_uring::spawn(controller(id, worker.clone(), control));
        let _ = events.send(WorkerEvent::Ready);
        // The runtime must never be dropped while operations are in flight (the kernel would
        // write into freed buffers), so the worker runs until the process exits.
        std::future::pending::<()>().await;
    });
}

/// Starts serving an accepted connection on its own task. The connection's future is boxed:
/// tokio moves a task's future by value as it spawns and finishes it, several copies of the
/// whole future per connection, where a box moves a pointer (callgrind: about 1,300
/// instructions a connection).
fn spawn_conn(stream: TcpStream, peer: std::net::SocketAddr, worker: &Rc<Worker>, kind: ListenerKind) {
    if let Some(conn) = conn::serve(stream, peer, worker.clone(), kind) {
        tokio_uring::spawn(Box::pin(conn));
    }
}

async fn accept_loop(id: usize, listener: TcpListener, kind: ListenerKind, worker: Rc<Worker>) {
    let mut last_warning: Option<Instant> = None;
    loop {
        worker.stats.op(Op::Accept);
        let accepted = listener.accept().await;
        if worker.draining.get() {
            // The listener was shut down; a connection accepted in the same instant is still
            // served (with `Connection: close`), never dropped.
            if let Ok((stream, peer)) = accepted {
                spawn_conn(stream, peer, &worker, kind);
            }
            return;
        }
        match accepted {
            Ok((stream, _)) if worker.conns.len() >= worker.config().max_connections => {
                worker.stats.shed.add(1);
                tokio_uring::spawn(conn::shed(stream, worker.clone(), kind));
            }
            Ok((stream, peer)) => {
                worker.stats.accepted.add(1);
                spawn_conn(stream, peer, &worker, kind);
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
                            open = worker.conns.len(),
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

/// Applies what the main thread asks: reloads (the new routes are built on this thread, then
/// swapped in; requests already being answered finish with what they started with) and drains.
async fn controller(id: usize, worker: Rc<Worker>, mut control: UnboundedReceiver<Control>) {
    while let Some(msg) = control.recv().await {
        match msg {
            Control::Reload { config, factory, tls } => {
                match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| factory(id))) {
                    Ok(router) => {
                        *worker.router.borrow_mut() = Rc::new(router);
                        *worker.config.borrow_mut() = Rc::new((*config).clone());
                        // The `Server` line may have changed: render the lines again.
                        worker.date.borrow_mut().until = None;
                        *worker.tls.borrow_mut() = tls;
                    }
                    Err(_) => tracing::error!(worker = id, "building the new routes panicked; keeping the old ones"),
                }
            }
            Control::Drain { drained } => {
                drain(id, &worker).await;
                if let Some(log) = &worker.access_log {
                    // Bounded: a target that stopped taking data must not hold up the exit.
                    let _ = tokio::time::timeout(Duration::from_secs(2), log.flush()).await;
                }
                drained.fetch_add(1, Ordering::SeqCst);
            }
            Control::ReopenLogs => {
                if let Some(log) = &worker.access_log {
                    if tokio::time::timeout(Duration::from_secs(5), log.reopen())
                        .await
                        .is_err()
                    {
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

/// Starts writing the access log's pending lines, unless a write is already under way.
pub(crate) fn spawn_log_flush(worker: &Rc<Worker>) {
    if let Some(log) = &worker.access_log {
        if log.has_pending() && !log.flushing() {
            let worker = worker.clone();
            tokio_uring::spawn(async move {
                if let Some(log) = &worker.access_log {
                    log.flush().await;
                }
            });
        }
    }
}

/// Stops accepting and waits until every connection of this worker has closed. Connections
/// close themselves: each answers its current request with `Connection: close`, and idle ones
/// get `timeouts.drain_idle` to send one last request.
async fn drain(id: usize, worker: &Rc<Worker>) {
    worker.draining.set(true);
    for l in &worker.listeners {
        let _ = socket2::SockRef::from(l).shutdown(std::net::Shutdown::Both);
    }
    let grace = Instant::now() + worker.config().timeouts.drain_idle;
    worker.conns.shorten_idle(grace);
    let open = worker.conns.len();
    tracing::info!(worker = id, open, "draining: stopped accepting");
    while worker.conns.len() > 0 {
        // Lines are written as the drain goes, so an exit at the drain timeout loses little.
        spawn_log_flush(worker);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Once a second: beat the heart (for a service manager's watchdog), enforce deadlines, and
/// report fixed-buffer fallbacks.
async fn sweeper(id: usize, worker: Rc<Worker>, heartbeats: Heartbeats) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last_fallback_log = Instant::now();
    let mut fallbacks_logged = 0;
    loop {
        tick.tick().await;
        heartbeats.beat(id);
        // Never awaited here: a target that stops taking data must not stop the deadlines.
        spawn_log_flush(&worker);
        worker.stats.open.set(worker.conns.len() as u64);
        if let Some(dropped) = worker
            .access_log
            .as_ref()
            .map(AccessLog::take_dropped)
            .filter(|d| *d > 0)
        {
            tracing::warn!(
                worker = id,
                dropped,
                "access log lines dropped: its target is not keeping up"
            );
        }
        let expired = worker.conns.sweep(Instant::now());
        worker.stats.timed_out.add(expired as u64);
        let suppressed = worker.log_budget.take_suppressed();
        if suppressed > 0 {
            tracing::warn!(
                worker = id,
                suppressed,
                "more log lines than the budget allows: suppressed"
            );
        }
        if expired > 0 {
            tracing::debug!(worker = id, expired, "closed connections past their deadline");
        }
        let fallbacks = worker.stats.fixed_fallbacks.get();
        if last_fallback_log.elapsed() >= Duration::from_secs(60) && fallbacks > fallbacks_logged {
            tracing::info!(
                worker = id,
                fallbacks = fallbacks - fallbacks_logged,
                "fixed-buffer pool was empty for some sends (heap used instead); consider raising buffers.count"
            );
            last_fallback_log = Instant::now();
            fallbacks_logged = fallbacks;
        }
    }
}
