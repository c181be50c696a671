//! Listening sockets, built with socket2 because tokio-uring's own `bind` hard-codes a backlog of
//! 1024 and sets no `SO_REUSEPORT`.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use super::sys;
use crate::error::ServerError;

/// What a listening socket's connections speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListenerKind {
    /// HTTP.
    Plain,
    /// HTTPS (the server has a TLS configuration).
    Tls,
    /// HTTP that answers every request with a redirect to `https://`.
    Redirect,
}

/// How each listening socket is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ListenOptions {
    /// The listen backlog (the kernel caps it at `net.core.somaxconn`).
    pub backlog: u32,
    /// Accept a connection only once its first bytes have arrived, waiting at most this long
    /// (`TCP_DEFER_ACCEPT`, nginx `listen ... deferred`); `None`: accept on the handshake.
    pub defer_accept: Option<Duration>,
}

/// Binds `count` listeners to `addr` with `SO_REUSEPORT`, one per worker, so the kernel spreads
/// new connections across cores without a shared accept queue.
///
/// Port 0 is resolved by the first bind; the others bind the port it got, which is what makes
/// `--listen 127.0.0.1:0` usable with several workers.
pub(crate) fn bind_group(addr: SocketAddr, count: usize, opts: ListenOptions) -> Result<Vec<TcpListener>, ServerError> {
    let first = bind_one(addr, opts).map_err(|e| bind_error(addr, e))?;
    let actual = first.local_addr().map_err(|e| bind_error(addr, e))?;
    let mut group = Vec::with_capacity(count);
    group.push(first);
    for _ in 1..count {
        group.push(bind_one(actual, opts).map_err(|e| bind_error(actual, e))?);
    }
    Ok(group)
}

fn bind_one(addr: SocketAddr, opts: ListenOptions) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM.cloexec(), Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    // Accepted sockets inherit TCP_NODELAY from the listener on Linux: one setsockopt here saves
    // one per connection.
    socket.set_nodelay(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    if let Some(wait) = opts.defer_accept {
        set_defer_accept(&socket, wait)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(opts.backlog.min(i32::MAX as u32) as i32)?;
    Ok(socket.into())
}

/// Sets `TCP_DEFER_ACCEPT` to `wait` in whole seconds (at least one). The kernel then completes
/// an accept when the connection's first bytes arrive, so the worker's accept and its first
/// receive happen in one wake-up, and the receive finds the request already there. A client
/// that sends nothing stays in the kernel (as a half-open connection it answers) until `wait`
/// has passed. Neither socket2 nor rustix has this option, hence the raw call (`crate::io::sys`).
fn set_defer_accept(socket: &Socket, wait: Duration) -> io::Result<()> {
    let secs = libc::c_int::try_from(wait.as_secs().max(1)).unwrap_or(libc::c_int::MAX);
    sys::set_defer_accept(socket, secs)
}

fn bind_error(addr: SocketAddr, e: io::Error) -> ServerError {
    match e.kind() {
        io::ErrorKind::AddrInUse => ServerError::AddrInUse { addr },
        io::ErrorKind::PermissionDenied => ServerError::BindPermission { addr },
        _ => ServerError::Listen { addr, cause: e },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: ListenOptions = ListenOptions {
        backlog: 128,
        defer_accept: None,
    };

    #[test]
    fn port_zero_group_shares_one_port() {
        let group = bind_group("127.0.0.1:0".parse().unwrap(), 3, PLAIN).unwrap();
        let ports: Vec<u16> = group.iter().map(|l| l.local_addr().unwrap().port()).collect();
        assert_ne!(ports[0], 0);
        assert!(ports.iter().all(|p| *p == ports[0]), "{ports:?}");
    }

    #[test]
    fn port_held_without_reuseport_is_addr_in_use() {
        let holder = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = holder.local_addr().unwrap();
        match bind_group(addr, 1, PLAIN) {
            Err(ServerError::AddrInUse { addr: a }) => assert_eq!(a, addr),
            other => panic!("expected AddrInUse, got {other:?}"),
        }
    }

    #[test]
    fn defer_accept_is_set_on_every_listener_of_a_group() {
        let opts = ListenOptions {
            defer_accept: Some(Duration::from_secs(60)),
            ..PLAIN
        };
        let group = bind_group("127.0.0.1:0".parse().unwrap(), 2, opts).unwrap();
        for l in &group {
            // The kernel keeps the deferral as a count of SYN-ACK retransmissions and reports it
            // back in seconds, rounded up to the end of that retransmission.
            let secs = sys::defer_accept(l).unwrap();
            assert!(secs >= 60, "{secs}");
        }
        let plain = bind_group("127.0.0.1:0".parse().unwrap(), 1, PLAIN).unwrap();
        assert_eq!(sys::defer_accept(&plain[0]).unwrap(), 0);
    }
}
