//! Raw HTTP/1.1 over a TcpStream: requests written by hand, responses read and checked.

use super::*;

pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, IO_TIMEOUT).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Reads until the server closes (a reset counts as closing) and returns everything it sent;
/// panics if it has not closed within the socket's read timeout ([`IO_TIMEOUT`] from
/// [`connect`]).
pub fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return all,
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return all,
            // A signal handled elsewhere in this process interrupts a read with a timeout
            // (signal(7): never restarted); the server has not answered yet.
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => panic!(
                "not closed within the read timeout ({e}); got {:?}",
                String::from_utf8_lossy(&all)
            ),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Response {
    pub version: String,
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The raw head (status line + headers + CRLF CRLF) as received.
    pub raw_head: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn headers_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// `Connection` header contains the token `tok` (case-insensitive).
    pub fn connection_has(&self, tok: &str) -> bool {
        self.headers_all("connection")
            .iter()
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(tok))
    }

    /// Set of comma-separated tokens of the `Allow` header(s), uppercased.
    pub fn allow_set(&self) -> std::collections::BTreeSet<String> {
        self.headers_all("allow")
            .iter()
            .flat_map(|v| v.split(','))
            .map(|t| t.trim().to_ascii_uppercase())
            .filter(|t| !t.is_empty())
            .collect()
    }

    /// Assertions that hold for every response ringd sends.
    pub fn assert_common(&self) {
        assert_eq!(self.version, "HTTP/1.1", "status line version: {}", self.raw_head);
        let dates = self.headers_all("date");
        assert_eq!(dates.len(), 1, "exactly one Date header expected: {}", self.raw_head);
        assert_imf_fixdate(dates[0]);
        assert_eq!(
            self.headers_all("server"),
            vec!["ringd"],
            "Server header: {}",
            self.raw_head
        );
    }
}

pub fn set_of(items: &[&str]) -> std::collections::BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` (RFC 9110 IMF-fixdate, 29 bytes).
pub fn assert_imf_fixdate(d: &str) {
    let b = d.as_bytes();
    let ok = b.len() == 29
        && ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"].contains(&&d[0..3])
        && &d[3..5] == ", "
        && b[5].is_ascii_digit()
        && b[6].is_ascii_digit()
        && b[7] == b' '
        && [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ]
        .contains(&&d[8..11])
        && b[11] == b' '
        && b[12..16].iter().all(u8::is_ascii_digit)
        && b[16] == b' '
        && b[17..19].iter().all(u8::is_ascii_digit)
        && b[19] == b':'
        && b[20..22].iter().all(u8::is_ascii_digit)
        && b[22] == b':'
        && b[23..25].iter().all(u8::is_ascii_digit)
        && &d[25..] == " GMT";
    assert!(ok, "Date is not a 29-byte IMF-fixdate: {d:?}");
}

/// A connection with a persistent read buffer, so pipelined responses can be
/// read one after another.
pub struct Conn {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub fn new(stream: TcpStream) -> Conn {
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn open(addr: SocketAddr) -> Conn {
        Conn::new(connect(addr))
    }

    pub fn send(&mut self, data: &[u8]) {
        self.stream
            .write_all(data)
            .unwrap_or_else(|e| panic!("write {} bytes: {e}", data.len()));
    }

    /// Like `send`, but returns the error instead of panicking (for writes
    /// the server may legitimately refuse by closing).
    pub fn try_send(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(data)
    }

    fn fill(&mut self) -> std::io::Result<usize> {
        let mut chunk = [0u8; 16384];
        let n = loop {
            // A signal (or work the kernel left for this thread) interrupts a read with a
            // timeout with EINTR instead of restarting it: read again, as any client must.
            match self.stream.read(&mut chunk) {
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                other => break other?,
            }
        };
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    fn fill_or_panic(&mut self, what: &str) {
        match self.fill() {
            Ok(0) => panic!(
                "connection closed while reading {what}; received so far: {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => panic!(
                "timed out ({IO_TIMEOUT:?}) reading {what}; received so far: {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
            Err(e) => panic!(
                "error reading {what}: {e}; received so far: {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
        }
    }

    /// Read exactly `n` raw bytes.
    pub fn read_exact_raw(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            self.fill_or_panic("raw bytes");
        }
        self.buf.drain(..n).collect()
    }

    /// Bytes received but not yet consumed.
    pub fn buffered(&self) -> &[u8] {
        &self.buf
    }

    /// Read one response. `head_request`: the request was HEAD (no body).
    pub fn read_response(&mut self, head_request: bool) -> Response {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            self.fill_or_panic("response head");
        };
        let head_bytes: Vec<u8> = self.buf.drain(..head_end).collect();
        let raw_head = String::from_utf8_lossy(&head_bytes).into_owned();
        let mut lines = raw_head.split("\r\n");
        let status_line = lines.next().unwrap();
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or("").to_string();
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let reason = parts.next().unwrap_or("").to_string();
        let mut headers = Vec::new();
        for l in lines {
            if l.is_empty() {
                continue;
            }
            let (k, v) = l
                .split_once(':')
                .unwrap_or_else(|| panic!("bad header line {l:?} in {raw_head:?}"));
            assert!(
                !l.starts_with(' ') && !l.starts_with('\t'),
                "response uses obs-fold: {raw_head:?}"
            );
            headers.push((k.to_string(), v.trim().to_string()));
        }
        let mut resp = Response {
            version,
            status,
            reason,
            headers,
            body: Vec::new(),
            raw_head,
        };
        let no_body = head_request || status / 100 == 1 || status == 204 || status == 304;
        if no_body {
            return resp;
        }
        let chunked = resp
            .header("transfer-encoding")
            .map(|v| v.to_ascii_lowercase().contains("chunked"))
            .unwrap_or(false);
        if chunked {
            resp.body = self.read_chunked_body();
        } else if let Some(cl) = resp.header("content-length") {
            let n: usize = cl.parse().unwrap_or_else(|_| panic!("bad Content-Length {cl:?}"));
            resp.body = self.read_exact_raw(n);
        } else {
            // Close-delimited body.
            loop {
                match self.fill() {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) => panic!("reading close-delimited body: {e}"),
                }
            }
            resp.body = std::mem::take(&mut self.buf);
        }
        resp
    }

    fn read_line(&mut self) -> String {
        loop {
            if let Some(i) = find(&self.buf, b"\r\n") {
                let l: Vec<u8> = self.buf.drain(..i + 2).collect();
                return String::from_utf8_lossy(&l[..i]).into_owned();
            }
            self.fill_or_panic("chunked body line");
        }
    }

    fn read_chunked_body(&mut self) -> Vec<u8> {
        let mut body = Vec::new();
        loop {
            let line = self.read_line();
            let size_str = line.split(';').next().unwrap().trim();
            let size = usize::from_str_radix(size_str, 16).unwrap_or_else(|_| panic!("bad chunk size line {line:?}"));
            if size == 0 {
                // trailers
                loop {
                    if self.read_line().is_empty() {
                        return body;
                    }
                }
            }
            body.extend(self.read_exact_raw(size));
            let crlf = self.read_exact_raw(2);
            assert_eq!(crlf, b"\r\n", "chunk not followed by CRLF");
        }
    }

    /// Assert the server closes the connection: read returns 0 (after any
    /// bytes already buffered, which must be none).
    pub fn expect_eof(&mut self) {
        assert!(
            self.buf.is_empty(),
            "unexpected extra bytes after response: {:?}",
            String::from_utf8_lossy(&self.buf)
        );
        match self.fill() {
            Ok(0) => {}
            Ok(_) => panic!(
                "expected the server to close the connection, got more bytes: {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("expected the server to close the connection; it stayed open for {IO_TIMEOUT:?}")
            }
            Err(e) => panic!("expected a clean close (read returns 0), got error: {e}"),
        }
    }
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Send one raw request on a fresh connection and read one response.
pub fn roundtrip(addr: SocketAddr, raw: &[u8]) -> Response {
    let head = raw.starts_with(b"HEAD ");
    let mut c = Conn::open(addr);
    c.send(raw);
    c.read_response(head)
}

/// Send a malformed request: assert the status, a small text body,
/// `Connection: close`, and that the server then closes the connection.
pub fn expect_error(addr: SocketAddr, raw: &[u8], status: u16) -> Response {
    let mut c = Conn::open(addr);
    // The server may close before reading all of what we send; that is fine.
    let _ = c.try_send(raw);
    let r = c.read_response(false);
    assert_eq!(
        r.status,
        status,
        "request {:?}\n got response head {:?} body {:?}",
        String::from_utf8_lossy(raw),
        r.raw_head,
        r.body_str()
    );
    r.assert_common();
    assert!(
        r.connection_has("close"),
        "error response must carry `Connection: close`; request {:?} response {:?}",
        String::from_utf8_lossy(raw),
        r.raw_head
    );
    assert!(
        !r.body.is_empty() && r.body.len() < 4096,
        "error response should have a small body, got {} bytes",
        r.body.len()
    );
    if let Some(ct) = r.header("content-type") {
        assert!(
            ct.starts_with("text/"),
            "error body should be text, got Content-Type {ct:?}"
        );
    }
    c.expect_eof();
    r
}
