#!/bin/sh
# ctest `browser_dashboard`: installs playwright-core from the committed lock file
# when node_modules is missing (offline-safe once installed), checks that the
# pinned version runs on the oldest Node.js the README supports, then runs the test.
set -eu
cd "$(dirname "$0")"
if [ ! -f node_modules/playwright-core/package.json ]; then
  echo "browser test: npm ci (playwright-core; no browser download, Debian's chromium is used)"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
fi
# Fails here, with the reason, when someone bumps playwright-core to a version
# that refuses Debian 12's Node.js (issue: 1.65 required Node 20), even on a
# machine whose own Node is newer and would run it.
node check-node-support.mjs
exec node --test-reporter=spec dashboard.test.mjs
