//! IP networks in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`), for lists of trusted sources
//! such as the proxies allowed to send a PROXY protocol header.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An IPv4 or IPv6 network: an address whose host bits are zero, and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// Why a string is not a network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CidrError {
    /// The part before `/` is not an IP address.
    #[error("{0:?} is not an IP address or ADDRESS/PREFIX (such as 10.0.0.0/8 or 2001:db8::/32)")]
    Address(String),
    /// The prefix length is not a number up to 32 (IPv4) or 128 (IPv6).
    #[error("{0:?}: the prefix length must be a number from 0 to 32 for IPv4, 128 for IPv6")]
    Prefix(String),
    /// Bits below the prefix are set: `10.1.2.3/8` most likely means `10.0.0.0/8`, or a typo.
    #[error("{given:?} has bits set below its prefix length: write {network}")]
    HostBits {
        /// What was written.
        given: String,
        /// The network it would denote.
        network: String,
    },
}

impl Cidr {
    /// The network of `network`/`prefix`, if the prefix fits the family and no host bit is set.
    pub fn new(network: IpAddr, prefix: u8) -> Option<Cidr> {
        let cidr = Cidr { network, prefix };
        (prefix <= cidr.max_prefix() && cidr.masked(network) == Some(network)).then_some(cidr)
    }

    /// Whether `ip` is in this network. An IPv4-mapped IPv6 address (`::ffff:10.1.2.3`, as a
    /// dual-stack socket reports IPv4 peers) counts as the IPv4 address it carries.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.masked(ip.to_canonical()) == Some(self.network)
    }

    fn max_prefix(&self) -> u8 {
        match self.network {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        }
    }

    /// `ip` with the bits below the prefix cleared, if it is of this network's family.
    fn masked(&self, ip: IpAddr) -> Option<IpAddr> {
        match (self.network, ip) {
            (IpAddr::V4(_), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                Some(IpAddr::V4((u32::from(a) & mask).into()))
            }
            (IpAddr::V6(_), IpAddr::V6(a)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                Some(IpAddr::V6((u128::from(a) & mask).into()))
            }
            _ => None,
        }
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    /// `ADDRESS/PREFIX`, or a bare address (a network of one host).
    fn from_str(s: &str) -> Result<Cidr, CidrError> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let network: IpAddr = addr.parse().map_err(|_| CidrError::Address(s.to_owned()))?;
        let max = match network {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        let prefix = match prefix {
            None => max,
            Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| CidrError::Prefix(s.to_owned()))?,
            Some(_) => return Err(CidrError::Prefix(s.to_owned())),
        };
        let cidr = Cidr { network, prefix };
        match cidr.masked(network) {
            Some(n) if n == network => Ok(cidr),
            n => Err(CidrError::HostBits {
                given: s.to_owned(),
                network: format!("{}/{prefix}", n.unwrap_or(network)),
            }),
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(s: &str) -> Cidr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_prints_back() {
        for s in [
            "10.0.0.0/8",
            "192.0.2.7/32",
            "0.0.0.0/0",
            "2001:db8::/32",
            "::1/128",
            "::/0",
        ] {
            assert_eq!(cidr(s).to_string(), s);
        }
        assert_eq!(cidr("192.0.2.7").to_string(), "192.0.2.7/32");
        assert_eq!(cidr("::1").to_string(), "::1/128");
    }

    #[test]
    fn contains_addresses_of_its_network_only() {
        let ten = cidr("10.0.0.0/8");
        assert!(ten.contains(ip("10.0.0.0")) && ten.contains(ip("10.255.255.255")));
        assert!(!ten.contains(ip("11.0.0.0")) && !ten.contains(ip("9.255.255.255")));
        assert!(
            !ten.contains(ip("::a00:1")),
            "an IPv6 address is not in an IPv4 network"
        );
        assert!(ten.contains(ip("::ffff:10.1.2.3")), "IPv4-mapped counts as IPv4");
        let host = cidr("192.0.2.7");
        assert!(host.contains(ip("192.0.2.7")) && !host.contains(ip("192.0.2.8")));
        assert!(cidr("0.0.0.0/0").contains(ip("203.0.113.9")));
        assert!(!cidr("0.0.0.0/0").contains(ip("2001:db8::1")));
        let v6 = cidr("2001:db8::/32");
        assert!(v6.contains(ip("2001:db8:ffff::1")) && !v6.contains(ip("2001:db9::1")));
        assert!(cidr("::/0").contains(ip("::1")));
        assert!(cidr("fe80::/10").contains(ip("febf::1")) && !cidr("fe80::/10").contains(ip("fec0::1")));
    }

    #[test]
    fn refuses_what_is_not_a_network() {
        for s in [
            "",
            "/8",
            "10.0.0.0/",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/8/8",
            "10.0.0.0/+8",
            "10.0.0.0/ 8",
            "ten/8",
            "10.0.0/8",
            "10.0.0.0/0008",
        ] {
            assert!(s.parse::<Cidr>().is_err(), "{s:?}");
        }
        match "10.1.2.3/8".parse::<Cidr>() {
            Err(CidrError::HostBits { network, .. }) => assert_eq!(network, "10.0.0.0/8"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            "2001:db8::1/32".parse::<Cidr>(),
            Err(CidrError::HostBits { .. })
        ));
        assert_eq!(Cidr::new(ip("10.0.0.0"), 8), Some(cidr("10.0.0.0/8")));
        assert_eq!(Cidr::new(ip("10.0.0.1"), 8), None);
        assert_eq!(Cidr::new(ip("10.0.0.0"), 33), None);
    }
}
