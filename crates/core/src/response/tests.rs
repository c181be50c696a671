//! Tests of `response.rs`, with byte strings.

use super::*;

const DATE: &[u8] = b"Sun, 06 Nov 1994 08:49:37 GMT";

fn head(status: u16, body: BodyLength) -> ResponseHead<'static> {
    ResponseHead {
        status,
        headers: &[],
        block: None,
        body,
        request_version: Version::Http11,
        keep_alive: true,
        head_request: false,
    }
}

/// Writes with `write_head`, checking that `write_head_common` writes the same bytes.
fn write(h: &ResponseHead<'_>) -> (String, ResponseFraming) {
    let mut out = Vec::new();
    let f = write_head(&mut out, h, DATE, b"ringd").unwrap();
    let mut common = Vec::new();
    let g = write_head_common(&mut common, h, &CommonLines::new(DATE, b"ringd")).unwrap();
    assert_eq!((&out, f), (&common, g), "write_head_common differs from write_head");
    (String::from_utf8(out).unwrap(), f)
}

#[test]
fn common_lines_are_what_write_head_writes() {
    let mut lines = CommonLines::new(DATE, b"ringd");
    assert_eq!(
        lines.as_bytes(),
        b"Date: Sun, 06 Nov 1994 08:49:37 GMT\r\nServer: ringd\r\n"
    );
    lines.set(DATE, b"");
    assert_eq!(lines.as_bytes(), b"Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n");
    let mut a = Vec::new();
    let mut b = Vec::new();
    let h = head(200, BodyLength::Known(u64::MAX));
    write_head(&mut a, &h, DATE, b"").unwrap();
    write_head_common(&mut b, &h, &lines).unwrap();
    assert_eq!(a, b);
    assert!(String::from_utf8(a)
        .unwrap()
        .contains("Content-Length: 18446744073709551615\r\n\r\n"));
    // A 200's head starts with the status line kept in front of the lines.
    assert_eq!(
        lines.with_ok_status(),
        b"HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
    );
    assert_eq!(CommonLines::default().as_bytes(), b"");
    lines.set(DATE, b"again");
    assert_eq!(
        lines.as_bytes(),
        b"Date: Sun, 06 Nov 1994 08:49:37 GMT\r\nServer: again\r\n"
    );
    assert!(lines.with_ok_status().ends_with(lines.as_bytes()));
}

#[test]
fn basic_200() {
    let h = ResponseHead {
        headers: &[("Content-Type", b"text/plain")],
        ..head(200, BodyLength::Known(5))
    };
    let (s, f) = write(&h);
    assert_eq!(
        s,
        "HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nServer: ringd\r\n\
         Content-Type: text/plain\r\nContent-Length: 5\r\n\r\n"
    );
    assert_eq!(f, ResponseFraming::Length(5));
}

#[test]
fn server_omitted_when_empty() {
    let mut out = Vec::new();
    write_head(&mut out, &head(200, BodyLength::Known(0)), DATE, b"").unwrap();
    let s = String::from_utf8(out).unwrap();
    assert!(!s.contains("Server"), "{s}");
    assert!(s.contains("Content-Length: 0\r\n"));
}

#[test]
fn static_lines_match_table() {
    for code in [
        200, 201, 204, 206, 301, 302, 304, 400, 403, 404, 405, 408, 411, 413, 414, 416, 417, 431, 500, 501, 503, 505,
    ] {
        let line = static_status_line(code).unwrap();
        assert_eq!(line, format!("HTTP/1.1 {code} {}\r\n", reason_phrase(code)).as_bytes());
    }
}

#[test]
fn uncommon_status_formatted() {
    let (s, _) = write(&head(418, BodyLength::Known(0)));
    assert!(s.starts_with("HTTP/1.1 418 \r\n"), "{s}");
    let (s, _) = write(&head(429, BodyLength::Known(0)));
    assert!(s.starts_with("HTTP/1.1 429 Too Many Requests\r\n"), "{s}");
}

#[test]
fn reason_phrases() {
    assert_eq!(reason_phrase(200), "OK");
    assert_eq!(reason_phrase(413), "Content Too Large");
    assert_eq!(reason_phrase(422), "Unprocessable Content");
    assert_eq!(reason_phrase(299), "");
    assert_eq!(reason_phrase(0), "");
}

#[test]
fn no_body_statuses() {
    for code in [100, 101, 204, 304] {
        let (s, f) = write(&head(code, BodyLength::Known(10)));
        assert!(!s.contains("Content-Length"), "{code}: {s}");
        assert!(!s.contains("Transfer-Encoding"), "{code}: {s}");
        assert_eq!(f, ResponseFraming::NoBody);
        let (s, f) = write(&head(code, BodyLength::Streamed));
        assert!(!s.contains("Transfer-Encoding"), "{code}: {s}");
        assert_eq!(f, ResponseFraming::NoBody);
    }
}

#[test]
fn head_request_keeps_length() {
    let h = ResponseHead {
        head_request: true,
        ..head(200, BodyLength::Known(1234))
    };
    let (s, f) = write(&h);
    assert!(s.contains("Content-Length: 1234\r\n"), "{s}");
    assert_eq!(f, ResponseFraming::NoBody);
    let h = ResponseHead {
        head_request: true,
        ..head(200, BodyLength::Streamed)
    };
    let (s, f) = write(&h);
    assert!(s.contains("Transfer-Encoding: chunked\r\n"), "{s}");
    assert_eq!(f, ResponseFraming::NoBody);
}

#[test]
fn streamed_http11_is_chunked() {
    let (s, f) = write(&head(200, BodyLength::Streamed));
    assert!(s.contains("Transfer-Encoding: chunked\r\n"));
    assert!(!s.contains("Connection"));
    assert_eq!(f, ResponseFraming::Chunked);
}

#[test]
fn streamed_http10_closes() {
    let h = ResponseHead {
        request_version: Version::Http10,
        ..head(200, BodyLength::Streamed)
    };
    let (s, f) = write(&h);
    assert!(!s.contains("Content-Length") && !s.contains("Transfer-Encoding"), "{s}");
    assert!(s.ends_with("Connection: close\r\n\r\n"), "{s}");
    assert_eq!(f, ResponseFraming::CloseDelimited);
    // HEAD has no body to delimit, so the connection can stay.
    let h = ResponseHead {
        head_request: true,
        ..h
    };
    let (s, f) = write(&h);
    assert!(s.ends_with("Connection: keep-alive\r\n\r\n"), "{s}");
    assert_eq!(f, ResponseFraming::NoBody);
}

#[test]
fn connection_header() {
    let (s, _) = write(&ResponseHead {
        keep_alive: false,
        ..head(200, BodyLength::Known(0))
    });
    assert!(s.ends_with("Connection: close\r\n\r\n"), "{s}");
    let h10 = ResponseHead {
        request_version: Version::Http10,
        ..head(200, BodyLength::Known(0))
    };
    let (s, _) = write(&h10);
    assert!(s.ends_with("Connection: keep-alive\r\n\r\n"), "{s}");
    assert!(s.starts_with("HTTP/1.1 200 OK\r\n"));
    let (s, _) = write(&ResponseHead {
        keep_alive: false,
        ..h10
    });
    assert!(s.ends_with("Connection: close\r\n\r\n"), "{s}");
    let (s, _) = write(&head(200, BodyLength::Known(0)));
    assert!(!s.contains("Connection"), "{s}");
}

#[test]
fn invalid_handler_headers_write_nothing() {
    let bad: [&[(&str, &[u8])]; 12] = [
        &[("Content-Length", b"5")],
        &[("transfer-encoding", b"chunked")],
        &[("Connection", b"close")],
        &[("DATE", b"x")],
        &[("Server", b"x")],
        &[("", b"x")],
        &[("Bad Name", b"x")],
        &[("X:", b"x")],
        &[("X", b"a\r\nInjected: 1")],
        &[("X", b"a\nb")],
        &[("X", b"a\x00b")],
        &[("X", b"a\x7fb")],
    ];
    for headers in bad {
        let mut out = Vec::new();
        let h = ResponseHead {
            headers,
            ..head(200, BodyLength::Known(0))
        };
        assert_eq!(
            write_head(&mut out, &h, DATE, b"s"),
            Err(InvalidHeader { index: 0 }),
            "{headers:?}"
        );
        assert!(out.is_empty());
    }
    let headers: &[(&str, &[u8])] = &[("A", b"ok"), ("B", b"tab\tand obs \xff"), ("C", b"\x01")];
    let mut out = Vec::new();
    let h = ResponseHead {
        headers,
        ..head(200, BodyLength::Known(0))
    };
    assert_eq!(write_head(&mut out, &h, DATE, b"s"), Err(InvalidHeader { index: 2 }));
    assert!(out.is_empty());
    assert_eq!(InvalidHeader { index: 2 }.to_string(), "invalid response header 2");
}

#[test]
fn large_content_length() {
    let (s, f) = write(&head(200, BodyLength::Known(u64::MAX)));
    assert!(s.contains("Content-Length: 18446744073709551615\r\n"));
    assert_eq!(f, ResponseFraming::Length(u64::MAX));
}

#[test]
fn chunk_headers() {
    let mut out = Vec::new();
    write_chunk_header(&mut out, 0x1a2b);
    write_chunk_header(&mut out, 1);
    write_chunk_header(&mut out, 0);
    write_chunk_header(&mut out, usize::MAX);
    write_last_chunk(&mut out);
    let expect = format!("1a2b\r\n1\r\n0\r\n{:x}\r\n0\r\n\r\n", usize::MAX);
    assert_eq!(out, expect.as_bytes());
}

#[test]
fn continue_100() {
    assert_eq!(CONTINUE_100, b"HTTP/1.1 100 Continue\r\n\r\n");
}

#[test]
fn decimal_digits() {
    let mut b = [0u8; 20];
    assert_eq!(decimal(0, &mut b), b"0");
    assert_eq!(decimal(10, &mut b), b"10");
    assert_eq!(decimal(987654321, &mut b), b"987654321");
}
/// A block is written as the same headers would be, after them; it refuses what
/// `write_head` refuses, and knows its names whatever their case.
#[test]
fn header_block_is_written_as_its_headers_would_be() {
    let headers: &[(&str, &[u8])] = &[("ETag", b"\"a-1\""), ("Content-Type", b"text/css")];
    let block = HeaderBlock::new(headers).unwrap();
    let plain = write(&ResponseHead {
        headers,
        ..head(200, BodyLength::Known(3))
    });
    let blocked = write(&ResponseHead {
        block: Some(&block),
        ..head(200, BodyLength::Known(3))
    });
    assert_eq!(plain, blocked);
    let both = write(&ResponseHead {
        headers: &[("X-A", b"1")],
        block: Some(&block),
        ..head(200, BodyLength::Known(3))
    });
    assert!(
        both.0
            .contains("X-A: 1\r\nETag: \"a-1\"\r\nContent-Type: text/css\r\nContent-Length: 3\r\n"),
        "{}",
        both.0
    );
    assert!(block.has("etag") && block.has("CONTENT-TYPE") && !block.has("Vary"));
    assert_eq!(block.iter().collect::<Vec<_>>(), headers);
    let empty = HeaderBlock::new(&[("X-Empty", b"")]).unwrap();
    assert_eq!(empty.iter().collect::<Vec<_>>(), [("X-Empty", &b""[..])]);
    assert_eq!(
        HeaderBlock::new(&[("A", b"1"), ("Content-Length", b"2")])
            .unwrap_err()
            .index,
        1
    );
    assert_eq!(HeaderBlock::new(&[("X-Split", b"a\r\nb")]).unwrap_err().index, 0);
    assert_eq!(HeaderBlock::new(&[("bad name", b"1")]).unwrap_err().index, 0);
}

/// A kept whole `200` head is what `write_head_common` writes for the same head, for each slot,
/// connection outcome (kept open on HTTP/1.1, closed on either version) and length, after the
/// lines change, and for a slot out of range.
#[test]
fn ok_heads_are_what_write_head_common_writes() {
    let type_line = HeaderBlock::new(&[("Content-Type", b"text/plain; charset=utf-8")]).unwrap();
    let other_line = HeaderBlock::new(&[("Content-Type", b"application/json")]).unwrap();
    let mut lines = CommonLines::new(DATE, b"ringd");
    for round in 0..2 {
        if round == 1 {
            lines.set(b"Mon, 07 Nov 1994 08:49:37 GMT", b"");
        }
        for (slot, line) in [
            (0, &type_line),
            (1, &other_line),
            (0, &type_line),
            (OK_HEADS, &type_line),
        ] {
            for (keep_alive, version) in [
                (true, Version::Http11),
                (false, Version::Http11),
                (true, Version::Http11),
                (false, Version::Http10),
            ] {
                for len in [13, 13, 0, 20_000, u64::MAX, 13] {
                    let h = ResponseHead {
                        block: Some(line),
                        keep_alive,
                        request_version: version,
                        ..head(200, BodyLength::Known(len))
                    };
                    let mut expected = Vec::new();
                    write_head_common(&mut expected, &h, &lines).unwrap();
                    let mut kept = Vec::new();
                    if keep_alive {
                        lines.write_ok_head(&mut kept, slot, line.as_bytes(), len);
                    } else {
                        lines.write_ok_close_head(&mut kept, slot, line.as_bytes(), len);
                    }
                    assert_eq!(
                        String::from_utf8(kept).unwrap(),
                        String::from_utf8(expected).unwrap(),
                        "slot {slot}, length {len}, keep-alive {keep_alive}, {version:?}"
                    );
                }
            }
        }
    }
}

/// A block made with a length writes, with the common lines, what `write_head_common` writes for
/// the same `200` head, for each connection outcome; for another length, or a block made without
/// one, it writes nothing. Its lines are those of the same block made without a length.
#[test]
fn block_ok_heads_are_what_write_head_common_writes() {
    let headers: &[(&str, &[u8])] = &[("Content-Type", b"text/css"), ("ETag", b"\"a-1\"")];
    let lines = CommonLines::new(DATE, b"ringd");
    for len in [0, 13, 4096, u64::MAX] {
        let block = HeaderBlock::with_length(headers, len).unwrap();
        let plain = HeaderBlock::new(headers).unwrap();
        assert_eq!(block.as_bytes(), plain.as_bytes());
        assert_eq!(block.iter().collect::<Vec<_>>(), headers);
        for (keep_alive, version) in [
            (true, Version::Http11),
            (false, Version::Http11),
            (true, Version::Http10),
            (false, Version::Http10),
        ] {
            for head_request in [false, true] {
                let h = ResponseHead {
                    block: Some(&plain),
                    keep_alive,
                    request_version: version,
                    head_request,
                    ..head(200, BodyLength::Known(len))
                };
                let mut expected = Vec::new();
                write_head_common(&mut expected, &h, &lines).unwrap();
                let mut written = Vec::new();
                assert!(lines.write_block_ok_head(&mut written, &block, len, keep_alive, version));
                assert_eq!(
                    String::from_utf8(written).unwrap(),
                    String::from_utf8(expected).unwrap(),
                    "length {len}, keep-alive {keep_alive}, {version:?}"
                );
            }
            let mut written = Vec::new();
            assert!(!lines.write_block_ok_head(&mut written, &block, len ^ 1, keep_alive, version));
            assert!(!lines.write_block_ok_head(&mut written, &plain, len, keep_alive, version));
            assert!(written.is_empty());
        }
    }
}
