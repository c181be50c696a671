//! The PROXY protocol, versions 1 and 2: the header a load balancer (HAProxy's `send-proxy`,
//! `send-proxy-v2`) sends first on each connection, naming the client it accepted the
//! connection from. Specification: <https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt>
//! (§2.1 the text form, §2.2 the binary form).
//!
//! Like the request parser: borrowed bytes in, [`Parsed::Partial`] when more are needed, the
//! header's length out (the connection's own bytes follow it), and every answer decided by a
//! bounded prefix: a v1 header is at most [`V1_MAX_LEN`] bytes, a v2 header states its length
//! in its first 16. So feeding a header in pieces gives `Partial` on each prefix and then
//! exactly what the whole buffer gives; bytes that are not a PROXY header are refused from the
//! first one that cannot start one.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::Range;

use crate::request::Parsed;

/// How a v1 header starts (§2.1).
const V1_SIGNATURE: &[u8] = b"PROXY ";
/// The longest v1 header, CRLF included (§2.1: "a 108-byte buffer" holds it with a NUL).
pub const V1_MAX_LEN: usize = 107;
/// How a v2 header starts (§2.2): bytes no HTTP request or TLS record begins with.
const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// A v2 header's fixed part: signature, version and command, family and protocol, length.
pub const V2_FIXED_LEN: usize = 16;

/// The v2 commands (the low nibble of byte 13).
const V2_LOCAL: u8 = 0x0;
const V2_PROXY: u8 = 0x1;

/// Which version of the protocol a header was in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyVersion {
    /// The text form (§2.1).
    V1,
    /// The binary form (§2.2).
    V2,
}

/// What a header says about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyAddresses {
    /// The proxy relays a TCP connection from `source` (the client) to `destination` (the
    /// address the client connected to).
    Tcp {
        /// The client.
        source: SocketAddr,
        /// Where the client connected to (the proxy's frontend).
        destination: SocketAddr,
    },
    /// v2 `LOCAL`: the proxy's own connection (a health check, say); the connection's own
    /// addresses stand.
    Local,
    /// v1 `UNKNOWN`, or v2 `PROXY` with an unspecified or UNIX family: the proxy does not say
    /// who the client is; the connection's own addresses stand.
    Unknown,
}

/// A complete, valid PROXY header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyHeader {
    /// The form it came in.
    pub version: ProxyVersion,
    /// The client, if the header names one.
    pub addresses: ProxyAddresses,
    /// Where the v2 TLV records are in the input (empty for v1 and for `LOCAL`). Their framing
    /// is checked; their contents are not read.
    pub tlvs: Range<usize>,
    /// The header's length in bytes: the connection's own bytes start here.
    pub len: usize,
}

impl ProxyHeader {
    /// The client's address, if the header names one.
    pub fn source(&self) -> Option<SocketAddr> {
        match self.addresses {
            ProxyAddresses::Tcp { source, .. } => Some(source),
            ProxyAddresses::Local | ProxyAddresses::Unknown => None,
        }
    }
}

/// Why bytes are not an acceptable PROXY header. A connection that sent one must be closed:
/// there is no way to resynchronise with its byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The bytes start with neither signature (a client that speaks HTTP or TLS directly).
    #[error("not a PROXY protocol header")]
    NotProxy,
    /// No CRLF within the first 107 bytes of a v1 header.
    #[error("PROXY v1 header longer than 107 bytes")]
    V1TooLong,
    /// A v1 header that is not `PROXY TCP4|TCP6 SRC DST SPORT DPORT` or `PROXY UNKNOWN ...`
    /// with single spaces and CRLF.
    #[error("malformed PROXY v1 header")]
    V1Syntax,
    /// A v1 address that is not one of its protocol's family.
    #[error("invalid address in PROXY v1 header")]
    V1Address,
    /// A v1 port that is not a decimal number from 0 to 65535 without leading zeros.
    #[error("invalid port in PROXY v1 header")]
    V1Port,
    /// A v2 version nibble other than 2.
    #[error("unsupported PROXY v2 version")]
    V2Version,
    /// A v2 command other than `LOCAL` and `PROXY`.
    #[error("unknown PROXY v2 command")]
    V2Command,
    /// A v2 family and protocol that is not a stream over IPv4, IPv6 or UNIX, or unspecified.
    #[error("unsupported PROXY v2 address family or protocol")]
    V2Family,
    /// A v2 length too short for the addresses of the family it announces.
    #[error("PROXY v2 addresses truncated")]
    V2Truncated,
    /// A v2 header longer in all than the limit the caller set.
    #[error("PROXY v2 header longer than the limit")]
    V2TooLong,
    /// A v2 TLV record that runs past the end of the header.
    #[error("malformed PROXY v2 TLV")]
    V2Tlv,
}

/// Parses the PROXY header (either version) at the start of `buf`. `max_len` bounds a v2
/// header's total length (16 bytes and what its length field announces; TLVs make it grow);
/// a v1 header is bounded by the protocol itself.
pub fn parse_proxy_header(buf: &[u8], max_len: usize) -> Result<Parsed<ProxyHeader>, ProxyError> {
    match buf.first() {
        None => Ok(Parsed::Partial),
        Some(b'P') => parse_v1(buf),
        Some(b'\r') => parse_v2(buf, max_len),
        Some(_) => Err(ProxyError::NotProxy),
    }
}

/// Whether `buf` could still become `signature` (or already starts with it).
fn starts_like(buf: &[u8], signature: &[u8]) -> bool {
    let n = buf.len().min(signature.len());
    buf[..n] == signature[..n]
}

fn parse_v1(buf: &[u8]) -> Result<Parsed<ProxyHeader>, ProxyError> {
    if !starts_like(buf, V1_SIGNATURE) {
        return Err(ProxyError::NotProxy);
    }
    // The line ends at the first CR, which must be followed by LF; a bare LF is no line end.
    let scan = &buf[..buf.len().min(V1_MAX_LEN)];
    let Some(cr) = scan.iter().position(|&b| b == b'\r' || b == b'\n') else {
        return if buf.len() >= V1_MAX_LEN {
            Err(ProxyError::V1TooLong)
        } else {
            Ok(Parsed::Partial)
        };
    };
    if scan[cr] == b'\n' {
        return Err(ProxyError::V1Syntax);
    }
    // CR LF must both fit in the 107 bytes.
    if cr + 1 >= V1_MAX_LEN {
        return Err(ProxyError::V1TooLong);
    }
    match buf.get(cr + 1) {
        None => return Ok(Parsed::Partial),
        Some(b'\n') => {}
        Some(_) => return Err(ProxyError::V1Syntax),
    }
    let len = cr + 2;
    let line = &buf[V1_SIGNATURE.len()..cr];
    let addresses = v1_addresses(line)?;
    Ok(Parsed::Complete(ProxyHeader {
        version: ProxyVersion::V1,
        addresses,
        tlvs: len..len,
        len,
    }))
}

/// The fields after `PROXY ` (without CRLF).
fn v1_addresses(line: &[u8]) -> Result<ProxyAddresses, ProxyError> {
    // §2.1: with UNKNOWN the receiver ignores the rest of the line.
    if line == b"UNKNOWN" || line.starts_with(b"UNKNOWN ") {
        return Ok(ProxyAddresses::Unknown);
    }
    let mut fields = line.split(|&b| b == b' ');
    let (Some(proto), Some(src), Some(dst), Some(sport), Some(dport), None) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return Err(ProxyError::V1Syntax);
    };
    let (source, destination) = match proto {
        b"TCP4" => (IpAddr::V4(v1_ip(src)?), IpAddr::V4(v1_ip(dst)?)),
        b"TCP6" => (IpAddr::V6(v1_ip(src)?), IpAddr::V6(v1_ip(dst)?)),
        _ => return Err(ProxyError::V1Syntax),
    };
    Ok(ProxyAddresses::Tcp {
        source: SocketAddr::new(source, v1_port(sport)?),
        destination: SocketAddr::new(destination, v1_port(dport)?),
    })
}

/// An address in its family's usual text form (std's parsers refuse leading zeros in IPv4).
fn v1_ip<T: std::str::FromStr>(field: &[u8]) -> Result<T, ProxyError> {
    std::str::from_utf8(field)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(ProxyError::V1Address)
}

/// A port: 1 to 5 digits, no leading zero (but `0` itself), at most 65535.
fn v1_port(field: &[u8]) -> Result<u16, ProxyError> {
    let digits = !field.is_empty() && field.len() <= 5 && field.iter().all(u8::is_ascii_digit);
    if !digits || (field.len() > 1 && field[0] == b'0') {
        return Err(ProxyError::V1Port);
    }
    let value = field.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
    u16::try_from(value).map_err(|_| ProxyError::V1Port)
}

fn parse_v2(buf: &[u8], max_len: usize) -> Result<Parsed<ProxyHeader>, ProxyError> {
    if !starts_like(buf, &V2_SIGNATURE) {
        return Err(ProxyError::NotProxy);
    }
    // Each fixed byte is judged as soon as it is there.
    let command = match buf.get(12) {
        None => return Ok(Parsed::Partial),
        Some(b) if b >> 4 != 2 => return Err(ProxyError::V2Version),
        Some(b) if b & 0xf > V2_PROXY => return Err(ProxyError::V2Command),
        Some(b) => b & 0xf,
    };
    // §2.2: with LOCAL the receiver ignores the family and the whole address block.
    let need = match buf.get(13) {
        None => return Ok(Parsed::Partial),
        Some(_) if command == V2_LOCAL => 0,
        Some(&family) => v2_address_len(family)?,
    };
    let Some(len) = buf.get(14..16) else {
        return Ok(Parsed::Partial);
    };
    let block = usize::from(u16::from_be_bytes([len[0], len[1]]));
    let total = V2_FIXED_LEN + block;
    if total > max_len {
        return Err(ProxyError::V2TooLong);
    }
    if block < need {
        return Err(ProxyError::V2Truncated);
    }
    if buf.len() < total {
        return Ok(Parsed::Partial);
    }
    if command == V2_LOCAL {
        return Ok(Parsed::Complete(ProxyHeader {
            version: ProxyVersion::V2,
            addresses: ProxyAddresses::Local,
            tlvs: total..total,
            len: total,
        }));
    }
    let a = &buf[V2_FIXED_LEN..V2_FIXED_LEN + need];
    let addresses = match buf[13] {
        0x11 => ProxyAddresses::Tcp {
            source: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3])), be16(&a[8..])),
            destination: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(a[4], a[5], a[6], a[7])), be16(&a[10..])),
        },
        0x21 => ProxyAddresses::Tcp {
            source: SocketAddr::new(IpAddr::V6(Ipv6Addr::from(octets16(&a[..16]))), be16(&a[32..])),
            destination: SocketAddr::new(IpAddr::V6(Ipv6Addr::from(octets16(&a[16..32]))), be16(&a[34..])),
        },
        _ => ProxyAddresses::Unknown,
    };
    let tlvs = V2_FIXED_LEN + need..total;
    check_tlvs(&buf[tlvs.clone()])?;
    Ok(Parsed::Complete(ProxyHeader {
        version: ProxyVersion::V2,
        addresses,
        tlvs,
        len: total,
    }))
}

/// The address block's size for a `PROXY` command's family and protocol byte (§2.2): streams
/// over IPv4, IPv6 and UNIX sockets, or unspecified. Datagrams are refused: what arrives here
/// is a TCP connection.
fn v2_address_len(family: u8) -> Result<usize, ProxyError> {
    match family {
        0x00 => Ok(0),
        0x11 => Ok(12),
        0x21 => Ok(36),
        0x31 => Ok(216),
        _ => Err(ProxyError::V2Family),
    }
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

fn octets16(b: &[u8]) -> [u8; 16] {
    let mut o = [0; 16];
    o.copy_from_slice(b);
    o
}

/// Checks that the TLV records (type: 1 byte, length: 2, value) tile `block` exactly (§2.2.7).
fn check_tlvs(mut block: &[u8]) -> Result<(), ProxyError> {
    while !block.is_empty() {
        let Some(head) = block.get(..3) else {
            return Err(ProxyError::V2Tlv);
        };
        let end = 3 + usize::from(be16(&head[1..]));
        block = block.get(end..).ok_or(ProxyError::V2Tlv)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
