//! Child processes: their output drained in a thread, and commands run to completion with a
//! bound.

use super::*;

#[derive(Clone, Default)]
pub struct LogBuf {
    inner: Arc<(Mutex<Vec<u8>>, Condvar)>,
    /// Set once the drain thread has read the end of its pipe (every byte is in `inner`).
    ended: Arc<std::sync::atomic::AtomicBool>,
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
            let (m, cv) = &*me.inner;
            let _held = m.lock().unwrap();
            me.ended.store(true, Ordering::SeqCst);
            cv.notify_all();
        })
    }

    /// Wait (bounded) until the drain thread has read everything the process wrote (the end of
    /// the pipe, once the process has exited); returns whether it did.
    pub fn wait_for_end(&self, timeout: Duration) -> bool {
        let ended = self.ended.clone();
        self.wait_for(timeout, |_| ended.load(Ordering::SeqCst))
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
