#!/usr/bin/env python3
"""figshift benchmark driver, called by scripts/bench.sh (which installs the
tools and builds the binary first). Standard library only.

Side by side, in one run, alternating the order of targets each round:
  upstream      wrk straight at upstream A (the limit of this box)
  figshift      figshift, 1 worker, access log off
  figshift-log  figshift, 1 worker, access log on (to a file)
  nginx         nginx doing the same split (scripts/bench/proxy.nginx.conf.in)
  haproxy       HAProxy doing the same split (scripts/bench/haproxy.cfg.in)

The proxy under test runs on PROXY_CPU (taskset), wrk and the upstream nginx
on LOAD_CPU. Every target is started fresh for each timed run, warmed up for
one second, then measured: wrk totals and latency percentiles (load.lua's
done()), the proxy's CPU time (utime+stime of all its processes from
/proc/<pid>/stat, before/after), its RSS and PSS after the run, and the
number of upstream connections it opened (upstream nginx stub_status
accepts). Any socket error or non-2xx response fails the benchmark.

Routing is verified for every proxy before anything is timed.

Extras: RSS with 10,000 idle keep-alive client connections (and with idle
TLS 1.3 ones), figshift with 1 vs 2 workers (unpinned), figshift under store
writes (10 PUTs/s), system calls per request, and TLS termination (issue
#19): the same job with every proxy listening with TLS 1.3 on one ECDSA P-256
certificate made here with openssl, in three modes (TLS_MODES): keep-alive
requests; one request per connection with every proxy's default session
tickets, which wrk resumes on each reconnect (a PSK-DHE resumption each, no
certificate); and one request per connection with tickets and session caches
off in every proxy (a full handshake each). Each handshake mode is proved on
the running proxy (a client reconnecting with its session) before it is timed.
"""
from __future__ import annotations

import argparse
import base64
import datetime as dt
import http.client
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024

ALL_TARGETS = ["upstream", "figshift", "figshift-log", "nginx", "haproxy"]
PROXIES = ["figshift", "figshift-log", "nginx", "haproxy"]
EXTRAS = ["idle", "workers", "writes", "syscalls", "tls", "userkey"]
TLS_PROXIES = ["figshift", "nginx", "haproxy"]
# The tls extra's modes. Both handshake modes send Connection: close; wrk keeps
# the TLS session across its reconnects, so whether a handshake is a full one
# is the proxies' choice: session tickets on (their default) or off.
TLS_MODES = ["keep-alive", "resumed handshakes", "full handshakes"]
UPSTREAMS = ["A", "B1", "B2"]
SPLIT = 50


class BenchError(Exception):
    pass


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------- /proc ---

def children_of(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                text = Path(f"/proc/{pid}/task/{task}/children").read_text()
            except OSError:
                continue
            out.extend(int(x) for x in text.split())
    except OSError:
        pass
    return out


def process_tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        if p in pids or not Path(f"/proc/{p}").exists():
            continue
        pids.append(p)
        todo.extend(children_of(p))
    return pids


def cpu_ticks(pids: list[int]) -> int:
    """utime + stime (clock ticks) summed over the processes (all their threads)."""
    total = 0
    for p in pids:
        try:
            stat = Path(f"/proc/{p}/stat").read_text()
        except OSError as e:
            raise BenchError(f"process {p} vanished during the run ({e})")
        fields = stat[stat.rindex(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])  # fields 14, 15 of proc(5)
    return total


def memory_kb(pids: list[int]) -> tuple[int, int]:
    """(RSS, PSS) in KiB summed over the processes."""
    rss = pss = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1])
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except OSError:
            pass
    return rss, pss


def java_bucket(username: str) -> int:
    """docs/design.md §1 bucket for an ASCII username, empty salt (cross-checked against
    `figshift bucket` during routing verification)."""
    h = 0
    for ch in username:
        h = (31 * h + ord(ch)) & 0xFFFFFFFF
    if h >= 2**31:
        h -= 2**32
    return (h + 2**31) % 100


# ------------------------------------------------------------ processes ---

def fill(template: str, values: dict[str, object]) -> str:
    text = (HERE / template).read_text()
    for k, v in values.items():
        text = text.replace(f"@{k}@", str(v))
    left = re.findall(r"@[A-Z_0-9]+@", text)
    if left:
        raise BenchError(f"{template}: unfilled placeholders {sorted(set(left))}")
    return text


def wait_port(port: int, proc: subprocess.Popen, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{what} exited during startup (status {proc.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise BenchError(f"{what} did not listen on 127.0.0.1:{port} within {timeout:.0f} s")


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


class Service:
    """A process we started (and only that one): start, pids, stop."""

    def __init__(self, name: str, argv: list[str], logfile: Path, cpu: int | None):
        self.name = name
        self.argv = (["taskset", "-c", str(cpu)] if cpu is not None else []) + argv
        self.logfile = logfile
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        out = open(self.logfile, "ab")
        # taskset execs the program: the pid is the program's.
        self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        out.close()

    def pids(self) -> list[int]:
        assert self.proc
        if self.proc.poll() is not None:
            raise BenchError(f"{self.name} exited (status {self.proc.returncode}); "
                             f"log: {self.logfile}")
        return process_tree(self.proc.pid)

    def stop(self) -> None:
        if not self.proc or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            # Only our own process group (start_new_session): the service and its children.
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


# ---------------------------------------------------------------- bench ---

class Bench:
    def __init__(self, args: argparse.Namespace):
        self.a = args
        self.dir = Path(tempfile.mkdtemp(prefix="figshift-bench-"))
        (self.dir / "tmp").mkdir()
        base = args.port_base
        self.port = {
            "A": base + 1, "B1": base + 2, "B2": base + 3,
            "status-A": base + 5, "status-B1": base + 6, "status-B2": base + 7,
            "figshift": base + 10, "admin": base + 11,
            "nginx": base + 20, "haproxy": base + 30,
        }
        self.pcpu, self.lcpu = args.proxy_cpu, args.load_cpu
        self.running: list[Service] = []
        self.results: list[dict] = []
        self.extras: dict[str, object] = {}
        self.bucket_cache: dict[tuple[str, int], str] = {}
        self.starts = 0

    # -- services -----------------------------------------------------------

    def start_upstreams(self) -> None:
        for name in UPSTREAMS:
            conf = self.dir / f"upstream-{name}.conf"
            conf.write_text(fill("upstream.nginx.conf.in", {
                "DIR": self.dir, "NAME": name, "PORT": self.port[name],
                "PORT_STATUS": self.port[f"status-{name}"]}))
            svc = Service(f"upstream {name}",
                          ["nginx", "-p", str(self.dir), "-c", str(conf),
                           "-e", str(self.dir / f"upstream-{name}.error.log"),
                           "-g", "daemon off;"], self.dir / f"upstream-{name}.out", self.lcpu)
            svc.start()
            self.running.append(svc)
            wait_port(self.port[name], svc.proc, f"upstream {name}")
            wait_port(self.port[f"status-{name}"], svc.proc, f"upstream {name}")

    def make_certificate(self) -> None:
        """One ECDSA P-256 certificate for 127.0.0.1 for every TLS listener (made once)."""
        key, crt = self.dir / "tls.key", self.dir / "tls.crt"
        if crt.exists():
            return
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-keyout", str(key), "-out", str(crt), "-days", "2",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True)
        (self.dir / "tls.pem").write_text(crt.read_text() + key.read_text())  # HAProxy's crt
        for f in (key, crt, self.dir / "tls.pem"):
            f.chmod(0o644)  # nginx's worker reads nothing, its master does; keep it simple

    def start_target(self, target: str, split: int = SPLIT, workers: int = 1,
                     pinned: bool = True, tls: bool = False,
                     session_tickets: bool = True) -> tuple[Service | None, int]:
        """session_tickets False (with tls): no tickets and no session cache, so no
        client can resume a session."""
        cpu = self.pcpu if pinned else None
        if target == "upstream":
            return None, self.port["A"]
        self.starts += 1
        tag = f"{target}-{self.starts}"
        if target in ("figshift", "figshift-log"):
            d = self.dir / tag
            d.mkdir()
            (d / "kvs.json").write_text(fill("kvs.json.in", {
                "PORT_A": self.port["A"], "PORT_B1": self.port["B1"],
                "PORT_B2": self.port["B2"], "SPLIT": split}))
            (d / "figshift.json").write_text(fill("figshift.json.in", {
                "PORT": self.port["figshift"], "ADMIN_PORT": self.port["admin"],
                "STORE": d / "store.json", "WORKERS": workers,
                "ACCESS_LOG": "true" if target == "figshift-log" else "false",
                "ACCESS_LOG_PATH": d / "access.log"}))
            if tls:
                conf = json.loads((d / "figshift.json").read_text())
                conf["listen"][0]["tls"] = {"cert_file": str(self.dir / "tls.crt"),
                                            "key_file": str(self.dir / "tls.key"),
                                            "session_tickets": session_tickets}
                (d / "figshift.json").write_text(json.dumps(conf))
            svc = Service(target, [self.a.figshift_bin, "serve", "--config",
                                   str(d / "figshift.json")], d / "figshift.out", cpu)
            svc.start()
            self.running.append(svc)
            deadline = time.monotonic() + 30
            while b"listening for traffic on" not in svc.logfile.read_bytes():
                if svc.proc.poll() is not None or time.monotonic() > deadline:
                    raise BenchError(f"figshift did not start; log {svc.logfile}:\n"
                                     + svc.logfile.read_text()[-2000:])
                time.sleep(0.05)
            wait_port(self.port["figshift"], svc.proc, "figshift")
            wait_port(self.port["admin"], svc.proc, "figshift admin")
            return svc, self.port["figshift"]
        if target == "nginx":
            if split <= 0:
                block = "        * legacy;"
            elif split >= 100:
                block = "        100% new;"
            else:
                block = f"        {split}% new;\n        * legacy;"
            conf = self.dir / f"{tag}.conf"
            conf.write_text(fill("proxy.nginx.conf.in", {
                "DIR": self.dir, "PORT": self.port["nginx"], "PORT_A": self.port["A"],
                "PORT_B1": self.port["B1"], "PORT_B2": self.port["B2"],
                "SPLIT_CLIENTS": block, "SSL": " ssl" if tls else "",
                "SSL_CONF": (f"        ssl_certificate {self.dir / 'tls.crt'};\n"
                             f"        ssl_certificate_key {self.dir / 'tls.key'};\n"
                             "        ssl_protocols TLSv1.3;"
                             # No ssl_session_cache either: its default, none, stores nothing.
                             + ("" if session_tickets else "\n        ssl_session_tickets off;"))
                            if tls else ""}))
            svc = Service("nginx", ["nginx", "-p", str(self.dir), "-c", str(conf),
                                    "-e", str(self.dir / "nginx-proxy.error.log"),
                                    "-g", "daemon off;"], self.dir / f"{tag}.out", cpu)
            svc.start()
            self.running.append(svc)
            wait_port(self.port["nginx"], svc.proc, "nginx")
            # The worker must be up too (its CPU is what we measure).
            deadline = time.monotonic() + 10
            while len(svc.pids()) < 2:
                if time.monotonic() > deadline:
                    raise BenchError("nginx worker did not start")
                time.sleep(0.05)
            return svc, self.port["nginx"]
        if target == "haproxy":
            conf = self.dir / f"{tag}.cfg"
            conf.write_text(fill("haproxy.cfg.in", {
                "PORT": self.port["haproxy"], "PORT_A": self.port["A"],
                "PORT_B1": self.port["B1"], "PORT_B2": self.port["B2"], "SPLIT": split,
                "NOFILE": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
                "SSL": (f" ssl crt {self.dir / 'tls.pem'} ssl-min-ver TLSv1.3"
                        + ("" if session_tickets else " no-tls-tickets")) if tls else "",
                # HAProxy's own session cache would resume TLS 1.3 without tickets too.
                "SSL_GLOBAL": "    tune.ssl.cachesize 0" if tls and not session_tickets else ""}))
            svc = Service("haproxy", ["haproxy", "-db", "-f", str(conf)],
                          self.dir / f"{tag}.out", cpu)
            svc.start()
            self.running.append(svc)
            wait_port(self.port["haproxy"], svc.proc, "haproxy")
            return svc, self.port["haproxy"]
        raise BenchError(f"unknown target {target}")

    def stop(self, svc: Service | None) -> None:
        if svc:
            svc.stop()
            if svc in self.running:
                self.running.remove(svc)

    def cleanup(self) -> None:
        for svc in reversed(self.running):
            try:
                svc.stop()
            except Exception:
                pass
        self.running.clear()

    # -- routing verification -----------------------------------------------

    def group_of(self, user: str, split: int) -> str:
        key = (user, split)
        if key not in self.bucket_cache:
            out = subprocess.run([self.a.figshift_bin, "bucket", user, "--split", str(split)],
                                 capture_output=True, text=True, check=True).stdout
            m = re.search(r"group:\s*(new|legacy)", out)
            if not m:
                raise BenchError(f"cannot parse `figshift bucket {user}`: {out!r}")
            self.bucket_cache[key] = m.group(1)
        return self.bucket_cache[key]

    @staticmethod
    def expected(group: str, path: str) -> tuple[str, str]:
        p = path.split("?")[0]
        if group == "new":
            if p == "/orders" or p.startswith("/orders/"):
                return "B1", "/v2/orders" + path[len("/orders"):]
            if p == "/users" or p.startswith("/users/"):
                return "B2", path
        return "A", path

    def fetch(self, port: int, path: str, user: str | None,
              debug_header: bool = True) -> tuple[str, str]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        headers = {}
        if user is not None:
            headers["Authorization"] = "Basic " + base64.b64encode(
                f"{user}:pw".encode()).decode()
        conn.request("GET", path, headers=headers)
        res = conn.getresponse()
        body = res.read()
        conn.close()
        if res.status != 200:
            raise BenchError(f"routing check: GET {path} as {user} -> HTTP {res.status}")
        doc = json.loads(body)
        header = res.getheader("x-figshift-upstream")
        if debug_header and header != doc["upstream"]:
            raise BenchError(f"routing check: GET {path} as {user}: debug header {header!r} "
                             f"but {doc['upstream']} answered")
        return doc["upstream"], doc["path"]

    def verify(self, target: str) -> str:
        """Starts the target at split 0, 100 and 50 and checks where requests land."""
        users = [f"user{i}" for i in range(1, 41)]
        paths = ["/orders/{i}", "/users/{i}", "/other", "/orders", "/ordersx/{i}",
                 "/orders/{i}?q=1&r=2"]
        summary = []
        for split in (0, 100, 50):
            if target.startswith("figshift") and split != 0:
                # figshift: change the split through the admin API, like an operator.
                self.admin_put("traffic-split", str(split))
            else:
                self.stop(getattr(self, "_verify_svc", None))
                self._verify_svc, port = self.start_target(target, split=split)
            port = self.port["figshift"] if target.startswith("figshift") else port
            groups = {}
            for n, user in enumerate(users, 1):
                seen = {}
                for tmpl in paths:
                    path = tmpl.format(i=n)
                    got = self.fetch(port, path, user)
                    seen[path] = got
                if target.startswith("figshift"):
                    g = self.group_of(user, split)
                    if g != ("new" if java_bucket(user) < split else "legacy"):
                        raise BenchError(f"`figshift bucket {user}` disagrees with the "
                                         "benchmark's Java hashCode (docs/design.md §1)")
                elif split == 0:
                    g = "legacy"
                elif split == 100:
                    g = "new"
                else:  # other hash than figshift's: infer the group, then check consistency
                    g = "new" if seen[f"/orders/{n}"][0] == "B1" else "legacy"
                for path, got in seen.items():
                    want = self.expected(g, path)
                    if got != want:
                        raise BenchError(f"routing check failed for {target} at split {split}: "
                                         f"{user} ({g}) GET {path} -> {got}, expected {want}")
                groups[user] = g
            for path in ("/orders/1", "/users/1", "/other"):
                if self.fetch(port, path, None) != ("A", path):
                    raise BenchError(f"routing check: {target} anonymous GET {path} not on A")
            new = sum(1 for g in groups.values() if g == "new")
            if split == 50 and not (0 < new < len(users)):
                raise BenchError(f"routing check: {target} at split 50 put {new}/{len(users)} "
                                 "users in the new group; expected a mix")
            summary.append(f"split {split}: {new}/{len(users)} new")
        if target.startswith("figshift"):
            self.admin_put("traffic-split", str(SPLIT))
        self.stop(self._verify_svc)
        self._verify_svc = None
        return ", ".join(summary)

    def admin_put(self, key: str, value: str) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port["admin"], timeout=5)
        conn.request("PUT", f"/admin/kv/{key}", body=value)
        res = conn.getresponse()
        body = res.read()
        conn.close()
        if res.status // 100 != 2:
            raise BenchError(f"admin PUT {key}={value}: HTTP {res.status} {body[:200]!r}")

    # -- one measured run ---------------------------------------------------

    def upstream_counters(self) -> dict[str, tuple[int, int]]:
        """(accepted connections, requests) of each upstream, from stub_status."""
        out = {}
        for name in UPSTREAMS:
            conn = http.client.HTTPConnection("127.0.0.1", self.port[f"status-{name}"], timeout=5)
            conn.request("GET", "/")
            text = conn.getresponse().read().decode()
            conn.close()
            # "server accepts handled requests\n N N N"
            accepts, _, requests = (int(x) for x in text.split("\n")[2].split())
            out[name] = (accepts, requests)
        return out

    def expected_new_fraction(self) -> float:
        """Share of load.lua's users in figshift's new group at SPLIT (Java hashCode)."""
        new = sum(1 for u in range(1, self.a.users + 1) if java_bucket(f"user{u}") < SPLIT)
        return new / self.a.users

    def check_shares(self, target: str, label: str, shares: dict[str, float],
                     total_requests: int) -> None:
        """The A/B1/B2 split of the requests the upstreams saw during the run must
        be what the target's rule gives for load.lua's users and paths."""
        got = ", ".join(f"{k} {v * 100:.1f}%" for k, v in shares.items())
        if target == "upstream":
            if shares["A"] < 0.999:
                raise BenchError(f"{label}: upstream run reached other upstreams ({got})")
            return
        paths_per_kind = 1 / 3  # load.lua: /orders/N, /users/N, /other in turn
        if target.startswith("figshift"):
            f = self.expected_new_fraction()
            # The request sequence repeats every 3 × users requests; allow one cycle.
            tol = 0.01 + 3 * self.a.users / max(total_requests, 1)
            want = {"B1": f * paths_per_kind, "B2": f * paths_per_kind}
            for k, v in want.items():
                if abs(shares[k] - v) > tol:
                    raise BenchError(f"{label}: upstream shares {got}; figshift's rule gives "
                                     f"{k} {v * 100:.1f}% for these users. Routing is off.")
        else:
            # Other hash than figshift's: between 30 % and 70 % of users new, and the
            # same users new on /orders and /users.
            for k in ("B1", "B2"):
                if not 0.30 * paths_per_kind <= shares[k] <= 0.70 * paths_per_kind:
                    raise BenchError(f"{label}: upstream shares {got}; expected B1 and B2 "
                                     f"each about {SPLIT / 3:.0f}% at split {SPLIT}")
            if abs(shares["B1"] - shares["B2"]) > 0.02:
                raise BenchError(f"{label}: upstream shares {got}; B1 and B2 should be equal")

    def wrk(self, port: int, seconds: float, tls: bool = False, close: bool = False) -> dict:
        argv = ["taskset", "-c", str(self.lcpu), "wrk", f"-t{self.a.wrk_threads}",
                f"-c{self.a.connections}", f"-d{int(round(seconds))}s", "--timeout", "2s",
                "-s", str(HERE / "load.lua"), f"{'https' if tls else 'http'}://127.0.0.1:{port}",
                "--", str(self.a.users)] + (["close"] if close else [])
        res = subprocess.run(argv, capture_output=True, text=True)
        m = re.search(r"^BENCHJSON (\{.*\})$", res.stdout, re.M)
        if res.returncode != 0 or not m:
            raise BenchError(f"wrk failed (status {res.returncode}):\n{res.stdout}\n{res.stderr}")
        return json.loads(m.group(1))

    @staticmethod
    def check_errors(label: str, w: dict) -> int:
        errors = sum(w[k] for k in ("connect", "read", "write", "status", "timeout"))
        if errors:
            raise BenchError(
                f"{label}: {errors} request errors (connect {w['connect']}, read {w['read']}, "
                f"write {w['write']}, non-2xx {w['status']}, timeout {w['timeout']}) "
                f"of {w['requests']} requests. A benchmark with errors is not valid.")
        return errors

    def measure(self, target: str, label: str, seconds: float, svc: Service | None,
                port: int, during=None, tls: bool = False, close: bool = False) -> dict:
        self.check_errors(f"{label} warm-up", self.wrk(port, 1, tls, close))
        time.sleep(0.3)  # requests the warm-up left in flight reach the upstreams
        pids = svc.pids() if svc else []
        up0 = self.upstream_counters()
        cpu0 = cpu_ticks(pids)
        stop_event = threading.Event()
        side = None
        if during:
            side = threading.Thread(target=during, args=(stop_event,), daemon=True)
            side.start()
        w = self.wrk(port, seconds, tls, close)
        stop_event.set()
        if side:
            side.join()
        cpu1 = cpu_ticks(pids)
        up1 = self.upstream_counters()
        # Each stub_status read is one connection and one request on its upstream.
        up_conns = sum(up1[k][0] - up0[k][0] - 1 for k in UPSTREAMS)
        up_reqs = {k: up1[k][1] - up0[k][1] - 1 for k in UPSTREAMS}
        if sum(up_reqs.values()) != w["requests"]:
            # wrk counts completed responses; the ones in flight when it stops
            # (and stragglers of the warm-up) reached an upstream too.
            if not 0 <= sum(up_reqs.values()) - w["requests"] <= 2 * self.a.connections:
                raise BenchError(f"{label}: wrk counted {w['requests']} responses but the "
                                 f"upstreams saw {sum(up_reqs.values())} requests")
        shares = {k: v / max(sum(up_reqs.values()), 1) for k, v in up_reqs.items()}
        rss, pss = memory_kb(pids) if svc else (0, 0)
        secs = w["duration_us"] / 1e6
        r = {
            "target": label, "requests": w["requests"], "seconds": secs,
            "rps": w["requests"] / secs, "p50_ms": w["p50_us"] / 1000,
            "p90_ms": w["p90_us"] / 1000, "p99_ms": w["p99_us"] / 1000,
            "max_ms": w["max_us"] / 1000,
            "cpu_us_per_req": ((cpu1 - cpu0) / CLK_TCK * 1e6 / w["requests"]) if svc else None,
            "proxy_cpu_util": ((cpu1 - cpu0) / CLK_TCK / secs) if svc else None,
            "rss_kb": rss if svc else None, "pss_kb": pss if svc else None,
            "upstream_conns": up_conns,
            "shares": shares,
            "errors": self.check_errors(label, w),
        }
        self.check_shares(target, label, shares, w["requests"])
        cpu_txt = (f"cpu {r['cpu_us_per_req']:.1f} us/req ({r['proxy_cpu_util']*100:.0f}% of a core), "
                   f"rss {rss/1024:.1f} MiB, " if svc else "")
        log(f"  {label:<14} {r['rps']:>9.0f} req/s  p50 {r['p50_ms']:.2f} ms  "
            f"p99 {r['p99_ms']:.2f} ms  {cpu_txt}upstream conns opened {r['upstream_conns']}, "
            + "/".join(f"{v * 100:.0f}" for v in shares.values()) + " % to A/B1/B2")
        return r

    def timed(self, target: str, round_no: int) -> dict:
        svc, port = self.start_target(target)
        try:
            r = self.measure(target, target, self.a.duration, svc, port)
        finally:
            self.stop(svc)
        r["round"] = round_no
        return r

    # -- extras ---------------------------------------------------------------

    def prove_tls_mode(self, target: str, port: int, mode: str) -> None:
        """A handshake mode measures what its name says only if the proxy resumes
        (or refuses to resume) a session its client offers: two connections, the
        second offering the first's session, like wrk's reconnects."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.load_verify_locations(self.dir / "tls.crt")
        session, reused = None, False
        for _ in range(2):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
                        ctx.wrap_socket(raw, server_hostname="127.0.0.1", session=session) as s:
                    s.sendall(b"GET /other HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                    data = b""
                    # To the end: a TLS 1.3 ticket comes after the handshake, so the
                    # session taken any earlier may not hold it.
                    while chunk := s.recv(65536):
                        data += chunk
                    session, reused = s.session, s.session_reused
            except (OSError, ssl.SSLError) as e:
                raise BenchError(f"{target} TLS {mode}: the session check failed: {e}")
            if not data.startswith(b"HTTP/1.1 200"):
                raise BenchError(f"{target} TLS {mode}: the session check got {data[:60]!r}")
        if reused != (mode == "resumed handshakes"):
            raise BenchError(f"{target} TLS {mode}: a client reconnecting with its session was "
                             f"{'' if reused else 'not '}resumed, so this mode would not measure "
                             "what its name says")
        log(f"  {target}: {mode} proved (a reconnect offering the session: "
            f"{'resumed' if reused else 'full handshake'})")

    def tls_run(self, target: str, mode: str, round_no: int) -> dict:
        svc, port = self.start_target(target, tls=True,
                                      session_tickets=mode != "full handshakes")
        try:
            if mode != "keep-alive":
                self.prove_tls_mode(target, port, mode)
            r = self.measure(target, f"{target} TLS {mode}", self.a.duration, svc, port,
                             tls=True, close=mode != "keep-alive")
        finally:
            self.stop(svc)
        r.update({"proxy": target, "mode": mode, "round": round_no})
        return r
    def user_key_cost(self, callgrind: bool) -> dict:
        """scripts/bench/user_key_cost.sh: its own daemons (ports 18380-18385 and
        the demo upstreams on 9001-9003), CPU 0 for them and 1 for wrk."""
        cmd = [str(HERE / "user_key_cost.sh")] + (["--callgrind"] if callgrind else []) + [
            self.a.figshift_bin, str(self.a.rounds), str(4 if callgrind else int(self.a.duration))]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
        for line in out.stdout.splitlines():
            if not line.startswith("RESULT "):
                log("  " + line)
        result = [l for l in out.stdout.splitlines() if l.startswith("RESULT ")]
        if out.returncode != 0 or not result:
            raise BenchError(f"user_key_cost.sh failed ({out.returncode}): {out.stderr[-2000:]}")
        return json.loads(result[0][len("RESULT "):])

    def idle_rss(self, target: str, tls: bool = False) -> dict:
        count = self.a.idle_tls_connections if tls else self.a.idle_connections
        svc, port = self.start_target(target, tls=tls)
        try:
            before_rss, before_pss = memory_kb(svc.pids())
            helper = subprocess.Popen(
                ["taskset", "-c", str(self.lcpu), sys.executable, str(HERE / "idle_conns.py"),
                 "--port", str(port), "--count", str(count)] + (["--tls"] if tls else []),
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                line = helper.stdout.readline().split()
                if not line or line[0] != "READY":
                    raise BenchError(f"idle_conns.py failed: {line} {helper.stderr.read()}")
                ok, failed = int(line[1]), int(line[2])
                if failed or ok != count:
                    raise BenchError(f"{target}: only {ok} of {count} idle "
                                     f"connections got a 200 ({failed} failed)")
                time.sleep(2)
                rss, pss = memory_kb(svc.pids())
                helper.stdin.write("CHECK\n")
                helper.stdin.flush()
                still_open = int(helper.stdout.readline().split()[1])
                if still_open != ok:
                    raise BenchError(f"{target}: {ok - still_open} idle connections were closed "
                                     "by the proxy before RSS was read")
            finally:
                try:
                    helper.stdin.write("CLOSE\n")
                    helper.stdin.flush()
                except OSError:
                    pass
                helper.wait(timeout=60)
        finally:
            self.stop(svc)
        r = {"target": target, "tls": tls, "connections": ok, "rss_before_kb": before_rss,
             "rss_kb": rss, "pss_kb": pss, "per_conn_bytes": (rss - before_rss) * 1024 / ok}
        log(f"  {target:<14} idle{' TLS' if tls else ''} x{ok}: rss {before_rss/1024:.1f} -> "
            f"{rss/1024:.1f} MiB (pss {pss/1024:.1f} MiB), {r['per_conn_bytes']:.0f} B/connection")
        return r

    def workers_run(self, workers: int) -> dict:
        svc, port = self.start_target("figshift", workers=workers, pinned=False)
        try:
            return self.measure("figshift", f"figshift w{workers}", self.a.duration, svc, port)
        finally:
            self.stop(svc)

    def writes_run(self, with_writes: bool) -> dict:
        svc, port = self.start_target("figshift")
        counts = {"ok": 0, "failed": 0, "codes": {}}

        def writer(stop_event: threading.Event) -> None:
            # One kept-alive admin connection from this process, as an operator's
            # control loop would hold. (Spawning curl 10×/s cost the pinned load
            # generator's CPU more than the writes cost figshift: the dip it
            # showed was the benchmark's own.)
            conn = http.client.HTTPConnection("127.0.0.1", self.port["admin"], timeout=5)
            next_t = time.monotonic()
            n = 0
            try:
                while not stop_event.is_set():
                    # The store ignores a write of the value it already has (no new
                    # version), so alternate 51 / 50: every PUT publishes a new
                    # snapshot; only bucket-50 users (1 %) move.
                    n += 1
                    value = str(SPLIT + 1 if n % 2 else SPLIT)
                    try:
                        conn.request("PUT", "/admin/kv/traffic-split", body=value.encode())
                        resp = conn.getresponse()
                        resp.read()
                        code = str(resp.status)
                    except (OSError, http.client.HTTPException) as e:
                        code = type(e).__name__
                        conn.close()
                        conn = http.client.HTTPConnection("127.0.0.1", self.port["admin"], timeout=5)
                    counts["codes"][code] = counts["codes"].get(code, 0) + 1
                    counts["ok" if code.startswith("2") else "failed"] += 1
                    next_t += 0.1
                    stop_event.wait(max(0.0, next_t - time.monotonic()))
            finally:
                conn.close()

        try:
            v0 = self.store_version()
            r = self.measure("figshift", "figshift +writes" if with_writes else "figshift",
                             self.a.duration, svc, port, during=writer if with_writes else None)
            v1 = self.store_version()
        finally:
            self.stop(svc)
        r["writes_ok"], r["writes_failed"] = counts["ok"], counts["failed"]
        r["store_versions"] = (v1 - v0) if (v0 is not None and v1 is not None) else None
        if counts["failed"]:
            raise BenchError(f"store writes failed during the run: {counts['codes']}")
        if with_writes and r["store_versions"] != counts["ok"]:
            raise BenchError(f"{counts['ok']} store writes but the store version advanced by "
                             f"{r['store_versions']}: the writes were not all published")
        if with_writes:
            log(f"    {counts['ok']} PUTs ok, store version advanced by {r['store_versions']}")
        return r

    def syscalls_run(self, target: str) -> dict | None:
        """System calls per proxied request under the timed runs' load, counted
        by perf from the kernel's tracepoints: unlike CPU time, hardly moved by
        whatever else the box is doing. None when perf cannot count them."""
        seconds = max(2.0, min(self.a.duration, 5.0))
        try:
            probe = subprocess.run(["perf", "stat", "-e", "raw_syscalls:sys_enter", "--", "true"],
                                   capture_output=True, text=True)
        except OSError as e:
            probe = subprocess.CompletedProcess([], 1, "", str(e))
        if probe.returncode != 0:
            log(f"  {target}: perf cannot count system calls here, skipped "
                f"({probe.stderr.strip()[:200]})")
            return None
        svc, port = self.start_target(target)
        try:
            self.check_errors(f"{target} warm-up", self.wrk(port, 1))
            load: dict = {}

            def run_wrk() -> None:
                try:
                    load["w"] = self.wrk(port, seconds + 2)
                except Exception as e:  # re-raised below, on the driver's thread
                    load["error"] = e

            wrk = threading.Thread(target=run_wrk)
            wrk.start()
            time.sleep(1)
            up0 = self.upstream_counters()
            perf = subprocess.run(
                ["perf", "stat", "-x", ",", "-p", ",".join(map(str, svc.pids())),
                 "-e", "raw_syscalls:sys_enter",
                 "-e", "raw_syscalls:sys_exit", "--filter", "ret == -11",
                 "--", "sleep", str(seconds)], capture_output=True, text=True)
            up1 = self.upstream_counters()
            wrk.join()
        finally:
            self.stop(svc)
        if "error" in load:
            raise load["error"]
        self.check_errors(f"{target} (system-call count)", load["w"])
        counts = {}
        for line in perf.stderr.splitlines():
            fields = line.split(",")
            if len(fields) > 2 and fields[0].isdigit():
                counts[fields[2]] = int(fields[0])
        if perf.returncode != 0 or len(counts) != 2:
            log(f"  {target}: perf could not count system calls ({perf.stderr.strip()[:200]})")
            return None
        # Each counter read is one request on each upstream.
        requests = sum(up1[k][1] - up0[k][1] - 1 for k in UPSTREAMS)
        r = {"target": target, "requests": requests,
             "syscalls_per_req": counts["raw_syscalls:sys_enter"] / requests,
             "would_block_per_req": counts["raw_syscalls:sys_exit"] / requests}
        log(f"  {target:<14} {r['syscalls_per_req']:.2f} system calls per request, "
            f"{r['would_block_per_req']:.2f} of them failed with EAGAIN ({requests} requests)")
        return r

    def store_version(self) -> int | None:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port["admin"], timeout=5)
            conn.request("GET", "/admin/status")
            doc = json.loads(conn.getresponse().read())
            conn.close()
        except Exception:
            return None
        for k in ("version", "store_version"):
            if isinstance(doc.get(k), int):
                return doc[k]
        if isinstance(doc.get("store"), dict) and isinstance(doc["store"].get("version"), int):
            return doc["store"]["version"]
        return None

    # -- main -----------------------------------------------------------------

    def run(self) -> None:
        for name, port in self.port.items():
            if not port_free(port):
                raise BenchError(f"port {port} ({name}) is in use; set BENCH_PORT_BASE")
        log(f"work dir {self.dir}; proxy on CPU {self.pcpu}, wrk + upstream on CPU {self.lcpu}")
        self.start_upstreams()
        log("upstreams A/B1/B2 up: " + ", ".join(
            f"{k} :{self.port[k]}" for k in ("A", "B1", "B2")))
        for path, want in (("/x", "A"), ("/v2/orders/1", "B1")):
            got = self.fetch(self.port[want], path, "user1", debug_header=False)
            if got != (want, path):
                raise BenchError(f"upstream self-check failed: {got}")

        targets = self.a.targets
        self.verified = {}
        for t in targets:
            if t in PROXIES:
                self.verified[t] = self.verify(t)
                log(f"routing verified for {t}: {self.verified[t]}")

        for rnd in range(self.a.rounds):
            order = targets if rnd % 2 == 0 else list(reversed(targets))
            log(f"round {rnd + 1}/{self.a.rounds}: {', '.join(order)} "
                f"({self.a.duration:g} s each)")
            for t in order:
                self.results.append(self.timed(t, rnd))

        extras = self.a.extras
        if "idle" in extras:
            idle_targets = [t for t in ("figshift", "nginx", "haproxy")
                            if t in targets or t == "figshift"]
            log(f"idle connections: {self.a.idle_connections} keep-alive clients per proxy")
            self.extras["idle"] = [self.idle_rss(t) for t in idle_targets]
            log(f"idle TLS connections: {self.a.idle_tls_connections} TLS 1.3 keep-alive "
                "clients per proxy")
            self.make_certificate()
            self.extras["idle_tls"] = [self.idle_rss(t, tls=True) for t in idle_targets]
        if "workers" in extras:
            log("figshift 1 vs 2 workers (proxy unpinned; wrk + upstream still on CPU "
                f"{self.lcpu})")
            runs = []
            for rnd in range(self.a.rounds):
                for w in ((1, 2) if rnd % 2 == 0 else (2, 1)):
                    r = self.workers_run(w)
                    r["workers"], r["round"] = w, rnd
                    runs.append(r)
            self.extras["workers"] = runs
        if "writes" in extras:
            log("store writes under load: 10 PUT traffic-split/s vs none")
            runs = []
            for rnd in range(self.a.rounds):
                for wr in ((False, True) if rnd % 2 == 0 else (True, False)):
                    r = self.writes_run(wr)
                    r["with_writes"], r["round"] = wr, rnd
                    runs.append(r)
            self.extras["writes"] = runs
        if "tls" in extras:
            log(f"TLS termination: TLS 1.3, ECDSA P-256; {', '.join(TLS_MODES)}")
            self.make_certificate()
            proxies = [t for t in TLS_PROXIES if t in targets]
            runs = []
            for rnd in range(self.a.rounds):
                order = proxies if rnd % 2 == 0 else list(reversed(proxies))
                for mode in TLS_MODES:
                    for t in order:
                        runs.append(self.tls_run(t, mode, rnd))
            self.extras["tls"] = runs
        if "userkey" in extras:
            log("user-key jwt (#17): basic vs jwt RS256 cached and uncached, same run")
            self.extras["userkey"] = self.user_key_cost(callgrind=False)
            if shutil.which("valgrind"):
                self.extras["userkey_callgrind"] = self.user_key_cost(callgrind=True)
        if "syscalls" in extras:
            log("system calls per request (perf stat on the proxy during the same load)")
            counted = [self.syscalls_run(t) for t in targets if t in ("figshift", "nginx", "haproxy")]
            self.extras["syscalls"] = [r for r in counted if r]


# --------------------------------------------------------------- report ---

def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, spec, dash="—"):
    return dash if v is None else format(v, spec)


def versions(args) -> dict:
    def cmd(argv):
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            return (r.stdout + r.stderr).strip().splitlines()[0]
        except Exception as e:  # noqa: BLE001
            return f"unknown ({e})"

    rev = cmd(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "src",
                            "include", "CMakeLists.txt"], capture_output=True, text=True).stdout
    if dirty.strip():
        rev += " + uncommitted changes in src/include"
    if args.figshift_bin_given:
        rev += f" (FIGSHIFT_BIN={args.figshift_bin})"
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return {
        "figshift": rev, "nginx": cmd(["nginx", "-v"]), "haproxy": cmd(["haproxy", "-v"]),
        "wrk": cmd(["wrk", "-v"]).split(" Copyright")[0],
        "cpu": f"{cpu}, {os.cpu_count()} CPUs", "kernel": platform.release(),
    }


def report(b: Bench, args) -> str:
    by = {}
    for r in b.results:
        by.setdefault(r["target"], []).append(r)
    v = versions(args)
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Run **{now}**{' (quick mode)' if args.quick else ''}: {args.rounds} round(s) × "
        f"{args.duration:g} s per target, wrk -t{args.wrk_threads} -c{args.connections}, "
        f"{args.users} users, split {SPLIT}; proxy pinned to CPU {args.proxy_cpu}, "
        f"wrk + upstream nginx on CPU {args.load_cpu}.",
        "",
        f"- command: `{args.command}`",
        f"- figshift: {v['figshift']}",
        f"- {v['nginx']}; {v['haproxy']}; {v['wrk']}",
        f"- CPU: {v['cpu']}; kernel {v['kernel']}",
        f"- load average at the end: {os.getloadavg()[0]:.2f} (other work on the box adds noise)",
        "",
        "| target | req/s | p50 ms | p99 ms | proxy CPU µs/req | proxy CPU % of core | RSS MiB | "
        "upstream conns opened | % to A/B1/B2 | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for t in [t for t in ALL_TARGETS if t in by]:
        rs = by[t]
        lines.append(
            f"| {t} | {med([r['rps'] for r in rs]):.0f} | {med([r['p50_ms'] for r in rs]):.2f} | "
            f"{med([r['p99_ms'] for r in rs]):.2f} | "
            f"{fmt(med([r['cpu_us_per_req'] for r in rs]), '.1f')} | "
            f"{fmt(med([r['proxy_cpu_util'] for r in rs]) and med([r['proxy_cpu_util'] for r in rs]) * 100, '.0f')} | "
            f"{fmt(med([r['rss_kb'] for r in rs]) and med([r['rss_kb'] for r in rs]) / 1024, '.1f')} | "
            f"{max(r['upstream_conns'] for r in rs)} | "
            + "/".join(f"{med([r['shares'][k] for r in rs]) * 100:.1f}" for k in UPSTREAMS)
            + f" | {sum(r['errors'] for r in rs)} |")
    lines.append("")
    lines.append("Medians over rounds (upstream conns: the most in any round; errors: the "
                 "sum, non-2xx + socket errors). The A/B1/B2 shares are counted by the "
                 "upstreams during the timed runs and checked: figshift's against its rule "
                 f"for these users ({b.expected_new_fraction() * 100:.1f}% in the new group "
                 f"at split {SPLIT}), nginx/HAProxy's for a plausible 50 % split.")

    # Ratios: per round, then median.
    def ratios(fs, other, key):
        vals = []
        for rnd in range(args.rounds):
            a = [r[key] for r in by.get(fs, []) if r["round"] == rnd]
            o = [r[key] for r in by.get(other, []) if r["round"] == rnd]
            if a and o and a[0] is not None and o[0]:
                vals.append(a[0] / o[0])
        return vals

    def ratio(fs, other, key):
        return med(ratios(fs, other, key))

    fs_targets = [t for t in ("figshift", "figshift-log") if t in by]
    others = [t for t in ("nginx", "haproxy") if t in by]
    if fs_targets and others:
        # Each round's CPU ratio too: the spread shows how far the box's noise moves it.
        lines += ["", "| ratio (median of per-round ratios) | req/s | p99 | CPU/req | "
                  "CPU/req, each round | target (issue 6) |", "|---|---:|---:|---:|---|---|"]
        for fs in fs_targets:
            for o in others:
                rps, p99, cpu = (ratio(fs, o, k) for k in ("rps", "p99_ms", "cpu_us_per_req"))
                each = ", ".join(f"{v:.2f}" for v in ratios(fs, o, "cpu_us_per_req"))
                lines.append(f"| {fs} / {o} | {fmt(rps, '.2f')} | {fmt(p99, '.2f')} | "
                             f"{fmt(cpu, '.2f')} | {each} | "
                             "req/s ≥ 1.1 (vs better), p99 ≤ 1, CPU ≤ 0.8 |")
        # Verdict against the better of the two, on medians.
        best_rps = max(med([r["rps"] for r in by[o]]) for o in others)
        best_p99 = min(med([r["p99_ms"] for r in by[o]]) for o in others)
        worst_cpu_limit = min(med([r["cpu_us_per_req"] for r in by[o]]) for o in others) * 0.8
        lines.append("")
        for fs in fs_targets:
            rps = med([r["rps"] for r in by[fs]])
            p99 = med([r["p99_ms"] for r in by[fs]])
            cpu = med([r["cpu_us_per_req"] for r in by[fs]])
            ok = lambda c: "met" if c else "NOT met"  # noqa: E731
            lines.append(
                f"- {fs} vs the better of {' and '.join(others)}: req/s {rps:.0f} vs "
                f"1.1 × {best_rps:.0f} = {1.1 * best_rps:.0f} → {ok(rps >= 1.1 * best_rps)}; "
                f"p99 {p99:.2f} vs {best_p99:.2f} ms → {ok(p99 <= best_p99)}; CPU/req "
                f"{cpu:.1f} vs 0.8 × {worst_cpu_limit / 0.8:.1f} = {worst_cpu_limit:.1f} µs → "
                f"{ok(cpu <= worst_cpu_limit)}")

    if b.verified:
        lines += ["", "Routing verified before timing (40 users × 6 paths + anonymous; "
                  "figshift exactly against `figshift bucket`, nginx/HAProxy by rule):"]
        for t, s in b.verified.items():
            lines.append(f"- {t}: {s}")

    ex = b.extras
    fewer = (" (fewer than plain ones: Python opens them one handshake at a time, 10,000 "
             "took ~45 s per proxy on a 2-CPU box; BENCH_IDLE_TLS_CONNECTIONS sets the number)"
             if args.idle_tls_connections < args.idle_connections else "")
    for key, count, what in (
            ("idle", args.idle_connections, "idle keep-alive client connections"),
            ("idle_tls", args.idle_tls_connections,
             f"idle TLS 1.3 keep-alive client connections{fewer}")):
        if key not in ex:
            continue
        lines += ["", f"**RSS with {count} {what}** "
                  "(each made one request first; RSS/PSS summed over all the proxy's processes, "
                  "nginx = master + worker):", "",
                  "| proxy | RSS before MiB | RSS with idle conns MiB | PSS MiB | bytes/conn |",
                  "|---|---:|---:|---:|---:|"]
        for r in ex[key]:
            lines.append(f"| {r['target']} | {r['rss_before_kb']/1024:.1f} | "
                         f"{r['rss_kb']/1024:.1f} | {r['pss_kb']/1024:.1f} | "
                         f"{r['per_conn_bytes']:.0f} |")
    if "workers" in ex:
        lines += ["", "**figshift worker threads** (proxy unpinned, may use both CPUs; wrk and "
                  f"upstream still pinned to CPU {args.load_cpu}, so a second worker competes "
                  "with them):", "",
                  "| workers | req/s | p50 ms | p99 ms | proxy CPU µs/req | proxy CPU % of core |",
                  "|---:|---:|---:|---:|---:|---:|"]
        for w in (1, 2):
            rs = [r for r in ex["workers"] if r["workers"] == w]
            lines.append(f"| {w} | {med([r['rps'] for r in rs]):.0f} | "
                         f"{med([r['p50_ms'] for r in rs]):.2f} | "
                         f"{med([r['p99_ms'] for r in rs]):.2f} | "
                         f"{med([r['cpu_us_per_req'] for r in rs]):.1f} | "
                         f"{med([r['proxy_cpu_util'] for r in rs]) * 100:.0f} |")
    if "writes" in ex:
        lines += ["", "**Store writes under load** (figshift, 1 worker pinned; "
                  "`PUT 127.0.0.1:<admin>/admin/kv/traffic-split` on one kept-alive connection, "
                  "alternating 51 and 50 so each PUT publishes a new store version, 10×/s during the timed run):", "",
                  "| run | req/s | p50 ms | p99 ms | max ms | proxy CPU µs/req | PUTs ok per run | "
                  "store versions per run |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for wr in (False, True):
            rs = [r for r in ex["writes"] if r["with_writes"] == wr]
            lines.append(f"| {'10 writes/s' if wr else 'no writes'} | "
                         f"{med([r['rps'] for r in rs]):.0f} | {med([r['p50_ms'] for r in rs]):.2f} | "
                         f"{med([r['p99_ms'] for r in rs]):.2f} | {med([r['max_ms'] for r in rs]):.2f} | "
                         f"{med([r['cpu_us_per_req'] for r in rs]):.1f} | "
                         f"{med([r['writes_ok'] for r in rs]) if wr else 0:.0f} | "
                         f"{fmt(med([r['store_versions'] for r in rs]), '.0f') if wr else '—'} |")
        no = med([r["rps"] for r in ex["writes"] if not r["with_writes"]])
        yes = med([r["rps"] for r in ex["writes"] if r["with_writes"]])
        lines.append("")
        lines.append(f"Throughput with writes / without: {yes / no:.3f}.")
    if ex.get("tls"):
        lines += ["", "**TLS termination** (TLS 1.3, one ECDSA P-256 certificate; proxy pinned "
                  "as above). Keep-alive: wrk's connections stay open. Resumed handshakes: "
                  "`Connection: close` on every request, so each request is a TCP connection "
                  "and a handshake (req/s = handshakes/s); wrk offers its last session on each "
                  "reconnect and every proxy issues TLS 1.3 session tickets (their default), so "
                  "each is a PSK-DHE resumption, no certificate sent or signed. Full handshakes: "
                  "the same with session tickets and session caches off (nginx "
                  "`ssl_session_tickets off`, no `ssl_session_cache`; HAProxy `no-tls-tickets`, "
                  "`tune.ssl.cachesize 0`; figshift `\"session_tickets\": false`), so each is a "
                  "full handshake with an ECDSA signature. Before each handshake-mode run a Python "
                  "client reconnecting with its session proved the proxy resumed it, or did not:",
                  "",
                  "| proxy | mode | req/s | p99 ms | proxy CPU µs/req | proxy CPU % of core | "
                  "CPU ÷ better peer, each round | median | req/s ÷ better peer, each round | median |",
                  "|---|---|---:|---:|---:|---:|---|---:|---|---:|"]
        tls_runs = ex["tls"]
        load_bound = []
        for mode in TLS_MODES:
            for t in TLS_PROXIES:
                rs = [r for r in tls_runs if r["proxy"] == t and r["mode"] == mode]
                if not rs:
                    continue
                cpu_ratios, rps_ratios = [], []
                for rnd in sorted({r["round"] for r in rs}):
                    mine = [r for r in rs if r["round"] == rnd][0]
                    peers = [r for r in tls_runs if r["mode"] == mode and r["round"] == rnd
                             and r["proxy"] != t and r["proxy"] != "figshift"]
                    if t == "figshift" and peers:
                        cpu_ratios.append(mine["cpu_us_per_req"] / min(p["cpu_us_per_req"] for p in peers))
                        rps_ratios.append(mine["rps"] / max(p["rps"] for p in peers))
                each = lambda v: ", ".join(f"{x:.2f}" for x in v) or "—"  # noqa: E731
                util = med([r["proxy_cpu_util"] for r in rs])
                if util < 0.9 and mode not in load_bound:
                    load_bound.append(mode)
                lines.append(
                    f"| {t} | {mode} | "
                    f"{med([r['rps'] for r in rs]):.0f} | {med([r['p99_ms'] for r in rs]):.2f} | "
                    f"{med([r['cpu_us_per_req'] for r in rs]):.1f} | {util * 100:.0f} | {each(cpu_ratios)} | "
                    f"{fmt(med(cpu_ratios), '.2f')} | {each(rps_ratios)} | {fmt(med(rps_ratios), '.2f')} |")
        lines.append("")
        if load_bound:
            # A proxy short of its core was waiting for its clients (on full
            # handshakes wrk verifies an ECDSA signature each) or for a CPU busy
            # with other work: req/s is then not the proxy's.
            lines.append(f"In {' and '.join(load_bound)}, a proxy used under 90 % of its core: "
                         "it was not the limit there (the load CPU, wrk and the upstreams, or "
                         "other work on the box was), so req/s does not compare the proxies; "
                         "CPU/req still does.")
            lines.append("")
        lines.append("Goals (issue #19): keep-alive CPU/req ≤ 0.8 × the better peer's; "
                     "handshakes/s ≥ 1.2 × the better peer's (set when the resumed "
                     "handshakes were taken for full ones).")
    for key, what in (("userkey", "daemon CPU µs per request (utime+stime over the run)"),
                      ("userkey_callgrind", "worker-thread instructions per request (callgrind)")):
        if key not in ex:
            continue
        r = ex[key]
        med_of = lambda v: statistics.median(x[v] for x in r["rounds"])
        lines += ["", f"**user-key jwt (#17)**: {what}; 1 worker pinned, 1000 users, RS256 tokens, "
                  "`scripts/bench/user_key_cost.sh` (same run, rounds alternating):", "",
                  "| user-key | per request (median) | ratio to basic: median [min–max] |",
                  "|---|---:|---:|", f"| basic | {med_of('basic'):g} | 1 |"]
        for v, label in (("basic_padded", "basic, request padded to a Bearer one's length"),
                         ("jwt_cached", "jwt, cached"), ("jwt_uncached", "jwt, uncached")):
            q = r[v + "_ratio"]
            lines.append(f"| {label} | {med_of(v):g} | {q['median']:.2f} [{q['min']:.2f}–{q['max']:.2f}] |")
    if ex.get("syscalls"):
        lines += ["", "**System calls per proxied request** (`perf stat -e raw_syscalls:*` on "
                  "the proxy for a few seconds of the same load; requests counted by the "
                  "upstreams over a window a few ms wider than perf's, so the count is at most "
                  "~1 % low; other work on the box hardly moves it):", "",
                  "| proxy | system calls/req | of which failed with EAGAIN (nothing to read yet) |",
                  "|---|---:|---:|"]
        for r in ex["syscalls"]:
            lines.append(f"| {r['target']} | {r['syscalls_per_req']:.2f} | "
                         f"{r['would_block_per_req']:.2f} |")
    return "\n".join(lines) + "\n"


BEGIN = "<!-- bench:results:begin -->"
END = "<!-- bench:results:end -->"


def write_docs(doc: Path, table: str, raw_name: str) -> None:
    text = doc.read_text() if doc.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        text += f"\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    doc.write_text(f"{head}{BEGIN}\n{table}\nRaw per-run numbers: `{raw_name}` (not committed).\n{END}{tail}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--figshift-bin", required=True)
    p.add_argument("--figshift-bin-given", action="store_true")
    p.add_argument("--targets", default=",".join(ALL_TARGETS))
    p.add_argument("--extras", default=",".join(EXTRAS), help="idle,workers,writes,syscalls,tls,userkey or none")
    p.add_argument("--duration", type=int, default=10)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--wrk-threads", type=int, default=1)
    p.add_argument("--users", type=int, default=1000)
    p.add_argument("--idle-connections", type=int, default=10000)
    p.add_argument("--idle-tls-connections", type=int, default=2000)
    p.add_argument("--proxy-cpu", type=int, default=0)
    p.add_argument("--load-cpu", type=int, default=1)
    p.add_argument("--port-base", type=int, default=18100)
    p.add_argument("--docs", default="")
    p.add_argument("--out", required=True, help="directory for the last results")
    p.add_argument("--command", default="scripts/bench.sh")
    p.add_argument("--keep", action="store_true", help="keep the work dir (logs, configs)")
    args = p.parse_args()

    args.targets = [t for t in args.targets.split(",") if t]
    for t in args.targets:
        if t not in ALL_TARGETS:
            p.error(f"unknown target {t!r}; choose from {','.join(ALL_TARGETS)}")
    args.extras = [] if args.extras in ("", "none") else args.extras.split(",")
    for e in args.extras:
        if e not in EXTRAS:
            p.error(f"unknown extra {e!r}; choose from {','.join(EXTRAS)} or none")
    usable = os.sched_getaffinity(0)
    if {args.proxy_cpu, args.load_cpu} - usable or args.proxy_cpu == args.load_cpu:
        p.error(f"need two distinct usable CPUs (usable: {sorted(usable)})")
    # The driver itself stays off the proxy's CPU.
    os.sched_setaffinity(0, {args.load_cpu})

    b = Bench(args)

    def on_signal(signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    ok = False
    try:
        b.run()
        ok = True
    except BenchError as e:
        print(f"\n*** BENCHMARK FAILED: {e}\n*** logs and configs kept in {b.dir}\n",
              file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        print(f"\ninterrupted; logs in {b.dir}", file=sys.stderr)
    except Exception:  # noqa: BLE001 - a bug here must still stop what we started
        import traceback
        traceback.print_exc()
        print(f"\n*** BENCHMARK FAILED (internal error); logs in {b.dir}\n", file=sys.stderr)
    finally:
        b.cleanup()
    if not ok:
        return 1

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    raw = out / "bench-last.json"
    raw.write_text(json.dumps({"args": {k: v for k, v in vars(args).items()},
                               "results": b.results, "extras": b.extras}, indent=1, default=str))
    table = report(b, args)
    (out / "bench-last.md").write_text(table)
    print("\n" + table)
    log(f"results: {out / 'bench-last.md'} and {raw}")
    if args.docs:
        write_docs(Path(args.docs), table, os.path.relpath(raw, REPO))
        log(f"updated {args.docs}")
    if not args.keep:
        shutil.rmtree(b.dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
