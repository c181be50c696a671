//! Directory listings and the escaping they and redirects need.

use std::path::Path;

use bytes::Bytes;

use crate::app::handler::{Body, Response};

/// An HTML list of a directory's entries (names escaped), for a directory without an index.
pub(super) fn listing(dir: &Path, url_path: &str) -> Response {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Response::error(403);
    };
    let mut names: Vec<(String, bool)> = entries
        .flatten()
        .filter_map(|e| {
            let is_dir = e.file_type().ok()?.is_dir();
            Some((e.file_name().to_str()?.to_owned(), is_dir))
        })
        .collect();
    names.sort();
    let title = html_escape(url_path);
    let mut page = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Index of {title}</title></head>\n<body><h1>Index of {title}</h1>\n<ul>\n<li><a href=\"../\">../</a></li>\n"
    );
    for (name, is_dir) in names {
        let slash = if is_dir { "/" } else { "" };
        page.push_str(&format!(
            "<li><a href=\"{}{slash}\">{}{slash}</a></li>\n",
            html_escape(&percent_encode_path(&name).replace('/', "%2F")),
            html_escape(&name)
        ));
    }
    page.push_str("</ul></body></html>\n");
    Response::new(200)
        .content_type_static(crate::app::type_lines::TEXT_HTML)
        .body(Body::Full(Bytes::from(page)))
}

/// Re-encodes a decoded path for a `Location` header: every byte outside RFC 3986 `pchar` and `/`
/// becomes `%XX`, so a directory named `a b` or `x?y` redirects correctly.
pub(super) fn percent_encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escaping() {
        assert_eq!(
            html_escape("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
    }

    #[test]
    fn location_paths_are_re_encoded() {
        assert_eq!(percent_encode_path("/a b/x?y#z/%"), "/a%20b/x%3Fy%23z/%25");
        assert_eq!(percent_encode_path("/docs/é"), "/docs/%C3%A9");
        assert_eq!(percent_encode_path("/plain/path-1_2.~"), "/plain/path-1_2.~");
    }
}
