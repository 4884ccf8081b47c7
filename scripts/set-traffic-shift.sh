#!/usr/bin/env bash
# Shifts traffic to the new APIs: ramps the split to <percent> over <seconds>
# and shows the ramp's progress until it ends (the original sample's
# set-traffic-shift.sh, on figshift's admin API).
#
# Usage: scripts/set-traffic-shift.sh <percent> <seconds>
#   percent  0..100, share of users sent to the new APIs
#   seconds  0..86400, ramp duration (0: at once)
# Environment: FIGSHIFT_BIN (default <repo>/build/figshift), FIGSHIFT_ADMIN_URL
#   (default http://127.0.0.1:9901), FIGSHIFT_ADMIN_TOKEN.
# Exit codes: those of `figshift shift` (0 ok, 2 usage, 3 daemon unreachable,
#   4 unauthorized, 6 invalid; see `figshift --help`).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
figshift="${FIGSHIFT_BIN:-$repo_root/build/figshift}"

usage() {
  echo "usage: $(basename "$0") <percent 0..100> <seconds>" >&2
  exit 2
}

(($# == 2)) || usage
[[ "$1" =~ ^[0-9]+$ && "$2" =~ ^[0-9]+$ ]] || usage
((10#$1 <= 100)) || usage

if [[ ! -x "$figshift" ]]; then
  echo "$(basename "$0"): $figshift is not built (run scripts/run.sh or set FIGSHIFT_BIN)" >&2
  exit 1
fi

exec "$figshift" shift "$((10#$1))" --over "$((10#$2))"
