//! Every system call ring-server makes without a safe wrapper (none in `libc`'s safe
//! surface, `rustix` or socket2): the crate's only `unsafe` outside `crate::heap`, each block with
//! the reason it holds.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

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

/// `cachestat(2)` (Linux 6.5): how many pages of `len` bytes of `file` from `start` are in the
/// page cache.
pub(crate) fn cachestat(file: BorrowedFd<'_>, start: u64, len: u64) -> io::Result<u64> {
    let range = CachestatRange { off: start, len };
    let mut stat = Cachestat::default();
    // SAFETY: `cachestat(fd, range, cstat, flags)` reads one `struct cachestat_range` from
    // `range` and writes one `struct cachestat` to `stat`; both are live, properly aligned
    // `repr(C)` values of exactly those layouts for the duration of the call, and the descriptor
    // is borrowed, so it stays open.
    let rc = unsafe {
        libc::syscall(
            SYS_CACHESTAT,
            file.as_raw_fd(),
            &range as *const CachestatRange,
            &mut stat as *mut Cachestat,
            0u32,
        )
    };
    if rc == 0 {
        Ok(stat.nr_cache)
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sets `TCP_DEFER_ACCEPT` on `socket` to `secs` seconds (0: off).
pub(crate) fn set_defer_accept(socket: &impl AsFd, secs: libc::c_int) -> io::Result<()> {
    let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: the descriptor is a live socket borrowed for the whole call, and the option value
    // is a `c_int` on this stack frame whose size is passed as `len`; the kernel only reads it.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_fd().as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            std::ptr::from_ref(&secs).cast(),
            len,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The `TCP_DEFER_ACCEPT` seconds a socket holds (0: off), as the kernel reports them.
#[cfg(test)]
pub(crate) fn defer_accept(socket: &impl AsFd) -> io::Result<libc::c_int> {
    let mut secs: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: the descriptor is a live socket borrowed for the whole call; `secs` and `len` are
    // locals the kernel writes at most `len` bytes into.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_fd().as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            std::ptr::from_mut(&mut secs).cast(),
            &mut len,
        )
    };
    if rc == 0 {
        Ok(secs)
    } else {
        Err(io::Error::last_os_error())
    }
}
