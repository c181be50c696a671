//! Rate limits and the connection limit, end to end: zones from the config file, 429 with
//! `Retry-After`, per-zone counters in `/metrics`, dry runs, bursts spread out, one client's
//! rate held over several workers, a flood of distinct source addresses (127.x.y.z) with
//! bounded memory, reloads that keep clients, HTTP/2, and `ringd check`.

mod common;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{bin, poll_until, require_tool, roundtrip, run_bounded, Conn, Server, TempDir, IO_TIMEOUT};

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").into_bytes()
}

/// Starts ringd with `config` (TOML) and an admin listener; `args` are further flags.
fn start(dir: &TempDir, config: &str, args: &[&str]) -> Server {
    let conf = dir.write("ringd.toml", config.as_bytes());
    let mut all = vec!["--config", conf.to_str().unwrap(), "--admin", "127.0.0.1:0"];
    all.extend_from_slice(args);
    Server::start(&all)
}

fn zone_count(server: &Server, zone: &str, result: &str) -> f64 {
    server.metric(&format!(
        "ringd_rate_limit_requests_total{{zone=\"{zone}\",result=\"{result}\"}}"
    ))
}

/// A connection from `source` (any 127.0.0.0/8 address) to `addr`.
fn connect_from(source: Ipv4Addr, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.bind(&SocketAddrV4::new(source, 0).into())?;
    socket.connect_timeout(&addr.into(), IO_TIMEOUT)?;
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(stream)
}

#[test]
fn a_client_over_its_rate_gets_429_with_retry_after_and_the_zone_counts_it() {
    let dir = TempDir::new("rate-429");
    let server = start(
        &dir,
        "[[rate_limit]]\nname = \"api\"\nrate = \"1r/m\"\nburst = 2\nnodelay = true\npaths = [\"/plaintext\"]\n",
        &[],
    );
    // One keep-alive connection: the refusal does not close it.
    let mut c = Conn::open(server.addr);
    for i in 0..3 {
        c.send(&get("/plaintext"));
        let r = c.read_response(false);
        assert_eq!(r.status, 200, "request {i} is within the burst: {}", r.raw_head);
    }
    c.send(&get("/plaintext"));
    let r = c.read_response(false);
    assert_eq!(r.status, 429, "{}", r.raw_head);
    r.assert_common();
    assert!(!r.connection_has("close"), "{}", r.raw_head);
    assert_eq!(r.body_str(), "429 Too Many Requests\n");
    // Three requests at once put the client 3 minutes ahead of 1 r/m, 2 of them allowed:
    // back in (at most) one minute.
    let retry: u64 = r.header("retry-after").expect("Retry-After").parse().unwrap();
    assert!((1..=60).contains(&retry), "Retry-After: {retry}");
    // Paths outside the zone are not limited, on the same connection.
    c.send(&get("/json"));
    assert_eq!(c.read_response(false).status, 200);
    assert_eq!(roundtrip(server.addr, &get("/")).status, 200);
    assert_eq!(zone_count(&server, "api", "passed"), 3.0);
    assert_eq!(zone_count(&server, "api", "rejected"), 1.0);
    assert_eq!(
        server.metric("ringd_http_requests_total{method=\"GET\",code=\"429\"}"),
        1.0
    );
    assert_eq!(server.metric("ringd_rate_limit_clients{zone=\"api\"}"), 1.0);
    assert!(
        server.wait_log(|log| log.contains("rate limit: refused a request")),
        "{}",
        server.log()
    );
    server.assert_no_panic();
}

#[test]
fn a_zone_answers_with_its_own_status_and_keys_clients_by_network() {
    let dir = TempDir::new("rate-503");
    let server = start(
        &dir,
        "[[rate_limit]]\nname = \"net\"\nrate = \"1r/m\"\nkey = \"network\"\nstatus = 503\n",
        &[],
    );
    let ask = |source: [u8; 4]| {
        let mut c = Conn::new(connect_from(Ipv4Addr::from(source), server.addr).unwrap());
        c.send(&get("/plaintext"));
        c.read_response(false)
    };
    assert_eq!(ask([127, 0, 9, 1]).status, 200);
    // Another address of the same /24 is the same client.
    let r = ask([127, 0, 9, 2]);
    assert_eq!(r.status, 503, "{}", r.raw_head);
    assert!(r.header("retry-after").is_some(), "{}", r.raw_head);
    // Another /24 is another client.
    assert_eq!(ask([127, 0, 10, 1]).status, 200);
}

#[test]
fn a_dry_run_counts_and_logs_what_it_would_refuse_but_serves_it() {
    let dir = TempDir::new("rate-dry");
    let server = start(
        &dir,
        "[[rate_limit]]\nname = \"try\"\nrate = \"1r/m\"\ndry_run = true\n",
        &[],
    );
    let mut c = Conn::open(server.addr);
    for _ in 0..5 {
        c.send(&get("/plaintext"));
        assert_eq!(c.read_response(false).status, 200);
    }
    assert_eq!(zone_count(&server, "try", "passed"), 1.0);
    assert_eq!(zone_count(&server, "try", "rejected_dry_run"), 4.0);
    assert_eq!(zone_count(&server, "try", "rejected"), 0.0);
    assert!(
        server.wait_log(|log| log.contains("rate limit (dry run): would refuse")),
        "{}",
        server.log()
    );
}

#[test]
fn without_nodelay_a_burst_is_spread_out_to_the_rate() {
    let dir = TempDir::new("rate-delay");
    let server = start(
        &dir,
        "[[rate_limit]]\nname = \"slow\"\nrate = \"10r/s\"\nburst = 4\n",
        &[],
    );
    // Five requests at once (pipelined): the first now, the others 100 ms apart.
    let mut c = Conn::open(server.addr);
    let started = Instant::now();
    c.send(&get("/plaintext").repeat(5));
    for _ in 0..5 {
        assert_eq!(c.read_response(false).status, 200);
    }
    // The server must have waited (a lower bound: a slow machine only adds to it).
    assert!(
        started.elapsed() >= Duration::from_millis(390),
        "{:?}",
        started.elapsed()
    );
    // Delayed, unless the machine stalled the worker long enough for the rate to catch up.
    let (passed, delayed) = (
        zone_count(&server, "slow", "passed"),
        zone_count(&server, "slow", "delayed"),
    );
    assert_eq!(passed + delayed, 5.0);
    assert!(passed >= 1.0, "{passed} passed, {delayed} delayed");
    assert_eq!(zone_count(&server, "slow", "rejected"), 0.0);
}

/// `SO_REUSEPORT` spreads one client's connections over every worker: with four workers (two
/// CPUs, unpinned) and connections on each, the client still gets its rate, not four times it.
#[test]
fn a_client_gets_its_rate_within_ten_percent_over_four_workers() {
    const RATE: f64 = 100.0;
    const BURST: f64 = 10.0;
    let dir = TempDir::new("rate-workers");
    let server = start(
        &dir,
        "[[rate_limit]]\nname = \"api\"\nrate = \"100r/s\"\nburst = 10\nnodelay = true\npaths = [\"/plaintext\"]\n",
        &[
            "--workers",
            "4",
            "--pin",
            "false",
            "--max-requests-per-conn",
            "1000000000",
        ],
    );
    // Connections until every worker holds some (each answers one request outside the zone,
    // so that it is surely accepted before the count is read).
    let mut conns = Vec::new();
    let per_worker = |server: &Server| -> Vec<f64> {
        (0..4)
            .map(|w| server.metric(&format!("ringd_connections_open{{worker=\"{w}\"}}")))
            .collect()
    };
    while conns.len() < 128 && (conns.is_empty() || per_worker(&server).contains(&0.0)) {
        for _ in 0..16 {
            let mut c = Conn::open(server.addr);
            c.send(&get("/json"));
            assert_eq!(c.read_response(false).status, 200);
            conns.push(c);
        }
    }
    let open = per_worker(&server);
    assert!(!open.contains(&0.0), "a worker has no connection: {open:?}");
    // Every connection asks as fast as it can for three seconds.
    let ok = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let threads: Vec<_> = conns
        .into_iter()
        .map(|mut c| {
            let (ok, refused, stop) = (ok.clone(), refused.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    c.send(&get("/plaintext"));
                    match c.read_response(false).status {
                        200 => ok.fetch_add(1, Ordering::Relaxed),
                        429 => refused.fetch_add(1, Ordering::Relaxed),
                        other => panic!("status {other}"),
                    };
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let seconds = started.elapsed().as_secs_f64();
    let (ok, refused) = (
        ok.load(Ordering::Relaxed) as f64,
        refused.load(Ordering::Relaxed) as f64,
    );
    // GCRA allows the burst (plus one) at once, then the rate.
    let rate = (ok - BURST - 1.0) / seconds;
    eprintln!("4 workers: {ok} allowed, {refused} refused in {seconds:.2} s: {rate:.1} r/s for a rate of {RATE}");
    assert!(
        refused > ok,
        "the clients did not ask faster than the rate: {ok} allowed, {refused} refused"
    );
    assert!(
        (rate - RATE).abs() <= RATE * 0.10,
        "{ok} allowed in {seconds:.2} s: {rate:.1} r/s, not within 10% of {RATE}"
    );
    assert_eq!(zone_count(&server, "api", "passed"), ok);
    server.assert_no_panic();
}

/// Tens of thousands of source addresses, one request each, against zones tracking 4,096
/// clients: the server's memory does not grow with them (the tables are fixed; a full table
/// forgets clients), and a client keeping to its rate meanwhile is always served. Zone `api`
/// covers every path; zone `slow` (1 r/m, so that every client it holds stays ahead of its rate
/// for the whole test) covers only the flood's path, and must forget the clients it cannot
/// hold.
#[test]
fn a_flood_of_addresses_keeps_memory_bounded_and_well_behaved_clients_served() {
    const FLOOD: u32 = 30_000;
    let dir = TempDir::new("rate-flood");
    let server = start(
        &dir,
        "[[rate_limit]]\nname = \"api\"\nrate = \"10r/s\"\nburst = 5\nnodelay = true\nclients = 4096\n\n[[rate_limit]]\nname = \"slow\"\nrate = \"1r/m\"\nburst = 5\nnodelay = true\nclients = 4096\npaths = [\"/plaintext\"]\n",
        &["--workers", "2", "--pin", "false"],
    );
    let addr = server.addr;
    // One request from each of `sources`, four threads at once; returns the statuses seen.
    let one_each = |sources: Vec<Ipv4Addr>| -> Vec<u16> {
        let chunks: Vec<Vec<Ipv4Addr>> = sources.chunks(sources.len().div_ceil(4)).map(<[_]>::to_vec).collect();
        let threads: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                std::thread::spawn(move || {
                    chunk
                        .into_iter()
                        .map(|source| {
                            let mut c = Conn::new(connect_from(source, addr).expect("connect"));
                            c.send(b"GET /plaintext HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
                            c.read_response(false).status
                        })
                        .collect::<Vec<u16>>()
                })
            })
            .collect();
        threads.into_iter().flat_map(|t| t.join().unwrap()).collect()
    };
    let address = |i: u32| Ipv4Addr::from(0x7f01_0000 + i);
    // Warm up with as many connections (five from each of 6,000 addresses: within every
    // allowance), so that buffers, free lists and the allocator reach their steady size before
    // the baseline is read.
    let warm: Vec<Ipv4Addr> = (0..FLOOD).map(|i| address(i % 6000)).collect();
    one_each(warm);
    let baseline = server.rss_kib();
    // A client that keeps to 5 r/s (a fifth of a second between requests, at least) all along.
    let stop = Arc::new(AtomicBool::new(false));
    let polite = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut statuses = Vec::new();
            let mut c = Conn::open(addr);
            while !stop.load(Ordering::Relaxed) {
                c.send(&get("/json"));
                statuses.push(c.read_response(false).status);
                std::thread::sleep(Duration::from_millis(200));
            }
            statuses
        })
    };
    let flood: Vec<Ipv4Addr> = (0..FLOOD).map(|i| address(8192 + i)).collect();
    let statuses = one_each(flood);
    stop.store(true, Ordering::Relaxed);
    let polite = polite.join().unwrap();
    let grown = server.rss_kib().saturating_sub(baseline);
    eprintln!(
        "RSS {baseline} KiB before the flood of {FLOOD} addresses, +{grown} KiB after; the polite client made {} requests",
        polite.len()
    );
    assert!(
        statuses.iter().all(|s| *s == 200),
        "each new address is within its allowance"
    );
    assert!(!polite.is_empty() && polite.iter().all(|s| *s == 200), "{polite:?}");
    // 30,000 clients in any per-client map would be a megabyte or more; the tables are 32 KiB
    // each and were resident from the start.
    assert!(grown < 512, "RSS grew by {grown} KiB with the flood");
    for zone in ["api", "slow"] {
        assert_eq!(
            server.metric(&format!("ringd_rate_limit_capacity{{zone=\"{zone}\"}}")),
            4096.0
        );
        assert!(server.metric(&format!("ringd_rate_limit_clients{{zone=\"{zone}\"}}")) <= 4096.0);
    }
    // Every flood client beyond the table's 4,096 places took the place of one still ahead.
    let evicted = server.metric("ringd_rate_limit_evictions_total{zone=\"slow\"}");
    assert!(evicted > f64::from(FLOOD - 4096) * 0.9, "{evicted} evictions");
    server.assert_no_panic();
}

/// A connection past the limit is answered 429 and closed, whichever worker accepted it: the
/// counts are shared, so two workers do not let a client hold twice the limit.
#[test]
fn connections_past_the_limit_are_refused_over_every_worker() {
    let dir = TempDir::new("conn-limit");
    let server = start(
        &dir,
        "[connection_limit]\nmax = 3\n",
        &["--workers", "2", "--pin", "false"],
    );
    let mut served = Vec::new();
    let mut refused = 0;
    for _ in 0..8 {
        let mut c = Conn::open(server.addr);
        c.send(&get("/plaintext"));
        let r = c.read_response(false);
        match r.status {
            200 => served.push(c),
            429 => {
                assert!(r.connection_has("close"), "{}", r.raw_head);
                assert_eq!(r.header("retry-after"), Some("1"));
                c.expect_eof();
                refused += 1;
            }
            other => panic!("status {other}: {}", r.raw_head),
        }
    }
    assert_eq!((served.len(), refused), (3, 5));
    // Another client has its own count.
    let mut other = Conn::new(connect_from(Ipv4Addr::new(127, 0, 0, 2), server.addr).unwrap());
    other.send(&get("/plaintext"));
    assert_eq!(other.read_response(false).status, 200);
    assert_eq!(server.metric("ringd_connection_limit_total{result=\"rejected\"}"), 5.0);
    // A closed connection gives its place back.
    drop(served.pop());
    assert!(
        poll_until(Duration::from_secs(10), || {
            let mut c = Conn::open(server.addr);
            c.send(&get("/plaintext"));
            c.read_response(false).status == 200
        }),
        "no connection was served after one closed"
    );
    assert!(
        server.wait_log(|log| log.contains("connection limit: refused a connection")),
        "{}",
        server.log()
    );
    server.assert_no_panic();
}

#[test]
fn a_connection_limit_dry_run_serves_and_counts() {
    let dir = TempDir::new("conn-dry");
    let server = start(&dir, "[connection_limit]\nmax = 1\ndry_run = true\n", &[]);
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut c = Conn::open(server.addr);
        c.send(&get("/plaintext"));
        assert_eq!(c.read_response(false).status, 200);
        held.push(c);
    }
    assert_eq!(
        server.metric("ringd_connection_limit_total{result=\"rejected_dry_run\"}"),
        2.0
    );
    assert_eq!(server.metric("ringd_connection_limit_open"), 3.0);
}

/// SIGHUP applies new zones and new settings, and a zone that keeps its name keeps its
/// clients: a client refused before the reload is still refused after it. (A lowered rate caps
/// a client's old debt at the new rate's: `traffic::rate`'s unit tests.)
#[test]
fn a_reload_changes_zones_without_resetting_their_clients() {
    let dir = TempDir::new("rate-reload");
    let one = "[[rate_limit]]\nname = \"a\"\nrate = \"1r/m\"\npaths = [\"/plaintext\"]\n";
    let server = start(&dir, one, &[]);
    let status = |path: &str| roundtrip(server.addr, &get(path)).status;
    assert_eq!(status("/plaintext"), 200);
    assert_eq!(status("/plaintext"), 429);
    assert_eq!(status("/json"), 200);
    let reloaded = |n: usize| {
        poll_until(Duration::from_secs(10), || {
            server.log().matches("SIGHUP: configuration reloaded").count() >= n
        })
    };
    // Zone a answering 503 now (its rate unchanged: nothing refills within a minute, however
    // slow the machine), and a new zone b.
    dir.write(
        "ringd.toml",
        b"[[rate_limit]]\nname = \"a\"\nrate = \"1r/m\"\nstatus = 503\npaths = [\"/plaintext\"]\n\n[[rate_limit]]\nname = \"b\"\nrate = \"1r/m\"\npaths = [\"/json\"]\n",
    );
    server.signal("HUP");
    assert!(reloaded(1), "{}", server.log());
    assert!(server.log().contains("changed: rate_limit"), "{}", server.log());
    assert_eq!(
        status("/plaintext"),
        503,
        "zone a forgot its client, or kept its old status"
    );
    assert_eq!(status("/json"), 200);
    assert_eq!(status("/json"), 429, "zone b is not in force");
    assert_eq!(zone_count(&server, "a", "rejected"), 2.0);
    assert_eq!(zone_count(&server, "b", "rejected"), 1.0);
    // A zone under a new name is a new zone.
    dir.write(
        "ringd.toml",
        b"[[rate_limit]]\nname = \"a2\"\nrate = \"1r/m\"\npaths = [\"/plaintext\"]\n",
    );
    server.signal("HUP");
    assert!(reloaded(2), "{}", server.log());
    assert_eq!(status("/plaintext"), 200);
    assert_eq!(status("/json"), 200, "zone b is gone");
    // A bad zone fails the reload and keeps the running ones.
    dir.write(
        "ringd.toml",
        b"[[rate_limit]]\nname = \"a2\"\nrate = \"fast\"\npaths = [\"/plaintext\"]\n",
    );
    server.signal("HUP");
    assert!(
        poll_until(Duration::from_secs(10), || server.log().contains("reload failed")),
        "{}",
        server.log()
    );
    assert_eq!(status("/plaintext"), 429);
    server.assert_no_panic();
}

/// HTTP/2 requests go through the same zones (curl, h2c with prior knowledge; a connection
/// each).
#[test]
fn http2_requests_are_limited_like_http1_ones() {
    require_tool("curl", "curl");
    let dir = TempDir::new("rate-h2");
    let server = start(
        &dir,
        "[[rate_limit]]\nname = \"h2\"\nrate = \"1r/m\"\nburst = 1\nnodelay = true\n",
        &["--h2c", "true"],
    );
    let url = server.url("/plaintext");
    let answers: Vec<String> = (0..4)
        .map(|_| {
            let out = run_bounded(
                Command::new("curl").args([
                    "-s",
                    "--http2-prior-knowledge",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_version} %{http_code}",
                    &url,
                ]),
                Duration::from_secs(30),
            );
            out.assert_success("curl").stdout_str()
        })
        .collect();
    assert_eq!(answers, ["2 200", "2 200", "2 429", "2 429"]);
    assert_eq!(zone_count(&server, "h2", "rejected"), 2.0);
    assert_eq!(
        server.metric("ringd_http_requests_by_protocol_total{protocol=\"HTTP/2.0\"}"),
        4.0
    );
}

/// `ringd check` refuses a bad zone with one line that names it (and its line in the file).
#[test]
fn check_names_what_is_wrong_with_a_zone() {
    let dir = TempDir::new("rate-check");
    let cases: [(&str, &str); 7] = [
        (
            "[[rate_limit]]\nname = \"api\"\nrate = \"10r/h\"\n",
            "rate_limit \"api\": rate: \"10r/h\" is not a rate",
        ),
        (
            "[[rate_limit]]\nname = \"a\"\nrate = \"1r/s\"\n\n[[rate_limit]]\nname = \"b\"\nrate = \"1r/m\"\nburst = 5000\n",
            "line 8: invalid configuration: rate_limit.burst: zone \"b\"",
        ),
        (
            "[[rate_limit]]\nname = \"a\"\nrate = \"1r/s\"\n[[rate_limit]]\nname = \"a\"\nrate = \"1r/s\"\n",
            "rate_limit.name: zone \"a\": two zones have this name",
        ),
        (
            "[[rate_limit]]\nname = \"a\"\nrate = \"1r/s\"\npaths = [\"api\"]\n",
            "line 4: invalid configuration: rate_limit.paths",
        ),
        (
            "[[rate_limit]]\nname = \"a\"\nrate = \"1r/s\"\nkey = \"network\"\nipv4_prefix = 33\n",
            "rate_limit.key: zone \"a\": the network prefix",
        ),
        ("[connection_limit]\nmax = 0\n", "line 2: invalid configuration: connection_limit.max"),
        ("[[rate_limit]]\nname = \"a\"\nrate = \"1r/s\"\nbrust = 3\n", "unknown field `brust`"),
    ];
    for (config, expected) in cases {
        let path = dir.write("bad.toml", config.as_bytes());
        let out = run_bounded(
            Command::new(bin()).args(["check", "--config", path.to_str().unwrap()]),
            Duration::from_secs(30),
        );
        assert_eq!(out.status.code(), Some(1), "{config}\n{}", out.stderr);
        let line = out.stderr.trim();
        assert!(line.starts_with("error: ") && !line.contains('\n'), "{line}");
        assert!(line.contains(expected), "{config}\nexpected {expected:?} in: {line}");
    }
    let good = dir.write(
        "good.toml",
        b"[[rate_limit]]\nname = \"api\"\nrate = \"600r/min\"\nburst = 20\npaths = [\"/api/\"]\n\n[connection_limit]\nmax = 64\n",
    );
    let out = run_bounded(
        Command::new(bin()).args(["check", "--config", good.to_str().unwrap()]),
        Duration::from_secs(30),
    );
    out.assert_success("ringd check");
    let text = out.stdout_str();
    assert!(
        text.contains("[[rate_limit]]\nname = \"api\"\nrate = \"600r/m\"\nburst = 20\n"),
        "{text}"
    );
    assert!(text.contains("[connection_limit]\nmax = 64\n"), "{text}");
}
