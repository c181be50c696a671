//! The `ringd` command: parse flags, load the configuration, start one pinned io_uring worker per
//! core, and run until a signal says stop.

mod args;
mod config;
mod notify;
mod site;

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use ring_server::{Server, StaticFiles};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::args::{Cli, Command};
use crate::config::Settings;
use crate::site::Site;

fn main() -> ExitCode {
    // clap exits with 2 on a usage error and 0 for --help/--version.
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Serve(args)) => args,
        None => cli.serve,
    };
    match serve(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, for journalctl and for people: the chain joined by ": ".
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn serve(args: &args::ServeArgs) -> Result<()> {
    let settings = Settings::load(args)?;
    init_logging(&settings.log)?;
    let site = match &settings.root {
        Some(root) => Site::Files(StaticFiles::new(root)?),
        None => Site::Builtin,
    };
    // Build one router now so that a bad route is a start-up error, not a worker's.
    site.router().context("building the routes")?;
    // signal-hook turns each signal into a message for the thread below, whichever thread
    // the kernel delivers it to.
    let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP]).context("installing signal handlers")?;
    let router_site = site.clone();
    let server = Server::new(settings.server.clone(), move |_| {
        router_site
            .router()
            .expect("routes were checked before the workers started")
    });
    let running = server.start()?;
    let what = match &settings.root {
        Some(root) => format!("files from {}", root.display()),
        None => "the built-in site".to_owned(),
    };
    for addr in running.local_addrs() {
        tracing::info!("listening on {addr} with {} workers, serving {what}", running.workers());
    }
    let addrs: Vec<String> = running.local_addrs().iter().map(ToString::to_string).collect();
    let status = format!(
        "READY=1\nMAINPID={}\nSTATUS=listening on {}",
        std::process::id(),
        addrs.join(", ")
    );
    if let Err(e) = notify::notify(&status) {
        tracing::warn!("could not notify the service manager (NOTIFY_SOCKET): {e}");
    }
    std::thread::Builder::new()
        .name("ringd-signals".to_owned())
        .spawn(move || {
            for signal in signals.forever() {
                match signal {
                    SIGHUP => tracing::warn!(
                        "SIGHUP: configuration reload is not supported yet; restart ringd to apply changes"
                    ),
                    _ => {
                        let name = if signal == SIGTERM { "SIGTERM" } else { "SIGINT" };
                        tracing::info!("{name} received; exiting");
                        let _ = notify::notify("STOPPING=1");
                        // The runtimes are never torn down with operations in flight: the process
                        // ends and the kernel reclaims the rings.
                        std::process::exit(0);
                    }
                }
            }
        })
        .context("starting the signal thread")?;
    Err(running.wait().into())
}

fn init_logging(filter: &str) -> Result<()> {
    let filter =
        tracing_subscriber::EnvFilter::try_new(filter).with_context(|| format!("invalid log filter {filter:?}"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
    Ok(())
}
