"""Limits, malformed requests over raw sockets, slow clients, graceful shutdown."""

import http.client
import os
import signal
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import basic, bucket_of  # noqa: E402

MIGRATED = "polygenelubricants"  # bucket 0
assert bucket_of(MIGRATED) == 0

HOST = b"Host: api.example.com\r\n"

MALFORMED = {
    "garbage request line": b"GARBAGE\r\n\r\n",
    "garbage words": b"THIS IS NOT HTTP AT ALL\r\n\r\n",
    "bad version": b"GET / HTTP/9.9\r\n" + HOST + b"\r\n",
    "bad version token": b"GET / HTTX/1.1\r\n" + HOST + b"\r\n",
    "bad method characters": b"G(E)T / HTTP/1.1\r\n" + HOST + b"\r\n",
    "bad header line": b"GET / HTTP/1.1\r\n" + HOST + b"this is not a header\r\n\r\n",
    "space before colon": b"GET / HTTP/1.1\r\n" + HOST + b"X-Bad : value\r\n\r\n",
    "empty header name": b"GET / HTTP/1.1\r\n" + HOST + b": value\r\n\r\n",
    "content-length and transfer-encoding": (
        b"POST /orders HTTP/1.1\r\n" + HOST + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\n\r\n"),
    "two different content-lengths": (
        b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"),
    "negative content-length": b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: -5\r\n\r\nhello",
    "non-numeric content-length": b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 5x\r\n\r\nhello",
    "huge content-length": b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 99999999999999999999999\r\n\r\nx",
    "invalid chunk size": (
        b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\nZZZ\r\nabc\r\n0\r\n\r\n"),
    "chunk size overflow": (
        b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFFFFFF\r\nabc\r\n0\r\n\r\n"),
    "unknown transfer-encoding": (
        b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: gzip\r\n\r\nabc"),
    "NUL in header value": b"GET / HTTP/1.1\r\n" + HOST + b"X-A: a\x00b\r\n\r\n",
    "NUL in request line": b"GET /a\x00b HTTP/1.1\r\n" + HOST + b"\r\n",
    "CR inside header value": b"GET / HTTP/1.1\r\n" + HOST + b"X-A: a\rb\r\n\r\n",
    "absurdly long request line": b"GET /" + b"a" * 200_000 + b" HTTP/1.1\r\n" + HOST + b"\r\n",
    "absurdly many headers": b"GET / HTTP/1.1\r\n" + HOST + b"".join(b"X-H%d: v\r\n" % i for i in range(20000))
                             + b"\r\n",
    "bare LF garbage": b"\n\n\n\nGET\n\x01\x02\x03\n\n",
    "binary noise": bytes(range(256)) * 4,
    "TLS client hello to a plain port": bytes.fromhex("160301002e0100002a0303") + b"\x00" * 40,
    "HTTP/2 preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    "CONNECT": b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
    "asterisk target": b"GET * HTTP/1.1\r\n" + HOST + b"\r\n",
    "missing Host in HTTP/1.1": b"GET / HTTP/1.1\r\n\r\n",
    "two Host headers": b"GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n",
}

# RFC 9110 answers outside 4xx that are just as right for these
ALSO_ALLOWED = {
    "bad version": {505},
    "unknown transfer-encoding": {501},
}


class LimitsTest(h.UpstreamsMixin, h.FigTestCase):
    """Upstreams A and B1; the store: self.migration_store(split), /orders on B1 as /v2/orders."""

    def assertServes(self, d, why=""):
        self.assertTrue(d.alive(), "%s: the daemon died (exit %s)" % (why, d.proc.poll()))
        r = d.get("/orders/1", user=MIGRATED)
        self.assertRoutedTo(r, "B1", "/v2/orders/1", "normal request after %s" % why)
        r = d.get("/plain")
        self.assertRoutedTo(r, "A", "/plain", "anonymous request after %s" % why)

    def test_oversized_headers_431(self):
        d = self.daemon(self.migration_store(), config={"limits": {"header_bytes": 4096}})
        r = d.request("GET", "/orders/1", {"Authorization": basic(MIGRATED), "X-Big": "v" * 8000})
        self.assertProxyError(r, 431, "one 8000-byte header with header_bytes=4096")
        r = d.request("GET", "/orders/1", {"X-H%d" % i: "v" * 100 for i in range(60)})
        self.assertProxyError(r, 431, "many headers adding up over the limit")
        self.assertEqual(self.a.requests + self.b1.requests, [], "nothing may be forwarded")
        # just under the limit is fine
        r = d.request("GET", "/orders/1", {"Authorization": basic(MIGRATED), "X-Big": "v" * 2000})
        self.assertRoutedTo(r, "B1", "/v2/orders/1")
        self.assertServes(d, "431")

    def test_oversized_body_413(self):
        d = self.daemon(self.migration_store(), config={"limits": {"body_bytes": 1000}})
        r = d.request("POST", "/orders/1", {"Authorization": basic(MIGRATED)}, b"x" * 5000)
        self.assertProxyError(r, 413, "Content-Length 5000 with body_bytes=1000")
        self.assertEqual(self.b1.requests, [], "a refused body must not reach the upstream")
        # chunked body growing past the limit
        chunks = b"".join(b"100\r\n" + b"y" * 256 + b"\r\n" for _ in range(10)) + b"0\r\n\r\n"
        raw = h.raw_exchange(d.port, b"POST /orders/1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                             b"Authorization: " + basic(MIGRATED).encode() + b"\r\n\r\n" + chunks)
        self.assertEqual(raw.status, 413, "chunked body growing past body_bytes: %r" % raw)
        self.assertEqual(self.b1.requests, [], "a refused chunked body must not reach the upstream")
        # exactly at the limit is fine
        r = d.request("POST", "/orders/1", {"Authorization": basic(MIGRATED)}, b"x" * 1000)
        self.assertRoutedTo(r, "B1", "/v2/orders/1")
        self.assertEqual(r.echo["body_len"], 1000)
        self.assertServes(d, "413")

    def test_expect_100_continue_over_limit(self):
        d = self.daemon(self.migration_store(), config={"limits": {"body_bytes": 1000}})
        raw = h.raw_exchange(d.port, b"POST /orders/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
                             b"Expect: 100-continue\r\n\r\n", timeout=5)
        self.assertEqual(raw.status, 413, "413 without waiting for the body: %r" % raw)

    def test_malformed_requests(self):
        # short client timeouts keep the worst case (a daemon waiting for more bytes) bounded
        d = self.daemon(self.migration_store(), config={"timeouts": {"client_header_ms": 1500, "client_body_ms": 1500}})
        for name, payload in MALFORMED.items():
            with self.subTest(case=name):
                t0 = time.time()
                raw = h.raw_exchange(d.port, payload, timeout=4)
                elapsed = time.time() - t0
                ok = (raw.status is not None and (400 <= raw.status < 500 or raw.status in ALSO_ALLOWED.get(name, ())))\
                    or (raw.status is None and raw.closed)
                self.assertTrue(ok, "%s: expected a 4xx or a closed connection, got %r after %.1fs"
                                % (name, raw, elapsed))
                self.assertFalse(raw.timed_out and raw.status is None,
                                 "%s: no answer and no close within 4 s" % name)
                self.assertServes(d, name)
        self.assertEqual([r["path"] for r in self.a.requests + self.b1.requests
                          if r["path"] not in ("/orders/1", "/v2/orders/1", "/plain")], [],
                         "a malformed request reached an upstream")

    def test_no_request_smuggling(self):
        # RFC 9112 6.1/6.3: a request whose Transfer-Encoding does not end in "chunked" has no
        # determinable length and must be refused (400, close); conflicting framings likewise.
        # Whatever the daemon answers, the bytes of the body must never be parsed as a second request.
        smuggled = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
        variants = {
            "TE gzip": b"Transfer-Encoding: gzip\r\n",
            "TE chunked, gzip": b"Transfer-Encoding: chunked, gzip\r\n",
            "TE identity": b"Transfer-Encoding: identity\r\n",
            "TE xchunked": b"Transfer-Encoding: xchunked\r\n",
            "TE chunked + CL": b"Transfer-Encoding: chunked\r\nContent-Length: 0\r\n",
            "CL 0 + TE chunked": b"Content-Length: 0\r\nTransfer-Encoding: chunked\r\n",
            "two TE lines": b"Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n",
            "TE with space before colon": b"Transfer-Encoding : chunked\r\n",
            "TE tab-prefixed value": b"Transfer-Encoding:\tchunked\r\nContent-Length: 0\r\n",
        }
        d = self.daemon(self.migration_store(), config={"timeouts": {"client_header_ms": 1500, "client_body_ms": 1500}})
        for name, framing in variants.items():
            with self.subTest(case=name):
                mark = len(self.a.requests)
                payload = b"POST /front HTTP/1.1\r\nHost: x\r\n" + framing + b"\r\n" + smuggled
                raw = h.raw_exchange(d.port, payload, timeout=1.5, read_until_close=True)
                paths = [r["path"] for r in self.a.requests[mark:]]
                self.assertNotIn("/smuggled", paths, "%s: the body was parsed as a second request: %r"
                                 % (name, raw))
                self.assertLessEqual(raw.data.count(b"HTTP/1.1 "), 1, "%s: two responses: %r" % (name, raw))
                if raw.status is not None:
                    self.assertTrue(400 <= raw.status < 500 or raw.status == 501, "%s: %r" % (name, raw))
                self.assertServes(d, name)

    def test_malformed_4xx_bodies_are_json(self):
        d = self.daemon(self.migration_store())
        # README: errors the proxy answers itself are JSON {"error":"…"}, 400 for a malformed request;
        # a whole head that is malformed gets that answer (not just a closed connection)
        raw = h.raw_exchange(d.port, b"GET / HTTP/1.1\r\n" + HOST + b"this is not a header\r\n\r\n")
        self.assertEqual(raw.status, 400, raw)
        head, body = raw.data.split(b"\r\n\r\n", 1)
        self.assertRegex(head.decode("latin-1"), r"(?im)^content-type:\s*application/json", raw)
        error = h.json.loads(body)
        self.assertIsInstance(error, dict, raw)
        self.assertIsInstance(error.get("error"), str, raw)
        self.assertEqual(self.a.requests + self.b1.requests, [], "a malformed request reached an upstream")

    def test_client_aborts(self):
        d = self.daemon(self.migration_store())
        # request head cut off, body cut off, connect-and-close, RST
        partials = [b"GET /orders/1 HTT", b"POST /orders/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc",
                    b"", b"GET / HTTP/1.1\r\n"]
        for p in partials:
            s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
            if p:
                s.sendall(p)
            s.close()
        import struct
        s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
        s.sendall(b"GET /orders/1 HTTP/1.1\r\nHost: x\r\n")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
        # a client that disappears while the upstream is still answering
        self.b1.delay = 0.5
        s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
        s.sendall(b"GET /orders/slow HTTP/1.1\r\nHost: x\r\nAuthorization: " + basic(MIGRATED).encode() + b"\r\n\r\n")
        s.close()
        time.sleep(0.8)
        self.b1.delay = 0
        self.assertServes(d, "client aborts")

    def test_slow_header_client_is_cut_off(self):
        d = self.daemon(self.migration_store(), config={"timeouts": {"client_header_ms": 1000}})
        t0 = time.time()
        raw = h.raw_exchange(d.port, b"GET /orders/1 HTTP/1.1\r\nHost: x\r\n", timeout=8)
        elapsed = time.time() - t0
        self.assertFalse(raw.timed_out, "incomplete head kept open beyond client_header_ms: %r" % raw)
        self.assertTrue(raw.closed or raw.status in (408, 400), raw)
        self.assertLess(elapsed, 4.0)
        self.assertGreaterEqual(elapsed, 0.8)
        self.assertServes(d, "slow header")

    def test_stalled_request_body_is_cut_off(self):
        d = self.daemon(self.migration_store(), config={"timeouts": {"client_body_ms": 1000}})
        t0 = time.time()
        raw = h.raw_exchange(d.port, b"POST /orders/1 HTTP/1.1\r\nHost: x\r\nAuthorization: " +
                             basic(MIGRATED).encode() + b"\r\nContent-Length: 100\r\n\r\n0123456789", timeout=8)
        elapsed = time.time() - t0
        self.assertFalse(raw.timed_out, "a stalled body kept the connection open beyond client_body_ms: %r" % raw)
        self.assertTrue(raw.closed or raw.status in (408, 400), raw)
        self.assertLess(elapsed, 5.0)
        self.assertEqual([r for r in self.b1.requests if r["body_len"] == 100], [],
                         "a truncated body must not be delivered as complete")
        self.assertServes(d, "stalled body")

    def test_slowloris_drip_is_cut_off(self):
        # one byte at a time, each well within any per-read timeout: the head deadline still applies
        d = self.daemon(self.migration_store(), config={"timeouts": {"client_header_ms": 1000}})
        s = socket.create_connection(("127.0.0.1", d.port), timeout=h.SOCKET_TIMEOUT)
        t0 = time.time()
        closed = False
        try:
            for ch in b"GET /orders/1 HTTP/1.1\r\nX-Long: " + b"a" * 200:
                s.sendall(bytes([ch]))
                time.sleep(0.05)
                if time.time() - t0 > 6:
                    break
        except OSError:
            closed = True
        if not closed:
            s.settimeout(3)
            try:
                data = s.recv(65536)
                closed = data == b"" or data.startswith(b"HTTP/1.1 408") or data.startswith(b"HTTP/1.1 400")
            except socket.timeout:
                closed = False
            except OSError:  # reset
                closed = True
        s.close()
        self.assertTrue(closed, "a drip-feeding client was never cut off")
        self.assertLess(time.time() - t0, 9.0)
        self.assertServes(d, "slowloris")

    def test_client_that_never_reads_is_cut_off(self):
        # a 30 MB response to a client that stops reading: client_write_ms bounds the stall, others are served
        size = 30_000_000
        d = self.daemon(self.migration_store(), config={"timeouts": {"client_write_ms": 1000}})
        s = socket.create_connection(("127.0.0.1", d.port), timeout=h.SOCKET_TIMEOUT)
        try:
            s.sendall(b"GET /big?__size=%d HTTP/1.1\r\nHost: x\r\n\r\n" % size)
            time.sleep(0.5)
            self.assertServes(d, "a stalled reader")
            # A buffering proxy reads the whole upstream response first (the upstream's write then
            # completes); a streaming one stays blocked on us and the upstream never completes.
            # Either way, from then on the proxy can only be blocked on this client for > 1 s.
            deadline = time.time() + 8
            while time.time() < deadline and self.a.servers[0].big_responses_sent == 0:
                time.sleep(0.05)
            time.sleep(3.0)
            s.settimeout(5)
            total = 0
            t0 = time.time()
            while total < size:
                try:
                    chunk = s.recv(1 << 20)
                except socket.timeout:
                    self.fail("stalled connection neither closed nor completed (%d bytes read)" % total)
                except OSError:
                    break
                if not chunk:
                    break
                total += len(chunk)
            self.assertLess(total, size, "the whole response was delivered after a > 3 s stall with "
                            "client_write_ms=1000 (read in %.1f s): the write timeout did not fire"
                            % (time.time() - t0))
        finally:
            s.close()
        self.assertServes(d, "client_write_ms")

    def test_idle_keepalive_connection_closed(self):
        d = self.daemon(self.migration_store(), config={"timeouts": {"client_idle_ms": 800}})
        conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=h.SOCKET_TIMEOUT)
        r = h.read_response(conn, "GET", "/x", {})
        self.assertEqual(r.status, 200)
        sock = conn.sock
        sock.settimeout(5)
        t0 = time.time()
        data = sock.recv(100)
        self.assertEqual(data, b"", "idle keep-alive connection should be closed by the proxy")
        self.assertLess(time.time() - t0, 4.0)
        conn.close()
        self.assertServes(d, "idle close")

    def test_busy_keepalive_connection_that_goes_quiet_keeps_working(self):
        # A connection in steady use keeps a buffered read between requests; after
        # a second of quiet it gives the buffer up (parks). Neither may lose or
        # delay a request, and the client_idle_ms deadline still closes it.
        d = self.daemon(self.migration_store(), config={"timeouts": {"client_idle_ms": 3000}})
        conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=h.SOCKET_TIMEOUT)
        for i in range(20):  # quick succession: the connection becomes "hot"
            r = h.read_response(conn, "GET", "/orders/%d" % i, {"Authorization": basic("alice")})
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.echo["path"], "/orders/%d" % i)
        time.sleep(1.6)  # past the one-second park, well within client_idle_ms
        for i in range(3):
            r = h.read_response(conn, "GET", "/users/%d" % i, {"Authorization": basic("alice")})
            self.assertEqual(r.status, 200, "request %d after going quiet: %r" % (i, r))
            self.assertEqual(r.echo["path"], "/users/%d" % i)
        # Two pipelined requests in one write, after parking again.
        time.sleep(1.6)
        sock = conn.sock
        sock.sendall(b"GET /orders/1 HTTP/1.1\r\nHost: x\r\n\r\nGET /orders/2 HTTP/1.1\r\nHost: x\r\n\r\n")
        data, deadline = b"", time.time() + 5
        while data.count(b"HTTP/1.1 200") < 2 and time.time() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        self.assertEqual(data.count(b"HTTP/1.1 200"), 2, data[:300])
        # Quiet for good: parked at ~1 s, closed at client_idle_ms (3 s), not before.
        sock.settimeout(8)
        t0 = time.time()
        self.assertEqual(sock.recv(100), b"", "a quiet connection should be closed at client_idle_ms")
        self.assertGreaterEqual(time.time() - t0, 2.5)
        self.assertLess(time.time() - t0, 5.0)
        conn.close()
        self.assertServes(d, "after parked connections")

    def test_many_concurrent_connections(self):
        d = self.daemon(self.migration_store())
        errors = []

        def worker(k):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=h.SOCKET_TIMEOUT)
                for i in range(10):
                    user = h.EXTRA_USERS[(k + i) % len(h.EXTRA_USERS)]
                    r = h.read_response(conn, "GET", "/orders/%d" % i, {"Authorization": basic(user)})
                    want = "B1" if bucket_of(user) < 50 else "A"
                    if r.status != 200 or r.echo["upstream"] != want:
                        errors.append(repr(r))
                conn.close()
            except Exception as e:  # noqa: BLE001
                errors.append("%s: %s" % (type(e).__name__, e))

        threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(40)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertEqual(errors, [])

    def test_max_connections(self):
        # workers=1, max_connections=5: extra connections are refused or closed, never crash the daemon
        d = self.daemon(self.migration_store(), config={"workers": 1, "limits": {"max_connections": 5}})
        held = []
        try:
            for _ in range(12):
                s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
                held.append(s)
            time.sleep(0.3)
        finally:
            for s in held:
                s.close()
        time.sleep(0.3)
        self.assertServes(d, "max_connections")

    def test_sigterm_lets_in_flight_request_finish(self):
        self.b1.delay = 2.0
        d = h.Daemon(self.migration_store(), config={"timeouts": {"drain_ms": 10000}})
        d.start()
        try:
            result = {}

            def slow():
                try:
                    result["resp"] = d.get("/orders/slow", user=MIGRATED)
                except Exception as e:  # noqa: BLE001
                    result["exc"] = e

            t = threading.Thread(target=slow, daemon=True)
            t.start()
            h.eventually(lambda: len(self.b1.requests) == 1, 3.0, message="slow request reached B1")
            t0 = time.time()
            d.terminate()
            time.sleep(0.3)
            # no new connections accepted (refused) or, if accepted, answered 503
            try:
                r = d.get("/x", timeout=3)
                self.assertEqual(r.status, 503, "a new request during draining: %r" % r)
            except (ConnectionError, http.client.HTTPException, socket.timeout, OSError):
                pass
            t.join(10)
            self.assertFalse(t.is_alive(), "in-flight request never finished")
            self.assertNotIn("exc", result, result)
            self.assertRoutedTo(result["resp"], "B1", "/v2/orders/slow", "in-flight request during SIGTERM")
            rc = d.wait(10)
            self.assertEqual(rc, 0, "exit code after SIGTERM\n" + d.logs())
            self.assertLess(time.time() - t0, 8.0)
        finally:
            d.kill()

    def test_sigterm_idle_exits_promptly(self):
        d = h.Daemon(self.migration_store())
        d.start()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=h.SOCKET_TIMEOUT)
            self.assertEqual(h.read_response(conn, "GET", "/x", {}).status, 200)  # an idle keep-alive connection
            t0 = time.time()
            d.terminate()
            rc = d.wait(10)
            conn.close()
            self.assertEqual(rc, 0)
            self.assertLess(time.time() - t0, 3.0, "idle keep-alive connections must not delay shutdown")
        finally:
            d.kill()

    def test_sigterm_drain_is_bounded(self):
        hang = h.HangServer()
        self.addCleanup(hang.close)
        kv = self.migration_store()
        kv["APIGW_B1_URL"] = hang.url()
        d = h.Daemon(kv, config={"timeouts": {"drain_ms": 1000, "upstream_response_ms": 60000}})
        d.start()
        try:
            t = threading.Thread(target=lambda: self._swallow(d.get, "/orders/1", user=MIGRATED), daemon=True)
            t.start()
            h.eventually(lambda: hang.accepted >= 1, 3.0, message="request reached the hung upstream")
            t0 = time.time()
            d.terminate()
            rc = d.wait(10)
            self.assertLess(time.time() - t0, 5.0, "drain_ms=1000 but shutdown took longer")
            self.assertEqual(rc, 0)
        finally:
            d.kill()

    @staticmethod
    def _swallow(fn, *a, **kw):
        try:
            fn(*a, **kw)
        except Exception:  # noqa: BLE001
            pass


if __name__ == "__main__":
    unittest.main()
