//! What the main thread and the workers say to each other: start-up and failure reports,
//! reloads, drains, and a heartbeat per worker.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use crate::app::router::Router;
use crate::config::ServerConfig;
use crate::error::ServerError;
use crate::traffic::LimitSet;

/// Builds a worker's router; called once on each worker's thread with the worker's index.
pub(crate) type RouterFactory = Arc<dyn Fn(usize) -> Router + Send + Sync>;

/// What a worker reports to the thread that started it.
pub(crate) enum WorkerEvent {
    /// Listening on every address.
    Ready,
    /// Failed to start.
    Failed(ServerError),
    /// Stopped (it should never): a panic or a runtime failure.
    Died(usize, String),
}

/// What the main thread asks of a running worker.
pub(crate) enum Control {
    /// New configuration and routes (SIGHUP).
    Reload {
        config: Arc<ServerConfig>,
        factory: RouterFactory,
        tls: Option<Arc<rustls::ServerConfig>>,
        limits: Arc<LimitSet>,
    },
    /// Stop accepting, finish what is open, then count itself in `drained`.
    Drain { drained: Arc<AtomicUsize> },
    /// Flush the access log and reopen its file (SIGUSR1, after logrotate).
    ReopenLogs,
}

/// One counter per worker, advanced by the worker's own runtime once a second: a worker whose
/// counter stops is stuck (a handler that blocks its thread, a wedged ring). Written once a
/// second, so the atomics cost nothing on the request path.
#[derive(Clone, Debug)]
pub struct Heartbeats(Arc<[AtomicU64]>);

impl Heartbeats {
    pub(super) fn new(workers: usize) -> Heartbeats {
        Heartbeats((0..workers).map(|_| AtomicU64::new(0)).collect())
    }

    pub(crate) fn beat(&self, worker: usize) {
        self.0[worker].fetch_add(1, Ordering::Relaxed);
    }

    /// The current count of every worker.
    pub fn snapshot(&self) -> Vec<u64> {
        self.0.iter().map(|b| b.load(Ordering::Relaxed)).collect()
    }
}
