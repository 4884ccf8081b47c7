"""What an idle kept-alive connection costs (issue #19; the benchmark's idle
extra measures it against nginx and HAProxy): after its response a connection
waits for its next request holding no buffers and no per-request state, over
plain HTTP and over TLS, and still serves that request afterwards. RSS growth
per connection is bounded well above what the build needs and well below
what a regression to held buffers would cost."""

import os
import resource
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from test_tls_stream import (assert_b1, connect_tls, read_responses, request_bytes,  # noqa: E402
                             split_responses)

PLAIN_CONNECTIONS = 3000
TLS_CONNECTIONS = 300


def rss_kb(pid: int) -> int:
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)


def read_plain_response(sock: socket.socket) -> bytes:
    data, done = b"", []
    while not done:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError("connection closed before its response")
        done, data = split_responses(data + chunk)
    return done[0]


def enough_files(count: int) -> bool:
    """Raises this process's open-file limit (the daemon inherits it) to fit
    `count` connections on both ends, if the hard limit allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 2 * count + 512
    if soft < want and (hard == resource.RLIM_INFINITY or hard >= want):
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= want


@unittest.skipIf(h.sanitized_binary(), "ASan's quarantine and shadow memory hide what is freed")
@unittest.skipUnless(enough_files(PLAIN_CONNECTIONS), "the open-file limit is too low")
class IdleMemoryTest(h.UpstreamsMixin, h.PkiMixin, h.FigTestCase):
    def setUp(self):
        super().setUp()
        tls = {"cert_file": self.pki.path("good.pem"), "key_file": self.pki.path("good.key")}
        self.d = self.daemon(self.migration_store(50), {
            "listen": [{"address": "127.0.0.1", "port": 0},
                       {"address": "127.0.0.1", "port": 0, "tls": tls}],
            "limits": {"max_connections": 5000}})
        h.eventually(lambda: len(self.d.ports) == 2, message="both listeners logged")
        self.plain_port, self.tls_port = self.d.ports
        self.ctx = self.pki.client_context()

    def connect_plain(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.plain_port), timeout=h.SOCKET_TIMEOUT)
        self.addCleanup(sock.close)
        return sock

    def connect_tls(self):
        return connect_tls(self, self.tls_port, self.ctx)

    def assert_b1(self, response: bytes, path: str):
        assert_b1(self, response, path)

    def per_idle_connection(self, connect, send, read, count) -> tuple[float, list]:
        # Warm-up: the allocator's arenas and the worker's pools exist before the baseline.
        warm = connect()
        send(warm, request_bytes("/orders/warm"))
        read(warm)
        before = rss_kb(self.d.proc.pid)
        conns = []
        for i in range(count):
            conn = connect()
            send(conn, request_bytes("/orders/%d" % i))
            self.assert_b1(read(conn), "/v2/orders/%d" % i)
            conns.append(conn)
        time.sleep(0.5)  # each waits without buffers after its first response (it was not hot)
        return (rss_kb(self.d.proc.pid) - before) * 1024 / count, conns

    def test_idle_plain_connections_hold_no_buffers_or_request_state(self):
        per_connection, conns = self.per_idle_connection(
            self.connect_plain, socket.socket.sendall, read_plain_response, PLAIN_CONNECTIONS)
        # ~660-710 bytes measured (the session, the socket's reactor state,
        # the wait); 900 while an idle session kept the routed request's state,
        # several KiB if it kept a request's buffers.
        self.assertLess(per_connection, 800, "%.0f bytes per idle connection" % per_connection)
        for i, sock in enumerate(conns[:20]):  # and they all still work
            sock.sendall(request_bytes("/orders/again%d" % i))
            self.assert_b1(read_plain_response(sock), "/v2/orders/again%d" % i)

    def test_idle_tls_connections_hold_no_buffers(self):
        per_connection, conns = self.per_idle_connection(
            self.connect_tls, lambda tls, data: tls.sendall(data),
            lambda tls: read_responses(tls, 1)[0], TLS_CONNECTIONS)
        # Asio's ssl::stream held ~73 KiB per connection (a BIO pair and two
        # 17 KiB record buffers); the SSL object and its session are ~15 KiB.
        self.assertLess(per_connection, 32 * 1024,
                        "%.0f bytes per idle TLS connection" % per_connection)
        for i, tls in enumerate(conns[:20]):
            tls.sendall(request_bytes("/orders/again%d" % i))
            self.assert_b1(read_responses(tls, 1)[0], "/v2/orders/again%d" % i)


if __name__ == "__main__":
    unittest.main(verbosity=2)
