//! Conditional requests (RFC 9110 §13) and byte ranges (RFC 9110 §14) for a representation with
//! an entity tag (strong, or weak for one made on the fly) and a modification time: what to
//! answer, decided from the request's header values alone.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What the preconditions say (RFC 9110 §13.2.2, evaluated in its order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// Go on with the request.
    Proceed,
    /// 304 Not Modified (GET/HEAD whose cached copy is current).
    NotModified,
    /// 412 Precondition Failed.
    Failed,
}

/// The validators of the representation being asked for.
#[derive(Debug, Clone, Copy)]
pub struct Validators<'a> {
    /// The entity tag's opaque part, quotes included (`"abc"`).
    pub etag: &'a str,
    /// Whether the tag is weak (sent as `W/"abc"`): the representation is compressed on the
    /// fly, the same content but not necessarily the same bytes, so strong comparisons
    /// (`If-Match`, `If-Range`) never match it (RFC 9110 §8.8.3.2).
    pub weak: bool,
    /// Last modification, in whole seconds since the epoch (HTTP dates have no finer unit).
    pub last_modified: u64,
}

/// The conditional header values of a request (each the first line of that header, if any).
#[derive(Debug, Clone, Copy, Default)]
pub struct Conditions<'a> {
    /// `If-Match`.
    pub if_match: Option<&'a [u8]>,
    /// `If-None-Match`.
    pub if_none_match: Option<&'a [u8]>,
    /// `If-Modified-Since`.
    pub if_modified_since: Option<&'a [u8]>,
    /// `If-Unmodified-Since`.
    pub if_unmodified_since: Option<&'a [u8]>,
}

impl Conditions<'_> {
    /// Whether the request has none of the conditions ([`evaluate`] then says to proceed).
    pub fn is_empty(&self) -> bool {
        self.if_match.is_none()
            && self.if_none_match.is_none()
            && self.if_modified_since.is_none()
            && self.if_unmodified_since.is_none()
    }
}

/// Evaluates the preconditions for a request with method `get_or_head` (GET or HEAD) or not.
pub fn evaluate(c: &Conditions<'_>, v: &Validators<'_>, get_or_head: bool) -> Precondition {
    // 1. If-Match (strong comparison), else 2. If-Unmodified-Since.
    if let Some(list) = c.if_match {
        if !(trim(list) == b"*" || !v.weak && etag_list_matches(list, v.etag, false)) {
            return Precondition::Failed;
        }
    } else if let Some(date) = c.if_unmodified_since.and_then(parse_date) {
        if v.last_modified > date {
            return Precondition::Failed;
        }
    }
    // 3. If-None-Match (weak comparison), else 4. If-Modified-Since (GET/HEAD only).
    if let Some(list) = c.if_none_match {
        if etag_list_matches(list, v.etag, true) {
            return if get_or_head {
                Precondition::NotModified
            } else {
                Precondition::Failed
            };
        }
    } else if get_or_head {
        if let Some(date) = c.if_modified_since.and_then(parse_date) {
            if v.last_modified <= date {
                return Precondition::NotModified;
            }
        }
    }
    Precondition::Proceed
}

/// What a `Range` header asks of a representation of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeAnswer {
    /// No (usable) range: send everything with 200. Also for several ranges, which a server may
    /// answer in full (RFC 9110 §14.2).
    Full,
    /// 206 with bytes `start..=end`.
    Partial {
        /// First byte.
        start: u64,
        /// Last byte (inclusive).
        end: u64,
    },
    /// 416 with `Content-Range: bytes */size`.
    Unsatisfiable,
}

/// Decides a single `bytes=` range (`a-b`, `a-`, `-n`) for GET, honouring `If-Range` (an entity
/// tag compared strongly, or a date equal to the last modification).
pub fn range(range: Option<&[u8]>, if_range: Option<&[u8]>, v: &Validators<'_>, size: u64) -> RangeAnswer {
    let Some(range) = range else { return RangeAnswer::Full };
    if let Some(cond) = if_range {
        let cond = trim(cond);
        let fresh = if cond.starts_with(b"\"") || cond.starts_with(b"W/") {
            !cond.starts_with(b"W/") && !v.weak && cond == v.etag.as_bytes()
        } else {
            parse_date(cond) == Some(v.last_modified)
        };
        if !fresh {
            return RangeAnswer::Full;
        }
    }
    let Some(spec) = trim(range).strip_prefix(b"bytes=") else {
        return RangeAnswer::Full;
    };
    if spec.contains(&b',') {
        return RangeAnswer::Full;
    }
    let Some(dash) = spec.iter().position(|b| *b == b'-') else {
        return RangeAnswer::Full;
    };
    let (first, last) = (trim(&spec[..dash]), trim(&spec[dash + 1..]));
    match (digits(first), digits(last)) {
        // `-n`: the last n bytes.
        (None, Some(n)) if first.is_empty() => {
            if n == 0 || size == 0 {
                RangeAnswer::Unsatisfiable
            } else {
                RangeAnswer::Partial {
                    start: size - n.min(size),
                    end: size - 1,
                }
            }
        }
        (Some(a), None) if last.is_empty() => {
            if a >= size {
                RangeAnswer::Unsatisfiable
            } else {
                RangeAnswer::Partial {
                    start: a,
                    end: size - 1,
                }
            }
        }
        (Some(a), Some(b)) if a <= b => {
            if a >= size {
                RangeAnswer::Unsatisfiable
            } else {
                RangeAnswer::Partial {
                    start: a,
                    end: b.min(size - 1),
                }
            }
        }
        // Malformed: ignored, as RFC 9110 §14.2 allows.
        _ => RangeAnswer::Full,
    }
}

/// An HTTP date in seconds since the epoch.
fn parse_date(v: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(trim(v)).ok()?;
    let t = httpdate::parse_http_date(s).ok()?;
    t.duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs())
}

/// Formats seconds since the epoch as an HTTP date (`Last-Modified`).
pub fn http_date(secs: u64) -> String {
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs))
}

/// Whether `list` (`*` or comma-separated entity tags) names `etag`.
fn etag_list_matches(list: &[u8], etag: &str, weak: bool) -> bool {
    let list = trim(list);
    if list == b"*" {
        return true;
    }
    list.split(|b| *b == b',').map(trim).any(|tag| {
        let (is_weak, opaque) = match tag.strip_prefix(b"W/") {
            Some(rest) => (true, rest),
            None => (false, tag),
        };
        (weak || !is_weak) && opaque == etag.as_bytes()
    })
}

fn digits(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|b| *b != b' ' && *b != b'\t').unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| *b != b' ' && *b != b'\t')
        .map_or(start, |e| e + 1);
    &s[start..end]
}

/// Seconds since the epoch of a `SystemTime` (0 before it).
pub fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: Validators<'static> = Validators {
        etag: "\"abc\"",
        weak: false,
        last_modified: 784_111_777, // Sun, 06 Nov 1994 08:49:37 GMT
    };
    const WEAK: Validators<'static> = Validators { weak: true, ..V };

    #[test]
    fn a_weak_tag_matches_only_weakly() {
        // If-None-Match compares weakly: either form of the tag is current.
        for tag in [&b"\"abc\""[..], b"W/\"abc\""] {
            assert_eq!(
                evaluate(&c(None, Some(tag), None, None), &WEAK, true),
                Precondition::NotModified
            );
        }
        // If-Match compares strongly: a weak current tag fails it, except for `*`.
        assert_eq!(
            evaluate(&c(Some(b"\"abc\""), None, None, None), &WEAK, true),
            Precondition::Failed
        );
        assert_eq!(
            evaluate(&c(Some(b"*"), None, None, None), &WEAK, true),
            Precondition::Proceed
        );
        // If-Range too: the whole representation instead of a range of different bytes.
        assert_eq!(
            range(Some(b"bytes=0-1"), Some(b"\"abc\""), &WEAK, 10),
            RangeAnswer::Full
        );
        assert_eq!(
            range(Some(b"bytes=0-1"), Some(b"\"abc\""), &V, 10),
            RangeAnswer::Partial { start: 0, end: 1 }
        );
    }
    const DATE: &[u8] = b"Sun, 06 Nov 1994 08:49:37 GMT";
    const EARLIER: &[u8] = b"Sun, 06 Nov 1994 08:49:36 GMT";

    fn c<'a>(
        im: Option<&'a [u8]>,
        inm: Option<&'a [u8]>,
        ims: Option<&'a [u8]>,
        ius: Option<&'a [u8]>,
    ) -> Conditions<'a> {
        Conditions {
            if_match: im,
            if_none_match: inm,
            if_modified_since: ims,
            if_unmodified_since: ius,
        }
    }

    #[test]
    fn no_conditions_is_empty_and_proceeds() {
        let none = Conditions::default();
        assert!(none.is_empty());
        assert_eq!(evaluate(&none, &V, true), Precondition::Proceed);
        assert_eq!(evaluate(&none, &WEAK, false), Precondition::Proceed);
        for one in [
            c(Some(b"*"), None, None, None),
            c(None, Some(b"*"), None, None),
            c(None, None, Some(DATE), None),
            c(None, None, None, Some(DATE)),
        ] {
            assert!(!one.is_empty());
        }
    }

    #[test]
    fn if_none_match_gives_304_for_get_and_412_otherwise() {
        assert_eq!(
            evaluate(&c(None, Some(b"\"abc\""), None, None), &V, true),
            Precondition::NotModified
        );
        assert_eq!(
            evaluate(&c(None, Some(b"W/\"abc\""), None, None), &V, true),
            Precondition::NotModified
        );
        assert_eq!(
            evaluate(&c(None, Some(b"\"x\", \"abc\""), None, None), &V, true),
            Precondition::NotModified
        );
        assert_eq!(
            evaluate(&c(None, Some(b"*"), None, None), &V, false),
            Precondition::Failed
        );
        assert_eq!(
            evaluate(&c(None, Some(b"\"other\""), None, None), &V, true),
            Precondition::Proceed
        );
    }

    #[test]
    fn if_modified_since_is_ignored_when_if_none_match_is_present() {
        assert_eq!(
            evaluate(&c(None, None, Some(DATE), None), &V, true),
            Precondition::NotModified
        );
        assert_eq!(
            evaluate(&c(None, None, Some(EARLIER), None), &V, true),
            Precondition::Proceed
        );
        assert_eq!(
            evaluate(&c(None, Some(b"\"other\""), Some(DATE), None), &V, true),
            Precondition::Proceed
        );
        assert_eq!(
            evaluate(&c(None, None, Some(b"garbage"), None), &V, true),
            Precondition::Proceed
        );
        assert_eq!(
            evaluate(&c(None, None, Some(DATE), None), &V, false),
            Precondition::Proceed
        );
    }

    #[test]
    fn if_match_and_if_unmodified_since_fail_with_412() {
        assert_eq!(
            evaluate(&c(Some(b"\"abc\""), None, None, None), &V, true),
            Precondition::Proceed
        );
        assert_eq!(
            evaluate(&c(Some(b"W/\"abc\""), None, None, None), &V, true),
            Precondition::Failed
        );
        assert_eq!(
            evaluate(&c(Some(b"\"nope\""), None, None, None), &V, true),
            Precondition::Failed
        );
        assert_eq!(
            evaluate(&c(Some(b"*"), None, None, None), &V, true),
            Precondition::Proceed
        );
        assert_eq!(
            evaluate(&c(None, None, None, Some(EARLIER)), &V, true),
            Precondition::Failed
        );
        assert_eq!(
            evaluate(&c(None, None, None, Some(DATE)), &V, true),
            Precondition::Proceed
        );
    }

    #[test]
    fn byte_ranges() {
        let r = |h: &[u8]| range(Some(h), None, &V, 1000);
        assert_eq!(r(b"bytes=0-99"), RangeAnswer::Partial { start: 0, end: 99 });
        assert_eq!(r(b"bytes=900-"), RangeAnswer::Partial { start: 900, end: 999 });
        assert_eq!(r(b"bytes=-100"), RangeAnswer::Partial { start: 900, end: 999 });
        assert_eq!(r(b"bytes=-5000"), RangeAnswer::Partial { start: 0, end: 999 });
        assert_eq!(r(b"bytes=990-5000"), RangeAnswer::Partial { start: 990, end: 999 });
        assert_eq!(r(b"bytes=1000-"), RangeAnswer::Unsatisfiable);
        assert_eq!(r(b"bytes=-0"), RangeAnswer::Unsatisfiable);
        assert_eq!(r(b"bytes=5-1"), RangeAnswer::Full);
        assert_eq!(r(b"bytes=0-1,5-6"), RangeAnswer::Full);
        assert_eq!(r(b"items=0-1"), RangeAnswer::Full);
        assert_eq!(r(b"bytes=x-1"), RangeAnswer::Full);
        assert_eq!(range(None, None, &V, 1000), RangeAnswer::Full);
        assert_eq!(range(Some(b"bytes=0-"), None, &V, 0), RangeAnswer::Unsatisfiable);
    }

    #[test]
    fn if_range_needs_a_fresh_validator() {
        let rng: &[u8] = b"bytes=0-9";
        let part = RangeAnswer::Partial { start: 0, end: 9 };
        assert_eq!(range(Some(rng), Some(b"\"abc\""), &V, 100), part);
        assert_eq!(range(Some(rng), Some(b"W/\"abc\""), &V, 100), RangeAnswer::Full);
        assert_eq!(range(Some(rng), Some(b"\"old\""), &V, 100), RangeAnswer::Full);
        assert_eq!(range(Some(rng), Some(DATE), &V, 100), part);
        assert_eq!(range(Some(rng), Some(EARLIER), &V, 100), RangeAnswer::Full);
    }

    #[test]
    fn dates_round_trip() {
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(parse_date(DATE), Some(784_111_777));
    }
}

/// Whether an `Accept-Encoding` value accepts `coding` (RFC 9110 §12.5.3): named, or covered by
/// `*`, with a q-value above 0. No header at all accepts nothing but the identity.
pub fn accepts_encoding(header: Option<&[u8]>, coding: &str) -> bool {
    let Some(header) = header else { return false };
    let mut named = None;
    let mut star = None;
    for item in header.split(|b| *b == b',') {
        let mut parts = item.split(|b| *b == b';');
        let name = trim(parts.next().unwrap_or_default());
        let q = parts
            .map(trim)
            .find_map(|p| p.strip_prefix(b"q=").or_else(|| p.strip_prefix(b"Q=")))
            .is_none_or(|q| q.iter().any(|b| (b'1'..=b'9').contains(b)));
        if name.eq_ignore_ascii_case(coding.as_bytes()) {
            named = Some(q);
        } else if name == b"*" {
            star = Some(q);
        }
    }
    named.or(star).unwrap_or(false)
}

#[cfg(test)]
mod encoding_tests {
    use super::accepts_encoding;

    #[test]
    fn accept_encoding() {
        assert!(accepts_encoding(Some(b"gzip, deflate, br"), "br"));
        assert!(accepts_encoding(Some(b"GZIP"), "gzip"));
        assert!(!accepts_encoding(Some(b"gzip;q=0"), "gzip"));
        assert!(accepts_encoding(Some(b"gzip;q=0.5"), "gzip"));
        assert!(!accepts_encoding(Some(b"gzip;q=0.000"), "gzip"));
        assert!(accepts_encoding(Some(b"*"), "br"));
        assert!(!accepts_encoding(Some(b"*, br;q=0"), "br"));
        assert!(!accepts_encoding(Some(b"identity"), "gzip"));
        assert!(!accepts_encoding(None, "gzip"));
    }
}
