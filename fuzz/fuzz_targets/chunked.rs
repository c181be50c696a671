//! `ChunkedDecoder` on arbitrary bytes. Input: `max_body` byte, `max_trailer` byte, two
//! split bytes (each a fraction of the body length, /255), then the chunked body.
//!
//! Invariants (beyond "never panics"):
//! - decoding the whole input at once, or in three pieces cut at the two chosen points,
//!   gives the same result (same `Done` offset, same error, or `NeedMore`) and the same
//!   output bytes;
//! - `NeedMore { consumed }` always consumed the whole piece; `Done { consumed }` is within it;
//! - decoded length `<= max_body`, and `body_len()` equals the bytes appended;
//! - after `Done` every call returns `Done { consumed: 0 }`; after an error, the same error;
//! - a decoded body re-encoded with `write_chunk_header`/`write_last_chunk` decodes to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ringd_core::{write_chunk_header, write_last_chunk, ChunkProgress, ChunkedDecoder, ParseError};

/// The result of feeding all pieces: where the body ended (absolute offset), or that it
/// needs more, or the error.
#[derive(Debug, PartialEq, Eq)]
enum End {
    Done(usize),
    NeedMore,
    Failed(ParseError),
}

fn max_body_from(b: u8) -> u64 {
    match b {
        0 => 1 << 20,
        0xff => u64::MAX,
        0xfe => u64::MAX - 1,
        n => u64::from(n - 1) * 3,
    }
}

fn max_trailer_from(b: u8) -> usize {
    match b {
        0 => 8192,
        0xff => usize::MAX,
        n => usize::from(n - 1),
    }
}

/// Feeds `pieces` in order to a fresh decoder, checking the per-call contract.
fn feed(pieces: &[&[u8]], max_body: u64, max_trailer: usize) -> (End, Vec<u8>) {
    let mut d = ChunkedDecoder::new(max_body, max_trailer);
    let mut out = Vec::new();
    let mut offset = 0;
    for piece in pieces {
        let before = out.len();
        match d.decode(piece, &mut out) {
            Ok(ChunkProgress::NeedMore { consumed }) => {
                assert_eq!(consumed, piece.len(), "NeedMore must consume everything");
                assert!(!d.is_done());
                offset += consumed;
            }
            Ok(ChunkProgress::Done { consumed }) => {
                assert!(consumed <= piece.len());
                assert!(d.is_done());
                check_body(&d, &out, max_body);
                // Sticky: nothing more is consumed or produced.
                let len = out.len();
                assert_eq!(
                    d.decode(b"0\r\n\r\n", &mut out),
                    Ok(ChunkProgress::Done { consumed: 0 })
                );
                assert_eq!(out.len(), len);
                return (End::Done(offset + consumed), out);
            }
            Err(e) => {
                assert!(out.len() >= before);
                check_body(&d, &out, max_body);
                assert_eq!(d.decode(b"0\r\n\r\n", &mut out), Err(e), "errors must be sticky");
                assert_eq!(d.decode(b"", &mut out), Err(e));
                return (End::Failed(e), out);
            }
        }
        check_body(&d, &out, max_body);
    }
    (End::NeedMore, out)
}

fn check_body(d: &ChunkedDecoder, out: &[u8], max_body: u64) {
    assert_eq!(d.body_len(), out.len() as u64, "body_len disagrees with output");
    assert!(
        d.body_len() <= max_body,
        "decoded {} > max_body {max_body}",
        d.body_len()
    );
}

fuzz_target!(|data: &[u8]| {
    let [mb, mt, s1, s2, input @ ..] = data else { return };
    let max_body = max_body_from(*mb);
    let max_trailer = max_trailer_from(*mt);
    let at = |s: u8| input.len() * usize::from(s) / 255;
    let (a, b) = (at(*s1).min(at(*s2)), at(*s1).max(at(*s2)));

    let (whole, whole_out) = feed(&[input], max_body, max_trailer);
    let (split, split_out) = feed(&[&input[..a], &input[a..b], &input[b..]], max_body, max_trailer);
    assert_eq!(whole, split, "split at {a},{b} changed the result");
    assert_eq!(whole_out, split_out, "split at {a},{b} changed the output");

    if let End::Done(_) = whole {
        // Round trip through the response-side chunk writer.
        let mut enc = Vec::new();
        for piece in whole_out.chunks(7) {
            write_chunk_header(&mut enc, piece.len());
            enc.extend_from_slice(piece);
            enc.extend_from_slice(b"\r\n");
        }
        write_last_chunk(&mut enc);
        let (end, out) = feed(&[&enc], max_body, max_trailer);
        assert_eq!(end, End::Done(enc.len()));
        assert_eq!(out, whole_out);
    }
});
