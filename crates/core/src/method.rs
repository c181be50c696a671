//! Methods are kept as a borrowed token when not one of the RFC 9110 §9 set.

/// A request method (RFC 9110 §9). Matching is case-sensitive (RFC 9110 §9.1): `get` is
/// an extension method, not `GET`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method<'b> {
    /// `GET`
    Get,
    /// `HEAD`
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `DELETE`
    Delete,
    /// `OPTIONS`
    Options,
    /// `PATCH` (RFC 5789)
    Patch,
    /// `CONNECT`
    Connect,
    /// `TRACE`
    Trace,
    /// Any other token, borrowed from the request buffer.
    Other(&'b str),
}

impl<'b> Method<'b> {
    /// Classifies a method token (already validated as a `token` by the parser).
    // Always inlined: every request classifies its method, and the comparisons with the
    // known names are cheaper than a call.
    #[inline(always)]
    pub fn parse(token: &'b str) -> Method<'b> {
        match token {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            "PATCH" => Method::Patch,
            "CONNECT" => Method::Connect,
            "TRACE" => Method::Trace,
            other => Method::Other(other),
        }
    }

    /// The method token as sent.
    pub fn as_str(&self) -> &str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Patch => "PATCH",
            Method::Connect => "CONNECT",
            Method::Trace => "TRACE",
            Method::Other(s) => s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_methods_round_trip() {
        for m in [
            "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE",
        ] {
            let parsed = Method::parse(m);
            assert!(!matches!(parsed, Method::Other(_)), "{m}");
            assert_eq!(parsed.as_str(), m);
        }
    }

    #[test]
    fn case_sensitive() {
        assert_eq!(Method::parse("get"), Method::Other("get"));
        assert_eq!(Method::parse("Get").as_str(), "Get");
    }

    #[test]
    fn extension_method() {
        assert_eq!(Method::parse("PROPFIND"), Method::Other("PROPFIND"));
    }
}
