#!/usr/bin/env bash
# What an armed rollout guard (issue #16) costs the data path: one daemon
# (1 worker, pinned to CPU 0), demo upstreams, wrk on CPU 1 with load.lua at
# split 100; rounds alternate the `guard` key set and deleted on the same
# process. Prints, per round, req/s and the daemon's CPU time per request
# (utime+stime from /proc over the run), and the median of the per-round
# ratios guard/no guard.
#
# Usage: scripts/bench/guard_cost.sh [BINARY] [ROUNDS] [SECONDS]
#   BINARY default build/figshift; ROUNDS 3; SECONDS 8 per run.
# Needs wrk, curl, taskset and the ports 9001-9003 and 18280/18281 free.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bin="$(realpath "${1:-$repo_root/build/figshift}")"
rounds="${2:-3}"
seconds="${3:-8}"
work="$(mktemp -d)"
cp "$repo_root/config/kvs.json" "$work/kvs.json"
cat > "$work/figshift.json" <<JSON
{
  "listen": [{"address": "127.0.0.1", "port": 18280}],
  "admin": {"address": "127.0.0.1", "port": 18281},
  "store": {"backend": "file", "path": "$work/store.json", "seed": "kvs.json"},
  "workers": 1,
  "access_log": {"enabled": false},
  "log": {"level": "warn"}
}
JSON
pids=()
cleanup() { ((${#pids[@]})) && kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
"$bin" demo-upstreams --address 127.0.0.1 --port-a 9001 --port-b1 9002 --port-b2 9003 >/dev/null 2>&1 &
pids+=($!)
taskset -c 0 "$bin" serve --config "$work/figshift.json" >"$work/figshift.log" 2>&1 &
proxy=$!
pids+=($proxy)
for _ in $(seq 1 100); do curl -s -o /dev/null http://127.0.0.1:18280/ && break; sleep 0.1; done
admin="$bin"
"$admin" shift 100 --admin http://127.0.0.1:18281 >/dev/null

cpu_ticks() { awk '{print $14 + $15}' "/proc/$proxy/stat"; }
run() {  # prints "req_per_s cpu_us_per_req"
  local before after out requests
  before=$(cpu_ticks)
  out=$(taskset -c 1 wrk -t1 -c32 -d"${seconds}s" -s "$repo_root/scripts/bench/load.lua" http://127.0.0.1:18280)
  after=$(cpu_ticks)
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  awk -v r="$requests" -v s="$seconds" -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" \
    'BEGIN { printf "%.0f %.2f\n", r / s, t / hz * 1e6 / r }'
}

ratios=()
for round in $(seq 1 "$rounds"); do
  "$admin" kv delete guard --admin http://127.0.0.1:18281 >/dev/null 2>&1 || true
  read -r off_rps off_cpu < <(run)
  "$admin" kv put guard '{"max_error_ratio":0.05,"max_p99_ms":500,"window_s":30,"min_requests":100}' \
    --admin http://127.0.0.1:18281 >/dev/null
  read -r on_rps on_cpu < <(run)
  ratio=$(awk -v a="$on_cpu" -v b="$off_cpu" 'BEGIN { printf "%.3f", a / b }')
  ratios+=("$ratio")
  echo "round $round: no guard ${off_rps} req/s ${off_cpu} us/req; guard ${on_rps} req/s ${on_cpu} us/req; CPU ratio ${ratio}"
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo "median CPU ratio guard/no guard: $median (rounds: ${ratios[*]})"
grep -i "guard tripped" "$work/figshift.log" && { echo "guard_cost.sh: the guard tripped" >&2; exit 1; }
exit 0
