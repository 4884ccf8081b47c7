#!/usr/bin/env python3
"""Cost of the etcd watch on the data path (#14): req/s and figshift CPU per
request with a store write every 100 ms vs no writes, in the same run.

Starts a real etcd, `figshift demo-upstreams` as the upstreams (C++, so the
upstream is not the bottleneck) and one figshift replica on the etcd backend
(1 worker), then alternates ROUNDS x (quiet, writing) phases of DURATION s
each under wrk (1 thread, 32 connections, users spread over the buckets).
"writing" = traffic-split written through etcd every 100 ms (etcdctl-free:
the gateway's /v3/kv/put, so the writer costs the proxy nothing but the
watch). CPU per request = figshift's utime+stime over the phase / requests.

Usage: FIGSHIFT_BIN=build/figshift scripts/bench/etcd_watch_cost.py [--duration S] [--rounds N]
A measurement, not a test.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))
from harness import Daemon, figshift_bin  # noqa: E402
from etcd_cluster import Etcd, free_port  # noqa: E402

# 1000 users, so both groups (and both upstreams) are exercised at any split.
WRK_LUA = """
local users = {%s}
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/orders/" .. n, {["Authorization"] = "Basic " .. users[n %% #users + 1]})
end
""" % ", ".join('"%s"' % base64.b64encode(("user%d:pw" % i).encode()).decode() for i in range(1000))


def cpu_seconds(pid: int) -> float:
    fields = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def writer(url: str, stop: threading.Event, count: list):
    n = 0
    while not stop.is_set():
        n += 1
        body = json.dumps({"key": b64("/bench/traffic-split"), "value": b64(str(40 + n % 2 * 10))}).encode()
        urllib.request.urlopen(urllib.request.Request(url + "/v3/kv/put", body), timeout=2).read()
        count[0] += 1
        stop.wait(0.1)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="figshift-watchcost-")
    ports = [free_port() for _ in range(3)]
    upstreams = subprocess.Popen([figshift_bin(), "demo-upstreams", "--port-a", str(ports[0]),
                                  "--port-b1", str(ports[1]), "--port-b2", str(ports[2])],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    etcd = Etcd().start()
    store = {"APIGW_A_URL": "http://127.0.0.1:%d" % ports[0], "APIGW_B1_URL": "http://127.0.0.1:%d" % ports[1],
             "route:/orders": "B1 /v2/orders", "traffic-split": "50"}
    d = Daemon(store, {"store": {"backend": "etcd", "path": None, "reload_interval_ms": None,
                                 "endpoints": [etcd.url], "prefix": "/bench/", "seed": "seed.json",
                                 "cache": "cache.json"},
                       "workers": 1, "access_log": {"enabled": False}})
    lua = os.path.join(work, "users.lua")
    with open(lua, "w") as f:
        f.write(WRK_LUA)
    rows = []
    try:
        d.start()
        time.sleep(1)
        url = "http://127.0.0.1:%d/orders/1" % d.port
        for r in range(args.rounds):
            for phase in ("quiet", "writing"):
                stop, count = threading.Event(), [0]
                t = threading.Thread(target=writer, args=(etcd.url, stop, count)) if phase == "writing" else None
                if t:
                    t.start()
                cpu0 = cpu_seconds(d.proc.pid)
                out = subprocess.run(["wrk", "-t1", "-c32", "-d%ds" % args.duration, "-s", lua, url],
                                     capture_output=True, text=True, check=True).stdout
                cpu1 = cpu_seconds(d.proc.pid)
                stop.set()
                if t:
                    t.join()
                requests = int(re.search(r"(\d+) requests in", out).group(1))
                rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
                errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
                rows.append((r + 1, phase, rps, (cpu1 - cpu0) * 1e6 / requests, count[0],
                             int(errors.group(1)) if errors else 0))
        print("| round | phase | req/s | figshift CPU µs/request | store writes | non-2xx |")
        print("|---|---|---:|---:|---:|---:|")
        for row in rows:
            print("| %d | %s | %.0f | %.1f | %d | %d |" % row)
        for phase in ("quiet", "writing"):
            sel = [r for r in rows if r[1] == phase]
            print("%s: mean %.0f req/s, %.1f µs CPU/request" % (
                phase, sum(r[2] for r in sel) / len(sel), sum(r[3] for r in sel) / len(sel)))
        return 0
    finally:
        d.stop(check=False)
        d.kill()
        shutil.rmtree(d.dir, ignore_errors=True)
        etcd.close()
        upstreams.kill()
        upstreams.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
