//! Whether a range of a file is all in the page cache, from `cachestat(2)` (Linux 6.5).
//!
//! `sendfile(2)` on the worker's own thread is the cheapest way to send a file, but it reads the
//! file where it runs: a page that is not in memory would stall the worker (and every connection
//! on it) on the disk. So ringd sends a file that way only when every page of the range is
//! resident, and otherwise splices it on io_uring's worker threads, which wait for the disk
//! instead (see `crate::io::file`).
//! The system call has no wrapper in `libc` or `rustix` yet: it is made in `crate::io::sys`.

use std::cell::Cell;
use std::os::fd::AsFd;

thread_local! {
    /// Cleared once the kernel (or a seccomp filter) refuses the call: it is not asked again.
    static AVAILABLE: Cell<bool> = const { Cell::new(true) };
}

/// Whether `cachestat(2)` answers for a file this process owns (a memfd), asked once per
/// thread: if not, a filter refuses the call whatever the file.
fn own_file_allowed() -> bool {
    thread_local! {
        static OWN_FILE: Cell<Option<bool>> = const { Cell::new(None) };
    }
    if let Some(allowed) = OWN_FILE.get() {
        return allowed;
    }
    let allowed = rustix::fs::memfd_create("ringd-cachestat-probe", rustix::fs::MemfdFlags::CLOEXEC)
        .is_ok_and(|fd| super::sys::cachestat(fd.as_fd(), 0, 4096).is_ok());
    OWN_FILE.set(Some(allowed));
    allowed
}

/// Whether every page of `len` bytes of `file` from `start` is in the page cache; `None` when
/// that cannot be known (a kernel before 6.5, a filter that forbids the call).
pub(crate) fn resident(file: &impl AsFd, start: u64, len: u64) -> Option<bool> {
    if len == 0 {
        return Some(true);
    }
    if !AVAILABLE.get() {
        return None;
    }
    let nr_cache = match super::sys::cachestat(file.as_fd(), start, len) {
        Ok(n) => n,
        Err(e) => {
            // ENOSYS: no such call (a kernel before 6.5, or a filter). EPERM: a filter, or the
            // kernel's own rule for a file this process neither owns nor may write (an
            // installed site is root's, the service's user is not): told apart once, on a file
            // of this process's own.
            let refused = match e.raw_os_error() {
                Some(libc::ENOSYS) => true,
                Some(libc::EPERM) => !own_file_allowed(),
                _ => false,
            };
            if refused {
                AVAILABLE.set(false);
            }
            return None;
        }
    };
    let page = rustix::param::page_size() as u64;
    let pages = (start + len - 1) / page - start / page + 1;
    Some(nr_cache >= pages)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_file_just_written_is_resident_and_a_dropped_one_is_not() {
        let path = std::env::temp_dir().join(format!("ringd-page-cache-{}", std::process::id()));
        let mut f = std::fs::File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        f.write_all(&vec![7u8; 256 * 1024]).unwrap();
        f.sync_all().unwrap();
        let Some(all) = resident(&f, 0, 256 * 1024) else {
            // A kernel before 6.5: nothing to check, and callers take the splicing way.
            return;
        };
        assert!(all, "a file just written is in the page cache");
        assert_eq!(resident(&f, 4095, 2), Some(true), "a range across a page boundary");
        assert_eq!(resident(&f, 0, 0), Some(true), "an empty range");
        const TMPFS_MAGIC: i64 = 0x0102_1994;
        if rustix::fs::fstatfs(&f).unwrap().f_type as i64 == TMPFS_MAGIC {
            eprintln!("the temporary directory is on tmpfs: its pages cannot be dropped");
            return;
        }
        // Clean pages of a synced file are dropped on request.
        rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::DontNeed).unwrap();
        assert_eq!(resident(&f, 0, 256 * 1024), Some(false));
    }
}
