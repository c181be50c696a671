use crate::buf::fixed::{handle::CheckedOutBuf, FixedBuffers};
use crate::buf::IoBufMut;

use libc::{iovec, UIO_MAXIOV};
use tokio::sync::Notify;

use std::cmp;
use std::collections::HashMap as StdHashMap;
use std::mem;
use std::ptr;
use std::slice;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// ringd patch: the map of waiting tasks is keyed by buffer capacity (a handful of values the
/// program chose); hashing them with SipHash cost about 500 instructions a checkout and check-in.
type HashMap<K, V> = StdHashMap<K, V, std::hash::BuildHasherDefault<CapHasher>>;

#[derive(Default)]
struct CapHasher(u64);

impl std::hash::Hasher for CapHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.0 = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

// Internal state shared by FixedBufPool and FixedBuf handles.
pub(crate) struct Pool<T: IoBufMut> {
    // Pointer to an allocated array of iovec records referencing
    // the allocated buffers. The number of initialized records is the
    // same as the length of the states array.
    raw_bufs: ptr::NonNull<iovec>,
    // Original capacity of raw_bufs as a Vec.
    orig_cap: usize,
    // State information on the buffers. Indices in this array correspond to
    // the indices in the array at raw_bufs.
    states: Vec<BufState>,
    // ringd patch: the head index of the free buffer list of each capacity the pool holds,
    // fixed at construction and searched in order: a pool holds buffers of a few capacities
    // (ringd's, one), and a hash map cost more than the rest of a checkout and check-in.
    free_heads: Vec<FreeList>,
    // Original buffers, kept until drop
    buffers: Vec<T>,
    // Used to notify tasks pending on `next`
    notify_next_by_cap: HashMap<usize, Arc<Notify>>,
    // ringd patch: how many buffers are checked out, and who is told each time it changes
    // (`FixedBufPool::count_in_use`): a buffer comes back wherever its last handle drops, an
    // operation's completion included. A store, not a call: it happens twice a response.
    in_use: usize,
    in_use_gauge: Option<Arc<AtomicU64>>,
}

/// ringd patch: the free list of buffers of `cap` bytes in `lists`, if the pool holds such
/// buffers; a pool of one capacity (ringd's) has one list and no search.
#[inline]
fn free_list(lists: &mut [FreeList], cap: usize) -> Option<&mut FreeList> {
    if lists.len() == 1 {
        return if lists[0].cap == cap { Some(&mut lists[0]) } else { None };
    }
    lists.iter_mut().find(|l| l.cap == cap)
}

/// ringd patch: the free buffers of one capacity (see `Pool::free_heads`).
struct FreeList {
    cap: usize,
    head: Option<u16>,
}

// State information of a buffer in the registry,
enum BufState {
    // The buffer is not in use.
    Free {
        // This field records the length of the initialized part.
        init_len: usize,
        // Index of the next buffer of the same capacity in a free buffer list, if any.
        next: Option<u16>,
    },
    // The buffer is checked out.
    // Its data are logically owned by the FixedBuf handle,
    // which also keeps track of the length of the initialized part.
    CheckedOut,
}

impl<T: IoBufMut> Pool<T> {
    pub(crate) fn new(bufs: impl Iterator<Item = T>) -> Self {
        // Limit the number of buffers to the maximum allowable number.
        let bufs = bufs.take(cmp::min(UIO_MAXIOV as usize, u16::MAX as usize));
        // Collect into `buffers`, which holds the backing buffers for
        // the lifetime of the pool. Using collect may allow
        // the compiler to apply collect in place specialization,
        // to avoid an allocation.
        let mut buffers = bufs.collect::<Vec<T>>();
        let mut iovecs = Vec::with_capacity(buffers.len());
        let mut states = Vec::with_capacity(buffers.len());
        let mut free_heads: Vec<FreeList> = Vec::new();
        for (index, buf) in buffers.iter_mut().enumerate() {
            let cap = buf.bytes_total();

            // Link the buffer as the head of the free list for its capacity.
            // This constructs the free buffer list to be initially retrieved
            // back to front, which should be of no difference to the user.
            // ringd patch: the lists in a vector (see `Pool::free_heads`).
            let list = match free_heads.iter().position(|l| l.cap == cap) {
                Some(i) => &mut free_heads[i],
                None => {
                    free_heads.push(FreeList { cap, head: None });
                    free_heads.last_mut().unwrap()
                }
            };
            let next = list.head.replace(index as u16);

            iovecs.push(iovec {
                iov_base: buf.stable_mut_ptr() as *mut _,
                iov_len: cap,
            });
            states.push(BufState::Free {
                init_len: buf.bytes_init(),
                next,
            });
        }
        debug_assert_eq!(iovecs.len(), states.len());
        debug_assert_eq!(iovecs.len(), buffers.len());

        // Safety: Vec::as_mut_ptr never returns null
        let raw_bufs = unsafe { ptr::NonNull::new_unchecked(iovecs.as_mut_ptr()) };
        let orig_cap = iovecs.capacity();
        mem::forget(iovecs);
        Pool {
            raw_bufs,
            orig_cap,
            states,
            free_heads,
            buffers,
            notify_next_by_cap: HashMap::default(),
            in_use: 0,
            in_use_gauge: None,
        }
    }

    // If the free buffer list for this capacity is not empty, checks out the first buffer
    // from the list and returns its data. Otherwise, returns None.
    pub(crate) fn try_next(&mut self, cap: usize) -> Option<CheckedOutBuf> {
        // ringd patch: the list found in the vector (see `Pool::free_heads`).
        let list = free_list(&mut self.free_heads, cap)?;
        let index = list.head? as usize;
        let state = &mut self.states[index];

        let (init_len, next) = match *state {
            BufState::Free { init_len, next } => {
                *state = BufState::CheckedOut;
                (init_len, next)
            }
            BufState::CheckedOut => panic!("buffer is checked out"),
        };

        // Update the head of the free list for this capacity.
        list.head = next;
        // ringd patch: see `Pool::in_use`.
        self.in_use += 1;
        if let Some(gauge) = &self.in_use_gauge {
            gauge.store(self.in_use as u64, Ordering::Relaxed);
        }

        // Safety: the allocated array under the pointer is valid
        // for the lifetime of self, a free buffer index is inside the array,
        // as also asserted by the indexing operation on the states array
        // that has the same length.
        let iovec = unsafe { self.raw_bufs.as_ptr().add(index).read() };
        debug_assert_eq!(iovec.iov_len, cap);
        Some(CheckedOutBuf {
            iovec,
            init_len,
            index: index as u16,
        })
    }

    /// ringd patch: see `FixedBufPool::count_in_use`.
    pub(crate) fn set_in_use_gauge(&mut self, gauge: Arc<AtomicU64>) {
        gauge.store(self.in_use as u64, Ordering::Relaxed);
        self.in_use_gauge = Some(gauge);
    }

    // Returns a `Notify` to use for waking up tasks awaiting a buffer of
    // the specified capacity.
    pub(crate) fn notify_on_next(&mut self, cap: usize) -> Arc<Notify> {
        let notify = self.notify_next_by_cap.entry(cap).or_default();
        Arc::clone(notify)
    }

    fn check_in_internal(&mut self, index: u16, init_len: usize) {
        // ringd patch: a pool of one capacity needs no look at the buffer's (`free_list`).
        let cap = match &self.free_heads[..] {
            [only] => only.cap,
            _ => self.iovecs()[index as usize].iov_len,
        };
        debug_assert_eq!(self.iovecs()[index as usize].iov_len, cap);
        let state = &mut self.states[index as usize];
        debug_assert!(
            matches!(state, BufState::CheckedOut),
            "the buffer must be checked out"
        );

        // Link the buffer as the new head of the free list for its capacity.
        // Recently checked in buffers will be first to be reused,
        // improving cache locality.
        // ringd patch: the list found in the vector (see `Pool::free_heads`); every capacity
        // checked in was the pool's from the start.
        let Some(list) = free_list(&mut self.free_heads, cap) else {
            unreachable!("a buffer of a capacity the pool never held");
        };
        let next = list.head.replace(index);

        *state = BufState::Free { init_len, next };
        // ringd patch: see `Pool::in_use`.
        self.in_use -= 1;
        if let Some(gauge) = &self.in_use_gauge {
            gauge.store(self.in_use as u64, Ordering::Relaxed);
        }

        // ringd patch: no lookup while no task waits for a buffer (the common case).
        if self.notify_next_by_cap.is_empty() {
            return;
        }
        if let Some(notify) = self.notify_next_by_cap.get(&cap) {
            // Wake up a single task pending on `next`
            notify.notify_one();
        }
    }
}

impl<T: IoBufMut> FixedBuffers for Pool<T> {
    fn iovecs(&self) -> &[iovec] {
        // Safety: the raw_bufs pointer is valid for the lifetime of self,
        // the length of the states array is also the length of buffers array
        // by construction.
        unsafe { slice::from_raw_parts(self.raw_bufs.as_ptr(), self.states.len()) }
    }

    unsafe fn check_in(&mut self, index: u16, init_len: usize) {
        self.check_in_internal(index, init_len)
    }
}

impl<T: IoBufMut> Drop for Pool<T> {
    fn drop(&mut self) {
        for (i, state) in self.states.iter().enumerate() {
            match state {
                BufState::Free { init_len, .. } => {
                    // Update buffer initialization.
                    // The buffer is about to dropped, but this may release it
                    // from Registry ownership, rather than deallocate.
                    unsafe { self.buffers[i].set_init(*init_len) };
                }
                BufState::CheckedOut => unreachable!("all buffers must be checked in"),
            }
        }

        // Rebuild Vec<iovec>, so it's dropped
        let _ = unsafe {
            Vec::from_raw_parts(self.raw_bufs.as_ptr(), self.states.len(), self.orig_cap)
        };
    }
}
