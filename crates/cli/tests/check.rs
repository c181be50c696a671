//! `ringd check`: validates the configuration like `nginx -t` and prints it as it would run.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{bin, run_bounded, TempDir};

fn check(args: &[&str]) -> common::Output {
    run_bounded(Command::new(bin()).arg("check").args(args), Duration::from_secs(30))
}

#[test]
fn the_example_config_checks_and_prints_every_key() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/ringd.toml");
    let site = TempDir::new("check-site");
    let out = check(&[
        "--config",
        example,
        "--root",
        site.path.to_str().unwrap(),
        "--max-body",
        "5",
    ]);
    assert!(out.status.success(), "{}", out.stderr);
    let printed = out.stdout_str();
    for key in [
        "listen = [\"127.0.0.1:8080\"]",
        "workers = \"auto\"",
        "max_body = 5",
        "[buffers]",
        "drain_idle = 1",
    ] {
        assert!(printed.contains(key), "{key} missing from:\n{printed}");
    }
    assert!(out.stderr.contains("is valid"), "{}", out.stderr);
    // What it prints is itself a valid config.
    let dir = TempDir::new("check-roundtrip");
    let again = dir.write("effective.toml", printed.as_bytes());
    let out2 = check(&["--config", again.to_str().unwrap()]);
    assert!(out2.status.success(), "{}", out2.stderr);
    assert_eq!(out2.stdout_str(), printed);
}

/// On a fresh clone the shipped config's root (created by deploy/install.sh) does not exist:
/// the one error line says how to check the file anyway, and that way works.
#[test]
fn the_shipped_config_before_installing_says_how_to_check_it() {
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/ringd.toml");
    let text = std::fs::read_to_string(shipped).unwrap();
    let root = text
        .lines()
        .find_map(|l| l.strip_prefix("root = \""))
        .and_then(|r| r.strip_suffix('"'))
        .expect("a top-level root in deploy/ringd.toml");
    if std::path::Path::new(root).exists() {
        eprintln!("{root} exists here (ringd is installed): nothing to hint");
        return;
    }
    let out = check(&["--config", shipped]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    let line = out.stderr.trim();
    assert!(!line.contains('\n'), "{line}");
    assert!(line.starts_with("error: ") && line.contains(root), "{line}");
    assert!(
        line.contains(&format!("ringd check --config {shipped} --root DIR")),
        "{line}"
    );
    let site = TempDir::new("check-shipped");
    let out = check(&["--config", shipped, "--root", site.path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", out.stderr);
}

#[test]
fn a_root_that_is_not_utf8_is_an_error_not_a_panic() {
    use std::os::unix::ffi::OsStrExt;
    let dir = TempDir::new("check-utf8");
    let odd = dir.path.join(std::ffi::OsStr::from_bytes(b"site\xff"));
    std::fs::create_dir_all(&odd).unwrap();
    let out = run_bounded(
        Command::new(bin()).arg("check").arg("--root").arg(&odd),
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr.starts_with("error: the path") && out.stderr.contains("not valid UTF-8"),
        "{}",
        out.stderr
    );
}

#[test]
fn each_bad_config_fails_with_one_line_naming_the_problem() {
    let dir = TempDir::new("check-bad");
    let cases: [(&str, &str); 6] = [
        ("bogus = 1\n", "bogus"),
        ("[limits]\nmax_body = \"big\"\n", "line 2"),
        ("workers = \"many\"\n", "workers"),
        ("[buffers]\ncount = 0\n", "buffers.count"),
        ("root = \"/nonexistent-ringd-site\"\n", "/nonexistent-ringd-site"),
        ("shed = \"drop\"\n", "shed"),
    ];
    for (i, (text, needle)) in cases.iter().enumerate() {
        let file = dir.write(&format!("bad{i}.toml"), text.as_bytes());
        let out = check(&["--config", file.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{text:?} was accepted");
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{text:?}: {:?}", out.stderr);
        assert!(
            lines[0].starts_with("error: ") && lines[0].contains(needle),
            "{text:?}: {}",
            lines[0]
        );
        assert!(out.stdout.is_empty());
    }
}
