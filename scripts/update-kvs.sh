#!/usr/bin/env bash
# Loads the upstream URLs into the running daemon's store (the original
# sample's update-kvs.sh, on figshift's admin API), in one atomic write guarded
# by the store's ETag.
#
# Usage: scripts/update-kvs.sh [kvs-file]
#   without a file: the APIGW_*_URL entries of config/kvs.json (nothing else:
#                   the split, routes and other keys stay as they are)
#   kvs-file:       every entry of that KeyValueStore import file
#                   {"data":[{"key":"…","value":"…"}]}
# Environment: FIGSHIFT_BIN (default <repo>/build/figshift), FIGSHIFT_ADMIN_URL
#   (default http://127.0.0.1:9901), FIGSHIFT_ADMIN_TOKEN.
# Exit codes: those of `figshift kv import` (0 ok, 3 daemon unreachable,
#   4 unauthorized, 5 the store changed meanwhile, 6 invalid; see `figshift --help`).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
figshift="${FIGSHIFT_BIN:-$repo_root/build/figshift}"

usage() {
  echo "usage: $(basename "$0") [kvs-file]" >&2
  exit 2
}

(($# <= 1)) || usage
case "${1:-}" in -h | --help | -*) usage ;; esac

if [[ ! -x "$figshift" ]]; then
  echo "$(basename "$0"): $figshift is not built (run scripts/run.sh or set FIGSHIFT_BIN)" >&2
  exit 1
fi

if (($# == 1)); then
  [[ -r "$1" ]] || { echo "$(basename "$0"): cannot read $1" >&2; exit 1; }
  exec "$figshift" kv import "$1"
fi
exec "$figshift" kv import "$repo_root/config/kvs.json" --match 'APIGW_*_URL'
