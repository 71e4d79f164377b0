#!/usr/bin/env python3
"""tests/fuzz/gen_sni_corpus.py: writes the seed corpus of fuzz-sni
(tests/fuzz/corpus/sni/). Run by hand once, when the corpus needs new
seeds; the files it wrote are committed, nothing runs it in the build.

Real ClientHellos: Python's ssl module (OpenSSL) over memory BIOs, and
whichever of the `openssl s_client`, `gnutls-cli` and `chromium` clients is
installed, connecting to a listener here that keeps the first flight.
Hostile ones are made from the first real hello: truncated, each length
field the parser reads one off, re-framed into tiny records, with
duplicate, GREASE and ECH extensions, oversize, and not TLS at all.
It does not start a server that answers; the clients see a closed socket.
"""
import os
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import threading

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "sni")
PEEK_MAX = 16384


def first_flight(sock):
    """Reads records until a whole handshake message of type 1 is in."""
    data, hs, flight = b"", b"", b""
    sock.settimeout(10)
    while True:
        while len(data) < 5 or len(data) < 5 + struct.unpack(">H", data[3:5])[0]:
            chunk = sock.recv(65536)
            if not chunk:
                return None
            data += chunk
        n = struct.unpack(">H", data[3:5])[0]
        hs += data[5:5 + n]
        flight, data = flight + data[:5 + n], data[5 + n:]
        if len(hs) >= 4 and len(hs) >= 4 + int.from_bytes(hs[1:4], "big"):
            return flight


def capture_client(argv_for_port):
    """Runs a client against a listener here and returns its first flight."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    proc = subprocess.Popen(argv_for_port(port), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        srv.settimeout(30)
        conn, _ = srv.accept()
        flight = first_flight(conn)
        conn.close()
        return flight
    except OSError:
        return None
    finally:
        proc.kill()
        proc.wait()
        srv.close()


def python_hello(host, alpn=None, maxver=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    if maxver:
        ctx.maximum_version = maxver
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=host)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def split(rec):
    """(record version, handshake prefix up to the extensions, [(type, data)])."""
    hs = b""
    i = 0
    while i < len(rec):
        n = struct.unpack(">H", rec[i + 3:i + 5])[0]
        hs += rec[i + 5:i + 5 + n]
        i += 5 + n
    b = hs[4:]
    o = 34
    o += 1 + b[o]
    o += 2 + struct.unpack(">H", b[o:o + 2])[0]
    o += 1 + b[o]
    pre, exts, e = b[:o], [], o + 2
    while e < len(b):
        t, n = struct.unpack(">HH", b[e:e + 4])
        exts.append((t, b[e + 4:e + 4 + n]))
        e += 4 + n
    return rec[1:3], pre, exts


def join(version, pre, exts, rec_size=PEEK_MAX):
    body = pre + struct.pack(">H", sum(4 + len(d) for _, d in exts))
    body += b"".join(struct.pack(">HH", t, len(d)) + d for t, d in exts)
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return frame(version, hs, rec_size)


def frame(version, hs, rec_size):
    return b"".join(b"\x16" + version + struct.pack(">H", len(hs[i:i + rec_size])) +
                    hs[i:i + rec_size] for i in range(0, len(hs), rec_size))


def sni_ext(name):
    return (0, struct.pack(">HBH", len(name) + 3, 0, len(name)) + name)


def with_ext(exts, t, data):
    return [(t, data) if x == t else (x, d) for x, d in exts]


def hostile(base, out):
    v, pre, exts = split(base)
    out("trunc-half", base[:len(base) // 2])
    out("trunc-header", base[:9])
    out("records-1", join(v, pre, exts, 1))
    out("records-3", join(v, pre, exts, 3))
    out("records-64", join(v, pre, exts, 64))
    out("grease", join(v, pre, [(0x0a0a, b"")] + exts + [(0xdada, b"\x00")]))
    out("ech", join(v, pre, exts + [(0xfe0d, bytes([0, 0, 1, 0, 1, 7, 0, 2, 0xaa, 0xbb, 0, 1, 0xcc]))]))
    out("dup-sni", join(v, pre, exts + [e for e in exts if e[0] == 0]))
    out("dup-ems", join(v, pre, [(23, b"")] + exts + [(23, b"")]))
    out("no-ext", frame(v, b"\x01" + len(pre).to_bytes(3, "big") + pre, PEEK_MAX))
    out("empty-ext-block", join(v, pre, []))
    out("sni-ipv4", join(v, pre, with_ext(exts, 0, sni_ext(b"192.0.2.1")[1])))
    out("sni-ipv6", join(v, pre, with_ext(exts, 0, sni_ext(b"2001:db8::1")[1])))
    out("sni-trailing-dot", join(v, pre, with_ext(exts, 0, sni_ext(b"example.com.")[1])))
    out("sni-255", join(v, pre, with_ext(exts, 0, sni_ext(b".".join([b"a" * 63] * 4))[1])))
    out("sni-256", join(v, pre, with_ext(exts, 0, sni_ext(b".".join([b"a" * 63] * 4) + b"a")[1])))
    out("sni-two-names", join(v, pre, with_ext(exts, 0, b"\x00\x08\x00\x00\x01a\x00\x00\x01b")))
    out("sni-type1", join(v, pre, with_ext(exts, 0, b"\x00\x04\x01\x00\x01a")))
    out("sni-empty", join(v, pre, with_ext(exts, 0, b"")))
    out("alpn-empty-name", join(v, pre, with_ext(exts, 16, b"\x00\x04\x00\x02h2")))
    exts = [e for e in exts if e[0] != 21]   # Python's OpenSSL pads already
    pad = PEEK_MAX - len(join(v, pre, exts)) - 4   # the padding extension header is 4
    out("largest", join(v, pre, exts + [(21, bytes(pad))]))
    out("too-large", join(v, pre, exts + [(21, bytes(pad + 1))]))
    out("too-large-header", join(v, pre, exts + [(21, bytes(pad + 1))])[:9])
    out("too-many-records", join(v, pre, exts + [(21, bytes(3000))], 1)[:PEEK_MAX])
    out("record-2-15", base[:3] + b"\x40\x01" + base[5:])
    out("record-empty", base[:3] + b"\x00\x00" + base[5:])
    out("record-v35", base[:2] + b"\x05" + base[3:])
    recs = join(v, pre, exts, 100)
    out("second-record-alert", recs[:105] + b"\x15" + recs[106:])
    out("server-hello", b"\x16\x03\x03\x00\x30\x02" + bytes(47))
    out("hs-body-40", b"\x16\x03\x01\x00\x2c\x01\x00\x00\x28" + bytes(40))
    out("sid-33", join(v, pre[:34] + b"\x21" + bytes(33) + pre[35 + pre[34]:], exts))
    out("http-get", b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")
    out("connect", b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
    out("sslv2", bytes([0x80, 0x2e, 0x01, 0x00, 0x02, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10]) + bytes(21) + bytes(16))
    out("alert", b"\x15\x03\x03\x00\x02\x02\x70")
    out("trailing-in-record", base[:3] + struct.pack(">H", len(base) - 4) + base[5:] + b"\x00")
    out("after-hello", base + b"\x14\x03\x03\x00\x01\x01\x17\x03\x03\x00\x05abcde")


def main():
    os.makedirs(OUT, exist_ok=True)
    written = []

    def out(name, data):
        if data:
            with open(os.path.join(OUT, name), "wb") as f:
                f.write(data)
            written.append(name)

    base = python_hello("www.example.com", ["h2", "http/1.1"])
    out("python-tls13-alpn", base)
    out("python-tls12", python_hello("Mixed.Example.ORG", ["http/1.1"], ssl.TLSVersion.TLSv1_2))
    out("python-no-sni", python_hello(None))
    if shutil.which("openssl"):
        out("openssl-s_client", capture_client(lambda p: [
            "openssl", "s_client", "-connect", f"127.0.0.1:{p}", "-servername", "s-client.example",
            "-alpn", "h2,http/1.1"]))
        out("openssl-s_client-tls12", capture_client(lambda p: [
            "openssl", "s_client", "-connect", f"127.0.0.1:{p}", "-servername", "tls12.example",
            "-tls1_2"]))
    if shutil.which("gnutls-cli"):
        out("gnutls-cli", capture_client(lambda p: [
            "gnutls-cli", "--insecure", "--alpn=h2", "--alpn=http/1.1", "-p", str(p),
            "--sni-hostname=gnutls.example", "127.0.0.1"]))
    if shutil.which("chromium"):
        out("chromium", capture_client(lambda p: [
            "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=/tmp/sni-chromium",
            f"--host-resolver-rules=MAP chromium.example 127.0.0.1:{p}",
            "https://chromium.example/"]))
    hostile(base, out)
    print(f"{len(written)} files in {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
