"""The admin HTTP API (docs/admin-api.md): KV reads and writes, validation,
If-Match, bearer token, separation from the traffic port, limits, readiness."""

import json
import os
import shutil
import subprocess
import sys
import threading
import time
import unittest
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

TOKEN = "s3cr3t-t0ken-for-the-admin-api"
TOKEN_ENV = "FIGSHIFT_IT_ADMIN_TOKEN"


class AdminTestCase(h.UpstreamsMixin, h.FigTestCase):
    token = None  # set: the daemon is started with admin.token_env and every call carries it

    def setUp(self):
        super().setUp()
        self.seed = self.migration_store(0)

    def start(self, config=None, **kw):
        cfg = dict(config or {})
        env = None
        if self.token is not None:
            cfg = h._deep_merge({"admin": {"token_env": TOKEN_ENV}}, cfg)
            env = {TOKEN_ENV: self.token}
        d = h.Daemon(self.seed, cfg, env=env, **kw)
        d.start()
        self.addCleanup(self._stop_daemon, d)
        self.d = d
        return d

    def adm(self, method, path, body=None, headers=None, auth=True):
        hd = dict(headers or {})
        if auth and self.token is not None and "Authorization" not in hd:
            hd["Authorization"] = "Bearer " + self.token
        if method == "POST" and body is not None and "Content-Type" not in hd:
            hd["Content-Type"] = "application/json"  # as the CLI and the dashboard send it
        if isinstance(body, str):
            body = body.encode("utf-8")
        return self.d.admin_request(method, path, hd, body)

    # -- state snapshots ---------------------------------------------------

    def file_bytes(self):
        with open(self.d.store_path, "rb") as f:
            return f.read()

    def state(self):
        """(store file bytes, GET /admin/kv body, its ETag)."""
        r = self.adm("GET", "/admin/kv")
        self.assertEqual(r.status, 200, r)
        return self.file_bytes(), r.body, r.headers.get("etag")

    def kv(self):
        r = self.adm("GET", "/admin/kv")
        self.assertEqual(r.status, 200, r)
        j = r.json
        self.assertIsInstance(j, dict, r)
        return {e["key"]: e["value"] for e in j["data"]}

    def assertJsonError(self, r, status, msg=""):
        self.assertEqual(r.status, status, "%s: %r" % (msg, r))
        j = r.json
        self.assertIsInstance(j, dict, "%s: not JSON: %r" % (msg, r))
        self.assertIsInstance(j.get("error"), str, "%s: %r" % (msg, r))
        self.assertTrue(j["error"], msg)
        self.assertTrue(r.headers.get("content-type", "").startswith("application/json"), msg)
        return j["error"]


class KvTest(AdminTestCase):
    def setUp(self):
        super().setUp()
        self.start()

    def test_get_all_returns_seed_with_etag(self):
        r = self.adm("GET", "/admin/kv")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.headers.get("content-type", "").startswith("application/json"))
        j = r.json
        self.assertEqual(set(j), {"data"}, "KVS import format: %r" % j)
        for e in j["data"]:
            self.assertEqual(set(e), {"key", "value"}, e)
        self.assertEqual({e["key"]: e["value"] for e in j["data"]}, self.seed)
        self.assertEqual(len(j["data"]), len(self.seed), "no duplicate keys")
        etag = r.headers.get("etag")
        self.assertTrue(etag, "GET /admin/kv must carry an ETag: %r" % r.headers)
        self.assertEqual(self.adm("GET", "/admin/kv").headers.get("etag"), etag, "ETag is stable without writes")
        self.assertEqual(self.adm("GET", "/admin/status").json["etag"], etag, "status etag == ETag")

    def test_put_get_delete_one_key(self):
        before = self.adm("GET", "/admin/kv").headers["etag"]
        v0 = self.adm("GET", "/admin/status").json["version"]
        r = self.adm("PUT", "/admin/kv/traffic-split", "30")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(set(r.json), {"etag", "version"}, r)
        self.assertNotEqual(r.json["etag"], before)
        self.assertGreater(r.json["version"], v0)
        g = self.adm("GET", "/admin/kv/traffic-split")
        self.assertEqual(g.status, 200, g)
        self.assertEqual(g.json, {"key": "traffic-split", "value": "30"})
        self.assertEqual(g.headers.get("etag"), r.json["etag"], "GET one key carries the current ETag")
        self.assertEqual(self.d.read_store()["traffic-split"], "30", "persisted to the store file")
        self.assertEqual(self.kv()["traffic-split"], "30")

        r = self.adm("DELETE", "/admin/kv/traffic-split")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(set(r.json), {"etag", "version"}, r)
        self.assertJsonError(self.adm("GET", "/admin/kv/traffic-split"), 404, "deleted key")
        self.assertNotIn("traffic-split", self.d.read_store())

    def test_keys_with_colon_and_slash_raw_and_encoded(self):
        quote = lambda k: urllib.parse.quote(k, safe="")  # noqa: E731
        # raw write, encoded read, encoded delete, raw read
        key = "route:/api/v1"
        self.assertEqual(self.adm("PUT", "/admin/kv/" + key, "B1 /v2").status, 200)
        self.assertEqual(self.d.read_store()[key], "B1 /v2")
        g = self.adm("GET", "/admin/kv/" + quote(key))
        self.assertIn("%3A", quote(key))
        self.assertEqual((g.status, g.json), (200, {"key": key, "value": "B1 /v2"}), g)
        g = self.adm("GET", "/admin/kv/" + key)
        self.assertEqual((g.status, g.json), (200, {"key": key, "value": "B1 /v2"}), g)
        self.assertEqual(self.adm("DELETE", "/admin/kv/" + quote(key)).status, 200)
        self.assertJsonError(self.adm("GET", "/admin/kv/" + key), 404, "deleted via its encoded name")
        # encoded write, raw read, raw delete
        key = "route:/users/me"
        self.assertEqual(self.adm("PUT", "/admin/kv/" + quote(key), "B1").status, 200)
        self.assertEqual(self.kv().get(key), "B1")
        g = self.adm("GET", "/admin/kv/" + key)
        self.assertEqual((g.status, g.json), (200, {"key": key, "value": "B1"}), g)
        self.assertNotIn("route%3A", json.dumps(self.kv()), "keys are stored decoded")
        self.assertEqual(self.adm("DELETE", "/admin/kv/" + key).status, 200)
        self.assertNotIn(key, self.kv())
        # the written route is live: split 100 sends /users/me/x to B1
        self.assertEqual(self.adm("PUT", "/admin/kv/route%3A%2Fusers", "B1").status, 200)
        self.assertEqual(self.adm("PUT", "/admin/kv/traffic-split", "100").status, 200)
        self.assertRoutedTo(self.d.get("/users/me", user="hello"), "B1", "/users/me")

    def test_missing_key_404(self):
        before = self.state()
        self.assertJsonError(self.adm("GET", "/admin/kv/hash-salt"), 404, "GET missing")
        self.assertJsonError(self.adm("DELETE", "/admin/kv/hash-salt"), 404, "DELETE missing")
        self.assertJsonError(self.adm("GET", "/admin/kv/route%3A%2Fnowhere"), 404, "GET missing encoded")
        self.assertEqual(self.state(), before)

    def test_batch_applied_atomically(self):
        before = self.state()
        r = self.adm("POST", "/admin/kv", json.dumps({
            "puts": [{"key": "traffic-split", "value": "50"},
                     {"key": "route:/carts", "value": "NOPE"}],
            "deletes": [{"key": "route:/orders"}]}))
        msg = self.assertJsonError(r, 400, "batch with one invalid item")
        self.assertIn("route:/carts", msg)
        self.assertEqual(self.state(), before, "a refused batch changes nothing")

        r = self.adm("POST", "/admin/kv", json.dumps({
            "puts": [{"key": "traffic-split", "value": "50"},
                     {"key": "route:/carts", "value": "B1"},
                     {"key": "hash-salt", "value": "pepper"}],
            "deletes": [{"key": "route:/orders"}]}))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(set(r.json), {"etag", "version"}, r)
        want = dict(self.seed, **{"traffic-split": "50", "route:/carts": "B1", "hash-salt": "pepper"})
        del want["route:/orders"]
        self.assertEqual(self.kv(), want)
        self.assertEqual(self.d.read_store(), want)
        self.assertEqual(self.adm("GET", "/admin/kv").headers["etag"], r.json["etag"])

    def test_invalid_writes_refused_and_nothing_changes(self):
        long_key = "route:/" + "k" * 593
        self.assertEqual(len(long_key), 600)
        cases = [
            ("PUT", "/admin/kv/traffic-split", "101", "traffic-split"),
            ("PUT", "/admin/kv/traffic-split", "abc", "traffic-split"),
            ("PUT", "/admin/kv/traffic-split", "", "traffic-split"),
            ("PUT", "/admin/kv/traffic-split", "-1", "traffic-split"),
            ("PUT", "/admin/kv/route:/orders", "NOPE", "route:/orders"),
            ("PUT", "/admin/kv/route%3A%2Fcarts", "B9 /v2", "route:/carts"),
            ("PUT", "/admin/kv/APIGW_B1_URL", "ftp://x", "APIGW_B1_URL"),
            ("PUT", "/admin/kv/trafic-split", "5", "trafic-split"),
            ("PUT", "/admin/kv/" + long_key, "B1", long_key[:40]),
            ("PUT", "/admin/kv/hash-salt", "s" * 2000, "hash-salt"),
            ("PUT", "/admin/kv/mode", "teleport", "mode"),
            ("PUT", "/admin/kv/legacy-upstream", "ZZ", "legacy-upstream"),
            ("DELETE", "/admin/kv/APIGW_B1_URL", None, "route:/orders"),  # still used by the route
            ("POST", "/admin/kv", json.dumps({"puts": [{"key": "traffic-split", "value": "101"}]}),
             "traffic-split"),
            ("POST", "/admin/kv", json.dumps({"puts": [{"key": "hash-salt", "value": "ok"},
                                                        {"key": "trafic-split", "value": "1"}]}),
             "trafic-split"),
            ("POST", "/admin/kv", '{"puts":[{"key":"traffic-split","value":"5"}', None),
            ("POST", "/admin/kv", "not json", None),
            ("POST", "/admin/kv", '[{"key":"traffic-split","value":"5"}]', None),
            ("POST", "/admin/kv", '{"puts":[{"key":"traffic-split","value":5}]}', None),
            ("POST", "/admin/kv", '{"puts":[{"key":"traffic-split"}]}', None),
            # a number beyond a double: nlohmann/json's out_of_range, not a parse_error (was a 500)
            ("POST", "/admin/kv", '{"puts":[{"key":"traffic-split","value":1e99999}]}', None),
            ("POST", "/admin/traffic-shift", '{"percent": 1e99999, "duration_s": 5}', None),
            ("PUT", "/admin/kv/traffic-ramp", '{"from":0,"to":1e99999,"start_ms":0,"duration_ms":1}',
             "traffic-ramp"),
        ]
        before = self.state()
        for method, path, body, names in cases:
            with self.subTest(method=method, path=path[:60], body=(body or "")[:60]):
                r = self.adm(method, path, body)
                msg = self.assertJsonError(r, 400, "%s %s" % (method, path[:60]))
                if names is not None:
                    self.assertIn(names, msg, "the message names the key")
                self.assertEqual(self.state(), before, "a refused write leaves the file and the store as they were")
        # and the routing did not move
        self.assertRoutedTo(self.d.get("/orders/1", user="hello"), "A", "/orders/1")


class IfMatchTest(AdminTestCase):
    def setUp(self):
        super().setUp()
        self.start()

    def test_stale_etag_412_and_star(self):
        etag = self.adm("GET", "/admin/kv").headers["etag"]
        r = self.adm("PUT", "/admin/kv/traffic-split", "10", {"If-Match": etag})
        self.assertEqual(r.status, 200, r)
        before = self.state()
        for method, path, body in (("PUT", "/admin/kv/traffic-split", "20"),
                                   ("DELETE", "/admin/kv/route:/orders", None),
                                   ("POST", "/admin/kv", '{"puts":[{"key":"traffic-split","value":"30"}]}')):
            with self.subTest(method=method, path=path):
                self.assertJsonError(self.adm(method, path, body, {"If-Match": etag}), 412, "stale ETag")
                self.assertJsonError(self.adm(method, path, body, {"If-Match": '"bogus"'}), 412, "bogus ETag")
                self.assertEqual(self.state(), before)
        r = self.adm("PUT", "/admin/kv/traffic-split", "40", {"If-Match": "*"})
        self.assertEqual(r.status, 200, r)
        r = self.adm("POST", "/admin/kv", '{"puts":[{"key":"traffic-split","value":"45"}]}', {"If-Match": "*"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.kv()["traffic-split"], "45")
        # the etag returned by a write is usable as If-Match for the next one
        r2 = self.adm("PUT", "/admin/kv/traffic-split", "46", {"If-Match": r.json["etag"]})
        self.assertEqual(r2.status, 200, r2)

    def test_two_writers_racing_with_the_same_etag(self):
        rounds = 25
        for i in range(rounds):
            g = self.adm("GET", "/admin/kv/traffic-split")
            etag = g.headers["etag"]
            barrier = threading.Barrier(2)
            results = {}

            def writer(who, value):
                barrier.wait(5)
                results[who] = (value, self.adm("PUT", "/admin/kv/traffic-split", str(value), {"If-Match": etag}))

            # both values differ from the stored one (a no-op write keeps the content-derived ETag)
            vals = (2 * i + 1, 2 * i + 2)
            self.assertNotIn(g.json["value"], [str(v) for v in vals])
            ts = [threading.Thread(target=writer, args=(w, v)) for w, v in enumerate(vals)]
            for t in ts:
                t.start()
            for t in ts:
                t.join(15)
            statuses = sorted(r.status for _, r in results.values())
            self.assertEqual(statuses, [200, 412], "round %d: %r" % (i, results))
            winner = [v for v, r in results.values() if r.status == 200][0]
            self.assertEqual(self.adm("GET", "/admin/kv/traffic-split").json["value"], str(winner),
                             "round %d: the winner's value is the stored one" % i)
            self.assertEqual(self.d.read_store()["traffic-split"], str(winner))

    def test_no_lost_update_with_read_modify_write(self):
        per_thread, nthreads = 12, 3
        conflicts = [0]

        def incrementer():
            for _ in range(per_thread):
                while True:
                    g = self.adm("GET", "/admin/kv/traffic-split")
                    n = int(g.json["value"])
                    r = self.adm("PUT", "/admin/kv/traffic-split", str(n + 1), {"If-Match": g.headers["etag"]})
                    if r.status == 200:
                        break
                    assert r.status == 412, r
                    conflicts[0] += 1

        ts = [threading.Thread(target=incrementer) for _ in range(nthreads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(40)
        self.assertEqual(self.kv()["traffic-split"], str(per_thread * nthreads),
                         "every successful If-Match write counts (conflicts seen: %d)" % conflicts[0])


class TokenTest(AdminTestCase):
    token = TOKEN

    def test_token_required_everywhere_but_health(self):
        d = self.start()
        d.admin()
        self.assertIn("token", d.wait_for_log("admin API listening").lower())
        before = self.state()
        paths = [("GET", "/admin/status", None), ("GET", "/admin/kv", None),
                 ("GET", "/admin/kv/traffic-split", None), ("GET", "/admin/kv/nothing", None),
                 ("PUT", "/admin/kv/traffic-split", "100"), ("DELETE", "/admin/kv/route:/orders", None),
                 ("POST", "/admin/kv", '{"puts":[{"key":"traffic-split","value":"100"}]}'),
                 ("POST", "/admin/traffic-shift", '{"percent":100,"seconds":0}'),
                 ("POST", "/admin/rollback", None), ("GET", "/metrics", None), ("POST", "/", "x"),
                 ("GET", "/admin/nope", None), ("DELETE", "/admin/status", None), ("GET", "/nope/at/all", None)]
        bad_auth = [None, "Bearer wrong", "Bearer " + TOKEN + "x", "Bearer " + TOKEN[:-1],
                    "Bearer " + TOKEN.upper(), "Basic " + TOKEN, "Token " + TOKEN, TOKEN, "Bearer",
                    "Bearer  " + TOKEN + " extra", h.basic("admin", TOKEN)]
        for method, path, body in paths:
            for auth in bad_auth:
                with self.subTest(method=method, path=path, auth=auth):
                    hd = {} if auth is None else {"Authorization": auth}
                    r = self.d.admin_request(method, path, hd, body.encode() if body else None)
                    self.assertEqual(r.status, 401, r)
                    self.assertEqual(r.json, {"error": "unauthorized"}, r)
                    self.assertTrue(r.headers.get("www-authenticate", "").startswith("Bearer"), r.headers)
        self.assertEqual(self.state(), before, "unauthorized writes change nothing")
        # right token
        r = self.adm("GET", "/admin/status")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.adm("GET", "/admin/kv").status, 200)
        r = self.adm("GET", "/admin/kv", headers={"Authorization": "bearer " + TOKEN})
        self.assertEqual(r.status, 200, "the scheme name is case-insensitive (RFC 7235): %r" % r)
        self.assertJsonError(self.adm("GET", "/admin/nope"), 404, "unknown route with the token")
        self.assertEqual(self.adm("PUT", "/admin/kv/traffic-split", "7").status, 200)
        self.assertEqual(self.kv()["traffic-split"], "7")
        # health needs no token
        for path, body in (("/healthz", {"status": "ok"}), ("/readyz", {"status": "ready"})):
            r = self.adm("GET", path, auth=False)
            self.assertEqual((r.status, r.json), (200, body), path)

    def test_refuses_public_admin_without_token(self):
        d = h.Daemon(self.seed, {"admin": {"address": "0.0.0.0"}}, expect_exit=None)
        self.addCleanup(shutil.rmtree, d.dir, True)
        try:
            p = subprocess.run([h.figshift_bin(), "serve", "--config", d.config_path], cwd=d.dir,
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=15)
        except subprocess.TimeoutExpired:
            self.fail("figshift kept running with admin on 0.0.0.0 and no token")
        out = (p.stderr + p.stdout).decode("utf-8", "replace")
        self.assertNotEqual(p.returncode, 0, out)
        self.assertIn("0.0.0.0", out)
        self.assertIn("token", out.lower())
        self.assertNotIn("listening for traffic", out, "refused before serving anything")
        # the same with token_env naming an unset variable
        d2 = h.Daemon(self.seed, {"admin": {"address": "0.0.0.0", "token_env": "FIGSHIFT_IT_UNSET_VAR"}},
                      expect_exit=None)
        self.addCleanup(shutil.rmtree, d2.dir, True)
        env = {k: v for k, v in os.environ.items() if k != "FIGSHIFT_IT_UNSET_VAR"}
        p = subprocess.run([h.figshift_bin(), "serve", "--config", d2.config_path], cwd=d2.dir, env=env,
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=15)
        self.assertNotEqual(p.returncode, 0, p.stderr)
        self.assertIn("FIGSHIFT_IT_UNSET_VAR", p.stderr.decode("utf-8", "replace"))


class SeparationAndLimitsTest(AdminTestCase):
    def setUp(self):
        super().setUp()
        self.start()

    def test_traffic_port_never_serves_admin_routes(self):
        self.assertEqual(self.adm("PUT", "/admin/kv/traffic-split", "100").status, 200)
        admin_paths = ["/admin/status", "/healthz", "/readyz", "/admin/kv", "/admin/kv/traffic-split", "/metrics"]
        for path in admin_paths:
            with self.subTest(path=path):
                n = len(self.a.requests)
                r = self.d.get(path, user="hello")
                # proxied to the legacy upstream (no route for these paths), which saw it
                self.assertRoutedTo(r, "A", path)
                self.assertEqual(len(self.a.requests), n + 1)
                self.assertEqual(self.a.requests[-1]["path"], path)
                j = r.json
                for k in ("etag", "split", "status", "data", "error"):
                    self.assertNotIn(k, j, "admin JSON on the traffic port: %r" % r)
        for method in ("PUT", "POST", "DELETE"):
            r = self.d.request(method, "/admin/kv/traffic-split", body=b"0")
            self.assertRoutedTo(r, "A", "/admin/kv/traffic-split")
        self.assertEqual(self.kv()["traffic-split"], "100", "writes on the traffic port never reach the store")
        # and the admin port never proxies
        n = len(self.a.requests) + len(self.b1.requests)
        r = self.adm("GET", "/orders/1", headers={"Authorization": h.basic("hello")})
        self.assertJsonError(r, 404, "traffic path on the admin port")
        self.assertNotIn("upstream", r.json)
        self.assertEqual(len(self.a.requests) + len(self.b1.requests), n)

    def test_405_with_allow(self):
        before = self.state()
        cases = [("DELETE", "/admin/status", {"GET"}), ("POST", "/admin/status", {"GET"}),
                 ("GET", "/admin/traffic-shift", {"POST"}), ("PUT", "/admin/traffic-shift", {"POST"}),
                 ("GET", "/admin/rollback", {"POST"}), ("DELETE", "/admin/kv", {"GET", "POST"}),
                 ("PUT", "/admin/kv", {"GET", "POST"}), ("POST", "/admin/kv/traffic-split", {"GET", "PUT", "DELETE"}),
                 ("PATCH", "/admin/kv/traffic-split", {"GET", "PUT", "DELETE"})]
        for method, path, allow in cases:
            with self.subTest(method=method, path=path):
                r = self.adm(method, path, "x" if method in ("POST", "PUT", "PATCH") else None)
                self.assertJsonError(r, 405, "%s %s" % (method, path))
                got = {m.strip() for m in r.headers.get("allow", "").split(",") if m.strip()}
                self.assertTrue(allow <= got, "Allow %r should list %r" % (r.headers.get("allow"), allow))
                self.assertNotIn(method, got)
        self.assertEqual(self.state(), before)

    def test_health_routes_wrong_method_405(self):
        # docs/admin-api.md: "405 known path, wrong method (Allow lists the right ones)"
        for method, path in (("POST", "/healthz"), ("PUT", "/readyz"), ("DELETE", "/readyz")):
            with self.subTest(method=method, path=path):
                r = self.adm(method, path, "x" if method != "DELETE" else None, auth=False)
                self.assertJsonError(r, 405, "%s %s" % (method, path))
                self.assertIn("GET", r.headers.get("allow", ""))

    def test_413_for_a_100k_body(self):
        before = self.state()
        big = b"s" * (100 * 1024)
        for method, path, body in (("PUT", "/admin/kv/hash-salt", big),
                                   ("POST", "/admin/kv", b'{"puts":[{"key":"hash-salt","value":"' + big + b'"}]}'),
                                   ("POST", "/admin/traffic-shift", b'{"percent":100,"seconds":0' + b" " * len(big) + b"}")):
            with self.subTest(method=method, path=path):
                head = ("%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (method, path, len(body))).encode()
                res = h.raw_exchange(self.d.admin(), head + body)
                self.assertEqual(res.status, 413, res)
                self.assertIn(b'"error"', res.data)
                self.assertEqual(self.state(), before)
        # 64 KiB exactly is not "over 64 KiB": accepted (then refused as a too-long value, 400)
        body = b"v" * (64 * 1024)
        r = self.adm("PUT", "/admin/kv/hash-salt", body)
        self.assertEqual(r.status, 400, r)
        self.assertIn("hash-salt", r.json["error"])

    def test_readyz_503_while_draining(self):
        d = self.d
        self.a.delay = 2.5
        self.assertEqual(self.adm("GET", "/readyz").json, {"status": "ready"})
        slow = {}

        def slow_request():
            try:
                slow["r"] = d.get("/orders/slow", user="hello", timeout=15)
            except Exception as e:  # noqa: BLE001
                slow["e"] = e

        t = threading.Thread(target=slow_request)
        t.start()
        h.eventually(lambda: len(self.a.requests) >= 1, 5, message="the slow request reached A")
        admin_port = d.admin()
        d.terminate()
        r = h.eventually(lambda: (lambda r: r if r.status == 503 else None)(h.request(admin_port, "GET", "/readyz")),
                         2.0, 0.02, message="/readyz 503 while draining")
        self.assertEqual(r.json, {"status": "draining"})
        self.assertTrue(t.is_alive(), "the slow request is still in flight while /readyz says draining")
        r = h.request(admin_port, "GET", "/healthz")
        self.assertEqual((r.status, r.json), (200, {"status": "ok"}), "alive while draining")
        r = h.request(admin_port, "GET", "/admin/status")
        self.assertEqual((r.status, r.json.get("draining")), (200, True), r)
        t.join(15)
        self.assertNotIn("e", slow, slow)
        self.assertRoutedTo(slow["r"], "A", "/orders/slow")
        self.assertEqual(d.wait(), 0)


if __name__ == "__main__":
    unittest.main()
