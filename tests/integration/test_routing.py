"""Routing through the real daemon: docs/design.md section 1, forwarding, redirect mode."""

import base64
import http.client
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import basic, bucket_of  # noqa: E402

USERS = list(h.REFERENCE) + h.EXTRA_USERS


class RoutingTest(h.ThreeUpstreamsMixin, h.FigTestCase):
    """The store: self.migration_store(split), /orders on B1 as /v2/orders, /users on B2."""

    B2_ROUTE = "/users"

    def expected(self, user, split, path):
        """(upstream, upstream path) per docs/design.md section 1 with the routes of migration_store()."""
        if user is None or bucket_of(user) >= split:
            return "A", path
        p = path.split("?")[0]
        q = path[len(p):]
        if p == "/orders" or p.startswith("/orders/"):
            return "B1", "/v2/orders" + p[len("/orders"):] + q
        if p == "/users" or p.startswith("/users/"):
            return "B2", path
        return "A", path

    def test_reference_users_at_splits(self):
        paths = ["/orders/1?x=1&y=%20z", "/users/7", "/ordersx", "/other"]
        for split in (0, 25, 50, 100):
            with self.subTest(split=split):
                d = self.daemon(self.migration_store(split))
                conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=h.SOCKET_TIMEOUT)
                try:
                    for user in USERS:
                        for path in paths:
                            want, want_path = self.expected(user, split, path)
                            r = h.read_response(conn, "GET", path, {"Authorization": basic(user)})
                            self.assertRoutedTo(r, want, want_path,
                                                "split=%d user=%r (bucket %d) path=%s"
                                                % (split, user, bucket_of(user), path))
                finally:
                    conn.close()
                d.stop()

    def test_reference_buckets_boundaries(self):
        # a split equal to a user's bucket keeps them legacy; one more migrates them
        for user, (_, bucket) in h.REFERENCE.items():
            if bucket == 0:
                continue
            with self.subTest(user=user):
                d = self.daemon(self.migration_store(bucket))
                self.assertRoutedTo(d.get("/orders/1", user=user), "A", "/orders/1", "split == bucket")
                d.write_store(self.migration_store(bucket + 1))
                h.eventually(lambda: d.get("/orders/1", user=user).echo["upstream"] == "B1", 3.0,
                             message="user %r migrated at split %d" % (user, bucket + 1))
                self.assertRoutedTo(d.get("/orders/1", user=user), "B1", "/v2/orders/1")
                d.stop()

    def test_migrated_user_paths(self):
        d = self.daemon(self.migration_store(100))
        user = "hello"
        self.assertRoutedTo(d.get("/orders/1?a=b&c=%2F", user=user), "B1", "/v2/orders/1?a=b&c=%2F")
        self.assertRoutedTo(d.get("/orders", user=user), "B1", "/v2/orders")
        self.assertRoutedTo(d.get("/orders?x=1", user=user), "B1", "/v2/orders?x=1")
        self.assertRoutedTo(d.get("/orders/", user=user), "B1", "/v2/orders/")
        self.assertRoutedTo(d.get("/ordersx/1", user=user), "A", "/ordersx/1")
        self.assertRoutedTo(d.get("/users", user=user), "B2", "/users")
        self.assertRoutedTo(d.get("/users/9?q", user=user), "B2", "/users/9?q")
        self.assertRoutedTo(d.get("/unmapped/path?k=v", user=user), "A", "/unmapped/path?k=v")
        self.assertRoutedTo(d.get("/", user=user), "A", "/")
        # routes match the path only, case-sensitively, on segment boundaries
        self.assertRoutedTo(d.get("/x?next=/orders/1", user=user), "A", "/x?next=/orders/1")
        self.assertRoutedTo(d.get("/Orders/1", user=user), "A", "/Orders/1")
        self.assertRoutedTo(d.get("/order", user=user), "A", "/order")
        self.assertRoutedTo(d.get("/users?x=/orders", user=user), "B2", "/users?x=/orders")

    def test_longest_prefix_wins(self):
        d = self.daemon(self.migration_store(100, **{"route:/orders/archive": "B2 /old"}))
        self.assertRoutedTo(d.get("/orders/archive/3", user="x"), "B2", "/old/3")
        self.assertRoutedTo(d.get("/orders/archived", user="x"), "B1", "/v2/orders/archived")
        self.assertRoutedTo(d.get("/orders/7", user="x"), "B1", "/v2/orders/7")

    def test_root_route_catches_unmapped_paths(self):
        d = self.daemon(self.migration_store(100, **{"route:/": "B2 /all"}))
        self.assertRoutedTo(d.get("/orders/1", user="hello"), "B1", "/v2/orders/1")
        self.assertRoutedTo(d.get("/anything/else?q=1", user="hello"), "B2", "/all/anything/else?q=1")
        self.assertRoutedTo(d.get("/", user="hello"), "B2")
        self.assertRoutedTo(d.get("/anything"), "A", "/anything")

    def test_anonymous_and_non_basic_go_to_legacy(self):
        d = self.daemon(self.migration_store(100))
        hello_pw = base64.b64encode(b"hello:pw").decode()  # aGVsbG86cHc=
        legacy_cases = {
            "no header": None,
            "bearer": "Bearer abc.def.ghi",
            "digest": 'Digest username="hello"',
            "bad base64": "Basic !!!notbase64!!!",
            "no colon": "Basic " + base64.b64encode(b"hello").decode(),
            "empty credentials": "Basic ",
            "scheme only": "Basic",
            "wrong padding": "Basic " + hello_pw + "=",
            "padding in the middle": "Basic aGVs=bG86cHc=",
            "basic without space": "Basic" + hello_pw,
        }
        for name, value in legacy_cases.items():
            with self.subTest(case=name):
                headers = {} if value is None else {"Authorization": value}
                r = d.request("GET", "/orders/1", headers)
                self.assertRoutedTo(r, "A", "/orders/1", name)
        migrated_cases = {
            "lower-case scheme": "basic " + hello_pw,
            "upper-case scheme": "BASIC " + hello_pw,
            "several spaces": "Basic    " + hello_pw,
            "no padding": "Basic " + hello_pw.rstrip("="),
            "empty password": "Basic " + base64.b64encode(b"hello:").decode(),
            "colon in password": "Basic " + base64.b64encode(b"hello:a:b:c").decode(),
            "empty username": "Basic " + base64.b64encode(b":pw").decode(),
        }
        for name, value in migrated_cases.items():
            with self.subTest(case=name):
                r = d.request("GET", "/orders/1", {"Authorization": value})
                self.assertRoutedTo(r, "B1", "/v2/orders/1", name)

    def test_anonymous_is_legacy_even_at_low_buckets(self):
        # the empty username (bucket 48) is a user; no credentials at all is anonymous
        d = self.daemon(self.migration_store(49))
        self.assertRoutedTo(d.get("/orders/1", user=""), "B1", "/v2/orders/1")
        self.assertRoutedTo(d.request("GET", "/orders/1"), "A", "/orders/1")

    def test_invalid_utf8_username_is_hashed_with_replacement_chars(self):
        # b"\xff" decodes to U+FFFD; b"\xe2\x82" (truncated 3-byte sequence) is ONE U+FFFD (maximal subpart)
        cases = [b"\xff", b"ab\xe2\x82", b"\xed\xa0\x80x", b"\xf0\x9f\x98"]
        for raw in cases:
            text = raw.decode("utf-8", errors="replace")  # Python follows the same maximal-subpart practice
            b = bucket_of(text)
            with self.subTest(raw=raw, bucket=b):
                d = self.daemon(self.migration_store(b + 1))
                auth = "Basic " + base64.b64encode(raw + b":pw").decode()
                self.assertRoutedTo(d.request("GET", "/orders/1", {"Authorization": auth}), "B1", "/v2/orders/1")
                d.write_store(self.migration_store(b))
                h.eventually(lambda: d.request("GET", "/orders/1", {"Authorization": auth}).echo["upstream"] == "A",
                             3.0, message="legacy at split == bucket")
                d.stop()

    def test_hash_salt(self):
        d = None
        for salt in ("pepper", "s\u00e4lz\U0001F600"):
            users = [u for u in USERS if (bucket_of(u, salt) < 50) != (bucket_of(u) < 50)]
            self.assertTrue(users, "test data: some users must change group with the salt")
            kv = self.migration_store(50, **{"hash-salt": salt})
            if d is None:
                d = self.daemon(kv)
            else:
                d.write_store(kv)
                h.eventually(lambda: all(d.get("/orders/5", user=u).echo["upstream"] ==
                                         ("B1" if bucket_of(u, salt) < 50 else "A") for u in users[:3]),
                             3.0, message="salt %r applied" % salt)
            for user in USERS:
                want = "B1" if bucket_of(user, salt) < 50 else "A"
                self.assertRoutedTo(d.get("/orders/5", user=user), want, msg="salt %r user %r salted bucket %d"
                                    % (salt, user, bucket_of(user, salt)))

    def test_base_path_joining(self):
        kv = self.migration_store(100)
        kv["APIGW_A_URL"] = self.a.url(base="/legacy")
        kv["APIGW_B1_URL"] = self.b1.url(base="/prod")
        kv["APIGW_B2_URL"] = self.b2.url(base="/stage/v1")
        d = self.daemon(kv)
        self.assertRoutedTo(d.get("/orders/1?q=1", user="u"), "B1", "/prod/v2/orders/1?q=1")
        self.assertRoutedTo(d.get("/orders", user="u"), "B1", "/prod/v2/orders")
        self.assertRoutedTo(d.get("/users/3", user="u"), "B2", "/stage/v1/users/3")
        self.assertRoutedTo(d.get("/x/y?z", user="u"), "A", "/legacy/x/y?z")
        self.assertRoutedTo(d.get("/", user="u"), "A", "/legacy/")
        self.assertRoutedTo(d.request("GET", "/anon"), "A", "/legacy/anon")

    def test_ipv6_literal_upstream(self):
        b1 = self.upstream("B1", dual_stack=True)
        if len(b1.servers) < 2:
            self.skipTest("no IPv6 loopback")
        kv = self.migration_store(100)
        kv["APIGW_B1_URL"] = "http://[::1]:%d/p" % b1.port
        d = self.daemon(kv)
        r = d.get("/orders/1", user="hello")
        self.assertRoutedTo(r, "B1", "/p/v2/orders/1")
        self.assertEqual(r.echo["headers"]["host"], "[::1]:%d" % b1.port)
        self.assertEqual(r.echo["peer"], "::1")

    def test_several_listeners(self):
        d = self.daemon(self.migration_store(100), config={"listen": [{"address": "127.0.0.1", "port": 0},
                                                            {"address": "127.0.0.1", "port": 0}]})
        h.eventually(lambda: len(set(d.ports)) == 2, 3.0, message="two 'listening for traffic' lines")
        for port in d.ports:
            r = h.request(port, "GET", "/orders/3", {"Authorization": basic("hello")})
            self.assertRoutedTo(r, "B1", "/v2/orders/3", "listener %d" % port)

    def test_base_path_with_trailing_slash_is_not_doubled(self):
        kv = self.migration_store(100)
        kv["APIGW_B1_URL"] = self.b1.url(base="/prod/")
        d = self.daemon(kv)
        self.assertRoutedTo(d.get("/orders/1", user="u"), "B1", "/prod/v2/orders/1")

    def test_forwarded_headers(self):
        d = self.daemon(self.migration_store(100))
        auth = basic("hello", "s3cr3t:with:colons")
        r = d.request("GET", "/orders/1?q=2", {"Authorization": auth, "Host": "api.example.com",
                                               "X-Custom": "kept", "Accept": "application/json"})
        self.assertRoutedTo(r, "B1", "/v2/orders/1?q=2")
        hd = r.echo["headers"]
        self.assertEqual(hd.get("authorization"), auth, "Authorization must be forwarded untouched")
        self.assertEqual(hd.get("host"), "127.0.0.1:%d" % self.b1.port)
        self.assertEqual(hd.get("x-forwarded-for"), "127.0.0.1")
        self.assertEqual(hd.get("x-forwarded-proto"), "http")
        self.assertEqual(hd.get("x-forwarded-host"), "api.example.com")
        self.assertEqual(hd.get("x-custom"), "kept")
        self.assertEqual(hd.get("accept"), "application/json")
        self.assertEqual(r.echo["method"], "GET")

        # an untrusted client's X-Forwarded-For is replaced (it could name any address)
        r = d.request("GET", "/anything", {"X-Forwarded-For": "203.0.113.9", "Host": "h.example"})
        self.assertRoutedTo(r, "A", "/anything")
        self.assertEqual(r.echo["headers"]["x-forwarded-for"], "127.0.0.1")
        self.assertEqual(r.echo["headers"]["host"], "127.0.0.1:%d" % self.a.port)

        # a trusted proxy's X-Forwarded-For gets the client appended
        d2 = self.daemon(self.migration_store(100), config={"trusted_proxies": ["127.0.0.1"]})
        r = d2.request("GET", "/anything", {"X-Forwarded-For": "203.0.113.9", "Host": "h.example"})
        self.assertRoutedTo(r, "A", "/anything")
        xff = [p.strip() for p in r.echo["headers"]["x-forwarded-for"].split(",")]
        self.assertEqual(xff, ["203.0.113.9", "127.0.0.1"])

    def test_x_forwarded_for_over_several_header_lines(self):
        # from a trusted proxy (trusted_proxies) every line is kept
        d = self.daemon(self.migration_store(0), config={"trusted_proxies": ["127.0.0.0/8"]})
        raw = h.raw_exchange(d.port, b"GET /xff HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.1\r\n"
                             b"X-Forwarded-For: 198.51.100.2, 192.0.2.3\r\n\r\n")
        self.assertEqual(raw.status, 200, raw)
        echo = h.json.loads(raw.data.split(b"\r\n\r\n", 1)[1])
        xff = [v for k, v in echo["header_list"] if k == "x-forwarded-for"]
        joined = [p.strip() for v in xff for p in v.split(",")]
        self.assertEqual(joined, ["203.0.113.1", "198.51.100.2", "192.0.2.3", "127.0.0.1"],
                         "every X-Forwarded-For line must be kept, in order, with the client appended: %r" % xff)

    def test_hop_by_hop_headers_removed(self):
        d = self.daemon(self.migration_store(100))
        req = (b"GET /orders/1 HTTP/1.1\r\n"
               b"Host: api.example.com\r\n"
               b"Authorization: " + basic("hello").encode() + b"\r\n"
               b"Connection: keep-alive, X-Secret-Hop, x-other-hop\r\n"
               b"Keep-Alive: timeout=5\r\n"
               b"Proxy-Connection: keep-alive\r\n"
               b"TE: trailers\r\n"
               b"Trailer: X-Checksum\r\n"
               b"Upgrade: example/1\r\n"
               b"X-Secret-Hop: must-not-pass\r\n"
               b"X-Other-Hop: must-not-pass\r\n"
               b"X-End-To-End: passes\r\n"
               b"\r\n")
        raw = h.raw_exchange(d.port, req)
        self.assertEqual(raw.status, 200, raw)
        body = raw.data.split(b"\r\n\r\n", 1)[1]
        echo = h.json.loads(body)
        self.assertEqual(echo["upstream"], "B1")
        hd = echo["headers"]
        for gone in ("keep-alive", "proxy-connection", "te", "trailer", "upgrade", "x-secret-hop",
                     "x-other-hop", "transfer-encoding"):
            self.assertNotIn(gone, hd, "hop-by-hop header %r was forwarded: %r" % (gone, hd))
        # Connection to the upstream may be absent or the proxy's own, never the client's list
        self.assertNotIn("x-secret-hop", hd.get("connection", "").lower())
        self.assertEqual(hd.get("x-end-to-end"), "passes")

    def test_request_bodies_forwarded(self):
        d = self.daemon(self.migration_store(100))
        body = os.urandom(200_000)
        r = d.request("POST", "/orders", {"Authorization": basic("hello"), "Content-Type": "application/octet-stream"},
                      body)
        self.assertRoutedTo(r, "B1", "/v2/orders")
        self.assertEqual(r.echo["method"], "POST")
        self.assertEqual(r.echo["body_len"], len(body))
        for method in ("PUT", "PATCH", "DELETE", "OPTIONS"):
            r = d.request(method, "/users/1", {"Authorization": basic("hello")}, b"{}")
            self.assertRoutedTo(r, "B2", "/users/1", method)
            self.assertEqual(r.echo["method"], method)
        # chunked request body from the client
        chunked = (b"POST /users/chunky HTTP/1.1\r\nHost: x\r\nAuthorization: " + basic("hello").encode() +
                   b"\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"4\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\n\r\n")
        raw = h.raw_exchange(d.port, chunked)
        self.assertEqual(raw.status, 200, raw)
        echo = h.json.loads(raw.data.split(b"\r\n\r\n", 1)[1])
        self.assertEqual(echo["upstream"], "B2")
        self.assertEqual(echo["body_len"], 23)
        # HEAD: headers only
        r = d.request("HEAD", "/users/1", {"Authorization": basic("hello")})
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"")
        self.assertEqual(r.upstream, "B2")

    def test_large_responses_relayed_intact(self):
        d = self.daemon(self.migration_store(100))
        conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=h.SOCKET_TIMEOUT)
        try:
            for size, chunked in ((0, False), (1, False), (3_000_000, False), (2_500_001, True), (10, True)):
                q = "/orders/big?__size=%d%s" % (size, "&__chunked=1" if chunked else "")
                r = h.read_response(conn, "GET", q, {"Authorization": basic("hello")})
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.upstream, "B1")
                self.assertEqual(r.headers.get("x-echo-path"), "/v2" + q)
                self.assertEqual(len(r.body), size, "size=%d chunked=%s" % (size, chunked))
                self.assertTrue(r.body == h.pattern_bytes(size), "body corrupted (size=%d chunked=%s)"
                                % (size, chunked))
        finally:
            conn.close()

    def test_upstream_status_and_headers_passed_through(self):
        self.b1.status = 404
        self.b1.servers[0].extra_response_headers = [("X-From-Upstream", "yes"), ("Set-Cookie", "a=1"),
                                                     ("Set-Cookie", "b=2")]
        d = self.daemon(self.migration_store(100))
        r = d.get("/orders/1", user="hello")
        self.assertEqual(r.status, 404, r)
        self.assertEqual(r.upstream, "B1")
        self.assertEqual(r.headers.get("x-from-upstream"), "yes")
        cookies = [v for k, v in r.header_list if k.lower() == "set-cookie"]
        self.assertEqual(cookies, ["a=1", "b=2"])
        self.assertEqual(r.echo["upstream"], "B1")

    def test_upstream_hop_by_hop_response_headers_and_connection_close(self):
        # B1 closes its connection after every response and sends hop-by-hop headers
        self.b1.extra_response_headers = [("Connection", "close, X-Resp-Hop"), ("Keep-Alive", "timeout=1"),
                                          ("X-Resp-Hop", "secret"), ("Proxy-Connection", "close"),
                                          ("X-End-To-End", "kept")]
        d = self.daemon(self.migration_store(100))
        conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=h.SOCKET_TIMEOUT)
        try:
            first = None
            for i in range(5):
                r = h.read_response(conn, "GET", "/orders/%d" % i, {"Authorization": basic("hello")})
                self.assertRoutedTo(r, "B1", "/v2/orders/%d" % i, "request %d to an upstream that closes" % i)
                for gone in ("keep-alive", "x-resp-hop", "proxy-connection"):
                    self.assertNotIn(gone, r.headers, "hop-by-hop response header %r relayed" % gone)
                self.assertEqual(r.headers.get("x-end-to-end"), "kept")
                self.assertNotIn("close", (r.headers.get("connection") or "").lower(),
                                 "the upstream's Connection: close must not close the client connection")
                first = first or conn.sock
                self.assertIs(conn.sock, first)
        finally:
            conn.close()

    def test_bodyless_statuses_passed_through(self):
        d = self.daemon(self.migration_store(100))
        conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=h.SOCKET_TIMEOUT)
        try:
            for status in (204, 304, 204):
                self.b1.status = status
                r = h.read_response(conn, "GET", "/orders/1", {"Authorization": basic("hello")})
                self.assertEqual(r.status, status, r)
                self.assertEqual(r.body, b"")
                self.assertEqual(r.upstream, "B1")
            self.b1.status = 200
            # the connection is still in sync after bodyless responses
            r = h.read_response(conn, "GET", "/orders/2", {"Authorization": basic("hello")})
            self.assertRoutedTo(r, "B1", "/v2/orders/2")
        finally:
            conn.close()

    def test_expect_100_continue(self):
        d = self.daemon(self.migration_store(100))
        s = h.socket.create_connection(("127.0.0.1", d.port), timeout=h.SOCKET_TIMEOUT)
        data = b""
        try:
            s.sendall(b"PUT /orders/9 HTTP/1.1\r\nHost: x\r\nAuthorization: " + basic("hello").encode() +
                      b"\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n")
            s.settimeout(1.5)  # like curl: wait a little for 100 Continue, then send anyway
            try:
                data = s.recv(65536)
            except h.socket.timeout:
                pass
            s.sendall(b"hello world")
            deadline = h.time.time() + 5
            while h.time.time() < deadline:
                # drop interim 1xx responses, stop once the final response is complete
                final = data
                while h.re.match(rb"HTTP/1\.1 1\d\d [^\r]*\r\n(?:[^\r]+\r\n)*\r\n", final):
                    final = final.split(b"\r\n\r\n", 1)[1]
                if final and h._response_complete(final):
                    break
                s.settimeout(max(0.05, deadline - h.time.time()))
                try:
                    chunk = s.recv(65536)
                except h.socket.timeout:
                    break
                if not chunk:
                    break
                data += chunk
        finally:
            s.close()
        self.assertTrue(final.startswith(b"HTTP/1.1 200") and h._response_complete(final),
                        "no complete final response within 5 s after the body; got %r" % data)
        interim = h.re.findall(rb"HTTP/1\.1 100[^\r]*", data)
        self.assertLessEqual(len(interim), 1, "more than one 100 Continue relayed: %r" % data)
        echo = h.json.loads(final.split(b"\r\n\r\n", 1)[1])
        self.assertEqual((echo["upstream"], echo["path"], echo["body_len"]), ("B1", "/v2/orders/9", 11))

    def test_redirect_mode(self):
        kv = self.migration_store(50, mode="redirect")
        kv["APIGW_B1_URL"] = self.b1.url(base="/prod")
        d = self.daemon(kv)
        migrated = next(u for u in USERS if bucket_of(u) < 50)
        legacy = next(u for u in USERS if bucket_of(u) >= 50)
        before = len(self.a.requests) + len(self.b1.requests) + len(self.b2.requests)
        cases = [
            (migrated, "/orders/1?q=2", "http://127.0.0.1:%d/prod/v2/orders/1?q=2" % self.b1.port, "B1"),
            (migrated, "/users/9", "http://127.0.0.1:%d/users/9" % self.b2.port, "B2"),
            (migrated, "/other", "http://127.0.0.1:%d/other" % self.a.port, "A"),
            (legacy, "/orders/1?q=2", "http://127.0.0.1:%d/orders/1?q=2" % self.a.port, "A"),
            (None, "/orders/1", "http://127.0.0.1:%d/orders/1" % self.a.port, "A"),
        ]
        for user, path, location, name in cases:
            with self.subTest(user=user, path=path):
                r = d.get(path, user=user)
                self.assertEqual(r.status, 302, r)
                self.assertEqual(r.headers.get("location"), location)
                self.assertEqual(r.upstream, name)
        after = len(self.a.requests) + len(self.b1.requests) + len(self.b2.requests)
        self.assertEqual(before, after, "redirect mode must not contact any upstream")

    def test_keep_alive_many_requests_one_connection(self):
        d = self.daemon(self.migration_store(50))
        conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=h.SOCKET_TIMEOUT)
        try:
            first_sock = None
            for i in range(30):
                user = USERS[i % len(USERS)]
                want, want_path = self.expected(user, 50, "/orders/%d" % i)
                r = h.read_response(conn, "GET", "/orders/%d" % i, {"Authorization": basic(user)})
                self.assertRoutedTo(r, want, want_path, "request %d" % i)
                self.assertNotEqual((r.headers.get("connection") or "").lower(), "close")
                if first_sock is None:
                    first_sock = conn.sock
                self.assertIs(conn.sock, first_sock, "the proxy closed the client connection after request %d" % i)
            # POST with a body on the same connection, then GET again
            r = h.read_response(conn, "POST", "/users/1", {"Authorization": basic("hello")}, b"x" * 5000)
            self.assertEqual(r.status, 200)
            self.assertEqual(r.echo["body_len"], 5000)
            r = h.read_response(conn, "GET", "/last", {})
            self.assertRoutedTo(r, "A", "/last")
            self.assertIs(conn.sock, first_sock)
        finally:
            conn.close()

    def test_client_connection_close_is_honoured(self):
        d = self.daemon(self.migration_store(100))
        raw = h.raw_exchange(d.port, b"GET /orders/1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: " +
                             basic("hello").encode() + b"\r\n\r\n", timeout=5, read_until_close=True)
        self.assertEqual(raw.status, 200, raw)
        self.assertFalse(raw.timed_out, "Connection: close from the client, but the proxy kept the connection open")
        self.assertTrue(raw.closed)
        self.assertIn(b'"upstream": "B1"', raw.data)

    def test_pipelined_requests(self):
        d = self.daemon(self.migration_store(100))
        req = (b"GET /orders/1 HTTP/1.1\r\nHost: x\r\nAuthorization: " + basic("hello").encode() + b"\r\n\r\n"
               b"GET /users/2 HTTP/1.1\r\nHost: x\r\nAuthorization: " + basic("hello").encode() + b"\r\n\r\n"
               b"GET /zzz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        raw = h.raw_exchange(d.port, req, read_until_close=True)
        self.assertTrue(raw.closed, raw)
        self.assertEqual(raw.data.count(b"HTTP/1.1 200"), 3, raw)
        order = [m for m in h.re.findall(rb'"upstream": "(\w+)", "path": "([^"]*)"', raw.data)]
        self.assertEqual(order, [(b"B1", b"/v2/orders/1"), (b"B2", b"/users/2"), (b"A", b"/zzz")])

    def test_http10_client(self):
        d = self.daemon(self.migration_store(100))
        raw = h.raw_exchange(d.port, b"GET /orders/1 HTTP/1.0\r\nAuthorization: " + basic("hello").encode() +
                             b"\r\n\r\n", read_until_close=True)
        self.assertEqual(raw.status, 200, raw)
        self.assertTrue(raw.closed, "HTTP/1.0 without keep-alive: the proxy closes after the response")
        self.assertIn(b'"upstream": "B1"', raw.data)

    def test_debug_header_configurable(self):
        d = self.daemon(self.migration_store(100), config={"debug_header": "x-served-by"})
        r = d.get("/orders/1", user="hello")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers.get("x-served-by"), "B1")
        self.assertNotIn("x-figshift-upstream", r.headers)
        d.stop()
        d = self.daemon(self.migration_store(100), config={"debug_header": ""})
        r = d.get("/orders/1", user="hello")
        self.assertEqual(r.echo["upstream"], "B1")
        self.assertNotIn("x-figshift-upstream", r.headers)

    def test_legacy_upstream_key(self):
        d = self.daemon(self.migration_store(0, **{"legacy-upstream": "B2"}))
        self.assertRoutedTo(d.get("/orders/1", user="hello"), "B2", "/orders/1")
        self.assertRoutedTo(d.request("GET", "/x"), "B2", "/x")

    def test_absolute_form_request_target(self):
        d = self.daemon(self.migration_store(100))
        raw = h.raw_exchange(d.port, b"GET http://api.example.com/orders/5?z=1 HTTP/1.1\r\nHost: api.example.com\r\n"
                             b"Authorization: " + basic("hello").encode() + b"\r\n\r\n")
        self.assertEqual(raw.status, 200, raw)
        echo = h.json.loads(raw.data.split(b"\r\n\r\n", 1)[1])
        self.assertEqual((echo["upstream"], echo["path"]), ("B1", "/v2/orders/5?z=1"))


if __name__ == "__main__":
    unittest.main()
