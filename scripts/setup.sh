#!/usr/bin/env bash
# Installs the Debian 12 (bookworm) packages figshift needs to build, test and
# run. Idempotent: installs only what dpkg reports missing, and touches apt
# (update + install) only when something is. Works as root, or via sudo.
#
# Usage: scripts/setup.sh [--check]   (--check: report what is missing, exit 1 if anything is)
set -euo pipefail

packages=(
  build-essential
  cmake
  ccache
  pkg-config
  libboost1.81-dev
  libssl-dev
  nlohmann-json3-dev
  libspdlog-dev
  libcli11-dev
  libgtest-dev
  googletest
  python3
  openssl
  curl
  ca-certificates
  # libFuzzer targets (scripts/fuzz.sh, scripts/test.sh --fuzz-smoke): clang and its runtime
  clang-14
  libclang-rt-14-dev
  # load generator for the zero-loss integration test (tests/integration/test_zero_loss.py)
  wrk
  # the etcd backend's integration test starts a real etcd (tests/integration/test_etcd.py)
  etcd-server
  etcd-client
)

# The differential tests run the original JavaScript edge function. Any node
# already on PATH (nvm, NodeSource, ...) is kept; Debian's is only a fallback.
if ! command -v node >/dev/null 2>&1; then
  packages+=(nodejs)
fi

# Observability tests: the browser test drives Debian's headless Chromium with
# playwright-core from npm (tests/browser), and the metrics test checks a scrape
# with promtool (Debian's prometheus package). As for node, an npm already on
# PATH is kept.
packages+=(chromium prometheus)
if ! command -v npm >/dev/null 2>&1; then
  packages+=(npm)
fi

check_only=0
case "${1:-}" in
  --check) check_only=1 ;;
  "") ;;
  *)
    echo "usage: $0 [--check]" >&2
    exit 2
    ;;
esac

is_installed() {
  # "ii" = desired install, currently installed; anything else (absent,
  # half-installed, removed with config left) needs an install.
  [[ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" == ii* ]]
}

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "setup.sh: dpkg-query not found; this script supports Debian 12 (bookworm) only." >&2
  echo "setup.sh: install by hand: ${packages[*]}" >&2
  exit 1
fi

missing=()
for pkg in "${packages[@]}"; do
  is_installed "$pkg" || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
  echo "setup.sh: all ${#packages[@]} required packages are already installed; nothing to do."
  exit 0
fi

echo "setup.sh: missing packages: ${missing[*]}"
if ((check_only)); then
  exit 1
fi

if [[ "$(id -u)" -eq 0 ]]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  echo "setup.sh: not root and sudo is not available; run as root: apt-get install ${missing[*]}" >&2
  exit 1
fi

# env rather than an exported variable: sudo drops the caller's environment.
apt=("${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -y -q -o DPkg::Lock::Timeout=300)

echo "setup.sh: apt-get update"
"${apt[@]}" update
echo "setup.sh: installing: ${missing[*]}"
"${apt[@]}" install --no-install-recommends "${missing[@]}"

# Verify, so a silently skipped package fails here rather than mid-build.
still_missing=()
for pkg in "${missing[@]}"; do
  is_installed "$pkg" || still_missing+=("$pkg")
done
if ((${#still_missing[@]} > 0)); then
  echo "setup.sh: still missing after install: ${still_missing[*]}" >&2
  exit 1
fi
echo "setup.sh: installed ${#missing[@]} package(s): ${missing[*]}"
