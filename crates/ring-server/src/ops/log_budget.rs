//! A budget for log lines caused by clients: a flood of bad requests or failing handlers must not
//! become a flood of log lines. Each worker may write [`LogBudget::PER_SECOND`] such lines a
//! second; the rest are counted, and the sweeper reports the count once a second.

use std::cell::Cell;
use std::time::Instant;

pub(crate) struct LogBudget {
    epoch: Instant,
    second: Cell<u64>,
    used: Cell<u32>,
    suppressed: Cell<u64>,
}

impl LogBudget {
    /// Lines per second and worker before suppression starts.
    pub(crate) const PER_SECOND: u32 = 10;

    pub(crate) fn new() -> LogBudget {
        LogBudget {
            epoch: Instant::now(),
            second: Cell::new(0),
            used: Cell::new(0),
            suppressed: Cell::new(0),
        }
    }

    /// Whether one more line may be written now.
    pub(crate) fn allow(&self) -> bool {
        let now = self.epoch.elapsed().as_secs();
        if now != self.second.get() {
            self.second.set(now);
            self.used.set(0);
        }
        if self.used.get() < Self::PER_SECOND {
            self.used.set(self.used.get() + 1);
            true
        } else {
            self.suppressed.set(self.suppressed.get() + 1);
            false
        }
    }

    /// Lines suppressed since the last call.
    pub(crate) fn take_suppressed(&self) -> u64 {
        self.suppressed.replace(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_a_burst_then_counts() {
        let b = LogBudget::new();
        let allowed = (0..100).filter(|_| b.allow()).count();
        // All 100 calls fall within one or two seconds of the epoch.
        assert!((10..=20).contains(&allowed), "{allowed}");
        assert_eq!(b.take_suppressed(), 100 - allowed as u64);
        assert_eq!(b.take_suppressed(), 0);
    }
}
