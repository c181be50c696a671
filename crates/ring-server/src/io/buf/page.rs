//! [`PageBuf`]: a zero-filled, page-aligned buffer for registration with io_uring.
//!
//! Registering a buffer pins every page it touches, and each pinned page counts against
//! `RLIMIT_MEMLOCK`. A 16 KiB `Vec` from `malloc` starts a few bytes into a page and so pins five
//! pages, not four (measured: six default workers then failed under an 8 MiB limit that four pages
//! each would fit). Aligning each buffer to a page makes the charge exactly `size` rounded up to
//! pages. One of the two files of ring-server with `unsafe` code (the other is `io/sys.rs`):
//! allocating with an explicit layout and implementing tokio-uring's buffer traits for it.
#![allow(unsafe_code)]

use std::alloc::{alloc_zeroed, dealloc, handle_alloc_error, Layout};
use std::ptr::NonNull;

use tokio_uring::buf::{IoBuf, IoBufMut};

/// The page size this layout assumes; a larger real page only costs alignment, never safety.
pub(crate) const PAGE: usize = 4096;

/// A page-aligned heap buffer of fixed length, fully initialised (zeroes) from the start.
pub(crate) struct PageBuf {
    ptr: NonNull<u8>,
    layout: Layout,
}

impl PageBuf {
    /// Allocates `size` zeroed bytes aligned to [`PAGE`]. `size` must be non-zero.
    pub(crate) fn zeroed(size: usize) -> PageBuf {
        let layout = Layout::from_size_align(size.max(1), PAGE).expect("buffer size overflows a layout");
        // SAFETY: `layout` has a non-zero size (clamped to at least 1 above).
        let raw = unsafe { alloc_zeroed(layout) };
        let Some(ptr) = NonNull::new(raw) else {
            handle_alloc_error(layout)
        };
        PageBuf { ptr, layout }
    }
}

impl Clone for PageBuf {
    /// A new allocation with the same bytes. (tokio-uring's pool handle is `Clone` only when its
    /// buffers are; the handle's clones share the pool, so this is not called on the hot path.)
    fn clone(&self) -> PageBuf {
        let mut copy = PageBuf::zeroed(self.layout.size());
        let len = self.layout.size();
        // SAFETY: both allocations are `len` initialised bytes, distinct, and live for the copy.
        unsafe { std::ptr::copy_nonoverlapping(self.stable_ptr(), copy.stable_mut_ptr(), len) };
        copy
    }
}

impl Drop for PageBuf {
    fn drop(&mut self) {
        // SAFETY: `ptr` was returned by `alloc_zeroed` with exactly this `layout` and is freed
        // only here, once. tokio-uring drops a registered buffer only after the pool (and so the
        // registration's users) are gone.
        unsafe { dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

// SAFETY: `stable_ptr` points to an allocation that does not move or change size while `self`
// lives, and all `bytes_total` bytes are initialised (zeroed at allocation), so `bytes_init` may
// report all of them.
unsafe impl IoBuf for PageBuf {
    fn stable_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }

    fn bytes_init(&self) -> usize {
        self.layout.size()
    }

    fn bytes_total(&self) -> usize {
        self.layout.size()
    }
}

// SAFETY: as for `IoBuf`; the pointer is unique to this buffer, so handing it out through
// `&mut self` gives exclusive access.
unsafe impl IoBufMut for PageBuf {
    fn stable_mut_ptr(&mut self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    unsafe fn set_init(&mut self, _pos: usize) {
        // Every byte is initialised from the start.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_zeroed_and_sized() {
        for size in [1, 4096, 16 * 1024, 16 * 1024 + 1] {
            let b = PageBuf::zeroed(size);
            assert_eq!(b.stable_ptr() as usize % PAGE, 0);
            assert_eq!(b.bytes_total(), size);
            assert_eq!(b.bytes_init(), size);
            // SAFETY (test): the buffer is `size` initialised bytes owned by `b`.
            let bytes = unsafe { std::slice::from_raw_parts(b.stable_ptr(), size) };
            assert!(bytes.iter().all(|x| *x == 0));
        }
    }
}
