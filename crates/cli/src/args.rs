//! Command-line arguments (clap). Every flag overrides the config file; see `config.rs`.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// ringd: an io_uring HTTP/1.1 server for Linux.
#[derive(Debug, Parser)]
#[command(name = "ringd", version, about, long_about = None, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// `ringd` alone is `ringd serve`.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve HTTP (the default): the built-in site, or the files of --root.
    Serve(ServeArgs),
    /// Check the configuration (file, flags, environment) and print it as ringd would run it;
    /// exit 0 if it is valid, 1 if not (like `nginx -t`).
    Check(ServeArgs),
}

/// Flags of `ringd serve`.
#[derive(Debug, Args, Default, Clone)]
pub struct ServeArgs {
    /// Address to listen on: HOST:PORT, [V6]:PORT or a bare PORT (all interfaces). Repeatable.
    /// Default: 127.0.0.1:8080.
    #[arg(long, value_name = "ADDR:PORT", value_parser = parse_listen, env = "RINGD_LISTEN", value_delimiter = ',')]
    pub listen: Vec<SocketAddr>,
    /// Every --listen address expects a PROXY protocol header (v1 or v2) from a load balancer
    /// first on each connection, and takes the client address from it (nginx `listen ...
    /// proxy_protocol`); connections without one are closed. `--proxy-protocol false` turns
    /// it off for every address. Default: false.
    #[arg(long, value_name = "true|false", env = "RINGD_PROXY_PROTOCOL", num_args = 0..=1, default_missing_value = "true")]
    pub proxy_protocol: Option<bool>,
    /// Networks allowed to send a PROXY header (CIDR, comma-separated: 10.0.0.0/8,::1); a
    /// connection from elsewhere to a proxy_protocol address is closed. Default: any source.
    #[arg(
        long,
        value_name = "CIDR,...",
        env = "RINGD_PROXY_PROTOCOL_TRUSTED",
        value_delimiter = ','
    )]
    pub proxy_protocol_trusted: Option<Vec<String>>,
    /// Serve HTTPS on the --listen addresses with this PEM certificate chain (leaf first).
    /// Default: none (plain HTTP).
    #[arg(long, value_name = "FILE", env = "RINGD_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key (PKCS#8, RSA or EC) of --tls-cert. Default: none.
    #[arg(long, value_name = "FILE", env = "RINGD_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Also listen for plain HTTP here and redirect every request to https:// (needs TLS).
    /// Repeatable. Default: none.
    #[arg(long, value_name = "ADDR:PORT", value_parser = parse_listen, env = "RINGD_HTTP_REDIRECT", value_delimiter = ',')]
    pub http_redirect: Vec<SocketAddr>,
    /// Serve the files below DIR instead of the built-in site. Default: none (the built-in
    /// site).
    #[arg(long, value_name = "DIR", env = "RINGD_ROOT")]
    pub root: Option<PathBuf>,
    /// Worker threads, one pinned per CPU: a number or "auto" (every CPU this process may use).
    /// Default: auto.
    #[arg(long, value_name = "N|auto", value_parser = parse_workers, env = "RINGD_WORKERS")]
    pub workers: Option<WorkersArg>,
    /// TOML configuration file (see deploy/ringd.toml); flags override it. Default: none.
    #[arg(long, value_name = "FILE", env = "RINGD_CONFIG")]
    pub config: Option<PathBuf>,
    /// Listen backlog (also capped by net.core.somaxconn). Default: 4096.
    #[arg(long, value_name = "N", env = "RINGD_BACKLOG")]
    pub backlog: Option<u32>,
    /// Accept a connection only once its first bytes arrive (TCP_DEFER_ACCEPT, nginx `listen ...
    /// deferred`), waiting at most the header timeout. Default: false.
    #[arg(long, value_name = "true|false", env = "RINGD_DEFER_ACCEPT")]
    pub defer_accept: Option<bool>,
    /// Largest request body in bytes (413 above it). Default: 1048576.
    #[arg(long, value_name = "BYTES", env = "RINGD_MAX_BODY")]
    pub max_body: Option<u64>,
    /// Longest request line in bytes (414 above it). Default: 8192.
    #[arg(long, value_name = "BYTES", env = "RINGD_MAX_REQUEST_LINE")]
    pub max_request_line: Option<usize>,
    /// Largest request head in bytes (431 above it). Default: 32768.
    #[arg(long, value_name = "BYTES", env = "RINGD_MAX_HEADER_BYTES")]
    pub max_header_bytes: Option<usize>,
    /// Most header fields in a request (431 above it). Default: 100.
    #[arg(long, value_name = "N", env = "RINGD_MAX_HEADERS")]
    pub max_headers: Option<usize>,
    /// Requests served on one keep-alive connection before it closes. Default: 1000.
    #[arg(long, value_name = "N", env = "RINGD_MAX_REQUESTS_PER_CONN")]
    pub max_requests_per_conn: Option<u64>,
    /// Open connections per worker; more are answered 503 and closed. Default: 16384.
    #[arg(long, value_name = "N", env = "RINGD_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Seconds a handler may take before the client gets 503 (0: no limit). Default: 0.
    #[arg(long, value_name = "SECS", env = "RINGD_HANDLER_TIMEOUT")]
    pub handler_timeout: Option<u64>,
    /// Seconds a graceful shutdown (SIGTERM/SIGINT) waits for open requests. Default: 20.
    #[arg(long, value_name = "SECS", env = "RINGD_DRAIN_TIMEOUT")]
    pub drain_timeout: Option<u64>,
    /// Registered fixed buffers per worker (locked memory: RLIMIT_MEMLOCK). Default: 64.
    #[arg(long, value_name = "N", env = "RINGD_BUFFERS")]
    pub buffers: Option<usize>,
    /// Size of each registered fixed buffer in bytes. Default: 16384.
    #[arg(long, value_name = "BYTES", env = "RINGD_BUFFER_SIZE")]
    pub buffer_size: Option<usize>,
    /// Provided receive buffers per worker (2 KiB each; a power of two, 0: off), so that idle
    /// connections hold no read buffer. Default: 512.
    #[arg(long, value_name = "N", env = "RINGD_RECEIVE_BUFFERS")]
    pub receive_buffers: Option<usize>,
    /// Seconds an idle keep-alive connection is kept. Default: 75.
    #[arg(long, value_name = "SECS", env = "RINGD_KEEPALIVE_TIMEOUT")]
    pub keepalive_timeout: Option<u64>,
    /// Seconds a client may take to send a request head. Default: 60.
    #[arg(long, value_name = "SECS", env = "RINGD_HEADER_TIMEOUT")]
    pub header_timeout: Option<u64>,
    /// Seconds a client may pause while sending a body. Default: 60.
    #[arg(long, value_name = "SECS", env = "RINGD_BODY_TIMEOUT")]
    pub body_timeout: Option<u64>,
    /// Seconds a client may leave a response unread. Default: 60.
    #[arg(long, value_name = "SECS", env = "RINGD_SEND_TIMEOUT")]
    pub send_timeout: Option<u64>,
    /// Access log: off, stderr, or a file path (appended to; reopened on SIGUSR1). Default: off.
    #[arg(long, value_name = "off|stderr|PATH", env = "RINGD_ACCESS_LOG")]
    pub access_log: Option<String>,
    /// Access log format: combined (nginx's) or json. Default: combined.
    #[arg(long, value_name = "combined|json", env = "RINGD_ACCESS_LOG_FORMAT")]
    pub access_log_format: Option<String>,
    /// Serve Prometheus metrics at http://ADDR:PORT/metrics (keep it private). Default: none
    /// (off).
    #[arg(long, value_name = "ADDR:PORT", value_parser = parse_listen, env = "RINGD_ADMIN")]
    pub admin: Option<SocketAddr>,
    /// Log format: auto (human on a terminal, JSON otherwise, e.g. journald), human or json.
    /// Default: auto.
    #[arg(long, value_name = "auto|human|json", env = "RINGD_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Pin each worker to its CPU; `--pin false` lets the scheduler move them. Default: true.
    #[arg(long, value_name = "true|false", env = "RINGD_PIN")]
    pub pin: Option<bool>,
    /// Send files that are in the page cache with sendfile(2); `--sendfile false` splices every
    /// file through io_uring. Default: true.
    #[arg(long, value_name = "true|false", env = "RINGD_SENDFILE")]
    pub sendfile: Option<bool>,
    /// Offer HTTP/2 to TLS clients by ALPN (`h2`); `--h2 false` speaks only HTTP/1.1 over
    /// TLS. Default: true.
    #[arg(long, value_name = "true|false", env = "RINGD_H2")]
    pub h2: Option<bool>,
    /// Serve HTTP/2 with prior knowledge (h2c) on plain listeners, next to HTTP/1.1. Default:
    /// false.
    #[arg(long, value_name = "true|false", env = "RINGD_H2C")]
    pub h2c: Option<bool>,
    /// Log filter (error, warn, info, debug, trace, or tracing directives). Default: info.
    #[arg(long, value_name = "FILTER", env = "RINGD_LOG")]
    pub log: Option<String>,
}

/// `--workers`: a count or "auto".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkersArg {
    Auto,
    Count(usize),
}

fn parse_workers(s: &str) -> Result<WorkersArg, String> {
    if s.eq_ignore_ascii_case("auto") {
        return Ok(WorkersArg::Auto);
    }
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1 (or \"auto\")".to_owned()),
        Ok(n) => Ok(WorkersArg::Count(n)),
        Err(_) => Err(format!("{s:?} is neither a number nor \"auto\"")),
    }
}

/// Parses a listen address: `HOST:PORT`, `[V6]:PORT`, or a bare `PORT` (all IPv4 interfaces, as
/// nginx's `listen 8080`).
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::from(([0, 0, 0, 0], port)));
    }
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    match s.to_socket_addrs() {
        Ok(mut addrs) => addrs.next().ok_or_else(|| format!("{s:?} resolves to no address")),
        Err(e) => Err(format!("{s:?} is not HOST:PORT ({e})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_forms() {
        assert_eq!(parse_listen("8080").unwrap(), "0.0.0.0:8080".parse().unwrap());
        assert_eq!(parse_listen("127.0.0.1:0").unwrap(), "127.0.0.1:0".parse().unwrap());
        assert_eq!(parse_listen("[::1]:80").unwrap(), "[::1]:80".parse().unwrap());
        assert!(parse_listen("localhost:81").unwrap().ip().is_loopback());
        assert!(parse_listen("nonsense").is_err());
    }

    #[test]
    fn workers_forms() {
        assert_eq!(parse_workers("auto").unwrap(), WorkersArg::Auto);
        assert_eq!(parse_workers("3").unwrap(), WorkersArg::Count(3));
        assert!(parse_workers("0").is_err());
        assert!(parse_workers("many").is_err());
    }

    /// `ringd serve --help` states each flag's default, and it is the default `Settings` has.
    #[test]
    fn help_gives_every_flags_default() {
        use clap::CommandFactory;
        let s = crate::config::Settings::load(&ServeArgs::default()).unwrap();
        let (c, t) = (&s.server, &s.server.timeouts);
        let secs = |d: std::time::Duration| d.as_secs().to_string();
        let defaults: std::collections::HashMap<&str, String> = [
            (
                "listen",
                c.listen.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
            ),
            (
                "workers",
                match c.workers {
                    ring_server::Workers::Auto => "auto".to_owned(),
                    ring_server::Workers::Count(n) => n.to_string(),
                },
            ),
            ("backlog", c.backlog.to_string()),
            ("defer-accept", c.defer_accept.to_string()),
            ("max-body", c.limits.max_body.to_string()),
            ("max-request-line", c.limits.max_request_line.to_string()),
            ("max-header-bytes", c.limits.max_header_bytes.to_string()),
            ("max-headers", c.limits.max_headers.to_string()),
            ("max-requests-per-conn", c.max_requests_per_conn.to_string()),
            ("max-connections", c.max_connections.to_string()),
            ("handler-timeout", t.handler.map_or("0".to_owned(), secs)),
            ("drain-timeout", secs(t.drain)),
            ("buffers", c.buffers.count.to_string()),
            ("buffer-size", c.buffers.size.to_string()),
            ("receive-buffers", c.buffers.receive.to_string()),
            ("keepalive-timeout", secs(t.keepalive)),
            ("header-timeout", secs(t.header)),
            ("body-timeout", secs(t.body)),
            ("send-timeout", secs(t.send)),
            (
                "access-log",
                if c.access_log.is_none() { "off" } else { "on" }.to_owned(),
            ),
            ("access-log-format", "combined".to_owned()),
            ("log-format", s.log_format.clone()),
            ("pin", c.pin.to_string()),
            ("sendfile", c.sendfile.to_string()),
            ("h2", c.http2.tls.to_string()),
            ("h2c", c.http2.cleartext.to_string()),
            ("proxy-protocol", (!c.proxy_protocol.is_empty()).to_string()),
            ("proxy-protocol-trusted", "any source".to_owned()),
            ("log", s.log.clone()),
            // Off unless given.
            ("tls-cert", "none".to_owned()),
            ("tls-key", "none".to_owned()),
            ("http-redirect", "none".to_owned()),
            ("root", "none".to_owned()),
            ("config", "none".to_owned()),
            ("admin", "none".to_owned()),
        ]
        .into_iter()
        .collect();
        assert!(c.tls.is_none() && c.redirect_listen.is_empty() && s.root.is_none() && s.admin.is_none());
        let cli = Cli::command();
        let serve = cli.find_subcommand("serve").unwrap();
        for arg in serve.get_arguments() {
            let Some(long) = arg.get_long().filter(|l| *l != "help") else {
                continue;
            };
            let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
            let want = defaults
                .get(long)
                .unwrap_or_else(|| panic!("--{long} is new: add its default to this test"));
            let (_, said) = help
                .rsplit_once("Default: ")
                .unwrap_or_else(|| panic!("--{long} states no default: {help}"));
            let said = said.trim_end_matches('.');
            assert!(
                said == want || said.starts_with(&format!("{want} (")),
                "--{long}: help says {said:?}, the default is {want:?}"
            );
        }
    }

    /// The README's usage block names every flag of `ringd serve`.
    #[test]
    fn the_readme_lists_every_flag() {
        use clap::CommandFactory;
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
        let usage = readme
            .split("## Using it")
            .nth(1)
            .and_then(|rest| rest.split("```text").nth(1))
            .and_then(|block| block.split("```").next())
            .expect("a ```text block under \"## Using it\" in README.md");
        let cli = Cli::command();
        let serve = cli.find_subcommand("serve").unwrap();
        for long in serve
            .get_arguments()
            .filter_map(|a| a.get_long())
            .filter(|l| *l != "help")
        {
            let flag = format!("--{long} ");
            let flag_end = format!("--{long}]");
            assert!(
                usage.contains(&flag) || usage.contains(&flag_end),
                "README.md's usage block lacks --{long}:\n{usage}"
            );
        }
    }

    #[test]
    fn bare_ringd_is_serve() {
        let cli = Cli::try_parse_from(["ringd", "--listen", "127.0.0.1:0"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.serve.listen.len(), 1);
        let cli = Cli::try_parse_from(["ringd", "serve", "--workers", "2"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Serve(ServeArgs {
                workers: Some(WorkersArg::Count(2)),
                ..
            }))
        ));
    }
}
