//! The answer of a listener that sends every request to `https://` (`tls.redirect`).

use bytes::Bytes;
use ringd_core::{Method, RequestHead, Target};

use crate::app::handler::{Body, Response};

/// The answer of a redirecting listener: the same target on `https://`, permanently (301 for
/// GET and HEAD, which every client follows; 308 otherwise, which keeps the method and body).
pub(super) fn to_https(head: &RequestHead<'_, '_>, port: u16) -> Response {
    let host = match head.host.and_then(|h| std::str::from_utf8(h).ok()) {
        Some(host) => host,
        None => return Response::error(400),
    };
    // The host without its port: `[v6]:port`, `name:port`.
    let host = match host.strip_prefix('[') {
        Some(rest) => match rest.find(']') {
            Some(end) => &host[..end + 2],
            None => return Response::error(400),
        },
        None => host.split(':').next().unwrap_or(host),
    };
    let valid = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'[' | b']' | b':'));
    if !valid {
        return Response::error(400);
    }
    let path = match head.target {
        Target::Origin => head.raw_target,
        Target::Absolute { authority, .. } => {
            let after = head
                .raw_target
                .find(authority)
                .map_or("", |i| &head.raw_target[i + authority.len()..]);
            if after.starts_with('/') {
                after
            } else {
                "/"
            }
        }
        Target::Asterisk | Target::Authority(_) => "/",
    };
    let location = if port == 443 {
        format!("https://{host}{path}")
    } else {
        format!("https://{host}:{port}{path}")
    };
    let status = if matches!(head.method, Method::Get | Method::Head) {
        301
    } else {
        308
    };
    Response::new(status)
        .content_type_static(crate::app::type_lines::TEXT_PLAIN)
        .body(Body::Full(Bytes::from(format!("moved to {location}\n"))))
        .header("Location", location)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ringd_core::{header_slots, parse_request, Limits, Parsed};

    fn redirect(raw: &[u8], port: u16) -> (u16, Option<String>) {
        let mut slots = header_slots();
        let head = match parse_request(raw, &Limits::default(), &mut slots) {
            Ok(Parsed::Complete(head)) => head,
            other => panic!("not a request: {other:?}"),
        };
        let r = to_https(&head, port);
        let location = r
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("location"))
            .map(|(_, v)| String::from_utf8(v.to_vec()).unwrap());
        (r.status, location)
    }

    #[test]
    fn redirects_keep_host_path_and_query() {
        // (Hosts the parser refuses never get here: 400 InvalidHost.)
        let cases: [(&[u8], u16, u16, Option<&str>); 6] = [
            (
                b"GET /a?b=1 HTTP/1.1\r\nHost: example.org\r\n\r\n",
                443,
                301,
                Some("https://example.org/a?b=1"),
            ),
            (
                b"HEAD / HTTP/1.1\r\nHost: example.org:80\r\n\r\n",
                8443,
                301,
                Some("https://example.org:8443/"),
            ),
            (
                b"POST /f HTTP/1.1\r\nHost: [::1]:80\r\nContent-Length: 0\r\n\r\n",
                443,
                308,
                Some("https://[::1]/f"),
            ),
            (
                b"GET http://h.example/p?q HTTP/1.1\r\nHost: h.example\r\n\r\n",
                443,
                301,
                Some("https://h.example/p?q"),
            ),
            (
                b"GET http://h.example HTTP/1.1\r\nHost: h.example\r\n\r\n",
                443,
                301,
                Some("https://h.example/"),
            ),
            (b"GET / HTTP/1.0\r\n\r\n", 443, 400, None),
        ];
        for (raw, port, status, location) in cases {
            let (s, l) = redirect(raw, port);
            assert_eq!(
                (s, l.as_deref()),
                (status, location),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
    }
}
