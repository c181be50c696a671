//! The single error type of request parsing and body decoding.

/// Why a request could not be accepted.
///
/// Every variant means the byte stream can no longer be trusted (framing may be lost, or a
/// peer is misbehaving): after sending the error response the connection **must be
/// closed**. [`ParseError::status`] gives the status code of that response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// 400: malformed method/target/version syntax, or an HTTP/0.9-style request line.
    #[error("invalid request line")]
    BadRequestLine,
    /// 505: a syntactically valid `HTTP/x.y` other than 1.0 and 1.1.
    #[error("HTTP version not supported")]
    UnsupportedVersion,
    /// 414: the request line is longer than `Limits::max_request_line`.
    #[error("request line too long")]
    UriTooLong,
    /// 431: the request head is longer than `Limits::max_header_bytes`.
    #[error("request header section too large")]
    HeadersTooLarge,
    /// 431: more header fields than `Limits::max_headers`.
    #[error("too many header fields")]
    TooManyHeaders,
    /// 400: bad field name, whitespace before the colon, obs-fold, or a control byte in a value.
    #[error("invalid header field")]
    InvalidHeader,
    /// 400: an HTTP/1.1 request without `Host` (RFC 9112 §3.2).
    #[error("missing Host header")]
    MissingHost,
    /// 400: more than one `Host` field (RFC 9112 §3.2).
    #[error("duplicate Host header")]
    DuplicateHost,
    /// 400: a `Host` value with bytes not allowed in `uri-host [ ":" port ]`.
    #[error("invalid Host header")]
    InvalidHost,
    /// 400: target form not allowed for the method, bad percent-encoding, `%00`,
    /// non-UTF-8 after decoding, or a path that climbs above `/`.
    #[error("invalid request target")]
    InvalidTarget,
    /// 400: a Content-Length that is not `1*DIGIT` or overflows `u64`.
    #[error("invalid Content-Length")]
    InvalidContentLength,
    /// 400: several Content-Length values that differ (RFC 9110 §8.6).
    #[error("conflicting Content-Length values")]
    ConflictingContentLength,
    /// 400: both Transfer-Encoding and Content-Length (RFC 9112 §6.3 item 3).
    #[error("Transfer-Encoding together with Content-Length")]
    TransferEncodingWithContentLength,
    /// 400: `chunked` is not the single final coding, or Transfer-Encoding in HTTP/1.0
    /// (RFC 9112 §6.1, §6.3).
    #[error("chunked is not the final transfer coding")]
    ChunkedNotFinal,
    /// 501: a transfer coding other than `chunked` precedes a final `chunked`.
    #[error("unsupported transfer coding")]
    UnsupportedTransferCoding,
    /// 413: the body is larger than `Limits::max_body`.
    #[error("payload too large")]
    PayloadTooLarge,
    /// 400: malformed chunked framing (RFC 9112 §7.1).
    #[error("invalid chunked encoding")]
    InvalidChunk,
    /// 431: the chunked trailer section is too large.
    #[error("trailer section too large")]
    TrailersTooLarge,
    /// 417: an `Expect` value other than `100-continue` (RFC 9110 §10.1.1).
    #[error("expectation failed")]
    ExpectationFailed,
}

impl ParseError {
    /// Every variant, for tests and exhaustive tables.
    pub const ALL: [ParseError; 19] = [
        ParseError::BadRequestLine,
        ParseError::UnsupportedVersion,
        ParseError::UriTooLong,
        ParseError::HeadersTooLarge,
        ParseError::TooManyHeaders,
        ParseError::InvalidHeader,
        ParseError::MissingHost,
        ParseError::DuplicateHost,
        ParseError::InvalidHost,
        ParseError::InvalidTarget,
        ParseError::InvalidContentLength,
        ParseError::ConflictingContentLength,
        ParseError::TransferEncodingWithContentLength,
        ParseError::ChunkedNotFinal,
        ParseError::UnsupportedTransferCoding,
        ParseError::PayloadTooLarge,
        ParseError::InvalidChunk,
        ParseError::TrailersTooLarge,
        ParseError::ExpectationFailed,
    ];

    /// The status code of the response that reports this error.
    pub const fn status(self) -> u16 {
        match self {
            ParseError::BadRequestLine
            | ParseError::InvalidHeader
            | ParseError::MissingHost
            | ParseError::DuplicateHost
            | ParseError::InvalidHost
            | ParseError::InvalidTarget
            | ParseError::InvalidContentLength
            | ParseError::ConflictingContentLength
            | ParseError::TransferEncodingWithContentLength
            | ParseError::ChunkedNotFinal
            | ParseError::InvalidChunk => 400,
            ParseError::UnsupportedVersion => 505,
            ParseError::UriTooLong => 414,
            ParseError::HeadersTooLarge | ParseError::TooManyHeaders | ParseError::TrailersTooLarge => 431,
            ParseError::UnsupportedTransferCoding => 501,
            ParseError::PayloadTooLarge => 413,
            ParseError::ExpectationFailed => 417,
        }
    }

    /// The reason phrase of [`ParseError::status`].
    pub const fn reason(self) -> &'static str {
        match self.status() {
            400 => "Bad Request",
            413 => "Content Too Large",
            414 => "URI Too Long",
            417 => "Expectation Failed",
            431 => "Request Header Fields Too Large",
            501 => "Not Implemented",
            505 => "HTTP Version Not Supported",
            // Unreachable: `status` only returns the codes above.
            _ => "",
        }
    }

    /// The same text as `Display`, usable as a tiny `text/plain` error body.
    pub const fn message(self) -> &'static str {
        match self {
            ParseError::BadRequestLine => "invalid request line",
            ParseError::UnsupportedVersion => "HTTP version not supported",
            ParseError::UriTooLong => "request line too long",
            ParseError::HeadersTooLarge => "request header section too large",
            ParseError::TooManyHeaders => "too many header fields",
            ParseError::InvalidHeader => "invalid header field",
            ParseError::MissingHost => "missing Host header",
            ParseError::DuplicateHost => "duplicate Host header",
            ParseError::InvalidHost => "invalid Host header",
            ParseError::InvalidTarget => "invalid request target",
            ParseError::InvalidContentLength => "invalid Content-Length",
            ParseError::ConflictingContentLength => "conflicting Content-Length values",
            ParseError::TransferEncodingWithContentLength => "Transfer-Encoding together with Content-Length",
            ParseError::ChunkedNotFinal => "chunked is not the final transfer coding",
            ParseError::UnsupportedTransferCoding => "unsupported transfer coding",
            ParseError::PayloadTooLarge => "payload too large",
            ParseError::InvalidChunk => "invalid chunked encoding",
            ParseError::TrailersTooLarge => "trailer section too large",
            ParseError::ExpectationFailed => "expectation failed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_matches_message() {
        for e in ParseError::ALL {
            assert_eq!(e.to_string(), e.message(), "{e:?}");
        }
    }

    #[test]
    fn reason_matches_response_table() {
        for e in ParseError::ALL {
            assert!(!e.reason().is_empty(), "{e:?}");
            assert_eq!(e.reason(), crate::response::reason_phrase(e.status()), "{e:?}");
        }
    }

    #[test]
    fn statuses() {
        use ParseError::*;
        let table = [
            (BadRequestLine, 400),
            (UnsupportedVersion, 505),
            (UriTooLong, 414),
            (HeadersTooLarge, 431),
            (TooManyHeaders, 431),
            (InvalidHeader, 400),
            (MissingHost, 400),
            (DuplicateHost, 400),
            (InvalidHost, 400),
            (InvalidTarget, 400),
            (InvalidContentLength, 400),
            (ConflictingContentLength, 400),
            (TransferEncodingWithContentLength, 400),
            (ChunkedNotFinal, 400),
            (UnsupportedTransferCoding, 501),
            (PayloadTooLarge, 413),
            (InvalidChunk, 400),
            (TrailersTooLarge, 431),
            (ExpectationFailed, 417),
        ];
        assert_eq!(table.len(), ParseError::ALL.len());
        for (e, s) in table {
            assert_eq!(e.status(), s, "{e:?}");
        }
    }
}
