//! Errors that stop the server from starting or a worker from running.
//!
//! Every message names the thing that failed and what to change, because the first reader is an
//! operator looking at `journalctl`, not a developer.

use std::io;
use std::net::SocketAddr;

use crate::config::ConfigError;

/// Why the server could not start (or a worker stopped).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// A configuration value is out of range.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A TLS certificate or key cannot be used.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// Another program (one that does not share the port with `SO_REUSEPORT`) holds the address.
    #[error("address {addr} is already in use by another program: stop it or choose another --listen address")]
    AddrInUse {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// Binding needs a privilege the process lacks (a port below 1024).
    #[error("permission denied binding {addr}: ports below 1024 need CAP_NET_BIND_SERVICE (systemd: AmbientCapabilities=CAP_NET_BIND_SERVICE) or choose a port >= 1024")]
    BindPermission {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// Any other failure to create, bind or listen on a socket.
    #[error("cannot listen on {addr}: {cause}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// What the kernel said.
        cause: io::Error,
    },
    /// A listening socket handed over by the service manager is unusable.
    #[error("an inherited listening socket (LISTEN_FDS) is unusable: {cause}")]
    Inherited {
        /// What the kernel said.
        cause: io::Error,
    },
    /// The access log cannot be opened.
    #[error("cannot open the access log {target}: {cause}; check the path and that the service user may write there (systemd: LogsDirectory=)")]
    AccessLog {
        /// The target as configured.
        target: String,
        /// What the kernel said.
        cause: io::Error,
    },
    /// `kernel.io_uring_disabled` forbids io_uring for this process.
    #[error("io_uring is disabled on this host (kernel.io_uring_disabled={value}{group}): run `sysctl -w kernel.io_uring_disabled=0` (or sysctl/apply.sh)")]
    IoUringDisabled {
        /// The sysctl's value (1 or 2).
        value: u8,
        /// A note about `kernel.io_uring_group` when the value is 1.
        group: String,
    },
    /// A seccomp filter (Docker's default profile, a systemd `SystemCallFilter=`) denies io_uring.
    #[error("io_uring_setup was denied ({cause}) by a seccomp filter: Docker's default profile and some SystemCallFilter= sets block io_uring; allow io_uring_setup, io_uring_enter and io_uring_register")]
    IoUringBlocked {
        /// What `io_uring_setup` returned.
        cause: io::Error,
    },
    /// The kernel has no io_uring.
    #[error("this kernel has no io_uring ({cause}): ringd needs Linux 5.11 or newer with CONFIG_IO_URING")]
    IoUringUnsupported {
        /// What `io_uring_setup` returned.
        cause: io::Error,
    },
    /// Creating the ring failed for another reason.
    #[error("cannot create an io_uring instance with {entries} entries: {cause}")]
    Ring {
        /// Submission queue size asked for.
        entries: u32,
        /// What the kernel said.
        cause: io::Error,
    },
    /// The ring or the fixed buffers need more locked memory than `RLIMIT_MEMLOCK` allows.
    #[error("{what} needs more locked memory than RLIMIT_MEMLOCK (memlock) allows ({limit}): raise it (systemd: LimitMEMLOCK=, shell: ulimit -l, /etc/security/limits.d) or lower buffers.count, buffers.size or ring_entries")]
    Memlock {
        /// What needed it, e.g. "registering 64 fixed buffers of 16384 bytes (1088 KiB)".
        what: String,
        /// The soft limit as `/proc/self/limits` shows it.
        limit: String,
    },
    /// Registering the fixed buffers failed for another reason.
    #[error("cannot register fixed buffers with io_uring: {cause}")]
    RegisterBuffers {
        /// What the kernel said.
        cause: io::Error,
    },
    /// The process may run on no CPU at all (an empty affinity mask cannot happen; this is the
    /// affinity query failing).
    #[error("cannot read this process's CPU affinity mask")]
    NoCores,
    /// The thread of the tokio runtime for handlers could not be started.
    #[error("cannot start the tokio thread for handlers: {cause}")]
    TokioThread {
        /// What the OS said.
        cause: io::Error,
    },
    /// A worker thread could not be spawned.
    #[error("cannot start worker thread {worker}: {cause}")]
    Spawn {
        /// Worker index.
        worker: usize,
        /// What the OS said.
        cause: io::Error,
    },
    /// A worker's eventfd, through which other threads wake its executor, cannot be made.
    #[error("worker {worker} cannot create its eventfd for wakes from other threads: {cause}; if that is too many open files, raise LimitNOFILE (shell: ulimit -n)")]
    WakeFd {
        /// Worker index.
        worker: usize,
        /// What the kernel said.
        cause: io::Error,
    },
    /// A worker died (it panicked or its runtime stopped).
    #[error("worker {worker} stopped unexpectedly: {reason}")]
    WorkerDied {
        /// Worker index.
        worker: usize,
        /// The panic message or error.
        reason: String,
    },
}
