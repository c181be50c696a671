//! Whether a range of a file is all in the page cache, from `cachestat(2)` (Linux 6.5).
//!
//! `sendfile(2)` on the worker's own thread is the cheapest way to send a file, but it reads the
//! file where it runs: a page that is not in memory would stall the worker (and every connection
//! on it) on the disk. So ringd sends a file that way only when every page of the range is
//! resident, and otherwise splices it on io_uring's worker threads, which wait for the disk
//! instead (see `crate::sendfile`).
//!
//! One of the two modules of ring-server with `unsafe` code (the other is `buf::aligned`): the
//! system call has no wrapper in `libc` or `rustix` yet, so it is made with `libc::syscall`.
#![allow(unsafe_code)]

use std::cell::Cell;
use std::os::fd::{AsFd, AsRawFd};

/// `__NR_cachestat`: one number on every architecture (new system calls share the table).
const SYS_CACHESTAT: libc::c_long = 451;

/// `struct cachestat_range` (include/uapi/linux/mman.h).
#[repr(C)]
struct CachestatRange {
    off: u64,
    len: u64,
}

/// `struct cachestat` (include/uapi/linux/mman.h).
#[repr(C)]
#[derive(Default)]
struct Cachestat {
    nr_cache: u64,
    nr_dirty: u64,
    nr_writeback: u64,
    nr_evicted: u64,
    nr_recently_evicted: u64,
}

thread_local! {
    /// Cleared once the kernel (or a seccomp filter) refuses the call: it is not asked again.
    static AVAILABLE: Cell<bool> = const { Cell::new(true) };
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
    let range = CachestatRange { off: start, len };
    let mut stat = Cachestat::default();
    // SAFETY: `cachestat(fd, range, cstat, flags)` reads one `struct cachestat_range` from
    // `range` and writes one `struct cachestat` to `stat`; both are live, properly aligned
    // `repr(C)` values of exactly those layouts for the duration of the call, and the descriptor
    // is borrowed from `file`, so it stays open.
    let rc = unsafe {
        libc::syscall(
            SYS_CACHESTAT,
            file.as_fd().as_raw_fd(),
            &range as *const CachestatRange,
            &mut stat as *mut Cachestat,
            0u32,
        )
    };
    if rc != 0 {
        let errno = std::io::Error::last_os_error().raw_os_error();
        if matches!(errno, Some(libc::ENOSYS) | Some(libc::EPERM)) {
            AVAILABLE.set(false);
        }
        return None;
    }
    let page = rustix::param::page_size() as u64;
    let pages = (start + len - 1) / page - start / page + 1;
    Some(stat.nr_cache >= pages)
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
