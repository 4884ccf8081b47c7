#!/usr/bin/env bash
# figshift benchmark against nginx and HAProxy doing the same job (issue 6).
# See docs/benchmarks.md for what is measured and how to read it.
#
# Usage: scripts/bench.sh [--quick] [--targets LIST] [--extras LIST|none]
#                         [--duration S] [--rounds N] [--no-docs] [--write-docs] [--keep]
#
#   --quick          1 round, 5 s per run (for optimisation iterations); does not
#                    touch docs/benchmarks.md unless --write-docs is given
#   --targets LIST   comma-separated subset of upstream,figshift,figshift-log,nginx,haproxy
#                    (default: all, in that order)
#   --extras LIST    comma-separated subset of idle,workers,writes,syscalls,tls,streaming,
#                    userkey, or none (default: all). idle: RSS with 10,000 idle plain and
#                    2,000 idle TLS 1.3 connections; tls: TLS 1.3 keep-alive, resumed
#                    handshakes and full handshakes (tickets off). streaming: 8 downloads
#                    + 4 uploads of 256 MiB at once through each proxy (streaming.py);
#                    userkey = scripts/bench/user_key_cost.sh (#17: CPU per request with
#                    user-key jwt, RS256 cached and uncached, beside basic; with valgrind
#                    also callgrind counts)
#   --duration S     seconds per timed run (default 10; BENCH_DURATION)
#   --rounds N       rounds, the order of targets alternating (default 3; BENCH_ROUNDS)
#   --no-docs        do not write docs/benchmarks.md (a full run writes it by default)
#   --write-docs     write docs/benchmarks.md even in quick mode
#   --keep           keep the temporary work dir (configs, logs) after a successful run
#
# Environment: FIGSHIFT_BIN (use this binary instead of building build-bench/),
# BENCH_PROXY_CPU (0) / BENCH_LOAD_CPU (1), BENCH_PORT_BASE (18100: uses
# base+1..+3, +5..+7, +10, +11, +20, +30 on 127.0.0.1), BENCH_CONNECTIONS (64),
# BENCH_USERS (1000), BENCH_IDLE_CONNECTIONS (10000), BENCH_IDLE_TLS_CONNECTIONS
# (2000: the idle extra's TLS 1.3 clients, opened one handshake at a time),
# BENCH_WRK_THREADS (1).
#
# Results: printed, saved to build-bench/bench-last.{md,json}, and (full runs)
# written between the markers in docs/benchmarks.md. Exit status 1 when any
# request failed, routing verification failed, or a process died.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
command_line="scripts/bench.sh${*:+ $*}"

quick=0
docs=auto
targets="upstream,figshift,figshift-log,nginx,haproxy"
extras="idle,workers,writes,syscalls,tls,streaming,userkey"
duration="${BENCH_DURATION:-}"
rounds="${BENCH_ROUNDS:-}"
keep=()
while (($#)); do
  case "$1" in
    --quick) quick=1 ;;
    --targets) targets="${2:?--targets needs a list}"; shift ;;
    --targets=*) targets="${1#*=}" ;;
    --extras) extras="${2:?--extras needs a list}"; shift ;;
    --extras=*) extras="${1#*=}" ;;
    --duration) duration="${2:?--duration needs seconds}"; shift ;;
    --duration=*) duration="${1#*=}" ;;
    --rounds) rounds="${2:?--rounds needs a number}"; shift ;;
    --rounds=*) rounds="${1#*=}" ;;
    --no-docs) docs=no ;;
    --write-docs) docs=yes ;;
    --keep) keep=(--keep) ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench.sh: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
if ((quick)); then
  duration="${duration:-5}"
  rounds="${rounds:-1}"
fi
duration="${duration:-10}"
rounds="${rounds:-3}"
if [[ "$docs" == auto ]]; then
  docs=$([[ $quick == 1 ]] && echo no || echo yes)
fi

# --- tools ------------------------------------------------------------------
need=()
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || need+=(nginx)
command -v haproxy >/dev/null 2>&1 || [[ -x /usr/sbin/haproxy ]] || need+=(haproxy)
command -v taskset >/dev/null 2>&1 || need+=(util-linux)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v python3 >/dev/null 2>&1 || need+=(python3)
if [[ ",$extras," == *",syscalls,"* ]]; then
  command -v perf >/dev/null 2>&1 || need+=(linux-perf)
fi
if ((${#need[@]})); then
  echo "bench.sh: installing ${need[*]} from Debian"
  if [[ "$(id -u)" -eq 0 ]]; then as_root=(); else as_root=(sudo); fi
  apt=("${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -y -q -o DPkg::Lock::Timeout=300)
  "${apt[@]}" update
  # Services are never started here: the benchmark runs its own nginx and
  # HAProxy instances with their own configs and prefixes.
  "${apt[@]}" install --no-install-recommends "${need[@]}"
fi
export PATH="$PATH:/usr/sbin:/sbin"

# --- figshift binary ----------------------------------------------------------
bin_given=()
if [[ -n "${FIGSHIFT_BIN:-}" ]]; then
  figshift_bin="$(cd "$(dirname "$FIGSHIFT_BIN")" && pwd)/$(basename "$FIGSHIFT_BIN")"
  [[ -x "$figshift_bin" ]] || { echo "bench.sh: FIGSHIFT_BIN=$FIGSHIFT_BIN is not executable" >&2; exit 2; }
  bin_given=(--figshift-bin-given)
else
  scripts/setup.sh >/dev/null
  cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF >/dev/null
  # Colleagues may be mid-change: retry a failing build a few times.
  for attempt in 1 2 3 4 5 6; do
    if cmake --build build-bench -j"$(nproc 2>/dev/null || echo 2)" --target figshift; then
      break
    fi
    if ((attempt == 6)); then
      echo "bench.sh: the Release build failed 6 times; giving up" >&2
      exit 1
    fi
    echo "bench.sh: build failed (attempt $attempt); retrying in 30 s" >&2
    sleep 30
  done
  figshift_bin="$repo_root/build-bench/figshift"
fi

# --- limits -------------------------------------------------------------------
# 10,000 idle client connections: the helper and each proxy need > 10k fds.
want_fds=65536
if ! ulimit -n "$want_fds" 2>/dev/null; then
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
fi
if (($(ulimit -n) < 12000)) && [[ ",$extras," == *",idle,"* ]]; then
  echo "bench.sh: open-files limit is $(ulimit -n) (< 12000); the idle-connection test may fail." >&2
fi

docs_args=()
[[ "$docs" == yes ]] && docs_args=(--docs "$repo_root/docs/benchmarks.md")

# streaming is a script of its own; run.py takes the other extras.
run_extras="$(tr ',' '\n' <<<"$extras" | grep -vx streaming | paste -sd, -)"
python3 scripts/bench/run.py \
  --figshift-bin "$figshift_bin" "${bin_given[@]}" \
  --targets "$targets" --extras "${run_extras:-none}" \
  --duration "$duration" --rounds "$rounds" \
  $( ((quick)) && echo --quick ) \
  --connections "${BENCH_CONNECTIONS:-64}" --users "${BENCH_USERS:-1000}" \
  --idle-connections "${BENCH_IDLE_CONNECTIONS:-10000}" \
  --idle-tls-connections "${BENCH_IDLE_TLS_CONNECTIONS:-2000}" \
  --wrk-threads "${BENCH_WRK_THREADS:-1}" \
  --proxy-cpu "${BENCH_PROXY_CPU:-0}" --load-cpu "${BENCH_LOAD_CPU:-1}" \
  --port-base "${BENCH_PORT_BASE:-18100}" \
  --out "$repo_root/build-bench" --command "$command_line" \
  "${docs_args[@]}" "${keep[@]}"

if [[ ",$extras," == *",streaming,"* ]]; then
  echo "== streaming: large bodies through figshift, nginx and HAProxy" >&2
  mkdir -p "$repo_root/build-bench"
  python3 scripts/bench/streaming.py --figshift-bin "$figshift_bin" \
    --rounds "$rounds" $( ((quick)) && echo --size-mib 64 ) \
    --proxy-cpu "${BENCH_PROXY_CPU:-0}" --load-cpu "${BENCH_LOAD_CPU:-1}" \
    --port-base "$(( ${BENCH_PORT_BASE:-18100} + 300 ))" \
    --json "$repo_root/build-bench/bench-streaming.json" | tee "$repo_root/build-bench/bench-streaming.md"
fi
