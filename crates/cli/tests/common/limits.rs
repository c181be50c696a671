//! The process limits a test run lives within. An ordinary user on a stock Debian has 1024 open
//! files (soft; 524288 hard) and 8 MiB of locked memory (`RLIMIT_MEMLOCK`, counted across all of
//! that user's processes) without `CAP_IPC_LOCK`; root on a host has the capability and no
//! memory limit. Each ringd worker locks its registered fixed buffers (`--buffers` ×
//! `--buffer-size`: 1 MiB at the defaults; its rings are not charged to the limit from Linux
//! 5.12 on), so the tests of one binary, running in parallel, must share that budget, and a test
//! that opens thousands of connections must first raise its own descriptor limit.

use std::cell::Cell;
use std::sync::{Condvar, Mutex};

/// Raises this process's soft `RLIMIT_NOFILE` to `want`, or as far as its hard limit allows, and
/// returns the soft limit now in force. The servers and clients it starts afterwards inherit it.
pub fn raise_nofile(want: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `struct rlimit` to a live, aligned value.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    let target = want.min(lim.rlim_max);
    if lim.rlim_cur < target {
        lim.rlim_cur = target;
        // SAFETY: setrlimit reads one `struct rlimit` from a live value; a soft limit up to the
        // hard one needs no privilege.
        assert_eq!(
            unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) },
            0,
            "setrlimit(RLIMIT_NOFILE, {target}): {}",
            std::io::Error::last_os_error()
        );
    }
    lim.rlim_cur.max(target)
}

/// The locked memory this process's servers may hold at once: half the soft `RLIMIT_MEMLOCK`,
/// or `None` (no limit) with `CAP_IPC_LOCK` or an unlimited limit. The other half is for what
/// the limit also counts: servers that just exited (the kernel unpins a ring's buffers after
/// the process is gone, a moment later) and the user's other processes.
fn budget() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let cap_eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    const CAP_IPC_LOCK: u32 = 14;
    if cap_eff & (1 << CAP_IPC_LOCK) != 0 {
        return None;
    }
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `struct rlimit` to a live, aligned value.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) }, 0);
    (lim.rlim_cur != libc::RLIM_INFINITY).then_some(lim.rlim_cur / 2)
}

/// Whether this process's locked memory is limited at all (no `CAP_IPC_LOCK`, a finite limit).
pub fn is_limited() -> bool {
    budget().is_some()
}

/// Waits until one of this process's servers has exited, or `at_most`.
pub fn wait_for_release(at_most: std::time::Duration) {
    let in_use = IN_USE.lock().unwrap_or_else(|e| e.into_inner());
    let _ = RELEASED.wait_timeout(in_use, at_most);
}

static IN_USE: Mutex<u64> = Mutex::new(0);
static RELEASED: Condvar = Condvar::new();

thread_local! {
    /// What this thread's servers hold: a thread that holds some never waits (its test may need
    /// a second server before it lets go of the first, as may every other test at that moment).
    static HELD: Cell<u64> = const { Cell::new(0) };
}

/// A share of the budget, held while a server runs.
pub struct MemlockLease {
    bytes: u64,
}

impl MemlockLease {
    /// Waits until `bytes` fit in the budget beside the servers running now (or until none is
    /// running: a server larger than the budget then starts alone, and fails with ringd's own
    /// error if it is larger than the limit).
    pub fn acquire(bytes: u64) -> MemlockLease {
        let Some(budget) = budget() else {
            return MemlockLease { bytes: 0 };
        };
        let mut in_use = IN_USE.lock().unwrap_or_else(|e| e.into_inner());
        if HELD.get() == 0 {
            while *in_use > 0 && *in_use + bytes > budget {
                in_use = RELEASED.wait(in_use).unwrap_or_else(|e| e.into_inner());
            }
        }
        *in_use += bytes;
        HELD.set(HELD.get() + bytes);
        MemlockLease { bytes }
    }
}

impl Drop for MemlockLease {
    fn drop(&mut self) {
        let mut in_use = IN_USE.lock().unwrap_or_else(|e| e.into_inner());
        *in_use = in_use.saturating_sub(self.bytes);
        HELD.set(HELD.get().saturating_sub(self.bytes));
        RELEASED.notify_all();
    }
}
