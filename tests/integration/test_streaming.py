#!/usr/bin/env python3
"""Issue #15: bodies of any size in bounded memory, server-sent events as they
come, WebSocket tunnels. Real sockets, the real binary, a real upstream
(StreamingUpstream below speaks HTTP/1.1 and RFC 6455 over raw sockets, so the
test controls every byte and every close).

Expected values never come from figshift: digests are computed here from the
same deterministic generator the upstream sends, the WebSocket accept key from
RFC 6455's rule, and the event timestamps from the upstream's own clock."""

import base64
import hashlib
import http.client
import json
import os
import socket
import ssl
import struct
import threading
import time
import unittest
import urllib.parse

import harness as h

KIB = 1 << 10
MIB = 1 << 20
GIB = 1 << 30
MIGRATED = "polygenelubricants"  # bucket 0: new at any split > 0
LEGACY = "hello"  # bucket 70: legacy at split 50
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3

_BASE = h.pattern_bytes(MIB)


def block(i: int) -> bytes:
    """The i-th MiB of a body: numbered, so a lost, repeated or reordered MiB shows."""
    return i.to_bytes(8, "big") + _BASE[8:]


def body_pieces(size: int):
    full, rest = divmod(size, MIB)
    for i in range(full):
        yield block(i)
    if rest:
        yield block(full)[:rest]


def expected_sha256(size: int) -> str:
    digest = hashlib.sha256()
    for piece in body_pieces(size):
        digest.update(piece)
    return digest.hexdigest()


def rss_kb(pid: int) -> int:
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class RssSampler:
    """Samples a process's resident set every 20 ms, in a thread; .peak_kb when stopped."""

    def __init__(self, pid: int):
        self.pid = pid
        self.peak_kb = rss_kb(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                self.peak_kb = max(self.peak_kb, rss_kb(self.pid))
            except OSError:
                return
            time.sleep(0.02)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(2)
        return self.peak_kb


def hash_exactly(f, n, digest) -> int:
    """Reads n bytes (None: until EOF) from f into digest; returns how many came
    (fewer than n: the peer closed first)."""
    total = 0
    while n is None or total < n:
        data = f.read(MIB if n is None else min(n - total, MIB))
        if not data:
            break
        digest.update(data)
        total += len(data)
    return total


def read_head(f) -> tuple[int, dict]:
    """(status, headers by lower-case name) of a response head, from a buffered reader."""
    status = int(f.readline().split()[1])
    headers = {}
    while True:
        line = f.readline()
        if line in (b"\r\n", b""):
            break
        k, _, v = line.decode().partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers


def read_response(f) -> tuple[int, dict, bytes]:
    """(status, headers, body) of one response with a Content-Length, from a buffered reader."""
    status, headers = read_head(f)
    return status, headers, f.read(int(headers.get("content-length", "0")))


def ws_frame(opcode: int, payload: bytes, mask: bool) -> bytes:
    """One final WebSocket frame (RFC 6455 §5.2); a client's is masked."""
    head = bytes([0x80 | opcode])
    n = len(payload)
    bit = 0x80 if mask else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 65536:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def ws_read_frame(f) -> tuple[int, bytes]:
    """(opcode, payload) of the next frame from a buffered reader (unmasking a client's)."""
    b0, b1 = f.read(2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", f.read(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", f.read(8))[0]
    key = f.read(4) if b1 & 0x80 else None
    payload = f.read(n)
    if len(payload) != n:
        raise EOFError("frame cut short")
    if key:
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return b0 & 0x0F, payload


class StreamingUpstream:
    """An upstream on 127.0.0.1 whose paths stream, trickle, die mid-body or speak WebSocket.

    /download?size=N            Content-Length, the numbered MiBs
    /download-chunked?size=N    the same, chunked (one chunk per MiB)
    /download-close?size=N      no length: the body ends when the upstream closes
    /upload                     reads the body (length or chunked), answers its sha256 and size
    /sse                        an event stream: one event at once, another a second later
    /die-mid?size=N             Content-Length N, half of it, then a close
    /die-mid-chunked?size=N     chunked, half of it, then a close (no last chunk)
    /die-reading                reads 64 KiB of the request body, then closes
    /refuse-upload              answers 413 at once, unread body and all, then closes
    /refuse-upload-kept         the same answer without Connection: close, then closes
    /refuse-upload-big          the same with a 100 KiB answer body
    /ws                         a WebSocket echo (RFC 6455), text and binary, close handshake
    /refuse-upgrade             426 to any request, the connection kept open
    """

    def __init__(self, tls_context=None, keepalive_s=None):
        self.tls_context = tls_context
        self.keepalive_s = keepalive_s  # an idle connection is closed after this (None: never)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.requests = []  # (method, target) of every request head received
        self.incomplete = 0  # request bodies that ended short (the peer closed mid-body)
        self.uploads = []  # {"sha256", "bytes"} of every complete upload
        self.event_sent = {}  # event name -> time.monotonic() when it went out
        self.tunnel_closed = threading.Event()
        self._stop = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def url(self) -> str:
        return "%s://127.0.0.1:%d" % ("https" if self.tls_context else "http", self.port)

    def close(self):
        self._stop = True
        try:
            self.sock.close()
        except OSError:
            pass

    def paths(self) -> list[str]:
        with self.lock:
            return [t.split("?")[0] for _, t in self.requests]

    def _accept(self):
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        if self.tls_context:
            try:
                conn = self.tls_context.wrap_socket(conn, server_side=True)
            except (OSError, ssl.SSLError):
                conn.close()
                return
        f = conn.makefile("rb", buffering=256 * KIB)
        try:
            while self._one_request(conn, f):
                pass
        except (OSError, ValueError, EOFError):
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def _one_request(self, conn, f) -> bool:
        conn.settimeout(self.keepalive_s)
        try:
            line = f.readline(65537)
        except (socket.timeout, TimeoutError):
            return False  # idle for keepalive_s: closed, as Node's 5 s keep-alive timeout does
        conn.settimeout(None)
        if not line:
            return False
        method, target, _ = line.decode("latin-1").split(" ", 2)
        headers = {}
        while True:
            field = f.readline(65537)
            if field in (b"\r\n", b"\n", b""):
                break
            name, _, value = field.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        with self.lock:
            self.requests.append((method, target))
        path, _, query = target.partition("?")
        size = int(urllib.parse.parse_qs(query).get("size", ["0"])[0])
        handler = getattr(self, "_" + path.strip("/").replace("-", "_"), None)
        if handler is None:
            return self._send(conn, 404, b"no such path\n")
        return handler(conn, f, method, headers, size)

    def _send(self, conn, status, body, extra=b"") -> bool:
        conn.sendall(b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n%s\r\n" % (status, len(body), extra) + body)
        return True

    def _download(self, conn, f, method, headers, size):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n" % size)
        for piece in body_pieces(size):
            conn.sendall(piece)
        return True

    def _download_chunked(self, conn, f, method, headers, size):
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for piece in body_pieces(size):
            conn.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
        conn.sendall(b"0\r\nX-Trailer: dropped\r\n\r\n")
        return True

    def _download_close(self, conn, f, method, headers, size):
        conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
        for piece in body_pieces(size):
            conn.sendall(piece)
        return False

    def _read_body(self, f, headers):
        """(sha256, size) of the request body, or None when it ended short."""
        digest = hashlib.sha256()
        total = 0
        if "chunked" in headers.get("transfer-encoding", "").lower():
            while True:
                line = f.readline(65537)
                if not line.endswith(b"\n"):
                    return None
                n = int(line.split(b";")[0].strip(), 16)
                if n == 0:
                    if f.readline(65537) not in (b"\r\n", b"\n"):
                        return None
                    return digest.hexdigest(), total
                if hash_exactly(f, n, digest) != n or f.readline(65537) not in (b"\r\n", b"\n"):
                    return None
                total += n
        length = int(headers.get("content-length", "0"))
        if hash_exactly(f, length, digest) != length:
            return None
        return digest.hexdigest(), length

    def _upload(self, conn, f, method, headers, size):
        got = self._read_body(f, headers)
        if got is None:
            with self.lock:
                self.incomplete += 1
            return False
        answer = {"sha256": got[0], "bytes": got[1]}
        with self.lock:
            self.uploads.append(answer)
        return self._send(conn, 200, json.dumps(answer).encode(), b"Content-Type: application/json\r\n")

    def _sse(self, conn, f, method, headers, size):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        time.sleep(0.2)  # the head is out on its own; the first event comes later
        for name in ("first", "second"):
            event = b"event: %s\ndata: {\"n\": \"%s\"}\n\n" % (name.encode(), name.encode())
            with self.lock:
                self.event_sent[name] = time.monotonic()
            conn.sendall(b"%x\r\n%s\r\n" % (len(event), event))
            time.sleep(1.0)
        conn.sendall(b"0\r\n\r\n")
        return True

    def _die_mid(self, conn, f, method, headers, size):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        conn.sendall(b"".join(body_pieces(size))[: size // 2])
        time.sleep(0.1)
        return False

    def _die_mid_chunked(self, conn, f, method, headers, size):
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        half = b"".join(body_pieces(size))[: size // 2]
        conn.sendall(b"%x\r\n%s\r\n" % (len(half), half))
        time.sleep(0.1)
        return False

    def _die_reading(self, conn, f, method, headers, size):
        f.read(64 * KIB)
        return False

    def _refuse_upload(self, conn, f, method, headers, size):
        # As a server that checks the size first: the answer, then a close with the
        # body unread (the kernel resets the connection).
        self._send(conn, 413, b"too large for B\n", b"Connection: close\r\nContent-Type: text/plain\r\n")
        return False

    def _refuse_upload_kept(self, conn, f, method, headers, size):
        self._send(conn, 413, b"too large for B\n", b"Content-Type: text/plain\r\n")
        return False

    def _refuse_upload_big(self, conn, f, method, headers, size):
        self._send(conn, 413, b"x" * (100 * KIB), b"Connection: close\r\n")
        return False

    def _refuse_upgrade(self, conn, f, method, headers, size):
        return self._send(conn, 426, b"no upgrade here\n", b"Content-Type: text/plain\r\n")

    def _ws(self, conn, f, method, headers, size):
        key = headers.get("sec-websocket-key", "")
        if headers.get("upgrade", "").lower() != "websocket" or not key:
            return self._send(conn, 400, b"not a websocket handshake\n")
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest())
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Accept: %s\r\n\r\n" % accept)
        try:
            while True:
                opcode, payload = ws_read_frame(f)
                if opcode == 0x8:  # close: answer it, then the server closes first (RFC 6455 §7.1.1)
                    conn.sendall(ws_frame(0x8, payload[:2], mask=False))
                    return False
                if opcode == 0x9:  # ping
                    conn.sendall(ws_frame(0xA, payload, mask=False))
                    continue
                conn.sendall(ws_frame(opcode, payload, mask=False))
        finally:
            self.tunnel_closed.set()


class StreamingCase(h.FigTestCase):
    def setUp(self):
        super().setUp()
        self.up = StreamingUpstream()
        self.addCleanup(self.up.close)

    def start(self, config=None, **store):
        cfg = {"workers": 1}
        cfg.update(config or {})
        return self.daemon(dict({"APIGW_A_URL": self.up.url()}, **store), config=cfg)

    def connect(self, d, timeout=10):
        s = socket.create_connection(("127.0.0.1", d.port), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.addCleanup(s.close)
        return s

    def metric(self, d, name):
        text = d.admin_request("GET", "/metrics").body.decode()
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise AssertionError("no %s in /metrics" % name)

    def download(self, d, path, version="HTTP/1.1"):
        """(status, headers, sha256, bytes, ended_by) of a GET through figshift, read
        with its own framing: ended_by is 'length', 'chunked' or 'close'."""
        s = self.connect(d, timeout=60)
        s.sendall(b"GET %s %s\r\nHost: x\r\nAuthorization: %s\r\n\r\n" % (path.encode(), version.encode(), h.basic(LEGACY).encode()))
        f = s.makefile("rb", buffering=256 * KIB)
        status, headers = read_head(f)
        digest, total = hashlib.sha256(), 0
        if "content-length" in headers:
            length = int(headers["content-length"])
            total = hash_exactly(f, length, digest)
            ended_by = "length" if total == length else "close (short of its length)"
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            ended_by = "chunked"
            while True:
                line = f.readline(65537)
                if not line.endswith(b"\n"):
                    ended_by = "close (no last chunk)"
                    break
                n = int(line.split(b";")[0], 16)
                if n == 0:
                    f.readline()
                    break
                total += hash_exactly(f, n, digest)
                f.readline()
        else:
            ended_by = "close"
            total = hash_exactly(f, None, digest)
        return status, headers, digest.hexdigest(), total, ended_by


class LargeBodiesTest(StreamingCase):
    """1 GiB each way, checksummed end to end, in bounded memory."""

    # figshift's resident set may grow by at most this much while 1 GiB passes
    # through it (one 64 KiB buffer per direction plus Beast's read buffer; the
    # rest is the allocator's slack): a proxy that buffered the body would grow by 1 GiB.
    RSS_GROWTH_BOUND_KB = 24 * 1024

    def test_1gib_download_checksummed_in_bounded_memory(self):
        d = self.start()
        self.assertEqual(self.download(d, "/download?size=%d" % MIB)[0], 200)  # warm
        before = rss_kb(d.proc.pid)
        sampler = RssSampler(d.proc.pid)
        status, headers, sha, total, ended_by = self.download(d, "/download?size=%d" % GIB)
        peak = sampler.stop()
        self.assertEqual((status, total, ended_by), (200, GIB, "length"))
        self.assertEqual(headers.get("content-length"), str(GIB))
        self.assertEqual(sha, expected_sha256(GIB), "the body changed on its way")
        sys_note = "RSS %d KiB before, peak %d KiB" % (before, peak)
        if not h.sanitized_binary():  # ASan's allocator keeps freed memory in quarantine
            self.assertLess(peak - before, self.RSS_GROWTH_BOUND_KB, sys_note)
        print("\n1 GiB download: " + sys_note)

    def test_1gib_upload_checksummed_in_bounded_memory(self):
        d = self.start(config={"limits": {"body_bytes": 2 * GIB}})
        before = rss_kb(d.proc.pid)
        sampler = RssSampler(d.proc.pid)
        conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=120)
        conn.putrequest("POST", "/upload", skip_accept_encoding=True)
        conn.putheader("Authorization", h.basic(LEGACY))
        conn.putheader("Content-Length", str(GIB))
        conn.endheaders()
        for piece in body_pieces(GIB):
            conn.send(piece)
        resp = conn.getresponse()
        body = resp.read()
        peak = sampler.stop()
        self.assertEqual(resp.status, 200, body)
        self.assertEqual(json.loads(body), {"sha256": expected_sha256(GIB), "bytes": GIB})
        note = "RSS %d KiB before, peak %d KiB" % (before, peak)
        if not h.sanitized_binary():
            self.assertLess(peak - before, self.RSS_GROWTH_BOUND_KB, note)
        print("\n1 GiB upload: " + note)
        self.assertGreaterEqual(self.metric(d, "figshift_streamed_request_bodies_total"), 1)

    def test_chunked_upload_is_streamed_and_reframed(self):
        d = self.start(config={"limits": {"body_bytes": 64 * MIB}})
        s = self.connect(d, timeout=30)
        size = 48 * MIB + 12345
        s.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        # hostile-looking but valid chunk sizes: 1 byte, odd sizes, a chunk extension, a trailer
        data = b"".join(body_pieces(size))
        pos, sizes = 0, [1, 7, 65535, 65537, 3 * MIB + 1]
        while pos < len(data):
            n = sizes[pos % len(sizes)] if pos < 10 * MIB else 4 * MIB
            piece = data[pos:pos + n]
            s.sendall(b"%x;ext=1\r\n%s\r\n" % (len(piece), piece))
            pos += len(piece)
        s.sendall(b"0\r\nX-Checksum: ignored\r\n\r\n")
        status, _, body = read_response(s.makefile("rb"))
        self.assertEqual(status, 200, body)
        body = json.loads(body)
        self.assertEqual(body, {"sha256": hashlib.sha256(data).hexdigest(), "bytes": size})

    def test_chunked_and_unframed_downloads_keep_their_bytes(self):
        d = self.start()
        size = 40 * MIB + 3
        want = expected_sha256(size)
        # chunked stays chunked (trailers are not passed on)
        status, headers, sha, total, ended_by = self.download(d, "/download-chunked?size=%d" % size)
        self.assertEqual((status, sha, total, ended_by), (200, want, size, "chunked"))
        # no length: re-framed as chunked for an HTTP/1.1 client, so its connection stays usable
        status, headers, sha, total, ended_by = self.download(d, "/download-close?size=%d" % size)
        self.assertEqual((status, sha, total, ended_by), (200, want, size, "chunked"))
        # ... and ended by the close for an HTTP/1.0 client, which cannot read chunks
        status, headers, sha, total, ended_by = self.download(d, "/download-close?size=%d" % size, "HTTP/1.0")
        self.assertEqual((status, sha, total, ended_by), (200, want, size, "close"))

    def test_small_answers_are_read_whole_and_keep_alive(self):
        d = self.start()
        conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
        for size in (0, 1, 64 * KIB, 64 * KIB + 1, 300 * KIB):
            conn.request("GET", "/download?size=%d" % size, headers={"Authorization": h.basic(LEGACY)})
            resp = conn.getresponse()
            body = resp.read()
            self.assertEqual((resp.status, len(body)), (200, size))
            self.assertEqual(hashlib.sha256(body).hexdigest(), expected_sha256(size))
        # 64 KiB + 1 and 300 KiB were streamed, the rest read whole (limits.buffer_response_bytes)
        self.assertEqual(self.metric(d, "figshift_streamed_responses_total"), 2)


class EventStreamTest(StreamingCase):
    def test_first_event_arrives_as_the_upstream_sends_it(self):
        d = self.start()
        s = self.connect(d)
        s.sendall(b"GET /sse HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
        got = b""
        arrived = {}
        deadline = time.time() + 10
        while b"0\r\n\r\n" not in got and time.time() < deadline:
            data = s.recv(65536)
            if not data:
                break
            got += data
            now = time.monotonic()
            for name in ("first", "second"):
                if name not in arrived and b"event: " + name.encode() in got:
                    arrived[name] = now
        self.assertTrue(got.startswith(b"HTTP/1.1 200"), got[:200])
        self.assertIn(b"content-type: text/event-stream", got.lower())
        self.assertIn(b"transfer-encoding: chunked", got.lower())
        self.assertTrue(got.endswith(b"0\r\n\r\n"), "the stream's end passed on: %r" % got[-40:])
        for name in ("first", "second"):
            delay_ms = (arrived[name] - self.up.event_sent[name]) * 1000
            print("\nSSE %s event: %.2f ms after the upstream sent it" % (name, delay_ms))
            # The next event comes a second later: anything near that means buffering.
            self.assertLess(delay_ms, 100, "%s event held back %.1f ms" % (name, delay_ms))


class WebSocketTest(StreamingCase):
    def handshake(self, s, path=b"/ws", user=LEGACY):
        key = base64.b64encode(os.urandom(16))
        s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
                  b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nAuthorization: %s\r\n\r\n"
                  % (path, key, h.basic(user).encode()))
        f = s.makefile("rb")
        status, headers = read_head(f)
        return key, status, headers, f

    def test_echo_text_binary_and_close_handshake(self):
        d = self.start()
        s = self.connect(d)
        key, status, headers, f = self.handshake(s)
        self.assertEqual(status, 101, headers)
        self.assertEqual(headers.get("upgrade", "").lower(), "websocket")
        self.assertIn("upgrade", headers.get("connection", "").lower())
        want = base64.b64encode(hashlib.sha1(key + WS_GUID.encode()).digest()).decode()
        self.assertEqual(headers.get("sec-websocket-accept"), want, "the upstream's accept key relayed")
        self.assertEqual(headers.get("x-figshift-upstream"), "A")
        h.eventually(lambda: self.metric(d, "figshift_tunnels_open") == 1, 3, message="one tunnel open")

        s.sendall(ws_frame(0x1, "héllo ✓".encode(), mask=True))
        self.assertEqual(ws_read_frame(f), (0x1, "héllo ✓".encode()))
        blob = os.urandom(300 * KIB)  # a 64-bit length, several pump buffers
        s.sendall(ws_frame(0x2, blob, mask=True))
        self.assertEqual(ws_read_frame(f), (0x2, blob))
        s.sendall(ws_frame(0x9, b"ping", mask=True))
        self.assertEqual(ws_read_frame(f), (0xA, b"ping"))

        s.sendall(ws_frame(0x8, struct.pack("!H", 1000), mask=True))
        self.assertEqual(ws_read_frame(f), (0x8, struct.pack("!H", 1000)))
        self.assertEqual(f.read(1), b"", "the upstream's close reaches the client")
        self.assertTrue(self.up.tunnel_closed.wait(3))
        f.close()  # the client closes its side too, as RFC 6455 §7.1.1 has it
        s.close()
        h.eventually(lambda: self.metric(d, "figshift_tunnels_open") == 0, 3, message="the tunnel is counted closed")
        self.assertEqual(self.metric(d, "figshift_tunnels_total"), 1)
        text = d.admin_request("GET", "/metrics").body.decode()
        to_up = [l for l in text.splitlines() if l.startswith('figshift_tunnel_bytes_total{direction="to_upstream"}')]
        self.assertTrue(to_up and float(to_up[0].split()[1]) >= len(blob), to_up)

    def test_client_half_close_still_gets_what_the_upstream_sends(self):
        # The client sends a frame and its Close, then shuts its sending half: the
        # upstream's echo and Close still come back before the tunnel ends.
        d = self.start()
        s = self.connect(d)
        _, status, _, f = self.handshake(s)
        self.assertEqual(status, 101)
        blob = os.urandom(300 * KIB)
        s.sendall(ws_frame(0x2, blob, mask=True) + ws_frame(0x8, struct.pack("!H", 1000), mask=True))
        s.shutdown(socket.SHUT_WR)
        self.assertEqual(ws_read_frame(f), (0x2, blob))
        self.assertEqual(ws_read_frame(f), (0x8, struct.pack("!H", 1000)))
        self.assertEqual(f.read(1), b"")
        h.eventually(lambda: self.metric(d, "figshift_tunnels_open") == 0, 3, message="the tunnel ends")

    def test_refused_upgrade_is_not_a_tunnel_and_what_follows_is_routed(self):
        # The WebSocket smuggling trick: an upgrade the upstream refuses, with a request
        # behind it on the same connection. A proxy that tunnels anyway sends that
        # request raw to the legacy upstream; it must be parsed, checked and routed.
        b1 = self.upstream("B1")
        d = self.start(**{"APIGW_B1_URL": b1.url(), "traffic-split": "50", "route:/orders": "B1"})
        s = self.connect(d)
        key = base64.b64encode(os.urandom(16))
        s.sendall(b"GET /refuse-upgrade HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nAuthorization: %s\r\n\r\n"
                  b"GET /orders/1 HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n\r\n"
                  % (key, h.basic(LEGACY).encode(), h.basic(MIGRATED).encode()))
        f = s.makefile("rb")
        status, headers, body = read_response(f)
        self.assertEqual((status, body), (426, b"no upgrade here\n"))
        status, headers, body = read_response(f)
        self.assertEqual(status, 200, body)
        self.assertEqual(headers.get("x-figshift-upstream"), "B1")
        self.assertEqual(json.loads(body)["path"], "/orders/1")
        self.assertNotIn("/orders/1", self.up.paths(), "the second request reached A raw")
        self.assertEqual(self.metric(d, "figshift_tunnels_total"), 0)

    def test_101_to_a_request_without_upgrade_is_refused(self):
        # An upstream that answers 101 to anything; the request asked for no upgrade
        # (Upgrade without Connection: upgrade is no handshake), so a 101 is a broken answer.
        rogue = self.canned_upstream(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                     b"Connection: Upgrade\r\n\r\nRAW BYTES AFTER THE SWITCH")
        d = self.daemon({"APIGW_A_URL": rogue.url()}, config={"workers": 1})
        s = self.connect(d)
        s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nSec-WebSocket-Key: x\r\nUpgrade: websocket\r\n\r\n")
        status, headers, body = read_response(s.makefile("rb"))
        self.assertEqual(status, 502, body)
        self.assertNotIn(b"RAW BYTES", body)
        self.assertEqual(self.metric(d, "figshift_tunnels_total"), 0)

    def test_tunnel_idle_timeout_closes_both_sides(self):
        d = self.start(config={"timeouts": {"tunnel_idle_ms": 600}})
        s = self.connect(d)
        _, status, _, f = self.handshake(s)
        self.assertEqual(status, 101)
        t0 = time.time()
        self.assertEqual(f.read(1), b"", "closed when quiet")
        self.assertLess(time.time() - t0, 5)
        self.assertTrue(self.up.tunnel_closed.wait(3), "the upstream side is closed too")
        h.eventually(lambda: self.metric(d, "figshift_tunnels_open") == 0, 3, message="tunnel counted closed")


class BrokenStreamsTest(StreamingCase):
    def test_client_gone_mid_upload_closes_the_upstream_connection(self):
        d = self.start(config={"limits": {"body_bytes": 64 * MIB}})
        s = self.connect(d)
        s.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (64 * MIB))
        s.sendall(b"".join(body_pieces(4 * MIB)))
        time.sleep(0.2)
        s.close()
        # The upstream sees its connection end short of the body: closed, never pooled.
        h.eventually(lambda: self.up.incomplete == 1, 5, message="the upstream saw the connection close mid-body")
        self.assertEqual(self.up.uploads, [])
        self.assertEqual(self.metric(d, "figshift_upstream_connections_idle"), 0)

    def test_upstream_gone_mid_body_is_never_a_complete_response(self):
        d = self.start()
        size = 8 * MIB
        status, headers, sha, total, ended_by = self.download(d, "/die-mid?size=%d" % size)
        self.assertEqual(status, 200)
        self.assertEqual(ended_by, "close (short of its length)")
        self.assertEqual(total, size // 2)
        status, headers, sha, total, ended_by = self.download(d, "/die-mid-chunked?size=%d" % size)
        self.assertEqual((status, ended_by), (200, "close (no last chunk)"))
        text = d.admin_request("GET", "/metrics").body.decode()
        self.assertRegex(text, r'figshift_upstream_errors_total\{upstream="A",kind="reset"\} 2')
        self.assertEqual(self.download(d, "/download?size=10")[0], 200, "serves on")

    def test_streamed_body_is_never_retried(self):
        d = self.start()
        self.assertEqual(self.download(d, "/download?size=10")[0], 200)  # a pooled connection now
        conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
        conn.request("PUT", "/die-reading", body=b"".join(body_pieces(MIB)))  # idempotent, yet streamed
        resp = conn.getresponse()
        resp.read()
        self.assertEqual(resp.status, 502)
        self.assertEqual(self.up.paths().count("/die-reading"), 1, "sent once, never again")

    def upload_until_answered(self, d, path, framing, size=8 * MIB):
        """Sends a POST with an 8 MiB body for as long as figshift takes it, then
        reads the answer: (status, headers, body, what followed the body)."""
        s = self.connect(d)
        if framing == "length":
            s.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (path.encode(), size))
        else:
            s.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" % path.encode())
        s.settimeout(0.05)
        for piece in body_pieces(size):  # sent while it is taken (a lingering close takes it)
            try:
                s.sendall(piece if framing == "length" else b"%x\r\n%s\r\n" % (len(piece), piece))
            except (socket.timeout, TimeoutError, ConnectionError):
                break
        s.settimeout(10)
        f = s.makefile("rb")
        status, headers = read_head(f)
        body = f.read(int(headers["content-length"]))
        return status, headers, body, f.read()

    def test_upstream_answer_before_the_body_reaches_the_client(self):
        # The upstream answers 413 as soon as it sees the head and closes without reading
        # the body (RFC 9112 9.5 allows it; nginx passes such an answer on): the client
        # gets that answer, not a 502, for a length-framed and a chunked upload alike, and
        # its connection is then closed, since the rest of its body is never read. With or
        # without Connection: close from the upstream, its connection is never pooled.
        d = self.start(config={"limits": {"body_bytes": 64 * MIB}})
        for path in ("/refuse-upload", "/refuse-upload-kept"):
            for framing in ("length", "chunked"):
                status, headers, body, after = self.upload_until_answered(d, path, framing)
                what = "%s, %s" % (path, framing)
                self.assertEqual((status, body), (413, b"too large for B\n"), what)
                self.assertEqual(headers.get("connection", "").lower(), "close", what)
                self.assertEqual(after, b"", "%s: the connection ends after the answer" % what)
                self.assertEqual(self.metric(d, "figshift_upstream_connections_idle"), 0,
                                 "%s: never pooled" % what)
        text = d.admin_request("GET", "/metrics").body.decode()
        self.assertRegex(text, r'figshift_requests_total\{upstream="A",group="legacy",code="4xx"\} 4')
        self.assertRegex(text, r'figshift_upstream_errors_total\{upstream="A",kind="reset"\} 0')
        self.assertEqual(self.download(d, "/download?size=10")[0], 200, "serves on")

    def test_early_answer_too_large_to_hold_is_502(self):
        # An early answer is passed on only when it can be held whole (buffer_response_bytes,
        # 64 KiB): a client that sends its whole body before it reads could otherwise stall
        # a streamed one until client_write_ms.
        d = self.start(config={"limits": {"body_bytes": 64 * MIB}})
        status, headers, body, after = self.upload_until_answered(d, "/refuse-upload-big", "length")
        self.assertEqual(status, 502, body)
        self.assertEqual(after, b"")

    def test_upstream_gone_mid_upload_without_an_answer_is_502(self):
        d = self.start()
        conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
        conn.request("POST", "/die-reading", body=b"".join(body_pieces(4 * MIB)))
        resp = conn.getresponse()
        self.assertEqual(resp.status, 502, resp.read())
        self.assertEqual(resp.getheader("connection", "").lower(), "close")
        text = d.admin_request("GET", "/metrics").body.decode()
        self.assertRegex(text, r'figshift_upstream_errors_total\{upstream="A",kind="reset"\} 1')

    def test_streamed_upload_never_gets_a_connection_the_upstream_closed(self):
        # The upstream closes idle keep-alive connections after 0.3 s (Node's default is 5 s,
        # figshift keeps them 30 s): a streamed body, which cannot be resent, must not be
        # sent on one of those.
        self.up.keepalive_s = 0.3
        d = self.start()
        self.assertEqual(self.download(d, "/download?size=10")[0], 200)  # pools a connection
        time.sleep(0.8)  # ... which the upstream has closed by now
        conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
        size = MIB + 3
        conn.request("POST", "/upload", body=b"".join(body_pieces(size)))
        resp = conn.getresponse()
        body = resp.read()
        self.assertEqual(resp.status, 200, body)
        self.assertEqual(json.loads(body), {"sha256": expected_sha256(size), "bytes": size})
        self.assertEqual(self.up.paths().count("/upload"), 1)

    def test_expect_continue_upload_outlasting_client_write_ms(self):
        # The 100 Continue is written under client_write_ms; the body that follows is the
        # pump's, whatever that deadline was (an upload with curl -T sends Expect).
        d = self.start(config={"timeouts": {"client_write_ms": 1000}})
        s = self.connect(d)
        size = 4 * MIB
        s.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n" % size)
        f = s.makefile("rb")
        self.assertTrue(f.readline().startswith(b"HTTP/1.1 100"))
        f.readline()
        data = b"".join(body_pieces(size))
        for i in range(6):  # 3 s in all, well past client_write_ms
            s.sendall(data[i * size // 6:(i + 1) * size // 6])
            time.sleep(0.5)
        status, _, body = read_response(f)
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body)["sha256"], expected_sha256(size))

    def test_post_with_content_length_0_keeps_it(self):
        echo = self.upstream("A")
        d = self.daemon({"APIGW_A_URL": echo.url()}, config={"workers": 1})
        raw = h.raw_exchange(d.port, b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        self.assertEqual(raw.status, 200)
        self.assertEqual(echo.requests[-1]["headers"].get("content-length"), "0",
                         "some upstreams answer 411 to a POST without a length")

    def test_endless_chunk_extension_is_cut_off_in_bounded_memory(self):
        d = self.start()
        before = rss_kb(d.proc.pid)
        s = self.connect(d)
        s.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1;")
        try:
            for _ in range(16):  # 16 MiB of a chunk extension that never ends
                s.sendall(b"a" * MIB)
        except OSError:
            pass
        s.settimeout(5)
        try:
            answer = s.recv(65536)
        except OSError:
            answer = b""
        # Refused once the line passes what a read buffer may hold (the rest is drained
        # by the lingering close, not kept).
        self.assertTrue(answer.startswith(b"HTTP/1.1 400"), answer[:100])
        grown = rss_kb(d.proc.pid) - before
        if not h.sanitized_binary():  # ASan's allocator keeps freed memory in quarantine
            self.assertLess(grown, 8 * 1024, "RSS grew by %d KiB" % grown)
        self.assertEqual(self.up.uploads, [])

    def test_idle_connections_that_streamed_keep_no_buffer(self):
        d = self.start()
        socks = []
        before = rss_kb(d.proc.pid)
        for _ in range(300):
            s = self.connect(d)
            s.sendall(b"GET /download?size=%d HTTP/1.1\r\nHost: x\r\n\r\n" % (100 * KIB))
            status, _, body = read_response(s.makefile("rb"))
            self.assertEqual((status, len(body)), (200, 100 * KIB))  # streamed (> 64 KiB)
            socks.append(s)
        time.sleep(0.3)
        grown = rss_kb(d.proc.pid) - before
        # 300 idle connections, each of which streamed: a 64 KiB buffer kept each would be 19 MiB.
        if not h.sanitized_binary():  # ASan's allocator keeps freed memory in quarantine
            self.assertLess(grown, 6 * 1024, "RSS grew by %d KiB for 300 idle connections" % grown)

    def test_slow_drip_body_is_cut_off(self):
        d = self.start(config={"timeouts": {"client_body_ms": 1000}, "limits": {"body_min_bytes_per_s": 1024}})
        s = self.connect(d)
        s.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
        t0 = time.time()
        closed_after = None
        try:
            while time.time() - t0 < 15:
                s.sendall(b"x" * 20)  # 100 bytes a second: each wait is short, the rate is not
                time.sleep(0.2)
        except OSError:
            closed_after = time.time() - t0
        if closed_after is None:
            s.settimeout(1)
            try:
                closed_after = time.time() - t0 if s.recv(1) == b"" else None
            except OSError:
                closed_after = time.time() - t0
        self.assertIsNotNone(closed_after, "a 100 B/s body was never cut off")
        self.assertLess(closed_after, 6)
        h.eventually(lambda: self.up.incomplete == 1, 5, message="the upstream never got a complete request")

    def test_stalled_chunk_size_line_is_cut_off(self):
        d = self.start(config={"timeouts": {"client_body_ms": 800}})
        s = self.connect(d)
        s.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        t0 = time.time()
        closed = False
        try:
            while time.time() - t0 < 10:
                s.sendall(b"0")  # a chunk size that never ends: zero body bytes, ever
                time.sleep(0.1)
        except OSError:
            closed = True
        if not closed:
            s.settimeout(1)
            try:
                closed = s.recv(65536) is not None
            except OSError:
                closed = True
        self.assertTrue(closed)
        self.assertLess(time.time() - t0, 8)
        self.assertEqual(self.up.uploads, [])

    def test_chunked_body_past_the_limit_is_413_and_never_complete_upstream(self):
        d = self.start(config={"limits": {"body_bytes": MIB}})
        s = self.connect(d)
        s.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        try:
            for _ in range(8):
                s.sendall(b"40000\r\n" + b"y" * 0x40000 + b"\r\n")  # 256 KiB chunks
            s.sendall(b"0\r\n\r\n")
        except OSError:
            pass
        s.settimeout(5)
        data = b""
        try:
            while True:
                got = s.recv(65536)
                if not got:
                    break
                data += got
        except OSError:
            pass
        self.assertTrue(data.startswith(b"HTTP/1.1 413"), data[:200])
        self.assertIn(b"connection: close", data.lower())
        h.eventually(lambda: self.up.incomplete == 1, 5, message="the upstream's request ended short")
        self.assertEqual(self.up.uploads, [])

    def test_huge_content_length_is_413_before_any_byte(self):
        d = self.start(config={"limits": {"body_bytes": MIB}})
        raw = h.raw_exchange(d.port, b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (MIB + 1))
        self.assertEqual(raw.status, 413)
        self.assertEqual(self.up.paths(), [])


class TlsStreamingTest(h.PkiMixin, StreamingCase):
    """TLS on both sides: a pump reads and writes through OpenSSL, a tunnel does both at once."""

    def setUp(self):
        h.FigTestCase.setUp(self)
        self.up = StreamingUpstream(self.pki.server_context("good"))
        self.addCleanup(self.up.close)
        tls = {"cert_file": self.pki.path("good.pem"), "key_file": self.pki.path("good.key")}
        self.d = self.daemon({"APIGW_A_URL": self.up.url()}, config={
            "workers": 1, "listen": [{"address": "127.0.0.1", "port": 0, "tls": tls}],
            "upstream_tls": {"ca_file": self.pki.path("ca.pem")},
            "limits": {"body_bytes": GIB}})

    def tls_connect(self):
        raw = socket.create_connection(("127.0.0.1", self.d.port), timeout=30)
        s = self.pki.client_context().wrap_socket(raw, server_hostname="localhost")
        self.addCleanup(s.close)
        return s

    def test_download_and_upload_over_tls_both_sides(self):
        size = 64 * MIB + 7
        conn = http.client.HTTPSConnection("localhost", self.d.port, timeout=60, context=self.pki.client_context())
        conn.request("GET", "/download?size=%d" % size)
        resp = conn.getresponse()
        digest, total = hashlib.sha256(), 0
        while True:
            data = resp.read(MIB)
            if not data:
                break
            digest.update(data)
            total += len(data)
        self.assertEqual((resp.status, total, digest.hexdigest()), (200, size, expected_sha256(size)))
        conn.putrequest("POST", "/upload", skip_accept_encoding=True)
        conn.putheader("Content-Length", str(size))
        conn.endheaders()
        for piece in body_pieces(size):
            conn.send(piece)
        resp = conn.getresponse()
        self.assertEqual(json.loads(resp.read()), {"sha256": expected_sha256(size), "bytes": size})

    def test_websocket_over_tls_both_sides(self):
        s = self.tls_connect()
        key = base64.b64encode(os.urandom(16))
        s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % key)
        f = s.makefile("rb")
        self.assertTrue(f.readline().startswith(b"HTTP/1.1 101"))
        while f.readline() not in (b"\r\n", b""):
            pass
        blob = os.urandom(100 * KIB)
        # Both directions busy at once through both TLS layers: all frames go out before
        # any echo is read, so figshift relays the upstream's first echoes while the last
        # frames still come in. (One thread: an ssl.SSLSocket must not be read and
        # written from two threads at once; 400 KiB fit in the socket buffers.)
        s.sendall(b"".join(ws_frame(0x2, blob[i:], mask=True) for i in range(4)))
        for i in range(4):
            self.assertEqual(ws_read_frame(f), (0x2, blob[i:]))
        s.sendall(ws_frame(0x8, struct.pack("!H", 1000), mask=True))
        self.assertEqual(ws_read_frame(f)[0], 0x8)
        self.assertTrue(self.up.tunnel_closed.wait(5))


if __name__ == "__main__":
    unittest.main(verbosity=2)
