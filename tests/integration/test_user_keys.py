"""Who is the user (#17) through the real daemon: user-key header, cookie and
jwt (HS256, RS256, ES256 tokens made by the openssl CLI), pins, 10000
buckets, invalid tokens, key reloads and the unique-users metric."""

import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from jwt_keys import Keys  # noqa: E402

SALT = "s17"
ISSUER = "https://issuer.example"


def bucket(user: str, buckets: int = 100) -> int:
    return (h.java_hash(SALT + user) + (1 << 31)) % buckets


def claims(sub, ttl=600, **extra):
    c = {"sub": sub, "exp": int(time.time()) + ttl, "iss": ISSUER, "aud": "api"}
    c.update(extra)
    return c


def metric(text: str, name: str, labels: str) -> float:
    m = re.search(r"^%s\{%s\} (\S+)$" % (re.escape(name), re.escape(labels)), text, re.MULTILINE)
    return float(m.group(1)) if m else float("nan")


class UserKeysTest(h.UpstreamsMixin, h.FigTestCase):

    @classmethod
    def setUpClass(cls):
        cls.keys = Keys()

    def start(self, split, user_key, keys_text=None, **extra):
        store = self.migration_store(split, **{"hash-salt": SALT, "user-key": user_key}, **extra)
        config = None
        if user_key.startswith("jwt") or keys_text is not None:
            self.keys_path = os.path.join(self.keys.dir, "jwks-%d.json" % id(self))
            with open(self.keys_path, "w") as f:
                f.write(keys_text or self.keys.jwks())
            config = {"jwt": {"keys_file": self.keys_path, "issuer": ISSUER, "audience": "api",
                              "leeway_s": 5}}
        return self.daemon(store, config)

    def route_all(self, d, requests, want, conn=None):
        """requests: [(label, headers)]; want(label) -> "A" or "B1". One keep-alive
        connection (so one worker), `conn` when given."""
        own = conn is None
        conn = conn or http.client.HTTPConnection("127.0.0.1", d.port, timeout=h.SOCKET_TIMEOUT)
        try:
            for label, headers in requests:
                r = h.read_response(conn, "GET", "/orders/1", headers)
                expected = want(label)
                self.assertRoutedTo(r, expected, "/v2/orders/1" if expected == "B1" else "/orders/1",
                                    "user %r" % (label,))
        finally:
            if own:
                conn.close()

    def metrics(self, d) -> str:
        return d.admin_request("GET", "/metrics").body.decode()

    # -- each key mode routes 300 users by the sample's rule ------------------

    def test_header_mode_routes_300_users(self):
        d = self.start(40, "header:X-User-Id")
        users = ["user-%d@example.com" % i for i in range(300)]
        self.route_all(d, [(u, {"X-User-Id": u}) for u in users],
                       lambda u: "B1" if bucket(u) < 40 else "A")
        # Basic credentials no longer count; no header is anonymous.
        self.assertRoutedTo(d.get("/orders/1", user=users[0]), "A")
        self.assertRoutedTo(d.get("/orders/1"), "A")

    def test_access_log_names_the_user_by_the_key_it_was_routed_by(self):
        store = self.migration_store(40, **{"hash-salt": SALT, "user-key": "header:X-User-Id"})
        d = self.daemon(store, {"access_log": {"enabled": True, "path": "-", "include_username": True}})
        r = d.get("/orders/1", user="basic-name", headers={"X-User-Id": "user-7@example.com"})
        self.assertEqual(r.status, 200)
        h.eventually(lambda: any('"path":"/orders/1"' in l for l in d.stdout_lines), 3,
                     message="the access log line")
        line = [l for l in d.stdout_lines if '"path":"/orders/1"' in l][-1]
        self.assertEqual(json.loads(line).get("user"), "user-7@example.com", line)
        self.assertNotIn("basic-name", line, "the Basic username is not who routed it")

    def test_cookie_mode_routes_300_users_among_other_cookies(self):
        d = self.start(60, "cookie:session")
        users = ["s%06d" % (i * 7919) for i in range(300)]
        self.route_all(d, [(u, {"Cookie": "theme=dark; session=%s; lang=en-GB; sessionx=zz" % u}) for u in users],
                       lambda u: "B1" if bucket(u) < 60 else "A")
        self.assertRoutedTo(d.get("/orders/1", headers={"Cookie": "theme=dark"}), "A")

    def test_jwt_mode_routes_300_users_with_hs256_rs256_es256(self):
        d = self.start(50, "jwt")
        algs = [("HS256", "h1"), ("RS256", "r1"), ("ES256", "e1")]
        requests = []
        for i in range(300):
            alg, kid = algs[i % 3]
            user = "sub-%d" % i
            requests.append((user, {"Authorization": "Bearer " + self.keys.token(claims(user), alg, kid)}))
        conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=h.SOCKET_TIMEOUT)
        self.addCleanup(conn.close)
        self.route_all(d, requests, lambda u: "B1" if bucket(u) < 50 else "A", conn)
        text = self.metrics(d)
        self.assertEqual(metric(text, "figshift_jwt_tokens_total", 'result="verified"'), 300, text)
        # The same tokens again on the same connection (so the same worker) come from its cache.
        self.route_all(d, requests[:30], lambda u: "B1" if bucket(u) < 50 else "A", conn)
        text = self.metrics(d)
        self.assertEqual(metric(text, "figshift_jwt_tokens_total", 'result="cached"'), 30, text)
        self.assertEqual(metric(text, "figshift_jwt_tokens_total", 'result="verified"'), 300, text)
        for _, headers in requests[:5]:  # tokens never reach the logs
            token = headers["Authorization"].split()[1]
            self.assertNotIn(token[-20:], "\n".join(d.log_lines() + d.stdout_lines))

    def test_jwt_claim_mode_and_ps256(self):
        d = self.start(50, "jwt:email")
        requests = [("u%d@x.example" % i, {"Authorization": "Bearer " + self.keys.token(
            claims("same-sub", email="u%d@x.example" % i), "PS256", "r1")}) for i in range(40)]
        self.route_all(d, requests, lambda u: "B1" if bucket(u) < 50 else "A")

    # -- invalid tokens: anonymous, counted, never a 5xx ----------------------

    def test_every_invalid_token_is_legacy_and_counted(self):
        d = self.start(100, "jwt")  # every valid user would be on B1
        k = self.keys
        now = int(time.time())
        good = k.token(claims("alice"), "HS256", "h1")
        head, payload, sig = good.split(".")
        tampered = head + "." + k.token(claims("mallory"), "HS256", "h1").split(".")[1] + "." + sig
        cases = {
            "expired": k.token(claims("a", ttl=-60), "RS256", "r1"),
            "not_yet_valid": k.token(claims("a", nbf=now + 600), "HS256", "h1"),
            "wrong_issuer": k.token(claims("a", iss="https://evil.example"), "ES256", "e1"),
            "wrong_audience": k.token(claims("a", aud=["web"]), "HS256", "h1"),
            "unknown_key": k.token(claims("a"), "HS256", "nope"),
            "alg_none": k.token(claims("a"), "none", "h1"),
            # alg confusion: the RSA public key (PEM) used as an HMAC secret
            "key_mismatch": k.token(claims("a"), "HS256", "r1", secret=k.rsa_public_pem),
            "bad_signature": tampered,
            "malformed": "not.a.jwt",
            "oversized": k.token(claims("a", pad="x" * 9000), "HS256", "h1"),
            "alg_unsupported": k.token(claims("a"), "HS256", "h1", header={"alg": "HS999"}),
            "no_claim": k.token({"exp": now + 600, "iss": ISSUER, "aud": "api"}, "HS256", "h1"),
        }
        for reason, token in cases.items():
            with self.subTest(reason=reason):
                r = d.get("/orders/1", headers={"Authorization": "Bearer " + token})
                self.assertRoutedTo(r, "A", "/orders/1", reason)
        text = self.metrics(d)
        for reason in cases:
            self.assertEqual(metric(text, "figshift_jwt_rejected_total", 'reason="%s"' % reason), 1,
                             reason + "\n" + text)
        self.assertEqual(metric(text, "figshift_jwt_tokens_total", 'result="verified"'), 0)
        # A huge token: 431 from the header limit, or legacy; never a crash.
        r = d.get("/orders/1", headers={"Authorization": "Bearer " + "a" * 70000})
        self.assertIn(r.status, (431, 200), r)
        if r.status == 200:
            self.assertRoutedTo(r, "A")
        self.assertRoutedTo(d.get("/orders/1", headers={"Authorization": "Bearer " + good}), "B1")
        self.assertTrue(d.alive())
        self.assertNotIn(good.split(".")[2], "\n".join(d.log_lines() + d.stdout_lines))

    # -- pins -----------------------------------------------------------------

    def test_pins_override_the_split_both_ways(self):
        for user_key, headers in (("basic", lambda u: {"Authorization": h.basic(u)}),
                                  ("header:X-User", lambda u: {"X-User": u}),
                                  ("cookie:sid", lambda u: {"Cookie": "a=b; sid=" + u})):
            for split, others in ((0, "A"), (100, "B1")):
                with self.subTest(user_key=user_key, split=split):
                    d = self.start(split, user_key, **{"pin:tester": "new", "pin:key-customer": "legacy"})
                    self.assertRoutedTo(d.request("GET", "/orders/1", headers("tester")), "B1")
                    self.assertRoutedTo(d.request("GET", "/orders/1", headers("key-customer")), "A")
                    for u in ("alice", "bob", "user42"):
                        self.assertRoutedTo(d.request("GET", "/orders/1", headers(u)), others)
                    d.stop()
        d = self.start(0, "jwt", **{"pin:tester": "new"})
        token = self.keys.token(claims("tester"), "RS256", "r1")
        self.assertRoutedTo(d.get("/orders/1", headers={"Authorization": "Bearer " + token}), "B1")

    def test_pins_are_validated_and_exported(self):
        d = self.start(0, "header:X-User", **{"pin:tester": "new"})
        kv = json.loads(d.admin_request("GET", "/admin/kv").body)["data"]
        self.assertIn({"key": "pin:tester", "value": "new"}, kv)
        text = h.kvs_json(self.migration_store(0, **{"hash-salt": SALT, "pin:x": "maybe"}))
        mark = len(d.log_lines())
        d.write_store_text(text)
        d.wait_for_log(r"pin:x: must be \"new\" or \"legacy\"", start=mark)
        self.assertRoutedTo(d.get("/orders/1"), "A")

    # -- 10000 buckets ----------------------------------------------------------

    def test_ten_thousand_buckets_with_a_fine_split(self):
        d = self.start("33.33", "header:X-User", buckets="10000")
        users = ["c%d@example.com" % i for i in range(300)]
        self.route_all(d, [(u, {"X-User": u}) for u in users],
                       lambda u: "B1" if bucket(u, 10000) < 3333 else "A")
        self.assertIn("figshift_traffic_split_percent 33.33", self.metrics(d))
        # A ramp from 33.33 would start at 33 (users of 3300..3332 back to legacy): refused.
        r = d.admin_request("POST", "/admin/traffic-shift", {"Content-Type": "application/json"},
                            json.dumps({"percent": 50, "seconds": 60}).encode())
        self.assertEqual(r.status, 409, r)
        self.assertIn("whole points", r.json["error"])
        status = json.loads(d.admin_request("GET", "/admin/status").body)
        self.assertEqual((status["split_exact"], status["buckets"], status["ramp"]), (33.33, 10000, None))
        r = d.admin_request("POST", "/admin/traffic-shift", {"Content-Type": "application/json"},
                            json.dumps({"percent": 50}).encode())
        self.assertEqual(r.status, 200, r)
        self.assertEqual(json.loads(r.body)["split_exact"], 50)

    # -- keys file reloads ------------------------------------------------------

    def test_keys_reload_on_change(self):
        k = self.keys
        d = self.start(100, "jwt", keys_text=k.jwks(k.oct_jwk("h1")))
        second = os.urandom(32)
        token = "Bearer " + k.token(claims("alice"), "HS256", "h2", secret=second)
        self.assertRoutedTo(d.get("/orders/1", headers={"Authorization": token}), "A")
        # An edit adds kid h2: picked up by the watcher.
        with open(self.keys_path + ".tmp", "w") as f:
            f.write(k.jwks(k.oct_jwk("h1"), k.oct_jwk("h2", second)))
        os.replace(self.keys_path + ".tmp", self.keys_path)
        h.eventually(lambda: d.get("/orders/1", headers={"Authorization": token}).echo["upstream"] == "B1",
                     5.0, message="the new key is used")
        # A broken file keeps the keys in use, logged and counted.
        with open(self.keys_path + ".tmp", "w") as f:
            f.write('{"keys": [{"kty": "oct", "k": "short"}]}')
        os.replace(self.keys_path + ".tmp", self.keys_path)
        d.wait_for_log(r"jwt keys reload \(file changed\) refused, keeping the keys in use", timeout=5)
        self.assertRoutedTo(d.get("/orders/1", headers={"Authorization": token}), "B1")
        self.assertGreaterEqual(metric(self.metrics(d), "figshift_jwt_keys_reloads_total", 'result="failure"'), 1)

    def test_keys_reload_on_sighup(self):
        # The watcher checks once a minute here: only SIGHUP can load the edit in time.
        k = self.keys
        store = self.migration_store(100, **{"hash-salt": SALT, "user-key": "jwt"})
        self.keys_path = os.path.join(k.dir, "jwks-hup.json")
        with open(self.keys_path, "w") as f:
            f.write(k.jwks(k.oct_jwk("h1")))
        d = self.daemon(store, {"store": {"reload_interval_ms": 60000},
                                "jwt": {"keys_file": self.keys_path, "issuer": ISSUER, "audience": "api"}})
        second = os.urandom(32)
        token = "Bearer " + k.token(claims("bob"), "HS256", "h2", secret=second)
        with open(self.keys_path, "w") as f:
            f.write(k.jwks(k.oct_jwk("h1"), k.oct_jwk("h2", second)))
        time.sleep(0.5)
        self.assertRoutedTo(d.get("/orders/1", headers={"Authorization": token}), "A", msg="not loaded yet")
        d.signal(signal.SIGHUP)
        d.wait_for_log(r"jwt keys reloaded \(SIGHUP\): 2 key", timeout=5)
        h.eventually(lambda: d.get("/orders/1", headers={"Authorization": token}).echo["upstream"] == "B1",
                     5.0, message="SIGHUP loaded the key")
        self.assertEqual(metric(self.metrics(d), "figshift_jwt_keys_reloads_total", 'result="success"'), 1)

    def test_a_bad_keys_file_at_start_is_a_clear_error(self):
        path = os.path.join(self.keys.dir, "bad.json")
        with open(path, "w") as f:
            f.write("{}")
        d = h.Daemon(self.migration_store(0), {"jwt": {"keys_file": path}})
        r = subprocess.run([h.figshift_bin(), "serve", "--config", d.config_path],
                           capture_output=True, text=True, timeout=20)
        shutil.rmtree(d.dir, ignore_errors=True)
        self.assertEqual(r.returncode, 2, r)
        self.assertIn("jwt.keys_file", r.stderr)
        self.assertIn("must be a JWKS", r.stderr)

    # -- unique users -------------------------------------------------------------

    def test_unique_users_per_upstream(self):
        d = self.start(30, "header:X-User")
        users = ["visitor-%d" % i for i in range(500)]
        conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=h.SOCKET_TIMEOUT)
        for _ in range(2):  # each twice: counted once
            for u in users:
                h.read_response(conn, "GET", "/orders/1", {"X-User": u})
        conn.close()
        on_b1 = sum(1 for u in users if bucket(u) < 30)
        text = self.metrics(d)
        for name, want in (("B1", on_b1), ("A", len(users) - on_b1)):
            got = metric(text, "figshift_unique_users", 'upstream="%s",window="5m"' % name)
            self.assertLessEqual(abs(got - want), max(2, 0.025 * want), "%s: %s vs %s" % (name, got, want))
        status = json.loads(d.admin_request("GET", "/admin/status").body)
        self.assertAlmostEqual(status["unique_users"]["B1"], on_b1, delta=max(2, 0.025 * on_b1))
        self.assertEqual(status["user_key"], "header:X-User")
        for u in users[:20]:  # names are never kept or logged
            self.assertNotIn(u, "\n".join(d.log_lines() + d.stdout_lines))


if __name__ == "__main__":
    unittest.main()
