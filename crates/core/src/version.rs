//! HTTP/1.0 and HTTP/1.1 request lines are parsed (other versions are rejected with 505);
//! HTTP/2 requests come from the HTTP/2 engine ([`crate::h2_request_head`]).

/// The HTTP version of a request line (RFC 9112 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Version {
    /// `HTTP/1.0`
    Http10,
    /// `HTTP/1.1`
    Http11,
    /// HTTP/2 (RFC 9113), written `HTTP/2.0` in logs as nginx does.
    Http2,
}

impl Version {
    /// The protocol version as written on the wire, e.g. `"HTTP/1.0"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
            Version::Http2 => "HTTP/2.0",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_str_and_order() {
        assert_eq!(Version::Http10.as_str(), "HTTP/1.0");
        assert_eq!(Version::Http11.as_str(), "HTTP/1.1");
        assert!(Version::Http10 < Version::Http11);
    }
}
