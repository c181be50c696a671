//! The `Date` header (RFC 9110 §6.6.1) changes once a second; render it at most that often.

use std::io::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Length of an IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
const LEN: usize = 29;

/// Last second httpdate can render (9999-12-31T23:59:59Z).
const MAX_SECS: u64 = 253_402_300_799;

/// The `Date` header value (IMF-fixdate, 29 bytes), rendered at most once per second.
#[derive(Debug, Clone)]
pub struct DateCache {
    /// The unix second `value` was rendered for; `None` before the first render.
    second: Option<u64>,
    value: [u8; LEN],
    /// How many times `value` was rendered (for tests of the caching).
    renders: u64,
}

impl DateCache {
    /// An empty cache; the first [`DateCache::get`] renders.
    pub fn new() -> Self {
        DateCache {
            second: None,
            value: [0; LEN],
            renders: 0,
        }
    }

    /// Returns the value for `now`, re-rendering only when the whole second changed.
    ///
    /// Times before 1970 or after 9999 are clamped (the format can't express them, and a
    /// wrong clock must not crash the server).
    pub fn get(&mut self, now: SystemTime) -> &[u8] {
        let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()).min(MAX_SECS);
        if self.second != Some(second) {
            self.render(second);
        }
        &self.value
    }

    /// The value the last [`DateCache::get`] returned; empty before the first.
    pub fn last(&self) -> &[u8] {
        match self.second {
            Some(_) => &self.value,
            None => &[],
        }
    }

    fn render(&mut self, second: u64) {
        let date = httpdate::HttpDate::from(UNIX_EPOCH + Duration::from_secs(second));
        let mut cursor: &mut [u8] = &mut self.value;
        // Writing into the fixed array: no allocation. IMF-fixdate is always 29 bytes.
        let written = write!(cursor, "{date}");
        debug_assert!(written.is_ok() && cursor.is_empty());
        self.second = Some(second);
        self.renders += 1;
    }
}

impl Default for DateCache {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis)
    }

    #[test]
    fn rfc_example() {
        let mut c = DateCache::new();
        assert_eq!(c.last(), b"");
        assert_eq!(c.get(at(784_111_777, 0)), b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(c.last(), b"Sun, 06 Nov 1994 08:49:37 GMT");
    }

    #[test]
    fn renders_once_per_second() {
        let mut c = DateCache::default();
        assert_eq!(c.get(at(784_111_777, 0)), b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(c.get(at(784_111_777, 500)), b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(c.get(at(784_111_777, 999)), b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(c.renders, 1);
        assert_eq!(c.get(at(784_111_778, 0)), b"Sun, 06 Nov 1994 08:49:38 GMT");
        assert_eq!(c.renders, 2);
        // A clock stepping back re-renders too.
        assert_eq!(c.get(at(784_111_777, 0)), b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(c.renders, 3);
    }

    #[test]
    fn clamps_out_of_range() {
        let mut c = DateCache::new();
        let before = UNIX_EPOCH - Duration::from_secs(10);
        assert_eq!(c.get(before), b"Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(c.get(at(MAX_SECS + 1000, 0)), b"Fri, 31 Dec 9999 23:59:59 GMT");
    }

    #[test]
    fn always_29_bytes() {
        let mut c = DateCache::new();
        for s in [0, 1, 86_399, 951_782_400, 1_700_000_000, 4_102_444_800] {
            assert_eq!(c.get(at(s, 0)).len(), 29);
        }
    }
}
