//! Shared helpers for ringd's end-to-end tests.
//!
//! Every test starts the real `ringd` binary on `127.0.0.1:0`, reads the
//! actual address from the `listening on 127.0.0.1:PORT` line on stderr,
//! and talks to it with real clients (raw TCP, curl, python3, wrk).
//! Nothing here sleeps to "wait for" something: every wait is a bounded poll.

#![allow(dead_code)]

pub mod h2raw;
pub mod kernel;
pub mod limits;
pub mod pki;
pub mod seccomp;

mod files;
mod http;
mod process;
mod server;

pub use files::*;
pub use http::*;
pub use process::*;
pub use server::*;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Generous timeout that only turns a hang into a failure.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound for the server to start listening / to exit.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_ringd")
}

/// Where an ordinary user's PATH does not look but Debian installs daemons (nginx) and
/// administration tools.
const SBIN: [&str; 3] = ["/usr/local/sbin", "/usr/sbin", "/sbin"];

/// Fail (never skip) when an external tool is missing from PATH and the sbin directories.
pub fn require_tool(tool: &str, package: &str) {
    assert!(
        find_tool(tool).is_some(),
        "required tool `{tool}` not found on PATH or in {}: install it (e.g. `apt-get install -y {package}`)",
        SBIN.join(", ")
    );
}

/// Debian's Python, which has Debian's `python3-*` packages (another `python3` earlier on the
/// PATH, such as pyenv's, would not).
pub fn debian_python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

/// The path of `tool`: on PATH, or in an sbin directory (as `benches/compare-nginx` looks).
pub fn find_tool(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(SBIN.iter().map(PathBuf::from))
        .map(|d| d.join(tool))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}
