//! Boxing a future where it is built.
//!
//! `Box::pin(make())` builds the future on the stack and then copies all of its bytes into the
//! new box: the size of its largest state, hundreds of bytes for a connection's answering state,
//! although a future that has not started holds only its arguments. Allocating first lets the
//! compiler build the future in the box (measured: `benches/results/HISTORY.md`).

use std::pin::Pin;

/// `Box::pin(make())`, with the box allocated before `make` runs.
#[inline(always)]
pub(crate) fn boxed<F>(make: impl FnOnce() -> F) -> Pin<Box<F>> {
    Box::into_pin(Box::write(Box::new_uninit(), make()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_future_runs_as_it_would_unboxed() {
        let value = 7;
        let fut = boxed(|| async move { value * 6 });
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        assert_eq!(rt.block_on(fut), 42);
    }
}
