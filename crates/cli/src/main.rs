//! The `ringd` command: parse flags, load the configuration, start one pinned io_uring worker per
//! core, and run until a signal says stop.
#![deny(unsafe_code)]

mod activation;
mod args;
mod config;
mod notify;
mod site;
mod traffic;

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use ring_server::{RunningServer, Server};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1};
use signal_hook::iterator::Signals;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use crate::args::{Cli, Command};
use crate::config::Settings;
use crate::site::Site;

fn main() -> ExitCode {
    // clap exits with 2 on a usage error and 0 for --help/--version.
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Serve(args)) => args,
        Some(Command::Check(args)) => return check(&args),
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

/// `ringd check`: everything `serve` checks before it binds, then the effective configuration.
fn check(args: &args::ServeArgs) -> ExitCode {
    let checked = Settings::load(args).and_then(|settings| {
        EnvFilter::try_new(&settings.log).with_context(|| format!("invalid log filter {:?}", settings.log))?;
        Site::new(settings.root.as_deref(), &settings.statics, &settings.static_options)
            .map_err(|e| missing_root_hint(e, args, &settings))?;
        if let Some(tls) = &settings.server.tls {
            ring_server::tls::check(tls)?;
        }
        Ok(settings)
    });
    match checked {
        Ok(settings) => {
            print!("{}", settings.to_toml());
            let source = args
                .config
                .as_ref()
                .map_or("flags and defaults".to_owned(), |c| c.display().to_string());
            eprintln!("ringd: the configuration ({source}) is valid");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// A config file written for the machine it is installed on names a site root that may not
/// exist where it is checked (`deploy/ringd.toml` on a fresh clone: `deploy/install.sh` creates
/// its root): the error then says how to check the rest of the file anyway.
fn missing_root_hint(e: anyhow::Error, args: &args::ServeArgs, settings: &Settings) -> anyhow::Error {
    match (&args.config, &args.root, &settings.root) {
        (Some(config), None, Some(root)) if !root.exists() => anyhow::anyhow!(
            "{e:#}; to check {} before the root exists (deploy/install.sh creates the shipped one), give a directory that exists in its place: ringd check --config {} --root DIR",
            config.display(),
            config.display()
        ),
        _ => e,
    }
}

fn serve(args: &args::ServeArgs) -> Result<()> {
    let mut settings = Settings::load(args)?;
    let log_filter = init_logging(&settings.log, &settings.log_format)?;
    install_panic_hook();
    let site = Site::new(settings.root.as_deref(), &settings.statics, &settings.static_options)?;
    // signal-hook turns each signal into a message for the loop below, whichever thread the
    // kernel delivers it to.
    let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP, SIGUSR1]).context("installing signal handlers")?;
    let inherited = activation::inherited_listeners()?;
    if !inherited.is_empty() {
        tracing::info!(
            "socket activation: serving {} inherited socket(s); `listen` is ignored",
            inherited.len()
        );
    }
    let mut running = Server::new(settings.server.clone(), site.router_factory())
        .with_listeners(inherited)
        .start()?;
    let over = if settings.server.tls.is_some() {
        " over HTTPS"
    } else {
        ""
    };
    for addr in running.local_addrs() {
        tracing::info!(
            "listening on {addr} with {} workers, serving {}{over}",
            running.workers(),
            site.describe()
        );
    }
    for addr in running.redirect_addrs() {
        tracing::info!("listening on {addr} (http), redirecting every request to https://");
    }
    let proxied = &settings.server.proxy_protocol;
    if !proxied.is_empty() {
        let addrs: Vec<String> = proxied.iter().map(ToString::to_string).collect();
        if settings.server.proxy_trusted.is_empty() {
            tracing::warn!(
                "PROXY protocol on {} from any source: a client that reaches it directly can claim any address; list the load balancers in proxy_protocol.trusted",
                addrs.join(", ")
            );
        } else {
            tracing::info!(
                "PROXY protocol on {}: the client address comes from each connection's header",
                addrs.join(", ")
            );
        }
    }
    if let Some(admin) = settings.admin {
        let bound = ring_server::serve_metrics(admin, running.metrics())
            .with_context(|| format!("cannot serve metrics on --admin {admin}"))?;
        tracing::info!("metrics on http://{bound}/metrics (and /healthz, /readyz)");
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
    if let Some(period) = notify::watchdog_period() {
        start_watchdog(period, running.heartbeats())?;
    }
    // A worker that dies takes the process with it, so the service manager restarts ringd.
    let watch = running.watch();
    std::thread::Builder::new()
        .name("ringd-watch".to_owned())
        .spawn(move || {
            let e = watch.wait();
            eprintln!("error: {e}");
            std::process::exit(1);
        })
        .context("starting the watch thread")?;
    let running = std::sync::Arc::new(std::sync::Mutex::new(running));
    let mut draining = false;
    for signal in signals.forever() {
        if signal == SIGHUP {
            // Held by the drain thread once shutting down: no reload then, and no waiting for it.
            match running.try_lock() {
                Ok(mut running) if !draining => reload(args, &mut settings, &mut running, &log_filter),
                _ => tracing::warn!("SIGHUP during shutdown: ignored"),
            }
            continue;
        }
        if signal == SIGUSR1 {
            if let Ok(running) = running.try_lock() {
                running.reopen_logs();
                tracing::info!("SIGUSR1: reopening the access log");
            }
            continue;
        }
        let name = if signal == SIGTERM { "SIGTERM" } else { "SIGINT" };
        if draining {
            tracing::warn!("{name} again: exiting without waiting for the drain");
            std::process::exit(0);
        }
        draining = true;
        tracing::info!("{name} received: draining (again to exit at once)");
        let _ = notify::notify("STOPPING=1");
        let running = running.clone();
        std::thread::Builder::new()
            .name("ringd-drain".to_owned())
            .spawn(move || {
                let started = std::time::Instant::now();
                // Held to the end: a SIGHUP arriving now must not reload a draining server.
                let running = running.lock().unwrap_or_else(|e| e.into_inner());
                if running.drain() {
                    tracing::info!("drained in {:?}; exiting", started.elapsed());
                } else {
                    tracing::warn!(
                        "drain timeout ({:?}) reached with connections still open; exiting",
                        running.config().timeouts.drain
                    );
                }
                // The runtimes are never torn down with operations in flight: the process ends
                // and the kernel reclaims the rings.
                std::process::exit(0);
            })
            .context("starting the drain thread")?;
    }
    Ok(())
}

/// Feeds systemd's watchdog (`WatchdogSec=`) at half its period, but only while every worker's
/// heartbeat advances: a stuck worker stops the feeding, and systemd restarts ringd.
fn start_watchdog(period: std::time::Duration, heartbeats: ring_server::Heartbeats) -> Result<()> {
    // Workers beat once a second; a shorter interval could not tell stuck from not yet.
    let interval = (period / 2).max(std::time::Duration::from_millis(1500));
    tracing::info!("feeding the systemd watchdog every {interval:?}");
    std::thread::Builder::new()
        .name("ringd-watchdog".to_owned())
        .spawn(move || {
            let mut last = heartbeats.snapshot();
            loop {
                std::thread::sleep(interval);
                let now = heartbeats.snapshot();
                let stuck: Vec<usize> = (0..now.len()).filter(|&i| now[i] == last[i]).collect();
                if stuck.is_empty() {
                    if let Err(e) = notify::notify("WATCHDOG=1") {
                        tracing::warn!("could not feed the watchdog: {e}");
                    }
                } else {
                    tracing::error!(
                        ?stuck,
                        "workers made no progress for {interval:?}; not feeding the watchdog"
                    );
                }
                last = now;
            }
        })
        .context("starting the watchdog thread")?;
    Ok(())
}

/// SIGHUP: reads the configuration again and applies what can change while running. A bad
/// configuration is logged and the running one kept.
fn reload(args: &args::ServeArgs, current: &mut Settings, running: &mut RunningServer, log_filter: &LogFilter) {
    let mut attempt = || -> Result<Vec<&'static str>> {
        let new = Settings::load(args)?;
        let site = Site::new(new.root.as_deref(), &new.statics, &new.static_options)?;
        let filter = EnvFilter::try_new(&new.log).with_context(|| format!("invalid log filter {:?}", new.log))?;
        let changed = current.changes(&new);
        let mut restart_only = running.reload(new.server.clone(), site.router_factory())?;
        for setting in ["admin", "log_format"] {
            if changed.contains(&setting) {
                restart_only.push(setting);
            }
        }
        log_filter.reload(filter).context("applying the log filter")?;
        if let Some(tls) = &running.config().tls {
            let count = 1 + tls.sni.len();
            tracing::info!("SIGHUP: {count} TLS certificate(s) reloaded; new handshakes use them");
        }
        let live: Vec<&str> = changed.iter().copied().filter(|c| !restart_only.contains(c)).collect();
        if live.is_empty() {
            tracing::info!("SIGHUP: configuration reloaded; nothing changed");
        } else {
            tracing::info!("SIGHUP: configuration reloaded; changed: {}", live.join(", "));
        }
        *current = new;
        Ok(restart_only)
    };
    match attempt() {
        Ok(restart_only) if !restart_only.is_empty() => tracing::warn!(
            "SIGHUP: {} cannot change while ringd runs; restart it to apply (the running values are kept)",
            restart_only.join(", ")
        ),
        Ok(_) => {}
        Err(e) => tracing::error!("SIGHUP: reload failed, the running configuration is kept: {e:#}"),
    }
}

/// The handle that swaps the log filter on reload.
type LogFilter = tracing_subscriber::reload::Handle<EnvFilter, tracing_subscriber::Registry>;

fn init_logging(filter: &str, format: &str) -> Result<LogFilter> {
    let filter = EnvFilter::try_new(filter).with_context(|| format!("invalid log filter {filter:?}"))?;
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    let terminal = std::io::stderr().is_terminal();
    let json = format == "json" || (format == "auto" && !terminal);
    let human = (!json).then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(terminal)
            .with_target(false)
    });
    let json = json.then(|| {
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_writer(std::io::stderr)
            .with_target(false)
    });
    tracing_subscriber::registry()
        .with(filter)
        .with(human)
        .with(json)
        .init();
    Ok(handle)
}

/// Panics in handlers are caught and answered 500, but the default hook would still print each
/// one: a client that makes a handler panic on every request must not flood the log. At most
/// ten panic reports a second are printed; the rest are counted into the next one printed.
fn install_panic_hook() {
    use std::sync::atomic::{AtomicU64, Ordering};
    static WINDOW: AtomicU64 = AtomicU64::new(0);
    static USED: AtomicU64 = AtomicU64::new(0);
    static SUPPRESSED: AtomicU64 = AtomicU64::new(0);
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if WINDOW.swap(now, Ordering::Relaxed) != now {
            USED.store(0, Ordering::Relaxed);
        }
        if USED.fetch_add(1, Ordering::Relaxed) < 10 {
            let suppressed = SUPPRESSED.swap(0, Ordering::Relaxed);
            if suppressed > 0 {
                tracing::warn!(suppressed, "panic reports suppressed (more than 10 a second)");
            }
            default(info);
        } else {
            SUPPRESSED.fetch_add(1, Ordering::Relaxed);
        }
    }));
}
