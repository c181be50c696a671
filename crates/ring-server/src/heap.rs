//! Memory the crate lays out itself: every `unsafe` block of ring-server but the system calls
//! (`io/sys.rs`).
//!
//! - [`PageBuf`]: a zero-filled, page-aligned buffer for registration with io_uring.
//!   Registering a buffer pins every page it touches, and each pinned page counts against
//!   `RLIMIT_MEMLOCK`. A 16 KiB `Vec` from `malloc` starts a few bytes into a page and so pins
//!   five pages, not four (measured: six default workers then failed under an 8 MiB limit that
//!   four pages each would fit). Aligning each buffer to a page makes the charge exactly `size`
//!   rounded up to pages; tokio-uring's buffer traits are implemented for it.
//! - [`boxed`]: `Box::pin(make())` builds the future on the stack and then copies all of its
//!   bytes into the new box: the size of its largest state, hundreds of bytes for a connection's
//!   answering state, although a future that has not started holds only its arguments.
//!   Allocating first lets the compiler build the future in the box (measured:
//!   `benches/results/HISTORY.md`).
//! - [`recycled`]: a connection answers each batch of requests in a future of its own (so that
//!   an idle connection's future stays small), so a keep-alive request paid an allocation and a
//!   free of that state. `recycled` takes the memory from a per-thread free list instead, and
//!   gives it back there: a worker answers its batches one after another on one thread, so a
//!   few allocations serve them all.
#![allow(unsafe_code)]

use std::alloc::{alloc, alloc_zeroed, dealloc, handle_alloc_error, Layout};
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::ptr::NonNull;
use std::task::{Context, Poll};

use tokio_uring::buf::{IoBuf, IoBufMut};

/// `Box::pin(make())`, with the box allocated before `make` runs.
#[inline(always)]
pub(crate) fn boxed<F>(make: impl FnOnce() -> F) -> Pin<Box<F>> {
    Box::into_pin(Box::write(Box::new_uninit(), make()))
}

/// Free allocations kept per layout in its list (besides the one kept last, `FreeLists::last`);
/// more than this many of one layout are given back to the allocator (as many answers as are in
/// flight at once on a thread, then a few to spare).
const KEEP: usize = 64;

/// This thread's free allocations.
struct FreeLists {
    /// By layout (a thread builds few kinds of recycled futures).
    lists: Vec<(Layout, Vec<NonNull<u8>>)>,
    /// The one given back last, outside the lists: a worker answers one batch after another,
    /// so the allocation a batch gives back is the one the next batch takes, with no list
    /// searched.
    last: Option<(Layout, NonNull<u8>)>,
}

impl FreeLists {
    #[inline]
    fn take(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        if let Some((l, ptr)) = self.last {
            if l == layout {
                self.last = None;
                return Some(ptr);
            }
        }
        self.lists.iter_mut().find(|(l, _)| *l == layout)?.1.pop()
    }

    /// Keeps `ptr` (allocated with `layout`) for later; `false` when the list is full.
    #[inline]
    fn keep(&mut self, layout: Layout, ptr: NonNull<u8>) -> bool {
        if self.last.is_none() {
            self.last = Some((layout, ptr));
            return true;
        }
        let list = match self.lists.iter().position(|(l, _)| *l == layout) {
            Some(i) => &mut self.lists[i].1,
            None => self.add(layout),
        };
        if list.len() >= KEEP {
            return false;
        }
        list.push(ptr);
        true
    }

    /// A new, empty list for `layout`, with room for as many as it keeps.
    #[cold]
    #[inline(never)]
    fn add(&mut self, layout: Layout) -> &mut Vec<NonNull<u8>> {
        self.lists.push((layout, Vec::with_capacity(KEEP)));
        &mut self.lists.last_mut().expect("just pushed").1
    }
}

impl Drop for FreeLists {
    fn drop(&mut self) {
        if let Some((layout, ptr)) = self.last.take() {
            // SAFETY: as below: allocated by `recycled` with this layout, holding no value.
            unsafe { dealloc(ptr.as_ptr(), layout) };
        }
        for (layout, list) in self.lists.drain(..) {
            for ptr in list {
                // SAFETY: every pointer in a list was allocated by `recycled` with that list's
                // layout (non-zero sized) and holds no value any more.
                unsafe { dealloc(ptr.as_ptr(), layout) };
            }
        }
    }
}

thread_local! {
    static FREE: RefCell<FreeLists> = const { RefCell::new(FreeLists {
        lists: Vec::new(),
        last: None,
    }) };
}

/// A future in memory from this thread's free list (see the module docs): pinned there until it
/// is dropped, which gives the memory back.
pub(crate) struct Recycled<F: Future> {
    ptr: NonNull<F>,
}

/// `Box::pin(make())` for a future built again and again on the same thread: its memory comes
/// from, and goes back to, the thread's free list for its size. `F` must not be zero-sized.
#[inline]
pub(crate) fn recycled<F: Future>(make: impl FnOnce() -> F) -> Recycled<F> {
    let layout = Layout::new::<F>();
    assert!(layout.size() > 0, "a recycled future holds state");
    let raw = FREE
        .try_with(|free| free.borrow_mut().take(layout))
        .ok()
        .flatten()
        .unwrap_or_else(|| {
            // SAFETY: `layout` has a non-zero size (asserted above).
            NonNull::new(unsafe { alloc(layout) }).unwrap_or_else(|| handle_alloc_error(layout))
        });
    let ptr = raw.cast::<F>();
    // SAFETY: `ptr` is valid for writes of an `F` and aligned for it (allocated with
    // `Layout::new::<F>()`), and holds no value: nothing is overwritten without being dropped.
    unsafe { ptr.as_ptr().write(make()) };
    Recycled { ptr }
}

impl<F: Future> Future for Recycled<F> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `ptr` holds a live `F` until `drop`, and the `F` never moves: the memory is
        // only reused after it was dropped in place, so pinning it is sound. `&mut self` gives
        // the only access.
        unsafe { Pin::new_unchecked(&mut *self.ptr.as_ptr()) }.poll(cx)
    }
}

impl<F: Future> Drop for Recycled<F> {
    fn drop(&mut self) {
        let layout = Layout::new::<F>();
        // SAFETY: `ptr` holds a live `F` (written in `recycled`), dropped exactly once, here.
        unsafe { self.ptr.as_ptr().drop_in_place() };
        let raw = self.ptr.cast::<u8>();
        let kept = FREE
            .try_with(|free| free.borrow_mut().keep(layout, raw))
            .unwrap_or(false);
        if !kept {
            // SAFETY: allocated in `recycled` with this layout; its value was dropped above
            // and no list holds it.
            unsafe { dealloc(raw.as_ptr(), layout) };
        }
    }
}

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
    use std::rc::Rc;

    fn run<T>(fut: impl Future<Output = T>) -> T {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(fut)
    }

    #[test]
    fn the_future_runs_as_it_would_unboxed() {
        let value = 7;
        assert_eq!(run(boxed(|| async move { value * 6 })), 42);
        assert_eq!(run(recycled(|| async move { value * 6 })), 42);
    }

    #[test]
    fn recycled_memory_is_reused_and_values_are_dropped() {
        let held = Rc::new(());
        let make = |h: Rc<()>| {
            recycled(move || async move {
                tokio::task::yield_now().await;
                Rc::strong_count(&h)
            })
        };
        let first = make(held.clone());
        let addr = first.ptr.cast::<u8>();
        assert_eq!(run(first), 2);
        // The first future (and the Rc it held) is gone; the next takes the same memory.
        assert_eq!(Rc::strong_count(&held), 1);
        let second = make(held.clone());
        assert_eq!(second.ptr.cast::<u8>(), addr);
        // Dropped without being polled to the end: its value is dropped all the same.
        drop(second);
        assert_eq!(Rc::strong_count(&held), 1);
    }

    #[test]
    fn a_full_list_gives_memory_back() {
        let make = |i: u64| recycled(move || async move { i });
        // Each test runs on a thread of its own: this thread's lists start empty.
        let futures: Vec<_> = (0..KEEP as u64 + 10).map(make).collect();
        drop(futures);
        FREE.with(|free| {
            let free = free.borrow();
            let listed: usize = free.lists.iter().map(|(_, list)| list.len()).sum();
            // The list's KEEP and the one kept last, outside it.
            assert_eq!(
                (listed, free.last.is_some()),
                (KEEP, true),
                "the rest went back to the allocator"
            );
        });
    }
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
