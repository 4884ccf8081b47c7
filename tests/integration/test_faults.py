"""Fault injection: upstreams SIGKILLed mid-response, many slow clients, 5,000 idle
connections, max_connections, file-descriptor exhaustion, a broken store file,
kill -9 during store writes.

Already covered elsewhere (not repeated here):
  * an upstream that accepts and never answers -> 504 within upstream_response_ms:
    test_upstream_failures.py test_hung_upstream_is_504_and_others_served
  * one slowloris client dripping header bytes -> cut off:
    test_limits_and_bad_input.py test_slowloris_drip_is_cut_off
  * an in-process upstream closing mid-body -> 502 / closed:
    test_upstream_failures.py test_upstream_closing_mid_response
"""

import http.client
import json
import os
import random
import resource
import select
import shutil
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

MIGRATED = "polygenelubricants"  # bucket 0: migrated at any split > 0
LEGACY = "hello"                 # bucket 70: legacy at split 50
assert bucket_of(MIGRATED) == 0 and bucket_of(LEGACY) == 70

REFUSAL_LOG = r"warn|error|invalid|refus|reject|fail"

# A real upstream process: answers the head of a response and part of its body,
# says "MID" on stdout, then waits to be killed.
KILLABLE_UPSTREAM = r"""
import socket, sys, time
chunked = sys.argv[1] == "chunked"
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(16)
print(s.getsockname()[1], flush=True)
while True:
    c, _ = s.accept()
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = c.recv(65536)
        if not chunk:
            break
        data += chunk
    if chunked:
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n" + (b"4000\r\n" + b"x" * 0x4000 + b"\r\n") * 8)
    else:
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                  b"Content-Length: 1000000\r\n\r\n" + b"x" * 300000)
    print("MID", flush=True)
    time.sleep(3600)
"""


def raise_nofile(want: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def fd_count(pid: int) -> int:
    return len(os.listdir("/proc/%d/fd" % pid))


def accept_queue(port: int) -> int:
    """Connections waiting in the listen queues of every socket listening on port
    (rx_queue of a LISTEN row in /proc/net/tcp{,6}); closed ones still get accepted."""
    waiting = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                waiting += int(fields[4].split(":")[1], 16)
    return waiting


def cpu_seconds(pid: int) -> float:
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def is_closed(s: socket.socket) -> bool:
    """True when the peer closed (EOF or reset) without sending anything."""
    r, _, _ = select.select([s], [], [], 0)
    if not r:
        return False
    try:
        return s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def raw_get(s: socket.socket, path: str, headers: str = "") -> bytes:
    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n" % (path, headers)).encode())
    data = b""
    while not h._response_complete(data):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


class FaultsCase(h.UpstreamsMixin, h.FigTestCase):
    """Upstreams A and B1; the store: self.migration_store(split), /orders on B1 as /v2/orders."""

    def setUp(self):
        super().setUp()
        for u in (self.a, self.b1):  # http.server listens with a backlog of 5: too few for bursts of 400
            for srv in u.servers:
                srv.socket.listen(1024)

    def assertServes(self, d, why=""):
        self.assertTrue(d.alive(), "%s: the daemon died (exit %s)\n%s" % (why, d.proc.poll(), d.logs()))
        self.assertRoutedTo(d.get("/orders/1", user=LEGACY), "A", "/orders/1", "after %s" % why)
        self.assertRoutedTo(d.get("/plain"), "A", "/plain", "after %s" % why)


class UpstreamKilledTest(FaultsCase):
    def _kill_mid_body(self, framing):
        up = subprocess.Popen([sys.executable, "-c", KILLABLE_UPSTREAM, framing], stdout=subprocess.PIPE,
                              stdin=subprocess.DEVNULL, text=True)
        self.addCleanup(lambda: (up.poll() is None and up.kill(), up.wait(5), up.stdout.close()))
        port = int(up.stdout.readline())
        # a long upstream_response_ms: only noticing the dead peer can end the request in time
        d = self.daemon(self.migration_store(**{"APIGW_B1_URL": "http://127.0.0.1:%d" % port}),
                        config={"timeouts": {"upstream_response_ms": 30000}})
        result = {}

        def client():
            t0 = time.time()
            try:
                result["resp"] = d.get("/orders/big", user=MIGRATED, timeout=20)
            except (http.client.HTTPException, ConnectionError, socket.timeout, OSError) as e:
                result["exc"] = e
            result["end"] = time.time()
            result["start"] = t0

        t = threading.Thread(target=client, daemon=True)
        t.start()
        mid = {}
        reader = threading.Thread(target=lambda: mid.setdefault("line", up.stdout.readline()), daemon=True)
        reader.start()
        reader.join(10)
        self.assertEqual(mid.get("line", "").strip(), "MID", "the upstream never got the request")
        time.sleep(0.2)  # the proxy has read part of the body
        # others are served while the upstream is stuck mid-body
        self.assertRoutedTo(d.get("/orders/2", user=LEGACY), "A", "/orders/2", "while B1 is stuck mid-body")
        killed_at = time.time()
        up.kill()
        up.wait(5)
        t.join(10)
        self.assertFalse(t.is_alive(), "%s: the client still hangs 10 s after the upstream was SIGKILLed" % framing)
        if "resp" in result:
            self.assertProxyError(result["resp"], 502, "%s body cut by SIGKILL" % framing)
        else:  # acceptable only as a closed connection, never a truncated body presented as complete
            self.assertIsInstance(result["exc"], (http.client.HTTPException, ConnectionError), result)
        self.assertLess(result["end"] - killed_at, 3.0, "%s: the dead upstream was noticed late" % framing)
        # the proxy keeps serving, and the now dead upstream is a prompt 502
        self.assertServes(d, "an upstream SIGKILLed mid-body")
        t0 = time.time()
        self.assertProxyError(d.get("/orders/3", user=MIGRATED), 502, "dead upstream")
        self.assertLess(time.time() - t0, 3.0)

    def test_upstream_sigkilled_mid_content_length_body(self):
        self._kill_mid_body("length")

    def test_upstream_sigkilled_mid_chunked_body(self):
        self._kill_mid_body("chunked")


class SlowClientsTest(FaultsCase):
    def test_many_slowloris_clients_are_cut_at_client_header_ms(self):
        # 60 clients each dripping a header byte every 100 ms; every one is cut at
        # client_header_ms (1.5 s), not later, and normal clients are served meanwhile.
        d = self.daemon(self.migration_store(), config={"timeouts": {"client_header_ms": 1500}})
        n = 60
        cut = [None] * n

        def drip(k):
            s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
            t0 = time.time()
            try:
                s.settimeout(0.1)
                for ch in b"GET /orders/1 HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 400:
                    if time.time() - t0 > 8:
                        return
                    try:
                        s.sendall(bytes([ch]))
                    except OSError:
                        cut[k] = time.time() - t0
                        return
                    try:
                        data = s.recv(4096)
                    except socket.timeout:
                        continue
                    except OSError:
                        cut[k] = time.time() - t0
                        return
                    if data == b"" or data.startswith((b"HTTP/1.1 408", b"HTTP/1.1 400")):
                        cut[k] = time.time() - t0
                        return
            finally:
                s.close()

        threads = [threading.Thread(target=drip, args=(k,), daemon=True) for k in range(n)]
        for t in threads:
            t.start()
        time.sleep(0.3)
        slowest = 0.0
        for i in range(20):
            r = d.get("/orders/%d" % i, user=LEGACY)
            self.assertRoutedTo(r, "A", "/orders/%d" % i, "normal client among slowloris ones")
            slowest = max(slowest, r.elapsed)
        self.assertLess(slowest, 1.0, "normal requests were slowed down by slowloris clients")
        for t in threads:
            t.join(12)
        never = [k for k in range(n) if cut[k] is None]
        self.assertEqual(never, [], "slowloris clients never cut off: %d of %d" % (len(never), n))
        self.assertGreaterEqual(min(cut), 1.2, "cut before client_header_ms=1500: %r" % sorted(cut)[:5])
        self.assertLess(max(cut), 3.5, "cut long after client_header_ms=1500: %r" % sorted(cut)[-5:])
        self.assertServes(d, "slowloris clients")


class ConnectionCountTest(FaultsCase):
    def test_5000_idle_connections_do_not_stop_new_ones(self):
        limit = raise_nofile(12000)
        if limit < 5600:
            self.skipTest("RLIMIT_NOFILE hard limit %d is too low for 5,000 connections" % limit)
        d = self.daemon(self.migration_store(), config={"timeouts": {"client_header_ms": 60000, "client_idle_ms": 60000}})
        resource.prlimit(d.proc.pid, resource.RLIMIT_NOFILE, (limit, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
        idle = []
        self.addCleanup(lambda: [s.close() for s in idle])
        t0 = time.time()
        for _ in range(5000):
            idle.append(socket.create_connection(("127.0.0.1", d.port), timeout=5))
        h.eventually(lambda: fd_count(d.proc.pid) >= 5000, 10, message="the daemon accepted 5,000 connections")
        opened = time.time() - t0
        # new connections, keep-alive and not, are served normally
        slowest = 0.0
        for i in range(30):
            r = d.get("/orders/%d" % i, user=MIGRATED if i % 2 else LEGACY)
            self.assertRoutedTo(r, "B1" if i % 2 else "A", msg="new connection among 5,000 idle ones")
            slowest = max(slowest, r.elapsed)
        conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
        for i in range(30):
            r = h.read_response(conn, "GET", "/orders/%d" % i, {"Authorization": basic(MIGRATED)})
            self.assertRoutedTo(r, "B1", "/v2/orders/%d" % i)
            slowest = max(slowest, r.elapsed)
        conn.close()
        self.assertLess(slowest, 1.0, "requests slowed down by idle connections (opened in %.1f s)" % opened)
        # the idle connections themselves still work
        for s in random.Random(5).sample(idle, 20):
            s.settimeout(5)
            data = raw_get(s, "/orders/7", "Authorization: %s\r\n" % basic(MIGRATED))
            self.assertTrue(data.startswith(b"HTTP/1.1 200"), data[:200])
            self.assertIn(b'"B1"', data)
        self.assertTrue(d.alive())

    def test_beyond_max_connections_closed_promptly_existing_keep_working(self):
        d = self.daemon(self.migration_store(), config={"workers": 2, "limits": {"max_connections": 100},
                                              "timeouts": {"client_header_ms": 30000, "client_idle_ms": 30000}})
        socks = []
        self.addCleanup(lambda: [s.close() for s in socks])
        for _ in range(400):
            socks.append(socket.create_connection(("127.0.0.1", d.port), timeout=5))
        time.sleep(1.0)
        closed = [s for s in socks if is_closed(s)]
        open_ = [s for s in socks if s not in closed]
        self.assertLessEqual(len(open_), 200, "2 workers x max_connections 100, yet %d connections stay open"
                             % len(open_))
        self.assertGreaterEqual(len(open_), 100, "far fewer than max_connections accepted: %d" % len(open_))
        # every connection within the limit works
        for s in open_:
            s.settimeout(5)
            data = raw_get(s, "/orders/1", "Authorization: %s\r\n" % basic(MIGRATED))
            self.assertTrue(data.startswith(b"HTTP/1.1 200"), "a connection within the limit: %r" % data[:200])
        # once they are gone, new connections are served again
        for s in socks:
            s.close()
        socks.clear()
        h.eventually(lambda: d.get("/orders/1", user=LEGACY).status == 200, 5,
                     message="served again after the connections closed")
        self.assertServes(d, "max_connections")


class FdExhaustionTest(FaultsCase):
    # Under `ulimit -n 256` the sanitizer runtime itself runs out of descriptors and
    # reports a false "invalid vptr" on Boost.System's error_category; the normal
    # build runs this test.
    @unittest.skipIf(h.sanitized_binary(), "sanitizer runtimes misreport under fd exhaustion")
    def test_ulimit_256_errors_no_crash_and_recovery(self):
        raise_nofile(4096)
        wrapdir = tempfile.mkdtemp(prefix="figshift-ulimit-")
        self.addCleanup(shutil.rmtree, wrapdir, True)
        wrapper = os.path.join(wrapdir, "figshift")
        with open(wrapper, "w") as f:
            f.write('#!/bin/bash\nulimit -n 256 || exit 99\nexec %s "$@"\n' % h.figshift_bin())
        os.chmod(wrapper, 0o755)
        saved = os.environ.get("FIGSHIFT_BIN")
        os.environ["FIGSHIFT_BIN"] = wrapper
        try:
            d = self.daemon(self.migration_store(), config={"timeouts": {"client_header_ms": 20000, "client_idle_ms": 20000,
                                                               "upstream_response_ms": 3000,
                                                               "upstream_idle_ms": 2000}})
        finally:
            if saved is None:
                del os.environ["FIGSHIFT_BIN"]
            else:
                os.environ["FIGSHIFT_BIN"] = saved
        pid = d.proc.pid
        fds_idle = fd_count(pid)
        with open("/proc/%d/limits" % pid) as f:
            self.assertRegex(f.read(), r"Max open files\s+256\s", "the daemon runs under ulimit -n 256")
        socks, errors = [], 0
        self.addCleanup(lambda: [s.close() for s in socks])
        for i in range(400):
            try:
                socks.append(socket.create_connection(("127.0.0.1", d.port), timeout=2))
            except OSError:
                errors += 1
        # a request on each: some are answered, the rest fail (no fd for the client or the upstream)
        outcomes = {"200": 0, "error status": 0, "closed": 0, "no answer": 0}
        statuses = set()
        for i, s in enumerate(socks):
            try:
                s.sendall(b"GET /orders/%d HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n\r\n"
                          % (i, basic(MIGRATED if i % 2 else LEGACY).encode()))
            except OSError:
                outcomes["closed"] += 1
        deadline = time.time() + 4
        for s in socks:
            s.settimeout(max(0.01, deadline - time.time()))
            try:
                data = s.recv(65536)
                if data.startswith(b"HTTP/1.1 200"):
                    outcomes["200"] += 1
                elif data:
                    outcomes["error status"] += 1
                    statuses.add(data.split(b"\r\n", 1)[0].decode("latin-1"))
                else:
                    outcomes["closed"] += 1
            except socket.timeout:
                outcomes["no answer"] += 1
            except OSError:
                outcomes["closed"] += 1
        self.assertTrue(d.alive(), "the daemon died when out of file descriptors (%r)\n%s" % (outcomes, d.logs()))
        self.assertLessEqual(fd_count(pid), 256)
        # every fd is a client connection: upstream connections fail (502), nothing worse than an error status
        for line in statuses:
            self.assertRegex(line, r"^HTTP/1\.1 (502|503|504) ", "answers while out of fds: %r" % statuses)
        sys.stderr.write("\nfd exhaustion: %r %r\n" % (outcomes, statuses))
        # while exhausted and holding the connections, no busy loop on accept (EMFILE)
        c0, w0 = cpu_seconds(pid), time.time()
        time.sleep(2.0)
        cpu = (cpu_seconds(pid) - c0) / (time.time() - w0)
        self.assertLess(cpu, 0.5, "the daemon spins at %.0f%% CPU while out of file descriptors" % (cpu * 100))
        # load drops: normal service comes back
        for s in socks:
            s.close()
        socks.clear()
        # the daemon gives every descriptor back: client connections at once, pooled upstream
        # connections after upstream_idle_ms (2 s; up to 64 per origin and worker stay open until then)
        # Connections the kernel queued while the daemon had no fd to accept them are still
        # accepted (and found closed) after the clients left: wait for the queues to drain too,
        # or the fd count below is read between two batches.
        h.eventually(lambda: accept_queue(d.port) == 0 and fd_count(pid) <= fds_idle + 4, 10,
                     message="fds released after the clients left (%d at idle, now %d, %d queued)"
                     % (fds_idle, fd_count(pid), accept_queue(d.port)))
        h.eventually(lambda: d.get("/orders/1", user=MIGRATED, timeout=3).status == 200, 10,
                     message="served again once the connections closed (%r)" % outcomes)
        fds_recovered = fd_count(pid)
        errors_after = []

        def worker(k):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=5)
                for i in range(10):
                    user = MIGRATED if (k + i) % 2 else LEGACY
                    r = h.read_response(conn, "GET", "/orders/%d" % i, {"Authorization": basic(user)})
                    if r.status != 200:
                        errors_after.append(repr(r))
                conn.close()
            except Exception as e:  # noqa: BLE001
                errors_after.append("%s: %s" % (type(e).__name__, e))

        threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(40)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        self.assertEqual(errors_after, [], "after recovery (exhaustion outcomes %r, daemon fds %d then %d)"
                         % (outcomes, fds_recovered, fd_count(pid)))
        self.assertServes(d, "fd exhaustion")


class BrokenStoreFileTest(FaultsCase):
    def who(self, d, user=MIGRATED):
        r = d.get("/orders/1", user=user)
        self.assertEqual(r.status, 200, r)
        return r.echo["upstream"]

    def assertKeepsServing(self, d, want, why):
        for _ in range(6):
            self.assertEqual(self.who(d), want, "%s: routing changed" % why)
            time.sleep(0.1)

    def test_store_file_replaced_by_directory_truncated_or_halved(self):
        d = self.daemon(self.migration_store(100))
        self.assertEqual(self.who(d), "B1")
        split = 100

        def breakers():
            def to_dir():
                os.unlink(d.store_path)
                os.mkdir(d.store_path)
                with open(os.path.join(d.store_path, "x"), "w") as f:
                    f.write("x")

            def to_zero():
                os.truncate(d.store_path, 0)

            def to_half():
                os.truncate(d.store_path, os.path.getsize(d.store_path) // 2)
            return {"replaced by a directory": to_dir, "truncated to 0 bytes": to_zero,
                    "truncated to half": to_half}

        for name, breaker in breakers().items():
            with self.subTest(case=name):
                mark = len(d.log_lines())
                breaker()
                line = d.wait_for_log(REFUSAL_LOG, timeout=3.0, start=mark)
                self.assertIsNotNone(line, "%s: no error logged" % name)
                self.assertKeepsServing(d, "B1" if split else "A", name)
                # an admin write meanwhile is either refused, or persisted (never acknowledged and lost)
                r = d.admin_request("PUT", "/admin/kv/hash-salt", body=b"s1")
                if r.status == 200:
                    self.assertTrue(os.path.isfile(d.store_path), "%s: PUT 200 without a store file" % name)
                    with open(d.store_path, encoding="utf-8") as f:
                        kv = {e["key"]: e["value"] for e in json.load(f)["data"]}
                    self.assertEqual(kv.get("hash-salt"), "s1", "%s: PUT 200 but not on disk" % name)
                    d.admin_request("DELETE", "/admin/kv/hash-salt")
                else:
                    self.assertGreaterEqual(r.status, 400, r)
                    self.assertIn("error", r.json or {}, r)
                self.assertKeepsServing(d, "B1" if split else "A", name + " after an admin write")
                self.assertTrue(d.alive())
                # fixed: the new content is picked up
                if os.path.isdir(d.store_path):
                    shutil.rmtree(d.store_path)
                split = 0 if split else 100
                d.write_store(self.migration_store(split))
                h.eventually(lambda: self.who(d) == ("B1" if split else "A"), 3.0,
                             message="%s: recovery after the file was fixed" % name)

    def test_restart_with_a_truncated_store_file_refuses_rather_than_reseeding(self):
        # Falling back to the seed would silently revert every change made since.
        d = h.Daemon(self.migration_store(0), expect_exit=None)
        self.addCleanup(self._stop_daemon, d)
        d.start()
        d.admin_request("PUT", "/admin/kv/traffic-split", body=b"100")
        d.stop()
        os.truncate(d.store_path, os.path.getsize(d.store_path) // 2)
        p = subprocess.run([h.figshift_bin(), "serve", "--config", d.config_path], cwd=d.dir,
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=15)
        out = (p.stderr + p.stdout).decode("utf-8", "replace")
        self.assertNotEqual(p.returncode, 0, "started on a truncated store file:\n" + out)
        self.assertIn("kvs.json", out)
        self.assertNotIn("listening for traffic", out)


class KillDuringWritesTest(FaultsCase):
    def test_kill_9_during_store_write_burst_leaves_old_or_new_version(self):
        rng = random.Random(int(os.environ.get("FIGSHIFT_SEED", "0")) or None)
        d = h.Daemon(self.migration_store(0))
        self.addCleanup(self._stop_daemon, d)
        d.start()
        acked = dict(self.migration_store(0))
        for rnd in range(10):
            state = {"acked": dict(acked), "pending": None, "stop": False, "writes": 0}
            lock = threading.Lock()
            admin_port = d.admin()

            def writer():
                i = 0
                while not state["stop"]:
                    i += 1
                    with lock:
                        nxt = dict(state["acked"])
                    if i % 5 == 0:
                        if "route:/payments" in nxt:
                            method, key, body = "DELETE", "route:/payments", None
                            nxt.pop(key)
                        else:
                            method, key, body = "PUT", "route:/payments", "B1 /v3/pay"
                            nxt[key] = body
                    else:
                        method, key, body = "PUT", "traffic-split", str(rng.randrange(101))
                        nxt[key] = body
                    with lock:
                        state["pending"] = nxt
                    try:
                        r = h.request(admin_port, method, "/admin/kv/" + key, None,
                                      body.encode() if body else None, timeout=5)
                    except (OSError, http.client.HTTPException):
                        return  # the daemon was killed
                    if r.status != 200:
                        state["error"] = repr(r)
                        return
                    with lock:
                        state["acked"] = nxt
                        state["pending"] = None
                        state["writes"] += 1

            t = threading.Thread(target=writer, daemon=True)
            t.start()
            time.sleep(rng.uniform(0.05, 0.6))
            d.kill()  # SIGKILL
            state["stop"] = True
            t.join(10)
            self.assertNotIn("error", state, state.get("error"))
            self.assertGreater(state["writes"], 0, "round %d: no write acknowledged before the kill" % rnd)
            with open(d.store_path, "rb") as f:
                raw = f.read()
            self.assertTrue(raw.strip(), "round %d: empty store file after kill -9" % rnd)
            try:
                on_disk = {e["key"]: e["value"] for e in json.loads(raw.decode("utf-8"))["data"]}
            except (ValueError, KeyError, TypeError) as e:
                self.fail("round %d: corrupt store file after kill -9 (%s): %r" % (rnd, e, raw[:300]))
            candidates = [state["acked"]] + ([state["pending"]] if state["pending"] else [])
            self.assertIn(on_disk, candidates, "round %d: the store file is neither the last acknowledged "
                          "nor the in-flight version (%d writes)" % (rnd, state["writes"]))
            acked = on_disk
            d.restart()
            r = d.admin_request("GET", "/admin/kv")
            self.assertEqual(r.status, 200, r)
            self.assertEqual({e["key"]: e["value"] for e in r.json["data"]}, on_disk,
                             "round %d: the restarted daemon serves another version" % rnd)
        leftovers = [n for n in os.listdir(d.dir) if ".tmp" in n and n != "kvs.json"]
        if leftovers:
            sys.stderr.write("note: temp files left by killed writes: %r\n" % leftovers)
        self.assertEqual(d.admin_request("PUT", "/admin/kv/traffic-split", body=b"50").status, 200)
        self.assertServes(d, "10 kill -9 rounds")


if __name__ == "__main__":
    unittest.main()
