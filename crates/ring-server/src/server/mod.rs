//! The top of the server: bind every listener up front (so that start-up errors are reported
//! before anything runs), start one pinned worker thread per core, wait until all listen, and
//! then reload, drain or watch them.

/// A worker's accept loop.
mod accept;
/// What the main thread and the workers say to each other.
mod control;
/// A worker's controller: reloads, drains, reopening logs.
mod controller;
/// A worker's once-a-second sweeper: heartbeat, deadlines, reports.
mod sweeper;
/// A worker's thread: its runtime, buffers, state and tasks.
mod thread;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;

use crate::app::router::Router;
use crate::config::{ServerConfig, Workers};
use crate::error::ServerError;
use crate::io::buf::memlock_shortfall;
use crate::io::listener::{self, ListenOptions, ListenerKind};
use crate::ops::access_log::AccessLog;
use crate::ops::stats::Metrics;
use crate::tls::{self, Resumption};
use crate::traffic::Limits;
pub use control::Heartbeats;
use control::{Control, RouterFactory, WorkerEvent};
use thread::WorkerSetup;

/// A server that has not started yet.
pub struct Server {
    config: ServerConfig,
    factory: RouterFactory,
    inherited: Vec<std::net::TcpListener>,
}

impl Server {
    /// A server with this configuration; `routes` builds each worker's router on its own thread,
    /// so handlers may hold per-core, non-`Send` state.
    pub fn new(config: ServerConfig, routes: impl Fn(usize) -> Router + Send + Sync + 'static) -> Server {
        Server {
            config,
            factory: Arc::new(routes),
            inherited: Vec::new(),
        }
    }

    /// Serves on listening sockets made by someone else (systemd socket activation) instead of
    /// binding `config.listen`. Every worker accepts from each of them (one shared queue).
    pub fn with_listeners(mut self, listeners: Vec<std::net::TcpListener>) -> Server {
        self.inherited = listeners;
        self
    }

    /// Binds, starts every worker and returns once all of them listen, or the first error.
    pub fn start(self) -> Result<RunningServer, ServerError> {
        self.config.validate()?;
        let cores = core_affinity::get_core_ids()
            .filter(|c| !c.is_empty())
            .ok_or(ServerError::NoCores)?;
        let count = match self.config.workers {
            Workers::Auto => cores.len(),
            Workers::Count(n) => n,
        };
        // Certificates first: a bad one is a start-up error before any socket is bound.
        let resumption = self.config.tls.as_ref().map(|_| Resumption::new()).transpose()?;
        let tls_config = match (&self.config.tls, &resumption) {
            (Some(config), Some(resumption)) => Some(tls::build(config, resumption, self.config.http2.tls)?),
            _ => None,
        };
        let kind = if tls_config.is_some() {
            ListenerKind::Tls
        } else {
            ListenerKind::Plain
        };
        // Each worker's listeners, what they speak, and whether a PROXY header comes first.
        let mut per_worker: Vec<Vec<(std::net::TcpListener, ListenerKind, bool)>> =
            (0..count).map(|_| Vec::new()).collect();
        let mut local_addrs = Vec::new();
        for l in &self.inherited {
            let addr = l.local_addr().map_err(|e| ServerError::Inherited { cause: e })?;
            // Accepted sockets inherit TCP_NODELAY from the listener, as with our own.
            socket2::SockRef::from(l)
                .set_nodelay(true)
                .map_err(|e| ServerError::Inherited { cause: e })?;
            local_addrs.push(addr);
            let proxy = self.config.proxy_protocol.contains(&addr);
            for slot in per_worker.iter_mut() {
                slot.push((
                    l.try_clone().map_err(|e| ServerError::Inherited { cause: e })?,
                    kind,
                    proxy,
                ));
            }
        }
        let own: &[SocketAddr] = if self.inherited.is_empty() {
            &self.config.listen
        } else {
            &[]
        };
        // One SO_REUSEPORT group per address, a listener of it for each worker; the addresses
        // as bound (port 0 resolved).
        let listen_options = ListenOptions {
            backlog: self.config.backlog,
            defer_accept: self.config.defer_accept.then_some(self.config.timeouts.header),
        };
        let mut bind = |addrs: &[SocketAddr], kind: ListenerKind| -> Result<Vec<SocketAddr>, ServerError> {
            let mut bound = Vec::with_capacity(addrs.len());
            for addr in addrs {
                let proxy = self.config.proxy_protocol.contains(addr);
                let group = listener::bind_group(*addr, count, listen_options)?;
                bound.push(
                    group[0]
                        .local_addr()
                        .map_err(|e| ServerError::Listen { addr: *addr, cause: e })?,
                );
                for (i, l) in group.into_iter().enumerate() {
                    per_worker[i].push((l, kind, proxy));
                }
            }
            Ok(bound)
        };
        local_addrs.extend(bind(own, kind)?);
        let redirect_addrs = bind(&self.config.redirect_listen, ListenerKind::Redirect)?;
        let https_port = local_addrs.first().map_or(443, SocketAddr::port);
        let log_file = match &self.config.access_log {
            Some(log) => Some(AccessLog::open(log).map_err(|e| ServerError::AccessLog {
                target: format!("{:?}", log.target),
                cause: e,
            })?),
            None => None,
        };
        let inherited = !self.inherited.is_empty();
        let config = Arc::new(self.config);
        let (tx, events) = mpsc::channel();
        let mut reloads = Vec::with_capacity(count);
        let heartbeats = Heartbeats::new(count);
        let metrics = Metrics::new(count);
        // Shared by every worker: one table per zone, the connection counts.
        let limits = Arc::new(Limits::new(
            &config.rate_limits,
            config.connection_limit.as_ref(),
            count,
        ));
        metrics.add(limits.clone());
        let tokio = thread::start_tokio().map_err(|cause| ServerError::TokioThread { cause })?;
        for (id, listeners) in per_worker.into_iter().enumerate() {
            let core = config.pin.then(|| cores[id % cores.len()]);
            let (config, factory, tx) = (config.clone(), self.factory.clone(), tx.clone());
            let tls = tls_config.clone();
            let heartbeats = heartbeats.clone();
            let in_force = limits.current();
            let stats = metrics.worker(id);
            let tokio = tokio.clone();
            let access_log = match (&log_file, &config.access_log) {
                (Some(f), Some(c)) => Some((
                    c.clone(),
                    f.try_clone().map_err(|e| ServerError::AccessLog {
                        target: format!("{:?}", c.target),
                        cause: e,
                    })?,
                )),
                _ => None,
            };
            let (reload_tx, reload_rx) = tokio::sync::mpsc::unbounded_channel();
            reloads.push(reload_tx);
            std::thread::Builder::new()
                .name(format!("ringd-w{id}"))
                .spawn(move || {
                    thread::run(WorkerSetup {
                        id,
                        core,
                        listeners,
                        inherited,
                        config,
                        factory,
                        events: tx,
                        control: reload_rx,
                        heartbeats,
                        stats,
                        access_log,
                        tls,
                        https_port,
                        limits: in_force,
                        tokio,
                    })
                })
                .map_err(|e| ServerError::Spawn { worker: id, cause: e })?;
        }
        drop(tx);
        let mut ready = 0;
        while ready < count {
            match events.recv() {
                Ok(WorkerEvent::Ready) => ready += 1,
                Ok(WorkerEvent::Failed(e)) => return Err(e),
                Ok(WorkerEvent::Died(worker, reason)) => return Err(ServerError::WorkerDied { worker, reason }),
                Err(_) => {
                    return Err(ServerError::WorkerDied {
                        worker: ready,
                        reason: "it exited before listening".to_owned(),
                    })
                }
            }
        }
        // Said once for all workers: how many fixed buffers the locked memory limit allowed.
        let (registered, configured) = metrics.fixed_buffers();
        if registered < configured {
            tracing::warn!("{}", memlock_shortfall(registered, configured, config.buffers));
        }
        Ok(RunningServer {
            local_addrs,
            redirect_addrs,
            resumption,
            workers: count,
            config: (*config).clone(),
            reloads,
            heartbeats,
            metrics,
            limits,
            events: Some(events),
        })
    }
}

/// A started server: every worker is listening.
pub struct RunningServer {
    local_addrs: Vec<SocketAddr>,
    redirect_addrs: Vec<SocketAddr>,
    /// Ticket keys and the session cache, kept across reloads (only with TLS).
    resumption: Option<Resumption>,
    workers: usize,
    config: ServerConfig,
    reloads: Vec<tokio::sync::mpsc::UnboundedSender<Control>>,
    heartbeats: Heartbeats,
    metrics: Metrics,
    /// The rate and connection limits, kept across reloads.
    limits: Arc<Limits>,
    events: Option<Receiver<WorkerEvent>>,
}

impl RunningServer {
    /// The addresses listened on, in `listen` order, with port 0 resolved.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local_addrs
    }

    /// The addresses that redirect to `https://`, in `redirect_listen` order.
    pub fn redirect_addrs(&self) -> &[SocketAddr] {
        &self.redirect_addrs
    }

    /// How many workers run.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Each worker's heartbeat, which advances once a second while its runtime runs.
    pub fn heartbeats(&self) -> Heartbeats {
        self.heartbeats.clone()
    }

    /// Every worker's counters, for a scrape from any thread.
    pub fn metrics(&self) -> Metrics {
        self.metrics.clone()
    }

    /// The configuration in force.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// Replaces the configuration and routes of every worker without dropping a connection:
    /// requests in progress finish as they started, the next ones use the new settings.
    /// Returns the names of changed settings that only a restart can apply (see
    /// [`RESTART_ONLY`](crate::RESTART_ONLY)); those keep their running values.
    pub fn reload(
        &mut self,
        mut config: ServerConfig,
        routes: impl Fn(usize) -> Router + Send + Sync + 'static,
    ) -> Result<Vec<&'static str>, ServerError> {
        config.validate()?;
        let mut ignored = config.keep_restart_only(&self.config);
        // The certificate files are read again even when their names did not change: renewing a
        // certificate in place and sending SIGHUP is the usual way. A bad file fails the whole
        // reload, so the running certificates stay.
        let tls_config = match (&config.tls, &self.resumption) {
            (Some(files), Some(resumption)) => Some(tls::build(files, resumption, config.http2.tls)?),
            (None, None) => None,
            _ => {
                ignored.push("tls");
                config.tls = self.config.tls.clone();
                match (&config.tls, &self.resumption) {
                    (Some(files), Some(resumption)) => Some(tls::build(files, resumption, config.http2.tls)?),
                    _ => None,
                }
            }
        };
        let shared = Arc::new(config.clone());
        let factory: RouterFactory = Arc::new(routes);
        // Zones that keep their name keep their clients (see `traffic::limits`).
        let limits = self.limits.apply(&config.rate_limits, config.connection_limit.as_ref());
        for (worker, tx) in self.reloads.iter().enumerate() {
            tx.send(Control::Reload {
                config: shared.clone(),
                factory: factory.clone(),
                tls: tls_config.clone(),
                limits: limits.clone(),
            })
            .map_err(|_| ServerError::WorkerDied {
                worker,
                reason: "it no longer takes reloads".to_owned(),
            })?;
        }
        self.config = config;
        Ok(ignored)
    }

    /// Makes every worker flush its access log and reopen the file (after logrotate moved it).
    pub fn reopen_logs(&self) {
        for tx in &self.reloads {
            let _ = tx.send(Control::ReopenLogs);
        }
    }

    /// Drains every worker: stop accepting (queued connections go to another listener of the
    /// port when `net.ipv4.tcp_migrate_req=1`), answer open requests with `Connection: close`,
    /// give idle keep-alive connections `timeouts.drain_idle` for a last request, and wait until
    /// all connections are closed or `timeouts.drain` has passed. Returns whether every worker
    /// finished in time. The workers' runtimes are left running (and idle): the caller exits.
    /// From its start, [`Metrics::is_ready`] is false (the admin listener's `/readyz` says 503).
    pub fn drain(&self) -> bool {
        // Before any worker stops accepting: a balancer's readiness check (/readyz) must see the
        // drain no later than the clients do.
        self.metrics.start_draining();
        let drained = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        for tx in &self.reloads {
            let _ = tx.send(Control::Drain {
                drained: drained.clone(),
            });
        }
        let deadline = std::time::Instant::now() + self.config.timeouts.drain;
        while drained.load(Ordering::SeqCst) < self.reloads.len() {
            if std::time::Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        true
    }

    /// Takes the watch over the workers, to wait for a failure on another thread while this
    /// handle keeps serving reloads.
    pub fn watch(&mut self) -> WorkerWatch {
        WorkerWatch {
            events: self.events.take(),
        }
    }

    /// Blocks until a worker stops, which only happens when something went wrong.
    pub fn wait(mut self) -> ServerError {
        self.watch().wait()
    }
}

/// Waits for the first worker failure.
pub struct WorkerWatch {
    events: Option<Receiver<WorkerEvent>>,
}

impl WorkerWatch {
    /// Blocks until a worker stops (or forever, if another watch was taken first).
    pub fn wait(self) -> ServerError {
        let Some(events) = self.events else {
            loop {
                std::thread::park();
            }
        };
        loop {
            match events.recv() {
                Ok(WorkerEvent::Died(worker, reason)) => return ServerError::WorkerDied { worker, reason },
                Ok(WorkerEvent::Failed(e)) => return e,
                Ok(WorkerEvent::Ready) => {}
                Err(_) => {
                    return ServerError::WorkerDied {
                        worker: 0,
                        reason: "every worker exited".to_owned(),
                    }
                }
            }
        }
    }
}
