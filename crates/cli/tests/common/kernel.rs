//! What the kernel offers of the features ringd uses only when they are there, as this process
//! sees them: through any seccomp filter it runs under, which the ringd it starts inherits. A test
//! asks these to know which way ringd must take, and checks that it took that way.

use std::os::fd::AsRawFd;

/// Whether `cachestat(2)` answers (Linux 6.5; a container's filter may refuse it) for a file
/// this user wrote, as the tests' served files are: ringd then sends a file range that is all in
/// the page cache with `sendfile`, and splices it otherwise. (The kernel also refuses, with
/// `EPERM`, a file the caller may neither write nor owns: a root-owned file asked about by an
/// ordinary user.)
pub fn cachestat() -> bool {
    #[repr(C)]
    struct Range {
        off: u64,
        len: u64,
    }
    #[repr(C)]
    #[derive(Default)]
    struct Stat {
        counts: [u64; 5],
    }
    let dir = super::TempDir::new("cachestat-probe");
    let path = dir.write("probe", &[0u8; 4096]);
    let file = std::fs::File::open(path).expect("open the probe file");
    let range = Range { off: 0, len: 4096 };
    let mut stat = Stat::default();
    // SAFETY: cachestat(fd, range, cstat, flags) reads one `struct cachestat_range` and writes
    // one `struct cachestat` (five u64); both are live repr(C) values of those layouts, and the
    // descriptor is open for the call.
    let rc = unsafe {
        libc::syscall(
            super::seccomp::CACHESTAT as libc::c_long,
            file.as_raw_fd(),
            &range as *const Range,
            &mut stat as *mut Stat,
            0u32,
        )
    };
    rc == 0
}

/// Whether an io_uring provided-buffer ring can be registered (`IORING_REGISTER_PBUF_RING`,
/// Linux 5.19): ringd then receives idle connections' requests into a ring of its buffers, and
/// otherwise gives each connection a read buffer of its own.
///
/// Asked once per test binary, on a thread of its own: tearing a ring down may leave work for
/// the thread that made it, which interrupts that thread's next blocking call (a socket read
/// with a timeout then fails with `EINTR`).
pub fn provided_buffer_rings() -> bool {
    static ANSWER: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ANSWER.get_or_init(|| std::thread::spawn(probe_provided_buffer_rings).join().unwrap())
}

fn probe_provided_buffer_rings() -> bool {
    let Ok(ring) = io_uring::IoUring::new(2) else {
        return false;
    };
    let layout = std::alloc::Layout::from_size_align(4096, 4096).unwrap();
    // SAFETY: a non-zero size; the memory is freed below, after the ring that used it is gone.
    let mem = unsafe { std::alloc::alloc_zeroed(layout) };
    assert!(!mem.is_null(), "out of memory");
    // SAFETY: `mem` is a zeroed, page-aligned page: room for the one entry registered (16
    // bytes), and it outlives the registration (unregistered, and the ring dropped, before
    // the memory is freed).
    let registered = unsafe { ring.submitter().register_buf_ring(mem as u64, 1, 0) }.is_ok();
    if registered {
        let _ = ring.submitter().unregister_buf_ring(0);
    }
    drop(ring);
    // SAFETY: allocated above with this layout; nothing refers to it any more.
    unsafe { std::alloc::dealloc(mem, layout) };
    registered
}
