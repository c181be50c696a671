//! Several cores on one host: every worker has its own `SO_REUSEPORT` listener, so the kernel
//! spreads connections over them (counted per worker in `/metrics`); and a server that drains
//! hands the connections still queued on its listeners to another server of the port when
//! `net.ipv4.tcp_migrate_req=1`, where without it they are reset. The second part runs in its
//! own network namespace (`unshare --map-root-user --net`, no root needed), where the sysctl
//! is the namespace's own.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{require_tool, roundtrip, run_bounded, Server};

const GET_CLOSE: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n";

#[test]
fn connections_spread_over_both_workers() {
    let server = Server::start(&["--workers", "2", "--pin", "false", "--admin", "127.0.0.1:0"]);
    // Each connection from a new source port: the kernel hashes the four-tuple to a listener.
    for _ in 0..64 {
        assert_eq!(roundtrip(server.addr, GET_CLOSE).status, 200);
    }
    let per_worker: Vec<f64> = (0..2)
        .map(|w| server.metric(&format!("ringd_connections_accepted_total{{worker=\"{w}\"}}")))
        .collect();
    println!(
        "64 connections: worker 0 accepted {}, worker 1 accepted {}",
        per_worker[0], per_worker[1]
    );
    assert_eq!(per_worker.iter().sum::<f64>(), 64.0, "{per_worker:?}");
    // Both get some: all 64 on one worker has a chance of 2^-63.
    assert!(per_worker.iter().all(|n| *n > 0.0), "{per_worker:?}");
}

/// Runs the inner test in a new network namespace with `net.ipv4.tcp_migrate_req=migrate`;
/// returns its report line.
fn in_netns(migrate: &str) -> String {
    require_tool("unshare", "util-linux");
    require_tool("ip", "iproute2");
    require_tool("prlimit", "util-linux");
    let out = run_bounded(
        Command::new("unshare")
            .args(["--map-root-user", "--net", "--"])
            .arg(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "queue_handover_inside_a_network_namespace",
                "--ignored",
                "--nocapture",
            ])
            .env("RINGD_MIGRATE_NETNS", migrate),
        Duration::from_secs(120),
    );
    let stdout = out.stdout_str();
    let report = stdout.lines().find(|l| l.starts_with("migrate: ")).map(str::to_owned);
    assert!(
        out.status.success() && report.is_some(),
        "inner test failed ({}):\n{stdout}\n{}",
        out.status,
        out.stderr
    );
    report.unwrap()
}

#[test]
fn tcp_migrate_req_keeps_a_draining_servers_queue() {
    let with = in_netns("1");
    println!("{with}");
    assert!(with.contains("lost 0,"), "{with}");
    // The control: without the sysctl the same queue is reset, so the test above can see a loss.
    let without = in_netns("0");
    println!("{without}");
    assert!(!without.contains("lost 0,"), "{without}");
}

#[test]
#[ignore = "run by tcp_migrate_req_keeps_a_draining_servers_queue inside a network namespace"]
fn queue_handover_inside_a_network_namespace() {
    let migrate = std::env::var("RINGD_MIGRATE_NETNS")
        .expect("run through tcp_migrate_req_keeps_a_draining_servers_queue: this test changes net.* sysctls");
    let st = Command::new("ip").args(["link", "set", "lo", "up"]).status().unwrap();
    assert!(st.success(), "ip link set lo up");
    std::fs::write("/proc/sys/net/ipv4/tcp_migrate_req", &migrate).expect("set net.ipv4.tcp_migrate_req in the netns");

    // The old server, made unable to accept: its descriptor limit becomes its lowest free
    // descriptor number (a new descriptor takes the lowest free number below the limit), so its
    // accepts fail with EMFILE (retried every 50 ms) and connections stay in its listeners'
    // queues, as on a server that cannot keep up. io_uring reads the limit when an accept is
    // submitted, so each worker's accept already pending takes one more connection first:
    // connections are made until both workers have said they are out of descriptors.
    let mut old = Server::start(&["--workers", "2", "--pin", "false"]);
    let port = old.port();
    let fds = lowest_free_fd(old.pid());
    let st = Command::new("prlimit")
        .args(["--pid", &old.pid().to_string(), &format!("--nofile={fds}:{fds}")])
        .status()
        .unwrap();
    assert!(st.success(), "prlimit --nofile={fds}");
    let mut conns = Vec::new();
    let out_of_fds = |log: &str, worker: usize| {
        log.lines()
            .any(|l| l.contains("out of file descriptors") && l.contains(&format!("\"worker\":{worker},")))
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(out_of_fds(&old.log(), 0) && out_of_fds(&old.log(), 1)) {
        assert!(
            conns.len() < 64 && Instant::now() < deadline,
            "the old server's workers did not both run out of descriptors:\n{}",
            old.log()
        );
        conns.push(send(port));
        std::thread::sleep(Duration::from_millis(50));
    }

    // The new server joins the port's group; new connections are spread over all four
    // listeners, so about half queue at the old one.
    let new = Server::start(&[
        "--workers",
        "2",
        "--pin",
        "false",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--admin",
        "127.0.0.1:0",
    ]);
    conns.extend((0..32).map(|_| send(port)));
    // Wait until the new server has taken what is in its own queues, so that what it accepts
    // after the old one drains is what the old one had queued.
    let mut before = new.metric("ringd_connections_accepted_total");
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = new.metric("ringd_connections_accepted_total");
        if now == before {
            break;
        }
        before = now;
    }
    old.signal("TERM");
    let answered = conns.iter_mut().map(answered).filter(|ok| *ok).count();
    let lost = conns.len() - answered;
    assert!(old.wait_exit(Duration::from_secs(30)).success(), "{}", old.log());
    let migrated = new.metric("ringd_connections_accepted_total") - before;
    println!(
        "migrate: net.ipv4.tcp_migrate_req={migrate}: {} connections, {answered} answered, lost {lost}, {migrated} of them queued at the draining server and answered by the new one",
        conns.len()
    );
    if migrate == "1" {
        assert_eq!(lost, 0, "{}", old.log());
        assert!(migrated > 0.0, "nothing was queued at the old server");
    }
    new.assert_no_panic();
}

/// The lowest descriptor number `pid` has not open.
fn lowest_free_fd(pid: u32) -> usize {
    let open: std::collections::BTreeSet<usize> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    (0..).find(|n| !open.contains(n)).unwrap()
}

/// Connects and sends one request.
fn send(port: u16) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(GET_CLOSE).unwrap();
    s
}

/// Whether the connection got its 200 (else it was reset or closed unanswered).
fn answered(s: &mut TcpStream) -> bool {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return got.starts_with(b"HTTP/1.1 200 "),
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
}
