//! Parses one request head 10,000 times, for counting the parser's instructions a request:
//!
//! ```text
//! cargo build --release -p ringd-core --example parse_loop
//! valgrind --tool=callgrind --toggle-collect='parse_loop::run' \
//!     target/release/examples/parse_loop plaintext     # or: close, browser
//! ```
//!
//! Instructions a parse = the `Collected` total / 10,000.

use std::hint::black_box;

use ringd_core::{header_slots, parse_request, Header, Limits, Parsed};

/// The heads: `benches/callgrind`'s plaintext and close requests, and a browser's.
const HEADS: [(&str, &[u8]); 3] = [
    ("plaintext", b"GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"),
    (
        "close",
        b"GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    ),
    (
        "browser",
        b"GET /static/app.js?v=3 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux \
          x86_64)\r\nAccept: */*\r\nAccept-Encoding: gzip, deflate, br\r\nAccept-Language: en-US,en;q=0.5\r\n\
          Connection: keep-alive\r\nReferer: https://example.com/\r\n\r\n",
    ),
];

#[inline(never)]
fn run<'b>(buf: &'b [u8], limits: &Limits, slots: &mut Vec<Header<'b>>) -> usize {
    match parse_request(black_box(buf), limits, slots) {
        Ok(Parsed::Complete(head)) => head.head_len + head.path.len() + head.headers.len(),
        _ => 0,
    }
}

fn main() {
    let name = std::env::args().nth(1).unwrap_or_else(|| "plaintext".to_owned());
    let Some((_, head)) = HEADS.iter().find(|(n, _)| *n == name) else {
        eprintln!("parse_loop: unknown head {name:?} (plaintext, close, browser)");
        std::process::exit(2);
    };
    let limits = Limits::default();
    let mut slots = header_slots();
    let total: usize = (0..10_000).map(|_| run(head, &limits, &mut slots)).sum();
    assert!(total > 0, "the head did not parse");
    println!("{total}");
}
