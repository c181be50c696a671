//! Limits are plain data so the server can load them from configuration.

/// Size limits enforced by [`crate::parse_request`] and the body decoders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest request line (without CRLF) accepted; longer gives 414.
    /// Default 8192, like nginx's `large_client_header_buffers 8k`.
    pub max_request_line: usize,
    /// Longest request head (request line, fields and blank line, plus leading empty lines);
    /// longer gives 431. Default 32768.
    pub max_header_bytes: usize,
    /// Most header fields accepted; more gives 431. Default 100. Values above
    /// [`crate::MAX_HEADERS`] are clamped to it.
    pub max_headers: usize,
    /// Largest request body accepted; larger gives 413. Default 1 MiB, like nginx's
    /// `client_max_body_size 1m`.
    pub max_body: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_line: 8192,
            max_header_bytes: 32768,
            max_headers: 100,
            max_body: 1024 * 1024,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let l = Limits::default();
        assert_eq!(l.max_request_line, 8192);
        assert_eq!(l.max_header_bytes, 32768);
        assert_eq!(l.max_headers, 100);
        assert_eq!(l.max_body, 1 << 20);
    }
}
