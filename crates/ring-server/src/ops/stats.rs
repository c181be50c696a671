//! Per-worker counters and their Prometheus text exposition.
//!
//! Each worker owns one [`WorkerStats`] and is its only writer: a count is a relaxed load and
//! store of a word only that core writes (no locked instruction, no shared cache line being
//! fought over), so counting costs next to nothing on the request path. A scrape, on another
//! thread, reads every worker's counters and sums them.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ringd_core::Method;

/// A counter written by one thread only.
#[derive(Debug, Default)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    /// Adds `n`. Only the owning worker calls this, so load + store loses nothing.
    #[inline]
    pub(crate) fn add(&self, n: u64) {
        self.0
            .store(self.0.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
    }

    /// Sets the value (for gauges).
    #[inline]
    pub(crate) fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The methods counted by name; anything else is `OTHER`.
const METHODS: [&str; 8] = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "OTHER"];
/// Status codes counted by value; anything else is counted by class (`1xx` … `5xx`).
const CODES: [u16; 25] = [
    200, 201, 204, 206, 301, 302, 304, 400, 403, 404, 405, 408, 411, 412, 413, 414, 416, 417, 429, 431, 500, 501, 503,
    504, 505,
];
const CODE_SLOTS: usize = CODES.len() + 5;
/// The slot of every status below 1000: its place in `CODES`, or its class's after them
/// (`1xx` … `5xx`, any other class counted as the nearest), so a request finds its slot by one
/// look-up.
const CODE_SLOT: [u8; 1000] = {
    let mut slots = [0; 1000];
    let mut status = 0;
    while status < 1000 {
        let class = status / 100;
        let class = if class < 1 {
            1
        } else if class > 5 {
            5
        } else {
            class
        };
        slots[status] = (CODES.len() + class - 1) as u8;
        status += 1;
    }
    let mut i = 0;
    while i < CODES.len() {
        slots[CODES[i] as usize] = i as u8;
        i += 1;
    }
    slots
};

/// A status's slot in the counters by status: [`CODE_SLOT`]'s, or the last class's for a
/// status of 1000 and above.
#[inline]
fn status_slot(status: u16) -> usize {
    match CODE_SLOT.get(usize::from(status)) {
        Some(&slot) => usize::from(slot),
        None => CODES.len() + 4,
    }
}

/// Upper bounds of the latency histogram, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.1, 0.5, 2.5,
];
/// The same bounds in nanoseconds, so that a request is placed by integer comparisons.
const LATENCY_BUCKETS_NS: [u64; 12] = {
    let mut ns = [0; 12];
    let mut i = 0;
    while i < ns.len() {
        ns[i] = (LATENCY_BUCKETS[i] * 1e9 + 0.5) as u64;
        i += 1;
    }
    ns
};

/// Operations ringd submits to io_uring, by kind.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Op {
    Accept = 0,
    Read = 1,
    Write = 2,
    WriteFixed = 3,
    Splice = 4,
    Poll = 5,
}
const OPS: [&str; 6] = ["accept", "read", "write", "write_fixed", "splice", "poll"];
/// Requests by protocol version, in the order of `ringd_core::Version`.
const PROTOCOLS: [&str; 3] = ["HTTP/1.0", "HTTP/1.1", "HTTP/2.0"];
/// An HTTP/2 frame counted in each direction.
const DIRECTIONS: [&str; 2] = ["sent", "received"];
/// The ways a file range is sent ([`Way`]).
const FILE_WAYS: [&str; 3] = ["sendfile", "splice", "copy"];

/// Why a connection on a PROXY protocol listener was closed unserved.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ProxyRefusal {
    /// Its source is not in `proxy_protocol.trusted`.
    Untrusted = 0,
    /// Its first bytes are not a valid PROXY header.
    Invalid = 1,
    /// It closed, failed or reached the header timeout before a whole header arrived.
    Incomplete = 2,
}
const PROXY_REFUSALS: [&str; 3] = ["untrusted", "invalid", "incomplete"];

/// How a file range went out (the way of its last bytes, when it took two).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Way {
    /// `sendfile(2)` on the worker's thread (the range was in the page cache).
    Sendfile,
    /// `splice` through io_uring.
    Splice,
    /// Read into memory and sent.
    #[default]
    Copy,
}

/// What a send did, for the worker's counters.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Sent {
    /// Calls or operations that moved bytes to the socket.
    pub(crate) socket_ops: u64,
    /// Waits for room in the socket's buffer (io_uring polls; `sendfile` only).
    pub(crate) polls: u64,
    pub(crate) way: Way,
}

/// One worker's counters.
#[derive(Debug)]
pub(crate) struct WorkerStats {
    pub(crate) accepted: Counter,
    pub(crate) shed: Counter,
    pub(crate) timed_out: Counter,
    pub(crate) open: Counter,
    pub(crate) bytes_in: Counter,
    pub(crate) bytes_out: Counter,
    /// Fixed buffers checked out now: a gauge the worker's pool stores into as they go and
    /// come back (`FixedBufPool::count_in_use`).
    pub(crate) fixed_in_use: Arc<AtomicU64>,
    pub(crate) fixed_fallbacks: Counter,
    /// Keep-alive sockets placed in the ring's file table.
    pub(crate) fixed_files: Counter,
    pub(crate) fixed_total: Counter,
    /// Fixed buffers configured (`buffers.count`): more than `fixed_total` when the locked
    /// memory limit did not allow them all.
    pub(crate) fixed_configured: Counter,
    /// Buffers in the receive ring (0: none).
    pub(crate) receive_total: Counter,
    /// Receives that found the receive ring empty and read into the connection's own buffer.
    pub(crate) receive_empty: Counter,
    /// TLS handshakes completed in full.
    pub(crate) tls_full: Counter,
    /// TLS handshakes that resumed a session (ticket or session id).
    pub(crate) tls_resumed: Counter,
    /// TLS connections that failed before or during their handshake (plain HTTP, garbage, a
    /// protocol error; not a client that simply left).
    pub(crate) tls_failed: Counter,
    /// HTTP/2 connections served, and open now.
    pub(crate) h2_connections: Counter,
    pub(crate) h2_open: Counter,
    /// HTTP/2 streams open now (requests being answered).
    pub(crate) h2_streams: Counter,
    /// HTTP/2 connections closed for a flood of control frames.
    pub(crate) h2_floods: Counter,
    /// `GOAWAY` and `RST_STREAM` frames, sent and received (indexed by `DIRECTIONS`).
    pub(crate) h2_goaway: [Counter; 2],
    pub(crate) h2_rst_stream: [Counter; 2],
    requests: Vec<Counter>,
    protocols: [Counter; 3],
    latency: Vec<Counter>,
    latency_sum_ns: Counter,
    ops: Vec<Counter>,
    file_sends: Vec<Counter>,
    proxy_refused: Vec<Counter>,
}

impl Default for WorkerStats {
    fn default() -> Self {
        WorkerStats {
            accepted: Counter::default(),
            shed: Counter::default(),
            timed_out: Counter::default(),
            open: Counter::default(),
            bytes_in: Counter::default(),
            bytes_out: Counter::default(),
            fixed_in_use: Arc::default(),
            fixed_fallbacks: Counter::default(),
            fixed_files: Counter::default(),
            fixed_total: Counter::default(),
            fixed_configured: Counter::default(),
            receive_total: Counter::default(),
            receive_empty: Counter::default(),
            tls_full: Counter::default(),
            tls_resumed: Counter::default(),
            tls_failed: Counter::default(),
            h2_connections: Counter::default(),
            h2_open: Counter::default(),
            h2_streams: Counter::default(),
            h2_floods: Counter::default(),
            h2_goaway: Default::default(),
            h2_rst_stream: Default::default(),
            requests: (0..METHODS.len() * CODE_SLOTS).map(|_| Counter::default()).collect(),
            protocols: Default::default(),
            latency: (0..=LATENCY_BUCKETS.len()).map(|_| Counter::default()).collect(),
            latency_sum_ns: Counter::default(),
            ops: (0..OPS.len()).map(|_| Counter::default()).collect(),
            file_sends: (0..FILE_WAYS.len()).map(|_| Counter::default()).collect(),
            proxy_refused: (0..PROXY_REFUSALS.len()).map(|_| Counter::default()).collect(),
        }
    }
}

impl WorkerStats {
    /// Counts one answered request (its latency is counted by [`WorkerStats::latency`]).
    #[inline]
    pub(crate) fn request(&self, method: Method<'_>, status: u16) {
        // In the order of `METHODS`.
        let m = match method {
            Method::Get => 0,
            Method::Head => 1,
            Method::Post => 2,
            Method::Put => 3,
            Method::Delete => 4,
            Method::Patch => 5,
            Method::Options => 6,
            _ => 7,
        };
        let c = status_slot(status);
        self.requests[m * CODE_SLOTS + c].add(1);
    }

    /// Counts the latency of `requests` answered requests that each took `took`.
    #[inline]
    pub(crate) fn latency(&self, requests: u64, took: Duration) {
        self.latency_ns(requests, u64::try_from(took.as_nanos()).unwrap_or(u64::MAX));
    }

    /// [`latency`](Self::latency) in nanoseconds.
    #[inline]
    pub(crate) fn latency_ns(&self, requests: u64, nanos: u64) {
        let b = LATENCY_BUCKETS_NS
            .iter()
            .position(|le| nanos <= *le)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.latency[b].add(requests);
        self.latency_sum_ns.add(nanos.saturating_mul(requests));
    }

    /// Counts one request by its protocol version.
    #[inline]
    pub(crate) fn protocol(&self, version: ringd_core::Version) {
        self.protocols[version as usize].add(1);
    }

    /// Counts one operation submitted to io_uring.
    #[inline]
    pub(crate) fn op(&self, op: Op) {
        self.ops(op, 1);
    }

    /// Counts one file range sent, and the operations it took.
    pub(crate) fn file_send(&self, sent: Sent) {
        let (way, op) = match sent.way {
            // `sendfile` calls are system calls, not io_uring operations; its waits are.
            Way::Sendfile => (0, None),
            Way::Splice => (1, Some(Op::Splice)),
            Way::Copy => (2, Some(Op::Write)),
        };
        self.file_sends[way].add(1);
        if let Some(op) = op {
            self.ops(op, sent.socket_ops);
        }
        self.ops(Op::Poll, sent.polls);
    }

    pub(crate) fn ops(&self, op: Op, n: u64) {
        self.ops[op as usize].add(n);
    }

    /// Counts a connection on a PROXY protocol listener closed unserved.
    pub(crate) fn proxy_refused(&self, why: ProxyRefusal) {
        self.proxy_refused[why as usize].add(1);
    }
}

/// Counters another part of the server keeps and renders itself (the traffic limits, whose
/// zones change with reloads), appended to the exposition.
pub(crate) trait Exposition: Send + Sync + std::fmt::Debug {
    /// Writes complete families (`# HELP`, `# TYPE` and samples).
    fn render(&self, out: &mut String);
}

/// The counters of every worker, for scraping from any thread, and whether the server still
/// takes new connections (for a readiness check).
#[derive(Debug, Clone)]
pub struct Metrics {
    workers: Arc<[Arc<WorkerStats>]>,
    /// Set once a drain starts, before any worker hears of it, and never cleared.
    draining: Arc<AtomicBool>,
    more: Arc<std::sync::Mutex<Vec<Arc<dyn Exposition>>>>,
}

impl Metrics {
    pub(crate) fn new(workers: usize) -> Metrics {
        Metrics {
            workers: (0..workers).map(|_| Arc::new(WorkerStats::default())).collect(),
            draining: Arc::new(AtomicBool::new(false)),
            more: Arc::default(),
        }
    }

    /// Whether the server takes new connections: true until a drain starts
    /// ([`RunningServer::drain`](crate::RunningServer::drain)), false from then on.
    pub fn is_ready(&self) -> bool {
        !self.draining.load(Ordering::SeqCst)
    }

    /// Marks the server as draining, for good.
    pub(crate) fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Adds counters rendered by their owner after the workers' own.
    pub(crate) fn add(&self, source: Arc<dyn Exposition>) {
        self.more.lock().unwrap_or_else(|e| e.into_inner()).push(source);
    }

    pub(crate) fn worker(&self, id: usize) -> Arc<WorkerStats> {
        self.workers[id].clone()
    }

    /// Requests answered so far, all workers.
    pub fn requests_total(&self) -> u64 {
        self.workers
            .iter()
            .flat_map(|w| w.requests.iter())
            .map(Counter::get)
            .sum()
    }

    /// Fixed buffers registered and configured, summed over the workers.
    pub(crate) fn fixed_buffers(&self) -> (u64, u64) {
        self.workers.iter().fold((0, 0), |(r, c), w| {
            (r + w.fixed_total.get(), c + w.fixed_configured.get())
        })
    }

    /// The Prometheus text exposition (format 0.0.4) of every counter, plus the process's
    /// resident memory and open descriptors.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        let sum = |f: &dyn Fn(&WorkerStats) -> u64| self.workers.iter().map(|w| f(w)).sum::<u64>();

        header(
            &mut out,
            "ringd_http_requests_total",
            "counter",
            "HTTP requests answered, by method and status code.",
        );
        for (m, method) in METHODS.iter().enumerate() {
            for c in 0..CODE_SLOTS {
                let n = sum(&|w| w.requests[m * CODE_SLOTS + c].get());
                if n > 0 {
                    let code = match CODES.get(c) {
                        Some(code) => code.to_string(),
                        None => format!("{}xx", c - CODES.len() + 1),
                    };
                    let _ = writeln!(
                        out,
                        "ringd_http_requests_total{{method=\"{method}\",code=\"{code}\"}} {n}"
                    );
                }
            }
        }

        header(
            &mut out,
            "ringd_http_request_duration_seconds",
            "histogram",
            "Time to answer: from the read that completed a request to when its answer was ready to send (HTTP/1.1: the end of the answers to every request that read brought, which are sent together).",
        );
        let mut cumulative = 0;
        for (i, le) in LATENCY_BUCKETS.iter().enumerate() {
            cumulative += sum(&|w| w.latency[i].get());
            let _ = writeln!(
                out,
                "ringd_http_request_duration_seconds_bucket{{le=\"{le}\"}} {cumulative}"
            );
        }
        cumulative += sum(&|w| w.latency[LATENCY_BUCKETS.len()].get());
        let _ = writeln!(
            out,
            "ringd_http_request_duration_seconds_bucket{{le=\"+Inf\"}} {cumulative}"
        );
        let seconds = sum(&|w| w.latency_sum_ns.get()) as f64 / 1e9;
        let _ = writeln!(out, "ringd_http_request_duration_seconds_sum {seconds}");
        let _ = writeln!(out, "ringd_http_request_duration_seconds_count {cumulative}");

        for (name, help, get) in [
            (
                "ringd_received_bytes_total",
                "Bytes read from clients.",
                (|w: &WorkerStats| w.bytes_in.get()) as fn(&WorkerStats) -> u64,
            ),
            ("ringd_sent_bytes_total", "Bytes written to clients.", |w| {
                w.bytes_out.get()
            }),
        ] {
            header(&mut out, name, "counter", help);
            let _ = writeln!(out, "{name} {}", sum(&get));
        }

        type PerWorker = (&'static str, &'static str, &'static str, fn(&WorkerStats) -> u64);
        let per_worker: [PerWorker; 18] = [
            ("ringd_connections_open", "gauge", "Connections open now.", |w| {
                w.open.get()
            }),
            (
                "ringd_connections_accepted_total",
                "counter",
                "Connections accepted.",
                |w| w.accepted.get(),
            ),
            (
                "ringd_connections_shed_total",
                "counter",
                "Connections refused over max_connections.",
                |w| w.shed.get(),
            ),
            (
                "ringd_connections_timed_out_total",
                "counter",
                "Connections closed by a timeout.",
                |w| w.timed_out.get(),
            ),
            (
                "ringd_fixed_buffers",
                "gauge",
                "Registered fixed buffers in the pool.",
                |w| w.fixed_total.get(),
            ),
            (
                "ringd_fixed_buffers_configured",
                "gauge",
                "Fixed buffers configured (buffers.count); more than ringd_fixed_buffers when RLIMIT_MEMLOCK did not allow them all.",
                |w| w.fixed_configured.get(),
            ),
            (
                "ringd_fixed_buffers_in_use",
                "gauge",
                "Registered fixed buffers holding unsent responses now.",
                |w| w.fixed_in_use.load(Ordering::Relaxed),
            ),
            (
                "ringd_fixed_buffer_fallbacks_total",
                "counter",
                "Sends that found the pool empty and used the heap.",
                |w| w.fixed_fallbacks.get(),
            ),
            (
                "ringd_fixed_files_total",
                "counter",
                "Keep-alive sockets placed in the ring's file table (their operations skip the kernel's file lookup).",
                |w| w.fixed_files.get(),
            ),
            (
                "ringd_receive_buffers",
                "gauge",
                "Buffers in the receive ring that idle connections' next requests arrive in (0: none; each connection keeps a read buffer).",
                |w| w.receive_total.get(),
            ),
            (
                "ringd_receive_ring_empty_total",
                "counter",
                "Receives that found the receive ring empty and used the connection's own buffer.",
                |w| w.receive_empty.get(),
            ),
            (
                "ringd_tls_handshakes_full_total",
                "counter",
                "TLS handshakes completed in full.",
                |w| w.tls_full.get(),
            ),
            (
                "ringd_tls_handshakes_resumed_total",
                "counter",
                "TLS handshakes that resumed a session (a ticket or a session id).",
                |w| w.tls_resumed.get(),
            ),
            (
                "ringd_tls_failures_total",
                "counter",
                "TLS connections that failed: plain HTTP or garbage on the TLS port, a protocol error.",
                |w| w.tls_failed.get(),
            ),
            (
                "ringd_http2_connections_total",
                "counter",
                "Connections that spoke HTTP/2 (h2 by ALPN, or h2c).",
                |w| w.h2_connections.get(),
            ),
            (
                "ringd_http2_connections_open",
                "gauge",
                "HTTP/2 connections open now.",
                |w| w.h2_open.get(),
            ),
            (
                "ringd_http2_streams_open",
                "gauge",
                "HTTP/2 streams (requests) being answered now.",
                |w| w.h2_streams.get(),
            ),
            (
                "ringd_http2_floods_total",
                "counter",
                "HTTP/2 connections closed with GOAWAY(ENHANCE_YOUR_CALM) for too many control frames.",
                |w| w.h2_floods.get(),
            ),
        ];
        for (name, kind, help, get) in per_worker {
            header(&mut out, name, kind, help);
            for (i, w) in self.workers.iter().enumerate() {
                let _ = writeln!(out, "{name}{{worker=\"{i}\"}} {}", get(w));
            }
        }

        // Counters by one label, summed over the workers.
        let by_label = [
            (
                "ringd_io_uring_submissions_total",
                "Operations ringd submitted to io_uring, by kind.",
                "op",
                &OPS[..],
                (|w: &WorkerStats| &w.ops[..]) as fn(&WorkerStats) -> &[Counter],
            ),
            (
                "ringd_file_sends_total",
                "File ranges sent, by way: sendfile (all in the page cache), splice (through io_uring), copy.",
                "way",
                &FILE_WAYS[..],
                |w| &w.file_sends[..],
            ),
            (
                "ringd_http_requests_by_protocol_total",
                "HTTP requests answered, by protocol version.",
                "protocol",
                &PROTOCOLS[..],
                |w| &w.protocols[..],
            ),
            (
                "ringd_http2_goaway_total",
                "HTTP/2 GOAWAY frames, sent and received.",
                "direction",
                &DIRECTIONS[..],
                |w| &w.h2_goaway[..],
            ),
            (
                "ringd_http2_rst_stream_total",
                "HTTP/2 RST_STREAM frames, sent and received.",
                "direction",
                &DIRECTIONS[..],
                |w| &w.h2_rst_stream[..],
            ),
            (
                "ringd_proxy_protocol_refused_total",
                "Connections on a proxy_protocol listener closed unserved, by reason: untrusted (source not in proxy_protocol.trusted), invalid (no valid PROXY header), incomplete (closed or timed out before a whole header).",
                "reason",
                &PROXY_REFUSALS[..],
                |w| &w.proxy_refused[..],
            ),
        ];
        for (name, help, label, values, counters) in by_label {
            header(&mut out, name, "counter", help);
            for (i, value) in values.iter().enumerate() {
                let _ = writeln!(out, "{name}{{{label}=\"{value}\"}} {}", sum(&|w| counters(w)[i].get()));
            }
        }

        header(
            &mut out,
            "ringd_ready",
            "gauge",
            "1 while ringd takes new connections, 0 from the moment a drain starts (as /readyz).",
        );
        let _ = writeln!(out, "ringd_ready {}", u8::from(self.is_ready()));
        for source in self.more.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            source.render(&mut out);
        }

        if let Some(rss) = resident_bytes() {
            header(
                &mut out,
                "process_resident_memory_bytes",
                "gauge",
                "Resident memory size in bytes.",
            );
            let _ = writeln!(out, "process_resident_memory_bytes {rss}");
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            header(&mut out, "process_open_fds", "gauge", "Open file descriptors.");
            let _ = writeln!(out, "process_open_fds {}", fds.count());
        }
        out
    }
}

/// Writes a family's `# HELP` and `# TYPE` lines.
pub(crate) fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_renders() {
        let m = Metrics::new(2);
        m.worker(0).request(Method::Get, 200);
        m.worker(0).latency(1, Duration::from_micros(30));
        m.worker(1).request(Method::Get, 200);
        m.worker(1).latency(1, Duration::from_millis(3));
        m.worker(1).request(Method::Other("BREW"), 418);
        m.worker(1).latency(1, Duration::from_secs(5));
        m.worker(0).accepted.add(3);
        let text = m.render();
        assert!(
            text.contains("ringd_http_requests_total{method=\"GET\",code=\"200\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("ringd_http_requests_total{method=\"OTHER\",code=\"4xx\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("ringd_http_request_duration_seconds_bucket{le=\"0.00005\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("ringd_http_request_duration_seconds_bucket{le=\"0.005\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("ringd_http_request_duration_seconds_bucket{le=\"+Inf\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("ringd_connections_accepted_total{worker=\"0\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("ringd_connections_accepted_total{worker=\"1\"} 0\n"),
            "{text}"
        );
        assert_eq!(m.requests_total(), 3);
        assert!(text.contains("\nringd_ready 1\n"), "{text}");
        m.clone().start_draining();
        assert!(!m.is_ready());
        assert!(m.render().contains("\nringd_ready 0\n"));
    }

    #[test]
    fn every_method_is_counted_under_its_own_name() {
        let named = [
            Method::Get,
            Method::Head,
            Method::Post,
            Method::Put,
            Method::Delete,
            Method::Patch,
            Method::Options,
        ];
        for method in named {
            let m = Metrics::new(1);
            m.worker(0).request(method, 204);
            let line = format!(
                "ringd_http_requests_total{{method=\"{}\",code=\"204\"}} 1\n",
                method.as_str()
            );
            assert!(m.render().contains(&line), "{line}");
        }
        let m = Metrics::new(1);
        m.worker(0).request(Method::Trace, 204);
        assert!(m
            .render()
            .contains("ringd_http_requests_total{method=\"OTHER\",code=\"204\"} 1\n"));
    }

    #[test]
    fn every_status_has_the_slot_of_its_code_or_its_class() {
        for status in 0..=u16::MAX {
            let slot = status_slot(status);
            let expected = CODES
                .iter()
                .position(|x| *x == status)
                .unwrap_or_else(|| CODES.len() + (status / 100).clamp(1, 5) as usize - 1);
            assert_eq!(slot, expected, "{status}");
        }
    }

    #[test]
    fn latency_bounds_in_nanoseconds_match_the_rendered_ones() {
        for (secs, ns) in LATENCY_BUCKETS.iter().zip(LATENCY_BUCKETS_NS) {
            assert_eq!(Duration::from_nanos(ns).as_secs_f64(), *secs);
        }
    }

    #[test]
    fn a_latency_on_a_bound_is_in_that_bound_s_bucket_and_one_past_it_in_the_next() {
        for (i, ns) in LATENCY_BUCKETS_NS.into_iter().enumerate() {
            for (took, bucket) in [(ns, i), (ns + 1, i + 1)] {
                let stats = WorkerStats::default();
                stats.latency(1, Duration::from_nanos(took));
                let counts: Vec<u64> = stats.latency.iter().map(Counter::get).collect();
                assert_eq!(counts.iter().position(|&n| n == 1), Some(bucket), "{took} ns");
            }
        }
        let stats = WorkerStats::default();
        stats.latency(3, Duration::from_micros(70));
        assert_eq!(stats.latency[1].get(), 3, "three requests in the 0.1 ms bucket");
        assert_eq!(stats.latency_sum_ns.get(), 210_000);
        let stats = WorkerStats::default();
        stats.latency(1, Duration::MAX);
        assert_eq!(stats.latency[LATENCY_BUCKETS.len()].get(), 1);
        assert_eq!(stats.latency_sum_ns.get(), u64::MAX);
    }
}
