#!/usr/bin/env bash
# Soak test: scripts/soak.sh <seconds>   (default 60)
#
# Starts the demo upstreams (A, B1, B2), a deliberately failing upstream (B3:
# closes, garbage, 500, hangs, resets, cuts bodies) and a refused one (B4),
# then `figshift serve`, and runs mixed traffic through it (scripts/soak.py:
# many users, every upstream, keep-alive and not, GET and POST, a store write
# every 2 s). Prints requests, errors by kind, the daemon's RSS and open fds
# after a warm-up and at the end; exits non-zero when RSS grew by more than
# 10 % after warm-up, fds grew, a healthy route failed or the daemon died.
#
# Binary: $FIGSHIFT_BIN, else build/figshift, else build-dev/figshift.
set -euo pipefail

seconds="${1:-60}"
case "$seconds" in
  ''|*[!0-9]*) echo "usage: $0 <seconds>" >&2; exit 2 ;;
esac
if (( seconds < 20 )); then
  echo "soak.sh: at least 20 seconds (warm-up, then the measured run)" >&2
  exit 2
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${FIGSHIFT_BIN:-}"
if [[ -z "$bin" ]]; then
  for cand in "$root/build/figshift" "$root/build-dev/figshift"; do
    if [[ -x "$cand" ]]; then bin="$cand"; break; fi
  done
fi
if [[ -z "$bin" || ! -x "$bin" ]]; then
  echo "soak.sh: no figshift binary (set FIGSHIFT_BIN or build first)" >&2
  exit 2
fi

work="$(mktemp -d /tmp/figshift-soak.XXXXXX)"
pids=()
cleanup() {
  local rc=$?
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if (( rc != 0 )) && [[ -f "$work/figshift.log" ]]; then
    echo "---- figshift log (last 30 lines) ----" >&2
    tail -n 30 "$work/figshift.log" >&2 || true
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_for_line FILE REGEX SECONDS: prints the first matching line
wait_for_line() {
  local file="$1" re="$2" deadline=$((SECONDS + $3)) line
  while (( SECONDS < deadline )); do
    if line="$(grep -m1 -E "$re" "$file" 2>/dev/null)"; then
      echo "$line"
      return 0
    fi
    sleep 0.1
  done
  echo "soak.sh: timed out waiting for /$re/ in $file" >&2
  cat "$file" >&2 || true
  return 1
}

# demo upstreams on free ports
"$bin" demo-upstreams --port-a 0 --port-b1 0 --port-b2 0 >"$work/demo.log" 2>&1 &
pids+=($!)
port_of() { wait_for_line "$work/demo.log" "demo upstream $1 listening on" 10 | sed -E 's/.*:([0-9]+)$/\1/'; }
port_a="$(port_of A)"
port_b1="$(port_of B1)"
port_b2="$(port_of B2)"

# the failing upstream, and a port nothing listens on
python3 "$root/scripts/soak.py" failing-upstream >"$work/failing.port" 2>"$work/failing.log" &
pids+=($!)
port_b3="$(wait_for_line "$work/failing.port" '^[0-9]+$' 10)"
port_b4="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"

cat >"$work/seed.json" <<JSON
{"data": [
  {"key": "APIGW_A_URL",  "value": "http://127.0.0.1:$port_a"},
  {"key": "APIGW_B1_URL", "value": "http://127.0.0.1:$port_b1"},
  {"key": "APIGW_B2_URL", "value": "http://127.0.0.1:$port_b2"},
  {"key": "APIGW_B3_URL", "value": "http://127.0.0.1:$port_b3"},
  {"key": "APIGW_B4_URL", "value": "http://127.0.0.1:$port_b4"},
  {"key": "route:/orders",  "value": "B1 /v2/orders"},
  {"key": "route:/users",   "value": "B2"},
  {"key": "route:/failing", "value": "B3"},
  {"key": "route:/refused", "value": "B4"},
  {"key": "traffic-split",  "value": "50"}
]}
JSON
cat >"$work/config.json" <<JSON
{
  "listen": [{"address": "127.0.0.1", "port": 0}],
  "admin": {"address": "127.0.0.1", "port": 0},
  "store": {"backend": "file", "path": "kvs.json", "seed": "seed.json", "reload_interval_ms": 500},
  "workers": 2,
  "timeouts": {"upstream_response_ms": 500, "upstream_connect_ms": 1000, "upstream_idle_ms": 1000,
               "client_idle_ms": 5000},
  "access_log": {"enabled": true, "path": "access.log"},
  "log": {"level": "info"}
}
JSON

"$bin" serve --config "$work/config.json" >"$work/figshift.out" 2>"$work/figshift.log" &
daemon=$!
pids+=($daemon)
port="$(wait_for_line "$work/figshift.log" 'listening for traffic on 127\.0\.0\.1:[0-9]+' 15 | sed -E 's/.*:([0-9]+).*/\1/')"
admin="$(wait_for_line "$work/figshift.log" 'admin API listening on 127\.0\.0\.1:[0-9]+' 15 | sed -E 's/.*127\.0\.0\.1:([0-9]+).*/\1/')"
echo "soak.sh: figshift pid $daemon on :$port (admin :$admin); upstreams A :$port_a B1 :$port_b1 B2 :$port_b2," \
     "failing B3 :$port_b3, refused B4 :$port_b4"

set +e
python3 "$root/scripts/soak.py" drive --port "$port" --admin "$admin" --pid "$daemon" --seconds "$seconds"
rc=$?
set -e
if ! kill -0 "$daemon" 2>/dev/null; then
  echo "soak.sh: figshift is not running any more" >&2
  rc=1
else
  # a clean shutdown after the soak: exit 0 (under the sanitizers: no leak report)
  kill -TERM "$daemon"
  deadline=$((SECONDS + 20))
  while kill -0 "$daemon" 2>/dev/null && (( SECONDS < deadline )); do sleep 0.1; done
  if kill -0 "$daemon" 2>/dev/null; then
    echo "soak.sh: figshift did not exit within 20 s of SIGTERM" >&2
    rc=1
  else
    set +e
    wait "$daemon"
    drc=$?
    set -e
    if (( drc != 0 )); then
      echo "soak.sh: figshift exited with $drc after SIGTERM" >&2
      rc=1
    else
      echo "soak.sh: figshift exited 0 after SIGTERM"
    fi
  fi
fi
exit "$rc"
