//! What a worker's thread runs on: its executor ([`Tasks`]), which parks in the worker's ring,
//! and the timers that executor fires ([`timer`]). Nothing here knows of HTTP or of the worker.

mod tasks;
pub(crate) mod timer;

pub(crate) use tasks::Tasks;
pub(crate) use timer::{clock_ns, turn_ns, turn_started};
