//! [`ConnCounts`]: open connections per client, counted over every worker in a fixed table of
//! atomic words, and the [`ConnPermit`] a connection holds until it closes.
//!
//! A word is `tag << 32 | count`: a 32-bit tag from the client's keyed hash and the client's
//! open connections. A word with a count of 0 is free: a new client takes it with one
//! compare-and-swap, and while a permit holds a count above 0 the tag cannot change, so a
//! permit gives its connection back with a plain `fetch_sub`. When every word of a client's set
//! (eight, a cache line) is held by other clients, the client is not tracked: it is served and
//! counted as untracked (a table larger than the server's connections never has one).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::traffic::client::Placement;

const WAYS: usize = 8;

#[repr(align(64))]
#[derive(Default)]
struct Set([AtomicU64; WAYS]);

/// Open connections per client.
pub(crate) struct ConnCounts {
    sets: Box<[Set]>,
    placement: Placement,
}

/// What the table said about a new connection.
pub(crate) enum Admission {
    /// Counted: the permit gives the connection back when dropped. `over` says that the client
    /// already held `max` (a dry run counts it anyway).
    Counted { permit: ConnPermit, over: bool },
    /// The client already holds `max` connections: refused, not counted.
    Refused,
    /// No room to count the client: served, uncounted.
    Untracked,
}

/// A connection's place in the counts: dropping it closes the connection's count.
pub(crate) struct ConnPermit {
    counts: Arc<ConnCounts>,
    word: usize,
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        let (set, way) = (self.word / WAYS, self.word % WAYS);
        self.counts.sets[set].0[way].fetch_sub(1, Ordering::Relaxed);
    }
}

impl ConnCounts {
    /// A table for at least `clients` clients (rounded up to a power of two, at least 8).
    pub(crate) fn new(clients: usize) -> ConnCounts {
        let sets = clients.div_ceil(WAYS).max(1).next_power_of_two();
        ConnCounts {
            sets: (0..sets).map(|_| Set::default()).collect(),
            placement: Placement::new(sets),
        }
    }

    /// Connections counted now, over all clients.
    pub(crate) fn open(&self) -> u64 {
        self.sets
            .iter()
            .flat_map(|s| s.0.iter())
            .map(|w| w.load(Ordering::Relaxed) & u64::from(u32::MAX))
            .sum()
    }

    /// Counts a new connection of `client` if it holds fewer than `max` (or, with `enforce`
    /// off, whatever it holds).
    pub(crate) fn admit(self: &Arc<Self>, client: u128, max: u32, enforce: bool) -> Admission {
        let (set_index, hash) = self.placement.place(client);
        let set = &self.sets[set_index].0;
        let tag = hash >> 32;
        loop {
            let mut free = None;
            let mut mine = None;
            for (i, cell) in set.iter().enumerate() {
                let word = cell.load(Ordering::Relaxed);
                let count = word & u64::from(u32::MAX);
                if count > 0 && word >> 32 == tag {
                    mine = Some((i, word));
                    break;
                }
                if count == 0 && free.is_none() {
                    free = Some((i, word));
                }
            }
            let (way, word, new, over) = match (mine, free) {
                (Some((i, word)), _) => {
                    let over = word & u64::from(u32::MAX) >= u64::from(max);
                    if over && enforce {
                        return Admission::Refused;
                    }
                    (i, word, word + 1, over)
                }
                (None, Some((i, word))) => (i, word, tag << 32 | 1, max == 0),
                (None, None) => return Admission::Untracked,
            };
            if set[way]
                .compare_exchange_weak(word, new, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            {
                let permit = ConnPermit {
                    counts: self.clone(),
                    word: set_index * WAYS + way,
                };
                return Admission::Counted { permit, over };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counted(a: Admission) -> (ConnPermit, bool) {
        match a {
            Admission::Counted { permit, over } => (permit, over),
            Admission::Refused => panic!("refused"),
            Admission::Untracked => panic!("untracked"),
        }
    }

    #[test]
    fn a_client_holds_at_most_max_and_gets_them_back_on_close() {
        let t = Arc::new(ConnCounts::new(64));
        let a: Vec<_> = (0..3).map(|_| counted(t.admit(1, 3, true)).0).collect();
        assert!(matches!(t.admit(1, 3, true), Admission::Refused));
        let (_b, over) = counted(t.admit(2, 3, true));
        assert!(!over);
        assert_eq!(t.open(), 4);
        drop(a);
        assert_eq!(t.open(), 1);
        let again: Vec<_> = (0..3).map(|_| counted(t.admit(1, 3, true)).0).collect();
        assert_eq!(again.len(), 3);
    }

    #[test]
    fn a_dry_run_counts_past_the_limit_and_says_so() {
        let t = Arc::new(ConnCounts::new(64));
        let (_a, over_a) = counted(t.admit(1, 1, false));
        let (_b, over_b) = counted(t.admit(1, 1, false));
        assert_eq!((over_a, over_b, t.open()), (false, true, 2));
    }

    #[test]
    fn a_full_set_leaves_new_clients_untracked_until_a_word_frees() {
        let t = Arc::new(ConnCounts::new(8));
        let held: Vec<_> = (0..8u128).map(|c| counted(t.admit(c, 5, true)).0).collect();
        assert!(matches!(t.admit(100, 5, true), Admission::Untracked));
        drop(held);
        assert_eq!(t.open(), 0);
        let _p = counted(t.admit(100, 5, true));
    }

    #[test]
    fn workers_counting_at_once_never_exceed_the_limit() {
        let t = Arc::new(ConnCounts::new(64));
        let run = |t: Arc<ConnCounts>| {
            move || {
                let mut held = Vec::new();
                for _ in 0..10_000 {
                    if let Admission::Counted { permit, .. } = t.admit(5, 50, true) {
                        held.push(permit);
                    }
                    // Two workers holding up to 40 each would pass 50 if counting raced.
                    if held.len() >= 40 {
                        held.clear();
                    }
                    assert!(t.open() <= 50);
                }
            }
        };
        let a = std::thread::spawn(run(t.clone()));
        let b = std::thread::spawn(run(t.clone()));
        a.join().unwrap();
        b.join().unwrap();
        assert_eq!(t.open(), 0);
    }
}
