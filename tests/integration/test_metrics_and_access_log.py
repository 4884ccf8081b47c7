"""Observability: GET /metrics (Prometheus text format, checked by promtool, counters
exact against what the test sent) and the JSON access log (one line per request,
never the password, the Authorization header or, unless opted in, the username).

promtool comes from Debian's prometheus package (scripts/setup.sh installs it); the
test fails, not skips, when it is absent.
"""

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import unittest
import uuid
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

SAMPLE_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$")
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text: str) -> list[tuple[str, dict, float]]:
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE_RE.match(line)
        if not m:
            raise AssertionError("unparsable metrics line: %r" % line)
        labels = {k: v for k, v in LABEL_RE.findall(m.group(2) or "")}
        out.append((m.group(1), labels, float(m.group(3))))
    return out


def total(samples, name, **where) -> float:
    return sum(v for n, lab, v in samples
               if n == name and all(lab.get(k) == w for k, w in where.items()))


def value(samples, name) -> float:
    vals = [v for n, lab, v in samples if n == name and not lab]
    if len(vals) != 1:
        raise AssertionError("expected one unlabelled sample of %s, got %r" % (name, vals))
    return vals[0]


def promtool() -> str:
    path = shutil.which("promtool")
    if not path:
        raise AssertionError("promtool not found on PATH: run scripts/setup.sh "
                             "(it installs Debian's prometheus package, which provides promtool)")
    return path


class ObservabilityCase(h.ThreeUpstreamsMixin, h.FigTestCase):
    B2_ROUTE = "/payments"

    def setUp(self):
        super().setUp()
        self.seed = self.migration_store(40)

    def start(self, config=None, seed=None):
        self.d = self.daemon(seed or self.seed, config)
        self.d.admin()
        return self.d

    def scrape(self) -> str:
        r = self.d.admin_request("GET", "/metrics")
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.headers.get("content-type", "").startswith("text/plain"), r.headers)
        return r.body.decode("utf-8")

    def check_with_promtool(self, text: str):
        p = subprocess.run([promtool(), "check", "metrics"], input=text.encode("utf-8"),
                           capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 0, "promtool check metrics failed:\n%s%s\n---- scrape ----\n%s"
                         % (p.stdout.decode(), p.stderr.decode(), text[:4000]))

    @staticmethod
    def expected_upstream(user, path, split):
        """The independent routing rule (harness.bucket_of) for this test's store."""
        if user is None or h.bucket_of(user) >= split:
            return "A", "legacy"
        for prefix, name in (("/orders", "B1"), ("/payments", "B2")):
            if path == prefix or path.startswith(prefix + "/"):
                return name, "new"
        return "A", "new"


class MetricsTest(ObservabilityCase):
    def test_scrape_under_load_passes_promtool_and_counts_are_exact(self):
        self.start()
        users = list(h.REFERENCE) + h.EXTRA_USERS + [None]  # None: anonymous
        paths = ["/orders/7", "/payments/3?x=1", "/other", "/orders"]
        per_pair = 4
        expected = Counter()
        expected_group = Counter()
        for user in users:
            for path in paths:
                up, group = self.expected_upstream(user, path.split("?")[0], 40)
                expected[up] += per_pair
                expected_group[group] += per_pair
        self.assertTrue(all(expected[n] > 0 for n in ("A", "B1", "B2")), expected)
        n_requests = sum(expected.values())

        failures = []
        got = Counter()
        lock = threading.Lock()

        def worker(chunk):
            import http.client
            conn = http.client.HTTPConnection("127.0.0.1", self.d.port, timeout=h.SOCKET_TIMEOUT)
            try:
                for user in chunk:
                    hd = {} if user is None else {"Authorization": h.basic(user, "pw-" + str(user))}
                    for path in paths:
                        for _ in range(per_pair):
                            r = h.read_response(conn, "GET", path, hd)
                            with lock:
                                got[r.upstream] += 1
                                if r.status != 200:
                                    failures.append(r)
            except Exception as e:  # noqa: BLE001 - reported below
                with lock:
                    failures.append(e)
            finally:
                conn.close()

        threads = [threading.Thread(target=worker, args=(users[i::8],)) for i in range(8)]
        scrapes = []
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):  # scrape while the load runs
            scrapes.append(self.scrape())
            time.sleep(0.02)
        for t in threads:
            t.join()
        self.assertEqual(failures, [])
        self.assertEqual(dict(got), dict(expected), "the debug header agrees with the routing rule")

        mid = [s for s in scrapes if 0 < total(parse_metrics(s), "figshift_requests_total") < n_requests]
        self.assertTrue(mid, "at least one scrape taken while requests were in flight (%d scrapes)" % len(scrapes))
        for text in mid[:3] + [mid[-1]]:
            self.check_with_promtool(text)

        final_text = self.scrape()
        self.check_with_promtool(final_text)
        final = parse_metrics(final_text)
        for name in ("A", "B1", "B2"):
            self.assertEqual(total(final, "figshift_requests_total", upstream=name), expected[name],
                             "requests_total{upstream=%s}" % name)
            self.assertEqual(total(final, "figshift_requests_total", upstream=name, code="2xx"), expected[name])
            self.assertEqual(total(final, "figshift_upstream_latency_seconds_count", upstream=name), expected[name],
                             "latency histogram _count of %s" % name)
            self.assertEqual(total(final, "figshift_upstream_latency_seconds_bucket", upstream=name, le="+Inf"),
                             expected[name])
            # cumulative buckets never decrease
            buckets = [(float(lab["le"]), v) for n, lab, v in final
                       if n == "figshift_upstream_latency_seconds_bucket" and lab.get("upstream") == name]
            counts = [v for _, v in sorted(buckets)]
            self.assertEqual(counts, sorted(counts), "buckets of %s are cumulative" % name)
            self.assertGreater(total(final, "figshift_upstream_latency_seconds_sum", upstream=name), 0)
            self.assertEqual(total(final, "figshift_upstream_errors_total", upstream=name), 0)
        self.assertEqual(len(self.a.requests), expected["A"])
        self.assertEqual(len(self.b1.requests), expected["B1"])
        self.assertEqual(len(self.b2.requests), expected["B2"])
        for group in ("legacy", "new"):
            self.assertEqual(total(final, "figshift_requests_total", group=group), expected_group[group], group)
        self.assertEqual(value(final, "figshift_traffic_split_percent"), 40)
        # the admin status counts the same
        status = self.d.admin_request("GET", "/admin/status").json
        self.assertEqual(status["requests"], {k: expected[k] for k in ("A", "B1", "B2")})

    def test_split_gauges_follow_changes(self):
        self.start()
        m = parse_metrics(self.scrape())
        self.assertEqual(value(m, "figshift_traffic_split_percent"), 40)
        self.assertEqual(value(m, "figshift_traffic_split_target_percent"), 40)
        self.assertEqual(value(m, "figshift_ramp_active"), 0)
        version = value(m, "figshift_store_version")

        self.assertEqual(self.d.admin_request("PUT", "/admin/kv/traffic-split", body=b"70").status, 200)
        m = parse_metrics(self.scrape())
        self.assertEqual(value(m, "figshift_traffic_split_percent"), 70)
        self.assertEqual(value(m, "figshift_traffic_split_target_percent"), 70)
        self.assertGreater(value(m, "figshift_store_version"), version)

        r = self.d.admin_request("POST", "/admin/traffic-shift", {"Content-Type": "application/json"},
                                 b'{"percent":100,"seconds":600}')
        self.assertEqual(r.status, 200, r)
        m = parse_metrics(self.scrape())
        self.assertEqual(value(m, "figshift_ramp_active"), 1)
        self.assertEqual(value(m, "figshift_traffic_split_target_percent"), 100)
        self.assertGreaterEqual(value(m, "figshift_traffic_split_percent"), 70)
        self.assertLess(value(m, "figshift_traffic_split_percent"), 100)
        self.assertLess(value(m, "figshift_ramp_progress_ratio"), 0.1)
        self.check_with_promtool(self.scrape())

        self.assertEqual(self.d.admin_request("POST", "/admin/rollback").status, 200)
        m = parse_metrics(self.scrape())
        self.assertEqual(value(m, "figshift_traffic_split_percent"), 0)
        self.assertEqual(value(m, "figshift_traffic_split_target_percent"), 0)
        self.assertEqual(value(m, "figshift_ramp_active"), 0)

        # a hand edit of the store file is a reload, counted
        reloads = total(m, "figshift_store_reloads_total", result="success")
        store = self.d.read_store()
        store["traffic-split"] = "15"
        self.d.write_store(store)
        h.eventually(lambda: value(parse_metrics(self.scrape()), "figshift_traffic_split_percent") == 15,
                     timeout=5, message="split 15 after a hand edit")
        self.assertGreater(total(parse_metrics(self.scrape()), "figshift_store_reloads_total", result="success"),
                           reloads)

    def test_unreachable_upstream_counts_errors(self):
        seed = dict(self.seed)
        seed["APIGW_DEAD_URL"] = "http://127.0.0.1:%d" % h.closed_port()
        seed["route:/dead"] = "DEAD"
        seed["traffic-split"] = "100"
        self.start(seed=seed)
        n = 7
        for i in range(n):
            r = self.d.get("/dead/%d" % i, user="user%d" % i)
            self.assertProxyError(r, 502)
        self.assertEqual(self.d.get("/other", user="user1").status, 200)
        text = self.scrape()
        self.check_with_promtool(text)
        m = parse_metrics(text)
        self.assertEqual(total(m, "figshift_upstream_errors_total", upstream="DEAD"), n)
        self.assertEqual(total(m, "figshift_upstream_errors_total", upstream="DEAD", kind="connect"), n)
        self.assertEqual(total(m, "figshift_requests_total", upstream="DEAD", code="5xx"), n)
        self.assertEqual(total(m, "figshift_requests_total", upstream="DEAD"), n)
        self.assertEqual(total(m, "figshift_upstream_errors_total", upstream="A"), 0)
        self.assertEqual(total(m, "figshift_requests_total", upstream="A", code="2xx"), 1)


class AccessLogTest(ObservabilityCase):
    def setUp(self):
        super().setUp()
        tag = uuid.uuid4().hex[:10]
        # distinctive strings, so any occurrence in the output is a leak
        self.users = ["zelda-%s-%d" % (tag, i) for i in range(12)]
        self.password = "Pw-%s-never-logged" % tag
        self.split = int(self.seed["traffic-split"])

    def send(self):
        """Sends one request per user and path plus anonymous ones; returns the expected records."""
        sent = []
        for user in self.users:
            for path in ("/orders/1", "/payments/9?q=2", "/other"):
                r = self.d.request("GET", path, {"Authorization": h.basic(user, self.password)})
                self.assertEqual(r.status, 200, r)
                up, group = self.expected_upstream(user, path.split("?")[0], self.split)
                sent.append({"method": "GET", "path": path, "status": 200, "upstream": up, "group": group,
                             "bucket": h.bucket_of(user), "user": user, "bytes": len(r.body)})
        for path in ("/orders/2", "/anon"):
            r = self.d.request("POST", path, {"Content-Length": "3"}, b"abc")
            self.assertEqual(r.status, 200, r)
            sent.append({"method": "POST", "path": path, "status": 200, "upstream": "A", "group": "legacy",
                         "bucket": None, "user": None, "bytes": len(r.body)})
        return sent

    def json_lines(self, lines):
        out = []
        for line in lines:
            if not line.strip():
                continue
            try:
                out.append(json.loads(line))
            except ValueError:
                self.fail("not a JSON line on the access log: %r" % line)
        return out

    def assert_no_secrets(self, text: str, username_allowed: bool):
        for user in self.users:
            creds = "%s:%s" % (user, self.password)
            b64 = base64.b64encode(creds.encode()).decode()
            self.assertNotIn(b64, text, "the raw Authorization value leaked")
            self.assertNotIn(b64[:16], text, "part of the raw Authorization value leaked")
            self.assertNotIn(creds, text)
            if not username_allowed:
                self.assertNotIn(user, text, "the username leaked without include_username")
        self.assertNotIn(self.password, text, "the password leaked")
        self.assertNotIn("Basic ", text)
        self.assertNotIn("authorization", text.lower())

    def check_records(self, records, sent, with_user):
        self.assertEqual(len(records), len(sent), "one line per request:\n%s" % "\n".join(map(str, records)))
        # Lines come in per-worker batches, not in request order: match them by content
        # (two users can share a bucket and path; their echoed bodies differ in length).
        key = lambda r: (r["method"], r["path"], r.get("bucket") if r.get("bucket") is not None else -1,
                         r["upstream"], r["bytes"], (r.get("user") or "") if with_user else "")
        for rec in records:
            for field in ("time", "method", "path", "status", "upstream", "group", "bucket", "latency_ms", "bytes"):
                self.assertIn(field, rec, rec)
            self.assertIsInstance(rec["latency_ms"], (int, float))
            self.assertGreaterEqual(rec["latency_ms"], 0)
            self.assertRegex(rec["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        got = sorted(records, key=key)
        want = sorted(sent, key=key)
        for rec, exp in zip(got, want):
            for field in ("method", "path", "status", "upstream", "group", "bucket", "bytes"):
                self.assertEqual(rec[field], exp[field], "%s of %r (expected %r)" % (field, rec, exp))
            if with_user:
                if exp["user"] is None:
                    self.assertNotIn("user", rec, rec)
                else:
                    self.assertEqual(rec.get("user"), exp["user"], rec)
            else:
                self.assertNotIn("user", rec, rec)

    def stop_and_collect(self):
        self.d.stop()
        time.sleep(0.2)  # the reader threads drain the pipes
        return self.d.stdout_lines, self.d.log_lines()

    def test_default_stdout_one_json_line_per_request_without_credentials(self):
        self.start({"access_log": {"enabled": True, "path": "-", "include_username": False}})
        sent = self.send()
        h.eventually(lambda: len(self.d.stdout_lines) >= len(sent), timeout=5, message="access log lines")
        out, err = self.stop_and_collect()
        self.check_records(self.json_lines(out), sent, with_user=False)
        self.assert_no_secrets("\n".join(out) + "\n".join(err), username_allowed=False)

    def test_include_username_shows_the_user_never_the_password(self):
        self.start({"access_log": {"enabled": True, "path": "-", "include_username": True}})
        sent = self.send()
        out, err = self.stop_and_collect()
        self.check_records(self.json_lines(out), sent, with_user=True)
        self.assertIn(self.users[0], "\n".join(out))
        self.assert_no_secrets("\n".join(out) + "\n".join(err), username_allowed=True)

    def test_log_to_file(self):
        self.start({"access_log": {"enabled": True, "path": "access.log"}})
        sent = self.send()
        out, err = self.stop_and_collect()
        with open(os.path.join(self.d.dir, "access.log"), encoding="utf-8") as f:
            lines = f.read().splitlines()
        self.check_records(self.json_lines(lines), sent, with_user=False)
        self.assertEqual([l for l in out if l.strip()], [], "nothing on stdout when the log goes to a file")
        self.assert_no_secrets("\n".join(lines + out + err), username_allowed=False)

    def test_unwritable_destination_drops_counts_and_never_blocks_traffic(self):
        # /dev/full fails every write with ENOSPC, like a full disk.
        self.start({"access_log": {"enabled": True, "path": "/dev/full", "flush_interval_ms": 50}})
        self.assertEqual(value(parse_metrics(self.scrape()), "figshift_access_log_dropped_bytes_total"), 0)
        sent = self.send()  # every request still answered 200 (asserted in send)
        # one JSON line per request, each well over 100 bytes; each worker flushes on its own
        dropped = h.eventually(
            lambda: (lambda v: v if v > 100 * len(sent) else 0)(
                value(parse_metrics(self.scrape()), "figshift_access_log_dropped_bytes_total")),
            timeout=5, message="every request's line counted as dropped")
        self.send()
        h.eventually(lambda: value(parse_metrics(self.scrape()), "figshift_access_log_dropped_bytes_total")
                     > dropped, timeout=5, message="later drops counted too")
        out, err = self.stop_and_collect()
        warnings = [l for l in err if "access log: cannot write to /dev/full" in l]
        self.assertEqual(len(warnings), 1, "one warning for a run of failed writes, not one per batch:\n%s"
                         % "\n".join(err))
        self.assert_no_secrets("\n".join(out + err), username_allowed=False)

    def test_disabled_writes_nothing(self):
        self.start({"access_log": {"enabled": False}})
        self.send()
        out, err = self.stop_and_collect()
        self.assertEqual([l for l in out if l.strip()], [], "no access log lines when access_log.enabled is false")
        self.assertEqual([n for n in os.listdir(self.d.dir) if n.endswith(".log")], [])
        self.assert_no_secrets("\n".join(out + err), username_allowed=False)


if __name__ == "__main__":
    unittest.main(verbosity=2)
