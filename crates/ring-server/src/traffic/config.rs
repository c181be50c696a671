//! The traffic settings, as data: rate-limit zones ([`RateZone`], nginx `limit_req`), the limit
//! on open connections per client ([`ConnLimit`], nginx `limit_conn`) and on-the-fly
//! compression ([`Compression`], nginx `gzip`). [`ServerConfig::validate`] checks them through
//! the functions here.
//!
//! [`ServerConfig::validate`]: crate::ServerConfig::validate

use std::fmt;
use std::str::FromStr;

/// What a limit counts a request or a connection against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKey {
    /// The client's address (an IPv4-mapped IPv6 address counts as the IPv4 address).
    Address,
    /// The network of the client's address: its first `v4` bits (IPv4) or `v6` bits (IPv6),
    /// e.g. a /24 or a /64, so that one host with many addresses is one client. A prefix of 0
    /// makes every client one: a limit for the whole server.
    Network {
        /// Prefix length for IPv4 addresses (0–32).
        v4: u8,
        /// Prefix length for IPv6 addresses (0–128).
        v6: u8,
    },
}

/// The period of a [`Rate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Per {
    /// Requests a second (`r/s`).
    Second,
    /// Requests a minute (`r/m`).
    Minute,
}

/// Requests allowed per period, as nginx writes it: `10r/s`, `600r/m` (also `r/min`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests per period (at least 1).
    pub requests: u32,
    /// The period.
    pub per: Per,
}

impl Rate {
    /// The time between two requests at this rate, in microseconds (0 when the rate is above
    /// one request a microsecond, which [`validate_rate_zones`] refuses).
    pub fn interval_us(&self) -> u64 {
        let period: u64 = match self.per {
            Per::Second => 1_000_000,
            Per::Minute => 60_000_000,
        };
        period / u64::from(self.requests.max(1))
    }
}

impl FromStr for Rate {
    type Err = String;

    fn from_str(s: &str) -> Result<Rate, String> {
        let bad = || format!("{s:?} is not a rate such as \"10r/s\" or \"600r/m\"");
        let (count, unit) = s.trim().split_once("r/").ok_or_else(bad)?;
        let per = match unit {
            "s" => Per::Second,
            "m" | "min" => Per::Minute,
            _ => return Err(bad()),
        };
        let requests: u32 = count.parse().map_err(|_| bad())?;
        if requests == 0 {
            return Err(format!("{s:?}: the rate must be at least one request"));
        }
        Ok(Rate { requests, per })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.per {
            Per::Second => "s",
            Per::Minute => "m",
        };
        write!(f, "{}r/{unit}", self.requests)
    }
}

/// A rate-limit zone (nginx `limit_req_zone` + `limit_req`): each client may make `rate`
/// requests, with bursts of `burst` more, to the paths the zone covers. One table of clients
/// per zone, shared by every worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateZone {
    /// Names the zone in `/metrics` and logs; a reload keeps the clients of a zone of the same
    /// name.
    pub name: String,
    /// What a client is.
    pub key: ClientKey,
    /// The sustained rate.
    pub rate: Rate,
    /// Requests beyond the rate a client may make at once.
    pub burst: u32,
    /// Serve a burst at once (`true`) or spread it out to the rate, delaying the requests in it
    /// (nginx's default).
    pub nodelay: bool,
    /// The path prefixes the zone covers (`/api/` covers `/api/x`); empty: every path.
    pub paths: Vec<String>,
    /// The status of a refused request (429 Too Many Requests; nginx answers 503).
    pub status: u16,
    /// Count and log what would be refused or delayed, but serve every request at once.
    pub dry_run: bool,
    /// Clients the zone tracks at once (8 bytes each, rounded up to a power of two). Past it,
    /// a new client takes the place of the one nearest to a full allowance.
    pub clients: usize,
}

impl RateZone {
    /// A zone named `name` for every path, keyed by client address, with no burst, refusing
    /// with 429, tracking 65,536 clients (512 KiB).
    pub fn new(name: impl Into<String>, rate: Rate) -> RateZone {
        RateZone {
            name: name.into(),
            key: ClientKey::Address,
            rate,
            burst: 0,
            nodelay: false,
            paths: Vec::new(),
            status: 429,
            dry_run: false,
            clients: 65_536,
        }
    }

    /// Whether the zone covers `path`.
    pub fn covers(&self, path: &str) -> bool {
        self.paths.is_empty() || self.paths.iter().any(|p| path.starts_with(p.as_str()))
    }
}

/// The limit on open connections per client (nginx `limit_conn`), counted over every worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnLimit {
    /// Open connections one client may hold.
    pub max: u32,
    /// What a client is.
    pub key: ClientKey,
    /// The status a connection over the limit is answered with (then closed): 429 by default,
    /// 503 as nginx. A TLS connection over the limit is closed without an answer.
    pub status: u16,
    /// Count and log connections over the limit, but serve them.
    pub dry_run: bool,
    /// Clients tracked at once (8 bytes each, rounded up to a power of two). A client that
    /// finds no room is served and counted as untracked; make it larger than the connections
    /// the server may hold.
    pub clients: usize,
}

impl ConnLimit {
    /// `max` connections per client address, answering 429, tracking 65,536 clients.
    pub fn new(max: u32) -> ConnLimit {
        ConnLimit {
            max,
            key: ClientKey::Address,
            status: 429,
            dry_run: false,
            clients: 65_536,
        }
    }
}

/// A content coding ringd compresses with (RFC 9110 §8.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Coding {
    /// `gzip` (RFC 1952), through zlib-rs.
    Gzip,
    /// `br` (RFC 7932).
    Brotli,
    /// `zstd` (RFC 8878).
    Zstd,
}

impl Coding {
    /// Every coding, in ringd's default order of preference.
    pub const ALL: [Coding; 3] = [Coding::Zstd, Coding::Gzip, Coding::Brotli];

    /// The coding's name in `Accept-Encoding` and `Content-Encoding`.
    pub fn token(self) -> &'static str {
        match self {
            Coding::Gzip => "gzip",
            Coding::Brotli => "br",
            Coding::Zstd => "zstd",
        }
    }
}

impl FromStr for Coding {
    type Err = String;

    fn from_str(s: &str) -> Result<Coding, String> {
        Coding::ALL
            .into_iter()
            .find(|c| c.token().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("{s:?} is not \"gzip\", \"br\" or \"zstd\""))
    }
}

/// On-the-fly compression of responses (nginx `gzip`, with Brotli and zstd).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compression {
    /// Compress at all (off by default, as in nginx).
    pub enabled: bool,
    /// The codings offered, in the server's order of preference among those a client accepts
    /// equally.
    pub encodings: Vec<Coding>,
    /// Bodies shorter than this (when their length is known) are sent as they are.
    pub min_length: u64,
    /// Media types compressed: `type/subtype`, `type/*`, or `type/*+suffix` (`application/*+json`).
    pub types: Vec<String>,
    /// gzip level, 1 (fastest) to 9 (smallest).
    pub gzip_level: u32,
    /// Brotli quality, 0 to 11.
    pub brotli_level: u32,
    /// zstd level, 1 to 19.
    pub zstd_level: i32,
}

impl Default for Compression {
    /// Off. When on: zstd, gzip, then Brotli; gzip 5, Brotli 4, zstd 3; bodies from 256 bytes;
    /// text, JSON, JavaScript, XML, SVG and WebAssembly.
    fn default() -> Self {
        Compression {
            enabled: false,
            encodings: Coding::ALL.to_vec(),
            min_length: 256,
            types: [
                "text/*",
                "application/json",
                "application/javascript",
                "application/xml",
                "application/wasm",
                "application/*+json",
                "application/*+xml",
                "image/svg+xml",
            ]
            .map(str::to_owned)
            .to_vec(),
            gzip_level: 5,
            brotli_level: 4,
            zstd_level: 3,
        }
    }
}

impl Compression {
    /// The level configured for `coding`.
    pub fn level(&self, coding: Coding) -> i32 {
        match coding {
            Coding::Gzip => self.gzip_level as i32,
            Coding::Brotli => self.brotli_level as i32,
            Coding::Zstd => self.zstd_level,
        }
    }

    /// Whether a body of `content_type` (parameters allowed) is compressed.
    pub fn compresses_type(&self, content_type: &[u8]) -> bool {
        let Ok(value) = std::str::from_utf8(content_type) else {
            return false;
        };
        let essence = value.split(';').next().unwrap_or("").trim();
        let Some((kind, sub)) = essence.split_once('/') else {
            return false;
        };
        self.types.iter().any(|pattern| {
            let Some((p_kind, p_sub)) = pattern.split_once('/') else {
                return false;
            };
            if !p_kind.eq_ignore_ascii_case(kind) {
                return false;
            }
            match p_sub.strip_prefix('*') {
                Some("") => true,
                Some(suffix) => sub.len() > suffix.len() && ends_with_ignore_case(sub, suffix),
                None => p_sub.eq_ignore_ascii_case(sub),
            }
        })
    }
}

fn ends_with_ignore_case(s: &str, suffix: &str) -> bool {
    s.len() >= suffix.len() && s[s.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
}

/// A setting that is wrong: its name as in the config file, and why.
pub(crate) type Invalid = (&'static str, String);

/// The most clients one table may track (512 MiB of 8-byte entries).
const MAX_CLIENTS: usize = 1 << 26;
/// The longest a client may be held in debt: (burst + 1) × interval.
const MAX_HORIZON_US: u64 = 24 * 3600 * 1_000_000;

fn check_key(field: &'static str, key: ClientKey) -> Result<(), Invalid> {
    match key {
        ClientKey::Network { v4, v6 } if v4 > 32 || v6 > 128 => Err((
            field,
            "the network prefix must be 0–32 bits for IPv4 and 0–128 for IPv6".to_owned(),
        )),
        _ => Ok(()),
    }
}

fn check_clients(field: &'static str, clients: usize) -> Result<(), Invalid> {
    if (8..=MAX_CLIENTS).contains(&clients) {
        Ok(())
    } else {
        Err((field, format!("must be between 8 and {MAX_CLIENTS}")))
    }
}

fn check_status(field: &'static str, status: u16) -> Result<(), Invalid> {
    if (400..=599).contains(&status) {
        Ok(())
    } else {
        Err((field, format!("{status} is not an error status (400–599)")))
    }
}

/// Checks every zone: names, rates, bursts, paths, statuses, sizes.
pub(crate) fn validate_rate_zones(zones: &[RateZone]) -> Result<(), Invalid> {
    for (i, zone) in zones.iter().enumerate() {
        let name = &zone.name;
        let named = |field, reason: String| Err((field, format!("zone {name:?}: {reason}")));
        let valid_name = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid_name {
            return Err((
                "rate_limit.name",
                format!("{name:?}: a zone needs a name of letters, digits, '-' and '_' (at most 64)"),
            ));
        }
        if zones[..i].iter().any(|z| z.name == *name) {
            return named("rate_limit.name", "two zones have this name".to_owned());
        }
        let interval = zone.rate.interval_us();
        if interval == 0 {
            return named("rate_limit.rate", "at most 1000000r/s".to_owned());
        }
        if (u64::from(zone.burst) + 1).saturating_mul(interval) > MAX_HORIZON_US {
            return named(
                "rate_limit.burst",
                format!(
                    "a burst of {} at {} holds a client back for more than a day: lower it",
                    zone.burst, zone.rate
                ),
            );
        }
        if let Some(p) = zone.paths.iter().find(|p| !p.starts_with('/')) {
            return named("rate_limit.paths", format!("{p:?} does not start with '/'"));
        }
        if let Err((field, reason)) = check_status("rate_limit.status", zone.status)
            .and_then(|()| check_key("rate_limit.key", zone.key))
            .and_then(|()| check_clients("rate_limit.clients", zone.clients))
        {
            return named(field, reason);
        }
    }
    Ok(())
}

/// Checks the connection limit.
pub(crate) fn validate_conn_limit(limit: &ConnLimit) -> Result<(), Invalid> {
    if limit.max == 0 {
        return Err(("connection_limit.max", "must be at least 1".to_owned()));
    }
    check_status("connection_limit.status", limit.status)?;
    check_key("connection_limit.key", limit.key)?;
    check_clients("connection_limit.clients", limit.clients)
}

/// Checks the compression settings.
pub(crate) fn validate_compression(c: &Compression) -> Result<(), Invalid> {
    if c.enabled && c.encodings.is_empty() {
        return Err((
            "compression.encodings",
            "name at least one of gzip, br, zstd".to_owned(),
        ));
    }
    for (i, coding) in c.encodings.iter().enumerate() {
        if c.encodings[..i].contains(coding) {
            return Err(("compression.encodings", format!("{} is given twice", coding.token())));
        }
    }
    if !(1..=9).contains(&c.gzip_level) {
        return Err(("compression.gzip_level", "must be between 1 and 9".to_owned()));
    }
    if c.brotli_level > 11 {
        return Err(("compression.brotli_level", "must be between 0 and 11".to_owned()));
    }
    if !(1..=19).contains(&c.zstd_level) {
        return Err(("compression.zstd_level", "must be between 1 and 19".to_owned()));
    }
    for t in &c.types {
        let token = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+*".contains(&b))
        };
        let valid = t.split_once('/').is_some_and(|(kind, sub)| token(kind) && token(sub))
            && !t.split_once('/').is_some_and(|(kind, _)| kind.contains('*'));
        if !valid {
            return Err((
                "compression.types",
                format!("{t:?} is not a media type such as \"text/*\", \"application/json\" or \"application/*+json\""),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_and_print_as_nginx_writes_them() {
        let r: Rate = "10r/s".parse().unwrap();
        assert_eq!((r.requests, r.per, r.interval_us()), (10, Per::Second, 100_000));
        let m: Rate = "600r/min".parse().unwrap();
        assert_eq!((m.interval_us(), m.to_string()), (100_000, "600r/m".to_owned()));
        assert_eq!("3r/s".parse::<Rate>().unwrap().interval_us(), 333_333);
        for bad in ["10", "10r/h", "r/s", "0r/s", "-1r/s", "1.5r/s"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad}");
        }
    }

    #[test]
    fn zones_cover_their_prefixes() {
        let mut z = RateZone::new("a", "1r/s".parse().unwrap());
        assert!(z.covers("/anything"));
        z.paths = vec!["/api/".into(), "/login".into()];
        assert!(z.covers("/api/x") && z.covers("/login") && z.covers("/login2"));
        assert!(!z.covers("/") && !z.covers("/apix"));
    }

    #[test]
    fn bad_zones_are_named() {
        let ok = RateZone::new("api", "10r/s".parse().unwrap());
        assert!(validate_rate_zones(std::slice::from_ref(&ok)).is_ok());
        let cases: Vec<(&str, RateZone)> = vec![
            (
                "rate_limit.name",
                RateZone {
                    name: "".into(),
                    ..ok.clone()
                },
            ),
            (
                "rate_limit.name",
                RateZone {
                    name: "a b".into(),
                    ..ok.clone()
                },
            ),
            (
                "rate_limit.rate",
                RateZone {
                    rate: Rate {
                        requests: 2_000_000,
                        per: Per::Second,
                    },
                    ..ok.clone()
                },
            ),
            (
                "rate_limit.burst",
                RateZone {
                    rate: "1r/m".parse().unwrap(),
                    burst: 2000,
                    ..ok.clone()
                },
            ),
            (
                "rate_limit.paths",
                RateZone {
                    paths: vec!["api".into()],
                    ..ok.clone()
                },
            ),
            (
                "rate_limit.status",
                RateZone {
                    status: 200,
                    ..ok.clone()
                },
            ),
            (
                "rate_limit.key",
                RateZone {
                    key: ClientKey::Network { v4: 33, v6: 64 },
                    ..ok.clone()
                },
            ),
            (
                "rate_limit.clients",
                RateZone {
                    clients: 1,
                    ..ok.clone()
                },
            ),
        ];
        for (field, zone) in cases {
            let (got, reason) = validate_rate_zones(&[zone]).unwrap_err();
            assert_eq!(got, field, "{reason}");
        }
        let (field, reason) = validate_rate_zones(&[ok.clone(), ok]).unwrap_err();
        assert_eq!(field, "rate_limit.name");
        assert!(reason.contains("two zones"), "{reason}");
    }

    #[test]
    fn types_match_exactly_by_kind_or_by_suffix() {
        let c = Compression::default();
        for yes in [
            "text/html; charset=utf-8",
            "TEXT/CSS",
            "application/json",
            "application/problem+json",
            "application/atom+xml",
            "image/svg+xml",
            "application/wasm",
        ] {
            assert!(c.compresses_type(yes.as_bytes()), "{yes}");
        }
        for no in [
            "image/png",
            "application/octet-stream",
            "application/+json",
            "video/mp4",
            "garbage",
            "",
        ] {
            assert!(!c.compresses_type(no.as_bytes()), "{no}");
        }
    }

    #[test]
    fn bad_compression_settings_are_named() {
        assert!(validate_compression(&Compression::default()).is_ok());
        let cases: Vec<(&str, Compression)> = vec![
            (
                "compression.encodings",
                Compression {
                    enabled: true,
                    encodings: vec![],
                    ..Default::default()
                },
            ),
            (
                "compression.encodings",
                Compression {
                    encodings: vec![Coding::Gzip, Coding::Gzip],
                    ..Default::default()
                },
            ),
            (
                "compression.gzip_level",
                Compression {
                    gzip_level: 0,
                    ..Default::default()
                },
            ),
            (
                "compression.brotli_level",
                Compression {
                    brotli_level: 12,
                    ..Default::default()
                },
            ),
            (
                "compression.zstd_level",
                Compression {
                    zstd_level: 20,
                    ..Default::default()
                },
            ),
            (
                "compression.types",
                Compression {
                    types: vec!["json".into()],
                    ..Default::default()
                },
            ),
            (
                "compression.types",
                Compression {
                    types: vec!["*/json".into()],
                    ..Default::default()
                },
            ),
        ];
        for (field, c) in cases {
            assert_eq!(validate_compression(&c).unwrap_err().0, field);
        }
        assert_eq!(
            validate_conn_limit(&ConnLimit::new(0)).unwrap_err().0,
            "connection_limit.max"
        );
        assert!(validate_conn_limit(&ConnLimit::new(10)).is_ok());
    }
}
