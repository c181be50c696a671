//! Shared helpers for ringd's end-to-end tests.
//!
//! Every test starts the real `ringd` binary on `127.0.0.1:0`, reads the
//! actual address from the `listening on 127.0.0.1:PORT` line on stderr,
//! and talks to it with real clients (raw TCP, curl, python3, wrk).
//! Nothing here sleeps to "wait for" something: every wait is a bounded poll.

#![allow(dead_code)]

pub mod h2raw;
pub mod kernel;
pub mod limits;
pub mod pki;
pub mod seccomp;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Generous timeout that only turns a hang into a failure.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound for the server to start listening / to exit.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_ringd")
}

/// Where an ordinary user's PATH does not look but Debian installs daemons (nginx) and
/// administration tools.
const SBIN: [&str; 3] = ["/usr/local/sbin", "/usr/sbin", "/sbin"];

/// Fail (never skip) when an external tool is missing from PATH and the sbin directories.
pub fn require_tool(tool: &str, package: &str) {
    assert!(
        find_tool(tool).is_some(),
        "required tool `{tool}` not found on PATH or in {}: install it (e.g. `apt-get install -y {package}`)",
        SBIN.join(", ")
    );
}

/// Debian's Python, which has Debian's `python3-*` packages (another `python3` earlier on the
/// PATH, such as pyenv's, would not).
pub fn debian_python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

/// The path of `tool`: on PATH, or in an sbin directory (as `benches/compare-nginx` looks).
pub fn find_tool(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(SBIN.iter().map(PathBuf::from))
        .map(|d| d.join(tool))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

// ---------------------------------------------------------------------------
// Captured output of a child process (drained in a thread).
// ---------------------------------------------------------------------------

#[derive(Clone, Default)]
pub struct LogBuf {
    inner: Arc<(Mutex<Vec<u8>>, Condvar)>,
}

impl LogBuf {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.inner.0.lock().unwrap()).into_owned()
    }

    pub fn drain_from<R: Read + Send + 'static>(&self, mut r: R) -> JoinHandle<()> {
        let me = self.clone();
        std::thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            loop {
                match r.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let (m, cv) = &*me.inner;
                        m.lock().unwrap().extend_from_slice(&chunk[..n]);
                        cv.notify_all();
                    }
                }
            }
            let (_, cv) = &*me.inner;
            cv.notify_all();
        })
    }

    /// Wait (bounded) until `pred(text)` holds; returns whether it did.
    pub fn wait_for(&self, timeout: Duration, mut pred: impl FnMut(&str) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let (m, cv) = &*self.inner;
        let mut g = m.lock().unwrap();
        loop {
            if pred(&String::from_utf8_lossy(&g)) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            // Bounded wait step so that a child exit (no more notifications)
            // still lets us re-check the deadline.
            let step = (deadline - now).min(Duration::from_millis(100));
            g = cv.wait_timeout(g, step).unwrap().0;
        }
    }
}

/// Parse every `listening on 127.0.0.1:PORT` occurrence in a log.
pub fn parse_listen_addrs(log: &str) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for line in log.lines() {
        let mut rest = line;
        while let Some(i) = rest.find("listening on ") {
            rest = &rest[i + "listening on ".len()..];
            let tok: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '[' | ']'))
                .collect();
            if let Ok(a) = tok.parse::<SocketAddr>() {
                if a.port() != 0 && !out.contains(&a) {
                    out.push(a);
                }
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Server guard
// ---------------------------------------------------------------------------

pub struct Server {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub addrs: Vec<SocketAddr>,
    log: LogBuf,
    status: Option<ExitStatus>,
    /// This server's share of the locked memory budget, given back once it has exited (the
    /// field drops after `Drop::drop` has reaped the process).
    _memlock: limits::MemlockLease,
}

/// The locked memory (`RLIMIT_MEMLOCK`) a `ringd serve` with these arguments registers: workers
/// × buffers × buffer size, from the flags, else from the `--config` file, else the defaults.
/// (Its io_uring rings are not charged to the limit from Linux 5.12 on.)
pub fn pinned_bytes(args: &[String]) -> u64 {
    let flag = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1));
    let config = flag("--config")
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default();
    // A key of the config file: `workers` at the top, `count`/`size` under `[buffers]`.
    let key = |section: Option<&str>, name: &str| -> Option<String> {
        let mut current: Option<String> = None;
        for line in config.lines().map(str::trim) {
            if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                current = Some(s.trim().to_owned());
            } else if current.as_deref() == section {
                if let Some((k, v)) = line.split_once('=') {
                    if k.trim() == name {
                        return Some(v.trim().trim_matches('"').to_owned());
                    }
                }
            }
        }
        None
    };
    let cpus = || std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    let workers = match flag("--workers").cloned().or_else(|| key(None, "workers")) {
        Some(w) if w == "auto" => cpus(),
        Some(w) => w.parse().unwrap_or(1),
        None => cpus(),
    };
    let count: u64 = flag("--buffers")
        .cloned()
        .or_else(|| key(Some("buffers"), "count"))
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let size: u64 = flag("--buffer-size")
        .cloned()
        .or_else(|| key(Some("buffers"), "size"))
        .and_then(|v| v.parse().ok())
        .unwrap_or(16 * 1024);
    // Buffers are whole pages.
    workers * count * size.div_ceil(4096) * 4096
}

impl Server {
    /// `ringd serve --listen 127.0.0.1:0 --workers 1 ARGS...` (the defaults are
    /// only added when ARGS does not already give `--listen` / `--workers`).
    pub fn start(args: &[&str]) -> Server {
        Self::try_start(args).unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn try_start(args: &[&str]) -> Result<Server, String> {
        Self::try_start_env(args, &[])
    }

    /// Serves `root` with `config` (TOML after the `root` line) written to `dir/ringd.toml`.
    pub fn start_site(dir: &TempDir, root: &Path, config: &str) -> Server {
        let conf = dir.write("ringd.toml", format!("root = {root:?}\n{config}").as_bytes());
        Self::start(&["--config", conf.to_str().unwrap()])
    }

    /// Like [`Server::start`], with extra environment variables.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Server {
        Self::try_start_env(args, env).unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn try_start_env(args: &[&str], env: &[(&str, &str)]) -> Result<Server, String> {
        Self::try_start_wrapped(&[], args, env)
    }

    /// Like [`Server::start`], run through a wrapper command (e.g. `prlimit --nofile=256 --`).
    pub fn start_wrapped(wrapper: &[&str], args: &[&str]) -> Server {
        Self::try_start_wrapped(wrapper, args, &[]).unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn try_start_wrapped(wrapper: &[&str], args: &[&str], env: &[(&str, &str)]) -> Result<Server, String> {
        let mut full: Vec<String> = vec!["serve".into()];
        if !args.contains(&"--listen") {
            full.push("--listen".into());
            full.push("127.0.0.1:0".into());
        }
        if !args.contains(&"--workers") {
            full.push("--workers".into());
            full.push("1".into());
        }
        full.extend(args.iter().map(|s| s.to_string()));
        let memlock = limits::MemlockLease::acquire(pinned_bytes(&full));
        // Locked memory is given back by the kernel a moment after the process that held it is
        // gone (a ring is torn down after its last user; tens of milliseconds on Linux 6.18):
        // a server that finds too little of it while other servers of this user have just
        // exited is started again once that has happened, for a bounded time.
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            match Self::try_start_once(wrapper, &full, env) {
                Err(e) if e.contains("RLIMIT_MEMLOCK") && limits::is_limited() && Instant::now() < deadline => {
                    limits::wait_for_release(Duration::from_millis(50));
                }
                result => {
                    return result.map(|(child, addrs, log)| Server {
                        addr: addrs[0],
                        addrs,
                        child: Some(child),
                        log,
                        status: None,
                        _memlock: memlock,
                    })
                }
            }
        }
    }

    /// Starts `ringd` with `full` (its whole argument list) once: the child, the addresses it
    /// listens on and its log, or why it did not start.
    fn try_start_once(
        wrapper: &[&str],
        full: &[String],
        env: &[(&str, &str)],
    ) -> Result<(Child, Vec<SocketAddr>, LogBuf), String> {
        let expected_addrs = full.iter().filter(|a| *a == "--listen").count();
        let mut command = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(bin());
                c
            }
            None => Command::new(bin()),
        };
        let mut child = command
            .args(full)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot spawn {}: {e}", bin()))?;
        let log = LogBuf::default();
        log.drain_from(child.stderr.take().unwrap());

        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let addrs = parse_listen_addrs(&log.text());
            if addrs.len() >= expected_addrs {
                return Ok((child, addrs, log));
            }
            if let Some(st) = child.try_wait().unwrap() {
                // Let the drain thread collect the last bytes.
                log.wait_for(Duration::from_secs(2), |_| false);
                return Err(format!(
                    "ringd {full:?} exited ({st}) before printing `listening on`; stderr:\n{}",
                    log.text()
                ));
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "ringd {full:?} printed no `listening on 127.0.0.1:PORT` line within {START_TIMEOUT:?}; stderr:\n{}",
                    log.text()
                ));
            }
            log.wait_for(Duration::from_millis(200), |t| {
                parse_listen_addrs(t).len() >= expected_addrs
            });
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server already reaped").id()
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn log(&self) -> String {
        self.log.text()
    }

    pub fn assert_no_panic(&self) {
        let log = self.log();
        assert!(!log.contains("panicked"), "server log contains a panic:\n{log}");
    }

    pub fn assert_alive(&mut self) {
        if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
            panic!("server exited unexpectedly ({st}); log:\n{}", self.log());
        }
    }

    pub fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .args([format!("-{sig}"), self.pid().to_string()])
            .status()
            .expect("run kill(1) (install procps)");
        assert!(st.success(), "kill -{sig} failed");
    }

    /// Poll (bounded) for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        if let Some(st) = self.status {
            return st;
        }
        let child = self.child.as_mut().unwrap();
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                self.status = Some(st);
                return st;
            }
            if Instant::now() >= deadline {
                panic!(
                    "server (pid {}) did not exit within {timeout:?}; log:\n{}",
                    child.id(),
                    self.log.text()
                );
            }
            self.log.wait_for(Duration::from_millis(50), |_| false);
        }
    }

    /// The `http://ADDR/metrics` URL the admin listener logged (start with `--admin 127.0.0.1:0`).
    pub fn admin_url(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            if let Some(at) = log.find("metrics on http://") {
                let rest = &log[at + "metrics on ".len()..];
                // Ends at a space (human logs) or a quote (JSON logs).
                let end = rest.find(|c: char| c.is_whitespace() || c == '"').unwrap_or(rest.len());
                return rest[..end].to_owned();
            }
            assert!(Instant::now() < deadline, "no metrics address logged:\n{log}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// A metric from `/metrics` (start with `--admin 127.0.0.1:0`): `name{labels}` exactly as
    /// exposed, or a bare name, which sums every series of it (per-worker ones included).
    pub fn metric(&self, series: &str) -> f64 {
        let url = self.admin_url();
        let addr: SocketAddr = url
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let r = roundtrip(
            addr,
            b"GET /metrics HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n",
        );
        let text = r.body_str();
        let values: Vec<f64> = text
            .lines()
            .filter_map(|l| {
                let rest = l.strip_prefix(series)?;
                let value = match rest.strip_prefix(' ') {
                    Some(v) => v,
                    None if !series.contains('{') && rest.starts_with('{') => rest.rsplit(' ').next()?,
                    None => return None,
                };
                value.trim().parse().ok()
            })
            .collect();
        assert!(!values.is_empty(), "no {series} in /metrics:\n{text}");
        values.iter().sum()
    }

    /// The server's resident memory (`VmRSS`), in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// Number of open file descriptors of the server process.
    pub fn fd_count(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .expect("read /proc/PID/fd")
            .count()
    }

    pub fn connect(&self) -> TcpStream {
        connect(self.addr)
    }

    /// How many of the connections whose client ends are `clients` (their local addresses) the
    /// server holds a descriptor for. Read from /proc, so that nothing else it has open counts:
    /// not its listeners or files, and not a connection some other program made to its port.
    pub fn connections_from(&self, clients: &[SocketAddr]) -> usize {
        let ports: std::collections::HashSet<u16> = clients.iter().map(SocketAddr::port).collect();
        tcp_sockets(self.pid())
            .iter()
            .filter(|s| s.local_port == self.addr.port() && ports.contains(&s.remote_port))
            .count()
    }
}

/// A TCP socket a process holds a descriptor for.
pub struct TcpSocket {
    pub local_port: u16,
    pub remote_port: u16,
    /// The kernel's state number (`0A`: listening).
    pub state: u8,
}

/// The TCP sockets `pid` holds descriptors for: its socket descriptors' inodes, matched against
/// the kernel's TCP tables of its network namespace (which list every socket there).
pub fn tcp_sockets(pid: u32) -> Vec<TcpSocket> {
    let inodes: std::collections::HashSet<u64> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|dir| {
            dir.flatten()
                .filter_map(|e| {
                    let link = std::fs::read_link(e.path()).ok()?;
                    link.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
                })
                .collect()
        })
        .unwrap_or_default();
    let mut found = Vec::new();
    for table in ["tcp", "tcp6"] {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")) else {
            continue;
        };
        // "sl local_address rem_address st ... uid timeout inode", addresses as HEX:PORT.
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let port = |a: &str| a.rsplit(':').next().and_then(|p| u16::from_str_radix(p, 16).ok());
            let field = |i: usize| f.get(i).copied().unwrap_or("");
            let (Some(local_port), Some(remote_port), Ok(state), Ok(inode)) = (
                port(field(1)),
                port(field(2)),
                u8::from_str_radix(field(3), 16),
                field(9).parse::<u64>(),
            ) else {
                continue;
            };
            if inodes.contains(&inode) {
                found.push(TcpSocket {
                    local_port,
                    remote_port,
                    state,
                });
            }
        }
    }
    found
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            if self.status.is_none() {
                let _ = c.kill();
            }
            let _ = c.wait();
        }
    }
}

// ---------------------------------------------------------------------------
// Running a command to completion (bounded)
// ---------------------------------------------------------------------------

pub struct Output {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Output {
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// Fails, with the exit status and both outputs, unless the command (named by `what`)
    /// exited with status 0.
    pub fn assert_success(&self, what: impl std::fmt::Display) -> &Output {
        assert!(
            self.status.success(),
            "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout_str(),
            self.stderr
        );
        self
    }
}

/// Run `cmd` with stdout/stderr captured, killing it (and failing) if it
/// runs longer than `timeout`.
pub fn run_bounded(cmd: &mut Command, timeout: Duration) -> Output {
    run_bounded_with_input(cmd, None, timeout)
}

/// [`run_bounded`], writing `input` (when given) to the command's standard input.
pub fn run_bounded_with_input(cmd: &mut Command, input: Option<&[u8]>, timeout: Duration) -> Output {
    let stdin = if input.is_some() { Stdio::piped() } else { Stdio::null() };
    let mut child = cmd
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn {cmd:?}: {e}"));
    let out = LogBuf::default();
    let err = LogBuf::default();
    let t1 = out.drain_from(child.stdout.take().unwrap());
    let t2 = err.drain_from(child.stderr.take().unwrap());
    if let Some(input) = input {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{cmd:?} did not finish within {timeout:?}\nstdout:\n{}\nstderr:\n{}",
                out.text(),
                err.text()
            );
        }
        err.wait_for(Duration::from_millis(50), |_| false);
    };
    // Pipes close when the child (and its children) exit.
    let _ = t1.join();
    let _ = t2.join();
    let stdout = out.inner.0.lock().unwrap().clone();
    Output {
        status,
        stdout,
        stderr: err.text(),
    }
}

// ---------------------------------------------------------------------------
// Raw HTTP over TcpStream
// ---------------------------------------------------------------------------

pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

#[derive(Debug, Clone)]
pub struct Response {
    pub version: String,
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The raw head (status line + headers + CRLF CRLF) as received.
    pub raw_head: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn headers_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// `Connection` header contains the token `tok` (case-insensitive).
    pub fn connection_has(&self, tok: &str) -> bool {
        self.headers_all("connection")
            .iter()
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(tok))
    }

    /// Set of comma-separated tokens of the `Allow` header(s), uppercased.
    pub fn allow_set(&self) -> std::collections::BTreeSet<String> {
        self.headers_all("allow")
            .iter()
            .flat_map(|v| v.split(','))
            .map(|t| t.trim().to_ascii_uppercase())
            .filter(|t| !t.is_empty())
            .collect()
    }

    /// Assertions that hold for every response ringd sends.
    pub fn assert_common(&self) {
        assert_eq!(self.version, "HTTP/1.1", "status line version: {}", self.raw_head);
        let dates = self.headers_all("date");
        assert_eq!(dates.len(), 1, "exactly one Date header expected: {}", self.raw_head);
        assert_imf_fixdate(dates[0]);
        assert_eq!(
            self.headers_all("server"),
            vec!["ringd"],
            "Server header: {}",
            self.raw_head
        );
    }
}

pub fn set_of(items: &[&str]) -> std::collections::BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` (RFC 9110 IMF-fixdate, 29 bytes).
pub fn assert_imf_fixdate(d: &str) {
    let b = d.as_bytes();
    let ok = b.len() == 29
        && ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"].contains(&&d[0..3])
        && &d[3..5] == ", "
        && b[5].is_ascii_digit()
        && b[6].is_ascii_digit()
        && b[7] == b' '
        && [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ]
        .contains(&&d[8..11])
        && b[11] == b' '
        && b[12..16].iter().all(u8::is_ascii_digit)
        && b[16] == b' '
        && b[17..19].iter().all(u8::is_ascii_digit)
        && b[19] == b':'
        && b[20..22].iter().all(u8::is_ascii_digit)
        && b[22] == b':'
        && b[23..25].iter().all(u8::is_ascii_digit)
        && &d[25..] == " GMT";
    assert!(ok, "Date is not a 29-byte IMF-fixdate: {d:?}");
}

/// A connection with a persistent read buffer, so pipelined responses can be
/// read one after another.
pub struct Conn {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub fn new(stream: TcpStream) -> Conn {
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn open(addr: SocketAddr) -> Conn {
        Conn::new(connect(addr))
    }

    pub fn send(&mut self, data: &[u8]) {
        self.stream
            .write_all(data)
            .unwrap_or_else(|e| panic!("write {} bytes: {e}", data.len()));
    }

    /// Like `send`, but returns the error instead of panicking (for writes
    /// the server may legitimately refuse by closing).
    pub fn try_send(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(data)
    }

    fn fill(&mut self) -> std::io::Result<usize> {
        let mut chunk = [0u8; 16384];
        let n = loop {
            // A signal (or work the kernel left for this thread) interrupts a read with a
            // timeout with EINTR instead of restarting it: read again, as any client must.
            match self.stream.read(&mut chunk) {
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                other => break other?,
            }
        };
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    fn fill_or_panic(&mut self, what: &str) {
        match self.fill() {
            Ok(0) => panic!(
                "connection closed while reading {what}; received so far: {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => panic!(
                "timed out ({IO_TIMEOUT:?}) reading {what}; received so far: {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
            Err(e) => panic!(
                "error reading {what}: {e}; received so far: {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
        }
    }

    /// Read exactly `n` raw bytes.
    pub fn read_exact_raw(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            self.fill_or_panic("raw bytes");
        }
        self.buf.drain(..n).collect()
    }

    /// Bytes received but not yet consumed.
    pub fn buffered(&self) -> &[u8] {
        &self.buf
    }

    /// Read one response. `head_request`: the request was HEAD (no body).
    pub fn read_response(&mut self, head_request: bool) -> Response {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            self.fill_or_panic("response head");
        };
        let head_bytes: Vec<u8> = self.buf.drain(..head_end).collect();
        let raw_head = String::from_utf8_lossy(&head_bytes).into_owned();
        let mut lines = raw_head.split("\r\n");
        let status_line = lines.next().unwrap();
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or("").to_string();
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let reason = parts.next().unwrap_or("").to_string();
        let mut headers = Vec::new();
        for l in lines {
            if l.is_empty() {
                continue;
            }
            let (k, v) = l
                .split_once(':')
                .unwrap_or_else(|| panic!("bad header line {l:?} in {raw_head:?}"));
            assert!(
                !l.starts_with(' ') && !l.starts_with('\t'),
                "response uses obs-fold: {raw_head:?}"
            );
            headers.push((k.to_string(), v.trim().to_string()));
        }
        let mut resp = Response {
            version,
            status,
            reason,
            headers,
            body: Vec::new(),
            raw_head,
        };
        let no_body = head_request || status / 100 == 1 || status == 204 || status == 304;
        if no_body {
            return resp;
        }
        let chunked = resp
            .header("transfer-encoding")
            .map(|v| v.to_ascii_lowercase().contains("chunked"))
            .unwrap_or(false);
        if chunked {
            resp.body = self.read_chunked_body();
        } else if let Some(cl) = resp.header("content-length") {
            let n: usize = cl.parse().unwrap_or_else(|_| panic!("bad Content-Length {cl:?}"));
            resp.body = self.read_exact_raw(n);
        } else {
            // Close-delimited body.
            loop {
                match self.fill() {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) => panic!("reading close-delimited body: {e}"),
                }
            }
            resp.body = std::mem::take(&mut self.buf);
        }
        resp
    }

    fn read_line(&mut self) -> String {
        loop {
            if let Some(i) = find(&self.buf, b"\r\n") {
                let l: Vec<u8> = self.buf.drain(..i + 2).collect();
                return String::from_utf8_lossy(&l[..i]).into_owned();
            }
            self.fill_or_panic("chunked body line");
        }
    }

    fn read_chunked_body(&mut self) -> Vec<u8> {
        let mut body = Vec::new();
        loop {
            let line = self.read_line();
            let size_str = line.split(';').next().unwrap().trim();
            let size = usize::from_str_radix(size_str, 16).unwrap_or_else(|_| panic!("bad chunk size line {line:?}"));
            if size == 0 {
                // trailers
                loop {
                    if self.read_line().is_empty() {
                        return body;
                    }
                }
            }
            body.extend(self.read_exact_raw(size));
            let crlf = self.read_exact_raw(2);
            assert_eq!(crlf, b"\r\n", "chunk not followed by CRLF");
        }
    }

    /// Assert the server closes the connection: read returns 0 (after any
    /// bytes already buffered, which must be none).
    pub fn expect_eof(&mut self) {
        assert!(
            self.buf.is_empty(),
            "unexpected extra bytes after response: {:?}",
            String::from_utf8_lossy(&self.buf)
        );
        match self.fill() {
            Ok(0) => {}
            Ok(_) => panic!(
                "expected the server to close the connection, got more bytes: {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("expected the server to close the connection; it stayed open for {IO_TIMEOUT:?}")
            }
            Err(e) => panic!("expected a clean close (read returns 0), got error: {e}"),
        }
    }
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Send one raw request on a fresh connection and read one response.
pub fn roundtrip(addr: SocketAddr, raw: &[u8]) -> Response {
    let head = raw.starts_with(b"HEAD ");
    let mut c = Conn::open(addr);
    c.send(raw);
    c.read_response(head)
}

/// Send a malformed request: assert the status, a small text body,
/// `Connection: close`, and that the server then closes the connection.
pub fn expect_error(addr: SocketAddr, raw: &[u8], status: u16) -> Response {
    let mut c = Conn::open(addr);
    // The server may close before reading all of what we send; that is fine.
    let _ = c.try_send(raw);
    let r = c.read_response(false);
    assert_eq!(
        r.status,
        status,
        "request {:?}\n got response head {:?} body {:?}",
        String::from_utf8_lossy(raw),
        r.raw_head,
        r.body_str()
    );
    r.assert_common();
    assert!(
        r.connection_has("close"),
        "error response must carry `Connection: close`; request {:?} response {:?}",
        String::from_utf8_lossy(raw),
        r.raw_head
    );
    assert!(
        !r.body.is_empty() && r.body.len() < 4096,
        "error response should have a small body, got {} bytes",
        r.body.len()
    );
    if let Some(ct) = r.header("content-type") {
        assert!(
            ct.starts_with("text/"),
            "error body should be text, got Content-Type {ct:?}"
        );
    }
    c.expect_eof();
    r
}

// ---------------------------------------------------------------------------
// Temp dirs and small utilities
// ---------------------------------------------------------------------------

pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let path = std::env::temp_dir().join(format!(
            "ringd-test-{tag}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&path).unwrap();
        TempDir { path }
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.path.join(p)
    }

    pub fn write(&self, rel: &str, data: &[u8]) -> PathBuf {
        let p = self.path.join(rel);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(&p, data).unwrap();
        p
    }

    pub fn path_str(&self) -> &str {
        self.path.to_str().unwrap()
    }

    /// Writes a file and drops its pages from the page cache, so that the server finds it on
    /// disk (and splices it rather than using `sendfile`). False where the pages cannot be
    /// dropped: tmpfs keeps its files in the page cache.
    #[allow(dead_code)]
    pub fn write_evicted(&self, rel: &str, data: &[u8]) -> bool {
        let p = self.write(rel, data);
        let f = std::fs::File::open(&p).unwrap();
        f.sync_all().unwrap();
        const TMPFS_MAGIC: i64 = 0x0102_1994;
        if rustix::fs::fstatfs(&f).unwrap().f_type as i64 == TMPFS_MAGIC {
            eprintln!("{} is on tmpfs: its pages cannot be dropped", p.display());
            return false;
        }
        rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::DontNeed).unwrap();
        true
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Deterministic pseudo-random bytes (xorshift64*).
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let r = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
        for b in r.to_le_bytes() {
            if v.len() < len {
                v.push(b);
            }
        }
    }
    v
}

/// Poll `f` (bounded) until it returns true.
pub fn poll_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::yield_now();
        // A short park between polls; not a correctness margin.
        std::thread::park_timeout(Duration::from_millis(20));
    }
}

/// Run `python3 -c SCRIPT ARGS...` and parse its stdout as JSON.
pub fn python_json(script: &str, args: &[&str]) -> serde_json::Value {
    require_tool("python3", "python3");
    let out = run_bounded(
        Command::new("python3").arg("-c").arg(script).args(args),
        Duration::from_secs(60),
    );
    out.assert_success("python3");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "python3 output is not JSON ({e}):\n{}\nstderr:\n{}",
            out.stdout_str(),
            out.stderr
        )
    })
}

/// POSTs `body` to `/echo` with a Content-Length, written from another thread in pieces of
/// `piece` bytes (so that a server answering early cannot deadlock the test on a full socket
/// buffer), and returns the response.
pub fn echo_in_pieces(addr: SocketAddr, body: &[u8], piece: usize) -> Response {
    let mut c = Conn::open(addr);
    c.send(
        format!(
            "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    let mut w = c.stream.try_clone().unwrap();
    let owned = body.to_vec();
    let t = std::thread::spawn(move || {
        for chunk in owned.chunks(piece) {
            w.write_all(chunk).unwrap();
        }
    });
    let r = c.read_response(false);
    t.join().unwrap();
    r
}
