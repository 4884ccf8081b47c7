#!/usr/bin/env bash
# What user-key jwt (issue #17) costs per request, beside basic, in the same
# run: three daemons (1 worker each, pinned to CPU 0) on demo upstreams, wrk on
# CPU 1 with 1000 users (load.lua for basic, load.lua -- @FILE with one RS256
# token per user for jwt):
#   basic        user-key basic (the sample's rule)
#   jwt-cached   user-key jwt, RS256 tokens, per-worker cache of verified tokens
#   jwt-uncached the same with "jwt": {"cache": false}: every request verifies
#   basic-padded user-key basic with an X-Pad header that makes each request as
#                long as its Bearer twin: what the token's bytes cost (parsing,
#                forwarding) apart from what verifying and caching it cost
# Rounds alternate the order. Per round it prints req/s and daemon CPU time per
# request (utime+stime from /proc over the run); at the end, the median and the
# range of the per-round ratios to basic. Each daemon first gets one request
# per user (not counted): the cached variant is measured in its steady state,
# where each token was verified once and then comes from the cache. With --callgrind, instructions per
# request in the worker thread instead (callgrind: deterministic, so the noisy
# 2-core box does not blur it; user space only).
# The last line is "RESULT {json}" for scripts/bench/run.py.
#
# Usage: scripts/bench/user_key_cost.sh [--callgrind] [BINARY] [ROUNDS] [SECONDS]
#   BINARY default build/figshift; ROUNDS 3; SECONDS 8 per run (callgrind: 4).
# Needs wrk, curl, taskset, openssl, python3 (and valgrind for --callgrind) and
# the ports 9001-9003 and 18380-18387 free. USER_KEY_COST_PROFILES=DIR keeps the
# callgrind profiles there (the worker is the `-02` file of each variant).
set -euo pipefail

callgrind=0
if [[ "${1:-}" == --callgrind ]]; then callgrind=1; shift; fi
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bin="$(realpath "${1:-$repo_root/build/figshift}")"
rounds="${2:-3}"
seconds="${3:-$( ((callgrind)) && echo 4 || echo 8)}"
work="$(mktemp -d)"
pids=()
cleanup() { ((${#pids[@]})) && kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# One RSA key, its JWKS, and one RS256 token per user (sub = "user<u>", an
# hour of validity), signed by the openssl CLI.
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/rsa.pem" 2>/dev/null
python3 - "$work" <<'PY'
import base64, json, re, subprocess, sys, time
work = sys.argv[1]
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
key = f"{work}/rsa.pem"
n = subprocess.run(["openssl", "rsa", "-in", key, "-noout", "-modulus"], capture_output=True, text=True,
                   check=True).stdout.strip().split("=", 1)[1]
json.dump({"keys": [{"kty": "RSA", "kid": "bench", "alg": "RS256", "n": b64(bytes.fromhex(n)),
                     "e": b64((65537).to_bytes(3, "big"))}]}, open(f"{work}/jwks.json", "w"))
header = b64(json.dumps({"alg": "RS256", "kid": "bench", "typ": "JWT"}).encode())
exp = int(time.time()) + 3600
with open(f"{work}/tokens.txt", "w") as out, open(f"{work}/bearer.txt", "w") as bearer, \
        open(f"{work}/padded.txt", "w") as padded:
    for u in range(1, 1001):
        signed = header + "." + b64(json.dumps({"sub": f"user{u}", "exp": exp, "iss": "bench"}).encode())
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=signed.encode(),
                             capture_output=True, check=True).stdout
        token = signed + "." + b64(sig)
        out.write(token + "\n")
        bearer.write("Bearer " + token + "\n")
        basic = "Basic " + base64.b64encode(f"user{u}:pw".encode()).decode()
        # "X-Pad: " + pad + CRLF makes up the difference in length.
        padded.write(basic + "\t" + "p" * max(1, len(token) + 7 - len(basic) - 9) + "\n")
PY

variants=(basic jwt-cached jwt-uncached basic-padded)
port_of() {
  case "$1" in basic) echo 18380 ;; jwt-cached) echo 18382 ;; jwt-uncached) echo 18384 ;; basic-padded) echo 18386 ;; esac
}
config() {  # variant -> config file
  local v="$1" port jwt="" user_key=basic
  port=$(port_of "$v")
  [[ "$v" == jwt-* ]] && user_key=jwt
  [[ "$v" == jwt-cached ]] && jwt=", \"jwt\": {\"keys_file\": \"$work/jwks.json\", \"issuer\": \"bench\"}"
  [[ "$v" == jwt-uncached ]] &&
    jwt=", \"jwt\": {\"keys_file\": \"$work/jwks.json\", \"issuer\": \"bench\", \"cache\": false}"
  python3 - "$repo_root/config/kvs.json" "$work/seed-$v.json" "$user_key" <<'PY'
import json, sys
kvs = json.load(open(sys.argv[1]))
kvs["data"].append({"key": "user-key", "value": sys.argv[3]})
json.dump(kvs, open(sys.argv[2], "w"))
PY
  cat > "$work/$v.json" <<JSON
{
  "listen": [{"address": "127.0.0.1", "port": $port}],
  "admin": {"address": "127.0.0.1", "port": $((port + 1))},
  "store": {"backend": "file", "path": "$work/store-$v.json", "seed": "seed-$v.json"},
  "workers": 1,
  "access_log": {"enabled": false},
  "log": {"level": "warn"}$jwt
}
JSON
  echo "$work/$v.json"
}

"$bin" demo-upstreams --address 127.0.0.1 --port-a 9001 --port-b1 9002 --port-b2 9003 >/dev/null 2>&1 &
pids+=($!)

load() {  # variant seconds -> wrk output
  local v="$1" port
  port=$(port_of "$v")
  case "$v" in
    basic) taskset -c 1 wrk -t1 -c32 -d"$2s" -s "$repo_root/scripts/bench/load.lua" "http://127.0.0.1:$port" ;;
    basic-padded)
      taskset -c 1 wrk -t1 -c32 -d"$2s" -s "$repo_root/scripts/bench/load.lua" \
        "http://127.0.0.1:$port" -- "@$work/padded.txt" ;;
    *)
      taskset -c 1 wrk -t1 -c32 -d"$2s" -s "$repo_root/scripts/bench/load.lua" \
        "http://127.0.0.1:$port" -- "@$work/bearer.txt" ;;
  esac
}
wait_up() { for _ in $(seq 1 600); do curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0; sleep 0.1; done; return 1; }

# Routing check before timing: the token of user1 routes /orders/1 as
# `figshift bucket user1` says (split 50: B1 when the bucket is below 50).
check_routing() {
  local port=$1 token bucket want got
  token=$(head -n 1 "$work/tokens.txt")
  bucket=$("$bin" bucket user1 | awk '/^bucket:/ {print $2}')
  want=$( ((bucket < 50)) && echo B1 || echo A)
  got=$(curl -s -o /dev/null -D - -H "Authorization: Bearer $token" "http://127.0.0.1:$port/orders/1" |
    tr -d '\r' | awk -F': ' 'tolower($1) == "x-figshift-upstream" {print $2}')
  [[ "$got" == "$want" ]] || { echo "user_key_cost.sh: user1 went to '$got', not $want" >&2; exit 1; }
}

warm_up() {  # variant: one request per user on one keep-alive connection
  python3 - "$(port_of "$1")" "$1" "$work/tokens.txt" <<'PY'
import base64, http.client, sys
port, variant, tokens = int(sys.argv[1]), sys.argv[2], open(sys.argv[3]).read().split()
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
for u, token in enumerate(tokens, 1):
    auth = ("Basic " + base64.b64encode(f"user{u}:pw".encode()).decode()) if variant.startswith("basic") \
        else "Bearer " + token
    conn.request("GET", f"/orders/{u}", headers={"Authorization": auth})
    r = conn.getresponse()
    r.read()
    assert r.status == 200, r.status
PY
}

declare -A cpu rps
results=()
if ((callgrind == 0)); then
  for v in "${variants[@]}"; do
    taskset -c 0 "$bin" serve --config "$(config "$v")" >"$work/$v.log" 2>&1 &
    pids+=($!)
    eval "pid_${v//-/_}=$!"
    wait_up "$(port_of "$v")"
    warm_up "$v"
  done
  check_routing 18382
  cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
  for round in $(seq 1 "$rounds"); do
    order=("${variants[@]}")
    ((round % 2 == 0)) && order=(basic-padded jwt-uncached jwt-cached basic)
    line="round $round:"
    for v in "${order[@]}"; do
      pid_var="pid_${v//-/_}"
      pid=${!pid_var}
      before=$(cpu_ticks "$pid")
      out=$(load "$v" "$seconds")
      after=$(cpu_ticks "$pid")
      requests=$(awk '/requests in/ {print $1}' <<<"$out")
      non2xx=$(awk '/Non-2xx/ {print $4}' <<<"$out")
      [[ -z "$non2xx" ]] || { echo "user_key_cost.sh: $v: $non2xx non-2xx answers" >&2; exit 1; }
      rps[$v]=$(awk -v r="$requests" -v s="$seconds" 'BEGIN { printf "%.0f", r / s }')
      cpu[$v]=$(awk -v r="$requests" -v t=$((after - before)) -v hz="$(getconf CLK_TCK)" \
        'BEGIN { printf "%.2f", t / hz * 1e6 / r }')
      line+=" $v ${rps[$v]} req/s ${cpu[$v]} us/req;"
    done
    echo "$line"
    results+=("{\"round\":$round,\"basic\":${cpu[basic]},\"jwt_cached\":${cpu[jwt-cached]},\"jwt_uncached\":${cpu[jwt-uncached]},\"basic_padded\":${cpu[basic-padded]},\"rps_basic\":${rps[basic]},\"rps_jwt_cached\":${rps[jwt-cached]},\"rps_jwt_uncached\":${rps[jwt-uncached]}}")
  done
  unit="cpu_us_per_req"
else
  command -v valgrind >/dev/null || { echo "user_key_cost.sh: valgrind is missing" >&2; exit 2; }
  for round in $(seq 1 "$rounds"); do
    line="round $round:"
    declare -A ir
    for v in "${variants[@]}"; do
      cfg=$(config "$v")
      valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$work/cg-$v.out" \
        "$bin" serve --config "$cfg" >"$work/$v.log" 2>&1 &
      proxy=$!
      wait_up "$(port_of "$v")"
      ((round == 1)) && [[ "$v" == jwt-cached ]] && check_routing 18382
      # Steady state: each user's first request (a verification that the cache
      # then saves) is made before the counters are zeroed, in every variant.
      warm_up "$v"
      callgrind_control --zero "$proxy" >/dev/null 2>&1
      out=$(load "$v" "$seconds")
      requests=$(awk '/requests in/ {print $1}' <<<"$out")
      kill -TERM "$proxy"
      wait "$proxy" || true
      total=""
      for file in "$work"/cg-"$v".out-*; do
        total=$(callgrind_annotate --inclusive=yes "$file" 2>/dev/null |
          awk '/figshift::proxy::Worker::run\(\)/ {gsub(",", "", $1); print $1; exit}' || true)
        [[ -n "$total" ]] && break
      done
      if [[ -n "${USER_KEY_COST_PROFILES:-}" ]]; then  # keep them for callgrind_annotate
        mkdir -p "$USER_KEY_COST_PROFILES"
        mv "$work"/cg-"$v".out-* "$USER_KEY_COST_PROFILES/"
      fi
      rm -f "$work"/cg-"$v".out-* "$work/store-$v.json"
      [[ -n "$total" ]] || { echo "user_key_cost.sh: no worker profile for $v" >&2; exit 1; }
      ir[$v]=$((total / requests))
      line+=" $v ${ir[$v]} instructions/req ($requests requests);"
    done
    echo "$line"
    results+=("{\"round\":$round,\"basic\":${ir[basic]},\"jwt_cached\":${ir[jwt-cached]},\"jwt_uncached\":${ir[jwt-uncached]},\"basic_padded\":${ir[basic-padded]}}")
  done
  unit="instructions_per_req"
fi

python3 - "$unit" "${results[@]}" <<'PY'
import json, statistics, sys
unit, rounds = sys.argv[1], [json.loads(r) for r in sys.argv[2:]]
out = {"unit": unit, "rounds": rounds}
for v in ("jwt_cached", "jwt_uncached", "basic_padded"):
    ratios = [r[v] / r["basic"] for r in rounds]
    out[v + "_ratio"] = {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)}
    print(f"{v} / basic ({unit}): median {statistics.median(ratios):.3f} "
          f"(rounds {', '.join(f'{x:.3f}' for x in ratios)})")
for v in ("basic", "basic_padded", "jwt_cached", "jwt_uncached"):
    print(f"{v}: median {statistics.median(r[v] for r in rounds):g} {unit}")
print("RESULT " + json.dumps(out))
PY
