#!/usr/bin/env python3
"""Large bodies through figshift, nginx and HAProxy (issue #15): N concurrent
downloads and M concurrent uploads of S MiB each, all at once, through each
proxy pinned to one CPU; curl clients and an nginx upstream on the other CPU.

Measured per proxy and round: wall time of the whole batch (throughput =
bytes moved / wall time), the proxy's CPU seconds, and its peak RSS (sampled
every 20 ms). Every proxy streams both ways with bounded buffers:
  - figshift: its defaults (64 KiB per direction; bodies longer than 64 KiB stream);
  - nginx: proxy_buffering off, proxy_request_buffering off (else it spools to disk);
  - HAProxy: its defaults (16 KiB buffers, always streams).
Rounds alternate the order of the proxies; reported are medians of per-round
ratios against HAProxy, each round's ratio shown.

Usage: streaming.py --figshift-bin PATH [--rounds 3] [--size-mib 256]
                    [--downloads 8] [--uploads 4] [--proxy-cpu 0] [--load-cpu 1]
                    [--port-base 18400] [--json OUT]
"""

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

PROXIES = ("figshift", "nginx", "haproxy")


def wait_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def tree(pid: int) -> list[int]:
    out = [pid]
    try:
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            out += tree(int(child))
    except OSError:
        pass
    return out


def rss_kb(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def cpu_s(pids: list[int]) -> float:
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return ticks / os.sysconf("SC_CLK_TCK")


class Run:
    def __init__(self, args):
        self.a = args
        self.dir = Path(tempfile.mkdtemp(prefix="figshift-stream-bench-"))
        base = args.port_base
        self.port = {"upstream": base, "figshift": base + 1, "admin": base + 2, "nginx": base + 3, "haproxy": base + 4}
        self.procs = []

    def spawn(self, argv, cpu, log):
        proc = subprocess.Popen(["taskset", "-c", str(cpu)] + argv, stdout=open(log, "wb"),
                                stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(proc)
        return proc

    def stop(self, proc):
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        if proc in self.procs:
            self.procs.remove(proc)

    def cleanup(self):
        for proc in list(self.procs):
            self.stop(proc)
        shutil.rmtree(self.dir, ignore_errors=True)

    def start_upstream(self):
        d = self.dir
        d.chmod(0o755)  # nginx's workers run as another user when started by root
        (d / "www").mkdir(mode=0o755)
        size = self.a.size_mib * 1024 * 1024
        with open(d / "www" / "big", "wb") as f:
            f.truncate(size)  # a sparse file: served from the page cache, no disk
        (d / "www" / "big").chmod(0o644)
        self.body = d / "upload.bin"
        with open(self.body, "wb") as f:
            f.truncate(size)
        (d / "tmp").mkdir()
        conf = d / "upstream.conf"
        conf.write_text(f"""
worker_processes 1;
pid {d}/upstream.pid;
error_log {d}/upstream.error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {d}/tmp/u-body;
    proxy_temp_path {d}/tmp/u-proxy;
    fastcgi_temp_path {d}/tmp/u-fcgi;
    uwsgi_temp_path {d}/tmp/u-uwsgi;
    scgi_temp_path {d}/tmp/u-scgi;
    sendfile on;
    server {{
        listen 127.0.0.1:{self.port['upstream']};
        client_max_body_size 0;
        root {d}/www;
        # Uploads: nginx reads and discards the body, then answers.
        location /upload {{ return 200 "ok\\n"; }}
    }}
}}""")
        self.upstream = self.spawn(["nginx", "-p", str(d), "-c", str(conf), "-e", str(d / "upstream.error.log"),
                                    "-g", "daemon off;"], self.a.load_cpu, d / "upstream.out")
        wait_port(self.port["upstream"])

    def start_proxy(self, name):
        d, up = self.dir, self.port["upstream"]
        cpu = self.a.proxy_cpu
        if name == "figshift":
            (d / "kvs.json").write_text(json.dumps({"data": [{"key": "APIGW_A_URL", "value": f"http://127.0.0.1:{up}"}]}))
            store = d / "store.json"
            if store.exists():
                store.unlink()
            (d / "figshift.json").write_text(json.dumps({
                "listen": [{"address": "127.0.0.1", "port": self.port["figshift"]}],
                "admin": {"address": "127.0.0.1", "port": self.port["admin"]},
                "store": {"backend": "file", "path": str(store), "seed": "kvs.json"},
                "workers": 1,
                "timeouts": {"drain_ms": 1000},
                "limits": dict({"body_bytes": 1 << 40}, **json.loads(self.a.figshift_limits)),
                "log": {"level": "warn"}}))
            proc = self.spawn([self.a.figshift_bin, "serve", "--config", str(d / "figshift.json")], cpu, d / "figshift.out")
            port = self.port["figshift"]
        elif name == "nginx":
            conf = d / "proxy-nginx.conf"
            conf.write_text(f"""
worker_processes 1;
pid {d}/proxy-nginx.pid;
error_log {d}/proxy-nginx.error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {d}/tmp/p-body;
    proxy_temp_path {d}/tmp/p-proxy;
    fastcgi_temp_path {d}/tmp/p-fcgi;
    uwsgi_temp_path {d}/tmp/p-uwsgi;
    scgi_temp_path {d}/tmp/p-scgi;
    upstream A {{ server 127.0.0.1:{up}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{self.port['nginx']};
        client_max_body_size 0;
        location / {{
            proxy_pass http://A;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_request_buffering off;
        }}
    }}
}}""")
            proc = self.spawn(["nginx", "-p", str(d), "-c", str(conf), "-e", str(d / "proxy-nginx.error.log"),
                               "-g", "daemon off;"], cpu, d / "proxy-nginx.out")
            port = self.port["nginx"]
        else:
            conf = d / "haproxy.cfg"
            conf.write_text(f"""
global
    nbthread 1
defaults
    mode http
    option http-keep-alive
    timeout connect 3s
    timeout client 120s
    timeout server 120s
frontend f
    bind 127.0.0.1:{self.port['haproxy']}
    default_backend A
backend A
    server a 127.0.0.1:{up}
""")
            proc = self.spawn(["haproxy", "-db", "-f", str(conf)], cpu, d / "haproxy.out")
            port = self.port["haproxy"]
        wait_port(port)
        if name == "nginx":
            deadline = time.monotonic() + 10
            while len(tree(proc.pid)) < 3 and time.monotonic() < deadline:  # taskset -> master -> worker
                time.sleep(0.05)
        return proc, port

    def batch(self, name: str) -> dict:
        proc, port = self.start_proxy(name)
        try:
            pids = tree(proc.pid)
            base_rss = rss_kb(pids)
            peak = [base_rss]
            stop = threading.Event()

            def sample():
                while not stop.is_set():
                    peak[0] = max(peak[0], rss_kb(tree(proc.pid)))
                    time.sleep(0.02)

            sampler = threading.Thread(target=sample, daemon=True)
            cpu0 = cpu_s(tree(proc.pid))
            url = f"http://127.0.0.1:{port}"
            auth = ["-u", "user1:pw"]
            clients = []
            t0 = time.monotonic()
            sampler.start()
            for _ in range(self.a.downloads):
                clients.append(subprocess.Popen(
                    ["taskset", "-c", str(self.a.load_cpu), "curl", "-sS", "-f", "-o", "/dev/null",
                     "-w", "%{size_download}", *auth, f"{url}/big"], stdout=subprocess.PIPE, text=True))
            for _ in range(self.a.uploads):
                clients.append(subprocess.Popen(
                    ["taskset", "-c", str(self.a.load_cpu), "curl", "-sS", "-f", "-o", "/dev/null",
                     "-w", "%{size_upload}", *auth, "-H", "Expect:", "-T", str(self.body), f"{url}/upload"],
                    stdout=subprocess.PIPE, text=True))
            moved = 0
            for c in clients:
                out, _ = c.communicate(timeout=600)
                if c.returncode != 0:
                    raise RuntimeError(f"{name}: curl failed ({c.returncode})")
                moved += int(float(out.strip() or 0))
            wall = time.monotonic() - t0
            stop.set()
            sampler.join(2)
            cpu = cpu_s(tree(proc.pid)) - cpu0
            want = (self.a.downloads + self.a.uploads) * self.a.size_mib * 1024 * 1024
            if moved != want:
                raise RuntimeError(f"{name}: moved {moved} bytes, expected {want}")
            r = {"proxy": name, "seconds": wall, "gib_per_s": moved / wall / (1 << 30), "cpu_s": cpu,
                 "rss_base_mib": base_rss / 1024, "rss_peak_mib": peak[0] / 1024}
            print(f"  {name:<9} {wall:6.2f} s  {r['gib_per_s']:5.2f} GiB/s  cpu {cpu:5.2f} s  "
                  f"rss {r['rss_base_mib']:.1f} -> peak {r['rss_peak_mib']:.1f} MiB", file=sys.stderr)
            return r
        finally:
            self.stop(proc)


def report(results: list[dict], args) -> str:
    rounds = sorted({r["round"] for r in results})
    by = {(r["proxy"], r["round"]): r for r in results}
    lines = [f"{args.downloads} downloads + {args.uploads} uploads of {args.size_mib} MiB at once, "
             f"proxy pinned to CPU {args.proxy_cpu}, curl and the nginx upstream on CPU {args.load_cpu}; "
             f"{len(rounds)} rounds, order alternating.", "",
             "| proxy | throughput GiB/s (median) | peak RSS MiB (median) | CPU s (median) | "
             "throughput ÷ HAProxy, per round | median | peak RSS ÷ HAProxy, per round | median | "
             "CPU ÷ HAProxy, per round | median |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name in PROXIES:
        mine = [by[(name, r)] for r in rounds if (name, r) in by]
        if not mine:
            continue
        tp = [by[(name, r)]["gib_per_s"] / by[("haproxy", r)]["gib_per_s"] for r in rounds]
        mem = [by[(name, r)]["rss_peak_mib"] / by[("haproxy", r)]["rss_peak_mib"] for r in rounds]
        cpu = [by[(name, r)]["cpu_s"] / by[("haproxy", r)]["cpu_s"] for r in rounds]
        lines.append(
            f"| {name} | {statistics.median(m['gib_per_s'] for m in mine):.2f} | "
            f"{statistics.median(m['rss_peak_mib'] for m in mine):.1f} | "
            f"{statistics.median(m['cpu_s'] for m in mine):.2f} | "
            f"{', '.join(f'{x:.2f}' for x in tp)} | **{statistics.median(tp):.2f}** | "
            f"{', '.join(f'{x:.2f}' for x in mem)} | **{statistics.median(mem):.2f}** | "
            f"{', '.join(f'{x:.2f}' for x in cpu)} | **{statistics.median(cpu):.2f}** |")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--figshift-bin", required=True)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--size-mib", type=int, default=256)
    p.add_argument("--downloads", type=int, default=8)
    p.add_argument("--uploads", type=int, default=4)
    p.add_argument("--proxy-cpu", type=int, default=0)
    p.add_argument("--load-cpu", type=int, default=1)
    p.add_argument("--port-base", type=int, default=18400)
    p.add_argument("--json")
    p.add_argument("--figshift-limits", default="{}",
                   help='extra figshift "limits" as JSON, e.g. {"stream_buffer_bytes": 262144}')
    args = p.parse_args()
    run = Run(args)
    results = []
    try:
        run.start_upstream()
        for rnd in range(args.rounds):
            order = PROXIES if rnd % 2 == 0 else tuple(reversed(PROXIES))
            print(f"round {rnd + 1}/{args.rounds}: {', '.join(order)}", file=sys.stderr)
            for name in order:
                r = run.batch(name)
                r["round"] = rnd
                results.append(r)
    finally:
        run.cleanup()
    table = report(results, args)
    print(table)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
