"""Self-test of the integration harness: needs no figshift binary."""

import http.client
import os
import socket
import ssl
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402


class HarnessSelfTest(unittest.TestCase):
    def test_reference_table(self):
        for user, (hc, bucket) in h.REFERENCE.items():
            self.assertEqual(h.java_hash(user), hc, user)
            self.assertEqual(h.bucket_of(user), bucket, user)

    def test_hash_properties(self):
        # the emoji is one code point but two UTF-16 code units
        self.assertEqual(len("\U0001F600".encode("utf-16-le")), 4)
        # salt is a prefix of the hashed text
        self.assertEqual(h.bucket_of("lo", salt="hel"), h.bucket_of("hello"))
        # every extra user yields a bucket in range, and they spread over the range
        buckets = {h.bucket_of(u) for u in h.EXTRA_USERS}
        self.assertTrue(all(0 <= b < 100 for b in buckets))
        self.assertGreater(len(buckets), 20)

    def test_python_utf8_replacement_matches_whatwg(self):
        # test_routing relies on Python's decoder replacing per maximal subpart, like WHATWG / Node
        cases = {
            b"\xff": "\ufffd",
            b"ab\xe2\x82": "ab\ufffd",              # truncated 3-byte sequence: one U+FFFD
            b"\xed\xa0\x80x": "\ufffd\ufffd\ufffdx",  # encoded surrogate: one per byte
            b"\xf0\x9f\x98": "\ufffd",               # truncated 4-byte sequence
            b"\xc0\xaf": "\ufffd\ufffd",             # overlong
            b"\xf4\x90\x80\x80": "\ufffd" * 4,       # above U+10FFFF
        }
        for raw, text in cases.items():
            self.assertEqual(raw.decode("utf-8", errors="replace"), text, raw)

    def test_basic(self):
        self.assertEqual(h.basic("hello", "pw"), "Basic aGVsbG86cHc=")

    def test_echo_upstream_keepalive_and_body(self):
        with h.start_upstream("A") as u:
            conn = http.client.HTTPConnection("127.0.0.1", u.port, timeout=5)
            r1 = h.read_response(conn, "GET", "/x?y=1", {"X-Test": "1"})
            r2 = h.read_response(conn, "POST", "/p", {}, b"a" * 1000)
            conn.close()
            self.assertEqual(r1.echo["path"], "/x?y=1")
            self.assertEqual(r1.echo["headers"]["x-test"], "1")
            self.assertEqual(r2.echo["body_len"], 1000)
            self.assertEqual(r2.echo["method"], "POST")
            self.assertEqual(u.connections, 1, "keep-alive should reuse one connection")
            self.assertEqual(h.request(u.port, "GET", "//a//b").echo["path"], "//a//b")
            # chunked request body
            raw = h.raw_exchange(u.port, b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                                         b"5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n")
            self.assertEqual(raw.status, 200, raw)
            self.assertIn(b'"body_len": 8', raw.data)

    def test_behaviours(self):
        with h.start_upstream("A") as u:
            u.delay = 0.3
            t0 = time.time()
            r = h.request(u.port, "GET", "/")
            self.assertGreaterEqual(time.time() - t0, 0.29)
            self.assertEqual(r.status, 200)
            u.delay = 0
            r = h.request(u.port, "GET", "/?__delay_ms=200")
            self.assertGreaterEqual(r.elapsed, 0.19)
            u.behaviour = "close_mid"
            with self.assertRaises((http.client.IncompleteRead, http.client.RemoteDisconnected, ConnectionError)):
                h.request(u.port, "GET", "/")
            u.behaviour = "close"
            with self.assertRaises((http.client.RemoteDisconnected, ConnectionError)):
                h.request(u.port, "GET", "/")
        with h.HangServer() as hang:
            with self.assertRaises(socket.timeout):
                h.request(hang.port, "GET", "/", timeout=0.3)

    def test_canned_upstream(self):
        with h.canned_upstream(b"NOT HTTP\r\n\r\n") as srv:
            r = h.raw_exchange(srv.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", read_until_close=True)
            self.assertEqual((r.data, r.closed, r.timed_out), (b"NOT HTTP\r\n\r\n", True, False), r)
            # the same bytes on every connection
            self.assertEqual(h.raw_exchange(srv.port, b"x", read_until_close=True).data, b"NOT HTTP\r\n\r\n")
            self.assertEqual(srv.accepted, 2)
        with h.canned_upstream(reset=True) as srv:
            r = h.raw_exchange(srv.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", read_until_close=True)
            self.assertEqual(r.data, b"", r)
            self.assertIn("reset", r.error or "", "an RST, not an orderly close: %r" % r)

    def test_migration_store(self):
        self.assertEqual(h.migration_store("http://a", "http://b1", split=7),
                         {"APIGW_A_URL": "http://a", "APIGW_B1_URL": "http://b1",
                          "route:/orders": "B1 /v2/orders", "traffic-split": "7"})
        with h.start_upstream("B2") as b2:
            kv = h.migration_store("http://a", "http://b1", b2, 100, "/carts", **{"hash-salt": "s", "traffic-split": "9"})
            self.assertEqual(kv, {"APIGW_A_URL": "http://a", "APIGW_B1_URL": "http://b1",
                                  "APIGW_B2_URL": "http://127.0.0.1:%d" % b2.port, "route:/orders": "B1 /v2/orders",
                                  "route:/carts": "B2", "traffic-split": "9", "hash-salt": "s"})
        self.assertNotIn("route:/users", h.migration_store("http://a", "http://b1", "http://b2", b2_route=None))

    def test_closed_port(self):
        port = h.closed_port()
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2)

    def test_tls_upstreams(self):
        pki = h.Pki()
        try:
            client = pki.client_context()
            with h.start_upstream("B1", pki.server_context("good"), dual_stack=True) as u:
                for host in ("localhost", "127.0.0.1"):
                    conn = http.client.HTTPSConnection(host, u.port, context=client, timeout=5)
                    r = h.read_response(conn, "GET", "/tls")
                    conn.close()
                    self.assertEqual(r.echo["upstream"], "B1")
            with h.start_upstream("W", pki.server_context("wrong")) as u:
                conn = http.client.HTTPSConnection("localhost", u.port, context=client, timeout=5)
                with self.assertRaises(ssl.SSLCertVerificationError):
                    conn.request("GET", "/")
                conn.close()
                # the CA did sign it: with the right name it verifies
                ctx = pki.client_context()
                ctx.check_hostname = False
                conn = http.client.HTTPSConnection("localhost", u.port, context=ctx, timeout=5)
                self.assertEqual(h.read_response(conn, "GET", "/").status, 200)
                conn.close()
            with h.start_upstream("S", pki.server_context("self")) as u:
                conn = http.client.HTTPSConnection("localhost", u.port, context=client, timeout=5)
                with self.assertRaises(ssl.SSLCertVerificationError):
                    conn.request("GET", "/")
                conn.close()
            r = subprocess.run(["openssl", "verify", "-CAfile", pki.path("ca.pem"), pki.path("good.pem")],
                               capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        finally:
            pki.cleanup()

    def test_raw_exchange_against_echo(self):
        with h.start_upstream("A") as u:
            r = h.raw_exchange(u.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertEqual(r.status, 200)
            self.assertFalse(r.timed_out)
            # Python answers a bad version HTTP/0.9-style (no status line), then closes
            r = h.raw_exchange(u.port, b"GET / FOO/1.1\r\n\r\n")
            self.assertTrue(r.closed, r)
            self.assertIsNone(r.status)


if __name__ == "__main__":
    unittest.main()
