//! Tests of `proxy.rs`, with byte strings.

use super::*;

const MAX: usize = 4096;

fn complete(buf: &[u8]) -> ProxyHeader {
    match parse_proxy_header(buf, MAX) {
        Ok(Parsed::Complete(h)) => h,
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(buf)),
    }
}

fn err(buf: &[u8]) -> ProxyError {
    match parse_proxy_header(buf, MAX) {
        Err(e) => e,
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(buf)),
    }
}

/// Every strict prefix of `buf` shorter than `upto` is `Partial` or fails with `want`.
fn prefixes_agree(buf: &[u8], upto: usize, want: Result<(), ProxyError>) {
    for n in 0..upto {
        match (parse_proxy_header(&buf[..n], MAX), want) {
            (Ok(Parsed::Partial), _) => {}
            (Err(e), Err(w)) if e == w => {}
            (other, _) => panic!("prefix {n} of {:?}: {other:?}", String::from_utf8_lossy(buf)),
        }
    }
}

fn tcp(source: &str, destination: &str) -> ProxyAddresses {
    ProxyAddresses::Tcp {
        source: source.parse().unwrap(),
        destination: destination.parse().unwrap(),
    }
}

/// A v2 header: command, family, address block, TLVs.
fn v2(command: u8, family: u8, addresses: &[u8], tlvs: &[u8]) -> Vec<u8> {
    let mut h = V2_SIGNATURE.to_vec();
    h.push(0x20 | command);
    h.push(family);
    h.extend_from_slice(&((addresses.len() + tlvs.len()) as u16).to_be_bytes());
    h.extend_from_slice(addresses);
    h.extend_from_slice(tlvs);
    h
}

const V4_BLOCK: [u8; 12] = [192, 0, 2, 1, 198, 51, 100, 7, 0xd4, 0x31, 0x00, 0x50];

fn v6_block() -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
    b.extend_from_slice(&"2001:db8::2".parse::<Ipv6Addr>().unwrap().octets());
    b.extend_from_slice(&443u16.to_be_bytes());
    b.extend_from_slice(&8443u16.to_be_bytes());
    b
}

#[test]
fn v1_tcp4_with_the_request_after_it() {
    let buf = b"PROXY TCP4 192.0.2.1 198.51.100.7 54321 80\r\nGET / HTTP/1.1\r\n";
    let h = complete(buf);
    assert_eq!(h.version, ProxyVersion::V1);
    assert_eq!(h.addresses, tcp("192.0.2.1:54321", "198.51.100.7:80"));
    assert_eq!(h.source(), Some("192.0.2.1:54321".parse().unwrap()));
    assert_eq!(&buf[h.len..], b"GET / HTTP/1.1\r\n");
    assert!(h.tlvs.is_empty());
    prefixes_agree(buf, h.len, Ok(()));
    // More bytes after the header change nothing.
    assert_eq!(complete(&buf[..h.len]), h);
}

#[test]
fn v1_tcp6() {
    let h = complete(b"PROXY TCP6 2001:db8::1 ::ffff:198.51.100.7 65535 0\r\n");
    assert_eq!(h.addresses, tcp("[2001:db8::1]:65535", "[::ffff:198.51.100.7]:0"));
}

#[test]
fn v1_unknown_ignores_the_rest_of_its_line() {
    for line in [
        &b"PROXY UNKNOWN\r\n"[..],
        b"PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n",
    ] {
        let h = complete(line);
        assert_eq!(h.addresses, ProxyAddresses::Unknown);
        assert_eq!(h.source(), None);
        assert_eq!(h.len, line.len());
    }
}

#[test]
fn v1_longest_header_is_accepted_and_one_byte_more_is_not() {
    // §2.1's worst case is UNKNOWN with the longest addresses: 107 bytes in all.
    let longest = b"PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    assert_eq!(longest.len(), V1_MAX_LEN);
    assert_eq!(complete(longest).len, V1_MAX_LEN);
    let tcp6 =
        b"PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    assert_eq!(
        complete(tcp6).source(),
        Some("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535".parse().unwrap())
    );
    let unknown = format!("PROXY UNKNOWN {}\r\n", "x".repeat(V1_MAX_LEN - 16));
    assert_eq!(unknown.len(), V1_MAX_LEN);
    complete(unknown.as_bytes());
    let over = format!("PROXY UNKNOWN {}\r\n", "x".repeat(V1_MAX_LEN - 15));
    assert_eq!(err(over.as_bytes()), ProxyError::V1TooLong);
    prefixes_agree(over.as_bytes(), over.len(), Err(ProxyError::V1TooLong));
    // No line end at all: refused once 107 bytes are there, not later.
    let endless = vec![b'x'; 200];
    let mut buf = b"PROXY ".to_vec();
    buf.extend_from_slice(&endless);
    assert_eq!(err(&buf[..V1_MAX_LEN]), ProxyError::V1TooLong);
    assert!(matches!(
        parse_proxy_header(&buf[..V1_MAX_LEN - 1], MAX),
        Ok(Parsed::Partial)
    ));
}

#[test]
fn v1_malformed_lines_are_refused() {
    let cases: &[(&[u8], ProxyError)] = &[
        (b"PROXY TCP4 192.0.2.1 198.51.100.7 54321 80\n", ProxyError::V1Syntax),
        (b"PROXY TCP4 192.0.2.1 198.51.100.7 54321 80\rX", ProxyError::V1Syntax),
        (b"PROXY TCP4 192.0.2.1\n198.51.100.7 54321 80\r\n", ProxyError::V1Syntax),
        (b"PROXY TCP4 192.0.2.1  198.51.100.7 54321 80\r\n", ProxyError::V1Syntax),
        (b"PROXY TCP4 192.0.2.1 198.51.100.7 54321 80 \r\n", ProxyError::V1Syntax),
        (b"PROXY TCP4 192.0.2.1 198.51.100.7 54321\r\n", ProxyError::V1Syntax),
        (
            b"PROXY TCP4 192.0.2.1 198.51.100.7 54321 80 9\r\n",
            ProxyError::V1Syntax,
        ),
        (b"PROXY  TCP4 192.0.2.1 198.51.100.7 54321 80\r\n", ProxyError::V1Syntax),
        (b"PROXY tcp4 192.0.2.1 198.51.100.7 54321 80\r\n", ProxyError::V1Syntax),
        (b"PROXY UDP4 192.0.2.1 198.51.100.7 54321 80\r\n", ProxyError::V1Syntax),
        (b"PROXY \r\n", ProxyError::V1Syntax),
        (b"PROXY UNKNOWNX\r\n", ProxyError::V1Syntax),
        (
            b"PROXY TCP4 2001:db8::1 198.51.100.7 54321 80\r\n",
            ProxyError::V1Address,
        ),
        (b"PROXY TCP6 192.0.2.1 2001:db8::2 54321 80\r\n", ProxyError::V1Address),
        (
            b"PROXY TCP4 192.0.2.256 198.51.100.7 54321 80\r\n",
            ProxyError::V1Address,
        ),
        (
            b"PROXY TCP4 192.0.2.01 198.51.100.7 54321 80\r\n",
            ProxyError::V1Address,
        ),
        (b"PROXY TCP4 192.0.2 198.51.100.7 54321 80\r\n", ProxyError::V1Address),
        (b"PROXY TCP4 192.0.2.1 host 54321 80\r\n", ProxyError::V1Address),
        (
            b"PROXY TCP4 192.0.2.\xff 198.51.100.7 54321 80\r\n",
            ProxyError::V1Address,
        ),
        (
            b"PROXY TCP6 [2001:db8::1] 2001:db8::2 54321 80\r\n",
            ProxyError::V1Address,
        ),
        (b"PROXY TCP4 192.0.2.1 198.51.100.7 65536 80\r\n", ProxyError::V1Port),
        (b"PROXY TCP4 192.0.2.1 198.51.100.7 054321 80\r\n", ProxyError::V1Port),
        (b"PROXY TCP4 192.0.2.1 198.51.100.7 080 80\r\n", ProxyError::V1Port),
        (b"PROXY TCP4 192.0.2.1 198.51.100.7 +80 80\r\n", ProxyError::V1Port),
        (b"PROXY TCP4 192.0.2.1 198.51.100.7 -1 80\r\n", ProxyError::V1Port),
        (b"PROXY TCP4 192.0.2.1 198.51.100.7 8O 80\r\n", ProxyError::V1Port),
        (b"PROXY TCP4 192.0.2.1 198.51.100.7 99999 80\r\n", ProxyError::V1Port),
    ];
    for (buf, want) in cases {
        assert_eq!(err(buf), *want, "{:?}", String::from_utf8_lossy(buf));
        // Decided by the line: every prefix without its end is incomplete (or the same error).
        prefixes_agree(buf, buf.len(), Err(*want));
    }
    // Port 0 is a port.
    assert_eq!(
        complete(b"PROXY TCP4 192.0.2.1 198.51.100.7 0 80\r\n").source(),
        Some("192.0.2.1:0".parse().unwrap())
    );
}

#[test]
fn what_is_not_a_proxy_header_is_refused_at_its_first_byte() {
    for buf in [
        &b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"[..],
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        b"POST / HTTP/1.1\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"proxy TCP4",
        b"PROXYTCP4",
        b"\r\n\r\n\0\r\nQUIT\r",
        b"\r\n\r\nGET",
        b"\n",
        b"\0",
    ] {
        assert_eq!(err(buf), ProxyError::NotProxy, "{:?}", String::from_utf8_lossy(buf));
        // The first wrong byte decides: shorter prefixes that could still be one are Partial.
        prefixes_agree(buf, buf.len(), Err(ProxyError::NotProxy));
    }
    assert_eq!(err(b"G"), ProxyError::NotProxy);
    assert!(matches!(parse_proxy_header(b"", MAX), Ok(Parsed::Partial)));
    assert!(matches!(parse_proxy_header(b"PRO", MAX), Ok(Parsed::Partial)));
    // "PRI * HTTP/2.0" parts from "PROXY " at its third byte.
    assert_eq!(err(b"PRI"), ProxyError::NotProxy);
}

#[test]
fn v2_proxy_over_ipv4_with_the_request_after_it() {
    let mut buf = v2(V2_PROXY, 0x11, &V4_BLOCK, &[]);
    let len = buf.len();
    buf.extend_from_slice(b"GET / HTTP/1.1\r\n");
    let h = complete(&buf);
    assert_eq!(h.version, ProxyVersion::V2);
    assert_eq!(h.addresses, tcp("192.0.2.1:54321", "198.51.100.7:80"));
    assert_eq!(h.len, len);
    assert_eq!(h.len, 28);
    assert_eq!(h.tlvs, 28..28);
    prefixes_agree(&buf, h.len, Ok(()));
    assert_eq!(complete(&buf[..h.len]), h);
}

#[test]
fn v2_proxy_over_ipv6() {
    let buf = v2(V2_PROXY, 0x21, &v6_block(), &[]);
    let h = complete(&buf);
    assert_eq!(h.addresses, tcp("[2001:db8::1]:443", "[2001:db8::2]:8443"));
    assert_eq!(h.len, 16 + 36);
}

#[test]
fn v2_tlvs_are_skipped_and_their_framing_checked() {
    // PP2_TYPE_ALPN "h2", PP2_TYPE_NOOP with 3 bytes of padding, an empty PP2_TYPE_AUTHORITY.
    let tlvs = [
        0x01, 0x00, 0x02, b'h', b'2', 0x04, 0x00, 0x03, 0, 0, 0, 0x02, 0x00, 0x00,
    ];
    let mut buf = v2(V2_PROXY, 0x11, &V4_BLOCK, &tlvs);
    buf.extend_from_slice(b"GET /");
    let h = complete(&buf);
    assert_eq!(h.addresses, tcp("192.0.2.1:54321", "198.51.100.7:80"));
    assert_eq!(h.tlvs, 28..28 + tlvs.len());
    assert_eq!(&buf[h.tlvs.clone()], &tlvs);
    assert_eq!(&buf[h.len..], b"GET /");
    // A record that runs past the end, or a stray byte or two after the last one.
    for bad in [
        &[0x01, 0x00, 0x03, b'h', b'2'][..],
        &[0x01, 0x00],
        &[0x04],
        &[0x01, 0x00, 0x00, 0x00],
    ] {
        let buf = v2(V2_PROXY, 0x11, &V4_BLOCK, bad);
        assert_eq!(err(&buf), ProxyError::V2Tlv, "{bad:?}");
        prefixes_agree(&buf, buf.len(), Err(ProxyError::V2Tlv));
    }
}

#[test]
fn v2_local_keeps_the_connections_own_addresses() {
    // LOCAL: the family and addresses are ignored, whatever they are (§2.2).
    for (family, block) in [(0x00, &[][..]), (0x11, &V4_BLOCK[..]), (0xff, &[1, 2, 3][..])] {
        let mut buf = v2(V2_LOCAL, family, block, &[]);
        let len = buf.len();
        buf.extend_from_slice(b"GET /readyz HTTP/1.1\r\n");
        let h = complete(&buf);
        assert_eq!(h.addresses, ProxyAddresses::Local);
        assert_eq!(h.source(), None);
        assert_eq!(h.len, len);
    }
}

#[test]
fn v2_unspecified_and_unix_families_name_no_client() {
    let h = complete(&v2(V2_PROXY, 0x00, &[], &[]));
    assert_eq!((h.addresses, h.len), (ProxyAddresses::Unknown, 16));
    let h = complete(&v2(V2_PROXY, 0x31, &[0; 216], &[]));
    assert_eq!((h.addresses, h.len), (ProxyAddresses::Unknown, 16 + 216));
}

#[test]
fn v2_malformed_headers_are_refused() {
    let mut wrong_version = v2(V2_PROXY, 0x11, &V4_BLOCK, &[]);
    wrong_version[12] = 0x11;
    let mut version_3 = v2(V2_PROXY, 0x11, &V4_BLOCK, &[]);
    version_3[12] = 0x31;
    let cases: Vec<(Vec<u8>, ProxyError)> = vec![
        (wrong_version, ProxyError::V2Version),
        (version_3, ProxyError::V2Version),
        (v2(0x2, 0x11, &V4_BLOCK, &[]), ProxyError::V2Command),
        (v2(0xf, 0x11, &V4_BLOCK, &[]), ProxyError::V2Command),
        // Datagrams, unknown families and protocols.
        (v2(V2_PROXY, 0x12, &V4_BLOCK, &[]), ProxyError::V2Family),
        (v2(V2_PROXY, 0x22, &v6_block(), &[]), ProxyError::V2Family),
        (v2(V2_PROXY, 0x32, &[0; 216], &[]), ProxyError::V2Family),
        (v2(V2_PROXY, 0x41, &V4_BLOCK, &[]), ProxyError::V2Family),
        (v2(V2_PROXY, 0x13, &V4_BLOCK, &[]), ProxyError::V2Family),
        (v2(V2_PROXY, 0x10, &V4_BLOCK, &[]), ProxyError::V2Family),
        // Lengths shorter than the family's addresses.
        (v2(V2_PROXY, 0x11, &V4_BLOCK[..11], &[]), ProxyError::V2Truncated),
        (v2(V2_PROXY, 0x21, &V4_BLOCK, &[]), ProxyError::V2Truncated),
        (v2(V2_PROXY, 0x31, &[0; 215], &[]), ProxyError::V2Truncated),
    ];
    for (buf, want) in cases {
        assert_eq!(err(&buf), want, "{buf:?}");
        prefixes_agree(&buf, buf.len(), Err(want));
    }
}

#[test]
fn v2_length_is_bounded_before_the_bytes_arrive() {
    let tlv = |n: usize| {
        let mut t = vec![0x04];
        t.extend_from_slice(&(n as u16).to_be_bytes());
        t.extend(std::iter::repeat_n(0, n));
        t
    };
    // 16 + 12 + 3 + 69 = 100 bytes.
    let buf = v2(V2_PROXY, 0x11, &V4_BLOCK, &tlv(69));
    assert_eq!(buf.len(), 100);
    assert!(matches!(parse_proxy_header(&buf, 100), Ok(Parsed::Complete(_))));
    assert_eq!(parse_proxy_header(&buf, 99), Err(ProxyError::V2TooLong));
    // Known from the first 16 bytes: the rest need never be read.
    assert_eq!(parse_proxy_header(&buf[..16], 99), Err(ProxyError::V2TooLong));
    assert!(matches!(parse_proxy_header(&buf[..15], 99), Ok(Parsed::Partial)));
    // The largest length field there is.
    let mut huge = v2(V2_PROXY, 0x11, &V4_BLOCK, &[]);
    huge[14..16].copy_from_slice(&u16::MAX.to_be_bytes());
    assert_eq!(err(&huge), ProxyError::V2TooLong);
    assert!(matches!(
        parse_proxy_header(&huge, V2_FIXED_LEN + usize::from(u16::MAX)),
        Ok(Parsed::Partial)
    ));
}

#[test]
fn v2_incomplete_headers_wait_for_more() {
    let buf = v2(V2_PROXY, 0x21, &v6_block(), &[0x04, 0x00, 0x01, 0x00]);
    for n in 0..buf.len() {
        assert!(
            matches!(parse_proxy_header(&buf[..n], MAX), Ok(Parsed::Partial)),
            "prefix {n}"
        );
    }
    assert_eq!(complete(&buf).len, buf.len());
}
