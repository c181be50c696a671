//! Loading certificates and keys from PEM files into a rustls `ServerConfig`: one default
//! certificate plus any number chosen by server name (SNI), TLS 1.3 and 1.2 with the `ring`
//! provider's suites (all AEAD, all forward-secret), `http/1.1` by ALPN, and session resumption
//! whose keys outlive a reload.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ProducesTickets, ResolvesServerCert, StoresServerSessions};
use rustls::sign::CertifiedKey;

use super::validity;

/// A certificate chain (leaf first) and its private key, as PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFiles {
    /// PEM certificates: the server's own first, then its intermediates.
    pub cert: PathBuf,
    /// A PEM private key: PKCS#8 (`PRIVATE KEY`), RSA (`RSA PRIVATE KEY`) or EC
    /// (`EC PRIVATE KEY`), unencrypted.
    pub key: PathBuf,
}

/// A certificate for the clients that ask for one of `names` (SNI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SniCert {
    /// Server names, lower case; `*.example.org` matches one label below `example.org`.
    pub names: Vec<String>,
    /// The certificate and key.
    pub files: CertFiles,
}

/// TLS on every `listen` address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// Served when the client names no server, or one no `sni` entry has.
    pub default: CertFiles,
    /// Certificates chosen by server name.
    pub sni: Vec<SniCert>,
}

impl TlsConfig {
    /// A configuration with one certificate for every client.
    pub fn single(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> TlsConfig {
        TlsConfig {
            default: CertFiles {
                cert: cert.into(),
                key: key.into(),
            },
            sni: Vec::new(),
        }
    }

    /// Checks the server names (the files are checked when loaded).
    pub(crate) fn validate(&self) -> Result<(), String> {
        let mut seen: Vec<&str> = Vec::new();
        for entry in &self.sni {
            if entry.names.is_empty() {
                return Err(format!("the entry for {} names no server", entry.files.cert.display()));
            }
            for name in &entry.names {
                let bare = name.strip_prefix("*.").unwrap_or(name);
                let valid = !bare.is_empty()
                    && bare.len() <= 253
                    && bare.split('.').all(|label| {
                        !label.is_empty()
                            && label.len() <= 63
                            && label
                                .bytes()
                                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    });
                if !valid {
                    return Err(format!(
                        "{name:?} is not a lower-case DNS name (or *.name for one label below it)"
                    ));
                }
                if seen.contains(&name.as_str()) {
                    return Err(format!("{name} is given twice"));
                }
                seen.push(name);
            }
        }
        Ok(())
    }
}

/// Why certificates could not be loaded. Every message names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The file cannot be read.
    #[error("cannot read the TLS {what} {path}: {cause}")]
    Read {
        /// "certificate" or "private key".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What the kernel said.
        cause: io::Error,
    },
    /// The file is not PEM, or a PEM section is damaged.
    #[error("the TLS {what} {path} is not valid PEM: {reason}")]
    Pem {
        /// "certificate" or "private key".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What the PEM reader said.
        reason: String,
    },
    /// No `CERTIFICATE` section.
    #[error("the TLS certificate {path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)")]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// No private key section ringd can use.
    #[error("the TLS private key {path} holds no unencrypted PEM private key (PKCS#8, RSA or EC); decrypt an encrypted key first (openssl pkey)")]
    NoKey {
        /// The file.
        path: PathBuf,
    },
    /// The key is of a type or curve the crypto provider does not support.
    #[error("the TLS private key {path} is not usable: {reason}")]
    UnsupportedKey {
        /// The file.
        path: PathBuf,
        /// What rustls said.
        reason: String,
    },
    /// The first certificate does not parse as X.509.
    #[error("the TLS certificate {path} is not a valid X.509 certificate: {reason}")]
    BadCertificate {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The server's certificate is past its `notAfter`.
    #[error("the TLS certificate {path} expired on {not_after}: renew it")]
    Expired {
        /// The file.
        path: PathBuf,
        /// When, as `YYYY-MM-DD HH:MM:SS UTC`.
        not_after: String,
    },
    /// The key is not the certificate's.
    #[error("the TLS private key {key} does not match the certificate {cert}")]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// rustls refused the configuration (should not happen with the built-in provider).
    #[error("cannot configure TLS: {0}")]
    Rustls(String),
}

/// What lets a returning client skip the full handshake, kept across reloads (a reload must not
/// invalidate the tickets and sessions of every client): TLS 1.3 and 1.2 tickets encrypted with
/// keys that rotate every 6 hours (rustls' `Ticketer`), and a session-id cache for TLS 1.2
/// clients without ticket support. Shared by every worker: `SO_REUSEPORT` sends a returning
/// client's new connection to any of them.
#[derive(Clone)]
pub(crate) struct Resumption {
    ticketer: Arc<dyn ProducesTickets>,
    cache: Arc<dyn StoresServerSessions>,
}

impl Resumption {
    pub(crate) fn new() -> Result<Resumption, TlsError> {
        Ok(Resumption {
            ticketer: rustls::crypto::ring::Ticketer::new().map_err(|e| TlsError::Rustls(e.to_string()))?,
            cache: rustls::server::ServerSessionMemoryCache::new(4096),
        })
    }
}

/// Loads every certificate of `config` and checks it (readable, PEM, key matches, not expired),
/// without building a server: what `ringd check` does.
pub fn check(config: &TlsConfig) -> Result<(), TlsError> {
    load_resolver(config, &provider()).map(|_| ())
}

/// The rustls configuration for `config`; ALPN offers `h2` first when `h2` is set.
pub(crate) fn build(
    config: &TlsConfig,
    resumption: &Resumption,
    h2: bool,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = Arc::new(provider());
    let resolver = load_resolver(config, &provider)?;
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| TlsError::Rustls(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    server.alpn_protocols = if h2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    // The server's preference (its suites are listed strongest first), as scanners expect.
    server.ignore_client_order = true;
    server.ticketer = resumption.ticketer.clone();
    server.session_storage = resumption.cache.clone();
    Ok(Arc::new(server))
}

/// `ring` rather than aws-lc-rs: see DESIGN.md ("TLS"). Its suites are all AEAD with ECDHE.
fn provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

fn load_resolver(config: &TlsConfig, provider: &CryptoProvider) -> Result<SniResolver, TlsError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let default = load_pair(&config.default, provider, now)?;
    let mut names = HashMap::new();
    for entry in &config.sni {
        let key = load_pair(&entry.files, provider, now)?;
        for name in &entry.names {
            names.insert(name.to_ascii_lowercase(), key.clone());
        }
    }
    Ok(SniResolver { default, names })
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|cause| TlsError::Read {
        what,
        path: path.to_owned(),
        cause,
    })
}

fn load_pair(files: &CertFiles, provider: &CryptoProvider, now: i64) -> Result<Arc<CertifiedKey>, TlsError> {
    let pem_error = |what, path: &Path, e: pem::Error| TlsError::Pem {
        what,
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let cert_pem = read(&files.cert, "certificate")?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error("certificate", &files.cert, e))?;
    let Some(leaf) = chain.first() else {
        return Err(TlsError::NoCertificate {
            path: files.cert.clone(),
        });
    };
    let not_after = validity::not_after(leaf).ok_or_else(|| TlsError::BadCertificate {
        path: files.cert.clone(),
        reason: "its validity period cannot be read".to_owned(),
    })?;
    if not_after.unix < now {
        return Err(TlsError::Expired {
            path: files.cert.clone(),
            not_after: not_after.to_string(),
        });
    }
    let key_pem = read(&files.key, "private key")?;
    let key = match PrivateKeyDer::from_pem_slice(&key_pem) {
        Ok(key) => key,
        Err(pem::Error::NoItemsFound) => {
            return Err(TlsError::NoKey {
                path: files.key.clone(),
            })
        }
        Err(e) => return Err(pem_error("private key", &files.key, e)),
    };
    let signer = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| TlsError::UnsupportedKey {
            path: files.key.clone(),
            reason: e.to_string(),
        })?;
    let certified = CertifiedKey::new(chain, signer);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(Arc::new(certified)),
        Err(rustls::Error::InconsistentKeys(_)) => Err(TlsError::Mismatch {
            cert: files.cert.clone(),
            key: files.key.clone(),
        }),
        Err(e) => Err(TlsError::BadCertificate {
            path: files.cert.clone(),
            reason: e.to_string(),
        }),
    }
}

/// Chooses the certificate by the server name the client sent: an exact name first, then a
/// wildcard one label up, then the default.
#[derive(Debug)]
struct SniResolver {
    default: Arc<CertifiedKey>,
    names: HashMap<String, Arc<CertifiedKey>>,
}

impl SniResolver {
    fn find(&self, name: Option<&str>) -> Arc<CertifiedKey> {
        let Some(name) = name else {
            return self.default.clone();
        };
        let name = name.to_ascii_lowercase();
        if let Some(key) = self.names.get(&name) {
            return key.clone();
        }
        if let Some((_, parent)) = name.split_once('.') {
            if let Some(key) = self.names.get(&format!("*.{parent}")) {
                return key.clone();
            }
        }
        self.default.clone()
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.find(hello.server_name()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn testdata(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/tls/testdata")
            .join(name)
    }

    #[test]
    fn expired_certificate_is_refused_with_its_date() {
        let config = TlsConfig::single(testdata("expired-cert.pem"), testdata("expired-key.pem"));
        let e = check(&config).unwrap_err();
        assert!(matches!(e, TlsError::Expired { .. }), "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains("expired-cert.pem") && msg.contains("2021-01-02 03:04:05 UTC"),
            "{msg}"
        );
    }

    #[test]
    fn missing_and_wrong_files_name_the_file() {
        let e = check(&TlsConfig::single("/nonexistent/c.pem", testdata("expired-key.pem"))).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/c.pem"), "{e}");
        // A key where the certificate should be: no certificate in it.
        let e = check(&TlsConfig::single(
            testdata("expired-key.pem"),
            testdata("expired-key.pem"),
        ))
        .unwrap_err();
        assert!(matches!(e, TlsError::NoCertificate { .. }), "{e}");
        let e = check(&TlsConfig::single(testdata("README.md"), testdata("expired-key.pem"))).unwrap_err();
        assert!(matches!(e, TlsError::NoCertificate { .. }), "{e}");
    }

    #[test]
    fn server_names_are_checked() {
        let mut config = TlsConfig::single("c", "k");
        let entry = |names: &[&str]| SniCert {
            names: names.iter().map(|n| n.to_string()).collect(),
            files: CertFiles {
                cert: "c".into(),
                key: "k".into(),
            },
        };
        config.sni = vec![entry(&["a.example", "*.b.example", "x-1.example"])];
        config.validate().unwrap();
        for bad in [
            &[][..],
            &["A.example"],
            &["a..example"],
            &["*"],
            &["a.*.example"],
            &["a b"],
        ] {
            config.sni = vec![entry(bad)];
            assert!(config.validate().is_err(), "{bad:?}");
        }
        config.sni = vec![entry(&["a.example"]), entry(&["a.example"])];
        assert!(config.validate().is_err());
    }
}
