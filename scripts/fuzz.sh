#!/usr/bin/env bash
# Runs libFuzzer targets (tests/fuzz) built with clang-14 in build-fuzz/.
#
# Usage: scripts/fuzz.sh <target|all> <seconds> [extra libFuzzer flags]
#   targets: fuzz_basic_auth fuzz_store fuzz_route_table fuzz_request_head fuzz_chunked_reframe fuzz_jwt
#   Each target starts from its committed seed corpus (tests/fuzz/corpus/<target>)
#   copied to a scratch folder, so the committed corpus does not grow, plus its
#   committed crash inputs (tests/fuzz/crashes/<target>), and runs <seconds>.
#   A crash, leak, sanitizer report or broken invariant fails the run; its
#   input is saved under build-fuzz/artifacts/<target>/. Logs: build-fuzz/fuzz-logs/.
#   To keep what a long run found: FIGSHIFT_FUZZ_KEEP_CORPUS=1 (prints the folder).
# Environment: FIGSHIFT_FUZZ_BUILD_DIR (default build-fuzz), CXX_FUZZ (default clang++-14).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

all_targets=(fuzz_basic_auth fuzz_store fuzz_route_table fuzz_request_head fuzz_chunked_reframe fuzz_jwt)

usage() {
  sed -n '2,13p' "$0" >&2
  exit 2
}

(($# >= 2)) || usage
which_target="$1"
seconds="$2"
shift 2
[[ "$seconds" =~ ^[0-9]+$ ]] && ((seconds > 0)) || usage

if [[ "$which_target" == all ]]; then
  targets=("${all_targets[@]}")
else
  found=0
  for t in "${all_targets[@]}"; do [[ "$t" == "$which_target" ]] && found=1; done
  if ((!found)); then
    echo "fuzz.sh: unknown target: $which_target (one of: ${all_targets[*]}, all)" >&2
    exit 2
  fi
  targets=("$which_target")
fi

build_dir="${FIGSHIFT_FUZZ_BUILD_DIR:-build-fuzz}"
cxx="${CXX_FUZZ:-clang++-14}"
if ! command -v "$cxx" >/dev/null 2>&1; then
  echo "fuzz.sh: $cxx not found; run scripts/setup.sh (installs clang-14 and libclang-rt-14-dev)" >&2
  exit 1
fi

# Configured every time (quick once done): a target added since the last run
# is known to the build only after cmake has read the lists again.
echo "==> configure $build_dir ($cxx, -DFIGSHIFT_FUZZ=ON)"
cmake -S . -B "$build_dir" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DBUILD_TESTING=OFF -DFIGSHIFT_FUZZ=ON >/dev/null
jobs="$(nproc 2>/dev/null || echo 2)"
echo "==> build ${targets[*]} (-j${jobs})"
cmake --build "$build_dir" -j"$jobs" --target "${targets[@]}"

# libFuzzer sets its own ASan defaults; these make every report fatal and
# symbolised. Leak detection stays on (libFuzzer's -detect_leaks=1 default).
export ASAN_OPTIONS="${ASAN_OPTIONS:-halt_on_error=1:abort_on_error=1:detect_leaks=1:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

logs="$build_dir/fuzz-logs"
mkdir -p "$logs"
scratch="$(mktemp -d "${TMPDIR:-/tmp}/figshift-fuzz.XXXXXX")"
if [[ "${FIGSHIFT_FUZZ_KEEP_CORPUS:-0}" != 1 ]]; then
  trap 'rm -rf "$scratch"' EXIT
fi

failed=()
for t in "${targets[@]}"; do
  corpus="$scratch/$t"
  artifacts="$build_dir/artifacts/$t"
  mkdir -p "$corpus" "$artifacts"
  cp tests/fuzz/corpus/"$t"/* "$corpus"/
  inputs=("$corpus")
  [[ -d tests/fuzz/crashes/$t ]] && inputs+=("tests/fuzz/crashes/$t")
  log="$logs/$t.log"
  echo "==> $t for ${seconds}s (log: $log)"
  rc=0
  "$build_dir/tests/fuzz/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -max_len=4096 -print_final_stats=1 -artifact_prefix="$artifacts/" "$@" "${inputs[@]}" \
    >"$log" 2>&1 || rc=$?
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
  last="$(grep -E '^#[0-9]+' "$log" | tail -1 || true)"
  cov="$(sed -nE 's/.* cov: ([0-9]+) ft: ([0-9]+) corp: ([0-9]+\/[^ ]+).*/cov \1, ft \2, corpus \3/p' <<<"$last")"
  if ((rc == 0)); then
    echo "    ok: ${execs:-?} execs, ${rate:-?}/s, ${cov:-?}"
  else
    echo "    FAILED (exit $rc): ${execs:-?} execs; see $log; inputs in $artifacts/" >&2
    grep -E 'ERROR: |runtime error|invariant broken|SUMMARY' "$log" | head -5 >&2 || true
    failed+=("$t")
  fi
done
if [[ "${FIGSHIFT_FUZZ_KEEP_CORPUS:-0}" == 1 ]]; then
  echo "==> grown corpora kept in $scratch"
fi

if ((${#failed[@]} > 0)); then
  echo "==> fuzz.sh: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "==> fuzz.sh: ${#targets[@]} target(s) ran ${seconds}s each without a finding"
