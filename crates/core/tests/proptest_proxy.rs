//! Property tests of the PROXY header parser: headers written from random addresses read back
//! as written, and any input, split anywhere, gives the answer its bounded prefix decides.

use std::net::{IpAddr, SocketAddr};

use proptest::prelude::*;
use ringd_core::{parse_proxy_header, Parsed, ProxyAddresses, ProxyError, ProxyHeader};

type Outcome = Result<Option<ProxyHeader>, ProxyError>;

fn parse(buf: &[u8], max: usize) -> Outcome {
    match parse_proxy_header(buf, max)? {
        Parsed::Complete(h) => Ok(Some(h)),
        Parsed::Partial => Ok(None),
    }
}

fn addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::new(IpAddr::from(ip), port)),
        (any::<[u8; 16]>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::new(IpAddr::from(ip), port)),
    ]
}

/// Both addresses of one family.
fn pair() -> impl Strategy<Value = (SocketAddr, SocketAddr)> {
    (addr(), addr()).prop_map(|(a, b)| {
        let b = match (a, b) {
            (SocketAddr::V4(_), SocketAddr::V6(b)) => SocketAddr::new(IpAddr::from([7, 7, 7, 7]), b.port()),
            (SocketAddr::V6(_), SocketAddr::V4(b)) => SocketAddr::new(b.ip().to_ipv6_mapped().into(), b.port()),
            (_, b) => b,
        };
        (a, b)
    })
}

fn v1(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let proto = if src.is_ipv4() { "TCP4" } else { "TCP6" };
    format!(
        "PROXY {proto} {} {} {} {}\r\n",
        src.ip(),
        dst.ip(),
        src.port(),
        dst.port()
    )
    .into_bytes()
}

fn v2(src: SocketAddr, dst: SocketAddr, tlvs: &[Vec<u8>]) -> Vec<u8> {
    let mut block = Vec::new();
    let family = match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            block.extend_from_slice(&s.octets());
            block.extend_from_slice(&d.octets());
            0x11
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            block.extend_from_slice(&s.octets());
            block.extend_from_slice(&d.octets());
            0x21
        }
        _ => unreachable!("pair() gives one family"),
    };
    block.extend_from_slice(&src.port().to_be_bytes());
    block.extend_from_slice(&dst.port().to_be_bytes());
    for value in tlvs {
        block.push(0xe0);
        block.extend_from_slice(&(value.len() as u16).to_be_bytes());
        block.extend_from_slice(value);
    }
    let mut h = b"\r\n\r\n\0\r\nQUIT\n\x21".to_vec();
    h.push(family);
    h.extend_from_slice(&(block.len() as u16).to_be_bytes());
    h.extend_from_slice(&block);
    h
}

/// Every prefix of `buf` is `Partial`, or the answer the whole buffer gives when it contains
/// what decided that answer.
fn split_anywhere_agrees(buf: &[u8], max: usize) -> Result<(), TestCaseError> {
    let whole = parse(buf, max);
    for n in 0..buf.len() {
        let part = parse(&buf[..n], max);
        match (&part, &whole) {
            (Ok(None), _) => {}
            (Ok(Some(h)), Ok(Some(w))) => prop_assert_eq!(h, w, "prefix {}", n),
            (Err(e), Err(w)) => prop_assert_eq!(e, w, "prefix {}", n),
            _ => prop_assert!(false, "prefix {}: {:?}, whole: {:?}", n, part, whole),
        }
        if let Ok(Some(h)) = &part {
            prop_assert!(h.len <= n);
        }
    }
    if let Ok(Some(h)) = &whole {
        prop_assert!(h.len <= buf.len() && h.tlvs.end <= h.len);
        // Decided by its own bytes: the header alone gives the same.
        prop_assert_eq!(parse(&buf[..h.len], max), whole.clone());
    }
    Ok(())
}

proptest! {
    #[test]
    fn written_headers_read_back((src, dst) in pair(), tail in prop::collection::vec(any::<u8>(), 0..40), tlvs in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..20), 0..4)) {
        let want = ProxyAddresses::Tcp { source: src, destination: dst };
        for header in [v1(src, dst), v2(src, dst, &tlvs)] {
            let mut buf = header.clone();
            buf.extend_from_slice(&tail);
            let h = parse(&buf, 4096).unwrap().unwrap();
            prop_assert_eq!(h.addresses, want);
            prop_assert_eq!(h.len, header.len());
            split_anywhere_agrees(&buf, 4096)?;
        }
    }

    #[test]
    fn mutated_headers_never_panic_and_split_anywhere_agrees((src, dst) in pair(), v in any::<bool>(), edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4), max in 16usize..200) {
        let mut buf = if v { v1(src, dst) } else { v2(src, dst, &[vec![1, 2, 3]]) };
        for (at, byte) in edits {
            let i = at.index(buf.len());
            buf[i] = byte;
        }
        split_anywhere_agrees(&buf, max)?;
    }

    #[test]
    fn random_bytes_never_panic(start in prop::sample::select(vec![&b""[..], b"PROXY ", b"PROXY TCP4 1.2.3.4 ", b"PROXY UNKNOWN", b"\r\n\r\n\0\r\nQUIT\n\x21", b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c"]), rest in prop::collection::vec(any::<u8>(), 0..300), max in 0usize..400) {
        let mut buf = start.to_vec();
        buf.extend_from_slice(&rest);
        split_anywhere_agrees(&buf, max)?;
    }
}
