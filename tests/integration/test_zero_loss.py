"""Zero-loss operations: 200 store writes under load lose no request; SIGTERM under
load completes every request in flight, refuses new connections and exits 0 in time.

Load: Python threads (keep-alive and one-request connections, per-request
accounting), plus wrk when it is installed (scripts/setup.sh installs it).
"""

import base64
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
from harness import basic, bucket_of  # noqa: E402

USERS = h.EXTRA_USERS
PATHS = ("/orders/%d", "/payments/%d", "/other/%d")


class LoadGen:
    """Client threads sending GETs through the proxy; every request is accounted for."""

    def __init__(self, port, keepalive_threads=6, oneshot_threads=2, path_fn=None, delay_ms=0):
        self.port = port
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.ok = 0
        self.by_upstream = {}
        self.failures = []  # (kind, detail)
        self.records = []   # (id, t_sent or None, outcome, t_done)
        self.delay_ms = delay_ms
        self.path_fn = path_fn
        self.threads = [threading.Thread(target=self._run, args=(k, True), daemon=True)
                        for k in range(keepalive_threads)]
        self.threads += [threading.Thread(target=self._run, args=(100 + k, False), daemon=True)
                         for k in range(oneshot_threads)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def finish(self, timeout=30):
        self.stop.set()
        for t in self.threads:
            t.join(timeout)
        return not any(t.is_alive() for t in self.threads)

    def _record(self, rid, t_sent, outcome, detail=""):
        with self.lock:
            self.records.append((rid, t_sent, outcome, time.time()))
            if outcome != "ok":
                self.failures.append((outcome, detail))

    def _run(self, k, keepalive):
        rng = random.Random(k)
        conn = None
        n = 0
        if self.delay_ms:
            time.sleep(rng.uniform(0, self.delay_ms[1] / 1000))
        while not self.stop.is_set():
            n += 1
            rid = "%d-%d" % (k, n)
            user = rng.choice(USERS)
            path = (self.path_fn(rid) if self.path_fn else rng.choice(PATHS) % n)
            if self.delay_ms:  # (lo, hi): a random upstream delay, so that clients do not move in step
                path += "?__delay_ms=%d" % rng.randrange(*self.delay_ms)
            headers = {"Authorization": basic(user)}
            if not keepalive:
                headers["Connection"] = "close"
            t_sent = None
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
                    conn.connect()
                conn.request("GET", path, headers=headers)
                t_sent = time.time()
                r = conn.getresponse()
                body = r.read()
                if not keepalive or r.will_close:
                    conn.close()
                    conn = None
            except ConnectionRefusedError as e:
                self._record(rid, t_sent, "refused", str(e))
                conn = None
                time.sleep(0.02)
                continue
            except http.client.IncompleteRead as e:
                self._record(rid, t_sent, "partial", repr(e))
                conn = None
                continue
            except socket.timeout as e:
                self._record(rid, t_sent, "timeout", str(e))
                conn = None
                continue
            except (http.client.RemoteDisconnected, ConnectionError, http.client.HTTPException, OSError) as e:
                # closed before any byte of a response
                self._record(rid, t_sent, "closed", "%s: %s" % (type(e).__name__, e))
                if conn is not None:
                    conn.close()
                conn = None
                continue
            if r.status == 503:
                self._record(rid, t_sent, "503", body[:200])
                continue
            if not 200 <= r.status < 300:
                self._record(rid, t_sent, "status %d" % r.status, body[:200])
                continue
            try:
                echo = json.loads(body)
                up = echo["upstream"]
                if echo["path"].split("?")[0].rsplit("/", 1)[-1] != path.split("?")[0].rsplit("/", 1)[-1]:
                    self._record(rid, t_sent, "wrong response", body[:200])
                    continue
            except (ValueError, KeyError, TypeError):
                self._record(rid, t_sent, "not an echo", body[:200])
                continue
            with self.lock:
                self.ok += 1
                self.by_upstream[up] = self.by_upstream.get(up, 0) + 1
            self._record(rid, t_sent, "ok")
        if conn is not None:
            conn.close()


WRK_SCRIPT = """
local users = {%s}
local paths = {"/orders/1", "/payments/2", "/other/3", "/orders/4/items"}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[i %% #paths + 1], {["Authorization"] = "Basic " .. users[i %% #users + 1]})
end
"""


def start_wrk(port, seconds, workdir):
    if not shutil.which("wrk"):
        return None
    creds = ", ".join('"%s"' % base64.b64encode(("%s:pw" % u).encode()).decode() for u in USERS[:40])
    script = os.path.join(workdir, "split.lua")
    with open(script, "w") as f:
        f.write(WRK_SCRIPT % creds)
    return subprocess.Popen(["wrk", "-t2", "-c8", "-d%ds" % seconds, "--timeout", "5s", "-s", script,
                             "http://127.0.0.1:%d/" % port],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wrk_result(p):
    out, _ = p.communicate(timeout=60)
    m = re.search(r"(\d+) requests in", out)
    requests = int(m.group(1)) if m else 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    non2xx = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    sock_errors = sum(map(int, m.groups())) if m else 0
    return requests, non2xx, sock_errors, out


class ZeroLossTest(h.ThreeUpstreamsMixin, h.FigTestCase):
    B2_ROUTE = "/payments"

    def setUp(self):
        super().setUp()
        self.b2x = self.upstream("B2")  # a second B2 instance, for upstream URL changes

    def test_200_store_writes_under_load_lose_nothing(self):
        d = self.daemon(self.migration_store(), config={"access_log": {"enabled": False}})
        wdir = tempfile.mkdtemp(prefix="figshift-wrk-")
        self.addCleanup(shutil.rmtree, wdir, True)
        wrk = start_wrk(d.port, 9, wdir)
        load = LoadGen(d.port).start()
        time.sleep(0.5)
        rng = random.Random(7)
        admin = d.admin()
        write_errors = []
        kinds = {}
        t0 = time.time()
        for i in range(200):
            kind = rng.choice(["split"] * 6 + ["route"] * 2 + ["url", "batch"])
            if kind == "split":
                r = h.request(admin, "PUT", "/admin/kv/traffic-split", body=str(rng.randrange(101)).encode())
            elif kind == "route":
                if rng.random() < 0.5:
                    r = h.request(admin, "DELETE", "/admin/kv/route:/payments")
                    if r.status == 404:  # already absent
                        r = h.request(admin, "PUT", "/admin/kv/route:/payments", body=b"B2")
                else:
                    r = h.request(admin, "PUT", "/admin/kv/route:/payments",
                                  body=rng.choice([b"B2", b"B1 /v2/payments", b"B2 /v3/payments"]))
            elif kind == "url":
                r = h.request(admin, "PUT", "/admin/kv/APIGW_B2_URL",
                              body=rng.choice([self.b2, self.b2x]).url().encode())
            else:
                batch = {"puts": [{"key": "traffic-split", "value": str(rng.randrange(101))},
                                  {"key": "route:/orders", "value": rng.choice(["B1 /v2/orders", "B2 /v9/orders"])}]}
                r = h.request(admin, "POST", "/admin/kv", {"Content-Type": "application/json"},
                              json.dumps(batch).encode())
            kinds[kind] = kinds.get(kind, 0) + 1
            if r.status != 200:
                write_errors.append((kind, r))
            time.sleep(0.01)
        writes_took = time.time() - t0
        time.sleep(0.3)
        self.assertTrue(load.finish(), "load threads hung")
        self.assertEqual(write_errors, [], "store writes refused")
        self.assertEqual(load.failures[:10], [], "%d of %d requests failed during 200 store writes (%r)"
                         % (len(load.failures), len(load.records), kinds))
        self.assertGreater(load.ok, 300, "too little load to show anything")
        for up in ("A", "B1", "B2"):
            self.assertGreater(load.by_upstream.get(up, 0), 0, "no request reached %s: %r" % (up, load.by_upstream))
        self.assertGreater(len(self.b2x.requests), 0, "the B2 URL change never took effect")
        if wrk is not None:
            requests, non2xx, sock_errors, out = wrk_result(wrk)
            self.assertGreater(writes_took, 0)
            self.assertGreater(requests, 500, out)
            self.assertEqual((non2xx, sock_errors), (0, 0), "wrk during 200 store writes:\n" + out)
            sys.stderr.write("\nwrk: %d requests, 0 non-2xx, 0 socket errors; python clients: %d ok; "
                             "writes %r in %.1f s\n" % (requests, load.ok, kinds, writes_took))
        else:
            sys.stderr.write("\nwrk not installed: Python load only (%d ok)\n" % load.ok)
        self.assertTrue(d.alive())

    def test_sigterm_under_load_completes_in_flight_refuses_new_exits_0(self):
        drain_ms = 5000
        d = h.Daemon(self.migration_store(100), config={"timeouts": {"drain_ms": drain_ms}, "access_log": {"enabled": False}})
        d.start()
        self.addCleanup(d.kill)
        # every request takes 100-700 ms upstream: most clients are mid-request at any moment
        load = LoadGen(d.port, keepalive_threads=16, oneshot_threads=4, delay_ms=(100, 700),
                       path_fn=lambda rid: "/orders/" + rid).start()
        time.sleep(1.5)
        sent_before = len(load.records)
        t_sig = time.time()
        d.terminate()
        # new connections after drain started
        time.sleep(0.2)
        probes = []
        for _ in range(5):
            try:
                s = socket.create_connection(("127.0.0.1", d.port), timeout=2)
            except ConnectionRefusedError:
                probes.append("refused")
                continue
            try:
                s.settimeout(3)
                s.sendall(b"GET /orders/probe HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n\r\n"
                          % basic("user1").encode())
                data = s.recv(65536)
                probes.append(data.split(b"\r\n", 1)[0].decode("latin-1") if data else "closed")
            except socket.timeout:
                probes.append("no answer")
            except OSError:
                probes.append("closed")
            finally:
                s.close()
        try:
            rc = d.proc.wait(drain_ms / 1000 + 3)
        except subprocess.TimeoutExpired:
            self.fail("no exit within drain_ms + 3 s of SIGTERM\n" + d.logs())
        exited = time.time() - t_sig
        time.sleep(0.3)
        self.assertTrue(load.finish(), "client threads hung after the daemon exited")
        self.assertEqual(rc, 0, "exit code after SIGTERM\n" + d.logs())
        self.assertLess(exited, drain_ms / 1000 + 1.0)
        in_flight = [r for r in load.records if r[1] is not None and r[1] < t_sig - 0.05]
        lost = [r for r in in_flight if r[2] != "ok"]
        self.assertGreater(sent_before, 20)
        self.assertGreaterEqual(len([r for r in in_flight if r[3] >= t_sig]), 10,
                                "too few requests were in flight at SIGTERM to show anything")
        self.assertEqual(lost[:10], [], "%d of %d requests sent before SIGTERM did not complete (%s)"
                         % (len(lost), len(in_flight), load.failures[:5]))
        bad = [f for f in load.failures if f[0] in ("partial", "timeout", "wrong response", "not an echo")
               or f[0].startswith("status")]
        self.assertEqual(bad, [], "truncated, hung or wrong responses during the drain")
        # nothing the upstream executed was lost on the way back
        served = {r[0] for r in load.records if r[2] == "ok"}
        executed = {rq["path"].split("?")[0].rsplit("/", 1)[-1] for rq in self.b1.requests}
        executed.discard("probe")
        self.assertEqual(sorted(executed - served)[:10], [], "requests run upstream whose response was lost")
        for p in probes:
            self.assertTrue(p in ("refused", "closed") or p.startswith("HTTP/1.1 503"),
                            "a new connection after SIGTERM was served: %r" % probes)
        self.assertNotIn("probe", [rq["path"].split("?")[0].rsplit("/", 1)[-1] for rq in self.b1.requests],
                         "a request on a connection opened after SIGTERM reached the upstream")
        last_done = max(r[3] for r in in_flight) - t_sig
        sys.stderr.write("\nSIGTERM: %d requests in flight, all completed (the last %.2f s after SIGTERM); "
                         "exit 0 after %.2f s; new connections: %r\n" % (len(in_flight), last_done, exited, probes))


if __name__ == "__main__":
    unittest.main()
