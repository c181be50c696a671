//! `benches/compare-nginx` end to end, on the binary under test: a short run against a real
//! nginx with real wrk load. Its figures mean nothing at this length; what is checked is that
//! the harness runs both servers, that every request of every run was answered, and that it
//! writes the report it promises (the table the README quotes, and the settings both servers
//! ran with).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{bin, require_tool, run_bounded, TempDir};

/// The scenarios run: keep-alive, a static file and connection churn.
const SCENARIOS: [&str; 3] = ["plaintext", "static4k", "close"];

/// One row of the report's "All runs" table.
struct Run {
    scenario: String,
    server: String,
    requests: u64,
    non_2xx: u64,
    socket_errors: u64,
}

/// The rows of the "All runs" table (columns named in its header line).
fn all_runs(report: &str) -> Vec<Run> {
    let section = report
        .split("## All runs")
        .nth(1)
        .unwrap_or_else(|| panic!("no \"All runs\" section in the report:\n{report}"));
    let mut lines = section.lines().filter(|l| l.starts_with('|'));
    let header: Vec<&str> = cells(lines.next().expect("the table's header"));
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("no column {name:?} in {header:?}"))
    };
    let (scenario, server, requests, non_2xx, errors) = (
        col("scenario"),
        col("server"),
        col("requests"),
        col("non-2xx"),
        col("socket err"),
    );
    let number = |s: &str| -> u64 {
        s.replace(',', "")
            .parse()
            .unwrap_or_else(|_| panic!("not a count: {s:?}"))
    };
    lines
        .skip(1) // the |---| line
        .map(cells)
        .map(|c| Run {
            scenario: c[scenario].to_owned(),
            server: c[server].to_owned(),
            requests: number(c[requests]),
            non_2xx: number(c[non_2xx]),
            socket_errors: number(c[errors]),
        })
        .collect()
}

fn cells(line: &str) -> Vec<&str> {
    line.trim().trim_matches('|').split('|').map(str::trim).collect()
}

#[test]
fn the_harness_runs_both_servers_and_writes_its_report() {
    for (tool, package) in [("nginx", "nginx"), ("wrk", "wrk"), ("taskset", "util-linux")] {
        require_tool(tool, package);
    }
    let out = TempDir::new("bench");
    let harness = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../benches/compare-nginx");
    let result = run_bounded(
        Command::new("python3").arg(&harness).args([
            "--ringd-bin",
            bin(),
            "--duration",
            "1",
            "--rounds",
            "1",
            "--warmup",
            "0",
            "--scenarios",
            &SCENARIOS.join(","),
            "--no-chart",
            "--no-perf",
            "--out",
            out.path.to_str().unwrap(),
        ]),
        Duration::from_secs(300),
    );
    result.assert_success("the harness");
    let reports: Vec<_> = std::fs::read_dir(&out.path)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    assert_eq!(reports.len(), 1, "{reports:?}");
    let report = std::fs::read_to_string(&reports[0]).unwrap();

    // The summary table, one row per scenario, as printed on stdout too.
    for scenario in SCENARIOS {
        let row = format!("| {scenario} |");
        assert!(report.contains(&row), "no summary row for {scenario}:\n{report}");
        assert!(result.stdout_str().contains(&row), "{scenario} missing from stdout");
    }
    // Every run of both servers answered every request it counted.
    let runs = all_runs(&report);
    for scenario in SCENARIOS {
        for server in ["ringd", "nginx"] {
            let run = runs
                .iter()
                .find(|r| r.scenario == scenario && r.server == server)
                .unwrap_or_else(|| panic!("no run of {server} in {scenario}:\n{report}"));
            assert!(run.requests > 0, "{server} served nothing in {scenario}");
            assert_eq!(
                (run.non_2xx, run.socket_errors),
                (0, 0),
                "{server} in {scenario}: non-2xx responses or socket errors"
            );
        }
    }
    // Both servers ran with the same accept setting, and the report says which.
    assert!(
        report.contains("- accept: both servers take a connection once its first request has arrived"),
        "{report}"
    );
    assert!(report.contains("--defer-accept true"), "{report}");
}
