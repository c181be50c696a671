//! Creating a worker's ring and registering its buffers, with kernel errors turned into advice.

use std::io;

use crate::config::BufferConfig;
use crate::error::ServerError;
use crate::io::buf::PAGE;

/// Builds a worker's tokio-uring runtime.
///
/// `COOP_TASKRUN` + `SINGLE_ISSUER` measured 8.8 -> 6.5 µs of server CPU per keep-alive request
/// here (shared/IO_URING_NOTES.md); a kernel older than 6.0 rejects them with `EINVAL`, so that one
/// error retries without flags. `DEFER_TASKRUN` hangs tokio-uring's driver and `SQPOLL` burns a core,
/// so neither is used.
pub(crate) fn runtime(entries: u32) -> Result<tokio_uring::Runtime, ServerError> {
    let mut flags = io_uring::IoUring::builder();
    flags.setup_coop_taskrun().setup_single_issuer();
    let mut tuned = tokio_uring::builder();
    tuned.entries(entries).uring_builder(&flags);
    match tokio_uring::Runtime::new(&tuned) {
        Ok(rt) => Ok(rt),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            let mut plain = tokio_uring::builder();
            plain.entries(entries);
            tokio_uring::Runtime::new(&plain).map_err(|e| ring_error(entries, e))
        }
        Err(e) => Err(ring_error(entries, e)),
    }
}

fn ring_error(entries: u32, e: io::Error) -> ServerError {
    match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => match read_sysctl("kernel/io_uring_disabled") {
            Some(v @ (1 | 2)) => ServerError::IoUringDisabled {
                value: v,
                group: if v == 1 {
                    let g = read_sysctl("kernel/io_uring_group").map_or("?".to_owned(), |g| g.to_string());
                    format!(", and this process is not in kernel.io_uring_group={g}")
                } else {
                    String::new()
                },
            },
            _ => ServerError::IoUringBlocked { cause: e },
        },
        Some(libc::ENOSYS) => ServerError::IoUringUnsupported { cause: e },
        // Without CAP_IPC_LOCK the ring's own memory is charged to RLIMIT_MEMLOCK.
        Some(libc::ENOMEM) => ServerError::Memlock {
            what: format!("creating an io_uring ring of {entries} entries"),
            limit: memlock_limit(),
        },
        _ => ServerError::Ring { entries, cause: e },
    }
}

fn read_sysctl(name: &str) -> Option<u8> {
    std::fs::read_to_string(format!("/proc/sys/{name}"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Turns a failed `io_uring_register(REGISTER_BUFFERS)` into an error that says what to change.
pub(crate) fn register_error(buffers: BufferConfig, workers: usize, e: io::Error) -> ServerError {
    if e.raw_os_error() == Some(libc::ENOMEM) || e.raw_os_error() == Some(libc::EPERM) {
        // Buffers are page-aligned (`PageBuf`), so each pins exactly its size in whole pages.
        let per_worker_kib = buffers.count * buffers.size.div_ceil(PAGE) * PAGE / 1024;
        ServerError::Memlock {
            what: format!(
                "registering {} fixed buffers of {} bytes ({per_worker_kib} KiB per worker, {} KiB for {workers} workers, plus each worker's ring; the limit covers all of this user's processes)",
                buffers.count,
                buffers.size,
                per_worker_kib * workers,
            ),
            limit: memlock_limit(),
        }
    } else {
        ServerError::RegisterBuffers { cause: e }
    }
}

/// What to say when a worker cannot register its receive-buffer ring: the server runs on,
/// each connection keeping a read buffer, and the line says how to get the ring.
pub(crate) fn buf_ring_error(e: &io::Error) -> String {
    let fix = match e.raw_os_error() {
        Some(libc::ENOMEM) | Some(libc::EPERM) => format!(
            "raise RLIMIT_MEMLOCK (now {}; LimitMEMLOCK= in the systemd unit) or lower buffers.count",
            memlock_limit()
        ),
        Some(libc::EINVAL) | Some(libc::ENOSYS) => "the kernel needs Linux 5.19 or later for it".to_owned(),
        _ => "set buffers.receive = 0 to stop trying".to_owned(),
    };
    format!("cannot register the receive-buffer ring ({e}); idle connections keep a 1 KiB read buffer each: {fix}")
}

/// `RLIMIT_MEMLOCK` as `/proc/self/limits` shows it (soft limit), for error messages.
fn memlock_limit() -> String {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    limits
        .lines()
        .find(|l| l.starts_with("Max locked memory"))
        .and_then(|l| l.split_whitespace().nth(3))
        .map(|soft| match soft.parse::<u64>() {
            Ok(bytes) => format!("{} KiB", bytes / 1024),
            Err(_) => soft.to_owned(),
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eperm_without_sysctl_is_seccomp_or_disabled() {
        let e = ring_error(8, io::Error::from_raw_os_error(libc::EPERM));
        let msg = e.to_string();
        assert!(msg.contains("io_uring"), "{msg}");
        assert!(msg.contains("seccomp") || msg.contains("io_uring_disabled"), "{msg}");
    }

    #[test]
    fn enomem_on_register_is_memlock_advice() {
        let e = register_error(
            BufferConfig {
                count: 4,
                size: 8192,
                receive: 0,
            },
            3,
            io::Error::from_raw_os_error(libc::ENOMEM),
        );
        let msg = e.to_string();
        assert!(msg.contains("RLIMIT_MEMLOCK") && msg.contains("LimitMEMLOCK"), "{msg}");
        assert!(msg.contains("32 KiB per worker, 96 KiB for 3 workers"), "{msg}");
    }

    #[test]
    fn a_ring_that_cannot_be_registered_is_one_line_that_says_what_to_do() {
        let memlock = buf_ring_error(&io::Error::from_raw_os_error(libc::ENOMEM));
        assert!(
            memlock.contains("LimitMEMLOCK") && memlock.contains("1 KiB read buffer"),
            "{memlock}"
        );
        let old_kernel = buf_ring_error(&io::Error::from_raw_os_error(libc::EINVAL));
        assert!(old_kernel.contains("5.19"), "{old_kernel}");
        let other = buf_ring_error(&io::Error::from_raw_os_error(libc::EIO));
        assert!(other.contains("buffers.receive = 0"), "{other}");
        for line in [memlock, old_kernel, other] {
            assert!(!line.contains('\n'), "{line}");
        }
    }

    #[test]
    fn memlock_limit_is_read() {
        let l = memlock_limit();
        assert!(l == "unlimited" || l.ends_with("KiB"), "{l}");
    }
}
