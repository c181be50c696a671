//! Configuration: the TOML file, then flags on top, validated into one [`Settings`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use ring_server::{
    AccessLogConfig, CertFiles, LogFormat, LogTarget, ServerConfig, Shed, SniCert, StaticOptions, TlsConfig, Workers,
};
use serde::{Deserialize, Serialize};

use crate::args::{parse_listen, ServeArgs, WorkersArg};
use crate::traffic::{zone_error_line, CompressionFile, ConnLimitFile, RateLimitFile};

/// Everything `ringd serve` needs: the server's configuration and what to serve.
#[derive(Debug, Clone)]
pub struct Settings {
    pub server: ServerConfig,
    /// Files to serve; `None` serves the built-in site.
    pub root: Option<PathBuf>,
    /// Log filter.
    pub log: String,
    /// "auto", "human" or "json".
    pub log_format: String,
    /// Where `/metrics` is served, if anywhere.
    pub admin: Option<std::net::SocketAddr>,
    /// Directories served below path prefixes (`[[static]]`).
    pub statics: Vec<(String, PathBuf)>,
    /// How static files are served.
    pub static_options: StaticOptions,
}

/// The config file. Unknown keys are errors (a typo must not be silently ignored).
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<Vec<ListenEntry>>,
    workers: Option<WorkersSetting>,
    pin: Option<bool>,
    root: Option<PathBuf>,
    backlog: Option<u32>,
    defer_accept: Option<bool>,
    max_requests_per_connection: Option<u64>,
    max_connections: Option<usize>,
    shed: Option<String>,
    server_name: Option<String>,
    sendfile: Option<bool>,
    ring_entries: Option<u32>,
    log: Option<String>,
    log_format: Option<String>,
    admin: Option<String>,
    #[serde(default)]
    limits: LimitsFile,
    #[serde(default)]
    buffers: BuffersFile,
    #[serde(default)]
    timeouts: TimeoutsFile,
    #[serde(default)]
    access_log: AccessLogFile,
    /// Added to every response (nginx `add_header`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    static_files: StaticFilesFile,
    /// `[[cache_control]]`: Cache-Control for matching static files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    cache_control: Vec<CacheRule>,
    /// `[[static]]`: a directory served below a path prefix.
    #[serde(default, rename = "static", skip_serializing_if = "Vec::is_empty")]
    statics: Vec<StaticFile>,
    /// `[tls]`: HTTPS on the listen addresses.
    #[serde(default, skip_serializing_if = "TlsFile::is_empty")]
    tls: TlsFile,
    /// `[http2]`: where HTTP/2 is spoken and the settings it announces.
    #[serde(default)]
    http2: Http2File,
    /// `[proxy_protocol]`: who may send the PROXY headers of `proxy_protocol` listen addresses.
    #[serde(default)]
    proxy_protocol: ProxyProtocolFile,
    /// `[[rate_limit]]`: rate-limit zones (nginx `limit_req`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    rate_limit: Vec<RateLimitFile>,
    /// `[connection_limit]`: open connections per client (nginx `limit_conn`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    connection_limit: Option<ConnLimitFile>,
    /// `[compression]`: gzip, Brotli and zstd on the fly.
    #[serde(default)]
    compression: CompressionFile,
}

/// A `listen` entry: `"HOST:PORT"`, or `{ address = "HOST:PORT", proxy_protocol = true }`
/// (nginx `listen ... proxy_protocol`).
#[derive(Debug, Deserialize, Serialize)]
#[serde(
    untagged,
    expecting = "listen entries are \"HOST:PORT\" or { address = \"HOST:PORT\", proxy_protocol = true }"
)]
enum ListenEntry {
    Address(String),
    Table(ListenTable),
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct ListenTable {
    address: String,
    /// Connections start with a PROXY protocol header (v1 or v2) from a load balancer.
    #[serde(default)]
    proxy_protocol: bool,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Http2File {
    /// h2 over TLS (ALPN).
    tls: Option<bool>,
    /// h2c with prior knowledge on plain listeners.
    cleartext: Option<bool>,
    max_concurrent_streams: Option<u32>,
    initial_window_size: Option<u32>,
    connection_window_size: Option<u32>,
    max_frame_size: Option<u32>,
    control_frames_per_second: Option<u32>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct ProxyProtocolFile {
    /// Networks (CIDR) allowed to send a PROXY header; empty: any source.
    #[serde(default)]
    trusted: Vec<String>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct TlsFile {
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    /// Plain HTTP addresses that redirect to https://.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    redirect: Vec<String>,
    /// `[[tls.sni]]`: certificates chosen by server name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    sni: Vec<SniFile>,
}

impl TlsFile {
    fn is_empty(&self) -> bool {
        self.cert.is_none() && self.key.is_none() && self.redirect.is_empty() && self.sni.is_empty()
    }
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct SniFile {
    names: Vec<String>,
    cert: PathBuf,
    key: PathBuf,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct StaticFilesFile {
    precompressed: Option<bool>,
    listing: Option<bool>,
    default_type: Option<String>,
    allow_outside_symlinks: Option<bool>,
    /// Bytes per worker; 0 turns the hot-file cache off.
    cache_max_bytes: Option<u64>,
    cache_max_file: Option<u64>,
    cache_max_open_files: Option<usize>,
    /// Seconds.
    cache_revalidate: Option<u64>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct CacheRule {
    /// `*.ext` or a path prefix starting with `/`.
    #[serde(rename = "match")]
    pattern: String,
    value: String,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct StaticFile {
    prefix: String,
    root: PathBuf,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct AccessLogFile {
    /// "off", "stderr" or a file path.
    path: Option<String>,
    /// "combined" or "json".
    format: Option<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(untagged)]
enum WorkersSetting {
    Count(usize),
    Name(String),
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct LimitsFile {
    max_request_line: Option<usize>,
    max_header_bytes: Option<usize>,
    max_headers: Option<usize>,
    max_body: Option<u64>,
}

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct BuffersFile {
    count: Option<usize>,
    size: Option<usize>,
    receive: Option<usize>,
}

/// Seconds.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct TimeoutsFile {
    header: Option<u64>,
    body: Option<u64>,
    keepalive: Option<u64>,
    send: Option<u64>,
    /// 0 = no handler deadline.
    handler: Option<u64>,
    drain: Option<u64>,
    drain_idle: Option<u64>,
}

impl Settings {
    /// Reads `--config` (if any) and applies the flags over it.
    pub fn load(args: &ServeArgs) -> Result<Settings> {
        let (file, text) = match &args.config {
            Some(path) => {
                let (file, text) = read_file(path)?;
                (file, Some(text))
            }
            None => (FileConfig::default(), None),
        };
        let mut s = ServerConfig::default();
        if let Some(listen) = &file.listen {
            s.listen.clear();
            for entry in listen {
                let (address, proxy) = match entry {
                    ListenEntry::Address(a) => (a, false),
                    ListenEntry::Table(t) => (&t.address, t.proxy_protocol),
                };
                let addr = parse_listen(address).map_err(|e| anyhow::anyhow!("config: listen: {e}"))?;
                s.listen.push(addr);
                if proxy {
                    s.proxy_protocol.push(addr);
                }
            }
        }
        // The flags replace the file's listen entries, their proxy_protocol included.
        if !args.listen.is_empty() {
            s.listen = args.listen.clone();
            s.proxy_protocol.clear();
        }
        match args.proxy_protocol {
            Some(true) => s.proxy_protocol = s.listen.clone(),
            Some(false) => s.proxy_protocol.clear(),
            None => {}
        }
        let trusted = match &args.proxy_protocol_trusted {
            Some(flag) => flag.clone(),
            None => file.proxy_protocol.trusted.clone(),
        };
        s.proxy_trusted = trusted
            .iter()
            .filter(|t| !t.trim().is_empty())
            .map(|t| {
                t.trim()
                    .parse()
                    .map_err(|e| anyhow::anyhow!("config: proxy_protocol.trusted: {e}"))
            })
            .collect::<Result<_>>()?;
        s.workers = match (args.workers, &file.workers) {
            (Some(WorkersArg::Count(n)), _) => Workers::Count(n),
            (Some(WorkersArg::Auto), _) => Workers::Auto,
            (None, Some(WorkersSetting::Count(n))) => Workers::Count(*n),
            (None, Some(WorkersSetting::Name(n))) if n == "auto" => Workers::Auto,
            (None, Some(WorkersSetting::Name(n))) => {
                bail!("config: workers: {n:?} is neither a number nor \"auto\"")
            }
            (None, None) => Workers::Auto,
        };
        set(&mut s.pin, file.pin, args.pin);
        set(&mut s.backlog, file.backlog, args.backlog);
        set(&mut s.defer_accept, file.defer_accept, args.defer_accept);
        set(
            &mut s.max_requests_per_conn,
            file.max_requests_per_connection,
            args.max_requests_per_conn,
        );
        set(&mut s.max_connections, file.max_connections, args.max_connections);
        s.shed = match file.shed.as_deref() {
            None | Some("503") => Shed::Respond503,
            Some("close") => Shed::Close,
            Some(other) => bail!("config: shed: {other:?} is neither \"503\" nor \"close\""),
        };
        set(&mut s.ring_entries, file.ring_entries, None);
        set(&mut s.server_name, file.server_name, None);
        set(&mut s.sendfile, file.sendfile, args.sendfile);
        let l = &mut s.limits;
        set(
            &mut l.max_request_line,
            file.limits.max_request_line,
            args.max_request_line,
        );
        set(
            &mut l.max_header_bytes,
            file.limits.max_header_bytes,
            args.max_header_bytes,
        );
        set(&mut l.max_headers, file.limits.max_headers, args.max_headers);
        set(&mut l.max_body, file.limits.max_body, args.max_body);
        set(&mut s.buffers.count, file.buffers.count, args.buffers);
        set(&mut s.buffers.size, file.buffers.size, args.buffer_size);
        set(&mut s.buffers.receive, file.buffers.receive, args.receive_buffers);
        let t = &mut s.timeouts;
        set_secs(&mut t.header, file.timeouts.header, args.header_timeout);
        set_secs(&mut t.body, file.timeouts.body, args.body_timeout);
        set_secs(&mut t.keepalive, file.timeouts.keepalive, args.keepalive_timeout);
        set_secs(&mut t.send, file.timeouts.send, args.send_timeout);
        set_secs(&mut t.drain, file.timeouts.drain, args.drain_timeout);
        set_secs(&mut t.drain_idle, file.timeouts.drain_idle, None);
        if let Some(secs) = args.handler_timeout.or(file.timeouts.handler) {
            t.handler = (secs > 0).then(|| Duration::from_secs(secs));
        }
        let h2 = &mut s.http2;
        set(&mut h2.tls, file.http2.tls, args.h2);
        set(&mut h2.cleartext, file.http2.cleartext, args.h2c);
        set(&mut h2.max_concurrent_streams, file.http2.max_concurrent_streams, None);
        set(&mut h2.initial_window_size, file.http2.initial_window_size, None);
        set(&mut h2.connection_window_size, file.http2.connection_window_size, None);
        set(&mut h2.max_frame_size, file.http2.max_frame_size, None);
        set(
            &mut h2.control_frames_per_second,
            file.http2.control_frames_per_second,
            None,
        );
        let log_path = args.access_log.clone().or(file.access_log.path);
        let log_format = args.access_log_format.clone().or(file.access_log.format);
        let format = match log_format.as_deref() {
            None | Some("combined") => LogFormat::Combined,
            Some("json") => LogFormat::Json,
            Some(other) => bail!("access_log.format: {other:?} is neither \"combined\" nor \"json\""),
        };
        s.access_log = match log_path.as_deref() {
            None | Some("off") => None,
            Some("") => bail!("access_log.path: empty (use \"off\", \"stderr\" or a file path)"),
            Some("stderr") => Some(AccessLogConfig {
                target: LogTarget::Stderr,
                format,
            }),
            Some(path) => Some(AccessLogConfig {
                target: LogTarget::File(PathBuf::from(path)),
                format,
            }),
        };
        s.headers = file.headers.into_iter().collect();
        let tls = file.tls;
        s.tls = match (args.tls_cert.clone().or(tls.cert), args.tls_key.clone().or(tls.key)) {
            (Some(cert), Some(key)) => Some(TlsConfig {
                default: CertFiles { cert, key },
                sni: tls
                    .sni
                    .into_iter()
                    .map(|e| SniCert {
                        names: e.names,
                        files: CertFiles {
                            cert: e.cert,
                            key: e.key,
                        },
                    })
                    .collect(),
            }),
            (None, None) if tls.sni.is_empty() => None,
            (None, None) => bail!("tls.sni: the default certificate is missing: set tls.cert and tls.key"),
            (Some(_), None) => bail!("tls: a certificate without its key: set tls.key (--tls-key)"),
            (None, Some(_)) => bail!("tls: a key without its certificate: set tls.cert (--tls-cert)"),
        };
        s.redirect_listen = if args.http_redirect.is_empty() {
            tls.redirect
                .iter()
                .map(|l| parse_listen(l).map_err(|e| anyhow::anyhow!("config: tls.redirect: {e}")))
                .collect::<Result<_>>()?
        } else {
            args.http_redirect.clone()
        };
        s.rate_limits = file
            .rate_limit
            .into_iter()
            .map(RateLimitFile::zone)
            .collect::<Result<_>>()?;
        s.connection_limit = file.connection_limit.map(ConnLimitFile::limit).transpose()?;
        s.compression = file.compression.compression()?;
        if let Err(e) = s.validate() {
            // Name the line when the bad value came from the file.
            return Err(match (&args.config, &text) {
                (Some(path), Some(text)) => {
                    match zone_error_line(text, e.field, &e.reason).or_else(|| line_of(text, e.field)) {
                        Some(line) => anyhow::anyhow!("config file {} line {line}: {e}", path.display()),
                        None => e.into(),
                    }
                }
                _ => e.into(),
            });
        }
        let statics: Vec<(String, PathBuf)> = file.statics.into_iter().map(|s| (s.prefix, s.root)).collect();
        // Static files compress themselves (once per version, kept in their cache).
        let mut static_options = StaticOptions {
            compression: s.compression.clone(),
            ..StaticOptions::default()
        };
        set(&mut static_options.precompressed, file.static_files.precompressed, None);
        set(&mut static_options.listing, file.static_files.listing, None);
        set(&mut static_options.default_type, file.static_files.default_type, None);
        set(
            &mut static_options.allow_outside_symlinks,
            file.static_files.allow_outside_symlinks,
            None,
        );
        let cache = &mut static_options.cache;
        set(&mut cache.max_bytes, file.static_files.cache_max_bytes, None);
        set(&mut cache.max_file, file.static_files.cache_max_file, None);
        set(&mut cache.max_open_files, file.static_files.cache_max_open_files, None);
        set_secs(&mut cache.revalidate, file.static_files.cache_revalidate, None);
        if static_options.default_type.bytes().any(|b| !(0x20..0x7f).contains(&b))
            || static_options.default_type.is_empty()
        {
            bail!("static_files.default_type: must be a printable media type such as \"application/octet-stream\"");
        }
        for rule in file.cache_control {
            if !(rule.pattern.starts_with("*.") || rule.pattern.starts_with('/')) {
                bail!(
                    "cache_control: match {:?} must be \"*.ext\" or a path prefix starting with '/'",
                    rule.pattern
                );
            }
            if rule.value.is_empty() || rule.value.bytes().any(|b| !(0x20..0x7f).contains(&b)) {
                bail!("cache_control: the value for {:?} must be printable text", rule.pattern);
            }
            static_options.cache_control.push((rule.pattern, rule.value));
        }
        let root = args.root.clone().or(file.root);
        // Paths are printed back as TOML (`ringd check`) and in logs: they must be text.
        let paths = root.iter().chain(statics.iter().map(|(_, p)| p));
        let log_path = match &s.access_log {
            Some(AccessLogConfig {
                target: LogTarget::File(p),
                ..
            }) => Some(p),
            _ => None,
        };
        let tls_paths = s.tls.iter().flat_map(|t| {
            std::iter::once(&t.default)
                .chain(t.sni.iter().map(|e| &e.files))
                .flat_map(|f| [&f.cert, &f.key])
        });
        if let Some(bad) = paths.chain(log_path).chain(tls_paths).find(|p| p.to_str().is_none()) {
            bail!(
                "the path {} is not valid UTF-8: rename it or use another",
                bad.display()
            );
        }
        let log = args.log.clone().or(file.log).unwrap_or_else(|| "info".to_owned());
        let log_format = args
            .log_format
            .clone()
            .or(file.log_format)
            .unwrap_or_else(|| "auto".to_owned());
        if !["auto", "human", "json"].contains(&log_format.as_str()) {
            bail!("log_format: {log_format:?} is not \"auto\", \"human\" or \"json\"");
        }
        let admin = match (args.admin, file.admin) {
            (Some(a), _) => Some(a),
            (None, Some(a)) => Some(parse_listen(&a).map_err(|e| anyhow::anyhow!("config: admin: {e}"))?),
            (None, None) => None,
        };
        Ok(Settings {
            server: s,
            root,
            log,
            log_format,
            admin,
            statics,
            static_options,
        })
    }
}

impl Settings {
    /// The effective configuration as a config file (every key, defaults included).
    pub fn to_toml(&self) -> String {
        let s = &self.server;
        let t = &s.timeouts;
        let file = FileConfig {
            listen: Some(
                s.listen
                    .iter()
                    .map(|a| {
                        if s.proxy_protocol.contains(a) {
                            ListenEntry::Table(ListenTable {
                                address: a.to_string(),
                                proxy_protocol: true,
                            })
                        } else {
                            ListenEntry::Address(a.to_string())
                        }
                    })
                    .collect(),
            ),
            pin: Some(s.pin),
            workers: Some(match s.workers {
                Workers::Auto => WorkersSetting::Name("auto".to_owned()),
                Workers::Count(n) => WorkersSetting::Count(n),
            }),
            root: self.root.clone(),
            backlog: Some(s.backlog),
            defer_accept: Some(s.defer_accept),
            max_requests_per_connection: Some(s.max_requests_per_conn),
            max_connections: Some(s.max_connections),
            shed: Some(match s.shed {
                Shed::Respond503 => "503".to_owned(),
                Shed::Close => "close".to_owned(),
            }),
            server_name: Some(s.server_name.clone()),
            sendfile: Some(s.sendfile),
            ring_entries: Some(s.ring_entries),
            log: Some(self.log.clone()),
            log_format: Some(self.log_format.clone()),
            admin: self.admin.map(|a| a.to_string()),
            limits: LimitsFile {
                max_request_line: Some(s.limits.max_request_line),
                max_header_bytes: Some(s.limits.max_header_bytes),
                max_headers: Some(s.limits.max_headers),
                max_body: Some(s.limits.max_body),
            },
            buffers: BuffersFile {
                count: Some(s.buffers.count),
                size: Some(s.buffers.size),
                receive: Some(s.buffers.receive),
            },
            timeouts: TimeoutsFile {
                header: Some(t.header.as_secs()),
                body: Some(t.body.as_secs()),
                keepalive: Some(t.keepalive.as_secs()),
                send: Some(t.send.as_secs()),
                handler: Some(t.handler.map_or(0, |h| h.as_secs())),
                drain: Some(t.drain.as_secs()),
                drain_idle: Some(t.drain_idle.as_secs()),
            },
            headers: s.headers.iter().cloned().collect(),
            static_files: StaticFilesFile {
                precompressed: Some(self.static_options.precompressed),
                listing: Some(self.static_options.listing),
                default_type: Some(self.static_options.default_type.clone()),
                allow_outside_symlinks: Some(self.static_options.allow_outside_symlinks),
                cache_max_bytes: Some(self.static_options.cache.max_bytes),
                cache_max_file: Some(self.static_options.cache.max_file),
                cache_max_open_files: Some(self.static_options.cache.max_open_files),
                cache_revalidate: Some(self.static_options.cache.revalidate.as_secs()),
            },
            cache_control: self
                .static_options
                .cache_control
                .iter()
                .map(|(pattern, value)| CacheRule {
                    pattern: pattern.clone(),
                    value: value.clone(),
                })
                .collect(),
            statics: self
                .statics
                .iter()
                .map(|(prefix, root)| StaticFile {
                    prefix: prefix.clone(),
                    root: root.clone(),
                })
                .collect(),
            tls: TlsFile {
                cert: s.tls.as_ref().map(|t| t.default.cert.clone()),
                key: s.tls.as_ref().map(|t| t.default.key.clone()),
                redirect: s.redirect_listen.iter().map(ToString::to_string).collect(),
                sni: s
                    .tls
                    .iter()
                    .flat_map(|t| &t.sni)
                    .map(|e| SniFile {
                        names: e.names.clone(),
                        cert: e.files.cert.clone(),
                        key: e.files.key.clone(),
                    })
                    .collect(),
            },
            http2: Http2File {
                tls: Some(s.http2.tls),
                cleartext: Some(s.http2.cleartext),
                max_concurrent_streams: Some(s.http2.max_concurrent_streams),
                initial_window_size: Some(s.http2.initial_window_size),
                connection_window_size: Some(s.http2.connection_window_size),
                max_frame_size: Some(s.http2.max_frame_size),
                control_frames_per_second: Some(s.http2.control_frames_per_second),
            },
            proxy_protocol: ProxyProtocolFile {
                trusted: s.proxy_trusted.iter().map(ToString::to_string).collect(),
            },
            rate_limit: s.rate_limits.iter().map(RateLimitFile::of).collect(),
            connection_limit: s.connection_limit.as_ref().map(ConnLimitFile::of),
            compression: CompressionFile::of(&s.compression),
            access_log: AccessLogFile {
                path: Some(match s.access_log.as_ref().map(|l| &l.target) {
                    None => "off".to_owned(),
                    Some(LogTarget::Stderr) => "stderr".to_owned(),
                    Some(LogTarget::File(p)) => p.display().to_string(),
                }),
                format: Some(
                    match s.access_log.as_ref().map_or(LogFormat::Combined, |l| l.format) {
                        LogFormat::Combined => "combined",
                        LogFormat::Json => "json",
                    }
                    .to_owned(),
                ),
            },
        };
        toml::to_string(&file).expect("a config always serialises")
    }

    /// The settings (named as in the config file) that differ from `new`.
    pub fn changes(&self, new: &Settings) -> Vec<&'static str> {
        let (a, b) = (&self.server, &new.server);
        let mut changed = Vec::new();
        let mut check = |name, differs: bool| {
            if differs {
                changed.push(name);
            }
        };
        check("listen", a.listen != b.listen);
        check("workers", a.workers != b.workers);
        check("pin", a.pin != b.pin);
        check("backlog", a.backlog != b.backlog);
        check("defer_accept", a.defer_accept != b.defer_accept);
        check("buffers", a.buffers != b.buffers);
        check("ring_entries", a.ring_entries != b.ring_entries);
        check("root", self.root != new.root);
        check("static", self.statics != new.statics);
        check("static_files", self.static_options != new.static_options);
        check("headers", a.headers != b.headers);
        check("limits", a.limits != b.limits);
        check("timeouts", a.timeouts != b.timeouts);
        check(
            "max_requests_per_connection",
            a.max_requests_per_conn != b.max_requests_per_conn,
        );
        check("max_connections", a.max_connections != b.max_connections);
        check("shed", a.shed != b.shed);
        check("server_name", a.server_name != b.server_name);
        check("sendfile", a.sendfile != b.sendfile);
        check("log", self.log != new.log);
        check("log_format", self.log_format != new.log_format);
        check("admin", self.admin != new.admin);
        check("access_log", a.access_log != b.access_log);
        check("tls", a.tls != b.tls);
        check("tls.redirect", a.redirect_listen != b.redirect_listen);
        check("http2", a.http2 != b.http2);
        check("listen.proxy_protocol", a.proxy_protocol != b.proxy_protocol);
        check("proxy_protocol.trusted", a.proxy_trusted != b.proxy_trusted);
        check("rate_limit", a.rate_limits != b.rate_limits);
        check("connection_limit", a.connection_limit != b.connection_limit);
        check("compression", a.compression != b.compression);
        changed
    }
}

fn set<T>(field: &mut T, file: Option<T>, flag: Option<T>) {
    if let Some(v) = flag.or(file) {
        *field = v;
    }
}

fn set_secs(field: &mut Duration, file: Option<u64>, flag: Option<u64>) {
    set(field, file.map(Duration::from_secs), flag.map(Duration::from_secs));
}

/// The line of `field` (`key` or `section.key`) in a config file's text, if it is there.
fn line_of(text: &str, field: &str) -> Option<usize> {
    let (section, key) = match field.split_once('.') {
        Some((s, k)) => (Some(s), k),
        None => (None, field),
    };
    let mut current: Option<&str> = None;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if let Some(name) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            current = Some(name.trim_matches(|c| c == '[' || c == ']').trim());
            continue;
        }
        let names_key = t
            .split_once('=')
            .is_some_and(|(k, _)| k.trim().trim_matches('"') == key);
        if names_key && current == section {
            return Some(i + 1);
        }
    }
    None
}

fn read_file(path: &Path) -> Result<(FileConfig, String)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
    let file = toml::from_str(&text).map_err(|e| {
        // toml's own message spans several lines with a caret; an operator's log wants one.
        let line = e
            .span()
            .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
            .map_or(String::new(), |l| format!(" line {l}"));
        let message = e.message().replace('\n', " ");
        anyhow::anyhow!("config file {}{line}: {message}", path.display())
    })?;
    Ok((file, text))
}

#[cfg(test)]
mod tests;
