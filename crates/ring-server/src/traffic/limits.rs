//! The limits in force ([`LimitSet`]: each zone with its table, the connection counts) and
//! what keeps them across reloads ([`Limits`]): a zone that keeps its name, key and size keeps
//! its clients and its counters, so a reload never hands every client a fresh allowance.
//!
//! Counters are per zone and per worker: each worker writes only its own row (a relaxed load
//! and store, like the rest of `/metrics`), and a scrape sums the rows.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::ops::stats::{header, Counter, Exposition};
use crate::traffic::config::{ConnLimit, RateZone};
use crate::traffic::conn_limit::ConnCounts;
use crate::traffic::rate::{Gcra, RateTable};

/// What a zone did with a request or a connection, as `/metrics` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Served at once.
    Passed = 0,
    /// Served after a wait (a burst spread out to the rate).
    Delayed = 1,
    /// Refused.
    Rejected = 2,
    /// Would have been delayed (dry run).
    DelayedDryRun = 3,
    /// Would have been refused (dry run).
    RejectedDryRun = 4,
    /// Not counted: no room in the table (connections only).
    Untracked = 5,
}

const OUTCOMES: [&str; 6] = [
    "passed",
    "delayed",
    "rejected",
    "delayed_dry_run",
    "rejected_dry_run",
    "untracked",
];

/// One worker's row of a zone's counters, on its own cache line.
#[repr(align(64))]
#[derive(Default)]
struct Row([Counter; 6]);

/// A zone's counters, a row per worker.
pub(crate) struct ZoneCounts(Box<[Row]>);

impl ZoneCounts {
    fn new(workers: usize) -> ZoneCounts {
        ZoneCounts((0..workers).map(|_| Row::default()).collect())
    }

    /// Counts one outcome on `worker`'s row (only that worker calls this for its row).
    #[inline]
    pub(crate) fn count(&self, worker: usize, outcome: Outcome) {
        if let Some(row) = self.0.get(worker) {
            row.0[outcome as usize].add(1);
        }
    }

    fn total(&self, outcome: usize) -> u64 {
        self.0.iter().map(|r| r.0[outcome].get()).sum()
    }
}

/// A rate-limit zone in force.
pub(crate) struct Zone {
    pub(crate) config: RateZone,
    pub(crate) gcra: Gcra,
    pub(crate) table: Arc<RateTable>,
    pub(crate) counts: Arc<ZoneCounts>,
}

/// The connection limit in force.
pub(crate) struct ConnZone {
    pub(crate) config: ConnLimit,
    pub(crate) table: Arc<ConnCounts>,
    pub(crate) counts: Arc<ZoneCounts>,
}

/// Every limit in force: what a worker checks.
pub(crate) struct LimitSet {
    pub(crate) zones: Vec<Zone>,
    pub(crate) conns: Option<ConnZone>,
    /// Time zero of every table (the server's start): times are microseconds since it.
    pub(crate) epoch: Instant,
}

/// The limits of a running server, kept across reloads, and their exposition in `/metrics`.
pub(crate) struct Limits {
    current: Mutex<Arc<LimitSet>>,
    workers: usize,
}

impl Limits {
    /// The limits of a server with `workers` workers.
    pub(crate) fn new(zones: &[RateZone], conns: Option<&ConnLimit>, workers: usize) -> Limits {
        let empty = LimitSet {
            zones: Vec::new(),
            conns: None,
            epoch: Instant::now(),
        };
        let limits = Limits {
            current: Mutex::new(Arc::new(empty)),
            workers,
        };
        limits.apply(zones, conns);
        limits
    }

    /// The limits in force.
    pub(crate) fn current(&self) -> Arc<LimitSet> {
        self.current.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Puts a reloaded configuration in force and returns it (for the workers). A zone of the
    /// same name keeps its counters, and its table when its key and size are unchanged; the
    /// connection counts likewise (a new table counts only the connections made after it).
    pub(crate) fn apply(&self, zones: &[RateZone], conns: Option<&ConnLimit>) -> Arc<LimitSet> {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        let old = current.clone();
        let zones = zones
            .iter()
            .map(|z| {
                let kept = old.zones.iter().find(|o| o.config.name == z.name);
                let same_table = kept.is_some_and(|o| o.config.key == z.key && o.config.clients == z.clients);
                Zone {
                    config: z.clone(),
                    gcra: Gcra::of(z),
                    table: match kept {
                        Some(o) if same_table => o.table.clone(),
                        _ => Arc::new(RateTable::new(z.clients)),
                    },
                    counts: kept.map_or_else(|| Arc::new(ZoneCounts::new(self.workers)), |o| o.counts.clone()),
                }
            })
            .collect();
        let conns = conns.map(|c| {
            let kept = old.conns.as_ref();
            ConnZone {
                config: c.clone(),
                table: match kept {
                    Some(o) if o.config.key == c.key && o.config.clients == c.clients => o.table.clone(),
                    _ => Arc::new(ConnCounts::new(c.clients)),
                },
                counts: kept.map_or_else(|| Arc::new(ZoneCounts::new(self.workers)), |o| o.counts.clone()),
            }
        });
        let set = Arc::new(LimitSet {
            zones,
            conns,
            epoch: old.epoch,
        });
        *current = set.clone();
        set
    }
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = self.current();
        f.debug_struct("Limits")
            .field("zones", &set.zones.iter().map(|z| &z.config.name).collect::<Vec<_>>())
            .field("connection_limit", &set.conns.as_ref().map(|c| c.config.max))
            .finish()
    }
}

impl Exposition for Limits {
    fn render(&self, out: &mut String) {
        let set = self.current();
        if !set.zones.is_empty() {
            let now = Instant::now().saturating_duration_since(set.epoch).as_micros() as u64;
            header(
                out,
                "ringd_rate_limit_requests_total",
                "counter",
                "Requests a rate-limit zone covered, by what it did: passed, delayed (a burst spread out to the rate), rejected; delayed_dry_run and rejected_dry_run in dry run (served at once).",
            );
            for zone in &set.zones {
                for (i, result) in OUTCOMES.iter().enumerate().take(Outcome::RejectedDryRun as usize + 1) {
                    let _ = writeln!(
                        out,
                        "ringd_rate_limit_requests_total{{zone=\"{}\",result=\"{result}\"}} {}",
                        zone.config.name,
                        zone.counts.total(i)
                    );
                }
            }
            type Gauge = (&'static str, &'static str, &'static str, fn(&Zone, u64) -> u64);
            let gauges: [Gauge; 3] = [
                (
                    "ringd_rate_limit_clients",
                    "gauge",
                    "Clients a rate-limit zone remembers because they are ahead of their rate now.",
                    |z, now| z.table.ahead_of_rate(now, z.gcra) as u64,
                ),
                (
                    "ringd_rate_limit_capacity",
                    "gauge",
                    "Clients a rate-limit zone's table holds (8 bytes each).",
                    |z, _| z.table.capacity() as u64,
                ),
                (
                    "ringd_rate_limit_evictions_total",
                    "counter",
                    "Clients a full rate-limit table forgot while they were ahead of their rate (they start again with a full allowance): make clients larger if this grows.",
                    |z, _| z.table.evicted(),
                ),
            ];
            for (name, kind, help, get) in gauges {
                header(out, name, kind, help);
                for zone in &set.zones {
                    let _ = writeln!(out, "{name}{{zone=\"{}\"}} {}", zone.config.name, get(zone, now));
                }
            }
        }
        if let Some(conns) = &set.conns {
            header(
                out,
                "ringd_connection_limit_total",
                "counter",
                "Connections over connection_limit.max: rejected, rejected_dry_run (served in dry run); untracked: served without being counted (no room in the table).",
            );
            for (i, result) in OUTCOMES.iter().enumerate() {
                if matches!(*result, "rejected" | "rejected_dry_run" | "untracked") {
                    let _ = writeln!(
                        out,
                        "ringd_connection_limit_total{{result=\"{result}\"}} {}",
                        conns.counts.total(i)
                    );
                }
            }
            header(
                out,
                "ringd_connection_limit_open",
                "gauge",
                "Open connections counted against connection_limit, over all clients.",
            );
            let _ = writeln!(out, "ringd_connection_limit_open {}", conns.table.open());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traffic::config::ClientKey;
    use crate::traffic::rate::Decision;

    fn zone(name: &str, rate: &str) -> RateZone {
        RateZone::new(name, rate.parse().unwrap())
    }

    #[test]
    fn a_reload_keeps_the_clients_of_zones_that_keep_their_name_key_and_size() {
        let limits = Limits::new(&[zone("a", "1r/m"), zone("b", "1r/m")], None, 2);
        let before = limits.current();
        for z in &before.zones {
            assert!(matches!(z.table.check(1, 0, z.gcra), Decision::Allow { .. }));
            z.counts.count(1, Outcome::Passed);
        }
        let mut b = zone("b", "2r/m");
        b.key = ClientKey::Network { v4: 24, v6: 64 };
        let after = limits.apply(&[zone("a", "2r/m"), b, zone("c", "1r/s")], None);
        assert!(Arc::ptr_eq(&before.zones[0].table, &after.zones[0].table));
        assert!(Arc::ptr_eq(&before.zones[0].counts, &after.zones[0].counts));
        assert!(!Arc::ptr_eq(&before.zones[1].table, &after.zones[1].table));
        assert!(Arc::ptr_eq(&before.zones[1].counts, &after.zones[1].counts));
        // Zone a remembers client 1 under the new rate; zone b starts afresh.
        let (a, b) = (&after.zones[0], &after.zones[1]);
        assert!(matches!(a.table.check(1, 0, a.gcra), Decision::Refuse { .. }));
        assert!(matches!(b.table.check(1, 0, b.gcra), Decision::Allow { .. }));
        let mut text = String::new();
        limits.render(&mut text);
        assert!(
            text.contains("ringd_rate_limit_requests_total{zone=\"a\",result=\"passed\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("ringd_rate_limit_capacity{zone=\"c\"} 65536\n"), "{text}");
        assert!(!text.contains("connection_limit"), "{text}");
    }

    #[test]
    fn connection_counts_survive_a_reload_that_keeps_their_key_and_size() {
        let limits = Limits::new(&[], Some(&ConnLimit::new(2)), 1);
        let before = limits.current();
        let after = limits.apply(&[], Some(&ConnLimit::new(5)));
        assert!(Arc::ptr_eq(
            &before.conns.as_ref().unwrap().table,
            &after.conns.as_ref().unwrap().table
        ));
        let mut text = String::new();
        limits.render(&mut text);
        assert!(
            text.contains("ringd_connection_limit_total{result=\"rejected\"} 0\n"),
            "{text}"
        );
        assert!(text.contains("ringd_connection_limit_open 0\n"), "{text}");
    }
}
