//! The ringd under test: started on a free port, watched, stopped.

use super::*;

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

    /// Wait (bounded, [`IO_TIMEOUT`]) until the log read so far satisfies `pred`: a line the
    /// server wrote before the client saw its effect reaches this process through a pipe and
    /// a drain thread, later on a busy machine. Returns whether it did.
    pub fn wait_log(&self, pred: impl FnMut(&str) -> bool) -> bool {
        self.log.wait_for(IO_TIMEOUT, pred)
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
                // Its last lines (a drain's "drained in") may still be in the pipe.
                self.log.wait_for_end(IO_TIMEOUT);
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
