//! RFC 9113 conformance: httpwg (`cargo install httpwg-cli --version 0.2.5 --locked`, binary
//! `httpwg`) runs its 107 HTTP/2 cases against the real `ringd` serving h2c with prior knowledge.
//! Every case must pass but the one listed in [`NOT_APPLICABLE`], which must not (a stale entry
//! fails the test too). A missing `httpwg` fails the test: it is never skipped.

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use common::*;

/// The cases httpwg-cli 0.2.5 runs.
const CASES: usize = 107;

/// Cases whose expectation is not RFC 9113's, with why.
const NOT_APPLICABLE: &[(&str, &str)] = &[(
    "RFC 9113 :: 8. expressing http semantics in http2 :: sends headers frame with te trailers",
    "the case asserts that `POST /` with `te: trailers` is answered 200, but the built-in site \
     serves `/` to GET and HEAD only, so ringd answers 405 with `Allow`; what RFC 9113 §8.2.2 \
     asks (`te: trailers` is allowed: the request is answered, not reset as malformed) holds and \
     is checked on its own below",
)];

/// Each frame is waited for this long: far more than ringd needs on a busy 2-core machine, so
/// that no case fails on time (none passes by timing out).
const FRAME_TIMEOUT_MS: &str = "5000";

fn require_httpwg() {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("httpwg").is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`httpwg` (the RFC 9113 conformance suite) is not on PATH: run \
         `cargo install httpwg-cli --version 0.2.5 --locked` (see .ci/run)"
    );
}

/// Runs httpwg against `server` (only the cases whose name contains `filter`, if given) and
/// returns its output, without ANSI colours.
fn httpwg(server: &Server, filter: Option<&str>) -> String {
    let mut cmd = Command::new("httpwg");
    cmd.args([
        "--frame-timeout",
        FRAME_TIMEOUT_MS,
        "-v",
        "-a",
        &server.addr.to_string(),
    ]);
    if let Some(filter) = filter {
        cmd.args(["-f", filter]);
    }
    let out = run_bounded(&mut cmd, Duration::from_secs(600));
    // httpwg reports on stderr; its exit status only says whether every case passed.
    let text = format!("{}{}", out.stdout_str(), out.stderr);
    strip_ansi(&text)
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// What of httpwg's output explains a failure: the cases that failed and why, the panics of its
/// checks (with the case they were in), its summary.
fn report(text: &str) -> String {
    const KEEP: &[&str] = &[
        "Test failed",
        "panicked",
        "Message",
        "Expected",
        "Timed out",
        "Wanted",
        "left:",
        "right:",
        "httpwg::rfc9113::",
        "Passed ",
    ];
    text.lines()
        .filter(|l| KEEP.iter().any(|k| l.contains(k)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The case names after `prefix` on the output's lines.
fn cases(text: &str, prefix: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.split_once(prefix).map(|(_, name)| name.trim().to_owned()))
        .collect()
}

#[test]
fn httpwg_rfc9113_cases_pass_on_h2c() {
    require_httpwg();
    let server = Server::start(&["--h2c", "true"]);
    let text = httpwg(&server, None);

    // A case that panics (as httpwg's own checks do) prints neither "passed" nor "failed": the
    // cases run are the ones announced, and every one not announced as passed did not pass.
    let run = cases(&text, "Running test: ");
    let passed = cases(&text, "Test passed: ");
    assert_eq!(
        run.len(),
        CASES,
        "httpwg ran {} cases, not httpwg-cli 0.2.5's {CASES}: install that version \
         (`cargo install httpwg-cli --version 0.2.5 --locked`) or review this test's lists\n{}",
        run.len(),
        report(&text)
    );
    let not_passed: BTreeSet<&str> = run
        .iter()
        .filter(|c| !passed.contains(*c))
        .map(String::as_str)
        .collect();
    let expected: BTreeSet<&str> = NOT_APPLICABLE.iter().map(|(name, _)| *name).collect();
    assert!(
        expected.iter().all(|c| run.contains(*c)),
        "a case listed as not applicable was not run (renamed?): {expected:?}"
    );
    let failing: Vec<&&str> = not_passed.difference(&expected).collect();
    let stale: Vec<&&str> = expected.difference(&not_passed).collect();
    assert!(
        failing.is_empty() && stale.is_empty(),
        "httpwg cases that did not pass: {failing:#?}\nlisted as not applicable but passed: {stale:#?}\n\n{}",
        report(&text)
    );
    server.assert_no_panic();
}

/// The one case not applicable still shows what RFC 9113 §8.2.2 asks: a request with
/// `te: trailers` gets a response (405 here), not a reset.
#[test]
fn a_request_with_te_trailers_is_answered_not_reset() {
    require_httpwg();
    let server = Server::start(&["--h2c", "true"]);
    let text = httpwg(&server, Some("sends headers frame with te trailers"));
    assert_eq!(
        cases(&text, "Running test: ").len(),
        1,
        "the filter matched other than the one case:\n{}",
        report(&text)
    );
    // The case's only assertion compares the response's status with 200.
    assert!(
        text.contains("left: 405") && text.contains("right: 200"),
        "expected the case to get a 405 response (and fail only on wanting 200):\n{}",
        report(&text)
    );
    server.assert_no_panic();
}
