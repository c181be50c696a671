//! systemd socket activation: listening sockets passed as descriptors 3, 4, ... with
//! `LISTEN_PID`/`LISTEN_FDS` (sd_listen_fds(3)). The service manager holds the port while ringd
//! restarts, so connections wait in its queue instead of being refused.

use std::net::TcpListener;
use std::os::fd::{FromRawFd, OwnedFd};

use anyhow::{bail, Context, Result};

/// The first descriptor systemd passes.
const SD_LISTEN_FDS_START: i32 = 3;

/// Takes the listening sockets systemd passed to this process, if any.
pub fn inherited_listeners() -> Result<Vec<TcpListener>> {
    let for_us = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        .is_some_and(|pid| pid == std::process::id());
    if !for_us {
        return Ok(Vec::new());
    }
    let count: i32 = std::env::var("LISTEN_FDS")
        .context("LISTEN_PID is set but LISTEN_FDS is not")?
        .parse()
        .context("LISTEN_FDS is not a number")?;
    // Not for the children of this process (there are none today, but the protocol says so).
    std::env::remove_var("LISTEN_PID");
    std::env::remove_var("LISTEN_FDS");
    std::env::remove_var("LISTEN_FDNAMES");
    let mut listeners = Vec::new();
    for fd in SD_LISTEN_FDS_START..SD_LISTEN_FDS_START + count {
        #[allow(unsafe_code)]
        // SAFETY: by the socket activation protocol (LISTEN_PID is this process) descriptors
        // 3..3+LISTEN_FDS are open and were handed to this process; nothing else in it owns them,
        // and this loop takes each exactly once, so the OwnedFd is their only owner.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        let socket = socket2::Socket::from(owned);
        if socket.r#type().ok() != Some(socket2::Type::STREAM) || !socket.is_listener().unwrap_or(false) {
            bail!("descriptor {fd} from socket activation is not a listening TCP socket: use ListenStream= in ringd.socket");
        }
        socket
            .set_cloexec(true)
            .context("setting FD_CLOEXEC on an inherited socket")?;
        listeners.push(socket.into());
    }
    Ok(listeners)
}
