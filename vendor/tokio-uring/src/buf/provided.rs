//! ringd patch: provided-buffer rings (`IORING_REGISTER_PBUF_RING`, Linux 5.19).
//!
//! A receive that selects its buffer from a ring ([`TcpStream::recv_provided`]) holds no
//! memory while it waits: the kernel picks a buffer when the data arrives. A server with many
//! idle connections therefore needs buffers for the receives that complete together, not one
//! per connection.
//!
//! The ring and its buffers belong to the runtime's driver once registered, so they outlive
//! every operation that may still write into them (the driver cancels and waits for its
//! operations before it lets them go). A buffer the kernel filled is handed out as a
//! [`ProvidedBuf`]; dropping it gives the buffer back to the ring.
//!
//! [`TcpStream::recv_provided`]: crate::net::TcpStream::recv_provided

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::cell::Cell;
use std::io;
use std::ops::Deref;
use std::ptr::{addr_of_mut, NonNull};
use std::rc::Rc;
use std::sync::atomic::{AtomicU16, Ordering};

use crate::runtime::CONTEXT;

/// `struct io_uring_buf`: one ring entry. The ring's tail is the `resv` field of entry 0.
#[repr(C)]
struct Entry {
    addr: u64,
    len: u32,
    bid: u16,
    resv: u16,
}

/// A ring of buffers registered with the current thread's io_uring as one buffer group.
#[derive(Clone)]
pub struct BufRing {
    inner: Rc<RingInner>,
}

pub(crate) struct RingInner {
    bgid: u16,
    mask: u16,
    size: u32,
    /// `count` entries, page-aligned (the kernel's requirement).
    ring: NonNull<Entry>,
    ring_layout: Layout,
    /// `count` buffers of `size` bytes, buffer `bid` at `bid * size`.
    mem: NonNull<u8>,
    mem_layout: Layout,
    /// The next tail to publish (the kernel only reads the tail).
    tail: Cell<u16>,
}

impl BufRing {
    /// Registers `count` buffers (a power of two, at most 32,768) of `size` bytes each as
    /// buffer group `bgid` of the current thread's ring. Fails where the kernel has no buffer
    /// rings (before 5.19) or cannot pin the ring's page (`RLIMIT_MEMLOCK`).
    ///
    /// # Panics
    ///
    /// Outside a tokio-uring runtime, or when `count` or `size` is out of range.
    pub fn register(bgid: u16, count: u16, size: u32) -> io::Result<BufRing> {
        assert!(count.is_power_of_two() && count <= 32768, "count must be a power of two");
        assert!(size > 0, "buffers must have a size");
        // The kernel wants the ring at a page boundary of its own page size.
        // SAFETY: sysconf has no preconditions.
        let page = match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
            n if n > 0 => n as usize,
            _ => 4096,
        };
        let ring_layout = Layout::from_size_align(count as usize * std::mem::size_of::<Entry>(), page)
            .map_err(io::Error::other)?;
        let mem_layout = Layout::from_size_align(count as usize * size as usize, 64).map_err(io::Error::other)?;
        // SAFETY: both layouts have a non-zero size (count >= 1, size >= 1).
        let (ring, mem) = unsafe { (alloc_zeroed(ring_layout), alloc_zeroed(mem_layout)) };
        let Some(ring) = NonNull::new(ring.cast::<Entry>()) else {
            std::alloc::handle_alloc_error(ring_layout);
        };
        let Some(mem) = NonNull::new(mem) else {
            std::alloc::handle_alloc_error(mem_layout);
        };
        let inner = Rc::new(RingInner {
            bgid,
            mask: count - 1,
            size,
            ring,
            ring_layout,
            mem,
            mem_layout,
            tail: Cell::new(0),
        });
        for bid in 0..count {
            inner.push(bid);
        }
        inner.publish();
        CONTEXT.with(|x| {
            x.handle()
                .expect("not in a runtime context")
                .register_buf_ring(inner.clone(), count)
        })?;
        Ok(BufRing { inner })
    }

    /// The size of each buffer.
    pub fn buf_size(&self) -> u32 {
        self.inner.size
    }

    pub(crate) fn inner(&self) -> &Rc<RingInner> {
        &self.inner
    }
}

impl RingInner {
    pub(crate) fn bgid(&self) -> u16 {
        self.bgid
    }

    pub(crate) fn ring_addr(&self) -> u64 {
        self.ring.as_ptr() as u64
    }

    /// Puts buffer `bid` in the slot after the tail, without publishing it.
    fn push(&self, bid: u16) {
        let tail = self.tail.get();
        // SAFETY: the slot index is masked below `count`, and the ring holds `count` entries.
        // The kernel reads only the entries between its head and the published tail, and this
        // slot is at the unpublished tail. Fields are written through raw pointers: entry 0's
        // `resv` is the tail, which the kernel reads, and no reference to it is made here.
        unsafe {
            let entry = self.ring.as_ptr().add((tail & self.mask) as usize);
            addr_of_mut!((*entry).addr).write(self.mem.as_ptr().add(bid as usize * self.size as usize) as u64);
            addr_of_mut!((*entry).len).write(self.size);
            addr_of_mut!((*entry).bid).write(bid);
        }
        self.tail.set(tail.wrapping_add(1));
    }

    /// Makes the pushed entries visible to the kernel.
    fn publish(&self) {
        // SAFETY: entry 0's `resv` is the ring's tail (`struct io_uring_buf_ring`); it is a
        // naturally aligned u16 inside the ring, which lives as long as `self`. The kernel reads
        // it with acquire ordering, so the release store orders the entries before it.
        unsafe {
            let tail = addr_of_mut!((*self.ring.as_ptr()).resv);
            AtomicU16::from_ptr(tail).store(self.tail.get(), Ordering::Release);
        }
    }

    /// Gives buffer `bid` back to the kernel.
    pub(crate) fn recycle(&self, bid: u16) {
        if bid <= self.mask {
            self.push(bid);
            self.publish();
        }
    }

    /// Buffer `bid`'s first `len` bytes.
    ///
    /// # Safety
    ///
    /// The kernel must have filled buffer `bid` (a completion selected it) and it must not have
    /// been recycled since: until then the kernel does not write to it.
    unsafe fn bytes(&self, bid: u16, len: u32) -> &[u8] {
        let len = len.min(self.size) as usize;
        std::slice::from_raw_parts(self.mem.as_ptr().add(bid as usize * self.size as usize), len)
    }
}

impl Drop for RingInner {
    fn drop(&mut self) {
        // SAFETY: allocated in `register` with these layouts. The last reference is the
        // driver's, dropped after its ring has stopped (it waits for every operation first).
        unsafe {
            dealloc(self.ring.as_ptr().cast(), self.ring_layout);
            dealloc(self.mem.as_ptr(), self.mem_layout);
        }
    }
}

/// A buffer the kernel filled from a [`BufRing`]; dropping it gives it back to the ring.
pub struct ProvidedBuf {
    ring: Rc<RingInner>,
    bid: u16,
    len: u32,
}

impl ProvidedBuf {
    pub(crate) fn new(ring: Rc<RingInner>, bid: u16, len: u32) -> ProvidedBuf {
        ProvidedBuf { ring, bid, len }
    }

    pub(crate) fn with_len(mut self, len: u32) -> ProvidedBuf {
        self.len = len;
        self
    }
}

impl Deref for ProvidedBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: a `ProvidedBuf` is made only from a completion that selected `bid`, and
        // `bid` goes back to the ring only when it is dropped.
        unsafe { self.ring.bytes(self.bid, self.len) }
    }
}

impl Drop for ProvidedBuf {
    fn drop(&mut self) {
        self.ring.recycle(self.bid);
    }
}

impl std::fmt::Debug for ProvidedBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProvidedBuf")
            .field("bid", &self.bid)
            .field("len", &self.len)
            .finish()
    }
}
