#!/usr/bin/env bash
# Builds figshift with its tests and runs the whole suite (unit, differential,
# integration) through ctest. Exits non-zero on any failure.
#
# Usage: scripts/test.sh [--sanitize] [-- extra ctest args]
#   --sanitize   ASan + UBSan build in build-sanitize/ (-DFIGSHIFT_SANITIZE=ON)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

build_dir=build
cmake_extra=()
ctest_extra=()
while (($# > 0)); do
  case "$1" in
    --sanitize)
      build_dir=build-sanitize
      cmake_extra+=(-DFIGSHIFT_SANITIZE=ON)
      ;;
    --)
      shift
      ctest_extra+=("$@")
      break
      ;;
    -h | --help)
      sed -n '2,6p' "$0"
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
