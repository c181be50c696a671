//! The server's configuration, already validated: the CLI turns flags and files into one of these.

use std::net::SocketAddr;
use std::time::Duration;

use ringd_core::Limits;

use crate::traffic::config::{
    validate_compression, validate_conn_limit, validate_rate_zones, Compression, ConnLimit, RateZone,
};

/// How many workers to run and where to pin them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Workers {
    /// One worker per CPU in the process's affinity mask (what `taskset` or systemd's
    /// `CPUAffinity=` allow), each pinned to its CPU.
    Auto,
    /// This many workers, pinned to the first CPUs of the affinity mask (wrapping around when
    /// there are more workers than CPUs).
    Count(usize),
}

/// The registered fixed buffers of each worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferConfig {
    /// Buffers per worker. Each is locked memory (`RLIMIT_MEMLOCK`) once registered.
    pub count: usize,
    /// Bytes per buffer: the largest response batch written in one fixed-buffer send.
    pub size: usize,
    /// Receive buffers per worker in a provided-buffer ring (a power of two; 0: none), each
    /// [`RECEIVE_BUFFER_SIZE`] bytes. A connection waiting for its next request then holds no
    /// read buffer: the kernel picks one when the request arrives. Without the ring (0, or a
    /// kernel before 5.19) each connection keeps a 1 KiB read buffer.
    pub receive: usize,
}

/// The size of each provided receive buffer: a typical request head fits in one.
pub const RECEIVE_BUFFER_SIZE: u32 = 2048;

impl Default for BufferConfig {
    /// 64 × 16 KiB per worker: 1 MiB of locked memory each, so that eight workers fit in the
    /// 8 MiB `RLIMIT_MEMLOCK` that most distributions give a service user.
    fn default() -> Self {
        BufferConfig {
            count: 64,
            size: 16 * 1024,
            receive: 512,
        }
    }
}

/// Deadlines enforced by each worker's sweeper (checked once a second).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// From the first byte of a request head to its end (nginx `client_header_timeout`, 60 s).
    pub header: Duration,
    /// Between two reads of a request body (nginx `client_body_timeout`, 60 s).
    pub body: Duration,
    /// An idle keep-alive connection waiting for its next request (nginx `keepalive_timeout`, 75 s).
    pub keepalive: Duration,
    /// A write the client does not read (nginx `send_timeout`, 60 s).
    pub send: Duration,
    /// A handler that has not answered: the client gets 503 (none by default).
    pub handler: Option<Duration>,
    /// A graceful shutdown (SIGTERM) waits this long for open requests, then exits anyway.
    pub drain: Duration,
    /// During a drain, an idle keep-alive connection may still send one request this long: closing
    /// it at once would race with a request already on its way (RFC 9112 §9.6).
    pub drain_idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            header: Duration::from_secs(60),
            body: Duration::from_secs(60),
            keepalive: Duration::from_secs(75),
            send: Duration::from_secs(60),
            handler: None,
            drain: Duration::from_secs(20),
            drain_idle: Duration::from_secs(1),
        }
    }
}

/// HTTP/2: where it is spoken and the settings each connection announces (RFC 9113 §6.5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Http2Config {
    /// Offer `h2` before `http/1.1` in TLS ALPN, as Go and Caddy do: browsers then speak HTTP/2
    /// over TLS. On by default.
    pub tls: bool,
    /// Serve HTTP/2 with prior knowledge (h2c, RFC 9113 §3.3) on plain listeners: a connection
    /// that opens with the HTTP/2 preface is HTTP/2, anything else stays HTTP/1.1. Off by
    /// default, as in nginx and Caddy: browsers never use it, and a plain port then speaks one
    /// protocol only unless asked (a load balancer talking h2c to its backends asks).
    pub cleartext: bool,
    /// `SETTINGS_MAX_CONCURRENT_STREAMS` (nginx `http2_max_concurrent_streams`, 128).
    pub max_concurrent_streams: u32,
    /// `SETTINGS_INITIAL_WINDOW_SIZE`: how much of a request body a client may send on a stream
    /// before the server reads it.
    pub initial_window_size: u32,
    /// The connection's receive window (all streams together).
    pub connection_window_size: u32,
    /// `SETTINGS_MAX_FRAME_SIZE`: the largest frame payload the server accepts.
    pub max_frame_size: u32,
    /// Control frames (SETTINGS, PING) a client may send a second, on average, before the
    /// connection is closed with `GOAWAY(ENHANCE_YOUR_CALM)` (ten times as many may come at
    /// once).
    pub control_frames_per_second: u32,
}

impl Default for Http2Config {
    fn default() -> Self {
        Http2Config {
            tls: true,
            cleartext: false,
            max_concurrent_streams: 128,
            initial_window_size: 65_535,
            connection_window_size: 1 << 20,
            max_frame_size: 16_384,
            control_frames_per_second: 100,
        }
    }
}

/// What a worker does with a connection beyond [`ServerConfig::max_connections`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shed {
    /// Answer `503 Service Unavailable` with `Retry-After: 1`, then close.
    Respond503,
    /// Close at once.
    Close,
}

/// Everything a [`Server`](crate::Server) needs, validated by [`ServerConfig::validate`].
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Addresses to listen on; every worker listens on each of them (`SO_REUSEPORT`).
    pub listen: Vec<SocketAddr>,
    /// Worker count and pinning.
    pub workers: Workers,
    /// The listen backlog (capped by `net.core.somaxconn`).
    pub backlog: u32,
    /// Accept a connection only once its first request bytes have arrived (`TCP_DEFER_ACCEPT`,
    /// nginx `listen ... deferred`), waiting in the kernel for at most the header timeout. The
    /// accept and the first receive then take one wake-up of the worker; a client that connects
    /// and sends nothing costs no connection slot. Off by default, as in nginx.
    pub defer_accept: bool,
    /// Request limits: line, headers, body.
    pub limits: Limits,
    /// Requests served on one connection before it is closed (nginx `keepalive_requests`).
    pub max_requests_per_conn: u64,
    /// Open connections per worker; past it new ones are shed (nginx `worker_connections`).
    pub max_connections: usize,
    /// How connections past `max_connections` are shed.
    pub shed: Shed,
    /// Registered fixed buffers per worker.
    pub buffers: BufferConfig,
    /// Per-connection deadlines.
    pub timeouts: Timeouts,
    /// Submission queue entries of each worker's ring.
    pub ring_entries: u32,
    /// The `Server` header value; empty to send none.
    pub server_name: String,
    /// The access log, if any.
    pub access_log: Option<crate::ops::access_log::AccessLogConfig>,
    /// Headers added to every response a handler has not set itself (nginx `add_header`).
    pub headers: Vec<(String, String)>,
    /// Pin each worker thread to its CPU.
    pub pin: bool,
    /// Serve HTTPS on every `listen` address with these certificates.
    pub tls: Option<crate::tls::TlsConfig>,
    /// Plain HTTP addresses that answer every request with a redirect to `https://` (needs `tls`).
    pub redirect_listen: Vec<SocketAddr>,
    /// Send file ranges that are all in the page cache with `sendfile(2)` on the worker's thread
    /// (nginx `sendfile on`); off, every file range is spliced through io_uring (or copied).
    /// Either way a range not in memory is never read on the worker's thread.
    pub sendfile: bool,
    /// HTTP/2.
    pub http2: Http2Config,
    /// The `listen` (or `tls.redirect`) addresses whose connections start with a PROXY
    /// protocol header, v1 or v2, from a load balancer (nginx `listen ... proxy_protocol`,
    /// HAProxy `send-proxy-v2`). The client it names replaces the connection's peer in the
    /// access log, the metrics and [`Request::peer_addr`](crate::Request::peer_addr). A
    /// connection there without a valid header within the header timeout is closed.
    pub proxy_protocol: Vec<SocketAddr>,
    /// Who may send a PROXY header (`proxy_protocol.trusted`): a connection to a
    /// `proxy_protocol` address from any other source is closed before it is read. Empty: any
    /// source, as in nginx and HAProxy (then only a firewall keeps clients from naming
    /// themselves).
    pub proxy_trusted: Vec<ringd_core::Cidr>,
    /// Rate-limit zones (nginx `limit_req`), checked in order for every request they cover.
    pub rate_limits: Vec<RateZone>,
    /// Open connections per client (nginx `limit_conn`).
    pub connection_limit: Option<ConnLimit>,
    /// On-the-fly compression of responses.
    pub compression: Compression,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 8080))],
            workers: Workers::Auto,
            backlog: 4096,
            defer_accept: false,
            limits: Limits::default(),
            max_requests_per_conn: 1000,
            max_connections: 16384,
            shed: Shed::Respond503,
            buffers: BufferConfig::default(),
            timeouts: Timeouts::default(),
            ring_entries: 1024,
            server_name: "ringd".to_owned(),
            access_log: None,
            headers: Vec::new(),
            pin: true,
            tls: None,
            redirect_listen: Vec::new(),
            sendfile: true,
            http2: Http2Config::default(),
            proxy_protocol: Vec::new(),
            proxy_trusted: Vec::new(),
            rate_limits: Vec::new(),
            connection_limit: None,
            compression: Compression::default(),
        }
    }
}

/// What is wrong with a configuration value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {field}: {reason}")]
pub struct ConfigError {
    /// The setting, named as in the config file.
    pub field: &'static str,
    /// Why it is rejected and what would be accepted.
    pub reason: String,
}

impl ServerConfig {
    /// Checks every value against what the server can honour.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |field, reason: &str| {
            Err(ConfigError {
                field,
                reason: reason.to_owned(),
            })
        };
        if self.listen.is_empty() {
            return err("listen", "at least one address is needed");
        }
        if !self.redirect_listen.is_empty() && self.tls.is_none() {
            return err(
                "tls.redirect",
                "redirecting to https:// needs TLS on the listen addresses (tls.cert and tls.key)",
            );
        }
        // Port 0 is a fresh port for each bind, so it never collides.
        if let Some(addr) = self
            .redirect_listen
            .iter()
            .find(|a| a.port() != 0 && self.listen.contains(a))
        {
            return err("tls.redirect", &format!("{addr} is also a listen address"));
        }
        if let Some(addr) = self
            .proxy_protocol
            .iter()
            .find(|a| !self.listen.contains(a) && !self.redirect_listen.contains(a))
        {
            return err(
                "listen.proxy_protocol",
                &format!("{addr} is neither a listen nor a tls.redirect address"),
            );
        }
        if let Some(Err(reason)) = self.tls.as_ref().map(crate::tls::TlsConfig::validate) {
            return err("tls.sni", &reason);
        }
        if self.workers == Workers::Count(0) {
            return err("workers", "must be at least 1 (or \"auto\")");
        }
        if self.workers.count_hint() > 1024 {
            return err("workers", "at most 1024");
        }
        if self.backlog == 0 {
            return err("backlog", "must be at least 1");
        }
        if self.buffers.count == 0 || self.buffers.count > u16::MAX as usize {
            return err(
                "buffers.count",
                "must be between 1 and 65535 (io_uring indexes buffers with u16)",
            );
        }
        if self.buffers.size < 4096 || self.buffers.size > 1 << 30 {
            return err("buffers.size", "must be between 4096 and 1 GiB");
        }
        let receive = self.buffers.receive;
        if receive != 0 && (!receive.is_power_of_two() || receive > 32768) {
            return err("buffers.receive", "must be 0 (off) or a power of two up to 32768");
        }
        if self.max_connections == 0 {
            return err("max_connections", "must be at least 1");
        }
        if self.max_requests_per_conn == 0 {
            return err("max_requests_per_connection", "must be at least 1");
        }
        let l = &self.limits;
        if l.max_request_line < 16 {
            return err("limits.max_request_line", "must be at least 16 bytes");
        }
        if l.max_header_bytes < l.max_request_line {
            return err(
                "limits.max_header_bytes",
                "must be at least limits.max_request_line (the request line is part of the head)",
            );
        }
        if l.max_headers == 0 || l.max_headers > ringd_core::MAX_HEADERS {
            return err(
                "limits.max_headers",
                &format!("must be between 1 and {}", ringd_core::MAX_HEADERS),
            );
        }
        for (name, t) in [
            ("timeouts.header", self.timeouts.header),
            ("timeouts.body", self.timeouts.body),
            ("timeouts.keepalive", self.timeouts.keepalive),
            ("timeouts.send", self.timeouts.send),
            ("timeouts.drain", self.timeouts.drain),
            (
                "timeouts.handler",
                self.timeouts.handler.unwrap_or(Duration::from_secs(1)),
            ),
        ] {
            if t.is_zero() {
                return err(name, "must be at least 1 second");
            }
        }
        let h2 = &self.http2;
        if h2.max_concurrent_streams == 0 {
            return err("http2.max_concurrent_streams", "must be at least 1");
        }
        if h2.initial_window_size > (1 << 31) - 1 {
            return err(
                "http2.initial_window_size",
                "must be at most 2147483647 (RFC 9113 §6.5.2)",
            );
        }
        if !(65_535..=(1 << 31) - 1).contains(&h2.connection_window_size) {
            return err(
                "http2.connection_window_size",
                "must be between 65535 and 2147483647 (RFC 9113 §6.9.2)",
            );
        }
        if !(16_384..=16_777_215).contains(&h2.max_frame_size) {
            return err(
                "http2.max_frame_size",
                "must be between 16384 and 16777215 (RFC 9113 §6.5.2)",
            );
        }
        if h2.control_frames_per_second == 0 {
            return err("http2.control_frames_per_second", "must be at least 1");
        }
        let traffic = validate_rate_zones(&self.rate_limits)
            .and_then(|()| self.connection_limit.as_ref().map_or(Ok(()), validate_conn_limit))
            .and_then(|()| validate_compression(&self.compression));
        if let Err((field, reason)) = traffic {
            return Err(ConfigError { field, reason });
        }
        if !(8..=32768).contains(&self.ring_entries) {
            return err("ring_entries", "must be between 8 and 32768");
        }
        if self.server_name.bytes().any(|b| !(0x20..0x7f).contains(&b)) {
            return err("server_name", "must be printable ASCII");
        }
        // Framing and connection management are the server's, and so is the one Content-Type.
        const RESERVED: [&str; 11] = [
            "content-length",
            "transfer-encoding",
            "connection",
            "date",
            "server",
            "content-type",
            "keep-alive",
            "upgrade",
            "te",
            "trailer",
            "proxy-connection",
        ];
        for (i, (name, value)) in self.headers.iter().enumerate() {
            if self.headers[..i].iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                return err("headers", &format!("{name} is given twice"));
            }
            let token = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if !token || RESERVED.contains(&name.to_ascii_lowercase().as_str()) {
                return err("headers", &format!("{name:?} is not a header name ringd lets you add"));
            }
            if value
                .bytes()
                .any(|b| b == b'\r' || b == b'\n' || b == 0 || (b < 0x20 && b != b'\t') || b == 0x7f)
            {
                return err("headers", &format!("the value of {name} has control characters"));
            }
        }
        Ok(())
    }
}

/// Declares the settings a running server cannot change, once: their names
/// ([`RESTART_ONLY`]), and [`ServerConfig::keep_restart_only`], which compares them and keeps
/// the running values.
macro_rules! restart_only {
    ($($name:literal => $field:ident),* $(,)?) => {
        /// Settings a running server cannot change: they shape sockets, threads and locked memory,
        /// named as in the config file. (`tls` can change its certificates, not be switched on
        /// or off.)
        pub const RESTART_ONLY: &[&str] = &[$($name),*];

        impl ServerConfig {
            /// The restart-only settings ([`RESTART_ONLY`]) in which `self`, a reloaded
            /// configuration, differs from `running`; `self` then holds the running values of
            /// them, so that it describes what the server actually does.
            pub fn keep_restart_only(&mut self, running: &ServerConfig) -> Vec<&'static str> {
                let mut changed = Vec::new();
                $(
                    if self.$field != running.$field {
                        changed.push($name);
                        self.$field = running.$field.clone();
                    }
                )*
                changed
            }
        }
    };
}

restart_only! {
    "listen" => listen,
    "workers" => workers,
    "pin" => pin,
    "backlog" => backlog,
    "defer_accept" => defer_accept,
    "buffers" => buffers,
    "ring_entries" => ring_entries,
    "access_log" => access_log,
    "tls.redirect" => redirect_listen,
    "listen.proxy_protocol" => proxy_protocol,
}

impl Workers {
    fn count_hint(&self) -> usize {
        match self {
            Workers::Auto => 0,
            Workers::Count(n) => *n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reload_keeps_every_restart_only_setting_and_names_it() {
        let running = ServerConfig::default();
        let mut new = ServerConfig {
            listen: vec!["127.0.0.1:1".parse().unwrap()],
            workers: Workers::Count(3),
            pin: false,
            backlog: 7,
            defer_accept: true,
            buffers: BufferConfig {
                count: 3,
                ..BufferConfig::default()
            },
            ring_entries: 64,
            access_log: Some(crate::AccessLogConfig {
                target: crate::LogTarget::Stderr,
                format: crate::LogFormat::Json,
            }),
            redirect_listen: vec!["127.0.0.1:2".parse().unwrap()],
            proxy_protocol: vec!["127.0.0.1:1".parse().unwrap()],
            proxy_trusted: vec!["10.0.0.0/8".parse().unwrap()],
            max_connections: 5,
            ..ServerConfig::default()
        };
        let changed = new.keep_restart_only(&running);
        assert_eq!(changed, RESTART_ONLY, "every restart-only setting, in order");
        assert_eq!(new.keep_restart_only(&running), Vec::<&str>::new());
        // What a reload may change stays changed.
        assert_eq!(new.max_connections, 5);
        new.max_connections = running.max_connections;
        assert_eq!(new.proxy_trusted.len(), 1);
        new.proxy_trusted.clear();
        assert_eq!(format!("{new:?}"), format!("{running:?}"));
    }

    #[test]
    fn default_is_valid() {
        ServerConfig::default().validate().unwrap();
    }

    type Mutation = Box<dyn Fn(&mut ServerConfig)>;

    #[test]
    fn rejects_each_bad_value() {
        let cases: Vec<(&str, Mutation)> = vec![
            ("listen", Box::new(|c| c.listen.clear())),
            (
                "listen.proxy_protocol",
                Box::new(|c| c.proxy_protocol = vec!["127.0.0.1:9".parse().unwrap()]),
            ),
            ("workers", Box::new(|c| c.workers = Workers::Count(0))),
            ("backlog", Box::new(|c| c.backlog = 0)),
            ("buffers.count", Box::new(|c| c.buffers.count = 70_000)),
            ("buffers.size", Box::new(|c| c.buffers.size = 100)),
            ("buffers.receive", Box::new(|c| c.buffers.receive = 500)),
            ("buffers.receive", Box::new(|c| c.buffers.receive = 65536)),
            ("max_requests_per_connection", Box::new(|c| c.max_requests_per_conn = 0)),
            ("limits.max_headers", Box::new(|c| c.limits.max_headers = 10_000)),
            ("limits.max_header_bytes", Box::new(|c| c.limits.max_header_bytes = 10)),
            ("timeouts.send", Box::new(|c| c.timeouts.send = Duration::ZERO)),
            ("ring_entries", Box::new(|c| c.ring_entries = 1)),
            (
                "http2.max_concurrent_streams",
                Box::new(|c| c.http2.max_concurrent_streams = 0),
            ),
            ("http2.max_frame_size", Box::new(|c| c.http2.max_frame_size = 100)),
            (
                "http2.initial_window_size",
                Box::new(|c| c.http2.initial_window_size = 1 << 31),
            ),
            (
                "http2.connection_window_size",
                Box::new(|c| c.http2.connection_window_size = 10),
            ),
            ("server_name", Box::new(|c| c.server_name = "a\r\nb".into())),
            (
                "headers",
                Box::new(|c| c.headers = vec![("X-A".into(), "1\r\nX-B: 2".into())]),
            ),
            (
                "headers",
                Box::new(|c| c.headers = vec![("Content-Length".into(), "1".into())]),
            ),
            (
                "headers",
                Box::new(|c| c.headers = vec![("Bad Name".into(), "1".into())]),
            ),
        ];
        for (field, mutate) in cases {
            let mut c = ServerConfig::default();
            mutate(&mut c);
            assert_eq!(c.validate().unwrap_err().field, field);
        }
    }
}
