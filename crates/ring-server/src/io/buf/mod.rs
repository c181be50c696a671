//! The write side's buffers: io_uring registered fixed buffers from the worker's pool, with the
//! heap as the fallback when the pool is empty.
//!
//! A connection holds a fixed buffer only between its first response byte and the end of the
//! send that carries it: idle keep-alive connections hold none, so a small pool serves many
//! connections. Buffers are page-aligned ([`PageBuf`]) so that each pins no more locked memory
//! than its size. The pool keeps its own free list; the connection table records which buffer a
//! connection holds while it writes.

mod out;
mod page;

pub(crate) use out::OutBuf;
pub(crate) use page::{PageBuf, PAGE};
