#!/usr/bin/env python3
"""Memory held by slow uploads (issue #18, finding 4): starts BINARY with
default limits except those given, opens CLIENTS connections that each send the
head of a SIZE-byte POST and all of its body but the last byte, and reports how
many the proxy holds, how many it answers at once (503), and its RSS before and
after. Loopback only; every connection is closed at the end.

Usage: scripts/bench/body_memory.py BINARY [--clients 20] [--size 10000000]
                                           [--workers 2] [--budget BYTES] [--sink]

--sink: the upstream is a live one that reads and discards whatever arrives
(never answering), so a proxy that streams bodies (#15) forwards them instead
of holding them; without it the upstream's port is closed (a proxy that buffers
bodies never notices).
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time


def rss_mib(pid: int) -> float:
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("binary")
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--size", type=int, default=10_000_000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--budget", type=int, help="limits.buffered_body_bytes (builds that have it)")
    p.add_argument("--sink", action="store_true", help="a live upstream that reads and discards")
    a = p.parse_args()

    upstream = "http://127.0.0.1:9"
    if a.sink:
        listener = socket.create_server(("127.0.0.1", 0))
        upstream = "http://127.0.0.1:%d" % listener.getsockname()[1]

        def drain(conn):
            with conn:
                while conn.recv(1 << 20):
                    pass

        def accept():
            while True:
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return
                threading.Thread(target=drain, args=(conn,), daemon=True).start()

        threading.Thread(target=accept, daemon=True).start()

    work = tempfile.mkdtemp()
    port, admin = free_port(), free_port()
    with open(os.path.join(work, "kvs.json"), "w") as f:
        json.dump({"data": [{"key": "APIGW_A_URL", "value": upstream}]}, f)
    limits = {"body_bytes": max(a.size, 10 * 1024 * 1024)}
    if a.budget is not None:
        limits["buffered_body_bytes"] = a.budget
    config = {"listen": [{"address": "127.0.0.1", "port": port}],
              "admin": {"address": "127.0.0.1", "port": admin},
              "store": {"backend": "file", "path": "store.json", "seed": "kvs.json"},
              "workers": a.workers, "limits": limits, "access_log": {"enabled": False},
              "timeouts": {"client_body_ms": 60000}, "log": {"level": "warn"}}
    with open(os.path.join(work, "figshift.json"), "w") as f:
        json.dump(config, f)
    proc = subprocess.Popen([a.binary, "serve", "--config", os.path.join(work, "figshift.json")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        before = rss_mib(proc.pid)
        held, refused, conns = 0, 0, []
        chunk = b"x" * (1 << 20)
        for _ in range(a.clients):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            conns.append(s)
            s.sendall(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % a.size)
            s.settimeout(0.3)
            try:
                answered = s.recv(4096)
            except socket.timeout:
                answered = b""
            if answered:
                refused += 1
                continue
            s.settimeout(10)
            try:
                left = a.size - 1
                while left:
                    n = min(left, len(chunk))
                    s.sendall(chunk[:n])
                    left -= n
                held += 1
            except OSError:
                refused += 1
        time.sleep(0.5)
        after = rss_mib(proc.pid)
        print("clients=%d size=%d workers=%d budget=%s held=%d refused=%d rss_before_mib=%.1f "
              "rss_after_mib=%.1f grown_mib=%.1f" % (a.clients, a.size, a.workers, a.budget, held, refused,
                                                     before, after, after - before))
        for s in conns:
            s.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
