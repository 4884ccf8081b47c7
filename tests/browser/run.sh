#!/bin/sh
# ctest `browser_dashboard`: installs playwright-core from the committed lock file
# when node_modules is missing (offline-safe once installed), then runs the test.
set -eu
cd "$(dirname "$0")"
if [ ! -f node_modules/playwright-core/package.json ]; then
  echo "browser test: npm ci (playwright-core; no browser download, Debian's chromium is used)"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
fi
exec node --test-reporter=spec dashboard.test.mjs
