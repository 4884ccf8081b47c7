"""The optional TLS traffic listener (listen[].tls): HTTPS routed exactly like
HTTP, TLS 1.2 and 1.3 accepted, TLS 1.0 and 1.1 refused, plain HTTP on the TLS
port answered with a 400 and never forwarded, a stalled handshake closed at
the header timeout, bad certificate files refused at start-up, and sessions
resumable unless listen[].tls.session_tickets is false."""

import http.client
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
import unittest
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import basic, bucket_of  # noqa: E402

MIGRATED = "polygenelubricants"  # bucket 0: migrated at split 50
LEGACY = "hello"                 # bucket 70: legacy at split 50
assert bucket_of(MIGRATED) == 0 and bucket_of(LEGACY) == 70

HEADER_TIMEOUT_MS = 1000


def client_context(pki, version=None) -> ssl.SSLContext:
    """Verifies figshift's certificate against the test CA; `version` pins one TLS version."""
    ctx = pki.client_context()
    if version is not None:
        ctx.minimum_version = ctx.maximum_version = version
    return ctx


def legacy_client_context(version) -> ssl.SSLContext:
    """A client that offers only TLS 1.0 or 1.1 (OpenSSL 3 needs security level 0 for them)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.minimum_version = ctx.maximum_version = version
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    return ctx


def handshake(port, ctx, server_hostname="localhost"):
    """Connects and completes a TLS handshake; returns the negotiated version (raises on failure)."""
    with socket.create_connection(("127.0.0.1", port), timeout=h.SOCKET_TIMEOUT) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_hostname) as tls:
            return tls.version()


def https_request(port, ctx, method="GET", path="/", headers=None, body=None) -> h.Response:
    conn = http.client.HTTPSConnection("localhost", port, timeout=h.SOCKET_TIMEOUT, context=ctx)
    try:
        return h.read_response(conn, method, path, headers, body)
    finally:
        conn.close()


def request_on_session(port, ctx, session=None):
    """One request on a new TLS connection offering `session` for resumption.
    Returns (the connection's session, whether `session` was resumed). The
    response is read first: a TLS 1.3 ticket arrives after the handshake, so
    taking the session any earlier would miss it."""
    with socket.create_connection(("127.0.0.1", port), timeout=h.SOCKET_TIMEOUT) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost", session=session) as tls:
            tls.sendall(b"GET /resume HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := tls.recv(65536):
                data += chunk
            assert data.startswith(b"HTTP/1.1 200"), data[:100]
            return tls.session, tls.session_reused


def metric(daemon, name) -> float:
    text = daemon.admin_request("GET", "/metrics").body.decode()
    m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
    if not m:
        raise AssertionError("no %s in /metrics" % name)
    return float(m.group(1))


class TlsListenerTest(h.UpstreamsMixin, h.PkiMixin, h.FigTestCase):
    def setUp(self):
        super().setUp()
        store = self.migration_store(50)
        tls = {"cert_file": self.pki.path("good.pem"), "key_file": self.pki.path("good.key")}
        self.d = self.daemon(store, {
            "listen": [{"address": "127.0.0.1", "port": 0},
                       {"address": "127.0.0.1", "port": 0, "tls": tls}],
            "timeouts": {"client_header_ms": HEADER_TIMEOUT_MS}})
        h.eventually(lambda: len(self.d.ports) == 2, message="both listeners logged")
        self.plain_port, self.tls_port = self.d.ports
        self.assertTrue(any(("127.0.0.1:%d (TLS)" % self.tls_port) in line for line in self.d.lines),
                        "the TLS listener is not logged as TLS")

    def test_https_routes_like_http(self):
        ctx = client_context(self.pki)
        conn = http.client.HTTPSConnection("localhost", self.tls_port, timeout=h.SOCKET_TIMEOUT, context=ctx)
        try:  # several requests on one kept-alive TLS connection
            for i in range(3):
                r = h.read_response(conn, "GET", "/orders/%d?q=1" % i, {"Authorization": basic(MIGRATED)})
                self.assertRoutedTo(r, "B1", "/v2/orders/%d?q=1" % i)
                self.assertEqual(r.echo["headers"].get("x-forwarded-proto"), "https")
                r = h.read_response(conn, "GET", "/orders/%d" % i, {"Authorization": basic(LEGACY)})
                self.assertRoutedTo(r, "A", "/orders/%d" % i)
        finally:
            conn.close()
        r = https_request(self.tls_port, ctx, "POST", "/orders", {"Authorization": basic(MIGRATED)},
                          h.pattern_bytes(70000))
        self.assertRoutedTo(r, "B1", "/v2/orders")
        self.assertEqual(r.echo["body_len"], 70000)
        # the plain listener of the same daemon still speaks HTTP and says so upstream
        r = h.request(self.plain_port, "GET", "/orders/9", {"Authorization": basic(MIGRATED)})
        self.assertRoutedTo(r, "B1", "/v2/orders/9")
        self.assertEqual(r.echo["headers"].get("x-forwarded-proto"), "http")

    def test_tls_1_2_and_1_3_accepted(self):
        self.assertEqual(handshake(self.tls_port, client_context(self.pki, ssl.TLSVersion.TLSv1_2)), "TLSv1.2")
        self.assertEqual(handshake(self.tls_port, client_context(self.pki, ssl.TLSVersion.TLSv1_3)), "TLSv1.3")
        r = https_request(self.tls_port, client_context(self.pki, ssl.TLSVersion.TLSv1_2), "GET", "/x",
                          {"Authorization": basic(LEGACY)})
        self.assertRoutedTo(r, "A", "/x")

    def test_tls_1_0_and_1_1_refused(self):
        # A control server that allows them proves the client really offers these versions,
        # so a refusal below is figshift's doing.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            permissive = self.pki.server_context("good")
            permissive.minimum_version = ssl.TLSVersion.TLSv1
        permissive.set_ciphers("DEFAULT:@SECLEVEL=0")
        listener = socket.create_server(("127.0.0.1", 0))
        self.addCleanup(listener.close)

        def serve_handshakes():
            for _ in range(2):
                try:
                    conn, _ = listener.accept()
                    with permissive.wrap_socket(conn, server_side=True):
                        pass
                except (OSError, ssl.SSLError):
                    pass
        threading.Thread(target=serve_handshakes, daemon=True).start()

        for version, name in ((ssl.TLSVersion.TLSv1, "TLSv1"), (ssl.TLSVersion.TLSv1_1, "TLSv1.1")):
            ctx = legacy_client_context(version)
            self.assertEqual(handshake(listener.getsockname()[1], ctx), name,
                             "control: the client cannot speak %s at all" % name)
            with self.assertRaises(ssl.SSLError, msg="figshift accepted %s" % name) as caught:
                handshake(self.tls_port, ctx)
            self.assertIn("PROTOCOL_VERSION", str(caught.exception).upper(),
                          "%s: not refused for its protocol version: %s" % (name, caught.exception))
        self.assertEqual(self.a.requests + self.b1.requests, [], "a refused handshake reached an upstream")
        # still serving
        r = https_request(self.tls_port, client_context(self.pki), "GET", "/", {"Authorization": basic(LEGACY)})
        self.assertRoutedTo(r, "A", "/")

    def test_plain_http_on_tls_port_gets_400_and_is_never_forwarded(self):
        before = metric(self.d, "figshift_tls_handshake_failures_total")
        res = h.raw_exchange(self.tls_port, b"GET /orders/1 HTTP/1.1\r\nHost: x\r\nAuthorization: "
                             + basic(MIGRATED).encode() + b"\r\n\r\n", read_until_close=True)
        self.assertEqual(res.status, 400, res)
        self.assertTrue(res.closed, "connection left open after plain HTTP on the TLS port: %r" % res)
        body = res.data.split(b"\r\n\r\n", 1)[1]
        self.assertIn("TLS", json.loads(body)["error"])
        # garbage that is not HTTP either: closed, no answer
        res = h.raw_exchange(self.tls_port, b"\x00\x01 not tls, not http\r\n\r\n", read_until_close=True)
        self.assertTrue(res.closed, res)
        self.assertEqual(res.data, b"", res)
        self.assertEqual(self.a.requests + self.b1.requests, [], "a non-TLS request reached an upstream")
        h.eventually(lambda: metric(self.d, "figshift_tls_handshake_failures_total") >= before + 2,
                     message="both failed handshakes counted")
        r = https_request(self.tls_port, client_context(self.pki), "GET", "/orders/2",
                          {"Authorization": basic(MIGRATED)})
        self.assertRoutedTo(r, "B1", "/v2/orders/2")

    def test_stalled_handshake_closed_at_header_timeout(self):
        started = time.monotonic()
        res = h.raw_exchange(self.tls_port, b"", timeout=HEADER_TIMEOUT_MS / 1000 + 5, read_until_close=True)
        elapsed = time.monotonic() - started
        self.assertTrue(res.closed and not res.timed_out, "a silent TLS client was not closed: %r" % res)
        self.assertGreaterEqual(elapsed, HEADER_TIMEOUT_MS / 1000 * 0.8)
        self.assertLess(elapsed, HEADER_TIMEOUT_MS / 1000 + 4)

    def test_client_without_close_notify_is_harmless(self):
        # Close the TCP connection under an established TLS session, without close_notify,
        # between requests: the daemon counts no error and keeps serving.
        before = metric(self.d, "figshift_client_connection_errors_total")
        for _ in range(3):
            raw = socket.create_connection(("127.0.0.1", self.tls_port), timeout=h.SOCKET_TIMEOUT)
            tls = client_context(self.pki).wrap_socket(raw, server_hostname="localhost")
            tls.sendall(b"GET /a HTTP/1.1\r\nHost: localhost\r\nAuthorization: "
                        + basic(LEGACY).encode() + b"\r\n\r\n")
            data = b""
            while b"\r\n\r\n" not in data:
                data += tls.recv(65536)
            self.assertTrue(data.startswith(b"HTTP/1.1 200"), data[:100])
            raw_fd = tls.detach()  # drop TLS without close_notify
            socket.socket(fileno=raw_fd).close()
        time.sleep(0.3)
        self.assertEqual(metric(self.d, "figshift_client_connection_errors_total"), before)


class TlsSessionResumptionTest(h.UpstreamsMixin, h.PkiMixin, h.FigTestCase):
    """One daemon, two TLS listeners: session tickets by default, and none."""

    def setUp(self):
        super().setUp()
        tls = {"cert_file": self.pki.path("good.pem"), "key_file": self.pki.path("good.key")}
        self.d = self.daemon(self.migration_store(50), {
            "listen": [{"address": "127.0.0.1", "port": 0, "tls": tls},
                       {"address": "127.0.0.1", "port": 0, "tls": dict(tls, session_tickets=False)}]})
        h.eventually(lambda: len(self.d.ports) == 2, message="both listeners logged")
        self.default_port, self.no_tickets_port = self.d.ports

    def reconnect(self, port, version):
        """(ticket in the first connection's session, second connection resumed it)."""
        ctx = client_context(self.pki, version)
        first, reused = request_on_session(port, ctx)
        self.assertFalse(reused)
        _, reused = request_on_session(port, ctx, first)
        return first.has_ticket, reused

    def test_sessions_resume_by_default(self):
        for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
            with self.subTest(version=version.name):
                self.assertEqual(self.reconnect(self.default_port, version), (True, True))

    def test_no_resumption_without_session_tickets(self):
        # TLS 1.2 also covers the session cache: without a ticket, a 1.2 client
        # offers the session ID, which only a server-side cache could resume.
        for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
            with self.subTest(version=version.name):
                self.assertEqual(self.reconnect(self.no_tickets_port, version), (False, False))


class TlsListenerConfigTest(h.PkiMixin, h.FigTestCase):
    def config_path(self, tls) -> str:
        """A config with one TLS listener (written, not started)."""
        d = h.Daemon({"APIGW_A_URL": "http://127.0.0.1:9"},
                     {"listen": [{"address": "127.0.0.1", "port": 0, "tls": tls}]})
        self.addCleanup(shutil.rmtree, d.dir, True)
        return d.config_path

    def run_cli(self, command, tls):
        return subprocess.run([h.figshift_bin(), command, "--config", self.config_path(tls)],
                              capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)

    def check_config(self, tls, expect_rc, expect_text):
        for command in ("check-config", "serve"):
            r = self.run_cli(command, tls)
            self.assertEqual(r.returncode, expect_rc[command], "%s: %s" % (command, r.stdout + r.stderr))
            self.assertIn(expect_text, r.stdout + r.stderr, command)

    def test_good_files_pass_check_config(self):
        r = self.run_cli("check-config", {"cert_file": self.pki.path("good.pem"),
                                          "key_file": self.pki.path("good.key")})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("1 TLS", r.stdout)

    def test_bad_files_refused_naming_the_field(self):
        rc = {"check-config": 1, "serve": 2}
        self.check_config({"cert_file": self.pki.path("missing.pem"), "key_file": self.pki.path("good.key")},
                          rc, "listen[0].tls.cert_file")
        self.check_config({"cert_file": self.pki.path("good.pem"), "key_file": self.pki.path("missing.key")},
                          rc, "listen[0].tls.key_file")
        self.check_config({"cert_file": self.pki.path("good.pem"), "key_file": self.pki.path("wrong.key")},
                          rc, "key values mismatch")
        self.check_config({"cert_file": self.pki.path("good.key"), "key_file": self.pki.path("good.key")},
                          rc, "listen[0].tls.cert_file")

    def test_incomplete_tls_section_refused(self):
        rc = {"check-config": 1, "serve": 2}
        self.check_config({"cert_file": self.pki.path("good.pem")}, rc, "listen[0].tls.key_file: is required")
        self.check_config({"cert_file": self.pki.path("good.pem"), "key_file": self.pki.path("good.key"),
                           "min_version": "1.0"}, rc, "listen[0].tls.min_version: unknown key")

    def test_non_boolean_session_tickets_refused(self):
        rc = {"check-config": 1, "serve": 2}
        self.check_config({"cert_file": self.pki.path("good.pem"), "key_file": self.pki.path("good.key"),
                           "session_tickets": "off"}, rc, "listen[0].tls.session_tickets: must be true or false")


if __name__ == "__main__":
    unittest.main(verbosity=2)
