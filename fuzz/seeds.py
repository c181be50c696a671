#!/usr/bin/env python3
"""Writes the hand-made seed inputs into corpus/<target>/ (run once, then `cargo fuzz cmin`).

parse_request inputs start with 4 limit bytes (0 = default), chunked inputs with
max_body, max_trailer and two split bytes; differential inputs are raw requests; proxy inputs
start with the v2 length limit byte (0 = the server's).

    python3 fuzz/seeds.py          # every target
    python3 fuzz/seeds.py proxy    # only these targets
"""
import hashlib
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

REQUESTS = [
    b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET /index.html?x=1 HTTP/1.1\r\nHost: example.com:8080\r\nAccept: */*\r\nUser-Agent: curl/8\r\n\r\n",
    b"HEAD / HTTP/1.0\r\n\r\n",
    b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\nContent-Length: 05\r\n\r\nhello",
    b"POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
    b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n",
    b"\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET / HTTP/1.1\nHost: h\n\n",
    b"GET //a/./b/../c%20d/?q=%2e HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET /a/..%2f..%2fetc HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET /%2e%2e/x HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET /a%00b HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET /%c3%a9/%zz HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET http://a.example:81/x?y HTTP/1.1\r\nHost: b.example\r\n\r\n",
    b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET / HTTP/2.0\r\nHost: h\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\nX: a\tb \xe9\xff \t\r\nConnection: Upgrade, close\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost : h\r\n\r\n",
    b"GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: h\r\n\r\n",
    b"get /x HTTP/1.1\r\nHost: [::1]:80\r\nX-A: 1\r\nx-a: 2\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 18446744073709551616\r\n\r\n",
]

CHUNKED = [
    b"4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n",
    b"0\r\n\r\n",
    b"a\r\n0123456789\r\n000\r\n\r\n",
    b"3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n",
    b"2;a=b\r\nhi\r\n3 ; x = \"y\\\"z\"\r\nyou\r\n0\r\nT: v\r\n\r\n",
    b"1\r\na\r\n0\r\nExpires: never\r\nX-Sum:abc\r\n\r\n",
    b"1\r\nx\r\nffffffffffffffff\r\n",
    b"1\na\r\n0\r\n\r\n",
    b"0\r\n X: v\r\n\r\n",
    b"5\r\nhello\r\n",
]


PROXY_V2 = b"\r\n\r\n\0\r\nQUIT\n"


def v2(command, family, block):
    return PROXY_V2 + bytes([0x20 | command, family]) + struct.pack(">H", len(block)) + block


V4_BLOCK = bytes([192, 0, 2, 1, 198, 51, 100, 7]) + struct.pack(">HH", 54321, 80)
V6_BLOCK = bytes(15) + b"\x01" + bytes(15) + b"\x02" + struct.pack(">HH", 443, 8443)
TLVS = b"\x01\x00\x02h2" + b"\x04\x00\x03\x00\x00\x00" + b"\x02\x00\x0bexample.com"

PROXY = [
    b"PROXY TCP4 192.0.2.1 198.51.100.7 54321 80\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
    b"PROXY TCP6 2001:db8::1 ::ffff:198.51.100.7 65535 0\r\n",
    b"PROXY UNKNOWN\r\n",
    b"PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n",
    b"PROXY TCP4 192.0.2.01 198.51.100.7 054321 80\n",
    b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
    v2(1, 0x11, V4_BLOCK) + b"GET / HTTP/1.1\r\n",
    v2(1, 0x21, V6_BLOCK),
    v2(1, 0x11, V4_BLOCK + TLVS),
    v2(1, 0x11, V4_BLOCK + b"\x01\x00\x09h2"),
    v2(0, 0x00, b""),
    v2(0, 0x11, V4_BLOCK),
    v2(1, 0x00, b""),
    v2(1, 0x31, bytes(216)),
    v2(1, 0x12, V4_BLOCK),
    v2(1, 0x21, V4_BLOCK),
    PROXY_V2 + b"\x21\x11\xff\xff",
]


def write(target, data):
    if len(sys.argv) > 1 and target not in sys.argv[1:]:
        return
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + hashlib.sha1(data).hexdigest()[:16]), "wb") as f:
        f.write(data)


for r in REQUESTS:
    write("differential", r)
    write("parse_request", b"\0\0\0\0" + r)
# Small limits: 20-byte line, 160-byte head, 2 fields, body 7*3 bytes.
for r in REQUESTS[:8]:
    write("parse_request", bytes([21, 41, 3, 4]) + r)
for c in CHUNKED:
    write("chunked", b"\0\0\x55\xaa" + c)
    write("chunked", bytes([4, 9, 0x80, 0x80]) + c)
for p in PROXY:
    write("proxy", b"\0" + p)
    write("proxy", b"\x20" + p)
