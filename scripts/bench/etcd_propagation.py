#!/usr/bin/env python3
"""Propagation delay of a store write across replicas sharing etcd (#14).

Starts a real etcd (loopback, temporary data dir) and three figshift replicas
on it, then 100 times: writes traffic-split through replica 0's admin API and
measures, for each replica, the time from just before the PUT was sent until
that replica *routes* a probe user differently (a proxied GET through its
traffic port, so the figure includes the watch, validation, publishing the
Snapshot to the workers and the data path). Prints p50 / p99 / max of the
slowest of the three per write, and of each replica.

Usage: FIGSHIFT_BIN=build/figshift scripts/bench/etcd_propagation.py [--writes N]
A measurement, not a test: nothing is asserted beyond every write arriving.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
from harness import Daemon, basic, bucket_of, migration_store, request, start_upstream  # noqa: E402
from etcd_cluster import Etcd  # noqa: E402


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--writes", type=int, default=100)
    args = parser.parse_args()

    a, b1 = start_upstream("A"), start_upstream("B1")
    etcd = Etcd().start()
    user = next(u for u in ("user%d" % i for i in range(1000)) if bucket_of(u) == 30)
    low, high = 20, 40  # the user is legacy at 20, new at 40
    replicas = []
    try:
        for i in range(3):
            d = Daemon(migration_store(a, b1, split=low),
                       {"store": {"backend": "etcd", "path": None, "reload_interval_ms": None,
                                  "endpoints": [etcd.url], "prefix": "/bench/", "seed": "seed.json",
                                  "cache": "cache.json"},
                        "access_log": {"enabled": False}},
                       name="replica-%d" % i)
            d.start()
            replicas.append(d)
        time.sleep(1.5)  # every watch established
        headers = {"Authorization": basic(user)}
        slowest, per_replica = [], [[] for _ in replicas]
        for n in range(args.writes):
            split = high if n % 2 == 0 else low
            want = "B1" if split == high else "A"
            seen = [None] * len(replicas)

            def probe(i):
                deadline = time.perf_counter() + 5
                while time.perf_counter() < deadline:
                    if request(replicas[i].port, "GET", "/orders/1", headers).upstream == want:
                        seen[i] = time.perf_counter()
                        return

            t0 = time.perf_counter()
            r = replicas[0].admin_request("PUT", "/admin/kv/traffic-split", {"Content-Type": "text/plain"},
                                          str(split).encode())
            if r.status != 200:
                raise SystemExit("write %d failed: %r" % (n, r))
            threads = [threading.Thread(target=probe, args=(i,)) for i in range(len(replicas))]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if None in seen:
                raise SystemExit("write %d: a replica did not route by the new split within 5 s" % n)
            delays = [(s - t0) * 1000 for s in seen]
            slowest.append(max(delays))
            for i, d in enumerate(delays):
                per_replica[i].append(d)
            time.sleep(0.05)
        print("propagation over %d writes (ms, from sending the PUT to a probe routed by the new split)"
              % args.writes)
        print("| | p50 | p99 | max |\n|---|---|---|---|")
        print("| all three (slowest replica) | %.1f | %.1f | %.1f |"
              % (percentile(slowest, 50), percentile(slowest, 99), max(slowest)))
        for i, values in enumerate(per_replica):
            print("| replica %d%s | %.1f | %.1f | %.1f |"
                  % (i, " (the writer)" if i == 0 else "", percentile(values, 50), percentile(values, 99),
                     max(values)))
        return 0
    finally:
        for d in replicas:
            d.stop(check=False)
            d.kill()
            shutil.rmtree(d.dir, ignore_errors=True)
        etcd.close()
        a.close()
        b1.close()


if __name__ == "__main__":
    sys.exit(main())
