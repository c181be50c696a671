//! testssl.sh against ringd's TLS listener: protocols, suites, the usual vulnerabilities. No
//! finding may be rated HIGH or CRITICAL, and none may say "NOT ok" or "VULNERABLE". It takes
//! about a minute (debug build, 2 cores), so it runs with the rest.

mod common;

use std::process::Command;
use std::time::Duration;

use common::pki::{KeyKind, Pki};
use common::*;

#[test]
fn testssl_finds_nothing_wrong() {
    require_tool("testssl", "testssl.sh");
    let pki = Pki::new();
    // A year, with revocation pointers, as a real certificate has: testssl rates the certificate
    // too, and a short-lived test certificate without them would be its finding, not ringd's.
    let leaf = pki.issue_with(
        "localhost",
        &["localhost"],
        KeyKind::EcPkcs8,
        365,
        "crlDistributionPoints=URI:http://crl.invalid/ca.crl\nauthorityInfoAccess=OCSP;URI:http://ocsp.invalid/\n",
    );
    let dir = TempDir::new("testssl");
    let config = format!(
        "[tls]\ncert = {:?}\nkey = {:?}\n\n[headers]\nStrict-Transport-Security = \"max-age=63072000\"\nX-Content-Type-Options = \"nosniff\"\nX-Frame-Options = \"DENY\"\nContent-Security-Policy = \"default-src 'self'\"\nReferrer-Policy = \"no-referrer\"\n",
        leaf.cert_str(),
        leaf.key_str()
    );
    let conf = dir.write("ringd.toml", config.as_bytes());
    let server = Server::start(&["--config", conf.to_str().unwrap()]);
    let json = dir.join("testssl.json");
    let out = run_bounded(
        Command::new("testssl")
            .args(["--quiet", "--color", "0", "--warnings", "off", "--ip", "127.0.0.1"])
            .args(["--add-ca", pki.ca_str(), "--jsonfile", json.to_str().unwrap()])
            .arg(format!("localhost:{}", server.port())),
        Duration::from_secs(600),
    );
    // testssl's exit status counts checks it could not complete (its TLS 1.3 ticket check races
    // `openssl s_client </dev/null` closing right after its Finished, before any server's tickets
    // arrive), so the findings are what is judged, not the status.
    let text = out.stdout_str();
    assert!(
        json.exists(),
        "testssl wrote no findings ({}):\n{text}\n{}",
        out.status,
        out.stderr
    );
    for bad in ["NOT ok", "VULNERABLE"] {
        assert!(!text.contains(bad), "testssl says {bad}:\n{text}");
    }
    let findings: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let findings = findings.as_array().expect("a JSON array of findings");
    assert!(
        findings.len() > 50,
        "too few findings: testssl did not really run:\n{text}"
    );
    let serious: Vec<String> = findings
        .iter()
        .filter(|f| matches!(f["severity"].as_str(), Some("HIGH" | "CRITICAL")))
        .map(|f| format!("{} {}: {}", f["severity"], f["id"], f["finding"]))
        .collect();
    assert!(serious.is_empty(), "{serious:#?}\n{text}");
    for (id, finding) in [
        ("TLS1_3", "offered with final"),
        ("TLS1_2", "offered"),
        ("TLS1_1", "not offered"),
        ("TLS1", "not offered"),
        ("ALPN", "http/1.1"),
    ] {
        let f = findings
            .iter()
            .find(|f| f["id"] == id)
            .unwrap_or_else(|| panic!("no {id} finding"));
        assert!(f["finding"].as_str().unwrap().starts_with(finding), "{id}: {f}");
    }
    server.assert_no_panic();
}
