//! `parse_proxy_header` on arbitrary bytes. Input: one byte for the v2 length limit (0 = the
//! server's 4096; otherwise `(n - 1) * 2`, so that 0..508 are reached with short inputs),
//! then the bytes a connection starts with.
//!
//! Invariants (beyond "never panics"):
//! - a Complete header: `len <= buf.len()`, v1 `len <= 107` ending in CRLF, v2 `len <=` the
//!   limit, `16 + ` its length field, TLV block inside the header;
//! - the addresses are the bytes': v2 TCP4/TCP6 addresses and ports are read from their fixed
//!   offsets; v1 addresses written back in their usual form parse to the same header;
//! - prefix consistency: every prefix shorter than a Complete header is Partial and every
//!   prefix containing it gives the same header; a prefix of an erroring buffer is Partial or
//!   the same error; a prefix of a Partial buffer is Partial (checked at every length up to
//!   300 bytes, which covers every v1 header and the v2 ones the limits allow);
//! - whatever starts with neither signature's first byte is refused at once.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use libfuzzer_sys::fuzz_target;
use ringd_core::{parse_proxy_header, Parsed, ProxyAddresses, ProxyError, ProxyHeader, ProxyVersion};

type Outcome = Result<Option<ProxyHeader>, ProxyError>;

fn parse(buf: &[u8], max: usize) -> Outcome {
    match parse_proxy_header(buf, max)? {
        Parsed::Complete(h) => Ok(Some(h)),
        Parsed::Partial => Ok(None),
    }
}

fn max_from(b: u8) -> usize {
    match b {
        0 => 4096,
        n => usize::from(n - 1) * 2,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&limit, buf)) = data.split_first() else {
        return;
    };
    let max = max_from(limit);
    let whole = parse(buf, max);
    if let Some(&first) = buf.first() {
        if first != b'P' && first != b'\r' {
            assert_eq!(whole, Err(ProxyError::NotProxy));
        }
    }
    if let Ok(Some(h)) = &whole {
        check_header(h, buf, max);
        assert_eq!(parse(&buf[..h.len], max), whole, "the header alone decides");
    }
    for n in 0..buf.len().min(300) {
        let part = parse(&buf[..n], max);
        match (&part, &whole) {
            (Ok(None), _) => {}
            (Ok(Some(p)), Ok(Some(w))) => assert_eq!(p, w, "prefix {n}"),
            (Err(p), Err(w)) => assert_eq!(p, w, "prefix {n}"),
            _ => panic!("prefix {n}: {part:?}, whole: {whole:?}"),
        }
    }
});

fn check_header(h: &ProxyHeader, buf: &[u8], max: usize) {
    assert!(h.len <= buf.len());
    assert!(h.tlvs.start <= h.tlvs.end && h.tlvs.end <= h.len);
    match h.version {
        ProxyVersion::V1 => {
            assert!(h.len <= 107 && buf[..h.len].ends_with(b"\r\n"));
            assert!(buf.starts_with(b"PROXY "));
            assert!(h.tlvs.is_empty());
            assert_ne!(h.addresses, ProxyAddresses::Local);
            if let ProxyAddresses::Tcp { source, destination } = h.addresses {
                let proto = if source.is_ipv4() { "TCP4" } else { "TCP6" };
                assert_eq!(source.is_ipv4(), destination.is_ipv4(), "one family");
                let line = format!(
                    "PROXY {proto} {} {} {} {}\r\n",
                    source.ip(),
                    destination.ip(),
                    source.port(),
                    destination.port()
                );
                let again = parse(line.as_bytes(), max).unwrap().unwrap();
                assert_eq!(again.addresses, h.addresses, "{line:?}");
            }
        }
        ProxyVersion::V2 => {
            assert!(h.len <= max);
            assert_eq!(h.len, 16 + usize::from(u16::from_be_bytes([buf[14], buf[15]])));
            assert_eq!(buf[12] >> 4, 2);
            let port = |at: usize| u16::from_be_bytes([buf[at], buf[at + 1]]);
            match (buf[12] & 0xf, buf[13], h.addresses) {
                (0, _, a) => assert_eq!(a, ProxyAddresses::Local),
                (1, 0x11, ProxyAddresses::Tcp { source, destination }) => {
                    let ip = |at: usize| IpAddr::V4(Ipv4Addr::new(buf[at], buf[at + 1], buf[at + 2], buf[at + 3]));
                    assert_eq!(source, SocketAddr::new(ip(16), port(24)));
                    assert_eq!(destination, SocketAddr::new(ip(20), port(26)));
                    assert_eq!(h.tlvs.start, 28);
                }
                (1, 0x21, ProxyAddresses::Tcp { source, destination }) => {
                    let ip = |at: usize| {
                        let mut o = [0u8; 16];
                        o.copy_from_slice(&buf[at..at + 16]);
                        IpAddr::V6(Ipv6Addr::from(o))
                    };
                    assert_eq!(source, SocketAddr::new(ip(16), port(48)));
                    assert_eq!(destination, SocketAddr::new(ip(32), port(50)));
                    assert_eq!(h.tlvs.start, 52);
                }
                (1, 0x00 | 0x31, a) => assert_eq!(a, ProxyAddresses::Unknown),
                other => panic!("accepted {other:?}"),
            }
        }
    }
}
