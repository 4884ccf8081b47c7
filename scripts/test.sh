#!/usr/bin/env bash
# Builds figshift with its tests and runs the whole suite (unit, differential,
# integration) through ctest. Exits non-zero on any failure.
#
# Usage: scripts/test.sh [--sanitize | --fuzz-smoke] [-- extra ctest args]
#   --sanitize   ASan + UBSan build in build-sanitize/ (-DFIGSHIFT_SANITIZE=ON); every
#                sanitizer report fails its test (ASAN_OPTIONS/UBSAN_OPTIONS below);
#                tests labelled browser or no_sanitize are left out
#   --fuzz-smoke every libFuzzer target for FIGSHIFT_FUZZ_SECONDS (default 20) seconds
#                (clang-14 build in build-fuzz/, scripts/fuzz.sh)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

build_dir=build
mode=normal
cmake_extra=()
ctest_extra=()
while (($# > 0)); do
  case "$1" in
    --sanitize)
      build_dir=build-sanitize
      mode=sanitize
      cmake_extra+=(-DFIGSHIFT_SANITIZE=ON)
      ;;
    --fuzz-smoke)
      build_dir=build-fuzz
      mode=fuzz
      ;;
    --)
      shift
      ctest_extra+=("$@")
      break
      ;;
    -h | --help)
      sed -n '2,11p' "$0"
      exit 0
      ;;
    *)
      echo "test.sh: unknown argument: $1 (see --help)" >&2
      exit 2
      ;;
  esac
  shift
done

started=$SECONDS
stage="setup"
summary() {
  local rc=$?
  local elapsed=$((SECONDS - started))
  if ((rc == 0)); then
    echo "==> test.sh: PASSED (${build_dir}, ${elapsed}s)"
  else
    echo "==> test.sh: FAILED during ${stage} (exit ${rc}, ${build_dir}, ${elapsed}s)" >&2
  fi
}
trap summary EXIT

# Fast (one dpkg-query per package) when everything is present.
scripts/setup.sh

# What this run is testing with, so a failure on someone else's machine can be
# matched to a version. The README's "Minimum versions" lists the oldest of each
# that the suite passes with (Debian 12's).
first_line() { "$@" 2>&1 | head -n 1 || true; }
echo "==> tools"
echo "  cmake:    $(first_line cmake --version)"
echo "  c++:      $(first_line c++ --version)"
echo "  boost:    $(sed -n 's/^#define BOOST_LIB_VERSION "\(.*\)"/\1/p' /usr/include/boost/version.hpp 2>/dev/null)"
echo "  openssl:  $(first_line openssl version)"
echo "  python3:  $(first_line python3 --version)"
echo "  node:     $(first_line node --version) ($(command -v node))"
echo "  npm:      $(first_line npm --version)"
echo "  chromium: $(chromium --version 2>/dev/null | grep -o 'Chromium [0-9.]*' || true)"
node_major="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
if ((node_major < 18)); then
  echo "test.sh: Node.js ${node_major} is older than the oldest supported (18, Debian 12's)" >&2
  exit 1
fi

# ccache keys on absolute paths and (with -g) the working directory by default;
# make clones at different paths share one cache (CI clones afresh each run).
export CCACHE_BASEDIR="$repo_root" CCACHE_NOHASHDIR=1

if [[ "$mode" == fuzz ]]; then
  stage="fuzz"
  scripts/fuzz.sh all "${FIGSHIFT_FUZZ_SECONDS:-20}"
  exit 0
fi

if [[ "$mode" == sanitize ]]; then
  # Any report ends the process with an error: a unit test or a CLI call fails,
  # and a daemon started by an integration test aborts, so the harness sees a
  # non-zero exit instead of 0 after SIGTERM. Leaks are reported at exit.
  export ASAN_OPTIONS="halt_on_error=1:abort_on_error=1:detect_leaks=1:check_initialization_order=1:strict_init_order=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
  # A browser test is slow under ASan and CI's time is shared with the normal run.
  ctest_extra=(-LE 'browser|no_sanitize' "${ctest_extra[@]}")
fi

stage="configure"
echo "==> configure ${build_dir}"
cmake -S . -B "$build_dir" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DBUILD_TESTING=ON \
  "${cmake_extra[@]}"

stage="build"
jobs="$(nproc 2>/dev/null || echo 2)"
echo "==> build (-j${jobs})"
cmake --build "$build_dir" -j"$jobs"

stage="tests"
echo "==> ctest"
# Per-test timeouts are set by the tests themselves. A build that registers no
# tests at all is a broken build, not a pass.
ctest --test-dir "$build_dir" --output-on-failure --no-tests=error -j2 "${ctest_extra[@]}"
