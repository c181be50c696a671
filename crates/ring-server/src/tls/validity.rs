//! The validity period of an X.509 certificate, read straight from its DER (RFC 5280 §4.1):
//! enough of a parser to refuse an expired certificate at start-up, with no X.509 dependency.

use std::fmt;

/// A certificate's `notAfter`, as seconds since the Unix epoch and as written in the certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NotAfter {
    pub(crate) unix: i64,
    fields: [u32; 6],
}

impl fmt::Display for NotAfter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [y, mo, d, h, mi, s] = self.fields;
        write!(f, "{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02} UTC")
    }
}

/// Reads `notAfter` from a DER certificate; `None` when the bytes are not a certificate.
pub(crate) fn not_after(cert: &[u8]) -> Option<NotAfter> {
    // Certificate ::= SEQUENCE { tbsCertificate TBSCertificate, ... }
    let (tag, cert, _) = element(cert)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, mut tbs, _) = element(cert)?;
    if tag != 0x30 {
        return None;
    }
    // TBSCertificate ::= SEQUENCE { version [0] EXPLICIT OPTIONAL, serialNumber, signature,
    //                               issuer, validity, ... }
    let (tag, _, rest) = element(tbs)?;
    if tag == 0xa0 {
        tbs = rest;
    }
    for _ in 0..3 {
        tbs = element(tbs)?.2;
    }
    let (tag, validity, _) = element(tbs)?;
    if tag != 0x30 {
        return None;
    }
    let (_, _, rest) = element(validity)?;
    let (tag, time, _) = element(rest)?;
    parse_time(tag, time)
}

/// One DER element: its tag, its contents and what follows it.
fn element(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        first as usize
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | *b as usize);
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// `UTCTime` (tag 23, `YYMMDDHHMMSSZ`) or `GeneralizedTime` (tag 24, `YYYYMMDDHHMMSSZ`).
fn parse_time(tag: u8, text: &[u8]) -> Option<NotAfter> {
    let digits = |s: &[u8]| -> Option<u32> {
        s.iter().try_fold(0u32, |acc, b| {
            b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
        })
    };
    let (year, rest) = match (tag, text.len()) {
        // RFC 5280 §4.1.2.5.1: YY >= 50 is 19YY, else 20YY.
        (23, 13) => {
            let yy = digits(&text[..2])?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &text[2..])
        }
        (24, 15) => (digits(&text[..4])?, &text[4..]),
        _ => return None,
    };
    if rest[10] != b'Z' {
        return None;
    }
    let f = |i: usize| digits(&rest[i..i + 2]);
    let fields = [year, f(0)?, f(2)?, f(4)?, f(6)?, f(8)?];
    let [_, month, day, hour, minute, second] = fields;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let days = days_from_civil(i64::from(year), month, day);
    let unix = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    Some(NotAfter { unix, fields })
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        let t = parse_time(23, b"491231235959Z").unwrap();
        assert_eq!(t.unix, 2_524_607_999);
        assert_eq!(t.to_string(), "2049-12-31 23:59:59 UTC");
        assert_eq!(parse_time(23, b"700101000000Z").unwrap().unix, 0);
        assert_eq!(parse_time(24, b"20000301000000Z").unwrap().unix, 951_868_800);
        assert!(parse_time(23, b"700101000000").is_none());
        assert!(parse_time(24, b"2000030100000Z").is_none());
        assert!(parse_time(23, b"701301000000Z").is_none());
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        assert!(not_after(b"").is_none());
        assert!(not_after(&[0x30, 0x82, 0xff]).is_none());
        assert!(not_after(&[0x30, 0x03, 0x30, 0x01, 0x00]).is_none());
    }
}
