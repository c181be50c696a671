//! [`WorkerTraffic`]: a worker's handle on traffic control: the limits in force (shared by
//! every worker) checked for each request and connection, and the worker's own compression
//! contexts.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ringd_core::RequestHead;

use crate::app::handler::Response;
use crate::ops::log_budget::LogBudget;
use crate::traffic::client::client_bits;
use crate::traffic::compress::{compress_response, Encoders};
use crate::traffic::config::Compression;
use crate::traffic::conn_limit::{Admission, ConnPermit};
use crate::traffic::limits::{LimitSet, Outcome};
use crate::traffic::rate::Decision;

/// What the rate-limit zones say about a request.
pub(crate) enum Verdict {
    /// Serve it now.
    Pass,
    /// Serve it after this wait (a burst spread out to the rate).
    Delay(Duration),
    /// Answer this instead (429 or the zone's status, with `Retry-After`).
    Refuse(Response),
}

/// What the connection limit says about a new connection.
pub(crate) enum Admit {
    /// Serve it; the permit (if it was counted) must live as long as the connection.
    Serve(Option<ConnPermit>),
    /// Answer with this status and close.
    Refuse(u16),
}

/// A worker's handle on traffic control.
pub(crate) struct WorkerTraffic {
    /// The worker's index: its row in every zone's counters.
    worker: usize,
    limits: RefCell<Arc<LimitSet>>,
    /// Whether any rate-limit zone is in force: without one, a request pays this one test.
    zoned: Cell<bool>,
    /// Whether compression is on (`compression.enabled`): off, a response pays this one test.
    compressing: Cell<bool>,
    /// When this worker last swept the tables (worker 0 sweeps them for every worker).
    swept: Cell<Instant>,
    encoders: RefCell<Encoders>,
}

impl WorkerTraffic {
    pub(crate) fn new(worker: usize, limits: Arc<LimitSet>, compression: &Compression) -> WorkerTraffic {
        WorkerTraffic {
            worker,
            zoned: Cell::new(!limits.zones.is_empty()),
            compressing: Cell::new(compression.enabled),
            swept: Cell::new(Instant::now()),
            limits: RefCell::new(limits),
            encoders: RefCell::new(Encoders::default()),
        }
    }

    /// Puts reloaded limits and compression settings in force on this worker (requests being
    /// checked finish with the old ones).
    pub(crate) fn replace(&self, limits: Arc<LimitSet>, compression: &Compression) {
        self.zoned.set(!limits.zones.is_empty());
        self.compressing.set(compression.enabled);
        *self.limits.borrow_mut() = limits;
    }

    /// Whether responses may be compressed.
    #[inline]
    pub(crate) fn compressing(&self) -> bool {
        self.compressing.get()
    }

    /// Checks a request for `path` from `peer` at `now` against every zone that covers it.
    #[inline]
    pub(crate) fn check(&self, path: &str, peer: &SocketAddr, now: Instant, log: &LogBudget) -> Verdict {
        if !self.zoned.get() {
            return Verdict::Pass;
        }
        self.check_zones(path, peer, now, log)
    }

    fn check_zones(&self, path: &str, peer: &SocketAddr, now: Instant, log: &LogBudget) -> Verdict {
        let set = self.limits.borrow();
        // Read once, and only for a zone that covers the path.
        let mut now_us = None;
        let mut delay = 0;
        for zone in &set.zones {
            let config = &zone.config;
            if !config.covers(path) {
                continue;
            }
            let now_us = *now_us.get_or_insert_with(|| {
                let since = now.saturating_duration_since(set.epoch);
                since.as_secs() * 1_000_000 + u64::from(since.subsec_micros())
            });
            let client = client_bits(peer.ip(), config.key);
            let (outcome, verdict) = match zone.table.check(client, now_us, zone.gcra) {
                Decision::Allow { ahead } if ahead == 0 || config.nodelay => (Outcome::Passed, None),
                Decision::Allow { .. } if config.dry_run => (Outcome::DelayedDryRun, None),
                Decision::Allow { ahead } => {
                    delay = delay.max(ahead);
                    (Outcome::Delayed, None)
                }
                Decision::Refuse { .. } if config.dry_run => {
                    if log.allow() {
                        tracing::warn!(zone = %config.name, client = %peer.ip(), "rate limit (dry run): would refuse this request");
                    }
                    (Outcome::RejectedDryRun, None)
                }
                Decision::Refuse { retry } => {
                    if log.allow() {
                        tracing::warn!(zone = %config.name, client = %peer.ip(), status = config.status, "rate limit: refused a request");
                    }
                    (Outcome::Rejected, Some(refusal(config.status, retry)))
                }
            };
            zone.counts.count(self.worker, outcome);
            if let Some(refused) = verdict {
                return Verdict::Refuse(refused);
            }
        }
        if delay == 0 {
            Verdict::Pass
        } else {
            Verdict::Delay(Duration::from_micros(delay))
        }
    }

    /// Once a minute (the sweeper calls this every second), worker 0 empties the words of the
    /// zones' clients that are back at their rate (`RateTable::sweep`).
    pub(crate) fn sweep(&self, now: Instant) {
        if self.worker != 0 || now.saturating_duration_since(self.swept.get()) < Duration::from_secs(60) {
            return;
        }
        self.swept.set(now);
        let set = self.limits.borrow();
        let since = now.saturating_duration_since(set.epoch);
        let now_us = since.as_secs() * 1_000_000 + u64::from(since.subsec_micros());
        for zone in &set.zones {
            zone.table.sweep(now_us);
        }
    }

    /// Checks a new connection from `peer` against the connection limit.
    pub(crate) fn admit(&self, peer: &SocketAddr, log: &LogBudget) -> Admit {
        let set = self.limits.borrow();
        let Some(conns) = &set.conns else {
            return Admit::Serve(None);
        };
        let config = &conns.config;
        let client = client_bits(peer.ip(), config.key);
        match conns.table.admit(client, config.max, !config.dry_run) {
            Admission::Counted { permit, over: false } => Admit::Serve(Some(permit)),
            Admission::Counted { permit, over: true } => {
                conns.counts.count(self.worker, Outcome::RejectedDryRun);
                if log.allow() {
                    tracing::warn!(client = %peer.ip(), max = config.max, "connection limit (dry run): would refuse this connection");
                }
                Admit::Serve(Some(permit))
            }
            Admission::Refused => {
                conns.counts.count(self.worker, Outcome::Rejected);
                if log.allow() {
                    tracing::warn!(client = %peer.ip(), max = config.max, status = config.status, "connection limit: refused a connection");
                }
                Admit::Refuse(config.status)
            }
            Admission::Untracked => {
                conns.counts.count(self.worker, Outcome::Untracked);
                Admit::Serve(None)
            }
        }
    }

    /// `response` compressed for the request `head` as `config` says (see `traffic::compress`).
    pub(crate) fn compress(&self, response: Response, head: &RequestHead<'_, '_>, config: &Compression) -> Response {
        compress_response(response, head, config, &mut self.encoders.borrow_mut())
    }
}

/// The answer to a refused request: `status`, and `Retry-After` in whole seconds (at least 1).
fn refusal(status: u16, retry_us: u64) -> Response {
    let seconds = retry_us.div_ceil(1_000_000).max(1);
    let retry_after = match seconds {
        1 => Bytes::from_static(b"1"),
        n => Bytes::from(n.to_string()),
    };
    Response::error(status).header("Retry-After", retry_after)
}
