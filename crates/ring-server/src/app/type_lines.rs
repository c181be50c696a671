//! The `Content-Type` lines of ringd's own responses, checked and rendered once per worker.
//!
//! A handler's content type is an ordinary header value: each response checks it (no CR, LF or
//! other control byte) and writes it in four pieces. The types that [`Response::text`],
//! [`Response::html`], [`Response::json`] and [`Response::error`] set are known, so their
//! lines are made once and written as one piece; a value is matched by its bytes, so a handler
//! that sets the same type by hand gets the same line.
//!
//! [`Response::text`]: crate::Response::text
//! [`Response::html`]: crate::Response::html
//! [`Response::json`]: crate::Response::json
//! [`Response::error`]: crate::Response::error

use ringd_core::HeaderBlock;

/// `text/plain` in UTF-8: plain bodies and the server's error pages.
pub(crate) const TEXT_PLAIN: &str = "text/plain; charset=utf-8";
/// `text/html` in UTF-8.
pub(crate) const TEXT_HTML: &str = "text/html; charset=utf-8";
/// JSON (always UTF-8, RFC 8259 §8.1: no charset parameter).
pub(crate) const APPLICATION_JSON: &str = "application/json";

/// The rendered `Content-Type: …` line of each known type.
pub(crate) struct TypeLines {
    lines: [(&'static str, HeaderBlock); 3],
}

impl TypeLines {
    pub(crate) fn new() -> TypeLines {
        let line = |value: &'static str| {
            let block = HeaderBlock::new(&[("Content-Type", value.as_bytes())]).expect("a valid constant header");
            (value, block)
        };
        TypeLines {
            lines: [line(TEXT_PLAIN), line(TEXT_HTML), line(APPLICATION_JSON)],
        }
    }

    /// The line for a content type `value`, if it is one of the known types.
    #[inline]
    pub(crate) fn get(&self, value: &[u8]) -> Option<&HeaderBlock> {
        self.lines
            .iter()
            .find(|(known, _)| known.as_bytes() == value)
            .map(|(_, line)| line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_types_have_their_line_and_others_none() {
        let lines = TypeLines::new();
        for value in [TEXT_PLAIN, TEXT_HTML, APPLICATION_JSON] {
            let line = lines.get(value.as_bytes()).expect(value);
            assert_eq!(line.as_bytes(), format!("Content-Type: {value}\r\n").as_bytes());
            assert!(line.has("content-type"));
        }
        for other in [
            "text/plain",
            "application/json; charset=utf-8",
            "",
            "text/plain; charset=utf-8 ",
        ] {
            assert!(lines.get(other.as_bytes()).is_none(), "{other:?}");
        }
    }
}
