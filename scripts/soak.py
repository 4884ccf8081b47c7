#!/usr/bin/env python3
"""Soak driver for scripts/soak.sh (Python 3 standard library only).

  soak.py failing-upstream
      An upstream that fails on purpose, in turn: closes without answering,
      answers garbage, answers 500, hangs past upstream_response_ms, resets,
      or closes mid-body. Prints its port on the first line of stdout.

  soak.py drive --port P --admin A --pid PID --seconds N
      Mixed traffic through the proxy (many users; A, B1, B2, the failing
      upstream and a refused one; keep-alive and one-request connections; GET
      and POST), a store write every 2 s and a /metrics scrape. After a
      warm-up, and again at the end, traffic pauses until the daemon's file
      descriptors settle, then its VmRSS and open fds are sampled.
      Prints requests, outcomes by kind, RSS and fds; exits 1 when RSS grew by
      more than --rss-growth-pct (10) after warm-up, fds grew, a healthy route
      failed, or the daemon died.
"""

import argparse
import base64
import http.client
import json
import os
import random
import socket
import struct
import sys
import threading
import time

# path prefix -> (expected outcome class, weight)
ROUTES = [
    ("/orders/%d", "healthy", 30),      # B1 for migrated users, A otherwise
    ("/users/%d", "healthy", 20),       # B2 for migrated users
    ("/catalog/%d", "healthy", 25),     # A
    ("/failing/%d", "failing", 10),     # B3: fails on purpose (migrated users only)
    ("/refused/%d", "failing", 5),      # B4: nothing listens (migrated users only)
]


# ---------------------------------------------------------------------------
# the failing upstream
# ---------------------------------------------------------------------------

def failing_upstream():
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(256)
    print(srv.getsockname()[1], flush=True)
    counter = [0]
    lock = threading.Lock()

    def handle(conn):
        try:
            conn.settimeout(10)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            with lock:
                counter[0] += 1
                mode = counter[0] % 6
            if mode == 0:
                pass  # close without a word
            elif mode == 1:
                conn.sendall(b"NOT HTTP\r\n\r\n")
            elif mode == 2:
                conn.sendall(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
            elif mode == 3:
                time.sleep(1.0)  # beyond the proxy's upstream_response_ms
            elif mode == 4:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial")
        except OSError:
            pass
        finally:
            conn.close()

    while True:
        conn, _ = srv.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


# ---------------------------------------------------------------------------
# sampling
# ---------------------------------------------------------------------------

def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS for pid %d" % pid)


def fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def asan(pid):
    """True when the daemon runs under AddressSanitizer (its quarantine keeps freed
    memory resident, so RSS growth says nothing about leaks; LeakSanitizer does)."""
    try:
        with open("/proc/%d/maps" % pid) as f:
            if "asan" in f.read():
                return True
        with open("/proc/%d/exe" % pid, "rb") as f:
            tail = b""
            while True:
                block = f.read(1 << 20)
                if not block:
                    return False
                if b"__asan_init" in tail + block:
                    return True
                tail = block[-16:]
    except OSError:
        return False


def alive(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            return "State:\tZ" not in f.read()
    except OSError:
        return False


# ---------------------------------------------------------------------------
# traffic
# ---------------------------------------------------------------------------

class Traffic:
    def __init__(self, port, threads, users):
        self.port = port
        self.users = users
        self.running = threading.Event()   # set: send; clear: pause (connections closed)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.counts = {}
        self.unexpected = []
        self.idle = 0  # threads currently paused with no connection open
        self.threads = [threading.Thread(target=self.run, args=(k, k % 4 != 3), daemon=True)
                        for k in range(threads)]
        self.routes = [r for r in ROUTES for _ in range(r[2])]

    def count(self, kind):
        with self.lock:
            self.counts[kind] = self.counts.get(kind, 0) + 1

    def run(self, k, keepalive):
        rng = random.Random(k)
        conn = None
        n = 0
        while not self.stop.is_set():
            if not self.running.is_set():
                if conn is not None:
                    conn.close()
                    conn = None
                with self.lock:
                    self.idle += 1
                while not self.running.is_set() and not self.stop.is_set():
                    self.running.wait(0.1)
                with self.lock:
                    self.idle -= 1
                continue
            n += 1
            pattern, cls, _ = rng.choice(self.routes)
            path = pattern % n
            headers = {}
            if rng.random() < 0.9:
                user = rng.choice(self.users)
                headers["Authorization"] = "Basic " + base64.b64encode(("%s:pw-%d" % (user, k)).encode()).decode()
            if not keepalive:
                headers["Connection"] = "close"
            body = None
            method = "GET"
            if rng.random() < 0.15:
                method, body = "POST", os.urandom(rng.randrange(1, 20000))
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                conn.request(method, path, body=body, headers=headers)
                r = conn.getresponse()
                data = r.read()
                if r.will_close or not keepalive:
                    conn.close()
                    conn = None
            except Exception as e:  # noqa: BLE001
                if conn is not None:
                    conn.close()
                conn = None
                kind = "%s error %s" % (cls, type(e).__name__)
                self.count(kind)
                if cls == "healthy":
                    with self.lock:
                        self.unexpected.append("%s %s: %s: %s" % (method, path, type(e).__name__, e))
                continue
            if 200 <= r.status < 300:
                try:
                    up = json.loads(data)["upstream"]
                except (ValueError, KeyError, TypeError):
                    up = "?"
                self.count("%d from %s" % (r.status, up))
            else:
                self.count("%s %d" % (cls, r.status))
                if cls == "healthy":
                    with self.lock:
                        self.unexpected.append("%s %s: %d %r" % (method, path, r.status, data[:200]))
        if conn is not None:
            conn.close()

    def start(self):
        self.running.set()
        for t in self.threads:
            t.start()

    def pause(self, timeout=15):
        self.running.clear()
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                if self.idle == len(self.threads):
                    return True
            time.sleep(0.05)
        return False

    def finish(self):
        self.stop.set()
        self.running.set()
        for t in self.threads:
            t.join(15)

    def total(self):
        with self.lock:
            return sum(self.counts.values())


def settle(pid, quiet_s=1.5, timeout=10.0):
    """Waits until the daemon's fd count has not changed for quiet_s (pools drained)."""
    last, since = fds(pid), time.time()
    deadline = time.time() + timeout
    while time.time() < deadline:
        time.sleep(0.1)
        now = fds(pid)
        if now != last:
            last, since = now, time.time()
        elif time.time() - since >= quiet_s:
            break
    return last


def admin_call(admin_port, method, path, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", admin_port, timeout=10)
    try:
        conn.request(method, path, body=body)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def drive(args):
    pid = args.pid
    seconds = args.seconds
    warmup = max(5.0, min(15.0, seconds * 0.2))
    users = ["soak-user-%d" % i for i in range(args.users)]
    traffic = Traffic(args.port, args.threads, users)
    admin_errors = []
    stop_admin = threading.Event()

    def operator():
        rng = random.Random(99)
        i = 0
        while not stop_admin.wait(2.0):
            i += 1
            try:
                st, body = admin_call(args.admin, "PUT", "/admin/kv/traffic-split", str(rng.randrange(30, 71)).encode())
                if st != 200:
                    admin_errors.append("PUT traffic-split: %d %r" % (st, body[:200]))
                st, body = admin_call(args.admin, "GET", "/metrics")
                if st != 200:
                    admin_errors.append("GET /metrics: %d" % st)
            except (OSError, http.client.HTTPException) as e:
                admin_errors.append("admin: %s" % e)

    t_start = time.time()
    traffic.start()
    op = threading.Thread(target=operator, daemon=True)
    op.start()
    print("soak: %d s (warm-up %.0f s), %d client threads, %d users" % (seconds, warmup, args.threads, args.users),
          flush=True)
    time.sleep(warmup)
    if not traffic.pause():
        print("soak: clients did not pause", flush=True)
    fds_start = settle(pid)
    rss_start = rss_kb(pid)
    req_start = traffic.total()
    print("soak: after warm-up (%d requests): RSS %d kB, fds %d" % (req_start, rss_start, fds_start), flush=True)
    traffic.running.set()
    main_end = t_start + seconds - 3.0
    next_report = time.time() + 10
    while time.time() < main_end:
        time.sleep(min(1.0, max(0.0, main_end - time.time())))
        if not alive(pid):
            break
        if time.time() >= next_report:
            next_report += 10
            print("soak: t=%.0f s, %d requests, RSS %d kB, fds %d" % (time.time() - t_start, traffic.total(),
                                                                       rss_kb(pid), fds(pid)), flush=True)
    daemon_alive = alive(pid)
    traffic.pause()
    stop_admin.set()
    op.join(15)
    fds_end = settle(pid) if daemon_alive else -1
    rss_end = rss_kb(pid) if daemon_alive else -1
    traffic.finish()
    total = traffic.total()

    print("soak: %d requests in %.0f s (%d after warm-up)" % (total, time.time() - t_start, total - req_start))
    for kind in sorted(traffic.counts):
        print("  %-40s %d" % (kind, traffic.counts[kind]))
    errors = {k: v for k, v in traffic.counts.items() if not k.startswith("2")}
    print("soak: errors by kind: %s" % (json.dumps(errors, sort_keys=True) if errors else "none"))
    print("soak: RSS %d kB -> %d kB (%+.1f %%), fds %d -> %d"
          % (rss_start, rss_end, 100.0 * (rss_end - rss_start) / rss_start if rss_end >= 0 else 0, fds_start, fds_end))

    failures = []
    if not daemon_alive:
        failures.append("the daemon died")
    else:
        if asan(pid):
            print("soak: AddressSanitizer build: RSS growth not judged (its quarantine holds freed memory; "
                  "LeakSanitizer checks leaks at exit)")
        elif rss_end > rss_start * (1 + args.rss_growth_pct / 100.0):
            failures.append("RSS grew by more than %g %% after warm-up" % args.rss_growth_pct)
        if fds_end > fds_start:
            failures.append("open file descriptors grew (%d -> %d)" % (fds_start, fds_end))
    if traffic.unexpected:
        failures.append("%d requests to healthy upstreams failed, e.g. %s"
                        % (len(traffic.unexpected), traffic.unexpected[:3]))
    if admin_errors:
        failures.append("admin API errors: %s" % admin_errors[:3])
    healthy_ok = sum(v for k, v in traffic.counts.items() if k.startswith("2"))
    if healthy_ok < 100:
        failures.append("too few successful requests (%d)" % healthy_ok)
    failing = sum(v for k, v in traffic.counts.items() if k.startswith("failing"))
    if failing == 0:
        failures.append("no request reached the failing upstreams")
    if failures:
        print("SOAK FAIL: " + "; ".join(failures), flush=True)
        return 1
    print("SOAK PASS", flush=True)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("failing-upstream")
    d = sub.add_parser("drive")
    d.add_argument("--port", type=int, required=True)
    d.add_argument("--admin", type=int, required=True)
    d.add_argument("--pid", type=int, required=True)
    d.add_argument("--seconds", type=float, required=True)
    d.add_argument("--threads", type=int, default=16)
    d.add_argument("--users", type=int, default=5000)
    d.add_argument("--rss-growth-pct", type=float, default=10.0)
    args = ap.parse_args()
    if args.cmd == "failing-upstream":
        failing_upstream()
        return 0
    return drive(args)


if __name__ == "__main__":
    sys.exit(main())
