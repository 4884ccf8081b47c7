"""Guarded rollouts (issue #16) through the real daemon: a traffic-plan advances by
itself, and the `guard` rolls the split back to 0 on its own when a new upstream
fails or slows down; a tripped guard refuses any move above 0 until it is reset."""

import http.client
import json
import os
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import basic  # noqa: E402

USERS = ["user%d" % i for i in range(400)]


class Traffic:
    """Keep-alive clients sending migrated-path requests for many users until stopped."""

    def __init__(self, port, paths=("/orders/1",), threads=3):
        self.port, self.paths = port, paths
        self.stop_flag = threading.Event()
        self.statuses = []
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True) for i in range(threads)]

    def run(self, seed):
        i = seed
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        while not self.stop_flag.is_set():
            i += 7
            try:
                conn.request("GET", self.paths[i % len(self.paths)], headers={"Authorization": basic(USERS[i % len(USERS)])})
                r = conn.getresponse()
                r.read()
                self.statuses.append((r.status, r.getheader("x-figshift-upstream")))
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            time.sleep(0.005)
        conn.close()

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        for t in self.threads:
            t.join(10)


class GuardTest(h.ThreeUpstreamsMixin, h.FigTestCase):

    def status(self, d):
        return json.loads(d.admin_request("GET", "/admin/status").body)

    def post(self, d, path, body):
        return d.admin_request("POST", path, {"Content-Type": "application/json"}, json.dumps(body).encode())

    def wait_for(self, d, predicate, timeout, what):
        deadline = time.time() + timeout
        while time.time() < deadline:
            s = self.status(d)
            if predicate(s):
                return s
            time.sleep(0.2)
        self.fail("%s not within %s s; status: %s" % (what, timeout, json.dumps(self.status(d))[:2000]))

    def cli(self, d, *args):
        return subprocess.run([h.figshift_bin(), *args, "--admin", "http://127.0.0.1:%d" % d.admin()],
                              capture_output=True, text=True, timeout=60)

    def test_b1_failing_30_percent_mid_rollout_rolls_back(self):
        d = self.daemon(self.migration_store(0, guard=json.dumps(
            {"max_error_ratio": 0.05, "window_s": 3, "min_requests": 30})))
        r = self.post(d, "/admin/rollout", {"steps": [{"to": 50, "over_s": 2, "hold_s": 2}, {"to": 100, "over_s": 4}]})
        self.assertEqual(r.status, 200, r)
        with Traffic(d.port):
            time.sleep(2.5)
            self.assertGreater(len(self.b1.requests), 20, "B1 gets traffic during the rollout")
            self.b1.error_ratio = 0.3
            tripped_at = time.time()
            s = self.wait_for(d, lambda s: s["guard"]["tripped"] is not None, 6, "a trip")
            self.assertLess(time.time() - tripped_at, 6)
            t = s["guard"]["tripped"]
            self.assertEqual((t["upstream"], t["metric"], t["threshold"], t["window_s"]), ("B1", "error_ratio", 0.05, 3))
            self.assertGreater(t["value"], 0.05)
            self.assertGreaterEqual(t["requests"], 30)
            self.assertEqual(s["split"], 0)
            self.assertIsNone(s["plan"])
            time.sleep(0.5)
            after = len(self.b1.requests)
            time.sleep(1.5)
        self.assertEqual(len(self.b1.requests), after, "no request reaches B1 after the trip")
        kv = json.loads(d.admin_request("GET", "/admin/kv").body)["data"]
        keys = {item["key"]: item["value"] for item in kv}
        self.assertEqual(keys["traffic-split"], "0")
        self.assertNotIn("traffic-plan", keys)
        self.assertIn("guard-tripped", keys)
        metrics = d.admin_request("GET", "/metrics").body.decode()
        self.assertIn("figshift_guard_tripped 1", metrics)
        self.assertIn("figshift_guard_trips_total 1", metrics)
        self.assertTrue(any("guard tripped: error_ratio on B1" in line for line in d.log_lines()), d.logs())

    def test_slow_b2_rolls_back_on_p99(self):
        d = self.daemon(self.migration_store(100, guard=json.dumps(
            {"max_p99_ms": 200, "window_s": 3, "min_requests": 10})))
        self.b2.delay = 0.4
        with Traffic(d.port, paths=("/users/1",), threads=6):
            s = self.wait_for(d, lambda s: s["guard"]["tripped"] is not None, 8, "a trip on p99")
        t = s["guard"]["tripped"]
        self.assertEqual((t["upstream"], t["metric"]), ("B2", "p99_ms"))
        self.assertGreater(t["value"], 200)
        self.assertEqual(s["split"], 0)

    def test_healthy_plan_runs_to_100_and_noise_below_thresholds_never_trips(self):
        d = self.daemon(self.migration_store(0, guard=json.dumps(
            {"max_error_ratio": 0.05, "window_s": 2, "min_requests": 20})))
        self.b1.error_ratio = 0.02  # noise below the threshold
        r = self.post(d, "/admin/rollout", {"steps": [{"to": 40, "over_s": 1, "hold_s": 1}, {"to": 100, "over_s": 2}]})
        self.assertEqual(r.status, 200, r)
        splits = []
        with Traffic(d.port):
            deadline = time.time() + 6
            while time.time() < deadline:
                s = self.status(d)
                splits.append(s["split"])
                if s["plan"] and s["plan"]["done"]:
                    break
                time.sleep(0.2)
        self.assertEqual(splits, sorted(splits), "the split only rises during a plan")
        s = self.status(d)
        self.assertEqual(s["split"], 100)
        self.assertTrue(s["plan"]["done"])
        self.assertIsNone(s["guard"]["tripped"])
        self.assertTrue(s["guard"]["armed"])
        # windows with fewer than min_requests never trip, however bad (first let the
        # healthy traffic leave the 2 s window, or its requests would count towards min_requests)
        time.sleep(3.5)
        self.b1.error_ratio = 1.0
        for i in range(5):
            d.get("/orders/%d" % i, user=USERS[i])
        time.sleep(3)
        self.assertIsNone(self.status(d)["guard"]["tripped"])

    def test_a_tripped_guard_refuses_shifts_until_reset(self):
        tripped = json.dumps({"metric": "error_ratio", "upstream": "B1", "value": 0.3, "threshold": 0.05})
        d = self.daemon(self.migration_store(0, **{"guard": json.dumps({"max_error_ratio": 0.05}),
                                                   "guard-tripped": tripped}))
        r = self.post(d, "/admin/traffic-shift", {"percent": 25})
        self.assertEqual(r.status, 409, r)
        self.assertIn("guard", json.loads(r.body)["error"])
        r = self.post(d, "/admin/rollout", {"steps": [{"to": 5, "over_s": 1}]})
        self.assertEqual(r.status, 409, r)
        r = d.admin_request("PUT", "/admin/kv/traffic-split", body=b"25")
        self.assertEqual(r.status, 400, r)  # the store refuses it whoever writes
        self.assertEqual(self.status(d)["split"], 0)
        cli = self.cli(d, "shift", "25")
        self.assertNotEqual(cli.returncode, 0, cli)
        self.assertIn("409", cli.stderr)
        status = self.cli(d, "status")
        self.assertIn("TRIPPED", status.stdout, status)
        reset = self.cli(d, "guard", "reset")
        self.assertEqual(reset.returncode, 0, reset)
        self.assertIsNone(self.status(d)["guard"]["tripped"])
        self.assertEqual(self.post(d, "/admin/traffic-shift", {"percent": 25}).status, 200)
        self.assertEqual(self.status(d)["split"], 25)

    def test_restart_mid_plan_resumes_and_rollback_ends_it(self):
        d = self.daemon(self.migration_store(0))
        cli = self.cli(d, "rollout", "--steps", "10:0:100,60:100", "--no-wait")
        self.assertEqual(cli.returncode, 0, cli)
        s = self.status(d)
        self.assertEqual((s["split"], s["plan"]["step"], s["plan"]["phase"]), (10, 0, "holding"))
        d.stop()
        d.restart()
        s = self.status(d)
        self.assertEqual((s["split"], s["plan"]["step"], s["plan"]["phase"]), (10, 0, "holding"))
        r = d.admin_request("POST", "/admin/rollback")
        self.assertEqual(r.status, 200, r)
        s = self.status(d)
        self.assertEqual(s["split"], 0)
        self.assertIsNone(s["plan"])

    def test_bad_plans_and_guards_are_refused_and_change_nothing(self):
        d = self.daemon(self.migration_store(10))
        before = d.admin_request("GET", "/admin/kv").body
        for body in ({"steps": []}, {"steps": [{"to": 5}]}, {"steps": [{"to": 5, "over_s": 1}]},
                     {"steps": [{"to": 101, "over_s": 1}]}, {"plan": []}):
            r = self.post(d, "/admin/rollout", body)
            self.assertEqual(r.status, 400, (body, r))
        for value in (b"{}", b'{"max_error_ratio": 2}', b"banana"):
            r = d.admin_request("PUT", "/admin/kv/guard", body=value)
            self.assertEqual(r.status, 400, (value, r))
            self.assertIn(b"guard: ", r.body)
        self.assertEqual(d.admin_request("GET", "/admin/kv").body, before)
        cli = self.cli(d, "rollout", "--steps", "5:x")
        self.assertEqual(cli.returncode, 2, cli)


if __name__ == "__main__":
    unittest.main()
