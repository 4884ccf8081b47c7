"""A real etcd for the integration tests and benchmarks of the etcd backend
(#14): one member (Etcd) or a 3-member cluster (EtcdCluster) on loopback with
free ports and a temporary data dir, killed by pid; Cut, a TCP relay that can
sever a replica from etcd while etcd keeps running. Debian 12: etcd-server and
etcd-client (scripts/setup.sh installs them).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import eventually  # noqa: E402

ETCD = shutil.which("etcd") or "/usr/bin/etcd"
ETCDCTL = shutil.which("etcdctl") or "/usr/bin/etcdctl"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Etcd:
    """One etcd member on loopback; SIGKILL and restart keep its data dir."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="figshift-etcd-")
        self.client_port = free_port()
        self.peer_port = free_port()
        self.url = "http://127.0.0.1:%d" % self.client_port
        self.proc: subprocess.Popen | None = None
        self.user: str | None = None  # "root:password" once auth is enabled
        self.log = open(os.path.join(self.dir, "etcd.log"), "ab")

    def start(self):
        peer = "http://127.0.0.1:%d" % self.peer_port
        self.proc = subprocess.Popen(
            [ETCD, "--name", "m1", "--data-dir", os.path.join(self.dir, "data"),
             "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
             "--initial-cluster", "m1=" + peer, "--log-level", "warn"],
            stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL)
        eventually(lambda: self.ctl("endpoint", "health", check=False).returncode == 0,
                   timeout=20, interval=0.2, message="etcd healthy")
        return self

    def kill(self):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def close(self):
        self.kill()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def ctl(self, *args, check=True) -> subprocess.CompletedProcess:
        user = ["--user", self.user] if self.user else []
        return subprocess.run([ETCDCTL, "--endpoints", self.url, "--dial-timeout", "2s",
                               "--command-timeout", "5s", *user, *args],
                              capture_output=True, text=True, check=check,
                              env={**os.environ, "ETCDCTL_API": "3"})

    def get_json(self, key: str, prefix: bool = False) -> dict:
        args = ["get", key, "-w", "json"] + (["--prefix"] if prefix else [])
        return json.loads(self.ctl(*args).stdout)

    def revision(self) -> int:
        return int(self.get_json("/")["header"]["revision"])


class Cut:
    """A TCP relay that can cut every connection and refuse new ones."""

    def __init__(self, target_port: int):
        self.target = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.open = True
        self.conns: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.listener.accept()
            except OSError:
                return
            if not self.open:
                c.close()
                continue
            try:
                u = socket.create_connection(("127.0.0.1", self.target), timeout=2)
            except OSError:
                c.close()
                continue
            with self.lock:
                self.conns += [c, u]
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def cut(self):
        self.open = False
        with self.lock:
            for s in self.conns:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self.conns = []

    def close(self):
        self.cut()
        self.listener.close()


class EtcdCluster:
    """Three etcd members on loopback (one raft cluster); members are killed by pid."""

    def __init__(self, n=3):
        self.dir = tempfile.mkdtemp(prefix="figshift-etcd3-")
        self.members = [{"name": "m%d" % i, "client": free_port(), "peer": free_port()} for i in range(n)]
        self.urls = ["http://127.0.0.1:%d" % m["client"] for m in self.members]
        self.procs: list[subprocess.Popen] = []
        self.log = open(os.path.join(self.dir, "etcd.log"), "ab")

    def start(self):
        initial = ",".join("%s=http://127.0.0.1:%d" % (m["name"], m["peer"]) for m in self.members)
        for m, url in zip(self.members, self.urls):
            peer = "http://127.0.0.1:%d" % m["peer"]
            self.procs.append(subprocess.Popen(
                [ETCD, "--name", m["name"], "--data-dir", os.path.join(self.dir, m["name"]),
                 "--listen-client-urls", url, "--advertise-client-urls", url,
                 "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                 "--initial-cluster", initial, "--initial-cluster-token", "figshift-test",
                 "--initial-cluster-state", "new", "--log-level", "warn"],
                stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL))
        eventually(lambda: self.ctl("endpoint", "health", check=False).returncode == 0,
                   timeout=30, interval=0.3, message="etcd cluster healthy")
        return self

    def kill(self, i):
        if self.procs[i].poll() is None:
            os.kill(self.procs[i].pid, signal.SIGKILL)
            self.procs[i].wait(10)

    def close(self):
        for i in range(len(self.procs)):
            self.kill(i)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def ctl(self, *args, check=True, endpoints=None):
        return subprocess.run([ETCDCTL, "--endpoints", ",".join(endpoints or self.urls), "--dial-timeout", "2s",
                               "--command-timeout", "5s", *args],
                              capture_output=True, text=True, check=check,
                              env={**os.environ, "ETCDCTL_API": "3"})
