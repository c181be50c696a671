//! Creating a worker's ring, with kernel errors turned into advice.

use std::io;

use crate::error::ServerError;

/// Builds a worker's ring, this thread's from then on.
///
/// `COOP_TASKRUN` + `SINGLE_ISSUER` cut the kernel's task-work signalling per completion
/// (measured: `benches/results/HISTORY.md`); a kernel older than 6.0 rejects them with `EINVAL`,
/// so that one error retries without flags. `SQPOLL` burns a core, so it is never used.
pub(crate) fn ring(entries: u32) -> Result<tokio_uring::Ring, ServerError> {
    let mut flags = io_uring::IoUring::builder();
    flags.setup_coop_taskrun().setup_single_issuer();
    let valgrind = under_valgrind();
    let mut tuned = tokio_uring::builder();
    tuned.entries(entries).uring_builder(&flags).park_in_poll(valgrind);
    match tokio_uring::Ring::new(&tuned) {
        Ok(ring) => Ok(ring),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            let mut plain = tokio_uring::builder();
            plain.entries(entries).park_in_poll(valgrind);
            tokio_uring::Ring::new(&plain).map_err(|e| ring_error(entries, e))
        }
        Err(e) => Err(ring_error(entries, e)),
    }
}

/// Whether this process runs under valgrind (which preloads its own library): valgrind 3.19
/// runs one thread at a time and keeps the others waiting while one is in `io_uring_enter`, so
/// the worker then parks in `poll(2)` (`tokio_uring::Builder::park_in_poll`), which it knows
/// may block; otherwise the main thread would never handle a signal. `benches/callgrind`
/// counts instructions so.
fn under_valgrind() -> bool {
    std::env::var_os("LD_PRELOAD").is_some_and(|p| p.as_encoded_bytes().windows(9).any(|w| w == b"vgpreload"))
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

/// `RLIMIT_MEMLOCK` as `/proc/self/limits` shows it (soft limit), for error messages.
pub(crate) fn memlock_limit() -> String {
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
    fn memlock_limit_is_read() {
        let l = memlock_limit();
        assert!(l == "unlimited" || l.ends_with("KiB"), "{l}");
    }
}
