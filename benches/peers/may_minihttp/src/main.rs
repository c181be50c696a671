//! may_minihttp 0.1.11's published `techempower_no_db` example (may_minihttp is MIT or
//! Apache-2.0, Copyright (c) 2018 Xudong Huang), for `benches/compare-nginx --peers
//! may_minihttp`. `build.rs` copies the example from the crate's registry source and changes
//! two lines of it (see there): its `main` becomes `example_main`, and its hard-coded
//! `0.0.0.0:8081` becomes the address given here.
//!
//! ```text
//! techempower_no_db ADDR:PORT [WORKERS]
//! ```
//!
//! WORKERS (default 1) is may's worker count (`may::config().set_workers`): the example itself
//! leaves it at may's default, one per CPU. may pins each worker to a CPU of the process's
//! affinity mask, which the harness sets with taskset.

include!(concat!(env!("OUT_DIR"), "/techempower_no_db.rs"));

const USAGE: &str = "usage: techempower_no_db ADDR:PORT [WORKERS]";

fn listen_addr() -> String {
    std::env::args().nth(1).unwrap_or_else(|| {
        eprintln!("{USAGE}");
        std::process::exit(2)
    })
}

fn main() {
    let workers = match std::env::args().nth(2) {
        Some(n) => n.parse().ok().filter(|n: &usize| *n > 0).unwrap_or_else(|| {
            eprintln!("{USAGE}");
            std::process::exit(2)
        }),
        None => 1,
    };
    may::config().set_workers(workers);
    eprintln!(
        "techempower_no_db: {workers} may worker(s), listening on {}",
        listen_addr()
    );
    example_main();
}
