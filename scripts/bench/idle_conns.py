#!/usr/bin/env python3
"""Opens COUNT keep-alive client connections to 127.0.0.1:PORT, makes one GET
(Basic auth, rotating users and paths like load.lua) on each, reads the whole
response, and then keeps them all open and idle. Used by scripts/bench/run.py
to read a proxy's RSS with many idle clients. With --tls each connection is
TLS 1.3 (handshake, then the request), the certificate not checked: only the
proxy's memory is of interest.

Protocol on stdout/stdin:
  prints "READY <ok> <failed>" once every connection has had its response;
  on "CHECK" prints "OPEN <n>": connections the server has not closed (hung up);
  on "CLOSE" (or EOF) closes everything with RST (no TIME_WAIT) and exits.
The caller must raise the open-files limit above COUNT.
"""
import argparse
import base64
import select
import socket
import ssl
import struct
import sys


def request(i: int) -> bytes:
    user = f"user{i % 1000 + 1}"
    path = ("/orders/%d" % (i % 1000 + 1), "/users/%d" % (i % 1000 + 1), "/other")[i % 3]
    auth = base64.b64encode(f"{user}:pw".encode()).decode()
    return (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {auth}\r\n\r\n"
            ).encode()


def read_response(s: socket.socket) -> int:
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the response head")
        buf += chunk
    head, body = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
        if name.strip().lower() == "connection" and "close" in value.lower():
            raise ConnectionError("server answered Connection: close")
    while len(body) < length:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the end of the body")
        body += chunk
    return status


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--count", type=int, default=10000)
    p.add_argument("--window", type=int, default=64, help="requests in flight at once")
    p.add_argument("--tls", action="store_true", help="TLS 1.3 connections")
    a = p.parse_args()
    tls = None
    if a.tls:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        tls.minimum_version = ssl.TLSVersion.TLSv1_3
        tls.check_hostname = False
        tls.verify_mode = ssl.CERT_NONE

    socks, ok, failed = [], 0, 0
    for start in range(0, a.count, a.window):
        batch = []
        for i in range(start, min(a.count, start + a.window)):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(10)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            try:
                s.connect(("127.0.0.1", a.port))
                if tls:
                    s = tls.wrap_socket(s)  # the handshake, one at a time
                s.sendall(request(i))
                batch.append(s)
            except OSError as e:
                print(f"connection {i}: {e}", file=sys.stderr)
                failed += 1
                s.close()
        for s in batch:
            try:
                if read_response(s) == 200:
                    ok += 1
                    socks.append(s)
                    continue
            except (OSError, ConnectionError, ValueError) as e:
                print(f"response: {e}", file=sys.stderr)
            failed += 1
            s.close()
    print(f"READY {ok} {failed}", flush=True)

    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "CHECK":
            open_count = 0
            poller = select.epoll()
            # Hang-ups only (EPOLLHUP and EPOLLERR are always reported): a TLS
            # server may still send a record (a late session ticket) to a live one.
            for s in socks:
                poller.register(s.fileno(), select.EPOLLRDHUP)
            closed = {fd for fd, _ in poller.poll(0)}
            poller.close()
            open_count = sum(1 for s in socks if s.fileno() not in closed)
            print(f"OPEN {open_count}", flush=True)
        elif cmd == "CLOSE":
            break
    for s in socks:
        s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
