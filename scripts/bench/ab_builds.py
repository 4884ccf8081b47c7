#!/usr/bin/env python3
"""CPU per request of two figshift builds, measured in pairs.

Usage: scripts/bench/ab_builds.py BINARY_A BINARY_B [--tls] [--rounds 20] [--seconds 2]

Both builds run at once, pinned to the same CPU (--proxy-cpu), each on its own
ports and store; wrk (pinned to --load-cpu, with the demo upstreams of
BINARY_A) loads one, then the other, in short alternating runs. A 2-CPU cloud
box drifts by 20-50 % within minutes; runs of a few seconds, paired, see the
same drift, so the ratio B/A of each pair is meaningful where separate runs
are not. Prints each pair's ratio and their median and quartiles.
Needs wrk and openssl (Debian packages), ports 9001-9003 and 18190-18292 free.
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOAD = os.path.join(REPO, "scripts", "bench", "load.lua")
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid: int) -> int:
    fields = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("binary_a")
    p.add_argument("binary_b")
    p.add_argument("--tls", action="store_true", help="TLS 1.3 keep-alive (P-256) instead of plain")
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--seconds", type=int, default=2)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--proxy-cpu", type=int, default=0)
    p.add_argument("--load-cpu", type=int, default=1)
    a = p.parse_args()
    for tool in ("wrk", "openssl", "taskset"):
        if not shutil.which(tool):
            print("ab_builds.py: %s is missing" % tool, file=sys.stderr)
            return 2

    work = tempfile.mkdtemp(prefix="figshift-ab-")
    shutil.copy(os.path.join(REPO, "config", "kvs.json"), os.path.join(work, "kvs.json"))
    tls = None
    if a.tls:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-days", "2", "-subj", "/CN=localhost",
                        "-keyout", work + "/tls.key", "-out", work + "/tls.crt"],
                       check=True, capture_output=True)
        tls = {"cert_file": work + "/tls.crt", "key_file": work + "/tls.key"}
    urls, procs = [], []
    upstreams = subprocess.Popen(
        ["taskset", "-c", str(a.load_cpu), a.binary_a, "demo-upstreams", "--address", "127.0.0.1",
         "--port-a", "9001", "--port-b1", "9002", "--port-b2", "9003"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for i, binary in enumerate((a.binary_a, a.binary_b)):
            port = 18190 + 100 * i
            listen = {"address": "127.0.0.1", "port": port}
            if tls:
                listen["tls"] = tls
            config = {"listen": [listen], "admin": {"address": "127.0.0.1", "port": port + 2},
                      "store": {"backend": "file", "path": "%s/store-%d.json" % (work, i), "seed": "kvs.json"},
                      "workers": 1, "access_log": {"enabled": False}, "log": {"level": "warn"}}
            path = "%s/figshift-%d.json" % (work, i)
            with open(path, "w") as f:
                json.dump(config, f)
            procs.append(subprocess.Popen(["taskset", "-c", str(a.proxy_cpu), binary, "serve", "--config", path],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            urls.append("%s://127.0.0.1:%d" % ("https" if tls else "http", port))
        time.sleep(1.5)

        def run(i: int, seconds: int):
            before = cpu_ticks(procs[i].pid)
            out = subprocess.run(["taskset", "-c", str(a.load_cpu), "wrk", "-t1", "-c%d" % a.connections,
                                  "-d%ds" % seconds, "-s", LOAD, urls[i], "--", "1000"],
                                 capture_output=True, text=True).stdout
            used = (cpu_ticks(procs[i].pid) - before) / TICKS
            m = re.search(r"BENCHJSON (\{.*\})", out)
            if not m:
                raise SystemExit("ab_builds.py: wrk printed no result for %s:\n%s" % (urls[i], out))
            result = json.loads(m.group(1))
            if any(result[k] for k in ("connect", "read", "write", "status", "timeout")):
                raise SystemExit("ab_builds.py: errors against %s: %s" % (urls[i], result))
            return used * 1e6 / result["requests"]

        run(0, 1), run(1, 1)  # warm-up: pools, sessions, page cache
        pairs = []
        for r in range(a.rounds):
            order = (0, 1) if r % 2 == 0 else (1, 0)
            us = {}
            for i in order:
                us[i] = run(i, a.seconds)
            pairs.append((us[0], us[1]))
    finally:
        for proc in procs + [upstreams]:
            proc.terminate()
            proc.wait()
        shutil.rmtree(work, ignore_errors=True)
    ratios = [b / a_ for a_, b in pairs]
    q1, _, q3 = statistics.quantiles(ratios, n=4)
    print("A µs/req: " + ", ".join("%.1f" % x for x, _ in pairs))
    print("B µs/req: " + ", ".join("%.1f" % y for _, y in pairs))
    print("B/A each pair: " + ", ".join("%.3f" % r for r in ratios))
    print("B/A CPU per request (%s, %d pairs of %d s): median %.3f, quartiles %.3f-%.3f"
          % ("TLS keep-alive" if tls else "plain", len(ratios), a.seconds, statistics.median(ratios), q1, q3))
    return 0


if __name__ == "__main__":
    sys.exit(main())
