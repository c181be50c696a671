mod accept;

mod close;

mod connect;

mod fallocate;

mod files_update;

mod fsync;

mod mkdir_at;

mod noop;
pub(crate) use noop::NoOp;

mod open;

mod read;

mod read_fixed;

mod readv;

mod recv_from;

mod recv_provided;
pub(crate) use recv_provided::recycle_unclaimed;
pub use recv_provided::ProvidedRecv;

mod recvmsg;

mod rename_at;

mod send_to;

mod send_zc;

mod sendmsg;

mod sendmsg_zc;

mod shared_fd;
pub(crate) use shared_fd::{on_file, SharedFd};

mod socket;
pub(crate) use socket::Socket;

mod splice;
pub(crate) use splice::Direction;

mod poll;

mod statx;

mod unlink_at;

mod util;
pub(crate) use util::cstr;

pub(crate) mod write;

mod write_fixed;

// ringd patch: writes of a fixed buffer whose completion wakes no one.
mod write_fixed_detached;
pub(crate) use write_fixed_detached::{DetachedData, Gather};
pub use write_fixed_detached::{DetachedWrite, Finish};

mod writev;

mod writev_all;
pub(crate) use writev_all::writev_at_all;
