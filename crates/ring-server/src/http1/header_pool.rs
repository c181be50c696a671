//! Header slots for the parser, lent per request from a per-worker pool.
//!
//! The parser writes header fields into caller-provided slots (256 of them, 8 KiB). Kept in the
//! connection's future, those slots would make every connection, idle ones included, 8 KiB
//! larger; lent from this pool they cost a connection nothing between requests.

use std::cell::RefCell;

use ringd_core::{Header, MAX_HEADERS};

/// Idle slot arrays kept per worker; more are freed when returned.
const KEEP: usize = 64;

thread_local! {
    static POOL: RefCell<Vec<Vec<Header<'static>>>> = const { RefCell::new(Vec::new()) };
}

/// Slots for the headers of one request, borrowing from a buffer that lives for `'b`. They
/// go back to this worker's pool when dropped.
pub(crate) struct HeaderSlots<'b> {
    slots: Vec<Header<'b>>,
}

impl<'b> HeaderSlots<'b> {
    /// Slots from the pool, or new ones.
    pub(crate) fn take() -> HeaderSlots<'b> {
        let slots = POOL
            .with_borrow_mut(Vec::pop)
            .unwrap_or_else(|| Vec::with_capacity(MAX_HEADERS));
        HeaderSlots { slots: relabel(slots) }
    }

    /// The slots, an empty vector of `MAX_HEADERS` capacity, for `parse_request`.
    pub(crate) fn as_mut(&mut self) -> &mut Vec<Header<'b>> {
        &mut self.slots
    }
}

impl Drop for HeaderSlots<'_> {
    fn drop(&mut self) {
        let slots = relabel(std::mem::take(&mut self.slots));
        POOL.with_borrow_mut(|pool| {
            if pool.len() < KEEP && slots.capacity() >= MAX_HEADERS {
                pool.push(slots);
            }
        });
    }
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
            s.slots.as_ptr() as usize
        };
        let again = HeaderSlots::take();
        assert_eq!(
            again.slots.as_ptr() as usize,
            first,
            "the pooled allocation was not reused"
        );
        assert_eq!(again.slots.capacity(), MAX_HEADERS);
    }
}
