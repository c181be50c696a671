//! Incremental decoder for the chunked transfer coding (RFC 9112 §7.1).
//!
//! A byte-at-a-time state machine for the framing (so a chunk line split across reads needs
//! no buffering) with bulk copies for chunk data. Every decision depends only on bytes
//! already seen, so the result is the same however the input is split.

use crate::error::ParseError;

/// Longest chunk line (chunk-size plus extensions, without CRLF) we accept. Extensions are
/// ignored, so a long line is only ever a way to make us spin.
const MAX_CHUNK_LINE: usize = 4096;

/// Most hex digits in a chunk-size: 16 digits fill a `u64`, so no overflow is possible.
const MAX_SIZE_DIGITS: u8 = 16;

/// Where the decoder is in the chunked grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading chunk-size hex digits (`size_digits` so far).
    Size,
    /// BWS after the size: only `;` may follow.
    SizeWs,
    /// After `;`: BWS, then an extension name.
    ExtNameStart,
    /// Inside an extension name.
    ExtName,
    /// BWS after an extension name: `=` or `;` may follow.
    ExtNameWs,
    /// After `=`: BWS, then a token or quoted-string.
    ExtValueStart,
    /// Inside a token extension value.
    ExtToken,
    /// Inside a quoted-string extension value.
    ExtQuoted,
    /// After a backslash in a quoted-string.
    ExtQuotedEscape,
    /// Right after a closing quote: BWS, `;` or CR.
    ExtValueEnd,
    /// BWS after an extension value: only `;` may follow.
    ExtValueWs,
    /// Saw the CR ending a chunk line; need LF.
    SizeLf,
    /// Inside chunk data, this many bytes left.
    Data(u64),
    /// After chunk data; need CR.
    DataCr,
    /// After chunk data and CR; need LF.
    DataLf,
    /// At the start of a trailer line (or the final empty line).
    TrailerLineStart,
    /// Inside a trailer field name.
    TrailerName,
    /// Inside a trailer field value.
    TrailerValue,
    /// Saw the CR ending a trailer line; need LF.
    TrailerLf,
    /// Saw the CR of the final empty line; need LF.
    EndLf,
    /// The message body is complete.
    Done,
    /// An error was returned; it is returned again on every call.
    Failed(ParseError),
}

/// Decodes a chunked request body, appending the data to a caller's buffer and discarding
/// extensions and trailer fields.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    max_body: u64,
    max_trailer_bytes: usize,
    /// The size of the current chunk (while reading its line).
    size: u64,
    size_digits: u8,
    /// Bytes of the current chunk line, without CRLF.
    line_len: usize,
    /// Sum of all chunk sizes announced so far (never above `max_body`).
    announced: u64,
    /// Data bytes appended to `out` so far.
    body_len: u64,
    /// Bytes of trailer field lines so far.
    trailer_bytes: usize,
}

/// How far [`ChunkedDecoder::decode`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkProgress {
    /// The body isn't finished; all `consumed` bytes (the whole input) were used, so the
    /// caller can drop them and read more.
    NeedMore {
        /// Input bytes used (always the whole input).
        consumed: usize,
    },
    /// The body, including the trailer section and its final CRLF, ended after `consumed`
    /// input bytes; the rest belongs to the next request.
    Done {
        /// Input bytes used.
        consumed: usize,
    },
}

/// `tchar` (RFC 9110 §5.6.2).
pub(crate) const fn is_tchar(b: u8) -> bool {
    matches!(b,
        b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9'
        | b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_'
        | b'`' | b'|' | b'~')
}

/// `qdtext` (RFC 9110 §5.6.4).
const fn is_qdtext(b: u8) -> bool {
    matches!(b, b'\t' | b' ' | 0x21 | 0x23..=0x5b | 0x5d..=0x7e | 0x80..=0xff)
}

/// `field-vchar` plus SP/HTAB (RFC 9110 §5.5): no CTL but HTAB.
const fn is_field_byte(b: u8) -> bool {
    matches!(b, b'\t' | b' '..=0x7e | 0x80..=0xff)
}

const fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

impl ChunkedDecoder {
    /// A decoder refusing bodies over `max_body` bytes ([`ParseError::PayloadTooLarge`]) and
    /// trailer field lines over `max_trailer_bytes` bytes in total
    /// ([`ParseError::TrailersTooLarge`]; the final empty line isn't counted).
    pub fn new(max_body: u64, max_trailer_bytes: usize) -> Self {
        ChunkedDecoder {
            state: State::Size,
            max_body,
            max_trailer_bytes,
            size: 0,
            size_digits: 0,
            line_len: 0,
            announced: 0,
            body_len: 0,
            trailer_bytes: 0,
        }
    }

    /// Decodes as much of `input` as possible, appending body bytes to `out`. Returns how many input
    /// bytes were consumed; `Done` once the last chunk and trailer section (and its final CRLF) are consumed;
    /// bytes after that belong to the next request and are not consumed.
    ///
    /// After an error the same error is returned on every later call. After `Done`, further
    /// calls return `Done { consumed: 0 }`.
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<ChunkProgress, ParseError> {
        let mut i = 0;
        while i < input.len() {
            match self.state {
                State::Done => return Ok(ChunkProgress::Done { consumed: i }),
                State::Failed(e) => return Err(e),
                State::Data(remaining) => {
                    let avail = (input.len() - i) as u64;
                    let n = remaining.min(avail) as usize;
                    out.extend_from_slice(&input[i..i + n]);
                    i += n;
                    self.body_len += n as u64;
                    let left = remaining - n as u64;
                    self.state = if left == 0 { State::DataCr } else { State::Data(left) };
                }
                _ => {
                    let b = input[i];
                    i += 1;
                    if let Err(e) = self.step(b) {
                        self.state = State::Failed(e);
                        return Err(e);
                    }
                }
            }
        }
        match self.state {
            State::Done => Ok(ChunkProgress::Done { consumed: i }),
            State::Failed(e) => Err(e),
            _ => Ok(ChunkProgress::NeedMore { consumed: i }),
        }
    }

    /// Data bytes decoded so far.
    pub fn body_len(&self) -> u64 {
        self.body_len
    }

    /// Whether the whole body, trailers included, has been decoded.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Advances the framing state machine by one byte (never called in `Data`).
    fn step(&mut self, b: u8) -> Result<(), ParseError> {
        use State::*;
        let in_chunk_line = matches!(
            self.state,
            Size | SizeWs
                | ExtNameStart
                | ExtName
                | ExtNameWs
                | ExtValueStart
                | ExtToken
                | ExtQuoted
                | ExtQuotedEscape
                | ExtValueEnd
                | ExtValueWs
        );
        if in_chunk_line && b != b'\r' {
            self.line_len += 1;
            if self.line_len > MAX_CHUNK_LINE {
                return Err(ParseError::InvalidChunk);
            }
        }
        let ws = b == b' ' || b == b'\t';
        self.state = match (self.state, b) {
            (Size, _) if hex_digit(b).is_some() => {
                if self.size_digits == MAX_SIZE_DIGITS {
                    return Err(ParseError::InvalidChunk);
                }
                self.size_digits += 1;
                self.size = self.size << 4 | u64::from(hex_digit(b).unwrap_or(0));
                // Refuse as soon as the announced size is too big: the size only grows with
                // more digits, and waiting for the data would mean reading it.
                if self.size > self.max_body - self.announced {
                    return Err(ParseError::PayloadTooLarge);
                }
                Size
            }
            // chunk-size is 1*HEXDIG: anything else before the first digit is an error.
            (Size, _) if self.size_digits == 0 => return Err(ParseError::InvalidChunk),
            (Size, b'\r') => SizeLf,
            (Size, b';') => ExtNameStart,
            (Size, _) if ws => SizeWs,
            // BWS is only allowed before ';' (RFC 9112 §7.1.1).
            (SizeWs, _) if ws => SizeWs,
            (SizeWs, b';') => ExtNameStart,
            (ExtNameStart, _) if ws => ExtNameStart,
            (ExtNameStart, _) if is_tchar(b) => ExtName,
            (ExtName, _) if is_tchar(b) => ExtName,
            (ExtName, b'=') => ExtValueStart,
            (ExtName, b';') => ExtNameStart,
            (ExtName, b'\r') => SizeLf,
            (ExtName, _) if ws => ExtNameWs,
            (ExtNameWs, _) if ws => ExtNameWs,
            (ExtNameWs, b'=') => ExtValueStart,
            (ExtNameWs, b';') => ExtNameStart,
            (ExtValueStart, _) if ws => ExtValueStart,
            (ExtValueStart, b'"') => ExtQuoted,
            (ExtValueStart, _) if is_tchar(b) => ExtToken,
            (ExtToken, _) if is_tchar(b) => ExtToken,
            (ExtToken, b';') => ExtNameStart,
            (ExtToken, b'\r') => SizeLf,
            (ExtToken, _) if ws => ExtValueWs,
            (ExtQuoted, b'"') => ExtValueEnd,
            (ExtQuoted, b'\\') => ExtQuotedEscape,
            (ExtQuoted, _) if is_qdtext(b) => ExtQuoted,
            // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
            (ExtQuotedEscape, _) if is_field_byte(b) => ExtQuoted,
            (ExtValueEnd, b';') => ExtNameStart,
            (ExtValueEnd, b'\r') => SizeLf,
            (ExtValueEnd, _) if ws => ExtValueWs,
            (ExtValueWs, _) if ws => ExtValueWs,
            (ExtValueWs, b';') => ExtNameStart,
            (SizeLf, b'\n') => {
                let size = self.size;
                self.announced += size;
                self.size = 0;
                self.size_digits = 0;
                self.line_len = 0;
                if size == 0 {
                    TrailerLineStart
                } else {
                    Data(size)
                }
            }
            (DataCr, b'\r') => DataLf,
            (DataLf, b'\n') => Size,
            (TrailerLineStart, b'\r') => EndLf,
            (TrailerLineStart, _) if is_tchar(b) => self.trailer_byte(TrailerName)?,
            (TrailerName, _) if is_tchar(b) => self.trailer_byte(TrailerName)?,
            (TrailerName, b':') => self.trailer_byte(TrailerValue)?,
            (TrailerValue, b'\r') => self.trailer_byte(TrailerLf)?,
            (TrailerValue, _) if is_field_byte(b) => self.trailer_byte(TrailerValue)?,
            (TrailerLf, b'\n') => self.trailer_byte(TrailerLineStart)?,
            (EndLf, b'\n') => Done,
            // Everything else, notably a bare LF or a CR not followed by LF anywhere in the
            // framing (RFC 9112 §7.1 requires CRLF; lenient parsing here enables smuggling),
            // whitespace starting a trailer line (obs-fold), or bytes after chunk data.
            _ => return Err(ParseError::InvalidChunk),
        };
        Ok(())
    }

    /// Counts one trailer byte, then moves to `next`.
    fn trailer_byte(&mut self, next: State) -> Result<State, ParseError> {
        self.trailer_bytes += 1;
        if self.trailer_bytes > self.max_trailer_bytes {
            return Err(ParseError::TrailersTooLarge);
        }
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `input` in one call with generous limits.
    fn decode(input: &[u8]) -> (Result<ChunkProgress, ParseError>, Vec<u8>) {
        decode_with(input, 1 << 20, 1024)
    }

    fn decode_with(input: &[u8], max_body: u64, max_trailer: usize) -> (Result<ChunkProgress, ParseError>, Vec<u8>) {
        let mut d = ChunkedDecoder::new(max_body, max_trailer);
        let mut out = Vec::new();
        let r = d.decode(input, &mut out);
        (r, out)
    }

    fn ok(input: &[u8], body: &[u8]) {
        let (r, out) = decode(input);
        assert_eq!(
            r,
            Ok(ChunkProgress::Done { consumed: input.len() }),
            "{:?}",
            String::from_utf8_lossy(input)
        );
        assert_eq!(out, body);
    }

    fn bad(input: &[u8]) {
        let (r, _) = decode(input);
        assert_eq!(r, Err(ParseError::InvalidChunk), "{:?}", String::from_utf8_lossy(input));
    }

    #[test]
    fn simple() {
        ok(b"4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n", b"Wikipedia");
        ok(b"0\r\n\r\n", b"");
        ok(b"A\r\n0123456789\r\n0\r\n\r\n", b"0123456789");
        ok(b"a\r\n0123456789\r\n000\r\n\r\n", b"0123456789");
    }

    #[test]
    fn stops_at_end_of_body() {
        let input = b"3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
        let mut d = ChunkedDecoder::new(100, 100);
        let mut out = Vec::new();
        assert_eq!(d.decode(input, &mut out), Ok(ChunkProgress::Done { consumed: 13 }));
        assert_eq!(out, b"abc");
        assert!(d.is_done());
        assert_eq!(d.body_len(), 3);
        assert_eq!(d.decode(b"more", &mut out), Ok(ChunkProgress::Done { consumed: 0 }));
    }

    #[test]
    fn need_more_consumes_everything() {
        let input = b"5\r\nhello\r\n0\r\n\r\n";
        for split in 0..input.len() {
            let mut d = ChunkedDecoder::new(100, 100);
            let mut out = Vec::new();
            assert_eq!(
                d.decode(&input[..split], &mut out),
                Ok(ChunkProgress::NeedMore { consumed: split })
            );
            assert!(!d.is_done());
            assert_eq!(
                d.decode(&input[split..], &mut out),
                Ok(ChunkProgress::Done {
                    consumed: input.len() - split
                })
            );
            assert_eq!(out, b"hello");
        }
    }

    #[test]
    fn byte_by_byte() {
        let input = b"2;a=b\r\nhi\r\n3 ; x = \"y\\\"z\"\r\nyou\r\n0\r\nT: v\r\n\r\n";
        let mut d = ChunkedDecoder::new(100, 100);
        let mut out = Vec::new();
        for (i, b) in input.iter().enumerate() {
            let r = d.decode(std::slice::from_ref(b), &mut out).unwrap();
            if i + 1 == input.len() {
                assert_eq!(r, ChunkProgress::Done { consumed: 1 });
            } else {
                assert_eq!(r, ChunkProgress::NeedMore { consumed: 1 });
            }
        }
        assert_eq!(out, b"hiyou");
    }

    #[test]
    fn chunk_size_syntax() {
        bad(b"\r\n\r\n");
        bad(b"x\r\n");
        bad(b"-1\r\n");
        bad(b"+1\r\n");
        bad(b"0x1\r\n");
        bad(b" 1\r\nx\r\n0\r\n\r\n");
        bad(b"1 \r\nx\r\n0\r\n\r\n");
        bad(b"1g\r\n");
        bad(b";ext\r\n");
    }

    #[test]
    fn chunk_size_digits_limit() {
        // 16 digits are fine syntactically (then over the body limit).
        let (r, _) = decode(b"0000000000000001\r\nx\r\n0\r\n\r\n");
        assert_eq!(r, Ok(ChunkProgress::Done { consumed: 26 }));
        let (r, _) = decode_with(b"ffffffffffffffff\r\n", u64::MAX, 0);
        assert_eq!(r, Ok(ChunkProgress::NeedMore { consumed: 18 }));
        // 17 digits are not, even as leading zeros.
        bad(b"00000000000000001\r\nx\r\n0\r\n\r\n");
        let (r, _) = decode_with(b"10000000000000000\r\n", u64::MAX, 0);
        assert_eq!(r, Err(ParseError::InvalidChunk));
    }

    #[test]
    fn extensions() {
        ok(b"1;foo\r\na\r\n0\r\n\r\n", b"a");
        ok(b"1;foo=bar\r\na\r\n0\r\n\r\n", b"a");
        ok(b"1 ;foo = bar ;baz\r\na\r\n0;last\r\n\r\n", b"a");
        ok(b"1;foo=\"a b;c\\\"d\"\r\na\r\n0\r\n\r\n", b"a");
        ok(b"1;a;b;c=d\r\na\r\n0\r\n\r\n", b"a");
        ok(b"1\t;\tx\r\na\r\n0\r\n\r\n", b"a");
    }

    #[test]
    fn bad_extensions() {
        bad(b"1;\r\na\r\n0\r\n\r\n");
        bad(b"1;=x\r\na\r\n0\r\n\r\n");
        bad(b"1;a=\r\na\r\n0\r\n\r\n");
        bad(b"1;a=\"x\r\na\r\n0\r\n\r\n");
        bad(b"1;a=b c\r\na\r\n0\r\n\r\n");
        bad(b"1;a b\r\na\r\n0\r\n\r\n");
        bad(b"1;a=\"x\"y\r\na\r\n0\r\n\r\n");
        bad(b"1;a=(x)\r\na\r\n0\r\n\r\n");
        bad(b"1;a=\"\x01\"\r\na\r\n0\r\n\r\n");
        bad(b"1;a=\"\\\x00\"\r\na\r\n0\r\n\r\n");
        bad(b"1;a \r\na\r\n0\r\n\r\n");
        bad(b"1;a=b \r\na\r\n0\r\n\r\n");
    }

    #[test]
    fn chunk_line_length_limit() {
        let mut line = b"1;a=".to_vec();
        line.resize(MAX_CHUNK_LINE, b'b');
        let mut input = line.clone();
        input.extend_from_slice(b"\r\nx\r\n0\r\n\r\n");
        ok(&input, b"x");
        let mut input = line;
        input.push(b'b');
        let (r, _) = decode(&input);
        assert_eq!(r, Err(ParseError::InvalidChunk));
    }

    #[test]
    fn crlf_required() {
        bad(b"1\na\r\n0\r\n\r\n");
        bad(b"1\rxa\r\n0\r\n\r\n");
        bad(b"1\r\na\n0\r\n\r\n");
        bad(b"1\r\na\r0\r\n\r\n");
        bad(b"1\r\nab\r\n0\r\n\r\n");
        bad(b"1\r\na0\r\n\r\n");
        bad(b"1\r\na\r\n0\n\r\n");
        bad(b"1\r\na\r\n0\r\n\n");
        bad(b"1\r\na\r\n0\r\n\rx");
        bad(b"1\r\na\r\n0\r\nT: v\n\r\n");
        bad(b"1;a=b\n");
    }

    #[test]
    fn body_limit_on_announcement() {
        // Refused at the size digits, before any data arrives.
        let (r, out) = decode_with(b"b\r\n", 10, 100);
        assert_eq!(r, Err(ParseError::PayloadTooLarge));
        assert!(out.is_empty());
        let (r, _) = decode_with(b"a\r\n0123456789\r\n0\r\n\r\n", 10, 100);
        assert_eq!(r, Ok(ChunkProgress::Done { consumed: 20 }));
        // Cumulative over chunks.
        let (r, out) = decode_with(b"6\r\n012345\r\n5\r\n", 10, 100);
        assert_eq!(r, Err(ParseError::PayloadTooLarge));
        assert_eq!(out, b"012345");
        // Huge sizes can't overflow the sum.
        let (r, _) = decode_with(b"1\r\nx\r\nffffffffffffffff\r\n", u64::MAX, 100);
        assert_eq!(r, Err(ParseError::PayloadTooLarge));
    }

    #[test]
    fn trailers() {
        ok(b"1\r\na\r\n0\r\nExpires: never\r\nX-Sum:abc\r\n\r\n", b"a");
        ok(b"0\r\nX:\r\n\r\n", b"");
        ok(b"0\r\nX: a\tb \xff\r\n\r\n", b"");
        bad(b"0\r\n X: v\r\n\r\n");
        bad(b"0\r\nX: v\r\n\tw\r\n\r\n");
        bad(b"0\r\nX : v\r\n\r\n");
        bad(b"0\r\n: v\r\n\r\n");
        bad(b"0\r\nX\r\n\r\n");
        bad(b"0\r\nX: a\x00b\r\n\r\n");
        bad(b"0\r\nX: a\x7fb\r\n\r\n");
        bad(b"0\r\nX: a\rb\r\n\r\n");
    }

    #[test]
    fn trailer_limit() {
        let input = b"0\r\nX: 123\r\n\r\n";
        // "X: 123\r\n" is 8 bytes; the final empty line isn't counted.
        let (r, _) = decode_with(input, 10, 8);
        assert_eq!(r, Ok(ChunkProgress::Done { consumed: input.len() }));
        let (r, _) = decode_with(input, 10, 7);
        assert_eq!(r, Err(ParseError::TrailersTooLarge));
        let (r, _) = decode_with(b"0\r\n\r\n", 10, 0);
        assert_eq!(r, Ok(ChunkProgress::Done { consumed: 5 }));
    }

    #[test]
    fn errors_are_sticky() {
        let mut d = ChunkedDecoder::new(10, 10);
        let mut out = Vec::new();
        assert_eq!(d.decode(b"z", &mut out), Err(ParseError::InvalidChunk));
        assert_eq!(d.decode(b"0\r\n\r\n", &mut out), Err(ParseError::InvalidChunk));
        assert_eq!(d.decode(b"", &mut out), Err(ParseError::InvalidChunk));
    }

    #[test]
    fn empty_input() {
        let mut d = ChunkedDecoder::new(10, 10);
        let mut out = Vec::new();
        assert_eq!(d.decode(b"", &mut out), Ok(ChunkProgress::NeedMore { consumed: 0 }));
    }

    #[test]
    fn appends_to_existing_output() {
        let mut d = ChunkedDecoder::new(10, 10);
        let mut out = b"pre".to_vec();
        d.decode(b"2\r\nab\r\n0\r\n\r\n", &mut out).unwrap();
        assert_eq!(out, b"preab");
        assert_eq!(d.body_len(), 2);
    }
}
