//! Listening sockets, built with socket2 because tokio-uring's own `bind` hard-codes a backlog of
//! 1024 and sets no `SO_REUSEPORT`.

use std::io;
use std::net::{SocketAddr, TcpListener};

use socket2::{Domain, Protocol, Socket, Type};

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

/// Binds `count` listeners to `addr` with `SO_REUSEPORT`, one per worker, so the kernel spreads
/// new connections across cores without a shared accept queue.
///
/// Port 0 is resolved by the first bind; the others bind the port it got, which is what makes
/// `--listen 127.0.0.1:0` usable with several workers.
pub(crate) fn bind_group(addr: SocketAddr, count: usize, backlog: u32) -> Result<Vec<TcpListener>, ServerError> {
    let first = bind_one(addr, backlog).map_err(|e| bind_error(addr, e))?;
    let actual = first.local_addr().map_err(|e| bind_error(addr, e))?;
    let mut group = Vec::with_capacity(count);
    group.push(first);
    for _ in 1..count {
        group.push(bind_one(actual, backlog).map_err(|e| bind_error(actual, e))?);
    }
    Ok(group)
}

fn bind_one(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM.cloexec(), Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    // Accepted sockets inherit TCP_NODELAY from the listener on Linux: one setsockopt here saves
    // one per connection.
    socket.set_nodelay(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(backlog.min(i32::MAX as u32) as i32)?;
    Ok(socket.into())
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

    #[test]
    fn port_zero_group_shares_one_port() {
        let group = bind_group("127.0.0.1:0".parse().unwrap(), 3, 128).unwrap();
        let ports: Vec<u16> = group.iter().map(|l| l.local_addr().unwrap().port()).collect();
        assert_ne!(ports[0], 0);
        assert!(ports.iter().all(|p| *p == ports[0]), "{ports:?}");
    }

    #[test]
    fn port_held_without_reuseport_is_addr_in_use() {
        let holder = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = holder.local_addr().unwrap();
        match bind_group(addr, 1, 128) {
            Err(ServerError::AddrInUse { addr: a }) => assert_eq!(a, addr),
            other => panic!("expected AddrInUse, got {other:?}"),
        }
    }
}
