//! Choosing a content coding from `Accept-Encoding` (RFC 9110 §12.5.3): quality values, `*`
//! for every coding not named, `identity` (and `*;q=0` without it) to refuse an uncompressed
//! answer, `x-gzip` as `gzip`. Several `Accept-Encoding` lines are one list.

use ringd_core::Header;

use crate::traffic::config::Coding;

/// What the client accepts, in the terms the server can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Choice {
    /// The coding to compress with: the one the client rates highest among those offered,
    /// ties going to the server's order; `None` when it accepts none of them (or sent no
    /// `Accept-Encoding`, which nginx, like every server, takes as "none").
    pub(crate) coding: Option<Coding>,
    /// Whether an uncompressed answer is acceptable (`identity;q=0`, or `*;q=0` without an
    /// `identity` entry, says it is not).
    pub(crate) identity: bool,
}

/// Quality values in thousandths, per coding as `Coding::ALL` orders them.
#[derive(Default)]
struct Ratings {
    codings: [Option<u16>; 3],
    identity: Option<u16>,
    star: Option<u16>,
}

/// The choice for a request with `headers`, among the codings `offered` (in the server's order).
pub(crate) fn negotiate(headers: &[Header<'_>], offered: &[Coding]) -> Choice {
    let mut present = false;
    let mut r = Ratings::default();
    for h in headers {
        if h.name.len() != 15 || !h.name.eq_ignore_ascii_case("accept-encoding") {
            continue;
        }
        present = true;
        for element in h.value.split(|b| *b == b',') {
            let mut parts = element.split(|b| *b == b';');
            let name = trim(parts.next().unwrap_or_default());
            if name.is_empty() {
                continue;
            }
            let q = parts
                .map(trim)
                .find_map(|p| p.strip_prefix(b"q=").or_else(|| p.strip_prefix(b"Q=")))
                .map_or(Some(1000), qvalue)
                // A quality value that is not one is taken as a refusal.
                .unwrap_or(0);
            let slot = if name.eq_ignore_ascii_case(b"identity") {
                &mut r.identity
            } else if name == b"*" {
                &mut r.star
            } else if let Some(i) = coding_index(name) {
                &mut r.codings[i]
            } else {
                continue;
            };
            // The first entry for a name counts.
            slot.get_or_insert(q);
        }
    }
    if !present {
        return Choice {
            coding: None,
            identity: true,
        };
    }
    let mut best: Option<(Coding, u16)> = None;
    for &coding in offered {
        let i = Coding::ALL.iter().position(|c| *c == coding).unwrap_or(0);
        let q = r.codings[i].or(r.star).unwrap_or(0);
        if q > 0 && best.is_none_or(|(_, b)| q > b) {
            best = Some((coding, q));
        }
    }
    Choice {
        coding: best.map(|(c, _)| c),
        identity: r.identity.or(r.star).is_none_or(|q| q > 0),
    }
}

fn coding_index(name: &[u8]) -> Option<usize> {
    let name = if name.eq_ignore_ascii_case(b"x-gzip") {
        b"gzip"
    } else {
        name
    };
    Coding::ALL
        .iter()
        .position(|c| name.eq_ignore_ascii_case(c.token().as_bytes()))
}

/// A quality value (RFC 9110 §12.4.2: `0`, `0.5`, `1`, `1.000`, at most three decimals) in
/// thousandths.
fn qvalue(v: &[u8]) -> Option<u16> {
    let (int, frac) = match v.iter().position(|b| *b == b'.') {
        Some(dot) => (&v[..dot], &v[dot + 1..]),
        None => (v, &b""[..]),
    };
    if frac.len() > 3 || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut thousandths = 0u16;
    for i in 0..3 {
        thousandths = thousandths * 10 + frac.get(i).map_or(0, |d| u16::from(d - b'0'));
    }
    match int {
        b"0" => Some(thousandths),
        b"1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &s[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORDER: [Coding; 3] = [Coding::Zstd, Coding::Gzip, Coding::Brotli];

    fn choose(values: &[&'static str]) -> Choice {
        let headers: Vec<Header<'_>> = values
            .iter()
            .map(|v| Header {
                name: "Accept-Encoding",
                value: v.as_bytes(),
            })
            .collect();
        negotiate(&headers, &ORDER)
    }

    fn coding(values: &[&'static str]) -> Option<&'static str> {
        choose(values).coding.map(Coding::token)
    }

    #[test]
    fn the_highest_quality_wins_and_ties_go_to_the_server_order() {
        assert_eq!(coding(&["gzip, deflate, br, zstd"]), Some("zstd"));
        assert_eq!(coding(&["gzip, deflate, br"]), Some("gzip"));
        assert_eq!(coding(&["br;q=1, gzip;q=0.8"]), Some("br"));
        assert_eq!(coding(&["gzip;q=0.5, br;q=0.501"]), Some("br"));
        assert_eq!(coding(&["br", "gzip"]), Some("gzip"), "two lines are one list");
        assert_eq!(coding(&["X-GZIP"]), Some("gzip"));
        assert_eq!(coding(&["deflate, compress"]), None);
        assert_eq!(coding(&[""]), None);
        assert_eq!(coding(&[]), None, "no Accept-Encoding: no compression");
    }

    #[test]
    fn zero_quality_refuses_and_star_covers_what_is_not_named() {
        assert_eq!(coding(&["gzip;q=0"]), None);
        assert_eq!(coding(&["gzip;q=0.000"]), None);
        assert_eq!(coding(&["*"]), Some("zstd"));
        assert_eq!(coding(&["*, zstd;q=0"]), Some("gzip"));
        assert_eq!(coding(&["*;q=0, br"]), Some("br"));
        assert_eq!(coding(&["gzip;q=2"]), None, "not a quality value");
        assert_eq!(coding(&["gzip;q=0.5555"]), None, "not a quality value");
        assert_eq!(coding(&["gzip; q=0.5 ; level=9"]), Some("gzip"));
    }

    #[test]
    fn identity_is_acceptable_unless_refused() {
        assert!(choose(&["gzip"]).identity);
        assert!(choose(&[]).identity);
        assert!(!choose(&["gzip, identity;q=0"]).identity);
        assert!(!choose(&["*;q=0"]).identity);
        assert!(choose(&["*;q=0, identity"]).identity);
        assert!(choose(&["identity;q=0.1"]).identity);
        let c = choose(&["identity;q=0, *;q=0"]);
        assert_eq!((c.coding, c.identity), (None, false));
    }

    #[test]
    fn quality_values_parse_as_rfc_9110_writes_them() {
        assert_eq!(qvalue(b"1"), Some(1000));
        assert_eq!(qvalue(b"1.000"), Some(1000));
        assert_eq!(qvalue(b"0.5"), Some(500));
        assert_eq!(qvalue(b"0.05"), Some(50));
        assert_eq!(qvalue(b"0"), Some(0));
        for bad in [&b"1.5"[..], b"2", b".5", b"0.1234", b"x", b""] {
            assert_eq!(qvalue(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
