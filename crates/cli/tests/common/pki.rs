//! A throw-away certificate authority for the TLS tests, made with the `openssl` command: a CA,
//! and server certificates it signs, with keys in each PEM form ringd reads.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::{require_tool, run_bounded, TempDir};

/// The PEM form of a generated private key.
#[derive(Debug, Clone, Copy)]
pub enum KeyKind {
    /// P-256 in PKCS#8 (`PRIVATE KEY`).
    EcPkcs8,
    /// P-256 in SEC1 (`EC PRIVATE KEY`).
    EcSec1,
    /// RSA 2048 in PKCS#1 (`RSA PRIVATE KEY`).
    RsaPkcs1,
}

pub struct Pki {
    pub dir: TempDir,
    /// The CA certificate, for `curl --cacert` and friends.
    pub ca: PathBuf,
    ca_key: PathBuf,
}

/// A server certificate (leaf only) and its key.
pub struct Issued {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Issued {
    pub fn cert_str(&self) -> &str {
        self.cert.to_str().unwrap()
    }

    pub fn key_str(&self) -> &str {
        self.key.to_str().unwrap()
    }
}

fn openssl(args: &[&str]) {
    let out = run_bounded(Command::new("openssl").args(args), Duration::from_secs(60));
    out.assert_success(format_args!("openssl {args:?}"));
}

impl Pki {
    pub fn new() -> Pki {
        require_tool("openssl", "openssl");
        let dir = TempDir::new("pki");
        let ca = dir.join("ca.pem");
        let ca_key = dir.join("ca.key");
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            ca_key.to_str().unwrap(),
            "-out",
            ca.to_str().unwrap(),
            "-days",
            "30",
            "-subj",
            "/CN=ringd test CA",
        ]);
        Pki { dir, ca, ca_key }
    }

    pub fn ca_str(&self) -> &str {
        self.ca.to_str().unwrap()
    }

    /// A certificate for `names` (DNS names; "127.0.0.1" is added as an IP name), common name
    /// `names[0]`, signed by the CA, valid for 30 days, in files named after `tag`.
    pub fn issue(&self, tag: &str, names: &[&str], kind: KeyKind) -> Issued {
        self.issue_with(tag, names, kind, 30, "")
    }

    /// Like [`Pki::issue`], valid for `days`, with more `openssl x509 -extfile` lines.
    pub fn issue_with(&self, tag: &str, names: &[&str], kind: KeyKind, days: u32, extra_ext: &str) -> Issued {
        let key = self.dir.join(&format!("{tag}.key"));
        let cert = self.dir.join(&format!("{tag}.pem"));
        let csr = self.dir.join(&format!("{tag}.csr"));
        let k = key.to_str().unwrap();
        match kind {
            KeyKind::EcPkcs8 => openssl(&[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                k,
            ]),
            KeyKind::EcSec1 => openssl(&["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", k]),
            KeyKind::RsaPkcs1 => openssl(&["genrsa", "-traditional", "-out", k, "2048"]),
        }
        openssl(&[
            "req",
            "-new",
            "-key",
            k,
            "-subj",
            &format!("/CN={}", names[0]),
            "-out",
            csr.to_str().unwrap(),
        ]);
        let sans: Vec<String> = names.iter().map(|n| format!("DNS:{n}")).collect();
        let ext = self.dir.write(
            &format!("{tag}.ext"),
            format!(
                "subjectAltName={},IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n{extra_ext}",
                sans.join(",")
            )
            .as_bytes(),
        );
        openssl(&[
            "x509",
            "-req",
            "-in",
            csr.to_str().unwrap(),
            "-CA",
            self.ca.to_str().unwrap(),
            "-CAkey",
            self.ca_key.to_str().unwrap(),
            "-set_serial",
            &serial(),
            "-days",
            &days.to_string(),
            "-extfile",
            ext.to_str().unwrap(),
            "-out",
            cert.to_str().unwrap(),
        ]);
        Issued { cert, key }
    }
}

/// A unique 16-byte serial number (RFC 5280 asks for at least 64 bits of entropy; scanners
/// check).
fn serial() -> String {
    static COUNT: AtomicU64 = AtomicU64::new(1);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let mixed =
        (nanos ^ (u128::from(COUNT.fetch_add(1, Ordering::SeqCst)) << 64) ^ u128::from(std::process::id()) << 96)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835);
    // A leading 1 nibble: 16 bytes long and positive.
    format!("0x{:032x}", (mixed >> 4) | (1 << 124))
}

/// The expired certificate and key kept in ring-server's test data (expired 2021-01-02).
pub fn expired() -> Issued {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ring-server/src/tls/testdata");
    Issued {
        cert: dir.join("expired-cert.pem"),
        key: dir.join("expired-key.pem"),
    }
}
