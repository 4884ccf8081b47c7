"""The admin API against browsers and floods (docs/admin-api.md, "Browsers and
other sites"): DNS-rebinding Host names, cross-site Origins and simple
Content-Types are refused before anything runs; the head is checked before a
body is read; admin.max_connections caps open connections; an incomplete head
is cut at client_header_ms."""

import json
import os
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

TOKEN = "hardening-t0ken-9c1e5b2d4f60a8e7"
WRONG_TOKEN = "wr0ng-t0ken-3b7d9f1a5c2e"
TOKEN_ENV = "FIGSHIFT_IT_HARDENING_TOKEN"
ALLOWED = "figshift-admin.internal"
BATCH = json.dumps({"puts": [{"key": "traffic-split", "value": "100"}]}).encode()


class HardeningTestCase(h.UpstreamsMixin, h.FigTestCase):
    token = None

    def setUp(self):
        super().setUp()
        self.seed = self.migration_store(37)

    def start(self, config=None):
        cfg = dict(config or {})
        env = None
        if self.token is not None:
            cfg = h._deep_merge({"admin": {"token_env": TOKEN_ENV}}, cfg)
            env = {TOKEN_ENV: self.token}
        d = h.Daemon(self.seed, cfg, env=env)
        d.start()
        self.addCleanup(self._stop_daemon, d)
        self.d = d
        self.port = d.admin()
        return d

    def adm(self, method, path, headers=None, body=None):
        hd = dict(headers or {})
        if self.token is not None and "Authorization" not in hd:
            hd["Authorization"] = "Bearer " + self.token
        return h.request(self.port, method, path, hd, body)

    def store(self):
        """The store as GET /admin/kv shows it, plus the file (both must agree)."""
        r = self.adm("GET", "/admin/kv")
        self.assertEqual(r.status, 200, r)
        return {e["key"]: e["value"] for e in r.json["data"]}, self.d.read_store()

    def assertRefused(self, r, status, *words):
        self.assertEqual(r.status, status, r)
        self.assertTrue(r.headers.get("content-type", "").startswith("application/json"), r)
        msg = r.json["error"]
        for w in words:
            self.assertIn(w, msg, r)
        return msg

    def raw_connect(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        self.addCleanup(s.close)
        return s


class BrowserChecksTest(HardeningTestCase):
    def setUp(self):
        super().setUp()
        self.start({"admin": {"allowed_hosts": [ALLOWED]}})
        self.own = "127.0.0.1:%d" % self.port  # the Host a browser sends for the dashboard

    def test_dns_rebinding_host_is_refused_and_changes_nothing(self):
        before = self.store()
        evil = {"Host": "rebind.evil.example:%d" % self.port}
        r = self.adm("GET", "/admin/kv", evil)
        self.assertRefused(r, 403, "admin.allowed_hosts")
        self.assertNotIn(b"APIGW", r.body, "nothing of the store leaks")
        self.assertRefused(self.adm("POST", "/admin/rollback", evil), 403, "admin.allowed_hosts")
        self.assertRefused(self.adm("POST", "/admin/kv", dict(evil, **{"Content-Type": "application/json"}),
                                    BATCH), 403)
        self.assertRefused(self.adm("PUT", "/admin/kv/traffic-split", evil, b"0"), 403)
        self.assertRefused(self.adm("GET", "/", evil), 403)
        self.assertRefused(self.adm("GET", "/metrics", evil), 403)
        self.assertEqual(self.store(), before, "a rebinding page changed the store")
        self.assertEqual(before[0]["traffic-split"], "37")
        self.assertIsNotNone(self.d.wait_for_log(r"refused.*rebind\.evil\.example"), "refusals are logged")

    def test_accepted_hosts(self):
        for host in (self.own, "127.0.0.1", "localhost:%d" % self.port, "LOCALHOST",
                     "%s:%d" % (ALLOWED, self.port), ALLOWED.upper()):
            with self.subTest(host=host):
                r = self.adm("GET", "/admin/status", {"Host": host})
                self.assertEqual(r.status, 200, r)
        for host in ("127.0.0.2:%d" % self.port, "[::1]:%d" % self.port, "evil-%s" % ALLOWED,
                     "%s.evil.example" % ALLOWED, "localhost.evil.example"):
            with self.subTest(host=host):
                self.assertRefused(self.adm("GET", "/admin/status", {"Host": host}), 403)
        for host in ("a:b", "[::1", ":%d" % self.port):
            with self.subTest(host=host):
                self.assertRefused(self.adm("GET", "/admin/status", {"Host": host}), 400)
        res = h.raw_exchange(self.port, b"GET /admin/status HTTP/1.1\r\nConnection: close\r\n\r\n")
        self.assertEqual(res.status, 400, res)

    def test_cross_site_post_is_refused_and_changes_nothing(self):
        before = self.store()
        # What a form or a no-preflight fetch() on another site sends.
        for origin in ("http://evil.example", "null", "http://127.0.0.1:%d" % (self.port + 1),
                       "https://" + self.own):
            for path, body in (("/admin/kv", BATCH), ("/admin/traffic-shift", b'{"percent":100,"seconds":0}'),
                               ("/admin/rollback", b"")):
                with self.subTest(origin=origin, path=path):
                    r = self.adm("POST", path, {"Origin": origin, "Content-Type": "text/plain"}, body)
                    self.assertRefused(r, 403, "cross-origin")
        r = self.adm("GET", "/admin/kv", {"Origin": "null"})
        self.assertRefused(r, 403)
        self.assertRefused(self.adm("DELETE", "/admin/kv/route:/orders", {"Origin": "http://evil.example"}), 403)
        self.assertEqual(self.store(), before)
        self.assertEqual(self.kv_split(), "37")

    def kv_split(self):
        return self.adm("GET", "/admin/kv/traffic-split").json["value"]

    def test_post_needs_a_json_content_type(self):
        before = self.store()
        for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                      "text/plain; charset=utf-8", None):
            with self.subTest(ctype=ctype):
                hd = {} if ctype is None else {"Content-Type": ctype}
                r = self.adm("POST", "/admin/kv", hd, BATCH)
                self.assertRefused(r, 415, "application/json")
                r = self.adm("POST", "/admin/traffic-shift", hd, b'{"percent":100,"seconds":0}')
                self.assertRefused(r, 415, "application/json")
        r = self.adm("POST", "/admin/rollback", {"Content-Type": "text/plain"})
        self.assertRefused(r, 415, "application/json")
        self.assertEqual(self.store(), before)
        # JSON with parameters and any case is fine; rollback needs no type at all
        r = self.adm("POST", "/admin/kv", {"Content-Type": "Application/JSON; charset=utf-8"},
                     json.dumps({"puts": [{"key": "traffic-split", "value": "12"}]}).encode())
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.kv_split(), "12")
        r = self.adm("POST", "/admin/rollback")
        self.assertEqual((r.status, r.json["traffic_split"]), (200, 0), r)
        # PUT's raw value keeps a free Content-Type (browsers cannot send it cross-site)
        r = self.adm("PUT", "/admin/kv/traffic-split", {"Content-Type": "text/plain"}, b"15")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.kv_split(), "15")

    def test_same_origin_requests_work(self):
        origin = {"Origin": "http://" + self.own}
        r = self.adm("POST", "/admin/kv", dict(origin, **{"Content-Type": "application/json"}), BATCH)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.kv_split(), "100")
        r = self.adm("POST", "/admin/rollback", origin)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.adm("GET", "/admin/status", origin).status, 200)
        host = {"Host": "localhost:%d" % self.port, "Origin": "http://localhost:%d" % self.port}
        self.assertEqual(self.adm("GET", "/admin/status", host).status, 200)

    def test_health_probes_answer_any_host_and_origin(self):
        for path, want in (("/healthz", {"status": "ok"}), ("/readyz", {"status": "ready"})):
            for hd in ({"Host": "lb.example"}, {"Host": "rebind.evil.example:80", "Origin": "null"}):
                with self.subTest(path=path, headers=hd):
                    r = self.adm("GET", path, hd)
                    self.assertEqual((r.status, r.json), (200, want), r)
                    self.assertEqual(self.adm("HEAD", path, hd).status, 200)

    def test_cross_site_body_sent_whole_still_gets_its_answer(self):
        # The refusal comes from the head; the unread body must not turn it into a reset.
        body = b"x" * 60000
        head = ("POST /admin/kv HTTP/1.1\r\nHost: %s\r\nOrigin: http://evil.example\r\n"
                "Content-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % (self.own, len(body))).encode()
        res = h.raw_exchange(self.port, head + body, read_until_close=True, timeout=5)
        self.assertEqual(res.status, 403, res)
        self.assertTrue(res.closed, res)
        self.assertEqual(self.kv_split(), "37")

    def test_cli_still_works(self):
        for url in ("http://127.0.0.1:%d" % self.port, "http://localhost:%d" % self.port):
            with self.subTest(url=url):
                p = subprocess.run([h.figshift_bin(), "shift", "25", "--no-wait", "--admin", url],
                                   capture_output=True, text=True, timeout=20)
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertEqual(self.kv_split(), "25")
                p = subprocess.run([h.figshift_bin(), "rollback", "--admin", url],
                                   capture_output=True, text=True, timeout=20)
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertEqual(self.kv_split(), "0")

    def test_no_token_warning_at_start(self):
        self.assertIsNotNone(self.d.wait_for_log(r"warn.*admin API has no token"), "the no-token warning")


class HeadBeforeBodyTest(HardeningTestCase):
    token = TOKEN

    def test_wrong_token_is_answered_without_waiting_for_the_body(self):
        self.start({"timeouts": {"client_body_ms": 20000}})
        for auth in ("Bearer " + WRONG_TOKEN, None):
            with self.subTest(auth=auth):
                s = self.raw_connect()
                head = "POST /admin/kv HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n" % self.port
                if auth:
                    head += "Authorization: %s\r\n" % auth
                head += "Content-Length: 61440\r\n\r\n"
                t0 = time.time()
                s.sendall(head.encode())  # the 60 KB body is never sent
                data = b""
                s.settimeout(3)
                while b"\r\n\r\n" not in data:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                elapsed = time.time() - t0
                self.assertTrue(data.startswith(b"HTTP/1.1 401"), data)
                self.assertLess(elapsed, 1.0, "the 401 waited for the body")
                # and the connection ends there, without waiting for the body either
                s.settimeout(3)
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                self.assertLess(time.time() - t0, 2.5)
        line = self.d.wait_for_log(r"refused POST /admin/kv: 401")
        self.assertIsNotNone(line, "the refusal is logged with its reason")
        self.assertIn("token", line)
        for l in self.d.log_lines():
            self.assertNotIn(WRONG_TOKEN, l)
            self.assertNotIn(TOKEN, l)

    def test_admitted_request_reads_its_body(self):
        self.start()
        r = self.adm("POST", "/admin/kv", {"Content-Type": "application/json"},
                     json.dumps({"puts": [{"key": "hash-salt", "value": "s" * 1000}]}).encode())
        self.assertEqual(r.status, 200, r)
        # Expect: 100-continue gets its interim answer once the head is admitted
        s = self.raw_connect()
        body = json.dumps({"puts": [{"key": "traffic-split", "value": "44"}]}).encode()
        s.sendall(("POST /admin/kv HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer %s\r\n"
                   "Content-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n"
                   % (TOKEN, len(body))).encode())
        s.settimeout(3)
        self.assertTrue(s.recv(100).startswith(b"HTTP/1.1 100"))
        s.sendall(body)
        self.assertTrue(s.recv(65536).startswith(b"HTTP/1.1 200"))
        self.assertEqual(self.store()[0]["traffic-split"], "44")

    def test_stalled_body_is_cut_at_client_body_ms(self):
        self.start({"timeouts": {"client_body_ms": 700, "client_idle_ms": 30000}})
        head = ("POST /admin/kv HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer %s\r\n"
                "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"puts\"" % TOKEN).encode()
        t0 = time.time()
        res = h.raw_exchange(self.port, head, timeout=6, read_until_close=True)
        self.assertTrue(res.closed, res)
        self.assertGreater(time.time() - t0, 0.6)
        self.assertLess(time.time() - t0, 3.0)


class ConnectionLimitsTest(HardeningTestCase):
    def test_max_connections(self):
        self.start({"admin": {"max_connections": 5},
                    "timeouts": {"client_header_ms": 30000, "client_idle_ms": 30000}})
        idle = []
        for _ in range(20):
            s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            self.addCleanup(s.close)
            idle.append(s)
        # The server closes those beyond the cap at once: they read EOF (or a reset).
        closed = set()
        deadline = time.time() + 3
        while time.time() < deadline and len(closed) < 15:
            for i, s in enumerate(idle):
                if i in closed:
                    continue
                s.settimeout(0.02)
                try:
                    if s.recv(1) == b"":
                        closed.add(i)
                except socket.timeout:
                    pass
                except OSError:
                    closed.add(i)
        self.assertGreaterEqual(len(closed), 15, "at most 5 idle admin connections are kept")
        time.sleep(0.3)
        still_open = 0
        for i, s in enumerate(idle):
            if i in closed:
                continue
            s.settimeout(0.05)
            try:
                if s.recv(1) == b"":
                    continue
            except socket.timeout:
                still_open += 1
            except OSError:
                continue
        self.assertEqual(still_open, 5, "the 5 connections within the cap stay open")
        # while they are open, a new one is closed too
        with self.assertRaises((OSError, h.http.client.HTTPException)):
            h.request(self.port, "GET", "/admin/status", timeout=3)
        warnings = [l for l in self.d.log_lines() if "admin.max_connections" in l]
        self.assertGreaterEqual(len(warnings), 1, "the cap is logged")
        self.assertLessEqual(len(warnings), 5, "at most once a second:\n%s" % "\n".join(warnings))
        for s in idle:
            s.close()
        r = h.eventually(lambda: (lambda r: r if r.status == 200 else None)(
            h.request(self.port, "GET", "/admin/status", timeout=3)), 3.0, message="served after they left")
        self.assertEqual(r.status, 200)

    def test_partial_head_is_cut_at_client_header_ms(self):
        self.start({"timeouts": {"client_header_ms": 500, "client_idle_ms": 30000}})
        for partial in (b"GET /admin/status HTTP/1.1\r\nHost: 127.0.0.1\r\n", b"", b"G"):
            with self.subTest(partial=partial):
                t0 = time.time()
                res = h.raw_exchange(self.port, partial, timeout=6, read_until_close=True)
                took = time.time() - t0
                self.assertTrue(res.closed, res)
                self.assertGreater(took, 0.4, res)
                self.assertLess(took, 2.5, "closed at client_idle_ms, not client_header_ms? %r" % res)
        self.assertEqual(h.request(self.port, "GET", "/admin/status").status, 200)


if __name__ == "__main__":
    unittest.main()
