//! A worker's per-core state: what every connection on one core shares, and nothing any other
//! core sees. Its thread, loops and start-up are the server's (`crate::server`); this is what a
//! connection may use.

mod date;
mod slot;

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use ringd_core::CommonLines;

pub(crate) use crate::runtime::{clock_ns, turn_ns, turn_started, Tasks};
pub(crate) use slot::ConnSlot;

use crate::app::router::Router;
use crate::app::type_lines::TypeLines;
use crate::config::ServerConfig;
use crate::io::conn_io::WorkerIo;
use crate::ops::access_log::AccessLog;
use crate::ops::log_budget::LogBudget;
use crate::ops::stats::WorkerStats;
use crate::traffic::{LimitSet, WorkerTraffic};
use date::WorkerDate;

/// A worker's state, shared by its tasks through an `Rc` (one thread).
pub(crate) struct Worker {
    /// Buffers, the connection table and its deadlines, counters.
    pub(crate) io: WorkerIo,
    /// Replaced as a whole by a reload; connections take an `Rc` of it per request.
    config: RefCell<Rc<ServerConfig>>,
    router: RefCell<Rc<Router>>,
    /// The TLS configuration for new handshakes (a reload replaces it; a connection keeps the
    /// one it started with).
    tls: RefCell<Option<Arc<rustls::ServerConfig>>>,
    date: RefCell<WorkerDate>,
    /// The `Content-Type` lines of the types ringd's own responses use.
    pub(crate) type_lines: TypeLines,
    /// Set by a drain: answer with `Connection: close`, give idle connections a short grace.
    draining: Cell<bool>,
    /// Wakes connections that must act on a drain themselves (HTTP/2 sends GOAWAY).
    drain_started: tokio::sync::Notify,
    /// This worker's access log buffer and file, if logging.
    pub(crate) access_log: Option<AccessLog>,
    /// The port redirecting listeners send clients to.
    pub(crate) https_port: u16,
    /// Rate and connection limits, compression contexts.
    pub(crate) traffic: WorkerTraffic,
    /// The executor of the worker's accept loops, connections and HTTP/2 streams.
    pub(crate) tasks: Tasks,
}

impl Worker {
    pub(crate) fn new(
        io: WorkerIo,
        config: &ServerConfig,
        router: Router,
        tls: Option<Arc<rustls::ServerConfig>>,
        access_log: Option<AccessLog>,
        https_port: u16,
        traffic: WorkerTraffic,
    ) -> Worker {
        Worker {
            io,
            config: RefCell::new(Rc::new(config.clone())),
            router: RefCell::new(Rc::new(router)),
            tls: RefCell::new(tls),
            date: RefCell::new(WorkerDate::new()),
            type_lines: TypeLines::new(),
            draining: Cell::new(false),
            drain_started: tokio::sync::Notify::new(),
            access_log,
            https_port,
            traffic,
            tasks: Tasks::new(),
        }
    }

    /// The configuration in force (reloads replace it; a request in progress keeps its copy).
    #[inline]
    pub(crate) fn config(&self) -> Rc<ServerConfig> {
        self.config.borrow().clone()
    }

    /// The routes in force.
    #[inline]
    pub(crate) fn router(&self) -> Rc<Router> {
        self.router.borrow().clone()
    }

    /// The TLS configuration for a new connection.
    pub(crate) fn tls(&self) -> Option<Arc<rustls::ServerConfig>> {
        self.tls.borrow().clone()
    }

    /// Swaps in a reloaded configuration, its routes, its certificates and its limits. Requests
    /// being answered finish with what they started with.
    pub(crate) fn reload(
        &self,
        config: &ServerConfig,
        router: Router,
        tls: Option<Arc<rustls::ServerConfig>>,
        limits: Arc<LimitSet>,
    ) {
        self.traffic.replace(limits, &config.compression);
        *self.router.borrow_mut() = Rc::new(router);
        *self.config.borrow_mut() = Rc::new(config.clone());
        self.io.set_settings(config.into());
        // The `Server` line may have changed.
        self.date.borrow_mut().stale();
        *self.tls.borrow_mut() = tls;
    }

    /// Whether the worker drains (answers with `Connection: close`).
    #[inline]
    pub(crate) fn is_draining(&self) -> bool {
        self.draining.get()
    }

    /// Starts draining (for good), and wakes the connections that wait for it
    /// ([`Worker::drain_started`]).
    pub(crate) fn start_draining(&self) {
        self.draining.set(true);
        self.drain_started.notify_waiters();
    }

    /// Completes when a drain starts (after this is called).
    pub(crate) fn drain_started(&self) -> tokio::sync::futures::Notified<'_> {
        self.drain_started.notified()
    }

    /// This worker's counters.
    #[inline]
    pub(crate) fn stats(&self) -> &WorkerStats {
        &self.io.stats
    }

    /// The budget for log lines clients can cause.
    #[inline]
    pub(crate) fn log_budget(&self) -> &LogBudget {
        &self.io.log_budget
    }

    /// The `Date` and `Server` lines at `now` (see [`WorkerDate::expired`]).
    #[inline]
    pub(crate) fn common_lines(&self, now: Instant) -> Rc<CommonLines> {
        let mut date = self.date.borrow_mut();
        if date.expired(now) {
            date.render(now, &self.config.borrow().server_name);
        }
        date.lines()
    }
}

impl Worker {
    /// The `date` and `server` fields of an HTTP/2 response at `now` (rendered once a second,
    /// like [`Worker::common_lines`]).
    pub(crate) fn h2_fields(&self, now: Instant) -> (http::HeaderValue, Option<http::HeaderValue>) {
        let mut date = self.date.borrow_mut();
        if date.expired(now) {
            date.render(now, &self.config.borrow().server_name);
        }
        date.fields()
    }
}

/// Starts writing the access log's pending lines, unless a write is already under way.
pub(crate) fn spawn_log_flush(worker: &Rc<Worker>) {
    if let Some(log) = &worker.access_log {
        if log.has_pending() && !log.flushing() {
            let flushing = worker.clone();
            worker.tasks.spawn(async move {
                if let Some(log) = &flushing.access_log {
                    log.flush().await;
                }
            });
        }
    }
}
