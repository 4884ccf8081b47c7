"""The TLS record path (src/proxy/tls_stream.*, issue #19): a connection that
waited idle without its buffers still serves its next request, requests pipelined in separate records
into one socket read are all answered (the later ones wait inside the TLS
layer), records split across many TCP segments are reassembled, and both ends
of a connection end with close_notify. TLS to upstreams through the same stream is covered by
test_upstream_failures.py and test_streaming.py, idle memory by test_idle_memory.py."""

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


def connect_tls(test: unittest.TestCase, port: int, ctx: ssl.SSLContext) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", port), timeout=h.SOCKET_TIMEOUT)
    tls = ctx.wrap_socket(raw, server_hostname="localhost")
    test.addCleanup(tls.close)
    return tls


def assert_b1(test: unittest.TestCase, response: bytes, path: str):
    """A 200 from the test upstream B1, which saw `path`."""
    test.assertTrue(response.startswith(b"HTTP/1.1 200 "), response[:200])
    test.assertIn(('"path": "%s"' % path).encode(), response.replace(b'":"', b'": "'))


class BioExchange:
    """A TLS client over memory BIOs: the test decides how its records reach
    the socket (all at once, or one byte per segment)."""

    def __init__(self, raw, tls, incoming, outgoing, bytewise=False):
        self.raw, self.tls, self.incoming, self.outgoing = raw, tls, incoming, outgoing
        self.bytewise = bytewise
        self.data = b""

    def flush(self):
        data = self.outgoing.read()
        if not self.bytewise:
            self.raw.sendall(data)
            return
        for i in range(len(data)):
            self.raw.sendall(data[i:i + 1])

    def until(self, action):
        while True:
            try:
                return action()
            except ssl.SSLWantReadError:
                self.flush()
                chunk = self.raw.recv(65536)
                if not chunk:
                    raise AssertionError("closed by the proxy")
                self.incoming.write(chunk)

    def handshake(self):
        self.until(self.tls.do_handshake)
        self.flush()  # our Finished

    def responses(self, count):
        out = []
        while len(out) < count:
            done, self.data = split_responses(self.data + self.until(lambda: self.tls.read(65536)))
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
        return connect_tls(self, self.port, self.ctx)

    def assert_b1(self, response: bytes, path: str):
        assert_b1(self, response, path)

    def test_request_after_an_idle_wait_without_buffers(self):
        tls = self.connect()
        for i in range(3):
            tls.sendall(request_bytes("/orders/%d" % i))
            self.assert_b1(read_responses(tls, 1)[0], "/v2/orders/%d" % i)
            time.sleep(1.3)  # parked between requests: buffers given back, then a wait

    def test_pipelined_requests_in_separate_records_all_answered(self):
        # Three requests, each its own TLS record, all in one TCP send to a
        # connection that is not hot: the proxy's first socket read takes all
        # three records, its first TLS read decrypts only the first. The other
        # two wait inside the TLS layer, where a wait for socket readability
        # would not see them (has_buffered_input): they must still be answered.
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=h.SOCKET_TIMEOUT)
        self.addCleanup(raw.close)
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = self.ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
        exchange = BioExchange(raw, tls, incoming, outgoing)
        exchange.handshake()
        for round_no in range(2):
            for i in range(3):
                tls.write(request_bytes("/orders/r%dp%d" % (round_no, i)))
            exchange.flush()
            for i, response in enumerate(exchange.responses(3)):
                self.assert_b1(response, "/v2/orders/r%dp%d" % (round_no, i))
            time.sleep(1.3)  # idle past park_idle_after between the rounds

    def test_records_split_into_single_bytes(self):
        # A memory BIO pair lets the client's records arrive in any pieces; so
        # must our BIO: one byte per TCP segment (TCP_NODELAY), a partial
        # record waiting inside OpenSSL between reads.
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=h.SOCKET_TIMEOUT)
        self.addCleanup(raw.close)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = self.ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
        exchange = BioExchange(raw, tls, incoming, outgoing, bytewise=True)
        exchange.handshake()
        tls.write(request_bytes("/orders/bytewise"))
        exchange.flush()
        self.assert_b1(exchange.responses(1)[0], "/v2/orders/bytewise")

    def test_responses_larger_than_the_socket_takes_at_once(self):
        # Responses read whole (buffer_response_bytes raised to 4 MiB) go out
        # by the synchronous fast path, 64 KiB of plaintext at a time. A client
        # that pipelines a 3 MB response and a small one, then waits before it
        # reads, fills the socket (~1.3 MB on loopback): the rest of the big
        # one follows asynchronously, behind the ciphertext already waiting,
        # and the small one after it. (Ciphertext left alone by the fast path
        # is unit-tested in tests/unit/proxy/tls_stream_test.cpp, where the
        # send buffer can be made small.)
        tls_files = {"cert_file": self.pki.path("good.pem"), "key_file": self.pki.path("good.key")}
        d = self.daemon(self.migration_store(50), {
            "listen": [{"address": "127.0.0.1", "port": 0, "tls": tls_files}],
            "limits": {"buffer_response_bytes": 4 << 20}})
        h.eventually(lambda: len(d.ports) == 1, message="the TLS listener logged")
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        raw.settimeout(h.SOCKET_TIMEOUT)
        raw.connect(("127.0.0.1", d.ports[0]))
        tls = self.ctx.wrap_socket(raw, server_hostname="localhost")
        self.addCleanup(tls.close)
        for round_no in range(2):  # the connection stays usable
            tls.sendall(request_bytes("/orders/big%d?__size=3000000" % round_no)
                        + request_bytes("/orders/small%d?__size=1000" % round_no))
            time.sleep(1.0)
            big, small = read_responses(tls, 2)
            for response, size in ((big, 3000000), (small, 1000)):
                self.assertTrue(response.startswith(b"HTTP/1.1 200 "), response[:200])
                self.assertEqual(response[response.index(b"\r\n\r\n") + 4:], h.pattern_bytes(size))

    def test_close_notify_from_client_ends_the_connection(self):
        tls = self.connect()
        tls.sendall(request_bytes("/orders/1"))
        self.assert_b1(read_responses(tls, 1)[0], "/v2/orders/1")
        raw = tls.unwrap()  # our close_notify, then the proxy's
        self.assertEqual(raw.recv(1), b"", "the proxy must close after the client's close_notify")

    def test_connection_close_ends_with_close_notify(self):
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=h.SOCKET_TIMEOUT)
        # A bare TCP close must raise here, not read as EOF.
        tls = self.ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)
        self.addCleanup(tls.close)
        tls.sendall(request_bytes("/orders/1", close=True))
        self.assert_b1(read_responses(tls, 1)[0], "/v2/orders/1")
        # A clean TLS end: the proxy's close_notify reads as EOF (b""), not an
        # SSLEOFError, which is what a bare TCP close would give.
        self.assertEqual(tls.recv(1), b"")


if __name__ == "__main__":
    unittest.main(verbosity=2)
