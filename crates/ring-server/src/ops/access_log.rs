//! Access logs: one line per request, nginx's `combined` format or JSON, buffered per worker and
//! written through io_uring at least once a second (and when 64 KiB have gathered, and at the end
//! of a drain), so that logging costs a memory copy per request, not a write.

use std::cell::{Cell, RefCell};
use std::io::{self, Write as _};
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio_uring::fs::File;

/// Where access log lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTarget {
    /// Standard error (journald under systemd).
    Stderr,
    /// A file, opened for appending (created with mode 0640); reopened on request (SIGUSR1).
    File(PathBuf),
}

/// The line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// nginx's `combined`: `$remote_addr - - [$time_local] "$request" $status $body_bytes_sent
    /// "$http_referer" "$http_user_agent"`.
    Combined,
    /// One JSON object per line with the same fields.
    Json,
}

/// An access log's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLogConfig {
    /// Where lines go.
    pub target: LogTarget,
    /// How they look.
    pub format: LogFormat,
}

/// What one log line says about one request.
pub(crate) struct Entry<'a> {
    pub(crate) peer: SocketAddr,
    /// The request line as received (`GET /x HTTP/1.1`), or its first bytes when malformed.
    pub(crate) request: &'a [u8],
    pub(crate) status: u16,
    /// Body bytes sent, if known.
    pub(crate) body_bytes: Option<u64>,
    pub(crate) referer: Option<&'a [u8]>,
    pub(crate) user_agent: Option<&'a [u8]>,
}

/// Flush when this much has gathered, without waiting for the next second.
const FLUSH_AT: usize = 64 * 1024;
/// A target that does not keep up (a stuck pipe, a stalled disk) may hold this much per worker;
/// lines beyond it are dropped and counted rather than letting memory grow without bound.
const MAX_PENDING: usize = 8 << 20;
/// Writes to a pipe or socket are atomic up to PIPE_BUF: workers sharing stderr write whole lines
/// in pieces no larger, so their lines never interleave.
const PIPE_BUF: usize = 4096;

/// One worker's access log.
pub(crate) struct AccessLog {
    config: AccessLogConfig,
    buf: RefCell<Vec<u8>>,
    file: RefCell<Option<Rc<File>>>,
    flushing: Cell<bool>,
    /// The target is a pipe or socket (write in PIPE_BUF pieces), not a regular file.
    stream: bool,
    /// Lines dropped because the target did not keep up, since the last report.
    dropped: Cell<u64>,
    /// `[27/Nov/2026:08:49:00 +0000]` for the current second.
    time: RefCell<(u64, String)>,
}

impl AccessLog {
    /// Opens the target (synchronously, at start-up, so that a bad path is a start-up error).
    pub(crate) fn open(config: &AccessLogConfig) -> io::Result<std::fs::File> {
        match &config.target {
            LogTarget::Stderr => Ok(std::fs::File::from(io::stderr().as_fd().try_clone_to_owned()?)),
            LogTarget::File(path) => open_append(path),
        }
    }

    pub(crate) fn new(config: AccessLogConfig, file: std::fs::File) -> AccessLog {
        let stream = !file.metadata().is_ok_and(|m| m.file_type().is_file());
        AccessLog {
            config,
            buf: RefCell::new(Vec::with_capacity(FLUSH_AT)),
            file: RefCell::new(Some(Rc::new(File::from_std(file)))),
            flushing: Cell::new(false),
            stream,
            dropped: Cell::new(0),
            time: RefCell::new((u64::MAX, String::new())),
        }
    }

    /// Appends one line; returns whether enough has gathered to flush now.
    pub(crate) fn record(&self, e: &Entry<'_>) -> bool {
        let mut buf = self.buf.borrow_mut();
        if buf.len() >= MAX_PENDING {
            self.dropped.set(self.dropped.get() + 1);
            return false;
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut time = self.time.borrow_mut();
        if time.0 != now {
            *time = (now, format_time(now, self.config.format));
        }
        match self.config.format {
            LogFormat::Combined => {
                let _ = write!(buf, "{} - - [{}] \"", e.peer.ip(), time.1);
                escape_nginx(&mut buf, e.request);
                let _ = write!(buf, "\" {} ", e.status);
                match e.body_bytes {
                    Some(n) => {
                        let _ = write!(buf, "{n}");
                    }
                    None => buf.push(b'-'),
                }
                buf.extend_from_slice(b" \"");
                escape_nginx(&mut buf, e.referer.unwrap_or(b"-"));
                buf.extend_from_slice(b"\" \"");
                escape_nginx(&mut buf, e.user_agent.unwrap_or(b"-"));
                buf.extend_from_slice(b"\"\n");
            }
            LogFormat::Json => {
                let _ = write!(
                    buf,
                    "{{\"time\":\"{}\",\"remote_addr\":\"{}\",\"request\":\"",
                    time.1,
                    e.peer.ip()
                );
                escape_json(&mut buf, e.request);
                let _ = write!(buf, "\",\"status\":{},\"body_bytes_sent\":", e.status);
                match e.body_bytes {
                    Some(n) => {
                        let _ = write!(buf, "{n}");
                    }
                    None => buf.extend_from_slice(b"null"),
                }
                buf.extend_from_slice(b",\"http_referer\":\"");
                escape_json(&mut buf, e.referer.unwrap_or(b""));
                buf.extend_from_slice(b"\",\"http_user_agent\":\"");
                escape_json(&mut buf, e.user_agent.unwrap_or(b""));
                buf.extend_from_slice(b"\"}\n");
            }
        }
        buf.len() >= FLUSH_AT && !self.flushing.get()
    }

    /// Whether a flush is under way.
    pub(crate) fn flushing(&self) -> bool {
        self.flushing.get()
    }

    /// Lines dropped since the last call (the target did not keep up).
    pub(crate) fn take_dropped(&self) -> u64 {
        self.dropped.replace(0)
    }

    /// Writes what has gathered, in order. When a flush is already under way this waits for it
    /// (and then writes what came after), so that "flushed" means written.
    pub(crate) async fn flush(&self) {
        // One writer at a time (single thread: nothing runs between this check and the set).
        while self.flushing.get() {
            crate::runtime::timer::sleep(std::time::Duration::from_millis(2)).await;
        }
        self.flushing.set(true);
        // Cleared however this ends, also if the future is dropped (a timed-out final flush).
        struct Writing<'a>(&'a Cell<bool>);
        impl Drop for Writing<'_> {
            fn drop(&mut self) {
                self.0.set(false);
            }
        }
        let _writing = Writing(&self.flushing);
        loop {
            let pending = std::mem::replace(&mut *self.buf.borrow_mut(), Vec::with_capacity(FLUSH_AT));
            if pending.is_empty() {
                break;
            }
            let Some(file) = self.file.borrow().clone() else { break };
            if let Err(e) = self.write(&file, pending).await {
                tracing::warn!("access log write failed: {e}");
                break;
            }
        }
    }

    /// Whether lines are waiting to be written.
    pub(crate) fn has_pending(&self) -> bool {
        !self.buf.borrow().is_empty()
    }

    async fn write(&self, file: &File, pending: Vec<u8>) -> io::Result<()> {
        // A regular file is opened O_APPEND: the offset is ignored and each write lands whole.
        if !self.stream {
            return file.write_all_at(pending, 0).await.0;
        }
        let mut rest = &pending[..];
        while !rest.is_empty() {
            // Whole lines, at most PIPE_BUF bytes (a longer line goes alone).
            let mut end = rest.len().min(PIPE_BUF);
            if end < rest.len() {
                end = match rest[..end].iter().rposition(|b| *b == b'\n') {
                    Some(nl) => nl + 1,
                    None => rest.iter().position(|b| *b == b'\n').map_or(rest.len(), |nl| nl + 1),
                };
            }
            let (res, _) = file.write_all_at(rest[..end].to_vec(), 0).await;
            res?;
            rest = &rest[end..];
        }
        Ok(())
    }

    /// Flushes to the old file, then switches to a newly opened one (logrotate's SIGUSR1).
    pub(crate) async fn reopen(&self) {
        let LogTarget::File(path) = &self.config.target else {
            return;
        };
        self.flush().await;
        match open_append(path) {
            Ok(f) => *self.file.borrow_mut() = Some(Rc::new(File::from_std(f))),
            Err(e) => {
                tracing::error!(path = %path.display(), "cannot reopen the access log: {e}; still writing to the old file")
            }
        }
    }
}

fn open_append(path: &Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(path)
}

/// nginx's `$time_local` in UTC (`27/Nov/2026:08:49:00 +0000`), or RFC 3339 for JSON.
fn format_time(secs: u64, format: LogFormat) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    match format {
        LogFormat::Combined => format!(
            "{day:02}/{}/{year}:{h:02}:{m:02}:{s:02} +0000",
            MONTHS[(month - 1) as usize]
        ),
        LogFormat::Json => format!("{year}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z"),
    }
}

/// nginx's escaping for `combined`: `"`, `\` and bytes outside printable ASCII become `\xHH`.
fn escape_nginx(out: &mut Vec<u8>, s: &[u8]) {
    for &b in s {
        if b == b'"' || b == b'\\' || !(0x20..0x7f).contains(&b) {
            let _ = write!(out, "\\x{b:02X}");
        } else {
            out.push(b);
        }
    }
}

/// JSON string escaping; bytes that are not UTF-8 become U+FFFD.
fn escape_json(out: &mut Vec<u8>, s: &[u8]) {
    for c in String::from_utf8_lossy(s).chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let mut tmp = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        // 1994-11-06 08:49:37 UTC
        assert_eq!(
            format_time(784_111_777, LogFormat::Combined),
            "06/Nov/1994:08:49:37 +0000"
        );
        assert_eq!(format_time(784_111_777, LogFormat::Json), "1994-11-06T08:49:37Z");
        assert_eq!(
            format_time(951_782_400, LogFormat::Combined),
            "29/Feb/2000:00:00:00 +0000"
        );
    }

    #[test]
    fn escaping() {
        let mut v = Vec::new();
        escape_nginx(&mut v, b"a\"b\\c\x01\xff d");
        assert_eq!(v, b"a\\x22b\\x5Cc\\x01\\xFF d");
        let mut j = Vec::new();
        escape_json(&mut j, b"a\"b\\c\n\x01");
        assert_eq!(j, b"a\\\"b\\\\c\\u000a\\u0001");
    }
}
