"""The etcd backend (#14): replicas of the real figshift binary sharing one
routing store in a real etcd (Debian's etcd-server, started here on loopback
with a temporary data dir and free ports, stopped by pid).

Covered: a write through one replica's admin API reaches all three; an
invalid value written with etcdctl is refused by every replica, which keep
routing; If-Match across two replicas (25 concurrent rounds, one 200 and one
412 each); the seed written exactly once by 3 replicas starting together;
etcd SIGKILLed in the middle of a ramp (routing continues and agrees, writes
answer 503, a replica restarted meanwhile serves its cache, etcd restarted ->
writes work and every replica catches up); a replica cut off while etcd
compacts resyncs; etcd authentication (username + password_file; a wrong
password refuses to start); no etcd and no cache -> refuses to start;
check-config without etcd; a 3-member cluster with the replicas' member
killed -> they fail over to another endpoint.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (Daemon, FigTestCase, ThreeUpstreamsMixin, basic, bucket_of,  # noqa: E402
                     eventually, figshift_bin, migration_store, request)

from etcd_cluster import ETCDCTL, Cut, Etcd, EtcdCluster  # noqa: E402
# etcd states the watch delivered and the replica refused count as failed reloads.
FAILURES = 'figshift_store_reloads_total{result="failure"}'


class EtcdCase(ThreeUpstreamsMixin, FigTestCase):
    PREFIX = "/figshift/"

    def setUp(self):
        super().setUp()
        self.etcd = Etcd().start()
        self.addCleanup(self.etcd.close)
        self.started: list[Daemon] = []

    def tearDown(self):
        super().tearDown()
        outcome = getattr(self, "_outcome", None)
        result = getattr(outcome, "result", None)
        failed = result is not None and any(t is self for t, _ in result.failures + result.errors)
        if failed:
            for d in self.started:
                sys.stderr.write("\n==== %s ====\n%s" % (d.name, d.logs(80)))

    def replica(self, name: str, endpoints=None, seed=None, cache=True, start=True, expect_exit=0,
                prefix=None, password=None) -> Daemon:
        store = {"backend": "etcd", "path": None, "reload_interval_ms": None,
                 "endpoints": endpoints or [self.etcd.url], "prefix": prefix or self.PREFIX,
                 "seed": "seed.json"}
        if cache:
            store["cache"] = "cache/kvs-cache.json"
        if password is not None:
            store["username"] = "figshift"
            store["password_file"] = "etcd.password"
        d = Daemon(seed if seed is not None else self.migration_store(split=10), {"store": store},
                   expect_exit=expect_exit, name=name)
        self.addCleanup(self._stop_daemon, d)
        self.started.append(d)
        if password is not None:
            with open(os.path.join(d.dir, "etcd.password"), "w") as f:
                f.write(password + "\n")
        if start:
            d.start()
        return d

    def replicas(self, n=3, **kw) -> list[Daemon]:
        out = [self.replica("replica-%d" % i, **kw) for i in range(n)]
        for d in out:
            eventually(lambda d=d: self.status(d)["store"]["connection"] == "connected", timeout=10,
                       message="%s connected" % d.name)
        return out

    def status(self, d: Daemon) -> dict:
        r = d.admin_request()
        self.assertEqual(r.status, 200, r)
        return r.json

    def put(self, d: Daemon, key: str, value: str, if_match=None):
        headers = {"Content-Type": "text/plain"}
        if if_match:
            headers["If-Match"] = if_match
        return d.admin_request("PUT", "/admin/kv/" + key, headers, value.encode())

    def wait_all(self, daemons, check, message, timeout=5.0):
        for d in daemons:
            eventually(lambda d=d: check(self.status(d)), timeout=timeout,
                       message="%s: %s" % (d.name, message))

    def cli_status(self, d: Daemon) -> str:
        """`figshift status` against d: the human-readable rows."""
        env = {k: v for k, v in os.environ.items() if k not in ("FIGSHIFT_ADMIN_URL", "FIGSHIFT_ADMIN_TOKEN")}
        env["FIGSHIFT_ADMIN_URL"] = "http://127.0.0.1:%d" % d.admin()
        p = subprocess.run([figshift_bin(), "status"], capture_output=True, text=True, timeout=30, env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout

    def metric(self, d: Daemon, name: str) -> float:
        text = d.admin_request("GET", "/metrics").body.decode()
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise AssertionError("no metric %s in\n%s" % (name, text))


class TestThreeReplicas(EtcdCase):
    def test_a_write_through_one_replica_is_seen_by_all_three_and_routes_there(self):
        rs = self.replicas()
        user = next(u for u in ("user%d" % i for i in range(1000)) if 10 <= bucket_of(u) < 60)
        for d in rs:
            self.assertRoutedTo(request(d.port, "GET", "/orders/1", {"Authorization": basic(user)}), "A")
        r = self.put(rs[0], "traffic-split", "60")
        self.assertEqual(r.status, 200, r)
        self.wait_all(rs, lambda s: s["traffic_split"] == 60, "split 60")
        revision = self.etcd.revision()
        for d in rs:
            self.assertRoutedTo(request(d.port, "GET", "/orders/1", {"Authorization": basic(user)}),
                                "B1", "/v2/orders/1", d.name)
            s = self.status(d)
            self.assertEqual(s["store"]["revision"], revision)
            self.assertEqual(self.metric(d, "figshift_store_connected"), 1)
            self.assertEqual(self.metric(d, "figshift_store_revision"), revision)
            self.assertLess(self.metric(d, "figshift_store_seconds_since_sync"), 5)
        # The etcd key holds the raw value: etcdctl sees what the admin API wrote.
        self.assertEqual(self.etcd.ctl("get", self.PREFIX + "traffic-split", "--print-value-only").stdout.strip(),
                         "60")
        # A write with etcdctl is a valid way to shift, validated like any other.
        self.etcd.ctl("put", self.PREFIX + "traffic-split", "5")
        self.wait_all(rs, lambda s: s["traffic_split"] == 5, "split 5 from etcdctl")

    def test_an_invalid_value_from_etcdctl_is_refused_by_every_replica_which_keep_routing(self):
        rs = self.replicas()
        failures = [self.metric(d, FAILURES) for d in rs]
        self.etcd.ctl("put", self.PREFIX + "traffic-split", "banana")
        self.wait_all(rs, lambda s: s["store"]["refused"] and "traffic-split" in s["store"]["refused"],
                      "refusal shown")
        self.assertRegex(self.cli_status(rs[2]), r"refused\s+traffic-split: .*banana")
        for i, d in enumerate(rs):
            s = self.status(d)
            self.assertEqual(s["traffic_split"], 10)
            self.assertGreater(self.metric(d, FAILURES), failures[i])
            self.assertEqual(self.metric(d, "figshift_store_refused"), 1)
            eventually(lambda d=d: any("refused" in l and "traffic-split" in l for l in d.log_lines()),
                       message="%s logs the refusal naming the key" % d.name)
            self.assertRoutedTo(request(d.port, "GET", "/orders/1"), "A")
        # A write through the admin API is validated as a whole over the last good content.
        r = self.put(rs[1], "route:/orders", "NOPE")
        self.assertEqual(r.status, 400, r)
        self.etcd.ctl("put", self.PREFIX + "traffic-split", "40")
        self.wait_all(rs, lambda s: s["traffic_split"] == 40 and s["store"]["refused"] is None, "valid again")

    def test_if_match_across_two_replicas_one_wins_the_other_gets_412(self):
        rs = self.replicas(2)
        for round_ in range(25):
            etag = self.status(rs[0])["etag"]
            self.wait_all(rs, lambda s: s["etag"] == etag, "same etag")
            results = {}

            def write(i):
                results[i] = self.put(rs[i], "traffic-split", str(20 + round_ % 2 * 10 + i), if_match=etag)

            threads = [threading.Thread(target=write, args=(i,)) for i in (0, 1)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            statuses = sorted(results[i].status for i in (0, 1))
            self.assertEqual(statuses, [200, 412], "round %d: %r" % (round_, results))
            winner = 0 if results[0].status == 200 else 1
            value = 20 + round_ % 2 * 10 + winner
            self.wait_all(rs, lambda s: s["traffic_split"] == value, "round %d converged" % round_)
            self.assertEqual(self.etcd.ctl("get", self.PREFIX + "traffic-split",
                                           "--print-value-only").stdout.strip(), str(value))


class TestSeeding(EtcdCase):
    def test_three_replicas_starting_together_on_an_empty_prefix_seed_once(self):
        seed = self.migration_store(split=33)
        ds = [self.replica("replica-%d" % i, seed=seed, start=False) for i in range(3)]
        threads = [threading.Thread(target=d.start) for d in ds]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for d in ds:
            self.assertTrue(d.alive(), d.logs())
            self.assertEqual(self.status(d)["traffic_split"], 33)
        got = self.etcd.get_json(self.PREFIX, prefix=True)
        self.assertEqual(len(got["kvs"]), len(seed))
        # One transaction wrote every key once: version 1, one create revision for all.
        self.assertEqual({kv["version"] for kv in got["kvs"]}, {1})
        self.assertEqual(len({kv["create_revision"] for kv in got["kvs"]}), 1)
        seeded = sum(any("seeded the empty prefix" in l for l in d.log_lines()) for d in ds)
        self.assertEqual(seeded, 1)


class TestOutage(EtcdCase):
    def test_etcd_killed_mid_ramp_routing_continues_writes_503_cache_serves_and_all_catch_up(self):
        rs = self.replicas()
        r = rs[0].admin_request("POST", "/admin/traffic-shift", {"Content-Type": "application/json"},
                                json.dumps({"percent": 90, "seconds": 120}).encode())
        self.assertEqual(r.status, 200, r)
        self.wait_all(rs, lambda s: s["ramp"] is not None and s["ramp"]["to"] == 90, "ramp seen")
        ramp = self.status(rs[0])["ramp"]
        self.etcd.kill()
        self.wait_all(rs, lambda s: s["store"]["connection"] == "disconnected", "disconnected", timeout=10)
        for d in rs:
            s = self.status(d)
            self.assertEqual({k: s["ramp"][k] for k in ("from", "to", "start_ms", "duration_ms")},
                             {k: ramp[k] for k in ("from", "to", "start_ms", "duration_ms")}, d.name)
            self.assertIsNotNone(s["store"]["stale_since_ms"])
            self.assertEqual(d.admin_request("GET", "/readyz").status, 200)
            self.assertEqual(self.metric(d, "figshift_store_connected"), 0)
            self.assertRoutedTo(request(d.port, "GET", "/orders/1"), "A")
            w = self.put(d, "traffic-split", "0")
            self.assertEqual(w.status, 503, w)
            self.assertIn("etcd is unreachable", w.json["error"])
            self.assertRegex(self.cli_status(d), r"store\s+etcd disconnected \(http://127\.0\.0\.1:\d+\), "
                                                 r"revision \d+, synced \d+\.\d s ago, may be stale since")
        # Same user, same moment: every replica picks the same upstream.
        users = ["user%d" % i for i in range(40)]
        for u in users:
            picks = {request(d.port, "GET", "/orders/1", {"Authorization": basic(u)}).upstream for d in rs}
            self.assertEqual(len(picks), 1, "%s: %r" % (u, picks))
        # A replica restarted while etcd is down serves its cache.
        rs[2].stop()
        rs[2].restart()
        s = self.status(rs[2])
        self.assertEqual(s["store"]["connection"], "cache")
        self.assertIsNotNone(s["store"]["stale_since_ms"])
        self.assertEqual(s["ramp"]["to"], 90)
        self.assertTrue(any("serving the cache" in l for l in rs[2].log_lines()))
        self.assertRoutedTo(request(rs[2].port, "GET", "/orders/1"), "A")
        # etcd back: writes work again, every replica catches up without a restart.
        self.etcd.start()
        self.wait_all(rs, lambda s: s["store"]["connection"] == "connected", "reconnected", timeout=15)
        w = self.put(rs[2], "traffic-split", "7")
        self.assertEqual(w.status, 200, w)
        self.etcd.ctl("del", self.PREFIX + "traffic-ramp")
        self.wait_all(rs, lambda s: s["traffic_split"] == 7 and s["ramp"] is None, "caught up")

    def test_no_etcd_and_no_cache_refuses_to_start(self):
        self.etcd.kill()
        d = self.replica("lonely", cache=False, start=False)
        proc = subprocess.run([figshift_bin(), "serve", "--config", d.config_path], capture_output=True,
                              text=True, timeout=30, cwd=d.dir)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("no etcd endpoint answered", proc.stderr)
        self.assertIn("no cache", proc.stderr)
        self.assertIn("refusing to start", proc.stderr)

    def test_check_config_validates_the_etcd_block_without_etcd(self):
        self.etcd.kill()
        d = self.replica("offline", start=False)
        proc = subprocess.run([figshift_bin(), "check-config", "--config", d.config_path],
                              capture_output=True, text=True, timeout=30)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("store etcd (not contacted) " + self.etcd.url, proc.stdout)
        cfg = json.load(open(d.config_path))
        cfg["store"]["endpoints"] = ["https://127.0.0.1:2379"]
        with open(d.config_path, "w") as f:
            json.dump(cfg, f)
        proc = subprocess.run([figshift_bin(), "check-config", "--config", d.config_path],
                              capture_output=True, text=True, timeout=30)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("store.endpoints[0]: https endpoints are not supported yet", proc.stderr)
        cfg["store"]["endpoints"] = [self.etcd.url]
        cfg["store"].update({"username": "figshift", "password_file": "missing.password"})
        with open(d.config_path, "w") as f:
            json.dump(cfg, f)
        proc = subprocess.run([figshift_bin(), "check-config", "--config", d.config_path],
                              capture_output=True, text=True, timeout=30)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("store.password_file: %s cannot be read" % os.path.join(d.dir, "missing.password"),
                      proc.stderr)


class TestCompaction(EtcdCase):
    def test_a_replica_cut_off_while_etcd_compacts_resyncs_to_the_right_state(self):
        relay = Cut(self.etcd.client_port)
        self.addCleanup(relay.close)
        d = self.replica("behind-relay", endpoints=[relay.url])
        eventually(lambda: self.status(d)["store"]["connection"] == "connected", timeout=10)
        relay.cut()
        eventually(lambda: self.status(d)["store"]["connection"] == "disconnected", timeout=10)
        for split in (11, 12, 13):
            self.etcd.ctl("put", self.PREFIX + "traffic-split", str(split))
        self.etcd.ctl("put", self.PREFIX + "mode", "redirect")
        self.etcd.ctl("del", self.PREFIX + "route:/users")
        self.etcd.ctl("compact", str(self.etcd.revision()))
        relay.open = True
        eventually(lambda: self.status(d)["store"]["connection"] == "connected", timeout=15)
        s = eventually(lambda: (lambda s: s if s["traffic_split"] == 13 else None)(self.status(d)), timeout=5)
        self.assertEqual(s["mode"], "redirect")
        self.assertEqual([r["prefix"] for r in s["routes"]], ["/orders"])
        self.assertTrue(any("compacted" in l for l in d.log_lines()), d.logs())


class TestAuth(EtcdCase):
    def setUp(self):
        super().setUp()
        ctl = self.etcd.ctl
        ctl("user", "add", "root:rootpw")
        ctl("role", "add", "figshift")
        ctl("role", "grant-permission", "figshift", "--prefix=true", "readwrite", self.PREFIX)
        ctl("user", "add", "figshift:s3cret")
        ctl("user", "grant-role", "figshift", "figshift")
        ctl("auth", "enable")
        self.etcd.user = "root:rootpw"

    def test_replicas_authenticate_with_username_and_password_file(self):
        rs = self.replicas(2, password="s3cret")
        # The test writes the password file with the default umask (0644): warned about.
        eventually(lambda: any("store.password_file" in l and "readable by group or others" in l
                               for l in rs[0].log_lines()), message="password file mode warning")
        r = self.put(rs[0], "traffic-split", "45")
        self.assertEqual(r.status, 200, r)
        self.wait_all(rs, lambda s: s["traffic_split"] == 45, "split 45")
        self.assertEqual(self.etcd.ctl("get", self.PREFIX + "traffic-split", "--print-value-only").stdout.strip(),
                         "45")
        self.etcd.ctl("put", self.PREFIX + "traffic-split", "46")
        self.wait_all(rs, lambda s: s["traffic_split"] == 46, "split 46 from etcdctl")
        # Without a token etcd refuses even a read: the replicas really authenticated.
        anonymous = subprocess.run([ETCDCTL, "--endpoints", self.etcd.url, "get", self.PREFIX + "traffic-split"],
                                   capture_output=True, text=True, env={**os.environ, "ETCDCTL_API": "3"})
        self.assertNotEqual(anonymous.returncode, 0)

    def test_a_wrong_password_refuses_to_start_with_a_clear_message(self):
        d = self.replica("wrong-password", password="nope", start=False)
        proc = subprocess.run([figshift_bin(), "serve", "--config", d.config_path], capture_output=True,
                              text=True, timeout=30, cwd=d.dir)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("refused to authenticate user figshift", proc.stderr)
        self.assertIn("authentication failed", proc.stderr)


class TestGuardAcrossReplicas(EtcdCase):
    def test_a_guard_trip_on_one_replica_rolls_back_all_of_them(self):
        """#16 with etcd: traffic through one replica only; its guard trips on B1's
        errors and its one rollback write reaches every replica through etcd."""
        guard = json.dumps({"max_error_ratio": 0.05, "window_s": 3, "min_requests": 20})
        rs = self.replicas(3, seed=self.migration_store(split=100, guard=guard))
        self.b1.error_ratio = 0.5
        users = ["user%d" % i for i in range(200)]
        deadline = time.time() + 10
        i = 0
        while time.time() < deadline and self.status(rs[0])["guard"]["tripped"] is None:
            request(rs[0].port, "GET", "/orders/%d" % i, {"Authorization": basic(users[i % len(users)])})
            i += 1
        self.wait_all(rs, lambda s: s["guard"]["tripped"] is not None and s["split"] == 0,
                      "the trip seen, split 0", timeout=5)
        tripped = self.status(rs[2])["guard"]["tripped"]
        self.assertEqual((tripped["upstream"], tripped["metric"]), ("B1", "error_ratio"))
        self.assertIn("guard-tripped", self.etcd.ctl("get", self.PREFIX + "guard-tripped").stdout)
        # every replica refuses to raise the split until the guard is reset
        for d in rs:
            r = d.admin_request("POST", "/admin/traffic-shift", {"Content-Type": "application/json"},
                                b'{"percent": 10}')
            self.assertEqual(r.status, 409, (d.name, r))


class TestCluster(ThreeUpstreamsMixin, FigTestCase):
    def test_replicas_fail_over_to_another_member_when_theirs_is_killed(self):
        cluster = EtcdCluster().start()
        self.addCleanup(cluster.close)
        ds = []
        for i in range(2):
            d = Daemon(migration_store(self.a, self.b1, self.b2, split=10),
                       {"store": {"backend": "etcd", "path": None, "reload_interval_ms": None,
                                  "endpoints": cluster.urls, "prefix": "/figshift/", "seed": "seed.json",
                                  "cache": "cache.json"}}, name="replica-%d" % i)
            self.addCleanup(self._stop_daemon, d)
            d.start()
            ds.append(d)

        def status(d):
            return d.admin_request().json["store"]

        for d in ds:
            eventually(lambda d=d: status(d)["connection"] == "connected", timeout=10)
        used = status(ds[0])["endpoint"]
        self.assertIn(used, cluster.urls)
        victim = cluster.urls.index(used)
        cluster.kill(victim)
        alive = [u for u in cluster.urls if u != used]
        for d in ds:
            eventually(lambda d=d: status(d)["connection"] == "connected" and status(d)["endpoint"] in alive,
                       timeout=15, message="%s failed over" % d.name)
        # Killing the raft leader leaves the cluster without one for an election
        # timeout or two: a write then answers 503 (etcd did not commit it in
        # time), and the operator retries, as here.
        answers = []

        def write():
            r = ds[0].admin_request("PUT", "/admin/kv/traffic-split", {"Content-Type": "text/plain"}, b"55")
            answers.append(r.status)
            return r.status == 200

        eventually(write, timeout=10, interval=0.5, message="a write after the failover")
        self.assertEqual(set(answers) - {200, 503}, set(), answers)
        for d in ds:
            eventually(lambda d=d: d.admin_request().json["traffic_split"] == 55, timeout=5)
        cluster.ctl("put", "/figshift/traffic-split", "56", endpoints=alive)
        for d in ds:
            eventually(lambda d=d: d.admin_request().json["traffic_split"] == 56, timeout=5)
            self.assertRoutedTo(request(d.port, "GET", "/orders/1"), "A")


if __name__ == "__main__":
    unittest.main(verbosity=2)
