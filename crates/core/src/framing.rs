//! Request body framing (RFC 9112 §6). This is where request smuggling is prevented, so
//! every ambiguity is an error rather than a guess.

use crate::error::ParseError;
use crate::limits::Limits;
use crate::version::Version;

/// How the request body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body (RFC 9112 §6.3 item 7: neither Transfer-Encoding nor Content-Length).
    None,
    /// Exactly this many bytes follow the head (may be 0).
    Length(u64),
    /// The chunked transfer coding follows the head; decode with [`crate::ChunkedDecoder`].
    Chunked,
}

/// Optional whitespace (RFC 9110 §5.6.3).
fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Iterates the elements of a comma-separated list field value, OWS trimmed
/// (RFC 9110 §5.6.1). Empty elements are yielded; callers decide what they mean.
pub(crate) fn list_elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value.split(|&b| b == b',').map(trim_ows)
}

/// `1*DIGIT` with checked arithmetic (RFC 9110 §8.6). No sign, no whitespace, no hex.
fn parse_content_length(s: &[u8]) -> Result<u64, ParseError> {
    if s.is_empty() {
        return Err(ParseError::InvalidContentLength);
    }
    let mut n: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return Err(ParseError::InvalidContentLength);
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(b - b'0')))
            .ok_or(ParseError::InvalidContentLength)?;
    }
    Ok(n)
}

/// RFC 9112 §6: decides request body framing from all Content-Length and Transfer-Encoding headers
/// (several header lines and comma-separated lists both count; codings case-insensitive, OWS trimmed).
///
/// Transfer-Encoding rules (RFC 9112 §6.1, §6.3): in HTTP/1.0 it is faulty framing
/// ([`ParseError::ChunkedNotFinal`]); with Content-Length it is refused
/// ([`ParseError::TransferEncodingWithContentLength`], rather than dropping Content-Length as
/// §6.3 item 3 allows, because the sender is either broken or smuggling); the final coding must
/// be `chunked` exactly once ([`ParseError::ChunkedNotFinal`]); any coding before it is one we
/// don't implement ([`ParseError::UnsupportedTransferCoding`], 501). Empty list elements are
/// ignored (RFC 9110 §5.6.1.2), but a field with no coding at all has no final `chunked`.
///
/// Content-Length rules (RFC 9110 §8.6, RFC 9112 §6.3 item 5): every element must be
/// `1*DIGIT` without overflow; repeated identical values are accepted as one; differing values
/// are refused; a length above `limits.max_body` is [`ParseError::PayloadTooLarge`].
pub fn request_framing(
    headers: &[httparse::Header<'_>],
    version: Version,
    limits: &Limits,
) -> Result<BodyFraming, ParseError> {
    // Transfer-Encoding decides first: with it present, any Content-Length is an error
    // whatever its syntax.
    if values(headers, "transfer-encoding").next().is_some() {
        if version == Version::Http10 {
            return Err(ParseError::ChunkedNotFinal);
        }
        if values(headers, "content-length").next().is_some() {
            return Err(ParseError::TransferEncodingWithContentLength);
        }
        return te_framing(values(headers, "transfer-encoding"));
    }

    let mut content_length: Option<u64> = None;
    for value in values(headers, "content-length") {
        for element in list_elements(value) {
            let n = parse_content_length(element)?;
            match content_length {
                Some(prev) if prev != n => return Err(ParseError::ConflictingContentLength),
                _ => content_length = Some(n),
            }
        }
    }
    match content_length {
        None => Ok(BodyFraming::None),
        Some(n) if n > limits.max_body => Err(ParseError::PayloadTooLarge),
        Some(n) => Ok(BodyFraming::Length(n)),
    }
}

/// The values of the fields called `name` (case-insensitive).
fn values<'a, 'b>(headers: &'a [httparse::Header<'b>], name: &'a str) -> impl Iterator<Item = &'b [u8]> + 'a {
    headers
        .iter()
        .filter(move |h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value)
}

/// The Transfer-Encoding codings, across all field lines, must end in one `chunked`.
fn te_framing<'v>(te_values: impl Iterator<Item = &'v [u8]>) -> Result<BodyFraming, ParseError> {
    let mut codings = 0usize;
    let mut chunked = 0usize;
    let mut last_is_chunked = false;
    for value in te_values {
        for coding in list_elements(value).filter(|c| !c.is_empty()) {
            codings += 1;
            last_is_chunked = coding.eq_ignore_ascii_case(b"chunked");
            if last_is_chunked {
                chunked += 1;
            }
        }
    }
    if !last_is_chunked || chunked > 1 {
        Err(ParseError::ChunkedNotFinal)
    } else if codings > 1 {
        Err(ParseError::UnsupportedTransferCoding)
    } else {
        Ok(BodyFraming::Chunked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use httparse::Header;

    fn framing(fields: &[(&'static str, &'static [u8])], v: Version) -> Result<BodyFraming, ParseError> {
        let headers: Vec<Header<'static>> = fields.iter().map(|&(name, value)| Header { name, value }).collect();
        request_framing(&headers, v, &Limits::default())
    }
    fn f11(fields: &[(&'static str, &'static [u8])]) -> Result<BodyFraming, ParseError> {
        framing(fields, Version::Http11)
    }

    #[test]
    fn no_body() {
        assert_eq!(f11(&[]), Ok(BodyFraming::None));
        assert_eq!(f11(&[("Host", b"x")]), Ok(BodyFraming::None));
    }

    #[test]
    fn content_length() {
        assert_eq!(f11(&[("Content-Length", b"0")]), Ok(BodyFraming::Length(0)));
        assert_eq!(f11(&[("content-length", b"42")]), Ok(BodyFraming::Length(42)));
        assert_eq!(f11(&[("CONTENT-LENGTH", b"007")]), Ok(BodyFraming::Length(7)));
        assert_eq!(
            framing(&[("Content-Length", b"5")], Version::Http10),
            Ok(BodyFraming::Length(5))
        );
    }

    #[test]
    fn content_length_syntax() {
        for bad in [
            &b"+5"[..],
            b"5a",
            b"-1",
            b" ",
            b"",
            b"0x10",
            b"5 5",
            b"5,",
            b",5",
            b"1e3",
            b"\xd9\xa3",
        ] {
            assert_eq!(
                f11(&[("Content-Length", bad)]),
                Err(ParseError::InvalidContentLength),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn content_length_overflow() {
        assert_eq!(
            f11(&[("Content-Length", b"18446744073709551616")]),
            Err(ParseError::InvalidContentLength)
        );
        // u64::MAX itself parses, then is over the body limit.
        assert_eq!(
            f11(&[("Content-Length", b"18446744073709551615")]),
            Err(ParseError::PayloadTooLarge)
        );
    }

    #[test]
    fn repeated_same_value_accepted() {
        assert_eq!(f11(&[("Content-Length", b"5, 5")]), Ok(BodyFraming::Length(5)));
        assert_eq!(
            f11(&[("Content-Length", b"5"), ("Content-Length", b"5")]),
            Ok(BodyFraming::Length(5))
        );
        assert_eq!(f11(&[("Content-Length", b"5 ,\t5")]), Ok(BodyFraming::Length(5)));
    }

    #[test]
    fn conflicting_values() {
        assert_eq!(
            f11(&[("Content-Length", b"5, 6")]),
            Err(ParseError::ConflictingContentLength)
        );
        assert_eq!(
            f11(&[("Content-Length", b"5"), ("Content-Length", b"6")]),
            Err(ParseError::ConflictingContentLength)
        );
        assert_eq!(
            f11(&[("Content-Length", b"5"), ("Content-Length", b"05")]),
            Ok(BodyFraming::Length(5))
        );
    }

    #[test]
    fn content_length_over_limit() {
        let limits = Limits {
            max_body: 10,
            ..Limits::default()
        };
        let h = [Header {
            name: "Content-Length",
            value: b"11",
        }];
        assert_eq!(
            request_framing(&h, Version::Http11, &limits),
            Err(ParseError::PayloadTooLarge)
        );
        let h = [Header {
            name: "Content-Length",
            value: b"10",
        }];
        assert_eq!(
            request_framing(&h, Version::Http11, &limits),
            Ok(BodyFraming::Length(10))
        );
    }

    #[test]
    fn chunked() {
        assert_eq!(f11(&[("Transfer-Encoding", b"chunked")]), Ok(BodyFraming::Chunked));
        assert_eq!(f11(&[("transfer-encoding", b"  CHUNKED\t")]), Ok(BodyFraming::Chunked));
        assert_eq!(f11(&[("Transfer-Encoding", b"chunked, ")]), Ok(BodyFraming::Chunked));
    }

    #[test]
    fn te_in_http10() {
        assert_eq!(
            framing(&[("Transfer-Encoding", b"chunked")], Version::Http10),
            Err(ParseError::ChunkedNotFinal)
        );
    }

    #[test]
    fn te_decides_before_content_length_syntax() {
        assert_eq!(
            f11(&[("Content-Length", b"x"), ("Transfer-Encoding", b"chunked")]),
            Err(ParseError::TransferEncodingWithContentLength)
        );
        assert_eq!(
            framing(
                &[("Content-Length", b"5"), ("Transfer-Encoding", b"chunked")],
                Version::Http10
            ),
            Err(ParseError::ChunkedNotFinal)
        );
        assert_eq!(
            f11(&[("Content-Length", b"5"), ("Transfer-Encoding", b"gzip")]),
            Err(ParseError::TransferEncodingWithContentLength)
        );
    }

    #[test]
    fn te_with_cl() {
        assert_eq!(
            f11(&[("Transfer-Encoding", b"chunked"), ("Content-Length", b"5")]),
            Err(ParseError::TransferEncodingWithContentLength)
        );
        assert_eq!(
            f11(&[("Content-Length", b"5"), ("Transfer-Encoding", b"chunked")]),
            Err(ParseError::TransferEncodingWithContentLength)
        );
    }

    #[test]
    fn chunked_not_final() {
        for bad in [
            &b"foo"[..],
            b"chunked, gzip",
            b"",
            b" ",
            b",",
            b"gzip",
            b"chunked;q=1",
            b"chunkedx",
        ] {
            assert_eq!(
                f11(&[("Transfer-Encoding", bad)]),
                Err(ParseError::ChunkedNotFinal),
                "{bad:?}"
            );
        }
        assert_eq!(
            f11(&[("Transfer-Encoding", b"chunked"), ("Transfer-Encoding", b"gzip")]),
            Err(ParseError::ChunkedNotFinal)
        );
    }

    #[test]
    fn chunked_twice() {
        assert_eq!(
            f11(&[("Transfer-Encoding", b"chunked, chunked")]),
            Err(ParseError::ChunkedNotFinal)
        );
        assert_eq!(
            f11(&[("Transfer-Encoding", b"chunked"), ("Transfer-Encoding", b"chunked")]),
            Err(ParseError::ChunkedNotFinal)
        );
    }

    #[test]
    fn unsupported_coding_before_chunked() {
        assert_eq!(
            f11(&[("Transfer-Encoding", b"gzip, chunked")]),
            Err(ParseError::UnsupportedTransferCoding)
        );
        assert_eq!(
            f11(&[("Transfer-Encoding", b"foo, chunked")]),
            Err(ParseError::UnsupportedTransferCoding)
        );
        assert_eq!(
            f11(&[("Transfer-Encoding", b"gzip"), ("Transfer-Encoding", b"chunked")]),
            Err(ParseError::UnsupportedTransferCoding)
        );
        assert_eq!(ParseError::UnsupportedTransferCoding.status(), 501);
    }
}
