//! HTTPS: rustls on ringd's own io_uring reads and writes (no blocking socket, no second runtime).

/// Certificates and keys from PEM files, SNI, resumption: the rustls `ServerConfig`.
mod config;
/// One connection's record layer on byte buffers.
pub(crate) mod session;
/// A certificate's expiry date, read from its DER.
mod validity;

pub(crate) use config::{build, Resumption};
pub use config::{check, CertFiles, SniCert, TlsConfig, TlsError};
