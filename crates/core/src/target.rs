//! Request-target forms (RFC 9112 §3.2) and the path normalization that guards file lookups.

use std::borrow::Cow;

use crate::error::ParseError;
use crate::method::Method;

/// The form of a request-target (RFC 9112 §3.2). The path and query are carried separately
/// on [`crate::RequestHead`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'b> {
    /// origin-form, `"/path?query"` (RFC 9112 §3.2.1).
    Origin,
    /// absolute-form, `"http://host:port/path?q"` (RFC 9112 §3.2.2). The scheme is `http` or
    /// `https` (matched case-insensitively, kept as sent); anything else is rejected.
    Absolute {
        /// The scheme as sent, without `"://"`.
        scheme: &'b str,
        /// The authority (`host[:port]`), never empty, never with userinfo.
        authority: &'b str,
    },
    /// asterisk-form, `"*"`, only with OPTIONS (RFC 9112 §3.2.4).
    Asterisk,
    /// authority-form, `"host:port"`, only with CONNECT (RFC 9112 §3.2.3).
    Authority(&'b str),
}

/// Request-targets a server expects, such as the paths of its exact routes, kept as strings:
/// [`crate::parse_request_known`] takes a target that is one of them as that string, where any
/// other target's bytes are checked to be UTF-8 to make a `&str` of them.
#[derive(Debug, Default, Clone)]
pub struct KnownTargets {
    /// Bit `n` is set when some target is `n` bytes long (targets of more than
    /// [`KnownTargets::LONGEST`] bytes are not kept): a target of another length is known not
    /// to be one of them at once.
    lengths: u64,
    /// Each target with its [`Words`], which are all of it.
    targets: Vec<(Words, Box<str>)>,
}

impl KnownTargets {
    /// The longest target kept: up to this long, a target's [`Words`] are all of it.
    pub const LONGEST: usize = Words::WHOLE;

    /// No target.
    pub const fn new() -> KnownTargets {
        KnownTargets {
            lengths: 0,
            targets: Vec::new(),
        }
    }

    /// Adds `target` (ignored when longer than [`KnownTargets::LONGEST`], already there, or
    /// not an origin-form path that is its own normalized path with no query, as exact routes'
    /// paths are: a known target is taken as its path as it stands, see
    /// [`KnownTargets::splits_to_itself`]).
    pub fn insert(&mut self, target: &str) {
        if target.len() <= Self::LONGEST && Self::splits_to_itself(target) && self.get(target.as_bytes()).is_none() {
            self.lengths |= 1 << target.len();
            self.targets.push((Words::of(target.as_bytes()), target.into()));
        }
    }

    /// Whether the origin-form `target` is its own path, with no query and nothing to
    /// normalize: what [`split_target`] makes of it for any method but CONNECT.
    fn splits_to_itself(target: &str) -> bool {
        target.starts_with('/') && matches!(scan_origin(target), Ok((path, None, false)) if path == target)
    }

    /// The target whose bytes are `bytes`, if it is one of them.
    #[inline(always)]
    pub fn get(&self, bytes: &[u8]) -> Option<&str> {
        if bytes.len() > Self::LONGEST || self.lengths >> bytes.len() & 1 == 0 {
            return None;
        }
        self.find(bytes)
    }

    /// [`KnownTargets::get`] for a length some target has.
    fn find(&self, bytes: &[u8]) -> Option<&str> {
        let words = Words::of(bytes);
        self.targets
            .iter()
            .find(|(w, _)| *w == words)
            .map(|(_, target)| &**target)
    }
}

/// A string's length and its first and last eight bytes as integers (zero-padded when
/// shorter): two strings of up to [`Words::WHOLE`] bytes are equal iff their words are, since
/// the two words together cover every byte; longer ones with the same words may differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Words {
    len: usize,
    head: u64,
    tail: u64,
}

impl Words {
    /// The longest string whose words are all of it.
    pub const WHOLE: usize = 16;

    /// The words of `bytes`.
    #[inline]
    pub fn of(bytes: &[u8]) -> Words {
        let word = |eight: &[u8]| {
            let mut w = [0; 8];
            w.copy_from_slice(eight);
            u64::from_le_bytes(w)
        };
        let len = bytes.len();
        if len >= 8 {
            Words {
                len,
                head: word(&bytes[..8]),
                tail: word(&bytes[len - 8..]),
            }
        } else {
            let head = bytes.iter().rev().fold(0, |w, &b| w << 8 | u64::from(b));
            Words { len, head, tail: 0 }
        }
    }

    /// Whether the words are all of the string (it is at most [`Words::WHOLE`] bytes long).
    #[inline]
    pub fn are_whole(&self) -> bool {
        self.len <= Self::WHOLE
    }
}

/// A request-target split into its form, normalized path and raw query.
#[derive(Debug)]
pub(crate) struct SplitTarget<'b> {
    pub(crate) target: Target<'b>,
    pub(crate) path: Cow<'b, str>,
    pub(crate) query: Option<&'b str>,
}

impl<'b> SplitTarget<'b> {
    /// What [`split_target`] makes of a [`KnownTargets`] target with any method but CONNECT:
    /// an origin-form target that is its own path, with no query.
    #[inline(always)]
    pub(crate) fn known(raw: &'b str) -> SplitTarget<'b> {
        SplitTarget {
            target: Target::Origin,
            path: Cow::Borrowed(raw),
            query: None,
        }
    }
}

/// Whether `b` may appear in a `uri-host [ ":" port ]` as we accept it: unreserved,
/// sub-delims, `':'`, `'['`, `']'` and `'%'` (RFC 3986 §3.2.2, including IP-literals and
/// pct-encoded reg-names). Everything else (notably `'@'`, `'/'`, spaces and CTLs) is refused.
pub(crate) const fn is_host_byte(b: u8) -> bool {
    matches!(b,
        b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9'
        | b'-' | b'.' | b'_' | b'~'
        | b'!' | b'$' | b'&' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'='
        | b':' | b'[' | b']' | b'%')
}

/// [`is_host_byte`] as a table, for [`is_host`].
const HOST_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = is_host_byte(b as u8);
        b += 1;
    }
    table
};

/// Whether every byte of `v` is a [`is_host_byte`]; every request's `Host` is checked, so a
/// table look-up a byte, with no early exit.
pub(crate) fn is_host(v: &[u8]) -> bool {
    v.iter().fold(true, |ok, &b| ok & HOST_BYTES[usize::from(b)])
}

/// Classifies `raw` for `method` and splits off its path and query.
///
/// Rules (RFC 9112 §3.2): CONNECT requires authority-form and authority-form requires
/// CONNECT; `*` only with OPTIONS; origin-form starts with `/`; absolute-form is `http` or
/// `https` with a non-empty authority without userinfo. A fragment (`#`) is never part of a
/// request-target, so it is refused rather than silently cut.
///
/// Always inlined into its callers for the origin-form (nearly every request), so that its
/// result is built in place; the other forms are [`split_other_target`].
#[inline(always)]
pub(crate) fn split_target<'b>(raw: &'b str, method: Method<'_>) -> Result<SplitTarget<'b>, ParseError> {
    // origin-form, nearly every request: one pass over the bytes finds a fragment (refused),
    // the query and whether the path needs rewriting, where three searches each read them.
    if raw.starts_with('/') && method != Method::Connect {
        let (path, query, rewrite) = scan_origin(raw)?;
        let path = if rewrite {
            rewrite_path(path)?
        } else {
            Cow::Borrowed(path)
        };
        return Ok(SplitTarget {
            target: Target::Origin,
            path,
            query,
        });
    }
    split_other_target(raw, method)
}

/// [`split_target`] for a target that is not origin-form, or any target of CONNECT.
fn split_other_target<'b>(raw: &'b str, method: Method<'_>) -> Result<SplitTarget<'b>, ParseError> {
    if raw.as_bytes().contains(&b'#') {
        return Err(ParseError::InvalidTarget);
    }
    if method == Method::Connect {
        validate_connect_authority(raw)?;
        return Ok(SplitTarget {
            target: Target::Authority(raw),
            path: Cow::Borrowed("/"),
            query: None,
        });
    }
    if raw == "*" {
        if method != Method::Options {
            return Err(ParseError::InvalidTarget);
        }
        return Ok(SplitTarget {
            target: Target::Asterisk,
            path: Cow::Borrowed("/"),
            query: None,
        });
    }
    // An origin-form target was answered above (CONNECT's never gets here): what is left is
    // absolute-form.
    let scheme_len = scheme_len(raw).ok_or(ParseError::InvalidTarget)?;
    let scheme = &raw[..scheme_len];
    let rest = &raw[scheme_len + 3..];
    let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..auth_end];
    if authority.is_empty() || !is_host(authority.as_bytes()) {
        // '@' (userinfo) is not a host byte, so "http://user@host/" lands here too: RFC 9110
        // §4.2.4 deprecates userinfo in http(s) URIs.
        return Err(ParseError::InvalidTarget);
    }
    let (path, query) = split_query(&rest[auth_end..]);
    let path = if path.is_empty() {
        Cow::Borrowed("/")
    } else {
        normalize_path(path)?
    };
    Ok(SplitTarget {
        target: Target::Absolute { scheme, authority },
        path,
        query,
    })
}

/// Length of `http` / `https` when `raw` starts with it followed by `"://"` (any case).
fn scheme_len(raw: &str) -> Option<usize> {
    let b = raw.as_bytes();
    if b.len() >= 7 && b[..7].eq_ignore_ascii_case(b"http://") {
        Some(4)
    } else if b.len() >= 8 && b[..8].eq_ignore_ascii_case(b"https://") {
        Some(5)
    } else {
        None
    }
}

/// An origin-form target (starting with `/`) split at its first `?` into path and query, with
/// whether the path needs rewriting ([`needs_rewrite`]); a `#` anywhere is refused. The same
/// as `contains('#')`, [`split_query`] and `needs_rewrite`, in one pass.
#[inline(always)]
fn scan_origin(raw: &str) -> Result<(&str, Option<&str>, bool), ParseError> {
    // The path's first bytes, up to the first of the five below, only lengthen its first
    // segment: skipped a word at a time.
    let plain = plain_words(&raw.as_bytes()[1..]);
    let (mut scan, mut rewrite) = (PathScan { len: plain, dots: 0 }, false);
    for (i, &b) in raw.as_bytes().iter().enumerate().skip(1 + plain) {
        match b {
            b'#' => return Err(ParseError::InvalidTarget),
            b'?' => {
                let query = &raw[i + 1..];
                if query.as_bytes().contains(&b'#') {
                    return Err(ParseError::InvalidTarget);
                }
                return Ok((&raw[..i], Some(query), rewrite || scan.ends_in_dot_segment()));
            }
            b'%' => rewrite = true,
            b'/' => rewrite |= scan.slash(),
            b'.' => scan.dot(),
            _ => scan.other(),
        }
    }
    Ok((raw, None, rewrite || scan.ends_in_dot_segment()))
}

/// How many bytes at the start of `bytes` are none of `'#'`, `'?'`, `'%'`, `'/'` and `'.'`
/// (the bytes [`scan_origin`] acts on), looking at whole words of eight bytes only: the count
/// stops at the first of the five or at the last piece shorter than a word. Hand-written
/// because every request's path is scanned, and its first segment is usually all such bytes.
fn plain_words(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Some byte of `y` is zero iff a high bit survives: the lowest zero byte borrows into its
    // own high bit, which it does not have; no byte below it borrows, and a byte's own high
    // bit is cleared by `!y`. Bytes above the lowest zero byte may be flagged too.
    let zero_bytes = |y: u64| y.wrapping_sub(ONES) & !y & HIGH;
    let mut run = 0;
    for word in bytes.chunks_exact(8) {
        let mut eight = [0; 8];
        eight.copy_from_slice(word);
        let x = u64::from_le_bytes(eight);
        let found = zero_bytes(x ^ (ONES * u64::from(b'#')))
            | zero_bytes(x ^ (ONES * u64::from(b'?')))
            | zero_bytes(x ^ (ONES * u64::from(b'%')))
            | zero_bytes(x ^ (ONES * u64::from(b'/')))
            | zero_bytes(x ^ (ONES * u64::from(b'.')));
        // The lowest flagged byte is the first of the five: below it no byte is flagged.
        if found != 0 {
            return run + (found.trailing_zeros() / 8) as usize;
        }
        run += 8;
    }
    run
}

fn split_query(s: &str) -> (&str, Option<&str>) {
    match s.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (s, None),
    }
}

/// authority-form is `uri-host ":" port` (RFC 9112 §3.2.3): the port is mandatory.
fn validate_connect_authority(raw: &str) -> Result<(), ParseError> {
    let (host, port) = raw.rsplit_once(':').ok_or(ParseError::InvalidTarget)?;
    let ok =
        !host.is_empty() && is_host(host.as_bytes()) && !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(ParseError::InvalidTarget)
    }
}

/// Percent-decodes a raw path (the part before '?'), merges repeated slashes (like nginx
/// merge_slashes), resolves "." and ".." segments (RFC 3986 §5.2.4), and rejects a path that
/// climbs above "/", "%00", bad % escapes, and non-UTF-8 results. Decodes "%2F" to '/'
/// BEFORE resolving dot segments, so "/a/..%2f..%2fetc" can never escape. Keeps a trailing
/// slash. Input must start with '/'. Borrowed when nothing changes (no allocation on the
/// common path).
///
/// Errors are all [`ParseError::InvalidTarget`].
pub fn normalize_path(raw: &str) -> Result<Cow<'_, str>, ParseError> {
    let bytes = raw.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(ParseError::InvalidTarget);
    }
    if !needs_rewrite(bytes) {
        return Ok(Cow::Borrowed(raw));
    }
    rewrite_path(raw)
}

/// The rewriting half of [`normalize_path`], for a path known to need it.
fn rewrite_path(raw: &str) -> Result<Cow<'_, str>, ParseError> {
    let decoded = percent_decode(raw.as_bytes())?;
    let resolved = resolve_segments(&decoded)?;
    String::from_utf8(resolved)
        .map(Cow::Owned)
        .map_err(|_| ParseError::InvalidTarget)
}

/// Fast path check: a path with no '%', no empty inner segment and no dot segment is
/// already normal.
fn needs_rewrite(path: &[u8]) -> bool {
    let mut scan = PathScan::default();
    for &b in &path[1..] {
        match b {
            b'%' => return true,
            b'/' if scan.slash() => return true,
            b'/' => {}
            b'.' => scan.dot(),
            _ => scan.other(),
        }
    }
    scan.ends_in_dot_segment()
}

/// The one-pass check behind [`needs_rewrite`] (it runs for every request): the current
/// segment's length and how many of its bytes are dots tell an empty, "." or ".." segment.
/// Its callers dispatch on the byte themselves, so that each byte costs one `match`.
#[derive(Default)]
struct PathScan {
    len: usize,
    dots: usize,
}

impl PathScan {
    /// A '/': whether it ends an empty, "." or ".." segment (the path needs rewriting).
    #[inline]
    fn slash(&mut self) -> bool {
        let ends_bad = self.is_dot_or_empty();
        (self.len, self.dots) = (0, 0);
        ends_bad
    }

    #[inline]
    fn dot(&mut self) {
        (self.len, self.dots) = (self.len + 1, self.dots + 1);
    }

    #[inline]
    fn other(&mut self) {
        self.len += 1;
    }

    /// Whether the last segment is "." or ".." (it may be empty: a trailing slash).
    #[inline]
    fn ends_in_dot_segment(&self) -> bool {
        self.len > 0 && self.is_dot_or_empty()
    }

    #[inline]
    fn is_dot_or_empty(&self) -> bool {
        self.len == self.dots && self.dots <= 2
    }
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// RFC 3986 §2.1 decoding; a '%' must be followed by two hex digits. `%00` is refused
/// because NUL truncates paths in the C APIs the server eventually calls.
fn percent_decode(src: &[u8]) -> Result<Vec<u8>, ParseError> {
    let mut out = Vec::with_capacity(src.len());
    let mut i = 0;
    while i < src.len() {
        let b = src[i];
        if b == b'%' {
            let hi = src.get(i + 1).copied().and_then(hex_val);
            let lo = src.get(i + 2).copied().and_then(hex_val);
            match (hi, lo) {
                (Some(0), Some(0)) => return Err(ParseError::InvalidTarget),
                (Some(h), Some(l)) => out.push(h << 4 | l),
                _ => return Err(ParseError::InvalidTarget),
            }
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    Ok(out)
}

/// Merges empty segments and resolves dot segments (RFC 3986 §5.2.4), refusing to pop above
/// the root instead of clamping: a client that sends "/../x" is probing, not browsing.
fn resolve_segments(path: &[u8]) -> Result<Vec<u8>, ParseError> {
    // Invariant: `out` starts and ends with '/'.
    let mut out = Vec::with_capacity(path.len());
    out.push(b'/');
    let mut trailing = false;
    let mut segments = path[1..].split(|&b| b == b'/').peekable();
    while let Some(seg) = segments.next() {
        let last = segments.peek().is_none();
        match seg {
            b"" | b"." => {}
            b".." => {
                if out.len() == 1 {
                    return Err(ParseError::InvalidTarget);
                }
                out.pop();
                let cut = out.iter().rposition(|&b| b == b'/').map_or(1, |p| p + 1);
                out.truncate(cut);
            }
            _ => {
                out.extend_from_slice(seg);
                out.push(b'/');
            }
        }
        // A path ending in "/", "/." or "/.." names a directory: keep the slash.
        trailing = last && matches!(seg, b"" | b"." | b"..");
    }
    if !trailing && out.len() > 1 {
        out.pop();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    /// The one-pass check agrees with the plain definition (split on '/', look at each segment)
    /// on every path of up to 7 bytes over the bytes that matter.
    #[test]
    fn needs_rewrite_matches_its_definition() {
        fn reference(path: &[u8]) -> bool {
            let mut segments = path[1..].split(|&b| b == b'/').peekable();
            while let Some(seg) = segments.next() {
                let last = segments.peek().is_none();
                if (seg.is_empty() && !last) || seg == b"." || seg == b".." || seg.contains(&b'%') {
                    return true;
                }
            }
            false
        }
        let checked = every_path(b"/.a%", |path| {
            assert_eq!(
                needs_rewrite(path),
                reference(path),
                "{:?}",
                String::from_utf8_lossy(path)
            );
        });
        assert_eq!(checked, (0..=6).map(|l| 4usize.pow(l)).sum::<usize>());
    }

    /// Calls `check` with every '/' followed by up to 6 bytes of `alphabet`; returns how many.
    fn every_path(alphabet: &[u8], mut check: impl FnMut(&[u8])) -> usize {
        let mut checked = 0;
        for len in 0..=6u32 {
            for mut n in 0..alphabet.len().pow(len) {
                let mut path = vec![b'/'];
                for _ in 0..len {
                    path.push(alphabet[n % alphabet.len()]);
                    n /= alphabet.len();
                }
                check(&path);
                checked += 1;
            }
        }
        checked
    }

    /// The one-pass split of an origin-form target agrees with the three steps it replaces
    /// (refuse a '#', split at the first '?', check the path) on every target of up to 7 bytes
    /// over the bytes that matter.
    #[test]
    fn scan_origin_matches_the_steps_it_replaces() {
        let checked = every_path(b"/.a%?#", |raw| {
            let raw = std::str::from_utf8(raw).unwrap();
            let expected = if raw.contains('#') {
                Err(ParseError::InvalidTarget)
            } else {
                let (path, query) = split_query(raw);
                Ok((path, query, needs_rewrite(path.as_bytes())))
            };
            assert_eq!(scan_origin(raw), expected, "{raw:?}");
        });
        assert_eq!(checked, (0..=6).map(|l| 6usize.pow(l)).sum::<usize>());
    }

    use super::*;

    proptest::proptest! {
        /// The word-at-a-time start of `scan_origin` changes nothing on targets long enough
        /// for it: it agrees with the three steps it replaces.
        #[test]
        fn scan_origin_on_long_targets(rest in proptest::collection::vec(
            proptest::sample::select(&b"/.a%?#~"[..]),
            0..40,
        )) {
            let mut raw = vec![b'/'];
            raw.extend_from_slice(&rest);
            let raw = std::str::from_utf8(&raw).unwrap();
            let expected = if raw.contains('#') {
                Err(ParseError::InvalidTarget)
            } else {
                let (path, query) = split_query(raw);
                Ok((path, query, needs_rewrite(path.as_bytes())))
            };
            proptest::prop_assert_eq!(scan_origin(raw), expected);
        }

        /// `plain_words` counts what a byte loop counts, up to the last whole word (the bytes
        /// include ones a bit away from the five).
        #[test]
        fn plain_words_is_the_byte_loop(bytes in proptest::collection::vec(
            proptest::sample::select(&b"/.a%?#~\x00\xff\x2e\x2f\x2d\x22\x24"[..]),
            0..40,
        )) {
            let loop_run = bytes.iter().take_while(|&&b| !matches!(b, b'#' | b'?' | b'%' | b'/' | b'.')).count();
            let words = bytes.len() / 8 * 8;
            proptest::prop_assert_eq!(plain_words(&bytes), loop_run.min(words));
        }
    }

    fn norm(p: &str) -> Result<Cow<'_, str>, ParseError> {
        normalize_path(p)
    }

    #[test]
    fn normal_paths_are_borrowed() {
        for p in ["/", "/a", "/a/b", "/a/b/", "/a.b/c..d/.e", "/...", "/a/..b"] {
            match norm(p).unwrap() {
                Cow::Borrowed(s) => assert_eq!(s, p),
                Cow::Owned(s) => panic!("{p} allocated {s}"),
            }
        }
    }

    #[test]
    fn merges_slashes() {
        assert_eq!(norm("//").unwrap(), "/");
        assert_eq!(norm("//a///b").unwrap(), "/a/b");
        assert_eq!(norm("/a//").unwrap(), "/a/");
    }

    #[test]
    fn resolves_dot_segments() {
        assert_eq!(norm("/a/./b").unwrap(), "/a/b");
        assert_eq!(norm("/a/b/../c").unwrap(), "/a/c");
        assert_eq!(norm("/a/..").unwrap(), "/");
        assert_eq!(norm("/a/b/..").unwrap(), "/a/");
        assert_eq!(norm("/a/.").unwrap(), "/a/");
        assert_eq!(norm("/.").unwrap(), "/");
        assert_eq!(norm("/a/../b/").unwrap(), "/b/");
    }

    #[test]
    fn refuses_climbing_above_root() {
        for p in ["/..", "/../a", "/a/../..", "/a/../../b", "/./.."] {
            assert_eq!(norm(p), Err(ParseError::InvalidTarget), "{p}");
        }
    }

    #[test]
    fn decodes_before_resolving() {
        assert_eq!(norm("/a/..%2f..%2fetc"), Err(ParseError::InvalidTarget));
        assert_eq!(norm("/a/..%2F..%2Fetc"), Err(ParseError::InvalidTarget));
        assert_eq!(norm("/%2e%2e/etc"), Err(ParseError::InvalidTarget));
        assert_eq!(norm("/a/%2E%2E/b").unwrap(), "/b");
        assert_eq!(norm("/a%2fb").unwrap(), "/a/b");
        assert_eq!(norm("/a%2f%2fb").unwrap(), "/a/b");
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(norm("/a%20b").unwrap(), "/a b");
        assert_eq!(norm("/%41").unwrap(), "/A");
        assert_eq!(norm("/%25").unwrap(), "/%");
        assert_eq!(norm("/%c3%a9").unwrap(), "/é");
    }

    #[test]
    fn bad_escapes() {
        for p in ["/%", "/%2", "/%zz", "/%2g", "/a%"] {
            assert_eq!(norm(p), Err(ParseError::InvalidTarget), "{p}");
        }
    }

    #[test]
    fn nul_refused() {
        assert_eq!(norm("/a%00b"), Err(ParseError::InvalidTarget));
    }

    #[test]
    fn non_utf8_after_decoding_refused() {
        assert_eq!(norm("/%ff"), Err(ParseError::InvalidTarget));
        assert_eq!(norm("/%c3"), Err(ParseError::InvalidTarget));
    }

    #[test]
    fn must_start_with_slash() {
        assert_eq!(norm(""), Err(ParseError::InvalidTarget));
        assert_eq!(norm("a/b"), Err(ParseError::InvalidTarget));
    }

    fn split<'a>(raw: &'a str, m: Method<'_>) -> Result<SplitTarget<'a>, ParseError> {
        split_target(raw, m)
    }

    #[test]
    fn origin_form() {
        let t = split("/a/b?x=1?y", Method::Get).unwrap();
        assert_eq!(t.target, Target::Origin);
        assert_eq!(t.path, "/a/b");
        assert_eq!(t.query, Some("x=1?y"));
        let t = split("/?", Method::Get).unwrap();
        assert_eq!(t.query, Some(""));
    }

    #[test]
    fn asterisk_only_with_options() {
        let t = split("*", Method::Options).unwrap();
        assert_eq!(t.target, Target::Asterisk);
        assert_eq!(t.path, "/");
        assert_eq!(split("*", Method::Get).unwrap_err(), ParseError::InvalidTarget);
    }

    #[test]
    fn authority_form_only_with_connect() {
        let t = split("example.com:443", Method::Connect).unwrap();
        assert_eq!(t.target, Target::Authority("example.com:443"));
        assert_eq!(t.path, "/");
        assert!(split("[::1]:8443", Method::Connect).is_ok());
        assert_eq!(
            split("example.com:443", Method::Get).unwrap_err(),
            ParseError::InvalidTarget
        );
        for bad in ["/", "example.com", "example.com:", ":443", "u@h:1", "http://h:1/", "*"] {
            assert_eq!(
                split(bad, Method::Connect).unwrap_err(),
                ParseError::InvalidTarget,
                "{bad}"
            );
        }
    }

    #[test]
    fn absolute_form() {
        let t = split("http://example.com:8080/a/../b?q", Method::Get).unwrap();
        assert_eq!(
            t.target,
            Target::Absolute {
                scheme: "http",
                authority: "example.com:8080"
            }
        );
        assert_eq!(t.path, "/b");
        assert_eq!(t.query, Some("q"));
        let t = split("HTTPS://h", Method::Get).unwrap();
        assert_eq!(
            t.target,
            Target::Absolute {
                scheme: "HTTPS",
                authority: "h"
            }
        );
        assert_eq!(t.path, "/");
        assert_eq!(t.query, None);
        let t = split("http://h?x", Method::Get).unwrap();
        assert_eq!(t.path, "/");
        assert_eq!(t.query, Some("x"));
    }

    #[test]
    fn absolute_form_rejections() {
        for bad in [
            "ftp://h/",
            "http:///a",
            "http://",
            "http://user@h/",
            "http://u:p@h/",
            "http://h/../x",
            "h/a",
            "http:/h",
        ] {
            assert_eq!(split(bad, Method::Get).unwrap_err(), ParseError::InvalidTarget, "{bad}");
        }
    }

    #[test]
    fn fragment_refused() {
        assert_eq!(split("/a#b", Method::Get).unwrap_err(), ParseError::InvalidTarget);
    }

    #[test]
    fn host_bytes() {
        for b in b"az09-._~!$&'()*+,;=:[]%" {
            assert!(is_host_byte(*b), "{}", *b as char);
        }
        for b in b"@/ ?#\"<>\\^`{|}\t\x00\x7f\x80" {
            assert!(!is_host_byte(*b), "{b}");
        }
        // The table says what the rule says, for every byte, wherever it stands.
        for b in 0..=255u8 {
            assert_eq!(is_host(&[b]), is_host_byte(b), "{b}");
            assert_eq!(is_host(&[b'a', b, b'z']), is_host_byte(b), "{b}");
        }
        assert!(is_host(b""));
    }
}
