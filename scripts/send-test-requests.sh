#!/usr/bin/env bash
# Sends test traffic through the proxy as many distinct users (user1..user1000,
# Basic auth) over /orders/N, /users/N and /other for <seconds>, from several
# concurrent curl loops, and every 5 seconds prints how many requests each
# upstream served (from the x-figshift-upstream response header), for the last
# interval and in total: the original sample's traffic-distribution chart, as
# a table. Run it while `scripts/set-traffic-shift.sh` ramps to watch the
# shares move.
#
# Usage: scripts/send-test-requests.sh <seconds> [proxy-url]
#   proxy-url  default $PROXY_URL or http://127.0.0.1:8080
# Environment: CONCURRENCY (parallel curl loops, default 8), REPORT_EVERY
#   (seconds between tables, default 5), DEBUG_HEADER (default x-figshift-upstream).
# Requests without the header are counted as "no-header-<status>", failed
# connections as "unreachable".
set -euo pipefail

usage() {
  echo "usage: $(basename "$0") <seconds> [proxy-url]" >&2
  exit 2
}

(($# >= 1 && $# <= 2)) || usage
[[ "$1" =~ ^[0-9]+$ ]] || usage
((10#$1 > 0)) || usage
duration=$((10#$1))
proxy="${2:-${PROXY_URL:-http://127.0.0.1:8080}}"
proxy="${proxy%/}"
[[ "$proxy" =~ ^https?://[^/]+$ ]] || { echo "$(basename "$0"): proxy-url must be http(s)://host[:port]" >&2; usage; }
concurrency="${CONCURRENCY:-8}"
[[ "$concurrency" =~ ^[1-9][0-9]*$ ]] || { echo "$(basename "$0"): CONCURRENCY must be a positive integer" >&2; exit 2; }
every="${REPORT_EVERY:-5}"
[[ "$every" =~ ^[1-9][0-9]*$ ]] || { echo "$(basename "$0"): REPORT_EVERY must be a positive integer" >&2; exit 2; }
header="${DEBUG_HEADER:-x-figshift-upstream}"
batch=20 # requests per curl process (one keep-alive connection)

command -v curl >/dev/null || { echo "$(basename "$0"): curl is required" >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/figshift-requests.XXXXXX")"
log="$work/upstreams.log" # one line per answered request: the upstream name
prev="$work/previous"     # "name count" at the previous report
: >"$log"
: >"$prev"
pids=()

cleanup() {
  local pid
  for pid in "${pids[@]+"${pids[@]}"}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# One curl loop: batches of $batch requests as random users, until $1 (SECONDS).
worker() {
  local end=$1 i user n path args
  while ((SECONDS < end)); do
    args=()
    for ((i = 0; i < batch; i++)); do
      user=$((RANDOM % 1000 + 1))
      n=$((RANDOM % 100 + 1))
      case $((RANDOM % 3)) in
        0) path="/orders/$n" ;;
        1) path="/users/$n" ;;
        *) path="/other" ;;
      esac
      ((i == 0)) || args+=(--next)
      args+=(-s -o /dev/null -D - -w 'END %{http_code}\n' --max-time 10 -u "user$user:pw" "$proxy$path")
    done
    { curl "${args[@]}" 2>/dev/null || true; } | awk -v h="$header" '
      BEGIN { h = tolower(h) }
      { sub(/\r$/, "") }
      /^END [0-9]+$/ { if (!found) print ($2 == "000" ? "unreachable" : "no-header-" $2); found = 0; next }
      {
        i = index($0, ":")
        if (i > 0 && tolower(substr($0, 1, i - 1)) == h) {
          v = substr($0, i + 1); gsub(/^[ \t]+|[ \t]+$/, "", v); print v; found = 1
        }
      }' >>"$log"
  done
}

# Prints the table: per upstream, the requests since the previous table and in total.
report() {
  local title=$1 seconds=$2
  awk -v title="$title" -v secs="$seconds" -v prevfile="$prev" -v out="$prev.new" '
    FILENAME == prevfile { prev[$1] = $2; seen[$1] = 1; next }
    { count[$1]++; seen[$1] = 1 }
    END {
      n = 0
      for (k in seen) { names[++n] = k; total += count[k]; delta[k] = count[k] - prev[k]; recent += delta[k] }
      for (i = 2; i <= n; i++) { k = names[i]; for (j = i - 1; j > 0 && names[j] > k; j--) names[j + 1] = names[j]; names[j + 1] = k }
      printf "%s\n", title
      printf "  %-14s %9s %7s %9s %7s\n", "upstream", "last " secs "s", "share", "total", "share"
      for (i = 1; i <= n; i++) {
        k = names[i]
        printf "  %-14s %9d %6.1f%% %9d %6.1f%%\n", k, delta[k], recent ? 100 * delta[k] / recent : 0, count[k] + 0, total ? 100 * count[k] / total : 0
        print k, count[k] + 0 > out
      }
      printf "  %-14s %9d %7s %9d\n", "all", recent, "", total
      close(out)
    }' "$prev" "$log"
  if [[ -f "$prev.new" ]]; then mv "$prev.new" "$prev"; else : >"$prev"; fi
}

echo "sending requests to $proxy for ${duration}s as user1..user1000 over /orders/N, /users/N, /other ($concurrency concurrent curl loops)"
start=$SECONDS
end=$((start + duration))
for ((w = 0; w < concurrency; w++)); do
  worker "$end" &
  pids+=($!)
done

interrupted=0
trap 'interrupted=1' INT TERM
last=$start
next=$((start + every))
while ((SECONDS < end && !interrupted)); do
  sleep 1 || true
  if ((SECONDS >= next && SECONDS < end && !interrupted)); then
    report "[$((SECONDS - start))s] requests per upstream" "$((SECONDS - last))"
    last=$SECONDS
    next=$((next + every))
  fi
done
if ((interrupted)); then
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
fi
wait "${pids[@]}" 2>/dev/null || true
pids=()
report "[$((SECONDS - start))s] total after ${duration}s$( ((interrupted)) && echo ' (interrupted)')" "$((SECONDS - last))"
if ((interrupted)); then exit 130; fi
