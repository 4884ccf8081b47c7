"""The TLS record path (src/proxy/tls_stream.*, issue #19): idle kept-alive TLS
connections give their buffers back, a connection that waited idle without
them still serves its next request, requests pipelined into one TLS write (and
so into one socket read) are all answered, records split across many TCP
segments are reassembled, and a client that ends with close_notify is closed
cleanly. TLS to upstreams through the same stream is covered by
test_upstream_failures.py and test_streaming.py."""

import os
import socket
import ssl
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import basic, bucket_of  # noqa: E402

MIGRATED = "polygenelubricants"  # bucket 0: migrated at split 50
assert bucket_of(MIGRATED) == 0

IDLE_CONNECTIONS = 300


def rss_kb(pid: int) -> int:
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


def request_bytes(path: str, close: bool = False) -> bytes:
    return ("GET %s HTTP/1.1\r\nHost: localhost\r\nAuthorization: %s\r\n%s\r\n"
            % (path, basic(MIGRATED), "Connection: close\r\n" if close else "")).encode()


def split_responses(data: bytes) -> tuple[list[bytes], bytes]:
    """The complete responses at the start of `data` (Content-Length framed, as
    the test upstreams send) and what follows them."""
    out = []
    while (head_end := data.find(b"\r\n\r\n")) >= 0:
        length = 0
        for line in data[:head_end].decode("latin-1").split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        end = head_end + 4 + length
        if len(data) < end:
            break
        out.append(data[:end])
        data = data[end:]
    return out, data


def read_responses(tls: ssl.SSLSocket, count: int) -> list[bytes]:
    data, out = b"", []
    while len(out) < count:
        chunk = tls.recv(65536)
        if not chunk:
            raise AssertionError("connection closed after %d of %d responses" % (len(out), count))
        done, data = split_responses(data + chunk)
        out += done
    return out


class TlsStreamTest(h.UpstreamsMixin, h.PkiMixin, h.FigTestCase):
    def setUp(self):
        super().setUp()
        tls = {"cert_file": self.pki.path("good.pem"), "key_file": self.pki.path("good.key")}
        self.d = self.daemon(self.migration_store(50), {
            "listen": [{"address": "127.0.0.1", "port": 0, "tls": tls}],
            "limits": {"max_connections": 2000}})
        h.eventually(lambda: len(self.d.ports) == 1, message="the TLS listener logged")
        self.port = self.d.ports[0]
        self.ctx = self.pki.client_context()

    def connect(self) -> ssl.SSLSocket:
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=h.SOCKET_TIMEOUT)
        tls = self.ctx.wrap_socket(raw, server_hostname="localhost")
        self.addCleanup(tls.close)
        return tls

    def assert_b1(self, response: bytes, path: str):
        self.assertTrue(response.startswith(b"HTTP/1.1 200 "), response[:200])
        self.assertIn(('"path": "%s"' % path).encode(), response.replace(b'":"', b'": "'))

    @unittest.skipIf(h.sanitized_binary(), "ASan's quarantine and shadow memory hide what is freed")
    def test_idle_tls_connections_hold_no_buffers(self):
        # Warm-up: the allocator's arenas and the worker's pools exist before the baseline.
        warm = self.connect()
        warm.sendall(request_bytes("/orders/0"))
        read_responses(warm, 1)
        before = rss_kb(self.d.proc.pid)
        conns = []
        for i in range(IDLE_CONNECTIONS):
            tls = self.connect()
            tls.sendall(request_bytes("/orders/%d" % i))
            self.assert_b1(read_responses(tls, 1)[0], "/v2/orders/%d" % i)
            conns.append(tls)
        time.sleep(1.5)  # past park_idle_after: every connection waits without buffers
        per_connection = (rss_kb(self.d.proc.pid) - before) * 1024 / IDLE_CONNECTIONS
        # Asio's ssl::stream held ~72 KiB per connection (a BIO pair and two
        # 17 KiB record buffers); the SSL object and the session are ~15 KiB.
        self.assertLess(per_connection, 32 * 1024,
                        "%.0f bytes per idle TLS connection" % per_connection)
        for i, tls in enumerate(conns[:20]):  # and they all still work
            tls.sendall(request_bytes("/orders/again%d" % i))
            self.assert_b1(read_responses(tls, 1)[0], "/v2/orders/again%d" % i)

    def test_request_after_an_idle_wait_without_buffers(self):
        tls = self.connect()
        for i in range(3):
            tls.sendall(request_bytes("/orders/%d" % i))
            self.assert_b1(read_responses(tls, 1)[0], "/v2/orders/%d" % i)
            time.sleep(1.3)  # parked between requests: buffers given back, then a wait

    def test_pipelined_requests_in_one_record_all_answered(self):
        tls = self.connect()
        # One TLS write: one record, one socket read on the proxy's side; the
        # second and third requests wait decrypted while the first is proxied.
        tls.sendall(b"".join(request_bytes("/orders/p%d" % i) for i in range(3)))
        for i, response in enumerate(read_responses(tls, 3)):
            self.assert_b1(response, "/v2/orders/p%d" % i)
        # and again after the connection went idle in between
        time.sleep(1.3)
        tls.sendall(request_bytes("/orders/p3") + request_bytes("/orders/p4"))
        for i, response in enumerate(read_responses(tls, 2)):
            self.assert_b1(response, "/v2/orders/p%d" % (i + 3))

    def test_records_split_into_single_bytes(self):
        # A memory BIO pair lets the client's records arrive in any pieces; so
        # must our BIO: one byte per TCP segment (TCP_NODELAY), a partial
        # record waiting inside OpenSSL between reads.
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=h.SOCKET_TIMEOUT)
        self.addCleanup(raw.close)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = self.ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")

        def send_all_bytewise():
            data = outgoing.read()
            for i in range(len(data)):
                raw.sendall(data[i:i + 1])

        def pump_until(action):
            while True:
                try:
                    return action()
                except ssl.SSLWantReadError:
                    send_all_bytewise()
                    chunk = raw.recv(65536)
                    if not chunk:
                        raise AssertionError("closed by the proxy")
                    incoming.write(chunk)

        pump_until(tls.do_handshake)
        send_all_bytewise()
        tls.write(request_bytes("/orders/bytewise"))
        send_all_bytewise()
        data, done = b"", []
        while not done:
            done, data = split_responses(data + pump_until(lambda: tls.read(65536)))
        self.assert_b1(done[0], "/v2/orders/bytewise")

    def test_close_notify_from_client_ends_the_connection(self):
        tls = self.connect()
        tls.sendall(request_bytes("/orders/1"))
        self.assert_b1(read_responses(tls, 1)[0], "/v2/orders/1")
        raw = tls.unwrap()  # our close_notify, then the proxy's
        self.assertEqual(raw.recv(1), b"", "the proxy must close after the client's close_notify")

    def test_connection_close_ends_with_close_notify(self):
        tls = self.connect()
        tls.sendall(request_bytes("/orders/1", close=True))
        self.assert_b1(read_responses(tls, 1)[0], "/v2/orders/1")
        # A clean TLS end: the proxy's close_notify reads as EOF (b""), not an
        # SSLEOFError, which is what a bare TCP close would give.
        self.assertEqual(tls.recv(1), b"")


if __name__ == "__main__":
    unittest.main(verbosity=2)
