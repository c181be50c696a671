//! The config file's traffic sections: `[[rate_limit]]` zones, `[connection_limit]` and
//! `[compression]`, turned into ring-server's settings and back (for `ringd check`).

use anyhow::{bail, Context, Result};
use ring_server::{ClientKey, Coding, Compression, ConnLimit, RateZone};
use serde::{Deserialize, Serialize};

/// `[[rate_limit]]`: one zone (nginx `limit_req_zone` + `limit_req`).
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitFile {
    name: String,
    /// `10r/s`, `600r/m`.
    rate: String,
    burst: Option<u32>,
    nodelay: Option<bool>,
    /// "address" (default) or "network".
    key: Option<String>,
    /// With `key = "network"`: prefix lengths (24 and 64 by default).
    ipv4_prefix: Option<u8>,
    ipv6_prefix: Option<u8>,
    /// Path prefixes; none: every path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    paths: Vec<String>,
    status: Option<u16>,
    dry_run: Option<bool>,
    clients: Option<usize>,
}

/// `[connection_limit]` (nginx `limit_conn`).
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConnLimitFile {
    max: u32,
    key: Option<String>,
    ipv4_prefix: Option<u8>,
    ipv6_prefix: Option<u8>,
    status: Option<u16>,
    dry_run: Option<bool>,
    clients: Option<usize>,
}

/// `[compression]` (nginx `gzip`, with Brotli and zstd).
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CompressionFile {
    enabled: Option<bool>,
    /// In the server's order of preference: "zstd", "gzip", "br".
    encodings: Option<Vec<String>>,
    min_length: Option<u64>,
    types: Option<Vec<String>>,
    gzip_level: Option<u32>,
    brotli_level: Option<u32>,
    zstd_level: Option<i32>,
}

/// The key a section names.
fn client_key(section: &str, key: Option<&str>, v4: Option<u8>, v6: Option<u8>) -> Result<ClientKey> {
    match key.unwrap_or("address") {
        "address" if v4.is_some() || v6.is_some() => {
            bail!("{section}: ipv4_prefix and ipv6_prefix go with key = \"network\"")
        }
        "address" => Ok(ClientKey::Address),
        "network" => Ok(ClientKey::Network {
            v4: v4.unwrap_or(24),
            v6: v6.unwrap_or(64),
        }),
        other => bail!("{section}: key {other:?} is neither \"address\" nor \"network\""),
    }
}

/// A key as the file writes it: (key, ipv4_prefix, ipv6_prefix).
fn key_fields(key: ClientKey) -> (Option<String>, Option<u8>, Option<u8>) {
    match key {
        ClientKey::Address => (Some("address".to_owned()), None, None),
        ClientKey::Network { v4, v6 } => (Some("network".to_owned()), Some(v4), Some(v6)),
    }
}

impl RateLimitFile {
    /// The zone, with the defaults of [`RateZone::new`] for what the file leaves out.
    pub fn zone(self) -> Result<RateZone> {
        let section = format!("rate_limit {:?}", self.name);
        let rate = self
            .rate
            .parse()
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("{section}: rate"))?;
        let mut z = RateZone::new(self.name, rate);
        z.key = client_key(&section, self.key.as_deref(), self.ipv4_prefix, self.ipv6_prefix)?;
        z.paths = self.paths;
        set(&mut z.burst, self.burst);
        set(&mut z.nodelay, self.nodelay);
        set(&mut z.status, self.status);
        set(&mut z.dry_run, self.dry_run);
        set(&mut z.clients, self.clients);
        Ok(z)
    }

    /// Every setting of `z`, defaults included.
    pub fn of(z: &RateZone) -> RateLimitFile {
        let (key, ipv4_prefix, ipv6_prefix) = key_fields(z.key);
        RateLimitFile {
            name: z.name.clone(),
            rate: z.rate.to_string(),
            burst: Some(z.burst),
            nodelay: Some(z.nodelay),
            key,
            ipv4_prefix,
            ipv6_prefix,
            paths: z.paths.clone(),
            status: Some(z.status),
            dry_run: Some(z.dry_run),
            clients: Some(z.clients),
        }
    }
}

impl ConnLimitFile {
    /// The limit, with the defaults of [`ConnLimit::new`] for what the file leaves out.
    pub fn limit(self) -> Result<ConnLimit> {
        let mut c = ConnLimit::new(self.max);
        c.key = client_key(
            "connection_limit",
            self.key.as_deref(),
            self.ipv4_prefix,
            self.ipv6_prefix,
        )?;
        set(&mut c.status, self.status);
        set(&mut c.dry_run, self.dry_run);
        set(&mut c.clients, self.clients);
        Ok(c)
    }

    /// Every setting of `c`.
    pub fn of(c: &ConnLimit) -> ConnLimitFile {
        let (key, ipv4_prefix, ipv6_prefix) = key_fields(c.key);
        ConnLimitFile {
            max: c.max,
            key,
            ipv4_prefix,
            ipv6_prefix,
            status: Some(c.status),
            dry_run: Some(c.dry_run),
            clients: Some(c.clients),
        }
    }
}

impl CompressionFile {
    /// The settings, with [`Compression::default`] for what the file leaves out.
    pub fn compression(self) -> Result<Compression> {
        let mut c = Compression::default();
        set(&mut c.enabled, self.enabled);
        if let Some(names) = self.encodings {
            c.encodings = names
                .iter()
                .map(|n| n.parse::<Coding>().map_err(anyhow::Error::msg))
                .collect::<Result<_>>()
                .context("compression.encodings")?;
        }
        set(&mut c.min_length, self.min_length);
        set(&mut c.types, self.types);
        set(&mut c.gzip_level, self.gzip_level);
        set(&mut c.brotli_level, self.brotli_level);
        set(&mut c.zstd_level, self.zstd_level);
        Ok(c)
    }

    /// Every setting of `c`.
    pub fn of(c: &Compression) -> CompressionFile {
        CompressionFile {
            enabled: Some(c.enabled),
            encodings: Some(c.encodings.iter().map(|e| e.token().to_owned()).collect()),
            min_length: Some(c.min_length),
            types: Some(c.types.clone()),
            gzip_level: Some(c.gzip_level),
            brotli_level: Some(c.brotli_level),
            zstd_level: Some(c.zstd_level),
        }
    }
}

fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *field = v;
    }
}

/// The line of a rate-limit zone's setting that an error names (`rate_limit.burst` with a
/// reason `zone "api": …`): the key within that zone's `[[rate_limit]]` table, or the table's
/// first line.
pub fn zone_error_line(text: &str, field: &str, reason: &str) -> Option<usize> {
    let key = field.strip_prefix("rate_limit.")?;
    let zone = reason.strip_prefix("zone \"")?.split('"').next()?;
    // The `[[rate_limit]]` table being read: its first line, whether it is the zone's, and the
    // line of the key.
    let mut table: Option<(usize, bool, Option<usize>)> = None;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            if let Some((start, true, key_line)) = table {
                return Some(key_line.unwrap_or(start));
            }
            table = (t.replace(' ', "") == "[[rate_limit]]").then_some((i + 1, false, None));
            continue;
        }
        if let (Some(current), Some((k, v))) = (table.as_mut(), t.split_once('=')) {
            let k = k.trim();
            if k == "name" && v.trim().trim_matches('"') == zone {
                current.1 = true;
            }
            if k == key {
                current.2 = Some(i + 1);
            }
        }
    }
    table
        .filter(|(_, mine, _)| *mine)
        .map(|(start, _, key_line)| key_line.unwrap_or(start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zone_error_names_the_line_of_its_zone() {
        let text = "[[rate_limit]]\nname = \"a\"\nrate = \"1r/s\"\nburst = 1\n\n[[rate_limit]]\nname = \"b\"\nrate = \"1r/m\"\nburst = 5000\n";
        assert_eq!(
            zone_error_line(text, "rate_limit.burst", "zone \"b\": too much"),
            Some(9)
        );
        assert_eq!(
            zone_error_line(text, "rate_limit.burst", "zone \"a\": too much"),
            Some(4)
        );
        assert_eq!(zone_error_line(text, "rate_limit.status", "zone \"b\": bad"), Some(6));
        assert_eq!(zone_error_line(text, "limits.max_body", "x"), None);
    }

    #[test]
    fn sections_load_with_defaults_and_refuse_what_does_not_fit() {
        let file: RateLimitFile = toml::from_str("name = \"api\"\nrate = \"10r/s\"\nkey = \"network\"\n").unwrap();
        let z = file.zone().unwrap();
        assert_eq!(z.key, ClientKey::Network { v4: 24, v6: 64 });
        assert_eq!((z.burst, z.status, z.nodelay), (0, 429, false));
        let bad: RateLimitFile = toml::from_str("name = \"api\"\nrate = \"10r/s\"\nipv4_prefix = 16\n").unwrap();
        assert!(format!("{:#}", bad.zone().unwrap_err()).contains("key = \"network\""));
        let bad: RateLimitFile = toml::from_str("name = \"api\"\nrate = \"ten\"\n").unwrap();
        assert!(format!("{:#}", bad.zone().unwrap_err()).contains("rate"));
        let c: CompressionFile = toml::from_str("enabled = true\nencodings = [\"br\", \"gzip\"]\n").unwrap();
        assert_eq!(c.compression().unwrap().encodings, vec![Coding::Brotli, Coding::Gzip]);
        let c: CompressionFile = toml::from_str("encodings = [\"deflate\"]\n").unwrap();
        assert!(c.compression().is_err());
    }
}
