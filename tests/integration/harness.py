"""Integration-test harness for figshift: the real binary on real sockets.

Python 3 standard library only. Everything binds to loopback on port 0.

Pieces:
  * java_hash / bucket_of   an independent implementation of docs/design.md section 1
  * Upstream / start_upstream      echo HTTP(S) servers (ThreadingHTTPServer, keep-alive)
  * HangServer, RawServer, canned_upstream, closed_port   misbehaving upstreams
  * migration_store          the store most suites start from (A legacy, /orders on B1, a B2 route)
  * Pki                      a test CA and server certificates made by the openssl CLI
  * Daemon                   writes config + seed into a temp dir, runs `figshift serve`
  * request / raw_exchange   clients (http.client and raw sockets)
  * FigTestCase              unittest base class that prints daemon logs on failure
  * UpstreamsMixin / ThreeUpstreamsMixin   echo upstreams A, B1 (and B2) started in setUp

Run `python3 harness.py selftest` (or test_harness.py) to check the harness
itself without the daemon.
"""

from __future__ import annotations

import base64
import http.client
import http.server
import json
import os
import re
import shutil
import signal
import socket
import socketserver
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.parse

SOCKET_TIMEOUT = 10.0
READY_TIMEOUT = 15.0
STOP_TIMEOUT = 20.0
LISTEN_RE = re.compile(r"listening for traffic on 127\.0\.0\.1:(\d+)")
ADMIN_RE = re.compile(r"admin\D*?127\.0\.0\.1:(\d+)", re.IGNORECASE)
ADMIN_LISTEN_RE = re.compile(r"admin API listening on 127\.0\.0\.1:(\d+)")

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

# --------------------------------------------------------------------------
# The routing rule, implemented independently of the daemon.
# --------------------------------------------------------------------------


def java_hash(text: str) -> int:
    """Java String.hashCode() over UTF-16 code units, as a signed 32-bit int."""
    data = text.encode("utf-16-le", errors="surrogatepass")
    h = 0
    for i in range(0, len(data), 2):
        unit = data[i] | (data[i + 1] << 8)
        h = (31 * h + unit) & 0xFFFFFFFF
    return h - (1 << 32) if h >= (1 << 31) else h


def bucket_of(username: str, salt: str = "") -> int:
    return (java_hash(salt + username) + (1 << 31)) % 100


# docs/design.md section 1 reference table: username -> (hashCode, bucket)
REFERENCE = {
    "hello": (99162322, 70),
    "": (0, 48),
    "Aa": (2112, 60),
    "BB": (2112, 60),
    "polygenelubricants": (-2147483648, 0),
    "Zo\u00eb": (90166, 14),
    "\U0001F600": (1772899, 47),
    "user42": (-836031607, 41),
}

# Extra deterministic usernames so that every split boundary has users on both sides.
EXTRA_USERS = ["user%d" % i for i in range(40)] + ["alice", "bob", "carol", "dave", "eve",
                                                    "mallory", "trent", "\u00e9l\u00e8ve", "\u5f20\u4e09"]


def basic(user: str, password: str = "pw", scheme: str = "Basic") -> str:
    token = base64.b64encode((user + ":" + password).encode("utf-8")).decode("ascii")
    return "%s %s" % (scheme, token)


def now_ms() -> int:
    return int(time.time() * 1000)


# --------------------------------------------------------------------------
# Upstream servers
# --------------------------------------------------------------------------

def pattern_bytes(n: int) -> bytes:
    """n deterministic, non-repeating-looking bytes (so truncation or reordering shows)."""
    block = bytes((i * 7 + (i >> 8)) & 0xFF for i in range(4093))
    return (block * (n // len(block) + 1))[:n]


METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE")


class EchoHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "figshift-test-upstream"
    disable_nagle_algorithm = True  # one response = one segment; avoids 40 ms delayed-ACK stalls

    def log_message(self, fmt, *args):  # keep test output quiet
        pass

    def _read_body(self):
        """The request body, or None when it is incomplete or malformed (the peer closed
        mid-body, a bad chunk size): a real server answers no such request."""
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            chunks = []
            while True:
                line = self.rfile.readline(65537)
                if not line.endswith(b"\n"):
                    return None
                try:
                    size = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    return None
                if size == 0:
                    # trailers until empty line
                    while True:
                        t = self.rfile.readline(65537)
                        if not t:
                            return None
                        if t in (b"\r\n", b"\n"):
                            break
                    break
                chunk = self.rfile.read(size)
                if len(chunk) != size or self.rfile.readline(65537) not in (b"\r\n", b"\n"):
                    return None
                chunks.append(chunk)
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length", "0") or "0")
        body = self.rfile.read(length) if length else b""
        return body if len(body) == length else None

    def _handle(self):
        srv = self.server
        body = self._read_body()
        if body is None:  # counted apart: never a request the upstream answered
            with srv.lock:
                srv.incomplete.append(self.requestline)
            self.close_connection = True
            return
        # the request-target exactly as received (http.server rewrites a leading "//" in self.path)
        words = self.requestline.split(" ")
        target = words[1] if len(words) == 3 else self.path
        record = {
            "upstream": srv.name,
            "path": target,
            "method": self.command,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "header_list": [[k.lower(), v] for k, v in self.headers.items()],
            "body_len": len(body),
            "request_version": self.request_version,
            "peer": self.client_address[0],
        }
        with srv.lock:
            srv.requests.append(record)
        behaviour = srv.behaviour
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        delay = float(query.get("__delay_ms", ["0"])[0]) / 1000.0
        if behaviour == "hang":
            time.sleep(3600)
            return
        if behaviour == "close":  # read the request, then close without a word
            self.close_connection = True
            return
        if behaviour == "garbage":
            self.wfile.write(b"THIS IS NOT HTTP\r\n\r\n")
            self.wfile.flush()
            self.close_connection = True
            return
        if srv.delay or delay:
            time.sleep(srv.delay + delay)
        if "__size" in query:  # a large deterministic body instead of the echo
            size = int(query["__size"][0])
            payload = pattern_bytes(size)
            self.send_response(srv.status)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("X-Echo-Path", self.path)
            if "__chunked" in query:
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                step = 65536 + 7
                for i in range(0, size, step):
                    part = payload[i:i + step]
                    self.wfile.write(b"%x\r\n" % len(part) + part + b"\r\n")
                self.wfile.write(b"0\r\n\r\n")
            else:
                self.send_header("Content-Length", str(size))
                self.end_headers()
                self.wfile.write(payload)
            with srv.lock:
                srv.big_responses_sent += 1  # the whole body left this process (the peer read most of it)
            return
        payload = json.dumps(record).encode("utf-8")
        if behaviour == "close_mid":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload) + 100000))
            self.end_headers()
            self.wfile.write(payload[:10])
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if srv.status in (204, 304) or 100 <= srv.status < 200:
            self.send_response(srv.status)
            if srv.status == 304:
                self.send_header("ETag", '"v1"')
                self.send_header("Content-Length", str(len(payload)))  # of the representation; no body follows
            for k, v in srv.extra_response_headers:
                self.send_header(k, v)
            self.end_headers()
            return
        status = srv.status
        with srv.lock:
            n = srv.answered
            srv.answered += 1
        if srv.error_ratio and int((n + 1) * srv.error_ratio) > int(n * srv.error_ratio):
            status = 500  # evenly spread: exactly floor(N * error_ratio) of N requests
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("X-Upstream-Name", srv.name)
        for k, v in srv.extra_response_headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)



for _m in METHODS:
    setattr(EchoHandler, "do_" + _m, EchoHandler._handle)
del _m


class _QuietServerMixin:
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def handle_error(self, request, client_address):  # noqa: D401 - quiet
        pass


class EchoHTTPServer(_QuietServerMixin, http.server.ThreadingHTTPServer):
    address_family = socket.AF_INET

    def __init__(self, addr, name, tls_context=None):
        self.name = name
        self.tls_context = tls_context
        self.requests = []
        self.incomplete = []  # request lines whose body never arrived whole
        self.lock = threading.Lock()
        self.behaviour = "normal"  # normal | hang | close | close_mid | garbage
        self.delay = 0.0
        self.status = 200
        self.error_ratio = 0.0  # this share of requests (spread evenly) is answered 500 instead
        self.answered = 0
        self.extra_response_headers = []
        self.connections = 0
        self.closed_connections = 0  # connections whose handler finished (peer closed or timed out)
        self.big_responses_sent = 0  # __size responses completely written
        self.live = []
        super().__init__(addr, EchoHandler)

    def get_request(self):
        sock, addr = self.socket.accept()
        sock.settimeout(SOCKET_TIMEOUT if self.behaviour != "hang" else None)
        with self.lock:
            self.connections += 1
            self.live.append(sock)
        if self.tls_context is not None:
            sock = self.tls_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def finish_request(self, request, client_address):
        if self.tls_context is not None:
            try:
                request.do_handshake()
            except (ssl.SSLError, OSError):
                return  # e.g. the proxy refused our certificate
        try:
            super().finish_request(request, client_address)
        except (ssl.SSLError, OSError):
            pass
        finally:
            with self.lock:
                self.closed_connections += 1


    def close_connections(self):
        """Close every accepted connection (as an upstream's keep-alive timeout would)."""
        with self.lock:
            live, self.live = self.live, []
        for c in live:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                c.close()
            except OSError:
                pass


class EchoHTTPServer6(EchoHTTPServer):
    address_family = socket.AF_INET6


class Upstream:
    """An echo upstream on 127.0.0.1 (and [::1] on the same port when possible)."""

    def __init__(self, name: str, tls_context: ssl.SSLContext | None = None, dual_stack: bool = False):
        self.name = name
        self.tls = tls_context is not None
        self.servers = [EchoHTTPServer(("127.0.0.1", 0), name, tls_context)]
        self.port = self.servers[0].server_address[1]
        if dual_stack:
            try:
                s6 = EchoHTTPServer6(("::1", self.port), name, tls_context)
                # share state with the IPv4 server
                s6.requests = self.servers[0].requests
                s6.lock = self.servers[0].lock
                self.servers.append(s6)
            except OSError:
                pass
        self.threads = []
        for s in self.servers:
            t = threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
            t.start()
            self.threads.append(t)

    # behaviour knobs apply to every listener
    def _set(self, attr, value):
        for s in self.servers:
            setattr(s, attr, value)

    behaviour = property(lambda self: self.servers[0].behaviour, lambda self, v: self._set("behaviour", v))
    delay = property(lambda self: self.servers[0].delay, lambda self, v: self._set("delay", v))
    status = property(lambda self: self.servers[0].status, lambda self, v: self._set("status", v))
    error_ratio = property(lambda self: self.servers[0].error_ratio, lambda self, v: self._set("error_ratio", v))

    @property
    def requests(self):
        with self.servers[0].lock:
            return list(self.servers[0].requests)

    @property
    def connections(self):
        return sum(s.connections for s in self.servers)

    @property
    def closed_connections(self):
        return sum(s.closed_connections for s in self.servers)

    @property
    def extra_response_headers(self):
        return self.servers[0].extra_response_headers

    @extra_response_headers.setter
    def extra_response_headers(self, v):
        self._set("extra_response_headers", v)

    def url(self, host: str = "127.0.0.1", base: str = "") -> str:
        return "%s://%s:%d%s" % ("https" if self.tls else "http", host, self.port, base)

    def close_connections(self):
        for s in self.servers:
            s.close_connections()

    def close(self):
        for s in self.servers:
            s.shutdown()
            s.server_close()
            s.close_connections()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def start_upstream(name: str, tls_context: ssl.SSLContext | None = None, dual_stack: bool = False) -> Upstream:
    return Upstream(name, tls_context, dual_stack)


class RawServer:
    """A TCP listener on 127.0.0.1:0 whose every connection is handled by `on_conn(sock)`.

    The default handler accepts and holds the connection open without ever
    answering (a hung upstream)."""

    def __init__(self, on_conn=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.on_conn = on_conn or self._hold
        self.held = []
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _hold(self, conn):
        self.held.append(conn)

    def _loop(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn):
        try:
            self.on_conn(conn)
        except OSError:
            pass

    def url(self, base: str = "") -> str:
        return "http://127.0.0.1:%d%s" % (self.port, base)

    def close(self):
        self._stop.set()
        self._thread.join(2)
        self.sock.close()
        for c in self.held:
            try:
                c.close()
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def HangServer() -> RawServer:
    return RawServer()


def _answer_once(conn, response: bytes, reset: bool):
    conn.settimeout(5)
    try:
        conn.recv(65536)  # (the start of) the request
        if response:
            conn.sendall(response)
    except OSError:
        pass
    finally:
        if reset:  # SO_LINGER 0: close() sends an RST
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()


def canned_upstream(response: bytes = b"", reset: bool = False) -> RawServer:
    """A broken or hostile upstream: on every connection it reads the request,
    sends `response` as is (any bytes: garbage, malformed HTTP, nothing) and
    closes; with reset=True it closes with an RST instead of a FIN, at once
    after `response`, so that both usually reach the proxy together."""
    return RawServer(lambda conn: _answer_once(conn, response, reset))


def closed_port() -> int:
    """A loopback port that nothing listens on (bound then closed)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# --------------------------------------------------------------------------
# Certificates (openssl CLI)
# --------------------------------------------------------------------------


class Pki:
    """A throw-away test CA plus server certificates, made with the openssl CLI.

    Files (all PEM) in self.dir:
      ca.pem / ca.key                     the test CA
      good.pem / good.key                 localhost + 127.0.0.1 + ::1, signed by the CA
      wrong.pem / wrong.key               wrong.example.invalid only, signed by the CA
      self.pem / self.key                 localhost + 127.0.0.1, self-signed (not the CA)
    """

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="figshift-pki-")
        self._make()

    def path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def _run(self, *args):
        r = subprocess.run(["openssl", *args], cwd=self.dir, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("openssl %s failed: %s" % (" ".join(args), r.stderr))

    def _key(self, name):
        self._run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", name)

    def _leaf(self, stem: str, cn: str, san: str):
        self._key(stem + ".key")
        self._run("req", "-new", "-key", stem + ".key", "-subj", "/CN=" + cn, "-out", stem + ".csr")
        with open(self.path(stem + ".ext"), "w") as f:
            f.write("basicConstraints=critical,CA:FALSE\n"
                    "keyUsage=critical,digitalSignature,keyEncipherment\n"
                    "extendedKeyUsage=serverAuth\n"
                    "subjectAltName=%s\n" % san)
        self._run("x509", "-req", "-in", stem + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                  "-CAcreateserial", "-days", "2", "-sha256", "-extfile", stem + ".ext", "-out", stem + ".pem")

    def _make(self):
        self._key("ca.key")
        self._run("req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=figshift test CA", "-days", "2",
                  "-sha256", "-addext", "basicConstraints=critical,CA:TRUE",
                  "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", "ca.pem")
        self._leaf("good", "localhost", "DNS:localhost,IP:127.0.0.1,IP:::1")
        self._leaf("wrong", "wrong.example.invalid", "DNS:wrong.example.invalid")
        self._key("self.key")
        self._run("req", "-x509", "-new", "-key", "self.key", "-subj", "/CN=localhost", "-days", "2",
                  "-sha256", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                  "-out", "self.pem")

    def server_context(self, stem: str) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.path(stem + ".pem"), self.path(stem + ".key"))
        return ctx

    def client_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.path("ca.pem"))
        return ctx

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class PkiMixin:
    """Gives a test class one Pki (cls.pki) for all its tests."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.pki = Pki()

    @classmethod
    def tearDownClass(cls):
        cls.pki.cleanup()
        super().tearDownClass()


# --------------------------------------------------------------------------
# The daemon
# --------------------------------------------------------------------------


def figshift_bin() -> str:
    b = os.environ.get("FIGSHIFT_BIN")
    if b:
        return b
    for cand in ("build-dev/figshift", "build/figshift"):
        p = os.path.join(REPO, cand)
        if os.access(p, os.X_OK):
            return p
    raise unittest.SkipTest("FIGSHIFT_BIN is not set and no built figshift binary was found")


def sanitized_binary() -> bool:
    """True for an AddressSanitizer build (scripts/test.sh --sanitize)."""
    try:
        with open(figshift_bin(), "rb") as f:
            return b"__asan_init" in f.read()
    except (OSError, unittest.SkipTest):
        return False


def kvs_json(store) -> str:
    """dict or list of (key, value) -> CloudFront KVS import JSON text."""
    items = store.items() if isinstance(store, dict) else store
    return json.dumps({"data": [{"key": k, "value": v} for k, v in items]}, indent=2, ensure_ascii=False)


def _url(upstream) -> str:
    return upstream if isinstance(upstream, str) else upstream.url()


def migration_store(a, b1, b2=None, split=50, b2_route: str | None = "/users", **extra) -> dict:
    """The store most suites start from: A is the legacy upstream, /orders is
    migrated to B1 as /v2/orders and, with b2, `b2_route` to B2 unchanged.

    a, b1, b2: Upstreams (or URL strings); split: traffic-split; extra: keys
    added or replaced, e.g. **{"hash-salt": "s"}."""
    kv = {"APIGW_A_URL": _url(a), "APIGW_B1_URL": _url(b1)}
    if b2 is not None:
        kv["APIGW_B2_URL"] = _url(b2)
    kv["route:/orders"] = "B1 /v2/orders"
    if b2 is not None and b2_route is not None:
        kv["route:" + b2_route] = "B2"
    kv["traffic-split"] = str(split)
    kv.update(extra)
    return kv


def _deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


_ALL_DAEMONS: list["Daemon"] = []


class Daemon:
    """Runs `figshift serve --config <tmp>/config.json`.

    store:   dict (or list of pairs) written as the seed file; the store file
             `kvs.json` does not exist at start, so the daemon creates it from it.
    config:  overrides deep-merged into the default config (None deletes a key).
    """

    def __init__(self, store, config: dict | None = None, expect_exit: int | None = 0, name: str = "figshift",
                 env: dict | None = None):
        self.name = name
        self.env = env  # extra environment variables for the daemon (e.g. an admin token)
        self.dir = tempfile.mkdtemp(prefix="figshift-it-")
        self.expect_exit = expect_exit
        cfg = {
            "listen": [{"address": "127.0.0.1", "port": 0}],
            "admin": {"address": "127.0.0.1", "port": 0},
            "store": {"backend": "file", "path": "kvs.json", "seed": "seed.json", "reload_interval_ms": 200},
            "workers": 2,
            "log": {"level": "info"},
        }
        self.config = _deep_merge(cfg, config or {})
        self.config_path = os.path.join(self.dir, "config.json")
        self.store_path = os.path.join(self.dir, "kvs.json")
        self.seed_path = os.path.join(self.dir, "seed.json")
        with open(self.config_path, "w") as f:
            json.dump(self.config, f, indent=2)
        with open(self.seed_path, "w", encoding="utf-8") as f:
            f.write(kvs_json(store))
        self.proc: subprocess.Popen | None = None
        self.lines: list[str] = []
        self.stdout_lines: list[str] = []
        self._lines_lock = threading.Lock()
        self._ready = threading.Event()
        self.admin_port: int | None = None  # from "admin API listening on 127.0.0.1:<port>"
        self._admin_ready = threading.Event()
        self.port: int | None = None
        self.ports: list[int] = []  # every "listening for traffic" port, in log order
        self.returncode: int | None = None
        self.started_at = None

    # -- lifecycle -----------------------------------------------------------

    def _reader(self, stream, sink, scan):
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._lines_lock:
                sink.append(line)
            if scan and self.admin_port is None:
                m = ADMIN_LISTEN_RE.search(line)
                if m:
                    self.admin_port = int(m.group(1))
                    self._admin_ready.set()
            if scan:
                m = LISTEN_RE.search(line)
                if m:
                    self.ports.append(int(m.group(1)))
                    if self.port is None:
                        self.port = self.ports[0]
                        self._ready.set()
        stream.close()

    def start(self):
        binary = figshift_bin()
        self.started_at = time.time()
        self.proc = subprocess.Popen([binary, "serve", "--config", self.config_path],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     cwd=self.dir,
                                     env=None if self.env is None else {**os.environ, **self.env})
        _ALL_DAEMONS.append(self)
        threading.Thread(target=self._reader, args=(self.proc.stderr, self.lines, True), daemon=True).start()
        threading.Thread(target=self._reader, args=(self.proc.stdout, self.stdout_lines, False), daemon=True).start()
        deadline = time.time() + READY_TIMEOUT
        while time.time() < deadline:
            if self._ready.wait(0.05):
                return self
            if self.proc.poll() is not None:
                time.sleep(0.2)  # let the readers drain
                raise AssertionError("figshift exited with %s before it was ready\n%s"
                                     % (self.proc.returncode, self.logs()))
        self.kill()
        raise AssertionError("figshift was not ready (no 'listening for traffic on 127.0.0.1:<port>' "
                             "on stderr) within %ss\n%s" % (READY_TIMEOUT, self.logs()))

    def restart(self):
        """Start a new process on the same directory (config, store file) after stop()."""
        assert not self.alive(), "restart() needs the previous process stopped"
        self.port = self.admin_port = None
        self.ports = []
        self._ready.clear()
        self._admin_ready.clear()
        return self.start()

    def admin(self, timeout: float = 5.0) -> int:
        """The admin API's port (waits for its log line)."""
        if not self._admin_ready.wait(timeout):
            raise AssertionError("no 'admin API listening on 127.0.0.1:<port>' line\n%s" % self.logs())
        return self.admin_port

    def admin_request(self, method="GET", path="/admin/status", headers=None, body=None, timeout=SOCKET_TIMEOUT):
        return request(self.admin(), method, path, headers, body, timeout)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def reload(self):
        """SIGHUP: force a store reload."""
        self.signal(signal.SIGHUP)

    def terminate(self):
        self.signal(signal.SIGTERM)

    def wait(self, timeout: float = STOP_TIMEOUT) -> int:
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            stacks = self.thread_stacks()
            self.kill()
            raise AssertionError("figshift did not exit within %ss of SIGTERM\n%s\n%s"
                                 % (timeout, self.logs(), stacks))
        return self.returncode

    def thread_stacks(self) -> str:
        """Every thread's stack of the running daemon (gdb), to tell where a hang is."""
        if not shutil.which("gdb"):
            return "(no gdb: thread stacks not taken)"
        try:
            out = subprocess.run(["gdb", "-p", str(self.proc.pid), "-batch", "-ex", "thread apply all bt"],
                                 capture_output=True, text=True, timeout=60)
            return "---- thread stacks (gdb) ----\n" + out.stdout[-20000:]
        except (OSError, subprocess.SubprocessError) as e:
            return "(gdb failed: %s)" % e

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.returncode = self.proc.wait(5)

    def stop(self, check: bool = True) -> int | None:
        """SIGTERM and wait; asserts the exit code (expect_exit) when check."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.terminate()
            rc = self.wait()
        else:
            rc = self.returncode = self.proc.returncode
        if check and self.expect_exit is not None and rc != self.expect_exit:
            raise AssertionError("figshift exited with %s, expected %s\n%s" % (rc, self.expect_exit, self.logs()))
        return rc

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, exc, tb):
        try:
            self.stop(check=exc_type is None)
        finally:
            if self.proc is not None and self.proc.poll() is None:
                self.kill()
            shutil.rmtree(self.dir, ignore_errors=True)
        return False

    # -- logs ----------------------------------------------------------------

    def log_lines(self) -> list[str]:
        with self._lines_lock:
            return list(self.lines)

    def logs(self, tail: int = 200) -> str:
        with self._lines_lock:
            err = self.lines[-tail:]
            out = self.stdout_lines[-tail:]
        s = "---- figshift stderr (%d lines, last %d) ----\n%s\n" % (len(self.lines), len(err), "\n".join(err))
        if out:
            s += "---- figshift stdout ----\n%s\n" % "\n".join(out)
        return s

    def wait_for_log(self, pattern: str, timeout: float = 5.0, start: int = 0, flags=re.IGNORECASE):
        rx = re.compile(pattern, flags)
        deadline = time.time() + timeout
        while True:
            for line in self.log_lines()[start:]:
                if rx.search(line):
                    return line
            if time.time() > deadline:
                return None
            time.sleep(0.05)

    # -- store file ----------------------------------------------------------

    def write_store(self, store, atomic: bool = True):
        self.write_store_text(kvs_json(store), atomic)

    def write_store_text(self, text: str, atomic: bool = True):
        if atomic:
            tmp = self.store_path + ".tmp-test"
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.store_path)
        else:
            with open(self.store_path, "r+" if os.path.exists(self.store_path) else "w", encoding="utf-8") as f:
                f.seek(0)
                f.truncate()
                f.write(text)

    def read_store(self) -> dict:
        with open(self.store_path, encoding="utf-8") as f:
            return {e["key"]: e["value"] for e in json.load(f)["data"]}

    # -- requests ------------------------------------------------------------

    def request(self, method="GET", path="/", headers=None, body=None, timeout=SOCKET_TIMEOUT):
        return request(self.port, method, path, headers, body, timeout)

    def get(self, path="/", user=None, headers=None, **kw):
        h = dict(headers or {})
        if user is not None:
            h["Authorization"] = basic(user)
        return self.request("GET", path, h, **kw)


# --------------------------------------------------------------------------
# Clients
# --------------------------------------------------------------------------


class Response:
    def __init__(self, status, reason, headers, body, elapsed):
        self.status = status
        self.reason = reason
        self.header_list = headers
        self.headers = {}
        for k, v in headers:
            self.headers[k.lower()] = v
        self.body = body
        self.elapsed = elapsed

    @property
    def json(self):
        try:
            return json.loads(self.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return None

    @property
    def upstream(self):
        return self.headers.get("x-figshift-upstream")

    @property
    def echo(self) -> dict:
        """The upstream's echo of the request (fails loudly when absent)."""
        j = self.json
        if not isinstance(j, dict) or "upstream" not in j:
            raise AssertionError("not an upstream echo: %s %r" % (self.status, self.body[:300]))
        return j

    def __repr__(self):
        return "<Response %s %s upstream=%s body=%r>" % (self.status, self.reason, self.upstream, self.body[:200])


def read_response(conn: http.client.HTTPConnection, method, path, headers=None, body=None) -> Response:
    t0 = time.time()
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    data = r.read()
    return Response(r.status, r.reason, r.getheaders(), data, time.time() - t0)


def request(port, method="GET", path="/", headers=None, body=None, timeout=SOCKET_TIMEOUT) -> Response:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        return read_response(conn, method, path, headers, body)
    finally:
        conn.close()


class RawResult:
    def __init__(self, data: bytes, closed: bool, timed_out: bool, error: str | None):
        self.data = data
        self.closed = closed
        self.timed_out = timed_out
        self.error = error
        m = re.match(rb"HTTP/1\.[01] (\d{3})", data)
        self.status = int(m.group(1)) if m else None

    def __repr__(self):
        return "<RawResult status=%s closed=%s timed_out=%s error=%s data=%r>" % (
            self.status, self.closed, self.timed_out, self.error, self.data[:300])


def _response_complete(data: bytes) -> bool:
    head_end = data.find(b"\r\n\r\n")
    if head_end < 0:
        return False
    head = data[:head_end].decode("latin-1")
    m = re.search(r"(?im)^content-length:\s*(\d+)\s*$", head)
    if m:
        return len(data) >= head_end + 4 + int(m.group(1))
    if re.search(r"(?im)^transfer-encoding:.*chunked", head):
        return data.endswith(b"0\r\n\r\n")
    return False


def raw_exchange(port, payload: bytes, timeout=SOCKET_TIMEOUT, half_close=False, read_until_close=False) -> RawResult:
    """Send raw bytes; read until the connection closes, a full response
    arrived (unless read_until_close), or the timeout."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    data = b""
    error = None
    closed = False
    timed_out = False
    try:
        try:
            s.sendall(payload)
            if half_close:
                s.shutdown(socket.SHUT_WR)
        except OSError as e:  # the daemon may close while we are still sending
            error = "send: %s" % e
        deadline = time.time() + timeout
        while True:
            s.settimeout(max(0.01, deadline - time.time()))
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                timed_out = True
                break
            except OSError as e:  # ECONNRESET counts as closed
                error = (error + "; " if error else "") + "recv: %s" % e
                closed = True
                break
            if not chunk:
                closed = True
                break
            data += chunk
            if not read_until_close and _response_complete(data):
                break
    finally:
        s.close()
    return RawResult(data, closed, timed_out, error)


def eventually(fn, timeout=3.0, interval=0.05, message="condition"):
    """Poll fn() until it returns a truthy value; returns it or raises AssertionError."""
    deadline = time.time() + timeout
    last = None
    while True:
        try:
            last = fn()
            if last:
                return last
        except (OSError, http.client.HTTPException) as e:
            last = e
        if time.time() > deadline:
            raise AssertionError("%s not reached within %ss (last: %r)" % (message, timeout, last))
        time.sleep(interval)


# --------------------------------------------------------------------------
# unittest glue
# --------------------------------------------------------------------------


class FigTestCase(unittest.TestCase):
    """Prints the logs of every daemon started during (or still running at) a
    failing test."""

    maxDiff = None

    def setUp(self):
        self._daemon_mark = len(_ALL_DAEMONS)

    def tearDown(self):
        outcome = getattr(self, "_outcome", None)
        ok = getattr(outcome, "success", True)
        if outcome is not None and hasattr(outcome, "errors"):  # Python < 3.11
            ok = ok and not any(e for _, e in outcome.errors)
        if not ok:
            shown = set()
            for d in _ALL_DAEMONS[self._daemon_mark:] + [d for d in _ALL_DAEMONS if d.alive()]:
                if id(d) in shown:
                    continue
                shown.add(id(d))
                sys.stderr.write("\n==== logs of %s (%s) for %s ====\n%s" % (d.name, d.dir, self.id(), d.logs()))

    def daemon(self, store, config=None, expect_exit=0) -> Daemon:
        """Start a daemon that is stopped (and its exit code checked) at cleanup."""
        d = Daemon(store, config, expect_exit)
        d.start()
        self.addCleanup(self._stop_daemon, d)
        return d

    def _stop_daemon(self, d: Daemon):
        try:
            d.stop(check=True)
        finally:
            d.kill()
            shutil.rmtree(d.dir, ignore_errors=True)

    def upstream(self, name, tls_context=None, dual_stack=False) -> Upstream:
        u = start_upstream(name, tls_context, dual_stack)
        self.addCleanup(u.close)
        return u

    def canned_upstream(self, response: bytes = b"", reset: bool = False) -> RawServer:
        """canned_upstream(), closed at cleanup."""
        srv = canned_upstream(response, reset)
        self.addCleanup(srv.close)
        return srv

    def assertRoutedTo(self, resp: Response, name: str, path: str | None = None, msg: str = ""):
        self.assertEqual(resp.status, 200, "%s: %r" % (msg, resp))
        echo = resp.echo
        self.assertEqual(echo["upstream"], name, "%s: served by the wrong upstream: %r" % (msg, resp))
        self.assertEqual(resp.upstream, name, "%s: debug header disagrees with who served: %r" % (msg, resp))
        if path is not None:
            self.assertEqual(echo["path"], path, "%s: wrong upstream path" % msg)

    def assertProxyError(self, resp: Response, status: int, msg: str = ""):
        self.assertEqual(resp.status, status, "%s: %r" % (msg, resp))
        j = resp.json
        self.assertIsInstance(j, dict, "%s: error body is not JSON: %r" % (msg, resp))
        self.assertIn("error", j, "%s: %r" % (msg, resp))
        self.assertIsInstance(j["error"], str)
        self.assertTrue(resp.headers.get("content-type", "").startswith("application/json"),
                        "%s: error content-type %r" % (msg, resp.headers.get("content-type")))


class UpstreamsMixin:
    """For a FigTestCase (list it first): setUp starts an echo upstream for each
    name in UPSTREAMS, as self.a, self.b1 (, self.b2); migration_store() is the
    module's migration_store() over them, with B2 serving B2_ROUTE."""

    UPSTREAMS = ("A", "B1")
    B2_ROUTE = "/users"

    def setUp(self):
        super().setUp()
        for name in self.UPSTREAMS:
            setattr(self, name.lower(), self.upstream(name))

    def migration_store(self, split=50, **extra) -> dict:
        b2 = self.b2 if "B2" in self.UPSTREAMS else None
        return migration_store(self.a, self.b1, b2, split, self.B2_ROUTE, **extra)


class ThreeUpstreamsMixin(UpstreamsMixin):
    """UpstreamsMixin with A, B1 and B2."""

    UPSTREAMS = ("A", "B1", "B2")


# --------------------------------------------------------------------------
# Self-test (no daemon needed)
# --------------------------------------------------------------------------


def selftest():
    import unittest as ut
    from test_harness import HarnessSelfTest  # noqa: E402
    suite = ut.defaultTestLoader.loadTestsFromTestCase(HarnessSelfTest)
    return ut.TextTestRunner(verbosity=2).run(suite).wasSuccessful()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "selftest":
        sys.path.insert(0, HERE)
        sys.exit(0 if selftest() else 1)
    print(__doc__)
