//! What a limit counts against: a client's address, or its network, as one 128-bit number, and
//! where that number goes in a table.

use std::hash::BuildHasher;
use std::net::IpAddr;

use crate::traffic::config::ClientKey;

/// `ip` reduced as `key` says, as 128 bits: IPv4 addresses as IPv4-mapped IPv6 ones, so that a
/// client reaching a dual-stack listener is the same client as on an IPv4 one.
pub(crate) fn client_bits(ip: IpAddr, key: ClientKey) -> u128 {
    let (bits, prefix) = match ip {
        IpAddr::V4(v4) => (
            u128::from(v4.to_ipv6_mapped()),
            match key {
                ClientKey::Address => 128,
                // A /0 is every client, IPv6 ones included.
                ClientKey::Network { v4: 0, .. } => 0,
                ClientKey::Network { v4, .. } => 96 + u32::from(v4),
            },
        ),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => return client_bits(IpAddr::V4(v4), key),
            None => (
                u128::from(v6),
                match key {
                    ClientKey::Address => 128,
                    ClientKey::Network { v6, .. } => u32::from(v6),
                },
            ),
        },
    };
    match prefix {
        128.. => bits,
        0 => 0,
        n => bits & (u128::MAX << (128 - n)),
    }
}

/// Where clients go in a table: a hash keyed at random per table, so that nobody outside can
/// choose addresses that crowd one set of slots.
pub(crate) struct Placement {
    hasher: foldhash::quality::SeedableRandomState,
    /// Sets in the table, less one (their count is a power of two).
    mask: usize,
}

impl Placement {
    pub(crate) fn new(sets: usize) -> Placement {
        debug_assert!(sets.is_power_of_two());
        // Unit tests place clients the same way every run.
        let hasher = if cfg!(test) {
            foldhash::quality::SeedableRandomState::fixed()
        } else {
            foldhash::quality::SeedableRandomState::random()
        };
        Placement { hasher, mask: sets - 1 }
    }

    /// The client's set, and the 64-bit hash its tag is taken from (its high bits: the set
    /// index uses the low ones).
    #[inline]
    pub(crate) fn place(&self, client: u128) -> (usize, u64) {
        let h = self.hasher.hash_one(client);
        (h as usize & self.mask, h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bits(s: &str, key: ClientKey) -> u128 {
        client_bits(s.parse().unwrap(), key)
    }

    #[test]
    fn addresses_and_networks() {
        let net = ClientKey::Network { v4: 24, v6: 64 };
        assert_eq!(
            bits("10.1.2.3", ClientKey::Address),
            bits("::ffff:10.1.2.3", ClientKey::Address)
        );
        assert_ne!(
            bits("10.1.2.3", ClientKey::Address),
            bits("10.1.2.4", ClientKey::Address)
        );
        assert_eq!(bits("10.1.2.3", net), bits("10.1.2.200", net));
        assert_eq!(bits("::ffff:10.1.2.3", net), bits("10.1.2.200", net));
        assert_ne!(bits("10.1.2.3", net), bits("10.1.3.3", net));
        assert_eq!(bits("2001:db8:1:2:a::1", net), bits("2001:db8:1:2:b::9", net));
        assert_ne!(bits("2001:db8:1:2::1", net), bits("2001:db8:1:3::1", net));
        let all = ClientKey::Network { v4: 0, v6: 0 };
        assert_eq!(bits("1.2.3.4", all), bits("2001:db8::1", all));
        let full = ClientKey::Network { v4: 32, v6: 128 };
        assert_eq!(bits("1.2.3.4", full), bits("1.2.3.4", ClientKey::Address));
    }
}
