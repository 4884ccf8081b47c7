#!/usr/bin/env bash
# Local demo: builds figshift, starts the demo upstreams (A :9001, B1 :9002,
# B2 :9003) and the proxy (:8080, admin :9901) with config/figshift.json, and
# keeps both running until Ctrl-C.
#
# Usage: scripts/run.sh [extra `figshift serve` args]
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

build_dir=build
binary="$build_dir/figshift"
config=config/figshift.json
proxy_port=8080  # must match "listen" in $config

scripts/setup.sh

# A fresh build/ is Release; an existing one keeps its build type (test.sh
# uses RelWithDebInfo there, and flipping it would rebuild everything).
build_type=()
if ! grep -qs '^CMAKE_BUILD_TYPE:' "$build_dir/CMakeCache.txt"; then
  build_type=(-DCMAKE_BUILD_TYPE=Release)
fi
cmake -S . -B "$build_dir" "${build_type[@]}"
cmake --build "$build_dir" -j"$(nproc 2>/dev/null || echo 2)" --target figshift

# The file store lives in var/ (git-ignored), seeded from config/kvs.json on first run.
mkdir -p var

upstreams_pid=""
proxy_pid=""
stop_children() {
  trap - INT TERM EXIT
  local pids=()
  [[ -n "$proxy_pid" ]] && pids+=("$proxy_pid")
  [[ -n "$upstreams_pid" ]] && pids+=("$upstreams_pid")
  if ((${#pids[@]} > 0)); then
    echo
    echo "run.sh: stopping (pids ${pids[*]})"
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
}
trap 'stop_children; exit 130' INT
trap 'stop_children; exit 143' TERM
trap stop_children EXIT

"$binary" demo-upstreams --address 127.0.0.1 --port-a 9001 --port-b1 9002 --port-b2 9003 &
upstreams_pid=$!
"$binary" serve --config "$config" "$@" &
proxy_pid=$!

# Any HTTP answer (even an error status) means the listener is up.
echo "run.sh: waiting for the proxy on port ${proxy_port}..."
deadline=$((SECONDS + 30))
until curl -s -o /dev/null --max-time 1 "http://127.0.0.1:${proxy_port}/"; do
  for pid in "$upstreams_pid" "$proxy_pid"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "run.sh: a process exited during startup (pid ${pid}); see its log above." >&2
      exit 1
    fi
  done
  if ((SECONDS >= deadline)); then
    echo "run.sh: the proxy did not answer on port ${proxy_port} within 30 s." >&2
    exit 1
  fi
  sleep 0.2
done

# With the seed's traffic-split of 50: alice hashes to bucket 88 (legacy -> A),
# dave to bucket 24 (new group; route:/orders -> B1 /v2/orders).
cat <<EOF

figshift is up: proxy http://localhost:${proxy_port}, admin http://127.0.0.1:9901
Try (with the seed's traffic-split of 50):
  curl -i -u alice:pw localhost:${proxy_port}/orders/1    # bucket 88 -> legacy A
  curl -i -u dave:pw  localhost:${proxy_port}/orders/1    # bucket 24 -> B1 /v2/orders/1
  curl -s 127.0.0.1:9901/admin/status
Press Ctrl-C to stop.
EOF

# Return as soon as either process exits, then stop the other one.
status=0
wait -n "$upstreams_pid" "$proxy_pid" || status=$?
echo "run.sh: a process exited (status ${status}); stopping the other." >&2
exit "$status"
