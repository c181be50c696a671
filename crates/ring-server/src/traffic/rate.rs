//! [`RateTable`]: one zone's clients, each a GCRA bucket in one atomic word, in a fixed table
//! that every worker shares.
//!
//! `SO_REUSEPORT` spreads one client's connections over all the workers, so a bucket per
//! worker would let a client through N times its rate; instead the workers share one table and
//! a request's check is one compare-and-swap on its client's word (no lock, no allocation). The
//! generic cell rate algorithm keeps a single number per client, its theoretical arrival time
//! (TAT): the time at which the client is back at its rate. A request at `now` is allowed when
//! `TAT − now ≤ tolerance` (burst × interval), and moves the TAT to `max(TAT, now) + interval`.
//! A client at its rate or slower has a TAT in the past: no state worth keeping.
//!
//! The table is sets of eight words (a cache line); a client's set and a 24-bit tag come from a
//! hash keyed at random per table. A word is `tag << 40 | TAT`, the TAT in microseconds since
//! the server started, modulo 2^40 (12.7 days). Times are compared modulo, within half of that:
//! exact, because a client is never more than a day ahead (`validate_rate_zones`) and
//! [`RateTable::sweep`] empties, once a minute, the words of clients back at their rate (they
//! hold nothing a fresh client lacks), so no word is ever older than that. A client not in its
//! set takes an empty word, or else the word of the client nearest to a full allowance, so
//! memory is the table's, whatever the number of clients: a flood of new addresses can only
//! make the zone forget clients (counted as evictions), and a forgotten client starts with a
//! full allowance. Two clients with the same set and tag (1 in 16.7 million for each other
//! client in the set) share a bucket.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::traffic::client::Placement;
use crate::traffic::config::RateZone;

/// Words per set: 8 × 8 bytes, one cache line.
const WAYS: usize = 8;
const TIME_BITS: u32 = 40;
const TIME_MASK: u64 = (1 << TIME_BITS) - 1;

#[repr(align(64))]
#[derive(Default)]
struct Set([AtomicU64; WAYS]);

/// A zone's rate as the table applies it, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gcra {
    /// Between two requests at the rate.
    pub(crate) interval: u64,
    /// How far ahead of its rate a client may be: burst × interval.
    pub(crate) tolerance: u64,
}

impl Gcra {
    pub(crate) fn of(zone: &RateZone) -> Gcra {
        let interval = zone.rate.interval_us().max(1);
        Gcra {
            interval,
            tolerance: u64::from(zone.burst) * interval,
        }
    }

    /// The furthest ahead a client can be after an allowed request.
    fn horizon(&self) -> u64 {
        self.tolerance + self.interval
    }
}

/// What the table decided for a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Allowed; the client is `ahead` µs ahead of its rate (what a zone that spreads bursts
    /// out delays the request by).
    Allow { ahead: u64 },
    /// Refused; the client may come back in `retry` µs.
    Refuse { retry: u64 },
}

/// One zone's table of clients.
pub(crate) struct RateTable {
    sets: Box<[Set]>,
    placement: Placement,
    /// Clients forgotten while still ahead of their rate, to make room for another.
    evicted: AtomicU64,
}

impl RateTable {
    /// A table for at least `clients` clients (rounded up to a power of two, at least 8).
    pub(crate) fn new(clients: usize) -> RateTable {
        let sets = clients.div_ceil(WAYS).max(1).next_power_of_two();
        RateTable {
            // Written (zeroed) here: the table's memory is resident from the start, never
            // more later.
            sets: (0..sets).map(|_| Set::default()).collect(),
            placement: Placement::new(sets),
            evicted: AtomicU64::new(0),
        }
    }

    /// How many clients the table holds.
    pub(crate) fn capacity(&self) -> usize {
        self.sets.len() * WAYS
    }

    /// Clients forgotten while still ahead of their rate.
    pub(crate) fn evicted(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }

    /// Empties the words of clients back at their rate at `now` (µs): nothing is lost, and no
    /// word grows old enough to be misread modulo 2^40. Returns how many were emptied.
    pub(crate) fn sweep(&self, now: u64) -> usize {
        let now = now & TIME_MASK;
        let mut emptied = 0;
        for cell in self.sets.iter().flat_map(|s| s.0.iter()) {
            let word = cell.load(Ordering::Relaxed);
            if word != 0
                && behind(word & TIME_MASK, now)
                && cell
                    .compare_exchange(word, 0, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                emptied += 1;
            }
        }
        emptied
    }

    /// Clients ahead of their rate at `now` (µs): those the table must remember.
    pub(crate) fn ahead_of_rate(&self, now: u64, gcra: Gcra) -> usize {
        let now = now & TIME_MASK;
        self.sets
            .iter()
            .flat_map(|s| s.0.iter())
            .map(|w| w.load(Ordering::Relaxed))
            .filter(|&w| w != 0 && ahead(w & TIME_MASK, now, gcra.horizon()) > 0)
            .count()
    }

    /// Decides a request of `client` at `now` (µs since the table's epoch) and, if allowed,
    /// charges it.
    pub(crate) fn check(&self, client: u128, now: u64, gcra: Gcra) -> Decision {
        let (set, hash) = self.placement.place(client);
        let set = &self.sets[set].0;
        let tag = (hash >> TIME_BITS).max(1);
        let now = now & TIME_MASK;
        let horizon = gcra.horizon();
        loop {
            // The client's word, or the word it would take: an empty one, or the one whose
            // client is nearest to a full allowance (cost 0 for empty, 1 + µs ahead otherwise).
            let mut found = None;
            let (mut victim, mut victim_cost, mut victim_word) = (0, u64::MAX, 0);
            for (i, cell) in set.iter().enumerate() {
                let word = cell.load(Ordering::Relaxed);
                if word >> TIME_BITS == tag {
                    found = Some((i, word));
                    break;
                }
                let cost = if word == 0 {
                    0
                } else {
                    1 + ahead(word & TIME_MASK, now, horizon)
                };
                if cost < victim_cost {
                    (victim, victim_cost, victim_word) = (i, cost, word);
                }
            }
            let (index, word, ahead) = match found {
                Some((i, word)) => (i, word, ahead(word & TIME_MASK, now, horizon)),
                None => (victim, victim_word, 0),
            };
            if ahead > gcra.tolerance {
                return Decision::Refuse {
                    retry: ahead - gcra.tolerance,
                };
            }
            let tat = (now + ahead + gcra.interval) & TIME_MASK;
            let new = tag << TIME_BITS | tat;
            if set[index]
                .compare_exchange_weak(word, new, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            {
                if found.is_none() && victim_cost > 1 {
                    self.evicted.fetch_add(1, Ordering::Relaxed);
                }
                return Decision::Allow { ahead };
            }
            // Another worker changed the set: decide again on what it holds now.
        }
    }
}

/// How far `tat` is ahead of `now` (both modulo 2^48), at most `horizon`: 0 when it is behind.
/// A TAT further ahead than the zone allows (its rate was lowered by a reload) counts as
/// `horizon`: a client's debt never outlasts what the new rate would have given it.
#[inline]
fn ahead(tat: u64, now: u64, horizon: u64) -> u64 {
    let d = tat.wrapping_sub(now) & TIME_MASK;
    if d < 1 << (TIME_BITS - 1) {
        d.min(horizon)
    } else {
        0
    }
}

/// Whether `tat` is not ahead of `now` (both modulo 2^40): its client is back at its rate.
fn behind(tat: u64, now: u64) -> bool {
    let d = tat.wrapping_sub(now) & TIME_MASK;
    d == 0 || d >= 1 << (TIME_BITS - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE_10: Gcra = Gcra {
        interval: 100_000,
        tolerance: 500_000,
    };

    #[test]
    fn a_burst_then_the_rate() {
        let t = RateTable::new(1024);
        let start = 5_000_000;
        for i in 0..6 {
            assert_eq!(
                t.check(1, start, RATE_10),
                Decision::Allow { ahead: i * 100_000 },
                "request {i}"
            );
        }
        assert_eq!(t.check(1, start, RATE_10), Decision::Refuse { retry: 100_000 });
        assert_eq!(t.check(1, start + 99_999, RATE_10), Decision::Refuse { retry: 1 });
        assert!(matches!(t.check(1, start + 100_000, RATE_10), Decision::Allow { .. }));
        // Another client has its own allowance.
        assert_eq!(t.check(2, start, RATE_10), Decision::Allow { ahead: 0 });
    }

    #[test]
    fn over_time_a_greedy_client_gets_the_rate_plus_its_burst() {
        let t = RateTable::new(64);
        let mut allowed = 0;
        // A request every 250 µs for 10 s: 40,000 tries.
        for i in 0..40_000u64 {
            if let Decision::Allow { .. } = t.check(7, 1_000 + i * 250, RATE_10) {
                allowed += 1;
            }
        }
        assert_eq!(allowed, 10 * 10 + 5);
    }

    #[test]
    fn workers_sharing_the_table_share_the_allowance() {
        let t = std::sync::Arc::new(RateTable::new(64));
        let per_thread = |t: std::sync::Arc<RateTable>| {
            move || {
                (0..50_000u64)
                    .filter(|i| matches!(t.check(9, 1_000 + i * 10, RATE_10), Decision::Allow { .. }))
                    .count()
            }
        };
        let a = std::thread::spawn(per_thread(t.clone()));
        let b = std::thread::spawn(per_thread(t.clone()));
        let total = a.join().unwrap() + b.join().unwrap();
        // Each thread's clock runs 0.5 s, the same half second: a burst of 6, then 5 more.
        assert!((10..=12).contains(&total), "allowed {total}");
    }

    #[test]
    fn a_full_table_forgets_clients_and_keeps_its_size() {
        let t = RateTable::new(8);
        assert_eq!(t.capacity(), 8);
        for client in 0..1000u128 {
            assert!(matches!(t.check(client, 1_000, RATE_10), Decision::Allow { ahead: 0 }));
        }
        assert_eq!(t.evicted(), 1000 - 8);
        assert_eq!(t.ahead_of_rate(1_000, RATE_10), 8);
        // Clients back at their rate are no loss: taking their places evicts nobody.
        for client in 1000..1008u128 {
            t.check(client, 10_000_000, RATE_10);
        }
        assert_eq!(t.evicted(), 1000 - 8);
    }

    #[test]
    fn a_sweep_empties_only_clients_back_at_their_rate() {
        let t = RateTable::new(64);
        for client in 0..10u128 {
            t.check(client, 1_000, RATE_10);
        }
        // Client 0 went on to the end of its burst: ahead for 600 ms.
        for _ in 0..5 {
            t.check(0, 1_000, RATE_10);
        }
        assert_eq!(t.sweep(1_000), 0);
        assert_eq!(t.sweep(1_000 + 100_000), 9);
        assert_eq!(t.ahead_of_rate(1_000 + 100_000, RATE_10), 1);
        assert_eq!(t.sweep(1_000 + 600_000), 1);
        assert_eq!(t.ahead_of_rate(1_000, RATE_10), 0);
    }

    #[test]
    fn time_wraps_around_and_a_lowered_rate_caps_old_debt() {
        let t = RateTable::new(64);
        let near_end = TIME_MASK - 50_000;
        for _ in 0..6 {
            assert!(matches!(t.check(3, near_end, RATE_10), Decision::Allow { .. }));
        }
        assert!(matches!(
            t.check(3, near_end + 60_000, RATE_10),
            Decision::Refuse { .. }
        ));
        assert!(matches!(
            t.check(3, near_end + 100_000, RATE_10),
            Decision::Allow { .. }
        ));
        // 1 r/s, no burst: a client far ahead under the old rate waits at most one interval.
        let slow = Gcra {
            interval: 1_000_000,
            tolerance: 0,
        };
        let t = RateTable::new(64);
        for _ in 0..100 {
            t.check(
                4,
                0,
                Gcra {
                    interval: 1_000_000,
                    tolerance: 100_000_000,
                },
            );
        }
        assert_eq!(t.check(4, 0, slow), Decision::Refuse { retry: 1_000_000 });
    }
}
