"""Traffic control through the admin API (docs/admin-api.md "Ramps and rollback"),
observed on the traffic port: ramps move users one way only, rollback is
immediate, shifts start from the current split, ramps survive a restart."""

import http.client
import json
import math
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import bucket_of  # noqa: E402

USERS = ["ramp-user-%03d" % i for i in range(200)]
BUCKET = {u: bucket_of(u) for u in USERS}
SLACK_MS = 60  # scheduling slack when comparing a request's time with the ramp's clock


def split_at(ramp, t_ms, traffic_split=None):
    """DESIGN.md section 2: from + (to - from) * elapsed / duration, floored, clamped."""
    if ramp is None:
        return traffic_split
    dur = ramp["duration_ms"]
    elapsed = min(max(t_ms - ramp["start_ms"], 0), dur)
    if dur == 0:
        return ramp["to"]
    return ramp["from"] + math.floor((ramp["to"] - ramp["from"]) * elapsed / dur)


class TrafficControlTest(h.ThreeUpstreamsMixin, h.FigTestCase):
    B2_ROUTE = "/carts"

    def setUp(self):
        super().setUp()
        self.seed = self.migration_store(0)
        self.d = self.daemon(self.seed)

    # -- helpers -------------------------------------------------------------

    def adm(self, method, path, body=None, headers=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode("utf-8")
        if method == "POST" and body is not None:  # the admin API takes JSON posts only
            headers = dict(headers or {}, **{"Content-Type": "application/json"})
        return self.d.admin_request(method, path, headers, body)

    def status(self):
        r = self.adm("GET", "/admin/status")
        self.assertEqual(r.status, 200, r)
        return r.json

    def shift(self, percent, seconds):
        t0 = h.now_ms()
        r = self.adm("POST", "/admin/traffic-shift", {"percent": percent, "seconds": seconds})
        t1 = h.now_ms()
        self.assertEqual(r.status, 200, r)
        st = r.json
        self.assertIsInstance(st, dict, r)
        self.assertEqual(st["traffic_split"], percent, st)
        return st, t0, t1

    def state(self):
        with open(self.d.store_path, "rb") as f:
            data = f.read()
        r = self.adm("GET", "/admin/kv")
        self.assertEqual(r.status, 200, r)
        return data, r.body, r.headers.get("etag")

    def sample(self, users=USERS, nthreads=4):
        """GET /orders/<i> as every user (keep-alive connections in parallel).
        Returns {user: (upstream, t_start_ms, t_end_ms)}."""
        out = {}
        errors = []
        port = self.d.port

        def run(part):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=h.SOCKET_TIMEOUT)
            try:
                for u in part:
                    i = USERS.index(u) if u in USERS else 0
                    t0 = h.now_ms()
                    r = h.read_response(conn, "GET", "/orders/%d" % i, {"Authorization": h.basic(u)})
                    t1 = h.now_ms()
                    if r.status != 200 or r.echo["upstream"] != r.upstream:
                        errors.append((u, r))
                        continue
                    want_path = "/v2/orders/%d" % i if r.upstream == "B1" else "/orders/%d" % i
                    if r.upstream not in ("A", "B1") or r.echo["path"] != want_path:
                        errors.append((u, r))
                        continue
                    out[u] = (r.upstream, t0, t1)
            except Exception as e:  # noqa: BLE001
                errors.append(("exception", e))
            finally:
                conn.close()

        parts = [users[k::nthreads] for k in range(nthreads)]
        ts = [threading.Thread(target=run, args=(p,)) for p in parts]
        for t in ts:
            t.start()
        for t in ts:
            t.join(30)
        self.assertEqual(errors, [], "bad responses while sampling")
        self.assertEqual(len(out), len(users))
        return out

    def assertSampleMatchesSplit(self, sample, split_fn, tol=0, msg=""):
        """Each user's group agrees with the split (monotone in time) during its request."""
        for u, (up, t0, t1) in sample.items():
            b = BUCKET[u]
            ends = (split_fn(t0 - SLACK_MS), split_fn(t1 + SLACK_MS))
            if up == "B1":
                self.assertLess(b, max(ends) + tol, "%s: user %s bucket %d on B1, split %r" % (msg, u, b, ends))
            else:
                self.assertGreaterEqual(b, min(ends) - tol,
                                        "%s: user %s bucket %d on A, split %r" % (msg, u, b, ends))

    # -- tests ---------------------------------------------------------------

    def test_users_do_not_hash_into_a_few_buckets(self):
        self.assertGreater(len(set(BUCKET.values())), 80)
        self.assertEqual(self.status()["split"], 0)
        self.assertTrue(all(up == "A" for up, _, _ in self.sample().values()))

    def test_ramp_moves_users_one_way_and_completes(self):
        st, t0, t1 = self.shift(100, 4)
        ramp = st["ramp"]
        self.assertIsInstance(ramp, dict, st)
        self.assertEqual((ramp["from"], ramp["to"], ramp["duration_ms"]), (0, 100, 4000), ramp)
        self.assertTrue(t0 - 5 <= ramp["start_ms"] <= t1 + 5, (t0, ramp, t1))
        self.assertTrue(ramp["active"])
        self.assertLessEqual(st["split"], split_at(ramp, t1 + SLACK_MS))
        self.assertEqual(self.d.read_store()["traffic-split"], "100")
        self.assertEqual(json.loads(self.d.read_store()["traffic-ramp"])["start_ms"], ramp["start_ms"])
        end = ramp["start_ms"] + ramp["duration_ms"]
        lo = lambda t: split_at(ramp, t)  # noqa: E731
        seen_b1 = set()
        counts = []
        rounds = 0
        while h.now_ms() < end + 250:
            s = self.sample()
            on_b1 = {u for u, (up, _, _) in s.items() if up == "B1"}
            back = {u for u in seen_b1 if s[u][0] == "A"}
            self.assertEqual(back, set(), "round %d: users seen on B1 came back to A: %s"
                             % (rounds, sorted(back)[:10]))
            seen_b1 |= on_b1
            counts.append(len(on_b1))
            self.assertSampleMatchesSplit(s, lo, msg="round %d" % rounds)
            s0 = h.now_ms()
            stt = self.status()
            s1 = h.now_ms()
            self.assertTrue(lo(s0 - SLACK_MS) <= stt["split"] <= lo(s1 + SLACK_MS),
                            "round %d: status split %d, clock says %d..%d"
                            % (rounds, stt["split"], lo(s0), lo(s1)))
            self.assertEqual(stt["traffic_split"], 100)
            if s1 < end - SLACK_MS:
                self.assertTrue(stt["ramp"]["active"], stt)
            sr = stt["ramp"]
            self.assertEqual((sr["from"], sr["to"], sr["start_ms"]), (0, 100, ramp["start_ms"]), sr)
            self.assertTrue(0 <= sr["progress"] <= 1, sr)
            self.assertTrue(max(0, end - s1 - SLACK_MS) <= sr["remaining_ms"] <= max(0, end - s0 + SLACK_MS),
                            (s0, s1, sr))
            rounds += 1
        self.assertEqual(counts, sorted(counts), "share of users on B1 must never fall: %r" % counts)
        self.assertGreaterEqual(len({c for c in counts if 0 < c < 200}), 4,
                                "the ramp is gradual, not a jump: %r" % counts)
        final = self.sample()
        self.assertEqual({up for up, _, _ in final.values()}, {"B1"}, "after the ramp everyone is on B1")
        stt = self.status()
        self.assertEqual((stt["split"], stt["traffic_split"]), (100, 100), stt)
        self.assertFalse(stt["ramp"] and stt["ramp"]["active"], stt)

    def test_rollback_mid_ramp_is_immediate(self):
        st, _, _ = self.shift(100, 4)
        ramp = st["ramp"]
        time.sleep(1.5)
        s = self.sample()
        self.assertGreater(sum(up == "B1" for up, _, _ in s.values()), 10, "mid-ramp, some users moved")
        r = self.adm("POST", "/admin/rollback")
        self.assertEqual(r.status, 200, r)
        st = r.json
        self.assertEqual((st["split"], st["traffic_split"], st["ramp"]), (0, 0, None), st)
        s = self.sample()  # the very next request of every user
        wrong = sorted(u for u, (up, _, _) in s.items() if up != "A")
        self.assertEqual(wrong, [], "after rollback every user goes to A")
        store = self.d.read_store()
        self.assertEqual(store["traffic-split"], "0")
        self.assertNotIn("traffic-ramp", store)
        # and it stays rolled back past the old ramp's end
        time.sleep(max(0, (ramp["start_ms"] + ramp["duration_ms"] - h.now_ms()) / 1000) + 0.1)
        self.assertEqual(self.status()["split"], 0)
        self.assertTrue(all(up == "A" for up, _, _ in self.sample(USERS[:50]).values()))

    def test_shift_with_zero_seconds_is_immediate(self):
        st, _, _ = self.shift(60, 0)
        self.assertEqual((st["split"], st["ramp"]), (60, None), st)
        s = self.sample()
        for u, (up, _, _) in s.items():
            self.assertEqual(up, "B1" if BUCKET[u] < 60 else "A", "user %s bucket %d at split 60" % (u, BUCKET[u]))
        # during a ramp, seconds 0 cancels it
        self.shift(100, 30)
        st, _, _ = self.shift(20, 0)
        self.assertEqual((st["split"], st["ramp"]), (20, None), st)
        self.assertNotIn("traffic-ramp", self.d.read_store())
        s = self.sample()
        for u, (up, _, _) in s.items():
            self.assertEqual(up, "B1" if BUCKET[u] < 20 else "A", "user %s bucket %d at split 20" % (u, BUCKET[u]))
        # B2 serves /carts for the same users
        r = self.d.get("/carts/1", user=min(USERS, key=BUCKET.get))
        self.assertRoutedTo(r, "B2", "/carts/1")

    def test_shift_mid_ramp_starts_from_current_split(self):
        # from a fixed split: exact
        self.shift(40, 0)
        st, _, _ = self.shift(80, 4)
        self.assertEqual((st["ramp"]["from"], st["ramp"]["to"]), (40, 80), st)
        self.assertTrue(40 <= st["split"] <= 41, st)
        # from the middle of a ramp: the split of that moment
        time.sleep(1.2)
        first = st["ramp"]
        t0 = h.now_ms()
        st, _, t1 = self.shift(0, 4)
        second = st["ramp"]
        self.assertTrue(split_at(first, t0) - 1 <= second["from"] <= split_at(first, t1) + 1,
                        "ramp.from %d, first ramp's split was %d..%d" % (second["from"], split_at(first, t0),
                                                                          split_at(first, t1)))
        self.assertGreater(second["from"], 45, "1.2 s into 40->80 over 4 s: %r" % second)
        self.assertEqual(second["to"], 0)
        # no jump: right after the shift, users follow the new ramp from where the old one was
        s = self.sample()
        self.assertSampleMatchesSplit(s, lambda t: split_at(second, t), tol=1, msg="ramp down")
        self.assertGreater(sum(up == "B1" for up, _, _ in s.values()), 40,
                           "users below the split are still on B1 just after the new shift")

    def test_ramp_survives_a_restart(self):
        st, _, _ = self.shift(100, 6)
        ramp = st["ramp"]
        start = ramp["start_ms"]
        time.sleep(max(0, (start + 2000 - h.now_ms()) / 1000))
        self.d.terminate()
        self.assertEqual(self.d.wait(), 0)
        time.sleep(max(0, (start + 3000 - h.now_ms()) / 1000))
        self.d.restart()
        t0 = h.now_ms()
        st = self.status()
        t1 = h.now_ms()
        self.assertEqual(st["ramp"]["start_ms"], start, st)
        self.assertEqual((st["ramp"]["from"], st["ramp"]["to"], st["ramp"]["duration_ms"]), (0, 100, 6000))
        self.assertTrue(split_at(ramp, t0) - 10 <= st["split"] <= split_at(ramp, t1) + 10,
                        "after restart split %d, clock says %d..%d" % (st["split"], split_at(ramp, t0),
                                                                       split_at(ramp, t1)))
        self.assertGreater(st["split"], 30)
        lo = lambda t: split_at(ramp, t)  # noqa: E731
        self.assertSampleMatchesSplit(self.sample(), lo, msg="after restart")
        time.sleep(max(0, (start + 6000 - h.now_ms()) / 1000) + 0.2)
        st = self.status()
        self.assertEqual(st["split"], 100, st)
        self.assertEqual({up for up, _, _ in self.sample().values()}, {"B1"})

    def test_bad_shift_bodies_change_nothing(self):
        self.shift(50, 60)  # a ramp in progress: still nothing may change
        before = self.state()
        bodies = ['{"percent":101,"seconds":10}', '{"percent":-1,"seconds":10}', '{"percent":"50","seconds":10}',
                  '{"percent":50,"seconds":-1}', '{"seconds":10}', 'not json', '{"percent":50.5,"seconds":1}',
                  '{"percent":50,"seconds":"10"}', '{"percent":50,"seconds":86401}', '[50,10]',
                  '{"percent":null,"seconds":10}', '', '{"percent":50,"seconds":10', '{"percent":true}']
        for body in bodies:
            with self.subTest(body=body):
                r = self.adm("POST", "/admin/traffic-shift", body)
                self.assertEqual(r.status, 400, r)
                self.assertIsInstance(r.json, dict, r)
                self.assertIsInstance(r.json.get("error"), str, r)
                self.assertEqual(self.state(), before, "a refused shift changes nothing")
        r = self.adm("POST", "/admin/traffic-shift", '{"percent":101,"seconds":10}')
        self.assertIn("percent", r.json["error"])
        r = self.adm("POST", "/admin/traffic-shift", '{"percent":50,"seconds":-1}')
        self.assertIn("seconds", r.json["error"])
        st = self.status()
        self.assertEqual((st["traffic_split"], st["ramp"]["to"], st["ramp"]["duration_ms"]), (50, 50, 60000), st)


if __name__ == "__main__":
    unittest.main()
