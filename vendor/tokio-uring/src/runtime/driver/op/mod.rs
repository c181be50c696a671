use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use io_uring::{cqueue, squeue};

mod slab_list;

use slab::Slab;
use slab_list::{SlabListEntry, SlabListIndices};

use crate::runtime::{driver, CONTEXT};

/// A SlabList is used to hold unserved completions.
///
/// This is relevant to multi-completion Operations,
/// which require an unknown number of CQE events to be
/// captured before completion.
pub(crate) type Completion = SlabListEntry<CqeResult>;

/// An unsubmitted oneshot operation.
pub struct UnsubmittedOneshot<D: 'static, T: OneshotOutputTransform<StoredData = D>> {
    stable_data: D,
    post_op: T,
    sqe: squeue::Entry,
}

impl<D, T: OneshotOutputTransform<StoredData = D>> UnsubmittedOneshot<D, T> {
    /// Construct a new operation for later submission.
    pub fn new(stable_data: D, post_op: T, sqe: squeue::Entry) -> Self {
        Self {
            stable_data,
            post_op,
            sqe,
        }
    }

    /// Submit an operation to the driver for batched entry to the kernel.
    pub fn submit(self) -> InFlightOneshot<D, T> {
        let handle = CONTEXT
            .with(|x| x.handle())
            .expect("Could not submit op; not in runtime context");

        self.submit_with_driver(handle)
    }

    // ringd patch: the operation keeps the strong handle it was given (see `Op::driver`).
    fn submit_with_driver(self, driver: driver::Handle) -> InFlightOneshot<D, T> {
        let index = driver.submit_op_2(self.sqe);

        let inner = InFlightOneshotInner {
            index,
            driver,
            stable_data: self.stable_data,
            post_op: self.post_op,
        };

        InFlightOneshot { inner: Some(inner) }
    }
}

/// An in-progress oneshot operation which can be polled for completion.
pub struct InFlightOneshot<D: 'static, T: OneshotOutputTransform<StoredData = D>> {
    inner: Option<InFlightOneshotInner<D, T>>,
}

struct InFlightOneshotInner<D, T: OneshotOutputTransform<StoredData = D>> {
    // ringd patch: a strong handle (see `Op::driver`).
    driver: driver::Handle,
    index: usize,
    stable_data: D,
    post_op: T,
}

impl<D: Unpin, T: OneshotOutputTransform<StoredData = D> + Unpin> Future for InFlightOneshot<D, T> {
    type Output = T::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();

        let inner = this
            .inner
            .as_mut()
            .expect("Cannot poll already-completed operation");

        // ringd patch: the strong handle is used as it is (a weak one was upgraded each poll).
        let cqe = ready!(inner.driver.poll_op_2(inner.index, cx));

        let inner = this.inner.take().unwrap();

        Poll::Ready(
            inner
                .post_op
                .transform_oneshot_output(inner.stable_data, cqe),
        )
    }
}

impl<D: 'static, T: OneshotOutputTransform<StoredData = D>> Drop for InFlightOneshot<D, T> {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            // ringd patch: the strong handle keeps the driver alive (see `Op::driver`).
            inner.driver.remove_op_2(inner.index, inner.stable_data)
        }
    }
}

/// Transforms the output of a oneshot operation into a more user-friendly format.
pub trait OneshotOutputTransform {
    /// The final output after the transformation.
    type Output;
    /// The stored data within the op.
    type StoredData;
    /// Transform the stored data and the cqe into the final output.
    fn transform_oneshot_output(self, data: Self::StoredData, cqe: cqueue::Entry) -> Self::Output;
}

/// In-flight operation
pub(crate) struct Op<T: 'static, CqeType = SingleCQE> {
    // ringd patch: a strong handle, moved in at submission, where upstream held a weak one and
    // upgraded it on every poll and on drop. The driver (and with it the ring) lives until the
    // last operation is dropped; no cycle keeps it: the driver holds an operation's waker and,
    // once it is dropped in flight, its data, never the `Op` itself, and the executors drop
    // their tasks' futures (and so their operations) when they shut down.
    driver: driver::Handle,

    // ringd patch: the index and the data apart from the handle, so that the driver can be
    // borrowed through the handle while it works on them.
    state: OpState<T>,

    _cqe_type: PhantomData<CqeType>,
}

/// ringd patch: an operation's slot in the driver and its data, until its completion is taken
/// or it is dropped.
pub(crate) struct OpState<T: 'static> {
    // Operation index in the slab
    index: usize,

    // Per-operation data
    data: Option<T>,
}

/// A Marker for Ops which expect only a single completion event
pub(crate) struct SingleCQE;

/// A Marker for Operations will process multiple completion events,
/// which combined resolve to a single Future value
pub(crate) struct MultiCQEFuture;

pub(crate) trait Completable {
    type Output;
    /// `complete` will be called for cqe's do not have the `more` flag set
    fn complete(self, cqe: CqeResult) -> Self::Output;
}

pub(crate) trait Updateable: Completable {
    /// Update will be called for cqe's which have the `more` flag set.
    /// The Op should update any internal state as required.
    fn update(&mut self, cqe: CqeResult);
}

#[allow(dead_code)]
pub(crate) enum Lifecycle {
    /// The operation has been submitted to uring and is currently in-flight
    Submitted,

    /// The submitter is waiting for the completion of the operation
    Waiting(Waker),

    /// The submitter no longer has interest in the operation result. The state
    /// must be passed to the driver and held until the operation completes.
    Ignored(Box<dyn std::any::Any>),

    /// The operation has completed with a single cqe result
    Completed(cqueue::Entry),

    /// One or more completion results have been recieved
    /// This holds the indices uniquely identifying the list within the slab
    CompletionList(SlabListIndices),

    /// ringd patch: a detached write in flight (`crate::io::DetachedWrite`): its data is at
    /// `data` in the driver's table of detached writes; `gen` tells it from the slot's later
    /// operations.
    Detached { data: u32, gen: std::num::NonZeroU32 },

    /// ringd patch: a detached write that failed (`errno`; 0: it wrote nothing), kept until its
    /// `DetachedWrite` is finished or dropped. The kernel is done with it.
    DetachedFailed { gen: std::num::NonZeroU32, errno: i32 },
}

/// A single CQE entry
pub(crate) struct CqeResult {
    pub(crate) result: io::Result<u32>,
    pub(crate) flags: u32,
}

impl From<cqueue::Entry> for CqeResult {
    fn from(cqe: cqueue::Entry) -> Self {
        let res = cqe.result();
        let flags = cqe.flags();
        let result = if res >= 0 {
            Ok(res as u32)
        } else {
            Err(io::Error::from_raw_os_error(-res))
        };
        CqeResult { result, flags }
    }
}

impl<T, CqeType> Op<T, CqeType> {
    /// Create a new operation
    // ringd patch: takes the strong handle, the index and the data go into `OpState`.
    pub(super) fn new(driver: driver::Handle, data: T, index: usize) -> Self {
        Op {
            driver,
            state: OpState {
                index,
                data: Some(data),
            },
            _cqe_type: PhantomData,
        }
    }

    /// ringd patch: whether the completion was taken (the operation has left the driver, whose
    /// slot may be another operation's by now: it must not be polled again).
    #[inline]
    pub(crate) fn is_complete(&self) -> bool {
        self.state.data.is_none()
    }

    // ringd patch: the driver works on `OpState`; this is left for its unit tests.
    #[allow(dead_code)]
    pub(super) fn index(&self) -> usize {
        self.state.index
    }
}

impl<T: 'static> OpState<T> {
    pub(super) fn index(&self) -> usize {
        self.index
    }

    pub(super) fn take_data(&mut self) -> Option<T> {
        self.data.take()
    }

    pub(super) fn insert_data(&mut self, data: T) {
        self.data = Some(data);
    }
}

impl<T> Future for Op<T, SingleCQE>
where
    T: Unpin + 'static + Completable,
{
    type Output = T::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // ringd patch: the strong handle is used as it is (see `Op::driver`).
        let this = self.get_mut();
        this.driver.poll_op(&mut this.state, cx)
    }
}

impl<T> Future for Op<T, MultiCQEFuture>
where
    T: Unpin + 'static + Completable + Updateable,
{
    type Output = T::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // ringd patch: the strong handle is used as it is (see `Op::driver`).
        let this = self.get_mut();
        this.driver.poll_multishot_op(&mut this.state, cx)
    }
}

/// The operation may have pending cqe's not yet processed.
/// To manage this, the lifecycle associated with the Op may if required
/// be placed in LifeCycle::Ignored state to handle cqe's which arrive after
/// the Op has been dropped.
impl<T, CqeType> Drop for Op<T, CqeType> {
    fn drop(&mut self) {
        // ringd patch: an operation whose completion was taken (its data went with it) has
        // left the driver already, so there is nothing to remove: its slot may even be another
        // operation's by now.
        if self.state.data.is_none() {
            return;
        }
        // ringd patch: the strong handle keeps the driver alive (see `Op::driver`).
        self.driver.remove_op(&mut self.state)
    }
}

impl Lifecycle {
    pub(crate) fn complete(
        &mut self,
        completions: &mut Slab<Completion>,
        cqe: cqueue::Entry,
    ) -> bool {
        use std::mem;

        match mem::replace(self, Lifecycle::Submitted) {
            x @ Lifecycle::Submitted | x @ Lifecycle::Waiting(..) => {
                if io_uring::cqueue::more(cqe.flags()) {
                    let mut list = SlabListIndices::new().into_list(completions);
                    list.push(cqe.into());
                    *self = Lifecycle::CompletionList(list.into_indices());
                } else {
                    *self = Lifecycle::Completed(cqe);
                }
                if let Lifecycle::Waiting(waker) = x {
                    // waker is woken to notify cqe has arrived
                    // Note: Maybe defer calling until cqe with !`more` flag set?
                    waker.wake();
                }
                false
            }

            lifecycle @ Lifecycle::Ignored(..) => {
                // ringd patch: the dropped operation's provided buffer goes back to its ring.
                if let Lifecycle::Ignored(data) = &lifecycle {
                    crate::io::recycle_unclaimed(&**data, cqe.flags());
                }
                if io_uring::cqueue::more(cqe.flags()) {
                    // Not yet complete. The Op has been dropped, so we can drop the CQE
                    // but we must keep the lifecycle alive until no more CQE's expected
                    *self = lifecycle;
                    false
                } else {
                    // This Op has completed, we can drop
                    true
                }
            }

            // ringd patch: a detached write's completion is dispatched by `Ops::complete`.
            Lifecycle::Detached { .. } | Lifecycle::DetachedFailed { .. } => {
                unreachable!("a detached write completed as an operation")
            }

            Lifecycle::Completed(..) => {
                // Completions with more flag set go straight onto the slab,
                // and are handled in Lifecycle::CompletionList.
                // To construct Lifecycle::Completed, a CQE with `more` flag unset was received
                // we shouldn't be receiving another.
                unreachable!("invalid operation state")
            }

            Lifecycle::CompletionList(indices) => {
                // A completion list may contain CQE's with and without `more` flag set.
                // Only the final one may have `more` unset, although we don't check.
                let mut list = indices.into_list(completions);
                list.push(cqe.into());
                *self = Lifecycle::CompletionList(list.into_indices());
                false
            }
        }
    }
}
