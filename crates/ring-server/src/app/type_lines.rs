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

// Statics, not constants: each value is then one piece of memory, so a response that took its
// type from here is recognised by the value's address before its bytes are compared.

/// `text/plain` in UTF-8: plain bodies and the server's error pages.
pub(crate) static TEXT_PLAIN: &str = "text/plain; charset=utf-8";
/// `text/html` in UTF-8.
pub(crate) static TEXT_HTML: &str = "text/html; charset=utf-8";
/// JSON (always UTF-8, RFC 8259 §8.1: no charset parameter).
pub(crate) static APPLICATION_JSON: &str = "application/json";

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
        self.find(value).map(|(_, line)| line)
    }

    /// The line for a content type `value` and its number (below `ringd_core::OK_HEADS`, for
    /// `CommonLines::write_ok_head`), if it is one of the known types. A value that is one of
    /// the statics above (what ringd's own responses carry) is found by its address.
    #[inline]
    pub(crate) fn find(&self, value: &[u8]) -> Option<(usize, &HeaderBlock)> {
        let lines = self.lines.iter().enumerate();
        let (i, (_, line)) = match lines
            .clone()
            .find(|(_, (known, _))| std::ptr::eq(known.as_bytes(), value))
        {
            Some(found) => found,
            None => lines.clone().find(|(_, (known, _))| known.as_bytes() == value)?,
        };
        Some((i, line))
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
            let copy = value.as_bytes().to_vec();
            let (slot, found) = lines.find(&copy).expect(value);
            assert!(std::ptr::eq(found, line) && slot < ringd_core::OK_HEADS);
            assert_eq!(lines.find(value.as_bytes()).map(|(s, _)| s), Some(slot));
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
