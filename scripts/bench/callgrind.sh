#!/usr/bin/env bash
# Instructions per proxied request in figshift's worker thread, counted by
# callgrind: deterministic, so it shows a 2 % change that the box's noise hides
# in scripts/bench.sh. User space only (the kernel's share is not counted).
#
# Usage: scripts/bench/callgrind.sh [--tls] [BINARY] [SECONDS]
#   --tls    the same load over TLS 1.3 (a P-256 certificate made with openssl),
#            kept-alive: what the TLS record path costs per request
#   BINARY   default build/figshift; SECONDS of wrk load (default 8)
# Needs valgrind and wrk (Debian packages) and the ports 9001-9003 (demo
# upstreams, as config/kvs.json names them) and 18180/18181 free. Prints
# "requests=N worker_instructions=I per_request=I/N"; the profile stays in the
# printed directory for callgrind_annotate (the worker is the `-02` file).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
tls=0
if [[ "${1:-}" == "--tls" ]]; then tls=1; shift; fi
bin="$(realpath "${1:-$repo_root/build/figshift}")"
seconds="${2:-8}"
for tool in valgrind callgrind_annotate wrk curl; do
  command -v "$tool" >/dev/null || { echo "callgrind.sh: $tool is missing (apt-get install valgrind wrk curl)" >&2; exit 2; }
done

work="$(mktemp -d)"
cp "$repo_root/config/kvs.json" "$work/kvs.json"
listen='{"address": "127.0.0.1", "port": 18180}'
scheme=http
if ((tls)); then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
    -keyout "$work/tls.key" -out "$work/tls.crt" 2>/dev/null
  listen="{\"address\": \"127.0.0.1\", \"port\": 18180, \"tls\": {\"cert_file\": \"$work/tls.crt\", \"key_file\": \"$work/tls.key\"}}"
  scheme=https
fi
cat > "$work/figshift.json" <<JSON
{
  "listen": [$listen],
  "admin": {"address": "127.0.0.1", "port": 18181},
  "store": {"backend": "file", "path": "$work/store.json", "seed": "kvs.json"},
  "workers": 1,
  "access_log": {"enabled": false},
  "log": {"level": "warn"}
}
JSON

pids=()
cleanup() { ((${#pids[@]})) && kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT

"$bin" demo-upstreams --address 127.0.0.1 --port-a 9001 --port-b1 9002 --port-b2 9003 \
  >"$work/upstreams.log" 2>&1 &
pids+=($!)
valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$work/callgrind.out" \
  "$bin" serve --config "$work/figshift.json" >"$work/figshift.log" 2>&1 &
proxy=$!
for _ in $(seq 1 240); do
  curl -sk -o /dev/null $scheme://127.0.0.1:18180/ && break
  sleep 0.5
done
requests=$(wrk -t1 -c8 -d"${seconds}s" -s "$repo_root/scripts/bench/load.lua" $scheme://127.0.0.1:18180 |
  awk '/requests in/ {print $1}')
kill -TERM "$proxy"
wait "$proxy" || true

# The worker thread's profile: the one whose totals include Worker::run.
for file in "$work"/callgrind.out-*; do
  ir=$(callgrind_annotate --inclusive=yes "$file" 2>/dev/null |
    awk '/figshift::proxy::Worker::run\(\)/ {gsub(",", "", $1); print $1; exit}' || true)
  if [[ -n "$ir" ]]; then
    echo "requests=$requests worker_instructions=$ir per_request=$((ir / requests)) profile=$file"
    exit 0
  fi
done
echo "callgrind.sh: no worker thread profile in $work" >&2
exit 1
