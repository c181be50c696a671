//! Header slots for the parser, lent per request from a per-worker pool.
//!
//! The parser writes header fields into caller-provided slots (256 of them, 8 KiB). Kept in the
//! connection's future, those slots would make every connection, idle ones included, 8 KiB
//! larger; lent from this pool they cost a connection nothing between requests.

use std::cell::{Cell, RefCell};

use ringd_core::{Header, MAX_HEADERS};

/// Idle slot arrays kept per worker besides the spare; more are freed when returned.
const KEEP: usize = 64;

thread_local! {
    /// The array most recently returned (none yet: an unallocated vector). Requests are
    /// answered one at a time on a worker, so nearly every request takes it and gives it back
    /// without reaching the pool.
    static SPARE: Cell<Vec<Header<'static>>> = const { Cell::new(Vec::new()) };
    static POOL: RefCell<Vec<Vec<Header<'static>>>> = const { RefCell::new(Vec::new()) };
}

/// Slots for the headers of one request, borrowing from a buffer that lives for `'b`. They
/// go back to this worker's pool when given back ([`HeaderSlots::give_back`]); dropped instead
/// (a panic), they are freed, and the next request that finds none allocates.
pub(crate) struct HeaderSlots<'b> {
    slots: Vec<Header<'b>>,
}

impl<'b> HeaderSlots<'b> {
    /// Slots from the pool, or new ones.
    #[inline]
    pub(crate) fn take() -> HeaderSlots<'b> {
        let mut slots = SPARE.take();
        if slots.capacity() < MAX_HEADERS {
            slots = from_pool();
        }
        HeaderSlots { slots: relabel(slots) }
    }

    /// The slots, an empty vector of `MAX_HEADERS` capacity, for `parse_request`.
    pub(crate) fn as_mut(&mut self) -> &mut Vec<Header<'b>> {
        &mut self.slots
    }
}

/// Slots from the pool when the spare is taken, or new ones.
#[cold]
fn from_pool() -> Vec<Header<'static>> {
    POOL.with_borrow_mut(Vec::pop)
        .unwrap_or_else(|| Vec::with_capacity(MAX_HEADERS))
}

impl HeaderSlots<'_> {
    /// Gives the slots back to this worker's pool. A method rather than a `Drop`: called where
    /// the request's answer ends, it is taken in place, where drop glue is a call.
    #[inline]
    pub(crate) fn give_back(self) {
        let before = SPARE.replace(relabel(self.slots));
        if before.capacity() > 0 {
            to_pool(before);
        }
    }
}

/// Keeps slots given back while the spare was there, up to [`KEEP`].
#[cold]
fn to_pool(slots: Vec<Header<'static>>) {
    POOL.with_borrow_mut(|pool| {
        if pool.len() < KEEP && slots.capacity() >= MAX_HEADERS {
            pool.push(slots);
        }
    });
}

/// The same (empty) allocation with another lifetime: collecting an emptied vector's iterator
/// into a vector of a type of the same layout reuses its allocation (Rust's in-place collect),
/// and no element exists to carry a borrow across.
fn relabel<'x, 'y>(mut v: Vec<Header<'x>>) -> Vec<Header<'y>> {
    v.clear();
    v.into_iter().map(|_| unreachable!("the vector is empty")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_reused_not_reallocated() {
        let first = {
            let mut s = HeaderSlots::take();
            assert_eq!(s.as_mut().capacity(), MAX_HEADERS);
            let at = s.slots.as_ptr() as usize;
            s.give_back();
            at
        };
        let again = HeaderSlots::take();
        assert_eq!(
            again.slots.as_ptr() as usize,
            first,
            "the pooled allocation was not reused"
        );
        assert_eq!(again.slots.capacity(), MAX_HEADERS);
    }

    /// Slots taken while others are out come from the pool and go back to it.
    #[test]
    fn slots_taken_together_are_reused() {
        let addrs = |a: &HeaderSlots<'_>, b: &HeaderSlots<'_>| {
            let mut v = [a.slots.as_ptr() as usize, b.slots.as_ptr() as usize];
            v.sort();
            v
        };
        let first = {
            let (a, b) = (HeaderSlots::take(), HeaderSlots::take());
            let at = addrs(&a, &b);
            a.give_back();
            b.give_back();
            at
        };
        let (a, b) = (HeaderSlots::take(), HeaderSlots::take());
        assert_eq!(addrs(&a, &b), first, "the pooled allocations were not reused");
        assert!(a.slots.capacity() >= MAX_HEADERS && b.slots.capacity() >= MAX_HEADERS);
    }
}
