//! A worker's sweeper: once a second, the heartbeat, the deadlines, and the reports that should
//! not be made per request.

use std::rc::Rc;
use std::time::{Duration, Instant};

use super::control::Heartbeats;
use crate::ops::access_log::AccessLog;
use crate::runtime::timer;
use crate::worker::{spawn_log_flush, Worker};

/// Once a second: beat the heart (for a service manager's watchdog), enforce deadlines, and
/// report fixed-buffer fallbacks.
pub(super) async fn sweeper(id: usize, worker: Rc<Worker>, heartbeats: Heartbeats) {
    let mut tick = Instant::now();
    let mut last_fallback_log = Instant::now();
    let mut fallbacks_logged = 0;
    loop {
        // Once a second; a late tick (a long turn) skips the ticks it missed.
        timer::sleep_until(tick).await;
        let now = crate::runtime::turn_started();
        tick += Duration::from_secs(1);
        if tick < now {
            tick = now + Duration::from_secs(1);
        }
        heartbeats.beat(id);
        // Never awaited here: a target that stops taking data must not stop the deadlines.
        spawn_log_flush(&worker);
        worker.stats().open.set(worker.io.conns.len() as u64);
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
        let expired = worker.io.conns.sweep(Instant::now());
        worker.traffic.sweep(Instant::now());
        worker.stats().timed_out.add(expired as u64);
        let suppressed = worker.log_budget().take_suppressed();
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
        let fallbacks = worker.stats().fixed_fallbacks.get();
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
