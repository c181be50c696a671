//! `/metrics` on the admin listener: Prometheus text that a real parser (prometheus_client)
//! accepts, with counters that move as traffic flows; nothing of it on the public port.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{python_json, require_tool, roundtrip, run_bounded, Server};

const PARSE: &str = r#"
import json, sys, urllib.request
try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    sys.exit("prometheus_client is missing: apt-get install -y python3-prometheus-client (tests/run.sh installs it)")
text = urllib.request.urlopen(sys.argv[1], timeout=10).read().decode()
out = {}
for family in text_string_to_metric_families(text):
    for s in family.samples:
        key = s.name + "".join(f"|{k}={v}" for k, v in sorted(s.labels.items()))
        out[key] = s.value
print(json.dumps(out))
"#;

fn scrape(url: &str) -> serde_json::Value {
    python_json(PARSE, &[url])
}

fn get(m: &serde_json::Value, key: &str) -> f64 {
    m.get(key)
        .and_then(|v| v.as_f64())
        .unwrap_or_else(|| panic!("no {key} in {m:#}"))
}

#[test]
fn metrics_parse_and_move_with_traffic() {
    require_tool("wrk", "wrk");
    let server = Server::start(&["--workers", "2", "--admin", "127.0.0.1:0"]);
    let url = server.admin_url();
    let before = scrape(&url);
    let out = run_bounded(
        Command::new("wrk").args(["-t1", "-c10", "-d1s", &server.url("/plaintext")]),
        Duration::from_secs(30),
    );
    let wrk = out.stdout_str();
    let sent: f64 = wrk
        .split(" requests in")
        .next()
        .unwrap()
        .split_whitespace()
        .last()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        roundtrip(server.addr, b"GET /nope HTTP/1.1\r\nHost: t\r\n\r\n").status,
        404
    );
    assert_eq!(roundtrip(server.addr, b"GET / HTTP/1.1\r\n\r\n").status, 400);
    let after = scrape(&url);

    let ok = get(&after, "ringd_http_requests_total|code=200|method=GET");
    // wrk counts only completed requests; a few more may have been answered as it stopped.
    assert!(ok >= sent && ok <= sent + 20.0, "{ok} GET 200 counted, wrk got {sent}");
    assert_eq!(get(&after, "ringd_http_requests_total|code=404|method=GET"), 1.0);
    assert_eq!(get(&after, "ringd_http_requests_total|code=400|method=OTHER"), 1.0);
    let count = get(&after, "ringd_http_request_duration_seconds_count");
    assert!(count >= ok + 1.0, "histogram count {count} < requests");
    assert_eq!(get(&after, "ringd_http_request_duration_seconds_bucket|le=+Inf"), count);
    // Answering one of these takes microseconds: a mean of a second or more would be a clock
    // read wrongly (another unit, or a start never set), not a slow machine.
    let mean = get(&after, "ringd_http_request_duration_seconds_sum") / count;
    assert!(mean > 0.0 && mean < 1.0, "mean request duration {mean} s");
    for key in ["ringd_received_bytes_total", "ringd_sent_bytes_total"] {
        assert!(get(&after, key) > get(&before, key) + 1000.0, "{key} did not grow");
    }
    let accepted = get(&after, "ringd_connections_accepted_total|worker=0")
        + get(&after, "ringd_connections_accepted_total|worker=1");
    assert!(accepted >= 12.0, "{accepted} connections accepted");
    assert_eq!(get(&after, "ringd_fixed_buffers|worker=0"), 64.0);
    assert!(get(&after, "ringd_io_uring_submissions_total|op=write_fixed") >= ok);
    assert!(get(&after, "process_resident_memory_bytes") > 1e6);
    assert!(get(&after, "process_open_fds") > 5.0);
    server.assert_no_panic();
}

#[test]
fn metrics_are_not_on_the_public_port_and_admin_is_off_by_default() {
    let server = Server::start(&[]);
    assert_eq!(
        roundtrip(server.addr, b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n").status,
        404
    );
    assert!(!server.log().contains("metrics on"));
}

#[test]
fn a_slow_admin_client_does_not_block_scrapes_and_open_connections_are_counted() {
    use std::io::Write;
    let server = Server::start(&["--admin", "127.0.0.1:0"]);
    let url = server.admin_url();
    let admin_addr = url
        .trim_start_matches("http://")
        .trim_end_matches("/metrics")
        .to_owned();
    // A client that sends one byte and then nothing, holding its admin connection.
    let mut slow = std::net::TcpStream::connect(admin_addr.as_str()).unwrap();
    slow.write_all(b"G").unwrap();
    let idle: Vec<std::net::TcpStream> = (0..3)
        .map(|_| std::net::TcpStream::connect(server.addr).unwrap())
        .collect();
    // Each connection registers as soon as it is accepted: poll (bounded) until all three are.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = scrape(&url);
        if get(&m, "ringd_connections_open|worker=0") >= 3.0 {
            break;
        }
        assert!(Instant::now() < deadline, "open connections not counted: {m:#}");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(idle);
    drop(slow);
}
