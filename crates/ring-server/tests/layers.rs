//! The crate's architecture, checked from its source: each top-level module imports only the
//! layers below it ([`LAYERS`]), and no module, at any depth, imports itself through others.
//!
//! A reference is any `crate::…` or `super::…` path outside comments (a `use` or an inline
//! path alike). A folder's `mod.rs` declaring and re-exporting its own files is its structure,
//! not an import, and is not counted.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The top-level modules of `src/`, bottom layer first. A module may import modules of its own
/// layer's lower rows only, never one of its own row or above.
const LAYERS: &[&[&str]] = &[
    // Leaves: the handler API, TLS, operators' tools, a helper.
    &["runtime"],
    &["app", "tls", "ops", "heap"],
    // Traffic control: rate and connection limits, compression (a transformation of responses).
    &["traffic"],
    // The validated configuration and its errors; static files (a handler).
    &["config", "static_files"],
    &["error"],
    // The ring, listeners, buffers, the byte stream, connection deadlines.
    &["io"],
    // A worker's per-core state.
    &["worker"],
    // Protocol-neutral request handling.
    &["dispatch"],
    // The protocols (an HTTP/1.1 connection that turns out to speak HTTP/2 is handed over).
    &["http2"],
    &["http1"],
    // Start-up, the worker threads and their loops.
    &["server"],
];

/// A module: its path below `src/` without extension (`io/buf` for `io/buf/mod.rs`).
type Node = String;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module a file is (`io/buf/mod.rs` → `io/buf`, `io/stream.rs` → `io/stream`).
fn node_of(file: &Path) -> Node {
    let rel = file.strip_prefix(src()).unwrap().with_extension("");
    let rel = rel.to_str().unwrap().to_owned();
    rel.strip_suffix("/mod").map(str::to_owned).unwrap_or(rel)
}

/// The longest module that `segments` (a path below `src/`) names.
fn resolve(segments: &[&str]) -> Option<Node> {
    let mut best = None;
    for n in 1..=segments.len() {
        let rel = segments[..n].join("/");
        let as_file = src().join(format!("{rel}.rs"));
        let as_dir = src().join(&rel).join("mod.rs");
        if as_file.exists() || as_dir.exists() {
            best = Some(rel);
        } else {
            break;
        }
    }
    best
}

/// The source without comments (line, doc and block comments) and string literals, so that a
/// path quoted in prose or a message is not taken for an import.
fn code_only(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < bytes.len() && !(bytes[i] == b'*' && bytes[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
                out.push_str("\"\"");
            }
            // A char literal holding a quote (`'"'`) must not open a string.
            b'\'' if bytes.get(i + 2) == Some(&b'\'') => {
                i += 3;
            }
            b => {
                out.push(b as char);
                i += 1;
            }
        }
    }
    out
}

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// Every path a file references: `crate::a::b::{c, d}` gives `[a, b, c]` and `[a, b, d]` (one
/// level of braces is enough to name the module), `super::x` is made absolute.
fn references(file: &Path, code: &str) -> Vec<Vec<String>> {
    let node = node_of(file);
    let is_mod = file.file_name().unwrap() == "mod.rs";
    // The module `super` names: the parent of this module.
    let mut parent: Vec<&str> = node.split('/').collect();
    parent.pop();
    let mut refs = Vec::new();
    for (root, base) in [("crate::", Vec::new()), ("super::", parent.clone())] {
        let mut rest = code;
        while let Some(at) = rest.find(root) {
            let before = rest[..at].chars().last();
            rest = &rest[at + root.len()..];
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let mut path: Vec<String> = base.iter().map(|s| s.to_string()).collect();
            if root == "super::" && is_mod {
                // In `a/mod.rs`, `super` is `a`'s parent: one level further up.
                path.pop();
            }
            let mut tail = rest;
            loop {
                if let Some(group) = tail.strip_prefix('{') {
                    let end = group.find('}').unwrap_or(group.len());
                    for item in group[..end].split(',') {
                        let name = ident_at(item.trim());
                        if !name.is_empty() {
                            let mut p = path.clone();
                            p.push(name.to_owned());
                            refs.push(p);
                        }
                    }
                    break;
                }
                let name = ident_at(tail);
                if name.is_empty() {
                    refs.push(path);
                    break;
                }
                path.push(name.to_owned());
                tail = &tail[name.len()..];
                match tail.strip_prefix("::") {
                    Some(t) => tail = t,
                    None => {
                        refs.push(path);
                        break;
                    }
                }
            }
        }
    }
    refs
}

/// The import edges between modules: from the file's module to the module each reference
/// names, leaving out a module's references to its own descendants and ancestors (a folder's
/// `mod.rs` declaring and re-exporting its files, or a file naming its folder's items).
fn edges() -> BTreeMap<Node, BTreeSet<Node>> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut graph: BTreeMap<Node, BTreeSet<Node>> = BTreeMap::new();
    for file in files {
        let node = node_of(&file);
        if node == "lib" {
            continue;
        }
        let code = code_only(&std::fs::read_to_string(&file).unwrap());
        for path in references(&file, &code) {
            let segs: Vec<&str> = path.iter().map(String::as_str).collect();
            let Some(target) = resolve(&segs) else { continue };
            let related =
                target == node || target.starts_with(&format!("{node}/")) || node.starts_with(&format!("{target}/"));
            if !related {
                graph.entry(node.clone()).or_default().insert(target);
            }
        }
    }
    graph
}

fn top(node: &str) -> &str {
    node.split('/').next().unwrap()
}

fn rank(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|row| row.contains(&module))
        .unwrap_or_else(|| panic!("src/{module} is in no layer of LAYERS: add it where it belongs"))
}

/// A cycle through `graph`, if any, as the list of its modules.
fn find_cycle(graph: &BTreeMap<Node, BTreeSet<Node>>) -> Option<Vec<Node>> {
    fn visit(
        n: &Node,
        graph: &BTreeMap<Node, BTreeSet<Node>>,
        state: &mut BTreeMap<Node, u8>,
        stack: &mut Vec<Node>,
    ) -> Option<Vec<Node>> {
        state.insert(n.clone(), 1);
        stack.push(n.clone());
        for m in graph.get(n).into_iter().flatten() {
            match state.get(m) {
                Some(1) => {
                    let from = stack.iter().position(|x| x == m).unwrap();
                    let mut cycle = stack[from..].to_vec();
                    cycle.push(m.clone());
                    return Some(cycle);
                }
                Some(_) => {}
                None => {
                    if let Some(c) = visit(m, graph, state, stack) {
                        return Some(c);
                    }
                }
            }
        }
        stack.pop();
        state.insert(n.clone(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in graph.keys() {
        if !state.contains_key(n) {
            if let Some(c) = visit(n, graph, &mut state, &mut Vec::new()) {
                return Some(c);
            }
        }
    }
    None
}

#[test]
fn each_layer_imports_only_the_layers_below_it() {
    let graph = edges();
    assert!(graph.len() > 20, "the source was not read: {graph:?}");
    let mut wrong = Vec::new();
    for (from, targets) in &graph {
        for to in targets {
            let (a, b) = (top(from), top(to));
            if a != b && rank(a) <= rank(b) {
                wrong.push(format!("{from} -> {to}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layers (LAYERS in this file):\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_module_imports_itself_through_others() {
    if let Some(cycle) = find_cycle(&edges()) {
        panic!("import circle: {}", cycle.join(" -> "));
    }
}

#[test]
fn the_reader_finds_imports_and_circles() {
    let file = src().join("io/stream.rs");
    let code = code_only(
        "use crate::io::buf::{OutBuf, ReadBuf};\n// crate::server is a comment\nlet s = \"crate::worker\";\nsuper::conns::Phase::Idle; crate::ops::stats::Op;",
    );
    let refs: BTreeSet<String> = references(&file, &code).iter().map(|p| p.join("::")).collect();
    let want: BTreeSet<String> = [
        "io::buf::OutBuf",
        "io::buf::ReadBuf",
        "io::conns::Phase::Idle",
        "ops::stats::Op",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(refs, want);
    let graph: BTreeMap<Node, BTreeSet<Node>> = [
        ("conn", &["worker"][..]),
        ("worker", &["server"][..]),
        ("server", &["worker"][..]),
    ]
    .into_iter()
    .map(|(n, t)| (n.to_owned(), t.iter().map(|s| s.to_string()).collect()))
    .collect();
    assert_eq!(
        find_cycle(&graph),
        Some(vec!["worker".to_owned(), "server".to_owned(), "worker".to_owned()])
    );
}
