//! Copies may_minihttp's published `techempower_no_db` example out of the crate's source, as
//! cargo unpacked it from the registry, into `$OUT_DIR`, where `src/main.rs` includes it. Two
//! textual changes, each required to match exactly once (a newer example fails the build here,
//! rather than being measured unchanged):
//!
//! - its `fn main` becomes `fn example_main`, so that `src/main.rs` sets the number of may
//!   workers first (the example leaves it at may's default, one per CPU);
//! - its hard-coded listen address `"0.0.0.0:8081"` becomes `listen_addr()`, the address the
//!   harness gives on the command line.
//!
//! The source is looked for in `$MAY_MINIHTTP_SRC` if set, else in
//! `$CARGO_HOME/registry/src/*/may_minihttp-VERSION/` (`$CARGO_HOME` defaults to `~/.cargo`).

use std::path::PathBuf;

const VERSION: &str = "0.1.11";
const EXAMPLE: &str = "examples/techempower_no_db.rs";
const PATCHES: [(&str, &str); 2] = [
    ("fn main() {", "fn example_main() {"),
    (
        "http_server.start(\"0.0.0.0:8081\")",
        "http_server.start(listen_addr())",
    ),
];

fn candidates() -> Vec<PathBuf> {
    if let Some(dir) = std::env::var_os("MAY_MINIHTTP_SRC") {
        return vec![PathBuf::from(dir)];
    }
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .expect("neither CARGO_HOME nor HOME is set");
    let registry = cargo_home.join("registry").join("src");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&registry)
        .map(|dirs| {
            dirs.filter_map(|d| d.ok())
                .map(|d| d.path().join(format!("may_minihttp-{VERSION}")))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=MAY_MINIHTTP_SRC");
    let tried = candidates();
    let example = tried
        .iter()
        .map(|dir| dir.join(EXAMPLE))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "may_minihttp {VERSION}'s {EXAMPLE} not found in {tried:?}: set MAY_MINIHTTP_SRC to the \
                 crate's unpacked source directory (vendored sources, another CARGO_HOME)"
            )
        });
    println!("cargo:rerun-if-changed={}", example.display());
    let mut source = std::fs::read_to_string(&example).expect("reading the example");
    for (from, to) in PATCHES {
        let n = source.matches(from).count();
        assert_eq!(n, 1, "{}: {from:?} occurs {n} times, expected once", example.display());
        source = source.replace(from, to);
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("techempower_no_db.rs");
    let header = format!(
        "// may_minihttp {VERSION}'s {EXAMPLE}, copied from {} by build.rs with its two changes.\n\
         // Copyright (c) 2018 Xudong Huang; MIT or Apache-2.0, as may_minihttp.\n",
        example.display()
    );
    std::fs::write(&out, header + &source).expect("writing the example into OUT_DIR");
}
