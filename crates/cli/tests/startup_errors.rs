//! The command line: --version/--help, usage errors (exit 2), start-up
//! errors (exit 1 with one `error:` line), signals (exit 0), and multiple
//! listen addresses.

mod common;

use common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Run a command that is expected to fail at start-up. Fails the test if it
/// starts listening instead, or does not exit within the bound.
fn run_expect_exit(cmd: &mut Command) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let out = LogBuf::default();
    let err = LogBuf::default();
    let t1 = out.drain_from(child.stdout.take().unwrap());
    let t2 = err.drain_from(child.stderr.take().unwrap());
    let deadline = Instant::now() + START_TIMEOUT;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if err.text().contains("listening on") {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{cmd:?} was expected to fail at start-up but started listening:\n{}",
                err.text()
            );
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not exit within {START_TIMEOUT:?}:\n{}", err.text());
        }
        err.wait_for(Duration::from_millis(50), |t| t.contains("listening on"));
    };
    let _ = t1.join();
    let _ = t2.join();
    Output {
        status,
        stdout: out.text().into_bytes(),
        stderr: err.text(),
    }
}

/// Assert: exit status 1, exactly one stderr line starting with `error:`,
/// no panic text. Returns the error line.
fn assert_startup_error(out: &Output, what: &str) -> String {
    assert_eq!(
        out.status.code(),
        Some(1),
        "{what}: expected exit status 1, got {}; stderr:\n{}",
        out.status,
        out.stderr
    );
    assert!(
        !out.stderr.contains("panicked") && !out.stderr.contains("RUST_BACKTRACE"),
        "{what}: panic text on stderr:\n{}",
        out.stderr
    );
    let errs: Vec<&str> = out.stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(
        errs.len(),
        1,
        "{what}: expected exactly one line starting with `error:`; stderr:\n{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("Caused by"),
        "{what}: the error should be one line; stderr:\n{}",
        out.stderr
    );
    errs[0].to_string()
}

/// `ringd serve --listen 127.0.0.1:0 --workers 1 EXTRA...`, expected to fail at start-up;
/// returns its one error line.
fn serve_error(extra: &[&str], what: &str) -> String {
    let mut args = vec!["serve", "--listen", "127.0.0.1:0", "--workers", "1"];
    args.extend_from_slice(extra);
    let out = run_expect_exit(&mut ringd(&args));
    assert_startup_error(&out, what)
}

fn ringd(args: &[&str]) -> Command {
    let mut c = Command::new(bin());
    c.args(args);
    c
}

// ---------------------------------------------------------------------------
// --version / --help / usage
// ---------------------------------------------------------------------------

#[test]
fn version() {
    let out = run_bounded(&mut ringd(&["--version"]), Duration::from_secs(20));
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(out.stdout_str().trim(), "ringd 0.1.0");
}

#[test]
fn help() {
    let out = run_bounded(&mut ringd(&["--help"]), Duration::from_secs(20));
    assert!(out.status.success(), "{}", out.stderr);
    assert!(out.stdout_str().contains("serve"), "{}", out.stdout_str());

    let out = run_bounded(&mut ringd(&["serve", "--help"]), Duration::from_secs(20));
    assert!(out.status.success(), "{}", out.stderr);
    let text = out.stdout_str();
    for flag in [
        "--listen",
        "--root",
        "--workers",
        "--config",
        "--backlog",
        "--max-body",
        "--max-request-line",
        "--max-header-bytes",
        "--max-headers",
        "--max-requests-per-conn",
        "--buffers",
        "--buffer-size",
    ] {
        assert!(text.contains(flag), "`serve --help` does not mention {flag}:\n{text}");
    }
}

#[test]
fn bad_usage_exits_2() {
    for args in [
        &["serve", "--no-such-flag"][..],
        &["serve", "--workers", "abc"][..],
        &["serve", "--listen"][..],
        &["no-such-subcommand"][..],
    ] {
        let out = run_expect_exit(&mut ringd(args));
        assert_eq!(
            out.status.code(),
            Some(2),
            "ringd {args:?}: expected usage error exit 2, got {}; stderr:\n{}",
            out.status,
            out.stderr
        );
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    }
}

// ---------------------------------------------------------------------------
// Start-up errors
// ---------------------------------------------------------------------------

#[test]
fn port_in_use() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = holder.local_addr().unwrap().to_string();
    let out = run_expect_exit(&mut ringd(&["serve", "--listen", &addr, "--workers", "1"]));
    let line = assert_startup_error(&out, "port in use");
    assert!(line.contains("in use"), "error line should say `in use`: {line}");
    drop(holder);
}

#[test]
fn root_does_not_exist() {
    let dir = TempDir::new("noroot");
    let missing = dir.join("does-not-exist-xyz");
    let missing = missing.to_str().unwrap();
    let line = serve_error(&["--root", missing], "--root missing");
    assert!(line.contains(missing), "error line should name {missing}: {line}");
}

#[test]
fn root_nonexistent_literal() {
    let line = serve_error(&["--root", "/nonexistent"], "--root /nonexistent");
    assert!(line.contains("/nonexistent"), "{line}");
}

#[test]
fn config_unknown_key() {
    let dir = TempDir::new("config");
    let cfg = dir.write("ringd.toml", b"definitely_not_a_ringd_key = 5\n");
    let line = serve_error(&["--config", cfg.to_str().unwrap()], "config unknown key");
    assert!(
        line.contains("definitely_not_a_ringd_key"),
        "error line should name the unknown key: {line}"
    );
}

#[test]
fn config_missing_file() {
    let dir = TempDir::new("config-missing");
    let cfg = dir.join("nope.toml");
    let cfg = cfg.to_str().unwrap();
    let line = serve_error(&["--config", cfg], "config missing");
    assert!(line.contains(cfg), "error line should name {cfg}: {line}");
}

#[test]
fn workers_zero() {
    let out = run_expect_exit(&mut ringd(&["serve", "--listen", "127.0.0.1:0", "--workers", "0"]));
    // The spec lists this with the start-up errors (exit 1); a clap range
    // check (usage error, exit 2) is also an honest refusal.
    assert!(
        matches!(out.status.code(), Some(1) | Some(2)),
        "--workers 0: expected exit 1 (or 2), got {}; stderr:\n{}",
        out.status,
        out.stderr
    );
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    let line = out
        .stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("no `error:` line:\n{}", out.stderr));
    assert!(line.contains("workers") || line.contains('0'), "{line}");
}

fn euid() -> u32 {
    let st = std::fs::read_to_string("/proc/self/status").unwrap();
    st.lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|s| s.parse().ok())
        .expect("parse Uid from /proc/self/status")
}

/// A limit too small for the ring itself (64 KiB against a 1024-entry ring) is a start-up
/// error: one line naming the limit and the fix.
#[test]
fn memlock_limit_too_low_for_the_ring() {
    require_tool("prlimit", "util-linux");
    let mut cmd;
    let _dir;
    if euid() == 0 {
        require_tool("setpriv", "util-linux");
        // nobody must be able to execute the binary: copy it to a
        // world-readable temp dir.
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new("memlock");
        std::fs::set_permissions(&dir.path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let b = dir.join("ringd");
        std::fs::copy(bin(), &b).unwrap();
        std::fs::set_permissions(&b, std::fs::Permissions::from_mode(0o755)).unwrap();
        cmd = Command::new("prlimit");
        cmd.args([
            "--memlock=65536:65536",
            "setpriv",
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
        ])
        .arg(&b);
        _dir = Some(dir);
    } else {
        cmd = Command::new("prlimit");
        cmd.arg("--memlock=65536:65536").arg(bin());
        _dir = None;
    }
    cmd.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--workers",
        "1",
        "--buffers",
        "256",
        "--buffer-size",
        "65536",
    ]);
    let out = run_expect_exit(&mut cmd);
    let line = assert_startup_error(&out, "memlock");
    assert!(
        line.contains("memlock") || line.contains("locked memory"),
        "error line should mention memlock / locked memory: {line}"
    );
    assert!(
        line.contains("LimitMEMLOCK"),
        "error line should tell how to fix it (LimitMEMLOCK): {line}"
    );
}

/// A locked-memory limit too small for the configured fixed buffers is not a start-up error:
/// the worker registers as many as fit (none, here), says so in one log line with the fix, shows
/// it in `/metrics`, and serves every request from the heap. Run as `nobody` when root (root has
/// CAP_IPC_LOCK, which lifts the limit), with 1 MiB of locked memory against 16 MiB of buffers
/// (the ring fits).
#[test]
fn memlock_limit_too_low_for_the_buffers_starts_with_fewer() {
    require_tool("prlimit", "util-linux");
    let mut cmd = Command::new("prlimit");
    cmd.arg("--memlock=1048576:1048576");
    let _dir = if euid() == 0 {
        require_tool("setpriv", "util-linux");
        // nobody must be able to execute the binary: copy it to a world-readable temp dir.
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new("memlock");
        std::fs::set_permissions(&dir.path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let b = dir.join("ringd");
        std::fs::copy(bin(), &b).unwrap();
        std::fs::set_permissions(&b, std::fs::Permissions::from_mode(0o755)).unwrap();
        cmd.args(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"])
            .arg(&b);
        Some(dir)
    } else {
        cmd.arg(bin());
        None
    };
    cmd.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--admin",
        "127.0.0.1:0",
        "--workers",
        "1",
        "--buffers",
        "256",
        "--buffer-size",
        "65536",
    ]);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let log = LogBuf::default();
    log.drain_from(child.stderr.take().unwrap());
    log.wait_for(START_TIMEOUT, |t| {
        t.contains("metrics on http://") || t.contains("error:")
    });
    let text = log.text();
    let addrs = parse_listen_addrs(&text);
    let admin = text
        .split("metrics on http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .map(str::to_owned);
    let (Some(addr), Some(admin)) = (addrs.first().copied(), admin) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("ringd did not start under a 1 MiB memlock limit:\n{text}");
    };
    let warnings: Vec<&str> = text.lines().filter(|l| l.contains("RLIMIT_MEMLOCK")).collect();
    assert_eq!(warnings.len(), 1, "one line about the limit:\n{text}");
    assert!(
        warnings[0].contains("of 256 fixed buffers") && warnings[0].contains("LimitMEMLOCK"),
        "the line says how many and what to change: {}",
        warnings[0]
    );
    // Served from the heap all the same.
    let response = roundtrip(addr, b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(response.status, 200);
    assert_eq!(response.body_str(), "Hello, World!");
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", &format!("http://{admin}/metrics")])
        .output()
        .unwrap();
    let metrics = String::from_utf8_lossy(&out.stdout);
    let value = |series: &str| -> f64 {
        metrics
            .lines()
            .find(|l| l.starts_with(series))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{series} not in /metrics:\n{metrics}"))
    };
    assert_eq!(value("ringd_fixed_buffers_configured{worker=\"0\"}"), 256.0);
    let registered = value("ringd_fixed_buffers{worker=\"0\"}");
    assert!(registered < 256.0, "{registered} fixed buffers under a 1 MiB limit");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn io_uring_blocked_by_seccomp() {
    if !(cfg!(target_arch = "x86_64") || cfg!(target_arch = "aarch64")) {
        eprintln!("NOTE: io_uring_blocked_by_seccomp skipped: syscall number 425 is only known for x86_64/aarch64");
        return;
    }
    // io_uring_setup (425) refused as a container's filter refuses it.
    let wrapper = seccomp::Filter::new().deny(425, libc::EPERM).command();
    let mut cmd = Command::new(&wrapper[0]);
    cmd.args(&wrapper[1..])
        .arg(bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--workers", "1"]);
    let out = run_expect_exit(&mut cmd);
    assert!(
        !matches!(out.status.code(), Some(120..=125)),
        "seccomp wrapper itself failed ({}):\n{}",
        out.status,
        out.stderr
    );
    let line = assert_startup_error(&out, "io_uring blocked");
    assert!(line.contains("io_uring"), "error line should mention io_uring: {line}");
    assert!(line.contains("seccomp"), "error line should mention seccomp: {line}");
}

// ---------------------------------------------------------------------------
// Signals and listen addresses
// ---------------------------------------------------------------------------

#[test]
fn sigterm_exits_0() {
    let mut s = Server::start(&[]);
    let r = roundtrip(s.addr, b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.status, 200);
    s.signal("TERM");
    let st = s.wait_exit(Duration::from_secs(20));
    assert_eq!(st.code(), Some(0), "exit after SIGTERM: {st}; log:\n{}", s.log());
    s.assert_no_panic();
}

#[test]
fn sigint_exits_0() {
    let mut s = Server::start(&[]);
    s.signal("INT");
    let st = s.wait_exit(Duration::from_secs(20));
    assert_eq!(st.code(), Some(0), "exit after SIGINT: {st}; log:\n{}", s.log());
}

#[test]
fn sigterm_with_idle_keepalive_connection_exits_0() {
    let mut s = Server::start(&["--workers", "2"]);
    let mut c = Conn::open(s.addr);
    c.send(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.read_response(false).status, 200);
    // Connection left open and idle.
    s.signal("TERM");
    let st = s.wait_exit(Duration::from_secs(20));
    assert_eq!(st.code(), Some(0), "exit after SIGTERM: {st}; log:\n{}", s.log());
    s.assert_no_panic();
}

#[test]
fn two_listen_addresses() {
    let s = Server::start(&["--listen", "127.0.0.1:0", "--listen", "127.0.0.1:0"]);
    assert_eq!(s.addrs.len(), 2, "log:\n{}", s.log());
    assert_ne!(s.addrs[0], s.addrs[1]);
    for a in &s.addrs {
        let r = roundtrip(*a, b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(r.status, 200, "{a}: {}", r.raw_head);
        assert_eq!(r.body_str(), "Hello, World!");
    }
}

// ---------------------------------------------------------------------------
// TLS certificates and keys: one line naming the file
// ---------------------------------------------------------------------------

#[test]
fn tls_key_that_is_not_the_certificates() {
    let pki = pki::Pki::new();
    let a = pki.issue("a", &["localhost"], pki::KeyKind::EcPkcs8);
    let b = pki.issue("b", &["localhost"], pki::KeyKind::EcPkcs8);
    let line = serve_error(
        &["--tls-cert", a.cert_str(), "--tls-key", b.key_str()],
        "mismatched key",
    );
    assert!(line.contains("does not match"), "{line}");
    assert!(line.contains(b.key_str()) && line.contains(a.cert_str()), "{line}");
    // Another key type entirely.
    let rsa = pki.issue("rsa", &["localhost"], pki::KeyKind::RsaPkcs1);
    let line = serve_error(
        &["--tls-cert", a.cert_str(), "--tls-key", rsa.key_str()],
        "RSA key, EC cert",
    );
    assert!(
        line.contains("does not match") && line.contains(rsa.key_str()),
        "{line}"
    );
}

#[test]
fn tls_certificate_expired() {
    let expired = pki::expired();
    let line = serve_error(
        &["--tls-cert", expired.cert_str(), "--tls-key", expired.key_str()],
        "expired certificate",
    );
    assert!(
        line.contains("expired-cert.pem") && line.contains("expired on 2021-01-02"),
        "{line}"
    );
}

#[test]
fn tls_files_unreadable_or_wrong() {
    let pki = pki::Pki::new();
    let ok = pki.issue("ok", &["localhost"], pki::KeyKind::EcSec1);
    let line = serve_error(
        &["--tls-cert", "/nonexistent/ringd-cert.pem", "--tls-key", ok.key_str()],
        "missing certificate",
    );
    assert!(line.contains("/nonexistent/ringd-cert.pem"), "{line}");
    let dir = pki.dir.path_str();
    let line = serve_error(&["--tls-cert", ok.cert_str(), "--tls-key", dir], "key is a directory");
    assert!(line.contains(dir) && line.contains("private key"), "{line}");
    // Certificate and key swapped.
    let line = serve_error(&["--tls-cert", ok.key_str(), "--tls-key", ok.cert_str()], "swapped");
    assert!(
        line.contains(ok.key_str()) && line.contains("no PEM certificate"),
        "{line}"
    );
    let line = serve_error(&["--tls-key", ok.key_str()], "key without certificate");
    assert!(line.contains("tls.cert"), "{line}");
    let line = serve_error(&["--http-redirect", "127.0.0.1:0"], "redirect without TLS");
    assert!(line.contains("tls.redirect"), "{line}");
}

#[test]
fn tls_check_validates_the_files() {
    let pki = pki::Pki::new();
    let a = pki.issue("a", &["localhost"], pki::KeyKind::EcPkcs8);
    let b = pki.issue("b", &["localhost"], pki::KeyKind::EcPkcs8);
    let out = run_bounded(
        &mut ringd(&["check", "--tls-cert", a.cert_str(), "--tls-key", a.key_str()]),
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "{}", out.stderr);
    assert!(out.stdout_str().contains("[tls]"), "{}", out.stdout_str());
    let out = run_bounded(
        &mut ringd(&["check", "--tls-cert", a.cert_str(), "--tls-key", b.key_str()]),
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("does not match") && out.stderr.contains(b.key_str()),
        "{}",
        out.stderr
    );
}
