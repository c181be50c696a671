//! A [`RequestHead`] from an HTTP/2 request's pseudo-header fields and fields (RFC 9113 §8.3),
//! so that everything above the wire (routing, handlers, static files, logs) sees an HTTP/2
//! request exactly as it sees an HTTP/1.1 one.
//!
//! The HTTP/2 engine has already decoded HPACK, refused connection-specific fields and
//! uppercase names, checked the pseudo-fields' presence and order, and matched `content-length`
//! against the DATA frames. What is left are the rules HTTP/1.1 requests get from
//! [`crate::parse_request`], applied to the same values: the target (the `:path`), the host,
//! the limits, and the field-value rules of RFC 9113 §8.2.1.

use httparse::Header;

use crate::error::ParseError;
use crate::framing::BodyFraming;
use crate::limits::Limits;
use crate::method::Method;
use crate::request::RequestHead;
use crate::target::{is_host, split_target};
use crate::version::Version;

/// What an HTTP/2 request says about itself: its pseudo-fields and its fields.
#[derive(Debug, Clone, Copy)]
pub struct H2Request<'h, 'b> {
    /// `:method`.
    pub method: &'b str,
    /// `:path` (with the query), absent for CONNECT.
    pub path: Option<&'b str>,
    /// `:authority`, if sent.
    pub authority: Option<&'b str>,
    /// The regular fields, in order (names lowercase).
    pub headers: &'h [Header<'b>],
    /// The request's `content-length`, if it has one.
    pub content_length: Option<u64>,
}

/// The head of an HTTP/2 request, or why it is refused (the status to answer with).
///
/// - The `:path` is a request-target as in HTTP/1.1: origin-form (normalised, decoded), or `*`
///   for OPTIONS; CONNECT (no `:path`) is authority-form on `:authority`.
/// - The host is `:authority`, else `Host` (RFC 9113 §8.3.1); both present and different is a
///   malformed request.
/// - More fields than `limits.max_headers`, or a field section larger than
///   `limits.max_header_bytes` (counted as HPACK does: name, value and 32 bytes a field), is 431,
///   as for HTTP/1.1.
/// - A field value may not start or end with whitespace, nor hold CR, LF or NUL (RFC 9113
///   §8.2.1).
pub fn h2_request_head<'h, 'b>(req: H2Request<'h, 'b>, limits: &Limits) -> Result<RequestHead<'h, 'b>, ParseError> {
    let method = Method::parse(req.method);
    if req.headers.len() > limits.max_headers {
        return Err(ParseError::TooManyHeaders);
    }
    let mut size = 0usize;
    let mut host = None;
    for h in req.headers {
        size += h.name.len() + h.value.len() + 32;
        let v = h.value;
        if matches!(v.first(), Some(b' ' | b'\t'))
            || matches!(v.last(), Some(b' ' | b'\t'))
            || v.iter().any(|b| matches!(b, b'\r' | b'\n' | 0))
        {
            return Err(ParseError::InvalidHeader);
        }
        if h.name.eq_ignore_ascii_case("host") {
            if host.is_some() {
                return Err(ParseError::DuplicateHost);
            }
            host = Some(v);
        }
    }
    if size > limits.max_header_bytes {
        return Err(ParseError::HeadersTooLarge);
    }
    let authority = req.authority.map(str::as_bytes).filter(|a| !a.is_empty());
    if let (Some(a), Some(h)) = (authority, host) {
        if a != h {
            return Err(ParseError::InvalidHost);
        }
    }
    let host = authority.or(host);
    if host.is_some_and(|h| !is_host(h)) {
        return Err(ParseError::InvalidHost);
    }
    let raw_target = match (method, req.path) {
        (Method::Connect, None) => req.authority.ok_or(ParseError::InvalidTarget)?,
        (Method::Connect, Some(_)) | (_, None) => return Err(ParseError::InvalidTarget),
        (_, Some(path)) => path,
    };
    if raw_target.len() > limits.max_request_line {
        return Err(ParseError::UriTooLong);
    }
    let split = split_target(raw_target, method)?;
    if matches!(split.target, crate::Target::Absolute { .. }) {
        // `:path` is origin-form or `*`; the scheme and authority have their own fields.
        return Err(ParseError::InvalidTarget);
    }
    let body = match req.content_length {
        Some(n) if n > limits.max_body => return Err(ParseError::PayloadTooLarge),
        Some(n) => BodyFraming::Length(n),
        None => BodyFraming::None,
    };
    Ok(RequestHead {
        method,
        target: split.target,
        raw_target,
        path: split.path,
        query: split.query,
        version: Version::Http2,
        headers: req.headers,
        host,
        body,
        keep_alive: true,
        expect_continue: false,
        head_len: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Target;

    fn head<'h>(
        method: &'static str,
        path: Option<&'static str>,
        authority: Option<&'static str>,
        headers: &'h [Header<'static>],
    ) -> Result<RequestHead<'h, 'static>, ParseError> {
        h2_request_head(
            H2Request {
                method,
                path,
                authority,
                headers,
                content_length: None,
            },
            &Limits::default(),
        )
    }

    #[test]
    fn an_ordinary_request_reads_as_its_http1_twin() {
        let fields = [Header {
            name: "user-agent",
            value: b"curl",
        }];
        let h = head("GET", Some("/a/../b%20c?x=1"), Some("example.org"), &fields).unwrap();
        assert_eq!(h.method, Method::Get);
        assert_eq!(h.path, "/b c");
        assert_eq!(h.query, Some("x=1"));
        assert_eq!(h.raw_target, "/a/../b%20c?x=1");
        assert_eq!(h.target, Target::Origin);
        assert_eq!(h.host, Some(&b"example.org"[..]));
        assert_eq!(h.version, Version::Http2);
        assert_eq!(h.header("User-Agent"), Some(&b"curl"[..]));
        assert_eq!(h.body, BodyFraming::None);
    }

    #[test]
    fn host_comes_from_authority_then_the_host_field_and_they_must_agree() {
        let host = [Header {
            name: "host",
            value: b"h.example:8443",
        }];
        assert_eq!(
            head("GET", Some("/"), None, &host).unwrap().host,
            Some(&b"h.example:8443"[..])
        );
        assert_eq!(
            head("GET", Some("/"), Some("h.example:8443"), &host).unwrap().host,
            Some(&b"h.example:8443"[..])
        );
        assert_eq!(
            head("GET", Some("/"), Some("other.example"), &host).unwrap_err(),
            ParseError::InvalidHost
        );
        assert_eq!(
            head("GET", Some("/"), Some("bad host"), &[]).unwrap_err(),
            ParseError::InvalidHost
        );
        let two = [host[0], host[0]];
        assert_eq!(
            head("GET", Some("/"), None, &two).unwrap_err(),
            ParseError::DuplicateHost
        );
    }

    #[test]
    fn targets_follow_the_http1_rules() {
        assert_eq!(
            head("OPTIONS", Some("*"), Some("a"), &[]).unwrap().target,
            Target::Asterisk
        );
        assert_eq!(
            head("GET", Some("*"), Some("a"), &[]).unwrap_err(),
            ParseError::InvalidTarget
        );
        assert_eq!(
            head("GET", Some("/../etc/passwd"), Some("a"), &[]).unwrap_err(),
            ParseError::InvalidTarget
        );
        assert_eq!(
            head("GET", Some("/%00"), Some("a"), &[]).unwrap_err(),
            ParseError::InvalidTarget
        );
        assert_eq!(
            head("GET", Some("http://a/b"), Some("a"), &[]).unwrap_err(),
            ParseError::InvalidTarget
        );
        assert_eq!(
            head("GET", None, Some("a"), &[]).unwrap_err(),
            ParseError::InvalidTarget
        );
        let connect = head("CONNECT", None, Some("a.example:443"), &[]).unwrap();
        assert_eq!(connect.target, Target::Authority("a.example:443"));
        assert_eq!(
            head("CONNECT", Some("/"), Some("a:1"), &[]).unwrap_err(),
            ParseError::InvalidTarget
        );
        let long = Box::leak(format!("/{}", "a".repeat(9000)).into_boxed_str());
        assert_eq!(
            head("GET", Some(long), Some("a"), &[]).unwrap_err(),
            ParseError::UriTooLong
        );
    }

    #[test]
    fn field_values_and_limits() {
        for bad in [&b" x"[..], b"x\t", b"a\rb", b"a\nb", b"a\0b"] {
            let f = [Header {
                name: "x-a",
                value: bad,
            }];
            assert_eq!(
                head("GET", Some("/"), Some("a"), &f).unwrap_err(),
                ParseError::InvalidHeader,
                "{bad:?}"
            );
        }
        let many: Vec<Header<'static>> = (0..101)
            .map(|_| Header {
                name: "x-a",
                value: b"1",
            })
            .collect();
        assert_eq!(
            head("GET", Some("/"), Some("a"), &many).unwrap_err(),
            ParseError::TooManyHeaders
        );
        let big = Box::leak(vec![b'v'; 40 * 1024].into_boxed_slice());
        let f = [Header {
            name: "x-big",
            value: big,
        }];
        assert_eq!(
            head("GET", Some("/"), Some("a"), &f).unwrap_err(),
            ParseError::HeadersTooLarge
        );
    }

    #[test]
    fn a_declared_body_over_the_limit_is_413_before_it_is_read() {
        let req = |n| H2Request {
            method: "POST",
            path: Some("/"),
            authority: Some("a"),
            headers: &[],
            content_length: Some(n),
        };
        let limits = Limits::default();
        assert_eq!(h2_request_head(req(5), &limits).unwrap().body, BodyFraming::Length(5));
        assert_eq!(
            h2_request_head(req(limits.max_body + 1), &limits).unwrap_err(),
            ParseError::PayloadTooLarge
        );
    }
}
