//! Temporary directories and small helpers: test data, bounded polls, Python one-offs.

use super::*;

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
        Command::new(debian_python()).arg("-c").arg(script).args(args),
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
